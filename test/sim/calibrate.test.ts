import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU_BENCH_SAMPLES, fitDevice, predictSample } from "../../src/sim/calibrate.ts";
import { CPU_EFFICIENCY, CPU_ENGINE_STEP_OVERHEAD_MS, CPU_SERVE_LOOP_MS, DEVICES } from "../../src/sim/catalog.ts";
import { CostModel, predictServeLatency } from "../../src/sim/cost-model.ts";
import { modelId } from "../../src/core/ids.ts";

test("the cpu catalog entry (less the serve loop) predicts the engine bench's step times within 25%", () => {
  const fit = fitDevice(CPU_BENCH_SAMPLES);
  assert.ok(fit.maxRelErr < 0.25, String(fit.maxRelErr));
  // the server's per-step cost is on top of the engine's: bench:engine times the executor alone
  assert.equal(CPU_EFFICIENCY.stepOverheadMs, CPU_ENGINE_STEP_OVERHEAD_MS + CPU_SERVE_LOOP_MS);
  for (const s of CPU_BENCH_SAMPLES) {
    const p = predictSample(s, "cpu", DEVICES.cpu.peakFlops, DEVICES.cpu.memBwBytesPerS, CPU_ENGINE_STEP_OVERHEAD_MS, CPU_EFFICIENCY.msPerSampledSeq);
    assert.ok(Math.abs(p - s.measuredMs) / s.measuredMs < 0.25, `${s.label}: ${p} vs ${s.measuredMs}`);
  }
});

test("predictServeLatency on the cpu device: prefill chunks + decode steps of the fitted model", () => {
  const p = predictServeLatency({ deviceType: "cpu", arch: "stories15m", promptTokens: 128, outputTokens: 17, prefillChunkTokens: 128 });
  const prefill = predictSample(CPU_BENCH_SAMPLES[0]!, "cpu", DEVICES.cpu.peakFlops, DEVICES.cpu.memBwBytesPerS, CPU_EFFICIENCY.stepOverheadMs, CPU_EFFICIENCY.msPerSampledSeq);
  // TTFT = the prefill step + the per-request time outside steps (HTTP, tokenisation, admission)
  assert.ok(CPU_EFFICIENCY.requestOverheadMs > 0);
  assert.ok(Math.abs(p.ttftMs - (prefill + CPU_EFFICIENCY.requestOverheadMs)) < 1e-9);
  assert.ok(p.tpotMs > 3 && p.tpotMs < 20, String(p.tpotMs));
  // a 202-token prompt in 128-token chunks: only the last chunk samples
  const two = predictServeLatency({ deviceType: "cpu", arch: "stories15m", promptTokens: 202, outputTokens: 2, prefillChunkTokens: 128 });
  const cm = new CostModel({ deviceType: "cpu" });
  const id = modelId("m");
  cm.addModel({ id, arch: "stories15m" });
  assert.equal(two.ttftMs, cm.prefillMs(id, 128, 0, false) + cm.prefillMs(id, 74, 128, true) + CPU_EFFICIENCY.requestOverheadMs);
  assert.ok(Math.abs(cm.prefillMs(id, 128, 0, true) - cm.prefillMs(id, 128, 0, false) - CPU_EFFICIENCY.msPerSampledSeq) < 1e-9);
});
