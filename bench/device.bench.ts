// `npm run bench:device`: scheduling overhead of one device step — nextAction (promotion, keep-alive
// scan, decode planning with block growth, chunked prefill, admission by cross-model priority) plus
// completeStep (apply tokens, stream to sinks, stop checks, finish + free, estimate, step record) —
// with a zero-cost executor, at 1, 8 and 64 co-located resident models and ~1,000 queued requests
// kept topped up. Executor time and re-submission are excluded from the timings.
// Prints medians over RUNS runs. Numbers depend on the (shared, 2-core) machine.
import { performance } from "node:perf_hooks";
import { ManualClock } from "../src/core/clock.ts";
import { deviceId, modelId, requestId, type RequestId } from "../src/core/ids.ts";
import { GREEDY, type ModelProfile, type SampledToken, type StepPlan, type StepResult } from "../src/core/records.ts";
import { SeededRng } from "../src/core/rng.ts";
import { DeviceMemory } from "../src/memory/index.ts";
import { DeviceScheduler, resolveDeviceSchedulerConfig, type RequestSink, type SubmitRequest } from "../src/device/index.ts";

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
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log(`device scheduler: nextAction + completeStep per step, zero-cost executor (${RUNS} runs × ${STEPS} steps, median)`);
for (const r of rows) console.log(r.map((cell, c) => cell.padStart(widths[c]!)).join("  "));
console.log("target: < 50 µs per step at 64 models");
