/** One entry point for every generator: `generateTrace(spec)` with a discriminated `spec.kind`. */
import { assertNever } from "../../core/result.ts";
import { type ArenaOptions, generateArena } from "./arena.ts";
import type { GeneratedTrace } from "./common.ts";
import { type ServegenOptions, generateServegen } from "./servegen.ts";
import { type SplitOptions, generateSplit } from "./split.ts";
import { type SyntheticOptions, generateSynthetic } from "./synthetic.ts";

export type GenerateSpec =
  | ({ readonly kind: "synthetic" } & SyntheticOptions)
  | ({ readonly kind: "servegen" } & ServegenOptions)
  | ({ readonly kind: "arena" } & ArenaOptions)
  | ({ readonly kind: "split" } & SplitOptions);

export function generateTrace(spec: GenerateSpec): GeneratedTrace {
  switch (spec.kind) {
    case "synthetic":
      return generateSynthetic(spec);
    case "servegen":
      return generateServegen(spec);
    case "arena":
      return generateArena(spec);
    case "split":
      return generateSplit(spec);
    default:
      return assertNever(spec, "generator kind");
  }
}

/** Comment lines recording how a trace was made (written above the CSV header). */
export function provenanceComments(g: GeneratedTrace): string[] {
  return [`prism trace gen ${JSON.stringify(g.params)}`, ...g.notes];
}

export type { GeneratedTrace } from "./common.ts";
export { parsePopularity, type PopularitySpec } from "./common.ts";
export { parseLengthSpec, type LengthSpec, type LengthLimits } from "./lengths.ts";
export { SPLIT_SOURCES, type SplitSource } from "./split.ts";
