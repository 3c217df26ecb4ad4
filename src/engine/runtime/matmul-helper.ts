/**
 * Entry of the matmul helper thread (started through bootstrap.mjs by parallel-kernels.ts). It
 * binds its own kernel instance to the shared device memory and then serves jobs from the control
 * block forever (protocol in matmul-control.ts): spin briefly after each job (the next matmul of a
 * forward pass usually follows within microseconds), then sleep in Atomics.wait.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createTsKernels } from "../kernels/ts-kernels.ts";
import { createWasmKernels } from "../kernels/wasm-kernels.ts";
import { Ctl, claimChunks, claimIndex, runChunk } from "./matmul-control.ts";

interface HelperData {
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  readonly kernels: "wasm" | "ts";
  readonly spinUs: number;
}

const data = workerData as HelperData;
const kernels = data.kernels === "ts" ? createTsKernels(data.memory) : await createWasmKernels(data.memory);
const ctl = new Int32Array(data.control);
const args = new Uint32Array(data.control);
const argsF32 = new Float32Array(data.control);
parentPort!.postMessage({ ready: true });

let lastSeq = Atomics.load(ctl, Ctl.JOB_SEQ);
for (;;) {
  let seq = Atomics.load(ctl, Ctl.JOB_SEQ);
  if (seq === lastSeq) {
    const spinUntil = performance.now() + data.spinUs / 1000;
    for (let i = 1; seq === lastSeq; i++) {
      if ((i & 255) === 0 && performance.now() > spinUntil) Atomics.wait(ctl, Ctl.JOB_SEQ, lastSeq);
      seq = Atomics.load(ctl, Ctl.JOB_SEQ);
    }
  }
  lastSeq = seq;
  if (Atomics.load(ctl, Ctl.STOP) === 1) break;
  let chunks = 0;
  for (;;) {
    const word = Atomics.add(ctl, Ctl.CLAIM, 1);
    const idx = claimIndex(word);
    if (idx >= claimChunks(word)) break;
    // A valid claim pins the job, so these arguments belong to it.
    const chunkCols = args[Ctl.CHUNK_COLS]!;
    const c = args[Ctl.O_START]! + idx * chunkCols;
    runChunk(kernels, args, argsF32, 1, c, Math.min(c + chunkCols, args[Ctl.O_END]!));
    chunks++;
    Atomics.add(ctl, Ctl.DONE, 1);
    Atomics.notify(ctl, Ctl.DONE);
  }
  if (chunks > 0) ctl[Ctl.HELPER_CHUNKS] = (ctl[Ctl.HELPER_CHUNKS]! + chunks) | 0;
}
process.exit(0);
