// The forward pass: WASM and TS kernels agree; a mixed batch (prefill chunks + decodes of several
// sequences) computes each row exactly as if its sequence ran alone; weight layout and copy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { deviceId, modelId, requestId } from "../../src/core/ids.ts";
import { GREEDY, type SeqStep } from "../../src/core/records.ts";
import { parseGguf } from "../../src/engine/gguf/reader.ts";
import { GgmlType } from "../../src/engine/gguf/types.ts";
import { llamaConfigFromGguf } from "../../src/engine/model/config.ts";
import { generateRandomModel } from "../../src/engine/model/generate.ts";
import { parseShape, SHAPES } from "../../src/engine/model/shapes.ts";
import { copyWeights, planWeightLayout, WEIGHT_ALIGN_BYTES } from "../../src/engine/model/weights.ts";
import { WType } from "../../src/engine/kernels/types.ts";
import { r4ScaleOffset, r4ValueOffset } from "../../src/engine/kernels/q8-layout.ts";
import { forcedLogits, makeEngine, maxAbsDiff, pseudoRandomTokens, sharedFile, usedBlocks, type EngineHarness } from "./executor-harness.ts";

const MODELS: [string, () => Uint8Array][] = [
  ["stories260K (F32)", () => sharedFile("stories260K.gguf")],
  ["random 64x3 Q8_0", () => generateRandomModel({ shape: parseShape("64,3,4,2,128,384"), dtype: "q8_0", seed: 5, weightStd: 0.08 })],
  ["random tiny F16", () => generateRandomModel({ shape: SHAPES.tiny!, dtype: "f16", seed: 6, weightStd: 0.08 })],
];

for (const [name, load] of MODELS) {
  test(`WASM and TS kernels give the same logits (teacher-forced, 40 positions): ${name}`, async (t) => {
    const bytes = load();
    const wasm = await makeEngine({ models: [{ id: "m", bytes }], kernels: "wasm", blockTokens: 8 });
    const ts = await makeEngine({ models: [{ id: "m", bytes }], kernels: "ts", blockTokens: 8 });
    const tokens = pseudoRandomTokens(40, wasm.profiles.get("m")!.vocabSize, 11);
    const a = await forcedLogits(wasm, "m", tokens);
    const b = await forcedLogits(ts, "m", tokens);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, maxAbsDiff(a[i]!, b[i]!));
    t.diagnostic(`max |Δ logit| WASM vs TS: ${worst.toExponential(2)}`);
    // f32 lanes (WASM) vs f64 accumulation (TS): rounding only.
    assert.ok(worst < 1e-4, `max |Δ logit| ${worst}`);
  });
}

/** Runs `steps` (one plan per entry) and returns the logits of every sampled row keyed by request id. */
async function runPlans(h: EngineHarness, plans: SeqStep[][]): Promise<Map<number, Float32Array[]>> {
  const out = new Map<number, Float32Array[]>();
  h.executor.logitsHook = (r, _m, l) => {
    const list = out.get(r) ?? [];
    list.push(l.slice());
    out.set(r, list);
  };
  try {
    for (let i = 0; i < plans.length; i++) await h.executor.execute({ deviceId: deviceId(0), stepIndex: i, seqs: plans[i]! });
  } finally {
    h.executor.logitsHook = null;
  }
  return out;
}

test("a mixed batch (two prefill chunks + decodes of three sequences) equals each sequence alone, bit for bit", async () => {
  for (const kernels of ["wasm", "ts"] as const) {
    const h = await makeEngine({ models: [{ id: "m", bytes: sharedFile("stories260K.gguf") }], kernels, blockTokens: 4 });
    const blocks = h.blocks.get("m")!;
    const seqTokens = [pseudoRandomTokens(13, 512, 1), pseudoRandomTokens(9, 512, 2), pseudoRandomTokens(11, 512, 3)];
    const tables = seqTokens.map((tk) => {
      const ids = blocks.alloc(Math.ceil(tk.length / blocks.blockTokens))!;
      return { ids, table: Uint32Array.from(ids, (b) => blocks.byteOffset(b)) };
    });
    const step = (s: number, from: number, to: number, sample: boolean): SeqStep => ({
      requestId: requestId(s + 1), modelId: modelId("m"), tokens: Int32Array.from(seqTokens[s]!.slice(from, to)), startPos: from,
      blockOffsets: tables[s]!.table, blockTokens: blocks.blockTokens, sample, sampling: GREEDY, outputIndex: 0, penaltyTokens: null,
    });
    // Batched: step 0 = seq0 [0,5) (chunk, no sample) + seq1 [0,9) (whole prompt, sample) + seq2 [0,1);
    // step 1 = seq0 [5,13) + seq2 [1,11); every sampling row checked against the lone runs.
    const batched = await runPlans(h, [
      [step(0, 0, 5, false), step(1, 0, 9, true), step(2, 0, 1, true)],
      [step(2, 1, 11, true), step(0, 5, 13, true)],
    ]);
    const alone0 = await runPlans(h, [[step(0, 0, 13, true)]]);
    const alone1 = await runPlans(h, [[step(1, 0, 9, true)]]);
    const alone2 = await runPlans(h, [[step(2, 0, 1, true)], [step(2, 1, 11, true)]]);
    assert.deepEqual(batched.get(1), alone0.get(1), `${kernels}: seq0`);
    assert.deepEqual(batched.get(2), alone1.get(2), `${kernels}: seq1`);
    assert.deepEqual(batched.get(3), alone2.get(3), `${kernels}: seq2`);
    for (const t of tables) blocks.free(t.ids);
    assert.equal(usedBlocks(h), 0);
  }
});

test("StepResult.sampled is in plan order across model groups", async () => {
  const h = await makeEngine({
    models: [{ id: "a", bytes: sharedFile("stories260K.gguf") }, { id: "b", bytes: generateRandomModel({ shape: SHAPES.tiny!, dtype: "f32", seed: 1 }) }],
    kernels: "wasm",
  });
  const held: [string, number[]][] = [];
  const mk = (id: string, r: number, sample: boolean): SeqStep => {
    const blocks = h.blocks.get(id)!;
    const ids = blocks.alloc(1)!;
    held.push([id, ids]);
    return {
      requestId: requestId(r), modelId: modelId(id), tokens: Int32Array.of(1, 5, 9), startPos: 0, blockOffsets: Uint32Array.from(ids, (x) => blocks.byteOffset(x)),
      blockTokens: blocks.blockTokens, sample, sampling: GREEDY, outputIndex: 0, penaltyTokens: null,
    };
  };
  const seqs = [mk("b", 10, true), mk("a", 11, true), mk("b", 12, false), mk("a", 13, true), mk("b", 14, true)];
  const r = await h.executor.execute({ deviceId: deviceId(0), stepIndex: 7, seqs });
  assert.equal(r.stepIndex, 7);
  assert.deepEqual(r.sampled.map((s) => s.requestId), [10, 11, 13, 14]);
  assert.ok(r.computeMs >= 0);
  for (const [id, ids] of held) h.blocks.get(id)!.free(ids);
  assert.equal(usedBlocks(h), 0);
});

test("weight layout: aligned slots, raw bytes copied as-is, Q8_0 matrices regrouped into Q8_0_R4 (same bytes, permuted)", () => {
  const bytes = generateRandomModel({ shape: SHAPES.tiny!, dtype: "q8_0", seed: 9 });
  const gguf = parseGguf(bytes, "tiny-q8");
  const cfg = llamaConfigFromGguf(gguf);
  const layout = planWeightLayout(gguf, cfg);
  assert.equal(layout.tensors.size, 1 + 9 * cfg.numLayers + 1);
  assert.equal(layout.bytes % WEIGHT_ALIGN_BYTES, 0);
  let end = 0;
  for (const [name, slot] of layout.tensors) {
    assert.equal(slot.offset % WEIGHT_ALIGN_BYTES, 0, name);
    assert.ok(slot.offset >= end, `${name} overlaps its predecessor`);
    end = slot.offset + slot.byteLength;
  }
  assert.ok(end <= layout.bytes);
  assert.equal(layout.tensors.get("blk.0.attn_q.weight")!.source.type, GgmlType.Q8_0);
  assert.equal(layout.tensors.get("blk.0.attn_q.weight")!.type, WType.Q8_0_R4);
  assert.equal(layout.tensors.get("blk.0.attn_norm.weight")!.type, GgmlType.F32);
  const memory = new WebAssembly.Memory({ initial: 4 });
  copyWeights(memory, 4096, layout, gguf);
  const mem = new Uint8Array(memory.buffer);
  let repacked = 0;
  for (const slot of layout.tensors.values()) {
    const src = bytes.subarray(slot.source.offset, slot.source.offset + slot.source.byteLength);
    const got = mem.subarray(4096 + slot.offset, 4096 + slot.offset + slot.byteLength);
    if (slot.type === WType.Q8_0_R4) {
      // Every byte lands where q8-layout.ts says: scales and values of each row and block.
      const [dim, rows] = slot.dims as [number, number];
      assert.equal(slot.byteLength, src.byteLength, "rows are a multiple of 4: no padding");
      for (let r = 0; r < rows; r++) {
        for (let b = 0; b < dim / 32; b++) {
          const block = r * (dim / 32) * 34 + b * 34;
          assert.equal(got[r4ScaleOffset(dim, r, b)], src[block]);
          assert.equal(got[r4ScaleOffset(dim, r, b) + 1], src[block + 1]);
          for (let i = 0; i < 32; i++) assert.equal(got[r4ValueOffset(dim, r, b * 32 + i)], src[block + 2 + i]);
        }
      }
      repacked++;
      continue;
    }
    assert.deepEqual(got, src);
  }
  assert.equal(repacked, 1 + 7 * cfg.numLayers, "token_embd and the 7 matrices of each layer");
  assert.throws(() => copyWeights(memory, 8, layout, gguf), { code: "PRISM_INTERNAL" });
  assert.throws(() => copyWeights(memory, memory.buffer.byteLength - 64, layout, gguf), { code: "PRISM_INTERNAL" });
});
