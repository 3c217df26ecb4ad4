// Property tests: (1) no policy's plan ever over-commits a device or acts inconsistently, on random
// cluster states; (2) on a real cluster (DeviceSchedulers + fake executor) under random demand,
// every request is served exactly once with the right tokens — through activations, evictions,
// migrations and swaps — and every waiting model gets activated.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { weightsAfter } from "../../src/control/cluster-state.ts";
import { createPolicy, POLICY_NAMES } from "../../src/control/policies/registry.ts";
import { demandWeights } from "../../src/control/policies/prism.ts";
import type { Action, ClusterState, InstanceState } from "../../src/control/types.ts";
import { device, inst, model, state, MiB } from "./helpers.ts";
import { Cluster, tinyModel, type Arrival } from "./cluster-harness.ts";

const MIN_KV = 0.05;

interface GenModel { weight: number; rate: number; expected: number; pending: number; keepAlive: number; ttft: number }
interface GenInst { device: number; state: InstanceState; queued: number; running: number; lastUsed: number; since: number; limited: boolean }

const genCluster = fc.record({
  memories: fc.array(fc.integer({ min: 40, max: 200 }), { minLength: 1, maxLength: 6 }),
  models: fc.array(fc.record({
    weight: fc.integer({ min: 1, max: 60 }),
    rate: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 20, noNaN: true })),
    expected: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 10, noNaN: true })),
    pending: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 })),
    keepAlive: fc.integer({ min: 0, max: 20_000 }),
    ttft: fc.integer({ min: 20, max: 5000 }),
  }), { minLength: 1, maxLength: 14 }),
  pinMask: fc.array(fc.boolean(), { minLength: 14, maxLength: 14 }),
  insts: fc.array(fc.record({
    device: fc.nat(),
    state: fc.constantFrom<InstanceState>("active", "active", "active", "activating", "deactivating"),
    queued: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4 })),
    running: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4 })),
    lastUsed: fc.integer({ min: 0, max: 30_000 }),
    since: fc.integer({ min: 0, max: 30_000 }),
    limited: fc.boolean(),
  }), { minLength: 14, maxLength: 14 }),
  placeMask: fc.array(fc.boolean(), { minLength: 14, maxLength: 14 }),
  nowMs: fc.integer({ min: 0, max: 40_000 }),
});

type Gen = typeof genCluster extends fc.Arbitrary<infer T> ? T : never;

function build(g: Gen): ClusterState {
  const used = g.memories.map(() => 0);
  const perDevice: ReturnType<typeof inst>[][] = g.memories.map(() => []);
  const models = g.models.map((m: GenModel, i) => {
    const pinned = g.pinMask[i]! && i % 3 === 0;
    return model(`m${i}`, {
      weightMiB: m.weight, rate: m.rate, expected: m.expected, pending: m.pending, pinned, keepAliveMs: m.keepAlive, ttftMs: m.ttft,
      oldestPendingMs: m.pending > 0 ? Math.max(0, g.nowMs - 3000) : Infinity,
    });
  });
  g.models.forEach((m, i) => {
    if (!g.placeMask[i]) return;
    const gi: GenInst = g.insts[i]!;
    const d = gi.device % g.memories.length;
    if (used[d]! + m.weight > g.memories[d]! * (1 - MIN_KV)) return;
    used[d]! += m.weight;
    perDevice[d]!.push(inst(`m${i}`, {
      state: gi.state, queued: gi.queued, running: gi.running, lastUsedMs: Math.min(gi.lastUsed, g.nowMs),
      sinceMs: Math.min(gi.since, g.nowMs), ...(gi.limited ? { limitBytes: 1 * MiB, revision: 2 } : {}),
    }));
  });
  return state(g.nowMs, models, g.memories.map((mem, d) => device(d, mem, perDevice[d]!)));
}

function checkPlan(policy: string, s: ClusterState, plan: readonly Action[]): void {
  const after = weightsAfter(s, plan);
  for (const d of s.devices) {
    assert.ok(after[d.index]! <= d.memoryBytes * (1 - MIN_KV) + 1e-6, `${policy}: device ${d.index} over-committed: ${after[d.index]} > ${d.memoryBytes}`);
  }
  const byId = new Map(s.models.map((m) => [m.id as string, m] as const));
  const acted = new Set<string>();
  const activatedOn = new Map<number, number>();
  for (const [i, a] of plan.entries()) {
    const mv = byId.get(a.model)!;
    assert.ok(mv !== undefined, `${policy}: unknown model in ${JSON.stringify(a)}`);
    const live = (d: number) => mv.instances.some((x) => x.device === d && x.state !== "deactivating");
    const present = (d: number) => mv.instances.some((x) => x.device === d);
    switch (a.kind) {
      case "activate":
        assert.ok(!present(a.device), `${policy}: activate where present ${JSON.stringify(a)}`);
        activatedOn.set(a.device, i);
        break;
      case "deactivate": {
        assert.ok(live(a.device), `${policy}: deactivate of a non-live instance ${JSON.stringify(a)}`);
        assert.ok(!mv.pinned, `${policy}: deactivated pinned ${a.model}`);
        assert.ok(!activatedOn.has(a.device), `${policy}: deactivate after an activate on device ${a.device}`);
        const x = mv.instances.find((y) => y.device === a.device)!;
        const busy = x.queuedRequests > 0 || x.runningRequests > 0;
        if (busy && policy.startsWith("prism")) {
          // Only the starvation guard drains a busy model: for a heavier model activated there.
          const w = demandWeights(s, "requests");
          assert.ok(plan.some((b) => b.kind === "activate" && b.device === a.device && w[byId.get(b.model)!.index]! > w[mv.index]!),
            `${policy}: drained a busy instance without a heavier model taking its place ${JSON.stringify(a)}`);
        } else if (policy !== "swap") {
          assert.ok(!busy, `${policy}: evicted a busy instance ${JSON.stringify(a)}`);
        }
        break;
      }
      case "migrate": {
        assert.ok(policy.startsWith("prism"));
        assert.ok(!mv.pinned && mv.instances.length === 1 && mv.instances[0]!.state === "active" && mv.instances[0]!.device === a.from,
          `${policy}: bad migration ${JSON.stringify(a)}`);
        assert.ok(!present(a.to));
        break;
      }
      case "setKvLimit": {
        const x = mv.instances.find((y) => y.device === a.device);
        assert.ok(a.revision > (x?.kvLimitRevision ?? 0), `${policy}: stale revision ${JSON.stringify(a)}`);
        assert.ok(a.bytes >= 0);
        continue;
      }
    }
    assert.ok(!acted.has(a.model), `${policy}: two actions on ${a.model} in one plan`);
    acted.add(a.model);
  }
}

test("property: no policy's plan over-commits a device, acts twice on a model, or evicts a busy/pinned instance", () => {
  fc.assert(fc.property(genCluster, (g) => {
    const s = build(g);
    for (const name of [...POLICY_NAMES, "prism-replicas"]) {
      const p = name === "prism-replicas"
        ? createPolicy("prism", { minKvFraction: MIN_KV, maxMigrationsPerRound: 3 }, { prism: { maxReplicas: 3 } })
        : createPolicy(name, { minKvFraction: MIN_KV, swapMaxWaitMs: 2000 });
      checkPlan(name, s, p.plan(s, g.nowMs));
      for (const mv of s.models) {
        if (mv.instances.some((x) => x.state !== "deactivating")) continue;
        const od = p.onDemand(s, mv.index, g.nowMs);
        if (od.kind === "activate") {
          checkPlan(`${name}.onDemand`, s, od.actions);
          assert.ok(od.actions.some((a) => a.kind === "activate" && a.model === mv.id && a.device === od.device));
        }
      }
    }
  }), { numRuns: 300, seed: 42 });
});

const genLoad = fc.record({
  numDevices: fc.integer({ min: 1, max: 3 }),
  weights: fc.array(fc.integer({ min: 4, max: 24 }), { minLength: 2, maxLength: 5 }),
  arrivals: fc.array(fc.record({ atMs: fc.integer({ min: 0, max: 1500 }), model: fc.nat(), prompt: fc.integer({ min: 1, max: 40 }), maxTokens: fc.integer({ min: 1, max: 30 }) }),
    { minLength: 1, maxLength: 60 }),
  /** Extra deactivations / migrations forced on the cluster at random times (beyond the policy's own). */
  chaos: fc.array(fc.record({ arrival: fc.nat(), delayMs: fc.integer({ min: 0, max: 30 }), migrate: fc.boolean(), to: fc.nat() }), { maxLength: 6 }),
  policy: fc.constantFrom(...POLICY_NAMES),
  tau: fc.constantFrom(0, 0.2),
  maxReplicas: fc.constantFrom(1, 2),
});

/** Apply one forced action if it makes sense now (a live instance; a target where the weights fit). */
function forceAction(c: Cluster, ev: { model: string; migrate: boolean; to: number }): void {
  const s = c.gs.observe();
  const mv = s.models.find((m) => m.id === ev.model)!;
  const live = mv.instances.filter((i) => i.state !== "deactivating");
  if (live.length === 0) return;
  const from = live[0]!.device;
  if (!ev.migrate) {
    c.gs.executor.apply([{ kind: "deactivate", model: mv.id, device: s.devices[from]!.id }], c.clock.nowMs());
    return;
  }
  const to = ev.to % s.devices.length;
  const dv = s.devices[to]!;
  if (mv.instances.some((i) => i.device === to) || dv.weightBytes + mv.weightBytes > 0.75 * dv.memoryBytes) return;
  c.gs.executor.apply([{ kind: "migrate", model: mv.id, from: s.devices[from]!.id, to: dv.id }], c.clock.nowMs());
}

test("property: under random demand and forced drains every request is served exactly once with its reference tokens, by every policy", () => {
  fc.assert(fc.property(genLoad, (g) => {
    const models = g.weights.map((w, i) => tinyModel(`m${i}`, { weightPages: w, ttftSloMs: 200 }));
    const c = new Cluster({
      numDevices: g.numDevices, budgetPages: 64, models, policy: g.policy,
      // Short rounds, windows and keep-alives: many activations, evictions, migrations and swaps.
      // A quarter of each device stays free of weights, so fixed quotas leave every model some pages.
      config: { roundMs: 50, rateWindowMs: 300, idleEvictMs: 100, tau: g.tau, maxMigrationsPerRound: 2, swapMaxWaitMs: 100, minKvFraction: 0.25 },
      device: { maxBatchSeqs: 1, maxBatchTokens: 32 },
      expectedRates: Object.fromEntries(models.map((m, i) => [m.profile.id, i % 2])),
      loadMsPerByte: 1e-4,
      policyOptions: { prism: { maxReplicas: g.maxReplicas } },
    });
    const arrivals: Arrival[] = g.arrivals
      .map((a) => ({ atMs: a.atMs, model: `m${a.model % models.length}`, prompt: a.prompt, maxTokens: a.maxTokens }))
      .sort((p, q) => p.atMs - q.atMs);
    // Forced drains shortly after an arrival of the model, while it likely has queued requests.
    const chaos = g.chaos.map((e) => {
      const a = arrivals[e.arrival % arrivals.length]!;
      return { atMs: a.atMs + e.delayMs, model: a.model, migrate: e.migrate, to: e.to };
    }).sort((p, q) => p.atMs - q.atMs);
    let from = 0;
    for (const ev of chaos) {
      c.run(ev.atMs, arrivals.filter((a) => a.atMs >= from && a.atMs <= ev.atMs));
      from = ev.atMs + 1e-9;
      forceAction(c, ev);
    }
    // "Eventually": every model with waiting requests is activated and served within this horizon.
    c.run(1500 + 200 * c.roundMs, arrivals.filter((a) => a.atMs >= from));
    assert.deepEqual(c.sink.problems, []);
    for (const [id, s] of c.submitted) {
      if (s.result !== "accepted") {
        // Only the fixed placements may refuse a model, and only one they could not place.
        assert.ok(typeof s.result === "object" && s.result.code === "PRISM_NO_CAPACITY", `request ${id}: ${String(s.result)}`);
        continue;
      }
      const f = c.sink.finished.get(id);
      assert.ok(f !== undefined, `${g.policy}: request ${id} (${s.model}) never finished; log:\n${c.log.join("\n")}`);
      assert.deepEqual(f.outcome, { kind: "finished", reason: "length" }, `request ${id}`);
      assert.deepEqual(c.sink.tokens.get(id), c.expectedTokens(id), `request ${id} tokens`);
      assert.equal(c.sink.finishCount.get(id), 1);
    }
    assert.equal(c.gs.numInFlight, 0);
    assert.equal(c.gs.numPending, 0);
    for (const d of c.devs) assert.deepEqual(d.memory.auditProblems(), []);
  }), { numRuns: 100, seed: 7 });
});
