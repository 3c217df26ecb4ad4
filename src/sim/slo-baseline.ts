/**
 * Per-model SLOs the way the Prism prototype sets them (trace.py, prism.md §5.2): SLO = scale × the
 * model's p99 TTFT (and p99 TPOT) when it is served alone on a dedicated device with its own slice
 * of the trace. The dedicated runs are simulations themselves (one device, the model pinned and
 * resident, the real DeviceScheduler), cached per (device, cost constants, arch, tp, slice).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { modelId as toModelId } from "../core/ids.ts";
import { PrismError } from "../core/errors.ts";
import type { DeviceSchedulerConfig } from "../device/types.ts";
import type { Trace } from "../workload/trace-format.ts";
import { evaluateSlo } from "../metrics/slo.ts";
import { CostModel } from "./cost-model.ts";
import type { ModelArchId } from "./catalog.ts";
import { DirectDriver } from "./direct-driver.ts";
import { Simulator } from "./simulator.ts";

export interface DedicatedLatency {
  readonly ttftP99Ms: number;
  readonly tpotP99Ms: number;
  readonly numRequests: number;
  /** Busy fraction of the dedicated device (> ~0.9 means the model overloads one device alone). */
  readonly utilization: number;
}

const cache = new Map<string, DedicatedLatency>();

/**
 * Dedicated runs replay each model's whole slice, as long as the cluster run itself; their results
 * are also kept on disk (one small JSON per key, in PRISM_SIM_CACHE or <tmpdir>/prism-sim-cache), so
 * repeated `prism sim` invocations on the same trace skip them. Set PRISM_SIM_CACHE=off to disable.
 */
function diskDir(): string | null {
  const env = process.env["PRISM_SIM_CACHE"];
  if (env === "off") return null;
  return env !== undefined && env !== "" ? env : join(tmpdir(), "prism-sim-cache");
}

function diskGet(key: string): DedicatedLatency | null {
  const dir = diskDir();
  if (dir === null) return null;
  try {
    const v = JSON.parse(readFileSync(join(dir, `${hashKey(key)}.json`), "utf8")) as { key: string; value: DedicatedLatency };
    return v.key === key ? v.value : null;
  } catch {
    return null;
  }
}

function diskPut(key: string, value: DedicatedLatency): void {
  const dir = diskDir();
  if (dir === null) return;
  try {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${hashKey(key)}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ key, value }));
    renameSync(tmp, file);
  } catch {
    // a cache that cannot be written is only slower
  }
}

let codeHash: string | null = null;
/** Hash of the code a dedicated run depends on (device scheduler, memory, this simulator): a change invalidates the disk cache. */
function codeVersion(): string {
  if (codeHash !== null) return codeHash;
  const h = createHash("sha256");
  for (const dir of ["../device/", "../memory/", "./"]) {
    const url = new URL(dir, import.meta.url);
    try {
      for (const f of readdirSync(url).filter((x) => x.endsWith(".ts")).sort()) h.update(f).update(readFileSync(new URL(f, url)));
    } catch {
      h.update(dir);
    }
  }
  codeHash = h.digest("hex").slice(0, 16);
  return codeHash;
}

function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 32);
}

/** Requests of one model, as a one-model trace (arrivals unchanged). */
export function modelSlice(trace: Trace, modelIndex: number): Trace {
  let n = 0;
  for (let i = 0; i < trace.numRequests; i++) if (trace.modelIndex[i] === modelIndex) n++;
  const arrivalS = new Float64Array(n);
  const inputTokens = new Int32Array(n);
  const outputTokens = new Int32Array(n);
  let j = 0;
  for (let i = 0; i < trace.numRequests; i++) {
    if (trace.modelIndex[i] !== modelIndex) continue;
    arrivalS[j] = trace.arrivalS[i]!;
    inputTokens[j] = trace.inputTokens[i]!;
    outputTokens[j] = trace.outputTokens[i]!;
    j++;
  }
  return { numRequests: n, modelNames: [trace.modelNames[modelIndex]!], arrivalS, modelIndex: new Int32Array(n), inputTokens, outputTokens };
}

function fingerprint(t: Trace): string {
  // FNV-1a over the columns: cheap, and any change of the slice changes the key
  let h = 0x811c9dc5;
  const mix = (x: number): void => {
    h ^= x | 0;
    h = Math.imul(h, 0x01000193);
  };
  for (let i = 0; i < t.numRequests; i++) {
    mix(Math.round(t.arrivalS[i]! * 1e6));
    mix(Math.round(t.arrivalS[i]! * 1e6 / 4294967296));
    mix(t.inputTokens[i]!);
    mix(t.outputTokens[i]!);
  }
  return `${t.numRequests}:${(h >>> 0).toString(16)}`;
}

/** p99 TTFT/TPOT of one model alone on a dedicated device, replaying `slice` (a one-model trace). */
export function dedicatedLatency(args: {
  readonly costModel: CostModel;
  readonly arch: ModelArchId;
  readonly tp: number | null;
  readonly slice: Trace;
  readonly deviceConfig?: Partial<DeviceSchedulerConfig>;
}): DedicatedLatency {
  const cm = args.costModel;
  const key = JSON.stringify([codeVersion(), cm.deviceType, cm.device, cm.eff, args.arch, args.tp, args.deviceConfig ?? null, fingerprint(args.slice)]);
  const hit = cache.get(key) ?? diskGet(key);
  if (hit !== null && hit !== undefined) {
    cache.set(key, hit);
    return hit;
  }
  // A private cost model: the dedicated run must not depend on which other models exist.
  const own = new CostModel({ deviceType: cm.deviceType, device: cm.device, efficiency: cm.eff });
  const id = toModelId(args.slice.modelNames[0] ?? "model");
  const cost = own.addModel({ id, arch: args.arch, ...(args.tp !== null ? { tp: args.tp } : {}) });
  if (args.slice.numRequests === 0) {
    const res: DedicatedLatency = { ttftP99Ms: own.prefillMs(id, 1), tpotP99Ms: own.decodeMs(id, 1, 1), numRequests: 0, utilization: 0 };
    cache.set(key, res);
    return res;
  }
  // The model is resident before its first request: shift arrivals past the initial load.
  const shiftS = cost.loadMs / 1000;
  const arrivalS = Float64Array.from(args.slice.arrivalS, (t) => t + shiftS);
  // SLOs do not influence a lone model's schedule (one queue, FCFS among equals); any finite value works.
  const sim = new Simulator({
    trace: { ...args.slice, arrivalS },
    models: [{ cost, ttftSloMs: 1e9, tpotSloMs: 1e9 }],
    costModel: own,
    numDevices: 1,
    driver: new DirectDriver({ preload: true }),
    ...(args.deviceConfig !== undefined ? { deviceConfig: args.deviceConfig } : {}),
  });
  const r = sim.run();
  const rep = evaluateSlo(r.outcomes, { ttftMs: Infinity, tpotMs: Infinity });
  const ttft = rep.overall.ttftMs.p99;
  const tpotRaw = rep.overall.tpotMs.p99;
  if (args.slice.numRequests > 0 && !Number.isFinite(ttft)) {
    throw new PrismError("PRISM_SIM_INVALID", `dedicated run of ${id} (${args.arch}) completed no request: does the model fit the device?`, { modelId: id });
  }
  // A model whose requests all have one output token has no TPOT; fall back to one decode step.
  const tpot = Number.isFinite(tpotRaw) ? tpotRaw : own.decodeMs(id, 1, 1);
  const res: DedicatedLatency = { ttftP99Ms: ttft, tpotP99Ms: tpot, numRequests: args.slice.numRequests, utilization: r.utilization };
  cache.set(key, res);
  diskPut(key, res);
  return res;
}

/** Forget the in-process cache (the disk cache stays; PRISM_SIM_CACHE=off bypasses it). */
export function clearDedicatedCache(): void {
  cache.clear();
}
