/**
 * Prompts of a requested token length for `prism bench`. We do not have the server's tokenizer, so we repeat
 * short common words (one token each in BPE/SentencePiece vocabularies of Llama/GPT size) and calibrate a
 * linear map words → tokens per served model from the server's own usage counts (a BOS or template adds a
 * constant; a small vocabulary splits words, raising the slope). Each request starts at a different offset
 * of the word list so consecutive prompts share no long prefix (no accidental prefix-cache hits).
 */

const WORDS = (
  "the cat sat on a mat and the dog ran to the big red box while one small bird sang in the old tree " +
  "we saw it go up and down all day so she said yes but he said no then they went home to eat"
).split(" ");

/** tokens ≈ interceptTokens + tokensPerWord · words */
export interface PromptCalibration {
  readonly interceptTokens: number;
  readonly tokensPerWord: number;
}

export const UNCALIBRATED: PromptCalibration = { interceptTokens: 0, tokensPerWord: 1 };

/** Number of words to send for `targetTokens` under a calibration (>= 1). */
export function wordsFor(targetTokens: number, cal: PromptCalibration): number {
  return Math.max(1, Math.round((targetTokens - cal.interceptTokens) / cal.tokensPerWord));
}

/** `numWords` words starting at `offset` in the word cycle, space separated. */
export function wordPrompt(numWords: number, offset: number): string {
  const parts = new Array<string>(numWords);
  const n = WORDS.length;
  const o = ((offset % n) + n) % n;
  for (let i = 0; i < numWords; i++) parts[i] = WORDS[(o + i) % n]!;
  return parts.join(" ");
}

/** Fit from two measurements (words, tokens); falls back to slope 1 when they coincide. */
export function calibrationFrom(a: { words: number; tokens: number }, b: { words: number; tokens: number }): PromptCalibration {
  if (a.words === b.words) return { interceptTokens: a.tokens - a.words, tokensPerWord: 1 };
  const slope = (b.tokens - a.tokens) / (b.words - a.words);
  if (!(slope > 0)) return UNCALIBRATED;
  return { interceptTokens: a.tokens - slope * a.words, tokensPerWord: slope };
}

/**
 * A prompt as token ids (the OpenAI completions API accepts `prompt: number[]`), exact in length when the
 * server supports it. Ids cycle through [firstId, firstId + span) to stay clear of special tokens at the
 * bottom of typical vocabularies.
 */
export function tokenIdPrompt(numTokens: number, offset: number, firstId = 100, span = 100): number[] {
  const out = new Array<number>(numTokens);
  for (let i = 0; i < numTokens; i++) out[i] = firstId + ((offset + i) % span);
  return out;
}
