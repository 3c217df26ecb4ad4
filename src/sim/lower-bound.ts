/**
 * Fluid lower bound on the devices a workload needs: what a prescient scheduler with perfect
 * batching and perfectly poolable memory would need, so no policy can use fewer (up to the
 * approximations named below).
 *
 * Memory term. A model must hold its weights from the start of its load until its last request in
 * service finishes: per request at least the interval [a, a + L + life] long (L = activation time,
 * life = the request's prefill + decode time alone on a device); overlapping intervals of one model
 * merge. Requests hold (input + output/2) tokens of KV, on average, for `life`. Memory demand(t) =
 * Σ weights of models holding + Σ KV of requests in service; the term is the peak over windows of
 * `memoryWindowS` (default 1 s) of its time average, divided by the usable device memory.
 * (Averaging over a window only lowers the value, so every window length gives a bound; shorter is
 * tighter. The interval's position is taken at arrival, a prescient scheduler could shift it by up
 * to L; with a 1 s window that matters little.)
 *
 * Compute term. Device time of a request = tp × Σ over its tokens of max(FLOP time, KV-read time):
 * perfect batching (weights streamed for free), no step overhead. Peak over windows of
 * `computeWindowS` (default 10 s) of the device time of the requests arriving in it / the window.
 *
 * Bound = ceil(max(memory term, compute term)), and at least the largest TP degree.
 */
import type { Trace } from "../workload/trace-format.ts";
import type { CostModel, ModelCost } from "./cost-model.ts";
import { kvBytesPerTokenPerLayer, weightBytes } from "./catalog.ts";

export interface LowerBoundResult {
  /** ceil(max(computeDevices, memoryDevices, max tp)). */
  readonly devices: number;
  /** Peak over windows of compute demand, in devices (fractional). */
  readonly computeDevices: number;
  /** Peak over windows of memory demand, in devices (fractional). */
  readonly memoryDevices: number;
  readonly memoryWindowS: number;
  readonly computeWindowS: number;
  /** Start of the window that set the memory peak (s). */
  readonly peakMemoryAtS: number;
  /** Time averages over the whole trace, in devices. */
  readonly meanComputeDevices: number;
  readonly meanMemoryDevices: number;
}

export interface LowerBoundOptions {
  readonly memoryWindowS?: number;
  readonly computeWindowS?: number;
  /** Fraction of device memory no KV may use (kvcached headroom, default 0.05). */
  readonly headroomFraction?: number;
}

/**
 * @param costs  ModelCost for each trace model, indexed like trace.modelNames.
 */
export function fluidLowerBound(trace: Trace, costs: readonly ModelCost[], costModel: CostModel, opts: LowerBoundOptions = {}): LowerBoundResult {
  const memW = opts.memoryWindowS ?? 1;
  const cmpW = opts.computeWindowS ?? 10;
  const usableBytes = costModel.device.memBytes * (1 - (opts.headroomFraction ?? 0.05));
  const numModels = trace.modelNames.length;
  const n = trace.numRequests;
  let maxTp = 1;
  const wBytes = new Float64Array(numModels);
  const kvPerToken = new Float64Array(numModels);
  for (let m = 0; m < numModels; m++) {
    const c = costs[m]!;
    maxTp = Math.max(maxTp, c.tp);
    wBytes[m] = weightBytes(c.arch);
    kvPerToken[m] = kvBytesPerTokenPerLayer(c.arch) * c.arch.numLayers;
  }
  // ---- memory: rate-change events (time s, Δ bytes), integrated into windows ----
  // per model, the current merged holding interval
  const holdFrom = new Float64Array(numModels).fill(Number.NaN);
  const holdTo = new Float64Array(numModels).fill(Number.NaN);
  const evT: number[] = [];
  const evD: number[] = [];
  const hold = (m: number, from: number, to: number): void => {
    evT.push(from, to);
    evD.push(wBytes[m]!, -wBytes[m]!);
  };
  let endS = 0;
  let sumCompute = 0;
  const cmpBins: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = trace.arrivalS[i]!;
    const m = trace.modelIndex[i]!;
    const c = costs[m]!;
    const inTok = Math.max(1, trace.inputTokens[i]!);
    const outTok = trace.outputTokens[i]!;
    const lifeS = (costModel.prefillMs(c.modelId, inTok) + Math.max(0, outTok - 1) * costModel.decodeMs(c.modelId, 1, inTok + outTok / 2)) / 1000;
    const to = a + c.loadMs / 1000 + lifeS;
    if (!Number.isNaN(holdTo[m]!) && a <= holdTo[m]!) {
      if (to > holdTo[m]!) holdTo[m] = to;
    } else {
      if (!Number.isNaN(holdFrom[m]!)) hold(m, holdFrom[m]!, holdTo[m]!);
      holdFrom[m] = a;
      holdTo[m] = to;
    }
    const kv = (inTok + outTok / 2) * kvPerToken[m]!;
    evT.push(a, a + lifeS);
    evD.push(kv, -kv);
    if (to > endS) endS = to;
    const dev = c.tp * requestDeviceMs(c, inTok, outTok);
    sumCompute += dev;
    const b = Math.floor(a / cmpW);
    while (cmpBins.length <= b) cmpBins.push(0);
    cmpBins[b]! += dev;
  }
  for (let m = 0; m < numModels; m++) if (!Number.isNaN(holdFrom[m]!)) hold(m, holdFrom[m]!, holdTo[m]!);
  const order = Int32Array.from(evT.keys()).sort((x, y) => evT[x]! - evT[y]! || x - y);
  const numBins = Math.max(1, Math.ceil(endS / memW));
  const memBins = new Float64Array(numBins); // byte·seconds per window
  let level = 0;
  let t = 0;
  const integrate = (from: number, to: number, bytes: number): void => {
    if (bytes <= 0 || to <= from) return;
    let b = Math.floor(from / memW);
    let s = from;
    while (s < to && b < numBins) {
      const e = Math.min(to, (b + 1) * memW);
      memBins[b]! += bytes * (e - s);
      s = e;
      b++;
    }
  };
  for (let k = 0; k < order.length; k++) {
    const j = order[k]!;
    const te = evT[j]!;
    integrate(t, te, level);
    t = te;
    level += evD[j]!;
  }
  let peakMem = 0;
  let peakAt = 0;
  let memSum = 0;
  for (let b = 0; b < numBins; b++) {
    const dev = memBins[b]! / memW / usableBytes;
    memSum += memBins[b]!;
    if (dev > peakMem) {
      peakMem = dev;
      peakAt = b * memW;
    }
  }
  let peakCompute = 0;
  for (const v of cmpBins) peakCompute = Math.max(peakCompute, v / (cmpW * 1000));
  const spanS = Math.max(memW, endS);
  return {
    devices: Math.max(maxTp, Math.ceil(Math.max(peakCompute, peakMem) - 1e-9)),
    computeDevices: peakCompute,
    memoryDevices: peakMem,
    memoryWindowS: memW,
    computeWindowS: cmpW,
    peakMemoryAtS: peakAt,
    meanComputeDevices: sumCompute / (spanS * 1000),
    meanMemoryDevices: memSum / spanS / usableBytes,
  };
}

/** Per-rank device time of one request under perfect batching: Σ tokens max(FLOP ms, KV-read ms). */
export function requestDeviceMs(c: ModelCost, inputTokens: number, outputTokens: number): number {
  // prefill: compute-bound GEMMs + causal attention over the prompt
  const prefillFlops = inputTokens * c.msPerTokenFlops + ((inputTokens * (inputTokens + 1)) / 2) * c.msPerAttnPair;
  const prefillKv = inputTokens * c.msPerKvToken;
  let ms = Math.max(prefillFlops, prefillKv);
  // decode: each of outputTokens−1 steps attends over a growing context (sum in closed form)
  const steps = Math.max(0, outputTokens - 1);
  if (steps > 0) {
    const ctxSum = steps * inputTokens + (steps * (steps + 1)) / 2;
    const flops = steps * c.msPerTokenFlops + ctxSum * c.msPerAttnPair;
    const kv = ctxSum * c.msPerKvToken;
    ms += Math.max(flops, kv);
  }
  return ms;
}
