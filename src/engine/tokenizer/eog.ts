/**
 * End-of-generation ids of a GGUF vocabulary, as llama.cpp collects them (llama_vocab::load): eos, eot, eom from the
 * metadata, plus any token whose text is one of the well-known end markers. Used by LlamaConfig.eosTokenIds (what
 * the scheduler stops on) and Tokenizer.isEog, so both always agree. Order: eos first, then eot, eom, then by id.
 */
import { metaNumber } from "../gguf/reader.ts";
import type { GgufFile } from "../gguf/types.ts";

export const EOG_TEXTS: ReadonlySet<string> = new Set([
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<|return|>",
  "<|call|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<|eom_id|>",
  "<EOT>",
  "_<EOT>",
  "<|end_of_text|>",
  "<end_of_utterance>",
]);

/** `tokens` is tokenizer.ggml.tokens when present (for the text matches). */
export function eogTokenIds(f: GgufFile, tokens: readonly string[] | null): number[] {
  const out: number[] = [];
  const add = (id: number): void => {
    if (id >= 0 && !out.includes(id)) out.push(id);
  };
  add(metaNumber(f, "tokenizer.ggml.eos_token_id", 2));
  add(metaNumber(f, "tokenizer.ggml.eot_token_id", -1));
  add(metaNumber(f, "tokenizer.ggml.eom_token_id", -1));
  if (tokens !== null) tokens.forEach((t, id) => EOG_TEXTS.has(t) && add(id));
  return out;
}
