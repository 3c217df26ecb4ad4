// `npm run bench:device`: scheduling overhead of one device step — nextAction (promotion, keep-alive
// scan, decode planning with block growth, chunked prefill, admission by cross-model priority) plus
// completeStep (apply tokens, stream to sinks, stop checks, finish + free, estimate, step record) —
// with a zero-cost executor, at 1, 8 and 64 co-located resident models and ~1,000 queued requests
// kept topped up. Executor time and re-submission are excluded from the timings.
// Prints medians over RUNS runs. Numbers depend on the (shared, 2-core) machine.
//
// Second table: the same scheduler in front of the real embedded engine (EngineExecutor, WASM
// kernels, one thread) on a random stories15M-shaped model (dim 288, 6 layers, vocab 32000) in f32
// and q8_0, 32 running sequences kept topped up: scheduler time per step beside the engine's, and
// the scheduler's share of the step (target < 5%). ENGINE_STEPS sets the measured steps (default 120;
// 0 skips the table).
import { performance } from "node:perf_hooks";
import { ManualClock } from "../src/core/clock.ts";
import { deviceId, modelId, requestId, type RequestId } from "../src/core/ids.ts";
import { GREEDY, type ModelProfile, type SampledToken, type StepPlan, type StepResult } from "../src/core/records.ts";
import { SeededRng } from "../src/core/rng.ts";
import { DeviceMemory } from "../src/memory/index.ts";
import { DeviceScheduler, resolveDeviceSchedulerConfig, type RequestSink, type SubmitRequest } from "../src/device/index.ts";
import { generateRandomModel, type WeightDtype } from "../src/engine/model/generate.ts";
import { SHAPES } from "../src/engine/model/shapes.ts";
import { parseGguf } from "../src/engine/gguf/reader.ts";
import { llamaConfigFromGguf } from "../src/engine/model/config.ts";
import { createEngineExecutor, modelProfileFromGguf, requiredPrefixBytes } from "../src/engine/model/executor.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const STEPS = Number(process.env.BENCH_STEPS ?? 3000);
const WARMUP_STEPS = 1000;
const QUEUED = 1000;
const PAGE = 64 * 1024;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function percentile(xs: Float64Array, p: number): number {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

/**
 * Zero-cost executor: one fixed token per sampling sequence (never EOS). Not timed. It reports a
 * plausible modelled cost (0.05 ms per token) so the prefill estimate converges as it would.
 */
function execute(plan: StepPlan): StepResult {
  const sampled: SampledToken[] = [];
  let numTokens = 0;
  for (const s of plan.seqs) {
    numTokens += s.tokens.length;
    if (s.sample) sampled.push({ requestId: s.requestId, token: (s.startPos * 7 + 3) % 251, logprob: Number.NaN, topTokens: null, topLogprobs: null });
  }
  return { stepIndex: plan.stepIndex, computeMs: 0.05 * numTokens, sampled };
}

interface RunResult {
  readonly usPerStep: number;
  readonly p99Us: number;
  readonly seqsPerStep: number;
  readonly finishedPerStep: number;
}

function run(numModels: number, seed: number): RunResult {
  const clock = new ManualClock(0);
  const rng = new SeededRng(seed);
  const memory = new DeviceMemory({ budgetBytes: 8192 * PAGE, pageBytes: PAGE, backed: false });
  const sched = new DeviceScheduler({
    deviceId: deviceId(0), memory, clock, rng,
    config: resolveDeviceSchedulerConfig({ maxBatchTokens: 512, maxBatchSeqs: 64, prefillChunkTokens: 256, maxQueuedPerModel: 4096, maxQueuedTotal: 8192 }),
  });
  const models: ModelProfile[] = [];
  for (let i = 0; i < numModels; i++) {
    const p: ModelProfile = {
      id: modelId(`m${i}`), weightBytes: 2 * PAGE, numLayers: 4, kvBytesPerTokenPerLayer: 256,
      maxContextTokens: 4096, vocabSize: 256, eosTokenIds: [255],
    };
    models.push(p);
    sched.addModel(p, { ttftSloMs: 200 + 50 * (i % 8), maxRunning: 64 });
    sched.requestLoad(p.id);
  }
  // Load every model (not timed).
  for (;;) {
    const a = sched.nextAction(clock.nowMs());
    if (a.kind === "load") sched.completeLoad(a.modelId, 0, clock.nowMs());
    else if (a.kind === "idle") break;
    else throw new Error(`bench: unexpected ${a.kind} while loading`);
  }

  let finished = 0;
  const sink: RequestSink = { onToken() {}, onFinish() { finished++; } };
  let nextId = 1;
  const prompts = Array.from({ length: 16 }, (_, i) => Int32Array.from({ length: 32 + 14 * i }, (_, j) => (j * 13 + i) % 250));
  const newRequest = (): SubmitRequest => ({
    requestId: requestId(nextId++) as RequestId,
    modelId: models[rng.int(numModels)]!.id,
    promptTokens: prompts[rng.int(prompts.length)]!,
    maxTokens: 32 + rng.int(96),
    sampling: GREEDY,
    arrivalMs: clock.nowMs(),
    sink,
  });
  const topUp = (): void => {
    while (sched.numQueued < QUEUED) if (sched.submit(newRequest()) !== "accepted") throw new Error("bench: submit refused");
  };

  const samples = new Float64Array(STEPS);
  let seqs = 0;
  let finishedAtStart = 0;
  for (let i = 0; i < WARMUP_STEPS + STEPS; i++) {
    topUp();
    if (i === WARMUP_STEPS) finishedAtStart = finished;
    const t0 = performance.now();
    const a = sched.nextAction(clock.nowMs());
    const t1 = performance.now();
    if (a.kind !== "step") throw new Error(`bench: expected a step, got ${a.kind}`);
    const res = execute(a.plan);
    const n = a.plan.seqs.length;
    clock.advance(1);
    const t2 = performance.now();
    sched.completeStep(res, clock.nowMs());
    const t3 = performance.now();
    if (i >= WARMUP_STEPS) {
      samples[i - WARMUP_STEPS] = (t1 - t0 + (t3 - t2)) * 1000;
      seqs += n;
    }
  }
  let total = 0;
  for (const s of samples) total += s;
  return { usPerStep: total / STEPS, p99Us: percentile(samples, 0.99), seqsPerStep: seqs / STEPS, finishedPerStep: (finished - finishedAtStart) / STEPS };
}

const rows: string[][] = [["models", "queued", "µs/step (median of means)", "p99 µs/step", "seqs/step", "finished/step"]];
for (const numModels of [1, 8, 64]) {
  const results: RunResult[] = [];
  for (let r = 0; r < RUNS; r++) results.push(run(numModels, 1 + r));
  rows.push([
    String(numModels), String(QUEUED),
    median(results.map((x) => x.usPerStep)).toFixed(1),
    median(results.map((x) => x.p99Us)).toFixed(1),
    median(results.map((x) => x.seqsPerStep)).toFixed(1),
    median(results.map((x) => x.finishedPerStep)).toFixed(2),
  ]);
}
printTable(rows);
console.log("target: < 50 µs per step at 64 models");

function printTable(table: string[][]): void {
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  if (table === rows) console.log(`device scheduler: nextAction + completeStep per step, zero-cost executor (${RUNS} runs × ${STEPS} steps, median)`);
  for (const r of table) console.log(r.map((cell, c) => cell.padStart(widths[c]!)).join("  "));
}

// ---- with the real engine ------------------------------------------------------------------------

const ENGINE_STEPS = Number(process.env.ENGINE_STEPS ?? 120);
const ENGINE_WARMUP = 20;
const ENGINE_SEQS = 32;
const ENGINE_CONTEXT = 256;
const ENGINE_PAGE = 1 << 20; // a stories15M KV block (16 tokens × 6 layers) is 216 KiB

interface EngineRun {
  readonly schedUs: Float64Array;
  readonly execMs: Float64Array;
  readonly seqsPerStep: number;
}

/** Scheduler and engine time of each step, 32 running sequences of one stories15M-shaped model. */
async function runEngine(dtype: WeightDtype): Promise<EngineRun> {
  const bytes = generateRandomModel({ shape: SHAPES.stories15M!, dtype, seed: 1, contextLength: ENGINE_CONTEXT });
  const gguf = parseGguf(bytes, "s15m");
  const budget = { maxBatchTokens: 256, maxSampleRows: ENGINE_SEQS };
  const prefixBytes = Math.ceil(requiredPrefixBytes([llamaConfigFromGguf(gguf)], budget) / 65536) * 65536;
  const profile0 = modelProfileFromGguf("s15m", gguf);
  const kvBytes = ENGINE_SEQS * ENGINE_CONTEXT * profile0.numLayers * profile0.kvBytesPerTokenPerLayer;
  const pages = Math.ceil(profile0.weightBytes / ENGINE_PAGE) + Math.ceil(kvBytes / ENGINE_PAGE) + 16;
  const memory = new DeviceMemory({
    budgetBytes: pages * ENGINE_PAGE, pageBytes: ENGINE_PAGE, backed: true, prefixBytes,
    kvHeadroomFraction: 0, minReservedPages: 0, maxReservedPages: 0,
  });
  const exec = await createEngineExecutor({ memory: memory.memory!, prefixBytes, kernels: "wasm", ...budget });
  memory.onWeightsMoved((id, _old, now) => exec.moveWeights(id, now));
  const profile = exec.registerGguf("s15m", gguf);
  const clock = new ManualClock(0);
  const rng = new SeededRng(5);
  const sched = new DeviceScheduler({
    deviceId: deviceId(0), memory, clock, rng,
    config: resolveDeviceSchedulerConfig({ maxBatchTokens: 256, maxBatchSeqs: ENGINE_SEQS, prefillChunkTokens: 128, blockTokens: 16 }),
  });
  sched.addModel(profile, { maxRunning: ENGINE_SEQS, ttftSloMs: 5000 });
  sched.requestLoad(profile.id);
  const load = sched.nextAction(0);
  if (load.kind !== "load") throw new Error(`bench: expected a load, got ${load.kind}`);
  clock.advance((await exec.loadWeights(load.modelId, load.byteOffset)).durationMs);
  sched.completeLoad(load.modelId, 0, clock.nowMs());

  const sink: RequestSink = { onToken() {}, onFinish() {} };
  let nextId = 1;
  const topUp = (): void => {
    while (sched.numQueued + sched.numRunning < 2 * ENGINE_SEQS) {
      const id = nextId++;
      const prompt = Int32Array.from({ length: 16 + rng.int(48) }, (_, j) => 3 + ((id * 7919 + j * 104729) % 30000));
      const r = sched.submit({
        requestId: requestId(id) as RequestId, modelId: profile.id, promptTokens: prompt, maxTokens: 32 + rng.int(96),
        sampling: GREEDY, ignoreEos: true, arrivalMs: clock.nowMs(), sink,
      });
      if (r !== "accepted") throw new Error("bench: submit refused");
    }
  };
  const schedUs = new Float64Array(ENGINE_STEPS);
  const execMs = new Float64Array(ENGINE_STEPS);
  let seqs = 0;
  for (let i = 0; i < ENGINE_WARMUP + ENGINE_STEPS; i++) {
    topUp();
    const t0 = performance.now();
    const a = sched.nextAction(clock.nowMs());
    const t1 = performance.now();
    if (a.kind !== "step") throw new Error(`bench: expected a step, got ${a.kind}`);
    const n = a.plan.seqs.length;
    const res = await exec.execute(a.plan);
    const t2 = performance.now();
    clock.advance(t2 - t1);
    sched.completeStep(res, clock.nowMs());
    const t3 = performance.now();
    if (i >= ENGINE_WARMUP) {
      schedUs[i - ENGINE_WARMUP] = (t1 - t0 + (t3 - t2)) * 1000;
      execMs[i - ENGINE_WARMUP] = t2 - t1;
      seqs += n;
    }
  }
  await exec.close();
  return { schedUs, execMs, seqsPerStep: seqs / ENGINE_STEPS };
}

if (ENGINE_STEPS > 0) {
  const engineRows: string[][] = [["weights", "seqs/step", "scheduler µs/step (median)", "engine ms/step (median)", "scheduler share of step (Σ)"]];
  for (const dtype of ["f32", "q8_0"] as const) {
    const r = await runEngine(dtype);
    let sumSched = 0;
    let sumExec = 0;
    for (let i = 0; i < r.schedUs.length; i++) {
      sumSched += r.schedUs[i]! / 1000;
      sumExec += r.execMs[i]!;
    }
    engineRows.push([
      dtype, r.seqsPerStep.toFixed(1), percentile(r.schedUs, 0.5).toFixed(1), percentile(r.execMs, 0.5).toFixed(2),
      `${((100 * sumSched) / (sumSched + sumExec)).toFixed(2)}%`,
    ]);
  }
  console.log(`\ndevice scheduler beside the real engine: stories15M shape, WASM kernels, 1 thread, ${ENGINE_STEPS} steps after ${ENGINE_WARMUP}`);
  printTable(engineRows);
  console.log("target: scheduler < 5% of step time");
}
