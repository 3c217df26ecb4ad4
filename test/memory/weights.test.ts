// Weight regions: contiguous, placed from the top; eviction then a larger load compacts instead of
// failing on fragmentation; compaction keeps KV and weight bytes and tells listeners.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DeviceMemory } from "../../src/memory/index.ts";
import { modelId, type ModelId } from "../../src/core/ids.ts";
import { A, B, C, D, GEOM4, PAGE, assertSound, hasPattern, makeDevice, physPage, writePattern } from "./helpers.ts";

test("weights are contiguous and stacked from the top; KV pages come from the bottom", () => {
  const dm = makeDevice(64);
  const a = dm.allocWeights(A, 4 * PAGE - 10)!;
  assert.equal(a.byteOffset, 60 * PAGE);
  assert.equal(a.bytes, 4 * PAGE - 10);
  const b = dm.allocWeights(B, 3 * PAGE)!;
  assert.equal(b.byteOffset, 57 * PAGE);
  const kv = dm.createKvSpace(C, GEOM4);
  assert.equal(kv.blockByteOffset(kv.alloc(1)![0]!), 0);
  assert.equal(dm.weightRegion(A), a);
  assert.equal(dm.weightRegion(D), null);
  const snap = dm.snapshot();
  assert.equal(snap.weightPages, 7);
  assert.deepEqual(snap.weights.map((w) => [w.modelId, w.pages, w.byteOffset]), [[B, 3, 57 * PAGE], [A, 4, 60 * PAGE]]);
  assert.equal(snap.numCompactions, 0);
  dm.freeWeights(A);
  assert.equal(dm.weightRegion(A), null);
  assert.equal(dm.snapshot().freePages, 64 - 3 - 1);
  assertSound(dm);
});

test("fragmentation: load A, B, C with KV in between, evict B, load D ≤ free total → compaction, all bytes kept", () => {
  const dm = makeDevice(64, { prefixBytes: 65536 });
  const moves: [ModelId, number, number][] = [];
  dm.onWeightsMoved((m, from, to) => moves.push([m, from, to]));
  writePattern(dm, 0, 65536, 999); // the executor's prefix must never be touched
  const kv = dm.createKvSpace(modelId("kv"), GEOM4);
  const blocks: number[] = [];
  const load = (m: ModelId, pages: number, stamp: number): void => {
    const r = dm.allocWeights(m, pages * PAGE - 100)!;
    assert.notEqual(r, null);
    writePattern(dm, r.byteOffset, r.bytes, stamp);
  };
  const grow = (numBlocks: number): void => {
    for (const id of kv.alloc(numBlocks)!) {
      blocks.push(id);
      writePattern(dm, kv.blockByteOffset(id), kv.blockBytes, id);
    }
  };
  load(A, 10, 1);
  grow(24 * 4);
  load(B, 10, 2);
  load(C, 10, 3);
  grow(10 * 4);
  assert.equal(dm.snapshot().freePages, 0);
  // Free every other KV page of the first 24: 12 scattered free pages.
  const freed = blocks.filter((id) => Math.floor(id / 4) % 2 === 0 && id < 96);
  kv.free(freed);
  const held = blocks.filter((id) => !freed.includes(id));
  dm.freeWeights(B);
  assert.equal(dm.snapshot().freePages, 22);
  assert.equal(dm.maxWeightBytes(), 22 * PAGE);
  const offsetsBefore = held.map((id) => kv.blockByteOffset(id));

  const d = dm.allocWeights(D, 16 * PAGE);
  assert.notEqual(d, null, "16 pages fit in 22 free ones, though no free run is longer than 10");
  const snap = dm.snapshot();
  assert.equal(snap.numCompactions, 1);
  assert.ok(snap.compactionMovedBytes > 0);
  assert.equal(snap.freePages, 6);
  // Block ids are unchanged and still hold their bytes, at (possibly) new offsets.
  for (const id of held) assert.ok(hasPattern(dm, kv.blockByteOffset(id), kv.blockBytes, id), `block ${id}`);
  assert.ok(held.some((id, i) => kv.blockByteOffset(id) !== offsetsBefore[i]), "some KV page moved");
  for (const [m, stamp] of [[A, 1], [C, 3]] as const) {
    const r = dm.weightRegion(m)!;
    assert.ok(hasPattern(dm, r.byteOffset, r.bytes, stamp), `weights of ${m}`);
  }
  assert.ok(hasPattern(dm, 0, 65536, 999), "prefix untouched");
  // Listeners heard every weight move, with the offsets the regions now report.
  for (const [m, , to] of moves) assert.equal(dm.weightRegion(m)!.byteOffset, to);
  assert.ok(moves.length > 0);
  // D is one run of whole pages, inside the budget, overlapping nothing.
  const dFirst = physPage(dm, d!.byteOffset);
  assert.ok(dFirst >= 0 && dFirst + 16 <= 64);
  assertSound(dm);
});

test("allocWeights returns null and changes nothing when free + reserved pages cannot hold the region", () => {
  const dm = makeDevice(16, { maxReservedPages: 4 });
  const kv = dm.createKvSpace(A, GEOM4);
  kv.free(kv.alloc(4 * 4)!);
  assert.equal(kv.reservedPages, 4);
  assert.equal(dm.maxWeightBytes(), 16 * PAGE, "idle reserves count");
  const before = dm.snapshot();
  assert.equal(dm.allocWeights(B, 16 * PAGE + 1), null);
  assert.deepEqual(dm.snapshot(), before);
  assert.notEqual(dm.allocWeights(B, 16 * PAGE), null, "releases the reserve");
  assert.equal(kv.reservedPages, 0);
  assert.equal(dm.maxWeightBytes(), 0);
  assert.equal(dm.allocWeights(C, 1), null);
  assertSound(dm);
});

test("a model's KV space and weights are independent", () => {
  const dm = makeDevice(32);
  const kv = dm.createKvSpace(A, GEOM4);
  const ids = kv.alloc(5)!;
  dm.allocWeights(A, 4 * PAGE);
  dm.freeWeights(A);
  assert.equal(kv.usedBlocks, 5);
  kv.free(ids);
  dm.destroyKvSpace(kv);
  dm.allocWeights(A, PAGE);
  assert.equal(dm.snapshot().spaces.length, 0);
  assertSound(dm);
});

test("the backing memory is sized once and cannot grow; shared: true gives a SharedArrayBuffer", () => {
  const plain = makeDevice(16);
  assert.equal(plain.memory!.buffer.byteLength, 65536);
  assert.throws(() => plain.memory!.grow(1), RangeError);
  const shared = new DeviceMemory({ budgetBytes: 32 * PAGE, pageBytes: PAGE, backed: true, shared: true });
  const buffer: ArrayBufferLike = shared.memory!.buffer;
  assert.equal(Object.prototype.toString.call(buffer), "[object SharedArrayBuffer]");
  assert.equal(buffer.byteLength, 2 * 65536);
  assert.throws(() => shared.memory!.grow(1), RangeError);
  const kv = shared.createKvSpace(A, GEOM4);
  const id = kv.alloc(1)![0]!;
  new Uint8Array(shared.memory!.buffer)[kv.blockByteOffset(id)] = 7;
  assert.notEqual(shared.allocWeights(B, 8 * PAGE), null);
});
