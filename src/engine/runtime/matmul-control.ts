/**
 * The control block shared by the engine thread and its matmul helper thread (an Int32Array over a
 * SharedArrayBuffer, separate from the device memory). The engine thread posts a job by writing the
 * arguments, resetting the column dispenser and bumping JOB_SEQ; both threads then take column
 * chunks from NEXT_COL with Atomics.add until none are left; the helper acknowledges with DONE_SEQ.
 */
export const Ctl = {
  /** Job number, bumped by the engine thread for each parallel matmul (helper waits on it). */
  JOB_SEQ: 0,
  /** Last job number the helper finished (engine thread waits on it). */
  DONE_SEQ: 1,
  /** Next unclaimed output column of the current job. */
  NEXT_COL: 2,
  OUT: 3,
  X: 4,
  W: 5,
  W_TYPE: 6,
  NUM_ROWS: 7,
  IN_DIM: 8,
  OUT_DIM: 9,
  O_END: 10,
  CHUNK: 11,
  /** 1 = helper must exit at the next JOB_SEQ change. */
  STOP: 12,
  /** Chunks the helper computed (stats, written by the helper only). */
  HELPER_CHUNKS: 13,
  SIZE: 16,
} as const;
