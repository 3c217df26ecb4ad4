/**
 * Per-request latency metrics and SLO attainment. Pure functions over columns; `prism bench` (measured) and the
 * simulator (modelled) fill a `RequestOutcomes` and call `evaluateSlo`, so both report the same numbers the
 * same way.
 *
 * Definitions (one set, used everywhere):
 * - TTFT = time from the request's start (bench: the moment it was sent; sim: its arrival) to its first output
 *   token, in ms.
 * - E2E  = time from the same start to its last output token, in ms.
 * - TPOT = (E2E − TTFT) / (outputTokens − 1), vLLM's definition (benchmark_serving.py): the mean gap between
 *   output tokens after the first. Undefined (NaN) for requests with fewer than 2 output tokens; such a
 *   request meets any TPOT SLO and is left out of TPOT percentiles.
 * - A request attains the TTFT SLO when it completed and TTFT < ttftSlo (strict), the TPOT SLO when it completed
 *   and TPOT < tpotSlo (or TPOT is undefined), and "both" when both hold. A failed request (error, timeout,
 *   rejection) misses every SLO.
 * - Attainment = attaining requests / all requests in the group (failed ones included in the denominator).
 * - Goodput = requests attaining both SLOs / durationS; throughput = completed requests / durationS.
 * - Latency percentiles (nearest rank, see stats.ts) cover completed requests only.
 */
import { PrismError } from "../core/errors.ts";
import { type Distribution, summarize } from "./stats.ts";

/** Latency objectives for one model. Infinity disables an objective. */
export interface SloTarget {
  readonly ttftMs: number;
  readonly tpotMs: number;
}

/**
 * One row per request, in columns. Who fills it: the bench replay (measured with a monotonic clock) or the
 * simulator (virtual time). NaN = not measured (no first token, failed before finishing).
 */
export interface RequestOutcomes {
  readonly count: number;
  readonly modelNames: readonly string[];
  readonly modelIndex: Int32Array;
  /** Scheduled arrival, seconds from the run's origin (trace time). */
  readonly arrivalS: Float64Array;
  readonly ttftMs: Float64Array;
  readonly e2eMs: Float64Array;
  /** Output tokens actually produced (the usage count when the server reports it). */
  readonly outputTokens: Int32Array;
  /** 1 = completed normally, 0 = failed. */
  readonly ok: Uint8Array;
}

/** Allocate outcome columns for `count` requests, all NaN / failed until filled. */
export function newRequestOutcomes(count: number, modelNames: readonly string[], modelIndex?: Int32Array, arrivalS?: Float64Array): RequestOutcomes {
  return {
    count,
    modelNames,
    modelIndex: modelIndex ?? new Int32Array(count),
    arrivalS: arrivalS ?? new Float64Array(count),
    ttftMs: new Float64Array(count).fill(NaN),
    e2eMs: new Float64Array(count).fill(NaN),
    outputTokens: new Int32Array(count),
    ok: new Uint8Array(count),
  };
}

/** TPOT per vLLM: (e2e − ttft) / (outputTokens − 1); NaN when outputTokens < 2 or an input is NaN. */
export function tpotMs(e2eMs: number, ttftMs: number, outputTokens: number): number {
  if (outputTokens < 2) return NaN;
  return (e2eMs - ttftMs) / (outputTokens - 1);
}

export const SLO_TTFT = 1;
export const SLO_TPOT = 2;
export const SLO_BOTH = 3;

/** Bit set of the SLOs one request attains: SLO_TTFT | SLO_TPOT (0 when it failed). */
export function attainedBits(ok: boolean, ttft: number, tpot: number, slo: SloTarget): number {
  if (!ok) return 0;
  let bits = 0;
  if (ttft < slo.ttftMs) bits |= SLO_TTFT;
  if (Number.isNaN(tpot) || tpot < slo.tpotMs) bits |= SLO_TPOT;
  return bits;
}

/** SLO for each model (by index), from one target, a per-index array, or a lookup by name. */
export type SloSpec = SloTarget | readonly SloTarget[] | ((modelName: string, modelIndex: number) => SloTarget);

export function resolveSlos(spec: SloSpec, modelNames: readonly string[]): SloTarget[] {
  if (typeof spec === "function") return modelNames.map((n, i) => spec(n, i));
  if (Array.isArray(spec)) {
    const arr = spec as readonly SloTarget[];
    if (arr.length < modelNames.length) throw new RangeError(`SLO list has ${arr.length} entries for ${modelNames.length} models`);
    return arr.slice(0, modelNames.length);
  }
  return modelNames.map(() => spec as SloTarget);
}

/** Per-request derived columns. */
export interface RequestMetrics {
  readonly tpotMs: Float64Array;
  /** attainedBits per request. */
  readonly attained: Uint8Array;
}

export function computeRequestMetrics(o: RequestOutcomes, slos: readonly SloTarget[]): RequestMetrics {
  const tpot = new Float64Array(o.count);
  const attained = new Uint8Array(o.count);
  for (let i = 0; i < o.count; i++) {
    const ok = o.ok[i] === 1;
    tpot[i] = ok ? tpotMs(o.e2eMs[i]!, o.ttftMs[i]!, o.outputTokens[i]!) : NaN;
    attained[i] = attainedBits(ok, o.ttftMs[i]!, tpot[i]!, slos[o.modelIndex[i]!]!);
  }
  return { tpotMs: tpot, attained };
}

export interface GroupReport {
  /** Model name, or "overall". */
  readonly name: string;
  /** The group's SLO; null for "overall" when models have different SLOs. */
  readonly slo: SloTarget | null;
  readonly count: number;
  readonly completed: number;
  readonly failed: number;
  /** Fractions of `count` in [0, 1]; NaN when count is 0. */
  readonly ttftAttainment: number;
  readonly tpotAttainment: number;
  readonly bothAttainment: number;
  readonly goodputRps: number;
  readonly throughputRps: number;
  /** Over completed requests. */
  readonly ttftMs: Distribution;
  readonly tpotMs: Distribution;
  readonly e2eMs: Distribution;
}

export interface SloReport {
  readonly durationS: number;
  readonly overall: GroupReport;
  /** One per model in `modelNames` order (models with no requests included, count 0). */
  readonly perModel: readonly GroupReport[];
}

export interface EvaluateOptions {
  /**
   * Seconds the goodput/throughput are divided by. Default: from the first arrival to the last completion
   * (max over requests of arrivalS + e2e), or the arrival span when nothing completed.
   */
  readonly durationS?: number;
}

/**
 * Attainment, goodput and latency distributions, overall and per model. O(n log n); one pass buckets requests
 * by model, so 1M requests × 100 models costs the same as 1M × 1.
 */
export function evaluateSlo(o: RequestOutcomes, spec: SloSpec, opts: EvaluateOptions = {}): SloReport {
  const slos = resolveSlos(spec, o.modelNames);
  const m = computeRequestMetrics(o, slos);
  const durationS = opts.durationS ?? defaultDurationS(o);
  const numModels = o.modelNames.length;
  // counters per model: [count, completed, ttftOk, tpotOk, bothOk]
  const c = new Float64Array(numModels * 5);
  for (let i = 0; i < o.count; i++) {
    const k = o.modelIndex[i]! * 5;
    c[k]!++;
    if (o.ok[i] === 1) c[k + 1]!++;
    const b = m.attained[i]!;
    if (b & SLO_TTFT) c[k + 2]!++;
    if (b & SLO_TPOT) c[k + 3]!++;
    if ((b & SLO_BOTH) === SLO_BOTH) c[k + 4]!++;
  }
  // completed requests' latencies, grouped by model (counting sort by model index)
  const start = new Int32Array(numModels + 1);
  for (let k = 0; k < numModels; k++) start[k + 1] = start[k]! + c[k * 5 + 1]!;
  const totalCompleted = start[numModels]!;
  const fill = start.slice(0, numModels);
  const ttft = new Float64Array(totalCompleted);
  const tpot = new Float64Array(totalCompleted);
  const e2e = new Float64Array(totalCompleted);
  for (let i = 0; i < o.count; i++) {
    if (o.ok[i] !== 1) continue;
    const k = o.modelIndex[i]!;
    const j = fill[k]!++;
    ttft[j] = o.ttftMs[i]!;
    tpot[j] = m.tpotMs[i]!;
    e2e[j] = o.e2eMs[i]!;
  }
  const frac = (k: number, n: number): number => (n === 0 ? NaN : k / n);
  const rate = (k: number): number => (durationS > 0 ? k / durationS : NaN);
  const group = (name: string, slo: SloTarget | null, n: number, done: number, okT: number, okP: number, okB: number, lo: number, hi: number): GroupReport => ({
    name,
    slo,
    count: n,
    completed: done,
    failed: n - done,
    ttftAttainment: frac(okT, n),
    tpotAttainment: frac(okP, n),
    bothAttainment: frac(okB, n),
    goodputRps: rate(okB),
    throughputRps: rate(done),
    ttftMs: summarize(ttft.subarray(lo, hi)),
    tpotMs: summarize(tpot.subarray(lo, hi)),
    e2eMs: summarize(e2e.subarray(lo, hi)),
  });
  const perModel: GroupReport[] = [];
  const tot = [0, 0, 0, 0, 0];
  for (let k = 0; k < numModels; k++) {
    for (let f = 0; f < 5; f++) tot[f]! += c[k * 5 + f]!;
    perModel.push(group(o.modelNames[k]!, slos[k]!, c[k * 5]!, c[k * 5 + 1]!, c[k * 5 + 2]!, c[k * 5 + 3]!, c[k * 5 + 4]!, start[k]!, start[k + 1]!));
  }
  const sameSlo = slos.length > 0 && slos.every((s) => s.ttftMs === slos[0]!.ttftMs && s.tpotMs === slos[0]!.tpotMs);
  const overall = group("overall", sameSlo ? slos[0]! : null, tot[0]!, tot[1]!, tot[2]!, tot[3]!, tot[4]!, 0, totalCompleted);
  return { durationS, overall, perModel };
}

export function defaultDurationS(o: RequestOutcomes): number {
  if (o.count === 0) return 0;
  let first = Infinity;
  let lastArrival = -Infinity;
  let lastFinish = -Infinity;
  for (let i = 0; i < o.count; i++) {
    const a = o.arrivalS[i]!;
    if (a < first) first = a;
    if (a > lastArrival) lastArrival = a;
    const e = o.e2eMs[i]!;
    if (Number.isFinite(e) && a + e / 1000 > lastFinish) lastFinish = a + e / 1000;
  }
  return Math.max(lastArrival, lastFinish) - first;
}

/** Parse `ttft_ms=500,tpot_ms=50` (either key optional; missing = Infinity). */
export function parseSloTarget(text: string): SloTarget {
  let ttftMs = Infinity;
  let tpotMs = Infinity;
  for (const part of text.split(",")) {
    const p = part.trim();
    if (p === "") continue;
    const eq = p.indexOf("=");
    const key = eq < 0 ? p : p.slice(0, eq).trim();
    const v = eq < 0 ? NaN : Number(p.slice(eq + 1).trim());
    if (!(v > 0)) throw new PrismError("PRISM_CLI_USAGE", `SLO '${p}': value must be a positive number of milliseconds`, { slo: text });
    if (key === "ttft_ms" || key === "ttft") ttftMs = v;
    else if (key === "tpot_ms" || key === "tpot") tpotMs = v;
    else throw new PrismError("PRISM_CLI_USAGE", `SLO '${p}': unknown key '${key}' (expected ttft_ms or tpot_ms)`, { slo: text });
  }
  return { ttftMs, tpotMs };
}
