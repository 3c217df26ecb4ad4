// WASM SIMD kernels and the scalar TS kernels against a plain f64 reference and each other, on
// random shapes that are not multiples of any tile (fast-check, fixed seeds), all weight types.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { WType, KERNEL_RESERVED_BYTES, q8ActivationBytes, repackQ8_0x4, weightMatrixBytes, type Kernels } from "../../src/engine/kernels/types.ts";
import { SeededRng } from "../../src/core/rng.ts";
import { quantizeActivationsQ8, quantizeQ8_0 } from "../../src/engine/kernels/f16.ts";
import { argmaxOf } from "../../src/engine/sampler/sampler.ts";
import { close, makeKernelRig, matrixBytes, plainHalf, randomFloats, readMatrix, writeMatrix, type KernelRig } from "./fixtures/kernel-fixtures.ts";

let rig: KernelRig;
before(async () => {
  rig = await makeKernelRig();
});

const both = (): Kernels[] => [rig.wasm, rig.ts];
const SENTINEL = 12345.5;
const TYPES = [WType.F32, WType.F16, WType.Q8_0_R4] as const;

test("KERNEL_RESERVED_BYTES is 1 MiB and the wasm kernels bind to shared and unshared memories", async () => {
  assert.equal(KERNEL_RESERVED_BYTES, 1 << 20);
  assert.equal(rig.wasm.name, "wasm");
  assert.equal(rig.ts.name, "ts");
  const unshared = await makeKernelRig(4 << 20, false);
  assert.equal(unshared.wasm.name, "wasm");
  assert.equal(weightMatrixBytes(WType.Q8_0_R4, 5, 64), 2 * 2 * 136); // 5 rows → 2 groups of 4 (one padded)
  assert.equal(weightMatrixBytes(WType.Q8_0_R4, 8, 64), 8 * 68); // = the GGUF Q8_0 size
  assert.equal(weightMatrixBytes(WType.F16, 3, 10), 60);
});

function checkMatmul(wType: number, numRows: number, inDim: number, outDim: number, oStart: number, oEnd: number, seed: number): void {
  rig.reset();
  const rng = new SeededRng(seed);
  const x = rig.alloc(numRows * inDim * 4);
  const w = rig.alloc(matrixBytes(wType, outDim, inDim));
  const out = rig.alloc(numRows * outDim * 4);
  rig.f32().set(randomFloats(rng, numRows * inDim), x >> 2);
  writeMatrix(rig, w, wType, randomFloats(rng, outDim * inDim), outDim, inDim);
  const W = readMatrix(rig, w, wType, outDim, inDim);
  const X = rig.f32().slice(x >> 2, (x >> 2) + numRows * inDim);
  // Q8_0 matmuls multiply Q8_0-quantised activations (as llama.cpp): the reference uses those.
  if (wType === WType.Q8_0_R4) X.set(quantizedActivations(X, numRows * inDim));
  const results: Float32Array[] = [];
  for (const k of both()) {
    rig.f32().fill(SENTINEL, out >> 2, (out >> 2) + numRows * outDim);
    k.matmul(out, x, w, wType, numRows, inDim, outDim, oStart, oEnd);
    const got = rig.f32().slice(out >> 2, (out >> 2) + numRows * outDim);
    for (let r = 0; r < numRows; r++) {
      for (let o = 0; o < outDim; o++) {
        const v = got[r * outDim + o]!;
        if (o < oStart || o >= oEnd) {
          assert.equal(v, SENTINEL, `${k.name} wrote column ${o} outside [${oStart}, ${oEnd})`);
          continue;
        }
        let ref = 0;
        let scale = 0;
        for (let i = 0; i < inDim; i++) {
          ref += X[r * inDim + i]! * W[o * inDim + i]!;
          scale += Math.abs(X[r * inDim + i]! * W[o * inDim + i]!);
        }
        assert.ok(close(v, ref, scale), `${k.name} type ${wType} [${numRows}x${inDim}]·[${outDim}] r=${r} o=${o}: ${v} vs ${ref}`);
      }
    }
    results.push(got);
  }
  // WASM vs TS: same dequantised values, so they differ only by f32 summation order.
  const [a, b] = results as [Float32Array, Float32Array];
  for (let i = 0; i < a.length; i++) assert.ok(close(a[i]!, b[i]!, Math.abs(b[i]!) + 1, 1e-5));
}

function quantizedActivations(x: Float32Array, n: number): Float32Array {
  const q = new Int8Array(n);
  const d = new Float32Array(n / 32);
  quantizeActivationsQ8(x, 0, n, q, 0, d, 0);
  return Float32Array.from(q, (v, i) => v * d[i >> 5]!);
}

test("quantizeActivationsQ8: |q| ≤ 127, the block max maps to ±127, error ≤ d/2, ties to even", () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 1 << 30 }), fc.double({ min: 1e-6, max: 1e4, noNaN: true }), (k, seed, scale) => {
    const n = 32 * k;
    const x = randomFloats(new SeededRng(seed), n, scale);
    const q = new Int8Array(n);
    const d = new Float32Array(k);
    quantizeActivationsQ8(x, 0, n, q, 0, d, 0);
    for (let b = 0; b < k; b++) {
      let amax = 0;
      for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[b * 32 + i]!));
      assert.equal(d[b], Math.fround(amax / 127));
      assert.ok(q.subarray(b * 32, b * 32 + 32).some((v) => Math.abs(v) === 127));
      for (let i = 0; i < 32; i++) assert.ok(Math.abs(q[b * 32 + i]! * d[b]! - x[b * 32 + i]!) <= d[b]! * 0.5001);
    }
  }), { seed: 21, numRuns: 50 });
  const x = new Float32Array(32);
  x[0] = 127; x[1] = 2.5; x[2] = -3.5; x[3] = 0.5;
  const q = new Int8Array(32);
  quantizeActivationsQ8(x, 0, 32, q, 0, new Float32Array(1), 0);
  assert.deepEqual([...q.subarray(0, 4)], [127, 2, -4, 0]);
});

for (const wType of TYPES) {
  test(`matmul (type ${wType}) matches the reference on odd shapes and column ranges`, () => {
    const inDimArb = wType === WType.Q8_0_R4 ? fc.integer({ min: 1, max: 5 }).map((k) => k * 32) : fc.integer({ min: 1, max: 77 });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 11 }), inDimArb, fc.integer({ min: 1, max: 13 }),
        fc.nat(), fc.nat(), fc.integer({ min: 0, max: 1 << 30 }),
        (numRows, inDim, outDim, a, b, seed) => {
          const lo = a % (outDim + 1);
          const hi = lo + (b % (outDim - lo + 1));
          checkMatmul(wType, numRows, inDim, outDim, lo, hi, seed);
        }),
      { seed: 4242 + wType, numRuns: 80 });
  });

  test(`matmul (type ${wType}) on the stories15M layer shape 288→768 with 1, 5 and 32 rows`, () => {
    checkMatmul(wType, 1, 288, 768, 0, 768, 1);
    checkMatmul(wType, 5, 288, 768, 0, 768, 2);
    checkMatmul(wType, 32, 768, 288, 3, 287, 3);
  });

  if (wType === WType.Q8_0_R4) {
    test("matmul (Q8_0_R4) when the quantised x exceeds the kernel's scratch slot (a slot's worth of rows at a time)", () => {
      checkMatmul(wType, 130, 1024, 9, 0, 9, 4); // 2176 B per row, 120 KiB slot: passes of 56, 56, 18 rows
      checkMatmul(wType, 5, 28800, 3, 0, 3, 5); // 61.2 KB per row: passes of 2, 2, 1 rows
    });
  }
}

test("matmul is batch-invariant: each row of a batched matmul equals that row computed alone, bit for bit", () => {
  fc.assert(fc.property(fc.constantFrom(...TYPES), fc.integer({ min: 2, max: 13 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 40 }),
    fc.integer({ min: 0, max: 1 << 30 }), (wType, numRows, k, outDim, seed) => {
      rig.reset();
      const rng = new SeededRng(seed);
      // Q8_0_R4: 4-row tiles plus leftover rows; long rows too.
      const inDim = wType === WType.Q8_0_R4 ? 32 * k * (seed % 2 === 0 ? 1 : 6) : 29 * k + (seed % 7);
      const x = rig.alloc(numRows * inDim * 4), w = rig.alloc(matrixBytes(wType, outDim, inDim));
      const batched = rig.alloc(numRows * outDim * 4), alone = rig.alloc(outDim * 4);
      rig.f32().set(randomFloats(rng, numRows * inDim), x >> 2);
      writeMatrix(rig, w, wType, randomFloats(rng, outDim * inDim), outDim, inDim);
      rig.wasm.matmul(batched, x, w, wType, numRows, inDim, outDim, 0, outDim);
      for (let r = 0; r < numRows; r++) {
        rig.wasm.matmul(alone, x + r * inDim * 4, w, wType, 1, inDim, outDim, 0, outDim);
        assert.deepEqual(rig.f32().slice(alone >> 2, (alone >> 2) + outDim), rig.f32().slice((batched >> 2) + r * outDim, (batched >> 2) + (r + 1) * outDim), `type ${wType} row ${r}`);
      }
    }), { seed: 31, numRuns: 60 });
});

test("repackQ8_0x4 keeps every scale and value of every row (padding rows zero), following sourceRow", () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 11 }), fc.integer({ min: 1, max: 4 }), fc.boolean(), fc.integer({ min: 0, max: 1 << 30 }), (rows, k, reversed, seed) => {
    const dim = 32 * k;
    const gguf = new Uint8Array(rows * k * 34);
    const values = randomFloats(new SeededRng(seed), rows * dim, 3);
    for (let r = 0; r < rows; r++) quantizeQ8_0(values, r * dim, dim, gguf, r * k * 34);
    rig.reset();
    const at = rig.alloc(weightMatrixBytes(WType.Q8_0_R4, rows, dim) + 64);
    rig.u8().fill(0xee, at, at + weightMatrixBytes(WType.Q8_0_R4, rows, dim) + 64);
    const sourceRow = (r: number): number => (reversed ? rows - 1 - r : r);
    repackQ8_0x4(gguf, rows, dim, rig.u8(), at, sourceRow);
    const got = readMatrix(rig, at, WType.Q8_0_R4, Math.ceil(rows / 4) * 4, dim);
    const view = new DataView(gguf.buffer);
    for (let r = 0; r < Math.ceil(rows / 4) * 4; r++) {
      for (let i = 0; i < dim; i++) {
        const block = sourceRow(r) * k * 34 + (i >> 5) * 34;
        const want = r < rows ? plainHalf(view.getUint16(block, true)) * view.getInt8(block + 2 + (i & 31)) : 0;
        assert.equal(got[r * dim + i], want, `row ${r} value ${i}`);
      }
    }
    assert.equal(rig.u8()[at + weightMatrixBytes(WType.Q8_0_R4, rows, dim)], 0xee, "wrote past the matrix");
    // A source at an odd byte offset takes the byte-wise path: same bytes.
    const odd = new Uint8Array(gguf.byteLength + 1).subarray(1);
    odd.set(gguf);
    const viaBytes = new Uint8Array(weightMatrixBytes(WType.Q8_0_R4, rows, dim));
    repackQ8_0x4(odd, rows, dim, viaBytes, 0, sourceRow);
    assert.deepEqual(viaBytes, rig.u8().slice(at, at + viaBytes.byteLength));
  }), { seed: 12, numRuns: 60 });
});

test("quantizeQ8 + matmulQ8 equal matmul bit for bit (WASM and TS), and both write the same quantised bytes", () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 11 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 21 }), fc.nat(), fc.nat(),
    fc.integer({ min: 0, max: 1 << 30 }), (numRows, k, outDim, a, b, seed) => {
      rig.reset();
      const rng = new SeededRng(seed);
      const inDim = 32 * k;
      const lo = a % (outDim + 1);
      const hi = lo + (b % (outDim - lo + 1));
      const x = rig.alloc(numRows * inDim * 4), w = rig.alloc(matrixBytes(WType.Q8_0_R4, outDim, inDim));
      const xqBytes = q8ActivationBytes(numRows, inDim);
      const xq = [rig.alloc(xqBytes), rig.alloc(xqBytes)];
      const viaMatmul = rig.alloc(numRows * outDim * 4), viaQ8 = rig.alloc(numRows * outDim * 4);
      rig.f32().set(randomFloats(rng, numRows * inDim, 5), x >> 2);
      writeMatrix(rig, w, WType.Q8_0_R4, randomFloats(rng, outDim * inDim), outDim, inDim);
      both().forEach((kern, i) => kern.quantizeQ8(xq[i]!, x, numRows, inDim));
      assert.deepEqual(rig.u8().slice(xq[0]!, xq[0]! + xqBytes), rig.u8().slice(xq[1]!, xq[1]! + xqBytes), "quantised bytes");
      for (const kern of both()) {
        rig.f32().fill(SENTINEL, viaMatmul >> 2, (viaQ8 >> 2) + numRows * outDim);
        kern.matmul(viaMatmul, x, w, WType.Q8_0_R4, numRows, inDim, outDim, lo, hi);
        kern.matmulQ8(viaQ8, xq[0]!, w, numRows, inDim, outDim, lo, hi);
        assert.deepEqual(rig.f32().slice(viaQ8 >> 2, (viaQ8 >> 2) + numRows * outDim), rig.f32().slice(viaMatmul >> 2, (viaMatmul >> 2) + numRows * outDim), kern.name);
      }
    }), { seed: 77, numRuns: 60 });
});

test("argmax equals the sampler's scan: first of equal maxima, NaN never wins, 0 when nothing beats -Infinity", () => {
  const special = [Number.NaN, -Infinity, Infinity, 0, -0, 3.5, -1e30];
  fc.assert(fc.property(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 0, max: 1 << 30 }), fc.integer({ min: 0, max: 3 }), (n, seed, mode) => {
    const rng = new SeededRng(seed);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      // mode 0: distinct randoms; 1: few values (ties); 2: specials mixed in; 3: only NaN / -Infinity.
      const r = rng.next();
      if (mode === 0) v[i] = r * 2 - 1;
      else if (mode === 1) v[i] = Math.floor(r * 3);
      else if (mode === 2) v[i] = r < 0.3 ? special[Math.floor(rng.next() * special.length)]! : r;
      else v[i] = r < 0.5 ? Number.NaN : -Infinity;
    }
    rig.reset();
    const at = rig.alloc(n * 4);
    rig.f32().set(v, at >> 2);
    const want = argmaxOf(v);
    for (const k of both()) assert.equal(k.argmax(at, n), want, `${k.name} [${[...v].join(", ")}]`);
  }), { seed: 5, numRuns: 300 });
});

test("getRow dequantises exactly, identically in WASM and TS", () => {
  fc.assert(fc.property(fc.constantFrom(...TYPES), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 1 << 30 }),
    (wType, rows, k, seed) => {
      rig.reset();
      const dim = wType === WType.Q8_0_R4 ? k * 32 : k * 13 + (seed % 7);
      const w = rig.alloc(matrixBytes(wType, rows, dim));
      const out = rig.alloc(dim * 4);
      writeMatrix(rig, w, wType, randomFloats(new SeededRng(seed), rows * dim, 3), rows, dim);
      const W = readMatrix(rig, w, wType, rows, dim);
      const row = seed % rows;
      for (const kern of both()) {
        rig.f32().fill(SENTINEL, out >> 2, (out >> 2) + dim);
        kern.getRow(out, w, wType, row, dim);
        const got = rig.f32().subarray(out >> 2, (out >> 2) + dim);
        for (let i = 0; i < dim; i++) assert.equal(got[i], W[row * dim + i], `${kern.name} type ${wType} i=${i}`);
      }
    }), { seed: 7, numRuns: 60 });
});

test("rmsnorm, swiglu, add, addBias match the reference (including in-place aliasing)", () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 0, max: 1 << 30 }), (numRows, dim, seed) => {
    const rng = new SeededRng(seed);
    const n = numRows * dim;
    const X = randomFloats(rng, n, 4);
    const G = randomFloats(rng, n, 6);
    const Wt = randomFloats(rng, dim, 2);
    const B = randomFloats(rng, dim);
    for (const k of both()) {
      rig.reset();
      const x = rig.alloc(n * 4), g = rig.alloc(n * 4), w = rig.alloc(dim * 4), b = rig.alloc(dim * 4), out = rig.alloc(n * 4);
      const f = rig.f32();
      f.set(X, x >> 2); f.set(G, g >> 2); f.set(Wt, w >> 2); f.set(B, b >> 2);
      k.rmsnorm(out, x, w, numRows, dim, 1e-5);
      k.rmsnorm(x, x, w, numRows, dim, 1e-5); // in place
      for (let r = 0; r < numRows; r++) {
        let ss = 0;
        for (let i = 0; i < dim; i++) ss += X[r * dim + i]! ** 2;
        const inv = 1 / Math.sqrt(ss / dim + 1e-5);
        for (let i = 0; i < dim; i++) {
          const ref = X[r * dim + i]! * inv * Wt[i]!;
          assert.ok(close(f[(out >> 2) + r * dim + i]!, ref, Math.abs(ref), 1e-5), `${k.name} rmsnorm`);
          assert.equal(f[(x >> 2) + r * dim + i], f[(out >> 2) + r * dim + i]);
        }
      }
      f.set(X, x >> 2);
      k.swiglu(out, g, x, n);
      k.swiglu(g, g, x, n); // out aliases gate
      for (let i = 0; i < n; i++) {
        const gv = G[i]!;
        const ref = (gv / (1 + Math.exp(-gv))) * X[i]!;
        assert.ok(close(f[(out >> 2) + i]!, ref, Math.abs(ref), 1e-5), `${k.name} swiglu ${f[(out >> 2) + i]} vs ${ref}`);
        assert.equal(f[(g >> 2) + i], f[(out >> 2) + i]);
      }
      f.set(X, x >> 2); f.set(G, out >> 2);
      k.add(out, x, n);
      for (let i = 0; i < n; i++) assert.equal(f[(out >> 2) + i], Math.fround(G[i]! + X[i]!));
      f.set(X, x >> 2);
      k.addBias(x, b, numRows, dim);
      for (let i = 0; i < n; i++) assert.equal(f[(x >> 2) + i], Math.fround(X[i]! + B[i % dim]!));
    }
  }), { seed: 11, numRuns: 40 });
});

test("swiglu stays finite and exact-ish at extreme gate values (SIMD exp clamps its range)", () => {
  const gates = [-1000, -100, -88, -20, -1e-3, 0, 1e-3, 20, 88, 100, 1000, 3.5];
  for (const k of both()) {
    rig.reset();
    const n = gates.length;
    const g = rig.alloc(n * 4), u = rig.alloc(n * 4), o = rig.alloc(n * 4);
    rig.f32().set(gates, g >> 2);
    rig.f32().fill(2, u >> 2, (u >> 2) + n);
    k.swiglu(o, g, u, n);
    gates.forEach((gv, i) => {
      const ref = (2 * gv) / (1 + Math.exp(-gv));
      const got = rig.f32()[(o >> 2) + i]!;
      assert.ok(Number.isFinite(got) && close(got, ref, Math.abs(ref), 1e-5, 1e-30), `${k.name} swiglu(${gv}) = ${got}, want ${ref}`);
    });
  }
});

test("rope rotates interleaved pairs by pos·theta^(-2j/headDim) for every head", () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 12 }),
    fc.constantFrom(10000, 1000000), fc.integer({ min: 0, max: 1 << 30 }),
    (numRows, numHeads, halfDim, theta, seed) => {
      const rng = new SeededRng(seed);
      const headDim = halfDim * 2;
      const n = numRows * numHeads * headDim;
      const X = randomFloats(rng, n);
      const positions = Int32Array.from({ length: numRows }, () => rng.int(4096));
      for (const k of both()) {
        rig.reset();
        const x = rig.alloc(n * 4), p = rig.alloc(numRows * 4);
        rig.f32().set(X, x >> 2);
        new Int32Array(rig.memory.buffer).set(positions, p >> 2);
        k.rope(x, numRows, numHeads, headDim, p, theta);
        const f = rig.f32();
        for (let r = 0; r < numRows; r++) {
          for (let h = 0; h < numHeads; h++) {
            for (let j = 0; j < halfDim; j++) {
              const angle = positions[r]! * theta ** ((-2 * j) / headDim);
              const at = (r * numHeads + h) * headDim + 2 * j;
              const x0 = X[at]!, x1 = X[at + 1]!;
              const r0 = x0 * Math.cos(angle) - x1 * Math.sin(angle);
              const r1 = x0 * Math.sin(angle) + x1 * Math.cos(angle);
              const s = Math.abs(x0) + Math.abs(x1);
              assert.ok(close(f[(x >> 2) + at]!, r0, s, 1e-6, 1e-7), `${k.name} rope`);
              assert.ok(close(f[(x >> 2) + at + 1]!, r1, s, 1e-6, 1e-7), `${k.name} rope`);
            }
          }
        }
      }
    }), { seed: 13, numRuns: 60 });
});

test("ropeApply over a ropeTable equals rope bit for bit (the forward pass's once-per-batch angles)", () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 13 }),
    fc.constantFrom(10000, 1000000), fc.integer({ min: 0, max: 1 << 30 }),
    (numRows, numHeads, halfDim, theta, seed) => {
      const rng = new SeededRng(seed);
      const headDim = halfDim * 2;
      const n = numRows * numHeads * headDim;
      const X = randomFloats(rng, n, 10);
      const positions = Int32Array.from({ length: numRows }, () => rng.int(1 << 17));
      for (const k of both()) {
        rig.reset();
        const a = rig.alloc(n * 4), b = rig.alloc(n * 4), p = rig.alloc(numRows * 4), t = rig.alloc(numRows * headDim * 4);
        rig.f32().set(X, a >> 2);
        rig.f32().set(X, b >> 2);
        new Int32Array(rig.memory.buffer).set(positions, p >> 2);
        k.rope(a, numRows, numHeads, headDim, p, theta);
        k.ropeTable(t, p, numRows, headDim, theta);
        k.ropeApply(b, numRows, numHeads, headDim, t);
        const f = rig.f32();
        for (let i = 0; i < n; i++) assert.ok(Object.is(f[(a >> 2) + i], f[(b >> 2) + i]), `${k.name} element ${i}`);
      }
    }), { seed: 17, numRuns: 80 });
});

interface AttnCase {
  numKvHeads: number; group: number; headDim: number; blockTokens: number; numLayers: number; layer: number; pos: number; seed: number;
  /** Multiplies q, spreading scores so most softmax weights underflow. */
  qScale?: number;
}

function checkAttention(c: AttnCase): void {
  const { numKvHeads, group, headDim, blockTokens, numLayers, layer, pos, seed } = c;
  const rng = new SeededRng(seed);
  const numHeads = numKvHeads * group;
  const kvDim = numKvHeads * headDim;
  const numTokens = pos + 1;
  const numBlocks = Math.ceil(numTokens / blockTokens);
  const blockBytes = numLayers * 2 * blockTokens * kvDim * 4;
  // K/V values per (layer, token), written through writeKv into scattered blocks.
  const K = randomFloats(rng, numLayers * numTokens * kvDim);
  const V = randomFloats(rng, numLayers * numTokens * kvDim);
  const Q = randomFloats(rng, numHeads * headDim, c.qScale ?? 1);
  const scale = 1 / Math.sqrt(headDim);
  const pools: Uint8Array[] = [];
  const outs: Float32Array[] = [];
  for (const k of both()) {
    rig.reset();
    // A pool of 2×numBlocks blocks; the sequence uses a random permutation of half of them.
    const pool = rig.alloc(2 * numBlocks * blockBytes);
    const slots = Array.from({ length: 2 * numBlocks }, (_, i) => i);
    const perm = new SeededRng(seed ^ 0x5bd1e995);
    for (let i = slots.length - 1; i > 0; i--) {
      const j = perm.int(i + 1);
      [slots[i], slots[j]] = [slots[j]!, slots[i]!];
    }
    rig.u8().fill(0xff, pool, pool + 2 * numBlocks * blockBytes); // NaN everywhere not written
    const table = rig.alloc(numBlocks * 4);
    const u32 = new Uint32Array(rig.memory.buffer);
    for (let b = 0; b < numBlocks; b++) u32[(table >> 2) + b] = pool + slots[b]! * blockBytes;
    const kIn = rig.alloc(kvDim * 4), vIn = rig.alloc(kvDim * 4);
    const q = rig.alloc(numHeads * headDim * 4), out = rig.alloc(numHeads * headDim * 4), scratch = rig.alloc(numTokens * 4);
    for (let l = 0; l < numLayers; l++) {
      for (let t = 0; t < numTokens; t++) {
        rig.f32().set(K.subarray((l * numTokens + t) * kvDim, (l * numTokens + t + 1) * kvDim), kIn >> 2);
        rig.f32().set(V.subarray((l * numTokens + t) * kvDim, (l * numTokens + t + 1) * kvDim), vIn >> 2);
        k.writeKv(kIn, vIn, table, blockTokens, numLayers, l, kvDim, t);
      }
    }
    // writeKv put every row at [layer][K|V][tokenInBlock][kvDim] of its block.
    const f = rig.f32();
    for (let l = 0; l < numLayers; l++) {
      for (let t = 0; t < numTokens; t++) {
        const block = u32[(table >> 2) + Math.floor(t / blockTokens)]!;
        const kAt = (block >> 2) + (l * 2 * blockTokens + (t % blockTokens)) * kvDim;
        const vAt = kAt + blockTokens * kvDim;
        for (let i = 0; i < kvDim; i++) {
          assert.equal(f[kAt + i], K[(l * numTokens + t) * kvDim + i]);
          assert.equal(f[vAt + i], V[(l * numTokens + t) * kvDim + i]);
        }
      }
    }
    pools.push(rig.u8().slice(pool, pool + 2 * numBlocks * blockBytes));
    f.set(Q, q >> 2);
    k.attention(out, q, table, blockTokens, numLayers, layer, numHeads, numKvHeads, headDim, pos, scratch, scale);
    const got = rig.f32().slice(out >> 2, (out >> 2) + numHeads * headDim);
    for (let h = 0; h < numHeads; h++) {
      const kvh = Math.floor(h / group);
      const scores: number[] = [];
      for (let t = 0; t < numTokens; t++) {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += Q[h * headDim + d]! * K[(layer * numTokens + t) * kvDim + kvh * headDim + d]!;
        scores.push(s * scale);
      }
      const max = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - max));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < headDim; d++) {
        let ref = 0;
        let mag = 0;
        for (let t = 0; t < numTokens; t++) {
          const v = V[(layer * numTokens + t) * kvDim + kvh * headDim + d]!;
          ref += (e[t]! / sum) * v;
          mag += (e[t]! / sum) * Math.abs(v);
        }
        assert.ok(close(got[h * headDim + d]!, ref, mag, 1e-5, 1e-6), `${k.name} attention h=${h} d=${d}: ${got[h * headDim + d]} vs ${ref}`);
      }
    }
    outs.push(got);
  }
  assert.deepEqual(pools[0], pools[1], "wasm and ts writeKv lay out the pool identically");
}

test("paged attention with GQA across scattered blocks matches the reference", () => {
  fc.assert(fc.property(
    fc.record({
      numKvHeads: fc.integer({ min: 1, max: 3 }), group: fc.constantFrom(1, 2, 3, 4), headDim: fc.integer({ min: 1, max: 13 }),
      blockTokens: fc.integer({ min: 1, max: 6 }), numLayers: fc.integer({ min: 1, max: 3 }), layer: fc.nat(),
      pos: fc.integer({ min: 0, max: 30 }), seed: fc.integer({ min: 0, max: 1 << 30 }),
    }).map((c) => ({ ...c, layer: c.layer % c.numLayers })),
    (c) => checkAttention(c)), { seed: 17, numRuns: 60 });
});

test("paged attention with widely spread scores (softmax underflow) and head widths 64 and 36", () => {
  checkAttention({ numKvHeads: 2, group: 2, headDim: 64, blockTokens: 7, numLayers: 1, layer: 0, pos: 50, seed: 8, qScale: 60 });
  checkAttention({ numKvHeads: 1, group: 3, headDim: 36, blockTokens: 16, numLayers: 2, layer: 0, pos: 33, seed: 9 });
});

test("paged attention on the stories15M head shape (6 heads × 48) at position 70, 16 tokens per block", () => {
  checkAttention({ numKvHeads: 6, group: 1, headDim: 48, blockTokens: 16, numLayers: 2, layer: 1, pos: 70, seed: 5 });
  checkAttention({ numKvHeads: 4, group: 2, headDim: 8, blockTokens: 16, numLayers: 5, layer: 4, pos: 40, seed: 6 });
});

test("a fresh clone without build/ compiles the kernels in-process (assemblyscript API)", async () => {
  const { compileKernels } = await import("../../src/engine/kernels/wasm-kernels.ts");
  // The shared build only (the unshared one differs by flags; each compile takes seconds).
  for (const shared of [true]) {
    const binary = await compileKernels(shared);
    const module = await WebAssembly.compile(binary as Uint8Array<ArrayBuffer>);
    const names = WebAssembly.Module.exports(module).map((e) => e.name);
    for (const n of ["matmul", "attention", "writeKv", "rope", "setScratch", "heapBase"]) assert.ok(names.includes(n), n);
    const mem = WebAssembly.Module.imports(module).find((i) => i.kind === "memory");
    assert.deepEqual(mem && [mem.module, mem.name], ["env", "memory"]);
  }
});
