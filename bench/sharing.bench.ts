// `npm run bench:sharing [-- --report out.html]`: elastic KV sharing (policy `prism`) vs static per-model KV
// quotas (policy `static`: each model a fixed budget/N, FCFS, as in the kvcached benchmark) on the real engine,
// the CPU version of kvcached's "3 models on one GPU with intermittent peaks" benchmark.
//
// Each run starts `bin/prism.js serve` as a child process (worker-thread engine, as users run it) with the same
// config except the policy: one device, the same memory budget (four stories15M-shaped q8_0 models' weights plus a
// 32 MiB KV pool, room for ~10 requests' KV), TTFT SLO 1 s, TPOT SLO 100 ms. The same trace is replayed against
// each through the `prism bench` code path (runBenchCommand): the models burst one after the other, model k for
// `--on` s (default 1) at `--rate` req/s (default 8, Poisson) from k·P/4 of every period P (default 24 s), so at
// any time one model needs most of the KV memory and the others none. The average load is moderate (~1.4 req/s of
// ~64 → ~120 tokens; a burst is served in ~2–4 s on this machine), the peaks are not: that is the regime elastic
// sharing is for. Runs alternate (static, prism, static, ...; default 3 repeats) so the shared machine's slow
// phases hit both; the table shows medians over the repeats and how many times better than static each policy
// is. `--policies static,elastic,prism` adds kvcached alone (elastic KV, static placement, FCFS).
//
// Before that, a calibration phase checks the simulator's `cpu` cost model (src/sim, fitted to bench:engine)
// against a real server: one f32 stories15M model, sequential requests of known lengths, measured TTFT/TPOT vs
// predictServeLatency. Flags: --only calibration|sharing, --policies static,prism, --repeats N, --duration S,
// --period S, --on S, --rate RPS, --kv-pool MiB, --cal-reps N (requests per calibration shape, default 5), --seed N, --report FILE, --out DIR (configs, trace, per-request
// CSVs; default bench/out/sharing). Generated models are cached in bench/out/models.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { stringify as toYaml } from "yaml";
import { type BenchCommandResult, requestsCsv, runBenchCommand } from "../src/cli/commands/bench.ts";
import { renderReport, type ReportRun } from "../src/metrics/report/render.ts";
import { type GroupReport, type RequestOutcomes, newRequestOutcomes } from "../src/metrics/slo.ts";
import { summarize } from "../src/metrics/stats.ts";
import { predictServeLatency } from "../src/sim/cost-model.ts";
import { CPU_BENCH_SAMPLES, fitDevice, type DeviceFit, type StepSample } from "../src/sim/calibrate.ts";
import { CPU_SERVE_LOOP_MS } from "../src/sim/catalog.ts";
import { GREEDY, type SeqStep } from "../src/core/records.ts";
import { deviceId, modelId as toModelId, requestId as toRequestId } from "../src/core/ids.ts";
import { generateRandomModel } from "../src/engine/model/generate.ts";
import { SHAPES } from "../src/engine/model/shapes.ts";
import { standaloneEngine } from "./standalone-engine.ts";
import { generateTrace, provenanceComments } from "../src/workload/generators/index.ts";
import { type Trace, TraceBuilder, traceFromRows, writeTrace } from "../src/workload/trace-format.ts";

const ROOT = resolve(import.meta.dirname, "..");
const MiB = 1024 ** 2;

const { values: flags } = parseArgs({
  options: {
    only: { type: "string" },
    policies: { type: "string", default: "static,prism" },
    repeats: { type: "string", default: "3" },
    duration: { type: "string", default: "48" },
    period: { type: "string", default: "24" },
    on: { type: "string", default: "1" },
    rate: { type: "string", default: "8" },
    "kv-pool": { type: "string", default: "32" },
    "cal-reps": { type: "string", default: "5" },
    seed: { type: "string", default: "1" },
    report: { type: "string" },
    out: { type: "string", default: join(ROOT, "bench/out/sharing") },
  },
});
const num = (name: keyof typeof flags): number => {
  const x = Number(flags[name]);
  if (!(x > 0)) throw new Error(`--${name} must be a positive number, got ${String(flags[name])}`);
  return x;
};
const OUT = resolve(flags.out!);
const DATA_DIR = join(ROOT, "bench/out/models"); // generated models, cached between runs
mkdirSync(OUT, { recursive: true });

// ---- the server as a child process ---------------------------------------------------------------------------

interface ModelSpec {
  readonly id: string;
  readonly shape: string;
  readonly dtype: "f32" | "q8_0";
  readonly seed: number;
  readonly ttftMs: number;
  readonly tpotMs: number;
}

function serveConfig(policy: string, memoryBytes: number, models: readonly ModelSpec[]): Record<string, unknown> {
  return {
    server: { host: "127.0.0.1", port: 0, log_level: "warn", shutdown_grace: "5s" },
    devices: { count: 1, memory: memoryBytes, page_size: "256KiB" },
    data_dir: DATA_DIR,
    models_dir: join(DATA_DIR, "no-models"),
    demo_models: false,
    scheduler: { policy },
    models: models.map((m) => ({ id: m.id, gen: { shape: m.shape, dtype: m.dtype, seed: m.seed }, ttft_ms: m.ttftMs, tpot_ms: m.tpotMs })),
  };
}

interface Server {
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

async function startServer(name: string, config: Record<string, unknown>): Promise<Server> {
  const file = join(OUT, `${name}.yaml`);
  writeFileSync(file, toYaml(config));
  const child = spawn(process.execPath, [join(ROOT, "bin/prism.js"), "serve", "-c", file], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name}: server not ready after 300 s:\n${log}`)), 300_000);
    child.stderr!.on("data", (d: Buffer) => {
      log += String(d);
      const m = /OpenAI API at (http:\/\/\S+)\/v1/.exec(log);
      if (m) {
        clearTimeout(timer);
        ok(m[1]!);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`${name}: server exited with ${code}:\n${log}`));
    });
  });
  return {
    url,
    child,
    stop: () =>
      new Promise<void>((ok) => {
        if (child.exitCode !== null) return ok();
        child.removeAllListeners("exit");
        child.on("exit", () => ok());
        child.kill("SIGTERM");
      }),
  };
}

async function adminState(url: string): Promise<{ preemptions: number; activations: number; evictions: number; totalPages: number; weightPages: number; kvLimits: string }> {
  const s = (await (await fetch(`${url}/admin/state`)).json()) as {
    devices: { preemptions: number; activations: number; evictions: number; memory: { total_pages: number; weight_pages: number; page_bytes: number }; models: { id: string; kv_limit_bytes: number | null }[] }[];
  };
  const d = s.devices[0]!;
  return {
    preemptions: d.preemptions,
    activations: d.activations,
    evictions: d.evictions,
    totalPages: d.memory.total_pages,
    weightPages: d.memory.weight_pages,
    kvLimits: d.models.map((m) => (m.kv_limit_bytes === null ? "elastic" : `${Math.round(m.kv_limit_bytes / d.memory.page_bytes)}p`)).join(" "),
  };
}

// ---- calibration: the simulator's cpu cost model vs a real server -----------------------------------------------

/**
 * The engine's step times right now, in this process, as bench:engine measures them (ours, 1 thread, as the
 * server runs it): the CPU_BENCH_SAMPLES shapes on the calibration model, median over `rounds`. The shared
 * machine's speed drifts by tens of percent between runs, so the server is also predicted from a fit made in
 * the same run (minutes apart), beside the catalog's fixed fit.
 */
async function engineSamplesNow(rounds: number): Promise<StepSample[]> {
  const M = toModelId("cal");
  const bytes = generateRandomModel({ shape: SHAPES.stories15M!, dtype: "f32", seed: 11, contextLength: 256 });
  const blockTokens = 16;
  const { ex, tables } = await standaloneEngine({ id: M, bytes, helperThreads: 0, maxBatchTokens: 512, maxSeqs: 32, contextTokens: 256, blockTokens });
  let req = 1;
  let stepIndex = 0;
  const step = async (seqs: { tokens: Int32Array; startPos: number; slot: number; req: number }[]): Promise<number> => {
    const plan: SeqStep[] = seqs.map((q) => ({
      requestId: toRequestId(q.req), modelId: M, tokens: q.tokens, startPos: q.startPos,
      blockOffsets: tables[q.slot]!.subarray(0, Math.ceil((q.startPos + q.tokens.length) / blockTokens)), blockTokens,
      sample: true, sampling: GREEDY, outputIndex: 0, penaltyTokens: null,
    }));
    const t0 = performance.now();
    await ex.execute({ deviceId: deviceId(0), stepIndex: stepIndex++, seqs: plan });
    return performance.now() - t0;
  };
  const tokens = (n: number, salt: number): Int32Array => Int32Array.from({ length: n }, (_, j) => 3 + ((salt * 7919 + j * 104729) % 30000));
  const out: StepSample[] = [];
  for (const s of CPU_BENCH_SAMPLES) {
    const ms: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const seqs = Array.from({ length: s.batch }, (_, slot) => ({ slot, req: req++ }));
      if (s.startPos > 0) await step(seqs.map((q) => ({ ...q, tokens: tokens(s.startPos, q.req), startPos: 0 })));
      ms.push(await step(seqs.map((q) => ({ ...q, tokens: tokens(s.tokensPerSeq, q.req + 1), startPos: s.startPos }))));
    }
    out.push({ ...s, measuredMs: summarize(ms).p50 });
  }
  return out;
}

async function calibration(): Promise<void> {
  console.log("== calibration: src/sim `cpu` cost model (fitted to bench:engine) vs a real prism serve, one f32 stories15M model");
  const model: ModelSpec = { id: "cal", shape: "stories15M", dtype: "f32", seed: 11, ttftMs: 10_000, tpotMs: 1000 };
  // the engine alone, now (before and after the server run; medians of both), fitted like the catalog entry
  const before = await engineSamplesNow(9);
  const srv = await startServer("calibration", serveConfig("prism", 256 * MiB, [model]));
  let after: StepSample[] = [];
  try {
    // Sequential: each request alone on the device (spaced well beyond what each takes).
    const shapes = [
      { input: 16, output: 64 },
      { input: 64, output: 64 },
      { input: 128, output: 64 },
      { input: 200, output: 32 },
    ];
    const reps = num("cal-reps");
    const rows = [];
    let t = 0;
    // one warm-up request first (JIT, first use of the weights), then the shapes round-robin, `reps` times
    rows.push({ arrivalS: t, model: "cal", inputTokens: 32, outputTokens: 16 });
    t += 2;
    for (let r = 0; r < reps; r++) {
      for (const s of shapes) {
        rows.push({ arrivalS: t, model: "cal", inputTokens: s.input, outputTokens: s.output });
        t += 0.4 + (s.input / 1000 + s.output / 150) * 2;
      }
    }
    const c = await runBenchCommand({ url: srv.url, trace: traceFromRows(rows), promptMode: "words" });
    await srv.stop();
    after = await engineSamplesNow(9);
    const now = before.map((s, k) => ({ ...s, measuredMs: (s.measuredMs + after[k]!.measuredMs) / 2 }));
    const fit: DeviceFit = fitDevice(now, "cpu");
    console.log(
      `engine now (1T, in-process, median of 9 before + 9 after the server run): ` +
        now.map((s) => `${s.label} ${s.measuredMs.toFixed(1)} ms`).join(", ") +
        ` → fit ${(fit.peakFlops / 1e9).toFixed(1)} GFLOP/s, ${(fit.memBwBytesPerS / 1e9).toFixed(1)} GB/s, ${fit.stepOverheadMs.toFixed(2)} ms/step, ` +
        `${fit.msPerSampledSeq.toFixed(2)} ms/sampled seq (worst error ${(fit.maxRelErr * 100).toFixed(0)}%); catalog: ` +
        CPU_BENCH_SAMPLES.map((s) => `${s.measuredMs.toFixed(1)}`).join("/") + " ms",
    );
    const o = c.result.outcomes;
    writeFileSync(join(OUT, "calibration-requests.csv"), requestsCsv(c.result));
    // The model predicts a request alone on an idle device; on a shared machine noise only adds time, so the
    // minimum over the repeats estimates that best (the median is shown too).
    // pred = the catalog's cpu entry (fixed, fitted to an earlier bench:engine); now = the same model with the
    // engine rates fitted in this run (the serve loop and per-request terms stay the catalog's)
    const header = ["prompt", "output", "n", "TTFT ms min", "median", "pred", "err(min)", "err(med)", "now", "err(min)", "err(med)",
      "TPOT ms min", "median", "pred", "err(min)", "err(med)", "now", "err(min)", "err(med)"];
    const table: string[][] = [header];
    let worstMin = 0;
    let worstMed = 0;
    let worstNowMin = 0;
    let worstNowMed = 0;
    for (const s of shapes) {
      const idx: number[] = [];
      for (let i = 1; i < o.count; i++) if (o.ok[i] === 1 && c.result.requestedInputTokens[i] === s.input) idx.push(i);
      if (idx.length === 0) continue;
      // the prompt the server saw (words are calibrated to tokens, not exact)
      const promptTokens = summarize(idx.map((i) => c.result.promptTokens[i]!)).p50;
      const ttft = summarize(idx.map((i) => o.ttftMs[i]!));
      const tpot = summarize(idx.map((i) => (o.e2eMs[i]! - o.ttftMs[i]!) / Math.max(1, o.outputTokens[i]! - 1)));
      const p = predictServeLatency({ deviceType: "cpu", arch: "stories15m", promptTokens, outputTokens: s.output, prefillChunkTokens: 128 });
      const q = predictServeLatency({
        deviceType: "cpu", arch: "stories15m", promptTokens, outputTokens: s.output, prefillChunkTokens: 128,
        device: { peakFlops: fit.peakFlops, memBwBytesPerS: fit.memBwBytesPerS },
        efficiency: { stepOverheadMs: fit.stepOverheadMs + CPU_SERVE_LOOP_MS, msPerSampledSeq: fit.msPerSampledSeq },
      });
      const err = (pred: number, meas: number): number => (pred - meas) / meas;
      const e = [err(p.ttftMs, ttft.min), err(p.ttftMs, ttft.p50), err(p.tpotMs, tpot.min), err(p.tpotMs, tpot.p50)];
      const f = [err(q.ttftMs, ttft.min), err(q.ttftMs, ttft.p50), err(q.tpotMs, tpot.min), err(q.tpotMs, tpot.p50)];
      worstMin = Math.max(worstMin, Math.abs(e[0]!), Math.abs(e[2]!));
      worstMed = Math.max(worstMed, Math.abs(e[1]!), Math.abs(e[3]!));
      worstNowMin = Math.max(worstNowMin, Math.abs(f[0]!), Math.abs(f[2]!));
      worstNowMed = Math.max(worstNowMed, Math.abs(f[1]!), Math.abs(f[3]!));
      table.push([
        String(promptTokens), String(s.output), String(idx.length),
        ttft.min.toFixed(1), ttft.p50.toFixed(1), p.ttftMs.toFixed(1), pct(e[0]!), pct(e[1]!), q.ttftMs.toFixed(1), pct(f[0]!), pct(f[1]!),
        tpot.min.toFixed(2), tpot.p50.toFixed(2), p.tpotMs.toFixed(2), pct(e[2]!), pct(e[3]!), q.tpotMs.toFixed(2), pct(f[2]!), pct(f[3]!),
      ]);
    }
    console.log(formatTable(table));
    console.log(
      `worst |error|, catalog fit: ${(worstMin * 100).toFixed(0)}% against the minimum, ${(worstMed * 100).toFixed(0)}% against the median; ` +
        `engine fitted in this run: ${(worstNowMin * 100).toFixed(0)}% / ${(worstNowMed * 100).toFixed(0)}% ` +
        `(target ≤ 25%); ${reps} requests per shape, sequential, timed by the bench client`,
    );
  } finally {
    await srv.stop();
  }
}

const pct = (x: number): string => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(0)}%`;

function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, k) => Math.max(...rows.map((r) => (r[k] ?? "").length)));
  return rows.map((r) => r.map((cell, k) => (k === 0 ? cell.padEnd(widths[k]!) : cell.padStart(widths[k]!))).join("  ")).join("\n");
}

// ---- sharing: prism vs static ------------------------------------------------------------------------------------

const NUM_MODELS = 4;

/**
 * Model k bursts in [k·P/4, k·P/4 + on) of every period P: Poisson arrivals at `rate` req/s while on (the synthetic
 * generator with one model and an on/off phase), shifted into its quarter of the period. Lengths uniform, ≤ 240
 * tokens in all (stories15M's context is 256).
 */
function burstTrace(durationS: number, periodS: number, onS: number, rateRps: number, seed: number): { trace: Trace; comments: string[] } {
  const names = Array.from({ length: NUM_MODELS }, (_, k) => `m${k}`);
  const b = new TraceBuilder(1024, names);
  const quarter = periodS / NUM_MODELS;
  if (!(onS <= quarter)) throw new Error(`--on ${onS} s is longer than a model's quarter of the period (${quarter} s)`);
  const comments: string[] = [`bench:sharing burst trace: ${NUM_MODELS} models, model k on in [k·P/4, k·P/4 + ${onS} s) of each period P = ${periodS} s, ${rateRps} req/s while on`];
  for (let k = 0; k < NUM_MODELS; k++) {
    // the generator's single on/off model is on in [P − on, P) of each period; shift that window to quarter k
    const g = generateTrace({
      kind: "synthetic", seed: seed * 100 + k, numModels: 1, durationS: durationS + periodS, totalRateRps: rateRps,
      popularity: { kind: "zipf", alpha: 0 }, cv: 1, lengths: { kind: "uniform", input: [32, 96], output: [96, 144] },
      onOff: { fraction: 1, periodS, offFraction: 1 - onS / periodS },
    });
    if (k === 0) comments.push(...provenanceComments(g).map((c) => `per model (seed ${seed * 100}+k): ${c}`));
    const shift = k * quarter - (periodS - onS);
    for (let i = 0; i < g.trace.numRequests; i++) {
      const t = g.trace.arrivalS[i]! + shift;
      if (t >= 0 && t < durationS) b.add(t, k, g.trace.inputTokens[i]!, g.trace.outputTokens[i]!);
    }
  }
  return { trace: b.build(), comments };
}

interface RunResult {
  readonly policy: string;
  readonly repeat: number;
  readonly c: BenchCommandResult;
  readonly state: Awaited<ReturnType<typeof adminState>>;
}

async function sharing(): Promise<void> {
  const durationS = num("duration");
  const periodS = num("period");
  const rateRps = num("rate");
  const onS = num("on");
  const repeats = Math.round(num("repeats"));
  const kvPoolBytes = num("kv-pool") * MiB;
  const policies = flags.policies!.split(",").map((x) => x.trim()).filter((x) => x !== "");
  const { trace, comments } = burstTrace(durationS, periodS, onS, rateRps, Math.round(num("seed")));
  writeTrace(join(OUT, "trace.csv"), trace, comments);
  const models: ModelSpec[] = Array.from({ length: NUM_MODELS }, (_, k) => ({
    id: `m${k}`, shape: "stories15M", dtype: "q8_0", seed: k + 1, ttftMs: 1000, tpotMs: 100,
  }));
  // Same budget for every policy: the four models' weights (62 pages of 256 KiB each) plus the KV pool.
  const weightBytes = NUM_MODELS * 62 * 256 * 1024;
  const memoryBytes = weightBytes + kvPoolBytes;
  const setup =
    `${NUM_MODELS} × stories15M q8_0 on one device of ${(memoryBytes / MiB).toFixed(0)} MiB (${(weightBytes / MiB).toFixed(1)} MiB weights + ` +
    `${(kvPoolBytes / MiB).toFixed(0)} MiB KV); trace ${trace.numRequests} requests over ${durationS} s (period ${periodS} s, each model in turn ` +
    `on for ${onS} s at ${rateRps} req/s); SLO TTFT ${models[0]!.ttftMs} ms, TPOT ${models[0]!.tpotMs} ms`;
  console.log(`\n== sharing: ${setup}; ${repeats} repeat(s), policies ${policies.join(", ")} alternating`);
  const runs: RunResult[] = [];
  for (let r = 0; r < repeats; r++) {
    for (const policy of policies) {
      const srv = await startServer(`sharing-${policy}`, serveConfig(policy, memoryBytes, models));
      try {
        const s0 = await adminState(srv.url);
        process.stderr.write(
          `bench:sharing: ${policy} (repeat ${r + 1}/${repeats}) at ${srv.url}: ${s0.totalPages} pages, ${s0.weightPages} of them weights at start, KV quotas ${s0.kvLimits}\n`,
        );
        // a request still running 2 minutes after the last send means a stuck server, not a slow one: give up on it
        const c = await runBenchCommand({ url: srv.url, trace, sampleStateMs: 500, requestTimeoutMs: 120_000, drainTimeoutMs: 120_000 });
        const state = await adminState(srv.url);
        writeFileSync(join(OUT, `requests-${policy}-${r + 1}.csv`), requestsCsv(c.result));
        runs.push({ policy, repeat: r, c, state });
        const g = c.report.overall;
        process.stderr.write(
          `bench:sharing: ${policy}: p99 TTFT ${g.ttftMs.p99.toFixed(0)} ms, TTFT ok ${(g.ttftAttainment * 100).toFixed(1)}%, ` +
            `goodput ${g.goodputRps.toFixed(2)}/s, failed ${g.failed}, preemptions ${state.preemptions}, activations ${state.activations}, evictions ${state.evictions}\n`,
        );
      } finally {
        await srv.stop();
      }
    }
  }
  printComparison(policies, runs);
  if (flags.report !== undefined) {
    // one entry per policy: its repeats pooled (same trace each time), KV pages over time from the first repeat
    const reportRuns: ReportRun[] = policies.map((policy) => {
      const mine = runs.filter((x) => x.policy === policy);
      const outcomes = poolOutcomes(mine.map((x) => x.c.result.outcomes));
      return {
        name: policy,
        outcomes,
        slo: mine[0]!.c.slos,
        durationS: mine.reduce((t, x) => t + x.c.result.wallS, 0),
        kvSamples: mine[0]!.c.result.stateSamples,
        details: {
          repeats: mine.length,
          "preemptions per run": mine.map((x) => x.state.preemptions).join(" "),
          "activations / evictions per run": mine.map((x) => `${x.state.activations}/${x.state.evictions}`).join(" "),
          "KV quotas (pages)": mine[0]!.state.kvLimits,
        },
      };
    });
    writeFileSync(
      flags.report,
      renderReport({
        title: "bench:sharing — elastic KV sharing (prism) vs static KV quotas",
        description: `${setup}. ${repeats} repeat(s) per policy, pooled.`,
        runs: reportRuns,
      }),
    );
    console.log(`report: ${flags.report}`);
  }
}

/** The requests of several runs of the same trace as one set (for pooled CDFs and attainment). */
function poolOutcomes(list: readonly RequestOutcomes[]): RequestOutcomes {
  const count = list.reduce((n, o) => n + o.count, 0);
  const out = newRequestOutcomes(count, list[0]!.modelNames);
  let k = 0;
  for (const o of list) {
    out.modelIndex.set(o.modelIndex, k);
    out.arrivalS.set(o.arrivalS, k);
    out.ttftMs.set(o.ttftMs, k);
    out.e2eMs.set(o.e2eMs, k);
    out.outputTokens.set(o.outputTokens, k);
    out.ok.set(o.ok, k);
    k += o.count;
  }
  return out;
}

const median = (xs: readonly number[]): number => summarize(xs).p50;

interface Metric {
  readonly name: string;
  readonly f: (g: GroupReport, r: RunResult) => number;
  readonly fmt: (x: number) => string;
  /** Lower is better: the ratio shown is static / policy; else policy / static. */
  readonly lowerBetter: boolean | null;
}

const PCT = (x: number): string => `${(x * 100).toFixed(1)}%`;
const METRICS: readonly Metric[] = [
  { name: "TTFT p50 ms", f: (g) => g.ttftMs.p50, fmt: (x) => x.toFixed(0), lowerBetter: true },
  { name: "TTFT p90 ms", f: (g) => g.ttftMs.p90, fmt: (x) => x.toFixed(0), lowerBetter: true },
  { name: "TTFT p99 ms", f: (g) => g.ttftMs.p99, fmt: (x) => x.toFixed(0), lowerBetter: true },
  { name: "TTFT SLO attainment", f: (g) => g.ttftAttainment, fmt: PCT, lowerBetter: false },
  { name: "TPOT p50 ms", f: (g) => g.tpotMs.p50, fmt: (x) => x.toFixed(1), lowerBetter: true },
  { name: "TPOT p99 ms", f: (g) => g.tpotMs.p99, fmt: (x) => x.toFixed(1), lowerBetter: true },
  { name: "TPOT SLO attainment", f: (g) => g.tpotAttainment, fmt: PCT, lowerBetter: false },
  { name: "both SLOs attainment", f: (g) => g.bothAttainment, fmt: PCT, lowerBetter: false },
  { name: "goodput req/s", f: (g) => g.goodputRps, fmt: (x) => x.toFixed(2), lowerBetter: false },
  { name: "E2E p50 ms", f: (g) => g.e2eMs.p50, fmt: (x) => x.toFixed(0), lowerBetter: true },
  { name: "failed requests", f: (g) => g.failed, fmt: (x) => x.toFixed(0), lowerBetter: null },
  { name: "preemptions", f: (_g, r) => r.state.preemptions, fmt: (x) => x.toFixed(0), lowerBetter: null },
  { name: "activations", f: (_g, r) => r.state.activations, fmt: (x) => x.toFixed(0), lowerBetter: null },
];

function printComparison(policies: readonly string[], runs: readonly RunResult[]): void {
  const of = (policy: string, f: (g: GroupReport, r: RunResult) => number): number => median(runs.filter((r) => r.policy === policy).map((r) => f(r.c.report.overall, r)));
  const others = policies.filter((p) => p !== "static");
  const withStatic = policies.includes("static");
  const header = ["", ...policies, ...(withStatic ? others.map((p) => `${p} vs static`) : [])];
  const rows: string[][] = [header];
  for (const m of METRICS) {
    const vals = policies.map((p) => of(p, m.f));
    const row = [m.name, ...vals.map(m.fmt)];
    if (withStatic) {
      const s = of("static", m.f);
      for (const p of others) {
        const v = of(p, m.f);
        row.push(m.lowerBetter === null ? "" : `${(m.lowerBetter ? s / v : v / s).toFixed(2)}×`);
      }
    }
    rows.push(row);
  }
  const repeats = Math.max(...policies.map((p) => runs.filter((r) => r.policy === p).length));
  console.log(`\n${repeats > 1 ? `medians over ${repeats} repeats` : "one run each"}; ratios: how many times better than static`);
  console.log(formatTable(rows));
  console.log(`\nper model, TTFT p99 ms (${policies.join(" / ")}):`);
  const names = runs[0]!.c.report.perModel.map((g) => g.name);
  for (let k = 0; k < names.length; k++) {
    const vals = policies.map((p) => median(runs.filter((r) => r.policy === p).map((r) => r.c.report.perModel[k]!.ttftMs.p99)));
    console.log(`  ${names[k]}: ${vals.map((v) => v.toFixed(0)).join(" / ")}`);
  }
  if (repeats > 1) {
    console.log("\nper repeat, TTFT p99 ms / TTFT attainment:");
    for (let r = 0; r < repeats; r++) {
      const cells = policies.map((p) => {
        const x = runs.find((y) => y.policy === p && y.repeat === r);
        return x ? `${p} ${x.c.report.overall.ttftMs.p99.toFixed(0)} / ${PCT(x.c.report.overall.ttftAttainment)}` : `${p} -`;
      });
      console.log(`  #${r + 1}: ${cells.join(", ")}`);
    }
  }
  if (withStatic && policies.includes("prism")) {
    const s99 = of("static", (g) => g.ttftMs.p99);
    const p99 = of("prism", (g) => g.ttftMs.p99);
    const sAtt = of("static", (g) => g.ttftAttainment);
    const pAtt = of("prism", (g) => g.ttftAttainment);
    console.log(
      `\ntarget (issue 7): p99 TTFT static/prism ≥ 2: ${(s99 / p99).toFixed(2)}× ${s99 / p99 >= 2 ? "MET" : "NOT MET"}; ` +
        `TTFT SLO attainment prism ${PCT(pAtt)} vs static ${PCT(sAtt)} (${((pAtt - sAtt) * 100).toFixed(1)} points)`,
    );
  }
}

if (flags.only === undefined || flags.only === "calibration") await calibration();
if (flags.only === undefined || flags.only === "sharing") await sharing();
