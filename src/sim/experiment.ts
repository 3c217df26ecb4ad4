/**
 * Experiments on top of the simulator: prepare a workload (models file + trace → cost model, per-model
 * SLOs from dedicated runs), run one policy on N devices, search the fewest devices reaching a target
 * attainment, sweep the request rate or the SLO scale. Used by `prism sim` and bench/sim.bench.ts.
 *
 * Fairness rules (every policy gets the same inputs): the same trace, SLOs, device model, device
 * scheduler defaults and expected-rate prior (the trace's mean rate per model); only the policy name
 * differs. The rate sweep keeps the SLOs of the unscaled trace (else the bar would move with the load).
 */
import { PrismError } from "../core/errors.ts";
import type { DeviceSchedulerConfig } from "../device/types.ts";
import type { ControlConfig } from "../control/types.ts";
import type { PolicyOptions } from "../control/policies/registry.ts";
import type { Trace } from "../workload/trace-format.ts";
import { evaluateSlo, type GroupReport } from "../metrics/slo.ts";
import { CostModel } from "./cost-model.ts";
import { resolveModels, type SimModelSpec, type SimModelsConfig } from "./models-file.ts";
import { dedicatedLatency, modelSlice, type DedicatedLatency } from "./slo-baseline.ts";
import { fluidLowerBound, type LowerBoundResult } from "./lower-bound.ts";
import { Simulator, type SimModel, type SimRunResult } from "./simulator.ts";
import { GlobalDriver } from "./global-driver.ts";
import type { Timeline } from "./report.ts";

export interface PreparedWorkload {
  readonly name: string;
  readonly trace: Trace;
  readonly config: SimModelsConfig;
  readonly costModel: CostModel;
  /** Indexed like trace.modelNames. */
  readonly specs: readonly SimModelSpec[];
  readonly models: readonly SimModel[];
  /** Dedicated p99s (null for models with explicit SLOs). */
  readonly dedicated: readonly (DedicatedLatency | null)[];
  readonly durationS: number;
  readonly deviceConfig: Partial<DeviceSchedulerConfig>;
  /** Models whose dedicated run overloads a device: their SLO (scale × a queueing-dominated p99) means little. */
  readonly warnings: readonly string[];
}

/** A dedicated device busier than this is overloaded: queues grow and the p99 measures the backlog. */
export const DEDICATED_OVERLOAD_UTILIZATION = 0.85;

export interface PrepareOptions {
  readonly name?: string;
  readonly deviceConfig?: Partial<DeviceSchedulerConfig>;
  /** Override the models file's slo_scale. */
  readonly sloScale?: number;
}

/** Resolve models, build the cost model, compute dedicated p99s and SLOs (slo_scale × p99). */
export function prepareWorkload(trace: Trace, config: SimModelsConfig, opts: PrepareOptions = {}): PreparedWorkload {
  const specsAll = resolveModels(config, trace.modelNames);
  const byId = new Map(specsAll.map((s) => [s.id as string, s]));
  const specs = trace.modelNames.map((n) => byId.get(n)!);
  for (const s of specs) {
    if (s.tp !== null && s.tp > 1) {
      throw new PrismError("PRISM_SIM_INVALID", `model '${s.id}': tensor parallelism (tp ${s.tp}) is not simulated in multi-model runs yet; use tp 1 or a smaller arch`, { modelId: s.id });
    }
  }
  const costModel = new CostModel({ deviceType: config.deviceType, efficiency: config.efficiency });
  const deviceConfig = opts.deviceConfig ?? {};
  const dedicated: (DedicatedLatency | null)[] = [];
  const costs = specs.map((s) => costModel.addModel({ id: s.id, arch: s.arch, tp: 1 }));
  specs.forEach((s, m) => {
    dedicated.push(s.slo !== null ? null : dedicatedLatency({ costModel, arch: s.arch, tp: 1, slice: modelSlice(trace, m), deviceConfig }));
  });
  const warnings: string[] = [];
  dedicated.forEach((d, m) => {
    if (d !== null && d.utilization > DEDICATED_OVERLOAD_UTILIZATION) {
      warnings.push(`model ${trace.modelNames[m]} (${specs[m]!.arch}) keeps a dedicated device ${(d.utilization * 100).toFixed(0)}% busy (p99 TTFT ${(d.ttftP99Ms / 1000).toFixed(1)} s): its SLO is set by its own backlog; lower the rate`);
    }
  });
  const p: Omit<PreparedWorkload, "models"> = {
    warnings,
    name: opts.name ?? "workload",
    trace,
    config,
    costModel,
    specs,
    dedicated,
    durationS: trace.numRequests > 0 ? trace.arrivalS[trace.numRequests - 1]! : 0,
    deviceConfig,
  };
  const scale = opts.sloScale !== undefined ? { ttft: opts.sloScale, tpot: opts.sloScale } : config.sloScale;
  return { ...p, models: costs.map((cost, m) => ({ cost, ...sloOf(p, m, scale) })) };
}

function sloOf(p: Pick<PreparedWorkload, "specs" | "dedicated">, m: number, scale: { ttft: number; tpot: number }): { ttftSloMs: number; tpotSloMs: number } {
  const s = p.specs[m]!;
  if (s.slo !== null) return { ttftSloMs: s.slo.ttftMs, tpotSloMs: s.slo.tpotMs };
  const d = p.dedicated[m]!;
  return { ttftSloMs: scale.ttft * d.ttftP99Ms, tpotSloMs: scale.tpot * d.tpotP99Ms };
}

/** The same workload with SLOs at another scale (explicit SLOs stay). */
export function withSloScale(p: PreparedWorkload, scale: number): PreparedWorkload {
  return { ...p, models: p.models.map((m, i) => ({ cost: m.cost, ...sloOf(p, i, { ttft: scale, tpot: scale }) })) };
}

/** Arrivals compressed by `rateScale` (2 = twice the request rate); lengths and models unchanged. */
export function scaleRate(trace: Trace, rateScale: number): Trace {
  if (!(rateScale > 0)) throw new PrismError("PRISM_SIM_INVALID", `rate scale must be > 0, got ${rateScale}`);
  if (rateScale === 1) return trace;
  return { ...trace, arrivalS: Float64Array.from(trace.arrivalS, (t) => t / rateScale) };
}

export interface RunOptions {
  readonly policy: string;
  readonly devices: number;
  readonly rateScale?: number;
  readonly control?: Partial<ControlConfig>;
  readonly policyOptions?: PolicyOptions;
  /**
   * Device scheduler settings for this run on top of the workload's (e.g. `{ abortUnreachable: true }`,
   * the server's `scheduler.abort_unreachable_slo`). The dedicated runs behind the SLOs do not see them.
   */
  readonly deviceConfig?: Partial<DeviceSchedulerConfig>;
  readonly seed?: number;
  /** Record a timeline, sampling memory every this many ms. */
  readonly timelineSampleMs?: number;
  /** Leave wall_s out of the summary (byte-identical JSON across runs). */
  readonly deterministic?: boolean;
  /**
   * Seconds of quiet before the first arrival, so placements made at start (static, muxserve,
   * elastic load every placed model in the first round) are warm, as in a running service; the same
   * for every policy. Default: Σ of all models' load times (every model loaded one after another).
   */
  readonly warmupS?: number;
}

export interface Attainment {
  readonly ttft: number;
  readonly tpot: number;
  readonly both: number;
}

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
}

export interface ModelSummary {
  readonly model: string;
  readonly arch: string;
  readonly requests: number;
  readonly slo_ms: { readonly ttft: number; readonly tpot: number };
  readonly slo_attainment: Attainment;
  readonly ttft_ms: Percentiles;
  readonly tpot_ms: Percentiles;
}

/** The JSON `prism sim --json` prints; field names are stable. */
export interface SimSummary {
  readonly workload: string;
  readonly policy: string;
  readonly devices: number;
  readonly device_type: string;
  readonly requests: number;
  readonly rate_scale: number;
  /** Quiet seconds before the first arrival (start-up placements load then). */
  readonly warmup_s: number;
  readonly slo_attainment: Attainment;
  readonly ttft_ms: Percentiles;
  readonly tpot_ms: Percentiles;
  readonly failed: number;
  readonly activations: number;
  /** Weight unloads of every cause: evicted for room, keep-alive expiry, deactivated by the global policy. */
  readonly evictions: number;
  readonly keep_alive_unloads: number;
  readonly migrations: number;
  readonly preemptions: number;
  readonly gpu_utilization: number;
  readonly steps: number;
  readonly sim_end_s: number;
  /**
   * Why TTFT was missed: requests that failed; completed but waited for their model's activation;
   * were preempted; the rest (queueing behind other work).
   */
  readonly ttft_misses: { readonly failed: number; readonly activation: number; readonly preempted: number; readonly queueing: number };
  /** The global scheduler's own counters (activations it ordered, on-demand ones, device-initiated evictions it saw, …). */
  readonly control: Readonly<Record<string, number>>;
  readonly per_model: readonly ModelSummary[];
  readonly wall_s?: number;
}

export interface RunOutput {
  readonly summary: SimSummary;
  readonly result: SimRunResult;
  readonly timeline: Timeline | null;
}

const r6 = (x: number): number => (Number.isFinite(x) ? Math.round(x * 1e6) / 1e6 : x);
const r3 = (x: number): number => (Number.isFinite(x) ? Math.round(x * 1e3) / 1e3 : x);
/** NaN and ±Infinity are not JSON: report them as null. */
const num = (x: number): number => (Number.isFinite(x) ? x : (null as unknown as number));

function attainment(g: GroupReport): Attainment {
  return { ttft: num(r6(g.ttftAttainment)), tpot: num(r6(g.tpotAttainment)), both: num(r6(g.bothAttainment)) };
}

/** Run one policy on `devices` devices. */
export function runPolicy(p: PreparedWorkload, o: RunOptions): RunOutput {
  const t0 = performance.now();
  const rateScale = o.rateScale ?? 1;
  const scaled = scaleRate(p.trace, rateScale);
  const warmupS = o.warmupS ?? defaultWarmupS(p);
  const trace = warmupS > 0 ? { ...scaled, arrivalS: Float64Array.from(scaled.arrivalS, (t) => t + warmupS) } : scaled;
  const expected = new Map<string, number>();
  const counts = new Float64Array(trace.modelNames.length);
  for (let i = 0; i < trace.numRequests; i++) counts[trace.modelIndex[i]!]!++;
  const span = Math.max(1e-9, scaled.numRequests > 0 ? scaled.arrivalS[scaled.numRequests - 1]! : 1);
  trace.modelNames.forEach((n, m) => expected.set(n, counts[m]! / span));
  const cm = p.costModel;
  const driver = new GlobalDriver({
    policy: o.policy,
    config: { ...loadEstimate(p), ...(o.control ?? {}) },
    expectedRates: expected,
    ...(o.policyOptions !== undefined ? { policyOptions: o.policyOptions } : {}),
  });
  const sim = new Simulator({
    trace,
    models: p.models,
    costModel: cm,
    numDevices: o.devices,
    driver,
    deviceConfig: o.deviceConfig !== undefined ? { ...p.deviceConfig, ...o.deviceConfig } : p.deviceConfig,
    seed: o.seed ?? 1,
    timelineSampleMs: o.timelineSampleMs ?? null,
  });
  const result = sim.run();
  const report = evaluateSlo(result.outcomes, p.models.map((m) => ({ ttftMs: m.ttftSloMs, tpotMs: m.tpotSloMs })));
  const perModel: ModelSummary[] = report.perModel.map((g, m) => ({
    model: g.name,
    arch: p.specs[m]!.arch,
    requests: g.count,
    slo_ms: { ttft: r3(p.models[m]!.ttftSloMs), tpot: r3(p.models[m]!.tpotSloMs) },
    slo_attainment: attainment(g),
    ttft_ms: { p50: num(r3(g.ttftMs.p50)), p99: num(r3(g.ttftMs.p99)) },
    tpot_ms: { p50: num(r3(g.tpotMs.p50)), p99: num(r3(g.tpotMs.p99)) },
  }));
  const g = report.overall;
  const summary: SimSummary = {
    workload: p.name,
    policy: o.policy,
    devices: o.devices,
    device_type: p.config.deviceType,
    requests: g.count,
    rate_scale: rateScale,
    warmup_s: warmupS,
    slo_attainment: attainment(g),
    ttft_ms: { p50: num(r3(g.ttftMs.p50)), p99: num(r3(g.ttftMs.p99)) },
    tpot_ms: { p50: num(r3(g.tpotMs.p50)), p99: num(r3(g.tpotMs.p99)) },
    failed: g.failed,
    activations: result.activations,
    evictions: result.evictions + result.keepAliveUnloads + result.manualUnloads,
    keep_alive_unloads: result.keepAliveUnloads,
    migrations: result.migrations,
    preemptions: result.preemptions,
    gpu_utilization: r6(result.utilization),
    steps: result.steps,
    sim_end_s: r3(result.endMs / 1000),
    ttft_misses: missBreakdown(result, p.models),
    control: driver.counters(),
    per_model: perModel,
    ...(o.deterministic ? {} : { wall_s: r3((performance.now() - t0) / 1000) }),
  };
  return { summary, result, timeline: result.timeline === null ? null : toTimeline(o.policy, o.devices, result, trace.modelNames) };
}

function missBreakdown(r: SimRunResult, models: readonly SimModel[]): SimSummary["ttft_misses"] {
  const o = r.outcomes;
  let failed = 0;
  let activation = 0;
  let preempted = 0;
  let queueing = 0;
  for (let i = 0; i < o.count; i++) {
    if (o.ok[i] !== 1) {
      failed++;
      continue;
    }
    if (o.ttftMs[i]! < models[o.modelIndex[i]!]!.ttftSloMs) continue;
    if (r.activationWaitMs[i]! > 0) activation++;
    else if (r.preemptionsOf[i]! > 0) preempted++;
    else queueing++;
  }
  return { failed, activation, preempted, queueing };
}

/** Σ of every model's load time (s): enough for any start-up placement to finish loading. */
export function defaultWarmupS(p: Pick<PreparedWorkload, "models">): number {
  let ms = 0;
  for (const m of p.models) ms += m.cost.loadMs;
  return Math.ceil(ms / 1000);
}

/**
 * What the policies need to estimate an activation exactly as the cost model charges it:
 * activationStartMs + weightBytes / loadBytesPerMs (cost-model.ts: loadMs, tp 1 in multi-model runs),
 * and the device's prefill throughput.
 */
export function loadEstimate(p: Pick<PreparedWorkload, "costModel">): { loadBytesPerMs: number; activationStartMs: number; computeBytesPerMs: number } {
  const cm = p.costModel;
  return {
    loadBytesPerMs: (cm.device.hostLinkBytesPerS * cm.eff.hostLinkEfficiency) / 1000,
    activationStartMs: cm.eff.activationStartMs,
    // 2·params FLOPs per token = weight bytes (bf16): the cost model's prefill rate (cost-model.ts msPerTokenFlops).
    computeBytesPerMs: (cm.device.peakFlops * cm.eff.mfu) / 1000,
  };
}

function toTimeline(policy: string, devices: number, r: SimRunResult, names: readonly string[]): Timeline {
  const tl = r.timeline!;
  return {
    policy,
    devices,
    tS: tl.tMs.map((t) => t / 1000),
    kvBytes: tl.kvBytes,
    weightBytes: tl.weightBytes,
    residency: tl.residency.map((s) => ({ device: s.device, model: names[s.model]!, fromS: s.fromMs / 1000, toS: s.toMs / 1000 })),
  };
}

export type AttainmentMetric = keyof Attainment;

export interface MinDevicesResult {
  readonly policy: string;
  /** Fewest devices reaching the target, or null when even `maxDevices` does not. */
  readonly devices: number | null;
  /** Every run made, by device count. */
  readonly tried: readonly { readonly devices: number; readonly attainment: number }[];
  readonly summary: SimSummary | null;
}

/**
 * Fewest devices whose run reaches `target` attainment of `metric`: doubling from `minDevices` until
 * it is reached, then binary search (assumes attainment grows with devices; deterministic).
 */
export function findMinDevices(p: PreparedWorkload, o: Omit<RunOptions, "devices"> & {
  readonly target: number;
  readonly metric?: AttainmentMetric;
  readonly minDevices?: number;
  readonly maxDevices?: number;
  readonly onRun?: (s: SimSummary) => void;
}): MinDevicesResult {
  const metric = o.metric ?? "ttft";
  const tried: { devices: number; attainment: number }[] = [];
  const summaries = new Map<number, SimSummary>();
  const run = (d: number): boolean => {
    const s = runPolicy(p, { ...o, devices: d }).summary;
    summaries.set(d, s);
    const a = s.slo_attainment[metric] ?? 0;
    tried.push({ devices: d, attainment: a });
    o.onRun?.(s);
    return a >= o.target;
  };
  const maxD = o.maxDevices ?? 256;
  let lo = Math.max(1, o.minDevices ?? 1) - 1; // largest known failing count (0 = none known)
  let hi = -1; // smallest known succeeding count
  let d = lo + 1;
  for (;;) {
    if (run(d)) {
      hi = d;
      break;
    }
    lo = d;
    if (d >= maxD) break;
    d = Math.min(maxD, Math.max(d + 1, d * 2));
  }
  if (hi < 0) return { policy: o.policy, devices: null, tried, summary: null };
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (run(mid)) hi = mid;
    else lo = mid;
  }
  return { policy: o.policy, devices: hi, tried, summary: summaries.get(hi) ?? null };
}

export interface MaxRateResult {
  readonly policy: string;
  readonly devices: number;
  /** Largest rate scale found reaching the target (within `precision`), or null when even `minScale` does not. */
  readonly rateScale: number | null;
  /** True when `maxScale` itself reached the target (the real maximum may be higher). */
  readonly capped: boolean;
  /** Every run made, by rate scale. */
  readonly tried: readonly { readonly rateScale: number; readonly attainment: number }[];
}

/**
 * The largest request-rate scale (arrivals compressed, SLOs of the ×1 trace) at which `policy` on
 * `devices` devices still reaches `target` attainment of `metric`: the paper's "requests served at
 * 99% SLO attainment" on the same GPUs. From ×1, doubling (or halving) until the outcome flips,
 * then geometric bisection until the bracket is within `precision` (assumes attainment falls as
 * the rate grows; deterministic).
 */
export function findMaxRate(p: PreparedWorkload, o: Omit<RunOptions, "rateScale"> & {
  readonly target: number;
  readonly metric?: AttainmentMetric;
  readonly minScale?: number;
  readonly maxScale?: number;
  /** Stop when hi / lo ≤ this (default 1.05). */
  readonly precision?: number;
}): MaxRateResult {
  const metric = o.metric ?? "ttft";
  const minScale = o.minScale ?? 1 / 16;
  const maxScale = o.maxScale ?? 16;
  const precision = o.precision ?? 1.05;
  if (!(minScale > 0 && maxScale >= minScale && precision > 1)) {
    throw new PrismError("PRISM_SIM_INVALID", `findMaxRate: need 0 < minScale ≤ maxScale and precision > 1`, { minScale, maxScale, precision });
  }
  const tried: { rateScale: number; attainment: number }[] = [];
  const ok = (x: number): boolean => {
    const a = runPolicy(p, { ...o, rateScale: x }).summary.slo_attainment[metric] ?? 0;
    tried.push({ rateScale: x, attainment: a });
    return a >= o.target;
  };
  const start = Math.min(maxScale, Math.max(minScale, 1));
  let lo: number; // largest known success
  let hi: number; // smallest known failure
  if (ok(start)) {
    lo = start;
    for (;;) {
      if (lo >= maxScale) return { policy: o.policy, devices: o.devices, rateScale: lo, capped: true, tried };
      const x = Math.min(maxScale, lo * 2);
      if (!ok(x)) {
        hi = x;
        break;
      }
      lo = x;
    }
  } else {
    hi = start;
    for (;;) {
      if (hi <= minScale) return { policy: o.policy, devices: o.devices, rateScale: null, capped: false, tried };
      const x = Math.max(minScale, hi / 2);
      if (ok(x)) {
        lo = x;
        break;
      }
      hi = x;
    }
  }
  while (hi / lo > precision) {
    const mid = Math.sqrt(lo * hi);
    if (ok(mid)) lo = mid;
    else hi = mid;
  }
  return { policy: o.policy, devices: o.devices, rateScale: lo, capped: false, tried };
}

/**
 * The fluid lower bound on devices for a prepared workload (see lower-bound.ts), for serving a
 * `targetAttainment` fraction of the requests (default 1: all of them).
 */
export function lowerBoundFor(p: PreparedWorkload, rateScale = 1, memoryWindowS?: number, targetAttainment = 1): LowerBoundResult {
  const costs = p.models.map((m) => m.cost);
  return fluidLowerBound(scaleRate(p.trace, rateScale), costs, p.costModel, { ...(memoryWindowS !== undefined ? { memoryWindowS } : {}), targetAttainment });
}

/** "a:b:step" → [a, a+step, …, ≤ b]; "a:b" → integers a..b; "x,y,z" → the list. */
export function parseRange(spec: string): number[] {
  const bad = (): PrismError => new PrismError("PRISM_CLI_USAGE", `bad range '${spec}': use START:END[:STEP] or a comma list`, { spec });
  if (spec.includes(",")) {
    const v = spec.split(",").map((s) => Number(s.trim()));
    if (v.some((x) => !Number.isFinite(x))) throw bad();
    return v;
  }
  const parts = spec.split(":").map((s) => Number(s.trim()));
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !Number.isFinite(x))) throw bad();
  const [a, b, step = 1] = parts as [number, number, number?];
  if (!(step > 0) || b < a) throw bad();
  const out: number[] = [];
  for (let k = 0; ; k++) {
    const x = Math.round((a + k * step) * 1e9) / 1e9;
    if (x > b + 1e-9) break;
    out.push(x);
  }
  return out;
}
