// KV memory shared across models: a burst on one model takes the pages another released;
// preemption under pressure recomputes without changing any token; requests too large fail.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertAllKvFree, drive, makeProfile, makeRequest, makeScheduler, submit, type Harness } from "../helpers/device-harness.ts";
import { fakeReference } from "../helpers/fake-executor.ts";
import { modelId } from "../../src/core/ids.ts";

function preload(h: Harness, ...names: string[]): void {
  for (const n of names) h.sched.requestLoad(modelId(n));
  drive(h);
}

test("a burst on model A uses the physical pages model B released", () => {
  // 64 pages: 2 × 4 weight pages, 56 KV pages (no headroom, no reserved pages in the harness).
  const h = makeScheduler({ keepRecords: true, budgetPages: 64, config: { maxBatchSeqs: 16, maxBatchTokens: 256, prefillChunkTokens: 256 } });
  h.sched.addModel(makeProfile("a"));
  h.sched.addModel(makeProfile("b"));
  preload(h, "a", "b");
  // Burst on b: 10 requests × (600 prompt + 20 output) tokens ≈ 39 blocks ≈ 5 pages each → ~49 pages.
  for (let i = 0; i < 10; i++) submit(h, { id: 100 + i, model: "b", prompt: 600, maxTokens: 20 });
  drive(h);
  const peakB = Math.max(...h.records.map((r) => r.kvPages[1]!));
  assert.ok(peakB >= 40, `b peaked at ${peakB} pages`);
  let snap = h.memory.snapshot();
  assert.equal(snap.spaces.find((s) => s.modelId === "b")!.mappedPages, 0, "b gave every page back");
  assert.equal(snap.freePages, 56);
  const firstA = h.records.length;
  for (let i = 0; i < 10; i++) submit(h, { id: 200 + i, model: "a", prompt: 600, maxTokens: 20 });
  drive(h);
  const aRecords = h.records.slice(firstA);
  const peakA = Math.max(...aRecords.map((r) => r.kvPages[0]!));
  assert.ok(peakA >= 40, `a peaked at ${peakA} pages`);
  assert.ok(peakA + peakB > 56, "the same physical pages served both bursts");
  for (const r of aRecords) assert.equal(r.kvPages[1], 0);
  for (let i = 0; i < 10; i++) {
    assert.equal(h.sink.outcomeOf(100 + i), "finished:length");
    assert.equal(h.sink.outcomeOf(200 + i), "finished:length");
  }
  snap = h.memory.snapshot();
  assert.equal(snap.kvPages, 0);
  assertAllKvFree(h);
});

test("preemption under pressure: recomputed requests produce exactly the tokens of an unpressured run", () => {
  // 16 pages − 4 weight pages = 12 KV pages = 96 blocks = 1536 tokens; 6 requests grow to 400 tokens each.
  const run = (budgetPages: number) => {
    const h = makeScheduler({ budgetPages, keepRecords: true, config: { maxBatchSeqs: 8, maxBatchTokens: 128, prefillChunkTokens: 64 } });
    h.sched.addModel(makeProfile("a"));
    preload(h, "a");
    const reqs = [];
    for (let i = 0; i < 6; i++) {
      const r = makeRequest(h, { id: i + 1, model: "a", prompt: 100, maxTokens: 300 });
      reqs.push(r);
      assert.equal(h.sched.submit(r), "accepted");
    }
    drive(h);
    return { h, reqs };
  };
  const pressured = run(16);
  const roomy = run(256);
  const st = pressured.h.sched.stats();
  assert.ok(st.numPreemptions > 0, "pressure caused preemptions");
  assert.equal(roomy.h.sched.stats().numPreemptions, 0);
  let preempted = 0;
  for (const r of pressured.reqs) {
    const id = r.requestId;
    assert.equal(pressured.h.sink.outcomeOf(id), "finished:length");
    assert.deepEqual(pressured.h.sink.tokens.get(id), roomy.h.sink.tokens.get(id));
    assert.deepEqual(pressured.h.sink.tokens.get(id), fakeReference("a", r.promptTokens, 300, 256));
    preempted += pressured.h.sink.finished.get(id)!.stats.numPreemptions;
  }
  assert.equal(preempted, st.numPreemptions);
  // Never more KV than the device has.
  for (const rec of pressured.h.records) assert.ok(rec.kvPages[0]! <= 12);
  assertAllKvFree(pressured.h);
});

test("preemption across models: the lowest-priority sequence of the other model yields", () => {
  const h = makeScheduler({ budgetPages: 16, config: { maxBatchSeqs: 8, maxBatchTokens: 128, prefillChunkTokens: 64 } });
  h.sched.addModel(makeProfile("a", { weightBytes: 2 * 16384 }));
  h.sched.addModel(makeProfile("b", { weightBytes: 2 * 16384 }));
  preload(h, "a", "b");
  const reqs = [
    makeRequest(h, { id: 1, model: "a", prompt: 100, maxTokens: 500 }),
    makeRequest(h, { id: 2, model: "b", prompt: 100, maxTokens: 500 }),
    makeRequest(h, { id: 3, model: "b", prompt: 100, maxTokens: 500 }),
  ];
  for (const r of reqs) assert.equal(h.sched.submit(r), "accepted");
  drive(h);
  for (const r of reqs) {
    assert.equal(h.sink.outcomeOf(r.requestId), "finished:length");
    assert.deepEqual(h.sink.tokens.get(r.requestId), fakeReference(r.modelId, r.promptTokens, 500, 256));
  }
  assert.ok(h.sched.stats().numPreemptions > 0);
  // Request 1 was admitted first (most urgent) and is never the victim.
  assert.equal(h.sink.finished.get(1)!.stats.numPreemptions, 0);
  assertAllKvFree(h);
});

test("a request that cannot fit even alone fails with PRISM_REQUEST_TOO_LARGE, others proceed", () => {
  const h = makeScheduler({ budgetPages: 16 });
  h.sched.addModel(makeProfile("a"));
  h.sched.addModel(makeProfile("p"), { pinned: true });
  preload(h, "p", "a");
  // With p pinned (4 pages) the model can use 8 pages = 64 blocks = 1024 tokens; statically 12 pages.
  submit(h, { id: 1, model: "a", prompt: 1200, maxTokens: 2 });
  submit(h, { id: 2, model: "a", prompt: 50, maxTokens: 2 });
  drive(h);
  assert.equal(h.sink.outcomeOf(1), "failed:PRISM_REQUEST_TOO_LARGE");
  assert.equal(h.sink.outcomeOf(2), "finished:length");
  assert.equal(h.sched.residency(modelId("p")), "resident");
  assertAllKvFree(h);
});

test("a KV limit binds one model only: the other model keeps being admitted", () => {
  const h = makeScheduler({ budgetPages: 64, keepRecords: true, config: { maxBatchTokens: 512, prefillChunkTokens: 64 } });
  h.sched.addModel(makeProfile("a"));
  h.sched.addModel(makeProfile("b"));
  preload(h, "a", "b");
  // One page = 8 blocks = 128 tokens: room for one (60 + 20)-token admission of a at a time.
  const res = h.sched.setKvLimit(modelId("a"), 16384, 1);
  assert.equal(res.status, "applied");
  for (let i = 0; i < 4; i++) submit(h, { id: i + 1, model: "a", prompt: 60, maxTokens: 8, arrivalMs: 0 });
  for (let i = 0; i < 4; i++) submit(h, { id: i + 11, model: "b", prompt: 60, maxTokens: 8, arrivalMs: 1 });
  drive(h);
  for (const r of h.records) assert.ok(r.kvPages[0]! <= 1);
  // b's requests (less urgent) did not wait behind a's limit: all admitted in the first step.
  assert.equal(h.records[0]!.numSeqs, 5);
  const admitted = (id: number) => h.sink.finished.get(id)!.stats.admittedMs;
  for (let i = 0; i < 4; i++) assert.ok(admitted(i + 11) < admitted(2));
  for (let i = 0; i < 4; i++) {
    assert.equal(h.sink.outcomeOf(i + 1), "finished:length");
    assert.equal(h.sink.outcomeOf(i + 11), "finished:length");
  }
  // A prompt that cannot fit under the limit at all fails instead of waiting forever.
  const big = h.sched.submit(makeRequest(h, { id: 50, model: "a", prompt: 300, maxTokens: 1 }));
  assert.equal(typeof big === "string" ? big : big.code, "PRISM_REQUEST_TOO_LARGE");
  assertAllKvFree(h);
});
