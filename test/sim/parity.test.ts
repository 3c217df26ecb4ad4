// Parity: the simulator and the server-style async DeviceLoop, both driving the real DeviceScheduler
// (and GlobalScheduler) with the same step times, take the same decisions: the same step plans at
// the same times and the same first-token / finish times for every request.
//
// The async side runs on a virtual-time macrotask harness: timers fire in time order, and between
// two timers every pending microtask and setImmediate callback runs (so the DeviceLoop's awaits
// settle exactly as they would on a real event loop). Arrival and step times are generic floats, so
// no two events share a time and the two worlds' tie rules never matter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { deviceId, modelId, requestId, type ModelId } from "../../src/core/ids.ts";
import { GREEDY, type Executor, type StepPlan, type StepResult } from "../../src/core/records.ts";
import { SeededRng } from "../../src/core/rng.ts";
import { DeviceMemory } from "../../src/memory/device-memory.ts";
import { DeviceScheduler } from "../../src/device/device-scheduler.ts";
import { resolveDeviceSchedulerConfig } from "../../src/device/config.ts";
import { DeviceLoop, type LoopHost } from "../../src/device/loop.ts";
import type { RequestOutcome, RequestSink, RequestStats, SubmitRequest } from "../../src/device/types.ts";
import { GlobalScheduler } from "../../src/control/global-scheduler.ts";
import { createPolicy } from "../../src/control/policies/registry.ts";
import { DEFAULT_CONTROL_CONFIG } from "../../src/control/types.ts";
import { CostModel, CostModelExecutor } from "../../src/sim/cost-model.ts";
import { VirtualClock } from "../../src/sim/virtual-clock.ts";
import { Simulator, GPU_DEVICE_SCHEDULER_DEFAULTS, MODEL_MAX_RUNNING, DEFAULT_PAGE_BYTES, type SimModel } from "../../src/sim/simulator.ts";
import { DirectDriver } from "../../src/sim/direct-driver.ts";
import { GlobalDriver } from "../../src/sim/global-driver.ts";
import type { ModelArchId } from "../../src/sim/catalog.ts";
import type { Trace } from "../../src/workload/trace-format.ts";
import { makeTrace } from "./helpers.ts";

/** Virtual-time timers in µs (the simulator's unit, so both sides do the same float arithmetic). */
class Timers {
  readonly clock = new VirtualClock();
  private items: { tUs: number; seq: number; fn: () => void; live: boolean }[] = [];
  private seq = 0;
  atUs(tUs: number, fn: () => void): () => void {
    const it = { tUs, seq: this.seq++, fn, live: true };
    this.items.push(it);
    return () => {
      it.live = false;
    };
  }
  afterMs(ms: number, fn: () => void): () => void {
    return this.atUs(this.clock.nowUs() + ms * 1000, fn);
  }
  async run(done: () => boolean): Promise<void> {
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (done()) return;
      this.items = this.items.filter((i) => i.live);
      if (this.items.length === 0) return;
      let best = 0;
      for (let k = 1; k < this.items.length; k++) {
        const a = this.items[k]!;
        const b = this.items[best]!;
        if (a.tUs < b.tUs || (a.tUs === b.tUs && a.seq < b.seq)) best = k;
      }
      const it = this.items.splice(best, 1)[0]!;
      this.clock.advanceToUs(Math.max(it.tUs, this.clock.nowUs()));
      it.fn();
    }
  }
}

interface StepLog {
  device: number;
  stepIndex: number;
  startMs: number;
  seqs: string;
}

function planText(plan: StepPlan): string {
  return plan.seqs.map((s) => `${s.requestId}:${s.modelId}@${s.startPos}+${s.tokens.length}${s.sample ? "s" : ""}`).join(" ");
}

/** The cost model as an async executor on virtual time: a step resolves after its modelled duration. */
class VirtualCostExecutor implements Executor {
  readonly kind = "virtual-cost";
  readonly pagedKv = true;
  private readonly inner: CostModelExecutor;
  constructor(private readonly cm: CostModel, private readonly timers: Timers, private readonly device: number, private readonly log: StepLog[]) {
    this.inner = new CostModelExecutor(cm);
  }
  execute(plan: StepPlan): Promise<StepResult> {
    this.log.push({ device: this.device, stepIndex: plan.stepIndex, startMs: this.timers.clock.nowMs(), seqs: planText(plan) });
    const r = this.inner.executeSync(plan);
    const copy: StepResult = { stepIndex: r.stepIndex, computeMs: r.computeMs, sampled: r.sampled.map((s) => ({ ...s })) };
    return new Promise((resolve) => this.timers.afterMs(r.computeMs, () => resolve(copy)));
  }
  loadWeights(id: ModelId): Promise<{ readonly durationMs: number }> {
    const ms = this.cm.loadMs(id);
    return new Promise((resolve) => this.timers.afterMs(ms, () => resolve({ durationMs: ms })));
  }
  unloadWeights(): void {}
  moveWeights(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class Recorder implements RequestSink {
  readonly first = new Map<number, number>();
  readonly finish = new Map<number, string>();
  onToken(): void {}
  onFinish(id: number, outcome: RequestOutcome, stats: RequestStats): void {
    this.first.set(id, stats.firstTokenMs);
    this.finish.set(id, `${outcome.kind}@${stats.finishedMs}/${stats.numOutputTokens}`);
  }
}

interface World {
  activations?: number;
  /** Steps that started while the same device was loading weights (overlapLoads). */
  overlappedSteps?: number;
  steps: StepLog[];
  first: Map<number, number>;
  finish: Map<number, string>;
}

function specsOf(trace: Trace, models: readonly SimModel[], sink: RequestSink, prompt: Int32Array): SubmitRequest[] {
  const out: SubmitRequest[] = [];
  for (let i = 0; i < trace.numRequests; i++) {
    out.push({
      requestId: requestId(i),
      modelId: models[trace.modelIndex[i]!]!.cost.modelId,
      promptTokens: prompt.subarray(0, trace.inputTokens[i]!),
      maxTokens: trace.outputTokens[i]!,
      sampling: GREEDY,
      arrivalMs: (trace.arrivalS[i]! * 1e6) / 1000,
      sink,
    });
  }
  return out;
}

interface Setup {
  cm: CostModel;
  models: SimModel[];
  trace: Trace;
  numDevices: number;
  policy: string | null;
}

function simWorld(s: Setup): World {
  const steps: StepLog[] = [];
  const driver = s.policy === null ? new DirectDriver({ preload: true }) : new GlobalDriver({ policy: s.policy });
  let overlappedSteps = 0;
  const sim: Simulator = new Simulator({
    trace: s.trace, models: s.models, costModel: s.cm, numDevices: s.numDevices, driver,
    onStep: (device, stepIndex, startMs, _ms, plan) => {
      if (sim.devices[device]!.scheduler.isLoading) overlappedSteps++;
      steps.push({ device, stepIndex, startMs, seqs: planText(plan as StepPlan) });
    },
  });
  const r = sim.run();
  const first = new Map<number, number>();
  const finish = new Map<number, string>();
  const o = r.outcomes;
  for (let i = 0; i < o.count; i++) {
    first.set(i, r.firstTokenMs[i]!);
    finish.set(i, `${o.ok[i] === 1 ? "finished" : "failed"}@${r.finishedMs[i]}/${o.outputTokens[i]}`);
  }
  return { steps, first, finish, activations: r.activations, overlappedSteps };
}

async function loopWorld(s: Setup): Promise<World> {
  const timers = new Timers();
  const steps: StepLog[] = [];
  const rec = new Recorder();
  const host: LoopHost = { defer: (fn) => void timers.afterMs(0, fn), after: (ms, fn) => timers.afterMs(ms, fn) };
  const policy = s.policy === null ? null : createPolicy(s.policy, DEFAULT_CONTROL_CONFIG);
  const config = resolveDeviceSchedulerConfig({ ...GPU_DEVICE_SCHEDULER_DEFAULTS, ...(policy !== null ? { policy: policy.needs.localPolicy } : {}) });
  const budget = Math.floor(s.cm.device.memBytes / DEFAULT_PAGE_BYTES) * DEFAULT_PAGE_BYTES;
  const devices = Array.from({ length: s.numDevices }, (_, d) => {
    const memory = new DeviceMemory({ budgetBytes: budget, pageBytes: DEFAULT_PAGE_BYTES, backed: false, kvHeadroomFraction: 0.05 });
    const scheduler = new DeviceScheduler({ deviceId: deviceId(d), memory, clock: timers.clock, rng: new SeededRng(7919 + d), config });
    const loop = new DeviceLoop({ scheduler, executor: new VirtualCostExecutor(s.cm, timers, d, steps), memory, clock: timers.clock, host });
    return { memory, scheduler, loop };
  });
  const maxRunning = Math.min(MODEL_MAX_RUNNING, config.maxBatchSeqs);
  let submit: (spec: SubmitRequest) => void;
  let gs: GlobalScheduler | null = null;
  if (policy === null) {
    for (const m of s.models) {
      devices[0]!.scheduler.addModel(m.cost.profile, { ttftSloMs: m.ttftSloMs, tpotSloMs: m.tpotSloMs, pinned: true, keepAliveMs: Infinity, maxRunning });
      devices[0]!.scheduler.requestLoad(m.cost.modelId);
    }
    submit = (spec) => assert.equal(devices[0]!.scheduler.submit(spec), "accepted");
  } else {
    const g = new GlobalScheduler({
      devices: devices.map((d) => ({ scheduler: d.scheduler, memory: d.memory })),
      models: s.models.map((m) => ({ profile: m.cost.profile, ttftSloMs: m.ttftSloMs, tpotSloMs: m.tpotSloMs, serving: { maxRunning } })),
      policy,
      clock: timers.clock,
      config: DEFAULT_CONTROL_CONFIG,
      defer: (fn) => void timers.afterMs(0, fn),
    });
    gs = g;
    submit = (spec) => assert.equal(g.submit(spec), "accepted");
    const roundUs = DEFAULT_CONTROL_CONFIG.roundMs * 1000;
    const tick = (tUs: number): void => {
      timers.atUs(tUs, () => {
        g.tick(timers.clock.nowMs());
        if (rec.finish.size < s.trace.numRequests) tick(tUs + roundUs);
      });
    };
    tick(0);
  }
  const prompt = new Int32Array(4096);
  specsOf(s.trace, s.models, rec, prompt).forEach((spec, i) => timers.atUs(s.trace.arrivalS[i]! * 1e6, () => submit(spec)));
  for (const d of devices) d.loop.start();
  await timers.run(() => rec.finish.size === s.trace.numRequests);
  for (const d of devices) void d.loop.stop();
  await new Promise((r) => setImmediate(r));
  void gs;
  return { steps, first: rec.first, finish: rec.finish };
}

function models(cm: CostModel, archs: ModelArchId[], sloMs: number): SimModel[] {
  return archs.map((arch, i) => ({ cost: cm.addModel({ id: modelId(`m${i}`), arch }), ttftSloMs: sloMs, tpotSloMs: 100 }));
}

/** A bursty trace: per model a few bursts at odd times; lengths varied; no two arrivals share a time. */
function burstyTrace(numModels: number, numRequests: number, seed: number, spanS: number): Trace {
  const rng = new SeededRng(seed);
  const rows: { t: number; m: number; in: number; out: number }[] = [];
  for (let i = 0; i < numRequests; i++) {
    const m = Math.min(numModels - 1, Math.floor(numModels * rng.next() ** 2));
    const burst = Math.floor(rng.next() * 6);
    const t = (burst * spanS) / 6 + rng.next() * 1.3 + 0.0123457 * (i % 7);
    rows.push({ t, m, in: 20 + rng.int(900), out: 2 + rng.int(120) });
  }
  return makeTrace(rows, numModels);
}

function assertSameWorld(a: World, b: World): void {
  assert.equal(a.steps.length, b.steps.length, "number of steps");
  for (let k = 0; k < a.steps.length; k++) assert.deepEqual(a.steps[k], b.steps[k], `step ${k}`);
  assert.deepEqual([...a.first.entries()].sort((x, y) => x[0] - y[0]), [...b.first.entries()].sort((x, y) => x[0] - y[0]));
  assert.deepEqual([...a.finish.entries()].sort((x, y) => x[0] - y[0]), [...b.finish.entries()].sort((x, y) => x[0] - y[0]));
}

const byDeviceThenTime = (x: StepLog, y: StepLog): number => x.device - y.device || x.stepIndex - y.stepIndex;

test("parity, one device, three models, DeviceScheduler alone: sim == async DeviceLoop", async () => {
  const cm = new CostModel({ deviceType: "h100", device: { memBytes: 48 * 2 ** 30 } });
  const ms = models(cm, ["llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b"], 300);
  const setup: Setup = { cm, models: ms, trace: burstyTrace(3, 120, 5, 20), numDevices: 1, policy: null };
  const a = simWorld(setup);
  const b = await loopWorld(setup);
  assert.ok(a.steps.length > 50);
  assertSameWorld(a, b);
});

for (const policy of ["prism", "swap", "static"]) {
  test(`parity, GlobalScheduler '${policy}' over 2 devices, 6 models with swapping: sim == async DeviceLoops`, async () => {
    // 40 GiB devices: two 8B-class models do not fit together, so activations, evictions and
    // (for prism) migrations happen.
    const cm = new CostModel({ deviceType: "h100", device: { memBytes: 40 * 2 ** 30 } });
    const ms = models(cm, ["llama-3.1-8b", "qwen2.5-7b", "llama-3.2-3b", "llama-3.1-8b", "llama-3.2-1b", "qwen2.5-7b"], 800);
    const setup: Setup = { cm, models: ms, trace: burstyTrace(6, 200, 11, 120), numDevices: 2, policy };
    const a = simWorld(setup);
    const b = await loopWorld(setup);
    assert.ok(a.steps.length > 50);
    if (policy !== "static") {
      assert.ok(a.activations! > 6, `expected swapping, got ${a.activations} activations`);
      // swap keeps one model per device, so only prism has co-located models stepping during a load.
      if (policy === "prism") assert.ok(a.overlappedSteps! > 50, `expected steps during weight loads (overlapLoads), got ${a.overlappedSteps}`);
    }
    a.steps.sort(byDeviceThenTime);
    b.steps.sort(byDeviceThenTime);
    assertSameWorld(a, b);
  });
}
