import { test } from "node:test";
import assert from "node:assert/strict";
import { DemandEstimator } from "../../src/control/demand.ts";

const est = (prior: number[] = [0, 0]) =>
  new DemandEstimator({ numModels: prior.length, rateWindowMs: 1000, violationWindowMs: 500, priorRatesPerS: prior, startMs: 0 });

test("demand: the rate starts at the prior and decays exponentially without arrivals", () => {
  const d = est([2, 0]);
  assert.equal(d.arrivalRatePerS(0, 0), 2);
  assert.equal(d.arrivalRatePerS(0, 1000), 2 * Math.exp(-1));
  assert.equal(d.arrivalRatePerS(1, 1000), 0);
});

test("demand: arrivals add one window-worth each; a steady stream converges to its rate", () => {
  const d = est();
  d.onArrival(0, 0, 10);
  assert.equal(d.arrivalRatePerS(0, 0), 1);
  d.onArrival(0, 500, 30);
  assert.equal(d.arrivalRatePerS(0, 500), Math.exp(-0.5) + 1);
  assert.equal(d.tokenRatePerS(0, 500), 10 * Math.exp(-0.5) + 30);
  assert.equal(d.outstandingRequests(0), 2);
  assert.equal(d.outstandingTokens(0), 40);
  assert.equal(d.lastArrivalMs(0), 500);
  assert.equal(d.lastArrivalMs(1), -Infinity);
  // 20 req/s for 10 windows → within 1% of 20.
  const s = est();
  for (let t = 0; t <= 10_000; t += 50) s.onArrival(0, t, 1);
  const r = s.arrivalRatePerS(0, 10_000);
  assert.ok(r > 19.8 && r < 20.6, `rate ${r}`);
});

test("demand: violation fraction over a short window; finishes and drops settle outstanding work", () => {
  const d = est();
  assert.equal(d.violationFraction(0, 0), 0);
  d.onArrival(0, 0, 10);
  d.onArrival(0, 0, 20);
  d.onArrival(0, 0, 5);
  d.onFinish(0, 100, 50, 5, true, 10, 7);
  d.onFinish(0, 100, 900, 5, false, 20, 3);
  assert.equal(d.violationFraction(0, 100), 0.5);
  assert.equal(d.outstandingRequests(0), 1);
  assert.equal(d.outstandingTokens(0), 5);
  d.onDrop(0, 100, 5);
  assert.equal(d.violationFraction(0, 100), 2 / 3);
  assert.equal(d.outstandingRequests(0), 0);
  assert.equal(d.outstandingTokens(0), 0);
  // Older outcomes fade: after many windows the fraction is still a ratio of decayed sums…
  assert.equal(d.violationFraction(0, 1100), (2 * Math.exp(-2)) / (3 * Math.exp(-2)));
  // …until there is no evidence left at all.
  assert.equal(d.violationFraction(0, 100_000), 0);
  // A drop for a request never seen does not go negative.
  d.onDrop(1, 0, 99);
  assert.equal(d.outstandingRequests(1), 0);
  assert.equal(d.outstandingTokens(1), 0);
  assert.equal(d.view(0, 100).outstandingRequests, 0);
});

test("demand: invalid windows and priors fail with PRISM_CONFIG_INVALID", () => {
  const code = (e: unknown) => (e as { code?: string }).code === "PRISM_CONFIG_INVALID";
  assert.throws(() => new DemandEstimator({ numModels: 1, rateWindowMs: 0, violationWindowMs: 1, startMs: 0 }), code);
  assert.throws(() => new DemandEstimator({ numModels: 1, rateWindowMs: 1, violationWindowMs: 1, startMs: 0, priorRatesPerS: [-1] }), code);
});
