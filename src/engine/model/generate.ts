/**
 * Random-weight Llama GGUFs of any shape (engine.md §2.4), for tests and benchmarks; and the llama2.c converter.
 * Deterministic: the same options give the same bytes. Generate them at test time; never commit them.
 *
 * Weights: matrices uniform in ±0.02·√3 (standard deviation 0.02) from SeededRng(seed), tensor by tensor in
 * expectedTensors() order; norm weights = 1. Residual activations then stay O(1) and logits nearly flat (greedy
 * output of a random model is degenerate, which is fine for throughput tests).
 * Encodings: "f32" everything F32; "f16" matrices F16, norms F32; "q8_0" matrices whose row length is a multiple of
 * 32 Q8_0, other matrices F16, norms F32 — what llama.cpp's loader and kernels expect.
 */
import { PrismError } from "../../core/errors.ts";
import { SeededRng } from "../../core/rng.ts";
import { llamaMetadata, LlamaFileType } from "../gguf/llama-meta.ts";
import { encodeF16, encodeF32, quantizeQ8_0 } from "../gguf/quant.ts";
import { GgmlType, Q8_0_BLOCK_VALUES } from "../gguf/types.ts";
import { writeGguf, type GgufWriterTensor } from "../gguf/writer.ts";
import { syntheticVocab } from "../tokenizer/synthetic-vocab.ts";
import { expectedTensors } from "./config.ts";
import { validateShape, type ModelShape } from "./shapes.ts";

export { convertLlama2c, parseLlama2cHeader, parseLlama2cTokenizer } from "../gguf/llama2c.ts";

export type WeightDtype = "f32" | "f16" | "q8_0";
export const WEIGHT_DTYPES: readonly WeightDtype[] = ["f32", "f16", "q8_0"];

export interface GenerateModelOptions {
  readonly shape: ModelShape;
  readonly dtype: WeightDtype;
  readonly seed: number;
  /** Overrides shape.contextLength. */
  readonly contextLength?: number;
  /** general.name; default `${shape.name}-random-${dtype}-s${seed}`. */
  readonly name?: string;
  /** Written as tokenizer.chat_template. */
  readonly chatTemplate?: string;
  /** Standard deviation of matrix weights; default 0.02. */
  readonly weightStd?: number;
}

const FILE_TYPE: Readonly<Record<WeightDtype, number>> = {
  f32: LlamaFileType.ALL_F32,
  f16: LlamaFileType.MOSTLY_F16,
  q8_0: LlamaFileType.MOSTLY_Q8_0,
};

/** The ggml type a generated tensor gets for the requested dtype. */
export function tensorTypeFor(dtype: WeightDtype, dims: readonly number[], isNorm: boolean): number {
  if (isNorm || dtype === "f32") return GgmlType.F32;
  if (dtype === "q8_0" && (dims[0] ?? 0) % Q8_0_BLOCK_VALUES === 0) return GgmlType.Q8_0;
  return GgmlType.F16;
}

export function generateRandomModel(opts: GenerateModelOptions): Uint8Array {
  const shape = validateShape(opts.contextLength !== undefined ? { ...opts.shape, contextLength: opts.contextLength } : opts.shape);
  if (!Number.isSafeInteger(opts.seed)) throw new PrismError("PRISM_MODEL_SHAPE_INVALID", `seed ${opts.seed} must be an integer`);
  if (!(opts.dtype in FILE_TYPE)) throw new PrismError("PRISM_MODEL_SHAPE_INVALID", `dtype '${String(opts.dtype)}' must be one of ${WEIGHT_DTYPES.join(", ")}`);
  const cfg = {
    dim: shape.dim,
    hiddenDim: shape.hiddenDim,
    numLayers: shape.numLayers,
    numHeads: shape.numHeads,
    numKvHeads: shape.numKvHeads,
    headDim: shape.dim / shape.numHeads,
    vocabSize: shape.vocabSize,
    tiedOutput: true,
    qkvBias: false,
  };
  const rng = new SeededRng(opts.seed);
  const amplitude = (opts.weightStd ?? 0.02) * Math.sqrt(3);
  const tensors: GgufWriterTensor[] = [];
  for (const t of expectedTensors(cfg)) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    if (t.isNorm) values.fill(1);
    else for (let i = 0; i < n; i++) values[i] = (rng.next() * 2 - 1) * amplitude;
    const type = tensorTypeFor(opts.dtype, t.dims, t.isNorm);
    const data = type === GgmlType.F32 ? encodeF32(values) : type === GgmlType.F16 ? encodeF16(values) : quantizeQ8_0(values);
    tensors.push({ name: t.name, dims: t.dims, type, data });
  }
  const metadata = llamaMetadata({
    name: opts.name ?? `${shape.name}-random-${opts.dtype}-s${opts.seed}`,
    fileType: FILE_TYPE[opts.dtype],
    contextLength: shape.contextLength,
    dim: shape.dim,
    numLayers: shape.numLayers,
    hiddenDim: shape.hiddenDim,
    numHeads: shape.numHeads,
    numKvHeads: shape.numKvHeads,
    ropeTheta: 10000,
    rmsEps: 1e-5,
    vocab: syntheticVocab(shape.vocabSize),
    ...(opts.chatTemplate !== undefined ? { chatTemplate: opts.chatTemplate } : {}),
  });
  return writeGguf({ metadata, tensors });
}
