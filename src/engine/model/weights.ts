/**
 * Where a model's tensors sit inside its device weight region, and the copy that puts them there.
 *
 * The host cache of a model is its parsed GGUF (the file bytes kept in JS memory). Activation =
 * `copyWeights`: every tensor the forward pass needs is copied (F16 / Q8_0 stay quantised) to a
 * 64-byte aligned slot of one contiguous region whose size is `layout.bytes`. The memory layer hands
 * out that region; the executor only knows its byte offset, so compaction can move it (moveWeights)
 * without the layout changing.
 *
 * Two transformations:
 * - Q8_0 matrices are regrouped by 4 rows into the kernels' Q8_0_R4 layout (kernels/q8-layout.ts:
 *   same blocks and values, 4 rows' k-pairs interleaved so one SIMD dot product yields 4 output
 *   columns). The slot is the GGUF tensor's size, plus zero padding to a multiple of 4 rows.
 * - For rope-NEOX architectures (qwen2) the output rows of Wq / Wk (and their biases) are permuted
 *   per head so that NEOX pairs (j, j + headDim/2) become interleaved pairs (2j, 2j+1). q·k is
 *   invariant under the same permutation of q and k, so the interleaved rope kernel computes
 *   exactly NEOX attention. Rows are moved whole, so quantised rows stay bit-identical.
 */
import { PrismError } from "../../core/errors.ts";
import type { GgufFile, GgufTensorInfo } from "../gguf/types.ts";
import { GgmlType, ggmlTypeName } from "../gguf/types.ts";
import { WType } from "../kernels/types.ts";
import { q8r4Bytes, repackQ8_0x4 } from "../kernels/q8-layout.ts";
import type { LlamaConfig } from "./config.ts";

/** Alignment of every tensor slot relative to the region start (64 = a cache line). */
export const WEIGHT_ALIGN_BYTES = 64;
/**
 * Alignment the region's own byte offset must have: 16 (f32x4 loads; the memory layer's pages start
 * at prefixBytes, a multiple of 16, plus whole pages).
 */
export const REGION_ALIGN_BYTES = 16;

export interface TensorSlot {
  /** Byte offset relative to the region start. */
  readonly offset: number;
  /** Type in device memory (kernels' WType: GGUF Q8_0 becomes Q8_0_R4). */
  readonly type: number;
  readonly dims: readonly number[];
  /** Bytes in device memory. */
  readonly byteLength: number;
  /** Source tensor in the GGUF. */
  readonly source: GgufTensorInfo;
  /** Per-head NEOX → interleaved row permutation applied while copying (0 = none; else headDim). */
  readonly permuteHeadDim: number;
}

export interface WeightLayout {
  /** Bytes of the whole region (a multiple of WEIGHT_ALIGN_BYTES). */
  readonly bytes: number;
  readonly tensors: Map<string, TensorSlot>;
}

/** True for the architectures whose GGUF rope layout is NEOX (rotate halves) rather than interleaved pairs. */
export function usesNeoxRope(arch: string): boolean {
  return arch === "qwen2";
}

interface Want {
  readonly name: string;
  readonly dims: readonly number[];
  /** Only F32 accepted (norm weights, biases), else F32/F16/Q8_0. */
  readonly f32Only: boolean;
  readonly permuteHeadDim: number;
}

/** The tensors the forward pass reads, with the shape each must have (ggml order). */
function wantedTensors(cfg: LlamaConfig): Want[] {
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const neox = usesNeoxRope(cfg.arch) ? cfg.headDim : 0;
  const w = (name: string, dims: number[], f32Only = false, permuteHeadDim = 0): Want => ({ name, dims, f32Only, permuteHeadDim });
  const out: Want[] = [w("token_embd.weight", [cfg.dim, cfg.vocabSize])];
  for (let l = 0; l < cfg.numLayers; l++) {
    const b = `blk.${l}.`;
    out.push(
      w(`${b}attn_norm.weight`, [cfg.dim], true),
      w(`${b}attn_q.weight`, [cfg.dim, qDim], false, neox),
      w(`${b}attn_k.weight`, [cfg.dim, kvDim], false, neox),
      w(`${b}attn_v.weight`, [cfg.dim, kvDim]),
      w(`${b}attn_output.weight`, [qDim, cfg.dim]),
      w(`${b}ffn_norm.weight`, [cfg.dim], true),
      w(`${b}ffn_gate.weight`, [cfg.dim, cfg.hiddenDim]),
      w(`${b}ffn_down.weight`, [cfg.hiddenDim, cfg.dim]),
      w(`${b}ffn_up.weight`, [cfg.dim, cfg.hiddenDim]),
    );
    if (cfg.qkvBias) {
      out.push(w(`${b}attn_q.bias`, [qDim], true, neox), w(`${b}attn_k.bias`, [kvDim], true, neox), w(`${b}attn_v.bias`, [kvDim], true));
    }
  }
  out.push(w("output_norm.weight", [cfg.dim], true));
  if (!cfg.tiedOutput) out.push(w("output.weight", [cfg.dim, cfg.vocabSize]));
  return out;
}

/** Checks every needed tensor (presence, shape, type) and assigns it an aligned slot. */
export function planWeightLayout(gguf: GgufFile, cfg: LlamaConfig): WeightLayout {
  const tensors = new Map<string, TensorSlot>();
  let cursor = 0;
  for (const want of wantedTensors(cfg)) {
    const t = gguf.tensorByName.get(want.name);
    if (t === undefined) {
      throw new PrismError("PRISM_GGUF_MISSING", `${gguf.fileName}: tensor '${want.name}' is missing (architecture ${cfg.arch})`, {
        file: gguf.fileName,
        tensor: want.name,
      });
    }
    const dims = t.dims.length > want.dims.length && t.dims.slice(want.dims.length).every((d) => d === 1) ? t.dims.slice(0, want.dims.length) : t.dims;
    if (dims.length !== want.dims.length || dims.some((d, i) => d !== want.dims[i])) {
      throw new PrismError(
        "PRISM_GGUF_CORRUPT",
        `${gguf.fileName}: tensor '${want.name}' has shape [${t.dims.join(", ")}], expected [${want.dims.join(", ")}] from the model metadata`,
        { file: gguf.fileName, tensor: want.name },
      );
    }
    const typeOk = want.f32Only ? t.type === GgmlType.F32 : t.type === GgmlType.F32 || t.type === GgmlType.F16 || t.type === GgmlType.Q8_0;
    if (!typeOk) {
      throw new PrismError(
        "PRISM_GGUF_UNSUPPORTED_TYPE",
        `${gguf.fileName}: tensor '${want.name}' is ${ggmlTypeName(t.type)}; the engine needs ${want.f32Only ? "F32" : "F32, F16 or Q8_0"} here`,
        { file: gguf.fileName, tensor: want.name, type: t.type },
      );
    }
    const repack = t.type === GgmlType.Q8_0;
    const type = repack ? WType.Q8_0_R4 : t.type;
    const byteLength = repack ? q8r4Bytes(dims[1] ?? 1, dims[0]!) : t.byteLength;
    tensors.set(want.name, { offset: cursor, type, dims, byteLength, source: t, permuteHeadDim: want.permuteHeadDim });
    cursor += Math.ceil(byteLength / WEIGHT_ALIGN_BYTES) * WEIGHT_ALIGN_BYTES;
  }
  return { bytes: Math.max(cursor, WEIGHT_ALIGN_BYTES), tensors };
}

/**
 * Copies every tensor of `layout` from the host cache (`gguf.bytes`) into `memory` at
 * regionOffset + slot.offset. The caller owns the region (bounds are checked here anyway).
 */
export function copyWeights(memory: WebAssembly.Memory, regionOffset: number, layout: WeightLayout, gguf: GgufFile): void {
  if (regionOffset < 0 || regionOffset % REGION_ALIGN_BYTES !== 0 || regionOffset + layout.bytes > memory.buffer.byteLength) {
    throw new PrismError(
      "PRISM_INTERNAL",
      `weight region [${regionOffset}, ${regionOffset + layout.bytes}) is misaligned or outside the device memory (${memory.buffer.byteLength} bytes)`,
      { regionOffset, bytes: layout.bytes },
    );
  }
  const dst = new Uint8Array(memory.buffer);
  for (const slot of layout.tensors.values()) {
    const src = gguf.bytes.subarray(slot.source.offset, slot.source.offset + slot.source.byteLength);
    const at = regionOffset + slot.offset;
    const numRows = slot.dims.length === 1 ? slot.dims[0]! : slot.dims[1]!;
    const sourceRow = slot.permuteHeadDim === 0 ? identityRow : neoxSourceRow(slot.permuteHeadDim);
    if (slot.type === WType.Q8_0_R4) {
      repackQ8_0x4(src, numRows, slot.dims[0]!, dst, at, sourceRow);
      continue;
    }
    if (slot.permuteHeadDim === 0) {
      dst.set(src, at);
      continue;
    }
    const rowBytes = slot.byteLength / numRows;
    for (let row = 0; row < numRows; row++) {
      const from = sourceRow(row);
      dst.set(src.subarray(from * rowBytes, (from + 1) * rowBytes), at + row * rowBytes);
    }
  }
}

const identityRow = (row: number): number => row;

/** NEOX → interleaved: within each head, new row 2j ← old row j, new row 2j+1 ← old row j + half. */
function neoxSourceRow(headDim: number): (row: number) => number {
  const half = headDim / 2;
  return (row) => {
    const head = Math.floor(row / headDim);
    const r = row % headDim;
    return head * headDim + (r % 2 === 0 ? r / 2 : half + (r - 1) / 2);
  };
}
