/**
 * One model's elastic KV space on one device: a virtual page table as large as the device, whose
 * pages are mapped to physical pages on first use, and blocks carved out of those pages.
 *
 * Who calls it: the device scheduler, every step (allocInto / free / availableBlocks /
 * blockByteOffset), and the global scheduler's executor (setLimit). Single-threaded: the page
 * accounting is plain fields, not atomics.
 *
 * Where a page for new blocks comes from, in order (kvcached's alloc + alloc_page):
 *   1. free slots of this space's partially used pages, best fit (smallest page whose free count
 *      covers the remaining need, else the emptiest page);
 *   2. this space's reserved pool (mapped, idle pages: no device bookkeeping);
 *   3. the device free list, lowest page first, while mapped < limit and free > headroom;
 *   4. another space's reserved pool (reserves are a cache, not a quota: see README).
 * An allocation is all-or-nothing: availableBlocks() is checked first, and because the device is
 * single-threaded nothing can take the pages between the check and the carve (kvcached's
 * KVCachePoolExhausted race does not exist here).
 *
 * Block id = virtualPage × blocksPerPage + slot; ids are per space (two spaces may hold the same
 * number). Hot-path data are typed arrays grown on the slow path only (the virtual table is
 * lazily sized up to totalPages, so a simulator with thousands of idle spaces stays small).
 */
import { PrismError } from "../core/errors.ts";
import type { BlockId, ModelId } from "../core/ids.ts";
import type { KvSpace, SetLimitResult, SetLimitStatus, SpaceSnapshot } from "./types.ts";
import { internal, popcount32, type PagePool } from "./page-pool.ts";
import { TAG_RESERVED, type PageHolder } from "./ownership.ts";

/** What a KV space needs from its device. Implemented by DeviceMemory. */
export interface SpaceHost {
  readonly pool: PagePool;
  readonly headroomPages: number;
  readonly minReservedPages: number;
  readonly maxReservedPages: number;
  /** Sum of reservedPages over all live spaces of the device. */
  totalReservedPages: number;
  /** Take one reserved page from the other space holding the most; -1 when no other space has one. */
  stealReservedPage(thief: KvSpaceImpl): number;
  /** True when a live space other than `space` holds `blockId` (error classification only). */
  isHeldElsewhere(space: KvSpaceImpl, blockId: number): boolean;
}

export interface KvGeometry {
  readonly bytesPerTokenPerLayer: number;
  readonly numLayers: number;
  readonly blockTokens: number;
  readonly blockBytes: number;
  readonly blocksPerPage: number;
}

const INITIAL_VIRTUAL_PAGES = 16;

export class KvSpaceImpl implements KvSpace, PageHolder {
  readonly modelId: ModelId;
  readonly blockTokens: number;
  readonly blockBytes: number;
  readonly blocksPerPage: number;
  readonly bytesPerTokenPerLayer: number;
  readonly numLayers: number;
  /** Owner id of this space's pages in the ownership map (slot in DeviceMemory's space table). */
  readonly slot: number;

  private readonly host: SpaceHost;
  private readonly pool: PagePool;
  private readonly maxVirtualPages: number;
  private readonly wordsPerPage: number;
  /** Mask of the valid slot bits in a page's last usedBits word. */
  private readonly lastWordMask: number;

  // Virtual page table, lazily grown to maxVirtualPages.
  private capacity: number;
  private highWater: number;
  private virtToPhys: Int32Array;
  private freeCount: Int32Array;
  private usedBits: Uint32Array;
  private bucketNext: Int32Array;
  private bucketPrev: Int32Array;
  /** Released virtual page indices, reused LIFO so the table stays dense. */
  private freeVirt: Int32Array;
  private numFreeVirt: number;
  /** Partially used pages, bucketed by free slot count (1 .. blocksPerPage-1). */
  private readonly bucketHead: Int32Array;
  private readonly bucketBits: Uint32Array;

  private readonly reserved: Int32Array;
  private numReserved: number;

  private numUsedBlocks: number;
  private numUsedPages: number;
  private numFreeSlots: number;

  private limitPagesValue: number;
  private limitRequestedBytes: number | null;
  private limitRevisionValue: number;
  private inShrinkValue: boolean;
  private alive: boolean;

  constructor(host: SpaceHost, slot: number, modelId: ModelId, g: KvGeometry) {
    this.modelId = modelId;
    this.blockTokens = g.blockTokens;
    this.blockBytes = g.blockBytes;
    this.blocksPerPage = g.blocksPerPage;
    this.bytesPerTokenPerLayer = g.bytesPerTokenPerLayer;
    this.numLayers = g.numLayers;
    this.slot = slot;
    this.host = host;
    this.pool = host.pool;
    this.maxVirtualPages = host.pool.totalPages;
    this.wordsPerPage = Math.ceil(g.blocksPerPage / 32);
    const tailBits = g.blocksPerPage & 31;
    // int32 (not uint32) so it compares equal to `word & mask` below.
    this.lastWordMask = tailBits === 0 ? -1 : ((1 << tailBits) - 1) | 0;

    this.capacity = Math.min(INITIAL_VIRTUAL_PAGES, this.maxVirtualPages);
    this.highWater = 0;
    this.virtToPhys = new Int32Array(this.capacity).fill(-1);
    this.freeCount = new Int32Array(this.capacity);
    this.usedBits = new Uint32Array(this.capacity * this.wordsPerPage);
    this.bucketNext = new Int32Array(this.capacity);
    this.bucketPrev = new Int32Array(this.capacity);
    this.freeVirt = new Int32Array(this.capacity);
    this.numFreeVirt = 0;
    this.bucketHead = new Int32Array(g.blocksPerPage + 1).fill(-1);
    this.bucketBits = new Uint32Array(Math.ceil((g.blocksPerPage + 1) / 32));

    this.reserved = new Int32Array(Math.max(host.maxReservedPages, host.minReservedPages));
    this.numReserved = 0;
    this.numUsedBlocks = 0;
    this.numUsedPages = 0;
    this.numFreeSlots = 0;
    this.limitPagesValue = this.maxVirtualPages;
    this.limitRequestedBytes = null;
    this.limitRevisionValue = -1;
    this.inShrinkValue = false;
    this.alive = true;
  }

  // ---- read-only state --------------------------------------------------------------------------

  get usedBlocks(): number {
    return this.numUsedBlocks;
  }
  /** Pages holding at least one used block. */
  get usedPages(): number {
    return this.numUsedPages;
  }
  get mappedPages(): number {
    return this.numUsedPages + this.numReserved;
  }
  get reservedPages(): number {
    return this.numReserved;
  }
  /** Free slots inside used pages. */
  get freeSlotsInUsedPages(): number {
    return this.numFreeSlots;
  }
  get limitPages(): number {
    return this.limitPagesValue;
  }
  get limitRevision(): number {
    return this.limitRevisionValue;
  }
  get inShrink(): boolean {
    return this.inShrinkValue;
  }
  get isAlive(): boolean {
    return this.alive;
  }
  /** Blocks needed to hold numTokens tokens. */
  blocksForTokens(numTokens: number): number {
    return Math.ceil(numTokens / this.blockTokens);
  }

  // ---- hot path ---------------------------------------------------------------------------------

  availableBlocks(): number {
    this.assertAlive();
    let pages = this.numReserved;
    if (!this.inShrinkValue) {
      const room = this.limitPagesValue - this.numUsedPages - this.numReserved;
      if (room > 0) {
        const freeAboveHeadroom = Math.max(0, this.pool.freePages - this.host.headroomPages);
        const othersReserved = this.host.totalReservedPages - this.numReserved;
        pages += Math.min(room, freeAboveHeadroom + othersReserved);
      }
    }
    return this.numFreeSlots + pages * this.blocksPerPage;
  }

  allocInto(numBlocks: number, out: Int32Array, outStart: number): boolean {
    if (!this.alive) throw this.deadError();
    if (numBlocks !== (numBlocks | 0) || numBlocks < 0) throw badArg("numBlocks", numBlocks, "a non-negative integer");
    if (outStart !== (outStart | 0) || outStart < 0 || outStart + numBlocks > out.length) {
      throw badArg("outStart", outStart, `an integer with outStart + numBlocks <= out.length (${out.length})`);
    }
    if (numBlocks === 0) return true;
    if (numBlocks > this.numFreeSlots && this.availableBlocks() < numBlocks) return false;

    let pos = outStart;
    let remaining = numBlocks;
    while (remaining > 0 && this.numFreeSlots > 0) {
      const vp = this.pickPartialPage(remaining);
      const take = Math.min(this.freeCount[vp]!, remaining);
      this.carve(vp, take, out, pos);
      pos += take;
      remaining -= take;
    }
    if (remaining === 0) return true;
    while (remaining > 0) {
      const vp = this.mapFreshPage();
      const take = Math.min(this.blocksPerPage, remaining);
      this.carve(vp, take, out, pos);
      pos += take;
      remaining -= take;
    }
    this.topUpReserved();
    return true;
  }

  alloc(numBlocks: number): BlockId[] | null {
    if (numBlocks !== (numBlocks | 0) || numBlocks < 0) throw badArg("numBlocks", numBlocks, "a non-negative integer");
    if (numBlocks > this.numFreeSlots && numBlocks > this.availableBlocks()) return null; // before sizing `out`
    const out = new Int32Array(numBlocks);
    return this.allocInto(numBlocks, out, 0) ? Array.from(out) : null;
  }

  free(blockIds: ArrayLike<number>, start = 0, count: number = blockIds.length - start): void {
    if (!this.alive) throw this.deadError();
    if (start !== (start | 0) || start < 0 || count !== (count | 0) || count < 0 || start + count > blockIds.length) {
      throw badArg("start/count", `${start}/${count}`, `a range inside blockIds (length ${blockIds.length})`);
    }
    const end = start + count;
    const bpp = this.blocksPerPage;
    // Pass 1: every id is held here (nothing changes if one is not).
    for (let i = start; i < end; i++) {
      const id = blockIds[i]!;
      if (!this.isHeld(id)) throw this.notHeldError(id);
    }
    // Pass 2: clear used bits; a repeat inside the batch finds its bit clear → undo and throw.
    for (let i = start; i < end; i++) {
      const id = blockIds[i]!;
      const vp = (id / bpp) | 0;
      const slot = id - vp * bpp;
      const w = vp * this.wordsPerPage + (slot >>> 5);
      const bit = 1 << (slot & 31);
      const word = this.usedBits[w]!;
      if ((word & bit) === 0) {
        for (let j = start; j < i; j++) this.setUsedBit(blockIds[j]!);
        throw new PrismError("PRISM_MEM_DOUBLE_FREE", `block ${id} appears twice in one free() batch of ${this.modelId}`, { modelId: this.modelId, blockId: id });
      }
      this.usedBits[w] = word & ~bit;
    }
    // Pass 3: page accounting.
    for (let i = start; i < end; i++) {
      const vp = (blockIds[i]! / bpp) | 0;
      const before = this.freeCount[vp]!;
      const after = before + 1;
      this.numUsedBlocks--;
      this.freeCount[vp] = after;
      if (after === bpp) {
        if (before > 0) this.unlinkBucket(vp, before);
        this.numFreeSlots -= before;
        this.releaseVirtualPage(vp);
      } else {
        this.moveBucket(vp, before, after);
        this.numFreeSlots++;
      }
    }
    if (this.inShrinkValue && this.numUsedPages + this.numReserved <= this.limitPagesValue) this.inShrinkValue = false;
  }

  blockByteOffset(blockId: BlockId): number {
    if (!this.alive) throw this.deadError();
    if (!this.isHeld(blockId)) throw this.notHeldError(blockId);
    const vp = (blockId / this.blocksPerPage) | 0;
    const slot = blockId - vp * this.blocksPerPage;
    return this.pool.pageByteOffset(this.virtToPhys[vp]!) + slot * this.blockBytes;
  }

  // ---- limits -----------------------------------------------------------------------------------

  /**
   * kvcached control.py semantics, per space. Called by the global scheduler's executor with
   * monotonically increasing revisions; a repeat of the last (revision, bytes) is idempotent.
   */
  setLimit(bytes: number, revision: number): SetLimitResult {
    if (!this.alive) throw this.deadError();
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw badArg("bytes", bytes, "a non-negative integer");
    if (!Number.isSafeInteger(revision) || revision < 0) throw badArg("revision", revision, "a non-negative integer");
    if (this.limitRevisionValue >= 0) {
      if (revision < this.limitRevisionValue) return this.limitResult("stale");
      if (revision === this.limitRevisionValue) {
        if (bytes !== this.limitRequestedBytes) return this.limitResult("conflict");
        return this.limitResult(this.inShrinkValue ? "deferred" : "applied");
      }
    }
    this.limitRevisionValue = revision;
    this.limitRequestedBytes = bytes;
    this.limitPagesValue = Math.min(this.maxVirtualPages, Math.floor(bytes / this.pool.pageBytes));
    while (this.numReserved > 0 && this.numUsedPages + this.numReserved > this.limitPagesValue) {
      this.releaseReservedToDevice();
    }
    this.inShrinkValue = this.numUsedPages > this.limitPagesValue;
    return this.limitResult(this.inShrinkValue ? "deferred" : "applied");
  }

  private limitResult(status: SetLimitStatus): SetLimitResult {
    const pageBytes = this.pool.pageBytes;
    const mappedPages = this.numUsedPages + this.numReserved;
    return {
      status,
      effectiveLimitBytes: this.limitPagesValue * pageBytes,
      mappedBytes: mappedPages * pageBytes,
      overageBytes: Math.max(0, mappedPages - this.limitPagesValue) * pageBytes,
    };
  }

  // ---- device-facing (DeviceMemory, compaction, accounting) --------------------------------------

  /** Pop one reserved page for another space or for weights (caller re-owns it). -1 when none. */
  popReservedPage(): number {
    if (this.numReserved === 0) return -1;
    this.host.totalReservedPages--;
    return this.reserved[--this.numReserved]!;
  }

  /** Give every reserved page back to the device free list. */
  releaseAllReserved(): void {
    while (this.numReserved > 0) this.releaseReservedToDevice();
  }

  /** Compaction moved virtual page vp's contents to physical page newPhys (bytes already copied). */
  relocate(vp: number, newPhys: number): void {
    this.virtToPhys[vp] = newPhys;
  }

  /** Called by DeviceMemory.destroyKvSpace once usedBlocks is 0. */
  destroy(): void {
    this.releaseAllReserved();
    this.alive = false;
  }

  /** Is blockId held in this space right now? Cheap; no throw. */
  isHeld(id: number): boolean {
    if (id !== (id | 0) || id < 0) return false;
    const vp = (id / this.blocksPerPage) | 0;
    if (vp >= this.highWater || this.virtToPhys[vp]! < 0) return false;
    const slot = id - vp * this.blocksPerPage;
    return (this.usedBits[vp * this.wordsPerPage + (slot >>> 5)]! & (1 << (slot & 31))) !== 0;
  }

  snapshot(): SpaceSnapshot {
    return {
      modelId: this.modelId,
      blockTokens: this.blockTokens,
      blockBytes: this.blockBytes,
      usedBlocks: this.numUsedBlocks,
      mappedPages: this.numUsedPages + this.numReserved,
      reservedPages: this.numReserved,
      limitBytes: this.limitRequestedBytes === null ? null : this.limitPagesValue * this.pool.pageBytes,
      limitRevision: this.limitRevisionValue,
      inShrink: this.inShrinkValue,
      usedPages: this.numUsedPages,
      freeSlotsInUsedPages: this.numFreeSlots,
      availableBlocks: this.availableBlocks(),
    };
  }

  /** List every page this space holds (ownership map for compaction and audit). */
  claimPages(claim: (page: number, owner: number, tag: number) => void): void {
    for (let vp = 0; vp < this.highWater; vp++) {
      const p = this.virtToPhys[vp]!;
      if (p >= 0) claim(p, this.slot, vp);
    }
    for (let i = 0; i < this.numReserved; i++) claim(this.reserved[i]!, this.slot, TAG_RESERVED);
  }

  /** Recompute every counter from the tables and report mismatches (tests, debugging). */
  audit(problems: string[]): void {
    let usedPages = 0;
    let usedBlocks = 0;
    let freeSlots = 0;
    for (let vp = 0; vp < this.highWater; vp++) {
      const p = this.virtToPhys[vp]!;
      if (p < 0) continue;
      usedPages++;
      let used = 0;
      for (let w = 0; w < this.wordsPerPage; w++) used += popcount32(this.usedBits[vp * this.wordsPerPage + w]!);
      if (used === 0) problems.push(`${this.modelId}: mapped vp ${vp} has no used block`);
      if (used + this.freeCount[vp]! !== this.blocksPerPage) problems.push(`${this.modelId}: vp ${vp} free count ${this.freeCount[vp]} vs used ${used}`);
      usedBlocks += used;
      freeSlots += this.freeCount[vp]!;
    }
    let inBuckets = 0;
    for (let c = 1; c < this.blocksPerPage; c++) {
      for (let vp = this.bucketHead[c]!; vp >= 0; vp = this.bucketNext[vp]!) {
        inBuckets++;
        if (this.freeCount[vp] !== c) problems.push(`${this.modelId}: vp ${vp} in bucket ${c} has ${this.freeCount[vp]} free`);
      }
      const bit = (this.bucketBits[c >>> 5]! >>> (c & 31)) & 1;
      if ((bit === 1) !== (this.bucketHead[c]! >= 0)) problems.push(`${this.modelId}: bucket bit ${c} wrong`);
    }
    let partial = 0;
    for (let vp = 0; vp < this.highWater; vp++) {
      const c = this.freeCount[vp]!;
      if (this.virtToPhys[vp]! >= 0 && c > 0 && c < this.blocksPerPage) partial++;
    }
    if (partial !== inBuckets) problems.push(`${this.modelId}: ${partial} partial pages, ${inBuckets} in buckets`);
    if (usedPages !== this.numUsedPages) problems.push(`${this.modelId}: usedPages ${this.numUsedPages} vs ${usedPages}`);
    if (usedBlocks !== this.numUsedBlocks) problems.push(`${this.modelId}: usedBlocks ${this.numUsedBlocks} vs ${usedBlocks}`);
    if (freeSlots !== this.numFreeSlots) problems.push(`${this.modelId}: freeSlots ${this.numFreeSlots} vs ${freeSlots}`);
    if (this.numUsedPages + this.numReserved > this.limitPagesValue && !this.inShrinkValue) {
      problems.push(`${this.modelId}: mapped ${this.numUsedPages + this.numReserved} above limit ${this.limitPagesValue} outside a shrink`);
    }
    if (this.inShrinkValue && this.numReserved > 0) problems.push(`${this.modelId}: reserved pages during a shrink`);
    if (this.numReserved > this.reserved.length) problems.push(`${this.modelId}: reserved overflow`);
  }

  // ---- internals --------------------------------------------------------------------------------

  /** Best fit: the smallest partial page with free ≥ need, else the emptiest. Needs numFreeSlots > 0. */
  private pickPartialPage(need: number): number {
    const bits = this.bucketBits;
    const maxBucket = this.blocksPerPage - 1;
    if (need <= maxBucket) {
      // Lowest non-empty bucket c ≥ need.
      let w = need >>> 5;
      let x = bits[w]! & (~0 << (need & 31));
      for (;;) {
        if (x !== 0) return this.bucketHead[(w << 5) | (31 - Math.clz32(x & -x))]!;
        if (++w >= bits.length) break;
        x = bits[w]!;
      }
    }
    // Highest non-empty bucket (all are < need).
    for (let w = bits.length - 1; w >= 0; w--) {
      const x = bits[w]!;
      if (x !== 0) return this.bucketHead[(w << 5) | (31 - Math.clz32(x))]!;
    }
    throw internal(`${this.modelId}: no partial page although ${this.numFreeSlots} free slots are counted`);
  }

  /** Take `take` free slots of mapped page vp into out[pos..]. */
  private carve(vp: number, take: number, out: Int32Array, pos: number): void {
    const bpp = this.blocksPerPage;
    const before = this.freeCount[vp]!;
    const base = vp * this.wordsPerPage;
    const lastW = this.wordsPerPage - 1;
    let left = take;
    for (let w = 0; left > 0; w++) {
      let word = this.usedBits[base + w]! | 0;
      const full = w === lastW ? this.lastWordMask : -1;
      while (left > 0 && (word & full) !== full) {
        const bit = ~word & (word + 1); // lowest clear bit
        word |= bit;
        out[pos++] = vp * bpp + (w << 5) + (31 - Math.clz32(bit));
        left--;
      }
      this.usedBits[base + w] = word;
    }
    const after = before - take;
    this.numUsedBlocks += take;
    if (before === bpp) {
      // A fresh page: not in a bucket and not counted in numFreeSlots yet.
      this.numFreeSlots += after;
      if (after > 0) this.linkBucket(vp, after);
    } else {
      this.numFreeSlots -= take;
      this.moveBucket(vp, before, after);
    }
    this.freeCount[vp] = after;
  }

  /** A page for new blocks (steps 2-4 of the order above); availability was checked by the caller. */
  private mapFreshPage(): number {
    let phys: number;
    if (this.numReserved > 0) {
      phys = this.reserved[--this.numReserved]!;
      this.host.totalReservedPages--;
    } else if (this.pool.freePages > this.host.headroomPages) {
      phys = this.pool.takeLowestFree();
    } else {
      phys = this.host.stealReservedPage(this);
    }
    if (phys < 0) throw internal(`${this.modelId}: no page although availableBlocks() said so`);
    const vp = this.nextVirtualPage();
    this.virtToPhys[vp] = phys;
    this.freeCount[vp] = this.blocksPerPage;
    this.usedBits.fill(0, vp * this.wordsPerPage, (vp + 1) * this.wordsPerPage);
    this.numUsedPages++;
    return vp;
  }

  /** kvcached's prealloc thread, run inline after a slow-path alloc: refill the reserve to min. */
  private topUpReserved(): void {
    const host = this.host;
    while (
      this.numReserved < host.minReservedPages &&
      !this.inShrinkValue &&
      this.numUsedPages + this.numReserved < this.limitPagesValue &&
      this.pool.freePages > host.headroomPages
    ) {
      this.reserved[this.numReserved++] = this.pool.takeLowestFree();
      host.totalReservedPages++;
    }
  }

  /** Page vp became empty: unmap it; its physical page goes to the reserve, or to the device. */
  private releaseVirtualPage(vp: number): void {
    const phys = this.virtToPhys[vp]!;
    this.virtToPhys[vp] = -1;
    this.freeVirt[this.numFreeVirt++] = vp;
    this.numUsedPages--;
    if (!this.inShrinkValue && this.numReserved < this.host.maxReservedPages) {
      this.reserved[this.numReserved++] = phys;
      this.host.totalReservedPages++;
    } else {
      this.pool.release(phys);
    }
  }

  private releaseReservedToDevice(): void {
    this.pool.release(this.reserved[--this.numReserved]!);
    this.host.totalReservedPages--;
  }

  private nextVirtualPage(): number {
    if (this.numFreeVirt > 0) return this.freeVirt[--this.numFreeVirt]!;
    if (this.highWater === this.capacity) this.grow();
    return this.highWater++;
  }

  /** Slow path only: double the virtual table (up to the device's page count). */
  private grow(): void {
    const cap = Math.min(this.maxVirtualPages, Math.max(this.capacity * 2, INITIAL_VIRTUAL_PAGES));
    if (cap === this.capacity) throw internal(`${this.modelId}: virtual page table exhausted`);
    const grown = (a: Int32Array, fillValue: number): Int32Array => {
      const b = new Int32Array(cap);
      b.set(a);
      if (fillValue !== 0) b.fill(fillValue, a.length);
      return b;
    };
    this.virtToPhys = grown(this.virtToPhys, -1);
    this.freeCount = grown(this.freeCount, 0);
    this.bucketNext = grown(this.bucketNext, 0);
    this.bucketPrev = grown(this.bucketPrev, 0);
    this.freeVirt = grown(this.freeVirt, 0);
    const bits = new Uint32Array(cap * this.wordsPerPage);
    bits.set(this.usedBits);
    this.usedBits = bits;
    this.capacity = cap;
  }

  private setUsedBit(id: number): void {
    const vp = (id / this.blocksPerPage) | 0;
    const slot = id - vp * this.blocksPerPage;
    const w = vp * this.wordsPerPage + (slot >>> 5);
    this.usedBits[w] = this.usedBits[w]! | (1 << (slot & 31));
  }

  private moveBucket(vp: number, from: number, to: number): void {
    if (from > 0 && from < this.blocksPerPage) this.unlinkBucket(vp, from);
    if (to > 0 && to < this.blocksPerPage) this.linkBucket(vp, to);
  }

  private linkBucket(vp: number, c: number): void {
    const head = this.bucketHead[c]!;
    this.bucketNext[vp] = head;
    this.bucketPrev[vp] = -1;
    if (head >= 0) this.bucketPrev[head] = vp;
    else this.bucketBits[c >>> 5] = this.bucketBits[c >>> 5]! | (1 << (c & 31));
    this.bucketHead[c] = vp;
  }

  private unlinkBucket(vp: number, c: number): void {
    const next = this.bucketNext[vp]!;
    const prev = this.bucketPrev[vp]!;
    if (prev >= 0) this.bucketNext[prev] = next;
    else this.bucketHead[c] = next;
    if (next >= 0) this.bucketPrev[next] = prev;
    if (this.bucketHead[c]! < 0) this.bucketBits[c >>> 5] = this.bucketBits[c >>> 5]! & ~(1 << (c & 31));
  }

  private assertAlive(): void {
    if (!this.alive) throw this.deadError();
  }

  private deadError(): PrismError {
    return new PrismError("PRISM_MEM_UNKNOWN_SPACE", `KV space of ${this.modelId} was destroyed`, { modelId: this.modelId });
  }

  private notHeldError(id: number): PrismError {
    const details = { modelId: this.modelId, blockId: id };
    if (typeof id !== "number" || id !== (id | 0) || id < 0) {
      return new PrismError("PRISM_MEM_UNKNOWN_BLOCK", `${String(id)} is not a block id (${this.modelId})`, details);
    }
    if (this.host.isHeldElsewhere(this, id)) {
      return new PrismError("PRISM_MEM_FOREIGN_BLOCK", `block ${id} is not held by ${this.modelId} but by another KV space of this device`, details);
    }
    const vp = (id / this.blocksPerPage) | 0;
    if (vp < this.highWater && this.virtToPhys[vp]! >= 0) {
      return new PrismError("PRISM_MEM_DOUBLE_FREE", `block ${id} of ${this.modelId} is not held (already freed)`, details);
    }
    return new PrismError("PRISM_MEM_UNKNOWN_BLOCK", `block ${id} is not allocated in the KV space of ${this.modelId}`, details);
  }
}

function badArg(name: string, value: unknown, what: string): PrismError {
  return new PrismError("PRISM_MEM_INVALID_ARGUMENT", `${name}=${String(value)} must be ${what}`, { [name]: value });
}
