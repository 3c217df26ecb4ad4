import { test } from "node:test";
import assert from "node:assert/strict";
import { describeTrace } from "../../src/workload/describe.ts";
import { fitZipfAlpha } from "../../src/workload/samplers.ts";
import { generateArena } from "../../src/workload/generators/arena.ts";
import { type GenerateSpec, generateTrace, provenanceComments } from "../../src/workload/generators/index.ts";
import { generateServegen, selectByAlpha } from "../../src/workload/generators/servegen.ts";
import { generateSplit } from "../../src/workload/generators/split.ts";
import { generateSynthetic } from "../../src/workload/generators/synthetic.ts";
import { parseLengthSpec } from "../../src/workload/generators/lengths.ts";
import { readServegenClient } from "../../src/workload/sources/servegen.ts";
import { formatTrace, parseTrace, validateTrace, type Trace } from "../../src/workload/trace-format.ts";

function countsPerModel(t: Trace): number[] {
  const c = new Array<number>(t.modelNames.length).fill(0);
  for (let i = 0; i < t.numRequests; i++) c[t.modelIndex[i]!]!++;
  return c;
}

function iatCv(t: Trace, model: number): number {
  let prev = NaN;
  let s = 0;
  let ss = 0;
  let n = 0;
  for (let i = 0; i < t.numRequests; i++) {
    if (t.modelIndex[i] !== model) continue;
    const a = t.arrivalS[i]!;
    if (!Number.isNaN(prev)) {
      s += a - prev;
      ss += (a - prev) ** 2;
      n++;
    }
    prev = a;
  }
  const m = s / n;
  return Math.sqrt(ss / n - m * m) / m;
}

const within = (actual: number, expected: number, relTol: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= relTol * Math.abs(expected), `${what}: ${actual} not within ${relTol * 100}% of ${expected}`);

const SPECS: GenerateSpec[] = [
  { kind: "synthetic", seed: 1, numModels: 5, durationS: 200, totalRateRps: 10, popularity: { kind: "zipf", alpha: 1 }, cv: 2, lengths: { kind: "uniform", input: [8, 512], output: [8, 512] } },
  { kind: "servegen", seed: 1, pool: "deepseek-r1", numModels: 4, durationS: 300, compression: 20, totalRateRps: 3 },
  { kind: "arena", seed: 1, numModels: 6, timeScale: 0.25 },
  { kind: "split", seed: 1, source: "azure-code", numModels: 4, popularity: { kind: "zipf", alpha: 1.2 }, mode: "mix", durationS: 300 },
];

test("every generator is deterministic for a seed and writes a valid, sorted trace", () => {
  for (const spec of SPECS) {
    const a = generateTrace(spec);
    const b = generateTrace(spec);
    validateTrace(a.trace);
    assert.ok(a.trace.numRequests > 50, `${spec.kind}: ${a.trace.numRequests} requests`);
    const text = formatTrace(a.trace, provenanceComments(a));
    assert.equal(formatTrace(b.trace, provenanceComments(b)), text, `${spec.kind} not deterministic`);
    assert.equal(parseTrace(text).numRequests, a.trace.numRequests);
    for (let i = 0; i < a.trace.numRequests; i++) {
      assert.ok(a.trace.inputTokens[i]! >= 1 && a.trace.outputTokens[i]! >= 1);
    }
  }
  // a different seed changes synthetic and servegen output
  for (const spec of SPECS.slice(0, 2)) {
    const a = generateTrace(spec);
    const c = generateTrace({ ...spec, seed: 2 });
    assert.notEqual(formatTrace(c.trace), formatTrace(a.trace), spec.kind);
  }
});

test("synthetic: total rate within 5%, Zipf exponent and Gamma CV recovered", () => {
  const g = generateSynthetic({
    seed: 42,
    numModels: 12,
    durationS: 4000,
    totalRateRps: 20,
    popularity: { kind: "zipf", alpha: 1.3 },
    cv: 2,
    lengths: { kind: "fixed", input: 16, output: 8 },
  });
  const t = g.trace;
  within(t.numRequests / 4000, 20, 0.05, "total rate");
  assert.ok(Math.abs(fitZipfAlpha(countsPerModel(t)) - 1.3) < 0.08, `alpha ${fitZipfAlpha(countsPerModel(t))}`);
  within(iatCv(t, 0), 2, 0.12, "CV of the top model");
  within(iatCv(t, 1), 2, 0.15, "CV of model 1");
  assert.ok(t.arrivalS[t.numRequests - 1]! < 4000);
  // Poisson
  const p = generateSynthetic({ seed: 1, numModels: 1, durationS: 5000, totalRateRps: 4, popularity: { kind: "zipf", alpha: 1 }, cv: 1, lengths: { kind: "fixed", input: 1, output: 1 } });
  within(iatCv(p.trace, 0), 1, 0.04, "Poisson CV");
});

test("synthetic: on/off drops the off phases; envelope keeps the mean rate; limits clamp", () => {
  const base = { seed: 3, numModels: 4, durationS: 2000, totalRateRps: 20, popularity: { kind: "weights", weights: [1, 1, 1, 1] }, cv: 1, lengths: { kind: "fixed", input: 900, output: 700 } } as const;
  const g = generateSynthetic({ ...base, onOff: { fraction: 0.5, periodS: 100, offFraction: 0.5 } });
  const c = countsPerModel(g.trace);
  within(c[0]!, 10_000, 0.05, "always-on model");
  within(c[3]!, 5_000, 0.06, "on/off model keeps half");
  // on/off models send nothing in their off phase: model 2 (phase 0) is off in [0, 50) of every 100 s
  for (let i = 0; i < g.trace.numRequests; i++) {
    if (g.trace.modelIndex[i] === 2) assert.ok(g.trace.arrivalS[i]! % 100 >= 50);
  }
  const e = generateSynthetic({ ...base, envelope: { pool: "m-large", compression: 60, startS: 0 }, limits: { maxInput: 512, maxOutput: 128 } });
  within(e.trace.numRequests / 2000, 20, 0.05, "rate under the envelope");
  assert.ok(describeTrace(e.trace, { binS: 10 }).overall.peakToMean > 1.3);
  assert.ok(e.trace.inputTokens.every((x) => x === 512) && e.trace.outputTokens.every((x) => x === 128));
  assert.ok(e.notes.some((n) => /clipped/.test(n)));
});

test("servegen: target rate within 5%, top-N ranking, idle windows send nothing", () => {
  const g = generateServegen({ seed: 5, pool: "m-small", numModels: 8, durationS: 2400, compression: 30, totalRateRps: 8 });
  within(g.trace.numRequests / 2400, 8, 0.05, "servegen total rate");
  const c = countsPerModel(g.trace);
  assert.ok(c[0]! >= c[7]!, `ranked: ${c.join(",")}`);
  // windows where a chosen client is idle hold no arrivals of its model
  const clients = g.params["clients"] as number[];
  let idleWindows = 0;
  clients.forEach((id, m) => {
    const ct = readServegenClient("m-small", id);
    for (let w = 0; w < 120; w++) {
      if (ct.patterns[w]!.kind !== "idle") continue;
      idleWindows++;
      for (let i = 0; i < g.trace.numRequests; i++) {
        const a = g.trace.arrivalS[i]!;
        if (g.trace.modelIndex[i] === m) assert.ok(a < w * 20 || a >= (w + 1) * 20, `model ${m} sent in idle window ${w}`);
      }
    }
  });
  assert.ok(idleWindows > 0, "the chosen clients have idle windows");
  assert.ok(g.notes.some((n) => n.includes("borrowed")), "heavy m-small clients lack PMFs and borrow");
});

test("servegen: target-alpha selection and rate scale", () => {
  assert.deepEqual(selectByAlpha([8, 4, 2.66, 2, 1.6], 5, 1), [0, 1, 2, 3, 4]);
  assert.deepEqual(selectByAlpha([100, 8, 7, 4, 3, 2.66, 2], 3, 1), [1, 3, 5]);
  const g = generateServegen({ seed: 1, pool: "deepseek-r1", numModels: 5, durationS: 600, compression: 10, totalRateRps: 5, selectAlpha: 1 });
  const alpha = fitZipfAlpha(countsPerModel(g.trace));
  assert.ok(Math.abs(alpha - 1) < 0.15, `alpha ${alpha}`);
  assert.throws(() => generateServegen({ seed: 1, pool: "deepseek-r1", numModels: 2, durationS: 90000 }), /needs .* windows/);
});

test("arena: exact counts under time scaling, replication and subsets", () => {
  const a = generateArena({ seed: 0, timeScale: 0.5 });
  assert.equal(a.trace.numRequests, 1500);
  assert.equal(a.trace.modelNames.length, 27);
  assert.equal(countsPerModel(a.trace)[0], 296);
  assert.ok(Math.abs(a.trace.arrivalS[a.trace.numRequests - 1]! - 300) < 1e-9);
  const b = generateArena({ seed: 0, adapterIds: [2, 14, 3], replicate: 2 });
  assert.deepEqual(countsPerModel(b.trace), [592, 44, 44]);
  // tiling: two passes
  const c = generateArena({ seed: 0, numModels: 3, durationS: 1201 });
  assert.equal(c.trace.numRequests, 2 * (296 + 262 + 199));
  // --rate picks the time scale
  const r = generateArena({ seed: 0, totalRateRps: 5 });
  assert.ok(Math.abs(r.trace.arrivalS[r.trace.numRequests - 1]! - 300) < 1e-6);
});

test("split: mix keeps every source request; slices thin by p_i/p_1; too-high rates are refused", () => {
  const m = generateSplit({ seed: 2, source: "azure-code", numModels: 5, popularity: { kind: "zipf", alpha: 1 }, mode: "mix" });
  assert.equal(m.trace.numRequests, 8819);
  assert.ok(Math.abs(fitZipfAlpha(countsPerModel(m.trace)) - 1) < 0.1);
  const s = generateSplit({ seed: 2, source: "azure-conv", numModels: 4, popularity: { kind: "zipf", alpha: 1 }, mode: "slices" });
  // expected total = N_src · Σ p_i/p_1 = 19366 · (1 + 1/2 + 1/3 + 1/4)
  within(s.trace.numRequests, 19366 * (25 / 12), 0.03, "slices total");
  const t = generateSplit({ seed: 2, source: "mooncake-synthetic", numModels: 3, popularity: { kind: "zipf", alpha: 1 }, mode: "mix", totalRateRps: 1, durationS: 1000 });
  within(t.trace.numRequests / 1000, 1, 0.08, "thinned rate");
  assert.throws(
    () => generateSplit({ seed: 2, source: "azure-code", numModels: 3, popularity: { kind: "zipf", alpha: 1 }, mode: "mix", totalRateRps: 100 }),
    /use --time-scale/,
  );
});

test("length specs parse and errors are usage errors", () => {
  assert.deepEqual(parseLengthSpec("uniform:8-512"), { kind: "uniform", input: [8, 512], output: [8, 512] });
  assert.deepEqual(parseLengthSpec("fixed:128,64"), { kind: "fixed", input: 128, output: 64 });
  assert.deepEqual(parseLengthSpec("sharegpt"), { kind: "dataset", dataset: "sharegpt" });
  assert.throws(() => parseLengthSpec("uniform:9-3"), (e: { code: string }) => e.code === "PRISM_CLI_USAGE");
  assert.throws(() => parseLengthSpec("gpt4"), /expected source/);
});
