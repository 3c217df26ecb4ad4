/**
 * The fixed-placement baselines: models are placed once from the caller's expected rates and never
 * move, activate or deactivate afterwards (every placed model is pinned on its device).
 *   static   — Algorithm-1 placement (the best placement rule we have, so the baseline is not
 *              handicapped by packing), fixed KV quota ∝ rate × KV bytes per token (prism.md §4.5),
 *              FCFS local order (static partitioning = one engine per model, each in arrival order).
 *   muxserve — MuxServe's greedy by computation demand, fixed quotas ∝ popularity (rate) in the
 *              unified pool (peers.md §2); FCFS local order (MuxServe has no SLO-aware ordering).
 *   elastic  — kvcached alone: the static placement, no quotas (KV elastic), FCFS local order.
 * The first round activates every placed model and sets its quota; later rounds only repair
 * (re-activate a placed model found missing, set a quota on an instance that has none).
 */
import { assertNever } from "../../core/result.ts";
import { fixedQuotas, placeByKvpr, placeMuxServe, type Placement, type PlacementModel } from "../placement.ts";
import { PlanLedger } from "../ledger.ts";
import type { Action, ClusterState, ControlConfig, DeviceNeeds, OnDemand, Policy } from "../types.ts";

export type FixedKind = "static" | "muxserve" | "elastic";

interface Layout {
  readonly numModels: number;
  readonly numDevices: number;
  readonly placement: Placement;
  /** Bytes per model, or null when KV is elastic. */
  readonly quotas: Float64Array | null;
}

export function fixedNeeds(kind: FixedKind): DeviceNeeds {
  return Object.freeze({
    // Each baseline's real counterpart orders requests per engine in arrival order.
    localPolicy: "fcfs",
    kvQuota: kind === "elastic" ? "elastic" : "fixed",
    pinActivated: true,
    maxModelsPerDevice: null,
  });
}

export class FixedPlacementPolicy implements Policy {
  readonly name: FixedKind;
  readonly needs: DeviceNeeds;
  private readonly config: ControlConfig;
  private layout: Layout | null = null;

  constructor(kind: FixedKind, config: ControlConfig) {
    this.name = kind;
    this.config = config;
    this.needs = fixedNeeds(kind);
  }

  /** The one-shot placement for this cluster (device index per model, −1 = not placed). */
  placementFor(state: ClusterState): Placement {
    return this.layoutFor(state).placement;
  }

  /** The fixed quota (bytes) per model, or null for `elastic`. */
  quotasFor(state: ClusterState): Float64Array | null {
    return this.layoutFor(state).quotas;
  }

  plan(state: ClusterState, _nowMs: number): Action[] {
    const layout = this.layoutFor(state);
    const ledger = new PlanLedger(state, new Float64Array(state.models.length), this.config.minKvFraction);
    for (let m = 0; m < layout.numModels; m++) {
      const d = layout.placement[m]!;
      if (d < 0) continue;
      if (!ledger.isPresent(m, d)) {
        if (!ledger.fits(m, d)) continue; // something outside this policy holds the memory; retry next round
        ledger.activate(m, d);
        if (layout.quotas !== null) ledger.setKvLimit(m, d, layout.quotas[m]!, 1);
        continue;
      }
      if (layout.quotas === null) continue;
      const inst = state.devices[d]!.instances.find((i) => i.model === m);
      if (inst !== undefined && inst.state !== "deactivating" && inst.kvLimitBytes === null) {
        ledger.setKvLimit(m, d, layout.quotas[m]!, inst.kvLimitRevision + 1);
      }
    }
    return ledger.plan();
  }

  onDemand(state: ClusterState, model: number, _nowMs: number): OnDemand {
    const layout = this.layoutFor(state);
    const d = layout.placement[model]!;
    if (d < 0) return { kind: "reject" };
    const ledger = new PlanLedger(state, new Float64Array(state.models.length), this.config.minKvFraction);
    if (ledger.isPresent(model, d) || !ledger.fits(model, d)) return { kind: "wait" };
    ledger.activate(model, d);
    if (layout.quotas !== null) ledger.setKvLimit(model, d, layout.quotas[model]!, 1);
    return { kind: "activate", actions: ledger.plan(), device: d };
  }

  private layoutFor(state: ClusterState): Layout {
    const n = state.models.length;
    const dn = state.devices.length;
    if (this.layout !== null && this.layout.numModels === n && this.layout.numDevices === dn) return this.layout;
    const models: PlacementModel[] = state.models.map((m) => ({
      weightBytes: m.weightBytes,
      kvBytesPerToken: m.kvBytesPerToken,
      maxContextTokens: m.maxContextTokens,
      ttftSloMs: m.ttftSloMs,
      ratePerS: m.expectedRatePerS,
    }));
    const devices = state.devices.map((d) => ({ memoryBytes: d.memoryBytes, pageBytes: d.pageBytes }));
    const frac = this.config.minKvFraction;
    let placement: Placement;
    let quotas: Float64Array | null;
    switch (this.name) {
      case "static":
        placement = placeByKvpr(models, devices, frac);
        quotas = fixedQuotas(models, devices, placement, (m) => m.ratePerS * m.kvBytesPerToken);
        break;
      case "muxserve":
        placement = placeMuxServe(models, devices, frac);
        quotas = fixedQuotas(models, devices, placement, (m) => m.ratePerS);
        break;
      case "elastic":
        placement = placeByKvpr(models, devices, frac);
        quotas = null;
        break;
      default:
        return assertNever(this.name, "fixed policy");
    }
    this.layout = { numModels: n, numDevices: dn, placement, quotas };
    return this.layout;
  }
}
