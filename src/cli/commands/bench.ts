/**
 * `prism bench --url URL --trace FILE`: replay a trace open-loop against an OpenAI-compatible server (Prism's
 * gateway, vLLM, ...) and report SLO attainment, latency percentiles and goodput, overall and per model.
 */
import type { Command } from "commander";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { PrismError } from "../../core/errors.ts";
import { type SloReport, type SloTarget, evaluateSlo, parseSloTarget, tpotMs } from "../../metrics/slo.ts";
import { summarize } from "../../metrics/stats.ts";
import { renderReport } from "../../metrics/report/render.ts";
import { type BenchOptions, type BenchProgress, type BenchResult, type PromptMode, runBench } from "../../workload/replay/run-bench.ts";
import { readTrace } from "../../workload/trace-format.ts";

export interface BenchCommandOptions extends BenchOptions {
  /** Global SLO for every model (overrides the server's per-model `prism` SLOs). */
  readonly slo?: SloTarget;
}

export interface BenchCommandResult {
  readonly result: BenchResult;
  /** SLO used for each trace model (by trace model index). */
  readonly slos: readonly SloTarget[];
  readonly report: SloReport;
}

/** Per trace model: --slo, else the served model's SLO from /v1/models, else none (Infinity). */
export function resolveBenchSlos(r: BenchResult, slo?: SloTarget): SloTarget[] {
  return r.servedModels.map((id) => slo ?? r.serverSlos[id] ?? { ttftMs: Infinity, tpotMs: Infinity });
}

/** runBench + evaluateSlo: what `prism bench` does, without the printing. */
export async function runBenchCommand(o: BenchCommandOptions): Promise<BenchCommandResult> {
  const result = await runBench(o);
  const slos = resolveBenchSlos(result, o.slo);
  const report = evaluateSlo(result.outcomes, slos, { durationS: result.wallS });
  return { result, slos, report };
}

const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : "-");
const p = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : "-");

export function formatBenchText(c: BenchCommandResult): string {
  const { result: r, report } = c;
  const late = summarize(r.sendLateMs);
  const lines: string[] = [];
  lines.push(
    `${r.url}: ${report.overall.count} requests (${r.numSent} sent) in ${f(r.wallS, 1)} s; send lateness p50 ${f(late.p50, 1)} ms, p99 ${f(late.p99, 1)} ms, max ${f(late.max, 1)} ms`,
  );
  const header = ["model", "served", "reqs", "fail", "slo ttft/tpot", "ttft ok", "tpot ok", "both ok", "goodput/s", "ttft p50", "p90", "p99", "tpot p50", "p90", "p99"];
  const rows: string[][] = [header];
  const row = (name: string, served: string, g: SloReport["overall"]): string[] => [
    name,
    served,
    String(g.count),
    String(g.failed),
    g.slo ? `${f(g.slo.ttftMs, 0)}/${f(g.slo.tpotMs, 0)}` : "per model",
    p(g.ttftAttainment),
    p(g.tpotAttainment),
    p(g.bothAttainment),
    f(g.goodputRps, 2),
    f(g.ttftMs.p50, 0),
    f(g.ttftMs.p90, 0),
    f(g.ttftMs.p99, 0),
    f(g.tpotMs.p50, 1),
    f(g.tpotMs.p90, 1),
    f(g.tpotMs.p99, 1),
  ];
  rows.push(row("overall", "", report.overall));
  report.perModel.forEach((g, i) => rows.push(row(g.name, r.servedModels[i] ?? "", g)));
  const widths = header.map((_, k) => Math.max(...rows.map((x) => x[k]!.length)));
  for (const x of rows) lines.push(x.map((cell, k) => (k < 2 ? cell.padEnd(widths[k]!) : cell.padStart(widths[k]!))).join("  "));
  const byCode = errorCounts(r);
  if (byCode.length > 0) lines.push(`errors: ${byCode.map(([k, n]) => `${k} ×${n}`).join(", ")}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join("\n");
}

function errorCounts(r: BenchResult): Array<[string, number]> {
  const m = new Map<string, number>();
  for (const e of r.errors) {
    const k = `${e.status ?? "-"}/${e.code ?? "-"}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m.entries()].sort((a, b) => b[1] - a[1]);
}

export function benchJson(c: BenchCommandResult): unknown {
  const r = c.result;
  return {
    url: r.url,
    startedAt: r.startedAtIso,
    wallS: r.wallS,
    numSent: r.numSent,
    servedModels: Object.fromEntries(r.outcomes.modelNames.map((m, i) => [m, r.servedModels[i]])),
    slos: Object.fromEntries(r.outcomes.modelNames.map((m, i) => [m, c.slos[i]])),
    sendLateMs: summarize(r.sendLateMs),
    calibration: r.calibration,
    promptMode: r.promptMode,
    report: c.report,
    errorCounts: Object.fromEntries(errorCounts(r)),
    errors: r.errors.slice(0, 100),
    warnings: r.warnings,
  };
}

/** One CSV row per request (for offline analysis). */
export function requestsCsv(r: BenchResult): string {
  const o = r.outcomes;
  const errByIndex = new Map(r.errors.map((e) => [e.index, e]));
  const out = ["index,model,served,arrival_s,send_s,late_ms,ttft_ms,tpot_ms,e2e_ms,input_tokens,prompt_tokens,output_tokens_requested,output_tokens,ok,status,code\n"];
  for (let i = 0; i < o.count; i++) {
    const e = errByIndex.get(i);
    const m = o.modelIndex[i]!;
    const tp = o.ok[i] === 1 ? tpotMs(o.e2eMs[i]!, o.ttftMs[i]!, o.outputTokens[i]!) : NaN;
    const n = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : "");
    out.push(
      `${i},${o.modelNames[m]},${r.servedModels[m]},${n(o.arrivalS[i]!, 6)},${n(r.sendS[i]!, 6)},${n(r.sendLateMs[i]!, 3)},${n(o.ttftMs[i]!, 3)},${n(tp, 3)},${n(o.e2eMs[i]!, 3)},` +
        `${r.requestedInputTokens[i]},${r.promptTokens[i]! >= 0 ? r.promptTokens[i] : ""},${r.requestedOutputTokens[i]},${o.outputTokens[i]},${o.ok[i]},${e?.status ?? ""},${(e?.code ?? "").replace(/,/g, ";")}\n`,
    );
  }
  return out.join("");
}

interface Bar {
  start(total: number, value: number, payload?: object): void;
  update(value: number, payload?: object): void;
  stop(): void;
}

function progressBar(): { onProgress: (p: BenchProgress) => void; stop: () => void } {
  const require = createRequire(import.meta.url);
  const lib = require("cli-progress") as { SingleBar: new (opts: object, preset: object) => Bar; Presets: { shades_classic: object } };
  const bar = new lib.SingleBar(
    {
      stream: process.stderr,
      format: "bench |{bar}| {value}/{total} sent | done {completed} | failed {failed} | in flight {inFlight} | {elapsedS}s",
      hideCursor: true,
      clearOnComplete: true,
    },
    lib.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress: (pr) => {
      const payload = { completed: pr.completed, failed: pr.failed, inFlight: pr.inFlight, elapsedS: pr.elapsedS.toFixed(1) };
      if (!started) {
        bar.start(pr.total, pr.sent, payload);
        started = true;
      } else bar.update(pr.sent, payload);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

interface BenchFlags {
  url?: string;
  trace?: string;
  models?: string;
  slo?: string;
  apiKey?: string;
  json?: boolean;
  report?: string;
  requestsOut?: string;
  limitS?: string;
  sampleStateMs?: string;
  prompt: string;
  calibrate: boolean;
  timeoutS?: string;
  name?: string;
}

function usage(msg: string): PrismError {
  return new PrismError("PRISM_CLI_USAGE", msg);
}

function positive(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!(x > 0) || !Number.isFinite(x)) throw usage(`--${name} must be a positive number, got '${v}'`);
  return x;
}

/** Where the command prints (tests pass their own; the node test runner owns process.stdout). */
export interface CommandIo {
  readonly out: (text: string) => void;
}
const STDOUT: CommandIo = { out: (t) => void process.stdout.write(t) };

export function register(program: Command, io: CommandIo = STDOUT): void {
  program
    .command("bench")
    .description("replay a trace open-loop against an OpenAI-compatible server; report SLO attainment, latency percentiles and goodput")
    .option("--url <url>", "server base URL, e.g. http://127.0.0.1:8080")
    .option("--trace <file>", "trace CSV (arrival_s,model,input_tokens,output_tokens)")
    .option("--models <map>", "trace model → served model: m0=a,m1=b[,*=c] | round-robin (default: same names)")
    .option("--slo <spec>", "ttft_ms=N,tpot_ms=N for every model (default: the server's per-model prism SLOs)")
    .option("--api-key <key>", "bearer token")
    .option("--json", "print JSON instead of a table (no progress bar)")
    .option("--report <file>", "write a self-contained HTML report")
    .option("--requests-out <file>", "write one CSV row per request")
    .option("--limit-s <s>", "send only requests arriving in the first S seconds of the trace")
    .option("--sample-state-ms <n>", "poll /admin/state every N ms and plot KV pages per model")
    .option("--prompt <mode>", "words (calibrated against usage) | token-ids (exact, if the server accepts token prompts)", "words")
    .option("--no-calibrate", "skip the words→tokens calibration requests")
    .option("--timeout-s <s>", "abort a request after S seconds (default 600)")
    .option("--name <name>", "run label in the report (default: bench)")
    .action(async (fl: BenchFlags) => {
      if (!fl.url) throw usage("--url is required");
      if (!fl.trace) throw usage("--trace is required");
      if (fl.prompt !== "words" && fl.prompt !== "token-ids") throw usage(`--prompt must be words or token-ids, got '${fl.prompt}'`);
      const slo = fl.slo !== undefined ? parseSloTarget(fl.slo) : undefined;
      const limitS = positive("limit-s", fl.limitS);
      const sampleStateMs = positive("sample-state-ms", fl.sampleStateMs);
      const timeoutS = positive("timeout-s", fl.timeoutS);
      const trace = readTrace(fl.trace);
      const showBar = !fl.json && process.stderr.isTTY === true;
      const bar = showBar ? progressBar() : null;
      const abort = new AbortController();
      const onSigint = (): void => abort.abort();
      process.once("SIGINT", onSigint);
      let c: BenchCommandResult;
      try {
        c = await runBenchCommand({
          url: fl.url,
          trace,
          promptMode: fl.prompt as PromptMode,
          calibrate: fl.calibrate,
          signal: abort.signal,
          ...(fl.models !== undefined ? { models: fl.models } : {}),
          ...(fl.apiKey !== undefined ? { apiKey: fl.apiKey } : {}),
          ...(limitS !== undefined ? { limitS } : {}),
          ...(sampleStateMs !== undefined ? { sampleStateMs } : {}),
          ...(timeoutS !== undefined ? { requestTimeoutMs: timeoutS * 1000 } : {}),
          ...(slo !== undefined ? { slo } : {}),
          ...(bar ? { onProgress: bar.onProgress } : {}),
        });
      } finally {
        bar?.stop();
        process.removeListener("SIGINT", onSigint);
      }
      if (fl.report !== undefined) {
        const late = summarize(c.result.sendLateMs);
        writeFileSync(
          fl.report,
          renderReport({
            title: `prism bench: ${fl.trace}`,
            description: `${c.result.url}, started ${c.result.startedAtIso}, ${c.result.numSent} requests sent, models ${c.result.servedModels.join(" ")}`,
            runs: [
              {
                name: fl.name ?? "bench",
                outcomes: c.result.outcomes,
                slo: c.slos,
                report: c.report,
                kvSamples: c.result.stateSamples,
                details: {
                  "send lateness p50/p99/max ms": `${f(late.p50)} / ${f(late.p99)} / ${f(late.max)}`,
                  "prompt mode": c.result.promptMode,
                  ...(c.result.warnings.length > 0 ? { warnings: c.result.warnings.join("; ") } : {}),
                },
              },
            ],
          }),
        );
      }
      if (fl.requestsOut !== undefined) writeFileSync(fl.requestsOut, requestsCsv(c.result));
      io.out(fl.json ? `${JSON.stringify(benchJson(c), (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2)}\n` : `${formatBenchText(c)}\n`);
    });
}
