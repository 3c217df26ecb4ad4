/**
 * Named model shapes for random-weight models (tests, benchmarks, `prism model gen`). The stories* shapes are the
 * llama2.c TinyStories models (karpathy/tinyllamas); their context lengths are the ones they were trained with.
 */
import { PrismError } from "../../core/errors.ts";

export interface ModelShape {
  readonly name: string;
  readonly dim: number;
  readonly hiddenDim: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly vocabSize: number;
  /** Default context length written to the GGUF (overridable at generation). */
  readonly contextLength: number;
}

/** Smallest vocabulary the synthetic tokenizer needs: <unk>, <s>, </s> and the 256 byte tokens. */
export const MIN_VOCAB_SIZE = 259;

export const SHAPES: Readonly<Record<string, ModelShape>> = {
  /** ~70K params; for fast unit tests (every row length a multiple of 32, so Q8_0 applies everywhere). */
  tiny: { name: "tiny", dim: 32, hiddenDim: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 512, contextLength: 128 },
  stories260K: { name: "stories260K", dim: 64, hiddenDim: 172, numLayers: 5, numHeads: 8, numKvHeads: 4, vocabSize: 512, contextLength: 512 },
  stories15M: { name: "stories15M", dim: 288, hiddenDim: 768, numLayers: 6, numHeads: 6, numKvHeads: 6, vocabSize: 32000, contextLength: 256 },
  stories42M: { name: "stories42M", dim: 512, hiddenDim: 1376, numLayers: 8, numHeads: 8, numKvHeads: 8, vocabSize: 32000, contextLength: 1024 },
  stories110M: { name: "stories110M", dim: 768, hiddenDim: 2048, numLayers: 12, numHeads: 12, numKvHeads: 12, vocabSize: 32000, contextLength: 1024 },
};

const CUSTOM_CONTEXT_LENGTH = 512;

function invalid(spec: string, why: string): PrismError {
  return new PrismError("PRISM_MODEL_SHAPE_INVALID", `invalid model shape '${spec}': ${why}`, { shape: spec });
}

/** Throws PRISM_MODEL_SHAPE_INVALID when the numbers cannot form a Llama model we can run and tokenize. */
export function validateShape(s: ModelShape, spec = s.name): ModelShape {
  for (const [k, v] of Object.entries(s)) {
    if (k !== "name" && (!Number.isSafeInteger(v) || (v as number) <= 0)) throw invalid(spec, `${k} = ${v} must be a positive integer`);
  }
  if (s.dim % s.numHeads !== 0) throw invalid(spec, `dim ${s.dim} is not a multiple of heads ${s.numHeads}`);
  if ((s.dim / s.numHeads) % 2 !== 0) throw invalid(spec, `head width ${s.dim / s.numHeads} must be even (RoPE rotates pairs)`);
  if (s.numHeads % s.numKvHeads !== 0) throw invalid(spec, `heads ${s.numHeads} is not a multiple of kv_heads ${s.numKvHeads}`);
  if (s.vocabSize < MIN_VOCAB_SIZE) throw invalid(spec, `vocab ${s.vocabSize} is below ${MIN_VOCAB_SIZE} (3 special + 256 byte tokens)`);
  return s;
}

/**
 * A shape by name (`tiny`, `stories260K`, `stories15M`, `stories42M`, `stories110M`; case-insensitive) or as
 * "dim,layers,heads,kv_heads,hidden,vocab" (context length 512 unless `contextLength` is given).
 */
export function parseShape(spec: string, contextLength?: number): ModelShape {
  const trimmed = spec.trim();
  const named = Object.values(SHAPES).find((s) => s.name.toLowerCase() === trimmed.toLowerCase());
  let shape: ModelShape;
  if (named !== undefined) {
    shape = named;
  } else {
    const parts = trimmed.split(",").map((p) => p.trim());
    if (parts.length !== 6) {
      throw invalid(spec, `expected a name (${Object.keys(SHAPES).join(", ")}) or six numbers "dim,layers,heads,kv_heads,hidden,vocab"`);
    }
    const n = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
    const bad = n.findIndex((x) => !Number.isSafeInteger(x) || x <= 0);
    if (bad >= 0) throw invalid(spec, `'${parts[bad]}' (${["dim", "layers", "heads", "kv_heads", "hidden", "vocab"][bad]}) is not a positive integer`);
    const [dim, numLayers, numHeads, numKvHeads, hiddenDim, vocabSize] = n as [number, number, number, number, number, number];
    shape = { name: `custom-${dim}x${numLayers}`, dim, hiddenDim, numLayers, numHeads, numKvHeads, vocabSize, contextLength: CUSTOM_CONTEXT_LENGTH };
  }
  if (contextLength !== undefined) shape = { ...shape, contextLength };
  return validateShape(shape, spec);
}
