// node-llama-cpp backend: golden greedy output on stories260K, plan → sequence mapping (batched
// requests, chunked prefill, rollback, reclaim), errors, footprint, and hosting in a worker.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GREEDY, type SamplingParams, type SeqStep, type StepPlan } from "../../src/core/records.ts";
import { deviceId, modelId, requestId } from "../../src/core/ids.ts";
import { isPrismError } from "../../src/core/errors.ts";
import { LlamaCppExecutor } from "../../src/engine/llamacpp/executor.ts";
import { llamaCppGreedy } from "../../src/engine/llamacpp/greedy.ts";
import { llamaCppFootprint } from "../../src/engine/llamacpp/footprint.ts";
import { WorkerExecutor } from "../../src/engine/runtime/worker-executor.ts";

function shared(name: string): string {
  const p = fileURLToPath(new URL(`../../../shared/models/${name}`, import.meta.url));
  if (!existsSync(p)) throw new Error(`missing shared test data ${p}: expected ../shared/models beside the repository`);
  return p;
}
const MODEL = shared("stories260K.gguf");
const ONCE = JSON.parse(readFileSync(shared("stories260K.greedy-once-64.json"), "utf8")) as { inputTokens: number[]; generatedTokens: number[] };
const BOS = JSON.parse(readFileSync(shared("stories260K.greedy-bos-200.json"), "utf8")) as { generatedTokens: number[] };
const M = modelId("s260k");

function step(req: number, tokens: number[], startPos: number, sample = true, sampling: SamplingParams = GREEDY): SeqStep {
  return { requestId: requestId(req), modelId: M, tokens: Int32Array.from(tokens), startPos, blockOffsets: new Uint32Array(0), blockTokens: 16,
    sample, sampling, outputIndex: 0, penaltyTokens: null };
}
function plan(stepIndex: number, seqs: SeqStep[]): StepPlan {
  return { deviceId: deviceId(0), stepIndex, seqs };
}
async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => isPrismError(e) && e.code === code);
}

const executors: LlamaCppExecutor[] = [];
after(async () => {
  for (const ex of executors) await ex.close();
});
async function makeExecutor(sequencesPerModel: number, contextTokensPerSequence = 256): Promise<LlamaCppExecutor> {
  const ex = new LlamaCppExecutor({ models: [{ id: M, path: MODEL }], sequencesPerModel, contextTokensPerSequence });
  executors.push(ex);
  await ex.loadWeights(M, 0);
  return ex;
}

test("llamaCppGreedy reproduces the golden 64 tokens after BOS + 'Once upon a time'", async () => {
  assert.deepEqual(ONCE.inputTokens, [1, 403, 407, 261, 378]);
  const { tokens, logits } = await llamaCppGreedy(MODEL, ONCE.inputTokens, 64, { logits: true });
  assert.deepEqual(tokens, ONCE.generatedTokens);
  assert.equal(logits!.length, 64);
  for (let i = 0; i < 64; i++) {
    const row = logits![i]!;
    assert.equal(row.length, 512);
    let best = 0;
    for (let t = 1; t < row.length; t++) if (row[t]! > row[best]!) best = t;
    assert.equal(best, tokens[i], `argmax of step ${i}`);
  }
});

test("executor: two batched requests (one prefilled in chunks) each reproduce their golden greedy ids", async () => {
  const ex = await makeExecutor(4);
  assert.equal(ex.kind, "llama.cpp");
  assert.equal(ex.pagedKv, false);
  const a: number[] = [];
  const b: number[] = [];
  let s = 0;
  // Request 1 prefills its 5-token prompt in one step; request 2 (BOS only) joins two steps later.
  let r = await ex.execute(plan(s++, [step(1, ONCE.inputTokens, 0)]));
  a.push(r.sampled[0]!.token);
  r = await ex.execute(plan(s++, [step(1, [a.at(-1)!], 5)]));
  a.push(r.sampled[0]!.token);
  r = await ex.execute(plan(s++, [step(1, [a.at(-1)!], 6), step(2, [1], 0)]));
  a.push(r.sampled[0]!.token);
  b.push(r.sampled[1]!.token);
  assert.deepEqual(r.sampled.map((x) => x.requestId), [1, 2]);
  while (a.length < 64) {
    r = await ex.execute(plan(s++, [step(2, [b.at(-1)!], b.length), step(1, [a.at(-1)!], 4 + a.length)]));
    b.push(r.sampled[0]!.token);
    a.push(r.sampled[1]!.token);
  }
  assert.deepEqual(a, ONCE.generatedTokens);
  assert.deepEqual(b, BOS.generatedTokens.slice(0, b.length));
  assert.ok(r.computeMs >= 0);
  // A prefill chunk that does not sample returns nothing for that request.
  r = await ex.execute(plan(s++, [step(3, [1, 403], 0, false)]));
  assert.deepEqual(r.sampled, []);
  r = await ex.execute(plan(s++, [step(3, [407, 261, 378], 2)]));
  assert.equal(r.sampled[0]!.token, ONCE.generatedTokens[0]);
});

test("executor: restarting a request below its length rolls the sequence back (recompute after preemption)", async () => {
  const ex = await makeExecutor(2);
  const first = (await ex.execute(plan(0, [step(7, ONCE.inputTokens, 0)]))).sampled[0]!.token;
  await ex.execute(plan(1, [step(7, [first], 5)]));
  await ex.execute(plan(2, [step(7, [999 % 512], 6)]));
  // Recompute from scratch, then resume from position 5 with a rollback of the wrong token.
  assert.equal((await ex.execute(plan(3, [step(7, ONCE.inputTokens, 0)]))).sampled[0]!.token, first);
  assert.equal((await ex.execute(plan(4, [step(7, [first], 5)]))).sampled[0]!.token, ONCE.generatedTokens[1]);
  await ex.execute(plan(5, [step(7, [ONCE.generatedTokens[1]!], 6)]));
  assert.equal((await ex.execute(plan(6, [step(7, [first], 5)]))).sampled[0]!.token, ONCE.generatedTokens[1]);
});

test("executor: sequences are reclaimed (LRU) or released; bad plans fail with stable codes", async () => {
  const ex = await makeExecutor(1, 16);
  const first = (await ex.execute(plan(0, [step(1, ONCE.inputTokens, 0)]))).sampled[0]!.token;
  // Request 2 takes the only sequence; request 1's KV is gone.
  await ex.execute(plan(1, [step(2, [1], 0)]));
  await rejectsWithCode(ex.execute(plan(2, [step(1, [first], 5)])), "PRISM_ENGINE_BAD_PLAN");
  await rejectsWithCode(ex.execute(plan(3, [step(2, [5], 0), step(4, [1], 0)])), "PRISM_ENGINE_BATCH_TOO_LARGE");
  ex.releaseRequest(requestId(2));
  await ex.execute(plan(4, [step(5, [1], 0)]));
  await rejectsWithCode(ex.execute(plan(5, [step(5, [1, 2], 3)])), "PRISM_ENGINE_BAD_PLAN"); // gap in positions
  await rejectsWithCode(ex.execute(plan(6, [step(5, Array(20).fill(5), 1)])), "PRISM_ENGINE_BAD_PLAN"); // beyond 16 cells
  await rejectsWithCode(ex.execute(plan(7, [step(5, [512], 1)])), "PRISM_TOKEN_OUT_OF_RANGE");
  await rejectsWithCode(ex.execute(plan(8, [{ ...step(9, [1], 0), modelId: modelId("nope") }])), "PRISM_ENGINE_NOT_LOADED");
  await rejectsWithCode(ex.loadWeights(modelId("nope"), 0), "PRISM_UNKNOWN_MODEL");
  ex.unloadWeights(M);
  await rejectsWithCode(ex.execute(plan(9, [step(5, [1], 1)])), "PRISM_ENGINE_NOT_LOADED");
});

test("executor: logprobs and top alternatives come from llama.cpp's distribution", async () => {
  const ex = await makeExecutor(1);
  const sampling: SamplingParams = { ...GREEDY, logprobs: true, topLogprobs: 3 };
  const s = (await ex.execute(plan(0, [step(1, ONCE.inputTokens, 0, true, sampling)]))).sampled[0]!;
  assert.equal(s.token, ONCE.generatedTokens[0]);
  assert.equal(s.topTokens![0], s.token);
  assert.ok(s.logprob < 0 && s.logprob > -1);
  assert.equal(s.topLogprobs![0], Math.fround(s.logprob));
  assert.ok(s.topLogprobs![1]! <= s.topLogprobs![0]! && s.topLogprobs![2]! <= s.topLogprobs![1]!);
  const profile = ex.profile(M);
  assert.equal(profile.kvBytesPerTokenPerLayer, 0);
  assert.equal(profile.vocabSize, 512);
  assert.equal(profile.numLayers, 5);
  assert.deepEqual(profile.eosTokenIds, [2]);
  assert.ok(profile.weightBytes > 1_000_000);
});

test("footprint: weights plus a context that grows with sequences × cells", async () => {
  const small = await llamaCppFootprint(MODEL, { sequences: 1, contextTokensPerSequence: 256 });
  const big = await llamaCppFootprint(MODEL, { sequences: 8, contextTokensPerSequence: 512 });
  assert.ok(small.weightBytes >= statSync(MODEL).size * 0.9, `weights ${small.weightBytes}`);
  assert.equal(small.weightBytes, big.weightBytes);
  assert.ok(big.contextBytes > small.contextBytes);
  assert.equal(big.totalBytes, big.weightBytes + big.contextBytes);
});

test("a WorkerExecutor can host the llama.cpp executor (golden ids through the worker)", async () => {
  const ex = await WorkerExecutor.create({
    module: new URL("../../src/engine/llamacpp/executor.ts", import.meta.url), exportName: "createLlamaCppExecutor",
    options: { models: [{ id: M, path: MODEL }], sequencesPerModel: 1, contextTokensPerSequence: 128 },
  });
  try {
    assert.equal(ex.kind, "llama.cpp");
    assert.equal(ex.pagedKv, false);
    await ex.loadWeights(M, 0);
    const out: number[] = [];
    let r = await ex.execute(plan(0, [step(1, ONCE.inputTokens, 0)]));
    out.push(r.sampled[0]!.token);
    for (let i = 1; i < 16; i++) {
      r = await ex.execute(plan(i, [step(1, [out.at(-1)!], 4 + i)]));
      out.push(r.sampled[0]!.token);
    }
    assert.deepEqual(out, ONCE.generatedTokens.slice(0, 16));
  } finally {
    await ex.close();
  }
});
