import { test } from "node:test";
import assert from "node:assert/strict";
import { Simulator } from "../../src/sim/simulator.ts";
import { DirectDriver } from "../../src/sim/direct-driver.ts";
import { costModel, makeModels, makeTrace } from "./helpers.ts";
import { modelId } from "../../src/core/ids.ts";

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} vs ${b}`);

test("one model, one device: TTFT and TPOT are exactly the cost model's step times", () => {
  const cm = costModel();
  const models = makeModels(cm, ["llama-3.1-8b"]);
  const IN = 300;
  const OUT = 50;
  const trace = makeTrace([{ t: 2, m: 0, in: IN, out: OUT }], 1);
  const sim = new Simulator({ trace, models, costModel: cm, numDevices: 1, driver: new DirectDriver() });
  const r = sim.run();
  const id = modelId("m0");
  assert.equal(r.outcomes.ok[0], 1);
  assert.equal(r.outcomes.outputTokens[0], OUT);
  close(r.outcomes.ttftMs[0]!, cm.prefillMs(id, IN), "ttft");
  let decode = 0;
  for (let k = 0; k < OUT - 1; k++) decode += cm.decodeMs(id, 1, IN + k);
  close(r.outcomes.e2eMs[0]!, cm.prefillMs(id, IN) + decode, "e2e");
  assert.equal(r.activations, 1);
  assert.equal(r.steps, OUT);
});

test("requestOverheadMs delays admission and adds to TTFT and E2E, not to device time", () => {
  const OVER = 7.5;
  const cm = costModel({ efficiency: { requestOverheadMs: OVER } });
  const models = makeModels(cm, ["llama-3.1-8b"]);
  const IN = 300;
  const OUT = 50;
  // the second request arrives while the first decodes, so its admission time decides which step it joins
  const trace = makeTrace([{ t: 2, m: 0, in: IN, out: OUT }, { t: 2.1, m: 0, in: IN, out: OUT }], 1);
  const cmPlain = costModel();
  const plain = new Simulator({ trace, models: makeModels(cmPlain, ["llama-3.1-8b"]), costModel: cmPlain, numDevices: 1, driver: new DirectDriver() }).run();
  const r = new Simulator({ trace, models, costModel: cm, numDevices: 1, driver: new DirectDriver() }).run();
  const id = modelId("m0");
  close(r.outcomes.ttftMs[0]!, OVER + cm.prefillMs(id, IN), "ttft");
  close(r.outcomes.ttftMs[0]! - plain.outcomes.ttftMs[0]!, OVER, "first request: only the overhead differs");
  close(r.outcomes.e2eMs[0]! - plain.outcomes.e2eMs[0]!, OVER, "e2e");
  assert.equal(r.steps, plain.steps);
});

test("two requests arriving together are prefilled in one step and decoded as a batch", () => {
  const cm = costModel();
  const models = makeModels(cm, ["llama-3.2-1b"]);
  const trace = makeTrace([{ t: 1, m: 0, in: 100, out: 3 }, { t: 1, m: 0, in: 60, out: 3 }], 1);
  const steps: number[] = [];
  const sim = new Simulator({ trace, models, costModel: cm, numDevices: 1, driver: new DirectDriver(), onStep: (_d, _i, _s, ms) => steps.push(ms) });
  const r = sim.run();
  const id = modelId("m0");
  const c = cm.cost(id);
  const prefill = cm.groupMs(c, 160, 100 * 50.5 + 60 * 30.5, 160);
  close(steps[0]!, prefill, "joint prefill");
  close(r.outcomes.ttftMs[0]!, prefill, "ttft a");
  close(r.outcomes.ttftMs[1]!, prefill, "ttft b");
  const d1 = cm.decodeMs(id, 2, 160);
  const d2 = cm.decodeMs(id, 2, 162);
  close(r.outcomes.e2eMs[0]!, prefill + d1 + d2, "e2e");
  assert.equal(steps.length, 3);
});

test("two models that cannot share a device swap: each activation delays TTFT by exactly its load time", () => {
  // 24 GiB device: one 8B model (16 GB) fits with KV room, two do not.
  const cm = costModel({ device: { memBytes: 24 * 2 ** 30 } });
  const models = makeModels(cm, ["llama-3.1-8b", "qwen2.5-7b"]);
  const a = modelId("m0");
  const b = modelId("m1");
  const trace = makeTrace([{ t: 1, m: 0, in: 200, out: 2 }, { t: 3, m: 1, in: 100, out: 2 }, { t: 6, m: 0, in: 50, out: 2 }], 2);
  const sim = new Simulator({ trace, models, costModel: cm, numDevices: 1, driver: new DirectDriver({ preload: false }) });
  const r = sim.run();
  const o = r.outcomes;
  assert.deepEqual([...o.ok], [1, 1, 1]);
  close(o.ttftMs[0]!, cm.loadMs(a) + cm.prefillMs(a, 200), "first activation");
  close(o.ttftMs[1]!, cm.loadMs(b) + cm.prefillMs(b, 100), "swap to B");
  close(o.ttftMs[2]!, cm.loadMs(a) + cm.prefillMs(a, 50), "swap back to A");
  assert.equal(r.activations, 3);
  assert.equal(r.evictions, 2);
});
