// EngineExecutor contract: profiles, load/unload, and bad inputs → clear PrismError codes, the
// execute promise rejects, nothing is written (a valid sequence in the same plan continues exactly as
// if the bad plan never ran) and no KV block leaks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { deviceId, modelId, requestId } from "../../src/core/ids.ts";
import { GREEDY, type SamplingParams, type SeqStep } from "../../src/core/records.ts";
import { KERNEL_RESERVED_BYTES } from "../../src/engine/kernels/types.ts";
import { parseGguf } from "../../src/engine/gguf/reader.ts";
import { llamaConfigFromGguf } from "../../src/engine/model/config.ts";
import { createEngineExecutor, modelProfileFromGguf, requiredPrefixBytes } from "../../src/engine/model/executor.ts";
import { generateRandomModel } from "../../src/engine/model/generate.ts";
import { SHAPES } from "../../src/engine/model/shapes.ts";
import { generate } from "../../src/engine/model/sequences.ts";
import { makeEngine, sharedFile, sharedJson, usedBlocks, type EngineHarness, type GoldenRun } from "./executor-harness.ts";

const once64 = sharedJson<GoldenRun>("stories260K.greedy-once-64.json");
const STORY = (): Uint8Array => sharedFile("stories260K.gguf");

test("profile: weight bytes from the layout, f32 KV per token per layer, context, vocab, eos", async () => {
  const h = await makeEngine({ models: [{ id: "s", bytes: STORY() }], kernels: "ts" });
  const p = h.executor.profile("s");
  assert.deepEqual(modelProfileFromGguf("s", parseGguf(STORY(), "s")), p);
  assert.deepEqual(
    { ...p, weightBytes: undefined },
    { id: "s", weightBytes: undefined, numLayers: 5, kvBytesPerTokenPerLayer: 2 * 4 * 8 * 4, maxContextTokens: 512, vocabSize: 512, eosTokenIds: [2] },
  );
  // Every tensor of the file is used; each slot is padded to 64 bytes.
  assert.ok(p.weightBytes >= 1_040_128 && p.weightBytes < 1_040_128 + 47 * 64, `${p.weightBytes}`);
  assert.equal(h.executor.kind, "ts");
  assert.equal(h.executor.pagedKv, true);
  assert.equal(h.executor.isLoaded("s"), true);
});

test("corrupt, truncated and foreign GGUFs are rejected at registration with GGUF codes", async () => {
  const memory = new WebAssembly.Memory({ initial: 64 });
  const ex = await createEngineExecutor({ memory, prefixBytes: 64 * 65536, kernels: "ts" });
  const good = STORY();
  await assert.rejects(ex.registerModel({ id: "a", bytes: good.subarray(0, 5000) }), { code: "PRISM_GGUF_TRUNCATED" });
  await assert.rejects(ex.registerModel({ id: "b", bytes: good.subarray(0, good.length - 100) }), { code: "PRISM_GGUF_TRUNCATED" });
  const bad = good.slice();
  bad[0] = 0x58;
  await assert.rejects(ex.registerModel({ id: "c", bytes: bad }), { code: "PRISM_GGUF_BAD_MAGIC" });
  await assert.rejects(ex.registerModel({ id: "d", bytes: new Uint8Array(0) }), { code: "PRISM_GGUF_BAD_MAGIC" });
  await assert.rejects(ex.registerModel({ id: "e", path: "/nonexistent/model.gguf" }), { code: "PRISM_FILE_NOT_FOUND" });
  await assert.rejects(ex.registerModel({ id: "f" }), { code: "PRISM_CONFIG_INVALID" });
  assert.deepEqual(ex.modelIds(), []);
});

test("a prefix area too small for the activations is a clear error naming the bytes needed", async () => {
  const gguf = parseGguf(STORY(), "s");
  const need = requiredPrefixBytes([llamaConfigFromGguf(gguf)]);
  const memory = new WebAssembly.Memory({ initial: Math.ceil(need / 65536) + 1 });
  const ex = await createEngineExecutor({ memory, prefixBytes: KERNEL_RESERVED_BYTES + 4096, kernels: "ts" });
  assert.throws(() => ex.registerGguf("s", gguf), (e: { code: string; details: { neededBytes: number } }) => e.code === "PRISM_ENGINE_SCRATCH_TOO_SMALL" && e.details.neededBytes === need);
  // A smaller step budget fits.
  const small = await createEngineExecutor({ memory, prefixBytes: requiredPrefixBytes([llamaConfigFromGguf(gguf)], { maxBatchTokens: 8, maxSampleRows: 2 }), kernels: "ts", maxBatchTokens: 8, maxSampleRows: 2 });
  small.registerGguf("s", gguf);
});

/** A plan of one sequence of `s` holding its own blocks; returns the step and a release function. */
function seqOf(h: EngineHarness, tokens: number[], over: Partial<SeqStep> = {}, reservePositions = 0): { step: SeqStep; release: () => void } {
  const blocks = h.blocks.get("s")!;
  const n = Math.ceil(Math.max(reservePositions, (over.startPos ?? 0) + tokens.length) / blocks.blockTokens);
  const ids = blocks.alloc(n)!;
  return {
    step: {
      requestId: requestId(1), modelId: modelId("s"), tokens: Int32Array.from(tokens), startPos: 0,
      blockOffsets: Uint32Array.from(ids, (b) => blocks.byteOffset(b)), blockTokens: blocks.blockTokens,
      sample: true, sampling: GREEDY, outputIndex: 0, penaltyTokens: null, ...over,
    },
    release: () => blocks.free(ids),
  };
}

test("bad plans reject with clear codes, write nothing, and leak no blocks", async () => {
  const h = await makeEngine({ models: [{ id: "s", bytes: STORY() }], kernels: "wasm", blockTokens: 16, maxBatchTokens: 64, maxSampleRows: 4 });
  const ex = h.executor;
  const plan = (...seqs: SeqStep[]) => ({ deviceId: deviceId(0), stepIndex: 0, seqs });

  // A good sequence: prefill the golden prompt, keep its KV. Every bad plan below also carries a
  // valid step that would overwrite that KV with other tokens; if it ran, the continuation would
  // no longer be golden.
  const good = seqOf(h, once64.inputTokens, { requestId: requestId(9) }, 40);
  const first = await ex.execute(plan(good.step));
  assert.equal(first.sampled[0]!.token, once64.generatedTokens[0]);
  const decode = (i: number): SeqStep => ({ ...good.step, tokens: Int32Array.of(once64.generatedTokens[i]!), startPos: 5 + i, outputIndex: i + 1 });

  const bad: [string, () => { step: SeqStep; release: () => void }][] = [
    ["PRISM_TOKEN_OUT_OF_RANGE", () => seqOf(h, [1, 512])],
    ["PRISM_TOKEN_OUT_OF_RANGE", () => seqOf(h, [1, -1])],
    ["PRISM_PROMPT_TOO_LONG", () => seqOf(h, [1, 2], { startPos: 511 })],
    ["PRISM_SAMPLING_INVALID", () => seqOf(h, [1], { sampling: { ...GREEDY, temperature: -1 } })],
    ["PRISM_SAMPLING_INVALID", () => seqOf(h, [1], { sampling: { ...GREEDY, topP: Number.NaN } as SamplingParams })],
    ["PRISM_ENGINE_BATCH_TOO_LARGE", () => seqOf(h, Array.from({ length: 65 }, () => 5))],
    ["PRISM_ENGINE_BAD_PLAN", () => seqOf(h, [])],
    ["PRISM_ENGINE_BAD_PLAN", () => { const s = seqOf(h, [1, 2, 3]); return { step: { ...s.step, blockOffsets: Uint32Array.of(64) }, release: s.release }; }],
    ["PRISM_ENGINE_BAD_PLAN", () => { const s = seqOf(h, [1, 2, 3]); return { step: { ...s.step, blockOffsets: new Uint32Array(0) }, release: s.release }; }],
    ["PRISM_ENGINE_NOT_LOADED", () => { const s = seqOf(h, [1]); return { step: { ...s.step, modelId: modelId("nope") }, release: s.release }; }],
  ];
  for (const [code, make] of bad) {
    const b = make();
    const clobber: SeqStep = { ...good.step, tokens: Int32Array.of(1, 50, 60, 70, 80), sample: false };
    await assert.rejects(ex.execute(plan(clobber, b.step)), { code }, code);
    await assert.rejects(ex.execute(plan(b.step, clobber)), { code }, code);
    b.release();
  }
  // Too many sampling rows for the budget (4).
  const many = [1, 2, 3, 4, 5].map((i) => seqOf(h, [1], { requestId: requestId(100 + i) }));
  await assert.rejects(ex.execute(plan(...many.map((m) => m.step))), { code: "PRISM_ENGINE_BATCH_TOO_LARGE" });
  for (const m of many) m.release();

  // The good sequence continues exactly (bit for bit) like a reference sequence no bad plan touched.
  const logitsOf = async (steps: SeqStep[]): Promise<Float32Array[]> => {
    const out: Float32Array[] = [];
    ex.logitsHook = (_r, _m, l) => out.push(l.slice());
    for (const st of steps) await ex.execute(plan(st));
    ex.logitsHook = null;
    return out;
  };
  const decodes = Array.from({ length: 20 }, (_, i) => decode(i));
  const ref = seqOf(h, once64.inputTokens, { requestId: requestId(8) }, 40);
  const refLogits = await logitsOf([ref.step, ...decodes.map((d) => ({ ...d, blockOffsets: ref.step.blockOffsets }))]);
  ref.release();
  assert.deepEqual(await logitsOf(decodes), refLogits.slice(1));
  // Control: had the clobbering step run, the logits would differ.
  await ex.execute(plan({ ...good.step, tokens: Int32Array.of(1, 50, 60, 70, 80), sample: false }));
  assert.notDeepEqual(await logitsOf(decodes.slice(0, 1)), refLogits.slice(1, 2));
  good.release();

  // Through the generation loop: errors surface and every block comes back.
  await assert.rejects(generate({ executor: ex, modelId: "s", blocks: h.blocks.get("s")!, promptTokens: Array.from({ length: 513 }, () => 5), maxTokens: 1, maxBatchTokens: 64 }), { code: "PRISM_PROMPT_TOO_LONG" });
  await assert.rejects(generate({ executor: ex, modelId: "s", blocks: h.blocks.get("s")!, promptTokens: [1, 99999], maxTokens: 3 }), { code: "PRISM_TOKEN_OUT_OF_RANGE" });
  await assert.rejects(generate({ executor: ex, modelId: "s", blocks: h.blocks.get("s")!, promptTokens: [1], maxTokens: 3, sampling: { ...GREEDY, topK: -2 } }), { code: "PRISM_SAMPLING_INVALID" });
  assert.equal(usedBlocks(h), 0);

  // Unloaded models refuse to run; loading again restores them.
  ex.unloadWeights(modelId("s"));
  await assert.rejects(generate({ executor: ex, modelId: "s", blocks: h.blocks.get("s")!, promptTokens: [1], maxTokens: 3 }), { code: "PRISM_ENGINE_NOT_LOADED" });
  const { durationMs } = await ex.loadWeights(modelId("s"), h.mem.weightRegion(modelId("s"))!.byteOffset);
  assert.ok(durationMs >= 0);
  const r = await generate({ executor: ex, modelId: "s", blocks: h.blocks.get("s")!, promptTokens: once64.inputTokens, maxTokens: 8 });
  assert.deepEqual(r.tokens, once64.generatedTokens.slice(0, 8));
  assert.equal(usedBlocks(h), 0);
  await ex.close();
  await assert.rejects(ex.execute(plan()), { code: "PRISM_SHUTTING_DOWN" });
});

test("stop tokens end a sequence early (finishReason stop) and free its blocks", async () => {
  const h = await makeEngine({ models: [{ id: "s", bytes: STORY() }], kernels: "wasm" });
  const stopAt = once64.generatedTokens[10]!;
  const r = await generate({ executor: h.executor, modelId: "s", blocks: h.blocks.get("s")!, promptTokens: once64.inputTokens, maxTokens: 64, stopTokenIds: [stopAt] });
  assert.equal(r.finishReason, "stop");
  assert.deepEqual(r.tokens, once64.generatedTokens.slice(0, once64.generatedTokens.indexOf(stopAt)));
  assert.equal(usedBlocks(h), 0);
  await assert.rejects(generate({ executor: h.executor, modelId: "s", blocks: h.blocks.get("s")!, promptTokens: [], maxTokens: 3 }), { code: "PRISM_ENGINE_BAD_PLAN" });
  const none = await generate({ executor: h.executor, modelId: "s", blocks: h.blocks.get("s")!, promptTokens: [1], maxTokens: 0 });
  assert.deepEqual(none.tokens, []);
});

test("random Q8_0 model with tied output and GQA loads and runs on both kernels identically", async () => {
  const bytes = generateRandomModel({ shape: SHAPES.tiny!, dtype: "q8_0", seed: 4, weightStd: 0.1 });
  const runs: number[][] = [];
  for (const kernels of ["wasm", "ts"] as const) {
    const h = await makeEngine({ models: [{ id: "s", bytes }], kernels });
    runs.push((await generate({ executor: h.executor, modelId: "s", blocks: h.blocks.get("s")!, promptTokens: [1, 50, 60], maxTokens: 40 })).tokens);
  }
  assert.deepEqual(runs[0], runs[1]);
});
