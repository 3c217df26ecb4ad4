/** Shared generator plumbing: the result type, model naming, popularity laws and option checks. */
import { PrismError } from "../../core/errors.ts";
import type { Trace } from "../trace-format.ts";
import { zipfShares } from "../samplers.ts";
import { POPULARITY_SOURCES, readPopularity, type PopularitySource } from "../sources/popularity.ts";
import type { LengthLimits } from "./lengths.ts";

export interface GeneratedTrace {
  readonly trace: Trace;
  /** Fully resolved parameters (defaults filled): recorded as comments in the written CSV. */
  readonly params: Readonly<Record<string, unknown>>;
  /** Model ↔ source mapping, clipping counts, anything a reader of the trace should know. */
  readonly notes: readonly string[];
}

/** Options every generator takes. */
export interface CommonOptions {
  readonly seed: number;
  /** Name prefix: models are `${prefix}0` (most popular) ... `${prefix}{N-1}`. Default "m". */
  readonly modelPrefix?: string;
  readonly limits?: LengthLimits;
  /** Override of ../shared/traces. */
  readonly tracesDir?: string;
}

export function modelNames(n: number, prefix = "m"): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

/** Per-model popularity: Zipf(α) over ranks, a measured table, or explicit weights. */
export type PopularitySpec =
  | { readonly kind: "zipf"; readonly alpha: number }
  | { readonly kind: "table"; readonly source: PopularitySource }
  | { readonly kind: "weights"; readonly weights: readonly number[] };

/** `zipf:1.2` | `lmsys125` | `lmsys-day55` | `arena` | `gentd26` | `weights:5,3,1`. */
export function parsePopularity(text: string): PopularitySpec {
  const s = text.trim();
  if ((POPULARITY_SOURCES as readonly string[]).includes(s)) return { kind: "table", source: s as PopularitySource };
  if (s.startsWith("zipf:")) {
    const alpha = Number(s.slice(5));
    if (!(alpha >= 0) || !Number.isFinite(alpha)) throw usage(`bad Zipf exponent in '${text}'`);
    return { kind: "zipf", alpha };
  }
  if (s.startsWith("weights:")) {
    const weights = s.slice(8).split(",").map(Number);
    if (weights.length === 0 || weights.some((w) => !(w >= 0)) || !weights.some((w) => w > 0)) throw usage(`bad weights in '${text}'`);
    return { kind: "weights", weights };
  }
  throw usage(`bad --popularity '${text}': expected zipf:ALPHA, weights:W1,W2,... or one of ${POPULARITY_SOURCES.join(", ")}`);
}

export function formatPopularity(p: PopularitySpec): string {
  switch (p.kind) {
    case "zipf":
      return `zipf:${p.alpha}`;
    case "table":
      return p.source;
    case "weights":
      return `weights:${p.weights.join(",")}`;
  }
}

/** Shares of N models, descending by rank, summing to 1. Tables and weights are truncated to N and renormalised. */
export function popularityShares(spec: PopularitySpec, n: number, tracesDir?: string): Float64Array {
  switch (spec.kind) {
    case "zipf":
      return zipfShares(n, spec.alpha);
    case "table": {
      const t = readPopularity(spec.source, tracesDir);
      if (t.shares.length < n) throw usage(`popularity table ${spec.source} has ${t.shares.length} models, fewer than --num-models ${n}`);
      return normalise(t.shares.subarray(0, n));
    }
    case "weights": {
      if (spec.weights.length !== n) throw usage(`--popularity weights has ${spec.weights.length} entries for ${n} models`);
      return normalise(Float64Array.from(spec.weights));
    }
  }
}

function normalise(w: ArrayLike<number>): Float64Array {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i]!;
  return Float64Array.from(w, (x) => x / s);
}

export function usage(message: string, details: Record<string, unknown> = {}): PrismError {
  return new PrismError("PRISM_CLI_USAGE", message, details);
}

export function requirePositive(name: string, v: number): void {
  if (!(v > 0) || !Number.isFinite(v)) throw usage(`${name} must be a positive number, got ${v}`, { [name]: v });
}

export function requireCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw usage(`${name} must be a positive integer, got ${v}`, { [name]: v });
}
