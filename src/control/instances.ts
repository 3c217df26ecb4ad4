/**
 * The control layer's own record of every (model, device) instance: the lifecycle the devices do
 * not know about (a device knows absent / loading / resident; "draining" is a control decision),
 * when it entered it, when it was last used, and the requests control submitted there that have not
 * come back. Typed arrays indexed model × device; updated per request (submit / finish), so O(1)
 * and allocation-free.
 */
import type { InstanceState } from "./types.ts";

/**
 * `migrating`: the source of a make-before-break migration — still routed and serving while its
 * target loads; it starts draining once the target is active. Policies see it as "deactivating"
 * (it is leaving and holds its weights until drained).
 */
export const InstanceCode = { none: 0, activating: 1, active: 2, draining: 3, migrating: 4 } as const;
export type InstanceCode = (typeof InstanceCode)[keyof typeof InstanceCode];

export class InstanceTable {
  readonly numModels: number;
  readonly numDevices: number;
  private readonly code: Uint8Array;
  private readonly since: Float64Array;
  private readonly lastUsed: Float64Array;
  private readonly inflightCount: Int32Array;

  constructor(numModels: number, numDevices: number) {
    this.numModels = numModels;
    this.numDevices = numDevices;
    const n = numModels * numDevices;
    this.code = new Uint8Array(n);
    this.since = new Float64Array(n);
    this.lastUsed = new Float64Array(n);
    this.inflightCount = new Int32Array(n);
  }

  get(model: number, device: number): InstanceCode {
    return this.code[model * this.numDevices + device]! as InstanceCode;
  }

  /** Enter a state now (sinceMs moves; lastUsed starts at the activation). */
  set(model: number, device: number, code: InstanceCode, nowMs: number): void {
    const i = model * this.numDevices + device;
    if (this.code[i] === code) return;
    if (this.code[i] === InstanceCode.none) this.lastUsed[i] = nowMs;
    this.code[i] = code;
    this.since[i] = nowMs;
  }

  sinceMs(model: number, device: number): number {
    return this.since[model * this.numDevices + device]!;
  }

  lastUsedMs(model: number, device: number): number {
    return this.lastUsed[model * this.numDevices + device]!;
  }

  inflight(model: number, device: number): number {
    return this.inflightCount[model * this.numDevices + device]!;
  }

  /** A request was accepted by (delta 1) or left (−1) the instance at `nowMs`. */
  use(model: number, device: number, delta: number, nowMs: number): void {
    const i = model * this.numDevices + device;
    this.inflightCount[i]! += delta;
    if (nowMs > this.lastUsed[i]!) this.lastUsed[i] = nowMs;
  }
}

export function instanceState(code: InstanceCode): InstanceState | null {
  switch (code) {
    case InstanceCode.none: return null;
    case InstanceCode.activating: return "activating";
    case InstanceCode.active: return "active";
    case InstanceCode.draining: return "deactivating";
    case InstanceCode.migrating: return "deactivating";
  }
}
