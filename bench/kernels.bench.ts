// `npm run bench:kernels` (tsx bench/kernels.bench.ts [--quick]): matmul GFLOP/s (2 FLOPs per
// multiply-add) on the stories15M shapes — W[768][288] (ffn up/gate), W[288][768] (ffn down),
// W[32000][288] (classifier) — for F32/F16/Q8_0 weights at B = 1, 8, 32 rows, WASM vs TS, 1 vs 2
// threads (calling thread + 1 helper); then the 1T/2T break-even of back-to-back matmuls (the helper
// always spinning; in the engine the break-even is higher, see DEFAULT_MIN_PARALLEL_MACS).
// Each cell is the median of RUNS timed runs of ≥ 150 ms. The machine is shared and noisy (±30%):
// compare numbers within one table only.
import { SeededRng } from "../src/core/rng.ts";
import { WType, type Kernels } from "../src/engine/kernels/types.ts";
import { createParallelKernels } from "../src/engine/runtime/parallel-kernels.ts";
import { makeKernelRig, matrixBytes, randomFloats, writeMatrix } from "../test/engine/fixtures/kernel-fixtures.ts";

const QUICK = process.argv.includes("--quick");
const RUNS = Number(process.env.BENCH_RUNS ?? (QUICK ? 3 : 5));
const MIN_RUN_MS = QUICK ? 60 : 150;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Median GFLOP/s of k.matmul over the full output range. */
function gflops(k: Kernels, out: number, x: number, w: number, wType: number, numRows: number, inDim: number, outDim: number): number {
  const flops = 2 * numRows * inDim * outDim;
  k.matmul(out, x, w, wType, numRows, inDim, outDim, 0, outDim); // warm-up (JIT, caches)
  const rates: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    let reps = 0;
    const t0 = performance.now();
    let t = t0;
    do {
      k.matmul(out, x, w, wType, numRows, inDim, outDim, 0, outDim);
      reps++;
      t = performance.now();
    } while (t - t0 < MIN_RUN_MS);
    rates.push((flops * reps) / ((t - t0) * 1e6));
  }
  return median(rates);
}

const rig = await makeKernelRig(160 << 20);
const wasm2 = await createParallelKernels(rig.wasm, rig.memory, { helperThreads: 1, minMacs: 0 });
const ts2 = await createParallelKernels(rig.ts, rig.memory, { helperThreads: 1, minMacs: 0 });
const rng = new SeededRng(1);

const TYPES: [string, number][] = [["f32", WType.F32], ["f16", WType.F16], ["q8_0", WType.Q8_0_R4]];
const SHAPES: [string, number, number][] = [["768x288 (ffn up)", 288, 768], ["288x768 (ffn down)", 768, 288], ["32000x288 (cls)", 288, 32000]];
const BATCHES = [1, 8, 32];

console.log(`matmul GFLOP/s (median of ${RUNS}); W[out][in], x[B][in]`);
console.log("| weights | W shape | B | wasm 1T | wasm 2T | 2T/1T | ts 1T | ts 2T | wasm/ts |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const [typeName, wType] of TYPES) {
  for (const [shapeName, inDim, outDim] of SHAPES) {
    rig.reset();
    const maxB = BATCHES.at(-1)!;
    const x = rig.alloc(maxB * inDim * 4);
    const w = rig.alloc(matrixBytes(wType, outDim, inDim));
    const out = rig.alloc(maxB * outDim * 4);
    rig.f32().set(randomFloats(rng, maxB * inDim), x >> 2);
    writeMatrix(rig, w, wType, randomFloats(rng, outDim * inDim), outDim, inDim);
    for (const B of BATCHES) {
      const w1 = gflops(rig.wasm, out, x, w, wType, B, inDim, outDim);
      const w2 = gflops(wasm2, out, x, w, wType, B, inDim, outDim);
      const skipTs = QUICK && outDim > 1000 && B > 1;
      const t1 = skipTs ? NaN : gflops(rig.ts, out, x, w, wType, B, inDim, outDim);
      const t2 = skipTs ? NaN : gflops(ts2, out, x, w, wType, B, inDim, outDim);
      const f = (v: number): string => (Number.isNaN(v) ? "–" : v.toFixed(2));
      console.log(`| ${typeName} | ${shapeName} | ${B} | ${f(w1)} | ${f(w2)} | ${(w2 / w1).toFixed(2)} | ${f(t1)} | ${f(t2)} | ${(w1 / t1).toFixed(1)} |`);
    }
  }
}

console.log("\n2-thread break-even (f32, B = 1, W[out][288]): speed-up of wasm 2T over 1T by multiply-adds per matmul");
console.log("| MACs | out | 2T/1T |");
console.log("|---|---|---|");
for (const outDim of [96, 192, 288, 384, 576, 768, 1536]) {
  rig.reset();
  const inDim = 288;
  const x = rig.alloc(inDim * 4), w = rig.alloc(outDim * inDim * 4), out = rig.alloc(outDim * 4);
  rig.f32().set(randomFloats(rng, inDim), x >> 2);
  rig.f32().set(randomFloats(rng, outDim * inDim), w >> 2);
  const w1 = gflops(rig.wasm, out, x, w, WType.F32, 1, inDim, outDim);
  const w2 = gflops(wasm2, out, x, w, WType.F32, 1, inDim, outDim);
  console.log(`| ${inDim * outDim} | ${outDim} | ${(w2 / w1).toFixed(2)} |`);
}
await wasm2.close();
await ts2.close();
