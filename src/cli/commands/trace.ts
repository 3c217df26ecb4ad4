/**
 * `prism trace gen SOURCE` writes a reproducible request trace (arrival_s,model,input_tokens,output_tokens);
 * `prism trace describe FILE` prints per-model rate, burstiness, idle fraction and token statistics.
 *
 * Sources: synthetic (Zipf/Gamma, W2), servegen (clients as models, W1), arena (27-model Arena, W3),
 * azure-conv | azure-code | mooncake-conversation | mooncake-synthetic (single service split into models).
 */
import type { Command } from "commander";
import { writeFileSync } from "node:fs";
import { PrismError } from "../../core/errors.ts";
import { describeTrace, formatDescription } from "../../workload/describe.ts";
import { type GenerateSpec, generateTrace, provenanceComments } from "../../workload/generators/index.ts";
import { type LengthLimits, type LengthSpec, parseLengthSpec } from "../../workload/generators/lengths.ts";
import { parsePopularity } from "../../workload/generators/common.ts";
import { SPLIT_SOURCES, type SplitSource } from "../../workload/generators/split.ts";
import { isServegenPool } from "../../workload/sources/servegen.ts";
import { formatTrace, readTrace } from "../../workload/trace-format.ts";

const SOURCES = ["synthetic", "servegen", "arena", ...SPLIT_SOURCES] as const;

function usage(msg: string): PrismError {
  return new PrismError("PRISM_CLI_USAGE", msg);
}

function num(name: string, v: string | undefined, check: (x: number) => boolean = (x) => x > 0, what = "a positive number"): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x) || !check(x)) throw usage(`--${name} must be ${what}, got '${v}'`);
  return x;
}
const int = (name: string, v: string | undefined, min = 1): number | undefined =>
  num(name, v, (x) => Number.isInteger(x) && x >= min, `an integer >= ${min}`);
const nonNeg = (name: string, v: string | undefined): number | undefined => num(name, v, (x) => x >= 0, "a number >= 0");

interface GenFlags {
  out?: string;
  seed: string;
  duration?: string;
  rate?: string;
  numModels?: string;
  popularity?: string;
  cv?: string;
  lengths?: string;
  onOff?: string;
  envelope?: string;
  pool?: string;
  selectAlpha?: string;
  compression?: string;
  start?: string;
  rateScale?: string;
  donors?: string;
  adapters?: string;
  timeScale?: string;
  replicate?: string;
  mode?: string;
  inputScale?: string;
  outputScale?: string;
  maxInput?: string;
  maxOutput?: string;
  maxTotal?: string;
  modelPrefix?: string;
  tracesDir?: string;
  describe?: boolean;
}

/** Build the generator spec from CLI flags (exported for tests). */
export function specFromFlags(source: string, f: GenFlags): GenerateSpec {
  if (!(SOURCES as readonly string[]).includes(source)) throw usage(`unknown trace source '${source}'; expected one of ${SOURCES.join(", ")}`);
  const limits: LengthLimits = {
    ...(f.inputScale !== undefined ? { inputScale: num("input-scale", f.inputScale)! } : {}),
    ...(f.outputScale !== undefined ? { outputScale: num("output-scale", f.outputScale)! } : {}),
    ...(f.maxInput !== undefined ? { maxInput: int("max-input", f.maxInput)! } : {}),
    ...(f.maxOutput !== undefined ? { maxOutput: int("max-output", f.maxOutput)! } : {}),
    ...(f.maxTotal !== undefined ? { maxTotal: int("max-total", f.maxTotal, 2)! } : {}),
  };
  const common = {
    seed: int("seed", f.seed, 0)!,
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
    ...(f.modelPrefix !== undefined ? { modelPrefix: f.modelPrefix } : {}),
    ...(f.tracesDir !== undefined ? { tracesDir: f.tracesDir } : {}),
  };
  const lengths: LengthSpec | undefined = f.lengths !== undefined ? parseLengthSpec(f.lengths) : undefined;
  const duration = num("duration", f.duration);
  const rate = num("rate", f.rate);
  const numModels = int("num-models", f.numModels);
  const need = <T>(name: string, v: T | undefined): T => {
    if (v === undefined) throw usage(`${source}: --${name} is required`);
    return v;
  };
  const opt = <K extends string, T>(k: K, v: T | undefined): { [P in K]?: T } => (v === undefined ? {} : ({ [k]: v } as { [P in K]: T }));
  switch (source) {
    case "synthetic": {
      if (lengths?.kind === "source") throw usage("synthetic: --lengths source is not available; use a dataset, uniform:... or fixed:...");
      let onOff;
      if (f.onOff !== undefined) {
        const [fr, per, off] = f.onOff.split(",").map(Number);
        if (![fr, per, off].every((x) => x !== undefined && Number.isFinite(x))) throw usage(`--on-off expects FRACTION,PERIOD_S,OFF_FRACTION, got '${f.onOff}'`);
        onOff = { fraction: fr!, periodS: per!, offFraction: off! };
      }
      let envelope;
      if (f.envelope !== undefined) {
        if (!isServegenPool(f.envelope)) throw usage(`--envelope must be a ServeGen pool (m-large, m-mid, m-small, deepseek-r1, mm-image), got '${f.envelope}'`);
        envelope = { pool: f.envelope, compression: num("compression", f.compression) ?? 60, startS: nonNeg("start", f.start) ?? 0 };
      }
      return {
        kind: "synthetic",
        ...common,
        numModels: numModels ?? 8,
        durationS: duration ?? 600,
        totalRateRps: need("rate", rate),
        popularity: parsePopularity(f.popularity ?? "zipf:1.2"),
        cv: num("cv", f.cv) ?? 1,
        lengths: lengths ?? { kind: "dataset", dataset: "azure-conv" },
        ...(onOff ? { onOff } : {}),
        ...(envelope ? { envelope } : {}),
      };
    }
    case "servegen": {
      const pool = f.pool ?? "m-large";
      if (!isServegenPool(pool)) throw usage(`--pool must be one of m-large, m-mid, m-small, deepseek-r1, mm-image; got '${pool}'`);
      return {
        kind: "servegen",
        ...common,
        pool,
        numModels: numModels ?? 8,
        durationS: duration ?? 600,
        ...opt("selectAlpha", nonNeg("select-alpha", f.selectAlpha)),
        ...opt("startS", nonNeg("start", f.start)),
        ...opt("compression", num("compression", f.compression)),
        ...opt("totalRateRps", rate),
        ...opt("rateScale", num("rate-scale", f.rateScale)),
        ...opt("lengths", lengths),
        ...opt("donors", int("donors", f.donors)),
      };
    }
    case "arena": {
      let adapterIds: number[] | undefined;
      if (f.adapters !== undefined) {
        adapterIds = f.adapters.split(",").map((s) => int("adapters", s.trim(), 0)!);
      }
      return {
        kind: "arena",
        ...common,
        ...opt("adapterIds", adapterIds),
        ...opt("numModels", numModels),
        ...opt("timeScale", num("time-scale", f.timeScale)),
        ...opt("totalRateRps", rate),
        ...opt("replicate", int("replicate", f.replicate)),
        ...opt("durationS", duration),
        ...opt("lengths", lengths),
      };
    }
    default: {
      const mode = f.mode ?? "mix";
      if (mode !== "mix" && mode !== "slices") throw usage(`--mode must be mix or slices, got '${mode}'`);
      return {
        kind: "split",
        ...common,
        source: source as SplitSource,
        numModels: numModels ?? 8,
        popularity: parsePopularity(f.popularity ?? "zipf:1.2"),
        mode,
        ...opt("timeScale", num("time-scale", f.timeScale)),
        ...opt("totalRateRps", rate),
        ...opt("durationS", duration),
        ...opt("lengths", lengths),
      };
    }
  }
}

/** Where the command prints (tests pass their own; the node test runner owns process.stdout). */
export interface CommandIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}
const STDIO: CommandIo = { out: (t) => void process.stdout.write(t), err: (t) => void process.stderr.write(t) };

export function register(program: Command, io: CommandIo = STDIO): void {
  const trace = program.command("trace").description("generate and inspect request traces (arrival_s,model,input_tokens,output_tokens)");

  trace
    .command("gen")
    .description(`generate a reproducible multi-model trace; SOURCE: ${SOURCES.join(" | ")}`)
    .argument("<source>", SOURCES.join(" | "))
    .option("-o, --out <file>", "output CSV (default: stdout)")
    .option("--seed <n>", "random seed (same seed and options, same trace)", "0")
    .option("--duration <s>", "trace length in seconds (synthetic/servegen default 600; arena/split: one pass of the source)")
    .option("--rate <rps>", "total request rate (synthetic: required; servegen: scales clients; arena: sets the time scale; split: thins)")
    .option("--num-models <n>", "number of models (default 8; arena: 27)")
    .option("--popularity <spec>", "synthetic/split: zipf:ALPHA | lmsys125 | lmsys-day55 | arena | gentd26 | weights:W1,W2,.. (default zipf:1.2)")
    .option("--cv <x>", "synthetic: CV of inter-arrival times (1 = Poisson; default 1)")
    .option("--lengths <spec>", "source | uniform:LO-HI[,LO-HI] | fixed:IN,OUT | sharegpt | arxiv | bwb | azure-conv | azure-code | mooncake-conversation | mooncake-synthetic | arena")
    .option("--on-off <f,period,off>", "synthetic: last fraction f of models off for `off` of every `period` seconds (Prism/S-LoRA)")
    .option("--envelope <pool>", "synthetic: modulate rates by a ServeGen pool's 10-min total rate (with --compression, --start)")
    .option("--pool <pool>", "servegen: m-large | m-mid | m-small | deepseek-r1 | mm-image (default m-large)")
    .option("--select-alpha <a>", "servegen: choose clients matching Zipf(a) instead of the top N")
    .option("--compression <k>", "servegen/envelope: source seconds per trace second (servegen default 1, envelope 60)")
    .option("--start <s>", "servegen/envelope: source time to start from (default 0)")
    .option("--rate-scale <s>", "servegen: multiply client rates by s (instead of --rate)")
    .option("--donors <n>", "servegen: clients lending length PMFs to clients without (default 8)")
    .option("--adapters <ids>", "arena: adapter ids to keep, in model order (e.g. 2,14,3,10,5,19,23,24)")
    .option("--time-scale <x>", "arena/split: t' = t * x (x < 1 compresses)")
    .option("--replicate <k>", "arena: copies of each request (default 1)")
    .option("--mode <mode>", "split: mix (multinomial split) | slices (per-model offset slices, thinned) (default mix)")
    .option("--input-scale <x>", "multiply input lengths")
    .option("--output-scale <x>", "multiply output lengths")
    .option("--max-input <n>", "clamp input tokens")
    .option("--max-output <n>", "clamp output tokens")
    .option("--max-total <n>", "clamp input + output (cuts input first)")
    .option("--model-prefix <p>", "model names are <p>0, <p>1, ... by popularity (default m)")
    .option("--traces-dir <dir>", "trace data directory (default ../shared/traces beside the repository)")
    .option("--describe", "print a description of the generated trace to stderr")
    .action((source: string, f: GenFlags) => {
      const g = generateTrace(specFromFlags(source, f));
      const text = formatTrace(g.trace, provenanceComments(g));
      if (f.out !== undefined) writeFileSync(f.out, text);
      else io.out(text);
      if (f.describe) io.err(`${formatDescription(describeTrace(g.trace))}\n`);
      else if (f.out !== undefined) io.err(`wrote ${g.trace.numRequests} requests, ${g.trace.modelNames.length} models to ${f.out}\n`);
    });

  trace
    .command("describe")
    .description("per-model rate, burstiness (IAT CV, peak/mean per bin), idle fraction and token statistics")
    .argument("<file>", "trace CSV")
    .option("--bin <s>", "bin for peak/mean and idle fraction (default 60 s, at least 20 bins)")
    .option("--duration <s>", "duration rates are computed over (default: last arrival)")
    .option("--max-models <n>", "rows to print", "50")
    .option("--json", "print JSON")
    .action((file: string, f: { bin?: string; duration?: string; maxModels: string; json?: boolean }) => {
      const t = readTrace(file);
      const bin = num("bin", f.bin);
      const duration = num("duration", f.duration);
      const d = describeTrace(t, { ...(bin !== undefined ? { binS: bin } : {}), ...(duration !== undefined ? { durationS: duration } : {}) });
      io.out(f.json ? `${JSON.stringify(d, null, 2)}\n` : `${formatDescription(d, int("max-models", f.maxModels)!)}\n`);
    });
}
