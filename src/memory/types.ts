/**
 * The contract of the device memory layer (implemented in device-memory.ts and friends).
 * Who calls it: the device scheduler (alloc/free per step, weight regions on activation), the global
 * scheduler's executor (setLimit), the gateway's admin API (snapshot), the simulator (accounting-only mode).
 * Running out is a return value (null / a status), never an exception; bad input throws PrismError
 * with a PRISM_MEM_* code and changes nothing.
 */
import type { BlockId, ModelId, PageId } from "../core/ids.ts";

export interface DeviceMemoryOptions {
  /** Total bytes managed (weights + KV pages + headroom); a multiple of pageBytes. */
  readonly budgetBytes: number;
  /** Physical page size (e.g. 64 KiB .. 2 MiB); a power of two. */
  readonly pageBytes: number;
  /** Fraction of the budget no KV space may map into (kvcached: 1 − GPU_UTILIZATION = 0.05). */
  readonly kvHeadroomFraction?: number;
  /** Reserved (pre-mapped, idle) pages kept per KV space (kvcached 5 / 10). */
  readonly minReservedPages?: number;
  readonly maxReservedPages?: number;
  /** true: back with a WebAssembly.Memory of budgetBytes (server); false: accounting only (simulator). */
  readonly backed: boolean;
  /** With backed: share the WebAssembly.Memory so a worker thread can run kernels on it. */
  readonly shared?: boolean;
  /**
   * With backed: bytes at the start of the WebAssembly.Memory that lie outside the budget and belong
   * to the executor (kernel static data, activation scratch). Page 0 starts at prefixBytes. Default 0.
   */
  readonly prefixBytes?: number;
}

export interface KvSpaceOptions {
  /** K and V bytes of one token in one layer. */
  readonly bytesPerTokenPerLayer: number;
  readonly numLayers: number;
  /** Tokens per block (e.g. 16). One block = blockTokens × numLayers × bytesPerTokenPerLayer bytes. */
  readonly blockTokens: number;
}

export type SetLimitStatus = "applied" | "deferred" | "stale" | "conflict";

export interface SetLimitResult {
  readonly status: SetLimitStatus;
  /** Limit now in force, rounded down to whole pages (bytes). */
  readonly effectiveLimitBytes: number;
  /** Bytes mapped by the space now (used + reserved pages). */
  readonly mappedBytes: number;
  /** Mapped bytes above the new limit (deferred shrink still to complete). */
  readonly overageBytes: number;
}

export interface KvSpace {
  readonly modelId: ModelId;
  readonly blockTokens: number;
  readonly blockBytes: number;
  readonly blocksPerPage: number;
  /**
   * Allocate numBlocks blocks into `out` (starting at out[outStart]) and return true, or return
   * false and change nothing when the device, this space's limit or the headroom cannot give them.
   */
  allocInto(numBlocks: number, out: Int32Array, outStart: number): boolean;
  /** Convenience form for tests and cold paths: the block ids, or null when out of memory. */
  alloc(numBlocks: number): BlockId[] | null;
  /** Return blocks. Unknown ids, double frees and blocks of another space throw and change nothing. */
  free(blockIds: ArrayLike<number>, start?: number, count?: number): void;
  /** Blocks this space could allocate right now (free slots in its pages + reserved + mappable pages). */
  availableBlocks(): number;
  /** Byte offset of a block inside the device memory (valid until the next compaction). */
  blockByteOffset(blockId: BlockId): number;
  setLimit(bytes: number, revision: number): SetLimitResult;
  readonly usedBlocks: number;
  readonly mappedPages: number;
  readonly reservedPages: number;
}

export interface WeightRegion {
  readonly modelId: ModelId;
  readonly bytes: number;
  /** Current byte offset in the device memory; changes only at compaction (see onMove). */
  readonly byteOffset: number;
}

export interface SpaceSnapshot {
  readonly modelId: ModelId;
  readonly blockTokens: number;
  readonly blockBytes: number;
  readonly usedBlocks: number;
  readonly mappedPages: number;
  readonly reservedPages: number;
  readonly limitBytes: number | null;
  readonly limitRevision: number;
  readonly inShrink: boolean;
  /** Pages holding at least one used block (mappedPages = usedPages + reservedPages). */
  readonly usedPages: number;
  /** Free block slots inside used pages (fragmentation: mapped but unusable by other models). */
  readonly freeSlotsInUsedPages: number;
  /** Blocks the space could allocate right now (KvSpace.availableBlocks()). */
  readonly availableBlocks: number;
}

export interface MemorySnapshot {
  readonly budgetBytes: number;
  readonly pageBytes: number;
  readonly totalPages: number;
  readonly freePages: number;
  readonly headroomPages: number;
  /** Pages held by weight regions (rounded up to whole pages). */
  readonly weightPages: number;
  /** Pages mapped into KV spaces (in use or reserved). */
  readonly kvPages: number;
  /** Of kvPages, the idle reserved ones (any space may take them; allocWeights may release them). */
  readonly kvReservedPages: number;
  /** Compactions run so far by allocWeights, and the bytes they moved (KV pages + weight regions). */
  readonly numCompactions: number;
  readonly compactionMovedBytes: number;
  readonly weights: readonly { readonly modelId: ModelId; readonly bytes: number; readonly pages: number; readonly byteOffset: number }[];
  readonly spaces: readonly SpaceSnapshot[];
}

export type { PageId };

/** Notified when compaction moves a weight region (the executor must re-point its views). */
export type WeightMoveListener = (modelId: ModelId, oldByteOffset: number, newByteOffset: number) => void;

/**
 * One per device. Implemented by `DeviceMemory` in device-memory.ts.
 *   new DeviceMemory(opts: DeviceMemoryOptions)
 */
export interface DeviceMemoryApi {
  readonly options: Readonly<DeviceMemoryOptions>;
  /** The backing memory (null in accounting-only mode). Never grows after construction. */
  readonly memory: WebAssembly.Memory | null;
  createKvSpace(modelId: ModelId, opts: KvSpaceOptions): KvSpace;
  /** Returns all pages of an empty space to the device; throws PRISM_MEM_SPACE_BUSY if blocks are held. */
  destroyKvSpace(space: KvSpace): void;
  /** A contiguous region for a model's weights, or null if the free memory cannot hold it (even after compaction). */
  allocWeights(modelId: ModelId, bytes: number): WeightRegion | null;
  freeWeights(modelId: ModelId): void;
  weightRegion(modelId: ModelId): WeightRegion | null;
  /** Bytes a new weight region could get now (after compaction if needed). */
  maxWeightBytes(): number;
  onWeightsMoved(listener: WeightMoveListener): void;
  /**
   * Free pages the KV spaces could still map (excludes headroom), summed over the device. Includes the
   * spaces' idle reserved pages, which any space may take when it needs a page.
   */
  freeKvPages(): number;
  snapshot(): MemorySnapshot;
}
