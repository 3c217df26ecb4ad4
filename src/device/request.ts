/**
 * One request on one device, as a fixed-shape object (every field set in the constructor).
 *
 * Lifecycle (`kind`), and what each transition does with KV blocks:
 *   queued ──admit (blocks for all tokens so far)──▶ prefilling ──last chunk sampled──▶ decoding
 *   prefilling | decoding ──preempt (frees all blocks; KV recomputed later)──▶ queued
 *   queued | prefilling | decoding ──▶ finished | cancelled | failed   (frees all blocks)
 * A queued request holds no blocks; a finished/cancelled/failed one holds none and is forgotten.
 * "Waiting for activation" is a queued request whose model is not resident (derived, not stored).
 *
 * Token buffer: tokens[0, numPromptTokens) is the prompt, then the generated tokens, so a recompute
 * after preemption simply prefills tokens[0, numTokens) and samples output index numGenerated,
 * which with (seed, index) sampling reproduces exactly the tokens the request would have produced.
 * A run of one repeated token at the end is kept as a count (numTokensStored) and written out only
 * when the buffer is read (storePendingTokens) or another token comes: the simulator's cost-model
 * executor samples one token per model, and writing it into every running request's buffer at every
 * decode took ~9 of 47 s of bench:sim's simulated hour (a memory miss per token: thousands of running
 * requests, each buffer in its own pages). A real stream pays the same one write per token, one
 * token later.
 */
import type { ModelId, RequestId } from "../core/ids.ts";
import type { SamplingParams, SeqStep } from "../core/records.ts";
import type { KvSpace } from "../memory/types.ts";
import type { RequestSink, SubmitRequest } from "./types.ts";
import type { OffsetTable, RequestBuffers } from "./buffer-pool.ts";

export type RequestKind = "queued" | "prefilling" | "decoding" | "finished" | "cancelled" | "failed";

/** A SeqStep the scheduler rewrites in place every step (one per request, no per-step allocation). */
export class MutableSeqStep implements SeqStep {
  requestId: RequestId;
  modelId: ModelId;
  tokens: Int32Array;
  startPos: number;
  blockOffsets: Uint32Array;
  blockTokens: number;
  sample: boolean;
  sampling: SamplingParams;
  outputIndex: number;
  penaltyTokens: Int32Array | null;
  constructor(requestId: RequestId, modelId: ModelId, blockTokens: number, sampling: SamplingParams) {
    this.requestId = requestId;
    this.modelId = modelId;
    this.tokens = EMPTY_I32;
    this.startPos = 0;
    this.blockOffsets = EMPTY_U32;
    this.blockTokens = blockTokens;
    this.sample = false;
    this.sampling = sampling;
    this.outputIndex = 0;
    this.penaltyTokens = null;
  }
}

const EMPTY_I32 = new Int32Array(0);
const EMPTY_U32 = new Uint32Array(0);

export class Request {
  // Fields are assigned hot-first (the constructor's order is the object's layout): a decode step
  // reads kind .. seq, so they share the first cache lines.
  kind: RequestKind;
  /** Dense index of the model inside its DeviceScheduler. */
  readonly modelIndex: number;
  /** Tokens whose KV is written in the blocks (positions [0, numComputed)). */
  numComputed: number;
  numBlocks: number;
  numTokens: number;
  /** Tokens to prefill before the next sample (numTokens at admission). */
  numPrefillTarget: number;
  readonly numPromptTokens: number;
  /** Output tokens allowed: min(maxTokens, maxContextTokens − prompt). */
  readonly maxOutputTokens: number;
  numStreamed: number;
  /** In the step handed to the executor and not yet completed. */
  inStep: boolean;
  /** Cancelled while inStep: finish as cancelled when the step completes. */
  cancelRequested: boolean;
  /** A first token exists (streamed here, or before a migration: spec.firstTokenMs). */
  hasFirstToken: boolean;
  /** tokens[numTokens − 1]: a decode's input, kept here so planning does not read the buffer. */
  lastToken: number;
  /** Tokens fed, and whether one is sampled, in the planned step (seq's, kept here for applying). */
  stepTokens: number;
  stepSample: boolean;
  readonly id: RequestId;
  private offsetsValid: number;
  private offsetsEpoch: number;
  /** The last view handed out (offsets[0, offsetsViewLength)), so an unchanged length costs a compare. */
  private offsetsViewLength: number;
  private offsetsView: Uint32Array;
  readonly seq: MutableSeqStep;
  /** Block table (ids) and byte offsets; from the pool with tokens. */
  blocks: Int32Array;
  private offsets: OffsetTable | null;
  readonly usesPenalties: boolean;
  readonly eosTokenIds: Int32Array;
  readonly stopTokenIds: Int32Array;
  readonly sink: RequestSink;
  // A decode reads neither of these (see numTokensStored), so they come after the hot fields.
  /**
   * tokens[0, numPromptTokens) is the prompt, then the generated tokens. Taken from the device's
   * pool at the first admission (empty before: a queued request needs only the spec's arrays).
   */
  tokens: Int32Array;
  /**
   * tokens[0, numTokensStored) are in the buffer; tokens[numTokensStored, numTokens) all equal
   * lastToken and are not written yet (storePendingTokens writes them).
   */
  numTokensStored: number;
  /** Elements the token buffer needs: every token the request can ever hold. */
  readonly tokenCapacity: number;

  // ---- queueing ----
  /** Submission sequence on this device: the tie-break of equal priorities (unique). */
  readonly tieSeq: number;
  /** Slot in its model's queue while queued (ModelQueue), else -1. */
  queueSlot: number;
  /** Clock time of the last enqueue (submit or preemption). */
  enqueuedMs: number;

  // ---- stats ----
  readonly spec: SubmitRequest;
  readonly arrivalMs: number;
  admittedMs: number;
  firstTokenMs: number;
  activationWaitMs: number;
  numPreemptions: number;

  /** eosTokenIds: the model's (shared, read-only) EOS ids. */
  constructor(spec: SubmitRequest, modelIndex: number, maxContextTokens: number, eosTokenIds: Int32Array, blockTokens: number, tie: number, nowMs: number) {
    const promptLen = spec.promptTokens.length;
    const numGenerated = spec.generatedTokens === undefined ? 0 : spec.generatedTokens.length;
    const maxOutputTokens = Math.max(0, Math.min(spec.maxTokens, maxContextTokens - promptLen));
    const s = spec.sampling;
    this.kind = "queued";
    this.modelIndex = modelIndex;
    this.numComputed = 0;
    this.numBlocks = 0;
    this.numTokens = promptLen + numGenerated;
    this.numPrefillTarget = this.numTokens;
    this.numPromptTokens = promptLen;
    this.maxOutputTokens = maxOutputTokens;
    this.numStreamed = numGenerated;
    this.inStep = false;
    this.cancelRequested = false;
    this.hasFirstToken = spec.firstTokenMs !== undefined && !Number.isNaN(spec.firstTokenMs);
    this.lastToken = numGenerated > 0 ? spec.generatedTokens![numGenerated - 1]! : spec.promptTokens[promptLen - 1]!;
    this.numTokensStored = this.numTokens;
    this.stepTokens = 0;
    this.stepSample = false;
    this.id = spec.requestId;
    this.offsetsValid = 0;
    this.offsetsEpoch = -1;
    this.offsetsViewLength = 0;
    this.offsetsView = EMPTY_U32;
    this.seq = new MutableSeqStep(spec.requestId, spec.modelId, blockTokens, s);
    this.tokens = EMPTY_I32;
    this.blocks = EMPTY_I32;
    this.offsets = null;
    this.usesPenalties = s.repetitionPenalty !== 1 || s.frequencyPenalty !== 0 || s.presencePenalty !== 0;
    this.eosTokenIds = spec.ignoreEos === true ? EMPTY_I32 : eosTokenIds;
    this.stopTokenIds = spec.stopTokenIds === undefined || spec.stopTokenIds.length === 0 ? EMPTY_I32 : Int32Array.from(spec.stopTokenIds);
    this.sink = spec.sink;
    this.tokenCapacity = promptLen + Math.max(maxOutputTokens, numGenerated);

    this.tieSeq = tie;
    this.queueSlot = -1;
    this.enqueuedMs = nowMs;

    this.spec = spec;
    this.arrivalMs = spec.arrivalMs;
    this.admittedMs = Number.NaN;
    this.firstTokenMs = spec.firstTokenMs ?? Number.NaN;
    this.activationWaitMs = 0;
    this.numPreemptions = 0;
  }

  /** Has its token buffer and block table (admitted at least once and not gone). */
  get hasBuffers(): boolean {
    return this.tokens !== EMPTY_I32;
  }

  /**
   * Take the token buffer and block table from the pools (first admission): the prompt and any
   * tokens generated elsewhere are copied in. The block table fits every block the request can
   * ever hold (blocks for tokenCapacity positions), so it never grows.
   */
  takeBuffers(pools: RequestBuffers, blockTokens: number): void {
    if (this.tokens !== EMPTY_I32) return;
    const spec = this.spec;
    const tokens = pools.tokens.take(Math.max(1, this.tokenCapacity));
    tokens.set(spec.promptTokens, 0);
    if (spec.generatedTokens !== undefined) tokens.set(spec.generatedTokens, this.numPromptTokens);
    this.tokens = tokens;
    this.numTokensStored = this.numTokens;
    const maxBlocks = Math.max(1, Math.ceil(this.tokenCapacity / blockTokens));
    this.blocks = pools.blocks.take(maxBlocks);
    this.offsets = pools.offsets.take(maxBlocks);
    this.offsetsValid = 0;
    this.offsetsViewLength = 0;
    this.offsetsView = EMPTY_U32;
  }

  /** Give the arrays back (the request left the device; it holds no blocks). */
  releaseBuffers(pools: RequestBuffers): void {
    if (this.tokens === EMPTY_I32) return;
    pools.tokens.give(this.tokens);
    pools.blocks.give(this.blocks);
    pools.offsets.give(this.offsets!);
    this.tokens = EMPTY_I32;
    this.blocks = EMPTY_I32;
    this.offsets = null;
    this.offsetsValid = 0;
    this.offsetsViewLength = 0;
    this.offsetsView = EMPTY_U32;
  }

  /**
   * Append a sampled token (the request holds its buffers). A token equal to the last one only
   * extends the pending run; another one writes the run out first.
   */
  appendToken(token: number): void {
    if (token !== this.lastToken) this.storePendingTokens();
    this.numTokens++;
    this.lastToken = token;
  }

  /** Write the pending run of lastToken, so tokens[0, numTokens) is the buffer's; before any read of it. */
  storePendingTokens(): void {
    const from = this.numTokensStored;
    if (from === this.numTokens) return;
    this.tokens.fill(this.lastToken, from, this.numTokens);
    this.numTokensStored = this.numTokens;
  }

  /** The tokens generated so far (a copy): from the buffer, or the spec's before the first admission. */
  generatedCopy(): Int32Array {
    if (this.tokens !== EMPTY_I32) {
      this.storePendingTokens();
      return this.tokens.slice(this.numPromptTokens, this.numTokens);
    }
    return this.spec.generatedTokens === undefined ? new Int32Array(0) : this.spec.generatedTokens.slice();
  }

  get numGenerated(): number {
    return this.numTokens - this.numPromptTokens;
  }

  /** Has produced output already (streamed tokens), so TTFT no longer applies. */
  get hasStarted(): boolean {
    return this.numTokens > this.numPromptTokens;
  }

  isStopToken(token: number): boolean {
    const eos = this.eosTokenIds;
    for (let i = 0; i < eos.length; i++) if (eos[i] === token) return true;
    const stop = this.stopTokenIds;
    for (let i = 0; i < stop.length; i++) if (stop[i] === token) return true;
    return false;
  }

  /** Blocks were freed: forget the table (ids and offsets). */
  clearBlocks(): void {
    this.numBlocks = 0;
    this.offsetsValid = 0;
  }

  /**
   * Byte offsets of the first numBlocks blocks. Offsets of held blocks change only at a compaction
   * (memoryEpoch moves), so they are refilled then and otherwise computed once per block. The view
   * changes only with the length (every blockTokens tokens of a decode): then the table's cached
   * prefix of that length.
   */
  blockOffsetsFor(space: KvSpace, numBlocks: number, memoryEpoch: number): Uint32Array {
    let valid = this.offsetsValid;
    if (this.offsetsEpoch !== memoryEpoch) {
      this.offsetsEpoch = memoryEpoch;
      valid = 0;
    }
    if (valid < numBlocks) {
      const offsets = this.offsets!.offsets;
      const blocks = this.blocks;
      for (let i = valid; i < numBlocks; i++) offsets[i] = space.blockByteOffset(blocks[i]!);
      valid = numBlocks;
    }
    this.offsetsValid = valid;
    if (this.offsetsViewLength !== numBlocks) {
      this.offsetsView = this.offsets!.prefix(numBlocks);
      this.offsetsViewLength = numBlocks;
    }
    return this.offsetsView;
  }
}
