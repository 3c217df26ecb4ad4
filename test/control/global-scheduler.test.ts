import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.ts";
import { deviceId, modelId, requestId } from "../../src/core/ids.ts";
import { GREEDY } from "../../src/core/records.ts";
import { SeededRng } from "../../src/core/rng.ts";
import { DeviceMemory } from "../../src/memory/device-memory.ts";
import { DeviceScheduler } from "../../src/device/device-scheduler.ts";
import { resolveDeviceSchedulerConfig } from "../../src/device/config.ts";
import { GlobalScheduler } from "../../src/control/global-scheduler.ts";
import { PRISM_NEEDS } from "../../src/control/policies/prism.ts";
import type { ClusterState, Policy } from "../../src/control/types.ts";
import { Cluster, PAGE_BYTES, tinyModel } from "./cluster-harness.ts";

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;
const mid = (s: string) => modelId(s) as never;

test("executor: migrate is make-before-break: the source serves until the target is active, then drains to it and unloads", () => {
  const models = [tinyModel("a"), tinyModel("b")];
  // A load takes 100 ms (4 pages of weights); steps 2 ms + 0.05 ms/token.
  const c = new Cluster({ numDevices: 2, budgetPages: 64, models, policy: "prism", ticks: false, loadMsPerByte: 100 / (4 * PAGE_BYTES), device: { maxBatchSeqs: 2, maxBatchTokens: 64 } });
  const ids = Array.from({ length: 6 }, () => c.submit("a", 20, 200).id);
  c.run(150); // a loaded on device 0 by t = 100, two requests running, four queued
  const on = (d: number) => c.devs[d]!.sched.stats().models.find((m) => m.modelId === "a")!;
  assert.deepEqual([on(0).residency, on(0).numRunning, on(0).numQueued], ["resident", 2, 4]);
  const report = c.gs.executor.apply([{ kind: "migrate", model: mid("a"), from: deviceId(0), to: deviceId(1) }], c.clock.nowMs());
  assert.deepEqual(report, { applied: 1, failed: [] });
  // Nothing moved yet: the source still takes requests (active beats the activating target).
  assert.deepEqual([on(0).numRunning, on(0).numQueued, on(1).residency, on(1).numQueued], [2, 4, "absent", 0]); // load requested
  assert.deepEqual(c.gs.replicasOf("a" as never), [0, 1]);
  assert.equal(c.gs.observe().models[0]!.instances.find((i) => i.device === 0)!.state, "deactivating");
  ids.push(c.submit("a", 20, 200).id);
  assert.equal(on(0).numQueued, 5);
  assert.equal(c.gs.counters.migrations, 1);
  assert.equal(c.gs.counters.requeued, 0);
  c.run(260); // the target is resident at t = 250
  assert.equal(on(1).residency, "resident");
  // The next submit still lands on the source, and schedules the maintenance that drains it to the target.
  ids.push(c.submit("a", 20, 200).id);
  c.run(261);
  assert.deepEqual(c.gs.replicasOf("a" as never), [1]);
  assert.deepEqual([on(0).numRunning, on(0).numQueued], [2, 0]);
  assert.equal(on(1).numRunning + on(1).numQueued, 6);
  assert.equal(c.gs.counters.requeued, 6);
  c.run(20_000);
  c.gs.maintain();
  for (const id of ids) assert.deepEqual(c.sink.tokens.get(id), c.expectedTokens(id));
  assert.equal(c.devs[0]!.sched.hasModel(modelId("a")), false, "the source instance is removed once drained");
  assert.deepEqual(c.devs[0]!.exec.events.filter((e) => e.endsWith(" a")), ["load a", "unload a"]);
  assert.equal(c.gs.observe().models[0]!.instances.length, 1);
});

test("executor: a migration whose target load is given up leaves the source serving", () => {
  const models = [tinyModel("a"), tinyModel("b")];
  const c = new Cluster({ numDevices: 2, budgetPages: 64, models, policy: "prism", ticks: false, loadMsPerByte: 100 / (4 * PAGE_BYTES) });
  c.submit("a", 20, 5);
  c.run(150);
  c.gs.executor.apply([{ kind: "migrate", model: mid("a"), from: deviceId(0), to: deviceId(1) }], c.clock.nowMs());
  // The target instance goes away before it is active (an admin unload of that instance, say).
  c.gs.executor.apply([{ kind: "deactivate", model: mid("a"), device: deviceId(1) }], c.clock.nowMs());
  c.gs.maintain();
  assert.deepEqual(c.gs.replicasOf("a" as never), [0]);
  assert.equal(c.gs.observe().models[0]!.instances.find((i) => i.device === 0)!.state, "active");
  const id = c.submit("a", 20, 5).id;
  c.run(5000);
  assert.deepEqual(c.sink.tokens.get(id), c.expectedTokens(id));
});

test("executor: deactivate hands queued requests back; they wait for the next activation and none is lost", () => {
  const models = [tinyModel("a"), tinyModel("b")];
  const c = new Cluster({ numDevices: 2, budgetPages: 64, models, policy: "prism", ticks: false, device: { maxBatchSeqs: 1, maxBatchTokens: 64 } });
  const ids = Array.from({ length: 4 }, () => c.submit("a", 20, 6).id);
  c.run(10);
  c.gs.executor.apply([{ kind: "deactivate", model: mid("a"), device: deviceId(0) }], c.clock.nowMs());
  // The three queued requests were placed again: device 0 is draining, so prism activates a on device 1.
  assert.deepEqual(c.gs.replicasOf("a" as never), [1]);
  assert.equal(c.gs.counters.deactivations, 1);
  c.run(5000);
  c.gs.maintain();
  for (const id of ids) {
    assert.equal(c.sink.finishCount.get(id), 1);
    assert.deepEqual(c.sink.tokens.get(id), c.expectedTokens(id));
  }
  assert.equal(c.devs[0]!.sched.hasModel(modelId("a")), false);
});

test("global scheduler: unknown model, duplicate id, and a fixed placement that left a model out", () => {
  const c = new Cluster({
    numDevices: 1, budgetPages: 64, policy: "static", expectedRates: { a: 1, b: 1 },
    models: [tinyModel("a", { weightPages: 40 }), tinyModel("b", { weightPages: 40 })],
  });
  c.run(0);
  const unknown = c.gs.submit({ requestId: requestId(999), modelId: modelId("nope"), promptTokens: Int32Array.of(1), maxTokens: 1, sampling: GREEDY, arrivalMs: 0, sink: c.sink });
  assert.ok(code("PRISM_UNKNOWN_MODEL")(unknown));
  const placed = c.gs.observe().models.filter((m) => m.instances.length > 0).map((m) => m.id as string);
  assert.equal(placed.length, 1);
  const other = placed[0] === "a" ? "b" : "a";
  assert.ok(code("PRISM_NO_CAPACITY")(c.submit(other, 4, 2).result));
  const ok = c.submit(placed[0]!, 4, 2);
  assert.equal(ok.result, "accepted");
  const dup = c.gs.submit({ requestId: requestId(ok.id), modelId: modelId(placed[0]!), promptTokens: Int32Array.of(1), maxTokens: 1, sampling: GREEDY, arrivalMs: 0, sink: c.sink });
  assert.ok(code("PRISM_REQUEST_INVALID")(dup));
  c.run(1000);
  assert.equal(c.sink.finishCount.get(ok.id), 1);
  assert.equal(c.gs.counters.rejected, 3);
});

test("global scheduler: pending requests are bounded, cancellable, and placed once a device frees up (swap)", () => {
  const c = new Cluster({
    numDevices: 1, budgetPages: 64, policy: "swap", ticks: false,
    config: { maxPendingPerModel: 2, swapMaxWaitMs: 1e9 },
    models: [tinyModel("a", { weightPages: 30 }), tinyModel("b", { weightPages: 30 })],
    device: { maxBatchSeqs: 1, maxBatchTokens: 64 },
  });
  const a1 = c.submit("a", 8, 30);
  const a2 = c.submit("a", 8, 30);
  const b1 = c.submit("b", 8, 4);
  const b2 = c.submit("b", 8, 4);
  const b3 = c.submit("b", 8, 4);
  assert.deepEqual([a1.result, a2.result, b1.result, b2.result, b3.result], ["accepted", "accepted", "accepted", "accepted", "busy"]);
  assert.equal(c.gs.numPending, 2);
  assert.equal(c.gs.cancel(requestId(b2.id)), true);
  assert.equal(c.gs.cancel(requestId(b2.id)), false);
  assert.equal(c.sink.finished.get(b2.id)!.outcome.kind, "cancelled");
  assert.equal(c.gs.numPending, 1);
  // a is busy; when its last request finishes, maintenance swaps b in (LRU idle victim).
  c.run(10_000);
  for (const id of [a1.id, a2.id, b1.id]) assert.deepEqual(c.sink.tokens.get(id), c.expectedTokens(id));
  assert.deepEqual(c.log.map((l) => l.replace(/^[\d.]+ /, "")), [
    'demand {"kind":"activate","model":"a","device":0}',
    'demand {"kind":"deactivate","model":"a","device":0}',
    'demand {"kind":"activate","model":"b","device":0}',
  ]);
  assert.equal(c.sink.finishCount.get(b2.id), 1);
});

test("global scheduler: refuses devices whose local policy does not match the policy's needs", () => {
  const clock = new ManualClock(0);
  const memory = new DeviceMemory({ budgetBytes: 64 * PAGE_BYTES, pageBytes: PAGE_BYTES, backed: false });
  const sched = new DeviceScheduler({ deviceId: deviceId(0), memory, clock, rng: new SeededRng(1), config: resolveDeviceSchedulerConfig({ policy: "fcfs" }) });
  assert.throws(() => new GlobalScheduler({ devices: [{ scheduler: sched, memory }], models: [tinyModel("a")], policy: "prism", clock }), code("PRISM_CONFIG_INVALID"));
  assert.throws(() => new GlobalScheduler({ devices: [{ scheduler: sched, memory }], models: [tinyModel("a")], policy: "fifo", clock }), code("PRISM_UNKNOWN_POLICY"));
  const gs = new GlobalScheduler({ devices: [{ scheduler: sched, memory }], models: [tinyModel("a")], policy: "elastic", clock, expectedRates: new Map([["a", 2]]) });
  assert.equal(gs.observe().models[0]!.expectedRatePerS, 2);
});

test("global scheduler: N devices, static placement spreads models and every one serves", () => {
  const names = ["a", "b", "c", "d", "e", "f", "g", "h"];
  const c = new Cluster({
    numDevices: 4, budgetPages: 64, policy: "static", models: names.map((n) => tinyModel(n, { weightPages: 20 })),
    expectedRates: Object.fromEntries(names.map((n, i) => [n, 8 - i])),
  });
  c.run(0);
  const perDevice = c.gs.observe().devices.map((d) => d.instances.length);
  assert.deepEqual(perDevice, [2, 2, 2, 2]);
  assert.equal(c.gs.counters.activations, 8);
  assert.equal(c.gs.counters.kvLimitUpdates, 8);
  const ids = names.map((n) => c.submit(n, 10, 5).id);
  c.run(2000);
  for (const id of ids) assert.deepEqual(c.sink.tokens.get(id), c.expectedTokens(id));
  assert.equal(c.gs.counters.migrations + c.gs.counters.deactivations, 0);
});

test("global scheduler admin: load, pin (no idle eviction), unpin, unload, placement view", async () => {
  const c = new Cluster({
    numDevices: 2, budgetPages: 64, policy: "prism",
    config: { roundMs: 100, idleEvictMs: 200 },
    models: [tinyModel("a"), tinyModel("b")],
  });
  await c.gs.load(mid("a"));
  c.run(50);
  assert.deepEqual(c.gs.replicasOf(mid("a")), [0]);
  await c.gs.load(mid("a")); // already routable: no-op
  assert.equal(c.gs.counters.activations, 1);
  c.gs.pin(mid("a"), true);
  assert.equal(c.devs[0]!.sched.stats().models[0]!.pinned, true);
  c.run(2000);
  assert.deepEqual(c.gs.replicasOf(mid("a")), [0], "pinned: not evicted for idleness");
  c.gs.pin(mid("a"), false);
  c.run(2500);
  assert.deepEqual(c.gs.replicasOf(mid("a")), [], "unpinned: evicted after its keep-alive");
  await c.gs.load(mid("b"));
  c.run(2600);
  await c.gs.unload(mid("b"));
  assert.deepEqual(c.gs.replicasOf(mid("b")), []);
  c.run(2800);
  assert.equal(c.devs.some((d) => d.sched.hasModel(modelId("b"))), false);
  const view = c.gs.placementView() as { policy: string; models: { id: string; instances: unknown[] }[] };
  assert.equal(view.policy, "prism");
  assert.deepEqual(view.models.map((m) => [m.id, m.instances.length]), [["a", 0], ["b", 0]]);
  await assert.rejects(c.gs.load(mid("zzz")), code("PRISM_UNKNOWN_MODEL"));
  assert.throws(() => c.gs.pin(mid("zzz"), true), code("PRISM_UNKNOWN_MODEL"));
});

test("a new arrival for a waiting model asks the policy again; on activation the waiting requests go first", () => {
  // A policy that waits until two requests of the model are outstanding, then activates it on device 0.
  const asked: number[] = [];
  const policy: Policy = {
    name: "second-arrival",
    needs: PRISM_NEEDS,
    plan: () => [],
    onDemand: (state: ClusterState, m: number) => {
      asked.push(state.models[m]!.demand.outstandingRequests);
      if (state.models[m]!.demand.outstandingRequests < 2) return { kind: "wait" };
      return { kind: "activate", actions: [{ kind: "activate", model: state.models[m]!.id, device: deviceId(0) }], device: 0 };
    },
  };
  const c = new Cluster({ numDevices: 1, budgetPages: 64, models: [tinyModel("a")], policy: "prism", ticks: false });
  const gs = new GlobalScheduler({
    devices: c.devs.map((d) => ({ scheduler: d.sched, memory: d.memory })),
    models: [tinyModel("a")],
    policy,
    clock: c.clock,
  });
  const submit = (id: number) => gs.submit({ requestId: requestId(id), modelId: modelId("a"), promptTokens: Int32Array.of(1, 2, 3), maxTokens: 2, sampling: GREEDY, arrivalMs: 0, sink: c.sink });
  assert.equal(submit(1), "accepted");
  assert.deepEqual(gs.replicasOf("a" as never), []);
  assert.equal(submit(2), "accepted");
  assert.deepEqual(asked, [1, 2], "asked again on the second arrival, before any round or finish");
  assert.deepEqual(gs.replicasOf("a" as never), [0]);
  assert.equal(gs.counters.onDemandActivations, 1);
  const onDevice = c.devs[0]!.sched.stats().models.find((m) => m.modelId === "a")!;
  assert.equal(onDevice.numQueued + onDevice.numRunning, 2);
  c.run(5000);
  assert.deepEqual([...c.sink.finished.keys()], [1, 2], "the held request was placed first");
});
