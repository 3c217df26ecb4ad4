// The worker runtime: WorkerExecutor proxying to an executor in a worker thread, and the
// parallel matmul (calling thread + 1 helper thread on one shared memory).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { GREEDY, type StepPlan } from "../../src/core/records.ts";
import { deviceId, modelId, requestId } from "../../src/core/ids.ts";
import { isPrismError } from "../../src/core/errors.ts";
import { WorkerExecutor } from "../../src/engine/runtime/worker-executor.ts";
import { createParallelKernels, type ParallelKernels } from "../../src/engine/runtime/parallel-kernels.ts";
import { WType } from "../../src/engine/kernels/types.ts";
import { SeededRng } from "../../src/core/rng.ts";
import { makeKernelRig, matrixBytes, randomFloats, writeMatrix, type KernelRig } from "./fixtures/kernel-fixtures.ts";

const ECHO = new URL("./fixtures/echo-executor.ts", import.meta.url);

function plan(stepIndex: number): StepPlan {
  return {
    deviceId: deviceId(0),
    stepIndex,
    seqs: [
      { requestId: requestId(1), modelId: modelId("m"), tokens: Int32Array.of(5, 6, 7), startPos: 0, blockOffsets: Uint32Array.of(4096, 8192),
        blockTokens: 16, sample: true, sampling: GREEDY, outputIndex: 0, penaltyTokens: null },
      { requestId: requestId(2), modelId: modelId("m"), tokens: Int32Array.of(9), startPos: 3, blockOffsets: Uint32Array.of(0),
        blockTokens: 16, sample: false, sampling: GREEDY, outputIndex: 0, penaltyTokens: Int32Array.of(1) },
      { requestId: requestId(3), modelId: modelId("m"), tokens: Int32Array.of(41), startPos: 12, blockOffsets: Uint32Array.of(65536),
        blockTokens: 16, sample: true, sampling: GREEDY, outputIndex: 2, penaltyTokens: null },
    ],
  };
}

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    assert.ok(isPrismError(e), `expected a PrismError, got ${String(e)}`);
    assert.equal(e.code, code);
    return e;
  }
  assert.fail(`expected rejection with ${code}`);
}

test("WorkerExecutor proxies execute with typed arrays and a shared memory", async () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const ex = await WorkerExecutor.create({ module: ECHO, exportName: "createEchoExecutor", options: { markerByteOffset: 64, kind: "echo-x" }, memory });
  try {
    assert.equal(ex.kind, "echo-x");
    assert.equal(ex.pagedKv, true);
    const res = await ex.execute(plan(41));
    assert.equal(res.stepIndex, 41);
    assert.equal(res.computeMs, 0.25);
    assert.deepEqual(res.sampled.map((s) => [s.requestId, s.token]), [[1, 8], [3, 42]]);
    assert.ok(res.sampled[0]!.topTokens instanceof Int32Array);
    assert.deepEqual([...res.sampled[0]!.topTokens!], [4096, 8192]);
    assert.deepEqual([...res.sampled[1]!.topLogprobs!], [12]);
    assert.ok(Number.isNaN(res.sampled[0]!.logprob));
    assert.equal(new Int32Array(memory.buffer)[16], 41, "the worker wrote into the same memory");
    const echoed = await ex.call<{ a: Float32Array }>("echo", { a: Float32Array.of(1.5, 2) });
    assert.deepEqual([...echoed.a], [1.5, 2]);
  } finally {
    await ex.close();
  }
});

test("load/move/unload are applied in order; PrismErrors cross the boundary with code and details", async () => {
  const asyncErrors: string[] = [];
  const ex = await WorkerExecutor.create({ module: ECHO.href, exportName: "createEchoExecutor", onAsyncError: (e) => asyncErrors.push(e.code) });
  try {
    assert.deepEqual(await ex.loadWeights(modelId("a"), 1024), { durationMs: 1.5 });
    ex.moveWeights(modelId("a"), 2048);
    await ex.loadWeights(modelId("b"), 4096);
    ex.unloadWeights(modelId("b"));
    assert.deepEqual(await ex.call("offsets"), { a: 2048 });
    const e = (await rejectsWithCode(ex.loadWeights(modelId("bad"), 0), "PRISM_MODEL_SHAPE_INVALID")) as { details: unknown; message: string };
    assert.deepEqual(e.details, { model: "bad", dims: [1, 2] });
    assert.equal(e.message, "bad model");
    // A failing fire-and-forget call goes to onAsyncError and rejects the next call made after it
    // arrived, once; a call already in flight (offsets) completes normally.
    ex.unloadWeights(modelId("never-loaded"));
    assert.deepEqual(await ex.call("offsets"), { a: 2048 });
    assert.deepEqual(asyncErrors, ["PRISM_ENGINE_NOT_LOADED"]);
    await rejectsWithCode(ex.execute(plan(1)), "PRISM_ENGINE_NOT_LOADED");
    assert.equal((await ex.execute(plan(2))).stepIndex, 2);
    // Plain errors become PRISM_INTERNAL with the message kept.
    const internal = (await rejectsWithCode(ex.call("fail"), "PRISM_INTERNAL")) as Error;
    assert.match(internal.message, /plain failure/);
    await rejectsWithCode(ex.call("noSuchMethod"), "PRISM_INTERNAL");
  } finally {
    await ex.close();
  }
  await rejectsWithCode(ex.execute(plan(3)), "PRISM_SHUTTING_DOWN");
});

test("a worker that dies rejects pending and later calls with PRISM_ENGINE_WORKER_DIED", async () => {
  const ex = await WorkerExecutor.create({ module: ECHO, exportName: "createEchoExecutor" });
  const crash = ex.call("crash");
  const queued = ex.execute(plan(1));
  await rejectsWithCode(crash, "PRISM_ENGINE_WORKER_DIED");
  await rejectsWithCode(queued, "PRISM_ENGINE_WORKER_DIED");
  await rejectsWithCode(ex.execute(plan(2)), "PRISM_ENGINE_WORKER_DIED");
  await ex.close();
});

test("factory failures reject create() with the factory's error", async () => {
  await rejectsWithCode(WorkerExecutor.create({ module: ECHO, exportName: "createEchoExecutor", options: { failInit: true } }), "PRISM_CONFIG_INVALID");
  await rejectsWithCode(WorkerExecutor.create({ module: ECHO, exportName: "nope" }), "PRISM_INTERNAL");
});

let rig: KernelRig;
let pk: ParallelKernels;
before(async () => {
  rig = await makeKernelRig(32 << 20);
  pk = await createParallelKernels(rig.wasm, rig.memory, { helperThreads: 1, minMacs: 0 });
});
after(async () => {
  await pk.close();
});

test("parallel matmul equals the single-thread kernel bit for bit (any shape, column range, weight type)", () => {
  fc.assert(fc.property(
    fc.constantFrom(WType.F32, WType.F16, WType.Q8_0_R4), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 8, max: 300 }), fc.nat(), fc.integer({ min: 0, max: 1 << 30 }),
    (wType, numRows, k, outDim, a, seed) => {
      rig.reset();
      const rng = new SeededRng(seed);
      const inDim = wType === WType.Q8_0_R4 ? 32 * k : 29 * k + (seed % 5);
      const oStart = a % 5;
      const x = rig.alloc(numRows * inDim * 4), w = rig.alloc(matrixBytes(wType, outDim, inDim));
      const o1 = rig.alloc(numRows * outDim * 4), o2 = rig.alloc(numRows * outDim * 4);
      rig.f32().set(randomFloats(rng, numRows * inDim), x >> 2);
      writeMatrix(rig, w, wType, randomFloats(rng, outDim * inDim), outDim, inDim);
      rig.f32().fill(0, o1 >> 2, (o2 >> 2) + numRows * outDim); // columns < oStart stay 0 in both
      rig.wasm.matmul(o1, x, w, wType, numRows, inDim, outDim, oStart, outDim);
      pk.matmul(o2, x, w, wType, numRows, inDim, outDim, oStart, outDim);
      assert.deepEqual(rig.f32().subarray(o2 >> 2, (o2 >> 2) + numRows * outDim), rig.f32().subarray(o1 >> 2, (o1 >> 2) + numRows * outDim));
    }), { seed: 99, numRuns: 60 });
  assert.ok(pk.stats().parallelMatmuls > 0);
});

test("the helper thread takes chunks of large matmuls; small ones and helperThreads 0 stay serial", async () => {
  rig.reset();
  const rng = new SeededRng(3);
  const inDim = 288, outDim = 4096, numRows = 4;
  const x = rig.alloc(numRows * inDim * 4), w = rig.alloc(outDim * inDim * 4), o = rig.alloc(numRows * outDim * 4);
  rig.f32().set(randomFloats(rng, numRows * inDim), x >> 2);
  rig.f32().set(randomFloats(rng, outDim * inDim), w >> 2);
  // The helper's first chunk depends on OS scheduling; a few hundred jobs make it certain in practice.
  for (let i = 0; i < 500 && pk.stats().helperChunks === 0; i++) pk.matmul(o, x, w, WType.F32, numRows, inDim, outDim, 0, outDim);
  assert.ok(pk.stats().helperChunks > 0, "helper computed at least one chunk");
  const serial = await createParallelKernels(rig.wasm, rig.memory, { helperThreads: 0 });
  serial.matmul(o, x, w, WType.F32, numRows, inDim, outDim, 0, outDim);
  assert.deepEqual(serial.stats(), { parallelMatmuls: 0, serialMatmuls: 1, helperChunks: 0 });
  await serial.close();
  const unshared = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  await assert.rejects(createParallelKernels(rig.wasm, unshared, { helperThreads: 1 }), (e: unknown) => isPrismError(e) && e.code === "PRISM_CONFIG_INVALID");
});

test("attentionRows equals one attention call per row, bit for bit: WASM, TS and split across the helper thread", () => {
  fc.assert(fc.property(
    fc.array(fc.record({ blockTokens: fc.constantFrom(3, 4, 16), start: fc.integer({ min: 0, max: 20 }), numRows: fc.integer({ min: 1, max: 40 }) }), { minLength: 1, maxLength: 3 }),
    fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.constantFrom(6, 8, 12, 48), fc.integer({ min: 0, max: 1 << 30 }),
    (seqs, numKvHeads, group, headDim, seed) => {
      rig.reset();
      const rng = new SeededRng(seed);
      const numLayers = 2, layer = 1, numHeads = numKvHeads * group, qDim = numHeads * headDim, kvDim = numKvHeads * headDim;
      const numRows = seqs.reduce((n, s) => n + s.numRows, 0);
      const contextFloats = Math.max(...seqs.map((s) => s.start + s.numRows));
      const u32 = (): Uint32Array => new Uint32Array(rig.memory.buffer);
      const rowTables = rig.alloc(numRows * 4), rowBt = rig.alloc(numRows * 4), positions = rig.alloc(numRows * 4);
      const tablePtrs: number[] = [];
      let r = 0;
      for (const s of seqs) {
        const numBlocks = Math.ceil((s.start + s.numRows) / s.blockTokens);
        const table = rig.alloc(numBlocks * 4);
        tablePtrs.push(table);
        for (let b = 0; b < numBlocks; b++) {
          const blockBytes = numLayers * 2 * s.blockTokens * kvDim * 4;
          const block = rig.alloc(blockBytes);
          rig.f32().set(randomFloats(rng, blockBytes / 4), block >> 2);
          u32()[(table >> 2) + b] = block;
        }
        for (let j = 0; j < s.numRows; j++, r++) {
          u32()[(rowTables >> 2) + r] = table;
          u32()[(rowBt >> 2) + r] = s.blockTokens;
          u32()[(positions >> 2) + r] = s.start + j;
        }
      }
      const q = rig.alloc(numRows * qDim * 4), scratch = rig.alloc(2 * contextFloats * 4);
      rig.f32().set(randomFloats(rng, numRows * qDim, 2), q >> 2);
      const outs = [0, 1, 2, 3, 4].map(() => rig.alloc(numRows * qDim * 4));
      const scale = 1 / Math.sqrt(headDim);
      const perRow = (k: typeof rig.wasm, out: number): void => {
        for (let i = 0; i < numRows; i++) {
          k.attention(out + i * qDim * 4, q + i * qDim * 4, u32()[(rowTables >> 2) + i]!, u32()[(rowBt >> 2) + i]!, numLayers, layer,
            numHeads, numKvHeads, headDim, u32()[(positions >> 2) + i]!, scratch, scale);
        }
      };
      const rows = (k: typeof rig.wasm, out: number): void =>
        k.attentionRows(out, q, rowTables, rowBt, positions, 0, numRows, numLayers, layer, numHeads, numKvHeads, headDim, scratch, contextFloats, scale);
      perRow(rig.wasm, outs[0]!);
      rows(rig.wasm, outs[1]!);
      rows(pk, outs[2]!);
      perRow(rig.ts, outs[3]!);
      rows(rig.ts, outs[4]!);
      const view = (o: number): Float32Array => rig.f32().subarray(o >> 2, (o >> 2) + numRows * qDim);
      assert.deepEqual(view(outs[1]!), view(outs[0]!), "wasm attentionRows");
      assert.deepEqual(view(outs[2]!), view(outs[0]!), "parallel attentionRows");
      assert.deepEqual(view(outs[4]!), view(outs[3]!), "ts attentionRows");
    }), { seed: 41, numRuns: 40 });
});
