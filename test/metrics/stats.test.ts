import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { coefficientOfVariation, ecdfPoints, mean, percentileSorted, percentiles, sortedFinite, summarize } from "../../src/metrics/stats.ts";

test("nearest-rank percentiles", () => {
  const s = sortedFinite([15, 20, 35, 40, 50]);
  assert.equal(percentileSorted(s, 5), 15);
  assert.equal(percentileSorted(s, 30), 20);
  assert.equal(percentileSorted(s, 40), 20);
  assert.equal(percentileSorted(s, 50), 35);
  assert.equal(percentileSorted(s, 100), 50);
  assert.equal(percentileSorted(s, 0), 15);
  assert.ok(Number.isNaN(percentileSorted(new Float64Array(0), 50)));
  const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100 shuffled by reversal
  assert.deepEqual(percentiles(v, [50, 90, 99, 100]), [50, 90, 99, 100]);
  assert.deepEqual(percentiles([NaN, 3, NaN, 1, 2], [50]), [2]);
});

test("percentile is an observed value and monotone in p", () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: -1e9, max: 1e9, noNaN: true }), { minLength: 1, maxLength: 200 }), fc.double({ min: 0, max: 100, noNaN: true }), fc.double({ min: 0, max: 100, noNaN: true }), (xs, p, q) => {
      const s = sortedFinite(xs);
      const a = percentileSorted(s, Math.min(p, q));
      const b = percentileSorted(s, Math.max(p, q));
      assert.ok(xs.includes(a));
      assert.ok(a <= b);
      // nearest rank: at least p% of values are <= the p-th percentile
      const le = xs.filter((x) => x <= b).length;
      assert.ok(le >= (Math.max(p, q) / 100) * xs.length - 1e-9);
    }),
    { numRuns: 200, seed: 3 },
  );
});

test("mean, cv, summary, ecdf", () => {
  assert.equal(mean([1, 2, 3, NaN]), 2);
  assert.ok(Math.abs(coefficientOfVariation([1, 1, 1, 1]) - 0) < 1e-12);
  assert.ok(Math.abs(coefficientOfVariation([0, 2]) - 1) < 1e-12);
  const d = summarize(Float64Array.from([4, 1, 3, 2]));
  assert.deepEqual(d, { count: 4, mean: 2.5, min: 1, p50: 2, p90: 4, p99: 4, max: 4 });
  const pts = ecdfPoints(sortedFinite(Array.from({ length: 1000 }, (_, i) => i)), 11);
  assert.equal(pts.length, 11);
  assert.deepEqual(pts[0], [0, 0.001]);
  assert.deepEqual(pts[10], [999, 1]);
});
