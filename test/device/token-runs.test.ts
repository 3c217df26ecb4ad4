// A repeated sampled token is kept as a pending run (Request.numTokensStored) and written out only when
// the token buffer is read: recompute after preemption, penalties, drain. With a tiny vocabulary the fake
// executor repeats tokens, so every such read meets a pending run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertAllKvFree, drive, makeProfile, makeRequest, makeScheduler } from "../helpers/device-harness.ts";
import { fakeReference } from "../helpers/fake-executor.ts";
import { modelId } from "../../src/core/ids.ts";
import type { SubmitRequest } from "../../src/device/types.ts";

const A = modelId("a");

for (const vocabSize of [1, 2, 3]) {
  test(`vocab ${vocabSize}: recomputed prefills after preemption feed exactly prompt + output so far`, () => {
    const h = makeScheduler({ budgetPages: 16, exec: { vocabSize, recordPlans: true }, config: { maxBatchSeqs: 8, maxBatchTokens: 128, prefillChunkTokens: 64 } });
    h.sched.addModel(makeProfile("a", { vocabSize }));
    h.sched.requestLoad(A);
    drive(h);
    const reqs: SubmitRequest[] = [];
    for (let i = 0; i < 6; i++) {
      const r = makeRequest(h, { id: i + 1, model: "a", prompt: 100, maxTokens: 300 });
      reqs.push(r);
      assert.equal(h.sched.submit(r), "accepted");
    }
    drive(h);
    assert.ok(h.sched.stats().numPreemptions > 0, "pressure caused preemptions");
    const full = new Map<number, number[]>();
    for (const r of reqs) {
      const ref = fakeReference("a", r.promptTokens, 300, vocabSize);
      assert.deepEqual(h.sink.tokens.get(r.requestId), ref);
      full.set(r.requestId as number, [...r.promptTokens, ...ref]);
    }
    let recomputed = 0;
    for (const plan of h.exec.plans) {
      for (const s of plan) {
        const want = full.get(s.requestId)!.slice(s.startPos, s.startPos + s.tokens.length);
        assert.deepEqual(s.tokens, want, `request ${s.requestId} fed at ${s.startPos}`);
        if (s.tokens.length > 1 && s.startPos + s.tokens.length > 100) recomputed++;
      }
    }
    assert.ok(recomputed > 0, "some prefill covered generated tokens");
    assertAllKvFree(h);
  });
}

test("drainModel hands back every generated token, the pending last one included", () => {
  // The last sampled token is always pending (a run of length ≥ 1); a fresh buffer holds zeros there.
  const h = makeScheduler({ budgetPages: 12, config: { maxBatchSeqs: 8, maxBatchTokens: 128, prefillChunkTokens: 64 } });
  h.sched.addModel(makeProfile("a"));
  h.sched.requestLoad(A);
  drive(h);
  for (let i = 0; i < 6; i++) assert.equal(h.sched.submit(makeRequest(h, { id: i + 1, model: "a", prompt: 60, maxTokens: 200 })), "accepted");
  drive(h, { before: () => h.sched.stats().numPreemptions === 0 });
  const resumed = h.sched.drainModel(A).filter((d) => (d.generatedTokens?.length ?? 0) > 0);
  assert.ok(resumed.length > 0, "a preempted request with output is among them");
  for (const d of resumed) assert.deepEqual(Array.from(d.generatedTokens!), h.sink.tokens.get(d.requestId));
});
