/**
 * One-shot placements (computed once from the caller's expected rates, the same input for every
 * policy) and the fixed KV quotas of the partitioning baselines. Pure functions of plain inputs.
 */

export interface PlacementModel {
  readonly weightBytes: number;
  readonly kvBytesPerToken: number;
  readonly maxContextTokens: number;
  readonly ttftSloMs: number;
  readonly ratePerS: number;
}

export interface PlacementDevice {
  readonly memoryBytes: number;
  /** Quotas are whole pages of this size (default 1). */
  readonly pageBytes?: number;
}

/** Device index per model, −1 where no device could take it. */
export type Placement = Int32Array;

/**
 * Prism's Algorithm 1 from an empty cluster (prism.md §4.1): models by w = rate / SLO descending, each
 * onto the device with the lowest KVPR after adding it, KVPR_g = Σw / (M − Σweights), among devices
 * where the weights fit under (1 − minKvFraction)·M. Best effort: when the demand order leaves a model
 * out, the same rule is retried in decreasing-size order (first-fit-decreasing style) and the order
 * that places more models wins (ties: lower max KVPR, then the demand order).
 */
export function placeByKvpr(models: readonly PlacementModel[], devices: readonly PlacementDevice[], minKvFraction: number): Placement {
  const w = models.map((m) => m.ratePerS / (m.ttftSloMs / 1000));
  const byDemand = order(models.length, (a, b) => w[b]! - w[a]! || models[b]!.weightBytes - models[a]!.weightBytes);
  const first = greedyKvpr(models, devices, w, byDemand, minKvFraction);
  if (countPlaced(first.placement) === models.length) return first.placement;
  const bySize = order(models.length, (a, b) => models[b]!.weightBytes - models[a]!.weightBytes || w[b]! - w[a]!);
  const second = greedyKvpr(models, devices, w, bySize, minKvFraction);
  return better(first, second).placement;
}

/**
 * MuxServe's placement (peers.md §2, MuxServe §4.2): LLMs by computation demand (rate × size, as its
 * "scale × popularity") descending, each onto the device with the least accumulated demand where its
 * weights fit; ties to the lower index. Best effort as above (decreasing size as the fallback order).
 */
export function placeMuxServe(models: readonly PlacementModel[], devices: readonly PlacementDevice[], minKvFraction: number): Placement {
  const load = models.map((m) => m.ratePerS * m.weightBytes);
  const byLoad = order(models.length, (a, b) => load[b]! - load[a]! || models[b]!.weightBytes - models[a]!.weightBytes);
  const first = greedyLeastLoaded(models, devices, load, byLoad, minKvFraction);
  if (countPlaced(first.placement) === models.length) return first.placement;
  const bySize = order(models.length, (a, b) => models[b]!.weightBytes - models[a]!.weightBytes || load[b]! - load[a]!);
  const second = greedyLeastLoaded(models, devices, load, bySize, minKvFraction);
  return better(first, second).placement;
}

/**
 * Fixed KV quotas per model: each device's KV memory (M − Σ weights) split among its models ∝ share_j
 * (static partitioning: rate × KV bytes per token, prism.md §4.5; MuxServe: rate), in whole pages
 * because limits take effect per page. Every placed model first gets a floor of min(one full
 * context, pool / (2·n)), at least one page when the pool has a page per model, so a model with no
 * expected traffic can still serve a request (an operator would never configure a zero quota); the
 * rest goes ∝ share, leftover pages by largest remainder. Returns bytes per model (0 where unplaced).
 */
export function fixedQuotas(models: readonly PlacementModel[], devices: readonly PlacementDevice[], placement: Placement,
  share: (m: PlacementModel) => number): Float64Array {
  const quotas = new Float64Array(models.length);
  for (let d = 0; d < devices.length; d++) {
    const members: number[] = [];
    let weights = 0;
    for (let m = 0; m < models.length; m++) {
      if (placement[m] === d) {
        members.push(m);
        weights += models[m]!.weightBytes;
      }
    }
    if (members.length === 0) continue;
    const page = Math.max(1, devices[d]!.pageBytes ?? 1);
    const poolPages = Math.floor(Math.max(0, devices[d]!.memoryBytes - weights) / page);
    const n = members.length;
    const pages = new Float64Array(n);
    let used = 0;
    let shares = 0;
    for (let i = 0; i < n; i++) {
      const mv = models[members[i]!]!;
      let f = Math.min(Math.ceil((mv.kvBytesPerToken * mv.maxContextTokens) / page), Math.floor(poolPages / (2 * n)));
      if (f === 0 && poolPages >= n) f = 1;
      pages[i] = f;
      used += f;
      shares += Math.max(0, share(mv));
    }
    const rest = poolPages - used;
    const frac = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const s = Math.max(0, share(models[members[i]!]!));
      const exact = shares > 0 ? (rest * s) / shares : rest / n;
      const whole = Math.floor(exact);
      pages[i]! += whole;
      frac[i] = exact - whole;
      used += whole;
    }
    const byRemainder = order(n, (a, b) => frac[b]! - frac[a]!);
    for (let k = 0; used < poolPages && k < n; k++, used++) pages[byRemainder[k]!]! += 1;
    for (let i = 0; i < n; i++) quotas[members[i]!] = pages[i]! * page;
  }
  return quotas;
}

interface Greedy {
  readonly placement: Placement;
  readonly placed: number;
  readonly maxKvpr: number;
}

function greedyKvpr(models: readonly PlacementModel[], devices: readonly PlacementDevice[], w: readonly number[],
  orderIdx: readonly number[], minKvFraction: number): Greedy {
  const placement = new Int32Array(models.length).fill(-1);
  const pressure = new Float64Array(devices.length);
  const weights = new Float64Array(devices.length);
  for (const m of orderIdx) {
    const mv = models[m]!;
    let best = -1;
    let bestKvpr = Infinity;
    for (let d = 0; d < devices.length; d++) {
      const mem = devices[d]!.memoryBytes;
      if (weights[d]! + mv.weightBytes > mem * (1 - minKvFraction)) continue;
      const k = kvprOf(pressure[d]! + w[m]!, mem - weights[d]! - mv.weightBytes);
      // Ties (e.g. models without expected traffic) go to the device with the most KV memory left.
      if (best < 0 || k < bestKvpr || (k === bestKvpr && mem - weights[d]! > devices[best]!.memoryBytes - weights[best]!)) {
        best = d;
        bestKvpr = k;
      }
    }
    if (best < 0) continue;
    placement[m] = best;
    pressure[best]! += w[m]!;
    weights[best]! += mv.weightBytes;
  }
  let maxKvpr = 0;
  for (let d = 0; d < devices.length; d++) maxKvpr = Math.max(maxKvpr, kvprOf(pressure[d]!, devices[d]!.memoryBytes - weights[d]!));
  return { placement, placed: countPlaced(placement), maxKvpr };
}

function greedyLeastLoaded(models: readonly PlacementModel[], devices: readonly PlacementDevice[], load: readonly number[],
  orderIdx: readonly number[], minKvFraction: number): Greedy {
  const placement = new Int32Array(models.length).fill(-1);
  const acc = new Float64Array(devices.length);
  const weights = new Float64Array(devices.length);
  for (const m of orderIdx) {
    const mv = models[m]!;
    let best = -1;
    for (let d = 0; d < devices.length; d++) {
      if (weights[d]! + mv.weightBytes > devices[d]!.memoryBytes * (1 - minKvFraction)) continue;
      // Least demand first; among equals, the most free memory (MuxServe balances both).
      if (best < 0 || acc[d]! < acc[best]! || (acc[d] === acc[best] && weights[d]! < weights[best]!)) best = d;
    }
    if (best < 0) continue;
    placement[m] = best;
    acc[best]! += load[m]!;
    weights[best]! += mv.weightBytes;
  }
  return { placement, placed: countPlaced(placement), maxKvpr: 0 };
}

function kvprOf(pressure: number, sharedBytes: number): number {
  return sharedBytes <= 0 ? Infinity : pressure / sharedBytes;
}

function order(n: number, cmp: (a: number, b: number) => number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  return idx.sort((a, b) => cmp(a, b) || a - b);
}

function countPlaced(p: Placement): number {
  let c = 0;
  for (const d of p) if (d >= 0) c++;
  return c;
}

function better(a: Greedy, b: Greedy): Greedy {
  if (b.placed !== a.placed) return b.placed > a.placed ? b : a;
  return b.maxKvpr < a.maxKvpr ? b : a;
}
