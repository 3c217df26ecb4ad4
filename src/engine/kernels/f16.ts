/**
 * IEEE half ↔ f32 conversion and Q8_0 quantisation helpers shared by the TS kernels, tests and
 * benches. Decoding matches the WASM kernels bit for bit on finite values (both are exact).
 */

/** All 65,536 halves decoded to f32 (256 KiB, built once at module load). */
export const F16_TO_F32: Float32Array = buildF16Table();

function buildF16Table(): Float32Array {
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else if (exp === 0) {
      // Subnormal (or zero): mant × 2^-24, exact in f32.
      table[h] = mant * 2 ** -24;
      bits[h] = (bits[h]! | sign) >>> 0;
    } else {
      bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  return table;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** f32 → IEEE half, round to nearest even (overflow → ±Inf). */
export function f32ToF16(value: number): number {
  scratchF32[0] = value;
  const x = scratchU32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/**
 * Quantise `n` f32 values (n a multiple of 32) into Q8_0 blocks at dst[dstByte..]:
 * d = max|x| / 127 stored as f16, q = roundf(x / d) (ggml's quantize_row_q8_0_ref).
 */
export function quantizeQ8_0(src: Float32Array, srcStart: number, n: number, dst: Uint8Array, dstByte: number): void {
  const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  for (let b = 0; b < n / 32; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(src[srcStart + b * 32 + i]!));
    const d = amax / 127;
    const id = d !== 0 ? 1 / d : 0;
    const at = dstByte + b * 34;
    view.setUint16(at, f32ToF16(d), true);
    for (let i = 0; i < 32; i++) {
      const v = src[srcStart + b * 32 + i]! * id;
      view.setInt8(at + 2 + i, Math.sign(v) * Math.round(Math.abs(v))); // roundf: half away from zero
    }
  }
}

/**
 * Quantise n activations (n a multiple of 32) the way the Q8_0 matmul kernels do before their
 * integer dot products: per 32-value block, d = f32(max|x| / 127), id = f32(1/d) (0 when d = 0),
 * q = nearest-even(f32(x · id)). Writes q into qOut[qStart..] and d into dOut[dStart..].
 * Bit-identical to quantizeRows in the WASM kernels.
 */
export function quantizeActivationsQ8(src: Float32Array, srcStart: number, n: number, qOut: Int8Array, qStart: number, dOut: Float32Array, dStart: number): void {
  for (let b = 0; b < n >> 5; b++) {
    const base = srcStart + (b << 5);
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(src[base + i]!));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    dOut[dStart + b] = d;
    for (let i = 0; i < 32; i++) qOut[qStart + (b << 5) + i] = roundHalfEven(Math.fround(src[base + i]! * id));
  }
}

function roundHalfEven(v: number): number {
  const r = Math.round(v); // half up
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}
