/**
 * W2 (workloads.md §4): N models, popularity p_i (Zipf α or a measured table), λ_i = Λ·p_i, arrivals Gamma(λ_i,
 * CV) per model (CV 1 = Poisson), optional diurnal envelope (ServeGen pool total rate), optional Prism on/off
 * phases, lengths from a dataset or fixed ranges.
 */
import { TraceBuilder } from "../trace-format.ts";
import { subRng } from "../samplers.ts";
import { readPoolEnvelope, SERVEGEN_WINDOW_S, type ServegenPool } from "../sources/servegen.ts";
import { envelopeFromRates, isOff, renewalArrivals, type Envelope } from "./arrivals.ts";
import {
  type CommonOptions,
  type GeneratedTrace,
  type PopularitySpec,
  formatPopularity,
  modelNames,
  popularityShares,
  requireCount,
  requirePositive,
  usage,
} from "./common.ts";
import { type LengthPair, type LengthSpec, LengthLimiter, formatLengthSpec, lengthSamplerFor } from "./lengths.ts";

export interface OnOffSpec {
  /** The last `fraction` of models (by rank, least popular) alternate on/off. */
  readonly fraction: number;
  readonly periodS: number;
  /** Fraction of each period a model is off (its requests are dropped, as Prism/S-LoRA do). */
  readonly offFraction: number;
}

export interface SyntheticOptions extends CommonOptions {
  readonly numModels: number;
  readonly durationS: number;
  /** Λ, total offered rate before on/off dropping. */
  readonly totalRateRps: number;
  readonly popularity: PopularitySpec;
  /** Inter-arrival CV (1 = Poisson). */
  readonly cv: number;
  readonly lengths: Exclude<LengthSpec, { kind: "source" }>;
  readonly onOff?: OnOffSpec;
  /** Modulate every model by a ServeGen pool's 10-min total rate, compressed `compression`× from `startS`. */
  readonly envelope?: { readonly pool: ServegenPool; readonly compression: number; readonly startS: number };
}

export function generateSynthetic(o: SyntheticOptions): GeneratedTrace {
  requireCount("numModels", o.numModels);
  requirePositive("durationS", o.durationS);
  requirePositive("totalRateRps", o.totalRateRps);
  requirePositive("cv", o.cv);
  if (o.onOff) {
    if (!(o.onOff.fraction >= 0 && o.onOff.fraction <= 1)) throw usage(`on/off fraction must be in [0, 1], got ${o.onOff.fraction}`);
    if (!(o.onOff.offFraction >= 0 && o.onOff.offFraction < 1)) throw usage(`on/off off-fraction must be in [0, 1), got ${o.onOff.offFraction}`);
    requirePositive("onOff.periodS", o.onOff.periodS);
  }
  const n = o.numModels;
  const shares = popularityShares(o.popularity, n, o.tracesDir);
  const names = modelNames(n, o.modelPrefix);
  const lengths = lengthSamplerFor(o.lengths, o.tracesDir);
  const limiter = new LengthLimiter(o.limits);
  const envelope = o.envelope ? loadEnvelope(o.envelope, o.durationS, o.tracesDir) : undefined;
  const numOnOff = o.onOff ? Math.round(o.onOff.fraction * n) : 0;
  const b = new TraceBuilder(Math.ceil(o.totalRateRps * o.durationS * 1.1) + 16, names);
  const arrivals: number[] = [];
  const pair: LengthPair = { input: 0, output: 0 };
  for (let m = 0; m < n; m++) {
    arrivals.length = 0;
    renewalArrivals(subRng(o.seed, m, 1), o.totalRateRps * shares[m]!, o.cv, o.durationS, arrivals, envelope);
    const lenRng = subRng(o.seed, m, 2);
    const onOffIdx = m - (n - numOnOff);
    const phaseS = o.onOff && onOffIdx >= 0 ? (onOffIdx / Math.max(Math.floor(numOnOff / 2), 2)) * o.onOff.periodS : 0;
    for (const t of arrivals) {
      if (o.onOff && onOffIdx >= 0 && isOff(t, o.onOff.periodS, o.onOff.offFraction, phaseS)) continue;
      lengths.sample(lenRng, pair);
      limiter.apply(pair);
      b.add(t, m, pair.input, pair.output);
    }
  }
  const trace = b.build();
  const notes = [`${n} models, shares ${Array.from(shares, (s) => s.toFixed(4)).join(" ")}`];
  if (numOnOff > 0) notes.push(`on/off models: ${names.slice(n - numOnOff).join(" ")}`);
  if (limiter.numClipped > 0) notes.push(`${limiter.numClipped} requests had lengths clipped by the limits`);
  return {
    trace,
    params: {
      generator: "synthetic",
      seed: o.seed,
      numModels: n,
      durationS: o.durationS,
      totalRateRps: o.totalRateRps,
      popularity: formatPopularity(o.popularity),
      cv: o.cv,
      lengths: formatLengthSpec(o.lengths),
      ...(o.onOff ? { onOff: o.onOff } : {}),
      ...(o.envelope ? { envelope: o.envelope } : {}),
      ...(o.limits ? { limits: o.limits } : {}),
    },
    notes,
  };
}

function loadEnvelope(e: NonNullable<SyntheticOptions["envelope"]>, durationS: number, tracesDir?: string): Envelope {
  requirePositive("envelope compression", e.compression);
  const pool = readPoolEnvelope(e.pool, tracesDir);
  const w0 = Math.floor(e.startS / SERVEGEN_WINDOW_S);
  const segmentS = SERVEGEN_WINDOW_S / e.compression;
  const numSeg = Math.ceil(durationS / segmentS);
  if (w0 + numSeg > pool.totalRateRps.length) {
    throw usage(`envelope: ${numSeg} windows from window ${w0} exceed pool ${e.pool}'s ${pool.totalRateRps.length}; raise the compression or lower the duration`);
  }
  return envelopeFromRates(pool.totalRateRps.subarray(w0, w0 + numSeg), segmentS);
}
