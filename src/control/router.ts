/**
 * Which device serves a request: called once per request by the GlobalScheduler, so O(#replicas of
 * the model) and allocation-free (typed arrays indexed by the dense model / device index).
 *
 * A model's routable replicas are its instances that take new requests: active ones, and ones whose
 * activation is under way (requests queue there while the weights load — the "pending activation"
 * that keeps a burst from triggering one activation per request). Draining instances are removed
 * the moment a deactivation or migration starts.
 *
 * Choice: an active replica over an activating one; among those, the least outstanding work (tokens
 * submitted and not finished on the device, all models together) — the shortest expected wait, i.e.
 * the most slack for a request with the model's SLO. Ties go to the lower device index.
 */
import { PrismError } from "../core/errors.ts";

export const NO_DEVICE = -1;

export class Router {
  readonly numModels: number;
  readonly numDevices: number;
  readonly maxReplicas: number;
  /** model × maxReplicas device indices; the first replicaCount[m] are valid. */
  private readonly replicaDevice: Int32Array;
  /** 1 = active, 0 = activating, same layout. */
  private readonly replicaActive: Uint8Array;
  private readonly replicaCount: Int32Array;
  /** Outstanding work per device (tokens). */
  private readonly loadTokens: Float64Array;

  constructor(numModels: number, numDevices: number, maxReplicas = 8) {
    this.numModels = numModels;
    this.numDevices = numDevices;
    this.maxReplicas = maxReplicas;
    this.replicaDevice = new Int32Array(numModels * maxReplicas).fill(NO_DEVICE);
    this.replicaActive = new Uint8Array(numModels * maxReplicas);
    this.replicaCount = new Int32Array(numModels);
    this.loadTokens = new Float64Array(numDevices);
  }

  /** The device for a new request of `model`, or NO_DEVICE when no replica takes requests. */
  route(model: number): number {
    const n = this.replicaCount[model]!;
    const base = model * this.maxReplicas;
    let best = NO_DEVICE;
    let bestActive = -1;
    let bestLoad = Infinity;
    for (let k = 0; k < n; k++) {
      const d = this.replicaDevice[base + k]!;
      const active = this.replicaActive[base + k]!;
      const load = this.loadTokens[d]!;
      if (active > bestActive || (active === bestActive && (load < bestLoad || (load === bestLoad && d < best)))) {
        best = d;
        bestActive = active;
        bestLoad = load;
      }
    }
    return best;
  }

  /** A new routable instance (activating = false when it is already active). */
  addReplica(model: number, device: number, active: boolean): void {
    const base = model * this.maxReplicas;
    const n = this.replicaCount[model]!;
    for (let k = 0; k < n; k++) {
      if (this.replicaDevice[base + k] === device) {
        this.replicaActive[base + k] = active ? 1 : 0;
        return;
      }
    }
    if (n >= this.maxReplicas) {
      throw new PrismError("PRISM_INTERNAL", `model #${model} would exceed ${this.maxReplicas} replicas`, { model, device });
    }
    this.replicaDevice[base + n] = device;
    this.replicaActive[base + n] = active ? 1 : 0;
    this.replicaCount[model] = n + 1;
  }

  /** The activation finished: the replica is active. No-op if not a replica. */
  markActive(model: number, device: number): void {
    const base = model * this.maxReplicas;
    for (let k = 0; k < this.replicaCount[model]!; k++) if (this.replicaDevice[base + k] === device) this.replicaActive[base + k] = 1;
  }

  /** Stop routing to this instance (draining or gone). No-op if not a replica. */
  removeReplica(model: number, device: number): void {
    const base = model * this.maxReplicas;
    const n = this.replicaCount[model]!;
    for (let k = 0; k < n; k++) {
      if (this.replicaDevice[base + k] !== device) continue;
      // Keep the order of the others (ties break by device index anyway).
      for (let j = k; j < n - 1; j++) {
        this.replicaDevice[base + j] = this.replicaDevice[base + j + 1]!;
        this.replicaActive[base + j] = this.replicaActive[base + j + 1]!;
      }
      this.replicaDevice[base + n - 1] = NO_DEVICE;
      this.replicaActive[base + n - 1] = 0;
      this.replicaCount[model] = n - 1;
      return;
    }
  }

  isReplica(model: number, device: number): boolean {
    const base = model * this.maxReplicas;
    for (let k = 0; k < this.replicaCount[model]!; k++) if (this.replicaDevice[base + k] === device) return true;
    return false;
  }

  replicas(model: number): number {
    return this.replicaCount[model]!;
  }

  /** Work entered (positive) or left (negative) a device. */
  addLoad(device: number, numTokens: number): void {
    this.loadTokens[device]! += numTokens;
  }

  load(device: number): number {
    return this.loadTokens[device]!;
  }
}
