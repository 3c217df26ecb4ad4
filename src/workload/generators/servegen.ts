/**
 * W1 (workloads.md §4): ServeGen clients act as models. Real, time-varying, bursty on/off per-model traffic.
 *
 * 1. Rank the pool's clients by mean rate over the replayed span; take the top N, or the N whose rates best
 *    follow p_i ∝ i^−α (greedy, in log distance, each next client slower than the previous).
 * 2. Per-window rate λ_m(w) = s·rate_c(w), s = Λ_target / Σ_m mean rate (or a given rate scale).
 * 3. Compression k maps source window w onto [(w·600 − start)/k, +600/k), keeping the rates: the load level
 *    stays, the envelope is compressed (prefer k ≤ 60).
 * 4. Within a window, gaps follow the window's fitted Gamma/Weibull, rescaled to the window (arrivals.ts);
 *    idle windows send nothing.
 * 5. Lengths from the client's 6 h PMFs at the request's source time; clients or windows without PMFs borrow
 *    the rate-weighted mixture of the pool's top `donors` clients that have PMFs (nearest window where the
 *    donor has none). Upstream's loader silently drops clients without length data; they carry 29–57% of
 *    the language pools' rate, so we keep them.
 */
import { TraceBuilder } from "../trace-format.ts";
import type { Rng } from "../../core/rng.ts";
import { DiscreteSampler, fitZipfAlpha, subRng } from "../samplers.ts";
import {
  type ClientLengthWindow,
  type ClientTrace,
  type ServegenPool,
  SERVEGEN_LENGTH_WINDOW_S,
  SERVEGEN_WINDOW_S,
  listServegenClients,
  meanClientRate,
  readServegenClient,
  readServegenLengths,
} from "../sources/servegen.ts";
import { windowArrivals } from "./arrivals.ts";
import { type CommonOptions, type GeneratedTrace, modelNames, requireCount, requirePositive, usage } from "./common.ts";
import { type LengthPair, type LengthSpec, LengthLimiter, formatLengthSpec, lengthSamplerFor } from "./lengths.ts";

export interface ServegenOptions extends CommonOptions {
  readonly pool: ServegenPool;
  readonly numModels: number;
  /** Output duration, seconds. */
  readonly durationS: number;
  /** Pick clients matching Zipf(α) instead of the top N. */
  readonly selectAlpha?: number;
  /** Source time where the replay starts (seconds from the pool's origin). Default 0. */
  readonly startS?: number;
  /** Source seconds per output second (k). Default 1. */
  readonly compression?: number;
  /** Λ target: total mean rate of the chosen models over the span. Mutually exclusive with rateScale. */
  readonly totalRateRps?: number;
  /** s: multiply every client rate. Default 1 when totalRateRps is absent. */
  readonly rateScale?: number;
  /** Default `source` (client PMFs). */
  readonly lengths?: LengthSpec;
  /** Clients lending their PMFs to clients without any. Default 8. */
  readonly donors?: number;
}

interface RankedClient {
  readonly trace: ClientTrace;
  readonly meanRateRps: number;
}

const clientCache = new Map<string, ClientTrace[]>();

function loadPool(pool: ServegenPool, tracesDir?: string): ClientTrace[] {
  const key = `${tracesDir ?? ""}|${pool}`;
  let c = clientCache.get(key);
  if (!c) {
    c = listServegenClients(pool, tracesDir).map((id) => readServegenClient(pool, id, tracesDir));
    clientCache.set(key, c);
  }
  return c;
}

/**
 * Target-α choice among clients sorted by rate (descending): for each anchor client a (the model of rank 1),
 * greedily pick for rank i the slower client closest in log rate to rate_a·i^−α; keep the anchor whose picks
 * have the smallest squared log error. Returns indices into `ratesDesc`.
 */
export function selectByAlpha(ratesDesc: readonly number[], n: number, alpha: number): number[] {
  let best: number[] = [];
  let bestErr = Infinity;
  for (let a = 0; a + n <= ratesDesc.length; a++) {
    const chosen = [a];
    let err = 0;
    let prev = a;
    for (let i = 2; i <= n; i++) {
      const target = ratesDesc[a]! * Math.pow(i, -alpha);
      // leave enough slower clients for the remaining ranks
      const last = ratesDesc.length - (n - i) - 1;
      let pick = prev + 1;
      let pickD = Math.abs(Math.log(ratesDesc[pick]! / target));
      for (let j = prev + 2; j <= last; j++) {
        const d = Math.abs(Math.log(ratesDesc[j]! / target));
        if (d < pickD) {
          pickD = d;
          pick = j;
        }
        if (ratesDesc[j]! < target) break;
      }
      chosen.push(pick);
      err += pickD * pickD;
      prev = pick;
    }
    if (err < bestErr) {
      bestErr = err;
      best = chosen;
    }
  }
  return best;
}

export function generateServegen(o: ServegenOptions): GeneratedTrace {
  requireCount("numModels", o.numModels);
  requirePositive("durationS", o.durationS);
  const k = o.compression ?? 1;
  requirePositive("compression", k);
  const startS = o.startS ?? 0;
  if (!(startS >= 0)) throw usage(`startS must be >= 0, got ${startS}`);
  if (o.totalRateRps !== undefined && o.rateScale !== undefined) throw usage("servegen: give --rate or --rate-scale, not both");
  const clients = loadPool(o.pool, o.tracesDir);
  const numWindows = clients[0]?.rateRps.length ?? 0;
  const w0 = Math.floor(startS / SERVEGEN_WINDOW_S);
  const w1 = Math.ceil((startS + o.durationS * k) / SERVEGEN_WINDOW_S);
  if (w1 > numWindows) {
    throw usage(
      `servegen ${o.pool}: span ${startS}+${o.durationS}·${k} s needs ${w1} windows but the pool has ${numWindows} ` +
        `(${(numWindows * SERVEGEN_WINDOW_S) / 3600} h); lower --duration, raise --compression or move --start`,
    );
  }
  const ranked: RankedClient[] = clients
    .map((t) => ({ trace: t, meanRateRps: meanClientRate(t, w0, w1) }))
    .filter((c) => c.meanRateRps > 0)
    .sort((a, b) => b.meanRateRps - a.meanRateRps || a.trace.clientId - b.trace.clientId);
  if (ranked.length < o.numModels) {
    throw usage(`servegen ${o.pool}: only ${ranked.length} clients are active in the span, fewer than --num-models ${o.numModels}`);
  }
  const idx = o.selectAlpha === undefined ? ranked.map((_, i) => i).slice(0, o.numModels) : selectByAlpha(ranked.map((c) => c.meanRateRps), o.numModels, o.selectAlpha);
  const chosen = idx.map((i) => ranked[i]!);
  const sumMean = chosen.reduce((s, c) => s + c.meanRateRps, 0);
  let scale = o.rateScale ?? 1;
  if (o.totalRateRps !== undefined) {
    requirePositive("totalRateRps", o.totalRateRps);
    scale = o.totalRateRps / sumMean;
  }
  requirePositive("rateScale", scale);

  const n = chosen.length;
  const names = modelNames(n, o.modelPrefix);
  const lengthSpec = o.lengths ?? { kind: "source" };
  const fixedSampler = lengthSpec.kind === "source" ? null : lengthSamplerFor(lengthSpec, o.tracesDir);
  const pmfs = lengthSpec.kind === "source" ? new ServegenLengths(o.pool, chosen, ranked, o.donors ?? 8, o.tracesDir) : null;
  const limiter = new LengthLimiter(o.limits);
  const windowOutS = SERVEGEN_WINDOW_S / k;
  const b = new TraceBuilder(Math.ceil(sumMean * scale * o.durationS * 1.2) + 16, names);
  const arrivals: number[] = [];
  const gaps: number[] = [];
  const pair: LengthPair = { input: 0, output: 0 };
  for (let m = 0; m < n; m++) {
    const c = chosen[m]!.trace;
    const rng = subRng(o.seed, m, 1);
    const lenRng = subRng(o.seed, m, 2);
    arrivals.length = 0;
    for (let w = w0; w < w1; w++) {
      const outStart = (w * SERVEGEN_WINDOW_S - startS) / k;
      windowArrivals(rng, c.patterns[w]!, scale * c.rateRps[w]!, outStart, windowOutS, gaps, arrivals);
    }
    for (const t of arrivals) {
      if (t < 0 || t >= o.durationS) continue;
      if (pmfs) pmfs.sample(lenRng, m, startS + t * k, pair);
      else fixedSampler!.sample(lenRng, pair);
      limiter.apply(pair);
      b.add(t, m, pair.input, pair.output);
    }
  }
  const trace = b.build();
  const notes = [
    `pool ${o.pool}, windows ${w0}..${w1 - 1}, compression ${k}, rate scale ${scale.toPrecision(4)}`,
    `models: ${names.map((nm, i) => `${nm}=client-${chosen[i]!.trace.clientId}(${(chosen[i]!.meanRateRps * scale).toPrecision(3)} rps${chosen[i]!.trace.hasDataset ? "" : ", borrowed lengths"})`).join(" ")}`,
    `fitted Zipf alpha of chosen mean rates: ${fitZipfAlpha(chosen.map((c) => c.meanRateRps)).toFixed(3)}`,
  ];
  if (pmfs && pmfs.numBorrowed > 0) notes.push(`${pmfs.numBorrowed} requests drew lengths from donor clients`);
  if (limiter.numClipped > 0) notes.push(`${limiter.numClipped} requests had lengths clipped by the limits`);
  return {
    trace,
    params: {
      generator: "servegen",
      seed: o.seed,
      pool: o.pool,
      numModels: n,
      clients: chosen.map((c) => c.trace.clientId),
      ...(o.selectAlpha !== undefined ? { selectAlpha: o.selectAlpha } : {}),
      startS,
      durationS: o.durationS,
      compression: k,
      rateScale: scale,
      lengths: formatLengthSpec(lengthSpec),
      ...(pmfs ? { donors: pmfs.donorIds } : {}),
      ...(o.limits ? { limits: o.limits } : {}),
    },
    notes,
  };
}

/** Samples lengths from client PMFs, borrowing from donors where a client or window has none. */
class ServegenLengths {
  numBorrowed = 0;
  readonly donorIds: number[];
  private readonly own: Array<Map<number, ClientLengthWindow> | null>;
  private donors: Array<{ trace: ClientTrace; windows: Map<number, ClientLengthWindow> }> | null = null;
  private readonly mixtures = new Map<number, { pick: DiscreteSampler; windows: ClientLengthWindow[] }>();
  private readonly rankedWithData: RankedClient[];

  constructor(
    private readonly pool: ServegenPool,
    chosen: readonly RankedClient[],
    ranked: readonly RankedClient[],
    numDonors: number,
    private readonly tracesDir: string | undefined,
  ) {
    this.own = chosen.map((c) => (c.trace.hasDataset ? readServegenLengths(pool, c.trace.clientId, tracesDir) : null));
    this.rankedWithData = ranked.filter((c) => c.trace.hasDataset).slice(0, numDonors);
    this.donorIds = this.rankedWithData.map((c) => c.trace.clientId);
    if (this.rankedWithData.length === 0) throw usage(`servegen ${pool}: no client in the span has length data`);
  }

  sample(rng: Rng, model: number, sourceTimeS: number, out: LengthPair): void {
    const key = Math.floor(sourceTimeS / SERVEGEN_LENGTH_WINDOW_S) * SERVEGEN_LENGTH_WINDOW_S;
    const w = this.own[model]?.get(key);
    if (w) return draw(rng, w, out);
    this.numBorrowed++;
    let mix = this.mixtures.get(key);
    if (!mix) {
      mix = this.buildMixture(key);
      this.mixtures.set(key, mix);
    }
    draw(rng, mix.windows[mix.pick.sampleIndex(rng)]!, out);
  }

  private buildMixture(key: number): { pick: DiscreteSampler; windows: ClientLengthWindow[] } {
    if (!this.donors) {
      this.donors = this.rankedWithData.map((c) => ({ trace: c.trace, windows: readServegenLengths(this.pool, c.trace.clientId, this.tracesDir) }));
    }
    const windows: ClientLengthWindow[] = [];
    const weights: number[] = [];
    const w0 = key / SERVEGEN_WINDOW_S;
    const w1 = (key + SERVEGEN_LENGTH_WINDOW_S) / SERVEGEN_WINDOW_S;
    for (const d of this.donors) {
      const lw = d.windows.get(key) ?? nearest(d.windows, key);
      if (!lw) continue;
      windows.push(lw);
      weights.push(meanClientRate(d.trace, w0, w1));
    }
    if (windows.length === 0) throw usage(`servegen ${this.pool}: donors have no length data`);
    if (!weights.some((x) => x > 0)) weights.fill(1);
    return { pick: new DiscreteSampler(weights.map((_, i) => i), weights), windows };
  }
}

function nearest(m: Map<number, ClientLengthWindow>, key: number): ClientLengthWindow | undefined {
  let best: ClientLengthWindow | undefined;
  let bestD = Infinity;
  for (const [k, v] of m) {
    const d = Math.abs(k - key);
    if (d < bestD || (d === bestD && best !== undefined && k < best.windowStartS)) {
      bestD = d;
      best = v;
    }
  }
  return best;
}

function draw(rng: Rng, w: ClientLengthWindow, out: LengthPair): void {
  let input = 0;
  for (const p of w.input.parts) input += p.sample(rng);
  let output = 0;
  for (const p of w.output.parts) output += p.sample(rng);
  out.input = Math.round(input);
  out.output = Math.round(output);
}
