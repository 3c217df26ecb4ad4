// Property tests: random sequences of create/alloc/free/setLimit/destroy/allocWeights/freeWeights over
// several models on one backed device, checked against a shadow model after every step.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { DeviceMemory, type KvSpaceImpl, type KvSpaceOptions } from "../../src/memory/index.ts";
import { modelId, type ModelId } from "../../src/core/ids.ts";
import { PAGE, hasPattern, writePattern } from "./helpers.ts";

const GEOMETRIES: readonly KvSpaceOptions[] = [
  { bytesPerTokenPerLayer: 64, numLayers: 4, blockTokens: 4 }, // 1024 B → 4 per page
  { bytesPerTokenPerLayer: 4096, numLayers: 1, blockTokens: 1 }, // 1 per page
  { bytesPerTokenPerLayer: 125, numLayers: 2, blockTokens: 4 }, // 1000 B → 4 (96 B slack)
  { bytesPerTokenPerLayer: 1365, numLayers: 1, blockTokens: 1 }, // 3
  { bytesPerTokenPerLayer: 96, numLayers: 1, blockTokens: 1 }, // 42 (two bitmap words)
  { bytesPerTokenPerLayer: 32, numLayers: 4, blockTokens: 4 }, // 8
];
const MODELS: readonly ModelId[] = [modelId("m0"), modelId("m1"), modelId("m2")];

type Op =
  | { kind: "create"; m: number; geom: number }
  | { kind: "destroy"; m: number }
  | { kind: "alloc"; m: number; n: number }
  | { kind: "free"; m: number; from: number; count: number; dup: boolean }
  | { kind: "freeAll"; m: number }
  | { kind: "setLimit"; m: number; pages: number; odd: boolean; revDelta: number }
  | { kind: "allocWeights"; m: number; pages: number; slack: number }
  | { kind: "freeWeights"; m: number };

const m = fc.integer({ min: 0, max: MODELS.length - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("create" as const), m, geom: fc.integer({ min: 0, max: GEOMETRIES.length - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("destroy" as const), m }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("alloc" as const), m, n: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 200 })) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("free" as const), m, from: fc.nat(1000), count: fc.integer({ min: 1, max: 40 }), dup: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("freeAll" as const), m }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("setLimit" as const), m, pages: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 44 })), odd: fc.boolean(), revDelta: fc.integer({ min: -1, max: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("allocWeights" as const), m, pages: fc.integer({ min: 1, max: 16 }), slack: fc.constantFrom(0, 100, 4095) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("freeWeights" as const), m }) },
);

const configArb = fc.record({
  numPages: fc.integer({ min: 8, max: 40 }),
  headroom: fc.constantFrom(0, 0.05, 0.1, 0.25),
  minReserved: fc.integer({ min: 0, max: 3 }),
  extraReserved: fc.integer({ min: 0, max: 3 }),
  prefixBytes: fc.constantFrom(0, 65536),
  /** Spaces created before the random operations, so most sequences start with something to do. */
  initialGeoms: fc.array(fc.integer({ min: 0, max: GEOMETRIES.length - 1 }), { minLength: 0, maxLength: MODELS.length }),
});
type Config = typeof configArb extends fc.Arbitrary<infer T> ? T : never;

interface Shadow {
  space: KvSpaceImpl | null;
  /** held block id → stamp of the bytes written into it */
  held: Map<number, number>;
  lastRevision: number;
  lastLimitBytes: number;
  weightStamp: number | null;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return "no error";
}

function run(cfg: Config, ops: readonly Op[]): void {
  const dm = new DeviceMemory({
    budgetBytes: cfg.numPages * PAGE, pageBytes: PAGE, backed: true, prefixBytes: cfg.prefixBytes,
    kvHeadroomFraction: cfg.headroom, minReservedPages: cfg.minReserved, maxReservedPages: cfg.minReserved + cfg.extraReserved,
  });
  const total = cfg.numPages;
  const headroom = dm.snapshot().headroomPages;
  const movedTo = new Map<ModelId, number>();
  dm.onWeightsMoved((model, from, to) => {
    assert.equal(movedTo.get(model), from, "listener's old offset is where the region was");
    movedTo.set(model, to);
  });
  const shadows: Shadow[] = MODELS.map(() => ({ space: null, held: new Map(), lastRevision: -1, lastLimitBytes: -1, weightStamp: null }));
  let stamp = 1;
  cfg.initialGeoms.forEach((g, i) => {
    shadows[i]!.space = dm.createKvSpace(MODELS[i]!, GEOMETRIES[g]!);
  });

  const checkBytes = (): void => {
    for (const sh of shadows) {
      if (sh.space === null) continue;
      for (const [id, st] of sh.held) assert.ok(hasPattern(dm, sh.space.blockByteOffset(id), sh.space.blockBytes, st), `bytes of block ${id}`);
    }
    MODELS.forEach((model, i) => {
      const st = shadows[i]!.weightStamp;
      if (st === null) return;
      const r = dm.weightRegion(model)!;
      assert.equal(r.byteOffset, movedTo.get(model), "listeners know where the weights are");
      assert.ok(hasPattern(dm, r.byteOffset, r.bytes, st), `weights of ${model}`);
    });
  };

  const checkInvariants = (kvPagesBefore: number): void => {
    assert.deepEqual(dm.auditProblems(), []);
    const snap = dm.snapshot();
    assert.equal(snap.freePages + snap.weightPages + snap.kvPages, total, "every page in exactly one place");
    if (snap.kvPages > kvPagesBefore) assert.ok(snap.freePages >= headroom, "KV never maps into the headroom");
    // No byte of the budget is given out twice (blocks of all spaces and weight regions).
    const ranges: [number, number][] = [];
    for (const sh of shadows) {
      if (sh.space === null) continue;
      assert.equal(sh.space.usedBlocks, sh.held.size);
      assert.equal(sh.space.inShrink, sh.space.mappedPages > sh.space.limitPages, "a shrink lasts exactly while mapped > limit");
      for (const id of sh.held.keys()) {
        const off = sh.space.blockByteOffset(id);
        ranges.push([off, off + sh.space.blockBytes]);
      }
    }
    for (const w of snap.weights) ranges.push([w.byteOffset, w.byteOffset + w.bytes]);
    ranges.sort((x, y) => x[0] - y[0]);
    for (let i = 0; i < ranges.length; i++) {
      assert.ok(ranges[i]![0] >= cfg.prefixBytes && ranges[i]![1] <= cfg.prefixBytes + total * PAGE, "inside the budget");
      if (i > 0) assert.ok(ranges[i - 1]![1] <= ranges[i]![0], "no overlap");
    }
  };

  for (const op of ops) {
    const sh = shadows[op.m]!;
    const model = MODELS[op.m]!;
    const before = dm.snapshot();
    switch (op.kind) {
      case "create": {
        if (sh.space !== null) {
          assert.equal(codeOf(() => dm.createKvSpace(model, GEOMETRIES[op.geom]!)), "PRISM_MEM_INVALID_ARGUMENT");
          assert.deepEqual(dm.snapshot(), before);
        } else {
          sh.space = dm.createKvSpace(model, GEOMETRIES[op.geom]!);
          sh.lastRevision = -1;
        }
        break;
      }
      case "destroy": {
        if (sh.space === null) break;
        if (sh.held.size > 0) {
          assert.equal(codeOf(() => dm.destroyKvSpace(sh.space!)), "PRISM_MEM_SPACE_BUSY");
          assert.deepEqual(dm.snapshot(), before);
        } else {
          dm.destroyKvSpace(sh.space);
          sh.space = null;
        }
        break;
      }
      case "alloc": {
        const space = sh.space;
        if (space === null) break;
        const available = space.availableBlocks();
        const ids = space.alloc(op.n);
        assert.equal(ids !== null, op.n <= available, "alloc succeeds exactly when availableBlocks() covers it");
        if (ids === null) {
          assert.deepEqual(dm.snapshot(), before);
          break;
        }
        assert.equal(new Set(ids).size, ids.length);
        for (const id of ids) {
          assert.ok(!sh.held.has(id), "never handed out twice");
          const st = stamp++;
          sh.held.set(id, st);
          writePattern(dm, space.blockByteOffset(id), space.blockBytes, st);
        }
        if (!space.inShrink) assert.ok(space.mappedPages <= space.limitPages);
        break;
      }
      case "free":
      case "freeAll": {
        if (sh.space === null || sh.held.size === 0) break;
        const all = [...sh.held.keys()];
        const pick = op.kind === "freeAll" ? all : all.filter((_, i) => (i - op.from % all.length + all.length) % all.length < op.count);
        if (op.kind === "free" && op.dup) {
          const withRepeat = new Int32Array([...pick, pick[pick.length >> 1]!]);
          assert.equal(codeOf(() => sh.space!.free(withRepeat)), "PRISM_MEM_DOUBLE_FREE");
          assert.deepEqual(dm.snapshot(), before, "a rejected batch frees nothing");
          assert.deepEqual(dm.auditProblems(), []);
        }
        sh.space.free(pick);
        for (const id of pick) sh.held.delete(id);
        assert.equal(codeOf(() => sh.space!.free([pick[0]!])).startsWith("PRISM_MEM_"), true);
        break;
      }
      case "setLimit": {
        const space = sh.space;
        if (space === null) break;
        const revision = Math.max(0, sh.lastRevision + op.revDelta);
        const bytes = op.pages * PAGE + (op.odd ? 100 : 0);
        const res = space.setLimit(bytes, revision);
        const repeat = sh.lastRevision >= 0 && revision === sh.lastRevision;
        if (sh.lastRevision >= 0 && revision < sh.lastRevision) {
          assert.equal(res.status, "stale");
          assert.deepEqual(dm.snapshot(), before, "a stale revision changes nothing");
        } else if (repeat && bytes !== sh.lastLimitBytes) {
          assert.equal(res.status, "conflict");
          assert.deepEqual(dm.snapshot(), before, "a conflicting revision changes nothing");
        } else {
          if (repeat) assert.deepEqual(dm.snapshot(), before, "a repeat is idempotent");
          sh.lastRevision = revision;
          sh.lastLimitBytes = bytes;
          assert.equal(res.effectiveLimitBytes, Math.min(total, op.pages) * PAGE);
          assert.equal(res.status, space.usedPages > space.limitPages ? "deferred" : "applied");
          assert.equal(res.overageBytes, Math.max(0, space.mappedPages - space.limitPages) * PAGE);
        }
        break;
      }
      case "allocWeights": {
        const bytes = op.pages * PAGE - op.slack;
        if (sh.weightStamp !== null) {
          assert.equal(codeOf(() => dm.allocWeights(model, bytes)), "PRISM_MEM_INVALID_ARGUMENT");
          break;
        }
        const max = dm.maxWeightBytes();
        const r = dm.allocWeights(model, bytes);
        assert.equal(r !== null, op.pages * PAGE <= max, "allocWeights succeeds exactly up to maxWeightBytes()");
        if (r === null) {
          assert.deepEqual(dm.snapshot(), before);
          break;
        }
        sh.weightStamp = stamp++;
        movedTo.set(model, r.byteOffset);
        writePattern(dm, r.byteOffset, r.bytes, sh.weightStamp);
        checkBytes(); // a compaction may have moved anything
        break;
      }
      case "freeWeights": {
        if (sh.weightStamp === null) {
          assert.equal(codeOf(() => dm.freeWeights(model)), "PRISM_MEM_UNKNOWN_REGION");
          break;
        }
        dm.freeWeights(model);
        sh.weightStamp = null;
        movedTo.delete(model);
        break;
      }
    }
    checkInvariants(before.kvPages);
  }
  checkBytes();

  // Freeing all blocks leaves only weights and idle reserves; then destroying everything restores the start.
  for (const sh of shadows) {
    if (sh.space === null) continue;
    sh.space.free([...sh.held.keys()]);
    sh.held.clear();
    assert.equal(sh.space.usedPages, 0);
  }
  const mid = dm.snapshot();
  assert.equal(mid.freePages + mid.kvReservedPages + mid.weightPages, total);
  MODELS.forEach((model, i) => {
    const sh = shadows[i]!;
    if (sh.space !== null) dm.destroyKvSpace(sh.space);
    if (sh.weightStamp !== null) dm.freeWeights(model);
  });
  const end = dm.snapshot();
  assert.equal(end.freePages, total);
  assert.equal(end.kvPages + end.weightPages, 0);
  assert.deepEqual(dm.auditProblems(), []);
}

test("random operation sequences keep every invariant (conservation, no double mapping, limits, headroom, bytes)", () => {
  fc.assert(fc.property(configArb, fc.array(opArb, { minLength: 1, maxLength: 80, size: "max" }), run), { numRuns: 400, seed: 20260101 });
});

test("weight-heavy sequences compact often and keep every byte", () => {
  const weighty = fc.oneof(
    { weight: 3, arbitrary: opArb },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("allocWeights" as const), m, pages: fc.integer({ min: 1, max: 8 }), slack: fc.constantFrom(0, 100) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("freeWeights" as const), m }) },
  );
  fc.assert(fc.property(configArb, fc.array(weighty, { minLength: 10, maxLength: 80, size: "max" }), run), { numRuns: 200, seed: 7 });
});
