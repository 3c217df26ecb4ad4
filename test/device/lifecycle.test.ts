// Request lifecycle on one device: prefill in chunks, decode, stop reasons, streaming, cancel, stats.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertAllKvFree, drive, makeProfile, makeRequest, makeScheduler, mid, submit } from "../helpers/device-harness.ts";
import { fakeNextToken, fakeReference } from "../helpers/fake-executor.ts";

test("one request: chunked prefill, greedy decode to maxTokens, tokens equal the reference, blocks freed", () => {
  const h = makeScheduler({ keepRecords: true });
  h.sched.addModel(makeProfile("a"));
  const req = makeRequest(h, { model: "a", prompt: 70, maxTokens: 5, id: 1 });
  assert.equal(h.sched.submit(req), "accepted");
  const log = drive(h);
  assert.deepEqual(log.actions.slice(0, 1), ["load a"]);
  assert.deepEqual(h.sink.tokens.get(1), fakeReference("a", req.promptTokens, 5, 256));
  assert.equal(h.sink.outcomeOf(1), "finished:length");
  assert.equal(h.sink.finishCount.get(1), 1);
  // 70 prompt tokens with chunks of 32 → 32, 32, 6 (the last samples), then 4 decodes.
  assert.deepEqual(h.records.map((r) => [r.numPrefillTokens, r.numDecodeTokens]), [[32, 0], [32, 0], [6, 0], [0, 1], [0, 1], [0, 1], [0, 1]]);
  const st = h.sink.finished.get(1)!.stats;
  assert.equal(st.numPromptTokens, 70);
  assert.equal(st.numOutputTokens, 5);
  assert.equal(st.numPreemptions, 0);
  assert.ok(st.activationWaitMs > 0);
  assertAllKvFree(h);
  assert.ok(h.sched.isQuiescent);
});

test("EOS and stop tokens finish with reason stop and are not streamed; ignoreEos keeps going", () => {
  const h = makeScheduler();
  const prompt = [5, 6, 7];
  const ref = fakeReference("a", prompt, 6, 256);
  h.sched.addModel(makeProfile("a", { eosTokenIds: [ref[2]!] }));
  submit(h, { model: "a", prompt, maxTokens: 6, id: 1 });
  submit(h, { model: "a", prompt, maxTokens: 6, id: 2, ignoreEos: true });
  submit(h, { model: "a", prompt, maxTokens: 6, id: 3, ignoreEos: true, stopTokenIds: [ref[4]!] });
  drive(h);
  assert.deepEqual(h.sink.tokens.get(1), ref.slice(0, 2));
  assert.equal(h.sink.outcomeOf(1), "finished:stop");
  assert.equal(h.sink.finished.get(1)!.stats.stopTokenId, ref[2]);
  assert.deepEqual(h.sink.tokens.get(2), ref);
  assert.equal(h.sink.outcomeOf(2), "finished:length");
  assert.deepEqual(h.sink.tokens.get(3), ref.slice(0, 4));
  assert.equal(h.sink.outcomeOf(3), "finished:stop");
  assertAllKvFree(h);
});

test("context limit caps output with reason length", () => {
  const h = makeScheduler();
  h.sched.addModel(makeProfile("a", { maxContextTokens: 20 }));
  submit(h, { model: "a", prompt: 17, maxTokens: 100, id: 1 });
  drive(h);
  assert.equal(h.sink.tokens.get(1)!.length, 3);
  assert.equal(h.sink.outcomeOf(1), "finished:length");
});

test("submit validation: unknown model, empty prompt, prompt too long, too large for the device, busy", () => {
  const h = makeScheduler({ budgetPages: 16, config: { maxQueuedPerModel: 2, maxQueuedTotal: 3 } });
  h.sched.addModel(makeProfile("a", { maxContextTokens: 100_000 }));
  h.sched.addModel(makeProfile("b"));
  const code = (r: unknown): unknown => (typeof r === "string" ? r : (r as { code: string }).code);
  assert.equal(code(submit(h, { model: "zz", prompt: 3, maxTokens: 1 })), "PRISM_MODEL_NOT_ON_DEVICE");
  assert.equal(code(submit(h, { model: "a", prompt: [], maxTokens: 1 })), "PRISM_REQUEST_INVALID");
  assert.equal(code(submit(h, { model: "a", prompt: 3, maxTokens: 0 })), "PRISM_REQUEST_INVALID");
  assert.equal(code(submit(h, { model: "b", prompt: 4096, maxTokens: 1 })), "PRISM_PROMPT_TOO_LONG");
  // 16 pages − 4 weight pages = 12 pages × 8 blocks × 16 tokens = 1536 tokens at most.
  assert.equal(code(submit(h, { model: "a", prompt: 1536, maxTokens: 1 })), "PRISM_REQUEST_TOO_LARGE");
  assert.equal(code(submit(h, { model: "a", prompt: 1535, maxTokens: 1, id: 500 })), "accepted");
  assert.equal(code(submit(h, { model: "a", prompt: 3, maxTokens: 1, id: 501 })), "accepted");
  assert.equal(code(submit(h, { model: "a", prompt: 3, maxTokens: 1, id: 502 })), "busy");
  assert.equal(code(submit(h, { model: "b", prompt: 3, maxTokens: 1, id: 503 })), "accepted");
  assert.equal(code(submit(h, { model: "b", prompt: 3, maxTokens: 1, id: 504 })), "busy");
  assert.equal(code(submit(h, { model: "b", prompt: 3, maxTokens: 1, id: 503 })), "PRISM_REQUEST_INVALID");
  drive(h);
  assert.equal(h.sink.outcomeOf(500), "finished:length");
  assertAllKvFree(h);
});

test("fake executor token function is what the reference uses", () => {
  assert.equal(fakeNextToken("a", 5, 2, 256), (5 * 31 + 2 + fakeNextToken("a", 0, 0, 1_000_000_007)) % 256);
  assert.ok(mid("a") === "a");
});
