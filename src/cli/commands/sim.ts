/**
 * `prism sim`: replay a trace through the real schedulers on simulated devices.
 *
 *   prism sim --models m.yaml --trace t.csv --policy prism --devices 8 [--json]
 *   prism sim ... --policy prism,static,swap,muxserve,elastic --min-devices --target 0.99
 *   prism sim ... --devices 8 --sweep rate=0.5:4:0.5 | --sweep slo=1:10 [--report out.html]
 *   prism sim ... --min-devices --sweep rate=1:4 | --sweep slo=2:20:2   (devices needed per point:
 *     capacity planning for traffic growth or a tighter or looser SLO)
 *
 * Prints SLO attainment (TTFT, TPOT, both), p50/p99 TTFT and TPOT overall and per model,
 * activations, evictions, migrations, GPU utilisation, and the fluid lower bound on devices.
 */
import type { Command } from "commander";
import { writeFileSync } from "node:fs";
import { PrismError } from "../../core/errors.ts";
import { POLICY_NAMES } from "../../control/policies/registry.ts";
import { DEFAULT_CONTROL_CONFIG, type ControlConfig } from "../../control/types.ts";
import { readTrace } from "../../workload/trace-format.ts";
import { loadModelsFile } from "../../sim/models-file.ts";
import {
  findMinDevices, lowerBoundFor, parseRange, prepareWorkload, runPolicy, withSloScale,
  type AttainmentMetric, type MinDevicesResult, type PreparedWorkload, type SimSummary,
} from "../../sim/experiment.ts";
import { renderSimReport, type SweepSeries, type Timeline } from "../../sim/report.ts";
import type { LowerBoundResult } from "../../sim/lower-bound.ts";

interface SimFlags {
  models?: string;
  trace?: string;
  policy: string;
  devices?: string;
  json?: boolean;
  deterministic?: boolean;
  minDevices?: boolean;
  target: string;
  metric: string;
  maxDevices: string;
  sweep?: string;
  report?: string;
  sloScale?: string;
  seed: string;
  lbWindow: string;
  timelineSample: string;
  control?: string;
  abortUnreachableSlo?: boolean;
  demoteExpired?: boolean;
  guardFirstTokens?: boolean;
}

/** "k=v,k2=v2" over the keys of DEFAULT_CONTROL_CONFIG (numbers) → a partial ControlConfig. */
function parseControl(spec: string | undefined): Partial<ControlConfig> {
  if (spec === undefined) return {};
  const out: Record<string, number> = {};
  for (const part of spec.split(",")) {
    const p = part.trim();
    if (p === "") continue;
    const eq = p.indexOf("=");
    const key = eq < 0 ? p : p.slice(0, eq).trim();
    if (!Object.hasOwn(DEFAULT_CONTROL_CONFIG, key)) {
      throw new PrismError("PRISM_CONFIG_UNKNOWN_KEY", `--control: unknown key '${key}' (known: ${Object.keys(DEFAULT_CONTROL_CONFIG).join(", ")})`, { key });
    }
    const raw = eq < 0 ? "" : p.slice(eq + 1).trim();
    const v = raw === "inf" || raw === "Infinity" ? Infinity : Number(raw);
    if (raw === "" || Number.isNaN(v)) throw usage(`--control ${key}: value must be a number (or inf), got '${raw}'`);
    out[key] = v;
  }
  return out as Partial<ControlConfig>;
}

function usage(msg: string): PrismError {
  return new PrismError("PRISM_CLI_USAGE", msg);
}

function positiveInt(name: string, v: string): number {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 1) throw usage(`--${name} must be an integer >= 1, got '${v}'`);
  return x;
}

function positive(name: string, v: string): number {
  const x = Number(v);
  if (!(x > 0) || !Number.isFinite(x)) throw usage(`--${name} must be a number > 0, got '${v}'`);
  return x;
}

function policiesOf(spec: string): string[] {
  const list = spec === "all" ? [...POLICY_NAMES] : spec.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const p of list) {
    if (!(POLICY_NAMES as readonly string[]).includes(p)) throw new PrismError("PRISM_UNKNOWN_POLICY", `unknown policy '${p}' (known: ${POLICY_NAMES.join(", ")}, all)`, { policy: p });
  }
  if (list.length === 0) throw usage("--policy names no policy");
  return list;
}

const pct = (x: number | null): string => (x === null || !Number.isFinite(x) ? "–" : `${(x * 100).toFixed(2)}%`);
const ms = (x: number | null): string => (x === null || !Number.isFinite(x) ? "–" : x >= 10000 ? `${(x / 1000).toFixed(1)}s` : x.toFixed(1));

function lbJson(lb: LowerBoundResult): Record<string, number> {
  return {
    devices: lb.devices,
    compute_devices: Math.round(lb.computeDevices * 1000) / 1000,
    memory_devices: Math.round(lb.memoryDevices * 1000) / 1000,
    memory_window_s: lb.memoryWindowS,
    compute_window_s: lb.computeWindowS,
  };
}

function summaryText(s: SimSummary, perModel: boolean): string {
  const lines: string[] = [];
  lines.push(`policy ${s.policy} on ${s.devices} × ${s.device_type}: ${s.requests} requests${s.rate_scale !== 1 ? ` (rate ×${s.rate_scale})` : ""}, ${s.failed} failed`);
  lines.push(`  SLO attainment  TTFT ${pct(s.slo_attainment.ttft)}  TPOT ${pct(s.slo_attainment.tpot)}  both ${pct(s.slo_attainment.both)}`);
  lines.push(`  TTFT ms p50 ${ms(s.ttft_ms.p50)} p99 ${ms(s.ttft_ms.p99)}   TPOT ms p50 ${ms(s.tpot_ms.p50)} p99 ${ms(s.tpot_ms.p99)}`);
  lines.push(`  TTFT misses: ${s.ttft_misses.failed} failed, ${s.ttft_misses.activation} waited for an activation, ${s.ttft_misses.preempted} preempted, ${s.ttft_misses.queueing} queueing`);
  lines.push(`  control: ${Object.entries(s.control).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  lines.push(`  activations ${s.activations}  evictions ${s.evictions} (keep-alive ${s.keep_alive_unloads})  migrations ${s.migrations}  preemptions ${s.preemptions}  GPU util ${pct(s.gpu_utilization)}${s.wall_s !== undefined ? `  (simulated ${s.sim_end_s.toFixed(0)} s in ${s.wall_s.toFixed(1)} s)` : ""}`);
  if (perModel) {
    lines.push("  model        arch            reqs   SLO ttft/tpot ms   att ttft   att tpot   att both   TTFT p50/p99      TPOT p50/p99");
    for (const m of s.per_model) {
      lines.push(`  ${m.model.padEnd(12)} ${m.arch.padEnd(14)} ${String(m.requests).padStart(6)}   ${`${ms(m.slo_ms.ttft)}/${ms(m.slo_ms.tpot)}`.padEnd(16)}   ${pct(m.slo_attainment.ttft).padStart(8)}   ${pct(m.slo_attainment.tpot).padStart(8)}   ${pct(m.slo_attainment.both).padStart(8)}   ${`${ms(m.ttft_ms.p50)}/${ms(m.ttft_ms.p99)}`.padEnd(16)}  ${ms(m.tpot_ms.p50)}/${ms(m.tpot_ms.p99)}`);
    }
  }
  return lines.join("\n");
}

export function register(program: Command): void {
  program
    .command("sim")
    .description("simulate the cluster: replay a trace through the real schedulers on modelled GPUs")
    .option("--models <file>", "models file (YAML): device, slo_scale, models [{id, arch, tp?, slo?}]")
    .option("--trace <file>", "trace CSV (arrival_s,model,input_tokens,output_tokens)")
    .option("--policy <names>", `policy, comma list or 'all' (${POLICY_NAMES.join(", ")})`, "prism")
    .option("--devices <n>", "number of devices")
    .option("--json", "print JSON (stable field names)")
    .option("--deterministic", "leave wall-clock fields out (byte-identical output for the same inputs)")
    .option("--min-devices", "search the fewest devices reaching --target attainment (per policy)")
    .option("--target <x>", "attainment target for --min-devices", "0.99")
    .option("--metric <m>", "attainment metric for --min-devices: ttft | tpot | both", "ttft")
    .option("--max-devices <n>", "upper end of the --min-devices search", "256")
    .option("--sweep <spec>", "rate=START:END[:STEP] (request-rate scale) or slo=START:END[:STEP] (SLO scale); attainment per point on --devices N, or with --min-devices the devices needed per point")
    .option("--report <file>", "write an HTML report (attainment curves, devices needed, timelines)")
    .option("--slo-scale <x>", "override the models file's slo_scale")
    .option("--seed <n>", "seed", "1")
    .option("--lb-window <s>", "memory averaging window of the fluid lower bound (s)", "1")
    .option("--timeline-sample <ms>", "memory sampling period of report timelines (ms)", "1000")
    .option("--control <k=v,...>", "global-scheduler settings for every policy (e.g. roundMs=5000,idleEvictMs=inf)")
    .option("--abort-unreachable-slo", "fail queued requests once their TTFT deadline has passed (the server's scheduler.abort_unreachable_slo; SLO-ordered policies only: prism)")
    .option("--no-demote-expired", "keep queued requests past their TTFT deadline in least-slack order instead of behind every other request (the server's scheduler.demote_expired: false)")
    .option("--no-guard-first-tokens", "let a prefill join a step even when that pushes another request's first token past its TTFT deadline (the server's scheduler.guard_first_tokens: false)")
    .action((flags: SimFlags) => {
      if (flags.models === undefined) throw usage("--models FILE is required");
      if (flags.trace === undefined) throw usage("--trace FILE is required");
      const policies = policiesOf(flags.policy);
      const config = loadModelsFile(flags.models);
      const trace = readTrace(flags.trace);
      const seed = Number(flags.seed);
      const deterministic = flags.deterministic === true;
      const target = Number(flags.target);
      if (!(target > 0 && target <= 1)) throw usage(`--target must be in (0, 1], got '${flags.target}'`);
      const metric = flags.metric as AttainmentMetric;
      if (!["ttft", "tpot", "both"].includes(metric)) throw usage(`--metric must be ttft, tpot or both, got '${flags.metric}'`);
      const lbWindow = positive("lb-window", flags.lbWindow);
      const sampleMs = positive("timeline-sample", flags.timelineSample);
      const p: PreparedWorkload = prepareWorkload(trace, config, {
        name: flags.trace,
        ...(flags.sloScale !== undefined ? { sloScale: positive("slo-scale", flags.sloScale) } : {}),
      });
      for (const w of p.warnings) process.stderr.write(`prism sim: warning: ${w}\n`);
      const devices = flags.devices !== undefined ? positiveInt("devices", flags.devices) : null;
      const control = parseControl(flags.control);
      const deviceConfig = {
        ...(flags.abortUnreachableSlo === true ? { abortUnreachable: true } : {}),
        ...(flags.demoteExpired === false ? { demoteExpired: false } : {}),
        ...(flags.guardFirstTokens === false ? { guardFirstTokens: false } : {}),
      };
      const deviceFlags = Object.keys(deviceConfig).length > 0 ? { deviceConfig } : {};
      const json = flags.json === true;
      const out = (s: string): void => {
        process.stdout.write(s.endsWith("\n") ? s : `${s}\n`);
      };

      if (flags.sweep !== undefined) {
        const m = /^(rate|slo)=(.+)$/.exec(flags.sweep);
        if (m === null) throw usage(`--sweep must be rate=START:END[:STEP] or slo=START:END[:STEP], got '${flags.sweep}'`);
        const kind = m[1] as "rate" | "slo";
        const values = parseRange(m[2]!);
        if (flags.minDevices === true) {
          if (devices !== null) throw usage("--min-devices searches the device count: leave --devices out");
          const maxDevices = positiveInt("max-devices", flags.maxDevices);
          const needed: { x: number; policy: string; devices: number | null; tried: MinDevicesResult["tried"] }[] = [];
          const bounds: { x: number; devices: number }[] = [];
          // The fluid bound does not depend on the SLOs; on a rate sweep it grows with the rate.
          const lbSlo = kind === "slo" ? lowerBoundFor(p, 1, lbWindow).devices : 0;
          for (const x of values) {
            const prep = kind === "slo" ? withSloScale(p, x) : p;
            const lbx = kind === "rate" ? lowerBoundFor(p, x, lbWindow).devices : lbSlo;
            bounds.push({ x, devices: lbx });
            const cells: string[] = [];
            for (const policy of policies) {
              const r = findMinDevices(prep, {
                policy, target, metric, seed, deterministic, control, ...deviceFlags, minDevices: 1, maxDevices, ...(kind === "rate" ? { rateScale: x } : {}),
              });
              needed.push({ x, policy, devices: r.devices, tried: r.tried });
              cells.push(`${policy} ${r.devices === null ? `> ${maxDevices}` : r.devices}`);
            }
            if (!json) out(`${kind} ${x}: devices for ${(target * 100).toFixed(1)}% ${metric.toUpperCase()}: ${cells.join("  ")}  (fluid lower bound ${lbx})`);
          }
          if (json) out(JSON.stringify({ workload: p.name, sweep: kind, target, metric, values, min_devices: needed, lower_bound: bounds }, null, 2));
          if (flags.report !== undefined) {
            writeFileSync(flags.report, renderSimReport({
              title: `prism sim: devices needed for ${(target * 100).toFixed(1)}% ${metric.toUpperCase()} attainment vs ${kind === "rate" ? "request-rate" : "SLO"} scale`,
              notes: [`trace ${flags.trace}, models ${flags.models}`, `device ${config.deviceType}`],
              devicesSweep: {
                xName: kind === "rate" ? "rate scale" : "SLO scale",
                series: policies.map((policy) => ({ policy, points: needed.filter((n) => n.policy === policy).map((n) => ({ x: n.x, devices: n.devices })) })),
                lowerBound: bounds,
              },
            }));
          }
          return;
        }
        if (devices === null) throw usage("--sweep needs --devices N (or --min-devices)");
        const runs: (SimSummary & { x: number })[] = [];
        const series: SweepSeries[] = [];
        for (const policy of policies) {
          const points: { x: number; ttft: number; tpot: number; both: number }[] = [];
          for (const x of values) {
            const prep = kind === "slo" ? withSloScale(p, x) : p;
            const s = runPolicy(prep, { policy, devices, seed, deterministic, control, ...deviceFlags, ...(kind === "rate" ? { rateScale: x } : {}) }).summary;
            runs.push({ x, ...s });
            points.push({ x, ttft: s.slo_attainment.ttft ?? 0, tpot: s.slo_attainment.tpot ?? 0, both: s.slo_attainment.both ?? 0 });
            if (!json) out(`${kind} ${x}: ${policy.padEnd(9)} TTFT ${pct(s.slo_attainment.ttft)}  TPOT ${pct(s.slo_attainment.tpot)}  both ${pct(s.slo_attainment.both)}  TTFT p99 ${ms(s.ttft_ms.p99)} ms`);
          }
          series.push({ policy, points });
        }
        if (json) out(JSON.stringify({ workload: p.name, sweep: kind, devices, values, runs }, null, 2));
        if (flags.report !== undefined) {
          writeFileSync(flags.report, renderSimReport({
            title: `prism sim: ${kind === "rate" ? "request-rate" : "SLO-scale"} sweep on ${devices} devices`,
            notes: [`trace ${flags.trace}, models ${flags.models}`, `device ${config.deviceType}`],
            ...(kind === "rate" ? { rateSweep: series } : { sloSweep: series }),
          }));
        }
        return;
      }

      const lb = lowerBoundFor(p, 1, lbWindow);
      if (flags.minDevices === true) {
        const results: MinDevicesResult[] = [];
        for (const policy of policies) {
          const r = findMinDevices(p, {
            policy, target, metric, seed, deterministic, control, ...deviceFlags, minDevices: 1, maxDevices: positiveInt("max-devices", flags.maxDevices),
          });
          results.push(r);
          if (!json) {
            out(`${policy.padEnd(9)} ${r.devices === null ? "target not reached" : `${r.devices} devices`}  (tried ${r.tried.map((t) => `${t.devices}:${pct(t.attainment)}`).join(" ")})`);
          }
        }
        if (!json) out(`fluid lower bound: ${lb.devices} devices (compute ${lb.computeDevices.toFixed(2)}, memory ${lb.memoryDevices.toFixed(2)}, peak of ${lb.memoryWindowS} s / ${lb.computeWindowS} s averages)`);
        else {
          out(JSON.stringify({
            workload: p.name, target, metric, lower_bound: lbJson(lb),
            min_devices: results.map((r) => ({ policy: r.policy, devices: r.devices, tried: r.tried })),
            runs: results.map((r) => r.summary).filter((s) => s !== null),
          }, null, 2));
        }
        if (flags.report !== undefined) {
          const timelines: Timeline[] = [];
          for (const r of results) {
            if (r.devices === null) continue;
            const t = runPolicy(p, { policy: r.policy, devices: r.devices, seed, control, ...deviceFlags, deterministic: true, timelineSampleMs: sampleMs }).timeline;
            if (t !== null) timelines.push(t);
          }
          writeFileSync(flags.report, renderSimReport({
            title: `prism sim: devices needed for ${(target * 100).toFixed(1)}% ${metric.toUpperCase()} attainment`,
            notes: [`trace ${flags.trace}, models ${flags.models}`, `device ${config.deviceType}`, `fluid lower bound ${lb.devices}`],
            devicesNeeded: results.map((r) => ({ policy: r.policy, devices: r.devices })),
            lowerBound: lb.devices,
            timelines,
          }));
        }
        return;
      }

      if (devices === null) throw usage("--devices N is required (or --min-devices)");
      const summaries: SimSummary[] = [];
      const timelines: Timeline[] = [];
      for (const policy of policies) {
        const r = runPolicy(p, { policy, devices, seed, deterministic, control, ...deviceFlags, ...(flags.report !== undefined ? { timelineSampleMs: sampleMs } : {}) });
        summaries.push(r.summary);
        if (r.timeline !== null) timelines.push(r.timeline);
        if (!json) out(summaryText(r.summary, policies.length === 1));
      }
      if (!json) out(`fluid lower bound: ${lb.devices} devices (compute ${lb.computeDevices.toFixed(2)}, memory ${lb.memoryDevices.toFixed(2)}, peak of ${lb.memoryWindowS} s / ${lb.computeWindowS} s averages)`);
      else if (summaries.length === 1) out(JSON.stringify({ ...summaries[0]!, lower_bound: lbJson(lb) }, null, 2));
      else out(JSON.stringify({ workload: p.name, devices, lower_bound: lbJson(lb), runs: summaries }, null, 2));
      if (flags.report !== undefined) {
        writeFileSync(flags.report, renderSimReport({
          title: `prism sim on ${devices} devices`,
          notes: [`trace ${flags.trace}, models ${flags.models}`, `device ${config.deviceType}`, `fluid lower bound ${lb.devices}`],
          table: {
            header: ["policy", "TTFT att.", "TPOT att.", "both", "TTFT p99 ms", "activations", "migrations"],
            rows: summaries.map((s) => [s.policy, pct(s.slo_attainment.ttft), pct(s.slo_attainment.tpot), pct(s.slo_attainment.both), ms(s.ttft_ms.p99), s.activations, s.migrations]),
          },
          timelines,
        }));
      }
    });
}
