// A/B of the Q8_0 prefill tile (plain 128-bit SIMD, as in src/engine/kernels/as/kernels.ts) against
// relaxed-SIMD variants (tiles.as.ts says which), in one process, rounds interleaved, timed in
// process CPU time (steadier than wall time on the shared VM). Checks first that every variant's
// floats equal the plain tile's bit for bit (their integer sums are exact: a pmaddubsw pair sum is at
// most 2·127·127 = 32258, so its i16 saturation never triggers), on random Q8_0 values with rows and
// columns forced to the ±127 extremes.
//
//   node bench/relaxed-simd/run.mjs            # TurboFan only (see below)
//   LIFTOFF=1 node bench/relaxed-simd/run.mjs  # V8's baseline tier only: shows tileA's miscompile
//
// Node 20 (V8 11.3) accepts relaxed SIMD behind --experimental-wasm-relaxed-simd, set here at run
// time before compiling. Its Liftoff (baseline) code for i32x4.relaxed_dot_i8x16_i7x16_add_s drops
// the accumulator and doubles the dot, so a module using it must also be compiled with --no-liftoff;
// the i16x8 form is correct in both tiers.
import { setFlagsFromString } from "node:v8";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const liftoff = process.env.LIFTOFF === "1";
setFlagsFromString("--experimental-wasm-relaxed-simd");
setFlagsFromString(liftoff ? "--liftoff-only" : "--no-liftoff");

const here = dirname(fileURLToPath(import.meta.url));
const asc = await import("assemblyscript/asc");
let binary = null;
let stderrText = "";
const { error } = await asc.main([join(here, "tiles.as.ts"), "-O3", "--runtime", "stub", "--enable", "simd", "--enable", "relaxed-simd",
  "--initialMemory", "512", "--noAssert", "-o", "tiles.wasm"], {
  writeFile: (name, contents) => { if (name.endsWith(".wasm") && typeof contents !== "string") binary = contents; },
  stderr: { write: (s) => { stderrText += String(s); return true; } },
});
if (error !== null || binary === null) throw new Error(`compiling tiles.as.ts failed: ${error?.message ?? "no output"}\n${stderrText}`);
const ex = new WebAssembly.Instance(new WebAssembly.Module(binary), { env: { abort() { throw new Error("abort"); } } }).exports;
const buf = ex.memory.buffer;

const ROUNDS = Number(process.env.ROUNDS ?? 30);
const REPS = 10;
/** stories15M shapes at B = 128: [inDim, outDim]; q/k/v/o, w1/w3, w2. */
const SHAPES = [[288, 288], [288, 768], [768, 288]];
const B = 128;
const VARIANTS = ["P", "A", "A2", "A3", "A4", "G"];

let seed = 12345;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const q127 = () => Math.round(rnd() * 254) - 127;

function setup(inDim, outDim) {
  const nb = inDim / 32, groups = outDim / 4, g136 = nb * 136, g264 = nb * 264;
  const wq = Int8Array.from({ length: outDim * inDim }, q127);
  const xv = Int8Array.from({ length: B * inDim }, q127);
  // extremes: a column of +127, one of −127, one alternating; an x row of +127, one of −127
  for (let i = 0; i < inDim; i++) { wq[i] = 127; wq[inDim + i] = -127; wq[2 * inDim + i] = i & 1 ? 127 : -127; xv[i] = 127; xv[inDim + i] = -127; }
  let at = 1 << 16;
  const alloc = (n) => { const p = at; at += (n + 63) & ~63; return p; };
  const wP = alloc(groups * g136), wQ = alloc(groups * g136), w3 = alloc(groups * g264);
  const xI16 = alloc(B * inDim * 2), xI8 = alloc(B * inDim), xPos = alloc(B * inDim), xNeg = alloc(B * inDim), s = alloc(B * nb * 4);
  const outs = Object.fromEntries(VARIANTS.map((v) => [v, alloc(B * outDim * 4)]));
  if (at > buf.byteLength) throw new Error("memory too small");
  const i8 = new Int8Array(buf), u8 = new Uint8Array(buf), dv = new DataView(buf);
  for (let o = 0; o < outDim; o++) {
    const c = o & 3;
    for (let b = 0; b < nb; b++) {
      const scale = 0x2000 + Math.floor(rnd() * 0x800); // f16 in [2^-7, 2^-6)
      const blk = ((o >> 2) * nb + b) * 136, blk3 = ((o >> 2) * nb + b) * 264;
      dv.setUint16(wP + blk + 2 * c, scale, true); dv.setUint16(wQ + blk + 2 * c, scale, true); dv.setUint16(w3 + blk3 + 2 * c, scale, true);
      for (let i = 0; i < 32; i++) {
        const v = wq[o * inDim + b * 32 + i];
        i8[wP + blk + 8 + (i >> 1) * 8 + 2 * c + (i & 1)] = v; // Q8_0_R4: k-pairs
        i8[wQ + blk + 8 + (i >> 2) * 16 + 4 * c + (i & 3)] = v; // k-quads
        const q3 = w3 + blk3 + 8 + (i >> 2) * 32 + 4 * c + (i & 3);
        u8[q3] = Math.abs(v); u8[q3 + 16] = v < 0 ? 255 : 0;
      }
    }
  }
  for (let k = 0; k < B * inDim; k++) {
    dv.setInt16(xI16 + 2 * k, xv[k], true); i8[xI8 + k] = xv[k]; i8[xPos + k] = Math.max(xv[k], 0); i8[xNeg + k] = Math.max(-xv[k], 0);
  }
  new Float32Array(buf, s, B * nb).set(Float32Array.from({ length: B * nb }, () => rnd() / 127));
  const oStride = outDim * 4, sStride = nb * 4;
  const tiles = (fn, out, x, xStride, w, gStride, ...extra) => () => {
    for (let r = 0; r < B; r += 4) fn(out + r * oStride, oStride, x + r * xStride, xStride, s + r * sStride, sStride, nb, w, gStride, 0, groups, ...extra);
  };
  return {
    outs, n: B * outDim,
    run: {
      P: tiles(ex.tileP, outs.P, xI16, inDim * 2, wP, g136),
      A: tiles(ex.tileA, outs.A, xI8, inDim, wQ, g136),
      A2: tiles(ex.tileA2, outs.A2, xI8, inDim, wQ, g136),
      A3: tiles(ex.tileA3, outs.A3, xI8, inDim, w3, g264),
      A4: tiles(ex.tileA4, outs.A4, xI8, inDim, wQ, g136),
      G: tiles(ex.tileG, outs.G, xPos, inDim, wQ, g136, xNeg - xPos),
    },
  };
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
console.log(`tiers: ${liftoff ? "Liftoff only" : "TurboFan only"}; B = ${B}; CPU ms per matmul (median of ${ROUNDS} rounds × ${REPS}); ratio = variant / plain`);
let failed = false;
for (const [inDim, outDim] of SHAPES) {
  const t = setup(inDim, outDim);
  for (const v of VARIANTS) t.run[v]();
  const ref = new Uint32Array(buf, t.outs.P, t.n);
  const mismatches = {};
  for (const v of VARIANTS) {
    const o = new Uint32Array(buf, t.outs[v], t.n);
    let bad = 0;
    for (let i = 0; i < t.n; i++) if (o[i] !== ref[i]) bad++;
    mismatches[v] = bad;
    if (bad > 0) failed = true;
  }
  const ms = Object.fromEntries(VARIANTS.map((v) => [v, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of VARIANTS) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < REPS; i++) t.run[v]();
      const c = process.cpuUsage(c0);
      ms[v].push((c.user + c.system) / 1000 / REPS);
    }
  }
  const p = median(ms.P);
  const macs = B * inDim * outDim;
  console.log(`${inDim}→${outDim}: ` + VARIANTS.map((v) => `${v} ${median(ms[v]).toFixed(3)} ms (${(macs / median(ms[v]) / 1e6).toFixed(1)} GMAC/s, ×${(median(ms[v]) / p).toFixed(2)}${mismatches[v] ? `, ${mismatches[v]} MISMATCHES` : ""})`).join("; "));
}
if (failed) { console.log("some variant differs from the plain tile"); process.exitCode = 1; }
