/**
 * Tensor codecs for the types Prism writes: IEEE half (F16) and ggml Q8_0.
 * Q8_0 follows ggml's quantize_row_q8_0_ref exactly: per block of 32, d = max|x| / 127 (f32), stored as f16;
 * q = roundf(x · (1/d)) with ties away from zero, where 1/d uses the unrounded f32 d. Decoding is q · f16(d).
 * These run at load/generation time, not per token; the engine's kernels have their own fused paths.
 */
import { PrismError } from "../../core/errors.ts";
import { Q8_0_BLOCK_BYTES, Q8_0_BLOCK_VALUES } from "./types.ts";

const f32Box = new Float32Array(1);
const u32Box = new Uint32Array(f32Box.buffer);

/** f32 → f16 bits, round to nearest even; overflow → ±Inf; NaN stays NaN (quiet). */
export function f32ToF16(x: number): number {
  f32Box[0] = x;
  const bits = u32Box[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal (or zero): value in units of 2^-24 is (1.mant · 2^23) >> (14 - e).
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to Inf).
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return h;
}

let f16Table: Float32Array | null = null;
/** All 65,536 half values as f32 (built on first use, 256 KiB). */
export function f16Table32(): Float32Array {
  if (f16Table !== null) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16BitsToNumber(h);
  f16Table = t;
  return t;
}

function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** f16 bits → number (exact). */
export function f16ToF32(h: number): number {
  return f16Table32()[h & 0xffff]!;
}

/** Encodes f32 values as little-endian f16 bytes. */
export function encodeF16(src: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(src.length * 2);
  const v = new DataView(out.buffer);
  for (let i = 0; i < src.length; i++) v.setUint16(i * 2, f32ToF16(src[i]!), true);
  return out;
}

/** Decodes little-endian f16 bytes (any byte offset). */
export function decodeF16(bytes: Uint8Array, out = new Float32Array(bytes.byteLength >>> 1)): Float32Array {
  const t = f16Table32();
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = t[v.getUint16(i * 2, true)]!;
  return out;
}

/** Encodes f32 values as little-endian f32 bytes. */
export function encodeF32(src: Float32Array): Uint8Array {
  return new Uint8Array(src.buffer.slice(src.byteOffset, src.byteOffset + src.byteLength));
}

/** Decodes little-endian f32 bytes (any byte offset). */
export function decodeF32(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2).slice();
  return new Float32Array(Uint8Array.prototype.slice.call(bytes).buffer);
}

/** Rounds half away from zero, as C roundf. */
function roundf(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** Quantises to Q8_0 (length must be a multiple of 32): 34 bytes per block. */
export function quantizeQ8_0(src: ArrayLike<number>): Uint8Array {
  if (src.length % Q8_0_BLOCK_VALUES !== 0) {
    throw new PrismError("PRISM_INTERNAL", `quantizeQ8_0: length ${src.length} is not a multiple of ${Q8_0_BLOCK_VALUES}`);
  }
  const numBlocks = src.length / Q8_0_BLOCK_VALUES;
  const out = new Uint8Array(numBlocks * Q8_0_BLOCK_BYTES);
  const v = new DataView(out.buffer);
  const fr = Math.fround;
  for (let b = 0; b < numBlocks; b++) {
    const base = b * Q8_0_BLOCK_VALUES;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK_VALUES; j++) {
      const a = Math.abs(fr(src[base + j]!));
      if (a > amax) amax = a;
    }
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    const o = b * Q8_0_BLOCK_BYTES;
    v.setUint16(o, f32ToF16(d), true);
    for (let j = 0; j < Q8_0_BLOCK_VALUES; j++) {
      v.setInt8(o + 2 + j, roundf(fr(fr(src[base + j]!) * id)));
    }
  }
  return out;
}

/** Decodes Q8_0 bytes (34 per block, any byte offset) into `numElements` f32 values. */
export function dequantizeQ8_0(bytes: Uint8Array, numElements = (bytes.byteLength / Q8_0_BLOCK_BYTES) * Q8_0_BLOCK_VALUES, out = new Float32Array(numElements)): Float32Array {
  const numBlocks = numElements / Q8_0_BLOCK_VALUES;
  if (!Number.isInteger(numBlocks) || numBlocks * Q8_0_BLOCK_BYTES > bytes.byteLength) {
    throw new PrismError("PRISM_INTERNAL", `dequantizeQ8_0: ${bytes.byteLength} bytes cannot hold ${numElements} Q8_0 values`);
  }
  const t = f16Table32();
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < numBlocks; b++) {
    const o = b * Q8_0_BLOCK_BYTES;
    const d = t[v.getUint16(o, true)]!;
    const base = b * Q8_0_BLOCK_VALUES;
    for (let j = 0; j < Q8_0_BLOCK_VALUES; j++) out[base + j] = d * v.getInt8(o + 2 + j);
  }
  return out;
}

/** Decodes any supported tensor encoding (F32, F16, Q8_0) to f32. */
export function decodeTensor(type: number, bytes: Uint8Array, numElements: number): Float32Array {
  switch (type) {
    case 0:
      return decodeF32(bytes.subarray(0, numElements * 4));
    case 1:
      return decodeF16(bytes.subarray(0, numElements * 2));
    case 8:
      return dequantizeQ8_0(bytes, numElements);
    default:
      throw new PrismError("PRISM_GGUF_UNSUPPORTED_TYPE", `decodeTensor: tensor type ${type} is not supported`);
  }
}
