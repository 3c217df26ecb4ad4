/**
 * The global scheduler: models → devices. One per process (server) or per simulated cluster.
 *
 *   submit(spec)  — every request: demand estimate, router (an instance that takes it), else the
 *                   policy's on-demand activation (or a pending queue here), then device.submit.
 *   tick(now)     — every roundMs (the server's timer, the simulator's tick events):
 *                   settle draining instances → observe (ClusterState) → policy.plan → apply.
 *   cancel(id)    — wherever the request is (a device, or pending here).
 *
 * THE INVARIANT: every accepted request is in exactly one place — on one device (which answers its
 * sink exactly once), or in this scheduler's pending queue — until its sink got onFinish. Drained
 * requests move between those places (executor.ts), never out of them.
 *
 * Time comes from the injected clock, randomness from nowhere (policies are deterministic). Work
 * that must not run inside a device's result sink (removing models, activating for pending
 * requests) is deferred through `defer` when given (server: setImmediate; simulator: an event at
 * now), else done at the next submit or tick.
 */
import type { Clock } from "../core/clock.ts";
import { PrismError } from "../core/errors.ts";
import type { ModelId, RequestId } from "../core/ids.ts";
import type { SampledToken } from "../core/records.ts";
import type { RequestOutcome, RequestSink, RequestStats, SubmitRequest, SubmitResult } from "../device/types.ts";
import { buildClusterState, kvBytesPerToken, type DeviceSnapshot, type InstanceSnapshot, type ModelRecord } from "./cluster-state.ts";
import { DemandEstimator } from "./demand.ts";
import { usableBytes, type DeviceBinding } from "./device-port.ts";
import { ActionExecutor, type ApplyReport, type ControlCounters, type FailedAction } from "./executor.ts";
import { InstanceCode, InstanceTable, instanceState } from "./instances.ts";
import { PendingQueues } from "./pending.ts";
import { createPolicy, type PolicyOptions } from "./policies/registry.ts";
import { NO_DEVICE, Router } from "./router.ts";
import { resolveControlConfig } from "./config.ts";
import { type Action, type ClusterState, type ControlConfig, type ControlModel, type Policy } from "./types.ts";

export interface GlobalSchedulerOptions {
  readonly devices: readonly DeviceBinding[];
  readonly models: readonly ControlModel[];
  /** A policy name (see policies/registry.ts) or a Policy object. */
  readonly policy: string | Policy;
  readonly clock: Clock;
  readonly config?: Partial<ControlConfig>;
  /** Expected request rate per model id (req/s): initial placement and the demand prior; missing = 0. */
  readonly expectedRates?: Readonly<Record<string, number>> | ReadonlyMap<string, number>;
  readonly policyOptions?: PolicyOptions;
  /** Run fn soon, outside the current call stack. */
  readonly defer?: (fn: () => void) => void;
  /** Every applied batch of actions (logs, the simulator's timeline). */
  readonly onActions?: (actions: readonly Action[], nowMs: number, source: "round" | "demand") => void;
}

export interface TickReport {
  readonly nowMs: number;
  readonly actions: readonly Action[];
  readonly failed: readonly FailedAction[];
}

export interface GlobalCounters extends ControlCounters {
  rounds: number;
  /** Activations triggered by a router miss (between rounds). */
  onDemandActivations: number;
  /** Times a request entered the pending queue. */
  pendingRequests: number;
  /** Requests refused with an error (not "busy"). */
  rejected: number;
}

/** One accepted request while the control layer tracks it; it is the sink the devices call. */
class Tracked implements RequestSink {
  spec: SubmitRequest;
  readonly inner: RequestSink;
  readonly model: number;
  /** Device holding it, or NO_DEVICE while pending here. */
  device: number;
  readonly promptTokens: number;
  readonly costTokens: number;
  private readonly owner: GlobalScheduler;

  constructor(owner: GlobalScheduler, spec: SubmitRequest, model: number) {
    this.owner = owner;
    this.inner = spec.sink;
    this.model = model;
    this.device = NO_DEVICE;
    this.promptTokens = spec.promptTokens.length;
    this.costTokens = spec.promptTokens.length + spec.maxTokens;
    this.spec = { ...spec, sink: this };
  }

  onToken(id: RequestId, sampled: SampledToken, outputIndex: number): void {
    this.inner.onToken(id, sampled, outputIndex);
  }

  onFinish(id: RequestId, outcome: RequestOutcome, stats: RequestStats): void {
    this.owner.onTrackedFinish(this, outcome, stats);
    this.inner.onFinish(id, outcome, stats);
  }
}

export class GlobalScheduler {
  readonly policy: Policy;
  readonly config: ControlConfig;
  readonly demand: DemandEstimator;
  readonly router: Router;
  readonly executor: ActionExecutor;
  private readonly devices: readonly DeviceBinding[];
  private readonly models: readonly ControlModel[];
  private readonly modelIndex = new Map<ModelId, number>();
  private readonly expected: Float64Array;
  /** Per model: 1 = pinned (from the model config, changed by pin()). */
  private readonly pinned: Uint8Array;
  /** 1 = unloaded by an operator and not requested since (the policy must not prefetch it back). */
  private readonly heldOut: Uint8Array;
  private readonly memoryBytes: Float64Array;
  private readonly clock: Clock;
  private readonly table: InstanceTable;
  private readonly pending: PendingQueues<Tracked>;
  private readonly requests = new Map<RequestId, Tracked>();
  private readonly defer: ((fn: () => void) => void) | null;
  private readonly onActions: GlobalSchedulerOptions["onActions"] | null;
  private maintenanceDue = false;
  private maintenanceScheduled = false;
  private inMaintenance = false;
  private numRounds = 0;
  private numOnDemand = 0;
  private numPendingRequests = 0;
  private numRejected = 0;

  constructor(o: GlobalSchedulerOptions) {
    this.config = resolveControlConfig(o.config);
    this.policy = typeof o.policy === "string" ? createPolicy(o.policy, this.config, o.policyOptions) : o.policy;
    this.devices = o.devices;
    this.models = o.models;
    this.clock = o.clock;
    this.defer = o.defer ?? null;
    this.onActions = o.onActions ?? null;
    if (o.devices.length === 0) throw new PrismError("PRISM_CONFIG_INVALID", "the global scheduler needs at least one device");
    o.devices.forEach((b, d) => {
      if ((b.scheduler.deviceId as number) !== d) {
        throw new PrismError("PRISM_CONFIG_INVALID", `devices must be given in DeviceId order 0..N-1: position ${d} holds device ${b.scheduler.deviceId}`, { device: b.scheduler.deviceId });
      }
      const local = b.scheduler.config?.policy;
      if (local !== undefined && local !== this.policy.needs.localPolicy) {
        throw new PrismError("PRISM_CONFIG_INVALID",
          `device ${d} runs local policy "${local}" but global policy "${this.policy.name}" needs "${this.policy.needs.localPolicy}" (set the device scheduler's policy from policy.needs)`,
          { device: d, local, needed: this.policy.needs.localPolicy });
      }
    });
    o.models.forEach((m, i) => {
      if (this.modelIndex.has(m.profile.id)) throw new PrismError("PRISM_CONFIG_INVALID", `model '${m.profile.id}' is listed twice`, { model: m.profile.id });
      this.modelIndex.set(m.profile.id, i);
    });
    this.expected = Float64Array.from(o.models, (m) => rateOf(o.expectedRates, m.profile.id));
    this.pinned = Uint8Array.from(o.models, (m) => (m.pinned === true ? 1 : 0));
    this.heldOut = new Uint8Array(o.models.length);
    this.memoryBytes = Float64Array.from(o.devices, (b) => usableBytes(b.memory.snapshot()));
    const n = o.models.length;
    const dn = o.devices.length;
    this.demand = new DemandEstimator({
      numModels: n,
      rateWindowMs: this.config.rateWindowMs,
      violationWindowMs: this.config.violationWindowMs,
      priorRatesPerS: this.expected,
      startMs: o.clock.nowMs(),
    });
    this.router = new Router(n, dn, dn);
    this.table = new InstanceTable(n, dn);
    this.pending = new PendingQueues<Tracked>(n);
    this.executor = new ActionExecutor({
      devices: o.devices,
      models: o.models,
      modelIndex: this.modelIndex,
      router: this.router,
      table: this.table,
      needs: this.policy.needs,
      isPinned: (m) => this.pinned[m] === 1,
      hooks: {
        detached: (spec, device, nowMs) => this.detach(spec, device, nowMs),
        requeue: (spec, preferDevice, nowMs) => this.requeue(spec, preferDevice, nowMs),
      },
    });
  }

  // ==== requests ==================================================================================

  /**
   * Route and submit a request. "accepted": the sink will hear back exactly once (it may first wait
   * here for an activation). "busy": no room now (queue bounds), retry later. A PrismError: unknown
   * model, no device can ever hold it (PRISM_NO_CAPACITY), or the device refused the request.
   */
  submit(spec: SubmitRequest): SubmitResult {
    const nowMs = this.clock.nowMs();
    if (this.maintenanceDue) this.maintain(nowMs);
    const m = this.modelIndex.get(spec.modelId);
    if (m === undefined) {
      this.numRejected++;
      return new PrismError("PRISM_UNKNOWN_MODEL", `unknown model '${spec.modelId}'`, { model: spec.modelId });
    }
    if (this.requests.has(spec.requestId)) {
      this.numRejected++;
      return new PrismError("PRISM_REQUEST_INVALID", `request id ${spec.requestId} is already in flight`, { requestId: spec.requestId });
    }
    this.heldOut[m] = 0;
    this.demand.onArrival(m, nowMs, spec.promptTokens.length);
    if (this.executor.numMigrating > 0 && this.executor.migrationReady()) this.scheduleMaintenance();
    const t = new Tracked(this, spec, m);
    const res = this.place(t, nowMs, NO_DEVICE, true);
    if (res === "accepted") {
      this.requests.set(spec.requestId, t);
      return res;
    }
    this.demand.onDrop(m, nowMs, t.promptTokens);
    if (res !== "busy") this.numRejected++;
    return res;
  }

  /** Cancel wherever the request is; false when unknown or already finished. */
  cancel(requestId: RequestId): boolean {
    const t = this.requests.get(requestId);
    if (t === undefined) return false;
    if (t.device !== NO_DEVICE) return this.devices[t.device]!.scheduler.cancel(requestId);
    this.pending.remove(t.model, t);
    t.onFinish(requestId, CANCELLED, this.unstartedStats(t, this.clock.nowMs()));
    return true;
  }

  // ==== admin (gateway /admin) =====================================================================

  /**
   * Make the model resident now where the policy would put it for a request (an idle victim may be
   * evicted). Resolves once the activation is issued (the device loads asynchronously); a no-op when
   * an instance already takes requests. PRISM_NO_CAPACITY when the policy cannot place it now.
   */
  async load(model: ModelId): Promise<void> {
    const m = this.indexOf(model);
    this.heldOut[m] = 0;
    const nowMs = this.clock.nowMs();
    if (this.router.route(m) !== NO_DEVICE) return;
    const od = this.policy.onDemand(this.observe(nowMs), m, nowMs);
    if (od.kind !== "activate") {
      throw new PrismError("PRISM_NO_CAPACITY", `policy ${this.policy.name} cannot place model '${model}' now (${od.kind})`, { model, policy: this.policy.name });
    }
    this.applyActions(od.actions, nowMs, "demand");
  }

  /**
   * Deactivate every instance of the model (the drain rule applies: running requests finish, queued
   * ones are placed again, which may activate the model elsewhere). Fixed-placement policies put
   * their models back at the next round. Resolves once the deactivations are issued.
   */
  async unload(model: ModelId): Promise<void> {
    const m = this.indexOf(model);
    // An operator's unload sticks until the model is requested or loaded again (Ollama's keep_alive: 0).
    this.heldOut[m] = 1;
    const nowMs = this.clock.nowMs();
    const actions: Action[] = [];
    for (let d = 0; d < this.devices.length; d++) {
      const code = this.table.get(m, d);
      if (code === InstanceCode.active || code === InstanceCode.activating || code === InstanceCode.migrating) {
        actions.push({ kind: "deactivate", model, device: this.devices[d]!.scheduler.deviceId });
      }
    }
    this.applyActions(actions, nowMs, "demand");
  }

  /** Pin (never evicted or moved) or unpin a model, here and on the devices holding it. */
  pin(model: ModelId, pinned: boolean): void {
    const m = this.indexOf(model);
    this.pinned[m] = pinned ? 1 : 0;
    const fixed = this.policy.needs.pinActivated;
    for (const b of this.devices) {
      if (!b.scheduler.hasModel(model)) continue;
      if (pinned || fixed) b.scheduler.pin(model);
      else b.scheduler.unpin(model);
    }
  }

  /** JSON-ready view of placement and demand (admin state). */
  placementView(): unknown {
    const nowMs = this.clock.nowMs();
    const s = this.observe(nowMs);
    return {
      policy: this.policy.name,
      needs: this.policy.needs,
      counters: this.counters,
      pending: this.pending.size,
      models: s.models.map((m) => ({
        id: m.id,
        pinned: m.pinned,
        instances: m.instances.map((i) => ({ device: i.device, state: i.state, queued: i.queuedRequests, running: i.runningRequests })),
        pending: m.pendingRequests,
        rate_per_s: round3(m.demand.arrivalRatePerS),
        token_rate_per_s: round3(m.demand.tokenRatePerS),
        violation_fraction: round3(m.demand.violationFraction),
      })),
      devices: s.devices.map((d) => ({
        device: d.index,
        memory_bytes: d.memoryBytes,
        weight_bytes: d.weightBytes,
        kv_used_bytes: d.kvUsedBytes,
        models: d.instances.map((i) => s.models[i.model]!.id),
      })),
    };
  }

  // ==== the round =================================================================================

  /** One planning round: settle → observe → plan → apply, then place pending requests. */
  tick(nowMs: number = this.clock.nowMs()): TickReport {
    this.maintain(nowMs);
    const state = this.observe(nowMs);
    const actions = this.policy.plan(state, nowMs);
    const report = this.applyActions(actions, nowMs, "round");
    this.retryPending(nowMs);
    this.numRounds++;
    return { nowMs, actions, failed: report.failed };
  }

  /**
   * The cluster as the policies see it. Also reconciles what the devices did on their own: an
   * instance whose weights a device evicted (idle) or whose load it gave up is forgotten; an
   * instance control did not start (added to a device directly) is adopted.
   */
  observe(nowMs: number = this.clock.nowMs()): ClusterState {
    const snapshots: DeviceSnapshot[] = this.devices.map((b, d) => this.observeDevice(b, d, nowMs));
    const records: ModelRecord[] = this.models.map((cm, m) => ({
      id: cm.profile.id,
      weightBytes: cm.profile.weightBytes,
      kvBytesPerToken: kvBytesPerToken(cm),
      maxContextTokens: cm.profile.maxContextTokens,
      ttftSloMs: cm.ttftSloMs,
      tpotSloMs: cm.tpotSloMs,
      pinned: this.pinned[m] === 1,
      heldOut: this.heldOut[m] === 1,
      keepAliveMs: cm.keepAliveMs ?? this.config.idleEvictMs,
      expectedRatePerS: this.expected[m]!,
      demand: this.demand.view(m, nowMs),
      pendingRequests: this.pending.count(m),
      oldestPendingMs: this.pending.oldestMs(m),
    }));
    return buildClusterState(nowMs, records, snapshots);
  }

  get counters(): Readonly<GlobalCounters> {
    return {
      ...this.executor.counters,
      rounds: this.numRounds,
      onDemandActivations: this.numOnDemand,
      pendingRequests: this.numPendingRequests,
      rejected: this.numRejected,
    };
  }

  /** Requests held here now (no instance could take them yet). */
  get numPending(): number {
    return this.pending.size;
  }

  /** Requests accepted and not finished (on devices or pending). */
  get numInFlight(): number {
    return this.requests.size;
  }

  /** Devices where `model` takes requests now (router replicas), ascending. */
  replicasOf(model: ModelId): number[] {
    const m = this.modelIndex.get(model);
    if (m === undefined) return [];
    const out: number[] = [];
    for (let d = 0; d < this.devices.length; d++) if (this.router.isReplica(m, d)) out.push(d);
    return out;
  }

  /** Deferred work: progress draining instances, then place pending requests. */
  maintain(nowMs: number = this.clock.nowMs()): void {
    if (this.inMaintenance) return;
    this.inMaintenance = true;
    this.maintenanceDue = false;
    try {
      this.executor.progressMigrations(nowMs);
      this.executor.settleAll(nowMs);
      this.retryPending(nowMs);
    } finally {
      this.inMaintenance = false;
    }
  }

  // ==== called by Tracked (inside device sinks) ====================================================

  /** @internal A tracked request finished on a device or here. */
  onTrackedFinish(t: Tracked, outcome: RequestOutcome, stats: RequestStats): void {
    const nowMs = this.clock.nowMs();
    this.requests.delete(t.spec.requestId);
    const d = t.device;
    let drainedIdle = false;
    if (d !== NO_DEVICE) {
      this.unbind(t, d, nowMs);
      if (this.table.get(t.model, d) === InstanceCode.draining && this.table.inflight(t.model, d) === 0) {
        this.executor.onDrainedIdle(t.model, d);
        drainedIdle = true;
      }
    }
    switch (outcome.kind) {
      case "finished": {
        const cm = this.models[t.model]!;
        const attained = stats.ttftMs <= cm.ttftSloMs && !(stats.tpotMs > cm.tpotSloMs);
        this.demand.onFinish(t.model, nowMs, stats.ttftMs, stats.tpotMs, attained, t.promptTokens, stats.numOutputTokens);
        break;
      }
      case "cancelled":
        this.demand.onCancel(t.model, nowMs, t.promptTokens);
        break;
      case "failed":
        this.demand.onDrop(t.model, nowMs, t.promptTokens);
        break;
    }
    if (drainedIdle || (this.pending.size > 0 && d !== NO_DEVICE)) this.scheduleMaintenance();
  }

  // ==== internals ==================================================================================

  /**
   * Put a request on a device, or in the pending queue. `fresh`: a new request (busy / errors go
   * back to the caller); otherwise a requeued one (never lost: busy waits here, errors fail its sink).
   */
  private place(t: Tracked, nowMs: number, preferDevice: number, fresh: boolean): SubmitResult {
    const m = t.model;
    let d = preferDevice !== NO_DEVICE && this.router.isReplica(m, preferDevice) ? preferDevice : this.router.route(m);
    if (d === NO_DEVICE) {
      // A model already waiting asks again only on a fresh arrival (reaskWaiting); requeued requests
      // keep the earlier decision until a round, a finish or an arrival changes things.
      if (this.pending.count(m) === 0) {
        const od = this.policy.onDemand(this.observe(nowMs), m, nowMs);
        switch (od.kind) {
          case "activate":
            this.applyActions(od.actions, nowMs, "demand");
            this.numOnDemand++;
            d = this.router.isReplica(m, od.device) ? od.device : this.router.route(m);
            break;
          case "wait":
            break;
          case "reject": {
            const err = new PrismError("PRISM_NO_CAPACITY", `policy ${this.policy.name} cannot place model '${this.models[m]!.profile.id}' on any device`, {
              model: this.models[m]!.profile.id, policy: this.policy.name,
            });
            if (fresh) return err;
            this.fail(t, err, nowMs);
            return "accepted";
          }
        }
      } else if (fresh && this.reaskWaiting(m, nowMs)) {
        // The waiting requests go first (FIFO per model): this one joins them, then all are placed.
        const res = this.hold(t, fresh);
        this.retryPending(nowMs);
        return res;
      }
      if (d === NO_DEVICE) return this.hold(t, fresh);
    }
    const res = this.devices[d]!.scheduler.submit(t.spec);
    if (res === "accepted") {
      this.bind(t, d, nowMs);
      return res;
    }
    if (fresh) return res;
    if (res === "busy") return this.hold(t, false);
    this.fail(t, res, nowMs);
    return "accepted";
  }

  /**
   * A new arrival for a model that is waiting is new evidence (its arrival rate just grew; a burst
   * of same-time arrivals only counts once all are in): ask the policy again instead of keeping the
   * earlier "wait" until the next round or finish. Only "activate" changes anything here; true when
   * an instance now takes the model's requests.
   */
  private reaskWaiting(m: number, nowMs: number): boolean {
    const od = this.policy.onDemand(this.observe(nowMs), m, nowMs);
    if (od.kind !== "activate") return false;
    this.applyActions(od.actions, nowMs, "demand");
    this.numOnDemand++;
    return this.router.route(m) !== NO_DEVICE;
  }

  private hold(t: Tracked, fresh: boolean): SubmitResult {
    if (fresh && this.pending.count(t.model) >= this.config.maxPendingPerModel) return "busy";
    t.device = NO_DEVICE;
    this.pending.push(t.model, t, t.spec.arrivalMs);
    this.numPendingRequests++;
    return "accepted";
  }

  /** Place pending requests of every waiting model (FIFO per model). */
  private retryPending(nowMs: number): void {
    if (this.pending.size === 0) return;
    let state: ClusterState | null = null;
    for (const m of this.pending.models()) {
      let d = this.router.route(m);
      if (d === NO_DEVICE) {
        state ??= this.observe(nowMs);
        const od = this.policy.onDemand(state, m, nowMs);
        if (od.kind === "wait") continue;
        if (od.kind === "reject") {
          const err = new PrismError("PRISM_NO_CAPACITY", `policy ${this.policy.name} cannot place model '${this.models[m]!.profile.id}' on any device`, {
            model: this.models[m]!.profile.id, policy: this.policy.name,
          });
          for (let t = this.pending.shift(m); t !== undefined; t = this.pending.shift(m)) this.fail(t, err, nowMs);
          continue;
        }
        this.applyActions(od.actions, nowMs, "demand");
        this.numOnDemand++;
        state = null;
        d = this.router.isReplica(m, od.device) ? od.device : this.router.route(m);
        if (d === NO_DEVICE) continue;
      }
      const dev = this.devices[d]!.scheduler;
      for (let t = this.pending.shift(m); t !== undefined; t = this.pending.shift(m)) {
        const res = dev.submit(t.spec);
        if (res === "accepted") {
          this.bind(t, d, nowMs);
        } else if (res === "busy") {
          this.pending.unshift(m, t, t.spec.arrivalMs);
          break;
        } else {
          this.fail(t, res, nowMs);
        }
      }
    }
  }

  private applyActions(actions: readonly Action[], nowMs: number, source: "round" | "demand"): ApplyReport {
    if (actions.length === 0) return { applied: 0, failed: [] };
    const report = this.executor.apply(actions, nowMs);
    this.onActions?.(actions, nowMs, source);
    return report;
  }

  private observeDevice(b: DeviceBinding, d: number, nowMs: number): DeviceSnapshot {
    const stats = b.scheduler.stats();
    const snap = b.memory.snapshot();
    const limits = new Map(snap.spaces.map((s) => [s.modelId, s] as const));
    const instances: InstanceSnapshot[] = [];
    for (const ms of stats.models) {
      const m = this.modelIndex.get(ms.modelId);
      if (m === undefined) continue; // not ours (cannot happen when all models go through control)
      const busy = ms.numQueued > 0 || ms.numRunning > 0;
      let code = this.table.get(m, d);
      switch (code) {
        case InstanceCode.none:
          if (ms.residency === "absent" && !busy) {
            this.executor.forget(m, d, nowMs); // leftover of an earlier removal: clean up
            continue;
          }
          code = ms.residency === "resident" ? InstanceCode.active : InstanceCode.activating;
          this.table.set(m, d, code, nowMs);
          this.router.addReplica(m, d, code === InstanceCode.active);
          break;
        case InstanceCode.activating:
        case InstanceCode.active:
          if (ms.residency === "resident") {
            code = InstanceCode.active;
            this.router.markActive(m, d);
          } else if (ms.residency === "loading" || busy) {
            code = InstanceCode.activating;
          } else if (code === InstanceCode.active || nowMs - this.table.sinceMs(m, d) >= this.config.roundMs) {
            // The device evicted the idle weights for another model, or gave up a load it could not fit.
            if (code === InstanceCode.active) this.executor.countExternalEviction();
            this.executor.forget(m, d, nowMs);
            continue;
          }
          this.table.set(m, d, code, nowMs);
          break;
        case InstanceCode.migrating:
          if (ms.residency !== "resident" && !busy) {
            // The device evicted the idle source for room: the target alone serves from now on.
            this.executor.countExternalEviction();
            this.executor.forget(m, d, nowMs);
            continue;
          }
          break;
        case InstanceCode.draining:
          break;
      }
      const space = limits.get(ms.modelId);
      instances.push({
        modelId: ms.modelId,
        state: instanceState(code)!,
        kvUsedBytes: ms.mappedPages * snap.pageBytes,
        kvLimitBytes: space?.limitBytes ?? null,
        kvLimitRevision: space?.limitRevision ?? 0,
        queuedRequests: ms.numQueued,
        runningRequests: ms.numRunning,
        lastUsedMs: this.table.lastUsedMs(m, d),
        sinceMs: this.table.sinceMs(m, d),
      });
    }
    return { id: b.scheduler.deviceId, memoryBytes: this.memoryBytes[d]!, pageBytes: snap.pageBytes, instances };
  }

  private indexOf(model: ModelId): number {
    const m = this.modelIndex.get(model);
    if (m === undefined) throw new PrismError("PRISM_UNKNOWN_MODEL", `unknown model '${model}'`, { model });
    return m;
  }

  private bind(t: Tracked, d: number, nowMs: number): void {
    t.device = d;
    this.router.addLoad(d, t.costTokens);
    this.table.use(t.model, d, 1, nowMs);
  }

  private unbind(t: Tracked, d: number, nowMs: number): void {
    this.router.addLoad(d, -t.costTokens);
    this.table.use(t.model, d, -1, nowMs);
    t.device = NO_DEVICE;
  }

  private detach(spec: SubmitRequest, device: number, nowMs: number): void {
    const t = spec.sink as Tracked;
    t.spec = spec;
    if (t.device === device) this.unbind(t, device, nowMs);
  }

  private requeue(spec: SubmitRequest, preferDevice: number, nowMs: number): void {
    const t = spec.sink as Tracked;
    t.spec = spec;
    this.place(t, nowMs, preferDevice, false);
  }

  private fail(t: Tracked, error: PrismError, nowMs: number): void {
    t.device = NO_DEVICE;
    t.onFinish(t.spec.requestId, { kind: "failed", error }, this.unstartedStats(t, nowMs));
  }

  private unstartedStats(t: Tracked, nowMs: number): RequestStats {
    const s = t.spec;
    const first = s.firstTokenMs ?? Number.NaN;
    return {
      arrivalMs: s.arrivalMs,
      admittedMs: Number.NaN,
      firstTokenMs: first,
      finishedMs: nowMs,
      queueMs: Number.NaN,
      ttftMs: first - s.arrivalMs,
      tpotMs: Number.NaN,
      activationWaitMs: Number.NaN,
      numPreemptions: 0,
      numPromptTokens: t.promptTokens,
      numOutputTokens: s.generatedTokens?.length ?? 0,
      stopTokenId: -1,
    };
  }

  private scheduleMaintenance(): void {
    if (this.defer === null) {
      this.maintenanceDue = true;
      return;
    }
    if (this.maintenanceScheduled) return;
    this.maintenanceScheduled = true;
    this.defer(() => {
      this.maintenanceScheduled = false;
      this.maintain(this.clock.nowMs());
    });
  }
}

const CANCELLED: RequestOutcome = Object.freeze({ kind: "cancelled" });

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function rateOf(rates: GlobalSchedulerOptions["expectedRates"], id: ModelId): number {
  if (rates === undefined) return 0;
  const r = rates instanceof Map ? rates.get(id) : (rates as Readonly<Record<string, number>>)[id];
  return r ?? 0;
}
