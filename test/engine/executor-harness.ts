/**
 * Shared setup for the engine tests: a real DeviceMemory (backed), an EngineExecutor on its memory,
 * every model registered, its weights loaded into a region from the memory layer, and one KV space
 * per model exposed to the standalone generation loop through a KvBlockProvider adapter.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { deviceId, modelId, requestId } from "../../src/core/ids.ts";
import { GREEDY, type ModelProfile } from "../../src/core/records.ts";
import { parseGguf } from "../../src/engine/gguf/reader.ts";
import type { GgufFile } from "../../src/engine/gguf/types.ts";
import { llamaConfigFromGguf } from "../../src/engine/model/config.ts";
import { createEngineExecutor, requiredPrefixBytes, type EngineExecutor, type StepBudget } from "../../src/engine/model/executor.ts";
import type { KvBlockProvider } from "../../src/engine/model/sequences.ts";
import { DeviceMemory, type KvSpace } from "../../src/memory/index.ts";

export const SHARED_MODELS = resolve(import.meta.dirname, "../../../shared/models");

/** Reads a file from ../shared/models, failing loudly (never skipping) when it is missing. */
export function sharedFile(name: string): Uint8Array {
  const p = resolve(SHARED_MODELS, name);
  if (!existsSync(p)) throw new Error(`missing shared test data ${p}: the engine tests need ../shared/models beside the repository`);
  return readFileSync(p);
}

export function sharedJson<T>(name: string): T {
  return JSON.parse(Buffer.from(sharedFile(name)).toString("utf8")) as T;
}

export interface GoldenRun {
  inputTokens: number[];
  generatedTokens: number[];
  text: string;
  continuationText?: string;
}

export interface EngineModel {
  readonly id: string;
  readonly bytes: Uint8Array;
}

export interface EngineHarness {
  readonly executor: EngineExecutor;
  readonly mem: DeviceMemory;
  readonly spaces: Map<string, KvSpace>;
  readonly blocks: Map<string, KvBlockProvider>;
  readonly profiles: Map<string, ModelProfile>;
  readonly ggufs: Map<string, GgufFile>;
}

export interface HarnessOptions extends StepBudget {
  readonly models: readonly EngineModel[];
  readonly kernels: "wasm" | "ts";
  readonly blockTokens?: number;
  /** KV + weights budget; default 32 MiB. */
  readonly budgetBytes?: number;
  readonly pageBytes?: number;
}

export function blockProvider(space: KvSpace): KvBlockProvider {
  return {
    blockTokens: space.blockTokens,
    alloc: (n) => space.alloc(n),
    byteOffset: (id) => space.blockByteOffset(id),
    free: (ids) => space.free(ids),
  };
}

export async function makeEngine(opts: HarnessOptions): Promise<EngineHarness> {
  const pageBytes = opts.pageBytes ?? 65536;
  const ggufs = new Map(opts.models.map((m) => [m.id, parseGguf(m.bytes, m.id)] as const));
  const cfgs = [...ggufs.values()].map((g) => llamaConfigFromGguf(g));
  const prefixBytes = Math.ceil(requiredPrefixBytes(cfgs, opts) / pageBytes) * pageBytes;
  const mem = new DeviceMemory({ budgetBytes: opts.budgetBytes ?? 32 << 20, pageBytes, backed: true, prefixBytes });
  const executor = await createEngineExecutor({ memory: mem.memory!, prefixBytes, kernels: opts.kernels, ...budgetOf(opts) });
  mem.onWeightsMoved((id, _old, now) => executor.moveWeights(id, now));
  const spaces = new Map<string, KvSpace>();
  const blocks = new Map<string, KvBlockProvider>();
  const profiles = new Map<string, ModelProfile>();
  for (const [id, gguf] of ggufs) {
    const profile = executor.registerGguf(id, gguf);
    profiles.set(id, profile);
    const region = mem.allocWeights(modelId(id), profile.weightBytes);
    if (region === null) throw new Error(`no room for the weights of ${id} (${profile.weightBytes} bytes)`);
    await executor.loadWeights(modelId(id), region.byteOffset);
    const space = mem.createKvSpace(modelId(id), {
      bytesPerTokenPerLayer: profile.kvBytesPerTokenPerLayer,
      numLayers: profile.numLayers,
      blockTokens: opts.blockTokens ?? 16,
    });
    spaces.set(id, space);
    blocks.set(id, blockProvider(space));
  }
  return { executor, mem, spaces, blocks, profiles, ggufs };
}

function budgetOf(b: StepBudget): StepBudget {
  return {
    ...(b.maxBatchTokens !== undefined ? { maxBatchTokens: b.maxBatchTokens } : {}),
    ...(b.maxSampleRows !== undefined ? { maxSampleRows: b.maxSampleRows } : {}),
    ...(b.maxBlockEntries !== undefined ? { maxBlockEntries: b.maxBlockEntries } : {}),
  };
}

/** KV blocks in use over all spaces (0 after every sequence finished). */
export function usedBlocks(h: EngineHarness): number {
  let n = 0;
  for (const s of h.spaces.values()) n += s.usedBlocks;
  return n;
}

/**
 * Raw logits after every prefix of `tokens` (teacher forcing: one single-token step per position,
 * through the executor's logits hook). KV blocks are allocated for the run and freed after.
 */
export async function forcedLogits(h: EngineHarness, id: string, tokens: readonly number[], firstRequestId = 1): Promise<Float32Array[]> {
  const blocks = h.blocks.get(id)!;
  const ids = blocks.alloc(Math.ceil(tokens.length / blocks.blockTokens));
  if (ids === null) throw new Error("out of KV blocks");
  const table = Uint32Array.from(ids, (b) => blocks.byteOffset(b));
  const out: Float32Array[] = [];
  h.executor.logitsHook = (_r, _m, logits) => out.push(logits.slice());
  try {
    for (let i = 0; i < tokens.length; i++) {
      await h.executor.execute({
        deviceId: deviceId(0),
        stepIndex: i,
        seqs: [{
          requestId: requestId(firstRequestId), modelId: modelId(id), tokens: Int32Array.of(tokens[i]!), startPos: i, blockOffsets: table,
          blockTokens: blocks.blockTokens, sample: true, sampling: GREEDY, outputIndex: i, penaltyTokens: null,
        }],
      });
    }
  } finally {
    h.executor.logitsHook = null;
    blocks.free(ids);
  }
  return out;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** A deterministic pseudo-random token sequence starting with BOS (id 1), ids in [3, vocab). */
export function pseudoRandomTokens(n: number, vocab: number, seed: number): number[] {
  const out = [1];
  let x = seed >>> 0;
  while (out.length < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(3 + ((x >>> 8) % (vocab - 3)));
  }
  return out;
}
