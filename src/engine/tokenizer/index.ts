/** Tokenizer (SPM "llama" vocabularies), incremental detokenizer, chat templates, end-of-generation ids, synthetic vocabularies. */
export * from "./tokenizer.ts";
export * from "./chat-template.ts";
export * from "./eog.ts";
export { syntheticVocab } from "./synthetic-vocab.ts";
