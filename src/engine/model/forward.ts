/**
 * The Llama forward pass over one batch of rows of ONE model. Called by the executor once per
 * model group of a step, with the rows of every sequence of that model flattened: a prefill chunk
 * contributes many rows, a decode step one. Weights are read once per matmul for all rows (this is
 * where batching pays off); only the rows that sample get the final norm and the classifier.
 *
 * Everything lives in the one device memory: weights at the model's region, KV in the blocks the
 * scheduler assigned (byte offsets per sequence), activations in the executor's scratch area. The
 * forward pass allocates nothing.
 */
import { q8ActivationBytes } from "../kernels/q8-layout.ts";
import { ATTENTION_SCRATCH_THREADS, WType, type Kernels } from "../kernels/types.ts";
import type { LlamaConfig } from "./config.ts";
import type { WeightLayout } from "./weights.ts";

// Per-layer tensor indices into ModelPointers.layer{Ptr,Type}.
const ATTN_NORM = 0;
const WQ = 1;
const WK = 2;
const WV = 3;
const WO = 4;
const FFN_NORM = 5;
const W_GATE = 6;
const W_DOWN = 7;
const W_UP = 8;
const BQ = 9;
const BK = 10;
const BV = 11;
const PER_LAYER = 12;
const LAYER_NAMES = ["attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "ffn_norm.weight",
  "ffn_gate.weight", "ffn_down.weight", "ffn_up.weight", "attn_q.bias", "attn_k.bias", "attn_v.bias"] as const;

/** Absolute byte offsets and types of a resident model's tensors; re-pointed when its region moves. */
export class ModelPointers {
  embdPtr = 0;
  embdType = 0;
  outNormPtr = 0;
  clsPtr = 0;
  clsType = 0;
  readonly layerPtr: Float64Array;
  readonly layerType: Int32Array;

  constructor(
    readonly cfg: LlamaConfig,
    readonly layout: WeightLayout,
  ) {
    this.layerPtr = new Float64Array(cfg.numLayers * PER_LAYER);
    this.layerType = new Int32Array(cfg.numLayers * PER_LAYER);
  }

  /** Points every tensor at regionOffset + its slot. */
  repoint(regionOffset: number): void {
    const slot = (name: string): { offset: number; type: number } => {
      const s = this.layout.tensors.get(name);
      if (s === undefined) throw new Error(`weight layout lacks ${name}`);
      return s;
    };
    const embd = slot("token_embd.weight");
    this.embdPtr = regionOffset + embd.offset;
    this.embdType = embd.type;
    this.outNormPtr = regionOffset + slot("output_norm.weight").offset;
    const cls = this.cfg.tiedOutput ? embd : slot("output.weight");
    this.clsPtr = regionOffset + cls.offset;
    this.clsType = cls.type;
    const numTensors = this.cfg.qkvBias ? PER_LAYER : BQ;
    for (let l = 0; l < this.cfg.numLayers; l++) {
      for (let k = 0; k < numTensors; k++) {
        const s = slot(`blk.${l}.${LAYER_NAMES[k]!}`);
        this.layerPtr[l * PER_LAYER + k] = regionOffset + s.offset;
        this.layerType[l * PER_LAYER + k] = s.type;
      }
    }
  }
}

/** Largest dimensions the scratch area must hold (over all registered models). */
export interface ScratchDims {
  readonly maxBatchTokens: number;
  readonly maxSampleRows: number;
  /** u32 entries for the block tables of all sequences of one forward. */
  readonly maxBlockEntries: number;
  readonly dim: number;
  /** numHeads × headDim. */
  readonly qDim: number;
  readonly headDim: number;
  readonly kvDim: number;
  readonly hiddenDim: number;
  readonly vocabSize: number;
  readonly contextLength: number;
}

const ALIGN = 64;
const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

/** Byte offsets of the activation buffers inside the executor's prefix area. */
export class ScratchLayout {
  readonly x: number;
  readonly xb: number;
  readonly q: number;
  readonly k: number;
  readonly v: number;
  readonly att: number;
  readonly hb: number;
  readonly hb2: number;
  readonly positions: number;
  /** Rope's cos/sin per row (Kernels.ropeTable), shared by all layers and by q and k. */
  readonly ropeTable: number;
  readonly blockTables: number;
  /** Per row: its sequence's block table (u32 byte offset) and tokens per block (i32), for attentionRows. */
  readonly rowTables: number;
  readonly rowBlockTokens: number;
  /** ATTENTION_SCRATCH_THREADS areas of contextLength floats (one per thread of attentionRows). */
  readonly attnScores: number;
  readonly sampleX: number;
  /** One input's activations quantised for the Q8_0_R4 matmuls (any layer input or the sample rows). */
  readonly xq: number;
  readonly logits: number;
  /** First byte after the scratch area. */
  readonly end: number;

  constructor(
    readonly base: number,
    readonly dims: ScratchDims,
  ) {
    const n = dims.maxBatchTokens;
    let p = align(base);
    const take = (bytes: number): number => {
      const at = p;
      p = align(p + bytes);
      return at;
    };
    this.x = take(n * dims.dim * 4);
    this.xb = take(n * dims.dim * 4);
    this.q = take(n * dims.qDim * 4);
    this.k = take(n * dims.kvDim * 4);
    this.v = take(n * dims.kvDim * 4);
    this.att = take(n * dims.qDim * 4);
    this.hb = take(n * dims.hiddenDim * 4);
    this.hb2 = take(n * dims.hiddenDim * 4);
    this.positions = take(n * 4);
    this.ropeTable = take(n * dims.headDim * 4);
    this.blockTables = take(dims.maxBlockEntries * 4);
    this.rowTables = take(n * 4);
    this.rowBlockTokens = take(n * 4);
    this.attnScores = take(ATTENTION_SCRATCH_THREADS * dims.contextLength * 4);
    this.sampleX = take(dims.maxSampleRows * dims.dim * 4);
    const widestInput = Math.max(dims.dim, dims.qDim, dims.hiddenDim);
    this.xq = take(Math.max(q8ActivationBytes(n, widestInput), q8ActivationBytes(dims.maxSampleRows, dims.dim)));
    this.logits = take(dims.maxSampleRows * dims.vocabSize * 4);
    this.end = p;
  }
}

/**
 * One forward's rows, filled by the executor (reused between steps; capacity = the step budget).
 * Row r belongs to sequence rowSeq[r] and sits at position positions[r]; sequence s has its block
 * table (u32 byte offsets) at seqTablePtr[s] in the memory, with seqBlockTokens[s] tokens per block.
 */
export class ForwardBatch {
  numRows = 0;
  numSeqs = 0;
  numSampleRows = 0;
  readonly tokens: Int32Array;
  readonly positions: Int32Array;
  readonly rowSeq: Int32Array;
  readonly seqTablePtr: Float64Array;
  readonly seqBlockTokens: Int32Array;
  /** Per row: its sequence's block table pointer and tokens per block (copied to ScratchLayout.rowTables/rowBlockTokens). */
  readonly rowTablePtr: Uint32Array;
  readonly rowBlockTokens: Int32Array;
  /** Rows whose logits are computed, in output order. */
  readonly sampleRows: Int32Array;

  constructor(maxBatchTokens: number, maxSampleRows: number) {
    this.tokens = new Int32Array(maxBatchTokens);
    this.positions = new Int32Array(maxBatchTokens);
    this.rowSeq = new Int32Array(maxBatchTokens);
    this.seqTablePtr = new Float64Array(maxBatchTokens);
    this.seqBlockTokens = new Int32Array(maxBatchTokens);
    this.rowTablePtr = new Uint32Array(maxBatchTokens);
    this.rowBlockTokens = new Int32Array(maxBatchTokens);
    this.sampleRows = new Int32Array(maxSampleRows);
  }
}

/**
 * Runs the model over batch.numRows rows, writing each row's K/V into its sequence's blocks and
 * the logits of sample row i to scratch.logits + i × vocabSize × 4. The caller has validated
 * tokens, positions, block tables and sizes; positions, block tables and the per-row table
 * pointers and block sizes are already in memory.
 */
export function forward(k: Kernels, m: ModelPointers, batch: ForwardBatch, s: ScratchLayout): void {
  const cfg = m.cfg;
  const n = batch.numRows;
  const dim = cfg.dim;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const hidden = cfg.hiddenDim;
  const numLayers = cfg.numLayers;
  const scale = 1 / Math.sqrt(cfg.headDim);

  for (let r = 0; r < n; r++) k.getRow(s.x + r * dim * 4, m.embdPtr, m.embdType, batch.tokens[r]!, dim);
  k.ropeTable(s.ropeTable, s.positions, n, cfg.headDim, cfg.ropeTheta);

  const lp = m.layerPtr;
  const lt = m.layerType;
  for (let l = 0; l < numLayers; l++) {
    const b = l * PER_LAYER;
    k.rmsnorm(s.xb, s.x, lp[b + ATTN_NORM]!, n, dim, cfg.rmsEps);
    let xq = project(k, s, NONE, s.q, s.xb, lp[b + WQ]!, lt[b + WQ]!, n, dim, qDim);
    xq = project(k, s, xq, s.k, s.xb, lp[b + WK]!, lt[b + WK]!, n, dim, kvDim);
    project(k, s, xq, s.v, s.xb, lp[b + WV]!, lt[b + WV]!, n, dim, kvDim);
    if (cfg.qkvBias) {
      k.addBias(s.q, lp[b + BQ]!, n, qDim);
      k.addBias(s.k, lp[b + BK]!, n, kvDim);
      k.addBias(s.v, lp[b + BV]!, n, kvDim);
    }
    k.ropeApply(s.q, n, cfg.numHeads, cfg.headDim, s.ropeTable);
    k.ropeApply(s.k, n, cfg.numKvHeads, cfg.headDim, s.ropeTable);
    // All rows' K/V first: a prefill chunk's later rows attend to its earlier rows.
    for (let r = 0; r < n; r++) {
      const seq = batch.rowSeq[r]!;
      k.writeKv(s.k + r * kvDim * 4, s.v + r * kvDim * 4, batch.seqTablePtr[seq]!, batch.seqBlockTokens[seq]!, numLayers, l, kvDim, batch.positions[r]!);
    }
    k.attentionRows(s.att, s.q, s.rowTables, s.rowBlockTokens, s.positions, 0, n, numLayers, l,
      cfg.numHeads, cfg.numKvHeads, cfg.headDim, s.attnScores, s.dims.contextLength, scale);
    project(k, s, NONE, s.xb, s.att, lp[b + WO]!, lt[b + WO]!, n, qDim, dim);
    k.add(s.x, s.xb, n * dim);

    k.rmsnorm(s.xb, s.x, lp[b + FFN_NORM]!, n, dim, cfg.rmsEps);
    xq = project(k, s, NONE, s.hb, s.xb, lp[b + W_GATE]!, lt[b + W_GATE]!, n, dim, hidden);
    project(k, s, xq, s.hb2, s.xb, lp[b + W_UP]!, lt[b + W_UP]!, n, dim, hidden);
    k.swiglu(s.hb, s.hb, s.hb2, n * hidden);
    project(k, s, NONE, s.xb, s.hb, lp[b + W_DOWN]!, lt[b + W_DOWN]!, n, hidden, dim);
    k.add(s.x, s.xb, n * dim);
  }

  const numSample = batch.numSampleRows;
  if (numSample === 0) return;
  for (let i = 0; i < numSample; i++) {
    k.rmsnorm(s.sampleX + i * dim * 4, s.x + batch.sampleRows[i]! * dim * 4, m.outNormPtr, 1, dim, cfg.rmsEps);
  }
  project(k, s, NONE, s.logits, s.sampleX, m.clsPtr, m.clsType, numSample, dim, cfg.vocabSize);
}

/** `project`'s "s.xq holds nothing reusable". */
const NONE = -1;

/**
 * out = x · Wᵀ over all outDim columns. Q8_0_R4 weights take x quantised into s.xq; `quantized` is
 * the x pointer s.xq already holds (NONE if none), so projections of one input (q/k/v, gate/up)
 * quantise it once. Returns what s.xq holds afterwards.
 */
function project(k: Kernels, s: ScratchLayout, quantized: number, out: number, x: number, w: number, wType: number, n: number, inDim: number, outDim: number): number {
  if (wType !== WType.Q8_0_R4) {
    k.matmul(out, x, w, wType, n, inDim, outDim, 0, outDim);
    return quantized;
  }
  if (quantized !== x) k.quantizeQ8(s.xq, x, n, inDim);
  k.matmulQ8(out, s.xq, w, n, inDim, outDim, 0, outDim);
  return x;
}
