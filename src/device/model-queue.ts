/**
 * The queued requests of one model on one device, in three heaps:
 *   resume : preempted (or migrated) requests that already streamed tokens, by enqueue time. They
 *            come before any fresh request, device-wide, because their TTFT is behind them and each
 *            one blocks a stream a client is reading (vLLM puts preempted requests at the front too).
 *   onTime : fresh requests with positive slack, by latest start time (see slo-priority.ts); with
 *            policy "fcfs", every fresh request, by arrival.
 *   late   : fresh requests whose slack ran out, by estimated prefill time ("slo" only).
 * The head of the queue and its cross-model priority (headClass, headValue, headTie) are computed
 * by refreshHead(now) without allocating.
 */
import type { DeviceSchedulerConfig } from "./types.ts";
import { MinHeap } from "./priority-heap.ts";
import { QueueClass, type Request } from "./request.ts";
import { estimatePrefillMs, latestStartMs } from "./slo-priority.ts";

export class ModelQueue {
  readonly resume = new MinHeap<Request>();
  readonly onTime = new MinHeap<Request>();
  readonly late = new MinHeap<Request>();
  private readonly scratch: Request[] = [];
  /** The estimate (ms per prefill token) the keys in onTime/late were computed with. */
  keyedMsPerToken: number;
  // Head of the queue after refreshHead(now): class 0 = resume, 1 = fresh; value / tie order within.
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
    this.head = null;
    this.headClass = 0;
    this.headValue = 0;
    this.headTie = 0;
  }

  get size(): number {
    return this.resume.size + this.onTime.size + this.late.size;
  }

  push(r: Request, nowMs: number): void {
    r.enqueuedMs = nowMs;
    if (r.hasStarted) {
      r.queueClass = QueueClass.resume;
      r.heapKey = nowMs;
      this.resume.push(r);
      return;
    }
    this.pushFresh(r, nowMs);
  }

  private pushFresh(r: Request, nowMs: number): void {
    if (this.cfg.policy === "fcfs") {
      r.queueClass = QueueClass.onTime;
      r.heapKey = r.arrivalMs;
      this.onTime.push(r);
      return;
    }
    const est = estimatePrefillMs(r.numTokens, this.keyedMsPerToken, this.cfg);
    const key = latestStartMs(r.arrivalMs, this.ttftSloMs, est);
    if (key > nowMs) {
      r.queueClass = QueueClass.onTime;
      r.heapKey = key;
      this.onTime.push(r);
    } else {
      r.queueClass = QueueClass.late;
      r.heapKey = est;
      this.late.push(r);
    }
  }

  remove(r: Request): void {
    switch (r.queueClass) {
      case QueueClass.resume: this.resume.remove(r); break;
      case QueueClass.onTime: this.onTime.remove(r); break;
      case QueueClass.late: this.late.remove(r); break;
      case QueueClass.none: throw new Error(`request ${r.id} is not queued`);
    }
    r.queueClass = QueueClass.none;
  }

  /**
   * Move requests whose slack ran out from onTime to late ("slo" only). With `unreachable` set,
   * such requests that have not started are handed to it instead (and removed).
   */
  promoteLate(nowMs: number, unreachable: ((r: Request) => void) | null): void {
    if (this.cfg.policy === "fcfs") return;
    if (unreachable !== null) {
      // Requests enqueued already late (or re-keyed late) are just as unreachable.
      for (let r = this.late.pop(); r !== null; r = this.late.pop()) {
        r.queueClass = QueueClass.none;
        unreachable(r);
      }
    }
    const onTime = this.onTime;
    for (let top = onTime.peek(); top !== null && top.heapKey <= nowMs; top = onTime.peek()) {
      onTime.pop();
      if (unreachable !== null) {
        top.queueClass = QueueClass.none;
        unreachable(top);
        continue;
      }
      top.queueClass = QueueClass.late;
      top.heapKey = estimatePrefillMs(top.numTokens, this.keyedMsPerToken, this.cfg);
      this.late.push(top);
    }
  }

  /** Recompute every fresh request's key with a new estimate and re-sort (O(n log n); n can be large). */
  rekey(msPerToken: number, nowMs: number): void {
    this.keyedMsPerToken = msPerToken;
    if (this.cfg.policy === "fcfs") return;
    const all = this.scratch;
    this.onTime.drainInto(all);
    this.late.drainInto(all);
    for (let i = 0; i < all.length; i++) this.pushFresh(all[i]!, nowMs);
    all.length = 0;
  }

  /** Compute the head and its priority at `now`; returns the head (or null when empty). */
  refreshHead(nowMs: number): Request | null {
    const res = this.resume.peek();
    if (res !== null) {
      this.setHead(res, 0, res.heapKey);
      return res;
    }
    const a = this.onTime.peek();
    const b = this.late.peek();
    if (a === null && b === null) {
      this.head = null;
      return null;
    }
    const aValue = a === null ? Number.POSITIVE_INFINITY : this.cfg.policy === "fcfs" ? a.heapKey : a.heapKey - nowMs;
    const bValue = b === null ? Number.POSITIVE_INFINITY : b.heapKey;
    if (b === null || (a !== null && (aValue < bValue || (aValue === bValue && a.heapTie < b.heapTie)))) this.setHead(a!, 1, aValue);
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

  forEach(fn: (r: Request) => void): void {
    this.resume.forEach(fn);
    this.onTime.forEach(fn);
    this.late.forEach(fn);
  }

  /** Remove every request (drain / failure), resume first, then by heap array order. */
  drainAll(): Request[] {
    const out = this.resume.drain();
    for (const r of this.onTime.drain()) out.push(r);
    for (const r of this.late.drain()) out.push(r);
    for (const r of out) r.queueClass = QueueClass.none;
    this.head = null;
    return out;
  }

  private setHead(r: Request, cls: number, value: number): void {
    this.head = r;
    this.headClass = cls;
    this.headValue = value;
    this.headTie = r.heapTie;
  }
}

/** Cross-model order of two queue heads: true when queue a's head is more urgent than b's. */
export function headBefore(a: ModelQueue, b: ModelQueue): boolean {
  if (a.headClass !== b.headClass) return a.headClass < b.headClass;
  if (a.headValue !== b.headValue) return a.headValue < b.headValue;
  return a.headTie < b.headTie;
}
