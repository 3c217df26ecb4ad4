// The architecture as a test: lower layers never import higher ones, and the pure layers never
// read the wall clock or Math.random (time and randomness are injected).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, dirname, resolve } from "node:path";

const SRC = resolve(import.meta.dirname, "../../src");

/** Which top-level src/ folders each folder may import from (besides itself). */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  memory: ["core"],
  device: ["core", "memory"],
  control: ["core", "memory", "device"],
  engine: ["core"],
  workload: ["core"],
  metrics: ["core"],
  config: ["core"],
  sim: ["core", "memory", "device", "control", "workload", "metrics", "config"],
  gateway: ["core", "memory", "device", "control", "engine", "metrics", "config", "workload"],
  cli: ["core", "memory", "device", "control", "engine", "gateway", "sim", "workload", "metrics", "config"],
};
const PURE = new Set(["core", "memory", "device", "control"]);
const FORBIDDEN_GLOBALS = [/\bDate\.now\s*\(/, /\bnew Date\s*\(/, /\bperformance\.now\s*\(/, /\bMath\.random\s*\(/, /\bsetTimeout\s*\(/, /\bsetInterval\s*\(/, /\bsetImmediate\s*\(/, /\bprocess\.hrtime/];

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.(ts|mts)$/.test(name)) out.push(p);
  }
  return out;
}

function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

test("src/ layers import only what the dependency rule allows", () => {
  const problems: string[] = [];
  for (const file of walk(SRC)) {
    const layer = relative(SRC, file).split("/")[0]!;
    const allowed = ALLOWED[layer];
    if (allowed === undefined) {
      problems.push(`${relative(SRC, file)}: folder '${layer}' is not in the layer table of test/arch/layers.test.ts`);
      continue;
    }
    const src = stripComments(readFileSync(file, "utf8"));
    for (const m of src.matchAll(/(?:import|export)\s[^'"]*?from\s+["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith(".")) continue;
      const target = relative(SRC, resolve(dirname(file), spec));
      if (target.startsWith("..")) {
        problems.push(`${relative(SRC, file)} imports '${spec}' outside src/`);
        continue;
      }
      const targetLayer = target.split("/")[0]!;
      if (targetLayer !== layer && !allowed.includes(targetLayer)) {
        problems.push(`${relative(SRC, file)} (layer ${layer}) imports ${target} (layer ${targetLayer})`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test("pure layers (core, memory, device, control) never read the wall clock or Math.random", () => {
  const problems: string[] = [];
  for (const file of walk(SRC)) {
    const layer = relative(SRC, file).split("/")[0]!;
    if (!PURE.has(layer)) continue;
    const src = stripComments(readFileSync(file, "utf8"));
    for (const re of FORBIDDEN_GLOBALS) if (re.test(src)) problems.push(`${relative(SRC, file)} uses ${re.source}`);
  }
  assert.deepEqual(problems, []);
});

test("the checks above catch a violation", () => {
  // guard against a check that cannot fail: the regexes must match what they forbid
  assert.ok(FORBIDDEN_GLOBALS.some((re) => re.test("const t = Date.now();")));
  assert.ok(FORBIDDEN_GLOBALS.some((re) => re.test("x = Math.random()")));
  assert.ok(!ALLOWED["core"]!.includes("memory"));
  assert.ok(!ALLOWED["memory"]!.includes("device"));
  assert.ok(!ALLOWED["engine"]!.includes("memory"));
});
