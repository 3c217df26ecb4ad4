// Same inputs and seed → the same JSON to the byte (wall-clock fields left out with --deterministic).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseModelsConfig } from "../../src/sim/models-file.ts";
import { prepareWorkload, runPolicy } from "../../src/sim/experiment.ts";
import { clearDedicatedCache } from "../../src/sim/slo-baseline.ts";
import { formatTrace } from "../../src/workload/trace-format.ts";
import { makeTrace } from "./helpers.ts";
import { SeededRng } from "../../src/core/rng.ts";

const REPO = resolve(import.meta.dirname, "../..");

function smallTrace() {
  const rng = new SeededRng(3);
  const rows = Array.from({ length: 400 }, () => ({ t: rng.next() * 120, m: Math.floor(6 * rng.next() ** 2), in: 10 + rng.int(800), out: 1 + rng.int(200) }));
  return makeTrace(rows, 6);
}

const MODELS = { device: "h100", slo_scale: 5, models: ["llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "qwen2.5-7b", "qwen2.5-14b", "llama-3.2-1b"].map((arch, i) => ({ id: `m${i}`, arch })) };

test("runPolicy: two fresh runs give byte-identical JSON for every policy", () => {
  for (const policy of ["prism", "static", "swap", "muxserve", "elastic"]) {
    const json = (): string => {
      clearDedicatedCache();
      const p = prepareWorkload(smallTrace(), parseModelsConfig(MODELS), { name: "t" });
      return JSON.stringify(runPolicy(p, { policy, devices: 2, deterministic: true }).summary);
    };
    const a = json();
    assert.equal(json(), a, policy);
    assert.ok(!a.includes("wall_s"));
    const s = JSON.parse(a);
    for (const k of ["policy", "devices", "requests", "activations", "evictions", "migrations", "per_model"]) assert.ok(k in s, k);
    for (const k of ["ttft", "tpot", "both"]) assert.equal(typeof s.slo_attainment[k], "number");
    for (const k of ["p50", "p99"]) assert.equal(typeof s.ttft_ms[k], "number");
  }
});

test("prism sim --json --deterministic: two processes print the same bytes", () => {
  const dir = mkdtempSync(join(tmpdir(), "prism-sim-"));
  const models = join(dir, "models.yaml");
  writeFileSync(models, "device: h100\nslo_scale: 8\ndefault_arch: llama-3.2-3b\nmodels:\n  - { id: m0, arch: llama-3.1-8b }\n");
  const trace = join(dir, "trace.csv");
  writeFileSync(trace, formatTrace(smallTrace()));
  const run = (): string => {
    const r = spawnSync(process.execPath, [join(REPO, "bin/prism.js"), "sim", "--models", models, "--trace", trace, "--policy", "prism,static", "--devices", "2", "--json", "--deterministic"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const a = run();
  assert.equal(run(), a);
  const j = JSON.parse(a);
  assert.deepEqual(j.runs.map((r: { policy: string }) => r.policy), ["prism", "static"]);
  assert.equal(j.lower_bound.devices >= 1, true);
});
