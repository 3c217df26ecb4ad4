/**
 * Kernels whose matmul splits output columns, and whose attentionRows splits rows, between the
 * calling thread and one helper thread on the same shared memory ("use the second core for the
 * big matmuls when it pays"; attention is ~12% of a 128-token prefill). All other kernels run on
 * the calling thread unchanged.
 *
 * Work is handed out in column chunks through an atomic counter rather than split in halves, so a
 * helper that wakes late (or a core stolen by another process) costs at most one chunk of
 * imbalance. Below `minMacs` the synchronisation costs more than it saves and the matmul stays
 * on the calling thread (see bench/kernels.bench.ts for the measurement behind the default).
 *
 * The calling thread blocks in Atomics.wait while the helper finishes its last chunk: run this on
 * the engine's own thread (a WorkerExecutor worker), not on a thread that serves I/O.
 */
import { PrismError } from "../../core/errors.ts";
import { WType, type Kernels } from "../kernels/types.ts";
import { Ctl, JobKind, claimIndex, packClaim, runChunk } from "./matmul-control.ts";
import { spawnTsWorker } from "./spawn.ts";
import type { Worker } from "node:worker_threads";

export interface ParallelKernelsOptions {
  /** 0 = plain kernels (no thread); 1 = one helper thread. */
  readonly helperThreads: 0 | 1;
  /** Matmuls with fewer multiply-adds (numRows × inDim × columns) stay on the calling thread. */
  readonly minMacs?: number;
  /** How long the helper spins for the next job before sleeping (µs). */
  readonly helperSpinUs?: number;
  /** How long the calling thread spins for the helper's last chunk before sleeping (µs). */
  readonly waitSpinUs?: number;
}

/**
 * Measured on the 2-vCPU dev VM with the engine (stories15M shape, decode B = 1): at 200k the
 * layer matmuls (221k MACs, ~16 µs) were split and decode got slower than 1 thread (the helper's
 * wake-up costs as much as the half it saves); at 1M only the classifier and batched matmuls split
 * and decode got 1.2-1.4x faster. A back-to-back loop (bench/kernels.bench.ts) breaks even
 * lower, because there the helper is always spinning.
 */
export const DEFAULT_MIN_PARALLEL_MACS = 1_000_000;
/** A job is cut into about this many chunks (both threads together); well below MAX_CHUNKS. */
const CHUNKS_PER_JOB = 16;
/** A helper that has not finished its chunk after this long is presumed dead. */
const HELPER_TIMEOUT_MS = 10_000;

export interface ParallelKernels extends Kernels {
  readonly helperThreads: number;
  /** Counters since creation: matmuls and attentionRows calls split across threads / kept on the calling thread, chunks the helper ran. */
  stats(): { readonly parallelMatmuls: number; readonly serialMatmuls: number; readonly helperChunks: number };
  /** Stops the helper thread; the kernels keep working single-threaded afterwards. */
  close(): Promise<void>;
}

class ParallelMatmulKernels implements ParallelKernels {
  readonly name: "wasm" | "ts";
  readonly helperThreads: number;
  readonly quantizeQ8: Kernels["quantizeQ8"];
  readonly argmax: Kernels["argmax"];
  readonly addBias: Kernels["addBias"];
  readonly rmsnorm: Kernels["rmsnorm"];
  readonly rope: Kernels["rope"];
  readonly ropeTable: Kernels["ropeTable"];
  readonly ropeApply: Kernels["ropeApply"];
  readonly swiglu: Kernels["swiglu"];
  readonly add: Kernels["add"];
  readonly getRow: Kernels["getRow"];
  readonly writeKv: Kernels["writeKv"];
  readonly attention: Kernels["attention"];
  private readonly ctl: Int32Array;
  private readonly args: Uint32Array;
  private readonly argsF32: Float32Array;
  /** Positions of attentionRows' rows, read to size its work. */
  private readonly memory: WebAssembly.Memory;
  private positionsView: Int32Array;
  private seq = 0;
  private parallel = 0;
  private serial = 0;
  private worker: Worker | null;
  private readonly minMacs: number;
  private readonly waitSpinMs: number;

  constructor(private readonly base: Kernels, memory: WebAssembly.Memory, worker: Worker | null, control: SharedArrayBuffer, opts: ParallelKernelsOptions) {
    this.name = base.name;
    this.worker = worker;
    this.helperThreads = worker === null ? 0 : 1;
    this.ctl = new Int32Array(control);
    this.args = new Uint32Array(control);
    this.argsF32 = new Float32Array(control);
    this.memory = memory;
    this.positionsView = new Int32Array(memory.buffer);
    this.minMacs = opts.minMacs ?? DEFAULT_MIN_PARALLEL_MACS;
    this.waitSpinMs = (opts.waitSpinUs ?? 500) / 1000;
    this.quantizeQ8 = base.quantizeQ8.bind(base);
    this.argmax = base.argmax.bind(base);
    this.addBias = base.addBias.bind(base);
    this.rmsnorm = base.rmsnorm.bind(base);
    this.rope = base.rope.bind(base);
    this.ropeTable = base.ropeTable.bind(base);
    this.ropeApply = base.ropeApply.bind(base);
    this.swiglu = base.swiglu.bind(base);
    this.add = base.add.bind(base);
    this.getRow = base.getRow.bind(base);
    this.writeKv = base.writeKv.bind(base);
    this.attention = base.attention.bind(base);
  }

  matmul(out: number, x: number, w: number, wType: number, numRows: number, inDim: number, outDim: number, oStart: number, oEnd: number): void {
    this.split(JobKind.MATMUL, out, x, w, wType, numRows, inDim, outDim, oStart, oEnd);
  }

  matmulQ8(out: number, xq: number, w: number, numRows: number, inDim: number, outDim: number, oStart: number, oEnd: number): void {
    this.split(JobKind.MATMUL_Q8, out, xq, w, WType.Q8_0_R4, numRows, inDim, outDim, oStart, oEnd);
  }

  attentionRows(out: number, q: number, rowTables: number, rowBlockTokens: number, positions: number, rowStart: number, rowEnd: number,
    numLayers: number, layer: number, numHeads: number, numKvHeads: number, headDim: number, scratch: number, scratchFloats: number, scale: number): void {
    const numRows = rowEnd - rowStart;
    // Work ≈ Σ (pos + 1) · numHeads · headDim · 2 (scores and values); a decode batch of short
    // sequences stays on this thread like a small matmul.
    let tokens = 0;
    if (this.worker !== null && numRows >= 2) {
      if (this.positionsView.buffer !== this.memory.buffer) this.positionsView = new Int32Array(this.memory.buffer);
      const p = this.positionsView;
      for (let r = rowStart; r < rowEnd; r++) tokens += p[(positions >> 2) + r]! + 1;
    }
    if (this.worker === null || tokens * numHeads * headDim * 2 < this.minMacs) {
      this.serial++;
      this.base.attentionRows(out, q, rowTables, rowBlockTokens, positions, rowStart, rowEnd, numLayers, layer, numHeads, numKvHeads, headDim, scratch, scratchFloats, scale);
      return;
    }
    const { args } = this;
    args[Ctl.KIND] = JobKind.ATTENTION;
    args[Ctl.OUT] = out;
    args[Ctl.X] = q;
    args[Ctl.ROW_TABLES] = rowTables;
    args[Ctl.ROW_BLOCK_TOKENS] = rowBlockTokens;
    args[Ctl.POSITIONS] = positions;
    args[Ctl.NUM_LAYERS] = numLayers;
    args[Ctl.LAYER] = layer;
    args[Ctl.NUM_HEADS] = numHeads;
    args[Ctl.NUM_KV_HEADS] = numKvHeads;
    args[Ctl.HEAD_DIM] = headDim;
    args[Ctl.SCRATCH] = scratch;
    args[Ctl.SCRATCH_FLOATS] = scratchFloats;
    this.argsF32[Ctl.SCALE] = scale;
    // Causal rows cost more the later they are; claiming chunks balances that.
    this.dispatch(rowStart, rowEnd, Math.max(1, Math.ceil(numRows / CHUNKS_PER_JOB)));
  }

  private split(kind: JobKind, out: number, x: number, w: number, wType: number, numRows: number, inDim: number, outDim: number, oStart: number, oEnd: number): void {
    const cols = oEnd - oStart;
    if (this.worker === null || numRows * inDim * cols < this.minMacs || cols < 8) {
      this.serial++;
      if (kind === JobKind.MATMUL_Q8) this.base.matmulQ8(out, x, w, numRows, inDim, outDim, oStart, oEnd);
      else this.base.matmul(out, x, w, wType, numRows, inDim, outDim, oStart, oEnd);
      return;
    }
    const { args } = this;
    args[Ctl.OUT] = out;
    args[Ctl.X] = x;
    args[Ctl.W] = w;
    args[Ctl.W_TYPE] = wType;
    args[Ctl.NUM_ROWS] = numRows;
    args[Ctl.IN_DIM] = inDim;
    args[Ctl.OUT_DIM] = outDim;
    args[Ctl.KIND] = kind;
    // Chunks are multiples of 4 columns so both threads stay on the kernels' full tiles.
    this.dispatch(oStart, oEnd, Math.max(4, Math.ceil(cols / CHUNKS_PER_JOB / 4) * 4));
  }

  /** Runs the job whose arguments are in the control block over [start, end) in chunks of `chunk`, with the helper. */
  private dispatch(start: number, end: number, chunk: number): void {
    this.parallel++;
    const numChunks = Math.ceil((end - start) / chunk);
    const { ctl, args } = this;
    args[Ctl.O_START] = start;
    args[Ctl.O_END] = end;
    args[Ctl.CHUNK_COLS] = chunk;
    const seq = (this.seq = (this.seq + 1) | 0);
    Atomics.store(ctl, Ctl.DONE, 0);
    Atomics.store(ctl, Ctl.CLAIM, packClaim(seq, numChunks));
    Atomics.store(ctl, Ctl.JOB_SEQ, seq);
    Atomics.notify(ctl, Ctl.JOB_SEQ);
    let mine = 0;
    for (;;) {
      const idx = claimIndex(Atomics.add(ctl, Ctl.CLAIM, 1));
      if (idx >= numChunks) break;
      const c = start + idx * chunk;
      runChunk(this.base, args, this.argsF32, 0, c, Math.min(c + chunk, end));
      mine++;
    }
    // Chunks the helper claimed but has not finished yet (0 if it claimed nothing).
    const done = Atomics.add(ctl, Ctl.DONE, mine) + mine;
    if (done === numChunks) return;
    const spinUntil = performance.now() + this.waitSpinMs;
    let sleptMs = 0;
    for (let i = 1; ; i++) {
      const seen = Atomics.load(ctl, Ctl.DONE);
      if (seen === numChunks) return;
      if ((i & 255) !== 0 || performance.now() < spinUntil) continue;
      if (Atomics.wait(ctl, Ctl.DONE, seen, 100) === "timed-out") {
        sleptMs += 100;
        if (sleptMs >= HELPER_TIMEOUT_MS) {
          throw new PrismError("PRISM_ENGINE_WORKER_DIED", `matmul helper thread did not finish its chunk of job ${seq} within ${HELPER_TIMEOUT_MS} ms`, { job: seq });
        }
      }
    }
  }

  /** Called when the helper thread exits or throws: fall back to single-threaded matmuls. */
  helperLost(): void {
    this.worker = null;
  }

  stats(): { parallelMatmuls: number; serialMatmuls: number; helperChunks: number } {
    return { parallelMatmuls: this.parallel, serialMatmuls: this.serial, helperChunks: Atomics.load(this.ctl, Ctl.HELPER_CHUNKS) };
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (worker === null) return;
    this.worker = null;
    // Ref again while waiting: awaiting an unref'd worker's exit leaves the event loop empty, which
    // fires 'beforeExit' (node-llama-cpp disposes its Llama there).
    worker.ref();
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    Atomics.store(this.ctl, Ctl.STOP, 1);
    Atomics.add(this.ctl, Ctl.JOB_SEQ, 1);
    Atomics.notify(this.ctl, Ctl.JOB_SEQ);
    await exited;
  }
}

/**
 * Wraps `kernels` (bound to `memory`) so large matmuls use a helper thread. With helperThreads 1
 * the memory must be shared (a WebAssembly.Memory created with shared: true).
 */
export async function createParallelKernels(kernels: Kernels, memory: WebAssembly.Memory, opts: ParallelKernelsOptions): Promise<ParallelKernels> {
  const control = new SharedArrayBuffer(Ctl.SIZE * 4);
  if (opts.helperThreads === 0) return new ParallelMatmulKernels(kernels, memory, null, control, opts);
  if (!(memory.buffer instanceof SharedArrayBuffer)) {
    throw new PrismError("PRISM_CONFIG_INVALID", "a matmul helper thread needs a shared WebAssembly.Memory (DeviceMemoryOptions.shared = true)", {});
  }
  const worker = spawnTsWorker(new URL("./matmul-helper.ts", import.meta.url),
    { memory, control, kernels: kernels.name, spinUs: opts.helperSpinUs ?? 100 }, "prism-matmul-helper");
  await new Promise<void>((resolve, reject) => {
    const onError = (e: unknown): void => reject(new PrismError("PRISM_ENGINE_WORKER_DIED", `matmul helper failed to start: ${String(e)}`, {}));
    worker.once("error", onError);
    worker.once("exit", (code) => onError(`exit code ${code}`));
    worker.once("message", () => {
      worker.removeAllListeners("error");
      worker.removeAllListeners("exit");
      resolve();
    });
  });
  // The helper never posts again; don't let it keep the process alive on its own.
  worker.unref();
  const pk = new ParallelMatmulKernels(kernels, memory, worker, control, opts);
  // A helper that dies between jobs is dropped: later matmuls run on the calling thread.
  worker.on("error", () => pk.helperLost());
  worker.on("exit", () => pk.helperLost());
  return pk;
}

/** The brief's name for the same thing. */
export const createParallelMatmul = createParallelKernels;
