// Admission order across models: SLO slack (late requests by shortest prefill) and FCFS; caps;
// chunked prefill never stalls running decodes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { drive, makeProfile, makeScheduler, submit, type Harness, type HarnessOptions } from "../helpers/device-harness.ts";
import { modelId } from "../../src/core/ids.ts";

function preload(h: Harness, ...names: string[]): void {
  for (const n of names) h.sched.requestLoad(modelId(n));
  drive(h);
}

/**
 * Resident models with the given TTFT SLOs, fixed-length steps, the estimate at its 1 ms/token prior
 * (never re-keyed), the clock at 1000; `config` on top.
 */
function sloHarness(config: HarnessOptions["config"], stepMs: number, slos: Record<string, number>): Harness {
  const h = makeScheduler({
    config: { maxBatchTokens: 512, prefillChunkTokens: 512, prefillMsPerTokenPrior: 1, rekeyTolerance: 1e9, ...config },
    exec: { stepBaseMs: stepMs, msPerToken: 0 },
    budgetPages: 256,
  });
  for (const [name, ttftSloMs] of Object.entries(slos)) h.sched.addModel(makeProfile(name), { ttftSloMs });
  preload(h, ...Object.keys(slos));
  h.clock.set(1000);
  return h;
}

function craftedQueue(policy: "slo" | "fcfs", demoteExpired = false): number[] {
  // One request runs at a time, so finish order = admission order.
  const h = sloHarness({ policy, demoteExpired, maxBatchSeqs: 1 }, 0.001, { a: 1000, b: 200 });
  // estimate = 1 ms per prompt token; key = arrival + ttft − est; late when key ≤ now (1000).
  submit(h, { id: 1, model: "a", arrivalMs: 900, prompt: 100, maxTokens: 1 }); // slack 800
  submit(h, { id: 2, model: "b", arrivalMs: 950, prompt: 10, maxTokens: 1 }); // slack 140
  submit(h, { id: 3, model: "a", arrivalMs: 990, prompt: 500, maxTokens: 1 }); // slack 490
  // 4, 5 and 6 are also past their TTFT deadlines (900, 800, 1000).
  submit(h, { id: 4, model: "b", arrivalMs: 700, prompt: 50, maxTokens: 1 }); // late, est 50
  submit(h, { id: 5, model: "b", arrivalMs: 600, prompt: 20, maxTokens: 1 }); // late, est 20
  submit(h, { id: 6, model: "a", arrivalMs: 0, prompt: 300, maxTokens: 1 }); // late, est 300
  drive(h);
  return h.sink.order;
}

test("slo policy: late requests by shortest prefill interleave with on-time ones by slack (prototype priority)", () => {
  // priority = slack if > 0 else est: 5 (20), 4 (50), 2 (140), 6 (300), 3 (490), 1 (800)
  assert.deepEqual(craftedQueue("slo"), [5, 4, 2, 6, 3, 1]);
});

test("slo policy with demoteExpired (the default): requests past their TTFT deadline go after every other, by arrival", () => {
  // On time by slack: 2 (140), 3 (490), 1 (800); then the expired ones by arrival: 6 (0), 5 (600), 4 (700).
  assert.deepEqual(craftedQueue("slo", true), [2, 3, 1, 6, 5, 4]);
  // FCFS has no deadline order: the setting changes nothing.
  assert.deepEqual(craftedQueue("fcfs", true), craftedQueue("fcfs"));
});

function expiresWhileWaiting(demoteExpired: boolean): { order: number[]; late: string } {
  const h = sloHarness({ demoteExpired, maxBatchSeqs: 1 }, 100, { tight: 250, loose: 5000 });
  submit(h, { id: 1, model: "loose", arrivalMs: 1000, prompt: 10, maxTokens: 4 }); // runs 4 steps: until 1400
  drive(h, { before: (i) => i < 1 });
  submit(h, { id: 2, model: "tight", arrivalMs: 1000, prompt: 10, maxTokens: 1 }); // deadline 1250: past by 1400
  submit(h, { id: 3, model: "loose", arrivalMs: 1000, prompt: 10, maxTokens: 1 }); // deadline 6000
  drive(h);
  return { order: h.sink.order, late: h.sink.outcomeOf(2) };
}

function lateBesideLongRequest(lateMaxRunning: number): number[] {
  const h = sloHarness({ lateMaxRunning, maxBatchSeqs: 8 }, 100, { tight: 250, loose: 5000 });
  submit(h, { id: 1, model: "loose", arrivalMs: 1000, prompt: 10, maxTokens: 6 }); // runs 6 steps: until 1600
  submit(h, { id: 2, model: "tight", arrivalMs: 0, prompt: 10, maxTokens: 1 }); // past its deadline (250) on arrival
  drive(h);
  return h.sink.order;
}

test("lateMaxRunning: a request past its deadline joins the batch only while fewer than that many run", () => {
  // One running (request 1): with lateMaxRunning 1 request 2 waits for it; with 2 it runs beside it.
  assert.deepEqual(lateBesideLongRequest(1), [1, 2]);
  assert.deepEqual(lateBesideLongRequest(2), [2, 1]);
});

test("lateMaxWaitMs: a demoted request still queued that long after arriving fails (PRISM_SLO_UNREACHABLE) at that time", () => {
  const run = (lateMaxWaitMs: number) => {
    const h = sloHarness({ lateMaxRunning: 1, lateMaxWaitMs, maxBatchSeqs: 8 }, 100, { tight: 250, loose: 5000 });
    submit(h, { id: 1, model: "loose", arrivalMs: 1000, prompt: 10, maxTokens: 6 }); // runs until 1600
    submit(h, { id: 2, model: "tight", arrivalMs: 0, prompt: 10, maxTokens: 1 }); // past; held back while 1 runs
    drive(h);
    return { order: h.sink.order, outcome: h.sink.outcomeOf(2), atMs: h.sink.finished.get(2)?.atMs };
  };
  // Waited 1300 ms at 1300, while request 1 still runs: failed then, not served at 1600.
  assert.deepEqual(run(1300), { order: [2, 1], outcome: "failed:PRISM_SLO_UNREACHABLE", atMs: 1300 });
  assert.deepEqual(run(Number.POSITIVE_INFINITY), { order: [1, 2], outcome: "finished:length", atMs: 1700 });
});

test("demoteExpired: a request is demoted when its deadline passes while it waits, and is still served", () => {
  // Without demotion 2 is late (est 10) and goes before 3 (slack ≈ 4590); with it, 2 has missed
  // anyway and 3 goes first. Either way 2 finishes.
  assert.deepEqual(expiresWhileWaiting(false), { order: [1, 2, 3], late: "finished:length" });
  assert.deepEqual(expiresWhileWaiting(true), { order: [1, 3, 2], late: "finished:length" });
});

test("fcfs policy: arrival order regardless of SLO", () => {
  assert.deepEqual(craftedQueue("fcfs"), [6, 5, 4, 1, 2, 3]);
});

test("slack shrinking with time turns on-time requests late (promotion), without re-keying", () => {
  const h = makeScheduler({
    config: { maxBatchSeqs: 1, maxBatchTokens: 512, prefillChunkTokens: 512, prefillMsPerTokenPrior: 1, rekeyTolerance: 1e9 },
    exec: { stepBaseMs: 100, msPerToken: 0 },
    budgetPages: 256,
  });
  h.sched.addModel(makeProfile("a"), { ttftSloMs: 1000 });
  preload(h, "a");
  h.clock.set(1000);
  submit(h, { id: 1, model: "a", arrivalMs: 1000, prompt: 10, maxTokens: 3 }); // runs first (alone)
  drive(h, { before: (i) => i < 1 });
  submit(h, { id: 2, model: "a", arrivalMs: 1000, prompt: 400, maxTokens: 1 }); // key 1600
  submit(h, { id: 3, model: "a", arrivalMs: 1000, prompt: 300, maxTokens: 1 }); // key 1700
  submit(h, { id: 4, model: "a", arrivalMs: 1000, prompt: 20, maxTokens: 1 }); // key 1980
  // Request 1 takes 3 steps of 100 ms: now 1300. Slack: 2 → 300, 3 → 400, 4 → 680: order 2, 3, 4.
  // Request 2 takes 1 step: now 1400; 3 → 300, 4 → 580. Then 3: now 1500; then 4.
  drive(h);
  assert.deepEqual(h.sink.order, [1, 2, 3, 4]);

  // Same queue, but request 1 decodes for 8 steps: at 1800 requests 2 and 3 are late (est 400 and
  // 300) and 4 is on time with slack 180 < 300: 4, then the late ones by shortest prefill: 3, 2.
  const g = makeScheduler({
    config: { maxBatchSeqs: 1, maxBatchTokens: 512, prefillChunkTokens: 512, prefillMsPerTokenPrior: 1, rekeyTolerance: 1e9 },
    exec: { stepBaseMs: 100, msPerToken: 0 },
    budgetPages: 256,
  });
  g.sched.addModel(makeProfile("a"), { ttftSloMs: 1000 });
  preload(g, "a");
  g.clock.set(1000);
  submit(g, { id: 11, model: "a", arrivalMs: 1000, prompt: 10, maxTokens: 8 });
  drive(g, { before: (i) => i < 1 });
  submit(g, { id: 12, model: "a", arrivalMs: 1000, prompt: 400, maxTokens: 1 });
  submit(g, { id: 13, model: "a", arrivalMs: 1000, prompt: 300, maxTokens: 1 });
  submit(g, { id: 14, model: "a", arrivalMs: 1000, prompt: 20, maxTokens: 1 });
  drive(g);
  assert.deepEqual(g.sink.order, [11, 14, 13, 12]);
});

/** One model (TTFT SLO 300 ms), one request at a time, 50 ms steps, abortUnreachable; the clock at 1000. */
function sheddingScheduler(prefillMsPerTokenPrior: number): Harness {
  const h = makeScheduler({
    config: { abortUnreachable: true, maxBatchSeqs: 1, maxBatchTokens: 64, prefillMsPerTokenPrior, rekeyTolerance: 1e9 },
    exec: { stepBaseMs: 50, msPerToken: 0 },
  });
  h.sched.addModel(makeProfile("a"), { ttftSloMs: 300 });
  preload(h, "a");
  h.clock.set(1000);
  return h;
}

test("abortUnreachable fails requests whose TTFT can no longer be met (PRISM_SLO_UNREACHABLE)", () => {
  const h = sheddingScheduler(1);
  submit(h, { id: 1, model: "a", arrivalMs: 1000, prompt: 10, maxTokens: 6 }); // 6 steps → 1300
  submit(h, { id: 2, model: "a", arrivalMs: 1000, prompt: 10, maxTokens: 1 }); // late at 1290, deadline 1300
  submit(h, { id: 3, model: "a", arrivalMs: 1200, prompt: 10, maxTokens: 1 }); // key 1490: fine
  submit(h, { id: 4, model: "a", arrivalMs: 500, prompt: 10, maxTokens: 1 }); // deadline 800: already passed
  drive(h);
  assert.equal(h.sink.outcomeOf(1), "finished:length");
  assert.equal(h.sink.outcomeOf(2), "failed:PRISM_SLO_UNREACHABLE");
  assert.equal(h.sink.finished.get(2)!.atMs, 1300);
  assert.equal(h.sink.outcomeOf(3), "finished:length");
  assert.equal(h.sink.outcomeOf(4), "failed:PRISM_SLO_UNREACHABLE");
  assert.deepEqual(h.sink.order, [4, 1, 2, 3]);
});

test("abortUnreachable fails on the TTFT deadline, not on the prefill estimate: a request late by a pessimistic estimate is still served", () => {
  // The estimate (100 ms per token × 10 tokens = 1 s) says no request can meet a 300 ms SLO;
  // a step really takes 50 ms.
  const h = sheddingScheduler(100);
  submit(h, { id: 1, model: "a", arrivalMs: 1000, prompt: 10, maxTokens: 4 }); // runs 1000 → 1200
  submit(h, { id: 2, model: "a", arrivalMs: 1000, prompt: 10, maxTokens: 3 }); // 1200 → 1350, first token 1250 < 1300
  submit(h, { id: 3, model: "a", arrivalMs: 1000, prompt: 10, maxTokens: 1 }); // still queued at its deadline, 1300
  drive(h);
  assert.equal(h.sink.outcomeOf(1), "finished:length");
  assert.equal(h.sink.outcomeOf(2), "finished:length");
  assert.equal(h.sink.finished.get(2)!.stats.firstTokenMs! - 1000, 250);
  assert.equal(h.sink.outcomeOf(3), "failed:PRISM_SLO_UNREACHABLE");
  // Failed at its deadline, not when the estimate first called it late (on arrival).
  assert.equal(h.sink.finished.get(3)!.atMs, 1300);
  assert.deepEqual(h.sink.order, [1, 3, 2]);
});

test("per-model maxRunning caps one model without blocking the others", () => {
  const h = makeScheduler({ keepRecords: true, budgetPages: 128 });
  h.sched.addModel(makeProfile("a"), { maxRunning: 1 });
  h.sched.addModel(makeProfile("b"), { ttftSloMs: 5000 });
  preload(h, "a", "b");
  for (let i = 1; i <= 3; i++) submit(h, { id: i, model: "a", prompt: 4, maxTokens: 4 });
  for (let i = 11; i <= 13; i++) submit(h, { id: i, model: "b", prompt: 4, maxTokens: 4 });
  drive(h);
  // a runs one at a time; b's three run together from the first step.
  assert.equal(h.records[0]!.numSeqs, 4);
  for (const r of h.records) {
    assert.ok(r.numRunning <= 4);
    assert.ok(r.runningByModel[0]! <= 1);
    assert.equal(r.runningByModel[0]! + r.runningByModel[1]!, r.numRunning);
    assert.equal(r.queuedByModel[0]! + r.queuedByModel[1]!, r.numQueued);
  }
  assert.equal(h.sink.order.filter((id) => id < 10).join(), "1,2,3");
});

test("a long prompt is prefilled in chunks next to running decodes (decodes never stall)", () => {
  const h = makeScheduler({ keepRecords: true, config: { maxBatchTokens: 40, prefillChunkTokens: 32 }, budgetPages: 128 });
  h.sched.addModel(makeProfile("a"));
  preload(h, "a");
  submit(h, { id: 1, model: "a", prompt: 8, maxTokens: 30 });
  drive(h, { before: (i) => i < 2 });
  submit(h, { id: 2, model: "a", prompt: 300, maxTokens: 2 });
  drive(h);
  const withPrefill = h.records.filter((r) => r.numPrefillTokens > 0 && r.stepIndex > 2);
  assert.ok(withPrefill.length >= 8, `long prompt took ${withPrefill.length} steps`);
  for (const r of withPrefill) {
    if (h.sink.finished.get(1)!.stats.finishedMs <= r.startMs) continue;
    assert.equal(r.numDecodeTokens, 1, `step ${r.stepIndex} stalled the decode`);
    assert.ok(r.numPrefillTokens <= 39);
  }
  assert.equal(h.sink.outcomeOf(1), "finished:length");
  assert.equal(h.sink.outcomeOf(2), "finished:length");
});

/**
 * guardFirstTokens: two resident models, 1 ms per prefill token and nothing else (the estimate is
 * exact and no step costs more than its prefill). Request 1 (model `short`, 20 tokens) comes first
 * by slack; request 2 (model `long`, 200 tokens) fits in the same step's budget.
 */
function sharedStep(guardFirstTokens: boolean, longSloMs: number, policy: "slo" | "fcfs" = "slo", longArrivalMs = 1000): { ttft1: number; ttft2: number; steps: number } {
  const h = makeScheduler({
    config: { policy, guardFirstTokens, maxBatchTokens: 512, prefillChunkTokens: 512, prefillMsPerTokenPrior: 1, rekeyTolerance: 1e9 },
    exec: { stepBaseMs: 0, msPerToken: 1 },
    budgetPages: 256,
  });
  h.sched.addModel(makeProfile("short"), { ttftSloMs: 100 });
  h.sched.addModel(makeProfile("long"), { ttftSloMs: longSloMs });
  preload(h, "short", "long");
  h.clock.set(1000);
  submit(h, { id: 1, model: "short", arrivalMs: 1000, prompt: 20, maxTokens: 1 });
  submit(h, { id: 2, model: "long", arrivalMs: longArrivalMs, prompt: 200, maxTokens: 1 });
  const log = drive(h);
  const ttft = (id: number) => h.sink.finished.get(id)!.stats.firstTokenMs - h.sink.finished.get(id)!.stats.arrivalMs;
  return { ttft1: ttft(1), ttft2: ttft(2), steps: log.actions.filter((a) => a === "step").length };
}

test("guardFirstTokens: a prefill that would push another request's first token past its deadline waits one step, if it still meets its own", () => {
  // Together: one 220 ms step, request 1 (deadline +100) misses. Guarded: 20 ms, then 200 ms.
  assert.deepEqual(sharedStep(false, 10_000), { ttft1: 220, ttft2: 220, steps: 1 });
  assert.deepEqual(sharedStep(true, 10_000), { ttft1: 20, ttft2: 220, steps: 2 });
  // FCFS queues have no deadlines to guard.
  assert.deepEqual(sharedStep(true, 10_000, "fcfs"), { ttft1: 220, ttft2: 220, steps: 1 });
});

test("guardFirstTokens: a prefill that cannot meet its own deadline from the next step joins this one", () => {
  // Request 2 arrived at 900 with a 250 ms SLO: late (slack −50), after request 1 by its 200 ms
  // estimate. From the next step it would end at 1220, past its deadline of 1150, so it is not
  // kept out and the shared step makes both miss. (Keeping such prefills out too was measured
  // and lost: they then wait behind on-time work, and their model's queue behind them.)
  assert.deepEqual(sharedStep(true, 250, "slo", 900), { ttft1: 220, ttft2: 320, steps: 1 });
  // Arrived at 1000 with 10 s, it waits a step and still meets its SLO.
  assert.deepEqual(sharedStep(true, 10_000, "slo", 1000), { ttft1: 20, ttft2: 220, steps: 2 });
});
