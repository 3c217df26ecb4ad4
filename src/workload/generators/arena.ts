/**
 * W3 Arena replay (workloads.md §3.3, §4): the 27-model LMSYS Arena trace of the Prism artifact, with Prism's
 * t' = t·timeScale and replication, a model subset, and tiling to a longer duration.
 */
import { TraceBuilder } from "../trace-format.ts";
import { subRng } from "../samplers.ts";
import { readArenaTrace } from "../sources/arena.ts";
import { cyclicReplay } from "./arrivals.ts";
import { type CommonOptions, type GeneratedTrace, modelNames, requireCount, requirePositive, usage } from "./common.ts";
import { type LengthPair, type LengthSpec, LengthLimiter, formatLengthSpec, lengthSamplerFor } from "./lengths.ts";

export interface ArenaOptions extends CommonOptions {
  /** Arena adapter ids to keep, in model order (Prism's 8-model run: 2,14,3,10,5,19,23,24). Default: top `numModels` by count. */
  readonly adapterIds?: readonly number[];
  /** Default 27 (all) when adapterIds is not given. */
  readonly numModels?: number;
  /** t' = t·timeScale (Prism: 0.2–0.5). Mutually exclusive with totalRateRps. */
  readonly timeScale?: number;
  /** Choose timeScale so the kept models' requests arrive at this total rate (before replication). */
  readonly totalRateRps?: number;
  /** Copies of each request at the same arrival time (Prism's `replication`). Default 1. */
  readonly replicate?: number;
  /** Output duration; default one pass of the source. Longer durations tile the source. */
  readonly durationS?: number;
  readonly lengths?: LengthSpec;
}

export function generateArena(o: ArenaOptions): GeneratedTrace {
  const src = readArenaTrace(o.tracesDir);
  const counts = new Map<number, number>();
  for (let i = 0; i < src.numRequests; i++) counts.set(src.modelId[i]!, (counts.get(src.modelId[i]!) ?? 0) + 1);
  let ids: number[];
  if (o.adapterIds) {
    ids = [...o.adapterIds];
    for (const id of ids) if (!counts.has(id)) throw usage(`arena: adapter id ${id} has no requests (ids 0–26 exist)`);
    if (new Set(ids).size !== ids.length) throw usage("arena: adapter ids repeat");
  } else {
    const n = o.numModels ?? counts.size;
    requireCount("numModels", n);
    if (n > counts.size) throw usage(`arena: --num-models ${n} > ${counts.size} models in the trace`);
    ids = [...counts.keys()].sort((a, b) => counts.get(b)! - counts.get(a)! || a - b).slice(0, n);
  }
  const idToModel = new Map(ids.map((id, k) => [id, k]));
  const keptRequests = ids.reduce((s, id) => s + counts.get(id)!, 0);
  const spanS = src.spanS;
  if (o.timeScale !== undefined && o.totalRateRps !== undefined) throw usage("arena: give --time-scale or --rate, not both");
  let timeScale = o.timeScale ?? 1;
  if (o.totalRateRps !== undefined) {
    requirePositive("totalRateRps", o.totalRateRps);
    timeScale = keptRequests / spanS / o.totalRateRps;
  }
  requirePositive("timeScale", timeScale);
  const replicate = o.replicate ?? 1;
  requireCount("replicate", replicate);
  const durationS = o.durationS ?? spanS * timeScale + 1e-9;
  requirePositive("durationS", durationS);
  const names = modelNames(ids.length, o.modelPrefix);
  const lengthSpec = o.lengths ?? { kind: "source" };
  const sampler = lengthSpec.kind === "source" ? null : lengthSamplerFor(lengthSpec, o.tracesDir);
  const limiter = new LengthLimiter(o.limits);
  const rng = subRng(o.seed, 0, 2);
  const pair: LengthPair = { input: 0, output: 0 };
  const b = new TraceBuilder(1024, names);
  cyclicReplay(src.arrivalS, src.arrivalS[0] ?? 0, timeScale, durationS, (i, t) => {
    const m = idToModel.get(src.modelId[i]!);
    if (m === undefined) return;
    for (let r = 0; r < replicate; r++) {
      if (sampler) sampler.sample(rng, pair);
      else {
        pair.input = src.inputTokens[i]!;
        pair.output = src.outputTokens[i]!;
      }
      limiter.apply(pair);
      b.add(t, m, pair.input, pair.output);
    }
  });
  const notes = [`models: ${names.map((nm, k) => `${nm}=arena-${ids[k]}`).join(" ")}`, `timeScale ${timeScale}`];
  if (limiter.numClipped > 0) notes.push(`${limiter.numClipped} requests had lengths clipped by the limits`);
  return {
    trace: b.build(),
    params: {
      generator: "arena",
      seed: o.seed,
      adapterIds: ids,
      timeScale,
      replicate,
      durationS,
      lengths: formatLengthSpec(lengthSpec),
      ...(o.limits ? { limits: o.limits } : {}),
    },
    notes,
  };
}
