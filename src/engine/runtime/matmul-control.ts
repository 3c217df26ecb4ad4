import type { Kernels } from "../kernels/types.ts";

/**
 * The control block shared by the engine thread and its matmul helper thread (an Int32Array over a
 * SharedArrayBuffer, separate from the device memory).
 *
 * Protocol (one job = one matmul cut into numChunks column chunks, or one layer's attention cut
 * into chunks of rows):
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
  // ATTENTION jobs (Kernels.attentionRows; chunks are rows [O_START, O_END) with OUT and X = q):
  ROW_TABLES: 16,
  ROW_BLOCK_TOKENS: 17,
  POSITIONS: 18,
  NUM_LAYERS: 19,
  LAYER: 20,
  NUM_HEADS: 21,
  NUM_KV_HEADS: 22,
  HEAD_DIM: 23,
  /** The first of the ATTENTION_SCRATCH_THREADS score areas (the engine thread's; the helper takes the next). */
  SCRATCH: 24,
  SCRATCH_FLOATS: 25,
  /** f32 bits (read through a Float32Array view of the block). */
  SCALE: 26,
  SIZE: 27,
} as const;

/** What a job's chunks run: Kernels.matmul, Kernels.matmulQ8 (X is then the quantised activations), or Kernels.attentionRows. */
export const JobKind = { MATMUL: 0, MATMUL_Q8: 1, ATTENTION: 2 } as const;
export type JobKind = (typeof JobKind)[keyof typeof JobKind];

/**
 * Runs chunk [c0, c1) of the job described by the control block on `k` (both threads call this, so
 * they run the same kernel); thread 0 is the engine thread, 1 the helper (its own score area).
 */
export function runChunk(k: Kernels, args: Uint32Array, argsF32: Float32Array, thread: 0 | 1, c0: number, c1: number): void {
  const kind = args[Ctl.KIND]!;
  if (kind === JobKind.ATTENTION) {
    const floats = args[Ctl.SCRATCH_FLOATS]!;
    k.attentionRows(args[Ctl.OUT]!, args[Ctl.X]!, args[Ctl.ROW_TABLES]!, args[Ctl.ROW_BLOCK_TOKENS]!, args[Ctl.POSITIONS]!, c0, c1,
      args[Ctl.NUM_LAYERS]!, args[Ctl.LAYER]!, args[Ctl.NUM_HEADS]!, args[Ctl.NUM_KV_HEADS]!, args[Ctl.HEAD_DIM]!,
      args[Ctl.SCRATCH]! + thread * floats * 4, floats, argsF32[Ctl.SCALE]!);
  } else if (kind === JobKind.MATMUL_Q8) {
    k.matmulQ8(args[Ctl.OUT]!, args[Ctl.X]!, args[Ctl.W]!, args[Ctl.NUM_ROWS]!, args[Ctl.IN_DIM]!, args[Ctl.OUT_DIM]!, c0, c1);
  } else {
    k.matmul(args[Ctl.OUT]!, args[Ctl.X]!, args[Ctl.W]!, args[Ctl.W_TYPE]!, args[Ctl.NUM_ROWS]!, args[Ctl.IN_DIM]!, args[Ctl.OUT_DIM]!, c0, c1);
  }
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
