// Random-model generator: determinism, shapes, per-dtype tensor types, sane weights, and config round trip.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { isPrismError } from "../../src/core/errors.ts";
import { decodeTensor, GgmlType, parseGguf, tensorBytes, type GgufFile } from "../../src/engine/gguf/index.ts";
import { llamaConfigFromGguf, parameterCount } from "../../src/engine/model/config.ts";
import { generateRandomModel, tensorTypeFor } from "../../src/engine/model/generate.ts";
import { parseShape, SHAPES, type ModelShape } from "../../src/engine/model/shapes.ts";
import { Tokenizer } from "../../src/engine/tokenizer/tokenizer.ts";

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
const tiny = SHAPES.tiny!;

test("same options → same bytes; another seed changes weights but not the vocabulary", () => {
  const a = generateRandomModel({ shape: tiny, dtype: "q8_0", seed: 7 });
  const b = generateRandomModel({ shape: tiny, dtype: "q8_0", seed: 7 });
  const c = generateRandomModel({ shape: tiny, dtype: "q8_0", seed: 8 });
  assert.equal(sha(a), sha(b));
  assert.notEqual(sha(a), sha(c));
  const fa = parseGguf(a, "a.gguf");
  const fc = parseGguf(c, "c.gguf");
  assert.deepEqual(fa.metadata.get("tokenizer.ggml.tokens"), fc.metadata.get("tokenizer.ggml.tokens"));
  assert.equal(fa.metadata.get("general.name"), "tiny-random-q8_0-s7");
  const ea = fa.tensorByName.get("token_embd.weight")!;
  const ec = fc.tensorByName.get("token_embd.weight")!;
  assert.notDeepEqual(tensorBytes(fa, ea), tensorBytes(fc, ec));
});

test("generated files read back as the requested shape (config, tensors, vocabulary, metadata)", () => {
  const shape: ModelShape = parseShape("64,3,4,2,96,300", 77);
  const f = parseGguf(generateRandomModel({ shape, dtype: "f16", seed: 1 }), "custom.gguf");
  const cfg = llamaConfigFromGguf(f);
  assert.deepEqual(
    [cfg.arch, cfg.dim, cfg.numLayers, cfg.numHeads, cfg.numKvHeads, cfg.hiddenDim, cfg.vocabSize, cfg.contextLength, cfg.headDim, cfg.tiedOutput],
    ["llama", 64, 3, 4, 2, 96, 300, 77, 16, true],
  );
  assert.equal(f.metadata.get("general.file_type"), 1);
  assert.equal(f.tensors.length, 1 + 3 * 9 + 1);
  const tok = Tokenizer.fromGguf(f);
  assert.equal(tok.vocabSize, 300);
  assert.equal(tok.tokenText(0), "<unk>");
  assert.equal(tok.tokenText(1), "<s>");
  assert.equal(tok.tokenText(2), "</s>");
  assert.equal(tok.tokenText(3 + 0x0a), "<0x0A>");
  assert.equal(tok.decode(tok.encode("Any text, even 😀 or 中文!")), "Any text, even 😀 or 中文!");
  // Context override at generation time.
  const g = parseGguf(generateRandomModel({ shape: tiny, dtype: "f32", seed: 1, contextLength: 999 }), "ctx.gguf");
  assert.equal(llamaConfigFromGguf(g).contextLength, 999);
});

function typesOf(f: GgufFile): Record<string, string> {
  const name = (t: number): string => (t === GgmlType.F32 ? "F32" : t === GgmlType.F16 ? "F16" : t === GgmlType.Q8_0 ? "Q8_0" : String(t));
  return Object.fromEntries(f.tensors.map((t) => [t.name, name(t.type)]));
}

test("dtype rules: norms stay F32; Q8_0 only for row lengths that are multiples of 32, else F16", () => {
  const s260 = SHAPES.stories260K!;
  const f32 = typesOf(parseGguf(generateRandomModel({ shape: s260, dtype: "f32", seed: 1 }), "f32.gguf"));
  assert.ok(Object.values(f32).every((t) => t === "F32"));
  const f16 = typesOf(parseGguf(generateRandomModel({ shape: s260, dtype: "f16", seed: 1 }), "f16.gguf"));
  assert.equal(f16["blk.0.attn_norm.weight"], "F32");
  assert.equal(f16["output_norm.weight"], "F32");
  assert.equal(f16["blk.0.attn_q.weight"], "F16");
  assert.equal(f16["token_embd.weight"], "F16");
  const q = parseGguf(generateRandomModel({ shape: s260, dtype: "q8_0", seed: 1 }), "q.gguf");
  const q8 = typesOf(q);
  assert.equal(q.metadata.get("general.file_type"), 7);
  assert.equal(q8["token_embd.weight"], "Q8_0");
  assert.equal(q8["blk.4.attn_k.weight"], "Q8_0");
  assert.equal(q8["blk.4.ffn_gate.weight"], "Q8_0", "row length 64");
  assert.equal(q8["blk.4.ffn_down.weight"], "F16", "row length 172 is not a multiple of 32");
  assert.equal(q8["blk.4.ffn_norm.weight"], "F32");
  assert.equal(tensorTypeFor("q8_0", [96, 5], false), GgmlType.Q8_0);
  assert.equal(tensorTypeFor("q8_0", [96], true), GgmlType.F32);
});

test("weights are sane: matrices ~U(±0.02·√3) (std 0.02, mean 0), norms exactly 1, same values across dtypes", () => {
  const files = (["f32", "f16", "q8_0"] as const).map((dtype) => parseGguf(generateRandomModel({ shape: tiny, dtype, seed: 3 }), `${dtype}.gguf`));
  const [f32, f16, q8] = files as [GgufFile, GgufFile, GgufFile];
  const values = (f: GgufFile, name: string): Float32Array => {
    const t = f.tensorByName.get(name)!;
    return decodeTensor(t.type, tensorBytes(f, t), t.numElements);
  };
  let n = 0;
  let sum = 0;
  let sq = 0;
  let maxAbs = 0;
  for (const t of f32.tensors) {
    const v = values(f32, t.name);
    if (t.dims.length === 1) {
      assert.ok(v.every((x) => x === 1), `${t.name} should be all ones`);
      continue;
    }
    for (const x of v) {
      n++;
      sum += x;
      sq += x * x;
      maxAbs = Math.max(maxAbs, Math.abs(x));
    }
    // f16 and q8_0 encode the same draws.
    const h = values(f16, t.name);
    const q = values(q8, t.name);
    for (let i = 0; i < v.length; i++) {
      assert.ok(Math.abs(h[i]! - v[i]!) <= 2 ** -11 * Math.abs(v[i]!) + 2 ** -24, `${t.name}[${i}] f16`);
      assert.ok(Math.abs(q[i]! - v[i]!) <= 0.0346 / 127, `${t.name}[${i}] q8_0`);
    }
  }
  const mean = sum / n;
  const std = Math.sqrt(sq / n - mean * mean);
  assert.ok(Math.abs(mean) < 0.002, `mean ${mean}`);
  assert.ok(Math.abs(std - 0.02) < 0.001, `std ${std}`);
  assert.ok(maxAbs <= 0.02 * Math.sqrt(3));
});

test("stories15M shape (q8_0) generates once: 15.19M parameters, 32000-token vocabulary", () => {
  const bytes = generateRandomModel({ shape: SHAPES.stories15M!, dtype: "q8_0", seed: 1 });
  const f = parseGguf(bytes, "s15m.gguf");
  const cfg = llamaConfigFromGguf(f);
  assert.equal(parameterCount(cfg), 15191712);
  assert.equal(cfg.vocabSize, 32000);
  assert.equal(cfg.headDim, 48);
  assert.equal(cfg.contextLength, 256);
  const tok = Tokenizer.fromGguf(f);
  // The synthetic vocabulary merges letters into longer pieces: fewer tokens than characters for English text.
  const text = "Once upon a time, there was a little girl named Lily.";
  const n = tok.encode(text).length;
  assert.ok(n <= text.length * 0.4, `${n} tokens for ${text.length} characters`);
  assert.equal(tok.decode(tok.encode(text)), text);
});

test("parseShape: names, custom lists and errors (PRISM_MODEL_SHAPE_INVALID)", () => {
  assert.deepEqual(parseShape("stories260K"), SHAPES.stories260K);
  assert.deepEqual(parseShape("STORIES15M"), SHAPES.stories15M);
  assert.deepEqual(parseShape("tiny", 64).contextLength, 64);
  assert.deepEqual(SHAPES.stories260K, { name: "stories260K", dim: 64, hiddenDim: 172, numLayers: 5, numHeads: 8, numKvHeads: 4, vocabSize: 512, contextLength: 512 });
  assert.deepEqual(
    [SHAPES.stories15M, SHAPES.stories42M, SHAPES.stories110M].map((s) => [s!.dim, s!.hiddenDim, s!.numLayers, s!.numHeads, s!.numKvHeads, s!.vocabSize]),
    [[288, 768, 6, 6, 6, 32000], [512, 1376, 8, 8, 8, 32000], [768, 2048, 12, 12, 12, 32000]],
  );
  assert.deepEqual(parseShape(" 288, 6, 6, 6, 768, 32000 "), { name: "custom-288x6", dim: 288, hiddenDim: 768, numLayers: 6, numHeads: 6, numKvHeads: 6, vocabSize: 32000, contextLength: 512 });
  const bad = (spec: string, fragment: string): void =>
    assert.throws(() => parseShape(spec), (e: unknown) => isPrismError(e) && e.code === "PRISM_MODEL_SHAPE_INVALID" && e.message.includes(fragment), spec);
  bad("huge", "expected a name");
  bad("1,2,3", "six numbers");
  bad("64,2,4,2,128,x", "'x' (vocab)");
  bad("64,0,4,2,128,512", "'0' (layers)");
  bad("64,2,5,5,128,512", "not a multiple of heads 5");
  bad("64,2,4,3,128,512", "not a multiple of kv_heads 3");
  bad("36,2,4,4,128,512", "must be even");
  bad("64,2,4,2,128,100", "below 259");
  bad("64.5,2,4,2,128,512", "'64.5' (dim)");
  assert.throws(() => generateRandomModel({ shape: tiny, dtype: "q4" as "f32", seed: 1 }), (e: unknown) => isPrismError(e) && e.code === "PRISM_MODEL_SHAPE_INVALID");
});
