/**
 * Binary min-heap over numeric keys, for the device's request queues. Keys and tie-breaks live in
 * typed arrays by slot (a slot is stable while its item is in the heap; the item remembers it), so
 * sifting compares contiguous numbers instead of chasing item objects (a re-key of a long queue
 * touches each request once), and push/pop/remove allocate nothing once grown. Removal by item
 * (cancel, drain) is O(log n). An item is in at most one heap at a time.
 *
 * The sift rules are those of the textbook array heap, so the array order (forEach, drain) depends
 * only on the sequence of operations and keys, never on slot numbers.
 */

export interface HeapItem {
  /** Primary order (smaller first). Written by the owner before push; the heap copies it. */
  heapKey: number;
  /** Secondary order, unique per item (submission sequence), so the order is total and deterministic. */
  heapTie: number;
  /** The item's slot in its heap; -1 when not in a heap. Managed by the heap. */
  heapIndex: number;
}

const INITIAL_CAPACITY = 8;

export class MinHeap<T extends HeapItem> {
  /** By slot; null = free slot. */
  private items: (T | null)[] = [];
  private keys: Float64Array = new Float64Array(INITIAL_CAPACITY);
  private ties: Float64Array = new Float64Array(INITIAL_CAPACITY);
  /** Heap position → slot. */
  private slotAt: Int32Array = new Int32Array(INITIAL_CAPACITY);
  /** Slot → heap position. */
  private posOf: Int32Array = new Int32Array(INITIAL_CAPACITY);
  private freeSlots: Int32Array = new Int32Array(INITIAL_CAPACITY);
  private numFree = 0;
  private n = 0;

  get size(): number {
    return this.n;
  }

  peek(): T | null {
    return this.n === 0 ? null : this.items[this.slotAt[0]!]!;
  }

  push(item: T): void {
    let slot: number;
    if (this.numFree > 0) {
      slot = this.freeSlots[--this.numFree]!;
    } else {
      slot = this.items.length;
      if (slot === this.keys.length) this.grow();
      this.items.push(null);
    }
    this.items[slot] = item;
    this.keys[slot] = item.heapKey;
    this.ties[slot] = item.heapTie;
    item.heapIndex = slot;
    this.up(this.n++, slot);
  }

  pop(): T | null {
    if (this.n === 0) return null;
    const topSlot = this.slotAt[0]!;
    const top = this.items[topSlot]!;
    const lastSlot = this.slotAt[--this.n]!;
    if (lastSlot !== topSlot) this.down(0, lastSlot);
    this.release(topSlot, top);
    return top;
  }

  /** Remove an item that is in this heap. */
  remove(item: T): void {
    const slot = item.heapIndex;
    if (slot < 0 || slot >= this.items.length || this.items[slot] !== item) throw new Error("MinHeap.remove: item is not in this heap");
    const i = this.posOf[slot]!;
    const lastSlot = this.slotAt[--this.n]!;
    this.release(slot, item);
    if (lastSlot === slot) return;
    if (i > 0 && this.less(lastSlot, this.slotAt[(i - 1) >> 1]!)) this.up(i, lastSlot);
    else this.down(i, lastSlot);
  }

  has(item: T): boolean {
    return item.heapIndex >= 0 && item.heapIndex < this.items.length && this.items[item.heapIndex] === item;
  }

  /** Re-establish heap order after the owner rewrote keys (O(n)). */
  rebuild(): void {
    for (let i = 0; i < this.n; i++) {
      const slot = this.slotAt[i]!;
      const item = this.items[slot]!;
      this.keys[slot] = item.heapKey;
      this.ties[slot] = item.heapTie;
    }
    for (let i = (this.n >> 1) - 1; i >= 0; i--) this.down(i, this.slotAt[i]!);
  }

  /** Visit every item, in array (not priority) order. */
  forEach(fn: (item: T) => void): void {
    for (let i = 0; i < this.n; i++) fn(this.items[this.slotAt[i]!]!);
  }

  /** Remove and return all items, in array order. */
  drain(): T[] {
    const out: T[] = [];
    this.drainInto(out);
    return out;
  }

  /** Remove all items, appending them to `out` in array order. */
  drainInto(out: T[]): void {
    for (let i = 0; i < this.n; i++) {
      const item = this.items[this.slotAt[i]!]!;
      item.heapIndex = -1;
      out.push(item);
    }
    this.n = 0;
    this.numFree = 0;
    this.items.length = 0;
  }

  private release(slot: number, item: T): void {
    item.heapIndex = -1;
    this.items[slot] = null;
    this.freeSlots[this.numFree++] = slot;
  }

  /** Move `slot` up from position i (a hole) to its place. */
  private up(i: number, slot: number): void {
    const slotAt = this.slotAt;
    const posOf = this.posOf;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const ps = slotAt[p]!;
      if (!this.less(slot, ps)) break;
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
    const posOf = this.posOf;
    const n = this.n;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      let cs = slotAt[l]!;
      if (r < n) {
        const rs = slotAt[r]!;
        if (this.less(rs, cs)) {
          c = r;
          cs = rs;
        }
      }
      if (!this.less(cs, slot)) break;
      slotAt[i] = cs;
      posOf[cs] = i;
      i = c;
    }
    slotAt[i] = slot;
    posOf[slot] = i;
  }

  private less(a: number, b: number): boolean {
    const ka = this.keys[a]!;
    const kb = this.keys[b]!;
    return ka < kb || (ka === kb && this.ties[a]! < this.ties[b]!);
  }

  private grow(): void {
    const cap = this.keys.length * 2;
    const f64 = (s: Float64Array): Float64Array => {
      const d = new Float64Array(cap);
      d.set(s);
      return d;
    };
    const i32 = (s: Int32Array): Int32Array => {
      const d = new Int32Array(cap);
      d.set(s);
      return d;
    };
    this.keys = f64(this.keys);
    this.ties = f64(this.ties);
    this.slotAt = i32(this.slotAt);
    this.posOf = i32(this.posOf);
    this.freeSlots = i32(this.freeSlots);
  }
}
