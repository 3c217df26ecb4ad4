/**
 * Per-device pools of the typed arrays a request needs once it runs (token buffer, block table,
 * block byte offsets with their prefix views), by power-of-two size class. A request takes its
 * arrays at its first admission and gives them back when it leaves the device, so steady serving
 * allocates none of them (the simulator admits about a million requests per simulated hour; each
 * fresh ArrayBuffer also costs the garbage collector). Queued requests that never ran hold none.
 *
 * A given-back array keeps its old contents: its next owner writes every element it reads.
 */

/** Smallest class, elements. */
const MIN_ELEMENTS = 16;
/** Free arrays kept per class; beyond this they are left to the garbage collector. */
const MAX_FREE_PER_CLASS = 4096;

function classOf(numElements: number): number {
  let c = 0;
  for (let size = MIN_ELEMENTS; size < numElements; size <<= 1) c++;
  return c;
}

/**
 * Byte offsets of a request's blocks, and the views of their first n entries that a step's
 * SeqStep.blockOffsets needs (one per length, cut once and kept with the array across requests:
 * a decode needs a longer view every blockTokens tokens).
 */
export class OffsetTable {
  readonly length: number;
  readonly offsets: Uint32Array;
  /** views[n] = offsets[0, n), or null until first asked; packed (a sparse array is a slow hash). */
  private readonly views: (Uint32Array | null)[] = [];

  constructor(numElements: number) {
    this.length = numElements;
    this.offsets = new Uint32Array(numElements);
    for (let n = 0; n <= numElements; n++) this.views.push(null);
  }

  /** offsets[0, n) as a view (valid while the table is held). */
  prefix(n: number): Uint32Array {
    let v = this.views[n]!;
    if (v === null) {
      v = this.offsets.subarray(0, n);
      this.views[n] = v;
    }
    return v;
  }
}

export class ArrayPool<A extends { readonly length: number }> {
  private readonly free: A[][] = [];

  constructor(private readonly make: (numElements: number) => A) {}

  /** An array of at least numElements elements (a power of two ≥ 16). */
  take(numElements: number): A {
    const c = classOf(numElements);
    const list = this.free[c];
    if (list !== undefined && list.length > 0) return list.pop()!;
    return this.make(MIN_ELEMENTS << c);
  }

  /** Give back an array take() returned; the caller keeps no reference to it. */
  give(a: A): void {
    const c = classOf(a.length);
    let list = this.free[c];
    if (list === undefined) {
      list = [];
      this.free[c] = list;
    }
    if (list.length < MAX_FREE_PER_CLASS) list.push(a);
  }
}

export class RequestBuffers {
  readonly tokens = new ArrayPool<Int32Array>((n) => new Int32Array(n));
  readonly blocks = new ArrayPool<Int32Array>((n) => new Int32Array(n));
  readonly offsets = new ArrayPool<OffsetTable>((n) => new OffsetTable(n));
}
