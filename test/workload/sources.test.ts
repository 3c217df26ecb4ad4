// Readers on the real files in ../shared/traces. These fail (never skip) when the data is missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readArenaTrace } from "../../src/workload/sources/arena.ts";
import { defaultTracesDir, traceDataPath } from "../../src/workload/sources/paths.ts";
import { readPopularity } from "../../src/workload/sources/popularity.ts";
import {
  listServegenClients,
  parsePythonPmf,
  readPoolEnvelope,
  readServegenClient,
  readServegenLengths,
} from "../../src/workload/sources/servegen.ts";
import { naiveTimestampDiffS, readAzureTrace, readLengthPairs, readMooncakeTrace } from "../../src/workload/sources/single-service.ts";
import { fitZipfAlpha } from "../../src/workload/samplers.ts";
import { SeededRng } from "../../src/core/rng.ts";

const DIR = defaultTracesDir();

test("../shared/traces is present (the data tests below need it)", () => {
  assert.ok(existsSync(join(DIR, "SOURCES.md")), `missing trace data at ${DIR}: expected ../shared/traces beside the repository`);
});

test("missing data fails loudly with the path", () => {
  assert.throws(() => readArenaTrace("/nonexistent-traces"), (e: { code: string; message: string }) => {
    assert.equal(e.code, "PRISM_FILE_NOT_FOUND");
    assert.match(e.message, /nonexistent-traces.*real_trace_27models_600s\.csv/);
    return true;
  });
  assert.throws(() => listServegenClients("m-large", "/nonexistent-traces"), /ServeGen pool directory not found/);
  assert.throws(() => traceDataPath(undefined, "nope.csv"), /trace data file not found/);
});

test("Azure LLM 2023: rows, span, rate as documented; timestamps parsed by hand to 100 ns", () => {
  assert.ok(Math.abs(naiveTimestampDiffS("2023-11-16 18:17:03.9799600", "2023-11-16 18:17:03") - 0.97996) < 1e-9);
  assert.ok(Math.abs(naiveTimestampDiffS("2023-11-17 00:00:00.0000001", "2023-11-16 23:59:59") - 1.0000001) < 1e-9);
  assert.ok(Number.isNaN(naiveTimestampDiffS("16/11/2023", "2023-11-16 23:59:59")));
  const code = readAzureTrace("code");
  const conv = readAzureTrace("conv");
  assert.equal(code.numRequests, 8819);
  assert.equal(conv.numRequests, 19366);
  assert.equal(Math.round(code.spanS), 3436);
  assert.equal(Math.round(conv.spanS), 3502);
  assert.equal(code.arrivalS[0], 0);
  assert.equal(code.inputTokens[0], 4808);
  assert.equal(code.outputTokens[0], 10);
  assert.ok(Math.abs(code.arrivalS[1]! - 0.052) < 1e-6);
});

test("Mooncake: ms timestamps to seconds", () => {
  const c = readMooncakeTrace("conversation");
  const s = readMooncakeTrace("synthetic");
  assert.equal(c.numRequests, 12031);
  assert.equal(s.numRequests, 3993);
  assert.equal(c.spanS, 3536.999);
  assert.equal(c.inputTokens[0], 6758);
  assert.equal(c.outputTokens[0], 500);
});

test("Arena 27-model trace: per-model counts as documented", () => {
  const t = readArenaTrace();
  assert.equal(t.numRequests, 1500);
  assert.equal(t.spanS, 600);
  const counts = new Map<number, number>();
  for (let i = 0; i < t.numRequests; i++) counts.set(t.modelId[i]!, (counts.get(t.modelId[i]!) ?? 0) + 1);
  assert.equal(counts.size, 27);
  assert.equal(counts.get(2), 296);
  assert.equal(counts.get(10), 262);
  assert.equal(counts.get(26), 1);
  assert.ok(Math.abs(fitZipfAlpha([...counts.values()]) - 1.04) < 0.02);
});

test("length distributions and popularity tables", () => {
  assert.equal(readLengthPairs("sharegpt").inputTokens.length, 30731);
  assert.equal(readLengthPairs("arxiv").inputTokens.length, 28257);
  assert.equal(readLengthPairs("bwb").outputTokens.length, 33768);
  const l = readPopularity("lmsys125");
  assert.equal(l.names[0], "vicuna-13b");
  assert.equal(l.names.length, 25);
  assert.ok(Math.abs(l.shares[0]! - 0.3626) < 0.001);
  assert.equal(readPopularity("lmsys-day55").names.length, 16);
  const g = readPopularity("gentd26");
  // 86 named base models (+ rows with an empty id, which workloads.md counts as an 87th)
  assert.equal(g.names.length, 86);
  assert.ok(Math.abs(g.shares[0]! - 0.307) < 0.005);
  assert.ok(Math.abs(fitZipfAlpha(g.shares.map((x) => x * 26823)) - 1.43) < 0.03);
  assert.equal(readPopularity("arena").names[0], "arena-2");
});

test("ServeGen: pools, client windows, idle windows, PMFs via xz", () => {
  const pools = { "m-large": 162, "m-mid": 109, "m-small": 43, "deepseek-r1": 73, "mm-image": 35 } as const;
  for (const [pool, n] of Object.entries(pools)) assert.equal(listServegenClients(pool as keyof typeof pools).length, n, pool);
  const c = readServegenClient("m-large", 0);
  assert.equal(c.rateRps.length, 2016);
  assert.equal(c.windowStartS[1], 600);
  assert.deepEqual(c.patterns[0], { kind: "weibull", shape: 0.3753486140101707, scale: 0.3967677807107179 });
  assert.deepEqual(c.patterns[1], { kind: "idle" });
  assert.equal(c.rateRps[1], 0);
  assert.deepEqual(c.patterns[3], { kind: "gamma", shape: 0.060422107316638725, scale: 103.65095274189687 });
  assert.equal(c.hasDataset, true);
  assert.equal(readServegenClient("m-large", 100).hasDataset, false);
  const r1 = readServegenClient("deepseek-r1", 0);
  assert.equal(r1.rateRps.length, 144);
  const lw = readServegenLengths("deepseek-r1", 0);
  const w0 = lw.get(0)!;
  assert.ok(w0.input.parts.length === 1 && w0.input.parts[0]!.values[0] === 45);
  // multimodal: input = text + image + audio + video tokens
  const mm = readServegenLengths("mm-image", 0).get(0)!;
  assert.equal(mm.input.parts.length, 4);
  const rng = new SeededRng(1);
  for (let i = 0; i < 100; i++) {
    const v = mm.input.parts.reduce((s, p) => s + p.sample(rng), 0);
    assert.ok(v >= 136 + 525, `mm input ${v}`);
  }
  const env = readPoolEnvelope("m-large");
  assert.equal(env.totalRateRps.length, 2016);
  assert.equal(env.totalRateRps[0], 212.78);
});

test("PMF literal parsing is strict", () => {
  const d = parsePythonPmf("{1: 0.25, 3: 0.75}", "t")!;
  assert.deepEqual([...d.values], [1, 3]);
  assert.equal(d.probability(1), 0.75);
  assert.equal(parsePythonPmf("{}", "t"), null);
  assert.throws(() => parsePythonPmf("{1: __import__('os')}", "t"), /bad PMF entry/);
  assert.throws(() => parsePythonPmf("[1, 2]", "t"), /not a dict literal/);
  assert.equal(parsePythonPmf("{1e3: 1.5e-2}", "t")!.values[0], 1000);
});
