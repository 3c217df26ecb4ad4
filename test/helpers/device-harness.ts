/**
 * Factories and a synchronous driver for device scheduler tests: makeScheduler(), makeProfile(),
 * a RecordingSink, and drive(), which plays the simulator's role with a ManualClock and the
 * FakeExecutor (advance the clock by each step's / load's cost, then report back).
 */
import { ManualClock, type Clock } from "../../src/core/clock.ts";
import { deviceId, modelId, requestId, type ModelId, type RequestId } from "../../src/core/ids.ts";
import { GREEDY, type ModelProfile, type SampledToken, type SamplingParams } from "../../src/core/records.ts";
import { SeededRng } from "../../src/core/rng.ts";
import { DeviceMemory } from "../../src/memory/device-memory.ts";
import { DeviceScheduler } from "../../src/device/device-scheduler.ts";
import { resolveDeviceSchedulerConfig } from "../../src/device/config.ts";
import type { LoopHost } from "../../src/device/loop.ts";
import type { DeviceAction, DeviceSchedulerConfig, RequestOutcome, RequestSink, RequestStats, StepRecord, SubmitRequest, SubmitResult } from "../../src/device/types.ts";
import { FakeExecutor, type FakeExecutorOptions } from "./fake-executor.ts";

export const PAGE_BYTES = 16384;

/** Real timers and a monotonic clock, for tests of the async DeviceLoop. */
export const realTimeHost: LoopHost = {
  defer: (fn) => setImmediate(fn),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};
export const realClock: Clock = { nowMs: () => performance.now() };
/** 2 layers × 64 B per token per layer × 16 tokens = 2048 B per block → 8 blocks per page. */
export function makeProfile(name: string, over: Partial<ModelProfile> = {}): ModelProfile {
  return {
    id: modelId(name),
    weightBytes: 4 * PAGE_BYTES,
    numLayers: 2,
    kvBytesPerTokenPerLayer: 64,
    maxContextTokens: 4096,
    vocabSize: 256,
    eosTokenIds: [100_000], // unreachable by default: the fake's tokens are < vocab
    ...over,
  };
}

export interface Harness {
  readonly clock: ManualClock;
  readonly memory: DeviceMemory;
  readonly sched: DeviceScheduler;
  readonly exec: FakeExecutor;
  readonly sink: RecordingSink;
  readonly records: StepRecord[];
}

export interface HarnessOptions {
  readonly budgetPages?: number;
  readonly config?: Partial<DeviceSchedulerConfig>;
  readonly exec?: FakeExecutorOptions;
  readonly kvHeadroomFraction?: number;
  readonly minReservedPages?: number;
  readonly maxReservedPages?: number;
  /** Copy every step record (costs a little; off unless asked). */
  readonly keepRecords?: boolean;
  /** Back the memory with bytes (default true; false = accounting only, fake KV check by offset). */
  readonly backed?: boolean;
}

export function makeScheduler(o: HarnessOptions = {}): Harness {
  const clock = new ManualClock(0);
  const memory = new DeviceMemory({
    budgetBytes: (o.budgetPages ?? 64) * PAGE_BYTES,
    pageBytes: PAGE_BYTES,
    // Backed (small), so the fake executor keeps its KV check in real bytes that compaction moves.
    backed: o.backed ?? true,
    kvHeadroomFraction: o.kvHeadroomFraction ?? 0,
    minReservedPages: o.minReservedPages ?? 0,
    maxReservedPages: o.maxReservedPages ?? 0,
  });
  const records: StepRecord[] = [];
  const sched = new DeviceScheduler({
    deviceId: deviceId(0),
    memory,
    clock,
    rng: new SeededRng(1),
    config: resolveDeviceSchedulerConfig({ maxBatchTokens: 64, maxBatchSeqs: 16, prefillChunkTokens: 32, ...o.config }),
    ...(o.keepRecords === true ? { onStep: (r: StepRecord) => records.push(copyRecord(r)) } : {}),
  });
  const exec = new FakeExecutor({ checkKv: true, memory: memory.memory, ...o.exec });
  return { clock, memory, sched, exec, sink: new RecordingSink(), records };
}

function copyRecord(r: StepRecord): StepRecord {
  return { ...r, kvPages: r.kvPages.slice(), kvUsedBlocks: r.kvUsedBlocks.slice(), queuedByModel: r.queuedByModel.slice(), runningByModel: r.runningByModel.slice() };
}

export interface Finished {
  readonly outcome: RequestOutcome;
  readonly stats: RequestStats;
  readonly atMs: number;
}

/** Collects streamed tokens and outcomes; counts finishes so "exactly once" can be asserted. */
export class RecordingSink implements RequestSink {
  readonly tokens = new Map<number, number[]>();
  readonly finished = new Map<number, Finished>();
  readonly finishCount = new Map<number, number>();
  /** Request ids in finish order. */
  readonly order: number[] = [];
  clock: ManualClock | null = null;
  onTokenHook: ((id: RequestId, outputIndex: number) => void) | null = null;

  onToken(id: RequestId, sampled: SampledToken, outputIndex: number): void {
    let list = this.tokens.get(id);
    if (list === undefined) {
      list = [];
      this.tokens.set(id, list);
    }
    if (outputIndex !== list.length) throw new Error(`sink: request ${id} got output index ${outputIndex}, expected ${list.length}`);
    list.push(sampled.token);
    this.onTokenHook?.(id, outputIndex);
  }

  onFinish(id: RequestId, outcome: RequestOutcome, stats: RequestStats): void {
    this.finishCount.set(id, (this.finishCount.get(id) ?? 0) + 1);
    this.finished.set(id, { outcome, stats, atMs: stats.finishedMs });
    this.order.push(id);
  }

  outcomeOf(id: number): string {
    const f = this.finished.get(id);
    if (f === undefined) return "pending";
    const o = f.outcome;
    return o.kind === "finished" ? `finished:${o.reason}` : o.kind === "failed" ? `failed:${o.error.code}` : o.kind;
  }
}

let nextRequestNumber = 1;

export interface RequestShape {
  readonly model: string;
  readonly prompt: number[] | number;
  readonly maxTokens: number;
  readonly arrivalMs?: number;
  readonly id?: number;
  readonly sampling?: SamplingParams;
  readonly stopTokenIds?: number[];
  readonly ignoreEos?: boolean;
}

/** A SubmitRequest; a numeric prompt means that many tokens (1, 2, 3, ...) seeded by the id. */
export function makeRequest(h: Harness, shape: RequestShape): SubmitRequest {
  const id = shape.id ?? nextRequestNumber++;
  const prompt = typeof shape.prompt === "number"
    ? Int32Array.from({ length: shape.prompt }, (_, i) => (id * 7 + i * 3) % 200 + 1)
    : Int32Array.from(shape.prompt);
  return {
    requestId: requestId(id),
    modelId: modelId(shape.model),
    promptTokens: prompt,
    maxTokens: shape.maxTokens,
    sampling: shape.sampling ?? GREEDY,
    arrivalMs: shape.arrivalMs ?? h.clock.nowMs(),
    sink: h.sink,
    ...(shape.stopTokenIds !== undefined ? { stopTokenIds: shape.stopTokenIds } : {}),
    ...(shape.ignoreEos !== undefined ? { ignoreEos: shape.ignoreEos } : {}),
  };
}

export function submit(h: Harness, shape: RequestShape): SubmitResult {
  return h.sched.submit(makeRequest(h, shape));
}

export interface DriveOptions {
  /** Stop after this many actions (throws if exceeded: a livelock). Default 100000. */
  readonly maxActions?: number;
  /** On idle with a wake time, jump the clock there and go on (default true). */
  readonly followWake?: boolean;
  /** Called before every nextAction; return false to stop. */
  readonly before?: (actionIndex: number) => boolean | void;
  /** Called after each action was applied. */
  readonly after?: (action: DeviceAction, actionIndex: number) => void;
}

export interface DriveLog {
  readonly actions: string[];
  readonly numActions: number;
}

/** Run the scheduler until it is idle with no wake time (or before() says stop). */
export function drive(h: Harness, o: DriveOptions = {}): DriveLog {
  const max = o.maxActions ?? 100_000;
  const actions: string[] = [];
  for (let i = 0; ; i++) {
    if (i >= max) throw new Error(`drive: no quiescence after ${max} actions (livelock?)`);
    if (o.before !== undefined && o.before(i) === false) return { actions, numActions: i };
    const a = h.sched.nextAction(h.clock.nowMs());
    switch (a.kind) {
      case "step": {
        const res = h.exec.executeSync(a.plan);
        h.clock.advance(res.computeMs);
        h.sched.completeStep(res, h.clock.nowMs());
        actions.push("step");
        break;
      }
      case "load": {
        const { durationMs } = h.exec.loadSync(a.modelId, a.byteOffset);
        h.clock.advance(durationMs);
        h.sched.completeLoad(a.modelId, durationMs, h.clock.nowMs());
        actions.push(`load ${a.modelId}`);
        break;
      }
      case "unload":
        h.exec.unloadWeights(a.modelId);
        actions.push(`unload ${a.modelId} (${a.reason})`);
        break;
      case "idle":
        if (a.wakeAtMs !== null && (o.followWake ?? true)) {
          h.clock.set(Math.max(h.clock.nowMs(), a.wakeAtMs));
          actions.push(`idle until ${a.wakeAtMs}`);
          break;
        }
        o.after?.(a, i);
        return { actions, numActions: i + 1 };
    }
    o.after?.(a, i);
  }
}

export function mid(name: string): ModelId {
  return modelId(name);
}

/** Every KV block of every model is free. */
export function assertAllKvFree(h: Harness): void {
  const snap = h.memory.snapshot();
  for (const s of snap.spaces) {
    if (s.usedBlocks !== 0) throw new Error(`KV space of ${s.modelId} still holds ${s.usedBlocks} blocks`);
  }
  const problems = h.memory.auditProblems();
  if (problems.length > 0) throw new Error(`memory audit: ${problems.join("; ")}`);
}
