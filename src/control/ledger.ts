/**
 * A policy's scratch copy of the cluster for one planning round: which (model, device) instances
 * exist once the actions planned so far are applied, the weight bytes and demand pressure on every
 * device, and the actions themselves in order. Every policy builds its plan through this ledger, so
 * no plan can over-commit a device: `activate` refuses (throws, a policy bug) when weights would not fit.
 *
 * Memory rule: an instance holds its weight bytes until it is gone. A deactivation planned this
 * round frees its bytes for the rest of the plan (deactivations run before activations and the
 * device loads a model only once the memory is free); a migration's source keeps its bytes this
 * round (its running requests finish there first), so nothing else is planned into them.
 */
import { PrismError } from "../core/errors.ts";
import { deviceId as toDeviceId } from "../core/ids.ts";
import type { Action, ClusterState, InstanceView, ModelView } from "./types.ts";

/** Residency codes in the model × device matrix. */
const NONE = 0;
/** Live instance (active or activating), from the state or planned this round. */
const LIVE = 1;
/** Deactivating in the state: holds memory, takes no new requests. */
const DRAINING = 2;
/** Deactivated or migrated away by this plan. */
const LEAVING = 3;

export class PlanLedger {
  readonly state: ClusterState;
  /** Actions in planning order; policies return plan(). */
  readonly actions: Action[] = [];
  readonly numModels: number;
  readonly numDevices: number;
  /** Per device: weight bytes held after the planned actions. */
  readonly weightBytes: Float64Array;
  /** Per device: Σ over live instances of (model demand weight / its live replica count). */
  readonly pressure: Float64Array;
  /** Per device: live instances. */
  readonly liveCount: Int32Array;
  /** Per model: live replicas. */
  readonly replicas: Int32Array;
  /** Per model: 1 once an action of this plan names it (never act twice on a model in one round). */
  readonly touched: Uint8Array;
  /** Per model: demand weight used for pressure. */
  readonly demand: Float64Array;
  private readonly residency: Uint8Array;
  private readonly reserveFraction: number;

  /**
   * @param demand per-model demand weight (w_j), indexed by model; pressure sums it.
   * @param minKvFraction fraction of each device's memory that weights may not take.
   */
  constructor(state: ClusterState, demand: Float64Array, minKvFraction: number) {
    this.state = state;
    const n = state.models.length;
    const d = state.devices.length;
    this.numModels = n;
    this.numDevices = d;
    this.demand = demand;
    this.reserveFraction = minKvFraction;
    this.weightBytes = new Float64Array(d);
    this.pressure = new Float64Array(d);
    this.liveCount = new Int32Array(d);
    this.replicas = new Int32Array(n);
    this.touched = new Uint8Array(n);
    this.residency = new Uint8Array(n * d);
    for (const dev of state.devices) {
      for (const inst of dev.instances) {
        this.weightBytes[dev.index]! += inst.weightBytes;
        if (inst.state === "deactivating") {
          this.residency[inst.model * d + dev.index] = DRAINING;
        } else {
          this.residency[inst.model * d + dev.index] = LIVE;
          this.replicas[inst.model]! += 1;
          this.liveCount[dev.index]! += 1;
        }
      }
    }
    for (const dev of state.devices) {
      for (const inst of dev.instances) {
        if (inst.state !== "deactivating") this.pressure[dev.index]! += demand[inst.model]! / this.replicas[inst.model]!;
      }
    }
  }

  model(m: number): ModelView {
    return this.state.models[m]!;
  }

  /** Bytes of device `d` that weights may take. */
  weightCapacity(d: number): number {
    return this.state.devices[d]!.memoryBytes * (1 - this.reserveFraction);
  }

  isLive(m: number, d: number): boolean {
    return this.residency[m * this.numDevices + d] === LIVE;
  }

  /** Any instance at all (live or draining) of `m` on `d`. */
  isPresent(m: number, d: number): boolean {
    const r = this.residency[m * this.numDevices + d]!;
    return r === LIVE || r === DRAINING;
  }

  /** Weight bytes of `m` fit on `d` after `freedBytes` more are released. */
  fits(m: number, d: number, freedBytes = 0): boolean {
    return this.weightBytes[d]! - freedBytes + this.model(m).weightBytes <= this.weightCapacity(d);
  }

  /**
   * `m` fits on `d` and its weights fit beside the KV in use there now: a load that can start at
   * once. A device whose memory is taken by running requests' KV cannot start a load until they
   * finish, and while it stays busy it never does.
   */
  fitsNow(m: number, d: number): boolean {
    const dev = this.state.devices[d]!;
    return this.fits(m, d) && this.weightBytes[d]! + dev.kvUsedBytes + this.model(m).weightBytes <= dev.memoryBytes;
  }

  /** KVPR_d = pressure / shared KV bytes (memory − weights); +Infinity when no KV memory is left. */
  kvpr(d: number): number {
    return ratio(this.pressure[d]!, this.state.devices[d]!.memoryBytes - this.weightBytes[d]!);
  }

  /** KVPR of `d` if `m` (one more replica carrying `share` demand) joined after `freedBytes`/`freedPressure` left. */
  kvprWith(d: number, m: number, share: number, freedBytes = 0, freedPressure = 0): number {
    const shared = this.state.devices[d]!.memoryBytes - this.weightBytes[d]! + freedBytes - this.model(m).weightBytes;
    return ratio(this.pressure[d]! - freedPressure + share, shared);
  }

  /**
   * Idle instances on `d` that may be evicted to make room, least recently used first: active (not
   * activating), nothing queued or running, the model unpinned, not waiting anywhere, and not
   * touched by this plan. Cold path (activation only).
   */
  idleVictims(d: number): InstanceView[] {
    const out: InstanceView[] = [];
    for (const inst of this.state.devices[d]!.instances) {
      if (inst.state !== "active" || !this.isLive(inst.model, d)) continue;
      if (inst.queuedRequests > 0 || inst.runningRequests > 0) continue;
      const mv = this.model(inst.model);
      if (mv.pinned || mv.pendingRequests > 0 || this.touched[inst.model] === 1) continue;
      out.push(inst);
    }
    out.sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.model - b.model);
    return out;
  }

  activate(m: number, d: number): void {
    if (this.isPresent(m, d)) throw internal(`activate: model #${m} already on device #${d}`);
    if (!this.fits(m, d)) throw internal(`activate: model #${m} does not fit on device #${d}`);
    this.actions.push({ kind: "activate", model: this.model(m).id, device: this.deviceId(d) });
    this.weightBytes[d]! += this.model(m).weightBytes;
    this.addReplica(m, d);
  }

  deactivate(m: number, d: number): void {
    if (!this.isLive(m, d)) throw internal(`deactivate: model #${m} is not live on device #${d}`);
    this.actions.push({ kind: "deactivate", model: this.model(m).id, device: this.deviceId(d) });
    this.weightBytes[d]! -= this.model(m).weightBytes;
    this.removeReplica(m, d);
  }

  migrate(m: number, from: number, to: number): void {
    if (!this.isLive(m, from)) throw internal(`migrate: model #${m} is not live on device #${from}`);
    if (this.isPresent(m, to)) throw internal(`migrate: model #${m} already on device #${to}`);
    if (!this.fits(m, to)) throw internal(`migrate: model #${m} does not fit on device #${to}`);
    this.actions.push({ kind: "migrate", model: this.model(m).id, from: this.deviceId(from), to: this.deviceId(to) });
    // The source keeps its bytes this round (running requests finish there); its pressure moves now.
    this.removeReplica(m, from);
    this.weightBytes[to]! += this.model(m).weightBytes;
    this.addReplica(m, to);
  }

  setKvLimit(m: number, d: number, bytes: number, revision: number): void {
    this.actions.push({ kind: "setKvLimit", model: this.model(m).id, device: this.deviceId(d), bytes, revision });
  }

  /**
   * The plan: the actions in the order the executor runs them — deactivations, migrations,
   * activations, KV limits — each group in the order it was planned.
   */
  plan(): Action[] {
    const rank = (a: Action): number => (a.kind === "deactivate" ? 0 : a.kind === "migrate" ? 1 : a.kind === "activate" ? 2 : 3);
    return this.actions.map((a, i) => [rank(a), i, a] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]).map((x) => x[2]);
  }

  /** Devices where `m` is live, ascending (cold path). */
  liveDevices(m: number): number[] {
    const out: number[] = [];
    const base = m * this.numDevices;
    for (let d = 0; d < this.numDevices; d++) if (this.residency[base + d] === LIVE) out.push(d);
    return out;
  }

  private deviceId(d: number) {
    return this.state.devices[d]?.id ?? toDeviceId(d);
  }

  private addReplica(m: number, d: number): void {
    this.spreadPressure(m, -1);
    this.residency[m * this.numDevices + d] = LIVE;
    this.replicas[m]! += 1;
    this.liveCount[d]! += 1;
    this.touched[m] = 1;
    this.spreadPressure(m, 1);
  }

  private removeReplica(m: number, d: number): void {
    this.spreadPressure(m, -1);
    this.residency[m * this.numDevices + d] = LEAVING;
    this.replicas[m]! -= 1;
    this.liveCount[d]! -= 1;
    this.touched[m] = 1;
    this.spreadPressure(m, 1);
  }

  /** Add (sign 1) or remove (−1) model m's demand share on each device where it is live. */
  private spreadPressure(m: number, sign: number): void {
    const k = this.replicas[m]!;
    if (k === 0) return;
    const share = (sign * this.demand[m]!) / k;
    const base = m * this.numDevices;
    for (let d = 0; d < this.numDevices; d++) if (this.residency[base + d] === LIVE) this.pressure[d]! += share;
  }
}

export function ratio(pressure: number, sharedBytes: number): number {
  if (sharedBytes <= 0) return Infinity;
  return pressure / sharedBytes;
}

function internal(message: string): PrismError {
  return new PrismError("PRISM_INTERNAL", message);
}
