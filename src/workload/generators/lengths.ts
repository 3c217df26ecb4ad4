/**
 * Token-length sources for generators and the length limits (scale, clamps) that make a trace replayable on a
 * small server. Every generator draws (input, output) through a LengthSampler, then through `limitLengths`.
 */
import type { Rng } from "../../core/rng.ts";
import { PrismError } from "../../core/errors.ts";
import { readArenaTrace } from "../sources/arena.ts";
import { LENGTH_FILES, readAzureTrace, readLengthPairs, readMooncakeTrace, type LengthPairs } from "../sources/single-service.ts";

/** Reused output slot: samplers write here instead of allocating a pair per request. */
export interface LengthPair {
  input: number;
  output: number;
}

export interface LengthSampler {
  readonly label: string;
  sample(rng: Rng, out: LengthPair): void;
}

export const LENGTH_DATASETS = [
  "sharegpt",
  "arxiv",
  "bwb",
  "azure-conv",
  "azure-code",
  "mooncake-conversation",
  "mooncake-synthetic",
  "arena",
] as const;
export type LengthDataset = (typeof LENGTH_DATASETS)[number];

/** Where lengths come from. `source` = the generator's own data (arena/azure/mooncake rows, ServeGen PMFs). */
export type LengthSpec =
  | { readonly kind: "source" }
  | { readonly kind: "uniform"; readonly input: readonly [number, number]; readonly output: readonly [number, number] }
  | { readonly kind: "fixed"; readonly input: number; readonly output: number }
  | { readonly kind: "dataset"; readonly dataset: LengthDataset };

/**
 * Parse `--lengths`: `source` | `uniform:8-512` (both) | `uniform:8-512,16-256` (input,output; upper bound
 * exclusive) | `fixed:128,64` | a dataset name (sharegpt, arxiv, bwb, azure-conv, azure-code,
 * mooncake-conversation, mooncake-synthetic, arena).
 */
export function parseLengthSpec(text: string): LengthSpec {
  const s = text.trim();
  if (s === "source") return { kind: "source" };
  if ((LENGTH_DATASETS as readonly string[]).includes(s)) return { kind: "dataset", dataset: s as LengthDataset };
  const usage = (): PrismError =>
    new PrismError(
      "PRISM_CLI_USAGE",
      `bad --lengths '${text}': expected source, uniform:LO-HI[,LO-HI], fixed:IN,OUT or one of ${LENGTH_DATASETS.join(", ")}`,
      { lengths: text },
    );
  const int = (x: string | undefined): number => {
    const v = Number(x);
    if (!Number.isInteger(v) || v < 1) throw usage();
    return v;
  };
  if (s.startsWith("uniform:")) {
    const parts = s.slice(8).split(",");
    const range = (p: string | undefined): [number, number] => {
      const [lo, hi] = (p ?? "").split("-");
      const a = int(lo);
      const b = int(hi);
      if (b <= a) throw usage();
      return [a, b];
    };
    const input = range(parts[0]);
    const output = parts.length > 1 ? range(parts[1]) : input;
    return { kind: "uniform", input, output };
  }
  if (s.startsWith("fixed:")) {
    const [a, b] = s.slice(6).split(",");
    const input = int(a);
    return { kind: "fixed", input, output: b === undefined ? input : int(b) };
  }
  throw usage();
}

export function formatLengthSpec(spec: LengthSpec): string {
  switch (spec.kind) {
    case "source":
      return "source";
    case "uniform":
      return `uniform:${spec.input[0]}-${spec.input[1]},${spec.output[0]}-${spec.output[1]}`;
    case "fixed":
      return `fixed:${spec.input},${spec.output}`;
    case "dataset":
      return spec.dataset;
  }
}

export function loadLengthPairs(dataset: LengthDataset, tracesDir?: string): LengthPairs {
  switch (dataset) {
    case "sharegpt":
    case "arxiv":
    case "bwb":
      return readLengthPairs(dataset satisfies keyof typeof LENGTH_FILES, tracesDir);
    case "azure-conv":
      return readAzureTrace("conv", tracesDir);
    case "azure-code":
      return readAzureTrace("code", tracesDir);
    case "mooncake-conversation":
      return readMooncakeTrace("conversation", tracesDir);
    case "mooncake-synthetic":
      return readMooncakeTrace("synthetic", tracesDir);
    case "arena":
      return { name: "arena", ...readArenaTrace(tracesDir) };
  }
}

/** Bootstrap (input, output) pairs uniformly with replacement (keeps the joint distribution). */
export class PairSampler implements LengthSampler {
  readonly label: string;
  constructor(private readonly pairs: { readonly inputTokens: Int32Array; readonly outputTokens: Int32Array }, label: string) {
    if (pairs.inputTokens.length === 0) throw new PrismError("PRISM_TRACE_INVALID", `length source ${label} is empty`, { label });
    this.label = label;
  }
  sample(rng: Rng, out: LengthPair): void {
    const i = rng.int(this.pairs.inputTokens.length);
    out.input = this.pairs.inputTokens[i]!;
    out.output = this.pairs.outputTokens[i]!;
  }
}

export class UniformLengths implements LengthSampler {
  readonly label: string;
  constructor(
    private readonly input: readonly [number, number],
    private readonly output: readonly [number, number],
  ) {
    this.label = `uniform:${input[0]}-${input[1]},${output[0]}-${output[1]}`;
  }
  sample(rng: Rng, out: LengthPair): void {
    out.input = this.input[0] + rng.int(this.input[1] - this.input[0]);
    out.output = this.output[0] + rng.int(this.output[1] - this.output[0]);
  }
}

export class FixedLengths implements LengthSampler {
  readonly label: string;
  constructor(
    private readonly input: number,
    private readonly output: number,
  ) {
    this.label = `fixed:${input},${output}`;
  }
  sample(_rng: Rng, out: LengthPair): void {
    out.input = this.input;
    out.output = this.output;
  }
}

/** A sampler for a non-`source` spec. */
export function lengthSamplerFor(spec: Exclude<LengthSpec, { kind: "source" }>, tracesDir?: string): LengthSampler {
  switch (spec.kind) {
    case "uniform":
      return new UniformLengths(spec.input, spec.output);
    case "fixed":
      return new FixedLengths(spec.input, spec.output);
    case "dataset":
      return new PairSampler(loadLengthPairs(spec.dataset, tracesDir), spec.dataset);
  }
}

/** Scale and clamp lengths so a trace fits a (small) server. Every result is >= 1 token. */
export interface LengthLimits {
  readonly inputScale?: number;
  readonly outputScale?: number;
  readonly maxInput?: number;
  readonly maxOutput?: number;
  /** Cap on input + output (a model's context length); input is cut first, keeping >= 1 token. */
  readonly maxTotal?: number;
}

/** Counts what `limitLengths` changed, for the notes written with the trace. */
export class LengthLimiter {
  numClipped = 0;
  private readonly inScale: number;
  private readonly outScale: number;
  private readonly maxIn: number;
  private readonly maxOut: number;
  private readonly maxTotal: number;
  constructor(limits: LengthLimits = {}) {
    this.inScale = limits.inputScale ?? 1;
    this.outScale = limits.outputScale ?? 1;
    this.maxIn = limits.maxInput ?? Infinity;
    this.maxOut = limits.maxOutput ?? Infinity;
    this.maxTotal = limits.maxTotal ?? Infinity;
    for (const [k, v] of Object.entries({ inputScale: this.inScale, outputScale: this.outScale })) {
      if (!(v > 0)) throw new PrismError("PRISM_CLI_USAGE", `${k} must be > 0, got ${v}`, { [k]: v });
    }
    for (const [k, v] of Object.entries({ maxInput: this.maxIn, maxOutput: this.maxOut })) {
      if (!(v >= 1)) throw new PrismError("PRISM_CLI_USAGE", `${k} must be >= 1, got ${v}`, { [k]: v });
    }
    if (!(this.maxTotal >= 2)) throw new PrismError("PRISM_CLI_USAGE", `maxTotal must be >= 2, got ${this.maxTotal}`, { maxTotal: this.maxTotal });
  }
  apply(p: LengthPair): void {
    let i = Math.max(1, Math.round(p.input * this.inScale));
    let o = Math.max(1, Math.round(p.output * this.outScale));
    let clipped = false;
    if (i > this.maxIn) {
      i = this.maxIn;
      clipped = true;
    }
    if (o > this.maxOut) {
      o = this.maxOut;
      clipped = true;
    }
    if (i + o > this.maxTotal) {
      i = Math.max(1, Math.min(i, this.maxTotal - o));
      o = Math.min(o, this.maxTotal - i);
      clipped = true;
    }
    if (clipped) this.numClipped++;
    p.input = i;
    p.output = o;
  }
}
