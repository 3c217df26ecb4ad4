import { test } from "node:test";
import assert from "node:assert/strict";
import { PrismPolicy } from "../../src/control/policies/prism.ts";
import { weightsAfter } from "../../src/control/cluster-state.ts";
import { DEFAULT_CONTROL_CONFIG, type ControlConfig } from "../../src/control/types.ts";
import { act, deact, device, inst, mig, model, state, MiB } from "./helpers.ts";

const cfg = (o: Partial<ControlConfig> = {}): ControlConfig => ({ ...DEFAULT_CONTROL_CONFIG, minKvFraction: 0.1, ...o });

test("prism: the lighter of two co-located models migrates to the empty device, the heaviest stays", () => {
  const s = state(0, [model("a", { rate: 10 }), model("b", { rate: 5 })], [
    device(0, 100, [inst("a", { queued: 2 }), inst("b", { running: 1 })]),
    device(1, 100),
  ]);
  // Algorithm 1: a (w=10) first: both devices empty → d0 (current). b (w=5): d1 = 5/90 beats d0 = 15/80 by > τ.
  // Real check: max(KVPR) before 15/80 = .1875, after (d0 drained of b) max(10/90, 5/90) = .111 < .1875·0.8.
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 1000), [mig("b", 0, 1)]);
});

test("prism: τ keeps a model where it is when the move gains less than τ", () => {
  const s = state(0, [model("a", { rate: 10 }), model("b", { rate: 5 })], [
    device(0, 100, [inst("a", { queued: 2 }), inst("b", { running: 1 })]),
    device(1, 100),
  ]);
  // Gain: .1875 → .111 is 41%: less than τ = 50%, more than τ = 30%.
  assert.deepEqual(new PrismPolicy(cfg({ tau: 0.5 })).plan(s, 1000), []);
  assert.deepEqual(new PrismPolicy(cfg({ tau: 0.3 })).plan(s, 1000), [mig("b", 0, 1)]);
});

test("prism: at most maxMigrationsPerRound migrations, heaviest movable model first", () => {
  const models = [model("a", { rate: 8 }), model("b", { rate: 6 }), model("c", { rate: 4 }), model("d", { rate: 2 })];
  const devices = () => [
    device(0, 100, [inst("a", { running: 1 }), inst("b", { running: 1 }), inst("c", { running: 1 }), inst("d", { running: 1 })]),
    device(1, 100),
    device(2, 100),
  ];
  // Algorithm 1 (from an empty virtual cluster): a→d0 (current, ties), b→d1, c→d2, d→d2 (4/.. vs 6/.. vs 8/..)
  // → d: (4+2)/80=.075 on d2 vs d1 (6+2)/80=.1 vs d0 (8+2)/80=.125 → d2.
  assert.deepEqual(new PrismPolicy(cfg({ maxMigrationsPerRound: 1 })).plan(state(0, models, devices()), 0), [mig("b", 0, 1)]);
  assert.deepEqual(new PrismPolicy(cfg({ maxMigrationsPerRound: 2 })).plan(state(0, models, devices()), 0), [mig("b", 0, 1), mig("c", 0, 2)]);
  assert.deepEqual(new PrismPolicy(cfg({ maxMigrationsPerRound: 0 })).plan(state(0, models, devices()), 0), []);
});

test("prism: models in transition, pinned models and models without demand are never moved", () => {
  const s = state(0, [model("a", { rate: 10 }), model("b", { rate: 5 }), model("c", { rate: 5, pinned: true }), model("z", { rate: 0 })], [
    device(0, 100, [inst("a", { running: 1 }), inst("b", { state: "activating" }), inst("c", { running: 1 }), inst("z", { running: 1 })]),
    device(1, 100),
  ]);
  // Only "a" may move (and does: 20/60 on d0 → 10/90 on d1); b, c and z stay whatever it costs.
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 0), [mig("a", 0, 1)]);
});

test("prism: a migration never lands where the weights do not fit", () => {
  const s = state(0, [model("a", { rate: 10 }), model("b", { rate: 5, weightMiB: 50 }), model("x", { weightMiB: 50 })], [
    device(0, 100, [inst("a", { running: 1 }), inst("b", { running: 1 })]),
    // 50 + 50 > 90 (weights may take 90% of 100 MiB).
    device(1, 100, [inst("x", { running: 1 })]),
  ]);
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 0), []);
});

test("prism: a waiting model is activated on the device with the lowest resulting KVPR", () => {
  const s = state(0, [model("a", { rate: 10 }), model("b", { rate: 1 }), model("w", { rate: 2, pending: 3 })], [
    device(0, 100, [inst("a", { running: 1 })]),
    device(1, 100, [inst("b", { running: 1 })]),
    device(2, 60),
  ]);
  // d0: 12/80 = .15; d1: 3/80 = .0375; d2: 2/50 = .04 → d1.
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 0), [act("w", 1)]);
  assert.deepEqual(new PrismPolicy(cfg()).onDemand(s, 2, 0), { kind: "activate", actions: [act("w", 1)], device: 1 });
});

test("prism: activation evicts idle unpinned models (LRU) only when no device has room, and never over-commits", () => {
  const models = [
    model("busy", { rate: 5, weightMiB: 40 }),
    model("old", { weightMiB: 30, keepAliveMs: 1e9 }),
    model("new", { weightMiB: 30, keepAliveMs: 1e9 }),
    model("pin", { weightMiB: 40, pinned: true }),
    model("w", { rate: 1, weightMiB: 40, pending: 1 }),
  ];
  const s = state(10_000, models, [
    device(0, 120, [inst("busy", { running: 2 }), inst("old", { lastUsedMs: 100 }), inst("new", { lastUsedMs: 200 })]),
    device(1, 100, [inst("pin")]),
  ]);
  // d1: 40 + 40 = 80 ≤ 90 fits without eviction → d1 wins although d0 after eviction would also fit.
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 10_000), [act("w", 1)]);

  const full = state(10_000, [...models, model("big", { weightMiB: 45, pinned: true })], [
    device(0, 120, [inst("busy", { running: 2 }), inst("old", { lastUsedMs: 100 }), inst("new", { lastUsedMs: 200 })]),
    device(1, 100, [inst("pin"), inst("big")]),
  ]);
  // d0 has 100 MiB of weights (cap 108); w needs 40: evict LRU idle "old" (30) → 110 > 108 → also "new" → 80.
  const plan = new PrismPolicy(cfg()).plan(full, 10_000);
  assert.deepEqual(plan, [deact("old", 0), deact("new", 0), act("w", 0)]);
  const after = weightsAfter(full, plan);
  for (const d of full.devices) assert.ok(after[d.index]! <= d.memoryBytes, `device ${d.index} over-committed`);
  assert.equal(after[0], 80 * MiB);
});

test("prism: a waiting model that fits nowhere stays pending (no action), and one that can never fit is rejected", () => {
  const s = state(0, [model("busy", { weightMiB: 80 }), model("w", { weightMiB: 20, pending: 1 }), model("huge", { weightMiB: 95, pending: 1 })], [
    device(0, 100, [inst("busy", { running: 1 })]),
  ]);
  const p = new PrismPolicy(cfg());
  assert.deepEqual(p.plan(s, 0), []);
  assert.deepEqual(p.onDemand(s, 1, 0), { kind: "wait" });
  assert.deepEqual(p.onDemand(s, 2, 0), { kind: "reject" });
});

test("prism: idle eviction after keep-alive; pinned, busy and waiting models stay", () => {
  const models = [
    model("idle", { keepAliveMs: 5000 }),
    model("fresh", { keepAliveMs: 5000 }),
    model("pin", { pinned: true }),
    model("busy", { keepAliveMs: 0 }),
    model("wait", { keepAliveMs: 0, pending: 1 }),
  ];
  const s = state(10_000, models, [
    device(0, 1000, [inst("idle", { lastUsedMs: 4000 }), inst("fresh", { lastUsedMs: 6000 }), inst("pin", { lastUsedMs: 0 })]),
    device(1, 1000, [inst("busy", { queued: 1 }), inst("wait", { lastUsedMs: 0 })]),
  ]);
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 10_000), [deact("idle", 0)]);
});

test("prism: a model whose reload would miss its TTFT SLO stays resident while its device has KV room", () => {
  // 600 MiB at 6e6 B/ms ≈ 105 ms to reload > 50 ms TTFT SLO.
  const models = [model("tight", { weightMiB: 600, ttftMs: 50 }), model("loose", { weightMiB: 600, ttftMs: 5000 })];
  const roomy = state(10_000, models, [device(0, 2000, [inst("tight"), inst("loose")])]);
  assert.deepEqual(new PrismPolicy(cfg()).plan(roomy, 10_000), [deact("loose", 0)]);
  assert.deepEqual(new PrismPolicy(cfg(), { protectTightSlo: false }).plan(roomy, 10_000), [deact("tight", 0), deact("loose", 0)]);
  // Shared KV (2000 − 1200 = 800 MiB) more than half used: the memory is worth more as KV.
  const pressed = state(10_000, [...models, model("hot", { weightMiB: 1 })], [
    device(0, 2000, [inst("tight"), inst("loose"), inst("hot", { running: 4, kvUsedMiB: 500 })]),
  ]);
  assert.deepEqual(new PrismPolicy(cfg()).plan(pressed, 10_000), [deact("tight", 0), deact("loose", 0)]);
});

test("prism: most-violating waiting models are activated first when memory is scarce", () => {
  const s = state(0, [
    model("calm", { weightMiB: 50, pending: 5, oldestPendingMs: 0, violation: 0 }),
    model("late", { weightMiB: 50, pending: 1, oldestPendingMs: 500, violation: 0.5 }),
  ], [device(0, 100)]);
  // Only one of the two fits (50 + 50 > 90).
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 1000), [act("late", 0)]);
});

test("prism: demandSignal 'tokens' weighs models by KV bytes of token demand", () => {
  const models = [
    model("short", { rate: 10, tokenRate: 100, kvBytesPerToken: 1024 }),
    model("long", { rate: 1, tokenRate: 10_000, kvBytesPerToken: 1024 }),
    model("w", { rate: 1, tokenRate: 100, pending: 1 }),
  ];
  const s = state(0, models, [device(0, 100, [inst("short", { running: 1 })]), device(1, 100, [inst("long", { running: 1 })])]);
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 0), [act("w", 1)]);
  assert.deepEqual(new PrismPolicy(cfg(), { demandSignal: "tokens" }).plan(s, 0), [act("w", 0)]);
});

test("prism: with maxReplicas > 1, a model dominating the hottest device gets a second instance", () => {
  const s = state(0, [model("x", { rate: 20 }), model("y", { rate: 1 })], [
    device(0, 100, [inst("x", { running: 8 })]),
    device(1, 100, [inst("y", { running: 1 })]),
    device(2, 100),
  ]);
  // Hot d0: 20/90; a replica on d2 splits x: max(10/90, 10/90) < .8 · 20/90 (d1 would give 11/80).
  assert.deepEqual(new PrismPolicy(cfg(), { maxReplicas: 2 }).plan(s, 0), [act("x", 2)]);
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 0), []);
  // Replicas count against the per-round cap.
  assert.deepEqual(new PrismPolicy(cfg({ maxMigrationsPerRound: 0 }), { maxReplicas: 2 }).plan(s, 0), []);
});

test("prism: a starving model drains busy models of strictly lower demand (never the other way round)", () => {
  const models = (wRate: number) => [
    model("busy", { rate: 1, weightMiB: 60 }),
    model("w", { rate: wRate, weightMiB: 60, pending: 2, oldestPendingMs: 0 }),
  ];
  const at = (now: number, wRate: number) => state(now, models(wRate), [device(0, 100, [inst("busy", { running: 3, queued: 2 })])]);
  const p = new PrismPolicy(cfg({ swapMaxWaitMs: 2000 }));
  assert.deepEqual(p.plan(at(1000, 5), 1000), []); // not starving yet
  assert.deepEqual(p.plan(at(2000, 5), 2000), [deact("busy", 0), act("w", 0)]);
  assert.deepEqual(p.plan(at(2000, 0.5), 2000), []); // lighter than the resident model: it waits
  assert.deepEqual(p.onDemand(at(2000, 5), 1, 2000), { kind: "wait" }); // forcing is a round decision
});
