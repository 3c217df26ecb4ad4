// Model config from GGUF metadata, tensor names, and the llama2.c converter (byte-identical to stories260K.gguf).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isPrismError, type ErrorCode } from "../../src/core/errors.ts";
import { ggufToWriterInput, gv, parseGguf, writeGguf, GgmlType, type GgufWriterInput, type GgufValueTyped } from "../../src/engine/gguf/index.ts";
import { convertLlama2c, parseLlama2cHeader } from "../../src/engine/gguf/llama2c.ts";
import { expectedTensors, llamaConfigFromGguf, parameterCount, tensorNamesFor } from "../../src/engine/model/config.ts";
import { generateRandomModel } from "../../src/engine/model/generate.ts";
import { SHAPES } from "../../src/engine/model/shapes.ts";
import { Tokenizer } from "../../src/engine/tokenizer/tokenizer.ts";

const MODELS = new URL("../../../shared/models/", import.meta.url);
function shared(name: string): Uint8Array {
  const p = fileURLToPath(new URL(name, MODELS));
  if (!existsSync(p)) throw new Error(`test data missing: ${p} (expected ../shared/models beside the repository)`);
  return new Uint8Array(readFileSync(p));
}

function expectPrism(fn: () => unknown, code: ErrorCode, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isPrismError(e), String(e));
    assert.equal(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" should mention "${f}"`);
    return true;
  });
}

test("stories260K config", () => {
  const cfg = llamaConfigFromGguf(parseGguf(shared("stories260K.gguf"), "stories260K.gguf"));
  assert.deepEqual(cfg, {
    arch: "llama",
    name: "stories260K",
    dim: 64,
    hiddenDim: 172,
    numLayers: 5,
    numHeads: 8,
    numKvHeads: 4,
    headDim: 8,
    vocabSize: 512,
    contextLength: 512,
    ropeTheta: 10000,
    rmsEps: Math.fround(1e-5),
    tiedOutput: true,
    qkvBias: false,
    bosTokenId: 1,
    eosTokenIds: [2],
    addBos: true,
    chatTemplate: null,
  });
  assert.equal(parameterCount(cfg), 260032);
  assert.equal(expectedTensors(cfg).length, 47);
});

test("tensorNamesFor gives llama.cpp's names", () => {
  assert.deepEqual(tensorNamesFor({ tiedOutput: true, qkvBias: false }, 3), {
    tokenEmbd: "token_embd.weight",
    outputNorm: "output_norm.weight",
    output: null,
    attnNorm: "blk.3.attn_norm.weight",
    attnQ: "blk.3.attn_q.weight",
    attnK: "blk.3.attn_k.weight",
    attnV: "blk.3.attn_v.weight",
    attnOutput: "blk.3.attn_output.weight",
    attnQBias: null,
    attnKBias: null,
    attnVBias: null,
    ffnNorm: "blk.3.ffn_norm.weight",
    ffnGate: "blk.3.ffn_gate.weight",
    ffnDown: "blk.3.ffn_down.weight",
    ffnUp: "blk.3.ffn_up.weight",
  });
  const q = tensorNamesFor({ tiedOutput: false, qkvBias: true }, 0);
  assert.equal(q.output, "output.weight");
  assert.equal(q.attnKBias, "blk.0.attn_k.bias");
});

/** A tiny generated model as editable writer input. */
function tinyInput(): GgufWriterInput {
  return ggufToWriterInput(parseGguf(generateRandomModel({ shape: SHAPES.tiny!, dtype: "f32", seed: 1 }), "tiny.gguf"));
}
function edit(w: GgufWriterInput, fn: (meta: [string, GgufValueTyped][], tensors: GgufWriterInput["tensors"][number][]) => void): Uint8Array {
  const meta = w.metadata.map(([k, v]) => [k, v] as [string, GgufValueTyped]);
  const tensors = [...w.tensors];
  fn(meta, tensors);
  return writeGguf({ metadata: meta, tensors });
}
const setMeta = (meta: [string, GgufValueTyped][], key: string, v: GgufValueTyped | null): void => {
  const i = meta.findIndex(([k]) => k === key);
  if (v === null) meta.splice(i, 1);
  else if (i >= 0) meta[i] = [key, v];
  else meta.push([key, v]);
};

test("config errors name the key, tensor or architecture", () => {
  const w = tinyInput();
  expectPrism(() => llamaConfigFromGguf(parseGguf(edit(w, (m) => setMeta(m, "general.architecture", gv.str("gpt2"))), "g.gguf")), "PRISM_GGUF_UNSUPPORTED_ARCH", "g.gguf", "'gpt2'");
  expectPrism(() => llamaConfigFromGguf(parseGguf(edit(w, (m) => setMeta(m, "llama.block_count", null)), "m.gguf")), "PRISM_GGUF_MISSING", "m.gguf", "'llama.block_count'");
  expectPrism(() => llamaConfigFromGguf(parseGguf(edit(w, (m) => setMeta(m, "general.architecture", null)), "a.gguf")), "PRISM_GGUF_MISSING", "'general.architecture'");
  expectPrism(
    () => llamaConfigFromGguf(parseGguf(edit(w, (_m, t) => t.splice(t.findIndex((x) => x.name === "blk.1.ffn_up.weight"), 1)), "t.gguf")),
    "PRISM_GGUF_MISSING",
    "t.gguf",
    "'blk.1.ffn_up.weight'",
  );
  expectPrism(() => llamaConfigFromGguf(parseGguf(edit(w, (m) => setMeta(m, "llama.block_count", gv.u32(3))), "b.gguf")), "PRISM_GGUF_MISSING", "'blk.2.attn_norm.weight'");
  expectPrism(() => llamaConfigFromGguf(parseGguf(edit(w, (m) => setMeta(m, "llama.feed_forward_length", gv.u32(96))), "d.gguf")), "PRISM_GGUF_CORRUPT", "'blk.0.ffn_gate.weight'", "[32, 64]", "[32, 96]");
  expectPrism(() => llamaConfigFromGguf(parseGguf(edit(w, (m) => setMeta(m, "llama.attention.head_count_kv", gv.u32(3))), "h.gguf")), "PRISM_GGUF_CORRUPT", "head_count_kv 3");
  expectPrism(() => llamaConfigFromGguf(parseGguf(edit(w, (m) => setMeta(m, "llama.rope.dimension_count", gv.u32(4))), "r.gguf")), "PRISM_GGUF_UNSUPPORTED_ARCH", "partial RoPE");
  expectPrism(() => llamaConfigFromGguf(parseGguf(edit(w, (m) => setMeta(m, "llama.block_count", gv.str("2"))), "s.gguf")), "PRISM_GGUF_CORRUPT", "'llama.block_count'", "number");
  expectPrism(() => llamaConfigFromGguf(parseGguf(edit(w, (m) => setMeta(m, "tokenizer.ggml.eos_token_id", gv.u32(9999))), "e.gguf")), "PRISM_GGUF_CORRUPT", "eos_token_id = 9999");
});

test("optional metadata: eot joins the eos ids, chat template and add_bos are read", () => {
  const bytes = edit(tinyInput(), (m) => {
    setMeta(m, "tokenizer.ggml.eot_token_id", gv.u32(7));
    setMeta(m, "tokenizer.chat_template", gv.str("{{ messages[0].content }}"));
    setMeta(m, "tokenizer.ggml.add_bos_token", gv.bool(false));
    setMeta(m, "llama.context_length", gv.u64(4096n));
  });
  const cfg = llamaConfigFromGguf(parseGguf(bytes, "x.gguf"));
  assert.deepEqual(cfg.eosTokenIds, [2, 7]);
  assert.equal(cfg.chatTemplate, "{{ messages[0].content }}");
  assert.equal(cfg.addBos, false);
  assert.equal(cfg.contextLength, 4096, "u64 metadata is accepted when it is a safe integer");
  const tok = Tokenizer.fromGguf(parseGguf(bytes, "x.gguf"));
  assert.ok(tok.isEog(2) && tok.isEog(7) && !tok.isEog(1));
});

test("end markers such as <|im_end|> join the end-of-generation set, as in llama.cpp", () => {
  const bytes = edit(tinyInput(), (m) => {
    const tokens = [...(m.find(([k]) => k === "tokenizer.ggml.tokens")![1] as { values: readonly string[] }).values];
    tokens[300] = "<|im_end|>";
    tokens[301] = "<|eot_id|>";
    setMeta(m, "tokenizer.ggml.tokens", gv.strs(tokens));
  });
  const f = parseGguf(bytes, "eog.gguf");
  assert.deepEqual(llamaConfigFromGguf(f).eosTokenIds, [2, 300, 301]);
  const tok = Tokenizer.fromGguf(f);
  assert.deepEqual(tok.eosIds, [2, 300, 301]);
  assert.ok(tok.isEog(300) && tok.isEog(301) && !tok.isEog(299));
});

test("qwen2 is accepted structurally (biases, untied output); its gpt2 tokenizer is reported as unsupported", () => {
  const w = tinyInput();
  const bytes = edit(w, (m, t) => {
    for (const e of m) if (e[0].startsWith("llama.")) e[0] = "qwen2." + e[0].slice("llama.".length);
    setMeta(m, "general.architecture", gv.str("qwen2"));
    setMeta(m, "tokenizer.ggml.model", gv.str("gpt2"));
    const f32 = (n: number): Uint8Array => new Uint8Array(n * 4);
    for (let l = 0; l < 2; l++) {
      t.push({ name: `blk.${l}.attn_q.bias`, dims: [32], type: GgmlType.F32, data: f32(32) });
      t.push({ name: `blk.${l}.attn_k.bias`, dims: [16], type: GgmlType.F32, data: f32(16) });
      t.push({ name: `blk.${l}.attn_v.bias`, dims: [16], type: GgmlType.F32, data: f32(16) });
    }
    t.push({ name: "output.weight", dims: [32, 512], type: GgmlType.F32, data: f32(32 * 512) });
  });
  const f = parseGguf(bytes, "qwen.gguf");
  const cfg = llamaConfigFromGguf(f);
  assert.equal(cfg.arch, "qwen2");
  assert.equal(cfg.qkvBias, true);
  assert.equal(cfg.tiedOutput, false);
  assert.equal(cfg.addBos, true, "explicit add_bos_token in the file wins");
  assert.equal(expectedTensors(cfg).length, 1 + 2 * 12 + 2);
  expectPrism(() => Tokenizer.fromGguf(f), "PRISM_GGUF_UNSUPPORTED_TOKENIZER", "qwen.gguf", "'gpt2'");
  // Missing biases are named.
  const noBias = edit(ggufToWriterInput(f), (_m, t) => t.splice(t.findIndex((x) => x.name === "blk.1.attn_v.bias"), 1));
  expectPrism(() => llamaConfigFromGguf(parseGguf(noBias, "nb.gguf")), "PRISM_GGUF_MISSING", "'blk.1.attn_v.bias'");
});

test("convertLlama2c(stories260K.bin, tok512.bin) reproduces stories260K.gguf byte for byte", () => {
  const ref = shared("stories260K.gguf");
  const out = convertLlama2c(shared("stories260K.bin"), shared("tok512.bin"), "stories260K");
  // The whole file is identical: metadata (same 22 keys, order and types), tensor directory and data.
  assert.equal(out.byteLength, ref.byteLength);
  assert.ok(Buffer.from(out).equals(Buffer.from(ref)), "converted bytes differ from stories260K.gguf");
  // With another name only general.name (and so the offsets after it) changes; every tensor's bytes stay equal.
  const renamed = parseGguf(convertLlama2c(shared("stories260K.bin"), shared("tok512.bin"), "my-model"), "renamed.gguf");
  const f = parseGguf(ref, "ref.gguf");
  assert.equal(renamed.metadata.get("general.name"), "my-model");
  for (const t of f.tensors) {
    const u = renamed.tensorByName.get(t.name)!;
    assert.deepEqual(u.dims, t.dims);
    assert.ok(Buffer.from(renamed.bytes.subarray(u.offset, u.offset + u.byteLength)).equals(Buffer.from(f.bytes.subarray(t.offset, t.offset + t.byteLength))), t.name);
  }
  for (const [k, v] of f.metadata) if (k !== "general.name") assert.deepEqual(renamed.metadata.get(k), v, k);
});

test("llama2.c input errors are PRISM_LLAMA2C_INVALID naming the file", () => {
  const bin = shared("stories260K.bin");
  const tok = shared("tok512.bin");
  assert.deepEqual(parseLlama2cHeader(bin), { dim: 64, hiddenDim: 172, numLayers: 5, numHeads: 8, numKvHeads: 4, vocabSize: 512, sharedClassifier: true, seqLen: 512 });
  expectPrism(() => convertLlama2c(bin.subarray(0, bin.byteLength - 4), tok, "x", { modelFileName: "short.bin" }), "PRISM_LLAMA2C_INVALID", "short.bin", "1056536 bytes", "needs 1056540");
  expectPrism(() => convertLlama2c(bin.subarray(0, 10), tok, "x", { modelFileName: "tiny.bin" }), "PRISM_LLAMA2C_INVALID", "tiny.bin", "header");
  const v1 = new Uint8Array(bin);
  new DataView(v1.buffer).setUint32(0, 0x616b3432, true);
  expectPrism(() => convertLlama2c(v1, tok, "x", { modelFileName: "v1.bin" }), "PRISM_LLAMA2C_INVALID", "v1.bin", "ak42");
  const garbage = new Uint8Array(bin);
  new DataView(garbage.buffer).setInt32(12, 7, true); // heads 7 does not divide dim 64
  expectPrism(() => convertLlama2c(garbage, tok, "x", { modelFileName: "g.bin" }), "PRISM_LLAMA2C_INVALID", "g.bin", "heads 7");
  expectPrism(() => convertLlama2c(bin, tok.subarray(0, 3000), "x", { tokenizerFileName: "tok.bin" }), "PRISM_LLAMA2C_INVALID", "tok.bin", "truncated at token");
});
