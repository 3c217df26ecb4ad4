// The queue building blocks: the intrusive heap against a sorted model, SLO keys and re-keying.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { KeySlots, SlotHeap } from "../../src/device/priority-heap.ts";
import { ModelQueue } from "../../src/device/model-queue.ts";
import { Request } from "../../src/device/request.ts";
import { GREEDY } from "../../src/core/records.ts";
import { estimatePrefillMs, latestStartMs, needsRekey, updatePrefillRate } from "../../src/device/slo-priority.ts";
import { resolveDeviceSchedulerConfig } from "../../src/device/config.ts";
import { isPrismError } from "../../src/core/errors.ts";
import { drive, makeProfile, makeScheduler, submit } from "../helpers/device-harness.ts";
import { modelId, requestId } from "../../src/core/ids.ts";

class Item {
  slot = -1;
  constructor(public key: number, public tie: number) {}
}

/** The textbook array heap (items in an array, sift up / down): the layout SlotHeap must reproduce. */
class ReferenceHeap {
  readonly a: Item[] = [];
  private less(x: Item, y: Item): boolean {
    return x.key < y.key || (x.key === y.key && x.tie < y.tie);
  }
  push(it: Item): void {
    this.a.push(it);
    this.up(this.a.length - 1);
  }
  pop(): Item | null {
    const top = this.a[0];
    if (top === undefined) return null;
    const last = this.a.pop()!;
    if (last !== top) {
      this.a[0] = last;
      this.down(0);
    }
    return top;
  }
  remove(it: Item): void {
    const i = this.a.indexOf(it);
    const last = this.a.pop()!;
    if (last === it) return;
    this.a[i] = last;
    if (i > 0 && this.less(last, this.a[(i - 1) >> 1]!)) this.up(i);
    else this.down(i);
  }
  private up(i: number): void {
    const it = this.a[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(it, this.a[p]!)) break;
      this.a[i] = this.a[p]!;
      i = p;
    }
    this.a[i] = it;
  }
  private down(i: number): void {
    const n = this.a.length;
    const it = this.a[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      let c = l;
      if (l + 1 < n && this.less(this.a[l + 1]!, this.a[l]!)) c = l + 1;
      if (!this.less(this.a[c]!, it)) break;
      this.a[i] = this.a[c]!;
      i = c;
    }
    this.a[i] = it;
  }
}

test("SlotHeap: pops in (key, tie) order and keeps the textbook heap's array order (property)", () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(
      fc.record({ op: fc.constant("push" as const), key: fc.integer({ min: 0, max: 20 }), heap: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ op: fc.constant("pop" as const), heap: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ op: fc.constant("remove" as const), pick: fc.nat() }),
      fc.record({ op: fc.constant("move" as const), pick: fc.nat() }),
    ), { maxLength: 300 }), (ops) => {
      // Two heaps over one pool, as a model queue has; "move" takes an item to the other heap.
      const pool = new KeySlots<Item>();
      const heaps = [new SlotHeap(pool), new SlotHeap(pool)];
      const refs = [new ReferenceHeap(), new ReferenceHeap()];
      const where = new Map<Item, number>();
      let tie = 0;
      const push = (it: Item, h: number): void => {
        it.slot = pool.alloc(it, it.key, it.tie);
        heaps[h]!.push(it.slot);
        refs[h]!.push(it);
        where.set(it, h);
      };
      for (const o of ops) {
        const live = [...where.keys()];
        if (o.op === "push") {
          push(new Item(o.key, tie++), o.heap);
        } else if (o.op === "pop") {
          const s = heaps[o.heap]!.pop();
          const want = refs[o.heap]!.pop();
          assert.equal(s < 0 ? null : pool.items[s], want);
          if (want !== null) {
            pool.release(s);
            where.delete(want);
          }
        } else if (live.length > 0) {
          const it = live[o.pick % live.length]!;
          const h = where.get(it)!;
          heaps[h]!.remove(it.slot);
          refs[h]!.remove(it);
          pool.release(it.slot);
          where.delete(it);
          if (o.op === "move") push(it, 1 - h);
        }
        for (let h = 0; h < 2; h++) {
          const heap = heaps[h]!;
          assert.deepEqual(Array.from(heap.slotAt.subarray(0, heap.size), (s) => pool.items[s]), refs[h]!.a);
        }
        assert.equal(pool.size, where.size);
      }
    }),
    { numRuns: 200, seed: 9 },
  );
});

test("ModelQueue.rekey leaves the queue as draining it and pushing every fresh request again would (property)", () => {
  // The inlined re-key must match placeFresh exactly: keys, classes, and heap array order (which
  // drainAll and forEach expose, and so the order drained requests are handed back in).
  // With demoteExpired (the default) requests past their deadline sit in their own heap, which
  // rekey leaves alone; without, they stay in `late`.
  const cfgs = [true, false].map((demoteExpired) => resolveDeviceSchedulerConfig({ prefillEstMinMs: 5, prefillEstMaxMs: 400, demoteExpired }));
  const sink = { onToken() {}, onFinish() {} };
  fc.assert(
    fc.property(
      fc.array(fc.record({ arrival: fc.integer({ min: 0, max: 2000 }), prompt: fc.integer({ min: 1, max: 900 }), generated: fc.constantFrom(0, 0, 0, 2) }), { minLength: 20, maxLength: 150 }),
      // Powers of two keep keys on a 1/8 ms grid, so exact ties with `now` and between keys occur.
      fc.constantFrom(0.125, 0.25, 0.5, 1, 2, 4),
      fc.constantFrom(0.125, 0.25, 0.5, 1, 2, 4),
      fc.integer({ min: 0, max: 2500 }),
      fc.boolean(),
      (rows, rate0, rate1, nowMs, demote) => {
        const cfg = cfgs[demote ? 0 : 1]!;
        const make = (i: number, r: (typeof rows)[number]): Request => new Request({
          requestId: requestId(i), modelId: modelId("a"), promptTokens: new Int32Array(r.prompt).fill(1), maxTokens: 8,
          sampling: GREEDY, arrivalMs: r.arrival, sink, ...(r.generated > 0 ? { generatedTokens: new Int32Array(r.generated).fill(2) } : {}),
        }, 0, 4096, new Int32Array(0), 16, i, 0);
        const a = new ModelQueue(cfg, 700, rate0);
        const reqs = rows.map((r, i) => make(i, r));
        reqs.forEach((r, i) => a.push(r, rows[i]!.arrival));
        a.promoteLate(nowMs, null);
        const before: Request[] = [];
        a.forEach((r) => before.push(r));
        a.rekey(rate1, nowMs);
        const after: Request[] = [];
        a.forEach((r) => after.push(r));
        // Reference: a fresh queue keyed with rate1, the resumed requests first (their heap is
        // untouched), then every fresh request pushed in the old array order.
        const b = new ModelQueue(cfg, 700, rate1);
        const copies = new Map(reqs.map((r, i) => [r, make(i, rows[i]!)]));
        for (const r of before) if (r.hasStarted) b.push(copies.get(r)!, r.enqueuedMs);
        for (const r of before) if (!r.hasStarted) b.push(copies.get(r)!, nowMs);
        const expected: number[] = [];
        b.forEach((r) => expected.push(r.id));
        assert.deepEqual(after.map((r) => r.id), expected);
        for (;;) {
          const ha = a.refreshHead(nowMs);
          const hb = b.refreshHead(nowMs);
          assert.equal(ha?.id, hb?.id);
          if (ha === null) break;
          assert.equal(a.headValue, b.headValue);
          a.popHead();
          b.popHead();
        }
      },
    ),
    { numRuns: 150, seed: 4 },
  );
});

test("SLO keys, estimate clamp and EWMA", () => {
  const cfg = resolveDeviceSchedulerConfig({ prefillEstMinMs: 50, prefillEstMaxMs: 1000 });
  assert.equal(estimatePrefillMs(10, 1, cfg), 50);
  assert.equal(estimatePrefillMs(100, 1, cfg), 100);
  assert.equal(estimatePrefillMs(5000, 1, cfg), 1000);
  assert.equal(latestStartMs(100, 500, 120), 480);
  assert.equal(updatePrefillRate(1, 10, 20, 0.5), 0.75);
  assert.equal(updatePrefillRate(1, 10, 0, 0.5), 1);
  assert.equal(needsRekey(1, 1.05, 0.1), false);
  assert.equal(needsRekey(1, 1.2, 0.1), true);
});

test("config validation names the option", () => {
  assert.throws(() => resolveDeviceSchedulerConfig({ maxBatchTokens: 8, maxBatchSeqs: 16 }), (e) => isPrismError(e) && e.code === "PRISM_CONFIG_INVALID" && /maxBatchTokens/.test(e.message));
  assert.throws(() => resolveDeviceSchedulerConfig({ bogus: 1 } as never), (e) => isPrismError(e) && e.code === "PRISM_CONFIG_UNKNOWN_KEY");
  assert.throws(() => resolveDeviceSchedulerConfig({ guardFirstTokens: "yes" } as never), (e) => isPrismError(e) && e.code === "PRISM_CONFIG_INVALID" && /guardFirstTokens/.test(e.message));
  assert.ok(Object.isFrozen(resolveDeviceSchedulerConfig()));
});

test("the prefill estimate is learned from measured prefill steps and re-keys the queue", () => {
  const h = makeScheduler({
    // Request 1 (past its deadline) must run first, to teach the estimate: no demotion.
    config: { prefillMsPerTokenPrior: 1, prefillEstAlpha: 1, rekeyTolerance: 0.1, maxBatchSeqs: 1, demoteExpired: false },
    exec: { stepBaseMs: 0, msPerToken: 0.01 },
  });
  h.sched.addModel(makeProfile("a"), { ttftSloMs: 1000 });
  h.sched.requestLoad(modelId("a"));
  drive(h);
  const t = h.clock.nowMs();
  submit(h, { id: 1, model: "a", prompt: 60, maxTokens: 1, arrivalMs: t - 5000 }); // late: runs first
  // With the prior (1 ms/token) request 2 is more urgent (latest start t+900 vs t+990); with the
  // learned 0.01 ms/token it is the other way round (t+1395 vs t+999.9).
  submit(h, { id: 2, model: "a", prompt: 500, maxTokens: 1, arrivalMs: t + 400 });
  submit(h, { id: 3, model: "a", prompt: 10, maxTokens: 1, arrivalMs: t });
  drive(h);
  const rate = h.sched.stats().models[0]!.prefillMsPerToken;
  assert.ok(Math.abs(rate - 0.01) < 1e-12, `learned ${rate}`);
  assert.deepEqual(h.sink.order, [1, 3, 2]);
});

test("failLoad fails the model's queued requests with the executor's error and frees its weights", () => {
  const h = makeScheduler();
  h.sched.addModel(makeProfile("a"));
  submit(h, { id: 1, model: "a", prompt: 5, maxTokens: 2 });
  submit(h, { id: 2, model: "a", prompt: 5, maxTokens: 2 });
  const a = h.sched.nextAction(h.clock.nowMs());
  assert.equal(a.kind, "load");
  assert.equal(h.memory.snapshot().weights.length, 1);
  h.sched.failLoad(modelId("a"), new Error("disk gone"), h.clock.nowMs());
  assert.equal(h.sink.outcomeOf(1), "failed:PRISM_INTERNAL");
  assert.equal(h.sink.outcomeOf(2), "failed:PRISM_INTERNAL");
  assert.equal(h.memory.snapshot().weights.length, 0);
  assert.equal(h.sched.residency(modelId("a")), "absent");
  assert.deepEqual(drive(h).actions, []);
});

test("protocol misuse is a loud internal error", () => {
  const h = makeScheduler();
  h.sched.addModel(makeProfile("a"));
  submit(h, { id: 1, model: "a", prompt: 5, maxTokens: 2 });
  h.sched.nextAction(0);
  assert.throws(() => h.sched.nextAction(0), (e) => isPrismError(e) && e.code === "PRISM_INTERNAL");
  assert.throws(() => h.sched.completeStep({ stepIndex: 1, computeMs: 0, sampled: [] }, 0), (e) => isPrismError(e) && e.code === "PRISM_INTERNAL");
  assert.throws(() => h.sched.addModel(makeProfile("a")), (e) => isPrismError(e) && e.code === "PRISM_MODEL_ALREADY_ON_DEVICE");
  assert.throws(() => h.sched.addModel(makeProfile("huge", { weightBytes: 1 << 30 })), (e) => isPrismError(e) && e.code === "PRISM_MODEL_TOO_LARGE");
});
