/**
 * `prism trace describe`: per-model rate, burstiness (CV of inter-arrival times, peak/mean requests per bin),
 * idle fraction (bins without requests) and token statistics, plus the popularity skew (fitted Zipf α).
 */
import { fitZipfAlpha } from "./samplers.ts";
import type { Trace } from "./trace-format.ts";

export interface TokenStats {
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export interface StreamDescription {
  readonly name: string;
  readonly numRequests: number;
  /** Fraction of all requests. */
  readonly share: number;
  readonly rateRps: number;
  /** CV of inter-arrival times (1 for Poisson); NaN with fewer than 3 requests. */
  readonly iatCv: number;
  /** Busiest bin's count / mean count per bin. */
  readonly peakToMean: number;
  /** Fraction of bins with no request. */
  readonly idleFraction: number;
  readonly inputTokens: TokenStats;
  readonly outputTokens: TokenStats;
}

export interface TraceDescription {
  readonly numRequests: number;
  readonly numModels: number;
  readonly durationS: number;
  readonly binS: number;
  /** ML fit of p_i ∝ i^−α to per-model counts; NaN with fewer than 2 active models. */
  readonly zipfAlpha: number;
  readonly top1Share: number;
  readonly top5Share: number;
  readonly overall: StreamDescription;
  /** Sorted by request count, descending. */
  readonly perModel: readonly StreamDescription[];
}

export interface DescribeOptions {
  /** Default: last arrival (the trace starts at 0). */
  readonly durationS?: number;
  /** Bin for peak/mean and idle fraction. Default 60 s, shortened so there are at least 20 bins. */
  readonly binS?: number;
}

export function describeTrace(trace: Trace, opts: DescribeOptions = {}): TraceDescription {
  const n = trace.numRequests;
  const last = n > 0 ? trace.arrivalS[n - 1]! : 0;
  const durationS = opts.durationS ?? (last > 0 ? last : 1);
  const binS = opts.binS ?? Math.min(60, durationS / 20);
  const numBins = Math.max(1, Math.ceil(durationS / binS));
  const numModels = trace.modelNames.length;
  const counts = new Int32Array(numModels);
  for (let i = 0; i < n; i++) counts[trace.modelIndex[i]!]!++;
  const all = new Uint8Array(n).fill(1);
  const overall = describeStream("overall", trace, all, n, durationS, binS, numBins);
  const perModel: StreamDescription[] = [];
  for (let m = 0; m < numModels; m++) {
    const sel = new Uint8Array(n);
    for (let i = 0; i < n; i++) if (trace.modelIndex[i] === m) sel[i] = 1;
    perModel.push(describeStream(trace.modelNames[m]!, trace, sel, n, durationS, binS, numBins));
  }
  perModel.sort((a, b) => b.numRequests - a.numRequests || (a.name < b.name ? -1 : 1));
  const shares = perModel.map((d) => d.share);
  return {
    numRequests: n,
    numModels,
    durationS,
    binS,
    zipfAlpha: fitZipfAlpha(counts),
    top1Share: shares[0] ?? 0,
    top5Share: shares.slice(0, 5).reduce((s, x) => s + x, 0),
    overall,
    perModel,
  };
}

function describeStream(name: string, t: Trace, sel: Uint8Array, total: number, durationS: number, binS: number, numBins: number): StreamDescription {
  const bins = new Int32Array(numBins);
  const inputs: number[] = [];
  const outputs: number[] = [];
  let prev = NaN;
  let gapSum = 0;
  let gapSq = 0;
  let gaps = 0;
  for (let i = 0; i < t.numRequests; i++) {
    if (!sel[i]) continue;
    const a = t.arrivalS[i]!;
    bins[Math.min(numBins - 1, Math.floor(a / binS))]!++;
    inputs.push(t.inputTokens[i]!);
    outputs.push(t.outputTokens[i]!);
    if (!Number.isNaN(prev)) {
      const g = a - prev;
      gapSum += g;
      gapSq += g * g;
      gaps++;
    }
    prev = a;
  }
  const count = inputs.length;
  let peak = 0;
  let idle = 0;
  for (let b = 0; b < numBins; b++) {
    if (bins[b]! > peak) peak = bins[b]!;
    if (bins[b] === 0) idle++;
  }
  const gapMean = gapSum / gaps;
  const gapVar = gapSq / gaps - gapMean * gapMean;
  return {
    name,
    numRequests: count,
    share: total > 0 ? count / total : 0,
    rateRps: count / durationS,
    iatCv: gaps >= 2 && gapMean > 0 ? Math.sqrt(Math.max(0, gapVar)) / gapMean : NaN,
    peakToMean: count > 0 ? peak / (count / numBins) : NaN,
    idleFraction: idle / numBins,
    inputTokens: tokenStats(inputs),
    outputTokens: tokenStats(outputs),
  };
}

function tokenStats(values: number[]): TokenStats {
  const s = Float64Array.from(values).sort();
  const n = s.length;
  const q = (p: number): number => (n === 0 ? NaN : s[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i]!;
  return { mean: n ? sum / n : NaN, p50: q(50), p90: q(90), p99: q(99), max: n ? s[n - 1]! : NaN };
}

/** Fixed-width text table of a description (what `prism trace describe` prints). */
export function formatDescription(d: TraceDescription, maxModels = 50): string {
  const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : "-");
  const lines: string[] = [];
  lines.push(
    `${d.numRequests} requests, ${d.numModels} models, ${f(d.durationS, 1)} s, ${f(d.overall.rateRps, 3)} req/s; ` +
      `popularity: Zipf alpha ${f(d.zipfAlpha, 3)}, top-1 ${f(d.top1Share * 100, 1)}%, top-5 ${f(d.top5Share * 100, 1)}%; bin ${f(d.binS, 1)} s`,
  );
  const header = ["model", "reqs", "share%", "rate/s", "iat_cv", "peak/mean", "idle%", "in_mean", "in_p50", "in_p99", "out_mean", "out_p50", "out_p99"];
  const rows: string[][] = [header];
  const row = (s: StreamDescription): string[] => [
    s.name,
    String(s.numRequests),
    f(s.share * 100, 1),
    f(s.rateRps, 3),
    f(s.iatCv),
    f(s.peakToMean),
    f(s.idleFraction * 100, 1),
    f(s.inputTokens.mean, 0),
    f(s.inputTokens.p50, 0),
    f(s.inputTokens.p99, 0),
    f(s.outputTokens.mean, 0),
    f(s.outputTokens.p50, 0),
    f(s.outputTokens.p99, 0),
  ];
  rows.push(row(d.overall));
  for (const m of d.perModel.slice(0, maxModels)) rows.push(row(m));
  const widths = header.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) lines.push(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
  if (d.perModel.length > maxModels) lines.push(`... ${d.perModel.length - maxModels} more models`);
  return lines.join("\n");
}
