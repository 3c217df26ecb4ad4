// The server reads only a GGUF file's header (vocabulary, config, tensor infos); the engine reads the weights.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseGguf, readGgufHeaderSync } from "../../src/engine/gguf/reader.ts";
import { generateRandomModel } from "../../src/engine/model/generate.ts";
import { SHAPES } from "../../src/engine/model/shapes.ts";

test("readGgufHeaderSync: same metadata and tensor infos as a full parse, growing its read past a long header", () => {
  const dir = mkdtempSync(join(tmpdir(), "prism-gguf-header-"));
  try {
    const bytes = generateRandomModel({ shape: SHAPES.tiny!, dtype: "q8_0", seed: 3 });
    const path = join(dir, "m.gguf");
    writeFileSync(path, bytes);
    const full = parseGguf(bytes, path);
    for (const first of [64, 1000, 4 << 20]) {
      const h = readGgufHeaderSync(path, {}, first);
      assert.deepEqual(h.metadata, full.metadata);
      assert.deepEqual(h.tensors, full.tensors);
      assert.equal(h.dataOffset, full.dataOffset);
      if (first < bytes.byteLength / 4) assert.ok(h.bytes.byteLength < bytes.byteLength, `the weights were not read (first read ${first})`);
    }
    // a file cut inside its tensor data is still caught: bounds are checked against the real size
    const cut = join(dir, "cut.gguf");
    writeFileSync(cut, bytes.subarray(0, full.dataOffset + 10));
    assert.throws(() => readGgufHeaderSync(cut), (e: any) => e.code === "PRISM_GGUF_TRUNCATED" && /extends past the end/.test(e.message));
    // and one cut inside its header
    writeFileSync(cut, bytes.subarray(0, 200));
    assert.throws(() => readGgufHeaderSync(cut, {}, 64), (e: any) => e.code === "PRISM_GGUF_TRUNCATED");
    assert.throws(() => readGgufHeaderSync(join(dir, "none.gguf")), (e: any) => e.code === "PRISM_FILE_NOT_FOUND");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
