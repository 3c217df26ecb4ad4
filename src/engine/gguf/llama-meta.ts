/**
 * Metadata block for the Llama GGUFs Prism writes (llama2.c conversions and random models), in the key order of
 * ../shared/models/stories260K.gguf (engine.md §2.3), so a conversion of stories260K reproduces that file exactly.
 */
import { gv, type GgufValueTyped } from "./types.ts";

/** A SentencePiece-style vocabulary ready for GGUF: pieces use '▁' for spaces. */
export interface SpmVocab {
  readonly tokens: readonly string[];
  readonly scores: Float32Array;
  /** TokenType per id (NORMAL 1, UNKNOWN 2, CONTROL 3, BYTE 6). */
  readonly tokenTypes: Int32Array;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
}

export interface LlamaMetaInput {
  readonly name: string;
  /** general.file_type: 0 all F32, 1 mostly F16, 7 mostly Q8_0. */
  readonly fileType: number;
  readonly contextLength: number;
  readonly dim: number;
  readonly numLayers: number;
  readonly hiddenDim: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly ropeTheta: number;
  readonly rmsEps: number;
  readonly vocab: SpmVocab;
  /** Written as tokenizer.chat_template when given. */
  readonly chatTemplate?: string;
}

/** LLAMA_FTYPE values (llama.h) for general.file_type. */
export const LlamaFileType = { ALL_F32: 0, MOSTLY_F16: 1, MOSTLY_Q8_0: 7 } as const;

export function llamaMetadata(m: LlamaMetaInput): [string, GgufValueTyped][] {
  const out: [string, GgufValueTyped][] = [
    ["general.architecture", gv.str("llama")],
    ["general.name", gv.str(m.name)],
    ["general.file_type", gv.u32(m.fileType)],
    ["llama.context_length", gv.u32(m.contextLength)],
    ["llama.embedding_length", gv.u32(m.dim)],
    ["llama.block_count", gv.u32(m.numLayers)],
    ["llama.feed_forward_length", gv.u32(m.hiddenDim)],
    ["llama.attention.head_count", gv.u32(m.numHeads)],
    ["llama.attention.head_count_kv", gv.u32(m.numKvHeads)],
    ["llama.rope.dimension_count", gv.u32(m.dim / m.numHeads)],
    ["llama.rope.freq_base", gv.f32(m.ropeTheta)],
    ["llama.attention.layer_norm_rms_epsilon", gv.f32(m.rmsEps)],
    ["llama.vocab_size", gv.u32(m.vocab.tokens.length)],
    ["tokenizer.ggml.model", gv.str("llama")],
    ["tokenizer.ggml.tokens", gv.strs(m.vocab.tokens)],
    ["tokenizer.ggml.scores", gv.f32s(m.vocab.scores)],
    ["tokenizer.ggml.token_type", gv.i32s(m.vocab.tokenTypes)],
    ["tokenizer.ggml.bos_token_id", gv.u32(m.vocab.bosId)],
    ["tokenizer.ggml.eos_token_id", gv.u32(m.vocab.eosId)],
    ["tokenizer.ggml.unknown_token_id", gv.u32(m.vocab.unkId)],
    ["tokenizer.ggml.add_bos_token", gv.bool(true)],
    ["tokenizer.ggml.add_eos_token", gv.bool(false)],
  ];
  if (m.chatTemplate !== undefined) out.push(["tokenizer.chat_template", gv.str(m.chatTemplate)]);
  return out;
}
