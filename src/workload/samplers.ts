import { SeededRng, type Rng } from "../core/rng.ts";

/**
 * Samplers for workload generation. All take an injected Rng so every trace is reproducible from its seed.
 * Kept here (not in a library) because the generators need exact, seeded, dependency-free draws.
 */

/** Standard normal by the Marsaglia polar method (no trig, no cache, so draws stay a pure function of the stream). */
export function normal(rng: Rng): number {
  for (;;) {
    const u = 2 * rng.next() - 1;
    const v = 2 * rng.next() - 1;
    const s = u * u + v * v;
    if (s > 0 && s < 1) return u * Math.sqrt((-2 * Math.log(s)) / s);
  }
}

/**
 * Gamma(shape k, scale θ), Marsaglia–Tsang. For k < 1 the boost X = G(k+1)·U^(1/k) is done in log space:
 * ServeGen fits shapes as small as 0.03, where U^(1/k) underflows to 0 in linear space.
 */
export function gamma(rng: Rng, shape: number, scale: number): number {
  if (!(shape > 0) || !(scale > 0)) throw new RangeError(`gamma needs shape > 0 and scale > 0 (got ${shape}, ${scale})`);
  if (shape < 1) {
    const logG = Math.log(marsagliaTsang(rng, shape + 1));
    const u = 1 - rng.next(); // (0, 1]
    return Math.exp(logG + Math.log(u) / shape) * scale;
  }
  return marsagliaTsang(rng, shape) * scale;
}

function marsagliaTsang(rng: Rng, k: number): number {
  const d = k - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    const x2 = x * x;
    if (u < 1 - 0.0331 * x2 * x2) return d * v;
    if (u > 0 && Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Inter-arrival gap of a Gamma renewal process with the given rate and coefficient of variation (cv 1 = Poisson). */
export function gammaInterArrival(rng: Rng, ratePerS: number, cv: number): number {
  if (!(ratePerS > 0)) throw new RangeError(`rate must be > 0 (got ${ratePerS})`);
  if (!(cv > 0)) throw new RangeError(`cv must be > 0 (got ${cv})`);
  const shape = 1 / (cv * cv);
  return gamma(rng, shape, 1 / (ratePerS * shape));
}

/** Weibull(shape k, scale λ) by inversion. */
export function weibull(rng: Rng, shape: number, scale: number): number {
  if (!(shape > 0) || !(scale > 0)) throw new RangeError(`weibull needs shape > 0 and scale > 0 (got ${shape}, ${scale})`);
  return scale * Math.pow(-Math.log(1 - rng.next()), 1 / shape);
}

/** Poisson(λ): Knuth's product method below 30, Hörmann's PTRS (transformed rejection) above. */
export function poisson(rng: Rng, lambda: number): number {
  if (!(lambda >= 0)) throw new RangeError(`poisson needs λ >= 0 (got ${lambda})`);
  if (lambda === 0) return 0;
  if (lambda < 30) {
    const limit = Math.exp(-lambda);
    let k = 0;
    let p = rng.next();
    while (p > limit) {
      k++;
      p *= rng.next();
    }
    return k;
  }
  const slam = Math.sqrt(lambda);
  const loglam = Math.log(lambda);
  const b = 0.931 + 2.53 * slam;
  const a = -0.059 + 0.02483 * b;
  const invalpha = 1.1239 + 1.1328 / (b - 3.4);
  const vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const u = rng.next() - 0.5;
    const v = rng.next();
    const us = 0.5 - Math.abs(u);
    const k = Math.floor(((2 * a) / us + b) * u + lambda + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (Math.log(v) + Math.log(invalpha) - Math.log(a / (us * us) + b) <= -lambda + k * loglam - logFactorial(k)) return k;
  }
}

function logFactorial(k: number): number {
  if (k < 2) return 0;
  if (k < 64) {
    let s = 0;
    for (let i = 2; i <= k; i++) s += Math.log(i);
    return s;
  }
  // Stirling series; error < 1e-10 for k >= 64
  const x = k + 1;
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + 1 / (12 * x) - 1 / (360 * x * x * x);
}

/** floor(x) plus one with probability frac(x): an integer count whose expectation is exactly x. */
export function stochasticRound(rng: Rng, x: number): number {
  const f = Math.floor(x);
  return rng.next() < x - f ? f + 1 : f;
}

/** Draws from a finite distribution by inverse CDF (binary search over the cumulative weights). */
export class DiscreteSampler {
  readonly values: Float64Array;
  private readonly cumulative: Float64Array;
  private readonly total: number;

  constructor(values: ArrayLike<number>, weights: ArrayLike<number>) {
    if (values.length !== weights.length) throw new RangeError(`values (${values.length}) and weights (${weights.length}) differ in length`);
    if (values.length === 0) throw new RangeError("a discrete distribution needs at least one value");
    this.values = Float64Array.from(values);
    this.cumulative = new Float64Array(weights.length);
    let s = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i]!;
      if (!(w >= 0) || !Number.isFinite(w)) throw new RangeError(`weight ${i} is ${w}; weights must be finite and >= 0`);
      s += w;
      this.cumulative[i] = s;
    }
    if (!(s > 0)) throw new RangeError("weights sum to zero");
    this.total = s;
  }

  sampleIndex(rng: Rng): number {
    const target = rng.next() * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cumulative[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Probability of index i (its weight over the total). */
  probability(i: number): number {
    const c = this.cumulative[i];
    if (c === undefined) return 0;
    return (c - (i > 0 ? this.cumulative[i - 1]! : 0)) / this.total;
  }

  sample(rng: Rng): number {
    return this.values[this.sampleIndex(rng)]!;
  }

  mean(): number {
    let s = 0;
    let prev = 0;
    for (let i = 0; i < this.values.length; i++) {
      const c = this.cumulative[i]!;
      s += this.values[i]! * (c - prev);
      prev = c;
    }
    return s / this.total;
  }
}

/** Zipf popularity shares p_i ∝ (i+1)^-α, summing to 1, most popular first. */
export function zipfShares(n: number, alpha: number): Float64Array {
  if (!(n >= 1) || !Number.isInteger(n)) throw new RangeError(`zipf needs a positive integer count (got ${n})`);
  if (!(alpha >= 0)) throw new RangeError(`zipf alpha must be >= 0 (got ${alpha})`);
  const p = new Float64Array(n);
  let s = 0;
  for (let i = 0; i < n; i++) {
    p[i] = Math.pow(i + 1, -alpha);
    s += p[i]!;
  }
  for (let i = 0; i < n; i++) p[i] = p[i]! / s;
  return p;
}

/**
 * Maximum-likelihood Zipf exponent of per-item counts (ranked by count, descending; zero counts keep their rank).
 * Solves Σ c_r ln r / N = Σ r^-α ln r / Σ r^-α, whose right side falls monotonically in α, by bisection.
 * Returns 0 for fewer than two items or no counts.
 */
export function fitZipfAlpha(counts: ArrayLike<number>): number {
  const c = Array.from(counts).sort((a, b) => b - a);
  const n = c.length;
  let total = 0;
  let weighted = 0;
  for (let r = 1; r <= n; r++) {
    total += c[r - 1]!;
    weighted += c[r - 1]! * Math.log(r);
  }
  if (n < 2 || !(total > 0)) return 0;
  const target = weighted / total;
  const meanLogRank = (alpha: number): number => {
    let h = 0;
    let hl = 0;
    for (let r = 1; r <= n; r++) {
      const w = Math.pow(r, -alpha);
      h += w;
      hl += w * Math.log(r);
    }
    return hl / h;
  };
  let lo = 0;
  let hi = 20;
  if (meanLogRank(lo) <= target) return 0;
  if (meanLogRank(hi) >= target) return hi;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (meanLogRank(mid) > target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** An independent, reproducible stream per (seed, keys...): e.g. subRng(seed, model, purpose). Order of keys matters. */
export function subRng(seed: number, ...keys: number[]): SeededRng {
  let h = mix32((seed >>> 0) ^ 0x243f6a88);
  for (const k of keys) h = mix32((h + 0x9e3779b9 + Math.imul(k | 0, 0x85ebca6b)) | 0);
  return new SeededRng(h);
}

function mix32(x: number): number {
  let z = x | 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d);
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b);
  return (z ^ (z >>> 16)) >>> 0;
}
