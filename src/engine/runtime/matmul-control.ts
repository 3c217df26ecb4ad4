import type { Kernels } from "../kernels/types.ts";

/**
 * The control block shared by the engine thread and its matmul helper thread (an Int32Array over a
 * SharedArrayBuffer, separate from the device memory).
 *
 * Protocol (one job = one matmul cut into numChunks column chunks):
 * - The engine thread, with the previous job complete, writes the arguments, zeroes DONE, stores
 *   CLAIM = pack(job, numChunks, 0), bumps JOB_SEQ and notifies it (a wake-up hint only).
 * - Both threads claim chunks with Atomics.add(CLAIM, 1). The returned word carries the chunk count,
 *   so a claim is judged without reading the arguments: idx ≥ numChunks means "no work" (this is
 *   also what a helper that slept through whole jobs gets, so it never reads torn arguments). A
 *   valid claim pins its job — the job cannot complete before the claimed chunk is counted in DONE
 *   — so the arguments it then reads are stable.
 * - The engine thread returns once DONE = numChunks. It never waits for a helper that claimed
 *   nothing: a helper descheduled by the OS costs nothing but its share of the parallelism.
 */
export const Ctl = {
  /** Job number, bumped per parallel matmul (the helper sleeps on it). */
  JOB_SEQ: 0,
  /** Claim word: job (12 bits) | numChunks (8 bits) | next chunk index (12 bits). */
  CLAIM: 1,
  /** Chunks of the current job finished (by either thread). */
  DONE: 2,
  OUT: 3,
  X: 4,
  W: 5,
  W_TYPE: 6,
  NUM_ROWS: 7,
  IN_DIM: 8,
  OUT_DIM: 9,
  O_START: 10,
  O_END: 11,
  CHUNK_COLS: 12,
  /** 1 = helper must exit at the next JOB_SEQ change. */
  STOP: 13,
  /** Chunks the helper computed (stats, written by the helper only). */
  HELPER_CHUNKS: 14,
  /** JobKind of the current job. */
  KIND: 15,
  SIZE: 16,
} as const;

/** What a job's chunks run: Kernels.matmul, or Kernels.matmulQ8 (X is then the quantised activations). */
export const JobKind = { MATMUL: 0, MATMUL_Q8: 1 } as const;
export type JobKind = (typeof JobKind)[keyof typeof JobKind];

/** Runs one chunk of a job on `k` (both threads call this, so they run the same kernel). */
export function runJob(k: Kernels, kind: number, out: number, x: number, w: number, wType: number, numRows: number, inDim: number, outDim: number, oStart: number, oEnd: number): void {
  if (kind === JobKind.MATMUL_Q8) k.matmulQ8(out, x, w, numRows, inDim, outDim, oStart, oEnd);
  else k.matmul(out, x, w, wType, numRows, inDim, outDim, oStart, oEnd);
}

export const MAX_CHUNKS = 255;

export function packClaim(job: number, numChunks: number): number {
  return (((job & 0xfff) << 20) | (numChunks << 12)) | 0;
}
export function claimIndex(word: number): number {
  return word & 0xfff;
}
export function claimChunks(word: number): number {
  return (word >>> 12) & 0xff;
}
