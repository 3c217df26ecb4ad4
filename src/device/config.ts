/**
 * Defaults and validation of the device scheduler's configuration slices. Called once at the edge
 * (the config loader, the simulator's setup, tests); the scheduler trusts the frozen result.
 */
import { PrismError } from "../core/errors.ts";
import type { DeviceSchedulerConfig, ModelServingConfig } from "./types.ts";

export const DEFAULT_DEVICE_SCHEDULER_CONFIG: DeviceSchedulerConfig = Object.freeze({
  policy: "slo",
  maxBatchTokens: 512,
  maxBatchSeqs: 64,
  prefillChunkTokens: 256,
  blockTokens: 16,
  decodeMarginTokens: 20,
  maxQueuedPerModel: 1024,
  maxQueuedTotal: 4096,
  prefillMsPerTokenPrior: 1000 / 2048,
  prefillEstAlpha: 0.2,
  prefillEstMinMs: 0,
  prefillEstMaxMs: 20_000,
  rekeyTolerance: 0.1,
  abortUnreachable: false,
  demoteExpired: true,
  lateMaxRunning: 8,
  lateMaxWaitMs: 60_000,
  guardFirstTokens: true,
  // The embedded engine's loadWeights copies synchronously on the loop's thread: nothing to overlap.
  overlapLoads: false,
});

export const DEFAULT_MODEL_SERVING_CONFIG: ModelServingConfig = Object.freeze({
  ttftSloMs: 1000,
  tpotSloMs: 100,
  maxRunning: 64,
  pinned: false,
  keepAliveMs: Number.POSITIVE_INFINITY,
});

const KEYS = Object.keys(DEFAULT_DEVICE_SCHEDULER_CONFIG) as (keyof DeviceSchedulerConfig)[];

function invalid(option: string, value: unknown, why: string): PrismError {
  return new PrismError("PRISM_CONFIG_INVALID", `device scheduler option ${option}=${String(value)}: ${why}`, { option, value });
}

function positiveInt(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v <= 0) throw invalid(name, v, "must be a positive integer");
}

function nonNegative(name: string, v: number): void {
  if (typeof v !== "number" || !(v >= 0)) throw invalid(name, v, "must be a number ≥ 0");
}

/** Fill defaults, reject unknown keys and bad values, freeze. */
export function resolveDeviceSchedulerConfig(partial: Partial<DeviceSchedulerConfig> = {}): DeviceSchedulerConfig {
  for (const k of Object.keys(partial)) {
    if (!(KEYS as string[]).includes(k)) {
      throw new PrismError("PRISM_CONFIG_UNKNOWN_KEY", `unknown device scheduler option '${k}' (known: ${KEYS.join(", ")})`, { option: k });
    }
  }
  const c: DeviceSchedulerConfig = { ...DEFAULT_DEVICE_SCHEDULER_CONFIG, ...partial };
  if (c.policy !== "slo" && c.policy !== "fcfs") throw invalid("policy", c.policy, 'must be "slo" or "fcfs"');
  positiveInt("maxBatchTokens", c.maxBatchTokens);
  positiveInt("maxBatchSeqs", c.maxBatchSeqs);
  positiveInt("prefillChunkTokens", c.prefillChunkTokens);
  positiveInt("blockTokens", c.blockTokens);
  positiveInt("maxQueuedPerModel", c.maxQueuedPerModel);
  positiveInt("maxQueuedTotal", c.maxQueuedTotal);
  positiveInt("lateMaxRunning", c.lateMaxRunning);
  if (!(c.lateMaxWaitMs > 0)) throw invalid("lateMaxWaitMs", c.lateMaxWaitMs, "must be > 0 ms (Infinity = never)");
  if (!Number.isSafeInteger(c.decodeMarginTokens) || c.decodeMarginTokens < 0) {
    throw invalid("decodeMarginTokens", c.decodeMarginTokens, "must be an integer ≥ 0");
  }
  if (c.maxBatchTokens < c.maxBatchSeqs) {
    throw invalid("maxBatchTokens", c.maxBatchTokens, `must be ≥ maxBatchSeqs (${c.maxBatchSeqs}) so every running decode fits in one step`);
  }
  if (!(c.prefillMsPerTokenPrior > 0) || !Number.isFinite(c.prefillMsPerTokenPrior)) {
    throw invalid("prefillMsPerTokenPrior", c.prefillMsPerTokenPrior, "must be a finite number > 0");
  }
  if (!(c.prefillEstAlpha > 0 && c.prefillEstAlpha <= 1)) throw invalid("prefillEstAlpha", c.prefillEstAlpha, "must be in (0, 1]");
  nonNegative("prefillEstMinMs", c.prefillEstMinMs);
  if (!(c.prefillEstMaxMs >= c.prefillEstMinMs)) throw invalid("prefillEstMaxMs", c.prefillEstMaxMs, "must be ≥ prefillEstMinMs");
  nonNegative("rekeyTolerance", c.rekeyTolerance);
  if (typeof c.abortUnreachable !== "boolean") throw invalid("abortUnreachable", c.abortUnreachable, "must be a boolean");
  if (typeof c.demoteExpired !== "boolean") throw invalid("demoteExpired", c.demoteExpired, "must be a boolean");
  if (typeof c.guardFirstTokens !== "boolean") throw invalid("guardFirstTokens", c.guardFirstTokens, "must be a boolean");
  if (typeof c.overlapLoads !== "boolean") throw invalid("overlapLoads", c.overlapLoads, "must be a boolean");
  return Object.freeze(c);
}

/** Fill defaults and validate one model's serving slice (called by addModel). */
export function resolveModelServingConfig(partial: Partial<ModelServingConfig> = {}): ModelServingConfig {
  const c: ModelServingConfig = { ...DEFAULT_MODEL_SERVING_CONFIG, ...partial };
  const bad = (o: string, v: unknown, why: string): PrismError =>
    new PrismError("PRISM_CONFIG_INVALID", `model serving option ${o}=${String(v)}: ${why}`, { option: o, value: v });
  if (!(c.ttftSloMs > 0)) throw bad("ttftSloMs", c.ttftSloMs, "must be > 0");
  if (!(c.tpotSloMs > 0)) throw bad("tpotSloMs", c.tpotSloMs, "must be > 0");
  if (!Number.isSafeInteger(c.maxRunning) || c.maxRunning <= 0) throw bad("maxRunning", c.maxRunning, "must be a positive integer");
  if (typeof c.pinned !== "boolean") throw bad("pinned", c.pinned, "must be a boolean");
  if (!(c.keepAliveMs >= 0)) throw bad("keepAliveMs", c.keepAliveMs, "must be ≥ 0 (Infinity = never)");
  if (c.kvLimitBytes !== undefined && !(Number.isSafeInteger(c.kvLimitBytes) && c.kvLimitBytes >= 0)) {
    throw bad("kvLimitBytes", c.kvLimitBytes, "must be an integer ≥ 0");
  }
  return Object.freeze(c);
}
