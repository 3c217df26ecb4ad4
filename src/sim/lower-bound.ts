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
 * Bound = ceil(max(memory term, compute term)), and at least the largest TP degree: the devices
 * needed to serve EVERY request (`devicesAllServed`).
 *
 * Attainment target below 1 (`targetAttainment`, e.g. 0.99): a scheduler may miss up to
 * floor((1 − target)·N) requests, and a missed request might as well not be served at all, so
 * the bound is the fewest X devices for which no more drops than that are FORCED. Drops forced at
 * X, a lower bound: per window over capacity, the fewest drops that could bring it under — a
 * model's weights leave a window only if every request of its holding interval there is dropped
 * (an interval of more requests than the budget never leaves); otherwise only KV goes — counted
 * fractionally (best bytes per drop first), and summed over windows that share nothing droppable
 * (greedy, largest need first), so no drop is counted twice. Same for the compute windows (each
 * request in exactly one). Without this relaxation a single 1-second burst of a few cold models,
 * which a 99% scheduler may simply miss, would set the bound.
 *
 * Not modelled (each makes the bound lower, never higher, than a real scheduler's need): load
 * intervals placed at arrival (a prescient scheduler could load up to L earlier, which shifts but
 * does not shorten them), perfect packing of weights across devices, no step overhead.
 */
import type { Trace } from "../workload/trace-format.ts";
import type { CostModel, ModelCost } from "./cost-model.ts";
import { kvBytesPerTokenPerLayer, weightBytes } from "./catalog.ts";

export interface LowerBoundResult {
  /** The bound for `targetAttainment` (= devicesAllServed when it is 1). */
  readonly devices: number;
  /** ceil(max(computeDevices, memoryDevices, max tp)): every request served. */
  readonly devicesAllServed: number;
  readonly targetAttainment: number;
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
  /** Attainment the devices must reach (default 1: every request served). */
  readonly targetAttainment?: number;
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
  // per request, for the attainment relaxation
  const rLifeTo = new Float64Array(n);
  const rKv = new Float64Array(n);
  const rDev = new Float64Array(n);
  // merged holding intervals ("units"): per request its unit; per unit model, span, request count
  const rUnit = new Int32Array(n);
  const curUnit = new Int32Array(numModels).fill(-1);
  const unitModel: number[] = [];
  const unitFrom: number[] = [];
  const unitTo: number[] = [];
  const unitCount: number[] = [];
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
      curUnit[m] = unitModel.length;
      unitModel.push(m);
      unitFrom.push(a);
      unitTo.push(to);
      unitCount.push(0);
    }
    const u = curUnit[m]!;
    rUnit[i] = u;
    unitCount[u]! += 1;
    if (to > unitTo[u]!) unitTo[u] = to;
    const kv = (inTok + outTok / 2) * kvPerToken[m]!;
    rLifeTo[i] = a + lifeS;
    rKv[i] = kv;
    evT.push(a, a + lifeS);
    evD.push(kv, -kv);
    if (to > endS) endS = to;
    const dev = c.tp * requestDeviceMs(c, inTok, outTok);
    sumCompute += dev;
    rDev[i] = dev;
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
  const allServed = Math.max(maxTp, Math.ceil(Math.max(peakCompute, peakMem) - 1e-9));
  const target = opts.targetAttainment ?? 1;
  let devices = allServed;
  const budget = Math.floor((1 - target) * n + 1e-9);
  if (budget > 0) {
    const units = { model: unitModel, from: unitFrom, to: unitTo, count: unitCount, ofRequest: rUnit };
    const forced = forcedDrops({ trace, memW, cmpW, memBins, cmpBins, usableBytes, wBytes, rLifeTo, rKv, rDev, units, budget });
    for (let x = maxTp; x < allServed; x++) {
      if (forced(x) <= budget) {
        devices = x;
        break;
      }
    }
  }
  return {
    devices,
    devicesAllServed: allServed,
    targetAttainment: target,
    computeDevices: peakCompute,
    memoryDevices: peakMem,
    memoryWindowS: memW,
    computeWindowS: cmpW,
    peakMemoryAtS: peakAt,
    meanComputeDevices: sumCompute / (spanS * 1000),
    meanMemoryDevices: memSum / spanS / usableBytes,
  };
}

interface DropInputs {
  readonly trace: Trace;
  readonly memW: number;
  readonly cmpW: number;
  readonly memBins: Float64Array;
  readonly cmpBins: readonly number[];
  readonly usableBytes: number;
  readonly wBytes: Float64Array;
  readonly rLifeTo: Float64Array;
  readonly rKv: Float64Array;
  readonly rDev: Float64Array;
  readonly units: {
    readonly model: readonly number[];
    readonly from: readonly number[];
    readonly to: readonly number[];
    readonly count: readonly number[];
    readonly ofRequest: Int32Array;
  };
  /** Drops allowed; a unit of more requests can never be dropped whole. */
  readonly budget: number;
}

/**
 * x devices → a lower bound on the requests that must go unserved (see the file comment).
 * What can be dropped, per memory window: a whole holding interval ("unit") of at most `budget`
 * requests (cost: its requests; frees its weights and its requests' KV in the window), or, for
 * the requests of larger units, one request's KV (cost 1). A window's need is the fractional
 * min-cost cover of its excess (best value per drop first), a lower bound on its integer need;
 * windows are summed only if they share no droppable item.
 */
function forcedDrops(d: DropInputs): (x: number) => number {
  const { trace, memW, cmpW, memBins, units, budget } = d;
  const n = trace.numRequests;
  const numBins = memBins.length;
  const numUnits = units.model.length;
  const overlap = (from: number, to: number, b: number): number => Math.max(0, Math.min(to, (b + 1) * memW) - Math.max(from, b * memW));
  const bin = (t: number): number => Math.min(numBins - 1, Math.floor(t / memW));
  // items per window: key (unit u, or numUnits + request), value (byte·s), cost (drops)
  const items: { key: number; value: number; cost: number }[][] = Array.from({ length: numBins }, () => []);
  const unitItem = new Map<number, { key: number; value: number; cost: number }>(); // (u, b) → item
  for (let u = 0; u < numUnits; u++) {
    if (units.count[u]! > budget) continue;
    for (let b = bin(units.from[u]!); b <= bin(units.to[u]!); b++) {
      const it = { key: u, value: d.wBytes[units.model[u]!]! * overlap(units.from[u]!, units.to[u]!, b), cost: units.count[u]! };
      items[b]!.push(it);
      unitItem.set(u * numBins + b, it);
    }
  }
  for (let i = 0; i < n; i++) {
    const a = trace.arrivalS[i]!;
    const u = units.ofRequest[i]!;
    const cheap = units.count[u]! <= budget;
    for (let b = bin(a); b <= bin(d.rLifeTo[i]!); b++) {
      const v = d.rKv[i]! * overlap(a, d.rLifeTo[i]!, b);
      if (cheap) unitItem.get(u * numBins + b)!.value += v;
      else items[b]!.push({ key: numUnits + i, value: v, cost: 1 });
    }
  }
  for (const list of items) list.sort((p, q) => q.value / q.cost - p.value / p.cost || p.key - q.key);
  const cmpMembers: number[][] = d.cmpBins.map(() => []);
  for (let i = 0; i < n; i++) cmpMembers[Math.floor(trace.arrivalS[i]! / cmpW)]!.push(d.rDev[i]!);
  for (const list of cmpMembers) list.sort((p, q) => q - p);
  const used = new Uint8Array(numUnits + n);
  return (x: number): number => {
    const cap = x * d.usableBytes * memW;
    const needs: { b: number; need: number }[] = [];
    for (let b = 0; b < numBins; b++) {
      let excess = memBins[b]! - cap;
      if (excess <= 1e-9 * cap) continue;
      let cost = 0;
      for (const it of items[b]!) {
        if (it.value >= excess) {
          cost += (it.cost * excess) / it.value;
          excess = 0;
          break;
        }
        excess -= it.value;
        cost += it.cost;
      }
      // Not coverable by droppable items: this many devices cannot reach the target at all.
      if (excess > 1e-9 * cap) return Infinity;
      needs.push({ b, need: Math.ceil(cost - 1e-9) });
    }
    needs.sort((p, q) => q.need - p.need || p.b - q.b);
    used.fill(0);
    let memDrops = 0;
    for (const { b, need } of needs) {
      if (items[b]!.some((it) => used[it.key] === 1)) continue;
      for (const it of items[b]!) used[it.key] = 1;
      memDrops += need;
      if (memDrops > budget) return memDrops;
    }
    // compute: every request is in exactly one arrival window
    const cmpCap = x * cmpW * 1000;
    let cmpDrops = 0;
    d.cmpBins.forEach((v, b) => {
      let excess = v - cmpCap;
      for (const ms of cmpMembers[b]!) {
        if (excess <= 1e-9 * cmpCap) break;
        excess -= ms;
        cmpDrops++;
      }
    });
    return Math.max(memDrops, cmpDrops);
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

export interface DemandLoadingResult {
  /** Requests that miss their TTFT SLO because their model was not resident (or still loading). */
  readonly misses: number;
  /** Loads of a model whose reload does not fit in its TTFT SLO (each costs at least one miss). */
  readonly coldStarts: number;
  /** Loads of every model, including those whose reload fits in their SLO. */
  readonly loads: number;
}

/**
 * What weight reloads alone cost a clairvoyant scheduler that loads a model only when a request
 * for it arrives (demand loading): memory pooled over all `devices` (usable = memory × (1 −
 * headroom), no packing loss, no KV), a warm start holding models in order of first use, and on
 * each load the resident models whose next request is farthest in the future evicted until it fits
 * (Belady). A request misses when its model's reload (loadMs) is at least its TTFT SLO and the
 * model is absent or still loading when it arrives; models whose reload fits in the SLO still need
 * room while they serve but never miss here.
 *
 * Not a lower bound: Belady is optimal for equal sizes only, and a scheduler that loads models
 * BEFORE their requests arrive (prefetch into room it frees ahead) can miss fewer. It tells how
 * far an online policy, which cannot know when a rarely used model is next requested, is from
 * what perfect knowledge of the future buys without prefetch (bench:sim prints it per workload).
 */
export function demandLoadingMisses(trace: Trace, costs: readonly ModelCost[], ttftSloMs: ArrayLike<number>, costModel: CostModel,
  devices: number, opts: { readonly headroomFraction?: number } = {}): DemandLoadingResult {
  const numModels = trace.modelNames.length;
  const capacity = devices * costModel.device.memBytes * (1 - (opts.headroomFraction ?? 0.05));
  const uses: number[][] = Array.from({ length: numModels }, () => []);
  for (let i = 0; i < trace.numRequests; i++) uses[trace.modelIndex[i]!]!.push(trace.arrivalS[i]!);
  const bytes = costs.map((c) => weightBytes(c.arch));
  const tight = costs.map((c, m) => c.loadMs >= ttftSloMs[m]!);
  const next = new Int32Array(numModels); // index into uses[m] of the first request not yet arrived
  const nextUseS = (m: number): number => (next[m]! < uses[m]!.length ? uses[m]![next[m]!]! : Infinity);
  const resident = new Uint8Array(numModels);
  const readyAtS = new Float64Array(numModels).fill(-Infinity);
  let used = 0;
  const byFirstUse = Array.from({ length: numModels }, (_, m) => m).filter((m) => uses[m]!.length > 0)
    .sort((a, b) => uses[a]![0]! - uses[b]![0]! || a - b);
  for (const m of byFirstUse) {
    if (used + bytes[m]! <= capacity) {
      resident[m] = 1;
      used += bytes[m]!;
    }
  }
  let misses = 0;
  let coldStarts = 0;
  let loads = 0;
  for (let i = 0; i < trace.numRequests; i++) {
    const m = trace.modelIndex[i]!;
    const t = trace.arrivalS[i]!;
    next[m]! += 1;
    if (resident[m] === 1) {
      if (tight[m] && t < readyAtS[m]!) misses++;
      continue;
    }
    if (bytes[m]! > capacity) {
      misses++;
      continue;
    }
    loads++;
    if (tight[m]) {
      misses++;
      coldStarts++;
    }
    while (used + bytes[m]! > capacity) {
      let victim = -1;
      let farthest = -Infinity;
      for (let v = 0; v < numModels; v++) {
        if (resident[v] !== 1) continue;
        const nu = nextUseS(v);
        if (nu > farthest) {
          farthest = nu;
          victim = v;
        }
      }
      resident[victim] = 0;
      used -= bytes[victim]!;
    }
    resident[m] = 1;
    used += bytes[m]!;
    readyAtS[m] = t + costs[m]!.loadMs / 1000;
  }
  return { misses, coldStarts, loads };
}
