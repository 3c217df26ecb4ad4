/**
 * Model hyper-parameters and tensor names of a Llama-family GGUF. Called once at load time by the weight loader and
 * the executor; also the single source of truth for tensor names and dims used by the generator and the converter.
 *
 * Architectures: "llama" and "qwen2". qwen2 differs structurally by q/k/v biases (`qkvBias: true`) and NEOX RoPE
 * (the weight loader handles that); its GPT-2-style BPE vocabulary (`tokenizer.ggml.model = "gpt2"`) is not
 * implemented by Tokenizer, which says so with PRISM_GGUF_UNSUPPORTED_TOKENIZER.
 */
import { PrismError } from "../../core/errors.ts";
import { metaBool, metaNumber, metaString, metaStrings } from "../gguf/reader.ts";
import { isSupportedGgmlType, ggmlTypeName, type GgufFile } from "../gguf/types.ts";
import { eogTokenIds } from "../tokenizer/eog.ts";

export type LlamaArch = "llama" | "qwen2";

export interface LlamaConfig {
  readonly arch: LlamaArch;
  readonly name: string;
  /** Residual width (embedding_length). */
  readonly dim: number;
  /** FFN inner width (feed_forward_length). */
  readonly hiddenDim: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  /** Per-head width; dim = numHeads · headDim for the archs here. */
  readonly headDim: number;
  readonly vocabSize: number;
  /** Trained context length (tokens). */
  readonly contextLength: number;
  readonly ropeTheta: number;
  readonly rmsEps: number;
  /** No output.weight: the classifier reuses token_embd.weight. */
  readonly tiedOutput: boolean;
  /** blk.N.attn_{q,k,v}.bias present (qwen2). */
  readonly qkvBias: boolean;
  readonly bosTokenId: number;
  /** End-of-generation ids (llama.cpp's set): eos, then eot/eom and well-known end-marker tokens such as <|im_end|>. */
  readonly eosTokenIds: readonly number[];
  /** Prepend BOS when encoding a prompt (tokenizer.ggml.add_bos_token; default true for the llama tokenizer). */
  readonly addBos: boolean;
  /** tokenizer.chat_template (Jinja), or null. */
  readonly chatTemplate: string | null;
}

/** GGUF tensor names of one layer plus the global tensors (same for every layer index except the blk.N prefix). */
export interface LlamaTensorNames {
  readonly tokenEmbd: string;
  readonly outputNorm: string;
  /** null when the output is tied to token_embd. */
  readonly output: string | null;
  readonly attnNorm: string;
  readonly attnQ: string;
  readonly attnK: string;
  readonly attnV: string;
  readonly attnOutput: string;
  /** null unless cfg.qkvBias. */
  readonly attnQBias: string | null;
  readonly attnKBias: string | null;
  readonly attnVBias: string | null;
  readonly ffnNorm: string;
  /** w1 */
  readonly ffnGate: string;
  /** w2 */
  readonly ffnDown: string;
  /** w3 */
  readonly ffnUp: string;
}

type ShapeOnly = Pick<LlamaConfig, "tiedOutput" | "qkvBias">;

export function tensorNamesFor(cfg: ShapeOnly, layer: number): LlamaTensorNames {
  const b = `blk.${layer}.`;
  return {
    tokenEmbd: "token_embd.weight",
    outputNorm: "output_norm.weight",
    output: cfg.tiedOutput ? null : "output.weight",
    attnNorm: `${b}attn_norm.weight`,
    attnQ: `${b}attn_q.weight`,
    attnK: `${b}attn_k.weight`,
    attnV: `${b}attn_v.weight`,
    attnOutput: `${b}attn_output.weight`,
    attnQBias: cfg.qkvBias ? `${b}attn_q.bias` : null,
    attnKBias: cfg.qkvBias ? `${b}attn_k.bias` : null,
    attnVBias: cfg.qkvBias ? `${b}attn_v.bias` : null,
    ffnNorm: `${b}ffn_norm.weight`,
    ffnGate: `${b}ffn_gate.weight`,
    ffnDown: `${b}ffn_down.weight`,
    ffnUp: `${b}ffn_up.weight`,
  };
}

export interface ExpectedTensor {
  readonly name: string;
  /** ggml order: dims[0] = row length (input width). */
  readonly dims: readonly number[];
  /** 1-D norm weights: always stored F32 by our writers. */
  readonly isNorm: boolean;
}

type ShapeFields = Pick<LlamaConfig, "dim" | "hiddenDim" | "numLayers" | "numHeads" | "numKvHeads" | "headDim" | "vocabSize" | "tiedOutput" | "qkvBias">;

/**
 * Every tensor of the model with its ggml dims, in the order our writers emit them (llama2.c export order):
 * token_embd, then per layer attn_norm, q, k, v, output, ffn_norm, gate, down, up (q/k/v biases after their weights
 * when present), then output_norm and output.
 */
export function expectedTensors(cfg: ShapeFields): ExpectedTensor[] {
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const out: ExpectedTensor[] = [{ name: "token_embd.weight", dims: [cfg.dim, cfg.vocabSize], isNorm: false }];
  for (let l = 0; l < cfg.numLayers; l++) {
    const n = tensorNamesFor(cfg, l);
    out.push({ name: n.attnNorm, dims: [cfg.dim], isNorm: true });
    out.push({ name: n.attnQ, dims: [cfg.dim, qDim], isNorm: false });
    if (n.attnQBias !== null) out.push({ name: n.attnQBias, dims: [qDim], isNorm: true });
    out.push({ name: n.attnK, dims: [cfg.dim, kvDim], isNorm: false });
    if (n.attnKBias !== null) out.push({ name: n.attnKBias, dims: [kvDim], isNorm: true });
    out.push({ name: n.attnV, dims: [cfg.dim, kvDim], isNorm: false });
    if (n.attnVBias !== null) out.push({ name: n.attnVBias, dims: [kvDim], isNorm: true });
    out.push({ name: n.attnOutput, dims: [qDim, cfg.dim], isNorm: false });
    out.push({ name: n.ffnNorm, dims: [cfg.dim], isNorm: true });
    out.push({ name: n.ffnGate, dims: [cfg.dim, cfg.hiddenDim], isNorm: false });
    out.push({ name: n.ffnDown, dims: [cfg.hiddenDim, cfg.dim], isNorm: false });
    out.push({ name: n.ffnUp, dims: [cfg.dim, cfg.hiddenDim], isNorm: false });
  }
  out.push({ name: "output_norm.weight", dims: [cfg.dim], isNorm: true });
  if (!cfg.tiedOutput) out.push({ name: "output.weight", dims: [cfg.dim, cfg.vocabSize], isNorm: false });
  return out;
}

/**
 * Reads the hyper-parameters and checks that every tensor the architecture needs is present with the right dims and
 * a supported type. Throws PRISM_GGUF_UNSUPPORTED_ARCH (other architectures, partial RoPE), PRISM_GGUF_MISSING
 * (naming the key or tensor), PRISM_GGUF_CORRUPT (inconsistent dims), PRISM_GGUF_UNSUPPORTED_TYPE.
 */
export function llamaConfigFromGguf(f: GgufFile): LlamaConfig {
  const archRaw = metaString(f, "general.architecture");
  if (archRaw !== "llama" && archRaw !== "qwen2") {
    throw new PrismError("PRISM_GGUF_UNSUPPORTED_ARCH", `${f.fileName}: architecture '${archRaw}' is not supported (supported: llama; qwen2 structurally)`, {
      file: f.fileName,
      arch: archRaw,
    });
  }
  const arch: LlamaArch = archRaw;
  const k = (s: string): string => `${arch}.${s}`;
  const dim = metaNumber(f, k("embedding_length"));
  const hiddenDim = metaNumber(f, k("feed_forward_length"));
  const numLayers = metaNumber(f, k("block_count"));
  const numHeads = metaNumber(f, k("attention.head_count"));
  const numKvHeads = metaNumber(f, k("attention.head_count_kv"), numHeads);
  const corrupt = (msg: string): PrismError => new PrismError("PRISM_GGUF_CORRUPT", `${f.fileName}: ${msg}`, { file: f.fileName });
  for (const [name, v] of [["embedding_length", dim], ["feed_forward_length", hiddenDim], ["block_count", numLayers], ["attention.head_count", numHeads], ["attention.head_count_kv", numKvHeads]] as const) {
    if (!Number.isSafeInteger(v) || v <= 0) throw corrupt(`${arch}.${name} = ${v} must be a positive integer`);
  }
  if (numHeads % numKvHeads !== 0) throw corrupt(`head_count ${numHeads} is not a multiple of head_count_kv ${numKvHeads}`);
  const headDim = metaNumber(f, k("attention.key_length"), dim / numHeads);
  if (!Number.isInteger(headDim) || headDim * numHeads !== dim) {
    throw new PrismError("PRISM_GGUF_UNSUPPORTED_ARCH", `${f.fileName}: head width ${headDim} × ${numHeads} heads ≠ embedding_length ${dim} (not supported)`, { file: f.fileName });
  }
  const valueLength = metaNumber(f, k("attention.value_length"), headDim);
  if (valueLength !== headDim) throw new PrismError("PRISM_GGUF_UNSUPPORTED_ARCH", `${f.fileName}: value_length ${valueLength} ≠ key_length ${headDim} (not supported)`, { file: f.fileName });
  if (headDim % 2 !== 0) throw corrupt(`head width ${headDim} is odd (RoPE needs pairs)`);
  const ropeDim = metaNumber(f, k("rope.dimension_count"), headDim);
  if (ropeDim !== headDim) {
    throw new PrismError("PRISM_GGUF_UNSUPPORTED_ARCH", `${f.fileName}: partial RoPE (rope.dimension_count ${ropeDim} < head width ${headDim}) is not supported`, { file: f.fileName });
  }
  const tokens = f.metadata.has("tokenizer.ggml.tokens") ? metaStrings(f, "tokenizer.ggml.tokens") : null;
  const embd = f.tensorByName.get("token_embd.weight");
  const vocabSize = metaNumber(f, k("vocab_size"), tokens?.length ?? embd?.dims[1] ?? 0);
  if (vocabSize <= 0) throw new PrismError("PRISM_GGUF_MISSING", `${f.fileName}: metadata key '${arch}.vocab_size' is missing and there is no vocabulary`, { file: f.fileName, key: k("vocab_size") });
  if (tokens !== null && tokens.length !== vocabSize) throw corrupt(`vocab_size ${vocabSize} ≠ ${tokens.length} tokens in tokenizer.ggml.tokens`);

  const bosTokenId = metaNumber(f, "tokenizer.ggml.bos_token_id", 1);
  for (const what of ["bos_token_id", "eos_token_id", "eot_token_id", "eom_token_id"]) {
    const id = metaNumber(f, `tokenizer.ggml.${what}`, 0);
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw corrupt(`tokenizer.ggml.${what} = ${id} is outside the vocabulary (${vocabSize})`);
  }
  const eosTokenIds = eogTokenIds(f, tokens);

  const cfg: LlamaConfig = {
    arch,
    name: metaString(f, "general.name", null) ?? f.fileName.replace(/^.*\//, "").replace(/\.gguf$/i, ""),
    dim,
    hiddenDim,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    contextLength: metaNumber(f, k("context_length")),
    ropeTheta: metaNumber(f, k("rope.freq_base"), 10000),
    rmsEps: metaNumber(f, k("attention.layer_norm_rms_epsilon")),
    tiedOutput: !f.tensorByName.has("output.weight"),
    qkvBias: f.tensorByName.has("blk.0.attn_q.bias"),
    bosTokenId,
    eosTokenIds,
    addBos: metaBool(f, "tokenizer.ggml.add_bos_token", arch === "llama"),
    chatTemplate: metaString(f, "tokenizer.chat_template", null),
  };
  for (const t of expectedTensors(cfg)) {
    const got = f.tensorByName.get(t.name);
    if (got === undefined) {
      throw new PrismError("PRISM_GGUF_MISSING", `${f.fileName}: tensor '${t.name}' is missing (needed by ${arch} with ${numLayers} layers)`, { file: f.fileName, tensor: t.name });
    }
    if (got.dims.length !== t.dims.length || got.dims.some((d, i) => d !== t.dims[i])) {
      throw corrupt(`tensor '${t.name}' has dims [${got.dims.join(", ")}], expected [${t.dims.join(", ")}] from the metadata`);
    }
    if (!isSupportedGgmlType(got.type)) {
      throw new PrismError("PRISM_GGUF_UNSUPPORTED_TYPE", `${f.fileName}: tensor '${t.name}' has type ${ggmlTypeName(got.type)}; Prism supports F32, F16 and Q8_0`, { file: f.fileName, tensor: t.name });
    }
  }
  return cfg;
}

/** Parameter count (weights only). */
export function parameterCount(cfg: ShapeFields): number {
  let n = 0;
  for (const t of expectedTensors(cfg)) n += t.dims.reduce((a, b) => a * b, 1);
  return n;
}
