/**
 * The queued requests of one model on one device, in three heaps over one slot pool:
 *   resume : preempted (or migrated) requests that already streamed tokens, by enqueue time. They
 *            come before any fresh request, device-wide, because their TTFT is behind them and each
 *            one blocks a stream a client is reading (vLLM puts preempted requests at the front too).
 *   onTime : fresh requests with positive slack, by latest start time (see slo-priority.ts); with
 *            policy "fcfs", every fresh request, by arrival.
 *   late   : fresh requests whose slack ran out, by estimated prefill time ("slo" only).
 *   past   : fresh requests whose TTFT deadline (arrival + SLO) has passed, by arrival ("slo" with
 *            demoteExpired). They have missed whatever happens; served before them, a request that
 *            can still make its deadline may. They come after every other request, device-wide, and
 *            fail once they have waited lateMaxWaitMs since arriving.
 * A queued request keeps its slot (Request.queueSlot) while it moves between heaps; the slot holds
 * its key and the inputs of its key (arrival, tokens) in one record (KeySlots.data), so promotion
 * and re-keying work on typed arrays, one cache line per request, and never touch the request
 * objects. The head of the queue and its cross-model priority (headClass, headValue, headTie) are
 * computed by refreshHead(now) without allocating.
 */
import type { DeviceSchedulerConfig } from "./types.ts";
import { KeySlots, SLOT_EXTRA0, SLOT_EXTRA1, SLOT_KEY, SLOT_STRIDE, SLOT_TIE, SlotHeap } from "./priority-heap.ts";
import type { Request } from "./request.ts";
import { estimatePrefillMs, latestStartMs } from "./slo-priority.ts";

/** A fresh request's key inputs, in its slot's record. */
const ARRIVAL_MS = SLOT_EXTRA0;
const NUM_TOKENS = SLOT_EXTRA1;

/** headClass of a queue whose head is past its TTFT deadline (demoteExpired). */
export const PAST_CLASS = 2;

/** Which heap holds a slot. */
const RESUME = 0;
const ON_TIME = 1;
const LATE = 2;
const PAST = 3;

export class ModelQueue {
  private readonly slots = new KeySlots<Request>();
  private readonly resume = new SlotHeap(this.slots);
  private readonly onTime = new SlotHeap(this.slots);
  private readonly late = new SlotHeap(this.slots);
  private readonly past = new SlotHeap(this.slots);
  /** Per slot: the heap that holds it. */
  private cls: Uint8Array = new Uint8Array(8);
  private scratch: Int32Array = new Int32Array(8);
  /**
   * A lower bound on the TTFT deadlines (arrival + SLO) of the requests in `late`, so that
   * promoteLate scans `late` for expired ones (abortUnreachable, demoteExpired) only when one may have expired.
   */
  private lateMinDeadlineMs = Number.POSITIVE_INFINITY;
  private readonly expired: Request[] = [];
  /** Requests past their deadline move to `past` (demoteExpired, and abortUnreachable does not fail them). */
  private readonly demotes: boolean;
  /** The estimate (ms per prefill token) the keys in onTime/late were computed with. */
  keyedMsPerToken: number;
  // Head of the queue after refreshHead(now): class 0 = resume, 1 = fresh, 2 = past its deadline;
  // value / tie order within.
  head: Request | null;
  headClass: number;
  headValue: number;
  headTie: number;

  constructor(
    private readonly cfg: DeviceSchedulerConfig,
    private readonly ttftSloMs: number,
    msPerToken: number,
  ) {
    this.keyedMsPerToken = msPerToken;
    this.demotes = cfg.demoteExpired && !cfg.abortUnreachable;
    this.head = null;
    this.headClass = 0;
    this.headValue = 0;
    this.headTie = 0;
  }

  get size(): number {
    return this.slots.size;
  }

  /** Fresh requests not yet past their latest start (slo) / all fresh ones (fcfs). */
  get numOnTime(): number {
    return this.onTime.size;
  }

  get numLate(): number {
    return this.late.size;
  }

  /** Fresh requests demoted past their TTFT deadline (demoteExpired). */
  get numPast(): number {
    return this.past.size;
  }

  /** When the longest-waiting demoted request has waited lateMaxWaitMs (Infinity when none). */
  earliestPastExpiry(): number {
    const s = this.past.peek();
    return s < 0 ? Number.POSITIVE_INFINITY : this.slots.key(s) + this.cfg.lateMaxWaitMs;
  }

  /** The smallest on-time key (a latest start time under "slo"), or Infinity. */
  earliestOnTimeKey(): number {
    const s = this.onTime.peek();
    return s < 0 ? Number.POSITIVE_INFINITY : this.slots.key(s);
  }

  push(r: Request, nowMs: number): void {
    r.enqueuedMs = nowMs;
    const slots = this.slots;
    if (r.hasStarted) {
      const slot = slots.alloc(r, nowMs, r.tieSeq);
      this.fitSlotArrays();
      r.queueSlot = slot;
      this.cls[slot] = RESUME;
      this.resume.push(slot);
      return;
    }
    const slot = slots.alloc(r, 0, r.tieSeq);
    this.fitSlotArrays();
    r.queueSlot = slot;
    const d = slots.data;
    d[slot * SLOT_STRIDE + ARRIVAL_MS] = r.arrivalMs;
    d[slot * SLOT_STRIDE + NUM_TOKENS] = r.numTokens;
    this.placeFresh(slot, nowMs);
  }

  /** Key a fresh request's slot with the current estimate and push it into onTime or late. */
  private placeFresh(slot: number, nowMs: number): void {
    const d = this.slots.data;
    const b = slot * SLOT_STRIDE;
    if (this.cfg.policy === "fcfs") {
      this.cls[slot] = ON_TIME;
      d[b + SLOT_KEY] = d[b + ARRIVAL_MS]!;
      this.onTime.push(slot);
      return;
    }
    if (this.demotes && d[b + ARRIVAL_MS]! + this.ttftSloMs <= nowMs) {
      this.demote(slot);
      return;
    }
    const est = estimatePrefillMs(d[b + NUM_TOKENS]!, this.keyedMsPerToken, this.cfg);
    const key = latestStartMs(d[b + ARRIVAL_MS]!, this.ttftSloMs, est);
    if (key > nowMs) {
      this.cls[slot] = ON_TIME;
      d[b + SLOT_KEY] = key;
      this.onTime.push(slot);
    } else {
      this.cls[slot] = LATE;
      d[b + SLOT_KEY] = est;
      this.late.push(slot);
      this.noteLateDeadline(d[b + ARRIVAL_MS]!);
    }
  }

  /** Into `past`, keyed by arrival (a slot already out of its heap). */
  private demote(slot: number): void {
    const d = this.slots.data;
    this.cls[slot] = PAST;
    d[slot * SLOT_STRIDE + SLOT_KEY] = d[slot * SLOT_STRIDE + ARRIVAL_MS]!;
    this.past.push(slot);
  }

  private noteLateDeadline(arrivalMs: number): void {
    const deadline = arrivalMs + this.ttftSloMs;
    if (deadline < this.lateMinDeadlineMs) this.lateMinDeadlineMs = deadline;
  }

  /** The earliest TTFT deadline of a late request (a lower bound), or Infinity. */
  earliestLateDeadline(): number {
    return this.late.size === 0 ? Number.POSITIVE_INFINITY : this.lateMinDeadlineMs;
  }

  remove(r: Request): void {
    const slot = r.queueSlot;
    if (slot < 0 || this.slots.items[slot] !== r) throw new Error(`request ${r.id} is not queued`);
    this.heapOf(slot).remove(slot);
    this.release(slot, r);
  }

  /**
   * Move requests whose slack ran out from onTime to late ("slo" only). Requests whose TTFT deadline
   * (arrival + SLO) has passed are, with abortUnreachable, removed and handed to `unreachable`;
   * otherwise, with demoteExpired, moved to `past`, and handed to `unreachable` once they have
   * waited lateMaxWaitMs. With `unreachable` null nothing is removed.
   * Running out of slack by the prefill estimate is not enough: the estimate errs high (it spreads
   * a step's time over decode tokens too), and failing on it failed requests that would have met
   * their SLO (ServeGen-32 on 3 simulated H100s: 98.6% → 94.5% TTFT attainment).
   */
  promoteLate(nowMs: number, unreachable: ((r: Request) => void) | null): void {
    if (this.cfg.policy === "fcfs") return;
    const slots = this.slots;
    const d = slots.data;
    const onTime = this.onTime;
    const slo = this.ttftSloMs;
    const abort = unreachable !== null && this.cfg.abortUnreachable;
    const demote = this.demotes;
    for (let top = onTime.peek(); top >= 0 && slots.key(top) <= nowMs; top = onTime.peek()) {
      onTime.pop();
      const arrivalMs = d[top * SLOT_STRIDE + ARRIVAL_MS]!;
      if (arrivalMs + slo <= nowMs) {
        if (abort) {
          this.expired.push(this.take(top));
          continue;
        }
        if (demote) {
          this.demote(top);
          continue;
        }
      }
      this.cls[top] = LATE;
      d[top * SLOT_STRIDE + SLOT_KEY] = estimatePrefillMs(d[top * SLOT_STRIDE + NUM_TOKENS]!, this.keyedMsPerToken, this.cfg);
      this.late.push(top);
      this.noteLateDeadline(arrivalMs);
    }
    if (!abort && !demote) return;
    const late = this.late;
    if (late.size > 0 && this.lateMinDeadlineMs <= nowMs) {
      // Collect first, then remove: removing reorders the heap array being walked.
      if (this.scratch.length < late.size) this.scratch = new Int32Array(Math.max(late.size, this.scratch.length * 2));
      const gone = this.scratch;
      let n = 0;
      let min = Number.POSITIVE_INFINITY;
      for (let i = 0; i < late.size; i++) {
        const s = late.slotAt[i]!;
        const deadline = d[s * SLOT_STRIDE + ARRIVAL_MS]! + slo;
        if (deadline <= nowMs) gone[n++] = s;
        else if (deadline < min) min = deadline;
      }
      for (let i = 0; i < n; i++) {
        late.remove(gone[i]!);
        if (abort) this.expired.push(this.take(gone[i]!));
        else this.demote(gone[i]!);
      }
      this.lateMinDeadlineMs = min;
    }
    if (unreachable === null) return;
    if (demote) {
      const past = this.past;
      const waitMs = this.cfg.lateMaxWaitMs;
      for (let top = past.peek(); top >= 0 && slots.key(top) + waitMs <= nowMs; top = past.peek()) {
        past.pop();
        this.expired.push(this.take(top));
      }
    }
    // Handed over only now: a sink may re-enter and queue or cancel requests.
    const expired = this.expired;
    for (let i = 0; i < expired.length; i++) unreachable(expired[i]!);
    expired.length = 0;
  }

  /**
   * Recompute every fresh request's key with a new estimate and re-sort: onTime's then late's slots
   * in array order, each pushed again as placeFresh would (the same keys, classes and sift-ups,
   * inlined over local typed arrays: a long queue is re-keyed often).
   */
  rekey(msPerToken: number, nowMs: number): void {
    this.keyedMsPerToken = msPerToken;
    this.lateMinDeadlineMs = Number.NEGATIVE_INFINITY; // keys move between onTime and late: the next promoteLate recomputes it
    if (this.cfg.policy === "fcfs") return;
    const onTime = this.onTime;
    const late = this.late;
    const nOnTime = onTime.size;
    const n = nOnTime + late.size;
    if (n === 0) return;
    if (this.scratch.length < n) this.scratch = new Int32Array(Math.max(n, this.scratch.length * 2));
    const all = this.scratch;
    all.set(onTime.slotAt.subarray(0, onTime.takeAll()), 0);
    all.set(late.slotAt.subarray(0, late.takeAll()), nOnTime);
    onTime.reserve(n);
    late.reserve(n);
    const onAt = onTime.slotAt;
    const lateAt = late.slotAt;
    const d = this.slots.data;
    const posOf = this.slots.posOf;
    const cls = this.cls;
    const minMs = this.cfg.prefillEstMinMs;
    const maxMs = this.cfg.prefillEstMaxMs;
    const slo = this.ttftSloMs;
    let nOn = 0;
    let nLate = 0;
    for (let i = 0; i < n; i++) {
      const slot = all[i]!;
      const b = slot * SLOT_STRIDE;
      // = estimatePrefillMs and latestStartMs (slo-priority.ts), same operations in the same order.
      let est = d[b + NUM_TOKENS]! * msPerToken;
      est = est < minMs ? minMs : est > maxMs ? maxMs : est;
      const startKey = d[b + ARRIVAL_MS]! + slo - est;
      const onTimeNow = startKey > nowMs;
      const key = onTimeNow ? startKey : est;
      const tie = d[b + SLOT_TIE]!;
      d[b + SLOT_KEY] = key;
      cls[slot] = onTimeNow ? ON_TIME : LATE;
      const at = onTimeNow ? onAt : lateAt;
      let j = onTimeNow ? nOn++ : nLate++;
      while (j > 0) {
        const p = (j - 1) >> 1;
        const ps = at[p]!;
        const pb = ps * SLOT_STRIDE;
        const kp = d[pb + SLOT_KEY]!;
        if (!(key < kp || (key === kp && tie < d[pb + SLOT_TIE]!))) break;
        at[j] = ps;
        posOf[ps] = j;
        j = p;
      }
      at[j] = slot;
      posOf[slot] = j;
    }
    onTime.setSize(nOn);
    late.setSize(nLate);
  }

  /** Compute the head and its priority at `now`; returns the head (or null when empty). */
  refreshHead(nowMs: number): Request | null {
    const slots = this.slots;
    const res = this.resume.peek();
    if (res >= 0) {
      this.setHead(res, 0, slots.key(res));
      return this.head;
    }
    const a = this.onTime.peek();
    const b = this.late.peek();
    if (a < 0 && b < 0) {
      const c = this.past.peek();
      if (c >= 0) this.setHead(c, PAST_CLASS, slots.key(c));
      else this.head = null;
      return this.head;
    }
    const aValue = a < 0 ? Number.POSITIVE_INFINITY : this.cfg.policy === "fcfs" ? slots.key(a) : slots.key(a) - nowMs;
    const bValue = b < 0 ? Number.POSITIVE_INFINITY : slots.key(b);
    if (b < 0 || (a >= 0 && (aValue < bValue || (aValue === bValue && slots.tie(a) < slots.tie(b))))) this.setHead(a, 1, aValue);
    else this.setHead(b, 1, bValue);
    return this.head;
  }

  /** Pop the head found by the last refreshHead. */
  popHead(): Request {
    const r = this.head;
    if (r === null) throw new Error("ModelQueue.popHead: no head");
    this.remove(r);
    this.head = null;
    return r;
  }

  /** Visit every queued request: resume, onTime, late, past, each in heap array order. */
  forEach(fn: (r: Request) => void): void {
    const items = this.slots.items;
    for (const h of [this.resume, this.onTime, this.late, this.past]) {
      const slotAt = h.slotAt;
      for (let i = 0, n = h.size; i < n; i++) fn(items[slotAt[i]!]!);
    }
  }

  /** Remove every request (drain / failure), resume first, then by heap array order. */
  drainAll(): Request[] {
    const out: Request[] = [];
    const items = this.slots.items;
    for (const h of [this.resume, this.onTime, this.late, this.past]) {
      const slotAt = h.slotAt;
      for (let i = 0, n = h.takeAll(); i < n; i++) {
        const r = items[slotAt[i]!]!;
        r.queueSlot = -1;
        out.push(r);
      }
    }
    this.slots.clear();
    this.head = null;
    return out;
  }

  private setHead(slot: number, cls: number, value: number): void {
    this.head = this.slots.items[slot]!;
    this.headClass = cls;
    this.headValue = value;
    this.headTie = this.slots.tie(slot);
  }

  private heapOf(slot: number): SlotHeap {
    const c = this.cls[slot]!;
    return c === RESUME ? this.resume : c === ON_TIME ? this.onTime : c === LATE ? this.late : this.past;
  }

  /** The request of a slot already out of its heap; frees the slot. */
  private take(slot: number): Request {
    const r = this.slots.items[slot]!;
    this.release(slot, r);
    return r;
  }

  private release(slot: number, r: Request): void {
    this.slots.release(slot);
    r.queueSlot = -1;
  }

  private fitSlotArrays(): void {
    const cap = this.slots.capacity;
    if (this.cls.length >= cap) return;
    const cls = new Uint8Array(cap);
    cls.set(this.cls);
    this.cls = cls;
  }
}

/** Cross-model order of two queue heads: true when queue a's head is more urgent than b's. */
export function headBefore(a: ModelQueue, b: ModelQueue): boolean {
  if (a.headClass !== b.headClass) return a.headClass < b.headClass;
  if (a.headValue !== b.headValue) return a.headValue < b.headValue;
  return a.headTie < b.headTie;
}
