/**
 * Applies a policy's actions to the device schedulers. Called by the GlobalScheduler after each
 * planning round and on a router miss; never concurrently with itself.
 *
 * Order: deactivations, then migrations, then activations, then KV limits, then the requests handed
 * back by drained instances are placed again (so they can land on the instances just activated).
 *
 * The drain rule (deactivate, and the source side of migrate) — no request is ever lost:
 *   1. the instance stops receiving requests (router) and is marked draining;
 *   2. its queued requests (fresh, or preempted with their generated tokens) are handed back by
 *      DeviceScheduler.drainModel and placed again: a migration's go to the target instance, a
 *      deactivation's go through the router like new requests (another replica, or a pending
 *      activation) — a preempted request recomputes its KV there and samples the same tokens;
 *   3. running requests finish where they run (no work is thrown away and no token is streamed twice);
 *   4. once the instance is idle, its weights are unloaded, then the model is removed from the device.
 * Steps 3–4 complete asynchronously: `settle` (each round, and when a draining instance's last
 * request finishes) re-drains anything the device preempted back into the queue meanwhile,
 * unloads, and removes.
 *
 * Memory consequence, accounted for by the planner (ledger.ts): a draining instance holds its
 * weights until step 4, so an activation planned into its bytes waits for them on the device.
 *
 * Migration is make-before-break: the target activates while the source keeps serving (the router
 * prefers an active replica over an activating one, so new requests still go to the source); once
 * the target is active (`progressMigrations`, each maintenance pass) the source drains as above,
 * its queued requests going to the target. A request therefore never waits for a migration's
 * weight load. If the target's load is given up, the source simply stays.
 */
import { isPrismError, PrismError } from "../core/errors.ts";
import type { ModelId } from "../core/ids.ts";
import { assertNever } from "../core/result.ts";
import type { ModelServingConfig, SubmitRequest } from "../device/types.ts";
import type { DeviceBinding } from "./device-port.ts";
import { InstanceCode, type InstanceTable } from "./instances.ts";
import type { Router } from "./router.ts";
import type { Action, ControlModel, DeviceNeeds } from "./types.ts";

export interface ExecutorHooks {
  /** A request left device `device` without finishing (drained): stop accounting it there. */
  detached(spec: SubmitRequest, device: number, nowMs: number): void;
  /** Place a drained request again, on `preferDevice` if it is ≥ 0 and takes it, else by routing. */
  requeue(spec: SubmitRequest, preferDevice: number, nowMs: number): void;
}

export interface ControlCounters {
  activations: number;
  deactivations: number;
  migrations: number;
  kvLimitUpdates: number;
  /** Requests handed back by drained instances and placed again. */
  requeued: number;
  /** Actions a device refused (the error is in the apply report). */
  failedActions: number;
  /** Instances the devices unloaded on their own (eviction for room) and control then removed. */
  externalEvictions: number;
}

export interface FailedAction {
  readonly action: Action;
  readonly error: PrismError;
}

export interface ApplyReport {
  readonly applied: number;
  readonly failed: readonly FailedAction[];
}

export interface ExecutorOptions {
  readonly devices: readonly DeviceBinding[];
  readonly models: readonly ControlModel[];
  readonly modelIndex: ReadonlyMap<ModelId, number>;
  readonly router: Router;
  readonly table: InstanceTable;
  readonly needs: DeviceNeeds;
  readonly hooks: ExecutorHooks;
  /** Current pin state of a model (config, changed at runtime by the admin API); default: ControlModel.pinned. */
  readonly isPinned?: (model: number) => boolean;
}

interface Handback {
  readonly spec: SubmitRequest;
  readonly preferDevice: number;
}

export class ActionExecutor {
  readonly counters: ControlCounters = {
    activations: 0, deactivations: 0, migrations: 0, kvLimitUpdates: 0, requeued: 0, failedActions: 0, externalEvictions: 0,
  };
  private readonly devices: readonly DeviceBinding[];
  private readonly models: readonly ControlModel[];
  private readonly modelIndex: ReadonlyMap<ModelId, number>;
  private readonly router: Router;
  private readonly table: InstanceTable;
  private readonly needs: DeviceNeeds;
  private readonly hooks: ExecutorHooks;
  private readonly isPinned: (model: number) => boolean;
  /** Draining instances as model × numDevices + device (cold; a handful at a time). */
  private readonly draining = new Set<number>();
  /** Migration sources (model × numDevices + device) → target device, while the target activates. */
  private readonly migrating = new Map<number, number>();

  constructor(o: ExecutorOptions) {
    this.devices = o.devices;
    this.models = o.models;
    this.modelIndex = o.modelIndex;
    this.router = o.router;
    this.table = o.table;
    this.needs = o.needs;
    this.hooks = o.hooks;
    this.isPinned = o.isPinned ?? ((m) => this.models[m]!.pinned === true);
  }

  apply(actions: readonly Action[], nowMs: number): ApplyReport {
    const handbacks: Handback[] = [];
    const failed: FailedAction[] = [];
    let applied = 0;
    const run = (a: Action, fn: () => void): void => {
      try {
        fn();
        applied++;
      } catch (e) {
        if (!isPrismError(e)) throw e;
        this.counters.failedActions++;
        failed.push({ action: a, error: e as PrismError });
      }
    };
    for (const a of actions) if (a.kind === "deactivate") run(a, () => this.deactivate(a.model, a.device, nowMs, handbacks));
    for (const a of actions) if (a.kind === "migrate") run(a, () => this.migrate(a.model, a.from, a.to, nowMs, handbacks));
    for (const a of actions) if (a.kind === "activate") run(a, () => this.activate(a.model, a.device, nowMs));
    for (const a of actions) {
      switch (a.kind) {
        case "setKvLimit":
          run(a, () => this.setKvLimit(a.model, a.device, a.bytes, a.revision));
          break;
        case "activate":
        case "deactivate":
        case "migrate":
          break;
        default:
          assertNever(a, "action");
      }
    }
    this.requeue(handbacks, nowMs);
    return { applied, failed };
  }

  /**
   * Progress every draining instance: re-drain requests the device preempted back into its queue,
   * ask for the unload once idle, remove the model once unloaded. Also called from outside a device
   * step only (it may call drainModel / removeModel).
   */
  settleAll(nowMs: number): void {
    if (this.draining.size === 0) return;
    const handbacks: Handback[] = [];
    for (const key of [...this.draining]) {
      const m = Math.floor(key / this.table.numDevices);
      this.settle(m, key - m * this.table.numDevices, nowMs, handbacks);
    }
    this.requeue(handbacks, nowMs);
  }

  /**
   * The last in-flight request of a draining instance finished: ask for the unload now. Safe inside
   * a device's result sink (requestUnload only sets a flag there).
   */
  onDrainedIdle(model: number, device: number): void {
    if (this.table.get(model, device) !== InstanceCode.draining) return;
    this.devices[device]!.scheduler.requestUnload(this.models[model]!.profile.id);
  }

  get numDraining(): number {
    return this.draining.size;
  }

  get numMigrating(): number {
    return this.migrating.size;
  }

  /** Some migration's target is active (or gone): a maintenance pass has work. Cheap: reads residency. */
  migrationReady(): boolean {
    for (const [key, to] of this.migrating) {
      const m = Math.floor(key / this.table.numDevices);
      const code = this.table.get(m, to);
      if (code !== InstanceCode.activating) return true;
      if (this.devices[to]!.scheduler.residency(this.models[m]!.profile.id) !== "loading") return true;
    }
    return false;
  }

  /**
   * Finish make-before-break migrations whose target is active: drain the source toward the target.
   * A target that is no longer live (its load was given up, or it was deactivated) cancels the
   * migration: the source takes requests again as a plain active instance.
   */
  progressMigrations(nowMs: number): void {
    if (this.migrating.size === 0) return;
    const handbacks: Handback[] = [];
    for (const [key, to] of [...this.migrating]) {
      const m = Math.floor(key / this.table.numDevices);
      const from = key - m * this.table.numDevices;
      if (this.table.get(m, from) !== InstanceCode.migrating) {
        this.migrating.delete(key);
        continue;
      }
      const code = this.table.get(m, to);
      const id = this.models[m]!.profile.id;
      if (code === InstanceCode.activating && this.devices[to]!.scheduler.residency(id) === "resident") {
        this.table.set(m, to, InstanceCode.active, nowMs);
        this.router.markActive(m, to);
      }
      const now = this.table.get(m, to);
      if (now === InstanceCode.active) {
        this.migrating.delete(key);
        this.beginDrain(m, from, to, nowMs, handbacks);
      } else if (now !== InstanceCode.activating) {
        this.migrating.delete(key);
        this.table.set(m, from, InstanceCode.active, nowMs);
      }
    }
    this.requeue(handbacks, nowMs);
  }

  /** Start an instance (or keep one that exists). */
  activateIndex(m: number, d: number, nowMs: number, countAsActivation = true): void {
    const dev = this.device(d).scheduler;
    const cm = this.models[m]!;
    const id = cm.profile.id;
    const code = this.table.get(m, d);
    if (code === InstanceCode.activating || code === InstanceCode.active) return;
    const pinned = this.isPinned(m) || this.needs.pinActivated;
    if (!dev.hasModel(id)) dev.addModel(cm.profile, { ...this.servingFor(cm), pinned });
    else if (pinned) dev.pin(id);
    if (code === InstanceCode.draining) this.draining.delete(m * this.table.numDevices + d);
    dev.requestLoad(id);
    const resident = dev.residency(id) === "resident";
    this.table.set(m, d, resident ? InstanceCode.active : InstanceCode.activating, nowMs);
    this.router.addReplica(m, d, resident);
    if (countAsActivation) this.counters.activations++;
  }

  /** Device-level serving settings for a model under this policy. */
  servingFor(cm: ControlModel): Partial<ModelServingConfig> {
    return {
      ...cm.serving,
      ttftSloMs: cm.ttftSloMs,
      tpotSloMs: cm.tpotSloMs,
      pinned: (cm.pinned ?? false) || this.needs.pinActivated,
      keepAliveMs: Number.POSITIVE_INFINITY,
    };
  }

  /** Forget an instance a device dropped on its own (evicted idle, or a load it gave up). */
  forget(m: number, d: number, nowMs: number): void {
    this.router.removeReplica(m, d);
    this.draining.delete(m * this.table.numDevices + d);
    this.migrating.delete(m * this.table.numDevices + d);
    this.table.set(m, d, InstanceCode.none, nowMs);
    const dev = this.devices[d]!.scheduler;
    const id = this.models[m]!.profile.id;
    if (dev.hasModel(id)) {
      try {
        dev.removeModel(id);
      } catch (e) {
        if (!isPrismError(e)) throw e;
      }
    }
  }

  countExternalEviction(): void {
    this.counters.externalEvictions++;
  }

  private activate(model: ModelId, device: number, nowMs: number): void {
    this.activateIndex(this.index(model), device, nowMs);
  }

  private deactivate(model: ModelId, device: number, nowMs: number, handbacks: Handback[]): void {
    const m = this.index(model);
    this.device(device);
    const code = this.table.get(m, device);
    if (code !== InstanceCode.activating && code !== InstanceCode.active && code !== InstanceCode.migrating) return;
    this.migrating.delete(m * this.table.numDevices + device);
    this.beginDrain(m, device, -1, nowMs, handbacks);
    this.counters.deactivations++;
  }

  private migrate(model: ModelId, from: number, to: number, nowMs: number, handbacks: Handback[]): void {
    const m = this.index(model);
    this.device(from);
    this.device(to);
    const code = this.table.get(m, from);
    if (code !== InstanceCode.activating && code !== InstanceCode.active) {
      throw new PrismError("PRISM_MODEL_NOT_ON_DEVICE", `migrate: model ${model} is not active on device ${from}`, { model, device: from });
    }
    this.activateIndex(m, to, nowMs, false);
    this.counters.migrations++;
    // Make before break: a resident source keeps serving until the target is active.
    const id = this.models[m]!.profile.id;
    if (this.devices[from]!.scheduler.residency(id) === "resident" && this.table.get(m, to) === InstanceCode.activating) {
      this.table.set(m, from, InstanceCode.migrating, nowMs);
      this.router.markActive(m, from);
      this.migrating.set(m * this.table.numDevices + from, to);
      return;
    }
    this.beginDrain(m, from, to, nowMs, handbacks);
  }

  private setKvLimit(model: ModelId, device: number, bytes: number, revision: number): void {
    const res = this.device(device).scheduler.setKvLimit(model, bytes, revision);
    if (res.status === "applied" || res.status === "deferred") this.counters.kvLimitUpdates++;
  }

  private beginDrain(m: number, d: number, preferDevice: number, nowMs: number, handbacks: Handback[]): void {
    this.router.removeReplica(m, d);
    this.table.set(m, d, InstanceCode.draining, nowMs);
    this.draining.add(m * this.table.numDevices + d);
    this.collect(m, d, preferDevice, nowMs, handbacks);
    this.settle(m, d, nowMs, handbacks);
  }

  private collect(m: number, d: number, preferDevice: number, nowMs: number, handbacks: Handback[]): void {
    const dev = this.devices[d]!.scheduler;
    const id = this.models[m]!.profile.id;
    if (!dev.hasModel(id)) return;
    for (const spec of dev.drainModel(id)) {
      this.hooks.detached(spec, d, nowMs);
      handbacks.push({ spec, preferDevice });
    }
  }

  private settle(m: number, d: number, nowMs: number, handbacks: Handback[]): void {
    if (this.table.get(m, d) !== InstanceCode.draining) {
      this.draining.delete(m * this.table.numDevices + d);
      return;
    }
    const dev = this.devices[d]!.scheduler;
    const id = this.models[m]!.profile.id;
    if (!dev.hasModel(id)) {
      this.forget(m, d, nowMs);
      return;
    }
    // Preempted requests of a draining model come back to its queue: send them away too.
    this.collect(m, d, -1, nowMs, handbacks);
    const residency = dev.residency(id);
    if (residency === "absent" && this.table.inflight(m, d) === 0) {
      this.forget(m, d, nowMs);
      return;
    }
    if (residency === "resident" && this.table.inflight(m, d) === 0) {
      const r = dev.requestUnload(id);
      if (r === "not-resident") this.forget(m, d, nowMs);
    }
  }

  private requeue(handbacks: readonly Handback[], nowMs: number): void {
    for (const h of handbacks) {
      this.counters.requeued++;
      this.hooks.requeue(h.spec, h.preferDevice, nowMs);
    }
  }

  private index(model: ModelId): number {
    const m = this.modelIndex.get(model);
    if (m === undefined) throw new PrismError("PRISM_UNKNOWN_MODEL", `unknown model '${model}'`, { model });
    return m;
  }

  private device(d: number): DeviceBinding {
    const b = this.devices[d];
    if (b === undefined) throw new PrismError("PRISM_UNKNOWN_DEVICE", `unknown device ${d}`, { device: d });
    return b;
  }
}
