/**
 * Fitting the cost model's device constants to measured step times (the CPU engine's `npm run
 * bench:engine` numbers, or a GPU's), and the samples the catalog's `cpu` entry was fitted to.
 *
 * The fit keeps the form of cost-model.ts (stepMs = max(FLOPs / peak, bytes / bw) + sampled seqs ×
 * msPerSampledSeq + overhead) and searches peak, bw, the per-sampled-seq cost and overhead on a log grid
 * for the smallest worst-case relative error over the samples: few samples, four parameters, a
 * deterministic answer. Why the per-sampled-seq term: the engine's prefill GEMM runs at ~2× the FLOP
 * rate of batched decode (whose every row also pays a classifier matvec and a vocabulary pass), so with
 * peak and bw alone the best fit still misses prefill or B=32 decode by ~30%.
 */
import { modelId } from "../core/ids.ts";
import { CostModel } from "./cost-model.ts";
import type { DeviceType, ModelArchId } from "./catalog.ts";

/** One measured step shape: `batch` sequences each feeding `tokensPerSeq` tokens at `startPos`. */
export interface StepSample {
  readonly arch: ModelArchId;
  readonly batch: number;
  readonly tokensPerSeq: number;
  readonly startPos: number;
  readonly measuredMs: number;
  readonly label: string;
}

/**
 * The engine's own step times ("ours 1T" of bench:engine: in-process, one thread, f32 weights, stories15M
 * shape: dim 288, 6 layers, vocab 32000), as `npm run bench:sharing -- --only calibration --cal-reps 9`
 * measures them before and after its server run (median of 9 + 9 rounds each), on a quiet host (load
 * average 0.8–2.0): prefill 1×128 46.9 ms (2729 tok/s); decode after a 12-token prompt B=1 3.6 ms, B=8
 * 9.5 ms, B=32 30.6 ms (278 / 842 / 1046 tok/s). Loaded runs of the same code are 20–50% slower; the
 * previous fit (1792 / 250 / 670 / 729 tok/s) came from such a run, before this session's kernel work.
 */
export const CPU_BENCH_SAMPLES: readonly StepSample[] = [
  { arch: "stories15m", batch: 1, tokensPerSeq: 128, startPos: 0, measuredMs: 46.9, label: "prefill 1×128" },
  { arch: "stories15m", batch: 1, tokensPerSeq: 1, startPos: 12, measuredMs: 3.6, label: "decode B=1" },
  { arch: "stories15m", batch: 8, tokensPerSeq: 1, startPos: 12, measuredMs: 9.5, label: "decode B=8" },
  { arch: "stories15m", batch: 32, tokensPerSeq: 1, startPos: 12, measuredMs: 30.6, label: "decode B=32" },
];

export interface DeviceFit {
  readonly peakFlops: number;
  readonly memBwBytesPerS: number;
  readonly stepOverheadMs: number;
  readonly msPerSampledSeq: number;
  /** max over samples of |predicted − measured| / measured. */
  readonly maxRelErr: number;
  readonly predictions: readonly { readonly label: string; readonly measuredMs: number; readonly predictedMs: number }[];
}

/** FLOPs, bytes and sampling sequences of a sample's step (from the cost model with unit peak and bandwidth). */
function sampleWork(s: StepSample, deviceType: DeviceType): { flops: number; bytes: number; sampled: number } {
  const unit = (peakFlops: number, memBw: number): number => {
    const cm = new CostModel({ deviceType, device: { peakFlops, memBwBytesPerS: memBw }, efficiency: { mfu: 1, mbu: 1, stepOverheadMs: 0, msPerSampledSeq: 0 } });
    const c = cm.addModel({ id: modelId("cal"), arch: s.arch, tp: 1 });
    const n = s.tokensPerSeq;
    return cm.busyMs(c, s.batch * n, s.batch * n * (s.startPos + (n + 1) / 2), s.batch * (s.startPos + n));
  };
  // with one resource infinitely fast the other term alone remains: ms = work / rate × 1000
  // every sequence of a bench step samples (prefill 1×128 samples its last token, decode every row)
  return { flops: (unit(1, Infinity) / 1000) * 1, bytes: (unit(Infinity, 1) / 1000) * 1, sampled: s.batch };
}

/** Predicted step time of a sample under given constants (mfu = mbu = 1: the constants are effective). */
export function predictSample(
  s: StepSample,
  deviceType: DeviceType,
  peakFlops: number,
  memBw: number,
  overheadMs: number,
  msPerSampledSeq: number,
): number {
  const w = sampleWork(s, deviceType);
  return Math.max(w.flops / peakFlops, w.bytes / memBw) * 1000 + w.sampled * msPerSampledSeq + overheadMs;
}

/** Grid search (log-spaced, 40 × 40 × 16 × 16 points) minimising the worst relative error. */
export function fitDevice(samples: readonly StepSample[], deviceType: DeviceType = "cpu"): DeviceFit {
  const grid = (lo: number, hi: number, k: number): number[] => Array.from({ length: k }, (_, i) => lo * (hi / lo) ** (i / (k - 1)));
  let best: { p: number; b: number; o: number; q: number; err: number } = { p: 0, b: 0, o: 0, q: 0, err: Infinity };
  const work = samples.map((s) => sampleWork(s, deviceType));
  const small = [0, ...grid(0.01, 5, 15)];
  for (const p of grid(1e9, 1e11, 40)) {
    for (const b of grid(1e9, 1e11, 40)) {
      for (const o of small) {
        for (const q of small) {
          let err = 0;
          for (let k = 0; k < samples.length; k++) {
            const s = samples[k]!;
            const w = work[k]!;
            const e = Math.abs(Math.max(w.flops / p, w.bytes / b) * 1000 + w.sampled * q + o - s.measuredMs) / s.measuredMs;
            if (e > err) err = e;
            if (err >= best.err) break;
          }
          if (err < best.err) best = { p, b, o, q, err };
        }
      }
    }
  }
  return {
    peakFlops: best.p,
    memBwBytesPerS: best.b,
    stepOverheadMs: best.o,
    msPerSampledSeq: best.q,
    maxRelErr: best.err,
    predictions: samples.map((s) => ({ label: s.label, measuredMs: s.measuredMs, predictedMs: predictSample(s, deviceType, best.p, best.b, best.o, best.q) })),
  };
}
