/**
 * Prism's global policy: time sharing (idle eviction, activation on demand) plus space sharing placed
 * by the KV-pressure ratio (prism.md §4.1, §8.3). One round, in order:
 *
 * 1. Evict: an active, unpinned instance with nothing queued or running, no request of its model
 *    waiting anywhere, and unused for the model's keep-alive. Change from the prototype (its rule is
 *    5 s idle): a model whose reload would miss its own TTFT SLO (weights / load bandwidth > TTFT SLO)
 *    is kept while its device's shared KV is less than half used — evicting it would buy memory
 *    nobody needs at the price of a certain SLO miss; when memory is needed, activation may still
 *    evict it as an idle victim.
 * 2. Rebalance: Algorithm 1 (min-max KVPR, heaviest w = rate / TTFT-SLO first) over the movable
 *    models (exactly one active instance, unpinned, w > 0), the rest fixed where they are. τ: keep the
 *    current device unless the best one's resulting KVPR is lower by more than τ (relative). Of the
 *    models Algorithm 1 would move, the heaviest are migrated, at most maxMigrationsPerRound, and
 *    only if in the real cluster the move lowers max(KVPR_src, KVPR_dst) by more than τ (the source
 *    judged once drained, its weights turned into KV) — a capped subset of a joint re-placement
 *    must not make things worse.
 * 3. Activate: models with pending requests and no instance, most-violating first (the prototype's
 *    order), then oldest pending. Device: the lowest resulting KVPR among devices where the weights
 *    fit; only if none fits, devices where they fit after evicting idle unpinned models (LRU first,
 *    as few as needed), again by lowest resulting KVPR. Preferring no eviction keeps warm models
 *    warm (the KVPR after eviction would otherwise favour evicting, since freed weights become KV).
 *    Starvation guard (addition): a model still without room after waiting swapMaxWaitMs may drain
 *    busy models of strictly lower demand weight (one such activation per round; see makeRoom).
 *
 * KV is elastic (no quotas). Demand w_j = rate_j / TTFT-SLO_j with rate the EWMA arrival rate (seeded
 * by the expected rate); demandSignal "tokens" uses token rate × KV bytes per token instead, which
 * weighs long-context models by the KV they actually hold.
 */
import { PlanLedger, ratio } from "../ledger.ts";
import type { InstanceView } from "../types.ts";
import type { Action, ClusterState, ControlConfig, DeviceNeeds, ModelView, OnDemand, Policy } from "../types.ts";

export interface PrismOptions {
  readonly demandSignal: "requests" | "tokens";
  /** Keep idle models whose reload would miss their TTFT SLO while their device has KV room. */
  readonly protectTightSlo: boolean;
  /** Most instances of one model (1 = the paper: one instance per model). */
  readonly maxReplicas: number;
}

export const DEFAULT_PRISM_OPTIONS: PrismOptions = Object.freeze({ demandSignal: "requests", protectTightSlo: true, maxReplicas: 1 });

export const PRISM_NEEDS: DeviceNeeds = Object.freeze({ localPolicy: "slo", kvQuota: "elastic", pinActivated: false, maxModelsPerDevice: null });

/** Below this shared-KV utilisation a device has no use for the memory an idle model holds. */
const KV_ROOM_UTILISATION = 0.5;

interface DeviceChoice {
  readonly device: number;
  readonly victims: readonly InstanceView[];
}

export class PrismPolicy implements Policy {
  readonly name = "prism";
  readonly needs: DeviceNeeds = PRISM_NEEDS;
  private readonly config: ControlConfig;
  private readonly options: PrismOptions;

  constructor(config: ControlConfig, options: Partial<PrismOptions> = {}) {
    this.config = config;
    this.options = { ...DEFAULT_PRISM_OPTIONS, ...options };
  }

  plan(state: ClusterState, nowMs: number): Action[] {
    const ledger = new PlanLedger(state, demandWeights(state, this.options.demandSignal), this.config.minKvFraction);
    this.evictIdle(ledger, nowMs);
    const moved = this.rebalance(ledger);
    this.addReplicas(ledger, this.config.maxMigrationsPerRound - moved);
    this.activateWaiting(ledger, nowMs);
    return ledger.plan();
  }

  onDemand(state: ClusterState, model: number, _nowMs: number): OnDemand {
    const ledger = new PlanLedger(state, demandWeights(state, this.options.demandSignal), this.config.minKvFraction);
    if (!canEverFit(ledger, model)) return { kind: "reject" };
    if (ledger.replicas[model]! > 0) return { kind: "wait" };
    const choice = chooseDevice(ledger, model);
    if (choice === null) return { kind: "wait" };
    for (const v of choice.victims) ledger.deactivate(v.model, choice.device);
    ledger.activate(model, choice.device);
    return { kind: "activate", actions: ledger.plan(), device: choice.device };
  }

  /** Expected reload time of a model (ms). */
  activationMs(m: ModelView): number {
    return m.weightBytes / this.config.loadBytesPerMs;
  }

  private evictIdle(ledger: PlanLedger, nowMs: number): void {
    for (const dev of ledger.state.devices) {
      const sharedBytes = dev.memoryBytes - dev.weightBytes;
      const kvRoom = sharedBytes > 0 && dev.kvUsedBytes < KV_ROOM_UTILISATION * sharedBytes;
      for (const inst of dev.instances) {
        if (inst.state !== "active") continue;
        const mv = ledger.model(inst.model);
        if (mv.pinned || inst.queuedRequests > 0 || inst.runningRequests > 0 || mv.pendingRequests > 0) continue;
        if (nowMs - inst.lastUsedMs < mv.keepAliveMs) continue;
        if (this.options.protectTightSlo && kvRoom && this.activationMs(mv) > mv.ttftSloMs) continue;
        ledger.deactivate(inst.model, dev.index);
      }
    }
  }

  /** Returns the number of migrations planned. */
  private rebalance(ledger: PlanLedger): number {
    const cap = this.config.maxMigrationsPerRound;
    if (cap <= 0) return 0;
    const { state, demand: w } = ledger;
    const tau = this.config.tau;
    const n = ledger.numModels;
    const current = new Int32Array(n).fill(-1);
    const movable: number[] = [];
    for (let m = 0; m < n; m++) {
      const mv = state.models[m]!;
      if (mv.pinned || ledger.touched[m] === 1 || !(w[m]! > 0) || mv.instances.length !== 1) continue;
      const inst = mv.instances[0]!;
      if (inst.state !== "active" || !ledger.isLive(m, inst.device)) continue;
      current[m] = inst.device;
      movable.push(m);
    }
    if (movable.length === 0) return 0;
    movable.sort((a, b) => w[b]! - w[a]! || a - b);

    // Algorithm 1 on a virtual cluster holding only the fixed instances.
    const vPressure = Float64Array.from(ledger.pressure);
    const vWeights = Float64Array.from(ledger.weightBytes);
    for (const m of movable) {
      vPressure[current[m]!]! -= w[m]!;
      vWeights[current[m]!]! -= state.models[m]!.weightBytes;
    }
    const target = new Int32Array(n).fill(-1);
    for (const m of movable) {
      const bytes = state.models[m]!.weightBytes;
      let best = -1;
      let bestK = Infinity;
      for (let d = 0; d < ledger.numDevices; d++) {
        if (vWeights[d]! + bytes > ledger.weightCapacity(d)) continue;
        const k = ratio(vPressure[d]! + w[m]!, state.devices[d]!.memoryBytes - vWeights[d]! - bytes);
        if (best < 0 || k < bestK) {
          best = d;
          bestK = k;
        }
      }
      const cur = current[m]!;
      const curK = vWeights[cur]! + bytes > ledger.weightCapacity(cur)
        ? Infinity
        : ratio(vPressure[cur]! + w[m]!, state.devices[cur]!.memoryBytes - vWeights[cur]! - bytes);
      if (best < 0 || !(bestK < curK * (1 - tau))) best = cur;
      target[m] = best;
      vPressure[best]! += w[m]!;
      vWeights[best]! += bytes;
    }

    let moved = 0;
    for (const m of movable) {
      const from = current[m]!;
      const to = target[m]!;
      if (to === from || ledger.isPresent(m, to) || !ledger.fits(m, to)) continue;
      const before = Math.max(ledger.kvpr(from), ledger.kvpr(to));
      // Judged on the state once the drain completes (the source's weight bytes become KV); the
      // ledger still keeps those bytes taken for the rest of this round.
      const bytes = state.models[m]!.weightBytes;
      const fromAfter = ratio(ledger.pressure[from]! - w[m]!, state.devices[from]!.memoryBytes - ledger.weightBytes[from]! + bytes);
      const toAfter = ledger.kvprWith(to, m, w[m]!);
      if (!(Math.max(fromAfter, toAfter) < before * (1 - tau))) continue;
      ledger.migrate(m, from, to);
      if (++moved >= cap) return moved;
    }
    return moved;
  }

  /**
   * Replicas (maxReplicas > 1; off by default, as in the paper): when the hottest device's pressure
   * comes mostly (≥ half) from one model, start another instance of that model where the pair's
   * max KVPR — the hot device with the model's share split one more way, and the target with the new
   * share — drops by more than τ. The router then spreads the model's requests by outstanding work;
   * at low load ties send them to the lower device index, so the extra replica idles and is evicted
   * after its keep-alive. Each replica counts against maxMigrationsPerRound.
   */
  private addReplicas(ledger: PlanLedger, budget: number): void {
    const maxReplicas = this.options.maxReplicas;
    if (maxReplicas <= 1) return;
    const { state, demand: w } = ledger;
    for (let k = 0; k < budget; k++) {
      let hot = -1;
      let hotK = 0;
      for (let d = 0; d < ledger.numDevices; d++) {
        const kv = ledger.kvpr(d);
        if (kv > hotK) {
          hot = d;
          hotK = kv;
        }
      }
      if (hot < 0) return;
      let model = -1;
      let share = 0;
      for (const inst of state.devices[hot]!.instances) {
        const m = inst.model;
        if (inst.state !== "active" || !ledger.isLive(m, hot) || ledger.touched[m] === 1 || state.models[m]!.pinned) continue;
        if (ledger.replicas[m]! >= maxReplicas) continue;
        const sh = w[m]! / ledger.replicas[m]!;
        if (sh >= 0.5 * ledger.pressure[hot]! && sh > share) {
          model = m;
          share = sh;
        }
      }
      if (model < 0) return;
      const newShare = w[model]! / (ledger.replicas[model]! + 1);
      const hotShared = state.devices[hot]!.memoryBytes - ledger.weightBytes[hot]!;
      const hotAfter = ratio(ledger.pressure[hot]! - share + newShare, hotShared);
      let target = -1;
      let targetK = Infinity;
      for (let d = 0; d < ledger.numDevices; d++) {
        if (d === hot || ledger.isPresent(model, d) || !ledger.fits(model, d)) continue;
        const kv = Math.max(hotAfter, ledger.kvprWith(d, model, newShare));
        if (kv < targetK) {
          target = d;
          targetK = kv;
        }
      }
      if (target < 0 || !(targetK < hotK * (1 - this.config.tau))) return;
      ledger.activate(model, target);
    }
  }

  private activateWaiting(ledger: PlanLedger, nowMs: number): void {
    const waiting: number[] = [];
    for (const mv of ledger.state.models) {
      if (mv.pendingRequests > 0 && ledger.replicas[mv.index] === 0 && ledger.touched[mv.index] === 0) waiting.push(mv.index);
    }
    const models = ledger.state.models;
    waiting.sort((a, b) => {
      const ma = models[a]!;
      const mb = models[b]!;
      return mb.demand.violationFraction - ma.demand.violationFraction || ma.oldestPendingMs - mb.oldestPendingMs ||
        ledger.demand[b]! - ledger.demand[a]! || a - b;
    });
    let forced = false;
    for (const m of waiting) {
      let choice = chooseDevice(ledger, m);
      if (choice === null && !forced && nowMs - models[m]!.oldestPendingMs >= this.config.swapMaxWaitMs) {
        choice = makeRoom(ledger, m);
        forced = choice !== null;
      }
      if (choice === null) continue;
      for (const v of choice.victims) ledger.deactivate(v.model, choice.device);
      ledger.activate(m, choice.device);
    }
  }
}

/** Per-model demand weight w_j. */
export function demandWeights(state: ClusterState, signal: PrismOptions["demandSignal"]): Float64Array {
  const w = new Float64Array(state.models.length);
  for (const mv of state.models) {
    const rate = signal === "tokens" ? mv.demand.tokenRatePerS * mv.kvBytesPerToken : mv.demand.arrivalRatePerS;
    w[mv.index] = rate / (mv.ttftSloMs / 1000);
  }
  return w;
}

/**
 * Starvation guard (time sharing under contention; the prototype has none): room for a model that
 * has waited swapMaxWaitMs and fits nowhere even after idle evictions. Drain models whose demand
 * weight is strictly lower (idle ones first, then the lightest), on the device where that disturbs
 * the least outstanding work. Strictly lower means two models never evict each other back and forth;
 * drained models keep their running requests to completion and their queued ones wait here.
 */
function makeRoom(ledger: PlanLedger, m: number): DeviceChoice | null {
  const wm = ledger.demand[m]!;
  let best = -1;
  let bestWork = Infinity;
  let bestVictims: InstanceView[] = [];
  for (let d = 0; d < ledger.numDevices; d++) {
    if (ledger.isPresent(m, d) || ledger.model(m).weightBytes > ledger.weightCapacity(d)) continue;
    const cands = ledger.state.devices[d]!.instances.filter((v) => v.state === "active" && ledger.isLive(v.model, d) &&
      ledger.touched[v.model] === 0 && !ledger.model(v.model).pinned && ledger.demand[v.model]! < wm);
    const work = (v: InstanceView): number => v.queuedRequests + v.runningRequests;
    cands.sort((a, b) => Number(work(a) > 0) - Number(work(b) > 0) || ledger.demand[a.model]! - ledger.demand[b.model]! ||
      a.lastUsedMs - b.lastUsedMs || a.model - b.model);
    let freed = 0;
    let disturbed = 0;
    let k = 0;
    while (k < cands.length && !ledger.fits(m, d, freed)) {
      const v = cands[k++]!;
      freed += v.weightBytes;
      disturbed += work(v);
    }
    if (!ledger.fits(m, d, freed)) continue;
    if (best < 0 || disturbed < bestWork || (disturbed === bestWork && k < bestVictims.length)) {
      best = d;
      bestWork = disturbed;
      bestVictims = cands.slice(0, k);
    }
  }
  return best >= 0 ? { device: best, victims: bestVictims } : null;
}

function canEverFit(ledger: PlanLedger, m: number): boolean {
  const bytes = ledger.model(m).weightBytes;
  for (let d = 0; d < ledger.numDevices; d++) if (bytes <= ledger.weightCapacity(d)) return true;
  return false;
}

/** Lowest resulting KVPR without eviction; failing that, with the fewest LRU idle evictions needed. */
function chooseDevice(ledger: PlanLedger, m: number): DeviceChoice | null {
  const share = ledger.demand[m]!;
  let best = -1;
  let bestK = Infinity;
  let bestShared = -Infinity;
  for (let d = 0; d < ledger.numDevices; d++) {
    if (ledger.isPresent(m, d) || !ledger.fits(m, d)) continue;
    const k = ledger.kvprWith(d, m, share);
    const shared = ledger.state.devices[d]!.memoryBytes - ledger.weightBytes[d]!;
    if (best < 0 || k < bestK || (k === bestK && shared > bestShared)) {
      best = d;
      bestK = k;
      bestShared = shared;
    }
  }
  if (best >= 0) return { device: best, victims: [] };

  let bestVictims: InstanceView[] = [];
  for (let d = 0; d < ledger.numDevices; d++) {
    if (ledger.isPresent(m, d) || ledger.model(m).weightBytes > ledger.weightCapacity(d)) continue;
    const idle = ledger.idleVictims(d);
    let freedBytes = 0;
    let freedPressure = 0;
    let k = 0;
    while (k < idle.length && !ledger.fits(m, d, freedBytes)) {
      const v = idle[k++]!;
      freedBytes += v.weightBytes;
      freedPressure += ledger.demand[v.model]! / ledger.replicas[v.model]!;
    }
    if (!ledger.fits(m, d, freedBytes)) continue;
    const kv = ledger.kvprWith(d, m, share, freedBytes, freedPressure);
    if (best < 0 || kv < bestK || (kv === bestK && k < bestVictims.length)) {
      best = d;
      bestK = kv;
      bestVictims = idle.slice(0, k);
    }
  }
  return best >= 0 ? { device: best, victims: bestVictims } : null;
}
