import { test } from "node:test";
import assert from "node:assert/strict";
import { FixedPlacementPolicy } from "../../src/control/policies/fixed.ts";
import { SwapPolicy } from "../../src/control/policies/swap.ts";
import { createPolicy, getPolicy, POLICY_NAMES } from "../../src/control/policies/registry.ts";
import { DEFAULT_CONTROL_CONFIG, type ControlConfig } from "../../src/control/types.ts";
import { act, deact, device, inst, limit, model, state, MiB } from "./helpers.ts";

const cfg = (o: Partial<ControlConfig> = {}): ControlConfig => ({ ...DEFAULT_CONTROL_CONFIG, minKvFraction: 0.1, ...o });

const catalog = () => [
  model("a", { expected: 4, weightMiB: 30 }),
  model("b", { expected: 2, weightMiB: 30 }),
  model("c", { expected: 1, weightMiB: 30 }),
  model("d", { expected: 0, weightMiB: 20 }),
];
const FLOOR = 1024 * 256; // one full context of 256 tokens × 1 KiB

test("static: Algorithm-1 placement from expected rates, quotas ∝ rate × KV bytes/token (§4.5), set once", () => {
  const p = new FixedPlacementPolicy("static", cfg());
  const s0 = state(0, catalog(), [device(0, 100), device(1, 100)]);
  // a→d0 (tie, first); b→d1 (2/70 < 6/40); c→d1 (3/40 < 5/40); d→d0 (4/50 < 3/20).
  assert.deepEqual([...p.placementFor(s0)], [0, 1, 1, 0]);
  const restD1 = 40 * MiB - 2 * FLOOR;
  const qb = Math.floor(FLOOR + (restD1 * 2) / 3);
  const qc = Math.floor(FLOOR + restD1 / 3) + 1; // the leftover byte goes to the larger remainder
  assert.deepEqual(p.plan(s0, 0), [
    act("a", 0), act("b", 1), act("c", 1), act("d", 0),
    limit("a", 0, 50 * MiB - FLOOR, 1), limit("b", 1, qb, 1), limit("c", 1, qc, 1), limit("d", 0, FLOOR, 1),
  ]);
  // Once placed with limits in force: nothing to do, whatever the demand does.
  const s1 = state(60_000, catalog().map((m) => ({ ...m, pendingRequests: 5 })), [
    device(0, 100, [inst("a", { limitBytes: 1, revision: 1 }), inst("d", { limitBytes: 1, revision: 1, lastUsedMs: 0 })]),
    device(1, 100, [inst("b", { limitBytes: 1, revision: 1, running: 9 }), inst("c", { limitBytes: 1, revision: 1 })]),
  ]);
  assert.deepEqual(p.plan(s1, 60_000), []);
  // An instance without a limit (e.g. re-added by hand) gets its quota with the next revision.
  const s2 = state(0, catalog(), [
    device(0, 100, [inst("a", { limitBytes: null, revision: 3 }), inst("d", { limitBytes: 1, revision: 1 })]),
    device(1, 100, [inst("b", { limitBytes: 1, revision: 1 }), inst("c", { limitBytes: 1, revision: 1 })]),
  ]);
  assert.deepEqual(p.plan(s2, 0), [limit("a", 0, 50 * MiB - FLOOR, 4)]);
  assert.equal(p.needs.kvQuota, "fixed");
  assert.equal(p.needs.pinActivated, true);
});

test("muxserve: greedy by rate × size onto the least-loaded device, quotas ∝ rate", () => {
  const p = new FixedPlacementPolicy("muxserve", cfg());
  const s0 = state(0, catalog(), [device(0, 100), device(1, 100)]);
  // loads 120, 60, 30, 0: a→d0; b→d1; c→d1 (60 < 120); d→d1 (90 < 120, 80 MiB ≤ 90).
  assert.deepEqual([...p.placementFor(s0)], [0, 1, 1, 1]);
  const rest = 20 * MiB - 3 * FLOOR;
  assert.deepEqual(p.plan(s0, 0), [
    act("a", 0), act("b", 1), act("c", 1), act("d", 1),
    limit("a", 0, 70 * MiB, 1), limit("b", 1, Math.floor(FLOOR + (rest * 2) / 3), 1),
    limit("c", 1, Math.floor(FLOOR + rest / 3) + 1, 1), limit("d", 1, FLOOR, 1),
  ]);
});

test("elastic: the static placement, no quotas, FCFS", () => {
  const p = new FixedPlacementPolicy("elastic", cfg());
  const s0 = state(0, catalog(), [device(0, 100), device(1, 100)]);
  assert.deepEqual(p.plan(s0, 0), [act("a", 0), act("b", 1), act("c", 1), act("d", 0)]);
  assert.deepEqual(p.needs, { localPolicy: "fcfs", kvQuota: "elastic", pinActivated: true, maxModelsPerDevice: null });
});

test("fixed placements: best effort when the demand order cannot place everything; the rest are rejected", () => {
  // Demand order puts small "a" on d0 (tie) and "b" on d1, then "big" (85) fits nowhere; decreasing size places all.
  const models = [model("a", { expected: 5, weightMiB: 10 }), model("b", { expected: 4, weightMiB: 10 }), model("big", { expected: 1, weightMiB: 85 })];
  const p = new FixedPlacementPolicy("static", cfg());
  const s = state(0, models, [device(0, 100), device(1, 100)]);
  assert.deepEqual([...p.placementFor(s)], [1, 1, 0]);
  const tooMany = [model("x", { expected: 1, weightMiB: 60 }), model("y", { expected: 1, weightMiB: 60 })];
  const q = new FixedPlacementPolicy("static", cfg());
  const s2 = state(0, tooMany, [device(0, 100)]);
  assert.deepEqual([...q.placementFor(s2)], [0, -1]);
  assert.deepEqual(q.onDemand(s2, 1, 0), { kind: "reject" });
  assert.deepEqual(q.onDemand(s2, 0, 0).kind, "activate");
});

test("swap: warm start fills empty devices with the most expected models, one per device", () => {
  const p = new SwapPolicy(cfg());
  const s = state(0, [model("a", { expected: 1 }), model("b", { expected: 3 }), model("c", { expected: 2 })], [device(0, 100), device(1, 100)]);
  assert.deepEqual(p.plan(s, 0), [act("b", 0), act("c", 1)]);
  assert.deepEqual(p.needs, { localPolicy: "fcfs", kvQuota: "elastic", pinActivated: false, maxModelsPerDevice: 1 });
});

test("swap: on demand takes the LRU device whose model is idle, never a busy one", () => {
  const p = new SwapPolicy(cfg());
  const models = [model("a"), model("b"), model("c", { pending: 1 })];
  const idle = state(0, models, [device(0, 100, [inst("a", { lastUsedMs: 50 })]), device(1, 100, [inst("b", { lastUsedMs: 100 })])]);
  assert.deepEqual(p.onDemand(idle, 2, 0), { kind: "activate", actions: [deact("a", 0), act("c", 0)], device: 0 });
  const busy = state(0, models, [device(0, 100, [inst("a", { running: 1 })]), device(1, 100, [inst("b", { queued: 1 })])]);
  assert.deepEqual(p.onDemand(busy, 2, 0), { kind: "wait" });
  assert.deepEqual(p.plan(busy, 1000), []); // waited 1 s < swapMaxWaitMs
});

test("swap: a starving model forces out the resident model with the least outstanding work, one swap per device", () => {
  const p = new SwapPolicy(cfg({ swapMaxWaitMs: 2000 }));
  const models = [model("a"), model("b"), model("c", { pending: 2, oldestPendingMs: 0 }), model("e", { pending: 1, oldestPendingMs: 10 })];
  const s = state(3000, models, [
    device(0, 100, [inst("a", { queued: 3, running: 1 })]),
    device(1, 100, [inst("b", { running: 1 })]),
  ]);
  assert.deepEqual(p.plan(s, 3000), [deact("b", 1), deact("a", 0), act("c", 1), act("e", 0)]);
  // b was swapped in 500 ms ago (minimum residency): a goes instead, and e must wait.
  const s2 = state(3000, models, [
    device(0, 100, [inst("a", { queued: 3, running: 1 })]),
    device(1, 100, [inst("b", { running: 1, sinceMs: 2500 })]),
  ]);
  assert.deepEqual(p.plan(s2, 3000), [deact("a", 0), act("c", 0)]);
});

test("registry: every policy by name, unknown names fail with PRISM_UNKNOWN_POLICY", () => {
  for (const name of POLICY_NAMES) {
    assert.equal(getPolicy(name).name, name);
    assert.equal(createPolicy(name).name, name);
    assert.deepEqual(getPolicy(name).needs, createPolicy(name).needs);
  }
  assert.equal(createPolicy("prism").needs.localPolicy, "slo");
  assert.throws(() => getPolicy("lottery"), (e: unknown) => (e as { code?: string }).code === "PRISM_UNKNOWN_POLICY");
  assert.throws(() => getPolicy("toString"), (e: unknown) => (e as { code?: string }).code === "PRISM_UNKNOWN_POLICY");
});

test("control config: defaults filled, unknown keys and bad values refused", async () => {
  const { resolveControlConfig } = await import("../../src/control/config.ts");
  assert.equal(resolveControlConfig().roundMs, 5000);
  assert.equal(resolveControlConfig({ tau: 0.5 }).tau, 0.5);
  assert.throws(() => resolveControlConfig({ roundMS: 1 } as never), (e: unknown) => (e as { code?: string }).code === "PRISM_CONFIG_UNKNOWN_KEY");
  for (const bad of [{ roundMs: 0 }, { tau: 1 }, { tau: -0.1 }, { maxMigrationsPerRound: 1.5 }, { minKvFraction: 1 }, { rateWindowMs: Infinity }]) {
    assert.throws(() => resolveControlConfig(bad), (e: unknown) => (e as { code?: string }).code === "PRISM_CONFIG_INVALID", JSON.stringify(bad));
  }
});
