/**
 * The per-device scheduler: one instance per device, shared verbatim by the server (DeviceLoop,
 * real clock, real executor) and the simulator (virtual clock, cost model). It is synchronous and
 * never awaits; a driver repeatedly asks `nextAction(now)` and reports back with `completeStep` /
 * `failStep` / `completeLoad` / `failLoad`. At most one step and one weight load are outstanding;
 * without `overlapLoads` at most one action in all (a load stalls the device). With it, the driver
 * asks again while a load runs (`acceptsAction`), so the co-located models keep stepping while the
 * weights copy (a GPU's DMA engine beside its compute): the loading model's weights are allocated
 * before the load starts, its requests wait until it is resident, the KV room its queue head needs
 * is kept from less urgent admissions, and it is never an eviction victim (not resident).
 *
 * THE INVARIANT (everything else follows from it):
 *   Every accepted request is in exactly one place — a model queue (holding no KV blocks), the
 *   running list (holding blocks for every token it has computed or is about to compute), or gone
 *   (its sink got exactly one onFinish, and it holds no blocks). Queues are ordered by a static key
 *   (slo-priority.ts: latest start time, then estimated prefill once late; or arrival for "fcfs"),
 *   so order never changes with time and needs no re-keying; cross-model urgency compares the
 *   heads with the common `now`. The running list is in admission order = priority order, so its
 *   tail is the cheapest to preempt; admission never skips a more urgent request for lack of
 *   memory or of its model's weights (head-of-line), except when the miss is the model's own KV
 *   limit, so urgency decides who gets memory and activations, and nothing starves.
 *
 * One call to nextAction, in order:
 *   1. promote requests whose slack ran out (or fail them, with abortUnreachable);
 *   2. unloads: requested by the layer above, or keep-alive expiry of idle unpinned models;
 *   3. activation wished by the previous call's admission (load, or evict to make room), then
 *      loads requested by the layer above; with overlapLoads, the activation of the most urgent
 *      queue's model right away (so the step planned next already runs beside the copy);
 *   4. a step: decodes first (one token each, growing block tables, preempting under pressure),
 *      then prefill chunks of admitted requests, then admission of new requests by priority while
 *      the token budget lasts (a model just activated admits its head first, so every activation
 *      serves at least one request and two models cannot evict each other without progress);
 *   5. if the step is empty: act on what blocked admission (activate, evict, or fail a request
 *      that cannot fit even alone) or go idle until the next keep-alive expiry.
 *
 * Owns: admission, batching, preemption, activation/eviction and per-request bookkeeping. Does not
 * own: weights bytes (executor), page accounting (memory), timers (driver).
 */
import { PrismError, isPrismError } from "../core/errors.ts";
import type { Clock } from "../core/clock.ts";
import type { Rng } from "../core/rng.ts";
import type { DeviceId, ModelId, RequestId } from "../core/ids.ts";
import type { ModelProfile, SampledToken, SeqStep, StepPlan, StepResult } from "../core/records.ts";
import { assertNever } from "../core/result.ts";
import type { DeviceMemoryApi, SetLimitResult } from "../memory/types.ts";
import type {
  DeviceAction, DeviceSchedulerConfig, DeviceStats, ModelServingConfig, ModelStats, RequestOutcome, RequestStats,
  StepRecord, SubmitRequest, SubmitResult, UnloadReason, UnloadResult,
} from "./types.ts";
import { resolveModelServingConfig } from "./config.ts";
import { ABSENT, ModelEntry } from "./model-entry.ts";
import { headBefore, PAST_CLASS } from "./model-queue.ts";
import { Request } from "./request.ts";
import { RequestBuffers } from "./buffer-pool.ts";
import { pickPreemptionVictim } from "./preemption.ts";
import { evictablePages, pickEvictionVictim } from "./eviction.ts";
import { needsRekey, updatePrefillRate } from "./slo-priority.ts";
import { StepRecordImpl } from "./step-record.ts";

export interface DeviceSchedulerOptions {
  readonly deviceId: DeviceId;
  readonly memory: DeviceMemoryApi;
  readonly clock: Clock;
  /** Reserved for randomized policies; the current policies are deterministic and do not draw. */
  readonly rng: Rng;
  /** Validated slice (resolveDeviceSchedulerConfig). */
  readonly config: DeviceSchedulerConfig;
  /** Per-step record subscriber (the record object is reused; copy what you keep). */
  readonly onStep?: (record: StepRecord) => void;
}

const FINISHED_STOP: RequestOutcome = Object.freeze({ kind: "finished", reason: "stop" });
const FINISHED_LENGTH: RequestOutcome = Object.freeze({ kind: "finished", reason: "length" });
const CANCELLED: RequestOutcome = Object.freeze({ kind: "cancelled" });

class MutablePlan implements StepPlan {
  deviceId: DeviceId;
  stepIndex: number;
  readonly seqs: SeqStep[];
  constructor(deviceId: DeviceId) {
    this.deviceId = deviceId;
    this.stepIndex = 0;
    this.seqs = [];
  }
}

export class DeviceScheduler {
  readonly deviceId: DeviceId;
  readonly config: DeviceSchedulerConfig;
  private readonly memory: DeviceMemoryApi;
  private readonly clock: Clock;
  readonly rng: Rng;
  private readonly pageBytes: number;
  /** Pages any KV space may use when no weights are resident (total − headroom). */
  private readonly kvCapacityPages: number;
  private readonly headroomPages: number;
  /** config.blockTokens, read per planned sequence. */
  private readonly blockTokens: number;

  /** Dense by ModelEntry.index; null = removed slot (indexes are never reused while requests exist). */
  private readonly models: (ModelEntry | null)[] = [];
  private readonly modelById = new Map<ModelId, ModelEntry>();
  private readonly requests = new Map<RequestId, Request>();
  /** Admitted requests in admission order; may hold stale (no longer running) entries until compacted. */
  private running: Request[] = [];
  /** Some entry of `running` went stale (finished or preempted) since the last compaction. */
  private runningStale = false;
  /** Models with a prefill chunk in the step being planned / applied (their flag is set). */
  private readonly prefilledModels: ModelEntry[] = [];
  private numRunningTotal = 0;
  private numQueuedTotal = 0;
  private tieSeq = 0;

  private stepOutstanding = false;
  /** The model whose weights are being copied (a load outstanding), or null. */
  private loadingModel: ModelEntry | null = null;
  /** KV pages kept free during this admission pass for a loading model's more urgent queue head. */
  private reservedKvPages = 0;
  /** Inside completeStep / failStep (sinks may re-enter submit / cancel, never nextAction). */
  private applying = false;
  private readonly plan: MutablePlan;
  /** The planned step's requests, [0, numPlanned); longer arrays keep their capacity between steps. */
  private readonly planned: Request[] = [];
  /** buildStep's prefilling requests in running order; cleared after use (holds no request between steps). */
  private readonly prefillingScratch: (Request | null)[] = [];
  private numPlanned = 0;
  /** Token buffers and block tables of running requests, reused across requests. */
  private readonly buffers = new RequestBuffers();
  /**
   * Decode inputs by plan position: one device-wide buffer and a one-token view per position, both
   * reused every step (a per-request input array would be one more object to touch per token).
   */
  private decodeTokens: Int32Array = new Int32Array(0);
  private readonly decodeViews: Int32Array[] = [];
  private readonly stepAction: { readonly kind: "step"; readonly plan: StepPlan };
  private planStartMs = 0;
  private planPrefillTokens = 0;
  /** Estimated prefill time of the step planned so far: Σ chunk × its model's ms per prefill token. */
  private planEstMs = 0;
  /**
   * guardFirstTokens: the earliest TTFT deadline among the requests whose first token the step
   * planned so far samples and that it still meets (by the estimate); Infinity when none.
   */
  private planDeadlineMs = Number.POSITIVE_INFINITY;
  /** EWMA of what a step takes beyond its prefill estimate (decodes, the per-step overhead). */
  private stepResidualMs = 0;
  /** config.guardFirstTokens on an SLO-ordered device (FCFS queues have no deadlines to guard). */
  private readonly guardsFirstTokens: boolean;
  private planDecodeTokens = 0;
  private tokenBudget = 0;
  /** Moves whenever allocWeights runs: a compaction may have moved KV blocks. */
  private memoryEpoch = 0;
  /** Admission stopped at a queue head whose model is not resident (activate it next). */
  private activationWish: ModelEntry | null = null;
  /** Admission stopped at a queue head that did not fit in free KV memory. */
  private memoryWish: ModelEntry | null = null;

  private readonly record: StepRecordImpl;
  private onStepFn: ((record: StepRecord) => void) | null;
  private wakeFn: (() => void) | null = null;

  // counters
  private numSteps = 0;
  private numSubmitted = 0;
  private numFinished = 0;
  private numCancelled = 0;
  private numDrained = 0;
  private numFailed = 0;
  private numActivations = 0;
  private numEvictions = 0;
  private numKeepAliveUnloads = 0;
  private numManualUnloads = 0;
  private numPreemptions = 0;
  private totalActivationMs = 0;

  constructor(opts: DeviceSchedulerOptions) {
    this.deviceId = opts.deviceId;
    this.config = opts.config;
    this.guardsFirstTokens = opts.config.guardFirstTokens && opts.config.policy === "slo";
    this.memory = opts.memory;
    this.clock = opts.clock;
    this.rng = opts.rng;
    const snap = opts.memory.snapshot();
    this.pageBytes = snap.pageBytes;
    this.kvCapacityPages = snap.totalPages - snap.headroomPages;
    this.headroomPages = snap.headroomPages;
    this.blockTokens = opts.config.blockTokens;
    this.plan = new MutablePlan(opts.deviceId);
    this.stepAction = Object.freeze({ kind: "step", plan: this.plan });
    this.record = new StepRecordImpl(opts.deviceId);
    this.onStepFn = opts.onStep ?? null;
  }

  // ==== wiring ===================================================================================

  /** Called (synchronously) whenever new work may exist: submit, cancel, load/unload requests, limits. */
  setWakeListener(fn: (() => void) | null): void {
    this.wakeFn = fn;
  }

  set onStep(fn: ((record: StepRecord) => void) | null) {
    this.onStepFn = fn;
  }

  /**
   * The record of the last completed step (reused object), or null before the first. Without an
   * onStep subscriber its per-model arrays (KV pages, queued, running) are as of this call.
   */
  get lastStepRecord(): StepRecord | null {
    if (this.numSteps === 0) return null;
    if (!this.record.modelsFilled) this.record.fillModels(this.models);
    return this.record;
  }

  // ==== model management (the layer above) =======================================================

  addModel(profile: ModelProfile, serving: Partial<ModelServingConfig> = {}): void {
    if (this.modelById.has(profile.id)) {
      throw new PrismError("PRISM_MODEL_ALREADY_ON_DEVICE", `model ${profile.id} is already on device ${this.deviceId}`, { modelId: profile.id, deviceId: this.deviceId });
    }
    const cfg = resolveModelServingConfig(serving);
    const weightPages = Math.ceil(profile.weightBytes / this.pageBytes);
    if (weightPages >= this.kvCapacityPages) {
      throw new PrismError("PRISM_MODEL_TOO_LARGE", `model ${profile.id} needs ${profile.weightBytes} B of weights; device ${this.deviceId} can give at most ${(this.kvCapacityPages - 1) * this.pageBytes} B with room for KV`, {
        modelId: profile.id, weightBytes: profile.weightBytes,
      });
    }
    const space = this.memory.createKvSpace(profile.id, {
      bytesPerTokenPerLayer: profile.kvBytesPerTokenPerLayer,
      numLayers: profile.numLayers,
      blockTokens: this.config.blockTokens,
    });
    const index = this.models.length;
    const m = new ModelEntry(index, profile, cfg, space, this.config, this.pageBytes, this.clock.nowMs());
    if (cfg.kvLimitBytes !== undefined) space.setLimit(cfg.kvLimitBytes, 0);
    this.models.push(m);
    this.modelById.set(profile.id, m);
    this.updateMaxKvBlocks(m, cfg.kvLimitBytes ?? null);
    this.record.setModels(this.models);
  }

  /** Only for a model with nothing queued or running and no weights on the device. */
  removeModel(modelId: ModelId): void {
    const m = this.model(modelId);
    if (!m.isIdle || m.residency.kind !== "absent") {
      throw new PrismError("PRISM_MODEL_BUSY", `model ${modelId} cannot be removed: ${m.residency.kind}, ${m.queue.size} queued, ${m.numRunning} running`, { modelId });
    }
    this.memory.destroyKvSpace(m.space);
    this.models[m.index] = null;
    this.modelById.delete(modelId);
    if (this.activationWish === m) this.activationWish = null;
    if (this.memoryWish === m) this.memoryWish = null;
    this.record.setModels(this.models);
  }

  hasModel(modelId: ModelId): boolean {
    return this.modelById.has(modelId);
  }

  /** Ask for the weights to be loaded (eagerly, before requests). Idempotent. */
  requestLoad(modelId: ModelId): void {
    const m = this.model(modelId);
    m.unloadRequested = false;
    if (m.residency.kind === "absent") {
      m.loadRequested = true;
      this.wake();
    }
  }

  /** Ask for the weights to be unloaded; refused while the model has requests queued or running. */
  requestUnload(modelId: ModelId): UnloadResult {
    const m = this.modelById.get(modelId);
    if (m === undefined) return notOnDevice(modelId, this.deviceId);
    m.loadRequested = false;
    if (m.residency.kind === "absent") return "not-resident";
    if (m.residency.kind === "loading" || !m.isIdle) {
      return new PrismError("PRISM_MODEL_BUSY", `model ${modelId} has requests in flight (${m.queue.size} queued, ${m.numRunning} running) or is loading`, { modelId });
    }
    m.unloadRequested = true;
    this.wake();
    return "unloading";
  }

  pin(modelId: ModelId): void {
    this.model(modelId).pinned = true;
  }

  unpin(modelId: ModelId): void {
    this.model(modelId).pinned = false;
    this.wake();
  }

  /** Revisioned KV limit (kvcached semantics, see memory). */
  setKvLimit(modelId: ModelId, bytes: number, revision: number): SetLimitResult {
    const m = this.model(modelId);
    const res = m.space.setLimit(bytes, revision);
    if (res.status === "applied" || res.status === "deferred") this.updateMaxKvBlocks(m, res.effectiveLimitBytes);
    this.wake();
    return res;
  }

  // ==== requests ==================================================================================

  submit(spec: SubmitRequest): SubmitResult {
    const m = this.modelById.get(spec.modelId);
    if (m === undefined) return notOnDevice(spec.modelId, this.deviceId);
    const bad = this.validate(spec, m);
    if (bad !== null) return bad;
    if (m.queue.size >= this.config.maxQueuedPerModel || this.numQueuedTotal >= this.config.maxQueuedTotal) return "busy";
    const now = this.clock.nowMs();
    const r = new Request(spec, m.index, m.profile.maxContextTokens, m.eosTokenIds, this.config.blockTokens, this.tieSeq++, now);
    this.requests.set(r.id, r);
    m.queue.push(r, now);
    this.numQueuedTotal++;
    this.numSubmitted++;
    this.wake();
    return "accepted";
  }

  /**
   * Cancel a request. Its blocks are freed now, or right after the executing step if it is in it
   * (its token from that step is dropped). Returns false for unknown / already finished requests.
   */
  cancel(requestId: RequestId): boolean {
    const r = this.requests.get(requestId);
    if (r === undefined) return false;
    if (r.inStep) {
      r.cancelRequested = true;
      return true;
    }
    this.finish(r, CANCELLED, this.clock.nowMs(), -1);
    this.wake();
    return true;
  }

  /**
   * Hand back every queued request of a model (fresh, and preempted with their generated tokens) so
   * the layer above can resubmit them elsewhere; running requests finish here. The returned specs
   * carry generatedTokens / firstTokenMs; their sinks are not called.
   */
  drainModel(modelId: ModelId): SubmitRequest[] {
    const m = this.model(modelId);
    const out: SubmitRequest[] = [];
    for (const r of m.queue.drainAll()) {
      this.numQueuedTotal--;
      this.numDrained++;
      this.requests.delete(r.id);
      r.kind = "cancelled";
      const generated = r.generatedCopy();
      r.releaseBuffers(this.buffers);
      out.push(Number.isNaN(r.firstTokenMs)
        ? { ...r.spec, generatedTokens: generated }
        : { ...r.spec, generatedTokens: generated, firstTokenMs: r.firstTokenMs });
    }
    if (m.isIdle) m.idleSinceMs = this.clock.nowMs();
    this.wake();
    return out;
  }

  // ==== the step protocol =========================================================================

  nextAction(nowMs: number): DeviceAction {
    if (!this.acceptsAction) {
      throw new PrismError("PRISM_INTERNAL", `device ${this.deviceId}: nextAction while a ${this.stepOutstanding ? "step" : this.applying ? "result" : "load"} is outstanding`);
    }
    this.promoteLate(nowMs);
    const unload = this.pendingUnload(nowMs);
    if (unload !== null) return unload;

    const wished = this.activationWish;
    if (wished !== null) {
      const a = this.tryActivate(wished, nowMs, false);
      if (a !== null) return a;
    }
    const memWished = this.memoryWish;
    if (memWished !== null && memWished.residency.kind === "resident") {
      // Admission is blocked on KV memory: idle weights are the cheapest memory to take.
      // Acted on once; the next build re-evaluates, so one blocked admission evicts one model.
      this.memoryWish = null;
      const victim = pickEvictionVictim(this.models, memWished, false, nowMs);
      if (victim !== null) return this.unload(victim, "evict", nowMs);
    }
    for (const m of this.models) {
      if (m !== null && m.loadRequested) {
        const a = this.tryActivate(m, nowMs, true);
        if (a !== null) return a;
      }
    }
    if (this.config.overlapLoads && this.loadingModel === null && this.numQueuedTotal > 0) {
      // Start the copy before planning the step, so that step already runs beside it (admission's
      // wish would start it only after the step, which is right when a load stalls the device).
      const urgent = this.mostUrgentQueue(nowMs);
      if (urgent !== null && urgent.residency.kind === "absent") {
        const a = this.tryActivate(urgent, nowMs, false);
        if (a !== null) return a;
      }
    }

    // Each pass either returns or fails at least one queued request, so this terminates.
    for (;;) {
      if (this.buildStep(nowMs)) return this.stepAction;
      const a = this.unblock(nowMs);
      if (a === "retry") continue;
      if (a !== null) return a;
      return { kind: "idle", wakeAtMs: this.nextWakeMs() };
    }
  }

  completeStep(result: StepResult, nowMs: number): void {
    if (!this.stepOutstanding) throw new PrismError("PRISM_INTERNAL", `device ${this.deviceId}: completeStep without a step outstanding`);
    if (result.stepIndex !== this.plan.stepIndex) {
      throw new PrismError("PRISM_INTERNAL", `device ${this.deviceId}: result of step ${result.stepIndex}, expected ${this.plan.stepIndex}`);
    }
    this.stepOutstanding = false;
    this.applying = true;
    try {
      const sampled = result.sampled;
      let j = 0;
      const planned = this.planned;
      const numPlanned = this.numPlanned;
      for (let i = 0; i < numPlanned; i++) {
        const r = planned[i]!;
        r.inStep = false;
        let s: SampledToken | null = null;
        if (r.stepSample) {
          s = sampled[j++] ?? null;
          if (s === null || s.requestId !== r.id) {
            throw new PrismError("PRISM_INTERNAL", `device ${this.deviceId}: step ${result.stepIndex} sampled tokens do not match the plan at request ${r.id}`);
          }
        }
        if (r.kind !== "prefilling" && r.kind !== "decoding") continue; // finished re-entrantly
        if (r.cancelRequested) {
          this.finish(r, CANCELLED, nowMs, -1);
          continue;
        }
        r.numComputed += r.stepTokens;
        if (r.kind === "prefilling" && r.numComputed === r.numPrefillTarget) r.kind = "decoding";
        if (s !== null) this.applyToken(r, s, nowMs);
      }
      if (j !== sampled.length) throw new PrismError("PRISM_INTERNAL", `device ${this.deviceId}: step ${result.stepIndex} returned ${sampled.length} tokens, plan asked for ${j}`);
      this.learnPrefillRate(result.computeMs, nowMs);
      this.stepResidualMs += this.config.prefillEstAlpha * (Math.max(0, result.computeMs - this.planEstMs) - this.stepResidualMs);
      this.compactRunning();
      this.numSteps++;
      this.record.fill(this.plan.stepIndex, this.planStartMs, nowMs, result.computeMs, numPlanned, this.planPrefillTokens,
        this.planDecodeTokens, this.numQueuedTotal, this.numRunningTotal, this.onStepFn !== null ? this.models : null);
      this.numPlanned = 0;
    } finally {
      this.applying = false;
    }
    const onStep = this.onStepFn;
    if (onStep !== null) onStep(this.record);
  }

  /** The executor failed the whole step: its requests fail with `error` (cancelled ones cancel). */
  failStep(error: unknown, nowMs: number): void {
    if (!this.stepOutstanding) throw new PrismError("PRISM_INTERNAL", `device ${this.deviceId}: failStep without a step outstanding`);
    this.stepOutstanding = false;
    const perr = asPrismError(error);
    this.applying = true;
    try {
      for (let i = 0; i < this.numPlanned; i++) {
        const r = this.planned[i]!;
        r.inStep = false;
        if (r.cancelRequested) this.finish(r, CANCELLED, nowMs, -1);
        else this.finish(r, { kind: "failed", error: perr }, nowMs, -1);
      }
      this.numPlanned = 0;
      this.compactRunning();
    } finally {
      this.applying = false;
    }
  }

  completeLoad(modelId: ModelId, durationMs: number, nowMs: number): void {
    const m = this.loadingModel;
    if (m === null || m.id !== modelId || this.applying) {
      throw new PrismError("PRISM_INTERNAL", `device ${this.deviceId}: completeLoad(${modelId}) without that load outstanding`);
    }
    if (m.residency.kind !== "loading") throw new PrismError("PRISM_INTERNAL", `device ${this.deviceId}: ${modelId} is ${m.residency.kind}, not loading`);
    this.loadingModel = null;
    m.residency = { kind: "resident", sinceMs: nowMs, byteOffset: m.residency.byteOffset };
    m.freshlyActivated = m.queue.size > 0;
    m.idleSinceMs = nowMs;
    m.numActivations++;
    m.lastActivationMs = durationMs;
    this.numActivations++;
    this.totalActivationMs += durationMs;
    const absentSince = m.absentSinceMs;
    m.queue.forEach((r) => {
      r.activationWaitMs += nowMs - Math.max(r.enqueuedMs, absentSince);
    });
  }

  /** The weights could not be copied: the model's queued requests fail with `error`. */
  failLoad(modelId: ModelId, error: unknown, nowMs: number): void {
    const m = this.loadingModel;
    if (m === null || m.id !== modelId || this.applying) {
      throw new PrismError("PRISM_INTERNAL", `device ${this.deviceId}: failLoad(${modelId}) without that load outstanding`);
    }
    this.loadingModel = null;
    this.memory.freeWeights(m.id);
    m.residency = ABSENT;
    m.absentSinceMs = nowMs;
    m.loadRequested = false;
    const perr = asPrismError(error);
    this.failQueued(m, () => perr, nowMs);
  }

  // ==== observation ================================================================================

  get numQueued(): number {
    return this.numQueuedTotal;
  }

  get numRunning(): number {
    return this.numRunningTotal;
  }

  /** True when nothing is queued, running or outstanding. */
  get isQuiescent(): boolean {
    return this.numQueuedTotal === 0 && this.numRunningTotal === 0 && !this.stepOutstanding && this.loadingModel === null;
  }

  /**
   * nextAction may be called now: no step outstanding (nor its result being applied), and no load
   * outstanding unless overlapLoads. Drivers ask this rather than tracking the rule themselves.
   */
  get acceptsAction(): boolean {
    return !this.stepOutstanding && !this.applying && (this.loadingModel === null || this.config.overlapLoads);
  }

  /** A weight load is outstanding (its completeLoad / failLoad has not come yet). */
  get isLoading(): boolean {
    return this.loadingModel !== null;
  }

  residency(modelId: ModelId): "absent" | "loading" | "resident" {
    return this.model(modelId).residency.kind;
  }

  stats(): DeviceStats {
    const models: ModelStats[] = [];
    for (const m of this.models) {
      if (m === null) continue;
      models.push({
        modelId: m.id, residency: m.residency.kind, pinned: m.pinned, numQueued: m.queue.size, numRunning: m.numRunning,
        usedBlocks: m.space.usedBlocks, mappedPages: m.space.mappedPages, prefillMsPerToken: m.msPerPrefillToken,
        numActivations: m.numActivations, lastActivationMs: m.lastActivationMs,
      });
    }
    return {
      deviceId: this.deviceId, numSteps: this.numSteps, numQueued: this.numQueuedTotal, numRunning: this.numRunningTotal,
      numSubmitted: this.numSubmitted, numFinished: this.numFinished, numCancelled: this.numCancelled, numFailed: this.numFailed, numDrained: this.numDrained,
      numActivations: this.numActivations, numEvictions: this.numEvictions, numKeepAliveUnloads: this.numKeepAliveUnloads,
      numManualUnloads: this.numManualUnloads, numPreemptions: this.numPreemptions, totalActivationMs: this.totalActivationMs, models,
    };
  }

  // ==== planning ===================================================================================

  /** Build the next step into this.plan; false when there is nothing to run. */
  private buildStep(nowMs: number): boolean {
    const cfg = this.config;
    this.compactRunning();
    this.planStartMs = nowMs;
    this.planPrefillTokens = 0;
    this.planEstMs = 0;
    this.planDeadlineMs = Number.POSITIVE_INFINITY;
    this.planDecodeTokens = 0;
    this.tokenBudget = cfg.maxBatchTokens;
    const prefilled = this.prefilledModels;
    for (let i = 0; i < prefilled.length; i++) prefilled[i]!.prefilledThisStep = false;
    prefilled.length = 0;

    // 1. decodes, head (most urgent) to tail; a block shortage preempts from the tail. The pass
    // also notes the prefilling requests, so step 2 need not walk the running list again (up to
    // maxBatchSeqs request objects, mostly decodes, cache misses on a busy simulated cluster).
    const running = this.running;
    const prefilling = this.prefillingScratch;
    let numPrefilling = 0;
    for (let i = 0; i < running.length; i++) {
      const r = running[i]!;
      if (r.kind !== "decoding") {
        if (r.kind === "prefilling") prefilling[numPrefilling++] = r;
        continue;
      }
      const need = this.blocksFor(r.numComputed + 1);
      if (need > r.numBlocks && !this.growBlocks(r, i, need, nowMs)) continue;
      this.planDecode(r, need);
    }
    // 2. prefill chunks of admitted requests, in admission order (a preemption in step 1 may have
    // sent some of those noted back to their queue: hence the kind check).
    for (let i = 0; i < numPrefilling && this.tokenBudget > 0; i++) {
      const r = prefilling[i]!;
      if (r.kind === "prefilling") this.planPrefill(r);
    }
    for (let i = 0; i < numPrefilling; i++) prefilling[i] = null;
    this.compactRunning();
    // 3. admission, by priority, while the budget lasts.
    this.admit(nowMs);

    if (this.numPlanned === 0) return false;
    // The plan's seqs array is exact; it keeps its capacity (no per-step reallocation).
    if (this.plan.seqs.length !== this.numPlanned) this.plan.seqs.length = this.numPlanned;
    this.plan.stepIndex++;
    this.stepOutstanding = true;
    return true;
  }

  private growBlocks(r: Request, index: number, need: number, nowMs: number): boolean {
    const space = this.models[r.modelIndex]!.space;
    for (;;) {
      if (space.allocInto(need - r.numBlocks, r.blocks, r.numBlocks)) {
        r.numBlocks = need;
        return true;
      }
      const v = pickPreemptionVictim(this.running, index);
      if (v < 0) {
        this.preempt(r, nowMs);
        return false;
      }
      this.preempt(this.running[v]!, nowMs);
    }
  }

  private admit(nowMs: number): void {
    const cfg = this.config;
    const models = this.models;
    this.activationWish = null;
    this.memoryWish = null;
    this.reservedKvPages = 0;
    for (const m of models) if (m !== null) m.skipInPass = false;
    // A model just activated for its queue head admits that head first, even if another queue's
    // head has become more urgent meanwhile (slack turning late): every activation serves at least
    // one request, so two models cannot evict each other back and forth without progress.
    for (const m of models) {
      if (m === null || !m.freshlyActivated) continue;
      if (m.queue.size === 0 || m.residency.kind !== "resident") {
        m.freshlyActivated = false;
        continue;
      }
      if (this.tokenBudget <= 0 || this.numRunningTotal >= cfg.maxBatchSeqs || m.numRunning >= m.serving.maxRunning) continue;
      m.queue.refreshHead(nowMs);
      if (this.defersForDeadline(m)) continue;
      if (this.admitHead(m, nowMs) === "stop") return;
    }
    while (this.tokenBudget > 0 && this.numRunningTotal < cfg.maxBatchSeqs && this.numQueuedTotal > 0) {
      let best: ModelEntry | null = null;
      for (let i = 0; i < models.length; i++) {
        const m = models[i];
        if (m === undefined || m === null || m.skipInPass || m.queue.size === 0) continue;
        if (m.residency.kind === "resident" && m.numRunning >= m.serving.maxRunning) continue;
        m.queue.refreshHead(nowMs);
        if (best === null || headBefore(m.queue, best.queue)) best = m;
      }
      if (best === null) return;
      // Past its deadline (demoteExpired): only into a lightly loaded device. Once admitted a request
      // holds its batch slot and KV to the end; late work taken in a lull would fill the device
      // for the next burst.
      if (best.queue.headClass === PAST_CLASS && this.numRunningTotal >= cfg.lateMaxRunning) return;
      if (best.residency.kind === "loading") {
        // Its requests wait for the load (overlapLoads); less urgent heads go on, leaving the KV
        // room its head needs (the room tryActivate checked), so the activation still serves it.
        best.skipInPass = true;
        this.reservedKvPages = this.headKvPages(best, nowMs);
        continue;
      }
      if (best.residency.kind !== "resident") {
        // Head-of-line: the most urgent request waits for its model's activation.
        this.activationWish = best;
        return;
      }
      if (this.defersForDeadline(best)) {
        best.skipInPass = true;
        continue;
      }
      if (this.admitHead(best, nowMs) === "stop") return;
    }
  }

  /**
   * guardFirstTokens: keep m's queue head (refreshHead called) out of this step when its first chunk
   * would make the step end after the TTFT deadline of a request whose first token the step samples
   * and still meets, and the head itself still meets its own deadline from the next step (which
   * starts when this one ends). A head that would miss by waiting joins as before: keeping out heads
   * that miss either way was measured too and lost (they hold their model's queue back for a step,
   * and under load again every step, until they fail in the past-deadline lane). What it saves at
   * ×1: queueing misses of small models whose short prompt shared a step with another model's long
   * one (a 3B model's 76-token prompt, 173 ms SLO, in a 261 ms step of 4,105 prefill tokens).
   * Deferring costs the device one more step's overhead, so under overload it gains nothing
   * (simulated H100s, each workload at 7 rates within ±1.5%: +0.8 TTFT-attainment points summed
   * over 14 workloads at ×1, +2.1 over 11 at ×4, within the noise at ×8).
   */
  private defersForDeadline(m: ModelEntry): boolean {
    if (this.planDeadlineMs === Number.POSITIVE_INFINITY) return false;
    const r = m.queue.head!;
    const chunkMs = Math.min(r.numTokens, this.tokenBudget, this.config.prefillChunkTokens) * m.msPerPrefillToken;
    const endMs = this.planStartMs + this.stepResidualMs + this.planEstMs + chunkMs;
    if (endMs <= this.planDeadlineMs) return false;
    return !r.hasFirstToken && endMs + this.stepResidualMs <= r.arrivalMs + m.serving.ttftSloMs;
  }

  /** The model whose queue head admission would consider first (ignoring the step's budget), or null. */
  private mostUrgentQueue(nowMs: number): ModelEntry | null {
    let best: ModelEntry | null = null;
    for (const m of this.models) {
      if (m === null || m.queue.size === 0) continue;
      if (m.residency.kind === "resident" && m.numRunning >= m.serving.maxRunning) continue;
      m.queue.refreshHead(nowMs);
      if (best === null || headBefore(m.queue, best.queue)) best = m;
    }
    return best;
  }

  /**
   * Admit the head of a resident model's queue (refreshHead already called): allocate blocks for all
   * its tokens so far and plan its first prefill chunk. "stop" = head-of-line on device memory.
   */
  private admitHead(m: ModelEntry, nowMs: number): "admitted" | "skipped" | "stop" {
    const cfg = this.config;
    const r = m.queue.head!;
    const space = m.space;
    const totalTokens = r.numPromptTokens + r.maxOutputTokens;
    const alone = this.numRunningTotal === 0;
    const needBlocks = this.blocksFor(Math.min(r.numTokens + (alone ? 1 : Math.max(1, cfg.decodeMarginTokens)), totalTokens));
    const allocBlocks = this.blocksFor(r.numTokens);
    if (this.blocksFor(Math.min(r.numTokens + 1, totalTokens)) > m.maxKvBlocks) {
      m.queue.popHead();
      this.numQueuedTotal--;
      this.finish(r, { kind: "failed", error: tooLarge(r, m) }, nowMs, -1);
      return "skipped";
    }
    if (this.reservedKvPages > 0 && this.memory.freeKvPages() - Math.ceil(needBlocks / space.blocksPerPage) < this.reservedKvPages) {
      // Kept for a more urgent loading model's head (counted as if every block needed a new page):
      // wait for its load; no eviction, no failure.
      return "stop";
    }
    let allocated = space.availableBlocks() >= needBlocks;
    if (allocated) {
      r.takeBuffers(this.buffers, cfg.blockTokens);
      allocated = space.allocInto(allocBlocks, r.blocks, 0);
    }
    if (!allocated) {
      if (this.memory.freeKvPages() * space.blocksPerPage >= needBlocks) {
        // The device has the memory; this model's own KV limit is what binds. Others go on.
        if (m.numRunning === 0) {
          m.queue.popHead();
          this.numQueuedTotal--;
          this.finish(r, { kind: "failed", error: tooLarge(r, m) }, nowMs, -1);
        } else {
          m.skipInPass = true;
        }
        return "skipped";
      }
      this.memoryWish = m; // head-of-line on memory
      return "stop";
    }
    m.queue.popHead();
    this.numQueuedTotal--;
    m.freshlyActivated = false;
    r.numBlocks = allocBlocks;
    r.kind = "prefilling";
    r.numComputed = 0;
    r.numPrefillTarget = r.numTokens;
    if (Number.isNaN(r.admittedMs)) r.admittedMs = nowMs;
    this.running.push(r);
    this.numRunningTotal++;
    m.numRunning++;
    this.planPrefill(r);
    return "admitted";
  }

  /** numBlocks: blocks covering positions [0, numComputed + 1). */
  private planDecode(r: Request, numBlocks: number): void {
    const seq = r.seq;
    seq.tokens = this.decodeInput(this.numPlanned, r.lastToken);
    seq.startPos = r.numComputed;
    seq.blockOffsets = r.blockOffsetsFor(this.models[r.modelIndex]!.space, numBlocks, this.memoryEpoch);
    seq.sample = true;
    seq.outputIndex = r.numGenerated;
    if (r.usesPenalties) {
      r.storePendingTokens();
      seq.penaltyTokens = r.tokens.subarray(r.numPromptTokens, r.numTokens);
    } else {
      seq.penaltyTokens = null;
    }
    r.stepTokens = 1;
    r.stepSample = true;
    this.addToPlan(r);
    this.tokenBudget--;
    this.planDecodeTokens++;
  }

  private planPrefill(r: Request): void {
    const m = this.models[r.modelIndex]!;
    const start = r.numComputed;
    const chunk = Math.min(r.numPrefillTarget - start, this.tokenBudget, this.config.prefillChunkTokens);
    const end = start + chunk;
    const seq = r.seq;
    r.storePendingTokens();
    seq.tokens = r.tokens.subarray(start, end);
    seq.startPos = start;
    seq.blockOffsets = r.blockOffsetsFor(m.space, this.blocksFor(end), this.memoryEpoch);
    seq.sample = end === r.numPrefillTarget;
    seq.outputIndex = r.numGenerated;
    seq.penaltyTokens = seq.sample && r.usesPenalties ? r.tokens.subarray(r.numPromptTokens, r.numTokens) : null;
    r.stepTokens = chunk;
    r.stepSample = seq.sample;
    this.addToPlan(r);
    this.tokenBudget -= chunk;
    this.planPrefillTokens += chunk;
    this.planEstMs += chunk * m.msPerPrefillToken;
    if (seq.sample && !r.hasFirstToken && this.guardsFirstTokens) {
      const deadlineMs = r.arrivalMs + m.serving.ttftSloMs;
      if (deadlineMs < this.planDeadlineMs && this.planStartMs + this.stepResidualMs + this.planEstMs <= deadlineMs) this.planDeadlineMs = deadlineMs;
    }
    if (!m.prefilledThisStep) {
      m.prefilledThisStep = true;
      this.prefilledModels.push(m);
    }
  }

  private addToPlan(r: Request): void {
    r.inStep = true;
    const k = this.numPlanned++;
    this.planned[k] = r;
    this.plan.seqs[k] = r.seq;
  }

  /** Free a running request's blocks and put it back in its queue; it is recomputed on re-admission. */
  private preempt(r: Request, nowMs: number): void {
    const m = this.models[r.modelIndex]!;
    if (r.numBlocks > 0) m.space.free(r.blocks, 0, r.numBlocks);
    r.clearBlocks();
    r.kind = "queued";
    r.numComputed = 0;
    r.numPrefillTarget = r.numTokens;
    r.numPreemptions++;
    this.numPreemptions++;
    m.numRunning--;
    this.numRunningTotal--;
    this.runningStale = true;
    if (m.numRunning === 0) m.idleSinceMs = nowMs;
    m.queue.push(r, nowMs);
    this.numQueuedTotal++;
  }

  private compactRunning(): void {
    if (!this.runningStale) return;
    this.runningStale = false;
    const running = this.running;
    let w = 0;
    for (let i = 0; i < running.length; i++) {
      const r = running[i]!;
      if (r.kind === "prefilling" || r.kind === "decoding") running[w++] = r;
    }
    running.length = w;
  }

  // ==== applying results ===========================================================================

  private applyToken(r: Request, s: SampledToken, nowMs: number): void {
    const token = s.token;
    if (r.isStopToken(token)) {
      this.finish(r, FINISHED_STOP, nowMs, token);
      return;
    }
    const outputIndex = r.numGenerated;
    r.appendToken(token);
    r.numStreamed++;
    if (!r.hasFirstToken) {
      r.hasFirstToken = true;
      r.firstTokenMs = nowMs;
    }
    try {
      r.sink.onToken(r.id, s, outputIndex);
    } catch {
      // A sink must not throw; if one does, the request's stream is broken: cancel it.
      this.finish(r, CANCELLED, nowMs, -1);
      return;
    }
    if (r.kind === "decoding" && r.numGenerated >= r.maxOutputTokens) this.finish(r, FINISHED_LENGTH, nowMs, -1);
  }

  /** The one exit of a request: free blocks, leave its queue / the running set, tell the sink once. */
  private finish(r: Request, outcome: RequestOutcome, nowMs: number, stopTokenId: number): void {
    const m = this.models[r.modelIndex]!;
    switch (r.kind) {
      case "finished":
      case "cancelled":
      case "failed":
        return;
      case "queued":
        if (r.queueSlot >= 0) {
          m.queue.remove(r);
          this.numQueuedTotal--;
        }
        break;
      case "prefilling":
      case "decoding":
        m.numRunning--;
        this.numRunningTotal--;
        this.runningStale = true;
        break;
      default:
        assertNever(r.kind, "request kind");
    }
    if (r.numBlocks > 0) m.space.free(r.blocks, 0, r.numBlocks);
    r.clearBlocks();
    r.releaseBuffers(this.buffers);
    r.kind = outcome.kind;
    this.requests.delete(r.id);
    if (m.numRunning === 0) m.idleSinceMs = nowMs;
    switch (outcome.kind) {
      case "finished": this.numFinished++; break;
      case "cancelled": this.numCancelled++; break;
      case "failed": this.numFailed++; break;
      default: assertNever(outcome, "outcome");
    }
    const stats = requestStats(r, nowMs, stopTokenId);
    try {
      r.sink.onFinish(r.id, outcome, stats);
    } catch {
      // A sink must not throw; the request is already finished here, nothing to undo.
    }
  }

  private learnPrefillRate(stepMs: number, nowMs: number): void {
    const numTokens = this.planPrefillTokens + this.planDecodeTokens;
    // Learn only from prefill-dominated steps: their per-token cost is the prefill cost; a few
    // decodes beside a chunk do not skew it much, while decode-heavy steps would (and would re-key
    // queues back and forth as the step mix changes).
    if (this.planPrefillTokens < this.planDecodeTokens || this.planPrefillTokens === 0) return;
    const cfg = this.config;
    const prefilled = this.prefilledModels;
    for (let i = 0; i < prefilled.length; i++) {
      const m = prefilled[i]!;
      m.msPerPrefillToken = updatePrefillRate(m.msPerPrefillToken, stepMs, numTokens, cfg.prefillEstAlpha);
      if (cfg.policy === "slo" && needsRekey(m.queue.keyedMsPerToken, m.msPerPrefillToken, cfg.rekeyTolerance)) {
        m.queue.rekey(m.msPerPrefillToken, nowMs);
      }
    }
  }

  // ==== activation, eviction, unblocking ===========================================================

  private promoteLate(nowMs: number): void {
    const abort = this.config.abortUnreachable;
    for (const m of this.models) {
      if (m === null) continue;
      const q = m.queue;
      if (q.numOnTime + q.numLate === 0 && q.numPast === 0) continue;
      // A failure callback only where something may fail (no closure per model per step otherwise).
      const mayFail = abort || q.earliestPastExpiry() <= nowMs;
      q.promoteLate(nowMs, mayFail ? (r) => this.abortUnreachable(r, m, nowMs) : null);
    }
  }

  private abortUnreachable(r: Request, m: ModelEntry, nowMs: number): void {
    this.numQueuedTotal--;
    const waitedMs = Math.round(nowMs - r.arrivalMs);
    const err = new PrismError("PRISM_SLO_UNREACHABLE", `request ${r.id} of ${m.id} can no longer meet its TTFT SLO of ${m.serving.ttftSloMs} ms (queued ${waitedMs} ms)`, {
      requestId: r.id, modelId: m.id, ttftSloMs: m.serving.ttftSloMs, waitedMs,
    });
    this.finish(r, { kind: "failed", error: err }, nowMs, -1);
  }

  private pendingUnload(nowMs: number): DeviceAction | null {
    for (const m of this.models) {
      if (m === null || m.residency.kind !== "resident") continue;
      if (m.unloadRequested && m.isIdle) return this.unload(m, "manual", nowMs);
      if (!m.pinned && m.isIdle && nowMs >= m.idleSinceMs + m.serving.keepAliveMs) return this.unload(m, "keep-alive", nowMs);
    }
    return null;
  }

  private unload(m: ModelEntry, reason: UnloadReason, nowMs: number): DeviceAction {
    if (m.numRunning !== 0 || m.space.usedBlocks !== 0) {
      throw new PrismError("PRISM_INTERNAL", `device ${this.deviceId}: unloading ${m.id} with ${m.numRunning} running / ${m.space.usedBlocks} blocks`);
    }
    this.memory.freeWeights(m.id);
    m.residency = ABSENT;
    m.absentSinceMs = nowMs;
    m.unloadRequested = false;
    switch (reason) {
      case "evict": this.numEvictions++; break;
      case "keep-alive": this.numKeepAliveUnloads++; break;
      case "manual": this.numManualUnloads++; break;
      default: assertNever(reason, "unload reason");
    }
    return { kind: "unload", modelId: m.id, reason };
  }

  /**
   * Load `m` if its weights fit (after compaction), else evict one model to make room, else null
   * (blocked: running requests will free memory). When nothing runs and nothing can be evicted,
   * the model cannot be activated at all now: its queued requests fail (or a manual load is dropped).
   */
  private tryActivate(m: ModelEntry, nowMs: number, manual: boolean): DeviceAction | null {
    if (m.residency.kind !== "absent" || (!manual && m.queue.size === 0)) {
      if (this.activationWish === m) this.activationWish = null;
      if (manual) m.loadRequested = false;
      return null;
    }
    // One load at a time (overlapLoads): the next one waits for it, evicting nothing meanwhile.
    if (this.loadingModel !== null) return null;
    // Weights plus KV room for the request that wants them (KV may not map into the headroom), so an
    // activation never leaves the model unable to run its first request.
    const needPages = m.weightPages + this.headroomPages + this.headKvPages(m, nowMs);
    if (this.memory.maxWeightBytes() >= needPages * this.pageBytes) {
      const region = this.memory.allocWeights(m.id, m.profile.weightBytes);
      this.memoryEpoch++;
      if (region !== null) {
        if (this.activationWish === m) this.activationWish = null;
        m.loadRequested = false;
        m.residency = { kind: "loading", startedMs: nowMs, byteOffset: region.byteOffset };
        this.loadingModel = m;
        return { kind: "load", modelId: m.id, byteOffset: region.byteOffset, weightBytes: m.profile.weightBytes };
      }
    }
    const allowQueued = !manual;
    const victim = pickEvictionVictim(this.models, m, allowQueued, nowMs);
    const reachablePages = this.memory.maxWeightBytes() / this.pageBytes + evictablePages(this.models, m, allowQueued);
    if (victim !== null && reachablePages >= needPages) return this.unload(victim, "evict", nowMs);
    if (this.numRunningTotal > 0) return null; // running requests will free KV pages
    if (manual) {
      m.loadRequested = false;
      return null;
    }
    if (this.activationWish === m) this.activationWish = null;
    const pinnedNote = `${this.memory.maxWeightBytes()} B free and nothing more can be evicted (pinned or busy models)`;
    this.failQueued(m, () => new PrismError("PRISM_MODEL_TOO_LARGE", `model ${m.id} needs ${m.profile.weightBytes} B of weights plus KV room on device ${this.deviceId}; ${pinnedNote}`, {
      modelId: m.id, weightBytes: m.profile.weightBytes,
    }), nowMs);
    return null;
  }

  /**
   * The step came out empty although admission was blocked: act on what blocked it. Returns an
   * action, "retry" after failing a request that can never run here, or null (truly idle).
   */
  private unblock(nowMs: number): DeviceAction | "retry" | null {
    const wished = this.activationWish;
    if (wished !== null) {
      const a = this.tryActivate(wished, nowMs, false);
      if (a !== null) return a;
      return wished.queue.size === 0 ? "retry" : null;
    }
    const m = this.memoryWish;
    // With a load outstanding, its completion changes what fits: wait for it rather than fail.
    if (m !== null && this.numRunningTotal === 0 && this.loadingModel === null) {
      // Nothing runs, yet the most urgent request does not fit: only resident weights stand in the
      // way. Evict (its queue head is the most urgent request on the device, so tier 2 is fair).
      const victim = pickEvictionVictim(this.models, m, true, nowMs);
      if (victim !== null) return this.unload(victim, "evict", nowMs);
      const r = m.queue.refreshHead(nowMs)!;
      m.queue.popHead();
      this.numQueuedTotal--;
      this.memoryWish = null;
      this.finish(r, { kind: "failed", error: tooLarge(r, m) }, nowMs, -1);
      return "retry";
    }
    return null;
  }

  private failQueued(m: ModelEntry, error: () => PrismError, nowMs: number): void {
    for (const r of m.queue.drainAll()) {
      this.numQueuedTotal--;
      this.finish(r, { kind: "failed", error: error() }, nowMs, -1);
    }
  }

  /**
   * Earliest time a keep-alive expires, (with abortUnreachable) a queued request turns late or
   * expires, or (with demoteExpired) a demoted request has waited lateMaxWaitMs.
   */
  private nextWakeMs(): number | null {
    let wake = Number.POSITIVE_INFINITY;
    for (const m of this.models) {
      if (m === null) continue;
      if (m.residency.kind === "resident" && !m.pinned && m.isIdle) wake = Math.min(wake, m.idleSinceMs + m.serving.keepAliveMs);
      if (this.config.abortUnreachable) {
        wake = Math.min(wake, m.queue.earliestOnTimeKey(), m.queue.earliestLateDeadline());
      } else if (this.config.demoteExpired) {
        wake = Math.min(wake, m.queue.earliestPastExpiry());
      }
    }
    return Number.isFinite(wake) ? wake : null;
  }

  // ==== helpers ====================================================================================

  /** The one-token input of the decode at plan position k (valid until that step completes). */
  private decodeInput(k: number, token: number): Int32Array {
    if (k >= this.decodeViews.length) {
      const cap = Math.max(64, this.decodeTokens.length * 2, k + 1);
      this.decodeTokens = new Int32Array(cap);
      this.decodeViews.length = 0;
      for (let i = 0; i < cap; i++) this.decodeViews.push(this.decodeTokens.subarray(i, i + 1));
    }
    this.decodeTokens[k] = token;
    return this.decodeViews[k]!;
  }

  /** KV pages the head of m's queue needs to start (one page for a manual load with nothing queued). */
  private headKvPages(m: ModelEntry, nowMs: number): number {
    const head = m.queue.refreshHead(nowMs);
    const kvBlocks = head === null ? 1 : this.blocksFor(Math.min(head.numTokens + 1, head.numPromptTokens + head.maxOutputTokens));
    return Math.ceil(kvBlocks / m.space.blocksPerPage);
  }

  private blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockTokens);
  }

  private updateMaxKvBlocks(m: ModelEntry, limitBytes: number | null): void {
    let pages = this.kvCapacityPages - m.weightPages;
    if (limitBytes !== null) pages = Math.min(pages, Math.floor(limitBytes / this.pageBytes));
    m.maxKvBlocks = Math.max(0, pages) * m.space.blocksPerPage;
  }

  private validate(spec: SubmitRequest, m: ModelEntry): PrismError | null {
    const promptLen = spec.promptTokens.length;
    const numGenerated = spec.generatedTokens?.length ?? 0;
    if (this.requests.has(spec.requestId)) return invalidRequest(spec, `request id ${spec.requestId} is already on device ${this.deviceId}`);
    if (promptLen === 0) return invalidRequest(spec, "the prompt is empty");
    if (!Number.isSafeInteger(spec.maxTokens) || spec.maxTokens < 1) return invalidRequest(spec, `maxTokens=${spec.maxTokens} must be an integer ≥ 1`);
    if (numGenerated >= spec.maxTokens) return invalidRequest(spec, `generatedTokens (${numGenerated}) already reach maxTokens (${spec.maxTokens})`);
    const maxContext = m.profile.maxContextTokens;
    if (promptLen + numGenerated >= maxContext) {
      return new PrismError("PRISM_PROMPT_TOO_LONG", `prompt of ${promptLen + numGenerated} tokens leaves no room in ${m.id}'s context of ${maxContext} tokens`, {
        requestId: spec.requestId, modelId: m.id, numPromptTokens: promptLen, maxContextTokens: maxContext,
      });
    }
    const needBlocks = this.blocksFor(promptLen + numGenerated + 1);
    if (needBlocks > m.maxKvBlocks) {
      return new PrismError("PRISM_REQUEST_TOO_LARGE", `request ${spec.requestId} needs ${needBlocks} KV blocks; ${m.id} can hold at most ${m.maxKvBlocks} on device ${this.deviceId}`, {
        requestId: spec.requestId, modelId: m.id, needBlocks, maxBlocks: m.maxKvBlocks,
      });
    }
    return null;
  }

  private model(modelId: ModelId): ModelEntry {
    const m = this.modelById.get(modelId);
    if (m === undefined) throw notOnDevice(modelId, this.deviceId);
    return m;
  }

  private wake(): void {
    const fn = this.wakeFn;
    if (fn !== null && !this.applying) fn();
  }
}

function requestStats(r: Request, nowMs: number, stopTokenId: number): RequestStats {
  const numOutput = r.numStreamed;
  return {
    arrivalMs: r.arrivalMs,
    admittedMs: r.admittedMs,
    firstTokenMs: r.firstTokenMs,
    finishedMs: nowMs,
    queueMs: r.admittedMs - r.arrivalMs,
    ttftMs: r.firstTokenMs - r.arrivalMs,
    tpotMs: numOutput >= 2 ? (nowMs - r.firstTokenMs) / (numOutput - 1) : Number.NaN,
    activationWaitMs: r.activationWaitMs,
    numPreemptions: r.numPreemptions,
    numPromptTokens: r.numPromptTokens,
    numOutputTokens: numOutput,
    stopTokenId,
  };
}

function notOnDevice(modelId: ModelId, deviceId: DeviceId): PrismError {
  return new PrismError("PRISM_MODEL_NOT_ON_DEVICE", `model ${modelId} is not placed on device ${deviceId}`, { modelId, deviceId });
}

function invalidRequest(spec: SubmitRequest, why: string): PrismError {
  return new PrismError("PRISM_REQUEST_INVALID", `request ${spec.requestId}: ${why}`, { requestId: spec.requestId, modelId: spec.modelId });
}

function tooLarge(r: Request, m: ModelEntry): PrismError {
  return new PrismError("PRISM_REQUEST_TOO_LARGE", `request ${r.id} of ${m.id} (${r.numTokens} tokens) cannot fit in the KV memory the device can give it now`, {
    requestId: r.id, modelId: m.id, numTokens: r.numTokens,
  });
}

function asPrismError(e: unknown): PrismError {
  if (e instanceof PrismError) return e;
  if (isPrismError(e)) return new PrismError(e.code, e.message, { ...e.details });
  const msg = e instanceof Error ? e.message : String(e);
  return new PrismError("PRISM_INTERNAL", `executor failed: ${msg}`, {}, { cause: e });
}
