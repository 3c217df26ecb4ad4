// overlapLoads: a model's weights copy while the co-located models keep stepping. The driver below
// is a small discrete-event loop (one step and one load outstanding at most, as the simulator and
// the DeviceLoop run it). The fake executor marks a model loaded only when its load completes, so a
// step that ran a loading model's request would fail with PRISM_ENGINE_NOT_LOADED.
import { test } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { assertAllKvFree, makeProfile, makeScheduler, submit, PAGE_BYTES, realClock, realTimeHost, RecordingSink, type Harness } from "../helpers/device-harness.ts";
import { FakeExecutor, fakeReference } from "../helpers/fake-executor.ts";
import { deviceId, modelId, requestId, type ModelId } from "../../src/core/ids.ts";
import { GREEDY, type StepPlan, type StepResult } from "../../src/core/records.ts";
import { SeededRng } from "../../src/core/rng.ts";
import { DeviceMemory } from "../../src/memory/device-memory.ts";
import { DeviceScheduler } from "../../src/device/device-scheduler.ts";
import { resolveDeviceSchedulerConfig } from "../../src/device/config.ts";
import { DeviceLoop } from "../../src/device/loop.ts";
import type { DeviceSchedulerConfig, SubmitRequest } from "../../src/device/types.ts";
import { isPrismError, PrismError } from "../../src/core/errors.ts";

const A = modelId("a");
const B = modelId("b");
const C = modelId("c");

interface StepSpan {
  readonly startMs: number;
  readonly endMs: number;
  readonly models: string;
  readonly requestIds: number[];
}

interface OverlapLog {
  readonly actions: string[];
  readonly steps: StepSpan[];
  /** [modelId, startMs, endMs] of every load, in start order. */
  readonly loads: [string, number, number][];
}

interface OverlapDriveOptions {
  /** At a load's end: fail it with this error instead of completing it (null = complete). */
  readonly failLoad?: (modelId: ModelId) => Error | null;
  /** Called before each scheduler call or completion; may submit / cancel. */
  readonly before?: (nowMs: number) => void;
  readonly maxEvents?: number;
}

/** Drive until nothing is outstanding and the scheduler is idle without a wake time. */
function driveOverlap(h: Harness, o: OverlapDriveOptions = {}): OverlapLog {
  const log: OverlapLog = { actions: [], steps: [], loads: [] };
  let step: { res: StepResult; endMs: number; span: StepSpan } | null = null;
  let load: { modelId: ModelId; byteOffset: number; endMs: number; durationMs: number } | null = null;
  for (let i = 0; i < (o.maxEvents ?? 100_000); i++) {
    o.before?.(h.clock.nowMs());
    let wakeAtMs: number | null = null;
    if (h.sched.acceptsAction) {
      const now = h.clock.nowMs();
      const a = h.sched.nextAction(now);
      if (a.kind === "step") {
        const res = h.exec.executeSync(a.plan);
        const span = {
          startMs: now, endMs: now + res.computeMs,
          models: [...new Set(a.plan.seqs.map((s) => s.modelId))].sort().join(""),
          requestIds: a.plan.seqs.map((s) => s.requestId as number),
        };
        step = { res: { stepIndex: res.stepIndex, computeMs: res.computeMs, sampled: res.sampled.map((s) => ({ ...s })) }, endMs: span.endMs, span };
        continue;
      }
      if (a.kind === "load") {
        assert.equal(h.memory.weightRegion(a.modelId)?.byteOffset, a.byteOffset, "weights are allocated before the load starts");
        const durationMs = h.exec.loadMs(a.modelId);
        load = { modelId: a.modelId, byteOffset: a.byteOffset, endMs: now + durationMs, durationMs };
        log.actions.push(`load ${a.modelId}`);
        log.loads.push([a.modelId, now, now + durationMs]);
        continue;
      }
      if (a.kind === "unload") {
        h.exec.unloadWeights(a.modelId);
        log.actions.push(`unload ${a.modelId} (${a.reason})`);
        continue;
      }
      wakeAtMs = a.wakeAtMs;
    }
    // Advance to the earliest completion (a load before a step at the same time) or wake.
    const next = Math.min(load?.endMs ?? Infinity, step?.endMs ?? Infinity, wakeAtMs ?? Infinity);
    if (next === Infinity) return log;
    h.clock.set(Math.max(h.clock.nowMs(), next));
    const now = h.clock.nowMs();
    if (load !== null && load.endMs === next) {
      const l = load;
      load = null;
      const err = o.failLoad?.(l.modelId) ?? null;
      if (err !== null) {
        h.sched.failLoad(l.modelId, err, now);
        log.actions.push(`failLoad ${l.modelId}`);
      } else {
        h.exec.loadSync(l.modelId, l.byteOffset);
        h.sched.completeLoad(l.modelId, l.durationMs, now);
      }
    } else if (step !== null && step.endMs === next) {
      const s = step;
      step = null;
      h.sched.completeStep(s.res, now);
      log.steps.push(s.span);
      log.actions.push("step");
    }
  }
  throw new Error("driveOverlap: no quiescence (livelock?)");
}

/** Steps that started while [fromMs, toMs) was loading. */
function stepsDuring(log: OverlapLog, fromMs: number, toMs: number): StepSpan[] {
  return log.steps.filter((s) => s.startMs >= fromMs && s.startMs < toMs);
}

function rig(overlapLoads: boolean, config: Partial<DeviceSchedulerConfig> = {}, budgetPages = 64) {
  // Weights: 4 pages each; every load takes 100 ms and every step 1 ms (exact in binary floats).
  const profiles = [makeProfile("a"), makeProfile("b"), makeProfile("c")];
  const h = makeScheduler({ budgetPages, config: { overlapLoads, ...config }, exec: { loadMsDefault: 100, stepBaseMs: 1, msPerToken: 0 } });
  for (const p of profiles) h.sched.addModel(p, { ttftSloMs: 1000 });
  return h;
}

test("a weight load overlaps the steps of the co-located model (and stalls the device without overlapLoads)", () => {
  for (const overlap of [true, false]) {
    const h = rig(overlap);
    submit(h, { id: 1, model: "a", prompt: 8, maxTokens: 200, arrivalMs: 0 });
    let sent = false;
    const log = driveOverlap(h, {
      before: (now) => {
        // Once request 1 decodes, b's request arrives.
        if (!sent && h.sink.tokens.get(1)?.length === 5) {
          sent = true;
          submit(h, { id: 2, model: "b", prompt: 8, maxTokens: 3, arrivalMs: now });
        }
      },
    });
    assert.deepEqual(log.actions.filter((a) => a !== "step"), ["load a", "load b"]);
    const [, from, to] = log.loads[1]!;
    assert.equal(to - from, 100);
    const during = stepsDuring(log, from, to);
    if (overlap) {
      // a's decodes go on, one every 1.01 ms, for the whole 100 ms copy.
      assert.equal(during.length, 100);
      assert.ok(during.every((s) => s.models === "a"));
    } else {
      assert.equal(during.length, 0);
    }
    // b's first step starts at the first planning point after its load.
    const firstB = log.steps.find((s) => s.requestIds.includes(2))!;
    assert.ok(firstB.startMs >= to);
    assert.ok(firstB.startMs < to + 1.02);
    const stats2 = h.sink.finished.get(2)!.stats;
    // Overlapping, the copy starts before the next step is planned; stalling, admission wishes the
    // activation while planning a step of a, and the copy starts after that step.
    assert.equal(stats2.activationWaitMs, overlap ? 100 : 101, "queued exactly for the copy");
    for (const [id, model, prompt, n] of [[1, "a", 8, 200], [2, "b", 8, 3]] as const) {
      const p = Array.from({ length: prompt }, (_, i) => (id * 7 + i * 3) % 200 + 1);
      assert.deepEqual(h.sink.tokens.get(id), fakeReference(model, p, n, 256), `tokens of ${id}`);
    }
    assert.equal(h.sink.outcomeOf(1), "finished:length");
    assert.equal(h.sink.outcomeOf(2), "finished:length");
    // With overlap, request 1 finishes ~100 steps earlier (no stall).
    const end1 = h.sink.finished.get(1)!.atMs;
    if (overlap) assert.ok(end1 < 200 * 1.01 + 100, `request 1 ended at ${end1}`);
    else assert.ok(end1 > 200 * 1.01 + 100, `request 1 ended at ${end1}`);
    assertAllKvFree(h);
  }
});

test("a loading model's requests wait for its own load, even when they are the most urgent", () => {
  const h = rig(true);
  submit(h, { id: 1, model: "a", prompt: 8, maxTokens: 300, arrivalMs: 0 });
  let t0 = -1;
  const log = driveOverlap(h, {
    before: (now) => {
      if (t0 < 0 && h.sink.tokens.get(1)?.length === 2) {
        t0 = now;
        // b's request is the most urgent on the device (arrived long ago); a's second is not.
        submit(h, { id: 2, model: "b", prompt: 8, maxTokens: 2, arrivalMs: now - 900 });
        submit(h, { id: 3, model: "a", prompt: 8, maxTokens: 2, arrivalMs: now });
      }
    },
  });
  const [, from, to] = log.loads.find(([m]) => m === "b")!;
  assert.equal(from, t0);
  for (const s of stepsDuring(log, from, to)) assert.ok(!s.requestIds.includes(2), `step at ${s.startMs} ran b during its load`);
  // a's less urgent request does not wait behind b's load.
  const first3 = log.steps.find((s) => s.requestIds.includes(3))!;
  assert.equal(first3.startMs, from, "admitted in the step planned right after the load started");
  assert.ok(h.sink.finished.get(2)!.stats.firstTokenMs > to);
  assert.equal(h.sink.finished.get(2)!.stats.activationWaitMs, 100);
  for (const id of [1, 2, 3]) assert.equal(h.sink.outcomeOf(id), "finished:length");
  assertAllKvFree(h);
});

test("cancellation during a load: queued requests of the loading model and running ones of another finish at once", () => {
  const h = rig(true);
  submit(h, { id: 1, model: "a", prompt: 8, maxTokens: 400, arrivalMs: 0 });
  submit(h, { id: 2, model: "a", prompt: 8, maxTokens: 400, arrivalMs: 0 });
  let phase = 0;
  let cancelAt = -1;
  let sentAt = -1;
  const log = driveOverlap(h, {
    before: (now) => {
      if (phase === 0 && h.sink.tokens.get(1)?.length === 3) {
        phase = 1;
        sentAt = now;
        submit(h, { id: 3, model: "b", prompt: 8, maxTokens: 5, arrivalMs: now });
        submit(h, { id: 4, model: "b", prompt: 8, maxTokens: 5, arrivalMs: now });
      } else if (phase === 1 && h.sched.isLoading && now > sentAt + 20) {
        phase = 2;
        cancelAt = now;
        assert.equal(h.sched.cancel(3 as never), true);
        assert.equal(h.sched.cancel(4 as never), true);
        assert.equal(h.sched.cancel(2 as never), true);
        assert.equal(h.sched.residency(B), "loading");
      }
    },
  });
  assert.equal(phase, 2);
  for (const id of [3, 4]) {
    assert.equal(h.sink.outcomeOf(id), "cancelled");
    assert.equal(h.sink.finished.get(id)!.atMs, cancelAt, "a queued request cancels at once, mid-load");
  }
  // 2 was in the step outstanding at the cancel: it ends when that step completes.
  assert.equal(h.sink.outcomeOf(2), "cancelled");
  assert.ok(h.sink.finished.get(2)!.atMs - cancelAt < 1.03);
  assert.equal(h.sink.outcomeOf(1), "finished:length");
  // The load still completes; b is resident, idle, and was never stepped.
  assert.equal(h.sched.residency(B), "resident");
  assert.ok(log.steps.every((s) => !s.models.includes("b")));
  assert.equal(h.sched.stats().models.find((m) => m.modelId === "b")!.numQueued, 0);
  assertAllKvFree(h);
});

test("failLoad while steps run: the loading model's requests fail, its weights are freed, the others run on", () => {
  const h = rig(true);
  submit(h, { id: 1, model: "a", prompt: 8, maxTokens: 300, arrivalMs: 0 });
  let sent = false;
  const log = driveOverlap(h, {
    failLoad: (m) => (m === B ? new PrismError("PRISM_INTERNAL", "copy engine fault") : null),
    before: (now) => {
      if (!sent && h.sink.tokens.get(1)?.length === 4) {
        sent = true;
        submit(h, { id: 2, model: "b", prompt: 8, maxTokens: 5, arrivalMs: now });
        submit(h, { id: 3, model: "b", prompt: 9, maxTokens: 5, arrivalMs: now });
      }
    },
  });
  assert.deepEqual(log.actions.filter((a) => a !== "step"), ["load a", "load b", "failLoad b"]);
  const [, from, to] = log.loads[1]!;
  assert.equal(stepsDuring(log, from, to).length, 100, "a stepped through the load");
  for (const id of [2, 3]) {
    const f = h.sink.finished.get(id)!;
    assert.equal(h.sink.outcomeOf(id), "failed:PRISM_INTERNAL");
    assert.equal(f.atMs, to);
    assert.equal(f.outcome.kind === "failed" && f.outcome.error.message, "copy engine fault");
  }
  assert.equal(h.memory.weightRegion(B), null);
  assert.equal(h.sched.residency(B), "absent");
  const p1 = Array.from({ length: 8 }, (_, i) => (1 * 7 + i * 3) % 200 + 1);
  assert.deepEqual(h.sink.tokens.get(1), fakeReference("a", p1, 300, 256));
  assert.equal(h.sink.outcomeOf(1), "finished:length");
  assertAllKvFree(h);
});

test("one load at a time, and eviction never takes the loading model or one with requests in flight", () => {
  // 10 pages: two models' weights (4 + 4) and 2 pages of KV; a third needs an eviction.
  const h = rig(true, {}, 10);
  submit(h, { id: 1, model: "a", prompt: 8, maxTokens: 200, arrivalMs: 0 });
  let phase = 0;
  let loadsSeen = 0;
  const log = driveOverlap(h, {
    before: (now) => {
      if (phase === 0 && h.sink.tokens.get(1)?.length === 2) {
        phase = 1;
        submit(h, { id: 2, model: "b", prompt: 8, maxTokens: 3, arrivalMs: now });
      } else if (phase === 1 && h.sched.isLoading) {
        phase = 2;
        // c's request is the most urgent, and c does not fit beside a and b.
        submit(h, { id: 3, model: "c", prompt: 8, maxTokens: 3, arrivalMs: now - 900 });
      }
      if (h.sched.residency(B) === "loading") {
        loadsSeen++;
        // While b loads, neither b (loading) nor a (running) may be evicted, and c may not start loading.
        assert.notEqual(h.sched.residency(B), "absent");
        assert.equal(h.sched.residency(A), "resident");
        assert.equal(h.sched.residency(C), "absent");
      }
    },
  });
  assert.ok(loadsSeen > 10);
  const nonSteps = log.actions.filter((a) => a !== "step");
  // c waits for b's load, then for b to serve the head it was loaded for (a runs throughout and is
  // never a candidate); then b, holding no request, is evicted for c.
  assert.deepEqual(nonSteps, ["load a", "load b", "unload b (evict)", "load c"]);
  const [, bFrom, bTo] = log.loads[1]!;
  const [, cFrom] = log.loads[2]!;
  assert.ok(cFrom >= bTo, "c's load starts after b's ended");
  assert.ok(h.sink.finished.get(2)!.atMs <= cFrom, "b was evicted only after its request finished");
  assert.ok(bFrom < bTo);
  for (const id of [1, 2, 3]) assert.equal(h.sink.outcomeOf(id), "finished:length");
  assertAllKvFree(h);
});

test("the KV room a loading model's more urgent head needs is kept from less urgent admissions", () => {
  // 16 pages: weights 4 + 4, 8 pages of KV (8 blocks of 16 tokens each). a's request 1 holds one
  // or two pages; b's head (300 tokens) needs 3 pages; a's request 3 (600 tokens) needs 5.
  const h = rig(true, { decodeMarginTokens: 0, maxBatchTokens: 512, prefillChunkTokens: 512 }, 16);
  submit(h, { id: 1, model: "a", prompt: 8, maxTokens: 200, arrivalMs: 0 });
  let sentAt = -1;
  const log = driveOverlap(h, {
    before: (now) => {
      if (sentAt < 0 && h.sink.tokens.get(1)?.length === 2) {
        sentAt = now;
        submit(h, { id: 2, model: "b", prompt: 300, maxTokens: 2, arrivalMs: now - 500 }); // most urgent
        submit(h, { id: 3, model: "a", prompt: 600, maxTokens: 2, arrivalMs: now }); // least urgent
        submit(h, { id: 4, model: "a", prompt: 8, maxTokens: 2, arrivalMs: now - 600 }); // more urgent than b's head
      }
    },
  });
  const [, from, to] = log.loads.find(([m]) => m === "b")!;
  assert.equal(from, sentAt);
  const first = (id: number): number => log.steps.find((s) => s.requestIds.includes(id))!.startMs;
  const last = (id: number): number => log.steps.findLast((s) => s.requestIds.includes(id))!.startMs;
  // 4 is more urgent than b's head: it runs during the load (in the first step beside the copy).
  assert.equal(first(4), from);
  // 3 would fit during the load (7 free pages) but would leave b's head 2: it waits; after the
  // load b's head takes its 3 pages, and 3 starts once b's request has given them back.
  assert.equal(first(2), to);
  assert.ok(first(3) > last(2), `request 3 started at ${first(3)}, b's request ran until ${last(2)}`);
  for (const id of [1, 2, 3, 4]) assert.equal(h.sink.outcomeOf(id), "finished:length", `request ${id}`);
  assertAllKvFree(h);
});

test("protocol with overlapLoads: nextAction refused while a step is outstanding, accepted during a load", () => {
  const h = rig(true);
  submit(h, { id: 1, model: "a", prompt: 8, maxTokens: 3 });
  const a = h.sched.nextAction(0);
  assert.equal(a.kind, "load");
  assert.equal(h.sched.acceptsAction, true);
  assert.equal(h.sched.nextAction(0).kind, "idle");
  h.sched.requestLoad(B);
  assert.equal(h.sched.nextAction(0).kind, "idle", "a second load waits for the first");
  assert.throws(() => h.sched.completeLoad(B, 1, 1), (e: unknown) => isPrismError(e) && e.code === "PRISM_INTERNAL");
  h.exec.loadSync(A, (a as { byteOffset: number }).byteOffset);
  h.sched.completeLoad(A, 100, 100);
  const b = h.sched.nextAction(100);
  assert.equal(b.kind, "load"); // the manual load of b, before a's step
  const s = h.sched.nextAction(100);
  assert.equal(s.kind, "step");
  assert.equal(h.sched.acceptsAction, false);
  assert.throws(() => h.sched.nextAction(100), (e: unknown) => isPrismError(e) && e.code === "PRISM_INTERNAL");
  // The load may complete while the step is outstanding.
  h.exec.loadSync(B, (b as { byteOffset: number }).byteOffset);
  h.sched.completeLoad(B, 100, 150);
  assert.equal(h.sched.residency(B), "resident");
  assert.equal(h.sched.acceptsAction, false);

  const off = rig(false);
  submit(off, { id: 1, model: "a", prompt: 8, maxTokens: 3 });
  assert.equal(off.sched.nextAction(0).kind, "load");
  assert.equal(off.sched.acceptsAction, false);
  assert.throws(() => off.sched.nextAction(0), (e: unknown) => isPrismError(e) && e.code === "PRISM_INTERNAL");
});

// ---- the async DeviceLoop with overlapLoads (real timers) -----------------------------------------

const host = realTimeHost;

/** Loads take `loadMs` of wall time (a timer), or fail after it; steps resolve at once. */
class SlowLoadExecutor extends FakeExecutor {
  stepsDuringLoad = 0;
  private loading = 0;
  constructor(private readonly copyMs: number, private readonly failing: ReadonlySet<string>) {
    super();
  }
  override loadWeights(id: ModelId, byteOffset: number): Promise<{ readonly durationMs: number }> {
    this.loading++;
    return new Promise((resolve, reject) => setTimeout(() => {
      this.loading--;
      if (this.failing.has(id)) reject(new PrismError("PRISM_INTERNAL", `copy of ${id} failed`));
      else resolve(this.loadSync(id, byteOffset));
    }, this.copyMs));
  }
  override execute(plan: StepPlan): Promise<StepResult> {
    if (this.loading > 0) this.stepsDuringLoad++;
    return super.execute(plan);
  }
}

/** Poll (a macrotask per check) until cond holds; fails after 10 s. */
async function until(cond: () => boolean): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > 10_000) throw new Error("until: condition not reached in 10 s");
    await new Promise((r) => setTimeout(r, 1));
  }
}

function loopRig(exec: SlowLoadExecutor) {
  const memory = new DeviceMemory({ budgetBytes: 64 * PAGE_BYTES, pageBytes: PAGE_BYTES, backed: false });
  const sched = new DeviceScheduler({
    deviceId: deviceId(0), memory, clock: realClock, rng: new SeededRng(1),
    config: resolveDeviceSchedulerConfig({ maxBatchTokens: 64, maxBatchSeqs: 8, prefillChunkTokens: 32, overlapLoads: true }),
  });
  sched.addModel(makeProfile("a"));
  sched.addModel(makeProfile("b"));
  const sink = new RecordingSink();
  const loop = new DeviceLoop({ scheduler: sched, executor: exec, memory, clock: realClock, host });
  return { memory, sched, sink, loop };
}

function loopReq(sink: RecordingSink, id: number, model: string, maxTokens: number): SubmitRequest {
  return {
    requestId: requestId(id), modelId: modelId(model), promptTokens: Int32Array.from({ length: 8 }, (_, i) => i + id),
    maxTokens, sampling: GREEDY, arrivalMs: realClock.nowMs(), sink,
  };
}

test("DeviceLoop with overlapLoads: steps run while a load is pending; whenIdle and stop wait for the load", async () => {
  const exec = new SlowLoadExecutor(40, new Set());
  const { sched, sink, loop } = loopRig(exec);
  loop.start();
  assert.equal(sched.submit(loopReq(sink, 1, "a", 2)), "accepted");
  await loop.whenIdle(); // a loaded (40 ms), request 1 done
  assert.equal(sink.outcomeOf(1), "finished:length");
  // a decodes for a long time; b's load starts beside it.
  assert.equal(sched.submit(loopReq(sink, 2, "a", 100_000)), "accepted");
  await until(() => (sink.tokens.get(2)?.length ?? 0) > 2);
  assert.equal(sched.submit(loopReq(sink, 3, "b", 3)), "accepted");
  await until(() => sched.residency(B) === "loading");
  const stepsBefore = exec.stepsDuringLoad;
  await until(() => exec.stepsDuringLoad > stepsBefore + 3);
  assert.equal(sched.residency(B), "loading");
  assert.equal(sched.cancel(requestId(2)), true);
  // Nothing left to step but the load: the loop is not idle until b is resident and 3 is served.
  await loop.whenIdle();
  assert.equal(sched.residency(B), "resident");
  assert.equal(sink.outcomeOf(3), "finished:length");
  assert.equal(sink.outcomeOf(2), "cancelled");
  // stop() with a load pending settles it first.
  sched.requestUnload(B);
  await loop.whenIdle();
  sched.requestLoad(B);
  await until(() => sched.residency(B) === "loading");
  await loop.stop();
  assert.equal(sched.residency(B), "resident");
  assert.equal(sched.isQuiescent, true);
});

test("DeviceLoop with overlapLoads: a failed load fails its model's requests while the other model runs on", async () => {
  const exec = new SlowLoadExecutor(30, new Set(["b"]));
  const { memory, sched, sink, loop } = loopRig(exec);
  loop.start();
  assert.equal(sched.submit(loopReq(sink, 1, "a", 2000)), "accepted");
  await until(() => (sink.tokens.get(1)?.length ?? 0) > 2);
  assert.equal(sched.submit(loopReq(sink, 2, "b", 3)), "accepted");
  await loop.whenIdle();
  assert.equal(sink.outcomeOf(2), "failed:PRISM_INTERNAL");
  assert.equal(sink.outcomeOf(1), "finished:length");
  assert.deepEqual(sink.tokens.get(1), fakeReference("a", Array.from({ length: 8 }, (_, i) => i + 1), 2000, 256));
  assert.ok(exec.stepsDuringLoad > 0, "a stepped while b's weights loaded");
  assert.ok(sink.finished.get(2)!.stats.finishedMs < sink.finished.get(1)!.stats.finishedMs, "b's failure came while a ran");
  assert.equal(memory.weightRegion(B), null);
  assert.equal(sched.residency(B), "absent");
  await loop.stop();
});
