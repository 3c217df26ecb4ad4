/**
 * Multi-model streams from a single-service trace (Azure LLM 2023 code/conv, Mooncake conversation/synthetic),
 * workloads.md §4 W3. The source keeps its real second-scale burstiness and lengths; models come from a
 * popularity law by thinning:
 *
 * - `mix`: each source request goes to model i with probability p_i (a multinomial split). Total rate and the
 *   burst envelope are the source's; bursts are correlated across models.
 * - `slices`: model i replays the source from its own offset (i·span/N, cyclic) and keeps each request with
 *   probability p_i/p_1. Bursts are independent across models; the total is λ_src/p_1 before rate targeting.
 *
 * A target total rate is reached by further uniform thinning (never by inventing requests); above the
 * achievable rate use a time scale < 1 (t' = t·timeScale) to compress the source.
 */
import { TraceBuilder } from "../trace-format.ts";
import { DiscreteSampler, subRng } from "../samplers.ts";
import { readAzureTrace, readMooncakeTrace, type ServiceTrace } from "../sources/single-service.ts";
import { cyclicReplay } from "./arrivals.ts";
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

export const SPLIT_SOURCES = ["azure-conv", "azure-code", "mooncake-conversation", "mooncake-synthetic"] as const;
export type SplitSource = (typeof SPLIT_SOURCES)[number];

export interface SplitOptions extends CommonOptions {
  readonly source: SplitSource;
  readonly numModels: number;
  readonly popularity: PopularitySpec;
  readonly mode: "mix" | "slices";
  /** t' = t·timeScale; default 1. */
  readonly timeScale?: number;
  /** Thin to this total rate; must not exceed what the source gives at this time scale. */
  readonly totalRateRps?: number;
  /** Default: one pass of the source (span·timeScale). Longer durations cycle through the source. */
  readonly durationS?: number;
  readonly lengths?: LengthSpec;
}

export function loadServiceTrace(source: SplitSource, tracesDir?: string): ServiceTrace {
  switch (source) {
    case "azure-conv":
      return readAzureTrace("conv", tracesDir);
    case "azure-code":
      return readAzureTrace("code", tracesDir);
    case "mooncake-conversation":
      return readMooncakeTrace("conversation", tracesDir);
    case "mooncake-synthetic":
      return readMooncakeTrace("synthetic", tracesDir);
  }
}

export function generateSplit(o: SplitOptions): GeneratedTrace {
  requireCount("numModels", o.numModels);
  const src = loadServiceTrace(o.source, o.tracesDir);
  const n = o.numModels;
  const shares = popularityShares(o.popularity, n, o.tracesDir);
  const timeScale = o.timeScale ?? 1;
  requirePositive("timeScale", timeScale);
  const durationS = o.durationS ?? src.spanS * timeScale + 1e-9;
  requirePositive("durationS", durationS);
  const srcRate = (src.numRequests - 1) / src.spanS / timeScale;
  const p1 = shares[0]!;
  const naturalRate = o.mode === "mix" ? srcRate : srcRate / p1;
  let keep = 1;
  if (o.totalRateRps !== undefined) {
    requirePositive("totalRateRps", o.totalRateRps);
    if (o.totalRateRps > naturalRate * 1.000001) {
      throw usage(
        `split ${o.source} (${o.mode}): at most ${naturalRate.toFixed(3)} req/s at timeScale ${timeScale}; ` +
          `for ${o.totalRateRps} req/s use --time-scale ${((timeScale * naturalRate) / o.totalRateRps).toPrecision(3)} or less`,
      );
    }
    keep = o.totalRateRps / naturalRate;
  }
  const names = modelNames(n, o.modelPrefix);
  const lengthSpec = o.lengths ?? { kind: "source" };
  const sampler = lengthSpec.kind === "source" ? null : lengthSamplerFor(lengthSpec, o.tracesDir);
  const limiter = new LengthLimiter(o.limits);
  const pair: LengthPair = { input: 0, output: 0 };
  const b = new TraceBuilder(Math.ceil(naturalRate * keep * durationS * 1.2) + 16, names);
  const add = (i: number, t: number, m: number, lenRng: ReturnType<typeof subRng>): void => {
    if (sampler) sampler.sample(lenRng, pair);
    else {
      pair.input = src.inputTokens[i]!;
      pair.output = src.outputTokens[i]!;
    }
    limiter.apply(pair);
    b.add(t, m, pair.input, pair.output);
  };
  if (o.mode === "mix") {
    const pick = new DiscreteSampler(
      shares.map((_, i) => i),
      shares,
    );
    const rng = subRng(o.seed, 0, 1);
    const lenRng = subRng(o.seed, 0, 2);
    cyclicReplay(src.arrivalS, 0, timeScale, durationS, (i, t) => {
      if (keep < 1 && rng.next() >= keep) return;
      add(i, t, pick.sampleIndex(rng), lenRng);
    });
  } else {
    for (let m = 0; m < n; m++) {
      const rng = subRng(o.seed, m, 1);
      const lenRng = subRng(o.seed, m, 2);
      const p = (shares[m]! / p1) * keep;
      cyclicReplay(src.arrivalS, (m * src.spanS) / n, timeScale, durationS, (i, t) => {
        if (rng.next() < p) add(i, t, m, lenRng);
      });
    }
  }
  const notes = [`source ${src.name}: ${src.numRequests} requests over ${src.spanS.toFixed(0)} s`, `mode ${o.mode}, keep ${keep.toFixed(4)}`];
  if (limiter.numClipped > 0) notes.push(`${limiter.numClipped} requests had lengths clipped by the limits`);
  return {
    trace: b.build(),
    params: {
      generator: "split",
      seed: o.seed,
      source: o.source,
      numModels: n,
      popularity: formatPopularity(o.popularity),
      mode: o.mode,
      timeScale,
      durationS,
      ...(o.totalRateRps !== undefined ? { totalRateRps: o.totalRateRps } : {}),
      lengths: formatLengthSpec(lengthSpec),
      ...(o.limits ? { limits: o.limits } : {}),
    },
    notes,
  };
}
