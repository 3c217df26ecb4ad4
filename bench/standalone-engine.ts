// The embedded engine as the benches run it outside a server: one model in its own shared WebAssembly memory,
// weights right after the kernels' prefix, and a KV pool behind them cut into one block table per sequence slot
// (slot s owns blocks [s·perSeq, (s+1)·perSeq)). bench:engine and bench:sharing's calibration measure the same
// engine this way.
import type { ModelId } from "../src/core/ids.ts";
import { parseGguf } from "../src/engine/gguf/reader.ts";
import { llamaConfigFromGguf } from "../src/engine/model/config.ts";
import { createEngineExecutor, requiredPrefixBytes, type EngineExecutor } from "../src/engine/model/executor.ts";

export interface StandaloneEngine {
  readonly ex: EngineExecutor;
  /** Block table (byte offsets) of each sequence slot, contextTokens / blockTokens blocks long. */
  readonly tables: Uint32Array[];
}

export async function standaloneEngine(opts: {
  readonly id: ModelId;
  readonly bytes: Uint8Array;
  readonly helperThreads: 0 | 1;
  readonly maxBatchTokens: number;
  readonly maxSeqs: number;
  readonly contextTokens: number;
  readonly blockTokens: number;
}): Promise<StandaloneEngine> {
  const { id, bytes } = opts;
  const budget = { maxBatchTokens: opts.maxBatchTokens, maxSampleRows: opts.maxSeqs };
  // Size the memory exactly: the config gives the prefix and the KV bytes; the weights stay under the file's size.
  const cfg = llamaConfigFromGguf(parseGguf(bytes, "bench"));
  const prefixBytes = Math.ceil(requiredPrefixBytes([cfg], budget) / 65536) * 65536;
  const kvBytesPerToken = cfg.numLayers * 2 * cfg.numKvHeads * cfg.headDim * 4;
  const blocksPerSeq = Math.ceil(opts.contextTokens / opts.blockTokens);
  const blockBytes = opts.blockTokens * kvBytesPerToken;
  const weightsGuess = bytes.byteLength + (1 << 20);
  const pages = Math.ceil((prefixBytes + weightsGuess + opts.maxSeqs * blocksPerSeq * blockBytes) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const ex = await createEngineExecutor({ memory, prefixBytes, helperThreads: opts.helperThreads, ...budget, models: [{ id, bytes }] });
  const weightBytes = ex.profile(id).weightBytes;
  if (weightBytes > weightsGuess) throw new Error(`bench: weights ${weightBytes} exceed the guess ${weightsGuess}`);
  await ex.loadWeights(id, prefixBytes);
  const pool = prefixBytes + Math.ceil(weightBytes / 64) * 64;
  const tables = Array.from({ length: opts.maxSeqs }, (_, s) =>
    Uint32Array.from({ length: blocksPerSeq }, (_, b) => pool + (s * blocksPerSeq + b) * blockBytes));
  return { ex, tables };
}
