import { test } from "node:test";
import assert from "node:assert/strict";
import { PrismPolicy } from "../../src/control/policies/prism.ts";
import { weightsAfter } from "../../src/control/cluster-state.ts";
import { DEFAULT_CONTROL_CONFIG, type ControlConfig } from "../../src/control/types.ts";
import { act, deact, device, inst, mig, model, state, MiB } from "./helpers.ts";

const cfg = (o: Partial<ControlConfig> = {}): ControlConfig => ({ ...DEFAULT_CONTROL_CONFIG, minKvFraction: 0.1, ...o });

test("prism: the lighter of two co-located models migrates to the empty device, the heaviest stays", () => {
  // d0's KV is contended: 40 of its 80 MiB of shared KV in use.
  const s = state(0, [model("a", { rate: 10 }), model("b", { rate: 5 })], [
    device(0, 100, [inst("a", { queued: 2, kvUsedMiB: 40 }), inst("b", { running: 1 })]),
    device(1, 100),
  ]);
  // Algorithm 1: a (w=10) first: both devices empty → d0 (current). b (w=5): d1 = 5/90 beats d0 = 15/80 by > τ.
  // Real check: max(KVPR) before 15/80 = .1875, after (d0 drained of b) max(10/90, 5/90) = .111 < .1875·0.8.
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 1000), [mig("b", 0, 1)]);
});

test("prism: τ keeps a model where it is when the move gains less than τ", () => {
  const s = state(0, [model("a", { rate: 10 }), model("b", { rate: 5 })], [
    device(0, 100, [inst("a", { queued: 2, kvUsedMiB: 40 }), inst("b", { running: 1 })]),
    device(1, 100),
  ]);
  // Gain: .1875 → .111 is 41%: less than τ = 50%, more than τ = 30%.
  assert.deepEqual(new PrismPolicy(cfg({ tau: 0.5 })).plan(s, 1000), []);
  assert.deepEqual(new PrismPolicy(cfg({ tau: 0.3 })).plan(s, 1000), [mig("b", 0, 1)]);
});

test("prism: at most maxMigrationsPerRound migrations, heaviest movable model first", () => {
  const models = [model("a", { rate: 8 }), model("b", { rate: 6 }), model("c", { rate: 4 }), model("d", { rate: 2 })];
  const devices = () => [
    device(0, 100, [inst("a", { running: 1, kvUsedMiB: 30 }), inst("b", { running: 1 }), inst("c", { running: 1 }), inst("d", { running: 1 })]),
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
    device(0, 100, [inst("a", { running: 1, kvUsedMiB: 30 }), inst("b", { state: "activating" }), inst("c", { running: 1 }), inst("z", { running: 1 })]),
    device(1, 100),
  ]);
  // Only "a" may move (and does: 20/60 on d0 → 10/90 on d1); b, c and z stay whatever it costs.
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 0), [mig("a", 0, 1)]);
});

test("prism: no KVPR migration off a device whose KV is not contended (the move would buy nothing)", () => {
  const at = (kvUsedMiB: number) => state(0, [model("a", { rate: 10 }), model("b", { rate: 5 })], [
    device(0, 100, [inst("a", { queued: 2, kvUsedMiB }), inst("b", { running: 1 })]),
    device(1, 100),
  ]);
  // Shared KV on d0: 100 − 20 = 80 MiB; contended from half of it.
  assert.deepEqual(new PrismPolicy(cfg()).plan(at(39), 1000), []);
  assert.deepEqual(new PrismPolicy(cfg()).plan(at(40), 1000), [mig("b", 0, 1)]);
});

test("prism: a migration never lands where the weights do not fit", () => {
  const s = state(0, [model("a", { rate: 10 }), model("b", { rate: 5, weightMiB: 50 }), model("x", { weightMiB: 50 })], [
    device(0, 100, [inst("a", { running: 1 }), inst("b", { running: 1 })]),
    // 50 + 50 > 90 (weights may take 90% of 100 MiB).
    device(1, 100, [inst("x", { running: 1 })]),
  ]);
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 0), []);
});

test("prism: a KVPR migration only lands where the weights fit beside the KV in use now", () => {
  // d1 holds x (10 MiB, no demand) and x's running requests hold kvUsedMiB of KV there.
  const at = (kvUsedMiB: number) => state(0, [model("a", { rate: 10 }), model("b", { rate: 5 }), model("x")], [
    device(0, 100, [inst("a", { queued: 2, kvUsedMiB: 40 }), inst("b", { running: 1 })]),
    device(1, 100, [inst("x", { running: 4, kvUsedMiB })]),
  ]);
  // b's weights fit d1's weight capacity either way (20 ≤ 90); beside the KV: 10 + 80 + 10 ≤ 100, 10 + 81 + 10 > 100.
  assert.deepEqual(new PrismPolicy(cfg()).plan(at(80), 1000), [mig("b", 0, 1)]);
  assert.deepEqual(new PrismPolicy(cfg()).plan(at(81), 1000), []);
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

test("prism: the starvation guard drains only when the waiting model gains more than the victims lose", () => {
  // 60 MiB loads in 10.49 ms (6e6 B/ms); residency R = 3 loads = 31.5 ms. "busy" (1 s SLO) reloads in
  // time: cold cost 0.05. w at 5/s gains 5 × 0.0315 = 0.157 requests per residency.
  const at = (busyExpected: number, busyTtftMs: number) => state(2000, [
    model("busy", { rate: 1, expected: busyExpected, weightMiB: 60, ttftMs: busyTtftMs }),
    model("w", { rate: 5, weightMiB: 60, pending: 2, oldestPendingMs: 0 }),
  ], [device(0, 100, [inst("busy", { running: 3, queued: 2 })])]);
  const p = new PrismPolicy(cfg({ swapMaxWaitMs: 2000 }));
  // Loss 0.05 × (min(1, 1 × 0.0315) + 1 × 0.0105): drained.
  assert.deepEqual(p.plan(at(0, 1000), 2000), [deact("busy", 0), act("w", 0)]);
  // A victim whose reload misses its SLO (cost 1) and whose long-run rate is 40/s (its EWMA of 1/s is
  // between bursts): loss min(1, 1.26) + 40 × 0.0105 = 1.42 > 0.157, and its demand weight (1/0.005 s)
  // is higher anyway. With a 1 s SLO (weight 1 < 5) only the rate keeps it: 0.05 × 1.42 = 0.071 < 0.157.
  assert.deepEqual(p.plan(at(40, 5), 2000), []);
  assert.deepEqual(p.plan(at(40, 1000), 2000), [deact("busy", 0), act("w", 0)]);
  // w at 0.2/s gains 0.0063 < that 0.071: it waits.
  const slow = state(2000, [
    model("busy", { rate: 0.1, expected: 40, weightMiB: 60 }),
    model("w", { rate: 0.2, weightMiB: 60, pending: 2, oldestPendingMs: 0 }),
  ], [device(0, 100, [inst("busy", { running: 3, queued: 2 })])]);
  assert.deepEqual(p.plan(slow, 2000), []);
});

test("prism: a model activated less than minResidencyLoads of its load times ago is not evicted (hysteresis)", () => {
  // "fresh" (60 MiB: loads in 10.49 ms) became active at `since`; 3 loads = 31.5 ms of minimum residency.
  const at = (now: number, since: number) => state(now, [
    model("fresh", { rate: 0.01, weightMiB: 60 }),
    model("w", { rate: 5, weightMiB: 60, pending: 1 }),
  ], [device(0, 100, [inst("fresh", { sinceMs: since, lastUsedMs: since })])]);
  const p = new PrismPolicy(cfg());
  assert.deepEqual(p.plan(at(1010, 1000), 1010), []);
  assert.deepEqual(p.onDemand(at(1010, 1000), 1, 1010), { kind: "wait" });
  assert.deepEqual(p.plan(at(1040, 1000), 1040), [deact("fresh", 0), act("w", 0)]);
  assert.deepEqual(new PrismPolicy(cfg(), { minResidencyLoads: 0 }).plan(at(1010, 1000), 1010), [deact("fresh", 0), act("w", 0)]);
});

test("prism: eviction takes the idle model worth least per byte (missRate = rate × cold-start cost), not the LRU one", () => {
  // 30 MiB reloads in 5.2 ms (6e6 B/ms): that misses a 1 ms TTFT SLO (cost 1), not a 10 s one (cost 0.05).
  const models = (wRate: number) => [
    model("busy", { rate: 1, weightMiB: 30 }),
    model("tight", { rate: 1, weightMiB: 30, ttftMs: 1 }),
    model("loose", { rate: 1, weightMiB: 30, ttftMs: 10_000 }),
    model("w", { rate: wRate, weightMiB: 30, pending: 1 }),
  ];
  const at = (wRate: number) => state(1000, models(wRate), [
    device(0, 100, [inst("busy", { running: 1 }), inst("tight", { lastUsedMs: 100 }), inst("loose", { lastUsedMs: 200 })]),
  ]);
  const p = new PrismPolicy(cfg());
  assert.equal(p.missRate(at(1).models[1]!), 1);
  assert.equal(p.missRate(at(1).models[2]!), 0.05);
  // 90 MiB of weights may stay: one of the idle two goes. LRU would pick "tight" (used at 100 ms).
  assert.deepEqual(p.plan(at(1), 1000), [deact("loose", 0), act("w", 0)]);
  assert.deepEqual(p.onDemand(at(1), 3, 1000), { kind: "activate", actions: [deact("loose", 0), act("w", 0)], device: 0 });
  // A model arriving more rarely than the cheapest victim's misses (0.05/s) waits: no thrashing.
  assert.deepEqual(p.plan(at(0.04), 1000), []);
  assert.deepEqual(p.onDemand(at(0.04), 3, 1000), { kind: "wait" });
});

test("prism: a starved model takes room from idle models whatever they are worth, only once its device has nothing to do", () => {
  // "w" arrives more rarely than the cheapest victim misses, so it waits (previous test); after
  // starvationMs its oldest request has starved, and once the device is idle it gets the room.
  const keepAliveMs = Infinity; // lazy eviction, as by default: only for room
  const at = (nowMs: number, busy: { running?: number; queued?: number }) => state(nowMs, [
    model("busy", { rate: 1, weightMiB: 30, keepAliveMs }),
    model("tight", { rate: 1, weightMiB: 30, ttftMs: 1, keepAliveMs }),
    model("loose", { rate: 1, weightMiB: 30, ttftMs: 10_000, keepAliveMs }),
    model("w", { rate: 0.04, weightMiB: 30, pending: 1, oldestPendingMs: 1000, keepAliveMs }),
  ], [device(0, 100, [inst("busy", busy), inst("tight", { lastUsedMs: 100 }), inst("loose", { lastUsedMs: 200 })])]);
  const p = new PrismPolicy(cfg({ starvationMs: 10_000 }));
  assert.deepEqual(p.plan(at(10_999, {}), 10_999), [], "not starved yet");
  assert.deepEqual(p.plan(at(11_000, { running: 1 }), 11_000), [], "starved, but the device is busy");
  assert.deepEqual(p.plan(at(11_000, { queued: 1 }), 11_000), [], "starved, but the device has work queued");
  // Idle now, "busy" is as cheap as "loose" (both reload within their SLO: 0.05/s) and used longer ago.
  assert.deepEqual(p.plan(at(11_000, {}), 11_000), [deact("busy", 0), act("w", 0)]);
});

test("prism: the activation estimate includes activationStartMs (a fixed start cost can make a reload miss)", () => {
  // 60 MiB = 62914560 B at 6e6 B/ms = 10.49 ms; TTFT SLO 20 ms: misses only beyond 0.9 × 20 = 18 ms.
  const m = state(0, [model("m", { rate: 2, weightMiB: 60, ttftMs: 20 })], [device(0, 100)]).models[0]!;
  assert.equal(new PrismPolicy(cfg()).activationMs(m), 62914560 / 6e6);
  assert.equal(new PrismPolicy(cfg()).missRate(m), 2 * 0.05);
  assert.equal(new PrismPolicy(cfg({ activationStartMs: 10 })).activationMs(m), 10 + 62914560 / 6e6);
  assert.equal(new PrismPolicy(cfg({ activationStartMs: 10 })).missRate(m), 2);
});

test("prism: an activation avoids a device with a weight load in flight (one copy at a time per device)", () => {
  const s = state(0, [model("l", { weightMiB: 10 }), model("h", { rate: 5, weightMiB: 10 }), model("w", { rate: 1, weightMiB: 10, pending: 1 })], [
    device(0, 100, [inst("l", { state: "activating" })]),
    device(1, 100, [inst("h", { running: 1 })]),
  ]);
  // KVPR would pick d0: (0 + 1)/80 = .0125 < d1: (5 + 1)/80 = .075. d0 is still loading l.
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 0), [act("w", 1)]);
});

test("prism: warm start prefetches models by missRate per byte into free memory, lowest resulting KVPR, up to (1 − fillKvFraction)", () => {
  // All reloads fit their 1 s SLO: cost 0.05 each, so the order is rate per byte: a (.1/MiB), b, e (.05), c (.02); d has no demand.
  const models = [
    model("a", { rate: 4, weightMiB: 40 }),
    model("b", { rate: 2, weightMiB: 40 }),
    model("c", { rate: 1, weightMiB: 50 }),
    model("d", { rate: 0, weightMiB: 10 }),
    model("e", { rate: 1, weightMiB: 20 }),
  ];
  const s = state(0, models, [device(0, 100), device(1, 100)]);
  // a → d0 (tie); b: d1 2/60 < d0 6/20; e: d1 3/40 < d0 5/40; c (50): only d0 (40 + 50 = 90 ≤ 90), 5/10.
  assert.deepEqual(new PrismPolicy(cfg()).plan(s, 0), [act("a", 0), act("b", 1), act("e", 1), act("c", 0)]);
  assert.deepEqual(new PrismPolicy(cfg(), { fillKvFraction: 1 }).plan(s, 0), []);
  // KV in use counts against the fill: 1 + 50 MiB taken leaves room only for e (20 MiB) below 90.
  const busy = state(0, [...models, model("k", { rate: 0, weightMiB: 1 })], [device(0, 100, [inst("k", { running: 1, kvUsedMiB: 50 })])]);
  assert.deepEqual(new PrismPolicy(cfg()).plan(busy, 0), [act("e", 0)]);
});

// Interference tests: 20 MiB of weights at 209715200 B·token/ms prefill 0.1 ms per token; a prompt
// second moment of 4e6 tokens²/s gives prefillLoad = 4e6 × 0.01 / 4000 = 10.
const slow = (o: Partial<ControlConfig> = {}) => cfg({ computeBytesPerMs: 209715200, ...o });

test("prism: prefill interference steers an activation away from a tight, busy model (compute term)", () => {
  const at = (promptSqRate: number) => state(0, [
    model("m0", { rate: 4, ttftMs: 100, weightMiB: 10 }),
    model("q", { rate: 10, weightMiB: 10 }),
    model("big", { rate: 1, weightMiB: 20, pending: 1, promptSqRate }),
  ], [device(0, 1000, [inst("m0", { running: 1 })]), device(1, 100, [inst("q", { running: 1 })])]);
  const p = new PrismPolicy(slow());
  assert.equal(p.prefillLoad(at(4e6).models[2]!), 10);
  // KVPR alone (w = rate / TTFT s): d0 (40 + 1)/970 = .042 < d1 (10 + 1)/70 = .157.
  assert.deepEqual(p.plan(at(0), 0), [act("big", 0)]);
  // With big's long prompts: d0 loses 10 × 4/100 = .4 misses/s, d1 10 × 10/1000 = .1.
  assert.deepEqual(p.plan(at(4e6), 0), [act("big", 1)]);
});

test("prism: interference migration separates co-located models when it saves ≥ 0.01 misses/s (make before break)", () => {
  const at = (promptSqRate: number, d1: ReturnType<typeof device>) => state(0, [
    model("m0", { rate: 4, ttftMs: 100, weightMiB: 10 }),
    model("big", { rate: 1, weightMiB: 20, promptSqRate }),
    model("x", { weightMiB: 10 }),
  ], [device(0, 100, [inst("m0", { running: 1 }), inst("big", { running: 1 })]), d1]);
  const p = new PrismPolicy(slow());
  // Both ways the pair costs .4 misses/s (m0 waits behind big's prefills); moving either saves .4:
  // the lighter one (m0, 10 MiB) moves.
  assert.deepEqual(p.plan(at(4e6, device(1, 100)), 0), [mig("m0", 0, 1)]);
  // Not while the target is loading, nor below the minimum gain (4e4 → .004 misses/s), nor with a zero budget.
  assert.deepEqual(p.plan(at(4e6, device(1, 100, [inst("x", { state: "activating" })])), 0), []);
  assert.deepEqual(p.plan(at(4e4, device(1, 100)), 0), []);
  assert.deepEqual(new PrismPolicy(slow({ maxMigrationsPerRound: 0 })).plan(at(4e6, device(1, 100)), 0), []);
});
