// Golden outputs (../shared/models, engine.md §5): greedy stories260K must reproduce node-llama-cpp's
// token ids exactly (then the text), with the WASM and the TS kernels, from the shipped GGUF and from
// our own llama2.c → GGUF conversion. Ids are compared first so a mismatch names the first bad step.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tokenizer, IncrementalDetokenizer } from "../../src/engine/tokenizer/index.ts";
import { convertLlama2c } from "../../src/engine/model/generate.ts";
import { generate } from "../../src/engine/model/sequences.ts";
import { makeEngine, sharedFile, sharedJson, usedBlocks, type GoldenRun } from "./executor-harness.ts";

const bos200 = sharedJson<GoldenRun>("stories260K.greedy-bos-200.json");
const once64 = sharedJson<GoldenRun>("stories260K.greedy-once-64.json");
const bos200Text = Buffer.from(sharedFile("stories260K.greedy-bos-200.txt")).toString("utf8");
const once64Text = Buffer.from(sharedFile("stories260K.greedy-once-64.txt")).toString("utf8");

function firstDiff(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

const sources: [string, () => Uint8Array][] = [
  ["stories260K.gguf", () => sharedFile("stories260K.gguf")],
  ["convertLlama2c(stories260K.bin, tok512.bin)", () => convertLlama2c(sharedFile("stories260K.bin"), sharedFile("tok512.bin"), "stories260K")],
];

for (const [label, load] of sources) {
  for (const kernels of ["wasm", "ts"] as const) {
    test(`golden greedy: ${label}, ${kernels} kernels`, async () => {
      const h = await makeEngine({ models: [{ id: "s", bytes: load() }], kernels, blockTokens: 16 });
      const tok = Tokenizer.fromGguf(h.ggufs.get("s")!);
      const blocks = h.blocks.get("s")!;

      // BOS only, 200 tokens; streamed text must equal the golden text too.
      const detok = IncrementalDetokenizer.forContinuation(tok, [tok.bosId]);
      let streamed = "";
      const a = await generate({
        executor: h.executor, modelId: "s", blocks, promptTokens: [tok.bosId], maxTokens: 200,
        onToken: (t) => { streamed += detok.push(t); },
      });
      streamed += detok.flush();
      assert.equal(firstDiff(a.tokens, bos200.generatedTokens), -1, `first differing token index ${firstDiff(a.tokens, bos200.generatedTokens)}`);
      assert.deepEqual(a.tokens, bos200.generatedTokens);
      assert.equal(tok.decode(a.tokens), bos200Text);
      assert.equal(streamed, bos200Text);

      // "Once upon a time" with BOS (per the model's add_bos_token), 64 tokens.
      const prompt = [...tok.encode("Once upon a time", { addBos: h.executor.config("s").addBos })];
      assert.deepEqual(prompt, once64.inputTokens);
      const b = await generate({ executor: h.executor, modelId: "s", blocks, promptTokens: prompt, maxTokens: 64 });
      assert.deepEqual(b.tokens, once64.generatedTokens);
      // The golden text is detokenize(promptTokens without BOS + generated), as SOURCES.md records.
      assert.equal(tok.decode([...prompt.slice(1), ...b.tokens]), once64Text);
      assert.equal(usedBlocks(h), 0);
    });
  }
}

test("golden: prefill in chunks of 3 and one token per step give the same ids", async () => {
  const h = await makeEngine({ models: [{ id: "s", bytes: sharedFile("stories260K.gguf") }], kernels: "wasm", blockTokens: 4 });
  const prompt = [1, ...bos200.generatedTokens.slice(0, 40)];
  for (const maxBatchTokens of [1, 3, 512]) {
    const r = await generate({ executor: h.executor, modelId: "s", blocks: h.blocks.get("s")!, promptTokens: prompt, maxTokens: 30, maxBatchTokens });
    assert.deepEqual(r.tokens, bos200.generatedTokens.slice(40, 70), `maxBatchTokens ${maxBatchTokens}`);
  }
  assert.equal(usedBlocks(h), 0);
});
