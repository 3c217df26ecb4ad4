/**
 * A small deterministic cluster for control tests: N real DeviceSchedulers (accounting-only
 * DeviceMemory, FakeExecutor), one ManualClock, and a discrete-event driver playing the server's /
 * simulator's role: device actions take the executor's modelled time, ticks come every roundMs,
 * arrivals at their times, deferred work runs at the current time before anything else.
 */
import { ManualClock } from "../../src/core/clock.ts";
import { deviceId, modelId, requestId, type RequestId } from "../../src/core/ids.ts";
import { GREEDY, type ModelProfile, type SampledToken } from "../../src/core/records.ts";
import { SeededRng } from "../../src/core/rng.ts";
import { DeviceMemory } from "../../src/memory/device-memory.ts";
import { DeviceScheduler } from "../../src/device/device-scheduler.ts";
import { resolveDeviceSchedulerConfig } from "../../src/device/config.ts";
import type { DeviceSchedulerConfig, RequestOutcome, RequestSink, RequestStats, SubmitResult } from "../../src/device/types.ts";
import { GlobalScheduler, type GlobalSchedulerOptions } from "../../src/control/global-scheduler.ts";
import { getPolicy } from "../../src/control/policies/registry.ts";
import type { ControlConfig, ControlModel } from "../../src/control/types.ts";
import { FakeExecutor, fakeReference } from "../helpers/fake-executor.ts";

export const PAGE_BYTES = 16384;
export const VOCAB = 256;

/** 2 layers × 64 B/token/layer, 16-token blocks (2 KiB) → 8 blocks per 16 KiB page. */
export function tinyProfile(name: string, weightPages = 4, over: Partial<ModelProfile> = {}): ModelProfile {
  return {
    id: modelId(name),
    weightBytes: weightPages * PAGE_BYTES,
    numLayers: 2,
    kvBytesPerTokenPerLayer: 64,
    maxContextTokens: 1024,
    vocabSize: VOCAB,
    eosTokenIds: [100_000],
    ...over,
  };
}

export function tinyModel(name: string, o: { weightPages?: number; ttftSloMs?: number; tpotSloMs?: number; pinned?: boolean; keepAliveMs?: number } = {}): ControlModel {
  return {
    profile: tinyProfile(name, o.weightPages ?? 4),
    ttftSloMs: o.ttftSloMs ?? 500,
    tpotSloMs: o.tpotSloMs ?? 50,
    ...(o.pinned !== undefined ? { pinned: o.pinned } : {}),
    ...(o.keepAliveMs !== undefined ? { keepAliveMs: o.keepAliveMs } : {}),
  };
}

export interface Finished {
  readonly outcome: RequestOutcome;
  readonly stats: RequestStats;
}

export class Sink implements RequestSink {
  readonly tokens = new Map<number, number[]>();
  readonly finished = new Map<number, Finished>();
  readonly finishCount = new Map<number, number>();
  readonly problems: string[] = [];

  onToken(id: RequestId, sampled: SampledToken, outputIndex: number): void {
    let list = this.tokens.get(id);
    if (list === undefined) this.tokens.set(id, (list = []));
    if (outputIndex !== list.length) this.problems.push(`request ${id}: output index ${outputIndex}, expected ${list.length}`);
    list.push(sampled.token);
  }

  onFinish(id: RequestId, outcome: RequestOutcome, stats: RequestStats): void {
    this.finishCount.set(id, (this.finishCount.get(id) ?? 0) + 1);
    if (this.finishCount.get(id)! > 1) this.problems.push(`request ${id} finished twice`);
    this.finished.set(id, { outcome, stats });
  }
}

export interface ClusterOptions {
  readonly numDevices: number;
  readonly budgetPages: number;
  readonly models: readonly ControlModel[];
  readonly policy: string;
  readonly config?: Partial<ControlConfig>;
  readonly expectedRates?: Readonly<Record<string, number>>;
  readonly device?: Partial<DeviceSchedulerConfig>;
  /** ms of fake load per weight byte. */
  readonly loadMsPerByte?: number;
  readonly stepBaseMs?: number;
  readonly msPerToken?: number;
  readonly policyOptions?: GlobalSchedulerOptions["policyOptions"];
  /** Tick at t = 0 and every roundMs (default true). */
  readonly ticks?: boolean;
}

interface Dev {
  readonly memory: DeviceMemory;
  readonly sched: DeviceScheduler;
  readonly exec: FakeExecutor;
  busyUntil: number;
  complete: (() => void) | null;
  signalled: boolean;
  wakeAtMs: number | null;
}

export interface Arrival {
  readonly atMs: number;
  readonly model: string;
  readonly prompt: number;
  readonly maxTokens: number;
}

export class Cluster {
  readonly clock = new ManualClock(0);
  readonly devs: Dev[] = [];
  readonly gs: GlobalScheduler;
  readonly sink = new Sink();
  readonly roundMs: number;
  readonly submitted = new Map<number, { model: string; prompt: Int32Array; maxTokens: number; result: SubmitResult }>();
  readonly log: string[] = [];
  private readonly deferred: (() => void)[] = [];
  private nextTickMs: number;
  private nextId = 1;

  constructor(o: ClusterOptions) {
    const needs = getPolicy(o.policy).create(o.config).needs;
    for (let d = 0; d < o.numDevices; d++) {
      // Backed memory: a weight load may compact, moving KV pages with their bytes; an offset-keyed KV check
      // over accounting-only memory would misreport that as corruption.
      const memory = new DeviceMemory({ budgetBytes: o.budgetPages * PAGE_BYTES, pageBytes: PAGE_BYTES, backed: true, kvHeadroomFraction: 0, minReservedPages: 0, maxReservedPages: 0 });
      const sched = new DeviceScheduler({
        deviceId: deviceId(d),
        memory,
        clock: this.clock,
        rng: new SeededRng(d + 1),
        config: resolveDeviceSchedulerConfig({ maxBatchTokens: 64, maxBatchSeqs: 16, prefillChunkTokens: 32, policy: needs.localPolicy, ...o.device }),
      });
      const exec = new FakeExecutor({
        checkKv: true, memory: memory.memory, vocabSize: VOCAB, profiles: o.models.map((m) => m.profile),
        loadMsPerByte: o.loadMsPerByte ?? 0, stepBaseMs: o.stepBaseMs ?? 2, msPerToken: o.msPerToken ?? 0.05,
      });
      const dev: Dev = { memory, sched, exec, busyUntil: 0, complete: null, signalled: true, wakeAtMs: null };
      sched.setWakeListener(() => {
        dev.signalled = true;
      });
      this.devs.push(dev);
    }
    this.gs = new GlobalScheduler({
      devices: this.devs.map((d) => ({ scheduler: d.sched, memory: d.memory })),
      models: o.models,
      policy: o.policy,
      clock: this.clock,
      ...(o.config !== undefined ? { config: o.config } : {}),
      ...(o.expectedRates !== undefined ? { expectedRates: o.expectedRates } : {}),
      ...(o.policyOptions !== undefined ? { policyOptions: o.policyOptions } : {}),
      defer: (fn) => this.deferred.push(fn),
      onActions: (actions, nowMs, source) => {
        for (const a of actions) this.log.push(`${nowMs} ${source} ${JSON.stringify(a)}`);
      },
    });
    this.roundMs = this.gs.config.roundMs;
    this.nextTickMs = o.ticks === false ? Infinity : 0;
  }

  submit(model: string, prompt: number, maxTokens: number): { id: number; result: SubmitResult } {
    const id = this.nextId++;
    const tokens = Int32Array.from({ length: prompt }, (_, i) => ((id * 7 + i * 3) % 200) + 1);
    const result = this.gs.submit({
      requestId: requestId(id), modelId: modelId(model), promptTokens: tokens, maxTokens, sampling: GREEDY,
      arrivalMs: this.clock.nowMs(), sink: this.sink,
    });
    this.submitted.set(id, { model, prompt: tokens, maxTokens, result });
    return { id, result };
  }

  /** Run the event loop until `untilMs`, submitting `arrivals` (sorted by atMs) at their times. */
  run(untilMs: number, arrivals: readonly Arrival[] = [], onEvent?: (nowMs: number) => void): void {
    let next = 0;
    for (let guard = 0; ; guard++) {
      if (guard > 2_000_000) throw new Error("cluster harness: no progress (livelock?)");
      this.runDeferred();
      this.pollDevices();
      if (this.deferred.length > 0) continue;
      const now = this.clock.nowMs();
      let t = Math.min(untilMs, this.nextTickMs, arrivals[next]?.atMs ?? Infinity);
      for (const d of this.devs) {
        if (d.complete !== null) t = Math.min(t, d.busyUntil);
        else if (d.wakeAtMs !== null) t = Math.min(t, Math.max(now, d.wakeAtMs));
      }
      if (t > untilMs) break;
      if (t > now) this.clock.set(t);
      let progressed = false;
      for (const d of this.devs) {
        if (d.complete !== null && d.busyUntil <= t) {
          const c = d.complete;
          d.complete = null;
          c();
          d.signalled = true;
          progressed = true;
        } else if (d.complete === null && d.wakeAtMs !== null && d.wakeAtMs <= t) {
          d.signalled = true;
          d.wakeAtMs = null;
          progressed = true;
        }
      }
      while (next < arrivals.length && arrivals[next]!.atMs <= t) {
        const a = arrivals[next++]!;
        this.submit(a.model, a.prompt, a.maxTokens);
        progressed = true;
      }
      if (this.nextTickMs <= t) {
        this.gs.tick(t);
        this.nextTickMs = t + this.roundMs;
        progressed = true;
      }
      onEvent?.(t);
      if (!progressed && t >= untilMs) break;
    }
  }

  /** Tokens every finished request should have produced (the fake's reference). */
  expectedTokens(id: number): number[] {
    const s = this.submitted.get(id)!;
    return fakeReference(s.model, s.prompt, s.maxTokens, VOCAB);
  }

  private runDeferred(): void {
    while (this.deferred.length > 0) this.deferred.shift()!();
  }

  private pollDevices(): void {
    for (let again = true; again;) {
      again = false;
      for (const d of this.devs) {
        if (d.complete !== null || !d.signalled) continue;
        d.signalled = false;
        const now = this.clock.nowMs();
        const a = d.sched.nextAction(now);
        switch (a.kind) {
          case "step": {
            const res = d.exec.executeSync(a.plan);
            d.busyUntil = now + res.computeMs;
            d.complete = () => d.sched.completeStep(res, this.clock.nowMs());
            break;
          }
          case "load": {
            const { durationMs } = d.exec.loadSync(a.modelId, a.byteOffset);
            d.busyUntil = now + durationMs;
            d.complete = () => d.sched.completeLoad(a.modelId, durationMs, this.clock.nowMs());
            break;
          }
          case "unload":
            d.exec.unloadWeights(a.modelId);
            d.signalled = true;
            again = true;
            break;
          case "idle":
            d.wakeAtMs = a.wakeAtMs;
            break;
        }
      }
    }
  }
}
