/**
 * Memory layouts of the Q8_0 matmul (the WASM kernels' layouts, mirrored by the TS kernels and
 * checked against each other in the tests).
 *
 * Weights (WType.Q8_0_R4): a GGUF Q8_0 matrix [rows][dim] regrouped by 4 rows at load time, same
 * values and scales. Rows 4g..4g+3 form group g; its block b (values 32b..32b+31 of each row) is
 * R4_BLOCK_BYTES = 136 bytes at (g·nb + b)·136, nb = dim/32: the 4 rows' f16 scales (row 4g+c at
 * byte 2c), then 16 k-pairs p of 8 bytes, row c's int8 values k = 2p, 2p+1 at bytes 8 + 8p + 2c
 * and + 1. A last partial group is padded with zero rows (scale 0, values 0). Same size as the
 * GGUF tensor up to that padding.
 *
 * Activations (quantizeQ8): numRows rows of inDim values, each 32-value block quantised to
 * integers with its own f32 scale: values as i16 [row][inDim] from the area's start, scales as f32
 * [row][inDim/32] after them.
 */

export const R4_BLOCK_BYTES = 136;

/** Bytes of a Q8_0_R4 matrix of `rows` rows of `dim` values (dim a multiple of 32). */
export function q8r4Bytes(rows: number, dim: number): number {
  return Math.ceil(rows / 4) * (dim / 32) * R4_BLOCK_BYTES;
}

/** Byte offset of row `row`'s f16 scale of block b in a Q8_0_R4 matrix. */
export function r4ScaleOffset(dim: number, row: number, b: number): number {
  return ((row >> 2) * (dim >> 5) + b) * R4_BLOCK_BYTES + (row & 3) * 2;
}

/** Byte offset of row `row`'s int8 value k (0 ≤ k < dim) in a Q8_0_R4 matrix. */
export function r4ValueOffset(dim: number, row: number, k: number): number {
  const i = k & 31;
  return ((row >> 2) * (dim >> 5) + (k >> 5)) * R4_BLOCK_BYTES + 8 + (i >> 1) * 8 + (row & 3) * 2 + (i & 1);
}

/**
 * Regroups a GGUF Q8_0 matrix (`rows` rows of `dim` values, 34-byte blocks) into Q8_0_R4 at
 * dst[dstByte..]. Destination row r takes source row sourceRow(r) (identity by default; the weight
 * loader passes its NEOX → interleaved row permutation). Writes q8r4Bytes(rows, dim) bytes.
 */
export function repackQ8_0x4(src: Uint8Array, rows: number, dim: number, dst: Uint8Array, dstByte: number, sourceRow: (row: number) => number = (r) => r): void {
  const nb = dim >> 5;
  const groups = Math.ceil(rows / 4);
  dst.fill(0, dstByte, dstByte + groups * nb * R4_BLOCK_BYTES);
  const srcAt = src.byteOffset;
  const dstAt = dst.byteOffset + dstByte;
  if ((srcAt & 1) === 0 && (dstAt & 1) === 0) {
    // Everything moves in 2-byte units (a scale, a k-pair), so copy u16s: ~2x faster than bytes.
    const s16 = new Uint16Array(src.buffer, srcAt, src.byteLength >> 1);
    const d16 = new Uint16Array(dst.buffer, dstAt, (groups * nb * R4_BLOCK_BYTES) >> 1);
    for (let row = 0; row < rows; row++) {
      let from = sourceRow(row) * nb * 17;
      let to = (row >> 2) * nb * 68 + (row & 3);
      for (let b = 0; b < nb; b++, from += 17, to += 68) {
        d16[to] = s16[from]!;
        for (let p = 0; p < 16; p++) d16[to + 4 + 4 * p] = s16[from + 1 + p]!;
      }
    }
    return;
  }
  const srcRowBytes = nb * 34;
  for (let row = 0; row < rows; row++) {
    const c2 = (row & 3) * 2;
    let from = sourceRow(row) * srcRowBytes;
    let to = dstByte + (row >> 2) * nb * R4_BLOCK_BYTES;
    for (let b = 0; b < nb; b++, from += 34, to += R4_BLOCK_BYTES) {
      dst[to + c2] = src[from]!;
      dst[to + c2 + 1] = src[from + 1]!;
      for (let p = 0; p < 16; p++) {
        dst[to + 8 + p * 8 + c2] = src[from + 2 + 2 * p]!;
        dst[to + 8 + p * 8 + c2 + 1] = src[from + 3 + 2 * p]!;
      }
    }
  }
}

/** Bytes quantizeQ8 writes for numRows rows of inDim values (inDim a multiple of 32). */
export function q8ActivationBytes(numRows: number, inDim: number): number {
  return numRows * inDim * 2 + numRows * (inDim >> 5) * 4;
}
