// findMaxRate: the largest request-rate scale at which a policy keeps 99% TTFT attainment on a fixed
// number of devices (the paper's "requests served at 99% SLO attainment").
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseModelsConfig } from "../../src/sim/models-file.ts";
import { findMaxRate, prepareWorkload, runPolicy } from "../../src/sim/experiment.ts";
import { makeTrace } from "./helpers.ts";
import { SeededRng } from "../../src/core/rng.ts";

const MODELS = { device: "h100", slo_scale: 5, models: ["llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "qwen2.5-7b"].map((arch, i) => ({ id: `m${i}`, arch })) };

function workload() {
  const rng = new SeededRng(5);
  const rows = Array.from({ length: 400 }, () => ({ t: rng.next() * 120, m: Math.floor(4 * rng.next()), in: 200 + rng.int(2000), out: 20 + rng.int(200) }));
  return prepareWorkload(makeTrace(rows, 4), parseModelsConfig(MODELS), { name: "max-rate" });
}

test("findMaxRate brackets the largest rate scale that keeps the target, within the precision", () => {
  const p = workload();
  const target = 0.99;
  const r = findMaxRate(p, { policy: "prism", devices: 1, target, deterministic: true, precision: 1.1 });
  assert.ok(r.rateScale !== null && !r.capped, JSON.stringify(r));
  const att = (x: number) => runPolicy(p, { policy: "prism", devices: 1, rateScale: x, deterministic: true }).summary.slo_attainment.ttft;
  assert.ok(att(r.rateScale) >= target);
  // The failing end of the bracket was tried and is within the precision.
  const failing = r.tried.filter((t) => t.attainment < target && t.rateScale > r.rateScale!).map((t) => t.rateScale);
  assert.ok(failing.length > 0);
  assert.ok(Math.min(...failing) / r.rateScale! <= 1.1 + 1e-12, `${Math.min(...failing)} / ${r.rateScale}`);
  for (const t of r.tried) assert.equal(t.attainment >= target, t.rateScale <= r.rateScale!, `monotone at ×${t.rateScale}`);
  // Deterministic.
  assert.deepEqual(findMaxRate(p, { policy: "prism", devices: 1, target, deterministic: true, precision: 1.1 }), r);
});

test("findMaxRate: null when even the smallest scale misses, capped when the largest still meets it", () => {
  const p = workload();
  const none = findMaxRate(p, { policy: "prism", devices: 1, target: 1.01, deterministic: true, minScale: 0.5, maxScale: 2 });
  assert.equal(none.rateScale, null);
  assert.deepEqual(none.tried.map((t) => t.rateScale), [1, 0.5]);
  const all = findMaxRate(p, { policy: "prism", devices: 4, target: 0, deterministic: true, maxScale: 2 });
  assert.deepEqual({ rateScale: all.rateScale, capped: all.capped }, { rateScale: 2, capped: true });
  assert.throws(() => findMaxRate(p, { policy: "prism", devices: 1, target: 0.99, precision: 1 }), (e: any) => e.code === "PRISM_SIM_INVALID");
});
