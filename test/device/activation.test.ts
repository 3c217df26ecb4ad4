// Time sharing: activation on demand, eviction of idle models (never in-flight or pinned ones),
// keep-alive expiry, manual load/unload, timings in stats.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertAllKvFree, drive, makeProfile, makeScheduler, submit, PAGE_BYTES } from "../helpers/device-harness.ts";
import { modelId } from "../../src/core/ids.ts";
import { isPrismError } from "../../src/core/errors.ts";

const A = modelId("a");
const B = modelId("b");

function twoModelsOneSlot() {
  // 20 pages: weights of 10 pages each → only one model resident, 10 pages of KV beside it.
  const profiles = [makeProfile("a", { weightBytes: 10 * PAGE_BYTES }), makeProfile("b", { weightBytes: 10 * PAGE_BYTES })];
  const h = makeScheduler({ budgetPages: 20, exec: { profiles, loadMsPerByte: 0.001 } });
  for (const p of profiles) h.sched.addModel(p);
  return h;
}

test("memory for one model's weights: alternating requests both complete, each waiting for its activation", () => {
  const h = twoModelsOneSlot();
  submit(h, { id: 1, model: "a", prompt: 20, maxTokens: 5, arrivalMs: 0 });
  submit(h, { id: 2, model: "b", prompt: 20, maxTokens: 5, arrivalMs: 100 });
  submit(h, { id: 3, model: "a", prompt: 20, maxTokens: 5, arrivalMs: 200 });
  submit(h, { id: 4, model: "b", prompt: 20, maxTokens: 5, arrivalMs: 300 });
  const log = drive(h);
  assert.deepEqual(log.actions.filter((a) => a !== "step"), [
    "load a", "unload a (evict)", "load b", "unload b (evict)", "load a", "unload a (evict)", "load b",
  ]);
  assert.deepEqual(h.sink.order, [1, 2, 3, 4]);
  for (const id of [1, 2, 3, 4]) {
    assert.equal(h.sink.outcomeOf(id), "finished:length");
    assert.ok(h.sink.finished.get(id)!.stats.activationWaitMs > 0, `request ${id} waited for an activation`);
  }
  const st = h.sched.stats();
  assert.equal(st.numActivations, 4);
  assert.equal(st.numEvictions, 3);
  // loadMs = 10 pages × 16384 B × 0.001 ms/B
  assert.equal(st.totalActivationMs, 4 * 163.84);
  assert.equal(st.models.find((m) => m.modelId === "a")!.lastActivationMs, 163.84);
  assertAllKvFree(h);
});

test("a model with a request in flight is never evicted; the other waits for it to drain", () => {
  const h = twoModelsOneSlot();
  submit(h, { id: 1, model: "a", prompt: 20, maxTokens: 40, arrivalMs: 0 });
  let sawWaiting = false;
  drive(h, {
    before: (i) => {
      if (i === 3) submit(h, { id: 2, model: "b", prompt: 20, maxTokens: 3, arrivalMs: -1000 }); // more urgent
      if (i > 3 && h.sink.finished.get(1) === undefined) {
        assert.equal(h.sched.residency(A), "resident");
        assert.equal(h.sched.residency(B), "absent");
        sawWaiting = true;
      }
    },
  });
  assert.ok(sawWaiting);
  assert.deepEqual(h.sink.order, [1, 2]);
  assert.deepEqual(h.exec.events, ["load a", "unload a", "load b"]);
});

test("a more urgent model takes the memory of one with only queued requests (no starvation)", () => {
  const h = twoModelsOneSlot();
  for (let i = 0; i < 6; i++) submit(h, { id: i + 1, model: "a", prompt: 10, maxTokens: 3, arrivalMs: 10 * i });
  submit(h, { id: 100, model: "b", prompt: 10, maxTokens: 3, arrivalMs: 15 });
  drive(h);
  // b's request arrived between a's second and third: it is served in that place.
  const order = h.sink.order;
  assert.ok(order.indexOf(100) < order.indexOf(6), `order ${order.join()}`);
  for (const id of order) assert.equal(h.sink.outcomeOf(id), "finished:length");
});

test("an activated model serves its head before it can be evicted again (no activation ping-pong)", () => {
  const profiles = [makeProfile("a", { weightBytes: 10 * PAGE_BYTES }), makeProfile("b", { weightBytes: 10 * PAGE_BYTES })];
  const h = makeScheduler({
    budgetPages: 20,
    exec: { profiles, loadMsPerByte: 800 / (10 * PAGE_BYTES) },
    config: { prefillMsPerTokenPrior: 1, rekeyTolerance: 1e9, maxBatchTokens: 512, prefillChunkTokens: 512 },
  });
  for (const p of profiles) h.sched.addModel(p, { ttftSloMs: 1000 });
  submit(h, { id: 1, model: "a", prompt: 10, maxTokens: 3, arrivalMs: 0 });
  drive(h, { before: () => h.sched.numRunning === 0 }); // load a (800 ms), admit request 1
  const t = h.clock.nowMs();
  // b's head: latest start t + 700; a's next: t + 990. While b loads (800 ms) b's head turns late
  // (priority = est 300 ms) and a's becomes more urgent (slack ≈ 190 ms).
  submit(h, { id: 2, model: "b", prompt: 300, maxTokens: 2, arrivalMs: t });
  submit(h, { id: 3, model: "a", prompt: 10, maxTokens: 2, arrivalMs: t });
  const log = drive(h);
  assert.deepEqual(log.actions.filter((a) => a !== "step"), ["unload a (evict)", "load b", "unload b (evict)", "load a"]);
  assert.deepEqual(h.sink.order, [1, 2, 3]);
});

test("keep-alive expiry unloads an idle model; pinned models stay", () => {
  const h = makeScheduler({ budgetPages: 64 });
  h.sched.addModel(makeProfile("a"), { keepAliveMs: 500 });
  h.sched.addModel(makeProfile("p"), { keepAliveMs: 0, pinned: true });
  submit(h, { id: 1, model: "a", prompt: 10, maxTokens: 2 });
  submit(h, { id: 2, model: "p", prompt: 10, maxTokens: 2 });
  const log = drive(h);
  const end = h.sink.finished.get(1)!.atMs;
  const idle = log.actions.filter((a) => a.startsWith("idle") || a.startsWith("unload"));
  assert.deepEqual(idle, [`idle until ${end + 500}`, "unload a (keep-alive)"]);
  assert.equal(h.sched.residency(A), "absent");
  assert.equal(h.sched.residency(modelId("p")), "resident");
  assert.equal(h.sched.stats().numKeepAliveUnloads, 1);
  // The next request reactivates it.
  submit(h, { id: 3, model: "a", prompt: 10, maxTokens: 2 });
  drive(h);
  assert.equal(h.sink.outcomeOf(3), "finished:length");
  assert.equal(h.sched.stats().models.find((m) => m.modelId === "a")!.numActivations, 2);
});

test("pinned models are never evicted: a model that cannot fit beside them fails its requests (no deadlock)", () => {
  const profiles = [makeProfile("p", { weightBytes: 10 * PAGE_BYTES }), makeProfile("b", { weightBytes: 10 * PAGE_BYTES })];
  const h = makeScheduler({ budgetPages: 20, exec: { profiles } });
  h.sched.addModel(profiles[0]!, { pinned: true });
  h.sched.addModel(profiles[1]!);
  submit(h, { id: 1, model: "p", prompt: 10, maxTokens: 2 });
  submit(h, { id: 2, model: "b", prompt: 10, maxTokens: 2 });
  drive(h);
  assert.equal(h.sink.outcomeOf(1), "finished:length");
  assert.equal(h.sink.outcomeOf(2), "failed:PRISM_MODEL_TOO_LARGE");
  assert.equal(h.sched.residency(modelId("p")), "resident");
  // Unpinned, it can be evicted.
  h.sched.unpin(modelId("p"));
  submit(h, { id: 3, model: "b", prompt: 10, maxTokens: 2 });
  drive(h);
  assert.equal(h.sink.outcomeOf(3), "finished:length");
  assert.equal(h.sched.residency(modelId("p")), "absent");
});

test("manual load and unload: eager activation, unload refused while busy, removeModel rules", () => {
  const h = makeScheduler({ budgetPages: 64 });
  h.sched.addModel(makeProfile("a"));
  h.sched.requestLoad(A);
  let log = drive(h);
  assert.deepEqual(log.actions, ["load a"]);
  assert.equal(h.sched.residency(A), "resident");
  submit(h, { id: 1, model: "a", prompt: 10, maxTokens: 3 });
  const busy = h.sched.requestUnload(A);
  assert.ok(isPrismError(busy) && busy.code === "PRISM_MODEL_BUSY");
  assert.throws(() => h.sched.removeModel(A), (e) => isPrismError(e) && e.code === "PRISM_MODEL_BUSY");
  drive(h);
  assert.equal(h.sched.requestUnload(A), "unloading");
  log = drive(h);
  assert.deepEqual(log.actions, ["unload a (manual)"]);
  assert.equal(h.sched.requestUnload(A), "not-resident");
  h.sched.removeModel(A);
  assert.equal(h.sched.hasModel(A), false);
  assert.equal(h.memory.snapshot().spaces.length, 0);
  const r = submit(h, { id: 2, model: "a", prompt: 10, maxTokens: 3 });
  assert.ok(isPrismError(r) && r.code === "PRISM_MODEL_NOT_ON_DEVICE");
});

test("idle models are evicted to give their memory to KV when admission is blocked on memory", () => {
  // 32 pages: a and idle b (10 weight pages each) → 12 KV pages. A burst on a needs more.
  const profiles = [makeProfile("a", { weightBytes: 10 * PAGE_BYTES }), makeProfile("b", { weightBytes: 10 * PAGE_BYTES })];
  const h = makeScheduler({ budgetPages: 32, exec: { profiles }, config: { maxBatchTokens: 256, prefillChunkTokens: 128 } });
  h.sched.addModel(profiles[0]!);
  h.sched.addModel(profiles[1]!);
  h.sched.requestLoad(A);
  h.sched.requestLoad(B);
  drive(h);
  for (let i = 0; i < 8; i++) submit(h, { id: i + 1, model: "a", prompt: 300, maxTokens: 10 });
  const log = drive(h);
  assert.ok(log.actions.includes("unload b (evict)"));
  for (let i = 0; i < 8; i++) assert.equal(h.sink.outcomeOf(i + 1), "finished:length");
  assertAllKvFree(h);
});
