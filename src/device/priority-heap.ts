/**
 * Binary min-heaps over numeric keys for the device's request queues, in two parts:
 *   KeySlots — a pool of slots holding each queued item, its key and its tie-break in typed arrays
 *              (a slot is fixed while the item is queued, whichever heap holds it), with room for
 *              a few numbers of the owner's beside them (a model queue keeps a key's inputs there);
 *   SlotHeap — one heap order over some of a pool's slots (a model queue has three over one pool).
 * Sifting compares contiguous numbers and moves slot numbers, so it never touches an item object:
 * re-keying a long queue, or moving a request from one heap to another, costs no cache miss per
 * comparison, and push/pop/remove allocate nothing once the arrays have grown. A slot's numbers are
 * adjacent (one record of SLOT_STRIDE doubles), so a comparison or a re-key reads one cache line
 * per slot rather than one per array: re-keying the simulator's 70,000-request queues was bound by
 * those misses.
 *
 * Order: smaller key first, then smaller tie (unique per item, so the order is total). The sift
 * rules are those of the textbook array heap, so a heap's array order (for visits and drains)
 * depends only on the sequence of operations and keys, never on slot numbers.
 */

const INITIAL_CAPACITY = 8;

/** Doubles per slot in KeySlots.data: [key, tie, extra 0, extra 1]. */
export const SLOT_STRIDE = 4;
/** Offsets inside a slot's record (slot * SLOT_STRIDE + offset). */
export const SLOT_KEY = 0;
export const SLOT_TIE = 1;
/** The owner's numbers (KeySlots neither reads nor writes them). */
export const SLOT_EXTRA0 = 2;
export const SLOT_EXTRA1 = 3;

function grownF64(a: Float64Array, cap: number): Float64Array {
  const d = new Float64Array(cap);
  d.set(a);
  return d;
}

function grownI32(a: Int32Array, cap: number): Int32Array {
  const d = new Int32Array(cap);
  d.set(a);
  return d;
}

export class KeySlots<T> {
  /** By slot; null = free. */
  readonly items: (T | null)[] = [];
  /** Per slot, SLOT_STRIDE doubles: key, tie, and the owner's extras (replaced when it grows). */
  data: Float64Array = new Float64Array(INITIAL_CAPACITY * SLOT_STRIDE);
  /** Slot → position in the heap that holds it. */
  posOf: Int32Array = new Int32Array(INITIAL_CAPACITY);
  private freeSlots: Int32Array = new Int32Array(INITIAL_CAPACITY);
  private numFree = 0;
  private numLive = 0;

  /** Slots the typed arrays can hold (owners size their per-slot arrays to it). */
  get capacity(): number {
    return this.posOf.length;
  }

  get size(): number {
    return this.numLive;
  }

  /** A slot for item with (key, tie); the caller pushes it into a heap. */
  alloc(item: T, key: number, tie: number): number {
    let slot: number;
    if (this.numFree > 0) {
      slot = this.freeSlots[--this.numFree]!;
    } else {
      slot = this.items.length;
      if (slot === this.posOf.length) this.grow();
      this.items.push(null);
    }
    this.items[slot] = item;
    const b = slot * SLOT_STRIDE;
    this.data[b + SLOT_KEY] = key;
    this.data[b + SLOT_TIE] = tie;
    this.numLive++;
    return slot;
  }

  /** The slot is out of every heap: free it. */
  release(slot: number): void {
    this.items[slot] = null;
    this.freeSlots[this.numFree++] = slot;
    this.numLive--;
  }

  /** Free every slot at once (the heaps were emptied). */
  clear(): void {
    this.items.length = 0;
    this.numFree = 0;
    this.numLive = 0;
  }

  key(slot: number): number {
    return this.data[slot * SLOT_STRIDE + SLOT_KEY]!;
  }

  tie(slot: number): number {
    return this.data[slot * SLOT_STRIDE + SLOT_TIE]!;
  }

  less(a: number, b: number): boolean {
    const d = this.data;
    const ia = a * SLOT_STRIDE;
    const ib = b * SLOT_STRIDE;
    const ka = d[ia + SLOT_KEY]!;
    const kb = d[ib + SLOT_KEY]!;
    return ka < kb || (ka === kb && d[ia + SLOT_TIE]! < d[ib + SLOT_TIE]!);
  }

  private grow(): void {
    const cap = this.posOf.length * 2;
    this.data = grownF64(this.data, cap * SLOT_STRIDE);
    this.posOf = grownI32(this.posOf, cap);
    this.freeSlots = grownI32(this.freeSlots, cap);
  }
}

export class SlotHeap {
  /** Heap position → slot. */
  slotAt: Int32Array = new Int32Array(INITIAL_CAPACITY);
  private n = 0;

  constructor(private readonly pool: KeySlots<unknown>) {}

  get size(): number {
    return this.n;
  }

  /** The top slot, or -1 when empty. */
  peek(): number {
    return this.n === 0 ? -1 : this.slotAt[0]!;
  }

  /** Insert a slot whose key and tie are set in the pool. */
  push(slot: number): void {
    if (this.n === this.slotAt.length) this.slotAt = grownI32(this.slotAt, this.slotAt.length * 2);
    this.up(this.n++, slot);
  }

  /** Remove and return the top slot (-1 when empty); the caller releases or re-pushes it. */
  pop(): number {
    if (this.n === 0) return -1;
    const top = this.slotAt[0]!;
    const last = this.slotAt[--this.n]!;
    if (last !== top) this.down(0, last);
    return top;
  }

  /** Remove a slot this heap holds (the caller releases or re-pushes it). */
  remove(slot: number): void {
    const i = this.pool.posOf[slot]!;
    if (i >= this.n || this.slotAt[i] !== slot) throw new Error("SlotHeap.remove: slot is not in this heap");
    const last = this.slotAt[--this.n]!;
    if (last === slot) return;
    if (i > 0 && this.pool.less(last, this.slotAt[(i - 1) >> 1]!)) this.up(i, last);
    else this.down(i, last);
  }

  /** Empty the heap, leaving its slots (in array order) in slotAt[0, returned count). */
  takeAll(): number {
    const n = this.n;
    this.n = 0;
    return n;
  }

  /** slotAt can hold n slots (for an owner that rebuilds the heap in place). */
  reserve(n: number): void {
    if (this.slotAt.length < n) this.slotAt = grownI32(this.slotAt, Math.max(n, this.slotAt.length * 2));
  }

  /** The owner wrote a heap of n slots into slotAt (and their positions into the pool's posOf). */
  setSize(n: number): void {
    this.n = n;
  }

  /** Move `slot` up from position i (a hole) to its place. */
  private up(i: number, slot: number): void {
    const slotAt = this.slotAt;
    const pool = this.pool;
    const posOf = pool.posOf;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const ps = slotAt[p]!;
      if (!pool.less(slot, ps)) break;
      slotAt[i] = ps;
      posOf[ps] = i;
      i = p;
    }
    slotAt[i] = slot;
    posOf[slot] = i;
  }

  /** Move `slot` down from position i (a hole) to its place. */
  private down(i: number, slot: number): void {
    const slotAt = this.slotAt;
    const pool = this.pool;
    const posOf = pool.posOf;
    const n = this.n;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      let cs = slotAt[l]!;
      if (r < n) {
        const rs = slotAt[r]!;
        if (pool.less(rs, cs)) {
          c = r;
          cs = rs;
        }
      }
      if (!pool.less(cs, slot)) break;
      slotAt[i] = cs;
      posOf[cs] = i;
      i = c;
    }
    slotAt[i] = slot;
    posOf[slot] = i;
  }
}
