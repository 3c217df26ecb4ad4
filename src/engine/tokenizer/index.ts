/** Tokenizer (SPM "llama" vocabularies), incremental detokenizer, chat templates, synthetic vocabularies. */
export * from "./tokenizer.ts";
export * from "./chat-template.ts";
export { syntheticVocab } from "./synthetic-vocab.ts";
