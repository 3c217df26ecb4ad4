/**
 * The memory of one device: a fixed byte budget of physical pages shared by the weight regions and
 * the elastic KV spaces of every model placed on the device (kvcached, with weights managed too).
 *
 * Who calls it: the device scheduler (KV spaces per step; weights at activation/eviction, at safe
 * points between steps), the global scheduler's executor (KvSpace.setLimit), the gateway's admin API
 * and the simulator (snapshot). One thread; nothing here blocks or reads a clock.
 *
 * backed: true  → one WebAssembly.Memory of prefixBytes + budgetBytes, created up front, never grown
 *                 (kernels and a worker may hold views of it); page 0 starts at prefixBytes.
 * backed: false → accounting only: the same classes and code paths, no bytes (the simulator).
 *
 * Rules between KV spaces (see README.md):
 *   - A page is mapped into a space only while free pages stay above the headroom.
 *   - Reserved (idle, mapped) pages are a cache, not a quota: when the device has no free page above
 *     the headroom, a space that needs a page takes one from the space with the most reserved pages,
 *     and allocWeights releases reserves before it gives up or compacts.
 */
import { PrismError } from "../core/errors.ts";
import type { ModelId } from "../core/ids.ts";
import type {
  DeviceMemoryApi, DeviceMemoryOptions, KvSpace, KvSpaceOptions, MemorySnapshot, WeightMoveListener, WeightRegion,
} from "./types.ts";
import { resolveOptions, MAX_BLOCK_ID, WASM_PAGE_BYTES, type ResolvedMemoryOptions } from "./options.ts";
import { internal, PagePool } from "./page-pool.ts";
import { KvSpaceImpl, type SpaceHost } from "./kv-space.ts";
import { WeightArena } from "./weight-arena.ts";
import { compact } from "./compaction.ts";
import { assertSound, auditProblems, takeSnapshot, type AccountingView } from "./accounting.ts";

export class DeviceMemory implements DeviceMemoryApi, SpaceHost {
  /** The options with every default filled in. */
  readonly options: Readonly<Required<DeviceMemoryOptions>>;
  readonly memory: WebAssembly.Memory | null;
  readonly settings: ResolvedMemoryOptions;
  readonly pool: PagePool;
  readonly headroomPages: number;
  readonly minReservedPages: number;
  readonly maxReservedPages: number;
  totalReservedPages: number;

  private readonly arena: WeightArena;
  /** Live spaces by slot (the pool's owner tag); null = free slot. */
  private readonly spaces: (KvSpaceImpl | null)[];
  private readonly spaceByModel: Map<ModelId, KvSpaceImpl>;
  private readonly moveListeners: WeightMoveListener[];
  private numCompactions: number;
  private compactionMovedBytes: number;

  constructor(opts: DeviceMemoryOptions) {
    const s = resolveOptions(opts);
    this.settings = s;
    this.options = Object.freeze({
      budgetBytes: s.budgetBytes, pageBytes: s.pageBytes, kvHeadroomFraction: s.kvHeadroomFraction,
      minReservedPages: s.minReservedPages, maxReservedPages: s.maxReservedPages, backed: s.backed,
      shared: s.shared, prefixBytes: s.prefixBytes,
    });
    this.memory = s.backed ? createBacking(s) : null;
    this.pool = new PagePool(s.totalPages, s.pageBytes, s.prefixBytes, this.memory === null ? null : new Uint8Array(this.memory.buffer));
    this.headroomPages = s.headroomPages;
    this.minReservedPages = s.minReservedPages;
    this.maxReservedPages = s.maxReservedPages;
    this.totalReservedPages = 0;
    this.arena = new WeightArena(this.pool);
    this.spaces = [];
    this.spaceByModel = new Map();
    this.moveListeners = [];
    this.numCompactions = 0;
    this.compactionMovedBytes = 0;
  }

  // ---- KV spaces --------------------------------------------------------------------------------

  /** One space per model per device; its virtual capacity is the whole device. */
  createKvSpace(modelId: ModelId, opts: KvSpaceOptions): KvSpaceImpl {
    if (typeof modelId !== "string" || modelId.length === 0) throw badArg("modelId", modelId, "a non-empty string");
    if (this.spaceByModel.has(modelId)) throw badArg("modelId", modelId, "a model without a KV space on this device");
    const { bytesPerTokenPerLayer, numLayers, blockTokens } = opts;
    for (const [name, v] of [["bytesPerTokenPerLayer", bytesPerTokenPerLayer], ["numLayers", numLayers], ["blockTokens", blockTokens]] as const) {
      if (!Number.isSafeInteger(v) || v <= 0) throw badArg(name, v, "a positive integer");
    }
    const blockBytes = blockTokens * numLayers * bytesPerTokenPerLayer;
    const pageBytes = this.settings.pageBytes;
    if (!Number.isSafeInteger(blockBytes) || blockBytes > pageBytes) {
      throw new PrismError(
        "PRISM_MEM_BLOCK_TOO_LARGE",
        `a KV block of ${modelId} (${blockTokens} tokens × ${numLayers} layers × ${bytesPerTokenPerLayer} B = ${blockBytes} B) does not fit in one ${pageBytes} B page; use fewer blockTokens or larger pages`,
        { modelId, blockBytes, pageBytes },
      );
    }
    const blocksPerPage = Math.floor(pageBytes / blockBytes);
    if (this.settings.totalPages * blocksPerPage > MAX_BLOCK_ID) {
      throw badArg("blockTokens", blockTokens, `large enough that block ids fit in int32 (${this.settings.totalPages} pages × ${blocksPerPage} blocks)`);
    }
    let slot = this.spaces.indexOf(null);
    if (slot < 0) slot = this.spaces.length;
    const space = new KvSpaceImpl(this, slot, modelId, { bytesPerTokenPerLayer, numLayers, blockTokens, blockBytes, blocksPerPage });
    this.spaces[slot] = space;
    this.spaceByModel.set(modelId, space);
    return space;
  }

  destroyKvSpace(space: KvSpace): void {
    const impl = this.ownSpace(space);
    if (impl.usedBlocks > 0) {
      throw new PrismError("PRISM_MEM_SPACE_BUSY", `KV space of ${impl.modelId} still holds ${impl.usedBlocks} blocks`, {
        modelId: impl.modelId, usedBlocks: impl.usedBlocks,
      });
    }
    impl.destroy();
    this.spaces[impl.slot] = null;
    this.spaceByModel.delete(impl.modelId);
  }

  /** The live KV space of a model on this device, or null. */
  kvSpace(modelId: ModelId): KvSpaceImpl | null {
    return this.spaceByModel.get(modelId) ?? null;
  }

  /** Free pages above the headroom plus every space's idle reserved pages (all of which a space can take). */
  freeKvPages(): number {
    return Math.max(0, this.pool.freePages - this.headroomPages) + this.totalReservedPages;
  }

  // ---- SpaceHost (called by KvSpaceImpl) --------------------------------------------------------

  stealReservedPage(thief: KvSpaceImpl): number {
    let victim: KvSpaceImpl | null = null;
    for (const s of this.spaces) {
      if (s !== null && s !== thief && s.reservedPages > 0 && (victim === null || s.reservedPages > victim.reservedPages)) victim = s;
    }
    return victim === null ? -1 : victim.popReservedPage();
  }

  isHeldElsewhere(space: KvSpaceImpl, blockId: number): boolean {
    for (const s of this.spaces) if (s !== null && s !== space && s.isHeld(blockId)) return true;
    return false;
  }

  // ---- weights ----------------------------------------------------------------------------------

  /**
   * A contiguous region of whole pages for a model's weights, or null when the free memory (free
   * pages + every space's reserved pages) cannot hold it. Tries, in order: a free run as things
   * stand; a free run after releasing all reserved KV pages; a compaction.
   *
   * Contract: call only at a safe point between steps (no kernel running). A compaction may move
   * KV pages (block ids stay valid, blockByteOffset changes) and other weight regions (listeners
   * registered with onWeightsMoved are told synchronously, after the bytes are copied and before
   * this returns).
   */
  allocWeights(modelId: ModelId, bytes: number): WeightRegion | null {
    if (typeof modelId !== "string" || modelId.length === 0) throw badArg("modelId", modelId, "a non-empty string");
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw badArg("bytes", bytes, "a positive integer");
    if (this.arena.get(modelId) !== null) throw badArg("modelId", modelId, "a model without weights on this device");
    const pool = this.pool;
    const numPages = Math.ceil(bytes / pool.pageBytes);
    if (numPages > pool.freePages + this.totalReservedPages) return null;
    let first = pool.freePages >= numPages ? pool.findFreeRunFromTop(numPages) : -1;
    if (first < 0 && this.totalReservedPages > 0) {
      this.releaseAllReserved();
      first = pool.findFreeRunFromTop(numPages);
    }
    if (first < 0) {
      this.releaseAllReserved();
      const result = compact(pool, this.arena, this.liveSpaces());
      this.numCompactions++;
      this.compactionMovedBytes += result.movedBytes;
      first = pool.findFreeRunFromTop(numPages);
      if (first < 0) throw internal(`no free run of ${numPages} pages after compaction (${pool.freePages} free)`);
      for (const m of result.weightMoves) {
        for (const listener of this.moveListeners) listener(m.region.modelId, m.oldByteOffset, m.region.byteOffset);
      }
    }
    return this.arena.place(modelId, bytes, numPages, first);
  }

  /** Give a model's weight pages back (eviction). The executor must have stopped using them. */
  freeWeights(modelId: ModelId): void {
    const region = this.arena.get(modelId);
    if (region === null) {
      throw new PrismError("PRISM_MEM_UNKNOWN_REGION", `${String(modelId)} has no weights on this device`, { modelId });
    }
    this.arena.remove(region);
  }

  weightRegion(modelId: ModelId): WeightRegion | null {
    return this.arena.get(modelId);
  }

  /** allocWeights succeeds for any size up to this (compacting if it must). */
  maxWeightBytes(): number {
    return (this.pool.freePages + this.totalReservedPages) * this.pool.pageBytes;
  }

  onWeightsMoved(listener: WeightMoveListener): void {
    this.moveListeners.push(listener);
  }

  // ---- accounting -------------------------------------------------------------------------------

  snapshot(): MemorySnapshot {
    return takeSnapshot(this.accountingView());
  }

  /** Broken invariants, recounted from the page tables (empty when sound). Tests and debugging. */
  auditProblems(): string[] {
    return auditProblems(this.accountingView());
  }

  /** Throws PRISM_INTERNAL when an invariant is broken. */
  audit(): void {
    assertSound(this.accountingView());
  }

  // ---- internals --------------------------------------------------------------------------------

  private accountingView(): AccountingView {
    return {
      settings: this.settings,
      pool: this.pool,
      arena: this.arena,
      liveSpaces: this.liveSpaces(),
      totalReservedPages: this.totalReservedPages,
      numCompactions: this.numCompactions,
      compactionMovedBytes: this.compactionMovedBytes,
    };
  }

  private releaseAllReserved(): void {
    for (const s of this.spaces) if (s !== null) s.releaseAllReserved();
  }

  private liveSpaces(): KvSpaceImpl[] {
    return this.spaces.filter((s): s is KvSpaceImpl => s !== null);
  }

  private ownSpace(space: KvSpace): KvSpaceImpl {
    if (space instanceof KvSpaceImpl && this.spaces[space.slot] === space) return space;
    throw new PrismError("PRISM_MEM_UNKNOWN_SPACE", `KV space of ${String(space?.modelId)} does not exist on this device (destroyed, or another device's)`, {
      modelId: space?.modelId,
    });
  }
}

function createBacking(s: ResolvedMemoryOptions): WebAssembly.Memory {
  const wasmPages = Math.ceil((s.prefixBytes + s.budgetBytes) / WASM_PAGE_BYTES);
  try {
    return new WebAssembly.Memory({ initial: wasmPages, maximum: wasmPages, shared: s.shared });
  } catch (e) {
    throw new PrismError(
      "PRISM_MEM_BUDGET_TOO_LARGE",
      `cannot allocate a WebAssembly.Memory of ${wasmPages} × 64 KiB for a ${s.budgetBytes} B budget: ${(e as Error).message}`,
      { budgetBytes: s.budgetBytes, prefixBytes: s.prefixBytes },
      { cause: e },
    );
  }
}

function badArg(name: string, value: unknown, what: string): PrismError {
  return new PrismError("PRISM_MEM_INVALID_ARGUMENT", `${name}=${String(value)} must be ${what}`, { [name]: value });
}
