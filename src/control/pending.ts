/**
 * Requests the control layer holds because no instance of their model can take them yet (activation
 * waiting for memory, swap waiting for a device, a device queue that answered busy to a requeue).
 * FIFO per model; cold path (only while a model has no routable instance).
 */
export class PendingQueues<T> {
  private readonly queues: T[][];
  private readonly arrivals: number[][];
  private readonly heads: Int32Array;
  private total = 0;

  constructor(numModels: number) {
    this.queues = Array.from({ length: numModels }, () => []);
    this.heads = new Int32Array(numModels);
    this.arrivals = Array.from({ length: numModels }, () => []);
  }

  get size(): number {
    return this.total;
  }

  count(model: number): number {
    return this.queues[model]!.length - this.heads[model]!;
  }

  /** Arrival time of the model's oldest pending request, +Infinity when none. */
  oldestMs(model: number): number {
    const h = this.heads[model]!;
    const a = this.arrivals[model]!;
    return h < a.length ? a[h]! : Infinity;
  }

  push(model: number, item: T, arrivalMs: number): void {
    this.queues[model]!.push(item);
    this.arrivals[model]!.push(arrivalMs);
    this.total++;
  }

  /** Put an item back at the front (it was taken but could not be placed). */
  unshift(model: number, item: T, arrivalMs: number): void {
    const h = this.heads[model]!;
    if (h > 0) {
      this.heads[model] = h - 1;
      this.queues[model]![h - 1] = item;
      this.arrivals[model]![h - 1] = arrivalMs;
    } else {
      this.queues[model]!.unshift(item);
      this.arrivals[model]!.unshift(arrivalMs);
    }
    this.total++;
  }

  peek(model: number): T | undefined {
    return this.queues[model]![this.heads[model]!];
  }

  shift(model: number): T | undefined {
    const q = this.queues[model]!;
    const h = this.heads[model]!;
    if (h >= q.length) return undefined;
    const item = q[h]!;
    this.total--;
    if (h + 1 === q.length) {
      q.length = 0;
      this.arrivals[model]!.length = 0;
      this.heads[model] = 0;
    } else {
      this.heads[model] = h + 1;
    }
    return item;
  }

  /** Remove one item (cancel); false if absent. */
  remove(model: number, item: T): boolean {
    const q = this.queues[model]!;
    const h = this.heads[model]!;
    const i = q.indexOf(item, h);
    if (i < 0) return false;
    q.splice(i, 1);
    this.arrivals[model]!.splice(i, 1);
    this.total--;
    if (h >= q.length) {
      q.length = 0;
      this.arrivals[model]!.length = 0;
      this.heads[model] = 0;
    }
    return true;
  }

  /** Models with pending requests, ascending. */
  models(): number[] {
    const out: number[] = [];
    for (let m = 0; m < this.queues.length; m++) if (this.count(m) > 0) out.push(m);
    return out;
  }
}
