/**
 * Prism's global policy: time sharing (activation on demand, eviction when room is needed) plus
 * space sharing placed by the KV-pressure ratio (prism.md §4.1, §8.3). One round, in order:
 *
 * 1. Evict on keep-alive, only when one is configured (default: lazy, idle models leave only when
 *    an activation needs their room): an active, unpinned instance with nothing queued or running,
 *    no request of its model waiting, unused for the model's keep-alive; with protectTightSlo, a
 *    model whose reload would miss its own TTFT SLO is kept while its device's shared KV is less
 *    than half used.
 * 2. Rebalance: Algorithm 1 (min-max KVPR, heaviest w = rate / TTFT-SLO first) over the movable
 *    models (exactly one active instance, unpinned, w > 0), the rest fixed where they are. τ: keep the
 *    current device unless the best one's resulting KVPR is lower by more than τ (relative). Of the
 *    models Algorithm 1 would move, the heaviest are migrated, at most maxMigrationsPerRound, only
 *    off a device whose KV is actually contended (KV in use ≥ half its shared KV: otherwise a lower
 *    KVPR buys nothing and the move costs a weight load), only onto a device where the weights fit
 *    beside the KV in use now (the load can start at once), and only if in the real cluster the move
 *    lowers max(KVPR_src, KVPR_dst) by more than τ (the source judged once drained).
 * 3. Separate (compute term, see prefillLoad): within the same migration budget, move the model
 *    whose prefill interference with its co-located models would drop most elsewhere.
 * 4. Activate: models with pending requests and no instance, most-violating first (the prototype's
 *    order), then oldest pending, on the device chooseDevice picks (fewest loads in flight, then the
 *    fewest expected misses: cold starts of the idle victims it evicts plus prefill interference).
 *    Starvation guard (addition): a model still without room after waiting swapMaxWaitMs may drain
 *    busy models of strictly lower demand weight (one such activation per round; see makeRoom), only
 *    when worthSwap says its arrivals outweigh what the victims lose (else it gives up for now).
 *    Hysteresis (addition): an instance active for less than minResidencyLoads of its own load times
 *    is never a victim. Both keep over-committed devices from thrashing (README: Cluster simulation).
 * 5. Prefetch: free memory (the warm start is the first round of this) takes absent models, most
 *    valuable per byte first.
 * Migrations are make-before-break (executor.ts): the source serves until the target is active.
 *
 * Time sharing is a weight cache: each model is worth missRate (arrival rate × the TTFT misses one
 * cold start costs, i.e. whether its reload fits in its SLO) per weight byte; eviction takes the
 * cheapest, prefetch the dearest, and an activation never evicts more worth than the model it
 * serves (otherwise its requests wait; a cold model does not thrash hot ones out).
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
  /** With a finite keep-alive: keep idle models whose reload would miss their TTFT SLO while their device has KV room. */
  readonly protectTightSlo: boolean;
  /** Most instances of one model (1 = the paper: one instance per model). */
  readonly maxReplicas: number;
  /**
   * Prefetch (warm start, and room freed later): absent models with demand are activated, most
   * valuable first, while a device's weights + KV in use stay within (1 − fillKvFraction) of its
   * memory. 1 = never prefetch (every model starts cold).
   */
  readonly fillKvFraction: number;
  /**
   * Hysteresis against thrashing: an instance is not evicted (for an activation or by the
   * starvation guard) until it has been active this many of its own activation times. 0 = off.
   */
  readonly minResidencyLoads: number;
}

export const DEFAULT_PRISM_OPTIONS: PrismOptions = Object.freeze({ demandSignal: "requests", protectTightSlo: true, maxReplicas: 1, fillKvFraction: 0.1, minResidencyLoads: 3 });

export const PRISM_NEEDS: DeviceNeeds = Object.freeze({ localPolicy: "slo", kvQuota: "elastic", pinActivated: false, maxModelsPerDevice: null });

/** Below this shared-KV utilisation a device has no use for the memory an idle model holds. */
const KV_ROOM_UTILISATION = 0.5;
/** Cold-start cost of a model whose reload fits easily in its TTFT SLO (keeps rate as a tie-break). */
const COLD_COST_FLOOR = 0.05;
/** A reload longer than this fraction of the TTFT SLO misses it (the rest goes to prefill and queueing). */
const COLD_MISS_FRACTION = 0.9;
/** Misses per second an interference migration must save to be worth a weight load (one per 100 s). */
const MIN_SEPARATION_GAIN = 0.01;

interface Totals {
  readonly exposure: Float64Array;
  readonly load: Float64Array;
  readonly loads: Int32Array;
  /** Ledger actions folded in so far. */
  folded: number;
  readonly index: Map<string, number>;
}

interface DeviceChoice {
  readonly device: number;
  readonly victims: readonly InstanceView[];
}

export class PrismPolicy implements Policy {
  readonly name = "prism";
  readonly needs: DeviceNeeds = PRISM_NEEDS;
  private readonly config: ControlConfig;
  private readonly options: PrismOptions;
  private readonly totalsCache = new WeakMap<PlanLedger, Totals>();

  constructor(config: ControlConfig, options: Partial<PrismOptions> = {}) {
    this.config = config;
    this.options = { ...DEFAULT_PRISM_OPTIONS, ...options };
  }

  plan(state: ClusterState, nowMs: number): Action[] {
    const ledger = new PlanLedger(state, demandWeights(state, this.options.demandSignal), this.config.minKvFraction);
    this.evictIdle(ledger, nowMs);
    let moved = this.rebalance(ledger);
    moved += this.separate(ledger, this.config.maxMigrationsPerRound - moved);
    this.addReplicas(ledger, this.config.maxMigrationsPerRound - moved);
    this.activateWaiting(ledger, nowMs);
    this.prefetch(ledger);
    return ledger.plan();
  }

  onDemand(state: ClusterState, model: number, _nowMs: number): OnDemand {
    const ledger = new PlanLedger(state, demandWeights(state, this.options.demandSignal), this.config.minKvFraction);
    if (!canEverFit(ledger, model)) return { kind: "reject" };
    if (ledger.replicas[model]! > 0) return { kind: "wait" };
    const choice = this.chooseDevice(ledger, model);
    if (choice === null) return { kind: "wait" };
    for (const v of choice.victims) ledger.deactivate(v.model, choice.device);
    ledger.activate(model, choice.device);
    return { kind: "activate", actions: ledger.plan(), device: choice.device };
  }

  /** Active long enough (minResidencyLoads × its activation time) to be evicted again. */
  settled(ledger: PlanLedger, v: InstanceView): boolean {
    const k = this.options.minResidencyLoads;
    return k <= 0 || ledger.state.nowMs - v.sinceMs >= k * this.activationMs(ledger.model(v.model));
  }

  /**
   * Admission control of the starvation guard: drain `victims` for `m` only if, over one minimum
   * residency R = max(1, minResidencyLoads) × m's activation time, m's arrivals (served warm once
   * loaded) outnumber what the victims lose: each victim's next cold start (at most one per
   * residency, × its coldCost) and its arrivals during m's load (the load is lost device time for
   * them too). Victims' rates are at least their
   * long-run expected rate, so a hot model between two bursts is not valued as cold. Without this
   * the guard drained models for any model that had waited long enough, including ones whose
   * requests then missed anyway, and on over-committed devices the swaps cascaded.
   */
  worthSwap(ledger: PlanLedger, m: ModelView, victims: readonly InstanceView[]): boolean {
    const loadS = this.activationMs(m) / 1000;
    const residencyS = Math.max(1, this.options.minResidencyLoads) * loadS;
    let loss = 0;
    for (const v of victims) {
      const vm = ledger.model(v.model);
      const rate = Math.max(vm.demand.arrivalRatePerS, vm.expectedRatePerS);
      loss += this.coldCost(vm) * (Math.min(1, rate * residencyS) + rate * loadS);
    }
    return m.demand.arrivalRatePerS * residencyS > loss;
  }

  /** Expected reload time of a model (ms). */
  activationMs(m: ModelView): number {
    return this.config.activationStartMs + m.weightBytes / this.config.loadBytesPerMs;
  }

  /**
   * What one cold start of `m` costs in TTFT misses: 1 when the reload takes more than
   * COLD_MISS_FRACTION of the TTFT SLO (the request that triggers it misses), else COLD_COST_FLOOR.
   */
  coldCost(m: ModelView): number {
    return this.activationMs(m) > COLD_MISS_FRACTION * m.ttftSloMs ? 1 : COLD_COST_FLOOR;
  }

  /**
   * Expected TTFT misses per second if `m` is not resident: its arrival rate (EWMA, seeded by the
   * expected rate, so it decays while the model is idle) × what each cold start costs. Eviction
   * and prefetch rank models by this per weight byte (a knapsack-greedy cache).
   */
  missRate(m: ModelView): number {
    return m.demand.arrivalRatePerS * this.coldCost(m);
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
      // Only where the load can start now: a target whose memory is held by its running requests' KV
      // cannot start it while it stays busy; the executor then gives the target up after a round and
      // the next round planned the same move again (every 5-15 s on a saturated cluster).
      if (to === from || ledger.isPresent(m, to) || !ledger.fitsNow(m, to)) continue;
      if (!kvPressured(state.devices[from]!)) continue;
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
   * Interference migrations: a model whose prefill steps cost its co-located models (or whose
   * requests wait behind theirs) more misses per second than it would elsewhere is moved, make
   * before break, to the device where that cost is lowest, if its weights fit there without
   * eviction, no load is in flight there, and the move saves at least MIN_SEPARATION_GAIN misses
   * per second and more than τ of the current cost. Largest saving first (ties: the lighter model,
   * the cheaper load); returns the moves made.
   */
  private separate(ledger: PlanLedger, budget: number): number {
    if (budget <= 0) return 0;
    const { state } = ledger;
    let moved = 0;
    while (moved < budget) {
      const { exposure, load, loads } = this.totals(ledger);
      let bestM = -1;
      let bestFrom = -1;
      let bestTo = -1;
      let bestGain = 0;
      for (const dev of state.devices) {
        const from = dev.index;
        for (const inst of dev.instances) {
          const m = inst.model;
          const mv = state.models[m]!;
          if (inst.state !== "active" || mv.pinned || ledger.touched[m] === 1 || mv.instances.length !== 1 || !ledger.isLive(m, from)) continue;
          const ownE = mv.demand.arrivalRatePerS / mv.ttftSloMs;
          const ownL = this.prefillLoad(mv);
          const cur = this.interference(mv, Math.max(0, exposure[from]! - ownE), Math.max(0, load[from]! - ownL));
          if (!(cur > MIN_SEPARATION_GAIN)) continue;
          for (let d = 0; d < ledger.numDevices; d++) {
            if (d === from || loads[d]! > 0 || ledger.isPresent(m, d) || !ledger.fits(m, d)) continue;
            const gain = cur - this.interference(mv, exposure[d]!, load[d]!);
            const better = gain > bestGain || (gain === bestGain && bestM >= 0 && mv.weightBytes < state.models[bestM]!.weightBytes);
            if (gain >= MIN_SEPARATION_GAIN && gain > this.config.tau * cur && better) {
              bestM = m;
              bestFrom = from;
              bestTo = d;
              bestGain = gain;
            }
          }
        }
      }
      if (bestM < 0) return moved;
      ledger.migrate(bestM, bestFrom, bestTo);
      moved++;
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

  /**
   * Where to activate `m`, or null (wait). Per device, idle victims are taken in increasing
   * missRate per byte until the weights fit; a device is out if it cannot fit them or if the
   * victims are worth more than m's own arrival rate. Then by: fewest weight loads in flight there
   * (a device copies one model at a time), fewest expected misses per second (victims' missRate +
   * prefill interference), no eviction at all, lowest resulting KVPR, most shared KV, fewest victims.
   */
  chooseDevice(ledger: PlanLedger, m: number, starving = false): DeviceChoice | null {
    const share = ledger.demand[m]!;
    const mv = ledger.model(m);
    const totals = this.totals(ledger);
    const loads = totals.loads;
    let best: DeviceChoice | null = null;
    let bestScore: readonly number[] = [];
    for (let d = 0; d < ledger.numDevices; d++) {
      if (ledger.isPresent(m, d) || ledger.model(m).weightBytes > ledger.weightCapacity(d)) continue;
      const idle = ledger.fits(m, d) ? [] : this.byValue(ledger, ledger.idleVictims(d).filter((v) => this.settled(ledger, v)));
      let freedBytes = 0;
      let freedPressure = 0;
      let loss = 0;
      let exposure = totals.exposure[d]!;
      let load = totals.load[d]!;
      let k = 0;
      while (k < idle.length && !ledger.fits(m, d, freedBytes)) {
        const v = idle[k++]!;
        const vm = ledger.model(v.model);
        freedBytes += v.weightBytes;
        freedPressure += ledger.demand[v.model]! / ledger.replicas[v.model]!;
        loss += this.missRate(vm);
        exposure -= vm.demand.arrivalRatePerS / vm.ttftSloMs;
        load -= this.prefillLoad(vm);
      }
      if (!ledger.fits(m, d, freedBytes)) continue;
      // Worth it only if the victims' cold starts cost less than leaving m out (all its requests wait).
      // Unless m has starved and the device has nothing to do: then idle models give way whatever
      // they are worth (liveness; a busy device serves what can still meet its SLO first).
      const dev = ledger.state.devices[d]!;
      const idleDevice = dev.queuedRequests + dev.runningRequests === 0 && loads[d]! === 0;
      if (loss > mv.demand.arrivalRatePerS && !(starving && idleDevice)) continue;
      loss += this.interference(mv, Math.max(0, exposure), Math.max(0, load));
      const kv = ledger.kvprWith(d, m, share, freedBytes, freedPressure);
      const shared = dev.memoryBytes - ledger.weightBytes[d]! + freedBytes;
      // Fewest loads to wait behind, then the cheapest victims, then no eviction at all, then
      // the lowest resulting KVPR, the most shared KV, the fewest victims.
      const score = [loads[d]!, loss, k > 0 ? 1 : 0, kv, -shared, k];
      if (best === null || lexLess(score, bestScore)) {
        best = { device: d, victims: idle.slice(0, k) };
        bestScore = score;
      }
    }
    return best;
  }

  /**
   * Prefill interference (the compute term of placement). Co-located models share one step loop:
   * a request of model i arriving while a prefill step of model j runs waits for its residual.
   * With s the step length (prompt × W_j / computeBytesPerMs) and c = TTFT SLO of i, the fraction
   * of time a new request of i lands where the residual alone exceeds c is r_j·E[(s − c)+] ≤
   * r_j·E[s²] / 4c, so i loses at most r_i · A_j / c_i misses per second, with
   * A_j = r_j·E[s_j²] / 4 (from the EWMA of Σ prompt²; s in ms, per-second rates, hence /1000).
   * KV pressure alone misses this: a device can be compute-bound by one large model's long
   * prompts while its KV is nearly empty.
   */
  prefillLoad(m: ModelView): number {
    const msPerToken = m.weightBytes / this.config.computeBytesPerMs;
    return (m.demand.promptSqRatePerS * msPerToken * msPerToken) / 4000;
  }

  /**
   * Per device, over the live models once the actions planned so far apply: Σ r_i / c_i
   * (exposure), Σ A_i (prefill load), and weight loads in flight or planned. Built once per
   * ledger, then brought up to date by folding in the actions planned since (O(new actions)).
   */
  private totals(ledger: PlanLedger): Totals {
    let t = this.totalsCache.get(ledger);
    if (t === undefined) {
      const d = ledger.numDevices;
      t = { exposure: new Float64Array(d), load: new Float64Array(d), loads: new Int32Array(d), folded: 0, index: new Map() };
      for (const mv of ledger.state.models) t.index.set(mv.id, mv.index);
      for (const dev of ledger.state.devices) {
        for (const inst of dev.instances) {
          if (inst.state === "activating") t.loads[dev.index]! += 1;
          if (inst.state !== "deactivating") this.addTo(t, ledger.model(inst.model), dev.index, 1);
        }
      }
      this.totalsCache.set(ledger, t);
    }
    const actions = ledger.actions;
    for (; t.folded < actions.length; t.folded++) {
      const a = actions[t.folded]!;
      const mv = ledger.model(t.index.get(a.model)!);
      switch (a.kind) {
        case "activate":
          this.addTo(t, mv, a.device as number, 1);
          t.loads[a.device as number]! += 1;
          break;
        case "deactivate":
          this.addTo(t, mv, a.device as number, -1);
          break;
        case "migrate":
          this.addTo(t, mv, a.from as number, -1);
          this.addTo(t, mv, a.to as number, 1);
          t.loads[a.to as number]! += 1;
          break;
        case "setKvLimit":
          break;
      }
    }
    return t;
  }

  private addTo(t: Totals, mv: ModelView, d: number, sign: number): void {
    t.exposure[d] = Math.max(0, t.exposure[d]! + (sign * mv.demand.arrivalRatePerS) / mv.ttftSloMs);
    t.load[d] = Math.max(0, t.load[d]! + sign * this.prefillLoad(mv));
  }

  /** Misses per second that putting `m` next to the models behind (exposure, load) would cause, both ways. */
  private interference(m: ModelView, exposure: number, load: number): number {
    return this.prefillLoad(m) * exposure + (m.demand.arrivalRatePerS * load) / m.ttftSloMs;
  }

  /** Instances in increasing missRate per weight byte (the cheapest memory first), then LRU. */
  private byValue(ledger: PlanLedger, insts: InstanceView[]): InstanceView[] {
    const density = (v: InstanceView): number => this.missRate(ledger.model(v.model)) / v.weightBytes;
    return insts.sort((a, b) => density(a) - density(b) || a.lastUsedMs - b.lastUsedMs || a.model - b.model);
  }

  /**
   * Prefetch into free memory (the warm start is the first round of this): absent models with
   * demand, highest missRate per weight byte first, each onto the device with the lowest resulting
   * KVPR among those where weights + KV in use + the model stay within (1 − fillKvFraction) of the
   * device's memory. Never evicts: free memory only.
   */
  private prefetch(ledger: PlanLedger): void {
    const frac = this.options.fillKvFraction;
    if (frac >= 1) return;
    const { state } = ledger;
    const cands: number[] = [];
    for (const mv of state.models) {
      if (ledger.replicas[mv.index] === 0 && ledger.touched[mv.index] === 0 && !mv.pinned && !mv.heldOut && mv.demand.arrivalRatePerS > 0) cands.push(mv.index);
    }
    if (cands.length === 0) return;
    const density = cands.map((m) => this.missRate(state.models[m]!) / state.models[m]!.weightBytes);
    const order = cands.map((_, i) => i).sort((a, b) => density[b]! - density[a]! || cands[a]! - cands[b]!);
    const { exposure, load } = this.totals(ledger);
    for (const i of order) {
      const m = cands[i]!;
      const mv = state.models[m]!;
      const bytes = mv.weightBytes;
      let best = -1;
      let bestI = Infinity;
      let bestK = Infinity;
      for (let d = 0; d < ledger.numDevices; d++) {
        const dev = state.devices[d]!;
        if (ledger.isPresent(m, d) || !ledger.fits(m, d)) continue;
        if (ledger.weightBytes[d]! + dev.kvUsedBytes + bytes > dev.memoryBytes * (1 - frac)) continue;
        const inter = this.interference(mv, exposure[d]!, load[d]!);
        const k = ledger.kvprWith(d, m, ledger.demand[m]!);
        if (best < 0 || inter < bestI || (inter === bestI && k < bestK)) {
          best = d;
          bestI = inter;
          bestK = k;
        }
      }
      // A prefetch must gain more than it costs the models it joins.
      if (best < 0 || !(bestI < this.missRate(mv))) continue;
      ledger.activate(m, best);
      this.totals(ledger);
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
      let choice = this.chooseDevice(ledger, m, nowMs - models[m]!.oldestPendingMs >= this.config.starvationMs);
      if (choice === null && !forced && nowMs - models[m]!.oldestPendingMs >= this.config.swapMaxWaitMs) {
        choice = makeRoom(ledger, m, (v) => this.settled(ledger, v));
        if (choice !== null && !this.worthSwap(ledger, models[m]!, choice.victims)) choice = null;
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
function makeRoom(ledger: PlanLedger, m: number, settled: (v: InstanceView) => boolean): DeviceChoice | null {
  const wm = ledger.demand[m]!;
  let best = -1;
  let bestWork = Infinity;
  let bestVictims: InstanceView[] = [];
  for (let d = 0; d < ledger.numDevices; d++) {
    if (ledger.isPresent(m, d) || ledger.model(m).weightBytes > ledger.weightCapacity(d)) continue;
    const cands = ledger.state.devices[d]!.instances.filter((v) => v.state === "active" && ledger.isLive(v.model, d) &&
      ledger.touched[v.model] === 0 && !ledger.model(v.model).pinned && ledger.demand[v.model]! < wm && settled(v));
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

function lexLess(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/** KV in use is at least KV_ROOM_UTILISATION of the device's shared KV memory (KVPR then means contention). */
function kvPressured(dev: ClusterState["devices"][number]): boolean {
  const shared = dev.memoryBytes - dev.weightBytes;
  return shared <= 0 || dev.kvUsedBytes >= KV_ROOM_UTILISATION * shared;
}

function canEverFit(ledger: PlanLedger, m: number): boolean {
  const bytes = ledger.model(m).weightBytes;
  for (let d = 0; d < ledger.numDevices; d++) if (bytes <= ledger.weightCapacity(d)) return true;
  return false;
}

