// SPM tokenizer: golden ids ↔ text on stories260K, round trips with byte fallback, special tokens, and the
// incremental detokenizer against an independent reference for any split.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { isPrismError } from "../../src/core/errors.ts";
import { parseGguf } from "../../src/engine/gguf/index.ts";
import { generateRandomModel } from "../../src/engine/model/generate.ts";
import { SHAPES } from "../../src/engine/model/shapes.ts";
import { IncrementalDetokenizer, Tokenizer } from "../../src/engine/tokenizer/tokenizer.ts";

const MODELS = new URL("../../../shared/models/", import.meta.url);
function sharedPath(name: string): string {
  const p = fileURLToPath(new URL(name, MODELS));
  if (!existsSync(p)) throw new Error(`test data missing: ${p} (expected ../shared/models beside the repository)`);
  return p;
}
interface Golden {
  inputTokens: number[];
  promptTokens?: number[];
  generatedTokens: number[];
  continuationText?: string;
}
function golden(name: string): { json: Golden; text: string } {
  return {
    json: JSON.parse(readFileSync(sharedPath(`stories260K.greedy-${name}.json`), "utf8")) as Golden,
    text: readFileSync(sharedPath(`stories260K.greedy-${name}.txt`), "utf8"),
  };
}

const stories = Tokenizer.fromGguf(parseGguf(readFileSync(sharedPath("stories260K.gguf")), "stories260K.gguf"));
const synthetic = Tokenizer.fromGguf(parseGguf(generateRandomModel({ shape: SHAPES.tiny!, dtype: "f32", seed: 1 }), "tiny.gguf"));
const ids = (a: Int32Array): number[] => Array.from(a);

test("stories260K: tokenize('Once upon a time') = [403, 407, 261, 378]; BOS only when asked", () => {
  assert.deepEqual(ids(stories.encode("Once upon a time")), [403, 407, 261, 378]);
  assert.deepEqual(ids(stories.encode("Once upon a time", { addBos: true })), [1, 403, 407, 261, 378]);
  assert.equal(stories.tokenText(403), "\u2581Once");
  assert.equal(stories.vocabSize, 512);
  assert.equal(stories.bosId, 1);
  assert.deepEqual(stories.eosIds, [2]);
  assert.equal(stories.addBos, true);
  assert.ok(stories.isEog(2) && !stories.isEog(1) && !stories.isEog(13));
  assert.deepEqual(ids(stories.encode("")), []);
  assert.deepEqual(ids(stories.encode("", { addBos: true })), [1]);
});

test("golden texts: decode(golden ids) equals the .txt files exactly, and encode(text) gives the ids back", () => {
  const bos = golden("bos-200");
  assert.equal(stories.decode(bos.json.generatedTokens), bos.text);
  assert.deepEqual(ids(stories.encode(bos.text)), bos.json.generatedTokens);
  const once = golden("once-64");
  const all = [...once.json.promptTokens!, ...once.json.generatedTokens];
  assert.equal(stories.decode(all), once.text);
  assert.deepEqual(ids(stories.encode(once.text)), all);
  assert.deepEqual([1, ...ids(stories.encode("Once upon a time"))], once.json.inputTokens);
  // Streaming the continuation after the prompt gives the continuation text.
  const d = IncrementalDetokenizer.forContinuation(stories, once.json.inputTokens);
  let s = "";
  for (const id of once.json.generatedTokens) s += d.push(id);
  assert.equal(s + d.flush(), once.json.continuationText);
  // Streaming after a BOS-only prompt strips the first space, as the golden text does.
  const d2 = IncrementalDetokenizer.forContinuation(stories, [1]);
  assert.equal(bos.json.generatedTokens.map((id) => d2.push(id)).join("") + d2.flush(), bos.text);
});

test("leading space: stripped from the first token only (llama.cpp detokenize semantics)", () => {
  assert.equal(stories.decode([403, 407]), "Once upon");
  assert.equal(stories.decode([403, 407], { stripLeadingSpace: false }), " Once upon");
  // BOS renders empty but still counts as the first token, as in llama_detokenize(remove_special = false).
  assert.equal(stories.decode([1, 403]), " Once");
  assert.equal(stories.decode([1, 403], { special: true }), "<s> Once");
  assert.equal(stories.decode([403, 2], { special: true }), "Once</s>");
  assert.equal(stories.decode([0, 13]), "\n", "<unk> renders empty without special");
  assert.equal(stories.decode([0], { special: true }), "<unk>");
  // Continuation after text keeps the space.
  const d = IncrementalDetokenizer.forContinuation(stories, stories.encode("Once upon a"));
  assert.equal(d.push(378), " time");
});

test("byte fallback: characters missing from the vocabulary become <0xXX> tokens", () => {
  // Ж = D0 96, 😀 = F0 9F 98 80; byte tokens are ids 3 + byte in stories260K (which has "é" as a piece).
  const e = ids(stories.encode("Ж"));
  assert.deepEqual(e.slice(-2), [3 + 0xd0, 3 + 0x96]);
  assert.equal(stories.decode(e), "Ж");
  assert.equal(stories.tokenText(ids(stories.encode("é")).at(-1)!), "é");
  const emoji = ids(stories.encode("😀"));
  assert.deepEqual(emoji.slice(-4), [3 + 0xf0, 3 + 0x9f, 3 + 0x98, 3 + 0x80]);
  assert.equal(stories.decode(emoji), "😀");
  assert.equal(stories.decode([3 + 0xf0, 3 + 0x9f]), "\uFFFD", "an incomplete sequence decodes to U+FFFD");
  assert.equal(stories.decode(stories.encode("a\u0000b")), "a\u0000b");
  // Lone surrogates are sent as U+FFFD (what UTF-8 conversion does).
  assert.equal(stories.decode(stories.encode("x\uD800y")), "x\uFFFDy");
});

test("special tokens are parsed only with parseSpecial; a text fragment after one gets the space prefix", () => {
  const plain = ids(stories.encode("<s>hi"));
  assert.ok(!plain.includes(1));
  assert.equal(stories.decode(plain), "<s>hi");
  const parsed = ids(stories.encode("<s>hi</s>", { parseSpecial: true }));
  assert.equal(parsed[0], 1);
  assert.equal(parsed.at(-1), 2);
  assert.deepEqual(parsed.slice(1, -1), ids(stories.encode("hi")));
  assert.deepEqual(ids(stories.encode("a<unk>b", { parseSpecial: true })), [...ids(stories.encode("a")), 0, ...ids(stories.encode("b"))]);
});

test("token pieces and range checks", () => {
  assert.deepEqual(Array.from(stories.tokenPiece(403)), Array.from(new TextEncoder().encode(" Once")));
  assert.deepEqual(Array.from(stories.tokenPiece(13)), [10]);
  assert.equal(stories.tokenPiece(1).byteLength, 0);
  assert.deepEqual(Array.from(stories.tokenPiece(1, true)), Array.from(new TextEncoder().encode("<s>")));
  for (const bad of [-1, 512, 1.5, NaN]) {
    assert.throws(() => stories.tokenPiece(bad), (e: unknown) => isPrismError(e) && e.code === "PRISM_TOKEN_OUT_OF_RANGE");
    assert.throws(() => stories.decode([bad]), (e: unknown) => isPrismError(e) && e.code === "PRISM_TOKEN_OUT_OF_RANGE");
  }
});

/** Any text without '▁' (which encodes to itself but decodes as a space); surrogate-free by construction. */
const arbText = fc.array(
  fc.oneof(
    fc.string({ unit: "binary", maxLength: 6 }),
    fc.constantFrom("Once", " upon", " a time", "Lily", "  ", "\n", "\t", "é", "😀", "中文", "'s", "<s>", "</s>", "<unk>", "!", " "),
  ),
  { maxLength: 10 },
).map((parts) => parts.join("").replaceAll("\u2581", "_"));

test("round trip: decode(encode(s)) === s for any Unicode text, on stories260K and a synthetic vocabulary (fast-check)", () => {
  for (const tok of [stories, synthetic]) {
    fc.assert(
      fc.property(arbText, (s) => {
        const enc = tok.encode(s);
        for (const id of enc) assert.ok(id >= 0 && id < tok.vocabSize && id !== tok.unkId);
        assert.equal(tok.decode(enc), s);
      }),
      { numRuns: 400, seed: 11 },
    );
  }
});

/** Independent reference for decode: concatenate pieces, strip one leading space from the first, UTF-8 decode. */
function refDecode(tok: Tokenizer, list: readonly number[], special: boolean): string {
  const parts: number[] = [];
  list.forEach((id, i) => {
    const p = Array.from(tok.tokenPiece(id, special));
    parts.push(...(i === 0 && p[0] === 0x20 ? p.slice(1) : p));
  });
  return new TextDecoder().decode(new Uint8Array(parts));
}

test("incremental detokenizer: concatenated pushes + flush equal the full decode for any split (fast-check)", () => {
  const arb = fc.record({
    list: fc.array(fc.oneof(fc.integer({ min: 0, max: 511 }), fc.integer({ min: 3, max: 258 })), { maxLength: 40 }),
    special: fc.boolean(),
    flushAt: fc.array(fc.nat(), { maxLength: 3 }),
  });
  fc.assert(
    fc.property(arb, ({ list, special }) => {
      const d = new IncrementalDetokenizer(stories, { special });
      let out = "";
      for (const id of list) out += d.push(id);
      out += d.flush();
      assert.equal(out, refDecode(stories, list, special));
      assert.equal(stories.decode(list, { special }), out);
    }),
    { numRuns: 500, seed: 3 },
  );
});

test("incremental detokenizer holds back an incomplete UTF-8 character until its last byte token", () => {
  const d = new IncrementalDetokenizer(stories);
  const emoji = [3 + 0xf0, 3 + 0x9f, 3 + 0x98, 3 + 0x80];
  assert.equal(d.push(403), "Once");
  assert.equal(d.push(emoji[0]!), "");
  assert.equal(d.push(emoji[1]!), "");
  assert.equal(d.push(emoji[2]!), "");
  assert.equal(d.push(emoji[3]!), "😀");
  assert.equal(d.push(3 + 0xc3), "");
  assert.equal(d.push(407), "\uFFFD upon", "an interrupted sequence is replaced as soon as it is known to be invalid");
  assert.equal(d.push(3 + 0xe4), "");
  assert.equal(d.flush(), "\uFFFD");
  assert.equal(d.push(13), "\n", "after flush the stream continues (no second space strip)");
});
