export { Sampler, drawUniform, sampleSeed } from "./sampler.ts";
export { validateSampling, usesPenalties, MAX_TOP_LOGPROBS } from "./validate.ts";
