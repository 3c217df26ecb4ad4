/**
 * The cluster driver that runs the real GlobalScheduler (src/control) with a named policy: every
 * arrival goes through GlobalScheduler.submit, every roundMs the simulator calls tick, and deferred
 * maintenance runs as a same-time event. The simulator adds nothing to the policy: it configures the
 * device schedulers as the policy's `needs` say and relays time.
 */
import type { DeviceSchedulerConfig, SubmitRequest } from "../device/types.ts";
import { GlobalScheduler } from "../control/global-scheduler.ts";
import { createPolicy, type PolicyOptions } from "../control/policies/registry.ts";
import { DEFAULT_CONTROL_CONFIG, type ControlConfig, type Policy } from "../control/types.ts";
import { MODEL_MAX_RUNNING, type ClusterContext, type ClusterDriver } from "./simulator.ts";

export interface GlobalDriverOptions {
  readonly policy: string;
  readonly config?: Partial<ControlConfig>;
  readonly policyOptions?: PolicyOptions;
  /** Expected request rate per model id (req/s): the same prior for every policy. */
  readonly expectedRates?: ReadonlyMap<string, number>;
}

export class GlobalDriver implements ClusterDriver {
  readonly roundMs: number;
  readonly deviceConfig: Partial<DeviceSchedulerConfig>;
  readonly policy: Policy;
  private gs: GlobalScheduler | null = null;
  private ctx: ClusterContext | null = null;
  private readonly opts: GlobalDriverOptions;
  private readonly config: ControlConfig;

  constructor(opts: GlobalDriverOptions) {
    this.opts = opts;
    this.config = { ...DEFAULT_CONTROL_CONFIG, ...(opts.config ?? {}) };
    this.roundMs = this.config.roundMs;
    this.policy = createPolicy(opts.policy, this.config, opts.policyOptions);
    this.deviceConfig = { policy: this.policy.needs.localPolicy };
  }

  get scheduler(): GlobalScheduler {
    return this.gs!;
  }

  get migrations(): number {
    return this.gs === null ? 0 : this.gs.counters.migrations;
  }

  counters(): Record<string, number> {
    const c = this.gs!.counters;
    return {
      rounds: c.rounds,
      activations: c.activations,
      on_demand_activations: c.onDemandActivations,
      deactivations: c.deactivations,
      migrations: c.migrations,
      external_evictions: c.externalEvictions,
      requeued: c.requeued,
      pending_requests: c.pendingRequests,
      rejected: c.rejected,
      failed_actions: c.failedActions,
    };
  }

  init(ctx: ClusterContext): void {
    this.ctx = ctx;
    this.gs = new GlobalScheduler({
      devices: ctx.devices.map((d) => ({ scheduler: d.scheduler, memory: d.memory })),
      models: ctx.models.map((m) => ({
        profile: m.cost.profile,
        ttftSloMs: m.ttftSloMs,
        tpotSloMs: m.tpotSloMs,
        serving: { maxRunning: Math.min(MODEL_MAX_RUNNING, ctx.devices[0]!.scheduler.config.maxBatchSeqs) },
      })),
      policy: this.policy,
      clock: ctx.clock,
      config: this.config,
      ...(this.opts.expectedRates !== undefined ? { expectedRates: this.opts.expectedRates } : {}),
      defer: ctx.defer,
    });
  }

  submit(spec: SubmitRequest, _modelIndex: number, _nowMs: number): void {
    const r = this.gs!.submit(spec);
    if (r !== "accepted") this.ctx!.reject(spec);
  }

  tick(nowMs: number): void {
    this.gs!.tick(nowMs);
  }
}
