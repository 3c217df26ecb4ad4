// Cancel frees KV within one step; drainModel hands queued and preempted requests back intact.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertAllKvFree, drive, makeProfile, makeRequest, makeScheduler, submit, type Harness } from "../helpers/device-harness.ts";
import { fakeReference } from "../helpers/fake-executor.ts";
import { modelId, requestId } from "../../src/core/ids.ts";

const A = modelId("a");

function usedBlocks(h: Harness, model = "a"): number {
  return h.memory.snapshot().spaces.find((s) => s.modelId === model)!.usedBlocks;
}

function preloadA(h: Harness): void {
  h.sched.addModel(makeProfile("a"));
  h.sched.requestLoad(A);
  drive(h);
}

test("cancel between steps frees the request's blocks at once", () => {
  const h = makeScheduler();
  preloadA(h);
  submit(h, { id: 1, model: "a", prompt: 40, maxTokens: 50 });
  submit(h, { id: 2, model: "a", prompt: 40, maxTokens: 50 });
  drive(h, { before: (i) => i < 4 });
  const before = usedBlocks(h);
  assert.ok(before > 0);
  assert.equal(h.sched.cancel(requestId(1)), true);
  assert.ok(usedBlocks(h) < before);
  assert.equal(h.sink.outcomeOf(1), "cancelled");
  assert.equal(h.sched.cancel(requestId(1)), false, "second cancel is a no-op");
  drive(h);
  assert.equal(h.sink.outcomeOf(2), "finished:length");
  assert.equal(h.sink.finishCount.get(1), 1);
  assertAllKvFree(h);
});

test("cancel while the request is in the executing step frees its blocks right after that step; its token is dropped", () => {
  const h = makeScheduler();
  preloadA(h);
  submit(h, { id: 1, model: "a", prompt: 10, maxTokens: 50 });
  drive(h, { before: (i) => i < 3 });
  const streamed = h.sink.tokens.get(1)!.length;
  const a = h.sched.nextAction(h.clock.nowMs());
  assert.equal(a.kind, "step");
  if (a.kind !== "step") return;
  assert.equal(h.sched.cancel(requestId(1)), true);
  assert.ok(usedBlocks(h) > 0, "still held while the step runs");
  assert.equal(h.sink.outcomeOf(1), "pending");
  const res = h.exec.executeSync(a.plan);
  h.sched.completeStep(res, h.clock.nowMs());
  assert.equal(usedBlocks(h), 0);
  assert.equal(h.sink.outcomeOf(1), "cancelled");
  assert.equal(h.sink.tokens.get(1)!.length, streamed, "the in-flight token is not streamed");
  assertAllKvFree(h);
});

test("cancel from inside the sink (client disconnect mid-stream) frees blocks before the next step", () => {
  const h = makeScheduler({ keepRecords: true });
  preloadA(h);
  submit(h, { id: 1, model: "a", prompt: 30, maxTokens: 100 });
  submit(h, { id: 2, model: "a", prompt: 30, maxTokens: 20 });
  let blocksAfterCancel = -1;
  h.sink.onTokenHook = (id, index) => {
    if (id === 1 && index === 5) {
      h.sched.cancel(requestId(1));
      blocksAfterCancel = usedBlocks(h);
    }
  };
  drive(h);
  assert.equal(h.sink.outcomeOf(1), "cancelled");
  assert.equal(h.sink.tokens.get(1)!.length, 6);
  assert.equal(blocksAfterCancel, 3, "only request 2's 3 blocks remain");
  assert.equal(h.sink.outcomeOf(2), "finished:length");
  assertAllKvFree(h);
});

test("cancel a queued request (also one waiting for its model's activation)", () => {
  const h = makeScheduler();
  h.sched.addModel(makeProfile("a"));
  submit(h, { id: 1, model: "a", prompt: 10, maxTokens: 5 });
  assert.equal(h.sched.cancel(requestId(1)), true);
  assert.equal(h.sink.outcomeOf(1), "cancelled");
  assert.equal(h.sched.numQueued, 0);
  const log = drive(h);
  assert.deepEqual(log.actions, []);
  assert.equal(h.sched.cancel(requestId(999)), false);
});

test("drainModel hands back queued and preempted requests; resubmitted elsewhere they finish with the same tokens, none re-streamed", () => {
  const h = makeScheduler({ budgetPages: 12, config: { maxBatchSeqs: 8, maxBatchTokens: 128, prefillChunkTokens: 64 } });
  preloadA(h);
  const reqs = [];
  for (let i = 0; i < 6; i++) {
    const r = makeRequest(h, { id: i + 1, model: "a", prompt: 60, maxTokens: 200 });
    reqs.push(r);
    assert.equal(h.sched.submit(r), "accepted");
  }
  // Run until something was preempted back to the queue.
  drive(h, { before: () => h.sched.stats().numPreemptions === 0 });
  const drained = h.sched.drainModel(A);
  assert.ok(drained.length > 0);
  const resumed = drained.filter((d) => (d.generatedTokens?.length ?? 0) > 0);
  assert.ok(resumed.length > 0, "a preempted request with output is among them");
  for (const d of resumed) assert.ok(d.firstTokenMs !== undefined);
  drive(h); // the running ones finish here
  const g = makeScheduler({ budgetPages: 64 });
  g.sched.addModel(makeProfile("a"));
  for (const d of drained) assert.equal(g.sched.submit({ ...d, sink: h.sink }), "accepted");
  g.clock.set(h.clock.nowMs());
  drive(g);
  for (const r of reqs) {
    assert.equal(h.sink.finishCount.get(r.requestId), 1);
    assert.equal(h.sink.outcomeOf(r.requestId), "finished:length");
    assert.deepEqual(h.sink.tokens.get(r.requestId), fakeReference("a", r.promptTokens, 200, 256));
  }
  assertAllKvFree(h);
  assertAllKvFree(g);
});
