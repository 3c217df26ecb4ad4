// AssemblyScript compute kernels → WASM SIMD (f32x4). Compiled by scripts/build-kernels.mjs.
// Contract and semantics: src/engine/kernels/types.ts (the `Kernels` interface); the scalar
// reference is src/engine/kernels/ts-kernels.ts. All pointers are byte offsets into the imported
// memory. Nothing here allocates or keeps state in memory, so several threads can run kernels on
// one shared memory at once (each thread has its own instance; static data is read-only).

const F32: i32 = 0;
const F16: i32 = 1;
/** Q8_0 regrouped by 4 rows (types.ts WType.Q8_0_R4; layout below). */
const Q8_0_R4: i32 = 108;

/** End of the module's static data; the JS loader checks it is below KERNEL_RESERVED_BYTES. */
export function heapBase(): usize {
  return __heap_base;
}

// ---------------------------------------------------------------------------------------------
// f16 decode. A half's 15 magnitude bits shifted left by 13 form an f32 whose value is the half's
// × 2^-112 (normals and subnormals alike), so one multiply by 2^112 finishes the conversion; the
// sign bit comes along from the sign-extended load. Exact for all finite halves (Inf/NaN are not
// supported: weights are finite).

// @ts-ignore: decorator
@inline const F16_MAGIC: f32 = reinterpret<f32>(0x77800000); // 2^112
// @ts-ignore: decorator
@inline const F16_MASK: i32 = 0x8fffe000;

// @ts-ignore: decorator
@inline function f16Scalar(ptr: usize): f32 {
  const h = <i32>load<i16>(ptr);
  return reinterpret<f32>((h << 13) & F16_MASK) * F16_MAGIC;
}

/** Four halves at ptr → f32x4. */
// @ts-ignore: decorator
@inline function f16x4(ptr: usize): v128 {
  const v = v128.load16x4_s(ptr);
  return f32x4.mul(v128.and(i32x4.shl(v, 13), i32x4.splat(F16_MASK)), f32x4.splat(F16_MAGIC));
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline function fma(acc: v128, a: v128, b: v128): v128 {
  return f32x4.add(acc, f32x4.mul(a, b));
}

// ---------------------------------------------------------------------------------------------
// matmul: out[r][o] = Σ_i x[r][i]·W[o][i]. F32/F16 register tile: 4 x rows × 2 W rows (8 f32x4
// accumulators), so each loaded weight vector is used 4 times and each x vector twice; rows left
// over (numRows % 4, and the whole of B = 1 decode) stream one W row at a time. Q8_0_R4: below.

export function matmul(out: usize, x: usize, w: usize, wType: i32, numRows: i32, inDim: i32, outDim: i32, oStart: i32, oEnd: i32): void {
  if (wType == F32) matmulF32(out, x, w, numRows, inDim, outDim, oStart, oEnd);
  else if (wType == F16) matmulF16(out, x, w, numRows, inDim, outDim, oStart, oEnd);
  else if (wType == Q8_0_R4) matmulQ8Rows(out, x, w, numRows, inDim, outDim, oStart, oEnd);
  else unreachable();
}

// ----- F32 -----

/** Sink for touch(): a global store keeps the loads from being optimised away. */
let touchSink: i32 = 0;

/**
 * Reads one word per cache line of [p, p + bytes) in address order, pulling a weight block into
 * L2 as one sequential stream before the row tiles read its rows interleaved (which the hardware
 * prefetcher follows poorly; see rowF32).
 */
function touch(p: usize, bytes: usize): void {
  let acc: i32 = 0;
  for (let i: usize = 0; i < bytes; i += 64) acc += load<i32>(p + i);
  touchSink = acc;
}

/**
 * Output columns per cache block: the W rows of one block (≈ 48 KiB) stay in L1/L2 while every
 * 4-row tile of x passes over them, so each weight byte comes from RAM once per matmul, not once
 * per 4 rows (measured: 32000×288 f32 at B = 32 went from 6.5 to ... GFLOP/s).
 */
function blockColumns(wRowBytes: usize): i32 {
  const n = <i32>(<usize>(48 * 1024) / wRowBytes) & ~1;
  return max(n, 2);
}

function matmulF32(out: usize, x: usize, w: usize, numRows: i32, inDim: i32, outDim: i32, oStart: i32, oEnd: i32): void {
  const xStride = <usize>inDim << 2;
  const oStride = <usize>outDim << 2;
  const wStride = <usize>inDim << 2;
  const full = numRows & ~3;
  const in4 = inDim & ~3;
  const colsPerBlock = blockColumns(wStride);
  for (let ob = oStart; ob < oEnd; ob += colsPerBlock) {
  const obEnd = min(oEnd, ob + colsPerBlock);
  if (full > 0) touch(w + <usize>ob * wStride, <usize>(obEnd - ob) * wStride);
  for (let r = 0; r < full; r += 4) {
    const x0 = x + <usize>r * xStride;
    const out0 = out + <usize>r * oStride;
    let o = ob;
    for (; o + 2 <= obEnd; o += 2) {
      const w0 = w + <usize>o * wStride;
      const w1 = w0 + wStride;
      const x1 = x0 + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      let i: usize = 0;
      const end = <usize>in4 << 2;
      for (; i < end; i += 16) {
        const v0 = v128.load(w0 + i);
        const v1 = v128.load(w1 + i);
        let xv = v128.load(x0 + i);
        a00 = fma(a00, xv, v0); a01 = fma(a01, xv, v1);
        xv = v128.load(x1 + i);
        a10 = fma(a10, xv, v0); a11 = fma(a11, xv, v1);
        xv = v128.load(x2 + i);
        a20 = fma(a20, xv, v0); a21 = fma(a21, xv, v1);
        xv = v128.load(x3 + i);
        a30 = fma(a30, xv, v0); a31 = fma(a31, xv, v1);
      }
      let s00 = hsum(a00), s01 = hsum(a01), s10 = hsum(a10), s11 = hsum(a11);
      let s20 = hsum(a20), s21 = hsum(a21), s30 = hsum(a30), s31 = hsum(a31);
      for (let k = in4; k < inDim; k++) {
        const kb = <usize>k << 2;
        const v0 = load<f32>(w0 + kb), v1 = load<f32>(w1 + kb);
        const y0 = load<f32>(x0 + kb), y1 = load<f32>(x1 + kb), y2 = load<f32>(x2 + kb), y3 = load<f32>(x3 + kb);
        s00 += y0 * v0; s01 += y0 * v1; s10 += y1 * v0; s11 += y1 * v1;
        s20 += y2 * v0; s21 += y2 * v1; s30 += y3 * v0; s31 += y3 * v1;
      }
      const ob = out0 + (<usize>o << 2);
      store<f32>(ob, s00); store<f32>(ob, s01, 4);
      store<f32>(ob + oStride, s10); store<f32>(ob + oStride, s11, 4);
      store<f32>(ob + 2 * oStride, s20); store<f32>(ob + 2 * oStride, s21, 4);
      store<f32>(ob + 3 * oStride, s30); store<f32>(ob + 3 * oStride, s31, 4);
    }
    for (; o < obEnd; o++) {
      const w0 = w + <usize>o * wStride;
      for (let rr = 0; rr < 4; rr++) {
        store<f32>(out0 + <usize>rr * oStride + (<usize>o << 2), dotF32(x0 + <usize>rr * xStride, w0, inDim));
      }
    }
  }
  for (let r = full; r < numRows; r++) rowF32(out + <usize>r * oStride, x + <usize>r * xStride, w, inDim, ob, obEnd);
  }
}

function dotF32(x: usize, w: usize, n: i32): f32 {
  const n4 = n & ~3;
  let a = f32x4.splat(0);
  const end = <usize>n4 << 2;
  for (let i: usize = 0; i < end; i += 16) a = fma(a, v128.load(x + i), v128.load(w + i));
  let s = hsum(a);
  for (let k = n4; k < n; k++) s += load<f32>(x + (<usize>k << 2)) * load<f32>(w + (<usize>k << 2));
  return s;
}

/**
 * One x row against W rows [oStart, oEnd), one W row at a time (the B = 1 decode path): the
 * weights stream strictly sequentially, which the hardware prefetcher follows far better than 4
 * interleaved row streams (measured on the 2-vCPU VM: 2.4x on the 37 MB classifier). Each column
 * is computed exactly like a lane of the 4×2 tile (one f32x4 accumulator, hsum, scalar tail), so
 * a row's result does not depend on how many rows share the matmul (batch invariance: a sequence
 * decodes bit-identically alone or in any batch).
 */
function rowF32(out: usize, x: usize, w: usize, inDim: i32, oStart: i32, oEnd: i32): void {
  const wStride = <usize>inDim << 2;
  for (let o = oStart; o < oEnd; o++) store<f32>(out + (<usize>o << 2), dotF32(x, w + <usize>o * wStride, inDim));
}

// ----- F16 (decoded on the fly, 4 halves per vector) -----

function matmulF16(out: usize, x: usize, w: usize, numRows: i32, inDim: i32, outDim: i32, oStart: i32, oEnd: i32): void {
  const xStride = <usize>inDim << 2;
  const oStride = <usize>outDim << 2;
  const wStride = <usize>inDim << 1;
  const full = numRows & ~3;
  const in4 = inDim & ~3;
  const colsPerBlock = blockColumns(wStride);
  for (let ob = oStart; ob < oEnd; ob += colsPerBlock) {
  const obEnd = min(oEnd, ob + colsPerBlock);
  if (full > 0) touch(w + <usize>ob * wStride, <usize>(obEnd - ob) * wStride);
  for (let r = 0; r < full; r += 4) {
    const x0 = x + <usize>r * xStride;
    const out0 = out + <usize>r * oStride;
    let o = ob;
    for (; o + 2 <= obEnd; o += 2) {
      const w0 = w + <usize>o * wStride;
      const w1 = w0 + wStride;
      const x1 = x0 + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      const end = <usize>in4 << 2;
      let iw: usize = 0;
      for (let i: usize = 0; i < end; i += 16, iw += 8) {
        const v0 = f16x4(w0 + iw);
        const v1 = f16x4(w1 + iw);
        let xv = v128.load(x0 + i);
        a00 = fma(a00, xv, v0); a01 = fma(a01, xv, v1);
        xv = v128.load(x1 + i);
        a10 = fma(a10, xv, v0); a11 = fma(a11, xv, v1);
        xv = v128.load(x2 + i);
        a20 = fma(a20, xv, v0); a21 = fma(a21, xv, v1);
        xv = v128.load(x3 + i);
        a30 = fma(a30, xv, v0); a31 = fma(a31, xv, v1);
      }
      let s00 = hsum(a00), s01 = hsum(a01), s10 = hsum(a10), s11 = hsum(a11);
      let s20 = hsum(a20), s21 = hsum(a21), s30 = hsum(a30), s31 = hsum(a31);
      for (let k = in4; k < inDim; k++) {
        const kb = <usize>k << 2;
        const v0 = f16Scalar(w0 + (<usize>k << 1)), v1 = f16Scalar(w1 + (<usize>k << 1));
        const y0 = load<f32>(x0 + kb), y1 = load<f32>(x1 + kb), y2 = load<f32>(x2 + kb), y3 = load<f32>(x3 + kb);
        s00 += y0 * v0; s01 += y0 * v1; s10 += y1 * v0; s11 += y1 * v1;
        s20 += y2 * v0; s21 += y2 * v1; s30 += y3 * v0; s31 += y3 * v1;
      }
      const ob = out0 + (<usize>o << 2);
      store<f32>(ob, s00); store<f32>(ob, s01, 4);
      store<f32>(ob + oStride, s10); store<f32>(ob + oStride, s11, 4);
      store<f32>(ob + 2 * oStride, s20); store<f32>(ob + 2 * oStride, s21, 4);
      store<f32>(ob + 3 * oStride, s30); store<f32>(ob + 3 * oStride, s31, 4);
    }
    for (; o < obEnd; o++) {
      const w0 = w + <usize>o * wStride;
      for (let rr = 0; rr < 4; rr++) {
        store<f32>(out0 + <usize>rr * oStride + (<usize>o << 2), dotF16(x0 + <usize>rr * xStride, w0, inDim));
      }
    }
  }
  for (let r = full; r < numRows; r++) rowF16(out + <usize>r * oStride, x + <usize>r * xStride, w, inDim, ob, obEnd);
  }
}

function dotF16(x: usize, w: usize, n: i32): f32 {
  const n4 = n & ~3;
  let a = f32x4.splat(0);
  const end = <usize>n4 << 2;
  let iw: usize = 0;
  for (let i: usize = 0; i < end; i += 16, iw += 8) a = fma(a, v128.load(x + i), f16x4(w + iw));
  let s = hsum(a);
  for (let k = n4; k < n; k++) s += load<f32>(x + (<usize>k << 2)) * f16Scalar(w + (<usize>k << 1));
  return s;
}

/** One x row against W rows [oStart, oEnd), one sequentially streamed W row at a time (see rowF32). */
function rowF16(out: usize, x: usize, w: usize, inDim: i32, oStart: i32, oEnd: i32): void {
  const wStride = <usize>inDim << 1;
  for (let o = oStart; o < oEnd; o++) store<f32>(out + (<usize>o << 2), dotF16(x, w + <usize>o * wStride, inDim));
}

// ----- Q8_0 weights, repacked by 4 rows (Q8_0_R4) -----
//
// Q8_0 × Q8_0 as llama.cpp's ggml_vec_dot_q8_0_q8_0: each 32-value block of an x row is quantised
// to integers with its own f32 scale dx = max|x|/127 (q = nearest-even(x · (1/dx))), so a block's
// dot product with a weight block is an exact integer Σ qx·qw, scaled once by dx·dw. Per output
// element: acc += f32(Σ) · (dx·dw), over the blocks in order — in every path below, so a row's
// result does not depend on the batch it is in or on the column split.
//
// The weights are the GGUF Q8_0 blocks regrouped at load time (q8-repack.ts): rows 4g..4g+3 form
// group g, whose block b sits at w + (g·nb + b)·136 (nb = inDim/32) as the 4 rows' f16 scales
// (8 bytes), then 16 k-pairs of 8 bytes, each holding the 4 rows' values k = 2p, 2p+1. One
// sign-extending load of a k-pair and one i32x4.dot_i16x8_s against the x pair broadcast to all
// lanes gives the 4 rows' partial sums in the 4 lanes: lanes are output columns, so no horizontal
// reduction is needed per block (the GGUF layout needed a 4×4 transpose-add per block and column
// pair; this is ~1.4x faster on the 2-vCPU VM). A trailing partial group is padded with zero rows.
//
// The activations are quantised once per input (quantizeQ8) into an area that every matmul over
// that input reuses (q/k/v, gate/up, both threads of a split matmul): values i16 [row][inDim] at xq
// (a k-pair is one i32, broadcast with one load), f32 scales [row][nb] after them.

/** This instance's scratch (set once by the JS loader; each thread's instance gets its own slot). */
let scratchPtr: usize = 0;
let scratchBytes: usize = 0;

export function setScratch(ptr: usize, bytes: usize): void {
  scratchPtr = ptr;
  scratchBytes = bytes;
}

const R4_BLOCK: usize = 136;

/** Bytes quantizeQ8 writes for numRows rows of inDim values. */
export function q8ActivationBytes(numRows: i32, inDim: i32): usize {
  return (<usize>numRows * <usize>inDim << 1) + (<usize>(numRows * (inDim >> 5)) << 2);
}

// @ts-ignore: decorator
@inline const ROUND_MAGIC: f32 = 12582912.0; // 1.5 · 2^23
// @ts-ignore: decorator
@inline const ROUND_MAGIC_BITS: i32 = 0x4b400000;

/** Quantise numRows rows of x (stride inDim floats; inDim a multiple of 32) into xq (layout above). */
export function quantizeQ8(xq: usize, x: usize, numRows: i32, inDim: i32): void {
  const nb = inDim >> 5;
  const n = numRows * nb;
  let p = x, qp = xq, sp = xq + (<usize>numRows * <usize>inDim << 1);
  for (let i = 0; i < n; i++, p += 128, qp += 64, sp += 4) {
    const v0 = v128.load(p), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
    const v4 = v128.load(p, 64), v5 = v128.load(p, 80), v6 = v128.load(p, 96), v7 = v128.load(p, 112);
    // max|x| as the max of the |x| bit patterns (one instruction, where f32x4.max takes ~8 on
    // x86): non-negative floats order as their bits do, and a NaN's bits are above +Inf's.
    const m = i32x4.max_s(
      i32x4.max_s(i32x4.max_s(f32x4.abs(v0), f32x4.abs(v1)), i32x4.max_s(f32x4.abs(v2), f32x4.abs(v3))),
      i32x4.max_s(i32x4.max_s(f32x4.abs(v4), f32x4.abs(v5)), i32x4.max_s(f32x4.abs(v6), f32x4.abs(v7))));
    const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    const d: f32 = amax / <f32>127;
    const id: f32 = d != 0 ? <f32>1 / d : <f32>0;
    store<f32>(sp, d);
    // Adding 1.5·2^23 rounds to the nearest integer (ties to even) into the low mantissa bits,
    // which integer subtraction of the same constant's bit pattern then extracts (|x·id| ≤ 127).
    const iv = f32x4.splat(id);
    const mf = v128.load(EXP_CONSTS, 48); // ROUND_MAGIC (a table: see EXP_CONSTS)
    const mi = v128.load(EXP_ICONSTS); // ROUND_MAGIC_BITS
    v128.store(qp, i16x8.narrow_i32x4_s(i32x4.sub(f32x4.add(f32x4.mul(v0, iv), mf), mi), i32x4.sub(f32x4.add(f32x4.mul(v1, iv), mf), mi)));
    v128.store(qp, i16x8.narrow_i32x4_s(i32x4.sub(f32x4.add(f32x4.mul(v2, iv), mf), mi), i32x4.sub(f32x4.add(f32x4.mul(v3, iv), mf), mi)), 16);
    v128.store(qp, i16x8.narrow_i32x4_s(i32x4.sub(f32x4.add(f32x4.mul(v4, iv), mf), mi), i32x4.sub(f32x4.add(f32x4.mul(v5, iv), mf), mi)), 32);
    v128.store(qp, i16x8.narrow_i32x4_s(i32x4.sub(f32x4.add(f32x4.mul(v6, iv), mf), mi), i32x4.sub(f32x4.add(f32x4.mul(v7, iv), mf), mi)), 48);
  }
}

// @ts-ignore: decorator
@inline function madd(acc: v128, a: v128, b: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(a, b));
}

/** A group's 4 f16 scales at p → f32x4. */
// @ts-ignore: decorator
@inline function scales4(p: usize): v128 {
  return f16x4(p);
}

/**
 * out[r][o] = Σ_i x[r][i]·W[o][i] for Q8_0_R4 W and activations quantised by quantizeQ8 at xq,
 * over columns [oStart, oEnd). Whole groups are swept in column blocks of ~48 KiB of W (pulled
 * into cache once, then read by every 4-row tile); rows left over from the tiles, B = 1, and
 * groups cut by the column range go through rowGroup, which streams W sequentially.
 */
export function matmulQ8(out: usize, xq: usize, w: usize, numRows: i32, inDim: i32, outDim: i32, oStart: i32, oEnd: i32): void {
  const nb = inDim >> 5;
  const gStride = <usize>nb * R4_BLOCK;
  const oStride = <usize>outDim << 2;
  const xStride = <usize>inDim << 1;
  const s = xq + <usize>numRows * xStride;
  const sStride = <usize>nb << 2;
  const full = numRows & ~3;
  const gA = (oStart + 3) >> 2; // first whole group
  const gB = oEnd >> 2; // end of the whole groups
  if (gA < gB) {
    const groupsPerBlock = max(2, <i32>(<usize>(48 * 1024) / gStride) & ~1);
    for (let gb = gA; gb < gB; gb += groupsPerBlock) {
      const gbEnd = min(gB, gb + groupsPerBlock);
      if (full > 0) {
        touch(w + <usize>gb * gStride, <usize>(gbEnd - gb) * gStride);
        for (let r = 0; r < full; r += 4) {
          tileQ8(out + <usize>r * oStride, oStride, xq + <usize>r * xStride, xStride, s + <usize>r * sStride, sStride, nb, w, gStride, gb, gbEnd);
        }
      }
      for (let r = full; r < numRows; r++) {
        const o = out + <usize>r * oStride, xr = xq + <usize>r * xStride, sr = s + <usize>r * sStride;
        for (let g = gb; g < gbEnd; g++) v128.store(o + (<usize>g << 4), rowGroup(xr, sr, nb, w + <usize>g * gStride));
      }
    }
  }
  // Columns of groups the range cuts (at most two groups).
  const cutA = min(oEnd, gA << 2);
  const cutB = max(gB << 2, cutA);
  for (let r = 0; r < numRows; r++) {
    const o = out + <usize>r * oStride, xr = xq + <usize>r * xStride, sr = s + <usize>r * sStride;
    if (oStart < cutA) storeLanes(o, rowGroup(xr, sr, nb, w + <usize>(oStart >> 2) * gStride), oStart, cutA);
    if (cutB < oEnd) storeLanes(o, rowGroup(xr, sr, nb, w + <usize>(cutB >> 2) * gStride), cutB, oEnd);
  }
}

/** Stores the lanes of v (columns 4g..4g+3 of group g = c0 >> 2) that fall in [c0, c1) at out + column·4. */
function storeLanes(out: usize, v: v128, c0: i32, c1: i32): void {
  const base = c0 & ~3;
  for (let c = c0; c < c1; c++) {
    const lane = c - base;
    const p = out + (<usize>c << 2);
    if (lane == 0) store<f32>(p, f32x4.extract_lane(v, 0));
    else if (lane == 1) store<f32>(p, f32x4.extract_lane(v, 1));
    else if (lane == 2) store<f32>(p, f32x4.extract_lane(v, 2));
    else store<f32>(p, f32x4.extract_lane(v, 3));
  }
}

/** One quantised x row (values xr, scales sr) against one group of W: its 4 columns as one vector. */
function rowGroup(xr: usize, sr: usize, nb: i32, wg: usize): v128 {
  let acc = f32x4.splat(0);
  let xp = xr, sp = sr, wp = wg;
  for (let b = 0; b < nb; b++, wp += R4_BLOCK, sp += 4) {
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0);
    let p = wp + 8;
    for (let j = 0; j < 4; j++, p += 32, xp += 16) {
      a0 = madd(a0, v128.load32_splat(xp), v128.load8x8_s(p));
      a1 = madd(a1, v128.load32_splat(xp, 4), v128.load8x8_s(p, 8));
      a0 = madd(a0, v128.load32_splat(xp, 8), v128.load8x8_s(p, 16));
      a1 = madd(a1, v128.load32_splat(xp, 12), v128.load8x8_s(p, 24));
    }
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(i32x4.add(a0, a1)), f32x4.mul(v128.load32_splat(sp), scales4(wp))));
  }
  return acc;
}

/**
 * 4 x rows × groups [g0, g1), two groups (8 columns) at a time: 8 integer accumulators per block
 * (16 k-pair steps, each: 2 weight loads, 4 broadcast x pairs, 8 dot products), then each row's
 * 8 columns scaled and added to their float accumulators, which live in `out` (in L1; keeping
 * them in registers as well would spill).
 */
function tileQ8(out: usize, oStride: usize, xq: usize, xStride: usize, s: usize, sStride: usize, nb: i32, w: usize, gStride: usize, g0: i32, g1: i32): void {
  const zero = f32x4.splat(0);
  let g = g0;
  for (; g + 2 <= g1; g += 2) {
    const o0 = out + (<usize>g << 4), o1 = o0 + oStride, o2 = o1 + oStride, o3 = o2 + oStride;
    v128.store(o0, zero); v128.store(o0, zero, 16); v128.store(o1, zero); v128.store(o1, zero, 16);
    v128.store(o2, zero); v128.store(o2, zero, 16); v128.store(o3, zero); v128.store(o3, zero, 16);
    let wa = w + <usize>g * gStride;
    let xp = xq, sp = s;
    for (let b = 0; b < nb; b++, wa += R4_BLOCK, sp += 4) {
      let a00 = i32x4.splat(0), a01 = i32x4.splat(0), a10 = i32x4.splat(0), a11 = i32x4.splat(0);
      let a20 = i32x4.splat(0), a21 = i32x4.splat(0), a30 = i32x4.splat(0), a31 = i32x4.splat(0);
      let pa = wa + 8;
      for (let p = 0; p < 16; p++, pa += 8, xp += 4) {
        const u = v128.load8x8_s(pa), v = v128.load8x8_s(pa + gStride);
        let y = v128.load32_splat(xp);
        a00 = madd(a00, y, u); a01 = madd(a01, y, v);
        y = v128.load32_splat(xp + xStride);
        a10 = madd(a10, y, u); a11 = madd(a11, y, v);
        y = v128.load32_splat(xp + 2 * xStride);
        a20 = madd(a20, y, u); a21 = madd(a21, y, v);
        y = v128.load32_splat(xp + 3 * xStride);
        a30 = madd(a30, y, u); a31 = madd(a31, y, v);
      }
      const da = scales4(wa), db = scales4(wa + gStride);
      let d = v128.load32_splat(sp);
      v128.store(o0, f32x4.add(v128.load(o0), f32x4.mul(f32x4.convert_i32x4_s(a00), f32x4.mul(d, da))));
      v128.store(o0, f32x4.add(v128.load(o0, 16), f32x4.mul(f32x4.convert_i32x4_s(a01), f32x4.mul(d, db))), 16);
      d = v128.load32_splat(sp + sStride);
      v128.store(o1, f32x4.add(v128.load(o1), f32x4.mul(f32x4.convert_i32x4_s(a10), f32x4.mul(d, da))));
      v128.store(o1, f32x4.add(v128.load(o1, 16), f32x4.mul(f32x4.convert_i32x4_s(a11), f32x4.mul(d, db))), 16);
      d = v128.load32_splat(sp + 2 * sStride);
      v128.store(o2, f32x4.add(v128.load(o2), f32x4.mul(f32x4.convert_i32x4_s(a20), f32x4.mul(d, da))));
      v128.store(o2, f32x4.add(v128.load(o2, 16), f32x4.mul(f32x4.convert_i32x4_s(a21), f32x4.mul(d, db))), 16);
      d = v128.load32_splat(sp + 3 * sStride);
      v128.store(o3, f32x4.add(v128.load(o3), f32x4.mul(f32x4.convert_i32x4_s(a30), f32x4.mul(d, da))));
      v128.store(o3, f32x4.add(v128.load(o3, 16), f32x4.mul(f32x4.convert_i32x4_s(a31), f32x4.mul(d, db))), 16);
    }
  }
  if (g < g1) {
    // Odd last group: 4 rows × 1 group, accumulators in registers.
    let wa = w + <usize>g * gStride;
    let xp = xq, sp = s;
    let f0 = zero, f1 = zero, f2 = zero, f3 = zero;
    for (let b = 0; b < nb; b++, wa += R4_BLOCK, sp += 4) {
      let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
      let pa = wa + 8;
      for (let p = 0; p < 16; p++, pa += 8, xp += 4) {
        const u = v128.load8x8_s(pa);
        a0 = madd(a0, v128.load32_splat(xp), u);
        a1 = madd(a1, v128.load32_splat(xp + xStride), u);
        a2 = madd(a2, v128.load32_splat(xp + 2 * xStride), u);
        a3 = madd(a3, v128.load32_splat(xp + 3 * xStride), u);
      }
      const da = scales4(wa);
      f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(a0), f32x4.mul(v128.load32_splat(sp), da)));
      f1 = f32x4.add(f1, f32x4.mul(f32x4.convert_i32x4_s(a1), f32x4.mul(v128.load32_splat(sp + sStride), da)));
      f2 = f32x4.add(f2, f32x4.mul(f32x4.convert_i32x4_s(a2), f32x4.mul(v128.load32_splat(sp + 2 * sStride), da)));
      f3 = f32x4.add(f3, f32x4.mul(f32x4.convert_i32x4_s(a3), f32x4.mul(v128.load32_splat(sp + 3 * sStride), da)));
    }
    const o0 = out + (<usize>g << 4);
    v128.store(o0, f0); v128.store(o0 + oStride, f1); v128.store(o0 + 2 * oStride, f2); v128.store(o0 + 3 * oStride, f3);
  }
}

/**
 * The `matmul` entry for Q8_0_R4 weights: quantises x into this instance's scratch slot and runs
 * matmulQ8; when all rows do not fit, a slot's worth of rows at a time.
 */
function matmulQ8Rows(out: usize, x: usize, w: usize, numRows: i32, inDim: i32, outDim: i32, oStart: i32, oEnd: i32): void {
  const perRow = q8ActivationBytes(1, inDim);
  if (perRow > scratchBytes) unreachable();
  const rowsPerPass = <i32>(scratchBytes / perRow);
  for (let r = 0; r < numRows; r += rowsPerPass) {
    const rows = min(rowsPerPass, numRows - r);
    quantizeQ8(scratchPtr, x + (<usize>r * <usize>inDim << 2), rows, inDim);
    matmulQ8(out + (<usize>r * <usize>outDim << 2), scratchPtr, w, rows, inDim, outDim, oStart, oEnd);
  }
}

// ---------------------------------------------------------------------------------------------
// Elementwise and row kernels.

/**
 * Index of the largest of n floats at p, the lowest index among equals; NaN never wins, and a row
 * with nothing above -Infinity gives 0 (what a scalar `if (v > max)` scan from -Infinity returns).
 * Greedy sampling over the vocabulary: a SIMD max pass, then a scan for its first occurrence.
 */
export function argmax(p: usize, n: i32): i32 {
  const n4 = n & ~3;
  // pmax(acc, v) = acc < v ? v : acc keeps acc when v is NaN.
  let m = f32x4.splat(-Infinity);
  const end = p + (<usize>n4 << 2);
  for (let q = p; q < end; q += 16) m = f32x4.pmax(m, v128.load(q));
  let best = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  for (let k = n4; k < n; k++) {
    const v = load<f32>(p + (<usize>k << 2));
    if (v > best) best = v;
  }
  if (best == -Infinity) return 0;
  const bv = f32x4.splat(best);
  let k = 0;
  for (; k < n4; k += 4) {
    if (v128.any_true(f32x4.eq(v128.load(p + (<usize>k << 2)), bv))) break;
  }
  for (; k < n; k++) if (load<f32>(p + (<usize>k << 2)) == best) return k;
  return 0;
}

export function addBias(out: usize, bias: usize, numRows: i32, dim: i32): void {
  const stride = <usize>dim << 2;
  for (let r = 0; r < numRows; r++) add(out + <usize>r * stride, bias, dim);
}

export function add(out: usize, x: usize, n: i32): void {
  const n4 = n & ~3;
  const end = <usize>n4 << 2;
  for (let i: usize = 0; i < end; i += 16) v128.store(out + i, f32x4.add(v128.load(out + i), v128.load(x + i)));
  for (let k = n4; k < n; k++) {
    const p = <usize>k << 2;
    store<f32>(out + p, load<f32>(out + p) + load<f32>(x + p));
  }
}

export function rmsnorm(out: usize, x: usize, weight: usize, numRows: i32, dim: i32, eps: f32): void {
  const stride = <usize>dim << 2;
  const n4 = dim & ~3;
  const end = <usize>n4 << 2;
  for (let r = 0; r < numRows; r++) {
    const xr = x + <usize>r * stride;
    const or = out + <usize>r * stride;
    let a = f32x4.splat(0);
    for (let i: usize = 0; i < end; i += 16) {
      const v = v128.load(xr + i);
      a = fma(a, v, v);
    }
    let ss = hsum(a);
    for (let k = n4; k < dim; k++) {
      const v = load<f32>(xr + (<usize>k << 2));
      ss += v * v;
    }
    const inv = <f32>(1.0 / Math.sqrt(<f64>(ss / <f32>dim) + <f64>eps));
    const iv = f32x4.splat(inv);
    for (let i: usize = 0; i < end; i += 16) {
      v128.store(or + i, f32x4.mul(f32x4.mul(v128.load(xr + i), iv), v128.load(weight + i)));
    }
    for (let k = n4; k < dim; k++) {
      const p = <usize>k << 2;
      store<f32>(or + p, load<f32>(xr + p) * inv * load<f32>(weight + p));
    }
  }
}

export function rope(x: usize, numRows: i32, numHeads: i32, headDim: i32, positions: usize, theta: f64): void {
  const half = headDim >> 1;
  const rowBytes = <usize>(numHeads * headDim) << 2;
  const headBytes = <usize>headDim << 2;
  // Pair-major: the frequency θ^(-2j/headDim) (a pow, the costly part) once per pair for all rows;
  // each row's cos/sin once per pair for all heads.
  for (let j = 0; j < half; j++) {
    const freq = Math.pow(theta, <f64>(-2 * j) / <f64>headDim);
    let row = x + (<usize>j << 3);
    for (let r = 0; r < numRows; r++, row += rowBytes) {
      const angle = <f64>load<i32>(positions + (<usize>r << 2)) * freq;
      const c = <f32>Math.cos(angle);
      const s = <f32>Math.sin(angle);
      let p = row;
      for (let h = 0; h < numHeads; h++, p += headBytes) {
        const x0 = load<f32>(p);
        const x1 = load<f32>(p, 4);
        store<f32>(p, x0 * c - x1 * s);
        store<f32>(p, x0 * s + x1 * c, 4);
      }
    }
  }
}

/**
 * cos/sin of every row's rope angles, once per forward for all layers and for q and k (the trig
 * is what rope costs): table[r][j] = (cos, sin) of positions[r] · theta^(-2j/headDim) as f32,
 * headDim floats per row — the very values `rope` computes.
 */
export function ropeTable(table: usize, positions: usize, numRows: i32, headDim: i32, theta: f64): void {
  const half = headDim >> 1;
  const rowBytes = <usize>headDim << 2;
  for (let j = 0; j < half; j++) {
    const freq = Math.pow(theta, <f64>(-2 * j) / <f64>headDim);
    let p = table + (<usize>j << 3);
    for (let r = 0; r < numRows; r++, p += rowBytes) {
      const angle = <f64>load<i32>(positions + (<usize>r << 2)) * freq;
      store<f32>(p, <f32>Math.cos(angle));
      store<f32>(p, <f32>Math.sin(angle), 4);
    }
  }
}

/** Lanes 0 and 2 negated by xor (a table, not v128.const: see EXP_CONSTS). */
const SIGN_EVEN: usize = memory.data<i32>([0x80000000, 0, 0x80000000, 0], 16);

/** rope with the angles of ropeTable (same rows): the same results as `rope`, bit for bit. */
export function ropeApply(x: usize, numRows: i32, numHeads: i32, headDim: i32, table: usize): void {
  const headBytes = <usize>headDim << 2;
  const hd4 = <usize>(headDim & ~3) << 2;
  let row = x, t = table;
  for (let r = 0; r < numRows; r++, t += headBytes) {
    for (let h = 0; h < numHeads; h++, row += headBytes) {
      let i: usize = 0;
      for (; i < hd4; i += 16) {
        // Two pairs: [x0·c0 − x1·s0, x0·s0 + x1·c0, …] as x·[c0,c0,c1,c1] + [−x1·s0, x0·s0, …]
        // (negation and the order of a two-term sum are exact, so this equals the scalar form).
        const v = v128.load(row + i);
        const cs = v128.load(t + i);
        const c = v128.shuffle<f32>(cs, cs, 0, 0, 2, 2);
        const s = v128.shuffle<f32>(cs, cs, 1, 1, 3, 3);
        const prod = f32x4.mul(v128.shuffle<f32>(v, v, 1, 0, 3, 2), s);
        v128.store(row + i, f32x4.add(f32x4.mul(v, c), v128.xor(prod, v128.load(SIGN_EVEN))));
      }
      for (; i < headBytes; i += 8) {
        const c = load<f32>(t + i), s = load<f32>(t + i, 4);
        const x0 = load<f32>(row + i), x1 = load<f32>(row + i, 4);
        store<f32>(row + i, x0 * c - x1 * s);
        store<f32>(row + i, x0 * s + x1 * c, 4);
      }
    }
  }
}

// exp on f32x4 (Cephes expf): e^x = 2^n · e^r with n = round(x·log2 e), r = x − n·ln 2 (ln 2 split
// in two for accuracy), e^r by a degree-6 polynomial; ≤ 2 ulp over the clamped range, which is
// all the softmax (x ≤ 0) and SiLU need. The TS kernels use Math.exp (tests allow 1e-5 relative).
// The constants come from a static table, not v128.const: V8 rebuilds every v128.const inside a
// loop from a 64-bit immediate (3 instructions each, ~45 per exp4), while a load is one (often
// folded into the arithmetic). Measured: swiglu 2x faster.
const EXP_CONSTS: usize = memory.data<f32>([
  -87.33654, -87.33654, -87.33654, -87.33654,
  88.72283, 88.72283, 88.72283, 88.72283,
  1.44269504088896341, 1.44269504088896341, 1.44269504088896341, 1.44269504088896341,
  ROUND_MAGIC, ROUND_MAGIC, ROUND_MAGIC, ROUND_MAGIC,
  0.693359375, 0.693359375, 0.693359375, 0.693359375,
  -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, -2.12194440e-4,
  1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4,
  1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3,
  8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3,
  4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2,
  1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1,
  5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1,
  1, 1, 1, 1,
], 16);
// i32 lanes: the bits of ROUND_MAGIC, and 127 (the f32 exponent bias).
const EXP_ICONSTS: usize = memory.data<i32>([ROUND_MAGIC_BITS, ROUND_MAGIC_BITS, ROUND_MAGIC_BITS, ROUND_MAGIC_BITS, 127, 127, 127, 127], 16);

// @ts-ignore: decorator
@inline function exp4(x: v128): v128 {
  const c = EXP_CONSTS;
  // pmax/pmin (one instruction each; f32x4.min/max cost several on x86) keep a NaN x.
  x = f32x4.pmin(f32x4.pmax(x, v128.load(c)), v128.load(c, 16));
  // n = round(x·log2 e) (ties to even) and its i32 from one add of 1.5·2^23 (see quantizeQ8).
  const t = f32x4.add(f32x4.mul(x, v128.load(c, 32)), v128.load(c, 48));
  const n = f32x4.sub(t, v128.load(c, 48));
  let r = f32x4.sub(x, f32x4.mul(n, v128.load(c, 64)));
  r = f32x4.sub(r, f32x4.mul(n, v128.load(c, 80)));
  let p = v128.load(c, 96);
  p = f32x4.add(f32x4.mul(p, r), v128.load(c, 112));
  p = f32x4.add(f32x4.mul(p, r), v128.load(c, 128));
  p = f32x4.add(f32x4.mul(p, r), v128.load(c, 144));
  p = f32x4.add(f32x4.mul(p, r), v128.load(c, 160));
  p = f32x4.add(f32x4.mul(p, r), v128.load(c, 176));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), v128.load(c, 192));
  // 2^n: n ∈ [−126, 128]; build 2^(n/2) twice so n = 128 and n = −126 stay representable.
  const ni = i32x4.sub(t, v128.load(EXP_ICONSTS));
  const h = i32x4.shr_s(ni, 1);
  const bias = v128.load(EXP_ICONSTS, 16);
  const e1 = i32x4.shl(i32x4.add(h, bias), 23);
  const e2 = i32x4.shl(i32x4.add(i32x4.sub(ni, h), bias), 23);
  return f32x4.mul(f32x4.mul(p, e1), e2);
}

export function swiglu(out: usize, gate: usize, up: usize, n: i32): void {
  const n4 = n & ~3;
  const end = <usize>n4 << 2;
  let i: usize = 0;
  // Two vectors per iteration: exp4 is one long dependency chain.
  for (; i + 32 <= end; i += 32) {
    const g0 = v128.load(gate + i), g1 = v128.load(gate + i, 16);
    const e0 = exp4(f32x4.neg(g0)), e1 = exp4(f32x4.neg(g1));
    const one = v128.load(EXP_CONSTS, 192);
    v128.store(out + i, f32x4.mul(f32x4.div(g0, f32x4.add(one, e0)), v128.load(up + i)));
    v128.store(out + i, f32x4.mul(f32x4.div(g1, f32x4.add(one, e1)), v128.load(up + i, 16)), 16);
  }
  for (; i < end; i += 16) {
    const g = v128.load(gate + i);
    const e = exp4(f32x4.neg(g));
    v128.store(out + i, f32x4.mul(f32x4.div(g, f32x4.add(v128.load(EXP_CONSTS, 192), e)), v128.load(up + i)));
  }
  for (let k = n4; k < n; k++) {
    const p = <usize>k << 2;
    const g = load<f32>(gate + p);
    store<f32>(out + p, (g / (<f32>1 + Mathf.exp(-g))) * load<f32>(up + p));
  }
}

export function getRow(out: usize, w: usize, wType: i32, row: i32, dim: i32): void {
  if (wType == F32) {
    memory.copy(out, w + <usize>row * (<usize>dim << 2), <usize>dim << 2);
  } else if (wType == F16) {
    const src = w + <usize>row * (<usize>dim << 1);
    const n4 = dim & ~3;
    let k = 0;
    for (; k < n4; k += 4) v128.store(out + (<usize>k << 2), f16x4(src + (<usize>k << 1)));
    for (; k < dim; k++) store<f32>(out + (<usize>k << 2), f16Scalar(src + (<usize>k << 1)));
  } else if (wType == Q8_0_R4) {
    const nb = dim >> 5;
    const c = <usize>(row & 3) << 1;
    let blk = w + <usize>(row >> 2) * <usize>nb * R4_BLOCK;
    let o = out;
    for (let b = 0; b < nb; b++, blk += R4_BLOCK) {
      const d = f16Scalar(blk + c);
      let p = blk + 8 + c;
      for (let k = 0; k < 16; k++, p += 8, o += 8) {
        store<f32>(o, d * <f32>load<i8>(p));
        store<f32>(o, d * <f32>load<i8>(p, 1), 4);
      }
    }
  } else {
    unreachable();
  }
}

// ---------------------------------------------------------------------------------------------
// Paged KV cache: block = blockOffsets[pos / blockTokens] (byte offset); inside a block the layout
// is [layer][K|V][tokenInBlock][kvDim] of f32.

export function writeKv(k: usize, v: usize, blockOffsets: usize, blockTokens: i32, numLayers: i32, layer: i32, kvDim: i32, pos: i32): void {
  const block = <usize>load<u32>(blockOffsets + (<usize>(pos / blockTokens) << 2));
  const t = pos % blockTokens;
  const rowBytes = <usize>kvDim << 2;
  const kDst = block + (<usize>(layer * 2 * blockTokens + t)) * rowBytes;
  const vDst = kDst + <usize>blockTokens * rowBytes;
  memory.copy(kDst, k, rowBytes);
  memory.copy(vDst, v, rowBytes);
}

/** Σ a[i]·b[i] over n floats. */
function dotN(a: usize, b: usize, n: i32): f32 {
  const n4 = n & ~3;
  const end = <usize>n4 << 2;
  let acc = f32x4.splat(0);
  for (let i: usize = 0; i < end; i += 16) acc = fma(acc, v128.load(a + i), v128.load(b + i));
  let s = hsum(acc);
  for (let k = n4; k < n; k++) s += load<f32>(a + (<usize>k << 2)) * load<f32>(b + (<usize>k << 2));
  return s;
}

/** [Σa, Σb, Σc, Σd] of four f32x4 vectors (4 × 4 transpose-add). */
// @ts-ignore: decorator
@inline function reduce4f(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * scores[t] = (q · K[t]) · scale for t in [0, numTokens) of one head (keys at headOff inside each
 * row), 4 tokens at a time within a block; returns the max score.
 */
function attnScores(q: usize, blockOffsets: usize, blockTokens: i32, kOff: usize, headOff: usize, rowBytes: usize,
  headDim: i32, numTokens: i32, scratch: usize, scale: f32): f32 {
  const hd4 = <usize>(headDim & ~3) << 2;
  const sv = f32x4.splat(scale);
  let maxv = f32x4.splat(-Infinity);
  let best: f32 = -Infinity;
  let t = 0;
  for (let b = 0; t < numTokens; b++) {
    let kp = <usize>load<u32>(blockOffsets + (<usize>b << 2)) + kOff + headOff;
    const end = min(numTokens, t + blockTokens);
    for (; t + 4 <= end; t += 4, kp += 4 * rowBytes) {
      const k1 = kp + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let i: usize = 0; i < hd4; i += 16) {
        const qv = v128.load(q + i);
        a0 = fma(a0, qv, v128.load(kp + i));
        a1 = fma(a1, qv, v128.load(k1 + i));
        a2 = fma(a2, qv, v128.load(k2 + i));
        a3 = fma(a3, qv, v128.load(k3 + i));
      }
      let sc = reduce4f(a0, a1, a2, a3);
      if (hd4 < (<usize>headDim << 2)) {
        let r0: f32 = 0, r1: f32 = 0, r2: f32 = 0, r3: f32 = 0;
        for (let i = hd4; i < (<usize>headDim << 2); i += 4) {
          const qs = load<f32>(q + i);
          r0 += qs * load<f32>(kp + i); r1 += qs * load<f32>(k1 + i); r2 += qs * load<f32>(k2 + i); r3 += qs * load<f32>(k3 + i);
        }
        sc = f32x4.add(sc, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(r0), 1, r1), 2, r2), 3, r3));
      }
      sc = f32x4.mul(sc, sv);
      v128.store(scratch + (<usize>t << 2), sc);
      maxv = f32x4.max(maxv, sc);
    }
    for (; t < end; t++, kp += rowBytes) {
      const sc = dotN(q, kp, headDim) * scale;
      store<f32>(scratch + (<usize>t << 2), sc);
      best = max(best, sc);
    }
  }
  return max(best, max(max(f32x4.extract_lane(maxv, 0), f32x4.extract_lane(maxv, 1)), max(f32x4.extract_lane(maxv, 2), f32x4.extract_lane(maxv, 3))));
}

/** scores[t] = exp(scores[t] − max) in place; returns Σ. */
function attnSoftmaxNumerators(scratch: usize, numTokens: i32, max: f32): f32 {
  const n4 = numTokens & ~3;
  const mv = f32x4.splat(max);
  let sv = f32x4.splat(0);
  const end = <usize>n4 << 2;
  for (let i: usize = 0; i < end; i += 16) {
    const e = exp4(f32x4.sub(v128.load(scratch + i), mv));
    v128.store(scratch + i, e);
    sv = f32x4.add(sv, e);
  }
  let sum = hsum(sv);
  for (let u = n4; u < numTokens; u++) {
    const p = scratch + (<usize>u << 2);
    const e = Mathf.exp(load<f32>(p) - max);
    store<f32>(p, e);
    sum += e;
  }
  return sum;
}

/**
 * out[d0 .. d0 + 4·NV) = inv · Σ_t p[t] · V[t][d0 ..] for NV = 8, 4, 2 or 1 vectors, the
 * accumulators held in registers across all tokens (no load/store of out per token).
 */
// @ts-ignore: decorator
@inline function attnValues(out: usize, blockOffsets: usize, blockTokens: i32, vOff: usize, rowBytes: usize, numTokens: i32, scratch: usize, inv: f32, nv: i32): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
  let t = 0;
  for (let b = 0; t < numTokens; b++) {
    let vp = <usize>load<u32>(blockOffsets + (<usize>b << 2)) + vOff;
    const end = min(numTokens, t + blockTokens);
    for (; t < end; t++, vp += rowBytes) {
      const p = f32x4.splat(load<f32>(scratch + (<usize>t << 2)));
      a0 = fma(a0, p, v128.load(vp));
      if (nv >= 2) a1 = fma(a1, p, v128.load(vp, 16));
      if (nv >= 4) {
        a2 = fma(a2, p, v128.load(vp, 32));
        a3 = fma(a3, p, v128.load(vp, 48));
      }
      if (nv >= 8) {
        a4 = fma(a4, p, v128.load(vp, 64)); a5 = fma(a5, p, v128.load(vp, 80));
        a6 = fma(a6, p, v128.load(vp, 96)); a7 = fma(a7, p, v128.load(vp, 112));
      }
    }
  }
  const iv = f32x4.splat(inv);
  v128.store(out, f32x4.mul(a0, iv));
  if (nv >= 2) v128.store(out, f32x4.mul(a1, iv), 16);
  if (nv >= 4) {
    v128.store(out, f32x4.mul(a2, iv), 32);
    v128.store(out, f32x4.mul(a3, iv), 48);
  }
  if (nv >= 8) {
    v128.store(out, f32x4.mul(a4, iv), 64); v128.store(out, f32x4.mul(a5, iv), 80);
    v128.store(out, f32x4.mul(a6, iv), 96); v128.store(out, f32x4.mul(a7, iv), 112);
  }
}

function attnValues8(out: usize, bo: usize, bt: i32, vOff: usize, rb: usize, n: i32, sc: usize, inv: f32): void { attnValues(out, bo, bt, vOff, rb, n, sc, inv, 8); }
function attnValues4(out: usize, bo: usize, bt: i32, vOff: usize, rb: usize, n: i32, sc: usize, inv: f32): void { attnValues(out, bo, bt, vOff, rb, n, sc, inv, 4); }
function attnValues2(out: usize, bo: usize, bt: i32, vOff: usize, rb: usize, n: i32, sc: usize, inv: f32): void { attnValues(out, bo, bt, vOff, rb, n, sc, inv, 2); }
function attnValues1(out: usize, bo: usize, bt: i32, vOff: usize, rb: usize, n: i32, sc: usize, inv: f32): void { attnValues(out, bo, bt, vOff, rb, n, sc, inv, 1); }

export function attention(out: usize, q: usize, blockOffsets: usize, blockTokens: i32, numLayers: i32, layer: i32,
  numHeads: i32, numKvHeads: i32, headDim: i32, pos: i32, scratch: usize, scale: f32): void {
  const kvDim = numKvHeads * headDim;
  const group = numHeads / numKvHeads;
  const rowBytes = <usize>kvDim << 2;
  const kOff = <usize>(layer * 2 * blockTokens) * rowBytes;
  const vOff = kOff + <usize>blockTokens * rowBytes;
  const headBytes = <usize>headDim << 2;
  const hd4 = headDim & ~3;
  const numTokens = pos + 1;
  for (let h = 0; h < numHeads; h++) {
    const qh = q + <usize>h * headBytes;
    const headOff = <usize>(h / group) * headBytes;
    const max = attnScores(qh, blockOffsets, blockTokens, kOff, headOff, rowBytes, headDim, numTokens, scratch, scale);
    const inv = <f32>1 / attnSoftmaxNumerators(scratch, numTokens, max);
    const oh = out + <usize>h * headBytes;
    let d = 0;
    for (; d + 32 <= hd4; d += 32) attnValues8(oh + (<usize>d << 2), blockOffsets, blockTokens, vOff + headOff + (<usize>d << 2), rowBytes, numTokens, scratch, inv);
    if (d + 16 <= hd4) { attnValues4(oh + (<usize>d << 2), blockOffsets, blockTokens, vOff + headOff + (<usize>d << 2), rowBytes, numTokens, scratch, inv); d += 16; }
    if (d + 8 <= hd4) { attnValues2(oh + (<usize>d << 2), blockOffsets, blockTokens, vOff + headOff + (<usize>d << 2), rowBytes, numTokens, scratch, inv); d += 8; }
    if (d + 4 <= hd4) { attnValues1(oh + (<usize>d << 2), blockOffsets, blockTokens, vOff + headOff + (<usize>d << 2), rowBytes, numTokens, scratch, inv); d += 4; }
    for (; d < headDim; d++) {
      // Scalar tail for head widths that are not a multiple of 4.
      let acc: f32 = 0;
      let t = 0;
      for (let b = 0; t < numTokens; b++) {
        let vp = <usize>load<u32>(blockOffsets + (<usize>b << 2)) + vOff + headOff + (<usize>d << 2);
        const end = min(numTokens, t + blockTokens);
        for (; t < end; t++, vp += rowBytes) acc += load<f32>(scratch + (<usize>t << 2)) * load<f32>(vp);
      }
      store<f32>(oh + (<usize>d << 2), acc * inv);
    }
  }
}
/**
 * `attention` for rows [rowStart, rowEnd) of a batch (one call instead of one per row, and the unit
 * a helper thread takes a share of): row r's query at q + r·qBytes, its output at out + r·qBytes,
 * its position at positions[r], its block table at rowTables[r] (u32) with rowBlockTokens[r] (i32)
 * tokens per block.
 */
export function attentionRows(out: usize, q: usize, rowTables: usize, rowBlockTokens: usize, positions: usize, rowStart: i32, rowEnd: i32,
  numLayers: i32, layer: i32, numHeads: i32, numKvHeads: i32, headDim: i32, scratch: usize, scale: f32): void {
  const qBytes = <usize>(numHeads * headDim) << 2;
  for (let r = rowStart; r < rowEnd; r++) {
    const ri = <usize>r << 2;
    attention(out + <usize>r * qBytes, q + <usize>r * qBytes, <usize>load<u32>(rowTables + ri), load<i32>(rowBlockTokens + ri), numLayers, layer,
      numHeads, numKvHeads, headDim, load<i32>(positions + ri), scratch, scale);
  }
}
