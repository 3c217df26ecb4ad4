/**
 * Binary min-heap over numeric keys, for the device's request queues. Items carry their own key,
 * tie-break and heap position (intrusive), so push/pop/remove allocate nothing and removal by item
 * (cancel, drain) is O(log n). An item is in at most one heap at a time.
 */

export interface HeapItem {
  /** Primary order (smaller first). Written by the owner before push / before rebuild. */
  heapKey: number;
  /** Secondary order, unique per item (submission sequence), so the order is total and deterministic. */
  heapTie: number;
  /** Position in the heap's array; -1 when not in a heap. Managed by the heap. */
  heapIndex: number;
}

export class MinHeap<T extends HeapItem> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | null {
    return this.items[0] ?? null;
  }

  push(item: T): void {
    const i = this.items.length;
    this.items.push(item);
    item.heapIndex = i;
    this.up(i);
  }

  pop(): T | null {
    const items = this.items;
    const top = items[0];
    if (top === undefined) return null;
    const last = items.pop()!;
    if (last !== top) {
      items[0] = last;
      last.heapIndex = 0;
      this.down(0);
    }
    top.heapIndex = -1;
    return top;
  }

  /** Remove an item that is in this heap. */
  remove(item: T): void {
    const items = this.items;
    const i = item.heapIndex;
    if (items[i] !== item) throw new Error("MinHeap.remove: item is not in this heap");
    const last = items.pop()!;
    item.heapIndex = -1;
    if (last === item) return;
    items[i] = last;
    last.heapIndex = i;
    if (i > 0 && less(last, items[(i - 1) >> 1]!)) this.up(i);
    else this.down(i);
  }

  has(item: T): boolean {
    return item.heapIndex >= 0 && this.items[item.heapIndex] === item;
  }

  /** Re-establish heap order after the owner rewrote keys (O(n)). */
  rebuild(): void {
    const items = this.items;
    for (let i = 0; i < items.length; i++) items[i]!.heapIndex = i;
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  /** Visit every item, in array (not priority) order. */
  forEach(fn: (item: T) => void): void {
    const items = this.items;
    for (let i = 0; i < items.length; i++) fn(items[i]!);
  }

  /** Remove and return all items, in array order. */
  drain(): T[] {
    const out = this.items.splice(0, this.items.length);
    for (const it of out) it.heapIndex = -1;
    return out;
  }

  private up(i: number): void {
    const items = this.items;
    const item = items[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p]!;
      if (!less(item, parent)) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    items[i] = item;
    item.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && less(items[r]!, items[l]!)) c = r;
      const child = items[c]!;
      if (!less(child, item)) break;
      items[i] = child;
      child.heapIndex = i;
      i = c;
    }
    items[i] = item;
    item.heapIndex = i;
  }
}

function less(a: HeapItem, b: HeapItem): boolean {
  return a.heapKey < b.heapKey || (a.heapKey === b.heapKey && a.heapTie < b.heapTie);
}
