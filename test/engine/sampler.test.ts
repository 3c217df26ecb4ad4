import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Sampler, drawUniform, validateSampling } from "../../src/engine/sampler/index.ts";
import { GREEDY, type SamplingParams } from "../../src/core/records.ts";
import { requestId } from "../../src/core/ids.ts";

const R = requestId(7);
const params = (p: Partial<SamplingParams>): SamplingParams => ({ ...GREEDY, ...p });
const logits = (xs: number[]): Float32Array => Float32Array.from(xs);

function empirical(s: Sampler, l: Float32Array, p: Partial<SamplingParams>, n: number): Map<number, number> {
  const hist = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const t = s.sample(R, l, params({ temperature: 1, ...p, seed: 1234 }), i, null).token;
    hist.set(t, (hist.get(t) ?? 0) + 1);
  }
  return hist;
}

test("greedy takes the argmax, lowest id on ties, and does not modify the logits", () => {
  const s = new Sampler();
  const l = logits([0.1, 3, -2, 3, 1]);
  const r = s.sample(R, l, GREEDY, 0, null);
  assert.equal(r.token, 1);
  assert.equal(r.requestId, R);
  assert.ok(Number.isNaN(r.logprob));
  assert.equal(r.topTokens, null);
  assert.deepEqual([...l], [...logits([0.1, 3, -2, 3, 1])]);
});

test("repetition penalty follows llama.cpp: divide positive, multiply negative, once per distinct token", () => {
  const s = new Sampler();
  // token 0: 2 -> 2/2 = 1 < 1.5 (token 2 wins); token 1: -1 -> -2.
  const l = logits([2, -1, 1.5]);
  assert.equal(s.sample(R, l, params({ repetitionPenalty: 2 }), 0, Int32Array.from([0, 0, 0, 1])).token, 2);
  const lp = s.sample(R, l, params({ repetitionPenalty: 2, logprobs: true, topLogprobs: 3 }), 0, Int32Array.from([0, 0, 0, 1]));
  // distribution over [1, -2, 1.5]
  const lse = Math.log(Math.exp(1) + Math.exp(-2) + Math.exp(1.5));
  assert.deepEqual([...lp.topTokens!], [2, 0, 1]);
  assert.ok(Math.abs(lp.topLogprobs![1]! - (1 - lse)) < 1e-6);
  assert.ok(Math.abs(lp.topLogprobs![2]! - (-2 - lse)) < 1e-6);
});

test("frequency and presence penalties follow OpenAI: count × freq + presence", () => {
  const s = new Sampler();
  const l = logits([5, 4, 0]);
  const pen = Int32Array.from([0, 0, 0, 1]);
  const r = s.sample(R, l, params({ frequencyPenalty: 0.5, presencePenalty: 1, logprobs: true, topLogprobs: 3 }), 0, pen);
  // 5 - 3*0.5 - 1 = 2.5; 4 - 0.5 - 1 = 2.5; 0
  assert.deepEqual([...r.topTokens!], [0, 1, 2]);
  assert.ok(Math.abs(r.topLogprobs![0]! - r.topLogprobs![1]!) < 1e-6);
  // negative penalties encourage repetition
  assert.equal(s.sample(R, logits([1, 1.2]), params({ presencePenalty: -1 }), 0, Int32Array.from([0])).token, 0);
  // out-of-vocabulary penalty ids are ignored; counts are reset between calls
  assert.equal(s.sample(R, logits([1, 1.2]), GREEDY, 0, Int32Array.from([0, 99, -3])).token, 1);
  assert.equal(s.sample(R, logits([1, 1.2]), params({ presencePenalty: 2 }), 0, Int32Array.from([5])).token, 1);
});

test("top-k keeps only the k most likely", () => {
  const s = new Sampler();
  const l = logits([0, 1, 2, 3, 4, 5, 6, 7]);
  const hist = empirical(s, l, { topK: 3 }, 600);
  assert.deepEqual([...hist.keys()].sort(), [5, 6, 7]);
  assert.deepEqual([...empirical(s, l, { topK: 1 }, 50).keys()], [7]);
});

test("top-p keeps the smallest nucleus reaching p", () => {
  const s = new Sampler();
  // probs ∝ [8, 4, 2, 1, 1] / 16 = .5 .25 .125 .0625 .0625
  const l = logits([Math.log(8), Math.log(4), Math.log(2), 0, 0]);
  assert.deepEqual([...empirical(s, l, { topP: 0.5 }, 100).keys()], [0]);
  assert.deepEqual([...empirical(s, l, { topP: 0.7 }, 400).keys()].sort(), [0, 1]);
  assert.deepEqual([...empirical(s, l, { topP: 0.8 }, 600).keys()].sort(), [0, 1, 2]);
  // with top-k first: renormalised over the survivors (.8/.2 for k=2 with p=0.75 keeps both? 8/12 = .67 < .75)
  assert.deepEqual([...empirical(s, l, { topK: 2, topP: 0.75 }, 400).keys()].sort(), [0, 1]);
  assert.deepEqual([...empirical(s, l, { topK: 2, topP: 0.6 }, 100).keys()].sort(), [0]);
});

test("min-p drops tokens below minP × p_max", () => {
  const s = new Sampler();
  const l = logits([Math.log(8), Math.log(4), Math.log(2), 0]);
  assert.deepEqual([...empirical(s, l, { minP: 0.3 }, 400).keys()].sort(), [0, 1]);
  assert.deepEqual([...empirical(s, l, { minP: 0.2 }, 600).keys()].sort(), [0, 1, 2]);
  assert.deepEqual([...empirical(s, l, { minP: 1 }, 100).keys()], [0]);
});

test("temperature sharpens and flattens; frequencies follow the softmax", () => {
  const s = new Sampler();
  const l = logits([0, Math.log(3)]); // p = .25 / .75 at T = 1
  const n = 4000;
  const h1 = empirical(s, l, { temperature: 1 }, n);
  assert.ok(Math.abs((h1.get(1) ?? 0) / n - 0.75) < 0.03, `T=1 freq ${(h1.get(1) ?? 0) / n}`);
  const hCold = empirical(s, l, { temperature: 0.25 }, n); // p1 = 81/82
  assert.ok((hCold.get(1) ?? 0) / n > 0.97);
  const hHot = empirical(s, l, { temperature: 100 }, n);
  assert.ok(Math.abs((hHot.get(1) ?? 0) / n - 0.5) < 0.04);
});

test("the draw depends only on (seed, outputIndex)", () => {
  const s1 = new Sampler();
  const s2 = new Sampler(4);
  const l = logits(Array.from({ length: 64 }, (_, i) => Math.sin(i)));
  const p = params({ temperature: 1.3, seed: 42 });
  const a = Array.from({ length: 50 }, (_, i) => s1.sample(R, l, p, i, null).token);
  // different order of indices and a fresh sampler give the same tokens per index
  const b: number[] = [];
  for (let i = 49; i >= 0; i--) b[i] = s2.sample(R, l, p, i, null).token;
  assert.deepEqual(a, b);
  const c = Array.from({ length: 50 }, (_, i) => s1.sample(R, l, { ...p, seed: 43 }, i, null).token);
  assert.notDeepEqual(a, c);
  assert.equal(drawUniform(2 ** 40 + 5, 3), drawUniform(2 ** 40 + 5, 3));
  assert.notEqual(drawUniform(2 ** 40 + 5, 3), drawUniform(5, 3));
  assert.notEqual(drawUniform(-1, 0), drawUniform(1, 0));
});

test("logprobs: sampled token's logprob, top-n sorted best first, probabilities sum to 1", () => {
  const s = new Sampler();
  const l = logits(Array.from({ length: 300 }, (_, i) => Math.cos(i * 0.37) * 4));
  const r = s.sample(R, l, params({ temperature: 0.7, seed: 9, logprobs: true, topLogprobs: 20 }), 0, null);
  const z = [...l].map((x) => x / 0.7);
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
  assert.ok(Math.abs(r.logprob - (z[r.token]! - lse)) < 1e-5);
  const order = z.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 20).map((x) => x[1]);
  assert.deepEqual([...r.topTokens!], order);
  for (let i = 1; i < 20; i++) assert.ok(r.topLogprobs![i - 1]! >= r.topLogprobs![i]!);
  const all = s.sample(R, logits([1, 2, 3]), params({ topLogprobs: 3 }), 0, null);
  assert.ok(Math.abs([...all.topLogprobs!].reduce((a, x) => a + Math.exp(x), 0) - 1) < 1e-6);
  // greedy reports the temperature-1 distribution
  assert.ok(Math.abs(all.logprob - (3 - Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)))) < 1e-6);
  assert.equal(all.token, 2);
});

test("property: top-k sampling always returns one of the k largest; top-p the nucleus", () => {
  fc.assert(
    fc.property(
      fc.array(fc.float({ min: -20, max: 20, noNaN: true }), { minLength: 1, maxLength: 80 }),
      fc.integer({ min: 1, max: 10 }),
      fc.integer({ min: 0, max: 1000 }),
      (xs, k, seed) => {
        const s = new Sampler();
        const l = Float32Array.from(xs);
        const ranked = [...l].map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map((x) => x[1]);
        const t = s.sample(R, l, params({ temperature: 1, topK: k, seed }), seed, null).token;
        assert.ok(ranked.slice(0, k).includes(t));
        const g = s.sample(R, l, params({ temperature: 1, topK: 1, seed }), seed, null).token;
        assert.equal(g, ranked[0]);
        const tp = s.sample(R, l, params({ temperature: 1, topP: 1e-6, seed }), seed, null).token;
        assert.equal(tp, ranked[0]);
      },
    ),
    { numRuns: 200, seed: 1 },
  );
});

test("validateSampling rejects bad values with PRISM_SAMPLING_INVALID naming the parameter", () => {
  validateSampling(GREEDY);
  validateSampling(params({ temperature: 2, topK: 40, topP: 0.9, minP: 0.05, repetitionPenalty: 1.1, seed: -5, topLogprobs: 20, logprobs: true }));
  const cases: [Partial<SamplingParams> | Record<string, unknown>, string][] = [
    [{ temperature: NaN }, "temperature"],
    [{ temperature: -0.1 }, "temperature"],
    [{ temperature: Infinity }, "temperature"],
    [{ topK: -1 }, "topK"],
    [{ topK: 1.5 }, "topK"],
    [{ topP: 0 }, "topP"],
    [{ topP: 1.01 }, "topP"],
    [{ minP: -0.1 }, "minP"],
    [{ minP: 2 }, "minP"],
    [{ repetitionPenalty: 0 }, "repetitionPenalty"],
    [{ frequencyPenalty: 2.5 }, "frequencyPenalty"],
    [{ presencePenalty: -3 }, "presencePenalty"],
    [{ seed: 0.5 }, "seed"],
    [{ topLogprobs: 21 }, "topLogprobs"],
    [{ logprobs: 1 }, "logprobs"],
    [{ temperature: "1" }, "temperature"],
  ];
  for (const [p, name] of cases) {
    assert.throws(() => validateSampling({ ...GREEDY, ...p } as SamplingParams), (e: unknown) => {
      const err = e as { code: string; details: { param: string } };
      return err.code === "PRISM_SAMPLING_INVALID" && err.details.param === name;
    }, name);
  }
});
