// Cross-check against llama.cpp itself (node-llama-cpp 3.21.1, in-process): Prism's encode and decode give exactly
// llama_tokenize / llama_detokenize's results on stories260K and on a synthetic-vocabulary random model, for random
// text (with and without special-token parsing) and random id sequences (byte tokens, control tokens, invalid UTF-8).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { getLlama, LlamaLogLevel, type LlamaModel, type Token } from "node-llama-cpp";
import { parseGguf } from "../../src/engine/gguf/index.ts";
import { generateRandomModel } from "../../src/engine/model/generate.ts";
import { SHAPES } from "../../src/engine/model/shapes.ts";
import { Tokenizer } from "../../src/engine/tokenizer/tokenizer.ts";

const MODELS = new URL("../../../shared/models/", import.meta.url);
function sharedPath(name: string): string {
  const p = fileURLToPath(new URL(name, MODELS));
  if (!existsSync(p)) throw new Error(`test data missing: ${p} (expected ../shared/models beside the repository)`);
  return p;
}

const dir = mkdtempSync(join(tmpdir(), "prism-tok-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const llamaPromise = getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1 });

const words = ["Once", "upon", "a", "time", "Lily", "the", "park", "happy", "é", "Ж", "😀", "中文", "<s>", "</s>", "<unk>", "<0x41>", "\u2581", "\n", "\t", " ", "  ", ".", ",", "!", "'s", '"', "\u0000", "zz", "Q"];
const arbText = fc
  .array(fc.oneof(fc.constantFrom(...words), fc.string({ maxLength: 3 }), fc.string({ unit: "binary", maxLength: 2 })), { maxLength: 12 })
  .chain((parts) => fc.constantFrom("", " ").map((sep) => parts.join(sep)));

async function crossCheck(label: string, path: string, bytes: Uint8Array): Promise<void> {
  const llama = await llamaPromise;
  const model: LlamaModel = await llama.loadModel({ modelPath: path });
  try {
    const tok = Tokenizer.fromGguf(parseGguf(bytes, path));
    assert.equal(model.tokens.bos, tok.bosId);
    assert.equal(model.tokens.eos, tok.eosIds[0]);
    fc.assert(
      fc.property(arbText, fc.boolean(), (text, special) => {
        assert.deepEqual(Array.from(tok.encode(text, { parseSpecial: special })), Array.from(model.tokenize(text, special)), `${label}: encode ${JSON.stringify(text)} special=${special}`);
      }),
      { numRuns: 400, seed: 5 },
    );
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: tok.vocabSize - 1 }), { maxLength: 20 }), fc.boolean(), (ids, special) => {
        assert.equal(tok.decode(ids, { special }), model.detokenize(ids as Token[], special), `${label}: decode [${ids.join(", ")}] special=${special}`);
      }),
      { numRuns: 400, seed: 6 },
    );
  } finally {
    await model.dispose();
  }
}

test("encode/decode equal llama.cpp's on stories260K", async () => {
  const path = sharedPath("stories260K.gguf");
  await crossCheck("stories260K", path, new Uint8Array(readFileSync(path)));
});

test("encode/decode equal llama.cpp's on a synthetic vocabulary (stories260K shape, 512 tokens)", async () => {
  const bytes = generateRandomModel({ shape: SHAPES.stories260K!, dtype: "f32", seed: 9 });
  const path = join(dir, "synthetic.gguf");
  writeFileSync(path, bytes);
  await crossCheck("synthetic", path, bytes);
});
