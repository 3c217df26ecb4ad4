// The async driver: runs the same scheduler against an async Executor, wakes on submit, sleeps
// until keep-alive expiry, forwards weight moves, survives executor failures, yields the event loop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { DeviceLoop } from "../../src/device/loop.ts";
import { DeviceScheduler } from "../../src/device/device-scheduler.ts";
import { resolveDeviceSchedulerConfig } from "../../src/device/config.ts";
import { DeviceMemory } from "../../src/memory/device-memory.ts";
import type { DeviceMemoryApi, WeightMoveListener } from "../../src/memory/types.ts";
import { PrismError } from "../../src/core/errors.ts";
import { deviceId, modelId, requestId } from "../../src/core/ids.ts";
import { GREEDY, type StepPlan, type StepResult } from "../../src/core/records.ts";
import { SeededRng } from "../../src/core/rng.ts";
import { FakeExecutor, fakeReference } from "../helpers/fake-executor.ts";
import { makeProfile, PAGE_BYTES, realClock, realTimeHost, RecordingSink } from "../helpers/device-harness.ts";

const host = realTimeHost;

function setup(exec = new FakeExecutor(), keepAliveMs = Number.POSITIVE_INFINITY) {
  const memory = new DeviceMemory({ budgetBytes: 64 * PAGE_BYTES, pageBytes: PAGE_BYTES, backed: false });
  const sched = new DeviceScheduler({
    deviceId: deviceId(0), memory, clock: realClock, rng: new SeededRng(1),
    config: resolveDeviceSchedulerConfig({ maxBatchTokens: 64, maxBatchSeqs: 8, prefillChunkTokens: 32 }),
  });
  sched.addModel(makeProfile("a"), { keepAliveMs });
  sched.addModel(makeProfile("b"), { keepAliveMs });
  const sink = new RecordingSink();
  const loop = new DeviceLoop({ scheduler: sched, executor: exec, memory, clock: realClock, host });
  return { memory, sched, sink, loop, exec };
}

function finishedAll(sink: RecordingSink, n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (sink.finished.size >= n) resolve();
      else setTimeout(check, 1);
    };
    check();
  });
}

function req(sink: RecordingSink, id: number, model: string, promptLen: number, maxTokens: number) {
  return {
    requestId: requestId(id), modelId: modelId(model), promptTokens: Int32Array.from({ length: promptLen }, (_, i) => i + id),
    maxTokens, sampling: GREEDY, arrivalMs: realClock.nowMs(), sink,
  };
}

test("DeviceLoop drives submissions across two models to completion and goes idle", async () => {
  const { sched, sink, loop } = setup();
  loop.start();
  const specs = [req(sink, 1, "a", 40, 10), req(sink, 2, "b", 5, 20), req(sink, 3, "a", 70, 3)];
  for (const s of specs) assert.equal(sched.submit(s), "accepted");
  await finishedAll(sink, 3);
  for (const s of specs) assert.deepEqual(sink.tokens.get(s.requestId), fakeReference(s.modelId, s.promptTokens, s.maxTokens, 256));
  await loop.whenIdle();
  // Wakes again on a later submit.
  assert.equal(sched.submit(req(sink, 4, "b", 3, 2)), "accepted");
  await finishedAll(sink, 4);
  await loop.stop();
  assert.ok(sched.isQuiescent);
});

test("a failing step fails its requests with the executor's code; the loop goes on", async () => {
  class Flaky extends FakeExecutor {
    fail = true;
    override async execute(plan: StepPlan): Promise<StepResult> {
      if (this.fail) {
        this.fail = false;
        throw new PrismError("PRISM_ENGINE_WORKER_DIED", "worker exited");
      }
      return this.executeSync(plan);
    }
  }
  const { sched, sink, loop } = setup(new Flaky());
  loop.start();
  sched.submit(req(sink, 1, "a", 4, 3));
  await finishedAll(sink, 1);
  assert.equal(sink.outcomeOf(1), "failed:PRISM_ENGINE_WORKER_DIED");
  sched.submit(req(sink, 2, "a", 4, 3));
  await finishedAll(sink, 2);
  assert.equal(sink.outcomeOf(2), "finished:length");
  await loop.stop();
});

test("keep-alive expiry is acted on by the loop's timer (wakeAtMs)", async () => {
  const { sched, sink, loop, exec } = setup(new FakeExecutor(), 20);
  loop.start();
  sched.submit(req(sink, 1, "a", 4, 2));
  await finishedAll(sink, 1);
  while (!exec.events.includes("unload a")) await new Promise((r) => setTimeout(r, 5));
  assert.equal(sched.residency(modelId("a")), "absent");
  await loop.stop();
});

test("weight moves reported by the memory are forwarded to the executor", async () => {
  const captured: { listener: WeightMoveListener | null } = { listener: null };
  const exec = new FakeExecutor();
  const real = new DeviceMemory({ budgetBytes: 64 * PAGE_BYTES, pageBytes: PAGE_BYTES, backed: false });
  const spy: DeviceMemoryApi = Object.assign(Object.create(real) as DeviceMemoryApi, {
    onWeightsMoved: (l: WeightMoveListener) => {
      captured.listener = l;
    },
  });
  const sched = new DeviceScheduler({ deviceId: deviceId(0), memory: real, clock: realClock, rng: new SeededRng(1), config: resolveDeviceSchedulerConfig() });
  const loop = new DeviceLoop({ scheduler: sched, executor: exec, memory: spy, clock: realClock, host });
  await exec.loadWeights(modelId("a"), 0);
  assert.ok(captured.listener !== null);
  captured.listener(modelId("a"), 0, 4 * PAGE_BYTES);
  assert.deepEqual(exec.events, ["load a", "move a"]);
  assert.equal(exec.loaded.get(modelId("a")), 4 * PAGE_BYTES);
  await loop.stop();
});

test("the loop yields to the event loop between steps even with an executor that resolves at once", async () => {
  const { sched, sink, loop } = setup();
  loop.start();
  sched.submit(req(sink, 1, "a", 4, 3000));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(sink.outcomeOf(1), "pending", "a timer ran while the request was still decoding");
  assert.ok(sched.cancel(requestId(1)));
  await finishedAll(sink, 1);
  assert.equal(sink.outcomeOf(1), "cancelled");
  await loop.stop();
});
