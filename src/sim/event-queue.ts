/**
 * Binary min-heap of simulator events keyed by (timeUs, kindOrder, seq): earlier first; at equal
 * times the lower kindOrder first (e.g. completions before arrivals before policy ticks); then the
 * order of insertion (seq). The key is total, so a run is deterministic whatever the heap layout.
 *
 * Events are slots in parallel typed arrays (time, kind, seq, two int payloads), so pushing and
 * popping allocates nothing once the arrays have grown; the heap itself is an Int32Array of slots.
 */
export class EventQueue {
  private timeUs: Float64Array;
  private seqs: Float64Array;
  private kinds: Uint8Array;
  private a: Int32Array;
  private b: Int32Array;
  private heap: Int32Array;
  private freeSlots: Int32Array;
  private numFree = 0;
  private numSlots = 0;
  private n = 0;
  private nextSeq = 0;
  // the popped event (valid until the next pop)
  popTimeUs = 0;
  popKind = 0;
  popA = 0;
  popB = 0;

  constructor(capacity = 1024) {
    this.timeUs = new Float64Array(capacity);
    this.seqs = new Float64Array(capacity);
    this.kinds = new Uint8Array(capacity);
    this.a = new Int32Array(capacity);
    this.b = new Int32Array(capacity);
    this.heap = new Int32Array(capacity);
    this.freeSlots = new Int32Array(capacity);
  }

  get size(): number {
    return this.n;
  }

  /** Time of the earliest event (Infinity when empty). */
  peekTimeUs(): number {
    return this.n === 0 ? Infinity : this.timeUs[this.heap[0]!]!;
  }

  push(timeUs: number, kind: number, a = 0, b = 0): void {
    let slot: number;
    if (this.numFree > 0) slot = this.freeSlots[--this.numFree]!;
    else {
      if (this.numSlots === this.timeUs.length) this.grow();
      slot = this.numSlots++;
    }
    this.timeUs[slot] = timeUs;
    this.kinds[slot] = kind;
    this.seqs[slot] = this.nextSeq++;
    this.a[slot] = a;
    this.b[slot] = b;
    // sift up
    const heap = this.heap;
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const ps = heap[p]!;
      if (!this.less(slot, ps)) break;
      heap[i] = ps;
      i = p;
    }
    heap[i] = slot;
  }

  /** Remove the earliest event into popTimeUs/popKind/popA/popB; false when empty. */
  pop(): boolean {
    if (this.n === 0) return false;
    const heap = this.heap;
    const top = heap[0]!;
    this.popTimeUs = this.timeUs[top]!;
    this.popKind = this.kinds[top]!;
    this.popA = this.a[top]!;
    this.popB = this.b[top]!;
    this.freeSlots[this.numFree++] = top;
    const last = heap[--this.n]!;
    const n = this.n;
    if (n > 0) {
      // sift down
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        let cs = heap[l]!;
        if (r < n) {
          const rs = heap[r]!;
          if (this.less(rs, cs)) {
            c = r;
            cs = rs;
          }
        }
        if (!this.less(cs, last)) break;
        heap[i] = cs;
        i = c;
      }
      heap[i] = last;
    }
    return true;
  }

  private less(x: number, y: number): boolean {
    const tx = this.timeUs[x]!;
    const ty = this.timeUs[y]!;
    if (tx !== ty) return tx < ty;
    const kx = this.kinds[x]!;
    const ky = this.kinds[y]!;
    if (kx !== ky) return kx < ky;
    return this.seqs[x]! < this.seqs[y]!;
  }

  private grow(): void {
    const cap = this.timeUs.length * 2;
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
    this.timeUs = f64(this.timeUs);
    this.seqs = f64(this.seqs);
    const k = new Uint8Array(cap);
    k.set(this.kinds);
    this.kinds = k;
    this.a = i32(this.a);
    this.b = i32(this.b);
    this.heap = i32(this.heap);
    this.freeSlots = i32(this.freeSlots);
  }
}
