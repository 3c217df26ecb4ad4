/**
 * Small, exact statistics over typed arrays, shared by `prism bench`, the simulator and the trace tools.
 *
 * Percentiles use the nearest-rank definition on the sorted finite values: p-th percentile =
 * sorted[ceil(p/100 · n) − 1] (p = 0 gives the minimum). Always an observed value, never interpolated, so
 * results are exact and identical across runs and implementations. NaN entries mean "not measured" and are
 * skipped everywhere.
 */

/** Finite values of `values`, sorted ascending, in a new Float64Array. */
export function sortedFinite(values: ArrayLike<number>): Float64Array {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i]!)) n++;
  const out = new Float64Array(n);
  let j = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) out[j++] = v;
  }
  out.sort();
  return out;
}

/** Nearest-rank percentile of already-sorted values; NaN when empty. p in [0, 100]. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${p}`);
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n - 1, Math.max(0, rank - 1))]!;
}

/** Nearest-rank percentiles of unsorted values (sorts a copy once). */
export function percentiles(values: ArrayLike<number>, ps: readonly number[]): number[] {
  const s = sortedFinite(values);
  return ps.map((p) => percentileSorted(s, p));
}

export function mean(values: ArrayLike<number>): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) {
      sum += v;
      n++;
    }
  }
  return n === 0 ? NaN : sum / n;
}

/** Population standard deviation of the finite values. */
export function stddev(values: ArrayLike<number>): number {
  const m = mean(values);
  if (Number.isNaN(m)) return NaN;
  let ss = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) {
      ss += (v - m) * (v - m);
      n++;
    }
  }
  return Math.sqrt(ss / n);
}

/** Coefficient of variation (stddev / mean); NaN for fewer than 2 values or mean 0. */
export function coefficientOfVariation(values: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i]!)) n++;
  if (n < 2) return NaN;
  const m = mean(values);
  return m === 0 ? NaN : stddev(values) / m;
}

/** Summary of a distribution, as reported everywhere (bench, sim, describe). */
export interface Distribution {
  /** Number of finite values summarised. */
  readonly count: number;
  readonly mean: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export function summarize(values: ArrayLike<number>): Distribution {
  return summarizeSorted(sortedFinite(values));
}

export function summarizeSorted(sorted: Float64Array): Distribution {
  const n = sorted.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return {
    count: n,
    mean: n === 0 ? NaN : sum / n,
    min: n === 0 ? NaN : sorted[0]!,
    p50: percentileSorted(sorted, 50),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
    max: n === 0 ? NaN : sorted[n - 1]!,
  };
}

/**
 * Points of the empirical CDF of sorted values for plotting: at most `maxPoints` (x, F(x)) pairs, always
 * including the minimum and the maximum. F is the fraction of values <= x.
 */
export function ecdfPoints(sorted: ArrayLike<number>, maxPoints = 200): Array<[number, number]> {
  const n = sorted.length;
  if (n === 0) return [];
  const out: Array<[number, number]> = [];
  const k = Math.max(2, Math.min(n, maxPoints));
  let lastIdx = -1;
  for (let j = 0; j < k; j++) {
    const idx = Math.round((j * (n - 1)) / (k - 1));
    if (idx === lastIdx) continue;
    lastIdx = idx;
    out.push([sorted[idx]!, (idx + 1) / n]);
  }
  return out;
}
