import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { EventQueue } from "../../src/sim/event-queue.ts";
import { VirtualClock } from "../../src/sim/virtual-clock.ts";

test("pops in (time, kind, insertion) order", () => {
  const q = new EventQueue(2);
  q.push(10, 2, 1);
  q.push(5, 3, 2);
  q.push(10, 1, 3);
  q.push(10, 2, 4);
  q.push(5, 3, 5);
  const got: number[] = [];
  while (q.pop()) got.push(q.popA);
  assert.deepEqual(got, [2, 5, 3, 1, 4]);
  assert.equal(q.size, 0);
  assert.equal(q.peekTimeUs(), Infinity);
});

test("property: heap order equals a stable sort by (time, kind), with interleaved pops", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 3 }), fc.boolean()), { maxLength: 200 }),
      (ops) => {
        const q = new EventQueue(1);
        const model: { t: number; k: number; seq: number }[] = [];
        let seq = 0;
        let floor = 0;
        for (const [dt, k, doPop] of ops) {
          const t = floor + dt;
          q.push(t, k, seq);
          model.push({ t, k, seq: seq++ });
          if (doPop) {
            model.sort((x, y) => x.t - y.t || x.k - y.k || x.seq - y.seq);
            const want = model.shift()!;
            assert.ok(q.pop());
            assert.equal(q.popA, want.seq);
            assert.equal(q.popTimeUs, want.t);
            floor = want.t;
          }
        }
        model.sort((x, y) => x.t - y.t || x.k - y.k || x.seq - y.seq);
        for (const want of model) {
          assert.ok(q.pop());
          assert.equal(q.popA, want.seq);
        }
        assert.equal(q.pop(), false);
      },
    ),
  );
});

test("virtual clock moves forward only", () => {
  const c = new VirtualClock();
  c.advanceToUs(1500);
  assert.equal(c.nowMs(), 1.5);
  assert.throws(() => c.advanceToUs(1000));
});
