// `npm run bench:sim` (tsx bench/sim.bench.ts [--quick] [--no-speed] [--speed-only] [--sweep-only]
// [--stress-only] [--map-only] [--needed-only] [--guard-only] [--fill-only] [--report out.html]):
// the policy comparison on simulated H100s, every policy through the real GlobalScheduler and
// DeviceSchedulers, and the simulator's speed on a ~1M-request hour.
//
// For each workload (built with `prism trace gen`, commands printed): the fluid lower bounds on
// devices (every request served, and at the 99% target: lower-bound.ts); per policy the fewest
// devices reaching 99% TTFT SLO attainment (doubling + bisection); and every policy's attainment
// at one fixed device count (the all-served bound). Besides the five policies, two labelled
// diagnostic rows (not baselines, not defaults):
//   prism/keep-alive-5s — prism with the prototype's eager idle eviction (idleEvictMs = 5 s)
//   prism/free-load     — prism with activation cost 0: what cold starts still cost prism
// Sweeps (skip with --no-sweep; only these with --sweep-only): per workload, every baseline's TTFT
// attainment at every device count from 1 to static's devices needed, with prism's ratio to static,
// and a request-rate sweep (×1 … ×3, SLOs of the unscaled trace) at prism's devices needed: where
// the baselines struggle and by how much prism beats them there.
// Stress (with the sweeps; only these with --stress-only): every sweep policy at prism's and static's
// devices needed under request rates ×4/×6/×8 and SLOs of 1/2/3× the dedicated p99, plus prism with
// abort_unreachable_slo (load shedding past the TTFT deadline) and prism without demote_expired;
// then capacity: the largest rate scale each policy keeps at 99% on static's devices needed.
// Struggle map (with the sweeps; only this with --map-only): every device count below prism's devices
// needed × request rates ×2/×4/×6/×8: prism, static, muxserve and elastic (swap is below all of them
// everywhere), prism's ratio to static and to the best of the three, and where prism reaches 3× static.
// Devices needed vs SLO scale (with the sweeps; only this with --needed-only): the devices-needed
// search of the first table repeated at SLOs of 2/3/5/10/20× the dedicated p99, for prism, static,
// muxserve and elastic (swap needs 13–35 devices at 5× and its searches are the slowest).
// First-token guard (only with --guard-only): prism with the device scheduler's guardFirstTokens (the
// default) against prism without it, on prism's devices needed and one fewer at rate ×1 and on its
// devices needed at ×4 and ×8, each at 7 rates within ±1.5%: rows here move by points under such
// small perturbations (one changed decision early changes the rest), so one run per point would
// measure the perturbation, not the setting. Mean difference and its standard error per point.
// Prefetch fill (only with --fill-only): the same A/B for prism's fillKvFraction, 0.05 (prefetch up to
// 95% of a device's memory) against 0.1 (90%, the default; 95% was measured and not adopted).
// Speed: one run of a one-hour, 64-model, ~1M-request trace on 32 devices (skip with --no-speed; only
// this with --speed-only, e.g. `npm run bench:sim -- --speed-only`).
// Wall times are from a shared 2-core machine: read them as rough.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readTrace } from "../src/workload/trace-format.ts";
import { loadModelsFile, type SimModelsConfig } from "../src/sim/models-file.ts";
import { demandLoadingMisses } from "../src/sim/lower-bound.ts";
import { findMaxRate, findMinDevices, lowerBoundFor, prepareWorkload, runPolicy, withSloScale, type PreparedWorkload, type RunOptions, type SimSummary } from "../src/sim/experiment.ts";
import type { ControlConfig } from "../src/control/types.ts";
import { renderSimReport, type DevicesNeeded } from "../src/sim/report.ts";

const REPO = resolve(import.meta.dirname, "..");
const QUICK = process.argv.includes("--quick");
const SPEED_ONLY = process.argv.includes("--speed-only");
const SWEEP_ONLY = process.argv.includes("--sweep-only");
const STRESS_ONLY = process.argv.includes("--stress-only");
const MAP_ONLY = process.argv.includes("--map-only");
const NEEDED_ONLY = process.argv.includes("--needed-only");
const GUARD_ONLY = process.argv.includes("--guard-only");
const FILL_ONLY = process.argv.includes("--fill-only");
const ONLY = SWEEP_ONLY || STRESS_ONLY || MAP_ONLY || NEEDED_ONLY || GUARD_ONLY || FILL_ONLY;
const SPEED = SPEED_ONLY || (!process.argv.includes("--no-speed") && !QUICK && !ONLY);
const SWEEP = SWEEP_ONLY || (!process.argv.includes("--no-sweep") && !SPEED_ONLY && !ONLY);
const STRESS = STRESS_ONLY || SWEEP;
const MAP = MAP_ONLY || SWEEP;
const NEEDED = NEEDED_ONLY || SWEEP;
const SWEEP_POLICIES = ["prism", "static", "muxserve", "elastic", "swap"] as const;
const RATE_SCALES = [1, 1.5, 2, 3] as const;
/** The stress tables: load well beyond ×3 (SLOs of the ×1 trace) and tight SLOs (× dedicated p99, rate ×1). */
const STRESS_RATES = [4, 6, 8] as const;
const STRESS_SLOS = [1, 2, 3] as const;
/** The struggle map: rates on every device count below prism's devices needed. */
const MAP_RATES = [2, 4, 6, 8] as const;
const MAP_POLICIES = ["prism", "static", "muxserve", "elastic"] as const;
/** The issue's bar for attainment on the same devices. */
const MAP_RATIO_TARGET = 3;
/** Devices needed vs SLO scale (× the dedicated p99; the workloads' own scale is 5). */
const NEEDED_SLOS = [2, 3, 5, 10, 20] as const;
const NEEDED_POLICIES = ["prism", "static", "muxserve", "elastic"] as const;
/** The A/B tables (--guard-only, --fill-only): rate scales around each point (±1.5%), and the loaded points' rates. */
const AB_PERTURB = [0.985, 0.99, 0.995, 1, 1.005, 1.01, 1.015] as const;
const AB_RATES = [4, 8] as const;
const REPORT = (() => {
  const i = process.argv.indexOf("--report");
  return i >= 0 ? process.argv[i + 1] ?? null : null;
})();
const TARGET = 0.99;

interface Workload {
  readonly name: string;
  readonly gen: readonly string[];
  readonly models: string;
}

const WORKLOADS: readonly Workload[] = [
  {
    name: "W1 ServeGen m-large, 64 clients, 30 min",
    gen: ["servegen", "--pool", "m-large", "--num-models", "64", "--duration", QUICK ? "600" : "1800", "--compression", "60", "--rate", "20", "--seed", "1"],
    models: "examples/sim/servegen-64.yaml",
  },
  {
    name: "W1 ServeGen m-large, 32 clients, 30 min",
    gen: ["servegen", "--pool", "m-large", "--num-models", "32", "--duration", QUICK ? "600" : "1800", "--compression", "60", "--rate", "12", "--seed", "2"],
    models: "examples/sim/servegen-32.yaml",
  },
  {
    name: "W1 ServeGen m-large, 16 clients, 30 min",
    gen: ["servegen", "--pool", "m-large", "--num-models", "16", "--duration", QUICK ? "600" : "1800", "--compression", "60", "--rate", "8", "--seed", "5"],
    models: "examples/sim/servegen-32.yaml",
  },
  {
    name: "W3 Arena, 27 models (time scale 0.5, ×2)",
    gen: ["arena", "--time-scale", "0.5", "--replicate", "2", "--seed", "1"],
    models: "examples/sim/arena-27.yaml",
  },
];

interface Variant {
  readonly label: string;
  readonly policy: string;
  readonly control?: Partial<ControlConfig>;
  readonly freeLoad?: boolean;
}

const ALL_VARIANTS: readonly Variant[] = [
  { label: "prism", policy: "prism" },
  { label: "static", policy: "static" },
  { label: "swap", policy: "swap" },
  { label: "muxserve", policy: "muxserve" },
  { label: "elastic", policy: "elastic" },
  { label: "prism/keep-alive-5s", policy: "prism", control: { idleEvictMs: 5000 } },
  { label: "prism/free-load", policy: "prism", freeLoad: true },
];

// --sweep-only, --stress-only and --map-only need only prism's and static's devices needed,
// --needed-only none (it searches its own).
const VARIANTS = NEEDED_ONLY ? [] : ONLY ? ALL_VARIANTS.filter((v) => v.label === "prism" || v.label === "static") : ALL_VARIANTS;

function traceFile(gen: readonly string[]): string {
  const dir = join(tmpdir(), "prism-sim-bench");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${createHash("sha256").update(gen.join(" ")).digest("hex").slice(0, 16)}.csv`);
  if (!existsSync(file)) {
    const r = spawnSync(process.execPath, [join(REPO, "bin/prism.js"), "trace", "gen", ...gen, "-o", file], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`prism trace gen failed: ${r.stderr}`);
  }
  return file;
}

const pct = (x: number | null | undefined): string => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(2)}%`);
const sec = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

function prepared(w: Workload, cfg: SimModelsConfig, file: string, freeLoad: boolean): PreparedWorkload {
  const c: SimModelsConfig = freeLoad ? { ...cfg, efficiency: { ...cfg.efficiency, activationStartMs: 0, hostLinkEfficiency: 1e6 } } : cfg;
  return prepareWorkload(readTrace(file), c, { name: w.name });
}

interface Row {
  label: string;
  devices: number | null;
  atFixed: SimSummary;
  searchS: number;
}

/**
 * TTFT attainment of every sweep policy at devices 1..maxDevices (rate ×1), then at `atDevices`
 * for each rate scale; prism's ratio to static per row. Returns the markdown lines.
 */
/** TTFT attainment of every policy (prism first, static second) on `devices`. */
function attainments(p: PreparedWorkload, devices: number, rateScale: number, policies: readonly string[] = SWEEP_POLICIES): number[] {
  return policies.map((policy) => runPolicy(p, { policy, devices, rateScale, deterministic: true }).summary.slo_attainment.ttft);
}

/** `| label | attainments… | prism ÷ static |` */
function attainmentRow(label: string, v: readonly number[]): string {
  const ratio = v[1]! > 0 ? `${(v[0]! / v[1]!).toFixed(2)}×` : "∞";
  return `| ${label} | ${v.map((x) => pct(x)).join(" | ")} | ${ratio} |`;
}

function sweepTables(p: PreparedWorkload, maxDevices: number, atDevices: number): string[] {
  const head = `| ${SWEEP_POLICIES.join(" | ")} | prism ÷ static |`;
  const sep = `|---|${SWEEP_POLICIES.map(() => "---|").join("")}---|`;
  const out = [`TTFT attainment vs devices (rate ×1); last column: 1 − the misses of a clairvoyant demand-loading cache (lower-bound.ts demandLoadingMisses)`,
    "", `| devices ${head} clairvoyant |`, `${sep}---|`];
  for (let d = 1; d <= maxDevices; d++) {
    const cl = clairvoyant(p, d);
    out.push(`${attainmentRow(String(d), attainments(p, d, 1))} ${pct(1 - cl.misses / p.trace.numRequests)} (${cl.coldStarts} cold starts) |`);
  }
  out.push("", `TTFT attainment vs request rate on ${atDevices} devices (prism's devices needed; SLOs of the ×1 trace)`, "", `| rate ${head}`, sep);
  for (const r of RATE_SCALES) out.push(attainmentRow(`×${r}`, attainments(p, atDevices, r)));
  return out;
}

/**
 * Where the baselines struggle on the same GPUs: every sweep policy's TTFT attainment at prism's and
 * at static's devices needed, under request rates ×4…×8 (SLOs of the ×1 trace) and under tight SLOs
 * (1–3× the dedicated p99, rate ×1); prism's ratio to static per row; then prism with
 * abortUnreachable (queued requests fail once their TTFT deadline has passed, the server's
 * scheduler.abort_unreachable_slo, off by default) and its ratio to static; and prism without
 * demoteExpired (scheduler.demote_expired: false; requests past their deadline keep their least-slack
 * place), what the default's demotion gains. Returns the markdown lines.
 */
function stressTables(p: PreparedWorkload, deviceCounts: readonly number[]): string[] {
  const head = `| devices | ${SWEEP_POLICIES.join(" | ")} | prism ÷ static | prism+shed | prism+shed ÷ static | prism, no demotion |`;
  const sep = `|---|---|${SWEEP_POLICIES.map(() => "---|").join("")}---|---|---|---|`;
  const row = (label: string, devices: number, prep: PreparedWorkload, rateScale: number): string => {
    const v = attainments(prep, devices, rateScale);
    const prism = (deviceConfig: object): number => runPolicy(prep, { policy: "prism", devices, rateScale, deterministic: true, deviceConfig }).summary.slo_attainment.ttft;
    const shed = prism({ abortUnreachable: true });
    const ratio = v[1]! > 0 ? `${(shed / v[1]!).toFixed(2)}×` : "∞";
    return `${attainmentRow(`${label} | ${devices}`, v)} ${pct(shed)} | ${ratio} | ${pct(prism({ demoteExpired: false }))} |`;
  };
  const out = [`TTFT attainment under stress on prism's and static's devices needed (rate: SLOs of the ×1 trace; SLO: × dedicated p99 at rate ×1); prism+shed = prism failing queued requests past their TTFT deadline (abort_unreachable_slo); prism, no demotion = demote_expired off`,
    "", `| load ${head}`, sep];
  for (const r of STRESS_RATES) for (const d of deviceCounts) out.push(row(`rate ×${r}`, d, p, r));
  for (const k of STRESS_SLOS) for (const d of deviceCounts) out.push(row(`SLO ×${k}`, d, withSloScale(p, k), 1));
  return out;
}

/**
 * Capacity on the same GPUs (the paper's "requests served at 99% SLO attainment"): per sweep policy,
 * the largest request-rate scale (SLOs of the ×1 trace) that keeps 99% TTFT attainment on `devices`,
 * within 5%, and its ratio to static's. Returns the markdown lines.
 */
function capacityTable(p: PreparedWorkload, devices: number): string[] {
  const out = [`Capacity: the largest request-rate scale keeping ${TARGET * 100}% TTFT attainment on ${devices} devices (static's devices needed; SLOs of the ×1 trace; within 5%)`,
    "", "| policy | rate scale | × static's |", "|---|---|---|"];
  const found = SWEEP_POLICIES.map((policy) => findMaxRate(p, { policy, devices, target: TARGET, deterministic: true, minScale: 1 / 8, maxScale: 64 }));
  const st = found[1]!.rateScale;
  for (const r of found) {
    const x = r.rateScale === null ? "< ×0.125" : `${r.capped ? "≥ " : ""}×${r.rateScale.toFixed(2)}`;
    const ratio = r.rateScale === null || st === null ? "–" : `${(r.rateScale / st).toFixed(2)}×`;
    out.push(`| ${r.policy} | ${x} | ${ratio} |`);
  }
  return out;
}

/**
 * Where the baselines struggle, mapped rather than picked: at every device count below prism's
 * devices needed (1..maxDevices) and every MAP_RATES scale (SLOs of the ×1 trace), each
 * MAP_POLICIES entry's TTFT attainment, prism's ratio to static and to the best of static, muxserve
 * and elastic; then how many points reach MAP_RATIO_TARGET × static and the largest ratio. Returns
 * the markdown lines.
 */
function struggleMap(p: PreparedWorkload, maxDevices: number): string[] {
  const out = [`Struggle map: TTFT attainment on ${maxDevices > 1 ? `1–${maxDevices} devices` : "1 device"} (below prism's devices needed) at request rates ${MAP_RATES.map((r) => `×${r}`).join("/")} (SLOs of the ×1 trace)`,
    "", `| devices | rate | ${MAP_POLICIES.join(" | ")} | prism ÷ static | prism ÷ best baseline |`, `|---|---|${MAP_POLICIES.map(() => "---|").join("")}---|---|`];
  let points = 0;
  let reached = 0;
  let best = { ratio: 0, where: "" };
  for (let d = 1; d <= maxDevices; d++) {
    for (const r of MAP_RATES) {
      const v = attainments(p, d, r, MAP_POLICIES);
      const ratio = v[1]! > 0 ? v[0]! / v[1]! : Infinity;
      const bestBaseline = Math.max(...v.slice(1));
      points++;
      if (ratio >= MAP_RATIO_TARGET) reached++;
      if (ratio > best.ratio) best = { ratio, where: `${d} device${d > 1 ? "s" : ""} at ×${r}: ${pct(v[0])} vs ${pct(v[1])}` };
      out.push(`| ${d} | ×${r} | ${v.map((x) => pct(x)).join(" | ")} | ${ratio.toFixed(2)}× | ${bestBaseline > 0 ? (v[0]! / bestBaseline).toFixed(2) : "∞"}× |`);
    }
  }
  out.push("", `prism ≥ ${MAP_RATIO_TARGET}× static at ${reached} of ${points} points; largest ${best.ratio.toFixed(2)}× (${best.where})`);
  return out;
}

/**
 * Devices needed for TARGET TTFT attainment at every NEEDED_SLOS scale, per NEEDED_POLICIES entry,
 * with prism's ratio to static and to the fewest of the others. Returns the markdown lines.
 */
function neededTable(p: PreparedWorkload): string[] {
  const out = [`Devices needed for ${TARGET * 100}% TTFT attainment vs SLO scale (× the dedicated p99; the tables above use 5×)`,
    "", `| SLO scale | ${NEEDED_POLICIES.join(" | ")} | static ÷ prism | best baseline ÷ prism |`, `|---|${NEEDED_POLICIES.map(() => "---|").join("")}---|---|`];
  for (const k of NEEDED_SLOS) {
    const prep = withSloScale(p, k);
    const d = NEEDED_POLICIES.map((policy) => findMinDevices(prep, { policy, target: TARGET, deterministic: true, maxDevices: 64 }).devices);
    const ratio = (x: number | null): string => (x === null || d[0] === null ? "–" : `${(x / d[0]!).toFixed(2)}×`);
    const others = d.slice(1).filter((x): x is number => x !== null);
    out.push(`| ×${k} | ${d.map((x) => x ?? "> 64").join(" | ")} | ${ratio(d[1]!)} | ${ratio(others.length > 0 ? Math.min(...others) : null)} |`);
  }
  return out;
}

/**
 * Prism with setting A vs setting B: at (need − 1, ×1), (need, ×1), (need, ×4), (need, ×8), each at
 * the AB_PERTURB rate scales; mean attainment both ways, the mean difference ± its standard error,
 * and how many of the 7 moved up / down.
 */
function abTable(p: PreparedWorkload, need: number, title: string, names: [string, string], a: Partial<RunOptions>, b: Partial<RunOptions>): string[] {
  const out = [title, "", `| devices | rate | ${names[0]} (mean) | ${names[1]} (mean) | difference | s.e. | up / down of 7 |`, "|---|---|---|---|---|---|---|"];
  const points: [number, number][] = [[need - 1, 1], [need, 1], ...AB_RATES.map((r): [number, number] => [need, r])];
  const mean = (v: readonly number[]): number => v.reduce((sum, x) => sum + x, 0) / v.length;
  const pts = (x: number): string => `${x >= 0 ? "+" : "−"}${Math.abs(x * 100).toFixed(2)}`;
  for (const [devices, rate] of points) {
    if (devices < 1) continue;
    const run = (o: Partial<RunOptions>, f: number): number =>
      runPolicy(p, { policy: "prism", devices, rateScale: rate * f, deterministic: true, ...o }).summary.slo_attainment.ttft;
    const va = AB_PERTURB.map((f) => run(a, f));
    const vb = AB_PERTURB.map((f) => run(b, f));
    const d = va.map((x, i) => x - vb[i]!);
    const md = mean(d);
    const se = Math.sqrt(d.reduce((sum, x) => sum + (x - md) ** 2, 0) / (d.length - 1) / d.length);
    out.push(`| ${devices} | ×${rate} | ${pct(mean(va))} | ${pct(mean(vb))} | ${pts(md)} | ${(se * 100).toFixed(2)} | ${d.filter((x) => x > 0).length} / ${d.filter((x) => x < 0).length} |`);
  }
  return out;
}

function clairvoyant(p: PreparedWorkload, devices: number): ReturnType<typeof demandLoadingMisses> {
  return demandLoadingMisses(p.trace, p.models.map((m) => m.cost), p.models.map((m) => m.ttftSloMs), p.costModel, devices);
}

/** Fewest devices at which reload misses alone, with perfect knowledge of the future and no prefetch, stay within 1 − target. */
function clairvoyantDevices(p: PreparedWorkload): number {
  for (let d = 1; ; d++) if (clairvoyant(p, d).misses <= (1 - TARGET) * p.trace.numRequests) return d;
}

const tables: string[] = [];
const devicesByWorkload: { name: string; needed: DevicesNeeded[]; lb: number }[] = [];
for (const w of SPEED_ONLY ? [] : WORKLOADS) {
  const file = traceFile(w.gen);
  const cfg = loadModelsFile(join(REPO, w.models));
  const base = prepared(w, cfg, file, false);
  const free = prepared(w, cfg, file, true);
  const lb = lowerBoundFor(base);
  const lb99 = lowerBoundFor(base, 1, undefined, TARGET);
  const fixed = Math.max(1, lb.devices);
  console.log(`\n## ${w.name}`);
  console.log(`trace:  prism trace gen ${w.gen.join(" ")} -o trace.csv   (${base.trace.numRequests} requests, ${base.trace.modelNames.length} models)`);
  console.log(`models: ${w.models} (H100, SLO = ${cfg.sloScale.ttft}× dedicated p99)`);
  console.log(`fluid lower bound: ${lb.devices} devices to serve every request (memory ${lb.memoryDevices.toFixed(2)}, compute ${lb.computeDevices.toFixed(2)}); ${lb99.devices} at ${TARGET * 100}% attainment`);
  console.log(`clairvoyant demand loading (perfect knowledge of the future, no prefetch, pooled memory): reload misses alone stay within ${((1 - TARGET) * 100).toFixed(0)}% from ${clairvoyantDevices(base)} devices`);
  for (const warn of base.warnings) console.log(`warning: ${warn}`);
  const rows: Row[] = [];
  for (const v of VARIANTS) {
    const p = v.freeLoad ? free : base;
    const t0 = performance.now();
    const r = findMinDevices(p, { policy: v.policy, target: TARGET, deterministic: true, maxDevices: 64, ...(v.control ? { control: v.control } : {}) });
    const searchS = (performance.now() - t0) / 1000;
    const atFixed = r.tried.some((t) => t.devices === fixed) && r.devices === fixed && r.summary !== null
      ? r.summary
      : runPolicy(p, { policy: v.policy, devices: fixed, deterministic: true, ...(v.control ? { control: v.control } : {}) }).summary;
    rows.push({ label: v.label, devices: r.devices, atFixed, searchS });
    process.stdout.write(`  ${v.label}: ${r.devices ?? "not reached"} (${searchS.toFixed(0)} s)\n`);
  }
  const printNeeded = (): void => {
    const t0 = performance.now();
    console.log(`\n${neededTable(base).join("\n")}\n(devices needed vs SLO: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  };
  if (NEEDED_ONLY) {
    printNeeded();
    continue;
  }
  if (GUARD_ONLY || FILL_ONLY) {
    const need = rows.find((r) => r.label === "prism")!.devices;
    if (need === null) continue;
    const t0 = performance.now();
    const table = GUARD_ONLY
      ? abTable(base, need, "First-token guard: prism's TTFT attainment with guard_first_tokens (the default) and without, each point at 7 rates within ±1.5%",
        ["guard on", "guard off"], { deviceConfig: { guardFirstTokens: true } }, { deviceConfig: { guardFirstTokens: false } })
      : abTable(base, need, "Prefetch fill: prism's TTFT attainment with fillKvFraction 0.05 and 0.1 (the default), each point at 7 rates within ±1.5%",
        ["fill 95%", "fill 90%"], { policyOptions: { prism: { fillKvFraction: 0.05 } } }, { policyOptions: { prism: { fillKvFraction: 0.1 } } });
    console.log(`\n${table.join("\n")}\n(A/B: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    continue;
  }
  const staticRow = rows.find((r) => r.label === "static")!;
  const header = `| policy | devices for ${TARGET * 100}% TTFT | vs static | vs LB all (${lb.devices}) | vs LB ${TARGET * 100}% (${lb99.devices}) | TTFT att. @${fixed} dev | ×static | both @${fixed} | TTFT p99 @${fixed} | activations | migrations |`;
  const lines = [header, "|---|---|---|---|---|---|---|---|---|---|---|"];
  for (const r of rows) {
    const s = r.atFixed;
    const vsStatic = r.devices !== null && staticRow.devices !== null ? `${(staticRow.devices / r.devices).toFixed(2)}× fewer` : "–";
    const vsLb = r.devices !== null ? `${(r.devices / lb.devices).toFixed(2)}×` : "–";
    const vsLb99 = r.devices !== null ? `${(r.devices / lb99.devices).toFixed(2)}×` : "–";
    const ratio = staticRow.atFixed.slo_attainment.ttft > 0 ? `${(s.slo_attainment.ttft / staticRow.atFixed.slo_attainment.ttft).toFixed(2)}` : "–";
    lines.push(`| ${r.label} | ${r.devices ?? `> 64`} | ${vsStatic} | ${vsLb} | ${vsLb99} | ${pct(s.slo_attainment.ttft)} | ${ratio} | ${pct(s.slo_attainment.both)} | ${sec(s.ttft_ms.p99)} | ${s.activations} | ${s.migrations} |`);
  }
  if (!SWEEP_ONLY && !STRESS_ONLY && !MAP_ONLY) {
    console.log(lines.join("\n"));
    tables.push(`## ${w.name}\n${lines.join("\n")}`);
  }
  if (SWEEP) {
    const prismRow = rows.find((r) => r.label === "prism")!;
    const t0 = performance.now();
    const sweep = sweepTables(base, staticRow.devices ?? 16, prismRow.devices ?? staticRow.devices ?? 16);
    console.log(`\n${sweep.join("\n")}\n(sweeps: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  if (STRESS) {
    const counts = [...new Set([rows.find((r) => r.label === "prism")!.devices, staticRow.devices].filter((d): d is number => d !== null))];
    const t0 = performance.now();
    const stress = stressTables(base, counts);
    console.log(`\n${stress.join("\n")}\n(stress: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    if (staticRow.devices !== null) {
      const t1 = performance.now();
      console.log(`\n${capacityTable(base, staticRow.devices).join("\n")}\n(capacity: ${((performance.now() - t1) / 1000).toFixed(0)} s)`);
    }
  }
  const prismNeeded = rows.find((r) => r.label === "prism")!.devices;
  if (MAP && prismNeeded !== null && prismNeeded > 1) {
    const t0 = performance.now();
    console.log(`\n${struggleMap(base, prismNeeded - 1).join("\n")}\n(map: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  if (NEEDED) printNeeded();
  devicesByWorkload.push({ name: w.name, needed: rows.map((r) => ({ policy: r.label, devices: r.devices })), lb: lb.devices });
}

if (SPEED) {
  const gen = ["servegen", "--pool", "m-large", "--num-models", "64", "--duration", "3600", "--compression", "60", "--rate", "280", "--seed", "1"];
  const file = traceFile(gen);
  const cfg = loadModelsFile(join(REPO, "examples/sim/servegen-64.yaml"));
  const t0 = performance.now();
  const p = prepareWorkload(readTrace(file), cfg, { name: "speed" });
  const prepS = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const cpu0 = process.cpuUsage();
  const out = runPolicy(p, { policy: "prism", devices: 32 });
  const runS = (performance.now() - t1) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  console.log(`\n## Speed: prism trace gen ${gen.join(" ")}; prism on 32 H100s`);
  console.log("| requests | steps | events | simulated s | prepare (dedicated SLO runs; cached on disk after) | run (process CPU) | µs/step |");
  console.log("|---|---|---|---|---|---|---|");
  console.log(`| ${p.trace.numRequests} | ${out.summary.steps} | ${out.result.events} | ${out.summary.sim_end_s.toFixed(0)} | ${prepS.toFixed(1)} s | ${runS.toFixed(1)} s (${cpuS.toFixed(1)} s) | ${((runS * 1e6) / out.summary.steps).toFixed(1)} |`);
}

if (REPORT !== null) {
  writeFileSync(REPORT, renderSimReport({
    title: "bench:sim — devices needed per policy",
    notes: devicesByWorkload.map((d) => `${d.name}: fluid lower bound ${d.lb}`),
    devicesNeeded: devicesByWorkload[0]?.needed ?? [],
    ...(devicesByWorkload[0] ? { lowerBound: devicesByWorkload[0].lb } : {}),
    table: { header: ["workload", ...VARIANTS.map((v) => v.label), "lower bound"], rows: devicesByWorkload.map((d) => [d.name, ...d.needed.map((n) => n.devices ?? "> 64"), d.lb]) },
  }));
  console.log(`report: ${REPORT}`);
}
