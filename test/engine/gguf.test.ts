// GGUF reader and writer: the stories260K file, exact round trips, and every error with the file named.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isPrismError, type ErrorCode } from "../../src/core/errors.ts";
import {
  GgmlType,
  GgufValueType,
  ggufToWriterInput,
  gv,
  parseGguf,
  readGgufFile,
  metaNumber,
  metaString,
  writeGguf,
  tensorBytes,
  decodeF32,
  type GgufValueTyped,
  type GgufWriterInput,
} from "../../src/engine/gguf/index.ts";

const MODELS = new URL("../../../shared/models/", import.meta.url);
function sharedPath(name: string): string {
  const p = fileURLToPath(new URL(name, MODELS));
  if (!existsSync(p)) throw new Error(`test data missing: ${p} (expected ../shared/models beside the repository)`);
  return p;
}

function expectPrism(fn: () => unknown, code: ErrorCode, ...fragments: (string | RegExp)[]): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isPrismError(e), `expected PrismError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const f of fragments) {
      if (typeof f === "string") assert.ok(e.message.includes(f), `message "${e.message}" should mention "${f}"`);
      else assert.match(e.message, f);
    }
    return;
  }
  assert.fail(`expected ${code}, nothing was thrown`);
}

test("reads stories260K.gguf: header, 22 metadata keys, 47 tensors, data at 14208", async () => {
  const f = await readGgufFile(sharedPath("stories260K.gguf"));
  assert.equal(f.version, 3);
  assert.equal(f.alignment, 32);
  assert.equal(f.dataOffset, 14208);
  assert.equal(f.metadata.size, 22);
  assert.equal(f.tensors.length, 47);
  assert.equal(f.bytes.byteLength, 1054336);
  assert.equal(f.metadata.get("general.architecture"), "llama");
  assert.equal(f.metadata.get("general.name"), "stories260K");
  const u32 = (k: string, v: number): void => {
    assert.equal(f.metadata.get(k), v, k);
    assert.equal(f.metadataTypes.get(k)?.type, GgufValueType.U32, k);
  };
  u32("llama.context_length", 512);
  u32("llama.embedding_length", 64);
  u32("llama.block_count", 5);
  u32("llama.feed_forward_length", 172);
  u32("llama.attention.head_count", 8);
  u32("llama.attention.head_count_kv", 4);
  u32("llama.rope.dimension_count", 8);
  u32("llama.vocab_size", 512);
  u32("tokenizer.ggml.bos_token_id", 1);
  u32("tokenizer.ggml.eos_token_id", 2);
  u32("tokenizer.ggml.unknown_token_id", 0);
  assert.equal(f.metadata.get("llama.rope.freq_base"), 10000);
  assert.equal(f.metadata.get("llama.attention.layer_norm_rms_epsilon"), Math.fround(1e-5));
  assert.equal(f.metadata.get("tokenizer.ggml.add_bos_token"), true);
  assert.equal(f.metadata.get("tokenizer.ggml.add_eos_token"), false);
  assert.equal(f.metadata.get("tokenizer.ggml.model"), "llama");
  const tokens = f.metadata.get("tokenizer.ggml.tokens") as string[];
  assert.equal(tokens.length, 512);
  assert.deepEqual(tokens.slice(0, 4), ["<unk>", "<s>", "</s>", "<0x00>"]);
  assert.equal(tokens[13], "<0x0A>");
  assert.equal(tokens[403], "\u2581Once");
  const scores = f.metadata.get("tokenizer.ggml.scores");
  assert.ok(scores instanceof Float32Array && scores.length === 512);
  assert.equal(scores[259], -0);
  assert.equal(scores[403], -(403 - 259));
  const types = f.metadata.get("tokenizer.ggml.token_type");
  assert.ok(types instanceof Int32Array);
  assert.deepEqual(Array.from(types.subarray(0, 5)), [2, 3, 3, 6, 6]);
  assert.equal(types[259], 1);
  assert.deepEqual(f.metadataTypes.get("tokenizer.ggml.token_type"), { type: GgufValueType.ARRAY, elem: GgufValueType.I32 });

  const embd = f.tensorByName.get("token_embd.weight")!;
  assert.deepEqual(embd, { name: "token_embd.weight", dims: [64, 512], type: GgmlType.F32, offset: 14208, byteLength: 131072, numElements: 32768 });
  assert.deepEqual(f.tensors.map((t) => t.name).slice(0, 11), [
    "token_embd.weight",
    "blk.0.attn_norm.weight",
    "blk.0.attn_q.weight",
    "blk.0.attn_k.weight",
    "blk.0.attn_v.weight",
    "blk.0.attn_output.weight",
    "blk.0.ffn_norm.weight",
    "blk.0.ffn_gate.weight",
    "blk.0.ffn_down.weight",
    "blk.0.ffn_up.weight",
    "blk.1.attn_norm.weight",
  ]);
  assert.equal(f.tensors.at(-1)!.name, "output_norm.weight");
  assert.equal(f.tensorByName.has("output.weight"), false);
  assert.deepEqual(f.tensorByName.get("blk.4.ffn_down.weight")!.dims, [172, 64]);
  assert.deepEqual(f.tensorByName.get("blk.0.attn_k.weight")!.dims, [64, 32]);
  for (const t of f.tensors) {
    assert.equal(t.offset % 32, 0, t.name);
    assert.equal(t.type, GgmlType.F32);
  }
  const last = f.tensors.at(-1)!;
  assert.equal(last.offset + last.byteLength, f.bytes.byteLength);
  // Tensor data as written by llama2.c: the model file's embedding follows its 28-byte header.
  const bin = readFileSync(sharedPath("stories260K.bin"));
  assert.deepEqual(tensorBytes(f, embd), new Uint8Array(bin.subarray(28, 28 + 131072)));
  assert.equal(metaNumber(f, "llama.block_count"), 5);
  assert.equal(metaString(f, "general.name"), "stories260K");
  assert.equal(decodeF32(tensorBytes(f, f.tensorByName.get("blk.0.attn_norm.weight")!)).length, 64);
});

test("parse → write reproduces stories260K.gguf byte for byte", async () => {
  const f = await readGgufFile(sharedPath("stories260K.gguf"));
  const again = writeGguf(ggufToWriterInput(f));
  assert.equal(Buffer.compare(Buffer.from(again), Buffer.from(f.bytes)), 0);
});

const ALL_KINDS: [string, GgufValueTyped][] = [
  ["u8", gv.u8(255)],
  ["i8", gv.i8(-128)],
  ["u16", gv.u16(65535)],
  ["i16", gv.i16(-32768)],
  ["u32", gv.u32(4294967295)],
  ["i32", gv.i32(-2147483648)],
  ["f32", gv.f32(0.5)],
  ["f64", gv.f64(Math.PI)],
  ["u64", gv.u64(2n ** 64n - 1n)],
  ["i64", gv.i64(-(2n ** 63n))],
  ["bool.t", gv.bool(true)],
  ["bool.f", gv.bool(false)],
  ["str", gv.str("héllo ▁ 😀")],
  ["str.empty", gv.str("")],
  ["arr.u32", gv.u32s([1, 2, 4294967295])],
  ["arr.i32", gv.i32s([-1, 0, 7])],
  ["arr.f32", gv.f32s(new Float32Array([1.5, -2, 1e-5]))],
  ["arr.str", gv.strs(["a", "", "▁b"])],
  ["arr.bool", gv.bools([true, false, true])],
  ["arr.empty", gv.f32s([])],
  ["arr.u8", { kind: "array", elem: "u8", values: [0, 255] }],
  ["arr.i64", { kind: "array", elem: "i64", values: [-5n, 5n] }],
  ["arr.f64", { kind: "array", elem: "f64", values: [0.1] }],
];

function smallFile(extra: Partial<GgufWriterInput> = {}): Uint8Array {
  return writeGguf({
    metadata: [["general.architecture", gv.str("llama")], ...ALL_KINDS],
    tensors: [
      { name: "a", dims: [4, 2], type: GgmlType.F32, data: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer) },
      { name: "b", dims: [3], type: GgmlType.F16, data: new Uint8Array([0, 0x3c, 0, 0x40, 0, 0xc0]) },
      { name: "c", dims: [32, 1], type: GgmlType.Q8_0, data: new Uint8Array(34).fill(1) },
    ],
    ...extra,
  });
}

test("writer → reader round trip keeps every value type and tensor", () => {
  const bytes = smallFile();
  const f = parseGguf(bytes, "small.gguf");
  assert.equal(f.metadata.get("u8"), 255);
  assert.equal(f.metadata.get("i8"), -128);
  assert.equal(f.metadata.get("u16"), 65535);
  assert.equal(f.metadata.get("i16"), -32768);
  assert.equal(f.metadata.get("u32"), 4294967295);
  assert.equal(f.metadata.get("i32"), -2147483648);
  assert.equal(f.metadata.get("f32"), 0.5);
  assert.equal(f.metadata.get("f64"), Math.PI);
  assert.equal(f.metadata.get("u64"), 2n ** 64n - 1n);
  assert.equal(f.metadata.get("i64"), -(2n ** 63n));
  assert.equal(f.metadata.get("bool.t"), true);
  assert.equal(f.metadata.get("bool.f"), false);
  assert.equal(f.metadata.get("str"), "héllo ▁ 😀");
  assert.equal(f.metadata.get("str.empty"), "");
  assert.deepEqual(f.metadata.get("arr.u32"), new Uint32Array([1, 2, 4294967295]));
  assert.deepEqual(f.metadata.get("arr.i32"), new Int32Array([-1, 0, 7]));
  assert.deepEqual(f.metadata.get("arr.f32"), new Float32Array([1.5, -2, 1e-5]));
  assert.deepEqual(f.metadata.get("arr.str"), ["a", "", "▁b"]);
  assert.deepEqual(f.metadata.get("arr.bool"), [true, false, true]);
  assert.deepEqual(f.metadata.get("arr.empty"), new Float32Array(0));
  assert.deepEqual(f.metadata.get("arr.u8"), new Uint8Array([0, 255]));
  assert.deepEqual(f.metadata.get("arr.i64"), new BigInt64Array([-5n, 5n]));
  assert.deepEqual(f.metadata.get("arr.f64"), new Float64Array([0.1]));
  assert.deepEqual(f.metadataTypes.get("arr.str"), { type: GgufValueType.ARRAY, elem: GgufValueType.STRING });
  assert.equal(f.tensors.length, 3);
  const [a, b, c] = f.tensors as [typeof f.tensors[0], typeof f.tensors[0], typeof f.tensors[0]];
  assert.deepEqual([a.dims, a.type, a.byteLength, a.numElements], [[4, 2], 0, 32, 8]);
  assert.deepEqual([b.dims, b.type, b.byteLength, b.numElements], [[3], 1, 6, 3]);
  assert.deepEqual([c.dims, c.type, c.byteLength, c.numElements], [[32, 1], 8, 34, 32]);
  assert.equal(a.offset, f.dataOffset);
  assert.equal(b.offset, f.dataOffset + 32);
  assert.equal(c.offset, f.dataOffset + 64);
  assert.deepEqual(Array.from(decodeF32(tensorBytes(f, a))), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(bytes.byteLength, f.dataOffset + 64 + 64, "every tensor, the last included, is padded to 32 bytes");
  // And back again, byte for byte.
  assert.deepEqual(writeGguf(ggufToWriterInput(f)), bytes);
});

test("writer honours general.alignment and the reader uses it", () => {
  const bytes = writeGguf({
    metadata: [["general.alignment", gv.u32(64)]],
    tensors: [
      { name: "x", dims: [3], type: GgmlType.F32, data: new Uint8Array(12) },
      { name: "y", dims: [1], type: GgmlType.F32, data: new Uint8Array(4) },
    ],
  });
  const f = parseGguf(bytes, "aligned.gguf");
  assert.equal(f.alignment, 64);
  assert.equal(f.dataOffset % 64, 0);
  assert.equal(f.tensorByName.get("y")!.offset - f.tensorByName.get("x")!.offset, 64);
});

test("writer rejects tensor data of the wrong length", () => {
  expectPrism(() => writeGguf({ metadata: [], tensors: [{ name: "x", dims: [4], type: GgmlType.F32, data: new Uint8Array(15) }] }), "PRISM_INTERNAL", "'x'", "expected 16");
  expectPrism(() => writeGguf({ metadata: [], tensors: [{ name: "q", dims: [16], type: GgmlType.Q8_0, data: new Uint8Array(17) }] }), "PRISM_INTERNAL", "'q'");
});

// ---- errors ----

test("bad magic names the file", () => {
  const bytes = smallFile();
  bytes[0] = 0x47;
  bytes[1] = 0x47;
  bytes[2] = 0x4d;
  bytes[3] = 0x4c;
  expectPrism(() => parseGguf(bytes, "weights/odd.gguf"), "PRISM_GGUF_BAD_MAGIC", "weights/odd.gguf", '"GGML"');
  expectPrism(() => parseGguf(new Uint8Array([1, 2]), "tiny.bin"), "PRISM_GGUF_BAD_MAGIC", "tiny.bin");
  expectPrism(() => parseGguf(new Uint8Array(0), "empty.gguf"), "PRISM_GGUF_BAD_MAGIC", "empty.gguf");
});

test("unsupported versions are named", () => {
  for (const version of [1, 4, 0x03000000]) {
    const bytes = smallFile();
    new DataView(bytes.buffer).setUint32(4, version, true);
    expectPrism(() => parseGguf(bytes, "v.gguf"), "PRISM_GGUF_UNSUPPORTED_VERSION", "v.gguf", `version ${version}`);
  }
});

test("every truncation throws PRISM_GGUF_TRUNCATED (or BAD_MAGIC below 4 bytes) naming the file and the field", () => {
  const bytes = smallFile();
  const f = parseGguf(bytes, "t.gguf");
  const lastEnd = f.tensors.reduce((m, t) => Math.max(m, t.offset + t.byteLength), 0);
  const whats = new Set<string>();
  for (let cut = 0; cut < lastEnd; cut++) {
    try {
      parseGguf(bytes.subarray(0, cut), "t.gguf");
      assert.fail(`cut at ${cut} parsed`);
    } catch (e) {
      assert.ok(isPrismError(e), String(e));
      assert.equal(e.code, cut < 4 ? "PRISM_GGUF_BAD_MAGIC" : "PRISM_GGUF_TRUNCATED", `cut ${cut}: ${e.message}`);
      assert.ok(e.message.startsWith("t.gguf: "), e.message);
      if (cut >= 4) whats.add(e.message.replace(/^t\.gguf: truncated (while reading |before )/, "").split(" at byte")[0]!.trim());
    }
  }
  // The messages point at specific fields: a few of them, by name.
  for (const w of ["version", "tensor count", "metadata count", "metadata key #0", "metadata 'str'", "metadata 'arr.str'", "metadata 'arr.f32' (3 elements)", "name of tensor #0", "tensor #1 'b' dims[0]", "tensor #2 'c' offset"]) {
    assert.ok([...whats].some((x) => x.startsWith(w)), `no truncation message for ${w}; got ${[...whats].slice(0, 50).join(" | ")}`);
  }
  // Data truncated: the tensor is named.
  expectPrism(() => parseGguf(bytes.subarray(0, lastEnd - 1), "t.gguf"), "PRISM_GGUF_TRUNCATED", "tensor 'c'", "past the end");
});

/** Offset of a tensor's info fields after its name: the last match of the length-prefixed name (infos follow metadata). */
function tensorInfoAt(bytes: Uint8Array, name: string): number {
  const needle = new Uint8Array([name.length, 0, 0, 0, 0, 0, 0, 0, ...new TextEncoder().encode(name)]);
  outer: for (let i = bytes.length - needle.length; i >= 24; i--) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i + needle.length;
  }
  throw new Error(`tensor ${name} not found`);
}

test("unknown and unsupported tensor types are named with the tensor", () => {
  for (const [type, label] of [[99, "unknown type 99"], [12, "Q4_K"], [2, "Q4_0"]] as const) {
    const bytes = smallFile();
    const at = tensorInfoAt(bytes, "b"); // u32 n_dims, u64 dim, u32 type
    new DataView(bytes.buffer).setUint32(at + 4 + 8, type, true);
    expectPrism(() => parseGguf(bytes, "types.gguf"), "PRISM_GGUF_UNSUPPORTED_TYPE", "types.gguf", "'b'", label);
  }
  // allowAnyType lays out known-but-unsupported types (for `prism model info`).
  const bytes = smallFile();
  const at = tensorInfoAt(bytes, "c");
  new DataView(bytes.buffer).setUint32(at + 4 + 16, 2 /* Q4_0: 18 bytes per 32 */, true);
  const f = parseGguf(bytes, "any.gguf", { allowAnyType: true });
  assert.equal(f.tensorByName.get("c")!.byteLength, 18);
});

test("tensor data out of range, misaligned or overlapping is rejected", () => {
  const setOffset = (name: string, nDims: number, rel: number): Uint8Array => {
    const bytes = smallFile();
    const at = tensorInfoAt(bytes, name);
    new DataView(bytes.buffer).setBigUint64(at + 4 + 8 * nDims + 4, BigInt(rel), true);
    return bytes;
  };
  expectPrism(() => parseGguf(setOffset("c", 2, 1 << 20), "range.gguf"), "PRISM_GGUF_TRUNCATED", "range.gguf", "tensor 'c'", "past the end");
  expectPrism(() => parseGguf(setOffset("b", 1, 8), "align.gguf"), "PRISM_GGUF_CORRUPT", "align.gguf", "'b'", "alignment 32");
  expectPrism(() => parseGguf(setOffset("b", 1, 0), "overlap.gguf"), "PRISM_GGUF_CORRUPT", "overlap.gguf", "'a'", "'b'", "overlap");
  // A u64 beyond 2^53 is refused, not silently rounded.
  const huge = smallFile();
  new DataView(huge.buffer).setBigUint64(tensorInfoAt(huge, "a") + 4, 2n ** 60n, true);
  expectPrism(() => parseGguf(huge, "huge.gguf"), "PRISM_GGUF_CORRUPT", "huge.gguf", "dims[0]");
});

test("structural corruption: duplicate keys/tensors, bad alignment, bad dims, Q8_0 row length", () => {
  const dupKey = writeGguf({ metadata: [["k", gv.u32(1)], ["k", gv.u32(2)]], tensors: [] });
  expectPrism(() => parseGguf(dupKey, "dup.gguf"), "PRISM_GGUF_CORRUPT", "dup.gguf", "duplicate metadata key 'k'");
  const t = { name: "x", dims: [1], type: GgmlType.F32, data: new Uint8Array(4) };
  expectPrism(() => parseGguf(writeGguf({ metadata: [], tensors: [t, t] }), "dupt.gguf"), "PRISM_GGUF_CORRUPT", "duplicate tensor name 'x'");
  expectPrism(() => parseGguf(writeGguf({ metadata: [["general.alignment", gv.u32(24)]], tensors: [], alignment: 32 }), "al.gguf"), "PRISM_GGUF_CORRUPT", "al.gguf", "power of two");
  expectPrism(() => parseGguf(writeGguf({ metadata: [["general.alignment", gv.str("32")]], tensors: [], alignment: 32 }), "al2.gguf"), "PRISM_GGUF_CORRUPT", "u32");
  const fiveDims = writeGguf({ metadata: [], tensors: [{ name: "d", dims: [1, 1, 1, 1, 1], type: GgmlType.F32, data: new Uint8Array(4) }] });
  expectPrism(() => parseGguf(fiveDims, "dims.gguf"), "PRISM_GGUF_CORRUPT", "'d'", "5 dimensions");
  const q = writeGguf({ metadata: [], tensors: [{ name: "q", dims: [32, 2], type: GgmlType.Q8_0, data: new Uint8Array(68) }] });
  new DataView(q.buffer).setBigUint64(tensorInfoAt(q, "q") + 4, 16n, true);
  expectPrism(() => parseGguf(q, "q.gguf"), "PRISM_GGUF_CORRUPT", "'q'", "row length 16", "block size 32");
  const badValueType = writeGguf({ metadata: [["k", gv.u32(1)]], tensors: [] });
  new DataView(badValueType.buffer).setUint32(24 + 8 + 1, 77, true);
  expectPrism(() => parseGguf(badValueType, "vt.gguf"), "PRISM_GGUF_CORRUPT", "vt.gguf", "'k'", "unknown value type 77");
});

test("readGgufFile: a missing file is PRISM_FILE_NOT_FOUND", async () => {
  await assert.rejects(readGgufFile("/nonexistent/x.gguf"), (e: unknown) => isPrismError(e) && e.code === "PRISM_FILE_NOT_FOUND" && e.message.includes("/nonexistent/x.gguf"));
});
