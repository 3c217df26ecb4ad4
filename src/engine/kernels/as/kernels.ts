// AssemblyScript compute kernels → WASM SIMD (f32x4). Compiled by scripts/build-kernels.mjs.
// Contract and semantics: src/engine/kernels/types.ts (the `Kernels` interface); the scalar
// reference is src/engine/kernels/ts-kernels.ts. All pointers are byte offsets into the imported
// memory. Nothing here allocates or keeps state in memory, so several threads can run kernels on
// one shared memory at once (each thread has its own instance; static data is read-only).

const F32: i32 = 0;
const F16: i32 = 1;
const Q8_0: i32 = 8;
const Q8_BLOCK: usize = 34;

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
// matmul: out[r][o] = Σ_i x[r][i]·W[o][i]. Register tile: 4 x rows × 2 W rows (8 f32x4
// accumulators), so each loaded weight vector is used 4 times and each x vector twice. Rows left
// over (numRows % 4, and the whole of B = 1 decode) use 1 x row × 4 W rows.

export function matmul(out: usize, x: usize, w: usize, wType: i32, numRows: i32, inDim: i32, outDim: i32, oStart: i32, oEnd: i32): void {
  if (wType == F32) matmulF32(out, x, w, numRows, inDim, outDim, oStart, oEnd);
  else if (wType == F16) matmulF16(out, x, w, numRows, inDim, outDim, oStart, oEnd);
  else if (wType == Q8_0) matmulQ8(out, x, w, numRows, inDim, outDim, oStart, oEnd);
  else unreachable();
}

// ----- F32 -----

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

/** One x row against W rows [oStart, oEnd): 4 W rows at a time (the B = 1 decode path). */
function rowF32(out: usize, x: usize, w: usize, inDim: i32, oStart: i32, oEnd: i32): void {
  const wStride = <usize>inDim << 2;
  const in4 = inDim & ~3;
  const end = <usize>in4 << 2;
  let o = oStart;
  for (; o + 4 <= oEnd; o += 4) {
    const w0 = w + <usize>o * wStride, w1 = w0 + wStride, w2 = w1 + wStride, w3 = w2 + wStride;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let i: usize = 0; i < end; i += 16) {
      const xv = v128.load(x + i);
      a0 = fma(a0, xv, v128.load(w0 + i));
      a1 = fma(a1, xv, v128.load(w1 + i));
      a2 = fma(a2, xv, v128.load(w2 + i));
      a3 = fma(a3, xv, v128.load(w3 + i));
    }
    let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (let k = in4; k < inDim; k++) {
      const kb = <usize>k << 2;
      const y = load<f32>(x + kb);
      s0 += y * load<f32>(w0 + kb); s1 += y * load<f32>(w1 + kb);
      s2 += y * load<f32>(w2 + kb); s3 += y * load<f32>(w3 + kb);
    }
    const ob = out + (<usize>o << 2);
    store<f32>(ob, s0); store<f32>(ob, s1, 4); store<f32>(ob, s2, 8); store<f32>(ob, s3, 12);
  }
  for (; o < oEnd; o++) store<f32>(out + (<usize>o << 2), dotF32(x, w + <usize>o * wStride, inDim));
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

function rowF16(out: usize, x: usize, w: usize, inDim: i32, oStart: i32, oEnd: i32): void {
  const wStride = <usize>inDim << 1;
  const in4 = inDim & ~3;
  const end = <usize>in4 << 2;
  let o = oStart;
  for (; o + 4 <= oEnd; o += 4) {
    const w0 = w + <usize>o * wStride, w1 = w0 + wStride, w2 = w1 + wStride, w3 = w2 + wStride;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let iw: usize = 0;
    for (let i: usize = 0; i < end; i += 16, iw += 8) {
      const xv = v128.load(x + i);
      a0 = fma(a0, xv, f16x4(w0 + iw));
      a1 = fma(a1, xv, f16x4(w1 + iw));
      a2 = fma(a2, xv, f16x4(w2 + iw));
      a3 = fma(a3, xv, f16x4(w3 + iw));
    }
    let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (let k = in4; k < inDim; k++) {
      const y = load<f32>(x + (<usize>k << 2));
      const kw = <usize>k << 1;
      s0 += y * f16Scalar(w0 + kw); s1 += y * f16Scalar(w1 + kw);
      s2 += y * f16Scalar(w2 + kw); s3 += y * f16Scalar(w3 + kw);
    }
    const ob = out + (<usize>o << 2);
    store<f32>(ob, s0); store<f32>(ob, s1, 4); store<f32>(ob, s2, 8); store<f32>(ob, s3, 12);
  }
  for (; o < oEnd; o++) store<f32>(out + (<usize>o << 2), dotF16(x, w + <usize>o * wStride, inDim));
}

// ----- Q8_0 (34-byte blocks: f16 d, 32 × i8; dequantised on the fly as f32(q)·d, exact in f32) -----

/** 8 int8 at p → two f32x4 (low 4, high 4), each × d. */
// @ts-ignore: decorator
@inline function q8lo(p: usize, d: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v128.load8x8_s(p))), d);
}
// @ts-ignore: decorator
@inline function q8hi(p: usize, d: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(v128.load8x8_s(p))), d);
}

function matmulQ8(out: usize, x: usize, w: usize, numRows: i32, inDim: i32, outDim: i32, oStart: i32, oEnd: i32): void {
  const xStride = <usize>inDim << 2;
  const oStride = <usize>outDim << 2;
  const numBlocks = inDim >> 5;
  const wStride = <usize>numBlocks * Q8_BLOCK;
  const full = numRows & ~3;
  const colsPerBlock = blockColumns(wStride);
  for (let ob = oStart; ob < oEnd; ob += colsPerBlock) {
  const obEnd = min(oEnd, ob + colsPerBlock);
  for (let r = 0; r < full; r += 4) {
    const x0 = x + <usize>r * xStride;
    const out0 = out + <usize>r * oStride;
    let o = ob;
    for (; o + 2 <= obEnd; o += 2) {
      let b0 = w + <usize>o * wStride;
      let b1 = b0 + wStride;
      const x1 = x0 + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      let xi: usize = 0;
      for (let b = 0; b < numBlocks; b++, b0 += Q8_BLOCK, b1 += Q8_BLOCK) {
        const d0 = f32x4.splat(f16Scalar(b0));
        const d1 = f32x4.splat(f16Scalar(b1));
        for (let j: usize = 0; j < 32; j += 8, xi += 32) {
          const v0l = q8lo(b0 + 2 + j, d0), v0h = q8hi(b0 + 2 + j, d0);
          const v1l = q8lo(b1 + 2 + j, d1), v1h = q8hi(b1 + 2 + j, d1);
          let xv = v128.load(x0 + xi);
          a00 = fma(a00, xv, v0l); a01 = fma(a01, xv, v1l);
          xv = v128.load(x0 + xi, 16);
          a00 = fma(a00, xv, v0h); a01 = fma(a01, xv, v1h);
          xv = v128.load(x1 + xi);
          a10 = fma(a10, xv, v0l); a11 = fma(a11, xv, v1l);
          xv = v128.load(x1 + xi, 16);
          a10 = fma(a10, xv, v0h); a11 = fma(a11, xv, v1h);
          xv = v128.load(x2 + xi);
          a20 = fma(a20, xv, v0l); a21 = fma(a21, xv, v1l);
          xv = v128.load(x2 + xi, 16);
          a20 = fma(a20, xv, v0h); a21 = fma(a21, xv, v1h);
          xv = v128.load(x3 + xi);
          a30 = fma(a30, xv, v0l); a31 = fma(a31, xv, v1l);
          xv = v128.load(x3 + xi, 16);
          a30 = fma(a30, xv, v0h); a31 = fma(a31, xv, v1h);
        }
      }
      const ob = out0 + (<usize>o << 2);
      store<f32>(ob, hsum(a00)); store<f32>(ob, hsum(a01), 4);
      store<f32>(ob + oStride, hsum(a10)); store<f32>(ob + oStride, hsum(a11), 4);
      store<f32>(ob + 2 * oStride, hsum(a20)); store<f32>(ob + 2 * oStride, hsum(a21), 4);
      store<f32>(ob + 3 * oStride, hsum(a30)); store<f32>(ob + 3 * oStride, hsum(a31), 4);
    }
    for (; o < obEnd; o++) {
      const w0 = w + <usize>o * wStride;
      for (let rr = 0; rr < 4; rr++) {
        store<f32>(out0 + <usize>rr * oStride + (<usize>o << 2), dotQ8(x0 + <usize>rr * xStride, w0, numBlocks));
      }
    }
  }
  for (let r = full; r < numRows; r++) rowQ8(out + <usize>r * oStride, x + <usize>r * xStride, w, numBlocks, ob, obEnd);
  }
}

function dotQ8(x: usize, w: usize, numBlocks: i32): f32 {
  let a = f32x4.splat(0);
  let xi: usize = 0;
  let b0 = w;
  for (let b = 0; b < numBlocks; b++, b0 += Q8_BLOCK) {
    const d = f32x4.splat(f16Scalar(b0));
    for (let j: usize = 0; j < 32; j += 8, xi += 32) {
      a = fma(a, v128.load(x + xi), q8lo(b0 + 2 + j, d));
      a = fma(a, v128.load(x + xi, 16), q8hi(b0 + 2 + j, d));
    }
  }
  return hsum(a);
}

function rowQ8(out: usize, x: usize, w: usize, numBlocks: i32, oStart: i32, oEnd: i32): void {
  const wStride = <usize>numBlocks * Q8_BLOCK;
  let o = oStart;
  for (; o + 4 <= oEnd; o += 4) {
    let b0 = w + <usize>o * wStride;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let xi: usize = 0;
    for (let b = 0; b < numBlocks; b++, b0 += Q8_BLOCK) {
      const b1 = b0 + wStride, b2 = b1 + wStride, b3 = b2 + wStride;
      const d0 = f32x4.splat(f16Scalar(b0)), d1 = f32x4.splat(f16Scalar(b1));
      const d2 = f32x4.splat(f16Scalar(b2)), d3 = f32x4.splat(f16Scalar(b3));
      for (let j: usize = 0; j < 32; j += 8, xi += 32) {
        const xl = v128.load(x + xi), xh = v128.load(x + xi, 16);
        a0 = fma(fma(a0, xl, q8lo(b0 + 2 + j, d0)), xh, q8hi(b0 + 2 + j, d0));
        a1 = fma(fma(a1, xl, q8lo(b1 + 2 + j, d1)), xh, q8hi(b1 + 2 + j, d1));
        a2 = fma(fma(a2, xl, q8lo(b2 + 2 + j, d2)), xh, q8hi(b2 + 2 + j, d2));
        a3 = fma(fma(a3, xl, q8lo(b3 + 2 + j, d3)), xh, q8hi(b3 + 2 + j, d3));
      }
    }
    const ob = out + (<usize>o << 2);
    store<f32>(ob, hsum(a0)); store<f32>(ob, hsum(a1), 4); store<f32>(ob, hsum(a2), 8); store<f32>(ob, hsum(a3), 12);
  }
  for (; o < oEnd; o++) store<f32>(out + (<usize>o << 2), dotQ8(x, w + <usize>o * wStride, numBlocks));
}

// ---------------------------------------------------------------------------------------------
// Elementwise and row kernels.

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
  for (let r = 0; r < numRows; r++) {
    const pos = <f64>load<i32>(positions + (<usize>r << 2));
    const row = x + <usize>r * rowBytes;
    // Angles depend on the pair index only, so each cos/sin is computed once and applied to every head.
    for (let j = 0; j < half; j++) {
      const angle = pos * Math.pow(theta, <f64>(-2 * j) / <f64>headDim);
      const c = <f32>Math.cos(angle);
      const s = <f32>Math.sin(angle);
      let p = row + (<usize>j << 3);
      for (let h = 0; h < numHeads; h++, p += headBytes) {
        const x0 = load<f32>(p);
        const x1 = load<f32>(p, 4);
        store<f32>(p, x0 * c - x1 * s);
        store<f32>(p, x0 * s + x1 * c, 4);
      }
    }
  }
}

export function swiglu(out: usize, gate: usize, up: usize, n: i32): void {
  for (let k = 0; k < n; k++) {
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
  } else if (wType == Q8_0) {
    const numBlocks = dim >> 5;
    let b0 = w + <usize>row * <usize>numBlocks * Q8_BLOCK;
    let o = out;
    for (let b = 0; b < numBlocks; b++, b0 += Q8_BLOCK) {
      const d = f32x4.splat(f16Scalar(b0));
      for (let j: usize = 0; j < 32; j += 8, o += 32) {
        v128.store(o, q8lo(b0 + 2 + j, d));
        v128.store(o, q8hi(b0 + 2 + j, d), 16);
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

function dotN(a: usize, b: usize, n: i32): f32 {
  const n4 = n & ~3;
  const end = <usize>n4 << 2;
  let acc = f32x4.splat(0);
  for (let i: usize = 0; i < end; i += 16) acc = fma(acc, v128.load(a + i), v128.load(b + i));
  let s = hsum(acc);
  for (let k = n4; k < n; k++) s += load<f32>(a + (<usize>k << 2)) * load<f32>(b + (<usize>k << 2));
  return s;
}

/** out[0..n) += p · v[0..n). */
function axpy(out: usize, v: usize, p: f32, n: i32): void {
  const n4 = n & ~3;
  const end = <usize>n4 << 2;
  const pv = f32x4.splat(p);
  for (let i: usize = 0; i < end; i += 16) v128.store(out + i, fma(v128.load(out + i), pv, v128.load(v + i)));
  for (let k = n4; k < n; k++) {
    const q = <usize>k << 2;
    store<f32>(out + q, load<f32>(out + q) + p * load<f32>(v + q));
  }
}

export function attention(out: usize, q: usize, blockOffsets: usize, blockTokens: i32, numLayers: i32, layer: i32,
  numHeads: i32, numKvHeads: i32, headDim: i32, pos: i32, scratch: usize, scale: f32): void {
  const kvDim = numKvHeads * headDim;
  const group = numHeads / numKvHeads;
  const rowBytes = <usize>kvDim << 2;
  const kOff = <usize>(layer * 2 * blockTokens) * rowBytes;
  const vOff = kOff + <usize>blockTokens * rowBytes;
  const headBytes = <usize>headDim << 2;
  const numTokens = pos + 1;
  for (let h = 0; h < numHeads; h++) {
    const qh = q + <usize>h * headBytes;
    const headOff = <usize>(h / group) * headBytes;
    let max: f32 = -Infinity;
    let t = 0;
    for (let b = 0; t < numTokens; b++) {
      let kp = <usize>load<u32>(blockOffsets + (<usize>b << 2)) + kOff + headOff;
      const end = min(numTokens, t + blockTokens);
      for (; t < end; t++, kp += rowBytes) {
        const s = dotN(qh, kp, headDim) * scale;
        store<f32>(scratch + (<usize>t << 2), s);
        if (s > max) max = s;
      }
    }
    let sum: f32 = 0;
    for (let u = 0; u < numTokens; u++) {
      const p = scratch + (<usize>u << 2);
      const e = Mathf.exp(load<f32>(p) - max);
      store<f32>(p, e);
      sum += e;
    }
    const inv = <f32>1 / sum;
    const oh = out + <usize>h * headBytes;
    memory.fill(oh, 0, headBytes);
    t = 0;
    for (let b = 0; t < numTokens; b++) {
      let vp = <usize>load<u32>(blockOffsets + (<usize>b << 2)) + vOff + headOff;
      const end = min(numTokens, t + blockTokens);
      for (; t < end; t++, vp += rowBytes) axpy(oh, vp, load<f32>(scratch + (<usize>t << 2)) * inv, headDim);
    }
  }
}
