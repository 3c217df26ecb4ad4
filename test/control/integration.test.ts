// Two devices, four small models, real DeviceSchedulers with the fake executor: one model's load
// jumps and the global scheduler reacts while requests keep completing with the right tokens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster, tinyModel, type Arrival } from "./cluster-harness.ts";

/** Poisson-free, deterministic arrivals: `ratePerS` evenly spaced in [fromMs, toMs). */
function stream(model: string, ratePerS: number, fromMs: number, toMs: number, prompt = 16, maxTokens = 8): Arrival[] {
  const out: Arrival[] = [];
  const gap = 1000 / ratePerS;
  for (let t = fromMs; t < toMs; t += gap) out.push({ atMs: Math.round(t), model, prompt, maxTokens });
  return out;
}

function assertAllServed(c: Cluster): void {
  assert.deepEqual(c.sink.problems, []);
  for (const [id, s] of c.submitted) {
    assert.equal(s.result, "accepted", `request ${id} was not accepted`);
    const f = c.sink.finished.get(id);
    assert.ok(f !== undefined, `request ${id} (${s.model}) never finished`);
    assert.deepEqual(f.outcome, { kind: "finished", reason: "length" }, `request ${id}`);
    assert.deepEqual(c.sink.tokens.get(id), c.expectedTokens(id), `request ${id} tokens`);
  }
  assert.equal(c.gs.numInFlight, 0);
  assert.equal(c.gs.numPending, 0);
}

test("prism, 2 devices × 4 models: a KV-heavy load jump moves the light co-located model away; nothing is lost", () => {
  // 64 pages per device, 16-page models: up to 3 per device (0.95 × 64 = 60.8 pages of weights).
  const models = ["a", "b", "x", "c"].map((n) => tinyModel(n, { weightPages: 16 }));
  const c = new Cluster({
    numDevices: 2, budgetPages: 64, models, policy: "prism",
    config: { roundMs: 1000, rateWindowMs: 5000, idleEvictMs: 60_000, tau: 0.2 },
    expectedRates: { a: 1, b: 1, x: 1, c: 1 },
  });
  // The warm start (prefetch by expected rate, lowest resulting KVPR) places a,x → d0 and b,c → d1.
  const arrivals: Arrival[] = [
    { atMs: 10, model: "a", prompt: 16, maxTokens: 8 },
    { atMs: 20, model: "b", prompt: 16, maxTokens: 8 },
    { atMs: 30, model: "x", prompt: 16, maxTokens: 8 },
    { atMs: 40, model: "c", prompt: 16, maxTokens: 8 },
    ...stream("a", 1, 1000, 30_000),
    ...stream("b", 1, 1000, 30_000),
    ...stream("c", 1, 1000, 30_000),
    ...stream("x", 1, 1000, 8000),
    ...stream("x", 30, 8000, 30_000, 256, 160),
  ].sort((p, q) => p.atMs - q.atMs || p.model.localeCompare(q.model));
  const finishedPerSecond: number[] = [];
  let lastCount = 0;
  c.run(2000, arrivals.filter((a) => a.atMs < 2000));
  assert.deepEqual(c.gs.replicasOf("a" as never), [0]);
  assert.deepEqual(c.gs.replicasOf("x" as never), [0]);
  assert.deepEqual(c.gs.replicasOf("b" as never), [1]);
  assert.deepEqual(c.gs.replicasOf("c" as never), [1]);
  for (let s = 2; s < 40; s++) {
    c.run(s * 1000, arrivals.filter((a) => a.atMs >= (s - 1) * 1000 && a.atMs < s * 1000));
    finishedPerSecond.push(c.sink.finished.size - lastCount);
    lastCount = c.sink.finished.size;
  }
  c.run(60_000);
  assertAllServed(c);
  // The jump (long prompts and outputs: d0's KV is contended) made d0 (a + x) the hot spot. a, the
  // light model, is idle between its requests, so d0 evicts its weights for KV room (lazy eviction
  // at the device) and prism activates it again on d1 at its next request; x stays.
  const moves = c.log.filter((l) => l.includes('"model":"a"') && !l.startsWith("0 "));
  assert.equal(moves.length, 1, c.log.join("\n"));
  assert.match(moves[0]!, /"activate","model":"a","device":1/);
  assert.ok(Number(moves[0]!.split(" ")[0]) >= 8000, "nothing moves before the jump");
  assert.deepEqual(c.gs.replicasOf("x" as never), [0]);
  assert.deepEqual(c.gs.replicasOf("a" as never), [1]);
  assert.equal(c.gs.counters.externalEvictions, 1);
  // Requests kept completing in every second while load was offered (1..29 s).
  for (let s = 0; s < 28; s++) assert.ok(finishedPerSecond[s]! > 0, `no request finished in second ${s + 2}`);
});

test("prism: a cold model whose load jumps is activated on demand (one activation for the burst)", () => {
  const models = ["a", "b", "x", "c"].map((n) => tinyModel(n, { weightPages: 16 }));
  const c = new Cluster({
    numDevices: 2, budgetPages: 64, models, policy: "prism",
    config: { roundMs: 1000, rateWindowMs: 5000, idleEvictMs: 60_000 },
  });
  const arrivals = [
    ...stream("a", 2, 0, 10_000),
    ...stream("b", 2, 0, 10_000),
    ...stream("c", 2, 0, 10_000),
    ...stream("x", 50, 5000, 6000),
  ].sort((p, q) => p.atMs - q.atMs || p.model.localeCompare(q.model));
  c.run(30_000, arrivals);
  assertAllServed(c);
  const xActivations = c.log.filter((l) => l.includes('"activate"') && l.includes('"model":"x"'));
  assert.equal(xActivations.length, 1, c.log.join("\n"));
  assert.match(xActivations[0]!, /^5000 demand/);
});
