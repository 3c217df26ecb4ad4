// The engine hosted in a worker thread (runtime/WorkerExecutor) on a shared DeviceMemory, built from
// JSON options by createEngineExecutor: same golden tokens as in-process, with and without the
// matmul helper thread (forced to split every matmul).
import { test } from "node:test";
import assert from "node:assert/strict";
import { modelId } from "../../src/core/ids.ts";
import type { ModelProfile } from "../../src/core/records.ts";
import { parseGguf } from "../../src/engine/gguf/reader.ts";
import { llamaConfigFromGguf } from "../../src/engine/model/config.ts";
import { requiredPrefixBytes } from "../../src/engine/model/executor.ts";
import { generate } from "../../src/engine/model/sequences.ts";
import { WorkerExecutor } from "../../src/engine/runtime/worker-executor.ts";
import { DeviceMemory } from "../../src/memory/index.ts";
import { SHARED_MODELS, blockProvider, sharedFile, sharedJson, type GoldenRun } from "./executor-harness.ts";

const once64 = sharedJson<GoldenRun>("stories260K.greedy-once-64.json");

for (const helperThreads of [0, 1] as const) {
  test(`worker-hosted engine reproduces the golden ids (helperThreads ${helperThreads})`, async () => {
    const cfg = llamaConfigFromGguf(parseGguf(sharedFile("stories260K.gguf"), "s"));
    const prefixBytes = Math.ceil(requiredPrefixBytes([cfg]) / 65536) * 65536;
    const mem = new DeviceMemory({ budgetBytes: 8 << 20, pageBytes: 65536, backed: true, shared: true, prefixBytes });
    const ex = await WorkerExecutor.create({
      module: new URL("../../src/engine/model/executor.ts", import.meta.url),
      exportName: "createEngineExecutor",
      options: { prefixBytes, kernels: "wasm", helperThreads, minParallelMacs: 0, models: [{ id: "s", path: `${SHARED_MODELS}/stories260K.gguf` }] },
      memory: mem.memory!,
    });
    try {
      assert.equal(ex.kind, "wasm");
      assert.equal(ex.pagedKv, true);
      const profile = await ex.call<ModelProfile>("profile", "s");
      const region = mem.allocWeights(modelId("s"), profile.weightBytes)!;
      await ex.loadWeights(modelId("s"), region.byteOffset);
      const space = mem.createKvSpace(modelId("s"), { bytesPerTokenPerLayer: profile.kvBytesPerTokenPerLayer, numLayers: profile.numLayers, blockTokens: 16 });
      const r = await generate({ executor: ex, modelId: "s", blocks: blockProvider(space), promptTokens: once64.inputTokens, maxTokens: 64 });
      assert.deepEqual(r.tokens, once64.generatedTokens);
      await assert.rejects(generate({ executor: ex, modelId: "s", blocks: blockProvider(space), promptTokens: [1, 4096], maxTokens: 2 }), { code: "PRISM_TOKEN_OUT_OF_RANGE" });
      assert.equal(space.usedBlocks, 0);
    } finally {
      await ex.close();
    }
  });
}
