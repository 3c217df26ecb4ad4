// Generated random models load and generate in llama.cpp (node-llama-cpp 3.21.1), for every dtype, including the
// mixed Q8_0/F16 case (stories260K shape: ffn_down rows of 172) and a 32000-token synthetic vocabulary.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { parseGguf } from "../../src/engine/gguf/index.ts";
import { generateRandomModel, type WeightDtype } from "../../src/engine/model/generate.ts";
import { parseShape, SHAPES, type ModelShape } from "../../src/engine/model/shapes.ts";
import { Tokenizer } from "../../src/engine/tokenizer/tokenizer.ts";

const dir = mkdtempSync(join(tmpdir(), "prism-gen-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const llamaPromise = getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1 });

async function loadAndGenerate(shape: ModelShape, dtype: WeightDtype): Promise<void> {
  const bytes = generateRandomModel({ shape, dtype, seed: 42 });
  const path = join(dir, `${shape.name}-${dtype}.gguf`);
  writeFileSync(path, bytes);
  const llama = await llamaPromise;
  const model = await llama.loadModel({ modelPath: path });
  try {
    const tok = Tokenizer.fromGguf(parseGguf(bytes, path));
    assert.equal(model.fileInfo.metadata.general.architecture, "llama");
    const prompt = "Once upon a time, Lily saw a big red ball.";
    const ids = Array.from(tok.encode(prompt));
    assert.deepEqual(model.tokenize(prompt), ids, "llama.cpp tokenizes the synthetic vocabulary as Prism does");
    const ctx = await model.createContext({ contextSize: 64, sequences: 1, threads: 1 });
    try {
      const out: number[] = [];
      for await (const t of ctx.getSequence().evaluate([tok.bosId, ...ids] as Token[], { temperature: 0, yieldEogToken: true })) {
        out.push(t);
        if (out.length >= 6) break;
      }
      assert.equal(out.length, 6, `${shape.name} ${dtype}: llama.cpp generated ${out.length} tokens`);
      for (const t of out) assert.ok(t >= 0 && t < shape.vocabSize);
      assert.equal(model.detokenize(out as Token[]), tok.decode(out));
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

for (const dtype of ["f32", "f16", "q8_0"] as const) {
  test(`tiny ${dtype} loads and generates in llama.cpp`, () => loadAndGenerate(SHAPES.tiny!, dtype));
}
test("stories260K shape q8_0 (Q8_0 + F16 fallback + F32 norms) loads and generates in llama.cpp", () => loadAndGenerate(SHAPES.stories260K!, "q8_0"));
test("a 32000-token synthetic vocabulary loads in llama.cpp and tokenizes identically", () => loadAndGenerate({ ...parseShape("32,1,2,1,64,32000"), name: "wide-vocab" }, "q8_0"));
