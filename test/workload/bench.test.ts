// The bench client against a fixture server with known delays (the real gateway test is the lead's).
// No timing assertions beyond causal bounds: TTFT can never be below the fixture's delay; upper bounds are loose.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runBench } from "../../src/workload/replay/run-bench.ts";
import { resolveModelMap } from "../../src/workload/replay/model-map.ts";
import { extractKvPages } from "../../src/workload/replay/state-sampler.ts";
import { calibrationFrom, wordPrompt, wordsFor } from "../../src/workload/replay/prompt.ts";
import { traceFromRows, type TraceRow } from "../../src/workload/trace-format.ts";
import { evaluateSlo, type RequestOutcomes } from "../../src/metrics/slo.ts";
import { startFakeServer } from "./fixtures/fake-openai-server.ts";

const LOOSE_MS = 3000;

test("every request is accounted for; TTFT, tokens and errors measured", async () => {
  const srv = await startFakeServer({
    fast: { ttftMs: 40, tokenMs: 5, slo: { ttft_slo_ms: 5000, tpot_slo_ms: 1000 } },
    slowish: { ttftMs: 150, tokenMs: 10 },
    broken: { ttftMs: 0, tokenMs: 0, failStatus: 503 },
  });
  try {
    const rows: TraceRow[] = [];
    for (let i = 0; i < 24; i++) rows.push({ arrivalS: i * 0.02, model: ["a", "b", "c"][i % 3]!, inputTokens: 10 + i, outputTokens: 3 + (i % 4) });
    const trace = traceFromRows(rows);
    const r = await runBench({ url: srv.url, trace, models: "a=fast,b=slowish,c=broken" });
    assert.equal(r.outcomes.count, 24);
    assert.equal(r.numSent, 24);
    const okCount = r.outcomes.ok.reduce((s, x) => s + x, 0);
    assert.equal(okCount + r.errors.length, 24, "every request completed or errored");
    assert.equal(r.errors.length, 8);
    for (const e of r.errors) {
      assert.equal(e.model, "c");
      assert.equal(e.status, 503);
      assert.equal(e.code, "PRISM_OVERLOADED");
    }
    for (let i = 0; i < 24; i++) {
      const model = trace.modelNames[r.outcomes.modelIndex[i]!];
      if (model === "c") {
        assert.equal(r.outcomes.ok[i], 0);
        continue;
      }
      const delay = model === "a" ? 40 : 150;
      assert.equal(r.outcomes.ok[i], 1);
      assert.ok(r.outcomes.ttftMs[i]! >= delay - 1, `ttft ${r.outcomes.ttftMs[i]} < fixture delay ${delay}`);
      assert.ok(r.outcomes.ttftMs[i]! < delay + LOOSE_MS);
      assert.ok(r.outcomes.e2eMs[i]! >= r.outcomes.ttftMs[i]!);
      assert.equal(r.outcomes.outputTokens[i], trace.outputTokens[i]);
      // calibration learnt "words + 1 BOS": prompts are exact
      assert.equal(r.promptTokens[i], trace.inputTokens[i]);
      assert.ok(r.sendLateMs[i]! >= 0);
    }
    // the server saw what we promised the gateway
    const body = srv.received.find((q) => q.body["stream"] === true)!.body;
    assert.equal(body["ignore_eos"], true);
    assert.deepEqual(body["stream_options"], { include_usage: true });
    assert.deepEqual(r.serverSlos, { fast: { ttftMs: 5000, tpotMs: 1000 } });
    // the result plugs straight into the metrics
    const outcomes: RequestOutcomes = r.outcomes;
    const rep = evaluateSlo(outcomes, { ttftMs: 10_000, tpotMs: 10_000 });
    assert.equal(rep.overall.failed, 8);
    assert.equal(rep.overall.bothAttainment, 16 / 24);
  } finally {
    await srv.close();
  }
});

test("open loop: a slow request does not delay later sends", async () => {
  const srv = await startFakeServer({ slow: { ttftMs: 1500, tokenMs: 0 }, fast: { ttftMs: 0, tokenMs: 0 } });
  try {
    const rows: TraceRow[] = [{ arrivalS: 0, model: "slow", inputTokens: 4, outputTokens: 2 }];
    for (let i = 1; i <= 5; i++) rows.push({ arrivalS: i * 0.05, model: "fast", inputTokens: 4, outputTokens: 2 });
    const r = await runBench({ url: srv.url, trace: traceFromRows(rows), calibrate: false });
    assert.equal(r.outcomes.ok.reduce((s, x) => s + x, 0), 6);
    const slowEndS = r.sendS[0]! + r.outcomes.e2eMs[0]! / 1000;
    for (let i = 1; i <= 5; i++) {
      assert.ok(r.sendS[i]! < slowEndS, `request ${i} sent at ${r.sendS[i]} after the slow one finished at ${slowEndS}`);
      assert.ok(r.sendS[i]! >= r.outcomes.arrivalS[i]!, "never early");
    }
    // the server received all fast requests before it finished the slow one
    const slow = srv.received.find((q) => q.model === "slow" && q.body["stream"] === true)!;
    const fast = srv.received.filter((q) => q.model === "fast" && q.body["stream"] === true);
    assert.equal(fast.length, 5);
    for (const f of fast) assert.ok(f.receivedMs < slow.endedMs);
  } finally {
    await srv.close();
  }
});

test("timeouts, unknown models, --limit-s and /admin/state sampling", async () => {
  const srv = await startFakeServer({ ok: { ttftMs: 5, tokenMs: 30 }, hang: { ttftMs: 0, tokenMs: 0, hang: true } });
  try {
    const rows: TraceRow[] = [
      { arrivalS: 0, model: "ok", inputTokens: 4, outputTokens: 8 },
      { arrivalS: 0.01, model: "hang", inputTokens: 4, outputTokens: 2 },
      { arrivalS: 0.05, model: "ok", inputTokens: 4, outputTokens: 8 },
      { arrivalS: 5, model: "ok", inputTokens: 4, outputTokens: 2 },
    ];
    const trace = traceFromRows(rows);
    const r = await runBench({ url: srv.url, trace, calibrate: false, requestTimeoutMs: 400, limitS: 1, sampleStateMs: 10 });
    assert.equal(r.outcomes.count, 3, "the request at 5 s is beyond --limit-s");
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.code, "timeout");
    assert.equal(r.errors[0]!.index, 1);
    assert.ok(r.stateSamples.length > 0);
    assert.ok(r.stateSamples.some((s) => (s.kvPagesByModel["ok"] ?? 0) > 0), "sampled in-flight pages of model ok");
    await assert.rejects(runBench({ url: srv.url, trace, models: "ok=nope" }), /does not list/);
  } finally {
    await srv.close();
  }
  // a server that is not there: every request fails with a connection error, none is missing
  const r = await runBench({ url: "http://127.0.0.1:9", trace: traceFromRows([{ arrivalS: 0, model: "x", inputTokens: 1, outputTokens: 1 }]), calibrate: false });
  assert.equal(r.errors.length, 1);
  assert.equal(r.errors[0]!.status, null);
  assert.ok(r.warnings.some((w) => w.includes("/v1/models")));
});

test("an aborted run fails the unsent requests instead of dropping them", async () => {
  const srv = await startFakeServer({ ok: { ttftMs: 0, tokenMs: 0 } });
  try {
    const trace = traceFromRows([
      { arrivalS: 0, model: "ok", inputTokens: 1, outputTokens: 1 },
      { arrivalS: 30, model: "ok", inputTokens: 1, outputTokens: 1 },
    ]);
    const ac = new AbortController();
    const p = runBench({ url: srv.url, trace, calibrate: false, signal: ac.signal });
    setTimeout(() => ac.abort(), 300);
    const r = await p;
    assert.equal(r.outcomes.count, 2);
    assert.equal(r.numSent, 1);
    assert.equal(r.outcomes.ok[0], 1);
    assert.deepEqual(r.errors.map((e) => [e.index, e.code]), [[1, "aborted"]]);
  } finally {
    await srv.close();
  }
});

test("model maps, prompt synthesis and state extraction", () => {
  assert.deepEqual(resolveModelMap("round-robin", ["m0", "m1", "m2"], ["b", "a"]), ["a", "b", "a"]);
  assert.deepEqual(resolveModelMap("m0=x,*=y", ["m0", "m1"], []), ["x", "y"]);
  assert.deepEqual(resolveModelMap(undefined, ["a"], ["a", "b"]), ["a"]);
  assert.throws(() => resolveModelMap(undefined, ["zz"], ["a"]), /does not list/);
  assert.throws(() => resolveModelMap("m0=x", ["m0", "m1"], []), /does not map trace model 'm1'/);
  assert.throws(() => resolveModelMap("q=x", ["m0"], []), /trace has no model 'q'/);
  const cal = calibrationFrom({ words: 16, tokens: 33 }, { words: 64, tokens: 129 });
  assert.deepEqual(cal, { interceptTokens: 1, tokensPerWord: 2 });
  assert.equal(wordsFor(101, cal), 50);
  assert.equal(wordPrompt(5, 3).split(" ").length, 5);
  assert.notEqual(wordPrompt(5, 0), wordPrompt(5, 7));
  assert.deepEqual(extractKvPages({ devices: [{ device: 0, models: [{ id: "a", kvPages: 3 }, { modelId: "b", usedPages: 2 }] }, { models: [{ id: "a", kvPages: 4 }] }] }), { a: 7, b: 2 });
});
