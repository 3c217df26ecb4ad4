import { test } from "node:test";
import assert from "node:assert/strict";
import { SeededRng } from "../../src/core/rng.ts";
import {
  DiscreteSampler,
  fitZipfAlpha,
  gamma,
  gammaInterArrival,
  poisson,
  stochasticRound,
  subRng,
  weibull,
  zipfShares,
} from "../../src/workload/samplers.ts";

function moments(n: number, draw: () => number): { mean: number; cv: number; variance: number } {
  let s = 0;
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const x = draw();
    s += x;
    ss += x * x;
  }
  const mean = s / n;
  const variance = ss / n - mean * mean;
  return { mean, cv: Math.sqrt(variance) / mean, variance };
}

const within = (actual: number, expected: number, relTol: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= relTol * Math.abs(expected), `${what}: ${actual} not within ${relTol * 100}% of ${expected}`);

test("gamma: mean kθ and CV 1/√k across shapes (incl. ServeGen's tiny shapes)", () => {
  const rng = new SeededRng(11);
  for (const [k, theta, n, tol] of [
    [4, 0.5, 100_000, 0.02],
    [1, 2, 100_000, 0.02],
    [0.5, 1, 100_000, 0.03],
    [0.25, 3, 200_000, 0.05],
  ] as const) {
    const m = moments(n, () => gamma(rng, k, theta));
    within(m.mean, k * theta, tol, `gamma(${k}) mean`);
    within(m.cv, 1 / Math.sqrt(k), tol * 1.5, `gamma(${k}) cv`);
  }
  // shape 0.04: CV 5; the mean still has to hold (heavy tail, so a looser bound)
  const m = moments(200_000, () => gamma(rng, 0.04, 100));
  within(m.mean, 4, 0.1, "gamma(0.04) mean");
  for (let i = 0; i < 1000; i++) assert.ok(gamma(rng, 0.03, 1) >= 0);
});

test("gamma inter-arrivals hit the requested rate and CV", () => {
  const rng = new SeededRng(5);
  for (const cv of [0.5, 1, 2]) {
    const m = moments(200_000, () => gammaInterArrival(rng, 4, cv));
    within(m.mean, 0.25, 0.02, `iat mean cv=${cv}`);
    within(m.cv, cv, 0.04, `iat cv=${cv}`);
  }
});

test("weibull mean matches λΓ(1+1/k)", () => {
  const rng = new SeededRng(2);
  // Γ(1 + 1/2) = √π/2, Γ(1 + 1) = 1
  within(moments(100_000, () => weibull(rng, 2, 3)).mean, (3 * Math.sqrt(Math.PI)) / 2, 0.02, "weibull(2)");
  within(moments(100_000, () => weibull(rng, 1, 3)).mean, 3, 0.02, "weibull(1)");
});

test("poisson mean = variance = λ (both algorithms)", () => {
  const rng = new SeededRng(9);
  for (const lam of [0.3, 5, 29, 31, 250]) {
    const m = moments(60_000, () => poisson(rng, lam));
    within(m.mean, lam, 0.03, `poisson(${lam}) mean`);
    within(m.variance, lam, 0.06, `poisson(${lam}) variance`);
  }
  assert.equal(poisson(rng, 0), 0);
});

test("discrete sampler frequencies, zipf shares and the MLE fit", () => {
  const rng = new SeededRng(1);
  const d = new DiscreteSampler([10, 20, 30], [1, 2, 7]);
  const counts = [0, 0, 0];
  for (let i = 0; i < 100_000; i++) counts[d.sampleIndex(rng)]!++;
  within(counts[2]! / 100_000, 0.7, 0.02, "p(30)");
  within(d.mean(), 26, 1e-12, "mean");
  const p = zipfShares(20, 1.3);
  within(p.reduce((s, x) => s + x, 0), 1, 1e-12, "shares sum");
  // exact expected counts are fit back exactly; sampled counts within tolerance
  within(fitZipfAlpha(Array.from(p, (x) => x * 1e6)), 1.3, 1e-4, "fit of exact shares");
  const z = new DiscreteSampler(p.map((_, i) => i), p);
  const c = new Array<number>(20).fill(0);
  for (let i = 0; i < 50_000; i++) c[z.sampleIndex(rng)]!++;
  assert.ok(Math.abs(fitZipfAlpha(c) - 1.3) < 0.05, `fit ${fitZipfAlpha(c)}`);
});

test("stochastic rounding keeps the expectation; streams are reproducible and distinct", () => {
  const rng = new SeededRng(4);
  let s = 0;
  for (let i = 0; i < 100_000; i++) s += stochasticRound(rng, 0.3);
  within(s / 100_000, 0.3, 0.02, "E[round(0.3)]");
  const a = subRng(7, 1, 2);
  const b = subRng(7, 1, 2);
  const c = subRng(7, 2, 1);
  const xs = [a.next(), a.next()];
  assert.deepEqual([b.next(), b.next()], xs);
  assert.notDeepEqual([c.next(), c.next()], xs);
});
