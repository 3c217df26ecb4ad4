/**
 * The compute-kernel contract of the embedded engine. Callers: the forward pass
 * (src/engine/model/forward.ts) on the engine's thread, and the parallel-matmul helper worker.
 *
 * Every "pointer" is a byte offset into ONE memory (a WebAssembly.Memory, shared when a helper thread
 * runs kernels on it too) that the kernels were bound to at creation. Activations and KV are f32;
 * weights are F32 or F16 as a row-major W[out][in] matrix (rows contiguous), or Q8_0_R4: a GGUF
 * Q8_0 matrix (blocks of 32 values: f16 scale d, 32 × int8 q; value = d·q) regrouped by 4 rows at
 * load time (layout in q8-layout.ts; inDim must be a multiple of 32). A Q8_0_R4 matmul quantises x
 * to Q8_0-style integer blocks first (f32 scales; quantizeActivationsQ8 in f16.ts) and computes
 * exact integer block dot products, as llama.cpp does — so its result equals the f32 product of
 * the quantised x, not of x itself (relative error ≈ 1/254 of each block's max|x| per element).
 *
 * Alignment: f32 and i32/u32 pointers are multiples of 4; F16/Q8_0_R4 weight pointers are even.
 * F16 values must be finite (the WASM decoder maps Inf/NaN halves to large finite values).
 *
 * Two implementations with the identical math: `createWasmKernels` (AssemblyScript → WASM SIMD,
 * the engine's default) and `createTsKernels` (scalar TypeScript, used to cross-check in tests and
 * when WebAssembly SIMD is unavailable).
 */

/**
 * Weight types in device memory: F32 and F16 as GGML's; Q8_0_R4 (not a GGML type) is what the
 * weight loader makes of GGML Q8_0 matrices (q8-layout.ts).
 */
import { q8r4Bytes } from "./q8-layout.ts";

export const WType = { F32: 0, F16: 1, Q8_0_R4: 108 } as const;
export type WType = (typeof WType)[keyof typeof WType];

/** Bytes a [rows][dim] matrix of the given weight type occupies. */
export function weightMatrixBytes(wType: number, rows: number, dim: number): number {
  if (wType === WType.F32) return rows * dim * 4;
  if (wType === WType.F16) return rows * dim * 2;
  if (wType === WType.Q8_0_R4) return q8r4Bytes(rows, dim);
  throw new RangeError(`unknown weight type ${wType}`);
}

export interface Kernels {
  readonly name: "wasm" | "ts";
  /**
   * out[r][o] = Σ_i x[r][i] · W[o][i] for rows r < numRows and output columns o in [oStart, oEnd)
   * (so threads can split columns). Rows of x/out are contiguous with strides inDim/outDim floats.
   * Columns outside [oStart, oEnd) are not written. Batch-invariant and split-invariant: each
   * out[r][o] is bit-identical whatever numRows, the other rows, or the [oStart, oEnd) split are
   * (so a sequence decodes the same alone or batched, and with 1 or 2 threads).
   */
  matmul(outPtr: number, xPtr: number, wPtr: number, wType: number, numRows: number, inDim: number, outDim: number, oStart: number, oEnd: number): void;
  /**
   * Quantises numRows rows of x (stride inDim floats, inDim a multiple of 32) into the area at
   * xqPtr (q8ActivationBytes(numRows, inDim) bytes, 4-aligned; layout in q8-layout.ts) the way a
   * Q8_0_R4 matmul does, so several of them over the same input (q/k/v, gate/up, both threads of
   * a split matmul) quantise it once.
   */
  quantizeQ8(xqPtr: number, xPtr: number, numRows: number, inDim: number): void;
  /**
   * matmul with Q8_0_R4 weights over activations quantised by quantizeQ8 (numRows and inDim as
   * given to it): the same result as matmul on the original x, bit for bit in each implementation.
   */
  matmulQ8(outPtr: number, xqPtr: number, wPtr: number, numRows: number, inDim: number, outDim: number, oStart: number, oEnd: number): void;
  /**
   * Index of the largest of n f32 values at ptr; the lowest index among equals, NaN never wins, 0
   * when nothing is above -Infinity (greedy sampling: `Sampler`'s own scan gives the same index).
   */
  argmax(ptr: number, n: number): number;
  /** Adds a bias vector (qwen2): out[r][o] += b[o]. */
  addBias(outPtr: number, biasPtr: number, numRows: number, dim: number): void;
  /** out[r] = x[r] / sqrt(mean(x[r]²) + eps) ⊙ weight; weight f32; out may alias x. */
  rmsnorm(outPtr: number, xPtr: number, weightPtr: number, numRows: number, dim: number, eps: number): void;
  /**
   * RoPE in place on numRows rows of `numHeads × headDim`, interleaved pairs (llama.cpp LLAMA /
   * llama2.c layout: pair j = (x[2j], x[2j+1])), positions: i32 array ptr (one per row),
   * angle = pos · theta^(-2j/headDim) (rotation dimension = headDim).
   */
  rope(xPtr: number, numRows: number, numHeads: number, headDim: number, positionsPtr: number, theta: number): void;
  /**
   * cos/sin of rope's angles for numRows positions (i32 array), written to tablePtr as
   * [row][headDim/2] pairs of f32 (cos, sin): headDim floats per row. The forward pass computes
   * them once per batch for all layers and for both q and k (the trig is what rope costs).
   */
  ropeTable(tablePtr: number, positionsPtr: number, numRows: number, headDim: number, theta: number): void;
  /** `rope` with the angles of ropeTable (same rows and headDim): the same result bit for bit. */
  ropeApply(xPtr: number, numRows: number, numHeads: number, headDim: number, tablePtr: number): void;
  /** out = silu(gate) * up, elementwise, n floats (out may alias gate or up). */
  swiglu(outPtr: number, gatePtr: number, upPtr: number, n: number): void;
  /** out += x, n floats. */
  add(outPtr: number, xPtr: number, n: number): void;
  /** Dequantise row `row` of a [rows][dim] weight matrix into out (embedding lookup). */
  getRow(outPtr: number, wPtr: number, wType: number, row: number, dim: number): void;
  /**
   * Write K and V of one token (kvDim floats each) into its paged slot:
   * block = blockOffsets[pos / blockTokens] (a byte offset); layout inside a block is
   * [layer][K|V][tokenInBlock][kvDim] of f32.
   */
  writeKv(kPtr: number, vPtr: number, blockOffsetsPtr: number /* u32 array */, blockTokens: number, numLayers: number, layer: number, kvDim: number, pos: number): void;
  /**
   * Causal attention for ONE query row at position pos over positions [0, pos] of the paged cache:
   * out[h] = softmax(q_h · K^T × scale) · V for each head h, GQA (head h uses kv head
   * h / (numHeads/numKvHeads)). q and out hold numHeads × headDim floats (out must not alias q).
   * scratchPtr: ≥ (pos+1) floats.
   */
  attention(outPtr: number, qPtr: number, blockOffsetsPtr: number, blockTokens: number, numLayers: number, layer: number, numHeads: number, numKvHeads: number, headDim: number, pos: number, scratchPtr: number, scale: number): void;
  /**
   * `attention` for rows [rowStart, rowEnd) of a forward's batch, bit for bit as one call per row:
   * row r's query at qPtr + r·numHeads·headDim·4 (its output at the same offset from outPtr), its
   * position at positionsPtr[r] (i32), its block table's byte offset at rowTablesPtr[r] (u32) with
   * rowBlockTokensPtr[r] (i32) tokens per block. scratchPtr holds ATTENTION_SCRATCH_THREADS areas
   * of scratchFloats floats (≥ the largest position + 1) one after the other: a thread running a
   * share of the rows (runtime/parallel-kernels.ts) uses its own.
   */
  attentionRows(outPtr: number, qPtr: number, rowTablesPtr: number, rowBlockTokensPtr: number, positionsPtr: number, rowStart: number, rowEnd: number,
    numLayers: number, layer: number, numHeads: number, numKvHeads: number, headDim: number, scratchPtr: number, scratchFloats: number, scale: number): void;
}

/** Score areas attentionRows' scratch holds: the calling thread's and its helper thread's. */
export const ATTENTION_SCRATCH_THREADS = 2;

/**
 * Bytes at the start of the memory that belong to the kernels: the executor puts nothing below
 * this. [0, 64 KiB) holds the module's static data (math tables; every instantiation, one per
 * thread, rewrites it), [64 KiB, 1 MiB) per-instance scratch slots (the activations `matmul`
 * quantises for a Q8_0_R4 matrix, as many rows at a time as fit; see wasm-kernels.ts).
 * createWasmKernels checks the module's __heap_base. `matmul` with Q8_0_R4 weights thus needs
 * inDim ≤ ~57k; matmulQ8 has no such limit.
 */
export const KERNEL_RESERVED_BYTES = 1 << 20;

export { q8ActivationBytes, q8r4Bytes, repackQ8_0x4 } from "./q8-layout.ts";
export { createTsKernels } from "./ts-kernels.ts";
export { createWasmKernels } from "./wasm-kernels.ts";
