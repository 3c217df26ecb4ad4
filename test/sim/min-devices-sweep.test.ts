// `prism sim --min-devices --sweep …`: devices needed at every point of a rate or SLO sweep (capacity
// planning). The CLI must search exactly what findMinDevices searches on the scaled workload.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { formatTrace } from "../../src/workload/trace-format.ts";
import { parseModelsConfig } from "../../src/sim/models-file.ts";
import { findMinDevices, lowerBoundFor, prepareWorkload, withSloScale } from "../../src/sim/experiment.ts";
import { makeTrace } from "./helpers.ts";

const MODELS = { device: "h100", slo_scale: 5, models: [0, 1, 2, 3, 4, 5].map((i) => ({ id: `m${i}`, arch: "llama-3.1-8b" })) };
// Six 8B models (96 GB of weights) with long prompts: more traffic needs more devices.
const TRACE = makeTrace(Array.from({ length: 240 }, (_, i) => ({ t: i * 0.25, m: i % 6, in: 3000, out: 50 })), 6);
const CLI = resolve(import.meta.dirname, "../../bin/prism.js");

function withFiles<T>(fn: (models: string, trace: string, dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "prism-need-"));
  try {
    const models = join(dir, "models.yaml");
    writeFileSync(models, `device: h100\nslo_scale: 5\nmodels:\n${MODELS.models.map((m) => `  - { id: ${m.id}, arch: ${m.arch} }`).join("\n")}\n`);
    const trace = join(dir, "trace.csv");
    writeFileSync(trace, formatTrace(TRACE));
    return fn(models, trace, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function sim(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, "sim", ...args], { encoding: "utf8" });
}

test("prism sim --min-devices --sweep rate=…: per point and policy, the devices findMinDevices finds on the rate-scaled trace", () => {
  withFiles((models, trace) => {
    const r = sim("--models", models, "--trace", trace, "--policy", "prism,static", "--min-devices", "--sweep", "rate=1,8", "--max-devices", "16", "--json", "--deterministic");
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.sweep, "rate");
    assert.deepEqual(out.values, [1, 8]);
    const p = prepareWorkload(TRACE, parseModelsConfig(MODELS), { name: trace });
    const expected = [1, 8].flatMap((x) => ["prism", "static"].map((policy) => {
      const m = findMinDevices(p, { policy, target: 0.99, deterministic: true, seed: 1, minDevices: 1, maxDevices: 16, rateScale: x });
      return { x, policy, devices: m.devices, tried: m.tried };
    }));
    assert.deepEqual(out.min_devices, expected);
    assert.deepEqual(out.lower_bound, [1, 8].map((x) => ({ x, devices: lowerBoundFor(p, x, 1).devices })));
    // The sweep is not flat: eight times the traffic needs more devices than the trace as recorded.
    const prism = expected.filter((e) => e.policy === "prism").map((e) => e.devices!);
    assert.ok(prism[1]! > prism[0]!, `${prism}`);
  });
});

test("prism sim --min-devices --sweep slo=…: the SLO-scaled workload; text output and the HTML chart", () => {
  withFiles((models, trace, dir) => {
    const report = join(dir, "need.html");
    const r = sim("--models", models, "--trace", trace, "--policy", "static", "--min-devices", "--sweep", "slo=2,20", "--max-devices", "16", "--deterministic", "--report", report);
    assert.equal(r.status, 0, r.stderr);
    const p = prepareWorkload(TRACE, parseModelsConfig(MODELS), { name: trace });
    const lb = lowerBoundFor(p, 1, 1).devices;
    const lines = r.stdout.trim().split("\n");
    assert.deepEqual(lines, [2, 20].map((x) => {
      const d = findMinDevices(withSloScale(p, x), { policy: "static", target: 0.99, deterministic: true, seed: 1, minDevices: 1, maxDevices: 16 }).devices;
      return `slo ${x}: devices for 99.0% TTFT: static ${d ?? "> 16"}  (fluid lower bound ${lb})`;
    }));
    const html = readFileSync(report, "utf8");
    assert.ok(html.includes('id="devsweep"'));
  });
});

test("prism sim --min-devices --sweep with --devices is a usage error", () => {
  withFiles((models, trace) => {
    const r = sim("--models", models, "--trace", trace, "--min-devices", "--devices", "2", "--sweep", "rate=1:2");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /PRISM_CLI_USAGE.*leave --devices out/);
  });
});
