import { test } from "node:test";
import assert from "node:assert/strict";
import { evaluateSlo, newRequestOutcomes, parseSloTarget, tpotMs } from "../../src/metrics/slo.ts";

test("tpot follows vLLM: (e2e - ttft) / (out - 1)", () => {
  assert.equal(tpotMs(1100, 100, 11), 100);
  assert.ok(Number.isNaN(tpotMs(500, 500, 1)));
});

test("attainment, goodput and per-model groups", () => {
  const o = newRequestOutcomes(5, ["a", "b"], Int32Array.from([0, 0, 1, 1, 0]), Float64Array.from([0, 1, 2, 3, 4]));
  // req0: a, ok, ttft 100 (<200), tpot (1100-100)/10 = 100 (<150)      -> both
  // req1: a, ok, ttft 300 (miss), tpot 10                              -> tpot only
  // req2: b, ok, ttft 50, out 1 token (tpot undefined -> attains)      -> both (b SLO ttft 60)
  // req3: b, failed                                                    -> none
  // req4: a, ok, ttft 199, tpot 200 (miss)                             -> ttft only
  const set = (i: number, ttft: number, e2e: number, out: number) => {
    o.ttftMs[i] = ttft;
    o.e2eMs[i] = e2e;
    o.outputTokens[i] = out;
    o.ok[i] = 1;
  };
  set(0, 100, 1100, 11);
  set(1, 300, 400, 11);
  set(2, 50, 50, 1);
  set(4, 199, 1999, 10);
  const r = evaluateSlo(o, (name) => (name === "a" ? { ttftMs: 200, tpotMs: 150 } : { ttftMs: 60, tpotMs: 1 }), { durationS: 10 });
  assert.equal(r.overall.count, 5);
  assert.equal(r.overall.completed, 4);
  assert.equal(r.overall.failed, 1);
  assert.equal(r.overall.ttftAttainment, 3 / 5);
  assert.equal(r.overall.tpotAttainment, 3 / 5);
  assert.equal(r.overall.bothAttainment, 2 / 5);
  assert.equal(r.overall.goodputRps, 0.2);
  assert.equal(r.overall.throughputRps, 0.4);
  assert.equal(r.overall.slo, null);
  const [a, b] = r.perModel;
  assert.equal(a!.count, 3);
  assert.equal(a!.bothAttainment, 1 / 3);
  assert.deepEqual(a!.ttftMs, { count: 3, mean: 599 / 3, min: 100, p50: 199, p90: 300, p99: 300, max: 300 });
  assert.equal(a!.tpotMs.p50, 100);
  assert.equal(b!.count, 2);
  assert.equal(b!.completed, 1);
  assert.equal(b!.bothAttainment, 1 / 2);
  assert.equal(b!.tpotMs.count, 0);
  // default duration: first arrival (0) to last finish (4 + 1.999 s)
  assert.equal(evaluateSlo(o, { ttftMs: 1e9, tpotMs: 1e9 }).durationS, 4 + 1999 / 1000);
});

test("empty groups give NaN fractions, not exceptions", () => {
  const r = evaluateSlo(newRequestOutcomes(0, ["x"]), { ttftMs: 1, tpotMs: 1 });
  assert.ok(Number.isNaN(r.overall.bothAttainment));
  assert.equal(r.perModel[0]!.count, 0);
});

test("parse --slo", () => {
  assert.deepEqual(parseSloTarget("ttft_ms=500,tpot_ms=50"), { ttftMs: 500, tpotMs: 50 });
  assert.deepEqual(parseSloTarget("tpot_ms=20"), { ttftMs: Infinity, tpotMs: 20 });
  assert.throws(() => parseSloTarget("latency=3"), /unknown key/);
  assert.throws(() => parseSloTarget("ttft_ms=-3"), /positive/);
});
