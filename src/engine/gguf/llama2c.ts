/**
 * llama2.c (legacy v0 checkpoint + tokenizer.bin) → GGUF v3, architecture "llama", all tensors F32
 * (engine.md §2.3). llama2.c weights are already in llama.cpp's interleaved RoPE layout, so q/k are not permuted.
 * Matrices are row-major [out][in] in both formats; GGUF dims are written [in, out].
 */
import { PrismError } from "../../core/errors.ts";
import { llamaMetadata, LlamaFileType, type SpmVocab } from "./llama-meta.ts";
import { GgmlType, TokenType } from "./types.ts";
import { writeGguf, type GgufWriterTensor } from "./writer.ts";

export interface Llama2cHeader {
  readonly dim: number;
  readonly hiddenDim: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly vocabSize: number;
  /** vocab_size was positive in the header: the classifier is tied to the embedding. */
  readonly sharedClassifier: boolean;
  readonly seqLen: number;
}

const HEADER_BYTES = 28;
/** Magic of llama2.c's newer export formats (version 1/2): "ak42". */
const LLAMA2C_V1_MAGIC = 0x616b3432;

function invalid(fileName: string, msg: string): PrismError {
  return new PrismError("PRISM_LLAMA2C_INVALID", `${fileName}: ${msg}`, { file: fileName });
}

export function parseLlama2cHeader(bin: Uint8Array, fileName = "model.bin"): Llama2cHeader {
  if (bin.byteLength < HEADER_BYTES) throw invalid(fileName, `too short for a llama2.c header (${bin.byteLength} bytes)`);
  const v = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  if (v.getUint32(0, true) === LLAMA2C_V1_MAGIC) {
    throw invalid(fileName, `llama2.c export version ${v.getInt32(4, true)} ("ak42" magic) is not supported; export with the legacy (v0) format`);
  }
  const h = Array.from({ length: 7 }, (_, i) => v.getInt32(i * 4, true)) as [number, number, number, number, number, number, number];
  const [dim, hiddenDim, numLayers, numHeads, numKvHeads, vocabRaw, seqLen] = h;
  const header: Llama2cHeader = { dim, hiddenDim, numLayers, numHeads, numKvHeads, vocabSize: Math.abs(vocabRaw), sharedClassifier: vocabRaw > 0, seqLen };
  for (const [k, x] of Object.entries(header)) {
    if (typeof x === "number" && (x <= 0 || x > 1 << 20)) throw invalid(fileName, `header field ${k} = ${x} is implausible (is this a llama2.c legacy checkpoint?)`);
  }
  if (dim % numHeads !== 0 || numHeads % numKvHeads !== 0 || (dim / numHeads) % 2 !== 0) {
    throw invalid(fileName, `inconsistent header: dim ${dim}, heads ${numHeads}, kv heads ${numKvHeads}`);
  }
  return header;
}

/** Reads llama2.c tokenizer.bin into GGUF form (pieces with ' ' → '▁', "\n<s>\n" → "<s>", "\n</s>\n" → "</s>"). */
export function parseLlama2cTokenizer(tok: Uint8Array, vocabSize: number, fileName = "tokenizer.bin"): SpmVocab {
  const v = new DataView(tok.buffer, tok.byteOffset, tok.byteLength);
  const utf8 = new TextDecoder("utf-8");
  let pos = 4;
  if (tok.byteLength < 4) throw invalid(fileName, `too short (${tok.byteLength} bytes)`);
  const tokens: string[] = [];
  const scores = new Float32Array(vocabSize);
  const tokenTypes = new Int32Array(vocabSize);
  for (let i = 0; i < vocabSize; i++) {
    if (pos + 8 > tok.byteLength) throw invalid(fileName, `truncated at token ${i} of ${vocabSize} (byte ${pos})`);
    scores[i] = v.getFloat32(pos, true);
    const len = v.getInt32(pos + 4, true);
    pos += 8;
    if (len < 0 || pos + len > tok.byteLength) throw invalid(fileName, `token ${i} has length ${len}, past the end of the file (byte ${pos})`);
    let piece = utf8.decode(tok.subarray(pos, pos + len));
    pos += len;
    if (piece === "\n<s>\n") piece = "<s>";
    else if (piece === "\n</s>\n") piece = "</s>";
    piece = piece.replaceAll(" ", "\u2581");
    tokens.push(piece);
    tokenTypes[i] = i === 0 ? TokenType.UNKNOWN : i <= 2 ? TokenType.CONTROL : /^<0x[0-9A-Fa-f]{2}>$/.test(piece) ? TokenType.BYTE : TokenType.NORMAL;
  }
  return { tokens, scores, tokenTypes, bosId: 1, eosId: 2, unkId: 0 };
}

/**
 * Converts a llama2.c legacy checkpoint and its tokenizer.bin to GGUF bytes. Converting
 * ../shared/models/stories260K.bin + tok512.bin with name "stories260K" reproduces stories260K.gguf byte for byte.
 */
export function convertLlama2c(modelBin: Uint8Array, tokBin: Uint8Array, name: string, opts: { modelFileName?: string; tokenizerFileName?: string } = {}): Uint8Array {
  const mf = opts.modelFileName ?? "model.bin";
  const h = parseLlama2cHeader(modelBin, mf);
  const headDim = h.dim / h.numHeads;
  const kvDim = h.numKvHeads * headDim;
  const L = h.numLayers;
  const sizes = {
    tokEmb: h.vocabSize * h.dim,
    rmsAtt: L * h.dim,
    wq: L * h.dim * h.dim,
    wk: L * kvDim * h.dim,
    wv: L * kvDim * h.dim,
    wo: L * h.dim * h.dim,
    rmsFfn: L * h.dim,
    w1: L * h.hiddenDim * h.dim,
    w2: L * h.dim * h.hiddenDim,
    w3: L * h.hiddenDim * h.dim,
    rmsFinal: h.dim,
    freqCis: h.seqLen * headDim, // real + imag halves, skipped
    wcls: h.sharedClassifier ? 0 : h.vocabSize * h.dim,
  };
  const totalFloats = Object.values(sizes).reduce((a, b) => a + b, 0);
  const expectedBytes = HEADER_BYTES + totalFloats * 4;
  if (modelBin.byteLength !== expectedBytes) {
    throw invalid(mf, `is ${modelBin.byteLength} bytes but a legacy checkpoint with this header needs ${expectedBytes}`);
  }
  let pos = HEADER_BYTES;
  const take = (numFloats: number): Uint8Array => {
    const out = modelBin.subarray(pos, pos + numFloats * 4);
    pos += numFloats * 4;
    return out;
  };
  const tokEmb = take(sizes.tokEmb);
  const perLayer = (total: number): Uint8Array[] => {
    const all = take(total);
    const each = all.byteLength / L;
    return Array.from({ length: L }, (_, l) => all.subarray(l * each, (l + 1) * each));
  };
  const rmsAtt = perLayer(sizes.rmsAtt);
  const wq = perLayer(sizes.wq);
  const wk = perLayer(sizes.wk);
  const wv = perLayer(sizes.wv);
  const wo = perLayer(sizes.wo);
  const rmsFfn = perLayer(sizes.rmsFfn);
  const w1 = perLayer(sizes.w1);
  const w2 = perLayer(sizes.w2);
  const w3 = perLayer(sizes.w3);
  const rmsFinal = take(sizes.rmsFinal);
  take(sizes.freqCis);
  const wcls = h.sharedClassifier ? null : take(sizes.wcls);

  const F32 = GgmlType.F32;
  const tensors: GgufWriterTensor[] = [{ name: "token_embd.weight", dims: [h.dim, h.vocabSize], type: F32, data: tokEmb }];
  for (let l = 0; l < L; l++) {
    const b = `blk.${l}.`;
    tensors.push(
      { name: `${b}attn_norm.weight`, dims: [h.dim], type: F32, data: rmsAtt[l]! },
      { name: `${b}attn_q.weight`, dims: [h.dim, h.dim], type: F32, data: wq[l]! },
      { name: `${b}attn_k.weight`, dims: [h.dim, kvDim], type: F32, data: wk[l]! },
      { name: `${b}attn_v.weight`, dims: [h.dim, kvDim], type: F32, data: wv[l]! },
      { name: `${b}attn_output.weight`, dims: [h.dim, h.dim], type: F32, data: wo[l]! },
      { name: `${b}ffn_norm.weight`, dims: [h.dim], type: F32, data: rmsFfn[l]! },
      { name: `${b}ffn_gate.weight`, dims: [h.dim, h.hiddenDim], type: F32, data: w1[l]! },
      { name: `${b}ffn_down.weight`, dims: [h.hiddenDim, h.dim], type: F32, data: w2[l]! },
      { name: `${b}ffn_up.weight`, dims: [h.dim, h.hiddenDim], type: F32, data: w3[l]! },
    );
  }
  tensors.push({ name: "output_norm.weight", dims: [h.dim], type: F32, data: rmsFinal });
  if (wcls !== null) tensors.push({ name: "output.weight", dims: [h.dim, h.vocabSize], type: F32, data: wcls });

  const vocab = parseLlama2cTokenizer(tokBin, h.vocabSize, opts.tokenizerFileName ?? "tokenizer.bin");
  const metadata = llamaMetadata({
    name,
    fileType: LlamaFileType.ALL_F32,
    contextLength: h.seqLen,
    dim: h.dim,
    numLayers: L,
    hiddenDim: h.hiddenDim,
    numHeads: h.numHeads,
    numKvHeads: h.numKvHeads,
    ropeTheta: 10000,
    rmsEps: 1e-5,
    vocab,
  });
  return writeGguf({ metadata, tensors });
}
