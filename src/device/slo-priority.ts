/**
 * SLO-slack priority (Prism GPU scheduler, reference §4.3) as pure functions of (request, model
 * estimate, now), plus the per-model prefill-cost estimate they use.
 *
 *   estPrefillMs = clamp(prefillTokens × msPerPrefillToken(model), min, max)
 *   slack        = arrival + ttftSlo − now − estPrefillMs
 *   priority     = slack          if slack > 0      (on time: least slack first)
 *                = estPrefillMs   otherwise         (late: shortest prefill first)
 *   smaller priority = more urgent; ties by submission order.
 *
 * Why this needs no re-keying as time passes: `now` is common to every request on the device, so
 * among on-time requests slack order = order of the static key `arrival + ttftSlo − est` (the
 * latest start time). A request turns late exactly when its static key ≤ now, which happens to the
 * on-time heap's top first, so "promotion" pops from the top. The late heap is keyed by est, also
 * static. Only a change of the model's estimate moves keys; that re-keys that model's queue when
 * the estimate drifts past `rekeyTolerance` (between re-keys the order is exact for the estimate
 * in force at the last re-key).
 */
import type { DeviceSchedulerConfig } from "./types.ts";

export function estimatePrefillMs(numTokens: number, msPerToken: number, cfg: DeviceSchedulerConfig): number {
  const est = numTokens * msPerToken;
  return est < cfg.prefillEstMinMs ? cfg.prefillEstMinMs : est > cfg.prefillEstMaxMs ? cfg.prefillEstMaxMs : est;
}

/** The static on-time key: the latest time the request can start its prefill and meet its TTFT. */
export function latestStartMs(arrivalMs: number, ttftSloMs: number, estPrefillMs: number): number {
  return arrivalMs + ttftSloMs - estPrefillMs;
}

/**
 * EWMA update of a model's ms-per-prefill-token from one measured step: the step's time spread
 * evenly over all tokens it computed (decode tokens cost about as much as prefill tokens per token
 * on a compute-bound batch; the estimate orders requests, it does not predict wall time exactly).
 */
const MIN_MS_PER_TOKEN = 1e-6;

export function updatePrefillRate(current: number, stepMs: number, numStepTokens: number, alpha: number): number {
  if (!(numStepTokens > 0) || !(stepMs >= 0) || !Number.isFinite(stepMs)) return current;
  const sample = stepMs / numStepTokens;
  // Floor: a zero-cost executor would otherwise decay the estimate geometrically and re-key forever.
  return Math.max(MIN_MS_PER_TOKEN, current + alpha * (sample - current));
}

/** True when keys computed with `keyedRate` are too far from the live estimate. */
export function needsRekey(keyedRate: number, liveRate: number, tolerance: number): boolean {
  return Math.abs(liveRate - keyedRate) > tolerance * keyedRate;
}
