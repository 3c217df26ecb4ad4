import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU_BENCH_SAMPLES, fitDevice, predictSample } from "../../src/sim/calibrate.ts";
import { CPU_EFFICIENCY, DEVICES } from "../../src/sim/catalog.ts";
import { predictServeLatency } from "../../src/sim/cost-model.ts";

test("the cpu catalog entry predicts the engine bench's step times within 25%", () => {
  const fit = fitDevice(CPU_BENCH_SAMPLES);
  assert.ok(fit.maxRelErr < 0.25, String(fit.maxRelErr));
  for (const s of CPU_BENCH_SAMPLES) {
    const p = predictSample(s, "cpu", DEVICES.cpu.peakFlops, DEVICES.cpu.memBwBytesPerS, CPU_EFFICIENCY.stepOverheadMs);
    assert.ok(Math.abs(p - s.measuredMs) / s.measuredMs < 0.25, `${s.label}: ${p} vs ${s.measuredMs}`);
  }
});

test("predictServeLatency on the cpu device: prefill chunks + decode steps of the fitted model", () => {
  const p = predictServeLatency({ deviceType: "cpu", arch: "stories15m", promptTokens: 128, outputTokens: 17, prefillChunkTokens: 128 });
  const prefill = predictSample(CPU_BENCH_SAMPLES[0]!, "cpu", DEVICES.cpu.peakFlops, DEVICES.cpu.memBwBytesPerS, CPU_EFFICIENCY.stepOverheadMs);
  assert.ok(Math.abs(p.ttftMs - prefill) < 1e-9);
  assert.ok(p.tpotMs > 3 && p.tpotMs < 20, String(p.tpotMs));
});
