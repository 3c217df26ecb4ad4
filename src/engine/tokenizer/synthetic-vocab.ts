/**
 * A synthetic SentencePiece-BPE vocabulary of any size ≥ 259 for random-weight models: no third-party vocabulary,
 * no licence question (engine.md §2.4). Layout: 0 `<unk>`, 1 `<s>`, 2 `</s>`, 3–258 byte tokens `<0x00>`…`<0xFF>`,
 * then single characters ('▁', letters, digits, punctuation), then merged pieces built by a seeded pseudo-BPE
 * (each new piece = an existing piece + a continuation piece, so the SPM merge loop can always reach it).
 * Scores are −(id − 259) like llama2.c tokenizers: earlier pieces merge first. Any text tokenizes (byte fallback).
 *
 * The vocabulary depends only on its size (fixed internal seed), so every random model of one vocab size shares a
 * tokenizer whatever its weight seed.
 */
import { SeededRng } from "../../core/rng.ts";
import { TokenType } from "../gguf/types.ts";
import type { SpmVocab } from "../gguf/llama-meta.ts";

export const SPACE_PIECE = "\u2581";
const FIRST_PIECE_ID = 259;
const MAX_PIECE_CHARS = 12;
const VOCAB_SEED = 0x5eed;

/** Single characters after the byte tokens, most useful first (English letter frequency). */
const BASE_CHARS = [
  SPACE_PIECE,
  ..."etaoinshrdlcumwfgypbvkjxqz",
  ...".,'\"!?-:;()",
  ..."ETAOINSHRDLCUMWFGYPBVKJXQZ",
  ..."0123456789",
  ..."/&*+=%$#@[]{}<>_|~^`\\",
];
/**
 * Common English words (function words and simple story words), most frequent first. Each becomes "▁word" with all
 * its prefixes ("▁w", "▁wo", …) so the SPM merge loop can reach it; a large synthetic vocabulary then tokenizes
 * English about as compactly as a trained one (≈ one token per word), which keeps prompt lengths realistic.
 */
const WORDS = (
  "the and a to was he she it of in they her his said you with on for that had is but day one big little there time " +
  "once upon happy play mom dad friend saw went very wanted want not so be were all at we go can do up out what like " +
  "help then them him me my I loved love named girl boy dog cat tree ball park sun home toy fun looked asked came could " +
  "would from this are have an as some when made make got get see no yes good new red blue green run jump sad smiled " +
  "learned felt together because back about too again every nice bird fish water car box book found find took take " +
  "Once One The She He They Lily Tom Ben Mia It But Then When"
).split(" ");
const SUFFIXES = ["s", "ed", "ing", "ly", "er", "'s", "y", "en", "es"];

/** Letter weights (per mille, English text) used when growing pieces. */
const LETTERS = "etaoinshrdlcumwfgypbvkjxqz";
const LETTER_WEIGHTS = [127, 91, 82, 75, 70, 67, 63, 61, 60, 43, 40, 28, 28, 24, 24, 22, 20, 20, 19, 15, 10, 8, 2, 2, 1, 1];

export function syntheticVocab(vocabSize: number): SpmVocab {
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const seen = new Set<string>(tokens);
  const pieces: string[] = [];
  const add = (p: string): void => {
    if (tokens.length >= vocabSize || seen.has(p)) return;
    seen.add(p);
    tokens.push(p);
    pieces.push(p);
  };
  for (const c of BASE_CHARS) add(c);
  for (const w of WORDS) {
    const word = SPACE_PIECE + w;
    for (let end = 2; end <= word.length; end++) add(word.slice(0, end));
  }
  for (const sfx of SUFFIXES) for (let end = 1; end <= sfx.length; end++) add(sfx.slice(0, end));

  const rng = new SeededRng(VOCAB_SEED);
  const totalWeight = LETTER_WEIGHTS.reduce((a, b) => a + b, 0);
  const letter = (): string => {
    let r = rng.int(totalWeight);
    for (let i = 0; i < LETTERS.length; i++) {
      r -= LETTER_WEIGHTS[i]!;
      if (r < 0) return LETTERS[i]!;
    }
    return "e";
  };
  // Continuations (pieces without a leading '▁') and word starts (with one) grow side by side.
  const continuations: string[] = [...LETTERS, ...SUFFIXES];
  const starts: string[] = [SPACE_PIECE, ...WORDS.map((w) => SPACE_PIECE + w)];
  let guard = 0;
  while (tokens.length < vocabSize && guard++ < vocabSize * 50) {
    const roll = rng.next();
    let piece: string;
    if (roll < 0.45) {
      // word start + letter or continuation: "▁t" → "▁th" → "▁the"
      const left = starts[rng.int(starts.length)]!;
      const right = rng.next() < 0.6 ? letter() : continuations[rng.int(continuations.length)]!;
      piece = left + right;
    } else if (roll < 0.9) {
      const left = continuations[rng.int(continuations.length)]!;
      piece = left + letter();
    } else {
      const left = starts[rng.int(starts.length)]!;
      const right = continuations[rng.int(continuations.length)]!;
      piece = left + right;
    }
    if ([...piece].length > MAX_PIECE_CHARS || seen.has(piece)) continue;
    add(piece);
    (piece.startsWith(SPACE_PIECE) ? starts : continuations).push(piece);
  }
  // Unreachable for sizes we use; guarantees the requested size anyway.
  for (let i = 0; tokens.length < vocabSize; i++) add(`${SPACE_PIECE}x${i}`);

  const scores = new Float32Array(vocabSize);
  const tokenTypes = new Int32Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    if (id === 0) tokenTypes[id] = TokenType.UNKNOWN;
    else if (id <= 2) tokenTypes[id] = TokenType.CONTROL;
    else if (id < FIRST_PIECE_ID) tokenTypes[id] = TokenType.BYTE;
    else {
      tokenTypes[id] = TokenType.NORMAL;
      scores[id] = -(id - FIRST_PIECE_ID);
    }
  }
  return { tokens, scores, tokenTypes, bosId: 1, eosId: 2, unkId: 0 };
}
