import { test } from "node:test";
import assert from "node:assert/strict";
import { CostModel, CostModelExecutor, predictServeLatency, compareLatency } from "../../src/sim/cost-model.ts";
import { CPU_EFFICIENCY, DEVICES, GPU_EFFICIENCY } from "../../src/sim/catalog.ts";
import { deviceId, modelId, requestId } from "../../src/core/ids.ts";
import { GREEDY, type SeqStep, type StepPlan } from "../../src/core/records.ts";

const A = modelId("a");
const B = modelId("b");

function seq(m: typeof A, r: number, n: number, startPos: number, sample = true): SeqStep {
  return { requestId: requestId(r), modelId: m, tokens: new Int32Array(n), startPos, blockOffsets: new Uint32Array(0), blockTokens: 16, sample, sampling: GREEDY, outputIndex: 0, penaltyTokens: null };
}

test("decode of Llama-3.1-8B on H100 is memory-bound: weights/(bw·mbu) + overhead (hand-computed)", () => {
  const cm = new CostModel({ deviceType: "h100" });
  cm.addModel({ id: A, arch: "llama-3.1-8b" });
  const weights = 8.03e9 * 2;
  const kvTok = 2 * 8 * 128 * 2 * 32; // 131072 bytes/token
  const bw = DEVICES.h100.memBwBytesPerS * GPU_EFFICIENCY.mbu;
  const expected = ((weights + kvTok * 1001) / bw) * 1000 + GPU_EFFICIENCY.stepOverheadMs;
  const plan: StepPlan = { deviceId: deviceId(0), stepIndex: 0, seqs: [seq(A, 1, 1, 1000)] };
  assert.ok(Math.abs(cm.stepMs(plan) - expected) < 1e-9);
  assert.ok(Math.abs(cm.decodeMs(A, 1, 1000) - expected) < 1e-9);
});

test("a long prefill is compute-bound: FLOPs/(peak·mfu) + overhead", () => {
  const cm = new CostModel({ deviceType: "h100" });
  cm.addModel({ id: A, arch: "llama-3.1-8b" });
  const n = 4096;
  const flops = 2 * 8.03e9 * n + 4 * 32 * 32 * 128 * n * ((n + 1) / 2);
  const expected = (flops / (DEVICES.h100.peakFlops * GPU_EFFICIENCY.mfu)) * 1000 + GPU_EFFICIENCY.stepOverheadMs;
  assert.ok(Math.abs(cm.prefillMs(A, n) - expected) < 1e-9);
});

test("a step with two models: their GPU work serialises, one model's overhead overlaps the other's work; one non-EOS token per sampling seq", async () => {
  const cm = new CostModel({ deviceType: "h100" });
  cm.addModel({ id: A, arch: "llama-3.2-1b" });
  cm.addModel({ id: B, arch: "llama-3.2-3b" });
  const plan: StepPlan = { deviceId: deviceId(0), stepIndex: 7, seqs: [seq(A, 1, 1, 10), seq(B, 2, 32, 0, false), seq(A, 3, 1, 20)] };
  const busyA = cm.busyMs(cm.cost(A), 2, 11 + 21, 11 + 21);
  const busyB = cm.busyMs(cm.cost(B), 32, 32 * 16.5, 32);
  const expected = Math.max(busyA + busyB, Math.max(busyA, busyB) + GPU_EFFICIENCY.stepOverheadMs);
  assert.ok(Math.abs(cm.stepMs(plan) - expected) < 1e-9);
  assert.ok(Math.abs(cm.lastBusyMs - (busyA + busyB)) < 1e-9);
  // three big prefills: GPU-bound, the overheads hide entirely
  const big: StepPlan = { deviceId: deviceId(0), stepIndex: 8, seqs: [seq(A, 1, 4000, 0), seq(B, 2, 4000, 0)] };
  const ba = cm.busyMs(cm.cost(A), 4000, 4000 * 2000.5, 4000);
  const bb = cm.busyMs(cm.cost(B), 4000, 4000 * 2000.5, 4000);
  assert.ok(ba + bb > Math.max(ba, bb) + GPU_EFFICIENCY.stepOverheadMs);
  assert.ok(Math.abs(cm.stepMs(big) - (ba + bb)) < 1e-9);
  const ex = new CostModelExecutor(cm);
  const r = await ex.execute(plan);
  assert.equal(r.stepIndex, 7);
  assert.equal(r.sampled.length, 2);
  assert.deepEqual(r.sampled.map((s) => s.requestId), [1, 3]);
  for (const s of r.sampled) assert.ok(!cm.cost(A).profile.eosTokenIds.includes(s.token));
  assert.equal((await ex.loadWeights(A, 0)).durationMs, cm.loadMs(A));
});

test("cpu: each sampling sequence adds msPerSampledSeq to the roofline, a non-final prefill chunk none; GPUs have no such term", () => {
  const cm = new CostModel({ deviceType: "cpu" });
  cm.addModel({ id: A, arch: "stories15m" });
  const peak = DEVICES.cpu.peakFlops;
  // decode B=8 at position 12 is compute-bound on the cpu fit: 8 × 2·params + attention over 13 positions each
  const decode: StepPlan = { deviceId: deviceId(0), stepIndex: 0, seqs: Array.from({ length: 8 }, (_, i) => seq(A, i + 1, 1, 12)) };
  const flops = 8 * 2 * 15.19e6 + 4 * 6 * 6 * 48 * 8 * 13;
  const expected = (flops / peak) * 1000 + 8 * CPU_EFFICIENCY.msPerSampledSeq + CPU_EFFICIENCY.stepOverheadMs;
  assert.ok(Math.abs(cm.stepMs(decode) - expected) < 1e-9, `${cm.stepMs(decode)} vs ${expected}`);
  assert.ok(Math.abs(cm.decodeMs(A, 8, 8 * 12) - expected) < 1e-9);
  // a 100-token chunk at 0 that does not sample vs the same chunk ending the prompt
  const chunk = (sample: boolean): StepPlan => ({ deviceId: deviceId(0), stepIndex: 1, seqs: [seq(A, 1, 100, 0, sample)] });
  const chunkFlops = 100 * 2 * 15.19e6 + 4 * 6 * 6 * 48 * 100 * 50.5;
  assert.ok(Math.abs(cm.stepMs(chunk(false)) - ((chunkFlops / peak) * 1000 + CPU_EFFICIENCY.stepOverheadMs)) < 1e-9);
  assert.ok(Math.abs(cm.stepMs(chunk(true)) - cm.stepMs(chunk(false)) - CPU_EFFICIENCY.msPerSampledSeq) < 1e-9);
  assert.equal(cm.prefillMs(A, 100, 0, false), cm.stepMs(chunk(false)));
  assert.equal(cm.prefillMs(A, 100), cm.stepMs(chunk(true)));
  const gpu = new CostModel({ deviceType: "h100" });
  gpu.addModel({ id: A, arch: "llama-3.2-1b" });
  assert.equal(GPU_EFFICIENCY.msPerSampledSeq, 0);
  const g = (sample: boolean): StepPlan => ({ deviceId: deviceId(0), stepIndex: 2, seqs: [seq(A, 1, 300, 0, sample), seq(A, 2, 1, 40, sample)] });
  assert.equal(gpu.stepMs(g(true)), gpu.stepMs(g(false)));
});

test("TP splits weights and KV per rank; activation = start + per-rank weights / link", () => {
  const cm = new CostModel({ deviceType: "h100" });
  const c = cm.addModel({ id: A, arch: "llama-3.3-70b" });
  assert.equal(c.tp, 4);
  assert.equal(c.profile.weightBytes, Math.ceil((70.6e9 * 2) / 4));
  assert.equal(c.profile.kvBytesPerTokenPerLayer, (2 * 8 * 128 * 2) / 4);
  const expectedLoad = GPU_EFFICIENCY.activationStartMs + ((70.6e9 * 2) / 4 / (DEVICES.h100.hostLinkBytesPerS * GPU_EFFICIENCY.hostLinkEfficiency)) * 1000;
  assert.ok(Math.abs(c.loadMs - expectedLoad) < 1e-6);
  assert.ok(c.loadMs < 1500, "Prism: activation < 1.5 s for 1B–70B");
});

test("predictServeLatency: dedicated 1B on H100 decodes at ≈ 6.9 ms/token (the calibration point)", () => {
  const p = predictServeLatency({ deviceType: "h100", arch: "llama-3.2-1b", promptTokens: 256, outputTokens: 128 });
  assert.ok(p.tpotMs > 6.8 && p.tpotMs < 7.1, String(p.tpotMs));
  const chunked = predictServeLatency({ deviceType: "h100", arch: "llama-3.2-1b", promptTokens: 256, outputTokens: 128, prefillChunkTokens: 64 });
  assert.ok(chunked.ttftMs > p.ttftMs);
  const cmp = compareLatency({ ttftMs: 110, tpotMs: 9 }, { ttftMs: 100, tpotMs: 10 });
  assert.ok(Math.abs(cmp.ttftRelErr - 0.1) < 1e-12 && Math.abs(cmp.tpotRelErr + 0.1) < 1e-12 && cmp.withinTolerance);
  assert.equal(compareLatency({ ttftMs: 130, tpotMs: 10 }, { ttftMs: 100, tpotMs: 10 }).withinTolerance, false);
});
