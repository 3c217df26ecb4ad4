// F16 and Q8_0 codecs: exhaustive f16 round trip, round-to-nearest-even against an independent reference, and the
// Q8_0 error bound of ggml's reference quantiser.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { isPrismError } from "../../src/core/errors.ts";
import {
  decodeF16,
  decodeTensor,
  dequantizeQ8_0,
  encodeF16,
  f16ToF32,
  f32ToF16,
  GgmlType,
  quantizeQ8_0,
} from "../../src/engine/gguf/index.ts";

/** Independent reference: IEEE half nearest to an f32 value, ties to even, via f64 arithmetic. */
function refHalf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  const sign = x < 0 || Object.is(x, -0) ? -1 : 1;
  if (a >= 65520) return sign * Infinity; // 65504 + half an ulp (16) ties to the even neighbour, 2^16 = Inf
  const e = a === 0 ? -14 : Math.max(-14, Math.floor(Math.log2(a)));
  const ulp = 2 ** (e - 10);
  const q = a / ulp;
  const fl = Math.floor(q);
  const r = q - fl > 0.5 || (q - fl === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  return sign * r * ulp;
}

test("f16: every half value survives f16 → f32 → f16 exactly", () => {
  for (let h = 0; h < 65536; h++) {
    const v = f16ToF32(h);
    if (Number.isNaN(v)) {
      assert.equal((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0, true);
      assert.ok(Number.isNaN(f16ToF32(f32ToF16(v))));
      continue;
    }
    assert.equal(f32ToF16(v), h, `half 0x${h.toString(16)}`);
  }
});

test("f16: known roundings (ties to even, overflow, subnormals)", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519.99, 0x7bff],
    [65520, 0x7c00],
    [1e9, 0x7c00],
    [-Infinity, 0xfc00],
    [1 + 2 ** -11, 0x3c00], // tie → even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // tie → even (up)
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie → even (zero)
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 → 2
    [2 ** -14 - 2 ** -25, 0x0400], // rounds up into the normals
  ];
  for (const [x, h] of cases) assert.equal(f32ToF16(x), h, `f32ToF16(${x})`);
  assert.equal(f32ToF16(NaN) & 0x7c00, 0x7c00);
  assert.notEqual(f32ToF16(NaN) & 0x3ff, 0);
});

test("f16: f32ToF16 is round-to-nearest-even for any f32 (fast-check)", () => {
  fc.assert(
    fc.property(fc.float({ noNaN: true }), (x) => {
      const got = f16ToF32(f32ToF16(x));
      const want = refHalf(x);
      assert.ok(Object.is(got, want), `x=${x}: got ${got}, want ${want}`);
    }),
    { numRuns: 3000, seed: 20260101 },
  );
  // Dense sweep over the interesting range too.
  fc.assert(
    fc.property(fc.float({ min: -70000, max: 70000, noNaN: true }), (x) => Object.is(f16ToF32(f32ToF16(x)), refHalf(x))),
    { numRuns: 3000, seed: 7 },
  );
});

test("f16 byte codecs are little-endian and inverse", () => {
  const bytes = encodeF16([1, -2, 0.5]);
  assert.deepEqual(Array.from(bytes), [0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38]);
  assert.deepEqual(Array.from(decodeF16(bytes)), [1, -2, 0.5]);
  // Unaligned source.
  const shifted = new Uint8Array(7);
  shifted.set(bytes, 1);
  assert.deepEqual(Array.from(decodeF16(shifted.subarray(1))), [1, -2, 0.5]);
});

test("q8_0: layout and known values (ties away from zero, as roundf)", () => {
  const x = new Float32Array(32);
  x[0] = 127;
  x[1] = 2.5;
  x[2] = -2.5;
  x[3] = -127;
  x[4] = 0.49;
  const q = quantizeQ8_0(x);
  assert.equal(q.byteLength, 34);
  assert.equal(new DataView(q.buffer).getUint16(0, true), 0x3c00, "scale d = 127/127 = 1 as f16");
  const qs = new Int8Array(q.buffer, 2, 32);
  assert.deepEqual(Array.from(qs.subarray(0, 6)), [127, 3, -3, -127, 0, 0]);
  assert.deepEqual(Array.from(dequantizeQ8_0(q)).slice(0, 5), [127, 3, -3, -127, 0]);
  // An all-zero block has scale 0 and decodes to zeros.
  const z = quantizeQ8_0(new Float32Array(64));
  assert.equal(z.byteLength, 68);
  assert.ok(z.every((b) => b === 0));
  assert.deepEqual(Array.from(dequantizeQ8_0(z)), new Array(64).fill(0));
});

test("q8_0: |dequant(quant(x)) − x| ≤ d/2 + 127·|f16(d) − d| per block (fast-check)", () => {
  const arb = fc
    .integer({ min: 1, max: 6 })
    .chain((blocks) =>
      fc.tuple(
        fc.float32Array({ minLength: blocks * 32, maxLength: blocks * 32, noNaN: true, noDefaultInfinity: true, min: -1000, max: 1000 }),
        fc.constantFrom(1, 1e-3, 1e-6, 30),
      ),
    );
  fc.assert(
    fc.property(arb, ([raw, scale]) => {
      const x = raw.map((v) => Math.fround(v * scale));
      const y = dequantizeQ8_0(quantizeQ8_0(x));
      for (let b = 0; b < x.length / 32; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
        const d = Math.fround(amax / 127);
        const d16 = f16ToF32(f32ToF16(d));
        const bound = d / 2 + 127 * Math.abs(d16 - d) + 1e-6 * d + Number.MIN_VALUE;
        for (let j = 0; j < 32; j++) {
          const i = b * 32 + j;
          const err = Math.abs(y[i]! - x[i]!);
          if (err > bound) throw new Error(`block ${b} value ${j}: x=${x[i]} y=${y[i]} err=${err} > bound ${bound} (d=${d})`);
        }
      }
    }),
    { numRuns: 300, seed: 42 },
  );
});

test("q8_0 rejects lengths that are not a multiple of 32; decodeTensor dispatches by type", () => {
  assert.throws(() => quantizeQ8_0(new Float32Array(33)), (e: unknown) => isPrismError(e) && e.message.includes("33"));
  const x = Float32Array.from({ length: 64 }, (_, i) => (i - 32) / 8);
  assert.deepEqual(decodeTensor(GgmlType.Q8_0, quantizeQ8_0(x), 64), dequantizeQ8_0(quantizeQ8_0(x)));
  assert.deepEqual(decodeTensor(GgmlType.F16, encodeF16(x), 64), x, "these values are exact in f16");
  assert.deepEqual(decodeTensor(GgmlType.F32, new Uint8Array(x.buffer), 64), x);
  assert.throws(() => decodeTensor(2, new Uint8Array(18), 32), (e: unknown) => isPrismError(e) && e.code === "PRISM_GGUF_UNSUPPORTED_TYPE");
});
