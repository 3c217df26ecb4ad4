/**
 * Weight regions: one contiguous run of whole pages per model (kernels read tensors in place, so a
 * region cannot be scattered like KV pages). Placed from the top of the device downwards, while KV
 * pages are taken from the bottom upwards. DeviceMemory decides when to place and when to compact;
 * this file keeps the records.
 */
import type { ModelId } from "../core/ids.ts";
import type { WeightRegion } from "./types.ts";
import { internal, type PagePool } from "./page-pool.ts";

export class WeightRegionImpl implements WeightRegion {
  readonly modelId: ModelId;
  readonly bytes: number;
  readonly numPages: number;
  /** Index in WeightArena.bySlot (the ownership map tags the region's pages with it). */
  readonly slot: number;
  /** Moves only inside a compaction. */
  firstPage: number;
  private readonly pool: PagePool;

  constructor(pool: PagePool, modelId: ModelId, bytes: number, numPages: number, slot: number, firstPage: number) {
    this.modelId = modelId;
    this.bytes = bytes;
    this.numPages = numPages;
    this.slot = slot;
    this.firstPage = firstPage;
    this.pool = pool;
  }

  get byteOffset(): number {
    return this.pool.pageByteOffset(this.firstPage);
  }
}

export class WeightArena {
  private readonly pool: PagePool;
  private readonly bySlot: (WeightRegionImpl | null)[];
  private readonly byModel: Map<ModelId, WeightRegionImpl>;
  private numWeightPages: number;

  constructor(pool: PagePool) {
    this.pool = pool;
    this.bySlot = [];
    this.byModel = new Map();
    this.numWeightPages = 0;
  }

  get weightPages(): number {
    return this.numWeightPages;
  }

  get(modelId: ModelId): WeightRegionImpl | null {
    return this.byModel.get(modelId) ?? null;
  }

  atSlot(slot: number): WeightRegionImpl {
    const r = this.bySlot[slot];
    if (r === undefined || r === null) throw internal(`no weight region in slot ${slot}`);
    return r;
  }

  regions(): IterableIterator<WeightRegionImpl> {
    return this.byModel.values();
  }

  /** Record a region on the free run [firstPage, firstPage + numPages). */
  place(modelId: ModelId, bytes: number, numPages: number, firstPage: number): WeightRegionImpl {
    let slot = this.bySlot.indexOf(null);
    if (slot < 0) slot = this.bySlot.length;
    const region = new WeightRegionImpl(this.pool, modelId, bytes, numPages, slot, firstPage);
    for (let p = firstPage; p < firstPage + numPages; p++) this.pool.take(p);
    this.bySlot[slot] = region;
    this.byModel.set(modelId, region);
    this.numWeightPages += numPages;
    return region;
  }

  remove(region: WeightRegionImpl): void {
    for (let p = region.firstPage; p < region.firstPage + region.numPages; p++) this.pool.release(p);
    this.bySlot[region.slot] = null;
    this.byModel.delete(region.modelId);
    this.numWeightPages -= region.numPages;
  }

  /** Move a region's bytes and pages to start at newFirstPage (ranges may overlap; the rest is free). */
  move(region: WeightRegionImpl, newFirstPage: number): void {
    const pool = this.pool;
    pool.copyPages(region.firstPage, newFirstPage, region.bytes);
    for (let p = region.firstPage; p < region.firstPage + region.numPages; p++) pool.release(p);
    for (let p = newFirstPage; p < newFirstPage + region.numPages; p++) pool.take(p);
    region.firstPage = newFirstPage;
  }
}
