/** GGUF files: types, reader, writer, tensor codecs, Llama metadata block, llama2.c conversion. */
export * from "./types.ts";
export * from "./reader.ts";
export * from "./writer.ts";
export * from "./quant.ts";
export * from "./llama-meta.ts";
export * from "./llama2c.ts";
