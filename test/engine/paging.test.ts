// Paged KV across models: sequences of two models interleaved step by step in one DeviceMemory (their
// KV blocks interleaved page by page) produce exactly the tokens each produces alone; every block is
// returned afterwards. Then a weight compaction moves a resident model and it still generates the
// golden text (moveWeights re-points the executor).
import { test } from "node:test";
import assert from "node:assert/strict";
import { modelId } from "../../src/core/ids.ts";
import { GREEDY, type SamplingParams } from "../../src/core/records.ts";
import { generateRandomModel } from "../../src/engine/model/generate.ts";
import { parseShape, SHAPES } from "../../src/engine/model/shapes.ts";
import { generate, runSequences, type SequenceSpec } from "../../src/engine/model/sequences.ts";
import { makeEngine, sharedFile, sharedJson, usedBlocks, type GoldenRun } from "./executor-harness.ts";

const once64 = sharedJson<GoldenRun>("stories260K.greedy-once-64.json");
const bos200 = sharedJson<GoldenRun>("stories260K.greedy-bos-200.json");
const sampled = (seed: number): SamplingParams => ({ ...GREEDY, temperature: 0.9, topP: 0.95, topK: 40, seed, logprobs: true });

test("two models, six sequences interleaved in one DeviceMemory = each sequence alone; no KV pages left in use", async () => {
  const h = await makeEngine({
    models: [
      { id: "story", bytes: sharedFile("stories260K.gguf") },
      { id: "rand", bytes: generateRandomModel({ shape: parseShape("64,3,4,2,128,384"), dtype: "q8_0", seed: 3, weightStd: 0.08 }) },
    ],
    kernels: "wasm",
    blockTokens: 4,
    budgetBytes: 8 << 20,
    pageBytes: 16384,
  });
  const specs = (): SequenceSpec[] => [
    { modelId: "story", blocks: h.blocks.get("story")!, promptTokens: once64.inputTokens, maxTokens: 40 },
    { modelId: "rand", blocks: h.blocks.get("rand")!, promptTokens: [1, 7, 300, 12], maxTokens: 25 },
    { modelId: "story", blocks: h.blocks.get("story")!, promptTokens: [1], maxTokens: 60, sampling: sampled(42) },
    { modelId: "rand", blocks: h.blocks.get("rand")!, promptTokens: [1, 100, 101, 102, 103, 104, 105, 106, 107, 108], maxTokens: 33, sampling: sampled(7) },
    { modelId: "story", blocks: h.blocks.get("story")!, promptTokens: [1, ...bos200.generatedTokens.slice(0, 30)], maxTokens: 17 },
    { modelId: "rand", blocks: h.blocks.get("rand")!, promptTokens: [1], maxTokens: 50 },
  ];
  let peakBlocks = 0;
  const together = await runSequences(
    {
      kind: "spy", pagedKv: true,
      loadWeights: (m, o) => h.executor.loadWeights(m, o), unloadWeights: (m) => h.executor.unloadWeights(m),
      moveWeights: (m, o) => h.executor.moveWeights(m, o), close: () => h.executor.close(),
      execute: (plan) => {
        peakBlocks = Math.max(peakBlocks, usedBlocks(h));
        return h.executor.execute(plan);
      },
    },
    specs(),
    { maxBatchTokens: 16 },
  );
  assert.ok(peakBlocks >= 20, `peak KV blocks in use ${peakBlocks}`);
  assert.equal(usedBlocks(h), 0);

  for (const [i, spec] of specs().entries()) {
    const alone = await generate({ executor: h.executor, ...spec });
    assert.deepEqual(together[i]!.tokens, alone.tokens, `sequence ${i} (${spec.modelId})`);
    assert.deepEqual(together[i]!.logprobs, alone.logprobs, `sequence ${i} logprobs`);
  }
  assert.deepEqual(together[0]!.tokens, once64.generatedTokens.slice(0, 40));
  assert.equal(usedBlocks(h), 0);
  const snap = h.mem.snapshot();
  for (const s of snap.spaces) assert.equal(s.usedBlocks, 0, `space ${s.modelId}`);
  h.mem.audit();
  // Empty spaces can be destroyed: every KV page goes back to the device.
  for (const space of h.spaces.values()) h.mem.destroyKvSpace(space);
  assert.equal(h.mem.snapshot().kvPages, 0);
});

test("a weight compaction moves a resident model; moveWeights re-points it and output stays golden", async () => {
  const h = await makeEngine({
    models: [
      { id: "top", bytes: generateRandomModel({ shape: SHAPES.tiny!, dtype: "f32", seed: 1 }) },
      { id: "story", bytes: sharedFile("stories260K.gguf") },
      { id: "low", bytes: generateRandomModel({ shape: SHAPES.tiny!, dtype: "f32", seed: 2 }) },
    ],
    kernels: "wasm",
    budgetBytes: 4 << 20,
    pageBytes: 65536,
  });
  const storyBefore = h.mem.weightRegion(modelId("story"))!.byteOffset;
  const moves: string[] = [];
  h.mem.onWeightsMoved((id) => moves.push(id));
  h.executor.unloadWeights(modelId("top"));
  h.mem.freeWeights(modelId("top"));
  const big = h.mem.allocWeights(modelId("big"), h.mem.maxWeightBytes());
  assert.ok(big !== null);
  assert.ok(moves.includes("story"), `moved: ${moves.join(", ")}`);
  assert.notEqual(h.mem.weightRegion(modelId("story"))!.byteOffset, storyBefore);
  h.mem.freeWeights(modelId("big"));
  const r = await generate({ executor: h.executor, modelId: "story", blocks: h.blocks.get("story")!, promptTokens: once64.inputTokens, maxTokens: 64 });
  assert.deepEqual(r.tokens, once64.generatedTokens);
  await assert.rejects(
    generate({ executor: h.executor, modelId: "top", blocks: h.blocks.get("top")!, promptTokens: [1], maxTokens: 2 }),
    { code: "PRISM_ENGINE_NOT_LOADED" },
  );
  assert.equal(usedBlocks(h), 0);
});
