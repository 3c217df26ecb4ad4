/** GGUF files: types, reader, writer, tensor codecs. */
export * from "./types.ts";
export * from "./reader.ts";
export * from "./writer.ts";
export * from "./quant.ts";
