/**
 * Time sharing only (Ollama / llama-swap with one model per device, peers.md §2), FCFS local order,
 * elastic KV (irrelevant with one model). Rules:
 * - Warm start: an empty device gets the most wanted model that is nowhere resident (pending
 *   requests first, oldest first; then expected rate, highest first) — the same placement chance the
 *   other policies get from the expected rates.
 * - On demand: a model with no instance takes an empty device (lowest index), else the device whose
 *   resident model is idle (nothing queued or running, unpinned), least recently used first
 *   (LRU like llama-swap's swapper / LocalAI's max-active-backends).
 * - Never evict a busy model on arrival (llama-swap rule 6: the request queues). Anti-starvation
 *   (llama-swap #612's "max wait + minimum resident time"): in a planning round, a model whose oldest
 *   pending request has waited ≥ swapMaxWaitMs evicts the resident model with the least outstanding
 *   work (ties: LRU) among those resident for ≥ swapMaxWaitMs. The victim drains: its running requests
 *   finish on the device, its queued ones go back to the control layer's pending queue (FIFO).
 * - No idle eviction (a resident model stays until another needs its device; llama-swap's default TTL).
 */
import { PlanLedger } from "../ledger.ts";
import type { Action, ClusterState, ControlConfig, DeviceNeeds, InstanceView, OnDemand, Policy } from "../types.ts";

export const SWAP_NEEDS: DeviceNeeds = Object.freeze({ localPolicy: "fcfs", kvQuota: "elastic", pinActivated: false, maxModelsPerDevice: 1 });

export class SwapPolicy implements Policy {
  readonly name = "swap";
  readonly needs: DeviceNeeds = SWAP_NEEDS;
  private readonly config: ControlConfig;

  constructor(config: ControlConfig) {
    this.config = config;
  }

  plan(state: ClusterState, nowMs: number): Action[] {
    const ledger = this.ledger(state);
    const swappedDevice = new Uint8Array(ledger.numDevices);
    // Waiting models, oldest pending request first (FIFO across models).
    const waiting = state.models
      .filter((m) => m.pendingRequests > 0 && ledger.replicas[m.index] === 0)
      .sort((a, b) => a.oldestPendingMs - b.oldestPendingMs || a.index - b.index)
      .map((m) => m.index);
    for (const m of waiting) {
      const free = this.freeOrIdleDevice(ledger, m);
      if (free !== null) {
        this.swapIn(ledger, m, free.device, free.victim);
        swappedDevice[free.device] = 1;
        continue;
      }
      if (nowMs - state.models[m]!.oldestPendingMs < this.config.swapMaxWaitMs) continue;
      const forced = this.forcedVictim(ledger, m, nowMs, swappedDevice);
      if (forced === null) continue;
      this.swapIn(ledger, m, forced.device, forced);
      swappedDevice[forced.device] = 1;
    }
    // Warm start: fill empty devices with the most expected models that are nowhere resident.
    const idleModels = state.models
      .filter((m) => ledger.replicas[m.index] === 0 && ledger.touched[m.index] === 0 && m.expectedRatePerS > 0)
      .sort((a, b) => b.expectedRatePerS - a.expectedRatePerS || a.index - b.index);
    let next = 0;
    for (let d = 0; d < ledger.numDevices && next < idleModels.length; d++) {
      if (!this.isEmpty(ledger, d)) continue;
      while (next < idleModels.length) {
        const m = idleModels[next++]!.index;
        if (!ledger.isPresent(m, d) && ledger.fits(m, d)) {
          ledger.activate(m, d);
          break;
        }
      }
    }
    return ledger.plan();
  }

  onDemand(state: ClusterState, model: number, _nowMs: number): OnDemand {
    const ledger = this.ledger(state);
    let everFits = false;
    for (let d = 0; d < ledger.numDevices; d++) if (state.models[model]!.weightBytes <= ledger.weightCapacity(d)) everFits = true;
    if (!everFits) return { kind: "reject" };
    if (ledger.replicas[model]! > 0) return { kind: "wait" };
    const free = this.freeOrIdleDevice(ledger, model);
    if (free === null) return { kind: "wait" };
    this.swapIn(ledger, model, free.device, free.victim);
    return { kind: "activate", actions: ledger.plan(), device: free.device };
  }

  private ledger(state: ClusterState): PlanLedger {
    return new PlanLedger(state, new Float64Array(state.models.length), this.config.minKvFraction);
  }

  private isEmpty(ledger: PlanLedger, d: number): boolean {
    return ledger.liveCount[d] === 0;
  }

  /** An empty device, else the LRU device whose only model is idle; null if neither. */
  private freeOrIdleDevice(ledger: PlanLedger, m: number): { device: number; victim: InstanceView | null } | null {
    for (let d = 0; d < ledger.numDevices; d++) {
      if (this.isEmpty(ledger, d) && !ledger.isPresent(m, d) && ledger.fits(m, d)) return { device: d, victim: null };
    }
    let best: { device: number; victim: InstanceView } | null = null;
    for (let d = 0; d < ledger.numDevices; d++) {
      if (ledger.liveCount[d] !== 1 || ledger.isPresent(m, d)) continue;
      const victims = ledger.idleVictims(d);
      const v = victims[0];
      if (v === undefined || !ledger.fits(m, d, v.weightBytes)) continue;
      if (best === null || v.lastUsedMs < best.victim.lastUsedMs) best = { device: d, victim: v };
    }
    return best;
  }

  /** The resident model to swap out for a starving one, or null. */
  private forcedVictim(ledger: PlanLedger, m: number, nowMs: number, swapped: Uint8Array): InstanceView | null {
    let best: InstanceView | null = null;
    let bestWork = Infinity;
    for (const dev of ledger.state.devices) {
      if (swapped[dev.index] === 1 || ledger.liveCount[dev.index] !== 1 || ledger.isPresent(m, dev.index)) continue;
      for (const inst of dev.instances) {
        if (inst.state !== "active" || !ledger.isLive(inst.model, dev.index)) continue;
        const mv = ledger.model(inst.model);
        if (mv.pinned || ledger.touched[inst.model] === 1) continue;
        if (nowMs - inst.sinceMs < this.config.swapMaxWaitMs) continue;
        if (!ledger.fits(m, dev.index, inst.weightBytes)) continue;
        const work = inst.queuedRequests + inst.runningRequests;
        if (best === null || work < bestWork || (work === bestWork && inst.lastUsedMs < best.lastUsedMs)) {
          best = inst;
          bestWork = work;
        }
      }
    }
    return best;
  }

  private swapIn(ledger: PlanLedger, m: number, d: number, victim: InstanceView | null): void {
    if (victim !== null) ledger.deactivate(victim.model, d);
    ledger.activate(m, d);
  }
}
