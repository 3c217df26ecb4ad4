// `npm run bench:control`: one global planning round — plan(state, now) — for prism and every
// baseline on a 1,000-model, 256-device cluster (80 GiB devices, weights 2–25 GiB, Zipf α = 1
// popularity over 500 req/s, ~3 models resident per device, 60 cold models with waiting requests,
// stale idle instances to evict). Also: building the ClusterState from snapshots (observe), the
// router-miss path (onDemand), the fixed policies' one-shot placement, and router.route.
// Target: plan < 20 ms. Prints medians over RUNS runs. Numbers depend on the (shared, 2-core) machine.
import { performance } from "node:perf_hooks";
import { deviceId, modelId } from "../src/core/ids.ts";
import { SeededRng } from "../src/core/rng.ts";
import { buildClusterState, NO_DEMAND, type DeviceSnapshot, type InstanceSnapshot, type ModelRecord } from "../src/control/cluster-state.ts";
import { createPolicy, POLICY_NAMES } from "../src/control/policies/registry.ts";
import { Router } from "../src/control/router.ts";
import type { ClusterState } from "../src/control/types.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const NUM_MODELS = Number(process.env.BENCH_MODELS ?? 1000);
const NUM_DEVICES = Number(process.env.BENCH_DEVICES ?? 256);
const GiB = 1024 ** 3;
const NOW = 600_000;
const CONFIG = { minKvFraction: 0.05, idleEvictMs: 5000, tau: 0.2, maxMigrationsPerRound: 1 };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function time(fn: () => void, runs = RUNS): number {
  fn(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

function buildCluster(): { records: ModelRecord[]; devices: DeviceSnapshot[] } {
  const rng = new SeededRng(2026);
  const kvPerToken = [32, 112, 18, 192, 320, 384, 128, 512, 800, 336, 160].map((k) => k * 1024);
  let harmonic = 0;
  for (let i = 1; i <= NUM_MODELS; i++) harmonic += 1 / i;
  const records: ModelRecord[] = [];
  for (let i = 0; i < NUM_MODELS; i++) {
    const rate = (500 / harmonic) / (i + 1);
    records.push({
      id: modelId(`m${i}`),
      weightBytes: Math.round((2 + rng.next() * 23) * GiB),
      kvBytesPerToken: kvPerToken[rng.int(kvPerToken.length)]!,
      maxContextTokens: 4096,
      ttftSloMs: 200 + rng.int(4800),
      tpotSloMs: 50 + rng.int(200),
      pinned: i % 97 === 0,
      keepAliveMs: 5000,
      expectedRatePerS: rate,
      demand: { ...NO_DEMAND, arrivalRatePerS: rate * (0.2 + rng.next() * 1.6), tokenRatePerS: rate * 600, lastArrivalMs: NOW - rng.int(20_000) },
      pendingRequests: 0,
      oldestPendingMs: Infinity,
    });
  }
  // Residency: the most popular models first, each onto the device with the most free memory.
  const free = new Float64Array(NUM_DEVICES).fill(80 * GiB * 0.95);
  const perDevice: InstanceSnapshot[][] = Array.from({ length: NUM_DEVICES }, () => []);
  for (let i = 0; i < NUM_MODELS && i < 3 * NUM_DEVICES; i++) {
    let best = 0;
    for (let d = 1; d < NUM_DEVICES; d++) if (free[d]! > free[best]!) best = d;
    if (free[best]! < records[i]!.weightBytes) continue;
    free[best]! -= records[i]!.weightBytes;
    const idle = rng.next() < 0.15;
    perDevice[best]!.push({
      modelId: records[i]!.id,
      state: rng.next() < 0.05 ? "activating" : "active",
      kvUsedBytes: idle ? 0 : rng.int(8) * GiB,
      kvLimitBytes: null,
      kvLimitRevision: 0,
      queuedRequests: idle ? 0 : rng.int(20),
      runningRequests: idle ? 0 : 1 + rng.int(30),
      lastUsedMs: idle ? NOW - 10_000 - rng.int(60_000) : NOW - rng.int(1000),
      sinceMs: NOW - 60_000,
    });
  }
  // Cold models with waiting requests (activations to plan).
  for (let k = 0, i = 3 * NUM_DEVICES; k < 60 && i < NUM_MODELS; k++, i += 3) {
    records[i] = { ...records[i]!, pendingRequests: 1 + rng.int(5), oldestPendingMs: NOW - rng.int(3000) };
  }
  const devices: DeviceSnapshot[] = perDevice.map((instances, d) => ({ id: deviceId(d), memoryBytes: 80 * GiB, pageBytes: 2 * 1024 * 1024, instances }));
  return { records, devices };
}

const { records, devices } = buildCluster();
const rows: { what: string; medianMs: number; note: string }[] = [];

let state: ClusterState | null = null;
rows.push({ what: "observe: buildClusterState", medianMs: time(() => { state = buildClusterState(NOW, records, devices); }), note: `${NUM_MODELS} models, ${NUM_DEVICES} devices` });
const s = state!;
const resident = s.devices.reduce((n, d) => n + d.instances.length, 0);

for (const name of POLICY_NAMES) {
  const policy = createPolicy(name, CONFIG);
  if (name === "static" || name === "muxserve" || name === "elastic") {
    rows.push({ what: `${name}: first plan (one-shot placement)`, medianMs: time(() => createPolicy(name, CONFIG).plan(s, NOW)), note: "computed once per cluster" });
  }
  let numActions = 0;
  const ms = time(() => { numActions = policy.plan(s, NOW).length; });
  rows.push({ what: `${name}: plan(state, now)`, medianMs: ms, note: `${numActions} actions` });
}

const prism = createPolicy("prism", CONFIG);
const cold = s.models.find((m) => m.pendingRequests > 0)!.index;
rows.push({ what: "prism: onDemand (router miss)", medianMs: time(() => prism.onDemand(s, cold, NOW)), note: "per activation, not per request" });

const router = new Router(NUM_MODELS, NUM_DEVICES, 8);
for (let m = 0; m < NUM_MODELS; m++) for (let k = 0; k < 1 + (m % 4); k++) router.addReplica(m, (m * 7 + k * 31) % NUM_DEVICES, k !== 2);
for (let d = 0; d < NUM_DEVICES; d++) router.addLoad(d, (d * 37) % 1000);
const ROUTES = 1_000_000;
let sink = 0;
const routeMs = time(() => {
  for (let i = 0; i < ROUTES; i++) sink += router.route(i % NUM_MODELS);
}, 5);
rows.push({ what: "router.route (1–4 replicas)", medianMs: routeMs, note: `${((routeMs * 1e6) / ROUTES).toFixed(1)} ns per request${sink < 0 ? "!" : ""}` });

console.log(`control bench: ${NUM_MODELS} models, ${NUM_DEVICES} devices, ${resident} resident instances, median of ${RUNS} runs (target: plan < 20 ms)`);
console.table(rows.map((r) => ({ what: r.what, "median ms": Number(r.medianMs.toFixed(3)), note: r.note })));
