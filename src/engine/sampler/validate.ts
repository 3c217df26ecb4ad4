/**
 * SamplingParams validation, shared by the engine (defence in depth, before a plan runs) and the
 * gateway / CLI (at the edge, so a bad request is rejected before it is queued).
 */
import { PrismError } from "../../core/errors.ts";
import type { SamplingParams } from "../../core/records.ts";

/** OpenAI caps top_logprobs at 20; we keep the same cap so scratch buffers stay small. */
export const MAX_TOP_LOGPROBS = 20;

function bad(param: string, value: unknown, rule: string): never {
  throw new PrismError("PRISM_SAMPLING_INVALID", `sampling.${param} must be ${rule} (got ${String(value)})`, { param, value: String(value) });
}

function finite(p: Record<string, unknown>, name: string): number {
  const v = p[name];
  if (typeof v !== "number" || !Number.isFinite(v)) bad(name, v, "a finite number");
  return v;
}

/**
 * Throws PRISM_SAMPLING_INVALID (details.param names the field) for anything the sampler cannot honour:
 * missing fields, NaN/Infinity, temperature < 0, topK not a non-negative integer, topP outside (0, 1],
 * minP outside [0, 1], repetitionPenalty <= 0, frequency/presence penalties outside [-2, 2] (OpenAI),
 * seed not a safe integer, topLogprobs not an integer in [0, 20], logprobs not a boolean.
 */
export function validateSampling(params: SamplingParams): void {
  if (typeof params !== "object" || params === null) bad("(object)", params, "an object");
  const p = params as unknown as Record<string, unknown>;
  const temperature = finite(p, "temperature");
  if (temperature < 0) bad("temperature", temperature, ">= 0");
  const topK = finite(p, "topK");
  if (!Number.isInteger(topK) || topK < 0) bad("topK", topK, "an integer >= 0 (0 disables)");
  const topP = finite(p, "topP");
  if (!(topP > 0 && topP <= 1)) bad("topP", topP, "in (0, 1] (1 disables)");
  const minP = finite(p, "minP");
  if (!(minP >= 0 && minP <= 1)) bad("minP", minP, "in [0, 1] (0 disables)");
  const rep = finite(p, "repetitionPenalty");
  if (!(rep > 0)) bad("repetitionPenalty", rep, "> 0 (1 disables)");
  const freq = finite(p, "frequencyPenalty");
  if (!(freq >= -2 && freq <= 2)) bad("frequencyPenalty", freq, "in [-2, 2]");
  const pres = finite(p, "presencePenalty");
  if (!(pres >= -2 && pres <= 2)) bad("presencePenalty", pres, "in [-2, 2]");
  const seed = finite(p, "seed");
  if (!Number.isSafeInteger(seed)) bad("seed", seed, "a safe integer");
  const topLogprobs = finite(p, "topLogprobs");
  if (!Number.isInteger(topLogprobs) || topLogprobs < 0 || topLogprobs > MAX_TOP_LOGPROBS) {
    bad("topLogprobs", topLogprobs, `an integer in [0, ${MAX_TOP_LOGPROBS}]`);
  }
  if (typeof p["logprobs"] !== "boolean") bad("logprobs", p["logprobs"], "a boolean");
}

/** True when the sampler needs the penalty token list (the scheduler may pass null otherwise). */
export function usesPenalties(p: SamplingParams): boolean {
  return p.repetitionPenalty !== 1 || p.frequencyPenalty !== 0 || p.presencePenalty !== 0;
}
