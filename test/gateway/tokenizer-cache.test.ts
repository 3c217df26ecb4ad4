// Models whose tokenizer metadata is equal share one Tokenizer (startup builds each vocabulary once);
// a different vocabulary gets its own, and a shared one encodes exactly like one built for the model.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ModelEntry } from "../../src/config/load.ts";
import { loadModelFile, TokenizerCache } from "../../src/gateway/models.ts";
import { Tokenizer } from "../../src/engine/tokenizer/tokenizer.ts";
import { STORIES_GGUF, requireShared } from "../helpers/server.ts";

function entry(id: string, source: ModelEntry["source"]): ModelEntry {
  return { id, source, aliases: [], ttftSloMs: 1000, tpotSloMs: 100, pinned: false, keepAliveMs: 1000, maxRunning: 1, maxQueue: 1, expectedRate: 1, backend: "engine" };
}

test("TokenizerCache: equal vocabularies share one tokenizer, different ones do not", () => {
  requireShared();
  const dir = mkdtempSync(join(tmpdir(), "prism-tokcache-"));
  try {
    const cache = new TokenizerCache();
    const a = loadModelFile(entry("a", { kind: "gen", shape: "tiny", dtype: "f32", seed: 7 }), dir, cache);
    const b = loadModelFile(entry("b", { kind: "gen", shape: "tiny", dtype: "q8_0", seed: 8 }), dir, cache);
    const s = loadModelFile(entry("s", { kind: "file", path: STORIES_GGUF }), dir, cache);
    assert.equal(a.tokenizer, b.tokenizer);
    assert.notEqual(a.tokenizer, s.tokenizer);
    assert.equal(a.tokenizer, a.tokenizer); // built once per model, too
    const own = Tokenizer.fromGguf(b.gguf);
    const text = "Once upon a time, there was a little girl named Lily.";
    assert.deepEqual(b.tokenizer.encode(text, { addBos: true }), own.encode(text, { addBos: true }));
    assert.deepEqual(s.tokenizer.encode(text, { addBos: true }), Tokenizer.fromGguf(s.gguf).encode(text, { addBos: true }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
