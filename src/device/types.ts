/**
 * Public records of the per-device scheduler: configuration slices, the request a caller submits,
 * the sink it streams into, the actions the scheduler asks its driver to run, and the stats it keeps.
 *
 * Who uses them: the gateway / control executor (submit, cancel, model management), the DeviceLoop
 * (server driver) and the simulator (virtual-clock driver); both drivers see the same actions.
 */
import type { PrismError } from "../core/errors.ts";
import type { DeviceId, ModelId, RequestId } from "../core/ids.ts";
import type { SampledToken, SamplingParams, StepPlan } from "../core/records.ts";

/** "slo": slack-ordered (Prism); "fcfs": arrival order (the elastic / swap baselines). */
export type SchedulingPolicy = "slo" | "fcfs";

/** One device's scheduler settings; built once by resolveDeviceSchedulerConfig (validated, frozen). */
export interface DeviceSchedulerConfig {
  readonly policy: SchedulingPolicy;
  /** Token budget of one step (decode tokens + prefill chunk tokens). Must be ≥ maxBatchSeqs. */
  readonly maxBatchTokens: number;
  /** Most sequences admitted (running) on the device at once; every running decode fits in a step. */
  readonly maxBatchSeqs: number;
  /** Largest prefill chunk one sequence feeds per step, so a long prompt does not stall decodes. */
  readonly prefillChunkTokens: number;
  /** Tokens per KV block (the same for every model on the device). */
  readonly blockTokens: number;
  /** Admission asks for prompt + this many tokens of KV (the prototype's "+20"). */
  readonly decodeMarginTokens: number;
  /** Queue bounds: submit answers "busy" beyond them. */
  readonly maxQueuedPerModel: number;
  readonly maxQueuedTotal: number;
  /** Prior of the per-model prefill cost estimate, ms per prefill token (prototype: 1/2048 s). */
  readonly prefillMsPerTokenPrior: number;
  /** EWMA weight of one measured step in the prefill estimate (0 < α ≤ 1). */
  readonly prefillEstAlpha: number;
  /** Clamp of a request's estimated prefill time (prototype: 50 ms .. 20 s). */
  readonly prefillEstMinMs: number;
  readonly prefillEstMaxMs: number;
  /** Re-key a model's queued requests when its estimate drifts more than this fraction. */
  readonly rekeyTolerance: number;
  /**
   * Fail queued requests (PRISM_SLO_UNREACHABLE) once their TTFT deadline (arrival + SLO) has passed
   * ("slo" policy; FCFS queues have no deadline order): load shedding, so that under overload the
   * device serves requests that can still meet their SLO. Off by default: a late answer may be better
   * than an error (a cold start slower than the SLO would fail its request).
   */
  readonly abortUnreachable: boolean;
  /**
   * Queued requests whose TTFT deadline has passed wait behind every request that can still meet
   * its own ("slo" policy; abortUnreachable fails them instead). They are still served, in arrival
   * order, as soon as nothing more urgent waits. Under overload, least-slack-first otherwise spends
   * the device on requests that have already missed, and the ones behind them miss too.
   */
  readonly demoteExpired: boolean;
  /**
   * With demoteExpired, a request past its deadline is admitted only while fewer than this many
   * sequences run on the device (≥ 1, so an idle device always takes it).
   */
  readonly lateMaxRunning: number;
  /**
   * With demoteExpired, a request still queued this long after its arrival fails
   * (PRISM_SLO_UNREACHABLE): under sustained overload a missed request gets an answer within a
   * bounded time instead of waiting for a lull. Infinity = never.
   */
  readonly lateMaxWaitMs: number;
  /**
   * "slo" only: a queue head stays out of a step whose end it would push past the TTFT deadline of a
   * request whose first token that step samples and meets, if the head still meets its own
   * deadline from the next step (device-scheduler.ts defersForDeadline).
   */
  readonly guardFirstTokens: boolean;
  /**
   * Steps of the other models go on while a model's weights load (at most one load at a time). Only
   * for executors whose loadWeights really runs beside execute (a GPU's copy engine); with a
   * synchronous load (the embedded CPU engine copies on the calling thread) nothing overlaps.
   */
  readonly overlapLoads: boolean;
}

/** How one model is served on this device (from the placement / model catalog). */
export interface ModelServingConfig {
  readonly ttftSloMs: number;
  readonly tpotSloMs: number;
  /** Most requests of this model running (admitted) at once. */
  readonly maxRunning: number;
  /** Pinned models are never evicted, neither for room nor on keep-alive expiry. */
  readonly pinned: boolean;
  /** Unload after this long idle (no request queued or running); Infinity = never. */
  readonly keepAliveMs: number;
  /** Optional cap on the model's mapped KV bytes (KvSpace.setLimit, revision 0). */
  readonly kvLimitBytes?: number;
}

export type FinishReason = "stop" | "length";

export type RequestOutcome =
  | { readonly kind: "finished"; readonly reason: FinishReason }
  | { readonly kind: "cancelled" }
  | { readonly kind: "failed"; readonly error: PrismError };

/** Per-request timings, delivered once with the outcome. NaN = did not happen. */
export interface RequestStats {
  readonly arrivalMs: number;
  /** First admission (KV granted) on this device. */
  readonly admittedMs: number;
  readonly firstTokenMs: number;
  readonly finishedMs: number;
  /** admittedMs − arrivalMs. */
  readonly queueMs: number;
  /** firstTokenMs − arrivalMs. */
  readonly ttftMs: number;
  /** Mean ms per output token after the first (NaN with fewer than two tokens). */
  readonly tpotMs: number;
  /** Time spent queued while the model was not resident (waiting for its activation). */
  readonly activationWaitMs: number;
  readonly numPreemptions: number;
  readonly numPromptTokens: number;
  /** Tokens streamed to the sink (EOS / stop tokens are not streamed). */
  readonly numOutputTokens: number;
  /** The EOS or stop token that ended the request, or -1. */
  readonly stopTokenId: number;
}

/**
 * Where a request's output goes. Called synchronously from inside completeStep / cancel / failStep
 * (never from nextAction except for SLO aborts and too-large failures); must not throw. It may call
 * submit / cancel re-entrantly.
 */
export interface RequestSink {
  /** One sampled token; `sampled` is the executor's record (do not keep it past the call if pooled). */
  onToken(requestId: RequestId, sampled: SampledToken, outputIndex: number): void;
  /** Exactly once per accepted request. */
  onFinish(requestId: RequestId, outcome: RequestOutcome, stats: RequestStats): void;
}

export interface SubmitRequest {
  readonly requestId: RequestId;
  readonly modelId: ModelId;
  readonly promptTokens: Int32Array;
  /** Output tokens wanted (including any generatedTokens already produced elsewhere). */
  readonly maxTokens: number;
  readonly sampling: SamplingParams;
  readonly stopTokenIds?: readonly number[];
  readonly ignoreEos?: boolean;
  readonly arrivalMs: number;
  readonly sink: RequestSink;
  /**
   * Tokens already generated and streamed (a request handed back by drainModel and resubmitted
   * elsewhere): they are recomputed with the prompt and not streamed again.
   */
  readonly generatedTokens?: Int32Array;
  /** When the first token was produced elsewhere (keeps TTFT honest after a migration). */
  readonly firstTokenMs?: number;
}

/** "busy": a queue bound was hit (retry elsewhere / later); a PrismError: the request is invalid here. */
export type SubmitResult = "accepted" | "busy" | PrismError;

/**
 * What the driver must do next. At most one step and one load are outstanding; without overlapLoads,
 * one action in all (DeviceScheduler.acceptsAction says when to ask again).
 */
export type DeviceAction =
  | { readonly kind: "step"; readonly plan: StepPlan }
  /** Copy weights (executor.loadWeights), then call completeLoad / failLoad. */
  | { readonly kind: "load"; readonly modelId: ModelId; readonly byteOffset: number; readonly weightBytes: number }
  /** Already accounted (memory freed); the driver calls executor.unloadWeights and asks again. */
  | { readonly kind: "unload"; readonly modelId: ModelId; readonly reason: UnloadReason }
  /** Nothing to do: call nextAction again on new work (the wake listener) or at wakeAtMs. */
  | { readonly kind: "idle"; readonly wakeAtMs: number | null };

export type UnloadReason = "keep-alive" | "evict" | "manual";

/**
 * One record per executed step. The same object is reused every step: read it inside onStep (or
 * from lastStepRecord) and copy what you keep.
 */
export interface StepRecord {
  readonly deviceId: DeviceId;
  readonly stepIndex: number;
  /** Clock time when the step was planned, and when its result was applied. */
  readonly startMs: number;
  readonly endMs: number;
  /** Executor-reported (or modelled) compute time. */
  readonly stepMs: number;
  readonly numSeqs: number;
  readonly numPrefillTokens: number;
  readonly numDecodeTokens: number;
  readonly numQueued: number;
  readonly numRunning: number;
  /** Model ids in device order, and the KV pages mapped by each (same index). */
  readonly modelIds: readonly ModelId[];
  readonly kvPages: Int32Array;
  readonly kvUsedBlocks: Int32Array;
  /** Queued and running requests per model (same index as modelIds). */
  readonly queuedByModel: Int32Array;
  readonly runningByModel: Int32Array;
}

export type ResidencyKind = "absent" | "loading" | "resident";

export interface ModelStats {
  readonly modelId: ModelId;
  readonly residency: ResidencyKind;
  readonly pinned: boolean;
  readonly numQueued: number;
  readonly numRunning: number;
  readonly usedBlocks: number;
  readonly mappedPages: number;
  /** Current prefill estimate (EWMA), ms per prefill token. */
  readonly prefillMsPerToken: number;
  readonly numActivations: number;
  readonly lastActivationMs: number;
}

export interface DeviceStats {
  readonly deviceId: DeviceId;
  readonly numSteps: number;
  readonly numQueued: number;
  readonly numRunning: number;
  readonly numSubmitted: number;
  readonly numFinished: number;
  readonly numCancelled: number;
  readonly numFailed: number;
  /** Handed back by drainModel (not finished here). */
  readonly numDrained: number;
  readonly numActivations: number;
  /** Unloads to make room for another model. */
  readonly numEvictions: number;
  readonly numKeepAliveUnloads: number;
  readonly numManualUnloads: number;
  readonly numPreemptions: number;
  readonly totalActivationMs: number;
  readonly models: readonly ModelStats[];
}

export type UnloadResult = "unloading" | "not-resident" | PrismError;
