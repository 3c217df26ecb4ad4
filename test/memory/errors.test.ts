// Bad input: every PRISM_MEM_* code, and the device state is exactly unchanged afterwards.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DeviceMemory, type DeviceMemoryOptions, type KvSpace } from "../../src/memory/index.ts";
import { modelId } from "../../src/core/ids.ts";
import { A, B, C, GEOM4, PAGE, assertSound, makeDevice } from "./helpers.ts";

/** A device with some of everything: two spaces with used, partial and reserved pages, a weight region, a limit. */
function populated(): { dm: DeviceMemory; a: KvSpace; b: KvSpace; aIds: number[]; bIds: number[] } {
  const dm = makeDevice(32, { minReservedPages: 1, maxReservedPages: 2 });
  const a = dm.createKvSpace(A, GEOM4);
  const b = dm.createKvSpace(B, GEOM4);
  const aIds = a.alloc(10)!;
  const bIds = b.alloc(3)!;
  a.free([aIds[0]!]);
  aIds.shift();
  dm.allocWeights(C, 5 * PAGE);
  b.setLimit(8 * PAGE, 3);
  return { dm, a, b, aIds, bIds };
}

function unchanged(dm: DeviceMemory, code: string, fn: () => unknown): void {
  const before = dm.snapshot();
  assert.throws(fn, (e: unknown) => {
    assert.equal((e as { code?: string }).code, code, `expected ${code}, got ${String(e)}`);
    return true;
  });
  assert.deepEqual(dm.snapshot(), before, `state changed by a rejected call (${code})`);
  assertSound(dm);
}

test("PRISM_MEM_INVALID_ARGUMENT: sizes that are negative, NaN, non-integer or out of range", () => {
  const { dm, a } = populated();
  const out = new Int32Array(4);
  for (const n of [-1, NaN, 1.5, Infinity, 2 ** 31]) {
    unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => a.alloc(n));
    unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => a.allocInto(n, out, 0));
  }
  unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => a.allocInto(2, out, 3));
  unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => a.allocInto(1, out, -1));
  unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => a.free(out, 2, 5));
  unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => a.free(out, -1, 1));
  for (const [bytes, rev] of [[-1, 9], [NaN, 9], [1.5, 9], [PAGE, -1], [PAGE, 0.5], [PAGE, NaN]] as const) {
    unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => a.setLimit(bytes, rev));
  }
  for (const bytes of [0, -1, NaN, 1.5, Infinity]) unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => dm.allocWeights(modelId("w"), bytes));
  unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => dm.allocWeights(C, PAGE)); // C already has weights
  unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => dm.allocWeights(modelId(""), PAGE));
  unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => dm.createKvSpace(A, GEOM4)); // A already has a space
  unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => dm.createKvSpace(modelId("x"), { ...GEOM4, numLayers: 0 }));
  unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => dm.createKvSpace(modelId("x"), { ...GEOM4, blockTokens: 2.5 }));
  unchanged(dm, "PRISM_MEM_INVALID_ARGUMENT", () => dm.createKvSpace(modelId("x"), { ...GEOM4, bytesPerTokenPerLayer: -64 }));
});

test("PRISM_MEM_INVALID_ARGUMENT: device options", () => {
  const ok: DeviceMemoryOptions = { budgetBytes: 16 * PAGE, pageBytes: PAGE, backed: false };
  const bad: Partial<DeviceMemoryOptions>[] = [
    { pageBytes: 3000 }, { pageBytes: 2048 }, { pageBytes: 6144 },
    { budgetBytes: 0 }, { budgetBytes: 16 * PAGE + 1 }, { budgetBytes: -PAGE }, { budgetBytes: NaN },
    { kvHeadroomFraction: 1 }, { kvHeadroomFraction: -0.1 }, { kvHeadroomFraction: NaN },
    { minReservedPages: 3, maxReservedPages: 2 }, { minReservedPages: -1 }, { maxReservedPages: 1.5 },
    { prefixBytes: 8 }, { prefixBytes: -16 },
  ];
  for (const b of bad) {
    assert.throws(() => new DeviceMemory({ ...ok, ...b }), { code: "PRISM_MEM_INVALID_ARGUMENT" }, JSON.stringify(b));
  }
  assert.doesNotThrow(() => new DeviceMemory({ ...ok, kvHeadroomFraction: 0, minReservedPages: 0, maxReservedPages: 0 }));
});

test("PRISM_MEM_BUDGET_TOO_LARGE: a backed budget over 4 GiB (accounting-only is fine)", () => {
  const opts = { budgetBytes: 8 * 2 ** 30, pageBytes: 2 ** 21 };
  assert.throws(() => new DeviceMemory({ ...opts, backed: true }), { code: "PRISM_MEM_BUDGET_TOO_LARGE" });
  assert.throws(() => new DeviceMemory({ budgetBytes: 2 ** 32, pageBytes: PAGE, prefixBytes: 65536, backed: true }), { code: "PRISM_MEM_BUDGET_TOO_LARGE" });
  assert.equal(new DeviceMemory({ ...opts, backed: false }).snapshot().totalPages, 4096);
});

test("PRISM_MEM_BLOCK_TOO_LARGE: a block that does not fit in one page", () => {
  const { dm } = populated();
  unchanged(dm, "PRISM_MEM_BLOCK_TOO_LARGE", () => dm.createKvSpace(modelId("big"), { bytesPerTokenPerLayer: 1025, numLayers: 1, blockTokens: 4 }));
  assert.equal(dm.createKvSpace(modelId("fits"), { bytesPerTokenPerLayer: 1024, numLayers: 1, blockTokens: 4 }).blocksPerPage, 1);
});

test("PRISM_MEM_UNKNOWN_BLOCK: ids never allocated or not block ids at all", () => {
  const { dm, a, aIds } = populated();
  for (const id of [-1, 1.5, NaN, 10_000, 2 ** 31, 40]) {
    unchanged(dm, "PRISM_MEM_UNKNOWN_BLOCK", () => a.free([id]));
    unchanged(dm, "PRISM_MEM_UNKNOWN_BLOCK", () => a.blockByteOffset(id));
  }
  unchanged(dm, "PRISM_MEM_UNKNOWN_BLOCK", () => a.free([aIds[1]!, aIds[2]!, 4000]), );
  assert.equal(a.usedBlocks, 9, "the valid ids before the bad one were not freed");
});

test("PRISM_MEM_DOUBLE_FREE: freed twice, or twice in one batch", () => {
  const { dm, a, aIds } = populated();
  const id = aIds[3]!;
  a.free([id]);
  unchanged(dm, "PRISM_MEM_DOUBLE_FREE", () => a.free([id]));
  unchanged(dm, "PRISM_MEM_DOUBLE_FREE", () => a.free([aIds[4]!, aIds[5]!, aIds[4]!]));
  unchanged(dm, "PRISM_MEM_DOUBLE_FREE", () => a.free(new Int32Array([aIds[6]!, aIds[6]!])));
  assert.equal(a.usedBlocks, 8);
  // the same batch without the repeat is fine
  a.free([aIds[4]!, aIds[5]!]);
  assert.equal(a.usedBlocks, 6);
  assertSound(dm);
});

test("PRISM_MEM_FOREIGN_BLOCK: a block held by another space of the device", () => {
  const { dm, a, b, aIds } = populated();
  // b holds ids 0..2, a holds 1..9: id 9 is only a's.
  unchanged(dm, "PRISM_MEM_FOREIGN_BLOCK", () => b.free([aIds[aIds.length - 1]!]));
  unchanged(dm, "PRISM_MEM_FOREIGN_BLOCK", () => b.blockByteOffset(8));
  assert.equal(a.usedBlocks, 9);
});

test("PRISM_MEM_UNKNOWN_SPACE: a destroyed space, or another device's", () => {
  const { dm, a, b, bIds } = populated();
  b.free(bIds);
  dm.destroyKvSpace(b);
  unchanged(dm, "PRISM_MEM_UNKNOWN_SPACE", () => b.alloc(1));
  unchanged(dm, "PRISM_MEM_UNKNOWN_SPACE", () => b.allocInto(1, new Int32Array(1), 0));
  unchanged(dm, "PRISM_MEM_UNKNOWN_SPACE", () => b.free([0]));
  unchanged(dm, "PRISM_MEM_UNKNOWN_SPACE", () => b.setLimit(PAGE, 10));
  unchanged(dm, "PRISM_MEM_UNKNOWN_SPACE", () => b.availableBlocks());
  unchanged(dm, "PRISM_MEM_UNKNOWN_SPACE", () => b.blockByteOffset(0));
  unchanged(dm, "PRISM_MEM_UNKNOWN_SPACE", () => dm.destroyKvSpace(b));
  const other = makeDevice(8);
  const foreign = other.createKvSpace(A, GEOM4);
  unchanged(dm, "PRISM_MEM_UNKNOWN_SPACE", () => dm.destroyKvSpace(foreign));
  assert.equal(a.usedBlocks, 9);
});

test("PRISM_MEM_UNKNOWN_REGION: freeing weights that are not there", () => {
  const { dm } = populated();
  unchanged(dm, "PRISM_MEM_UNKNOWN_REGION", () => dm.freeWeights(A));
  dm.freeWeights(C);
  unchanged(dm, "PRISM_MEM_UNKNOWN_REGION", () => dm.freeWeights(C));
});

test("PRISM_MEM_SPACE_BUSY: destroying a space that holds blocks", () => {
  const { dm, a } = populated();
  unchanged(dm, "PRISM_MEM_SPACE_BUSY", () => dm.destroyKvSpace(a));
});

test("running out is a value, not an error", () => {
  const { dm, a } = populated();
  const before = dm.snapshot();
  assert.equal(a.alloc(a.availableBlocks() + 1), null);
  assert.equal(a.alloc(2 ** 31 - 1), null);
  assert.equal(a.allocInto(a.availableBlocks() + 1, new Int32Array(1000), 0), false);
  assert.equal(dm.allocWeights(modelId("huge"), 1000 * PAGE), null);
  assert.deepEqual(dm.snapshot(), before);
});
