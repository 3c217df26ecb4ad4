// The device scheduler driving the real engine (EngineExecutor on the same backed DeviceMemory):
// two models interleaved in shared KV memory produce exactly the tokens each produces alone (also
// across preemptions and evictions), and cancel frees KV blocks. Needs ../shared/models.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ManualClock } from "../../src/core/clock.ts";
import { deviceId, modelId, requestId, type ModelId } from "../../src/core/ids.ts";
import { GREEDY, type ModelProfile, type SamplingParams } from "../../src/core/records.ts";
import { SeededRng } from "../../src/core/rng.ts";
import { DeviceMemory } from "../../src/memory/device-memory.ts";
import { DeviceScheduler } from "../../src/device/device-scheduler.ts";
import { resolveDeviceSchedulerConfig } from "../../src/device/config.ts";
import type { DeviceSchedulerConfig, SubmitRequest } from "../../src/device/types.ts";
import { parseGguf } from "../../src/engine/gguf/reader.ts";
import { llamaConfigFromGguf } from "../../src/engine/model/config.ts";
import { createEngineExecutor, modelProfileFromGguf, requiredPrefixBytes, type EngineExecutor } from "../../src/engine/model/executor.ts";
import { generateRandomModel } from "../../src/engine/model/generate.ts";
import { SHAPES } from "../../src/engine/model/shapes.ts";
import { RecordingSink } from "../helpers/device-harness.ts";

const STORIES = resolve(import.meta.dirname, "../../../shared/models/stories260K.gguf");

function modelBytes(): Map<string, Uint8Array> {
  if (!existsSync(STORIES)) throw new Error(`missing shared test data ${STORIES}: the device real-engine test needs ../shared/models beside the repository`);
  return new Map([
    ["stories", new Uint8Array(readFileSync(STORIES))],
    ["tiny", generateRandomModel({ shape: SHAPES.tiny!, dtype: "f32", seed: 11, contextLength: 128 })],
  ]);
}

const PAGE = 65536;

interface Rig {
  readonly clock: ManualClock;
  readonly mem: DeviceMemory;
  readonly exec: EngineExecutor;
  readonly sched: DeviceScheduler;
  readonly profiles: Map<string, ModelProfile>;
}

async function rig(bytes: Map<string, Uint8Array>, kvPages: number, config: Partial<DeviceSchedulerConfig>, weightSlots = 2): Promise<Rig> {
  const ggufs = [...bytes].map(([id, b]) => [id, parseGguf(b, id)] as const);
  const budget = { maxBatchTokens: 128, maxSampleRows: 16 };
  const prefixBytes = Math.ceil(requiredPrefixBytes(ggufs.map(([, g]) => llamaConfigFromGguf(g)), budget) / PAGE) * PAGE;
  const weightPages = ggufs.map(([id, g]) => Math.ceil(modelProfileFromGguf(id, g).weightBytes / PAGE));
  const largest = Math.max(...weightPages);
  const budgetPages = (weightSlots === 2 ? weightPages.reduce((a, b) => a + b, 0) : largest) + kvPages;
  const mem = new DeviceMemory({ budgetBytes: budgetPages * PAGE, pageBytes: PAGE, backed: true, prefixBytes, kvHeadroomFraction: 0, minReservedPages: 0, maxReservedPages: 0 });
  const exec = await createEngineExecutor({ memory: mem.memory!, prefixBytes, kernels: "wasm", ...budget });
  mem.onWeightsMoved((id, _old, now) => exec.moveWeights(id, now));
  const clock = new ManualClock(0);
  const sched = new DeviceScheduler({
    deviceId: deviceId(0), memory: mem, clock, rng: new SeededRng(3),
    config: resolveDeviceSchedulerConfig({ maxBatchTokens: 128, maxBatchSeqs: 16, prefillChunkTokens: 48, blockTokens: 16, ...config }),
  });
  const profiles = new Map<string, ModelProfile>();
  for (const [id, g] of ggufs) {
    const p = exec.registerGguf(id, g);
    profiles.set(id, p);
    sched.addModel(p);
  }
  return { clock, mem, exec, sched, profiles };
}

/** The async twin of the harness's drive(): the same protocol the DeviceLoop runs. */
async function driveAsync(r: Rig, after?: (stepIndex: number) => void): Promise<string[]> {
  const actions: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const a = r.sched.nextAction(r.clock.nowMs());
    if (a.kind === "idle") return actions;
    if (a.kind === "step") {
      const res = await r.exec.execute(a.plan);
      r.clock.advance(Math.max(res.computeMs, 0.001));
      r.sched.completeStep(res, r.clock.nowMs());
      after?.(a.plan.stepIndex);
    } else if (a.kind === "load") {
      const { durationMs } = await r.exec.loadWeights(a.modelId, a.byteOffset);
      r.clock.advance(durationMs);
      r.sched.completeLoad(a.modelId, durationMs, r.clock.nowMs());
      actions.push(`load ${a.modelId}`);
    } else {
      r.exec.unloadWeights(a.modelId);
      actions.push(`unload ${a.modelId}`);
    }
  }
  throw new Error("driveAsync: no quiescence");
}

const SAMPLED: SamplingParams = { ...GREEDY, temperature: 0.8, topK: 40, seed: 1234 };

function specs(sink: RecordingSink): SubmitRequest[] {
  const out: SubmitRequest[] = [];
  for (let i = 0; i < 8; i++) {
    const model = i % 2 === 0 ? "stories" : "tiny";
    const len = 5 + ((i * 7) % 40);
    out.push({
      requestId: requestId(i + 1), modelId: modelId(model),
      promptTokens: Int32Array.from({ length: len }, (_, j) => (j === 0 ? 1 : 3 + ((i * 31 + j * 17) % 400))),
      maxTokens: 30 + 5 * i, sampling: i % 3 === 0 ? SAMPLED : GREEDY, ignoreEos: true, arrivalMs: i, sink,
    });
  }
  return out;
}

test("two real models interleaved on one device give the same tokens as each request alone (also under preemption and eviction)", async () => {
  const bytes = modelBytes();
  // Alone: one request at a time, plenty of KV.
  const alone = await rig(bytes, 64, { maxBatchSeqs: 1 });
  const aloneSink = new RecordingSink();
  for (const s of specs(aloneSink)) {
    assert.equal(alone.sched.submit(s), "accepted");
    await driveAsync(alone);
  }
  await alone.exec.close();

  // Interleaved: all at once, co-resident, tight KV (preemption).
  const tight = await rig(bytes, 4, {});
  const tightSink = new RecordingSink();
  for (const s of specs(tightSink)) assert.equal(tight.sched.submit(s), "accepted");
  await driveAsync(tight);
  assert.ok(tight.sched.stats().numPreemptions > 0, `tight KV caused no preemption: ${JSON.stringify(tight.sched.stats())}`);

  // Time-shared: room for one model's weights only (activation and eviction between them).
  const shared = await rig(bytes, 4, {}, 1);
  const sharedSink = new RecordingSink();
  for (const s of specs(sharedSink)) assert.equal(shared.sched.submit(s), "accepted");
  const actions = await driveAsync(shared);
  assert.ok(actions.filter((a) => a.startsWith("unload")).length >= 1, `actions: ${actions.join(", ")}`);

  for (let id = 1; id <= 8; id++) {
    assert.equal(aloneSink.outcomeOf(id), "finished:length");
    assert.equal(tightSink.outcomeOf(id), "finished:length");
    assert.equal(sharedSink.outcomeOf(id), "finished:length");
    assert.deepEqual(tightSink.tokens.get(id), aloneSink.tokens.get(id), `request ${id} interleaved`);
    assert.deepEqual(sharedSink.tokens.get(id), aloneSink.tokens.get(id), `request ${id} time-shared`);
  }
  for (const r of [tight, shared]) {
    for (const s of r.mem.snapshot().spaces) assert.equal(s.usedBlocks, 0);
    assert.deepEqual(r.mem.auditProblems(), []);
    await r.exec.close();
  }
});

test("cancel on the real engine frees the request's KV blocks within one step", async () => {
  const r = await rig(modelBytes(), 16, {});
  const sink = new RecordingSink();
  const [a, b] = specs(sink);
  r.sched.submit({ ...a!, maxTokens: 60 });
  r.sched.submit({ ...b!, maxTokens: 60 });
  const used = (m: ModelId): number => r.mem.snapshot().spaces.find((s) => s.modelId === m)!.usedBlocks;
  let checked = false;
  await driveAsync(r, (stepIndex) => {
    if (stepIndex === 10) {
      assert.ok(used(a!.modelId) > 0);
      assert.ok(r.sched.cancel(a!.requestId));
      assert.equal(used(a!.modelId), 0);
      checked = true;
    }
  });
  assert.ok(checked);
  assert.equal(sink.outcomeOf(1), "cancelled");
  assert.equal(sink.outcomeOf(2), "finished:length");
  assert.equal(used(b!.modelId), 0);
  await r.exec.close();
});
