/**
 * Per-device pools of the typed arrays a request needs once it runs (token buffer, block table,
 * block byte offsets), by power-of-two size class. A request takes its arrays at its first
 * admission and gives them back when it leaves the device, so steady serving allocates none of
 * them (the simulator admits about a million requests per simulated hour; each fresh ArrayBuffer
 * also costs the garbage collector). Queued requests that never ran hold none.
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

export class ArrayPool<A extends Int32Array | Uint32Array> {
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
  readonly offsets = new ArrayPool<Uint32Array>((n) => new Uint32Array(n));
}
