/**
 * The embedded engine's public surface (what the gateway and the CLI import). Heavier or optional
 * parts are imported from their own folders: runtime/ (worker executor, matmul helper thread) and
 * llamacpp/ (node-llama-cpp backend).
 */
export {
  createEngineExecutor,
  EngineExecutor,
  profileOf,
  modelProfileFromGguf,
  requiredPrefixBytes,
  kvBytesPerTokenPerLayer,
  DEFAULT_MAX_BATCH_TOKENS,
  DEFAULT_MAX_SAMPLE_ROWS,
  DEFAULT_MAX_BLOCK_ENTRIES,
} from "./model/executor.ts";
export type { EngineExecutorOptions, EngineModelSource, StepBudget, LogitsHook } from "./model/executor.ts";
export { generate, runSequences } from "./model/sequences.ts";
export type { KvBlockProvider, SequenceSpec, SequenceResult, RunOptions, GenerateOptions } from "./model/sequences.ts";
export { planWeightLayout, copyWeights, usesNeoxRope, WEIGHT_ALIGN_BYTES, REGION_ALIGN_BYTES } from "./model/weights.ts";
export type { WeightLayout, TensorSlot } from "./model/weights.ts";
export { llamaConfigFromGguf, type LlamaConfig } from "./model/config.ts";
export { Sampler, drawUniform, sampleSeed, validateSampling, usesPenalties, MAX_TOP_LOGPROBS } from "./sampler/index.ts";
export { parseGguf, readGgufFile } from "./gguf/reader.ts";
export type { GgufFile, GgufTensorInfo } from "./gguf/types.ts";
export { Tokenizer, IncrementalDetokenizer, renderChat, encodeChatPrompt } from "./tokenizer/index.ts";
export { KERNEL_RESERVED_BYTES, type Kernels } from "./kernels/types.ts";
