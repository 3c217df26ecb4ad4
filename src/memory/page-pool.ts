/**
 * Physical pages of one device: which pages are free, and (when backed) the bytes. Knows nothing
 * about owners, blocks or limits; DeviceMemory, KvSpaceImpl and the weight arena decide and keep
 * their own page lists, this file only records the free set and copies bytes.
 *
 * The free set is a bitmap rather than a stack so that two directions are cheap: KV pages are taken
 * lowest-first (`takeLowestFree`) and weight regions are placed highest-first (`findFreeRunFromTop`),
 * which keeps KV at the bottom and weights at the top and leaves one free gap in between; that is
 * what keeps most weight loads from needing a compaction. One bit per page is also what lets the
 * simulator hold thousands of 80 GB accounting-only devices (40,960 × 2 MiB pages = 5 KiB each):
 * the page → owner map is rebuilt only when a compaction or an audit needs it (ownership.ts).
 */
import { PrismError } from "../core/errors.ts";

export class PagePool {
  readonly totalPages: number;
  readonly pageBytes: number;
  readonly prefixBytes: number;
  /** View over the whole WebAssembly.Memory (prefix included), or null in accounting-only mode. */
  readonly bytes: Uint8Array | null;
  /** Bit p set ⇔ page p is free. Bits past totalPages stay clear. */
  private readonly freeBits: Uint32Array;
  /** No free page lies in a word below this one. */
  private lowWord: number;
  private numFree: number;

  constructor(totalPages: number, pageBytes: number, prefixBytes: number, bytes: Uint8Array | null) {
    this.totalPages = totalPages;
    this.pageBytes = pageBytes;
    this.prefixBytes = prefixBytes;
    this.bytes = bytes;
    this.freeBits = new Uint32Array(Math.ceil(totalPages / 32));
    const fullWords = totalPages >>> 5;
    this.freeBits.fill(0xffffffff, 0, fullWords);
    if ((totalPages & 31) !== 0) this.freeBits[fullWords] = (1 << (totalPages & 31)) - 1;
    this.lowWord = 0;
    this.numFree = totalPages;
  }

  get freePages(): number {
    return this.numFree;
  }

  isFree(page: number): boolean {
    return (this.freeBits[page >>> 5]! & (1 << (page & 31))) !== 0;
  }

  pageByteOffset(page: number): number {
    return this.prefixBytes + page * this.pageBytes;
  }

  /** Take the lowest free page; -1 when none is free. */
  takeLowestFree(): number {
    const bits = this.freeBits;
    for (let w = this.lowWord; w < bits.length; w++) {
      const x = bits[w]!;
      if (x !== 0) {
        this.lowWord = w;
        const page = (w << 5) | (31 - Math.clz32(x & -x));
        this.take(page);
        return page;
      }
    }
    this.lowWord = bits.length;
    return -1;
  }

  /** Take a specific free page. */
  take(page: number): void {
    const w = page >>> 5;
    const bit = 1 << (page & 31);
    if ((this.freeBits[w]! & bit) === 0) throw internal(`page ${page} taken twice`);
    this.freeBits[w] = this.freeBits[w]! & ~bit;
    this.numFree--;
  }

  release(page: number): void {
    const w = page >>> 5;
    const bit = 1 << (page & 31);
    if ((this.freeBits[w]! & bit) !== 0) throw internal(`page ${page} released twice`);
    this.freeBits[w] = this.freeBits[w]! | bit;
    this.numFree++;
    if (w < this.lowWord) this.lowWord = w;
  }

  /** Start of the highest run of numPages free pages, or -1. Cold path (weight loads). */
  findFreeRunFromTop(numPages: number): number {
    let run = 0;
    for (let page = this.totalPages - 1; page >= 0; page--) {
      if ((page & 31) === 31 && this.freeBits[page >>> 5] === 0) {
        run = 0;
        page -= 31;
        continue;
      }
      if (this.isFree(page)) {
        if (++run === numPages) return page;
      } else {
        run = 0;
      }
    }
    return -1;
  }

  /** Copy numBytes from one page-aligned place to another (memmove semantics); no-op when not backed. */
  copyPages(srcPage: number, dstPage: number, numBytes: number): void {
    const bytes = this.bytes;
    if (bytes === null || numBytes === 0) return;
    const src = this.pageByteOffset(srcPage);
    bytes.copyWithin(this.pageByteOffset(dstPage), src, src + numBytes);
  }

  /** Recount the free set from the bitmap (tests and audit only). */
  countFreeBits(): number {
    let n = 0;
    for (let w = 0; w < this.freeBits.length; w++) n += popcount32(this.freeBits[w]!);
    return n;
  }
}

export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

export function internal(message: string, details: Record<string, unknown> = {}): PrismError {
  return new PrismError("PRISM_INTERNAL", `device memory invariant broken: ${message}`, details);
}
