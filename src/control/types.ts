/**
 * The global scheduler's vocabulary: the cluster as the policies see it (plain records built by
 * `observe`), the actions they return, and what each policy needs from the device schedulers.
 *
 * Indices: models are numbered 0..N-1 in the order the GlobalScheduler was given them, devices
 * 0..D-1 by their DeviceId (dense). Policies index arrays with these numbers; ids appear only in
 * actions, which leave the control layer.
 */
import type { DeviceId, ModelId } from "../core/ids.ts";
import type { ModelProfile } from "../core/records.ts";
import type { ModelServingConfig } from "../device/types.ts";

/** A model as the control layer is configured with it (the gateway/sim builds these from config). */
export interface ControlModel {
  readonly profile: ModelProfile;
  readonly ttftSloMs: number;
  readonly tpotSloMs: number;
  /** Never evicted for idleness and never moved by a policy (it may still be placed once). */
  readonly pinned?: boolean;
  /** Idle time after which `prism` may evict it; default: config.idleEvictMs. */
  readonly keepAliveMs?: number;
  /**
   * Extra device-level serving settings (maxRunning, …). The control layer sets ttftSloMs, tpotSloMs
   * and pinned from the fields above, and keepAliveMs = Infinity (idle eviction is a global decision).
   */
  readonly serving?: Partial<ModelServingConfig>;
}

/** Lifecycle of one (model, device) instance. Absent = not on the device. */
export type InstanceState = "activating" | "active" | "deactivating";

export interface InstanceView {
  readonly model: number;
  readonly device: number;
  readonly state: InstanceState;
  readonly weightBytes: number;
  readonly kvUsedBytes: number;
  /** KV limit in force (bytes), or null when elastic. */
  readonly kvLimitBytes: number | null;
  /** Revision of the last limit applied (0 = never set); a new limit must use a larger one. */
  readonly kvLimitRevision: number;
  readonly queuedRequests: number;
  readonly runningRequests: number;
  /** Last time a request was submitted to or finished on this instance (keep-alive clock). */
  readonly lastUsedMs: number;
  /** When the instance entered its current state (activation start, activation done, drain start). */
  readonly sinceMs: number;
}

export interface DeviceView {
  readonly index: number;
  readonly id: DeviceId;
  /** Bytes usable for weights + KV (the device budget minus KV headroom). */
  readonly memoryBytes: number;
  /** KV limits take effect in whole pages of this size (1 when unknown). */
  readonly pageBytes: number;
  /** Σ weights of every instance on the device, deactivating ones included (they hold memory until drained). */
  readonly weightBytes: number;
  readonly kvUsedBytes: number;
  readonly queuedRequests: number;
  readonly runningRequests: number;
  readonly instances: readonly InstanceView[];
}

export interface DemandView {
  /** EWMA of arrivals (req/s), seeded with the expected rate. */
  readonly arrivalRatePerS: number;
  /** EWMA of tokens (prompt at arrival + output at finish) per second. */
  readonly tokenRatePerS: number;
  /**
   * EWMA of Σ promptTokens² per second: with the model's prefill cost per token it gives the
   * second moment of its prefill step lengths, i.e. how long requests of co-located models wait
   * behind them (prism's interference term).
   */
  readonly promptSqRatePerS: number;
  /** Requests arrived and not yet finished/dropped, and their prompt tokens. */
  readonly outstandingRequests: number;
  readonly outstandingTokens: number;
  /** Fraction of recently finished requests that missed their SLO (short EWMA window); 0 with no data. */
  readonly violationFraction: number;
  /** -Infinity when none yet. */
  readonly lastArrivalMs: number;
}

export interface ModelView {
  readonly index: number;
  readonly id: ModelId;
  readonly weightBytes: number;
  /** K+V bytes per token over all layers. */
  readonly kvBytesPerToken: number;
  readonly maxContextTokens: number;
  readonly ttftSloMs: number;
  readonly tpotSloMs: number;
  readonly pinned: boolean;
  /** Unloaded by an operator (admin unload) and not requested since: not to be prefetched back. */
  readonly heldOut: boolean;
  readonly keepAliveMs: number;
  /** The caller's expected rate (req/s) for initial placement; the same input for every policy. */
  readonly expectedRatePerS: number;
  readonly demand: DemandView;
  /** Requests held by the control layer because no instance could take them yet (oldest first). */
  readonly pendingRequests: number;
  /** Arrival time of the oldest pending request (+Infinity when none). */
  readonly oldestPendingMs: number;
  /** pending + queued on devices. */
  readonly waitingRequests: number;
  readonly runningRequests: number;
  readonly instances: readonly InstanceView[];
}

export interface ClusterState {
  readonly nowMs: number;
  readonly models: readonly ModelView[];
  readonly devices: readonly DeviceView[];
}

/**
 * What a policy asks for. Deactivate and migrate never lose a request: see executor.ts for the drain rule.
 * A plan lists its deactivations before its activations on the same device.
 */
export type Action =
  | { readonly kind: "activate"; readonly model: ModelId; readonly device: DeviceId }
  | { readonly kind: "deactivate"; readonly model: ModelId; readonly device: DeviceId }
  | { readonly kind: "migrate"; readonly model: ModelId; readonly from: DeviceId; readonly to: DeviceId }
  | { readonly kind: "setKvLimit"; readonly model: ModelId; readonly device: DeviceId; readonly bytes: number; readonly revision: number };

export type LocalPolicyName = "slo" | "fcfs";
export type KvQuotaMode = "elastic" | "fixed";

/** Device-level configuration a policy needs; the server/sim configures each DeviceScheduler with it. */
export interface DeviceNeeds {
  readonly localPolicy: LocalPolicyName;
  readonly kvQuota: KvQuotaMode;
  /** Pin every model this policy activates, so the device never evicts it on its own (fixed placements). */
  readonly pinActivated: boolean;
  /** At most this many resident models per device (null = no cap). */
  readonly maxModelsPerDevice: number | null;
}

/** Answer to a router miss (a request for a model with no instance that can take it). */
export type OnDemand =
  /** Apply these actions (victim deactivations first, then one activate) and queue the request there. */
  | { readonly kind: "activate"; readonly actions: readonly Action[]; readonly device: number }
  /** Hold the request at the control layer; a later round or a finished request may make room. */
  | { readonly kind: "wait" }
  /** This policy will never serve the model (a static placement left it out). */
  | { readonly kind: "reject" };

export interface Policy {
  readonly name: string;
  readonly needs: DeviceNeeds;
  /** One planning round. Pure: the same (state, now) gives the same actions. */
  plan(state: ClusterState, nowMs: number): Action[];
  /** Where to activate `model` now for a request that found no instance. Pure. */
  onDemand(state: ClusterState, model: number, nowMs: number): OnDemand;
}

export interface ControlConfig {
  /** Planning period (the server calls tick this often; the simulator schedules tick events). */
  readonly roundMs: number;
  /** Migration hysteresis: move only if the pressure drops by more than this fraction. */
  readonly tau: number;
  readonly maxMigrationsPerRound: number;
  /**
   * Default keep-alive: an idle, unpinned model is evicted after this long without use (prism only).
   * Infinity (the default) = lazy eviction: idle models leave only when an activation needs their room.
   */
  readonly idleEvictMs: number;
  /** Sliding windows of the demand estimator. */
  readonly rateWindowMs: number;
  readonly violationWindowMs: number;
  /** Fraction of a device's memory that placement keeps free of weights, for the co-located models' KV. */
  readonly minKvFraction: number;
  /**
   * Activation-time estimate = activationStartMs + weightBytes / loadBytesPerMs: host→device weight
   * bandwidth (bytes per ms) and the fixed start cost (engine bind, CUDA context, …) of one activation.
   */
  readonly loadBytesPerMs: number;
  readonly activationStartMs: number;
  /**
   * Prefill throughput of a device in weight bytes × tokens per ms: a prompt of n tokens of a model
   * with W weight bytes (bf16: 2·params FLOPs per token = W) takes ≈ n·W / computeBytesPerMs ms.
   * Default: an H100 (989 TFLOP/s bf16) at 50% MFU.
   */
  readonly computeBytesPerMs: number;
  /**
   * A model waiting this long forces room: swap evicts a busy resident model; prism drains busy
   * models of strictly lower demand weight.
   */
  readonly swapMaxWaitMs: number;
  /**
   * Liveness: a model whose oldest request has waited this long takes room from idle models (no
   * request queued or running) whatever they are worth. Otherwise a model whose demand has faded
   * (the end of a burst, the end of the traffic) could wait forever behind idle models valued more.
   */
  readonly starvationMs: number;
  /** Requests the control layer holds per model while no instance can take them. */
  readonly maxPendingPerModel: number;
}

export const DEFAULT_CONTROL_CONFIG: ControlConfig = Object.freeze({
  roundMs: 5000,
  tau: 0.2,
  maxMigrationsPerRound: 1,
  // Lazy: an idle model costs nothing until its memory is needed, and every reload costs a load.
  idleEvictMs: Infinity,
  rateWindowMs: 30_000,
  violationWindowMs: 3000,
  minKvFraction: 0.05,
  // Prism's prototype estimates swap-in as weights / 6 GB/s (scheduling/state.py).
  loadBytesPerMs: 6e6,
  activationStartMs: 0,
  computeBytesPerMs: 4.945e11,
  swapMaxWaitMs: 2000,
  starvationMs: 10_000,
  maxPendingPerModel: 256,
});
