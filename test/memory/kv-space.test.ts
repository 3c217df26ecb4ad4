// KV spaces: block ids and offsets, best-fit carving, reserved pools, sharing between models,
// headroom, and revisioned limits (kvcached control.py semantics).
import { test } from "node:test";
import assert from "node:assert/strict";
import { DeviceMemory } from "../../src/memory/index.ts";
import { A, B, GEOM4, PAGE, assertSound, makeDevice, physPage } from "./helpers.ts";

test("block id = virtualPage × blocksPerPage + slot; offset = prefix + physicalPage × pageBytes + slot × blockBytes", () => {
  const dm = makeDevice(8, { prefixBytes: 65536 });
  assert.equal(dm.memory!.buffer.byteLength, 2 * 65536, "prefix + budget, rounded up to 64 KiB wasm pages");
  const a = dm.createKvSpace(A, GEOM4);
  assert.equal(a.blockBytes, 1024);
  assert.equal(a.blocksPerPage, 4);
  assert.deepEqual(a.alloc(5), [0, 1, 2, 3, 4]);
  assert.equal(a.blockByteOffset(2), 65536 + 2 * 1024);
  assert.equal(a.blockByteOffset(4), 65536 + PAGE);
  assert.equal(a.mappedPages, 2);
  assertSound(dm);
});

test("allocInto writes at outStart; with too little memory it returns false and changes nothing", () => {
  const dm = makeDevice(2);
  const a = dm.createKvSpace(A, GEOM4);
  const out = new Int32Array(12).fill(-7);
  assert.equal(a.allocInto(3, out, 2), true);
  assert.deepEqual([...out], [-7, -7, 0, 1, 2, -7, -7, -7, -7, -7, -7, -7]);
  const before = dm.snapshot();
  assert.equal(a.availableBlocks(), 5);
  assert.equal(a.allocInto(6, out, 5), false);
  assert.deepEqual([...out.subarray(5)], [-7, -7, -7, -7, -7, -7, -7]);
  assert.deepEqual(dm.snapshot(), before);
  assert.equal(a.allocInto(5, out, 5), true, "exactly availableBlocks() succeeds");
  assert.equal(a.availableBlocks(), 0);
  assert.equal(a.alloc(1), null);
  assertSound(dm);
});

test("best fit: the smallest partial page whose free count covers the need, else the emptiest", () => {
  const dm = makeDevice(8);
  const a = dm.createKvSpace(A, GEOM4);
  assert.deepEqual(a.alloc(12), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  a.free([0, 1, 2]); // vp0: 3 free
  a.free([4]); // vp1: 1 free
  a.free([8, 9]); // vp2: 2 free
  assert.equal(a.freeSlotsInUsedPages, 6);
  assert.deepEqual(a.alloc(2), [8, 9], "vp2 fits 2 exactly");
  assert.deepEqual(a.alloc(1), [4], "vp1 fits 1 exactly");
  assert.deepEqual(a.alloc(2), [0, 1], "only vp0 (3 free) is left");
  a.free([5, 6, 9, 10]); // vp0: 1 free (slot 2), vp1: 2 free, vp2: 2 free
  // No page has 5 free: the emptiest first (vp2, the last page linked into the 2-free bucket), then
  // for 3 again the emptiest (vp1, 2 free), then for 1 the best fit (vp0), all before any new page.
  assert.deepEqual(a.alloc(5), [9, 10, 5, 6, 2]);
  assert.equal(a.mappedPages, 3);
  assert.equal(a.freeSlotsInUsedPages, 0);
  assertSound(dm);
});

test("hot path: allocating from a partial page touches no device page", () => {
  const dm = makeDevice(8);
  const a = dm.createKvSpace(A, GEOM4);
  a.alloc(1);
  const free = dm.snapshot().freePages;
  const out = new Int32Array(1);
  for (let i = 0; i < 100; i++) {
    assert.equal(a.allocInto(1, out, 0), true);
    a.free(out);
  }
  assert.equal(dm.snapshot().freePages, free);
  assert.equal(a.mappedPages, 1);
  assertSound(dm);
});

test("emptied pages go to the space's reserve up to maxReservedPages, the rest to the device; the reserve is used first", () => {
  const dm = makeDevice(16, { maxReservedPages: 2 });
  const a = dm.createKvSpace(A, GEOM4);
  const ids = a.alloc(16)!;
  assert.equal(dm.snapshot().freePages, 12);
  a.free(ids);
  assert.equal(a.reservedPages, 2);
  assert.equal(a.mappedPages, 2);
  assert.equal(dm.snapshot().freePages, 14);
  const again = a.alloc(4)!;
  assert.equal(dm.snapshot().freePages, 14, "came from the reserve");
  assert.equal(a.reservedPages, 1);
  assert.equal(physPage(dm, a.blockByteOffset(again[0]!)), 1, "the last page parked is the first reused");
  assertSound(dm);
});

test("after a slow-path alloc the reserve is topped up to minReservedPages (kvcached prealloc)", () => {
  const dm = makeDevice(16, { minReservedPages: 2, maxReservedPages: 4 });
  const a = dm.createKvSpace(A, GEOM4);
  assert.equal(a.mappedPages, 0, "an unused space holds nothing");
  a.alloc(1);
  assert.equal(a.usedPages, 1);
  assert.equal(a.reservedPages, 2);
  assert.equal(dm.snapshot().freePages, 13);
  a.alloc(4); // 3 from the partial page, 1 from the reserve, then top-up
  assert.equal(a.usedPages, 2);
  assert.equal(a.reservedPages, 2);
  assert.equal(dm.snapshot().freePages, 12);
  assertSound(dm);
});

test("two models: A bursts over most of the memory and frees it; B's burst gets the same physical pages, no limit set", () => {
  const dm = new DeviceMemory({ budgetBytes: 64 * PAGE, pageBytes: PAGE, backed: false }); // defaults: 5% headroom, reserves
  assert.equal(dm.snapshot().headroomPages, 4);
  const a = dm.createKvSpace(A, GEOM4);
  const b = dm.createKvSpace(B, GEOM4);
  assert.equal(a.availableBlocks(), 60 * 4);
  const aIds = a.alloc(a.availableBlocks())!;
  assert.equal(aIds.length, 240);
  assert.equal(b.availableBlocks(), 0, "A holds everything but the headroom");
  assert.equal(b.alloc(1), null);
  const aPages = new Set(aIds.map((id) => physPage(dm, a.blockByteOffset(id))));
  assert.equal(aPages.size, 60);
  a.free(aIds);
  assert.ok(a.reservedPages > 0, "A keeps an idle reserve");
  assert.equal(b.availableBlocks(), 240, "A's reserve counts for B");
  const bIds = b.alloc(240)!;
  const bPages = new Set(bIds.map((id) => physPage(dm, b.blockByteOffset(id))));
  assert.deepEqual([...bPages].sort((x, y) => x - y), [...aPages].sort((x, y) => x - y));
  assert.equal(a.reservedPages, 0, "B took A's idle reserve");
  assert.equal(dm.snapshot().spaces.every((s) => s.limitBytes === null), true);
  assertSound(dm);
});

test("an idle space's reserve never blocks another space (reserves are a cache, not a quota)", () => {
  const dm = makeDevice(20, { maxReservedPages: 4 });
  const a = dm.createKvSpace(A, GEOM4);
  const b = dm.createKvSpace(B, GEOM4);
  a.free(a.alloc(16)!);
  assert.equal(a.reservedPages, 4);
  assert.equal(dm.freeKvPages(), 20);
  assert.equal(b.availableBlocks(), 80);
  assert.equal(b.alloc(80)!.length, 80);
  assert.equal(a.reservedPages, 0);
  assert.equal(dm.snapshot().freePages, 0);
  assertSound(dm);
});

test("headroom: KV spaces never map into it, weights may", () => {
  const dm = makeDevice(20, { kvHeadroomFraction: 0.1 });
  const a = dm.createKvSpace(A, GEOM4);
  assert.equal(dm.snapshot().headroomPages, 2);
  assert.equal(dm.freeKvPages(), 18);
  assert.equal(a.alloc(18 * 4)!.length, 72);
  assert.equal(a.alloc(1), null);
  assert.equal(dm.snapshot().freePages, 2);
  assert.equal(dm.freeKvPages(), 0);
  assert.notEqual(dm.allocWeights(B, 2 * PAGE), null);
  assert.equal(dm.snapshot().freePages, 0);
  assertSound(dm);
});

test("zero headroom is allowed and the default is 5% rounded up to pages", () => {
  assert.equal(new DeviceMemory({ budgetBytes: 100 * PAGE, pageBytes: PAGE, backed: false }).snapshot().headroomPages, 5);
  assert.equal(new DeviceMemory({ budgetBytes: 101 * PAGE, pageBytes: PAGE, backed: false }).snapshot().headroomPages, 6);
  assert.equal(makeDevice(100).snapshot().headroomPages, 0);
});

test("setLimit: applied, then a deferred shrink that blocks new pages and completes by itself as blocks are freed", () => {
  const dm = makeDevice(32, { maxReservedPages: 2 });
  const a = dm.createKvSpace(A, GEOM4);
  assert.deepEqual(a.setLimit(4 * PAGE + 100, 1), { status: "applied", effectiveLimitBytes: 4 * PAGE, mappedBytes: 0, overageBytes: 0 });
  const ids = a.alloc(16)!;
  assert.equal(a.alloc(1), null, "the limit caps mapped pages");
  assert.equal(a.availableBlocks(), 0);

  assert.deepEqual(a.setLimit(2 * PAGE, 2), { status: "deferred", effectiveLimitBytes: 2 * PAGE, mappedBytes: 4 * PAGE, overageBytes: 2 * PAGE });
  assert.equal(a.inShrink, true);
  a.free([ids[0]!]);
  assert.deepEqual(a.alloc(1), [ids[0]], "free slots in used pages stay usable during a shrink");
  assert.equal(a.alloc(1), null, "but no new page is mapped");
  a.free(ids.slice(0, 4));
  assert.equal(a.reservedPages, 0, "a page emptied during a shrink goes back to the device");
  assert.equal(a.mappedPages, 3);
  assert.equal(a.inShrink, true);
  a.free(ids.slice(4, 8));
  assert.equal(a.mappedPages, 2);
  assert.equal(a.inShrink, false, "the shrink completed by itself");
  const snap = a.snapshot();
  assert.equal(snap.limitBytes, 2 * PAGE);
  assert.equal(snap.limitRevision, 2);
  assert.equal(snap.inShrink, false);
  a.free(ids.slice(8, 12));
  assert.equal(a.reservedPages, 1, "after the shrink, emptied pages are parked again");
  assertSound(dm);
});

test("setLimit: stale and conflicting revisions change nothing; repeating the last one is idempotent", () => {
  const dm = makeDevice(32);
  const a = dm.createKvSpace(A, GEOM4);
  a.alloc(6);
  assert.equal(a.setLimit(8 * PAGE, 5).status, "applied");
  const before = dm.snapshot();
  assert.deepEqual(a.setLimit(1 * PAGE, 4), { status: "stale", effectiveLimitBytes: 8 * PAGE, mappedBytes: 2 * PAGE, overageBytes: 0 });
  assert.deepEqual(dm.snapshot(), before);
  assert.deepEqual(a.setLimit(1 * PAGE, 5), { status: "conflict", effectiveLimitBytes: 8 * PAGE, mappedBytes: 2 * PAGE, overageBytes: 0 });
  assert.deepEqual(dm.snapshot(), before);
  assert.equal(a.setLimit(8 * PAGE, 5).status, "applied");
  assert.deepEqual(dm.snapshot(), before);
  assert.equal(a.setLimit(1 * PAGE, 6).status, "deferred");
  assert.equal(a.setLimit(1 * PAGE, 6).status, "deferred", "the repeat reports the current state");
  assert.equal(a.setLimit(3 * PAGE, 7).status, "applied", "raising the limit above usage ends the shrink");
  assert.equal(a.inShrink, false);
  assert.equal(a.setLimit(10 ** 15, 8).effectiveLimitBytes, 32 * PAGE, "capped at the device (the virtual capacity)");
  assertSound(dm);
});

test("setLimit gives back reserved pages before it defers", () => {
  const dm = makeDevice(16, { minReservedPages: 2, maxReservedPages: 4 });
  const a = dm.createKvSpace(A, GEOM4);
  a.alloc(1);
  assert.equal(a.mappedPages, 3);
  assert.equal(a.setLimit(PAGE, 1).status, "applied");
  assert.equal(a.reservedPages, 0);
  assert.equal(a.mappedPages, 1);
  assert.equal(dm.snapshot().freePages, 15);
  assert.equal(a.setLimit(0, 2).status, "deferred");
  assertSound(dm);
});

test("destroyKvSpace returns every page; a busy space cannot be destroyed; the model may get a new space", () => {
  const dm = makeDevice(16, { minReservedPages: 1, maxReservedPages: 2 });
  const a = dm.createKvSpace(A, GEOM4);
  const ids = a.alloc(9)!;
  assert.throws(() => dm.destroyKvSpace(a), { code: "PRISM_MEM_SPACE_BUSY" });
  a.free(ids);
  dm.destroyKvSpace(a);
  assert.equal(dm.snapshot().freePages, 16);
  assert.equal(dm.snapshot().spaces.length, 0);
  assert.throws(() => a.alloc(1), { code: "PRISM_MEM_UNKNOWN_SPACE" });
  const a2 = dm.createKvSpace(A, GEOM4);
  assert.deepEqual(a2.alloc(2), [0, 1]);
  assertSound(dm);
});

test("more than 32 blocks per page (multi-word slot bitmaps) and one block per page", () => {
  const dm = makeDevice(8);
  const many = dm.createKvSpace(A, { bytesPerTokenPerLayer: 96, numLayers: 1, blockTokens: 1 }); // 42 per page
  assert.equal(many.blocksPerPage, 42);
  const ids = many.alloc(126)!;
  assert.equal(new Set(ids).size, 126);
  assert.equal(many.mappedPages, 3);
  assert.equal(many.freeSlotsInUsedPages, 0);
  many.free(ids.filter((id) => id % 3 === 0));
  const more = many.alloc(20)!;
  assert.equal(more.every((id) => id % 3 === 0), true, "refills the freed slots");
  const one = dm.createKvSpace(B, { bytesPerTokenPerLayer: 4096, numLayers: 1, blockTokens: 1 });
  assert.equal(one.blocksPerPage, 1);
  const single = one.alloc(3)!;
  assert.deepEqual(single, [0, 1, 2]);
  one.free([single[1]!]);
  assert.deepEqual(one.alloc(1), [1]);
  assertSound(dm);
});

test("accounting-only mode has no memory and gives the same ids and offsets as a backed device", () => {
  const run = (backed: boolean): number[] => {
    const dm = new DeviceMemory({ budgetBytes: 16 * PAGE, pageBytes: PAGE, backed, kvHeadroomFraction: 0 });
    if (!backed) assert.equal(dm.memory, null);
    const a = dm.createKvSpace(A, GEOM4);
    const ids = a.alloc(7)!;
    a.free([ids[1]!, ids[5]!]);
    return [...a.alloc(3)!, ...ids.filter((_, i) => i !== 1 && i !== 5).map((id) => a.blockByteOffset(id))];
  };
  assert.deepEqual(run(false), run(true));
  const big = new DeviceMemory({ budgetBytes: 80 * 2 ** 30, pageBytes: 2 ** 21, backed: false });
  assert.equal(big.snapshot().totalPages, 40960);
  const s = big.createKvSpace(A, { bytesPerTokenPerLayer: 4096, numLayers: 32, blockTokens: 16 });
  assert.equal(s.blocksPerPage, 1);
  assert.equal(s.alloc(1000)!.length, 1000);
  assertSound(big);
});
