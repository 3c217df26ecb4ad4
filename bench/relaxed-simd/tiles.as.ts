// AssemblyScript (compiled by run.mjs with --enable relaxed-simd; excluded from tsc): the 4-row ×
// 2-group Q8_0 tile of src/engine/kernels/as/kernels.ts (tileP, same code) against variants built on
// WASM relaxed SIMD's i8 dot products, to decide whether relaxed SIMD pays for q8_0 prefill.
// relaxed_dot_i8x16_i7x16 needs its second operand in 0..127, so the weights' sign moves onto x
// (llama.cpp's AVX2 trick): dot(x·sign(w), |w|). The variants' weights are regrouped in k-quads
// (block = 4 f16 scales, then 8 × 16 bytes: rows c = 0..3 × values 4q..4q+3) and x is i8.
//   A  : in-loop |w| and sign mask, i32x4.relaxed_dot_i8x16_i7x16_add_s
//   A2 : as A, but i16x8.relaxed_dot_i8x16_i7x16_s + i32x4.dot_i16x8_s against ones kept in a
//        register (V8 11.3 rebuilds the ones vector of the _add_s lowering before every dot)
//   A3 : as A2 with |w| and the mask precomputed at load (264-byte blocks)
//   A4 : as A2, 4 rows × 1 group (half the accumulators)
//   G  : no sign trick: x split into max(x, 0) and max(-x, 0), two i16 dots subtracted
const R4: usize = 136;
// @ts-ignore
@inline function madd(acc: v128, a: v128, b: v128): v128 { return i32x4.add(acc, i32x4.dot_i16x8_s(a, b)); }
// @ts-ignore
@inline function f16x4(ptr: usize): v128 {
  const v = v128.load16x4_s(ptr);
  return f32x4.mul(v128.and(i32x4.shl(v, 13), i32x4.splat(0x8fffe000)), f32x4.splat(5.192296858534828e+33));
}
// @ts-ignore
@inline function epi(o: usize, a0: v128, a1: v128, d: v128, da: v128, db: v128): void {
  v128.store(o, f32x4.add(v128.load(o), f32x4.mul(f32x4.convert_i32x4_s(a0), f32x4.mul(d, da))));
  v128.store(o, f32x4.add(v128.load(o, 16), f32x4.mul(f32x4.convert_i32x4_s(a1), f32x4.mul(d, db))), 16);
}
// tileP = tileQ8's 4×2 part (kernels.ts). xq: i16 values [row][inDim]; scales s f32 [row][nb]
export function tileP(out: usize, oStride: usize, xq: usize, xStride: usize, s: usize, sStride: usize, nb: i32, w: usize, gStride: usize, g0: i32, g1: i32): void {
  const zero = f32x4.splat(0);
  for (let g = g0; g + 2 <= g1; g += 2) {
    const o0 = out + (<usize>g << 4), o1 = o0 + oStride, o2 = o1 + oStride, o3 = o2 + oStride;
    v128.store(o0, zero); v128.store(o0, zero, 16); v128.store(o1, zero); v128.store(o1, zero, 16);
    v128.store(o2, zero); v128.store(o2, zero, 16); v128.store(o3, zero); v128.store(o3, zero, 16);
    let wa = w + <usize>g * gStride;
    let xp = xq, sp = s;
    for (let b = 0; b < nb; b++, wa += R4, sp += 4) {
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
      const da = f16x4(wa), db = f16x4(wa + gStride);
      epi(o0, a00, a01, v128.load32_splat(sp), da, db);
      epi(o1, a10, a11, v128.load32_splat(sp + sStride), da, db);
      epi(o2, a20, a21, v128.load32_splat(sp + 2 * sStride), da, db);
      epi(o3, a30, a31, v128.load32_splat(sp + 3 * sStride), da, db);
    }
  }
}
// @ts-ignore
@inline function rd(acc: v128, y: v128, m: v128, ua: v128): v128 {
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(i8x16.sub(v128.xor(y, m), m), ua, acc);
}
export function tileA(out: usize, oStride: usize, xq: usize, xStride: usize, s: usize, sStride: usize, nb: i32, w: usize, gStride: usize, g0: i32, g1: i32): void {
  const zero = f32x4.splat(0);
  for (let g = g0; g + 2 <= g1; g += 2) {
    const o0 = out + (<usize>g << 4), o1 = o0 + oStride, o2 = o1 + oStride, o3 = o2 + oStride;
    v128.store(o0, zero); v128.store(o0, zero, 16); v128.store(o1, zero); v128.store(o1, zero, 16);
    v128.store(o2, zero); v128.store(o2, zero, 16); v128.store(o3, zero); v128.store(o3, zero, 16);
    let wa = w + <usize>g * gStride;
    let xp = xq, sp = s;
    for (let b = 0; b < nb; b++, wa += R4, sp += 4) {
      let a00 = i32x4.splat(0), a01 = i32x4.splat(0), a10 = i32x4.splat(0), a11 = i32x4.splat(0);
      let a20 = i32x4.splat(0), a21 = i32x4.splat(0), a30 = i32x4.splat(0), a31 = i32x4.splat(0);
      let pa = wa + 8;
      for (let p = 0; p < 8; p++, pa += 16, xp += 4) {
        const u = v128.load(pa), v = v128.load(pa + gStride);
        const z = i8x16.splat(0);
        const mu = i8x16.gt_s(z, u), mv = i8x16.gt_s(z, v);
        const uu = i8x16.abs(u), uv = i8x16.abs(v);
        let y = v128.load32_splat(xp);
        a00 = rd(a00, y, mu, uu); a01 = rd(a01, y, mv, uv);
        y = v128.load32_splat(xp + xStride);
        a10 = rd(a10, y, mu, uu); a11 = rd(a11, y, mv, uv);
        y = v128.load32_splat(xp + 2 * xStride);
        a20 = rd(a20, y, mu, uu); a21 = rd(a21, y, mv, uv);
        y = v128.load32_splat(xp + 3 * xStride);
        a30 = rd(a30, y, mu, uu); a31 = rd(a31, y, mv, uv);
      }
      const da = f16x4(wa), db = f16x4(wa + gStride);
      epi(o0, a00, a01, v128.load32_splat(sp), da, db);
      epi(o1, a10, a11, v128.load32_splat(sp + sStride), da, db);
      epi(o2, a20, a21, v128.load32_splat(sp + 2 * sStride), da, db);
      epi(o3, a30, a31, v128.load32_splat(sp + 3 * sStride), da, db);
    }
  }
}
const ONES = memory.data<i16>([1,1,1,1,1,1,1,1], 16);
// @ts-ignore
@inline function rd2(ones: v128, acc: v128, y: v128, m: v128, ua: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(i8x16.sub(v128.xor(y, m), m), ua), ones));
}
export function tileA2(out: usize, oStride: usize, xq: usize, xStride: usize, s: usize, sStride: usize, nb: i32, w: usize, gStride: usize, g0: i32, g1: i32): void {
  const zero = f32x4.splat(0);
  const ones = v128.load(ONES);
  for (let g = g0; g + 2 <= g1; g += 2) {
    const o0 = out + (<usize>g << 4), o1 = o0 + oStride, o2 = o1 + oStride, o3 = o2 + oStride;
    v128.store(o0, zero); v128.store(o0, zero, 16); v128.store(o1, zero); v128.store(o1, zero, 16);
    v128.store(o2, zero); v128.store(o2, zero, 16); v128.store(o3, zero); v128.store(o3, zero, 16);
    let wa = w + <usize>g * gStride;
    let xp = xq, sp = s;
    for (let b = 0; b < nb; b++, wa += R4, sp += 4) {
      let a00 = i32x4.splat(0), a01 = i32x4.splat(0), a10 = i32x4.splat(0), a11 = i32x4.splat(0);
      let a20 = i32x4.splat(0), a21 = i32x4.splat(0), a30 = i32x4.splat(0), a31 = i32x4.splat(0);
      let pa = wa + 8;
      for (let p = 0; p < 8; p++, pa += 16, xp += 4) {
        const u = v128.load(pa), v = v128.load(pa + gStride);
        const z = i8x16.splat(0);
        const mu = i8x16.gt_s(z, u), mv = i8x16.gt_s(z, v);
        const uu = i8x16.abs(u), uv = i8x16.abs(v);
        let y = v128.load32_splat(xp);
        a00 = rd2(ones, a00, y, mu, uu); a01 = rd2(ones, a01, y, mv, uv);
        y = v128.load32_splat(xp + xStride);
        a10 = rd2(ones, a10, y, mu, uu); a11 = rd2(ones, a11, y, mv, uv);
        y = v128.load32_splat(xp + 2 * xStride);
        a20 = rd2(ones, a20, y, mu, uu); a21 = rd2(ones, a21, y, mv, uv);
        y = v128.load32_splat(xp + 3 * xStride);
        a30 = rd2(ones, a30, y, mu, uu); a31 = rd2(ones, a31, y, mv, uv);
      }
      const da = f16x4(wa), db = f16x4(wa + gStride);
      epi(o0, a00, a01, v128.load32_splat(sp), da, db);
      epi(o1, a10, a11, v128.load32_splat(sp + sStride), da, db);
      epi(o2, a20, a21, v128.load32_splat(sp + 2 * sStride), da, db);
      epi(o3, a30, a31, v128.load32_splat(sp + 3 * sStride), da, db);
    }
  }
}
// G: w quads signed (first operand), x split xp (at xq) / xn (at xq + xnOff), both 0..127.
// @ts-ignore
@inline function rg(acc: v128, u: v128, yp: v128, yn: v128): v128 {
  const t = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(u, yp), i16x8.relaxed_dot_i8x16_i7x16_s(u, yn));
  return i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(t));
}
export function tileG(out: usize, oStride: usize, xq: usize, xStride: usize, s: usize, sStride: usize, nb: i32, w: usize, gStride: usize, g0: i32, g1: i32, xnOff: usize): void {
  const zero = f32x4.splat(0);
  for (let g = g0; g + 2 <= g1; g += 2) {
    const o0 = out + (<usize>g << 4), o1 = o0 + oStride, o2 = o1 + oStride, o3 = o2 + oStride;
    v128.store(o0, zero); v128.store(o0, zero, 16); v128.store(o1, zero); v128.store(o1, zero, 16);
    v128.store(o2, zero); v128.store(o2, zero, 16); v128.store(o3, zero); v128.store(o3, zero, 16);
    let wa = w + <usize>g * gStride;
    let xp = xq, sp = s;
    for (let b = 0; b < nb; b++, wa += R4, sp += 4) {
      let a00 = i32x4.splat(0), a01 = i32x4.splat(0), a10 = i32x4.splat(0), a11 = i32x4.splat(0);
      let a20 = i32x4.splat(0), a21 = i32x4.splat(0), a30 = i32x4.splat(0), a31 = i32x4.splat(0);
      let pa = wa + 8;
      for (let p = 0; p < 8; p++, pa += 16, xp += 4) {
        const u = v128.load(pa), v = v128.load(pa + gStride);
        let y = v128.load32_splat(xp), yn = v128.load32_splat(xp + xnOff);
        a00 = rg(a00, u, y, yn); a01 = rg(a01, v, y, yn);
        y = v128.load32_splat(xp + xStride); yn = v128.load32_splat(xp + xStride + xnOff);
        a10 = rg(a10, u, y, yn); a11 = rg(a11, v, y, yn);
        y = v128.load32_splat(xp + 2 * xStride); yn = v128.load32_splat(xp + 2 * xStride + xnOff);
        a20 = rg(a20, u, y, yn); a21 = rg(a21, v, y, yn);
        y = v128.load32_splat(xp + 3 * xStride); yn = v128.load32_splat(xp + 3 * xStride + xnOff);
        a30 = rg(a30, u, y, yn); a31 = rg(a31, v, y, yn);
      }
      const da = f16x4(wa), db = f16x4(wa + gStride);
      epi(o0, a00, a01, v128.load32_splat(sp), da, db);
      epi(o1, a10, a11, v128.load32_splat(sp + sStride), da, db);
      epi(o2, a20, a21, v128.load32_splat(sp + 2 * sStride), da, db);
      epi(o3, a30, a31, v128.load32_splat(sp + 3 * sStride), da, db);
    }
  }
}
// A3: precomputed |w| and sign mask per quad: block = 8 + 8 × 32 bytes.
const R3: usize = 264;
export function tileA3(out: usize, oStride: usize, xq: usize, xStride: usize, s: usize, sStride: usize, nb: i32, w: usize, gStride: usize, g0: i32, g1: i32): void {
  const zero = f32x4.splat(0);
  const ones = v128.load(ONES);
  for (let g = g0; g + 2 <= g1; g += 2) {
    const o0 = out + (<usize>g << 4), o1 = o0 + oStride, o2 = o1 + oStride, o3 = o2 + oStride;
    v128.store(o0, zero); v128.store(o0, zero, 16); v128.store(o1, zero); v128.store(o1, zero, 16);
    v128.store(o2, zero); v128.store(o2, zero, 16); v128.store(o3, zero); v128.store(o3, zero, 16);
    let wa = w + <usize>g * gStride;
    let xp = xq, sp = s;
    for (let b = 0; b < nb; b++, wa += R3, sp += 4) {
      let a00 = i32x4.splat(0), a01 = i32x4.splat(0), a10 = i32x4.splat(0), a11 = i32x4.splat(0);
      let a20 = i32x4.splat(0), a21 = i32x4.splat(0), a30 = i32x4.splat(0), a31 = i32x4.splat(0);
      let pa = wa + 8;
      for (let p = 0; p < 8; p++, pa += 32, xp += 4) {
        const uu = v128.load(pa), mu = v128.load(pa, 16), uv = v128.load(pa + gStride), mv = v128.load(pa + gStride, 16);
        let y = v128.load32_splat(xp);
        a00 = rd2(ones, a00, y, mu, uu); a01 = rd2(ones, a01, y, mv, uv);
        y = v128.load32_splat(xp + xStride);
        a10 = rd2(ones, a10, y, mu, uu); a11 = rd2(ones, a11, y, mv, uv);
        y = v128.load32_splat(xp + 2 * xStride);
        a20 = rd2(ones, a20, y, mu, uu); a21 = rd2(ones, a21, y, mv, uv);
        y = v128.load32_splat(xp + 3 * xStride);
        a30 = rd2(ones, a30, y, mu, uu); a31 = rd2(ones, a31, y, mv, uv);
      }
      const da = f16x4(wa), db = f16x4(wa + gStride);
      epi(o0, a00, a01, v128.load32_splat(sp), da, db);
      epi(o1, a10, a11, v128.load32_splat(sp + sStride), da, db);
      epi(o2, a20, a21, v128.load32_splat(sp + 2 * sStride), da, db);
      epi(o3, a30, a31, v128.load32_splat(sp + 3 * sStride), da, db);
    }
  }
}
// A4: 4 rows × 1 group, in-loop sign, float accumulators in registers.
export function tileA4(out: usize, oStride: usize, xq: usize, xStride: usize, s: usize, sStride: usize, nb: i32, w: usize, gStride: usize, g0: i32, g1: i32): void {
  const zero = f32x4.splat(0);
  const ones = v128.load(ONES);
  for (let g = g0; g < g1; g++) {
    let wa = w + <usize>g * gStride;
    let xp = xq, sp = s;
    let f0 = zero, f1 = zero, f2 = zero, f3 = zero;
    for (let b = 0; b < nb; b++, wa += R4, sp += 4) {
      let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
      let pa = wa + 8;
      for (let p = 0; p < 8; p++, pa += 16, xp += 4) {
        const u = v128.load(pa);
        const mu = i8x16.gt_s(i8x16.splat(0), u), uu = i8x16.abs(u);
        a0 = rd2(ones, a0, v128.load32_splat(xp), mu, uu);
        a1 = rd2(ones, a1, v128.load32_splat(xp + xStride), mu, uu);
        a2 = rd2(ones, a2, v128.load32_splat(xp + 2 * xStride), mu, uu);
        a3 = rd2(ones, a3, v128.load32_splat(xp + 3 * xStride), mu, uu);
      }
      const da = f16x4(wa);
      f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(a0), f32x4.mul(v128.load32_splat(sp), da)));
      f1 = f32x4.add(f1, f32x4.mul(f32x4.convert_i32x4_s(a1), f32x4.mul(v128.load32_splat(sp + sStride), da)));
      f2 = f32x4.add(f2, f32x4.mul(f32x4.convert_i32x4_s(a2), f32x4.mul(v128.load32_splat(sp + 2 * sStride), da)));
      f3 = f32x4.add(f3, f32x4.mul(f32x4.convert_i32x4_s(a3), f32x4.mul(v128.load32_splat(sp + 3 * sStride), da)));
    }
    const o0 = out + (<usize>g << 4);
    v128.store(o0, f0); v128.store(o0 + oStride, f1); v128.store(o0 + 2 * oStride, f2); v128.store(o0 + 3 * oStride, f3);
  }
}
