// Requests past their TTFT deadline in the simulator. demoteExpired (the default; the server's
// scheduler.demote_expired) serves them after every request that can still make its deadline;
// abortUnreachable (scheduler.abort_unreachable_slo) fails them. Under overload both leave the
// device to requests that can still make it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { formatTrace } from "../../src/workload/trace-format.ts";
import { parseModelsConfig } from "../../src/sim/models-file.ts";
import { prepareWorkload, runPolicy } from "../../src/sim/experiment.ts";
import { makeTrace } from "./helpers.ts";
import { SeededRng } from "../../src/core/rng.ts";

const MODELS = { device: "h100", slo_scale: 5, models: ["llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "qwen2.5-7b"].map((arch, i) => ({ id: `m${i}`, arch })) };

function trace() {
  const rng = new SeededRng(11);
  // Fractional arrival times: deadlines that do not round-trip through the clock's µs exactly.
  const rows = Array.from({ length: 600 }, () => ({ t: rng.next() * 60 + 0.1234567, m: Math.floor(4 * rng.next()), in: 200 + rng.int(3000), out: 20 + rng.int(300) }));
  return makeTrace(rows, 4);
}

test("sim: with abortUnreachable, an overloaded device fails requests past their TTFT deadline and serves more on time", () => {
  const p = prepareWorkload(trace(), parseModelsConfig(MODELS), { name: "shed" });
  const plain = runPolicy(p, { policy: "prism", devices: 1, rateScale: 3, deterministic: true, deviceConfig: { demoteExpired: false } }).summary;
  const shed = runPolicy(p, { policy: "prism", devices: 1, rateScale: 3, deterministic: true, deviceConfig: { abortUnreachable: true } }).summary;
  assert.equal(shed.requests, plain.requests);
  assert.equal(plain.ttft_misses.failed, 0);
  assert.ok(shed.ttft_misses.failed > 0, "some requests failed past their deadline");
  assert.ok(shed.slo_attainment.ttft > plain.slo_attainment.ttft, `${shed.slo_attainment.ttft} > ${plain.slo_attainment.ttft}`);
  // The dedicated runs behind the SLOs do not see the setting: same SLOs both ways.
  assert.deepEqual(shed.per_model.map((m) => m.slo_ms), plain.per_model.map((m) => m.slo_ms));
  // Static's FCFS queues have no deadline order: the setting changes nothing there.
  const st = (o: object) => JSON.stringify(runPolicy(p, { policy: "static", devices: 1, rateScale: 3, deterministic: true, ...o }).summary);
  assert.equal(st({ deviceConfig: { abortUnreachable: true } }), st({}));
});

test("sim: demoteExpired (the default) serves more requests on time under overload and still serves every request", () => {
  const p = prepareWorkload(trace(), parseModelsConfig(MODELS), { name: "demote" });
  const run = (o: object) => runPolicy(p, { policy: "prism", devices: 1, rateScale: 3, deterministic: true, ...o }).summary;
  const plain = run({ deviceConfig: { demoteExpired: false } });
  const demoted = run({});
  assert.equal(demoted.requests, plain.requests);
  assert.equal(demoted.failed, 0);
  assert.ok(demoted.slo_attainment.ttft > plain.slo_attainment.ttft, `${demoted.slo_attainment.ttft} > ${plain.slo_attainment.ttft}`);
  assert.equal(JSON.stringify(run({ deviceConfig: { demoteExpired: true } })), JSON.stringify(demoted));
  // Static's FCFS queues have no deadline order: the setting changes nothing there.
  const st = (o: object) => JSON.stringify(runPolicy(p, { policy: "static", devices: 1, rateScale: 3, deterministic: true, ...o }).summary);
  assert.equal(st({ deviceConfig: { demoteExpired: false } }), st({}));
});

test("sim: guardFirstTokens (the default) changes prism's steps and never static's FCFS ones", () => {
  const p = prepareWorkload(trace(), parseModelsConfig(MODELS), { name: "guard" });
  const run = (policy: "prism" | "static", o: object) => JSON.stringify(runPolicy(p, { policy, devices: 1, rateScale: 1, deterministic: true, ...o }).summary);
  assert.notEqual(run("prism", { deviceConfig: { guardFirstTokens: false } }), run("prism", {}));
  assert.equal(run("prism", { deviceConfig: { guardFirstTokens: true } }), run("prism", {}));
  assert.equal(run("static", { deviceConfig: { guardFirstTokens: false } }), run("static", {}));
});

test("prism sim --no-demote-expired / --abort-unreachable-slo / --no-guard-first-tokens: the CLI runs what runPolicy runs with those settings", () => {
  const dir = mkdtempSync(join(tmpdir(), "prism-demote-"));
  try {
    const models = join(dir, "models.yaml");
    writeFileSync(models, `device: h100\nslo_scale: 5\nmodels:\n${MODELS.models.map((m) => `  - { id: ${m.id}, arch: ${m.arch} }`).join("\n")}\n`);
    const traceFile = join(dir, "trace.csv");
    writeFileSync(traceFile, formatTrace(trace()));
    const cli = (...flags: string[]): number => {
      const r = spawnSync(process.execPath, [resolve(import.meta.dirname, "../../bin/prism.js"), "sim", "--models", models, "--trace", traceFile,
        "--policy", "prism", "--devices", "1", "--json", "--deterministic", "--sweep", "rate=3:3", ...flags], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).runs[0].slo_attainment.ttft;
    };
    const p = prepareWorkload(trace(), parseModelsConfig(MODELS), { name: "cli" });
    const lib = (deviceConfig?: object): number =>
      runPolicy(p, { policy: "prism", devices: 1, rateScale: 3, deterministic: true, ...(deviceConfig ? { deviceConfig } : {}) }).summary.slo_attainment.ttft;
    const [byDefault, noDemotion, shed, noGuard] = [lib(), lib({ demoteExpired: false }), lib({ abortUnreachable: true }), lib({ guardFirstTokens: false })];
    assert.notEqual(byDefault, noDemotion);
    assert.notEqual(byDefault, noGuard);
    assert.equal(cli(), byDefault);
    assert.equal(cli("--no-demote-expired"), noDemotion);
    assert.equal(cli("--abort-unreachable-slo"), shed);
    assert.equal(cli("--no-guard-first-tokens"), noGuard);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
