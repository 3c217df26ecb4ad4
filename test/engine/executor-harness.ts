/**
 * Shared setup for the engine tests: a real DeviceMemory (backed), an EngineExecutor on its memory,
 * every model registered, its weights loaded into a region from the memory layer, and one KV space
 * per model exposed to the standalone generation loop through a KvBlockProvider adapter.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { modelId } from "../../src/core/ids.ts";
import type { ModelProfile } from "../../src/core/records.ts";
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
