/**
 * The discrete-event cluster simulator. It runs the REAL DeviceScheduler of every device (and, via a
 * ClusterDriver, the real GlobalScheduler) on a VirtualClock; the only simulated part is the
 * executor (cost model). No policy lives here: this file only moves time and relays actions.
 *
 * Event kinds, in tie order at equal times (completions first, so state is current when arrivals
 * are routed and policies tick; device kicks last, so all same-time submissions batch into one plan,
 * as in the async DeviceLoop where a wake runs after the synchronous submissions):
 *   STEP_DONE(device) → LOAD_DONE(device, model) → ARRIVAL(request) → TICK → DEFER → SAMPLE → WAKE(device, gen) → KICK(device)
 * (DEFER runs work the global scheduler must not do inside a device's result sink, FIFO.)
 *
 * Per device: when the scheduler accepts an action (no step outstanding; no load either unless
 * overlapLoads) and work may exist (wake listener, a completion, a wake timer), ask nextAction(now):
 *   step   → duration = cost model; STEP_DONE at now + duration (the result is computed now)
 *   load   → LOAD_DONE at now + the model's activation time; with overlapLoads, ask again at once
 *            (the other models step during the copy; a LOAD_DONE during a step only reports back)
 *   unload → relay to the executor and the cluster driver, ask again
 *   idle   → WAKE at wakeAtMs (stale wakes are dropped by a generation counter)
 * The hot loop allocates nothing per event besides what the schedulers themselves allocate.
 */
import type { DeviceId, ModelId, RequestId } from "../core/ids.ts";
import { deviceId as toDeviceId, requestId as toRequestId } from "../core/ids.ts";
import { GREEDY, type SampledToken, type StepResult } from "../core/records.ts";
import { SeededRng } from "../core/rng.ts";
import { PrismError } from "../core/errors.ts";
import { DeviceMemory } from "../memory/device-memory.ts";
import { DeviceScheduler } from "../device/device-scheduler.ts";
import { resolveDeviceSchedulerConfig } from "../device/config.ts";
import type { DeviceSchedulerConfig, RequestOutcome, RequestSink, RequestStats, SubmitRequest } from "../device/types.ts";
import type { Trace } from "../workload/trace-format.ts";
import { newRequestOutcomes, type RequestOutcomes } from "../metrics/slo.ts";
import { EventQueue } from "./event-queue.ts";
import { VirtualClock } from "./virtual-clock.ts";
import { CostModel, CostModelExecutor, type ModelCost } from "./cost-model.ts";

export const EV_STEP_DONE = 0;
export const EV_LOAD_DONE = 1;
export const EV_ARRIVAL = 2;
export const EV_TICK = 3;
export const EV_DEFER = 4;
export const EV_SAMPLE = 5;
export const EV_WAKE = 6;
export const EV_KICK = 7;

/** A model as the simulator runs it: its cost-model coefficients (profile inside) and SLOs. */
export interface SimModel {
  readonly cost: ModelCost;
  readonly ttftSloMs: number;
  readonly tpotSloMs: number;
}

/** One simulated device as the cluster driver sees it. */
export interface SimDevice {
  readonly index: number;
  readonly id: DeviceId;
  readonly scheduler: DeviceScheduler;
  readonly memory: DeviceMemory;
  readonly executor: CostModelExecutor;
}

/** Requests enter the cluster through this; the simulator calls it, it calls the schedulers. */
export interface ClusterDriver {
  /** Called once before time starts, with the devices built. */
  init(ctx: ClusterContext): void;
  /** Hand a request to the cluster (route, queue, or hold it). */
  submit(spec: SubmitRequest, modelIndex: number, nowMs: number): void;
  /** Period of tick(), or null for none. */
  readonly roundMs: number | null;
  tick(nowMs: number): void;
  /** A device began loading / finished loading / unloaded a model. */
  onLoadStart?(device: number, modelId: ModelId, nowMs: number): void;
  onLoaded?(device: number, modelId: ModelId, nowMs: number): void;
  onUnloaded?(device: number, modelId: ModelId, nowMs: number): void;
  /** Migrations done so far (0 for drivers that never move models). */
  readonly migrations: number;
  /** Device-scheduler settings the driver's policy needs (e.g. local order); applied over the defaults. */
  readonly deviceConfig?: Partial<DeviceSchedulerConfig>;
  /** Driver counters for the summary (e.g. the global scheduler's), flat numbers. */
  counters?(): Record<string, number>;
}

export interface ClusterContext {
  readonly devices: readonly SimDevice[];
  readonly models: readonly SimModel[];
  readonly clock: VirtualClock;
  readonly costModel: CostModel;
  /** The cluster gives up on a request no device accepted (rejected, invalid): it counts as failed. */
  reject(spec: SubmitRequest): void;
  /** Run fn at the current virtual time, after the current event (FIFO). */
  defer(fn: () => void): void;
}

export interface SimulatorOptions {
  readonly trace: Trace;
  /** Indexed like trace.modelNames. */
  readonly models: readonly SimModel[];
  readonly costModel: CostModel;
  readonly numDevices: number;
  readonly driver: ClusterDriver;
  readonly deviceConfig?: Partial<DeviceSchedulerConfig>;
  /** Physical page size of the device memory (default 32 MiB, see DEFAULT_PAGE_BYTES). */
  readonly pageBytes?: number;
  /** KV headroom fraction (default 0.05 = kvcached GPU_UTILIZATION 0.95). */
  readonly kvHeadroomFraction?: number;
  readonly seed?: number;
  /** Record residency spans and sample memory every this many ms (null = off). */
  readonly timelineSampleMs?: number | null;
  /** Stop at this virtual time even if work remains (ms); default: run until every request is done. */
  readonly untilMs?: number;
  /** Called on every executed step (profiling, parity tests); the record is the scheduler's reused one. */
  readonly onStep?: (device: number, stepIndex: number, startMs: number, durationMs: number, plan: SimStepView) => void;
}

/** What onStep gets to see of a plan (read it inside the callback). */
export interface SimStepView {
  readonly seqs: readonly { readonly requestId: RequestId; readonly modelId: ModelId; readonly tokens: Int32Array; readonly startPos: number; readonly sample: boolean }[];
}

export interface ResidencySpanRec {
  readonly device: number;
  readonly model: number;
  readonly fromMs: number;
  toMs: number;
}

export interface SimTimeline {
  readonly sampleMs: number;
  readonly tMs: number[];
  /** [device][sample] */
  readonly kvBytes: number[][];
  readonly weightBytes: number[][];
  readonly residency: ResidencySpanRec[];
}

export interface SimRunResult {
  readonly outcomes: RequestOutcomes;
  readonly numDevices: number;
  /** Virtual time at the end (ms). */
  readonly endMs: number;
  readonly activations: number;
  readonly evictions: number;
  readonly keepAliveUnloads: number;
  /** Unloads asked by the layer above (deactivations, migration sources). */
  readonly manualUnloads: number;
  readonly migrations: number;
  readonly preemptions: number;
  readonly steps: number;
  /** Σ device-busy (GPU) time / (devices × endMs): step time without the fixed per-step overhead. */
  readonly utilization: number;
  readonly busyMs: Float64Array;
  readonly failed: number;
  readonly timeline: SimTimeline | null;
  readonly events: number;
  /** Per request: ms it waited queued while its model was not resident (its activation). */
  readonly activationWaitMs: Float64Array;
  /** Per request: times it was preempted. */
  readonly preemptionsOf: Uint16Array;
  /** Per request: clock times (ms) of the first token and of the finish, as the device reported them (NaN = never). */
  readonly firstTokenMs: Float64Array;
  readonly finishedMs: Float64Array;
}

/**
 * kvcached maps a 2 MiB page in every layer for K and V at once, so its physical unit is
 * 2 MiB × layers × 2 (128 MiB for 32 layers, prism.md §3.1). Our pool's pages span all layers, so the
 * comparable unit is larger than 2 MiB; 32 MiB holds 8–64 blocks of 16 tokens for every catalog
 * model (a 16-token block of Qwen2.5-14B is 3 MiB).
 */
export const DEFAULT_PAGE_BYTES = 32 * 1024 * 1024;
/** A cluster with arrivals over and no step or load for this long is stuck (see EV_TICK). */
const STUCK_MS = 600_000;
const NOOP = (): void => {};

/**
 * Defaults for GPU devices, after SGLang (which the Prism prototype runs on, one engine per model):
 * chunked prefill of 8192 tokens; each model runs up to MODEL_MAX_RUNNING sequences (an engine's
 * max running requests) and the device up to 1024 in all (several engines side by side).
 */
export const MODEL_MAX_RUNNING = 256;
export const GPU_DEVICE_SCHEDULER_DEFAULTS: Partial<DeviceSchedulerConfig> = Object.freeze({
  maxBatchTokens: 8192,
  maxBatchSeqs: 1024,
  prefillChunkTokens: 8192,
  blockTokens: 16,
  maxQueuedPerModel: 1 << 20,
  maxQueuedTotal: 1 << 22,
  // One engine's weights copy (PCIe DMA) while the co-located engines compute.
  overlapLoads: true,
});

interface DevState {
  /** A step is outstanding (its STEP_DONE is queued). */
  stepBusy: boolean;
  /** A load is outstanding (its LOAD_DONE is queued). */
  loadBusy: boolean;
  kicked: boolean;
  wakeGen: number;
  loadModel: ModelId | null;
  loadModelIndex: number;
  loadMs: number;
  result: StepResult | null;
}

export class Simulator implements RequestSink {
  readonly clock = new VirtualClock();
  readonly devices: SimDevice[] = [];
  private readonly opts: SimulatorOptions;
  private readonly q = new EventQueue(4096);
  private readonly st: DevState[] = [];
  private readonly trace: Trace;
  private readonly outcomes: RequestOutcomes;
  private readonly modelIndexOf = new Map<ModelId, number>();
  private readonly busyMs: Float64Array;
  private readonly activationWaitMs: Float64Array;
  private readonly preemptionsOf: Uint16Array;
  private readonly firstTokenMs: Float64Array;
  private readonly finishedMs: Float64Array;
  private readonly promptPool: Int32Array;
  private numDone = 0;
  private numFailed = 0;
  private numSteps = 0;
  private numEvents = 0;
  private arrivalCursor = 0;
  private timeline: SimTimeline | null = null;
  private readonly openSpan: (ResidencySpanRec | null)[][] = [];
  private started = false;
  private readonly deferred: (() => void)[] = [];
  private deferredHead = 0;
  /** Last time a step or load completed (ms): progress detection for stuck clusters. */
  private lastProgressMs = 0;
  private readonly requestOverheadMs: number;
  private readonly admitDelayUs: number;

  constructor(opts: SimulatorOptions) {
    this.opts = opts;
    this.trace = opts.trace;
    if (opts.models.length !== opts.trace.modelNames.length) {
      throw new PrismError("PRISM_SIM_INVALID", `simulator: ${opts.models.length} models for a trace naming ${opts.trace.modelNames.length}`);
    }
    if (!(Number.isInteger(opts.numDevices) && opts.numDevices >= 1)) {
      throw new PrismError("PRISM_SIM_INVALID", `simulator: devices must be an integer >= 1, got ${opts.numDevices}`);
    }
    opts.models.forEach((m, i) => this.modelIndexOf.set(m.cost.modelId, i));
    this.requestOverheadMs = opts.costModel.eff.requestOverheadMs;
    this.admitDelayUs = this.requestOverheadMs * 1000;
    const n = opts.trace.numRequests;
    this.outcomes = newRequestOutcomes(n, opts.trace.modelNames, opts.trace.modelIndex, opts.trace.arrivalS);
    this.busyMs = new Float64Array(opts.numDevices);
    this.activationWaitMs = new Float64Array(n);
    this.preemptionsOf = new Uint16Array(n);
    this.firstTokenMs = new Float64Array(n).fill(Number.NaN);
    this.finishedMs = new Float64Array(n).fill(Number.NaN);
    let maxPrompt = 1;
    for (let i = 0; i < n; i++) if (opts.trace.inputTokens[i]! > maxPrompt) maxPrompt = opts.trace.inputTokens[i]!;
    this.promptPool = new Int32Array(maxPrompt);

    const pageBytes = opts.pageBytes ?? DEFAULT_PAGE_BYTES;
    const budgetBytes = Math.floor(opts.costModel.device.memBytes / pageBytes) * pageBytes;
    const config = resolveDeviceSchedulerConfig({ ...GPU_DEVICE_SCHEDULER_DEFAULTS, ...(opts.deviceConfig ?? {}), ...(opts.driver.deviceConfig ?? {}) });
    for (let d = 0; d < opts.numDevices; d++) {
      const id = toDeviceId(d);
      const memory = new DeviceMemory({ budgetBytes, pageBytes, backed: false, kvHeadroomFraction: opts.kvHeadroomFraction ?? 0.05 });
      const scheduler = new DeviceScheduler({ deviceId: id, memory, clock: this.clock, rng: new SeededRng((opts.seed ?? 1) * 7919 + d), config });
      const executor = new CostModelExecutor(opts.costModel);
      const dev: SimDevice = { index: d, id, scheduler, memory, executor };
      this.devices.push(dev);
      this.st.push({ stepBusy: false, loadBusy: false, kicked: false, wakeGen: 0, loadModel: null, loadModelIndex: -1, loadMs: 0, result: null });
      scheduler.setWakeListener(() => this.kick(d));
      this.openSpan.push(new Array<ResidencySpanRec | null>(opts.models.length).fill(null));
    }
    if (opts.timelineSampleMs != null) {
      this.timeline = {
        sampleMs: opts.timelineSampleMs,
        tMs: [],
        kvBytes: Array.from({ length: opts.numDevices }, () => []),
        weightBytes: Array.from({ length: opts.numDevices }, () => []),
        residency: [],
      };
    }
  }

  /** Run to completion (or untilMs). Can be called once. */
  run(): SimRunResult {
    if (this.started) throw new PrismError("PRISM_INTERNAL", "Simulator.run called twice");
    this.started = true;
    const opts = this.opts;
    const driver = opts.driver;
    driver.init({
      devices: this.devices,
      models: opts.models,
      clock: this.clock,
      costModel: opts.costModel,
      reject: (spec) => this.failUnplaced(spec.requestId as number),
      defer: (fn) => {
        this.deferred.push(fn);
        this.q.push(this.clock.nowUs(), EV_DEFER);
      },
    });
    const q = this.q;
    const trace = this.trace;
    const n = trace.numRequests;
    // A request reaches the schedulers requestOverheadMs after it reached the server (cost-model.ts).
    const admitDelayUs = this.admitDelayUs;
    if (n > 0) q.push(trace.arrivalS[0]! * 1e6 + admitDelayUs, EV_ARRIVAL, 0);
    const roundMs = driver.roundMs;
    if (roundMs !== null) q.push(0, EV_TICK);
    if (this.timeline !== null) q.push(0, EV_SAMPLE);
    // devices may have work from init (eager loads)
    for (let d = 0; d < this.devices.length; d++) this.kick(d);
    const untilUs = opts.untilMs !== undefined ? opts.untilMs * 1000 : Infinity;
    while (q.pop()) {
      const tUs = q.popTimeUs;
      if (tUs > untilUs) break;
      this.clock.advanceToUs(tUs);
      this.numEvents++;
      const a = q.popA;
      switch (q.popKind) {
        case EV_STEP_DONE: {
          const s = this.st[a]!;
          const r = s.result!;
          s.result = null;
          s.stepBusy = false;
          this.lastProgressMs = tUs / 1000;
          this.devices[a]!.scheduler.completeStep(r, tUs / 1000);
          this.afterCompletion(a);
          break;
        }
        case EV_LOAD_DONE: {
          const s = this.st[a]!;
          const m = s.loadModel!;
          s.loadModel = null;
          s.loadBusy = false;
          const nowMs = tUs / 1000;
          this.lastProgressMs = nowMs;
          this.devices[a]!.scheduler.completeLoad(m, s.loadMs, nowMs);
          driver.onLoaded?.(a, m, nowMs);
          // During a step (overlapLoads) the step's completion plans next.
          if (!s.stepBusy) this.afterCompletion(a);
          break;
        }
        case EV_ARRIVAL: {
          this.submitArrival(a, tUs / 1000);
          const next = a + 1;
          this.arrivalCursor = next;
          if (next < n) q.push(trace.arrivalS[next]! * 1e6 + admitDelayUs, EV_ARRIVAL, next);
          break;
        }
        case EV_TICK: {
          const nowMs = tUs / 1000;
          driver.tick(nowMs);
          // Stop ticking once nothing can change any more: every request arrived, and no device has
          // completed anything for STUCK_MS (the rest wait for something that never comes: failed).
          const stuck = this.arrivalCursor >= n && nowMs - this.lastProgressMs > STUCK_MS && this.allIdle();
          if (roundMs !== null && (this.numDone < n || this.arrivalCursor < n) && !stuck) q.push(tUs + roundMs * 1000, EV_TICK);
          break;
        }
        case EV_DEFER: {
          const fn = this.deferred[this.deferredHead]!;
          this.deferred[this.deferredHead++] = NOOP;
          if (this.deferredHead === this.deferred.length) {
            this.deferred.length = 0;
            this.deferredHead = 0;
          }
          fn();
          break;
        }
        case EV_SAMPLE: {
          this.sample(tUs / 1000);
          if (this.numDone < n || this.arrivalCursor < n) q.push(tUs + this.timeline!.sampleMs * 1000, EV_SAMPLE);
          break;
        }
        case EV_WAKE: {
          const s = this.st[a]!;
          if (q.popB === s.wakeGen && this.devices[a]!.scheduler.acceptsAction) this.drive(a);
          break;
        }
        case EV_KICK: {
          const s = this.st[a]!;
          s.kicked = false;
          if (this.devices[a]!.scheduler.acceptsAction) this.drive(a);
          break;
        }
        default:
          throw new PrismError("PRISM_INTERNAL", `simulator: unknown event kind ${q.popKind}`);
      }
      if (this.numDone === n && this.arrivalCursor >= n && n > 0) break;
    }
    const endMs = this.clock.nowMs();
    this.closeSpans(endMs);
    let activations = 0;
    let evictions = 0;
    let keepAlive = 0;
    let manual = 0;
    let preemptions = 0;
    let busy = 0;
    for (const d of this.devices) {
      const s = d.scheduler.stats();
      activations += s.numActivations;
      evictions += s.numEvictions;
      keepAlive += s.numKeepAliveUnloads;
      manual += s.numManualUnloads;
      preemptions += s.numPreemptions;
    }
    for (let d = 0; d < this.busyMs.length; d++) busy += this.busyMs[d]!;
    return {
      outcomes: this.outcomes,
      numDevices: this.devices.length,
      endMs,
      activations,
      evictions,
      keepAliveUnloads: keepAlive,
      manualUnloads: manual,
      migrations: driver.migrations,
      preemptions,
      steps: this.numSteps,
      utilization: endMs > 0 ? busy / (this.devices.length * endMs) : 0,
      busyMs: this.busyMs,
      failed: this.numFailed + (n - this.numDone),
      timeline: this.timeline,
      events: this.numEvents,
      activationWaitMs: this.activationWaitMs,
      preemptionsOf: this.preemptionsOf,
      firstTokenMs: this.firstTokenMs,
      finishedMs: this.finishedMs,
    };
  }

  // ---- RequestSink: one sink for every request; requestId = trace row ----------------------------

  onToken(_requestId: RequestId, _sampled: SampledToken, _outputIndex: number): void {}

  onFinish(requestId: RequestId, outcome: RequestOutcome, stats: RequestStats): void {
    const i = requestId as number;
    const o = this.outcomes;
    this.numDone++;
    if (stats.activationWaitMs > 0) this.activationWaitMs[i] = stats.activationWaitMs;
    this.preemptionsOf[i] = Math.min(65535, stats.numPreemptions);
    this.firstTokenMs[i] = stats.firstTokenMs;
    this.finishedMs[i] = stats.finishedMs;
    if (outcome.kind === "finished") {
      o.ok[i] = 1;
      // stats.arrivalMs is the admission; the client saw the request requestOverheadMs earlier
      o.ttftMs[i] = stats.firstTokenMs - stats.arrivalMs + this.requestOverheadMs;
      o.e2eMs[i] = stats.finishedMs - stats.arrivalMs + this.requestOverheadMs;
      o.outputTokens[i] = stats.numOutputTokens;
    } else {
      this.numFailed++;
      o.ok[i] = 0;
      o.outputTokens[i] = stats.numOutputTokens;
    }
  }

  /** A request the cluster gave up on before any device accepted it (rejected / dropped). */
  failUnplaced(requestIndex: number): void {
    this.numDone++;
    this.numFailed++;
    this.outcomes.ok[requestIndex] = 0;
  }

  // ---- internals --------------------------------------------------------------------------------

  private submitArrival(i: number, nowMs: number): void {
    const t = this.trace;
    const m = t.modelIndex[i]!;
    const spec: SubmitRequest = {
      requestId: toRequestId(i),
      modelId: this.opts.models[m]!.cost.modelId,
      promptTokens: this.promptPool.subarray(0, Math.max(1, t.inputTokens[i]!)),
      maxTokens: Math.max(1, t.outputTokens[i]!),
      sampling: GREEDY,
      arrivalMs: nowMs,
      sink: this,
    };
    this.opts.driver.submit(spec, m, nowMs);
  }

  /**
   * After a completion the device plans again, but only after same-time deferred work (the global
   * scheduler's maintenance, triggered by the finishes just applied) — as the server's DeviceLoop,
   * which yields a macrotask between actions. With nothing deferred, plan at once (no event).
   */
  private afterCompletion(d: number): void {
    if (this.deferredHead < this.deferred.length) this.kick(d);
    else this.drive(d);
  }

  private allIdle(): boolean {
    for (const s of this.st) if (s.stepBusy || s.loadBusy) return false;
    return true;
  }

  private kick(d: number): void {
    const s = this.st[d]!;
    if (s.kicked || !this.devices[d]!.scheduler.acceptsAction) return;
    s.kicked = true;
    this.q.push(this.clock.nowUs(), EV_KICK, d);
  }

  private drive(d: number): void {
    const s = this.st[d]!;
    const dev = this.devices[d]!;
    const sched = dev.scheduler;
    const nowUs = this.clock.nowUs();
    const nowMs = nowUs / 1000;
    s.wakeGen++;
    for (;;) {
      const action = sched.nextAction(nowMs);
      switch (action.kind) {
        case "step": {
          const r = dev.executor.executeSync(action.plan);
          const ms = r.computeMs;
          s.result = r;
          s.stepBusy = true;
          this.busyMs[d]! += this.opts.costModel.lastBusyMs;
          this.numSteps++;
          const onStep = this.opts.onStep;
          if (onStep !== undefined) onStep(d, action.plan.stepIndex, nowMs, ms, action.plan);
          this.q.push(nowUs + ms * 1000, EV_STEP_DONE, d);
          return;
        }
        case "load": {
          const mi = this.modelIndexOf.get(action.modelId)!;
          const ms = this.opts.costModel.loadMs(action.modelId);
          s.loadBusy = true;
          s.loadModel = action.modelId;
          s.loadModelIndex = mi;
          s.loadMs = ms;
          this.openResidency(d, mi, nowMs);
          this.opts.driver.onLoadStart?.(d, action.modelId, nowMs);
          this.q.push(nowUs + ms * 1000, EV_LOAD_DONE, d, mi);
          if (!sched.acceptsAction) return;
          // overlapLoads: like the DeviceLoop, which yields a macrotask before it asks again.
          if (this.deferredHead < this.deferred.length) {
            this.kick(d);
            return;
          }
          continue;
        }
        case "unload": {
          dev.executor.unloadWeights(action.modelId);
          this.closeResidency(d, this.modelIndexOf.get(action.modelId)!, nowMs);
          this.opts.driver.onUnloaded?.(d, action.modelId, nowMs);
          if (this.deferredHead < this.deferred.length) {
            this.kick(d);
            return;
          }
          continue;
        }
        case "idle": {
          if (action.wakeAtMs !== null) {
            // ms → µs → ms may land an ulp below the wake time; a deadline compared with `<= now`
            // would then never pass and the device would wake at the same instant forever.
            let wakeUs = action.wakeAtMs * 1000;
            if (wakeUs / 1000 < action.wakeAtMs) wakeUs = Math.floor(wakeUs) + 1;
            this.q.push(Math.max(nowUs, wakeUs), EV_WAKE, d, s.wakeGen);
          }
          return;
        }
      }
    }
  }

  private openResidency(d: number, m: number, nowMs: number): void {
    if (this.timeline === null) return;
    const span: ResidencySpanRec = { device: d, model: m, fromMs: nowMs, toMs: Infinity };
    this.openSpan[d]![m] = span;
    this.timeline.residency.push(span);
  }

  private closeResidency(d: number, m: number, nowMs: number): void {
    if (this.timeline === null) return;
    const span = this.openSpan[d]![m];
    if (span) {
      span.toMs = nowMs;
      this.openSpan[d]![m] = null;
    }
  }

  private closeSpans(endMs: number): void {
    if (this.timeline === null) return;
    for (const row of this.openSpan) for (let m = 0; m < row.length; m++) if (row[m]) {
      row[m]!.toMs = endMs;
      row[m] = null;
    }
  }

  private sample(nowMs: number): void {
    const tl = this.timeline!;
    tl.tMs.push(nowMs);
    for (let d = 0; d < this.devices.length; d++) {
      const snap = this.devices[d]!.memory.snapshot();
      tl.kvBytes[d]!.push(snap.kvPages * snap.pageBytes);
      tl.weightBytes[d]!.push(snap.weightPages * snap.pageBytes);
    }
  }
}
