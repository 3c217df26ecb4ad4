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
 */
import type { ModelId, RequestId } from "../core/ids.ts";
import type { SamplingParams, SeqStep } from "../core/records.ts";
import type { KvSpace } from "../memory/types.ts";
import type { RequestSink, SubmitRequest } from "./types.ts";

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
  readonly id: RequestId;
  readonly spec: SubmitRequest;
  readonly sink: RequestSink;
  /** Dense index of the model inside its DeviceScheduler. */
  readonly modelIndex: number;
  kind: RequestKind;

  // ---- tokens ----
  readonly tokens: Int32Array;
  readonly numPromptTokens: number;
  /** Output tokens allowed: min(maxTokens, maxContextTokens − prompt). */
  readonly maxOutputTokens: number;
  numTokens: number;
  /** Tokens whose KV is written in the blocks (positions [0, numComputed)). */
  numComputed: number;
  /** Tokens to prefill before the next sample (numTokens at admission). */
  numPrefillTarget: number;
  readonly stopTokenIds: Int32Array;
  readonly eosTokenIds: Int32Array;
  readonly usesPenalties: boolean;

  // ---- block table ----
  blocks: Int32Array;
  numBlocks: number;
  private offsets: Uint32Array;
  private offsetsValid: number;
  private offsetsEpoch: number;
  private offsetsView: Uint32Array;
  readonly seq: MutableSeqStep;
  private readonly decodeToken: Int32Array;

  // ---- queueing ----
  /** Submission sequence on this device: the tie-break of equal priorities (unique). */
  readonly tieSeq: number;
  /** Slot in its model's queue while queued (ModelQueue), else -1. */
  queueSlot: number;
  /** Clock time of the last enqueue (submit or preemption). */
  enqueuedMs: number;
  /** In the step handed to the executor and not yet completed. */
  inStep: boolean;
  /** Cancelled while inStep: finish as cancelled when the step completes. */
  cancelRequested: boolean;

  // ---- stats ----
  readonly arrivalMs: number;
  admittedMs: number;
  firstTokenMs: number;
  activationWaitMs: number;
  numPreemptions: number;
  numStreamed: number;

  /** eosTokenIds: the model's (shared, read-only) EOS ids. */
  constructor(spec: SubmitRequest, modelIndex: number, maxContextTokens: number, eosTokenIds: Int32Array, blockTokens: number, tie: number, nowMs: number) {
    this.id = spec.requestId;
    this.spec = spec;
    this.sink = spec.sink;
    this.modelIndex = modelIndex;
    this.kind = "queued";
    const prompt = spec.promptTokens;
    const generated = spec.generatedTokens;
    const numGenerated = generated === undefined ? 0 : generated.length;
    this.numPromptTokens = prompt.length;
    this.maxOutputTokens = Math.max(0, Math.min(spec.maxTokens, maxContextTokens - prompt.length));
    this.tokens = new Int32Array(prompt.length + Math.max(this.maxOutputTokens, numGenerated));
    this.tokens.set(prompt, 0);
    if (generated !== undefined) this.tokens.set(generated, prompt.length);
    this.numTokens = prompt.length + numGenerated;
    this.numComputed = 0;
    this.numPrefillTarget = this.numTokens;
    this.stopTokenIds = spec.stopTokenIds === undefined || spec.stopTokenIds.length === 0 ? EMPTY_I32 : Int32Array.from(spec.stopTokenIds);
    this.eosTokenIds = spec.ignoreEos === true ? EMPTY_I32 : eosTokenIds;
    const s = spec.sampling;
    this.usesPenalties = s.repetitionPenalty !== 1 || s.frequencyPenalty !== 0 || s.presencePenalty !== 0;

    // Sized once for every token the request can ever hold (prompt, generated, output), so the
    // block table never grows: blocks are needed for at most tokens.length positions.
    const maxBlocks = Math.max(1, Math.ceil(this.tokens.length / blockTokens));
    this.blocks = new Int32Array(maxBlocks);
    this.numBlocks = 0;
    this.offsets = new Uint32Array(maxBlocks);
    this.offsetsValid = 0;
    this.offsetsEpoch = -1;
    this.offsetsView = EMPTY_U32;
    this.seq = new MutableSeqStep(spec.requestId, spec.modelId, blockTokens, s);
    this.decodeToken = new Int32Array(1);

    this.tieSeq = tie;
    this.queueSlot = -1;
    this.enqueuedMs = nowMs;
    this.inStep = false;
    this.cancelRequested = false;

    this.arrivalMs = spec.arrivalMs;
    this.admittedMs = Number.NaN;
    this.firstTokenMs = spec.firstTokenMs ?? Number.NaN;
    this.activationWaitMs = 0;
    this.numPreemptions = 0;
    this.numStreamed = numGenerated;
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

  /** Grow the block table (doubling) so it can hold numBlocks entries (sized up front; a guard). */
  ensureBlockCapacity(numBlocks: number): void {
    if (numBlocks <= this.blocks.length) return;
    let cap = this.blocks.length;
    while (cap < numBlocks) cap *= 2;
    const blocks = new Int32Array(cap);
    blocks.set(this.blocks.subarray(0, this.numBlocks));
    this.blocks = blocks;
    const offsets = new Uint32Array(cap);
    offsets.set(this.offsets.subarray(0, this.offsetsValid));
    this.offsets = offsets;
    this.offsetsView = EMPTY_U32;
  }

  /** Blocks were freed: forget the table (ids and offsets). */
  clearBlocks(): void {
    this.numBlocks = 0;
    this.offsetsValid = 0;
    this.offsetsView = EMPTY_U32;
  }

  /**
   * Byte offsets of the first numBlocks blocks. Offsets of held blocks change only at a compaction
   * (memoryEpoch moves), so they are refilled then and otherwise computed once per block. The view
   * is re-cut only when its length changes (every blockTokens tokens of a decode); a reallocated
   * table (ensureBlockCapacity) or a freed one (clearBlocks) drops it first.
   */
  blockOffsetsFor(space: KvSpace, numBlocks: number, memoryEpoch: number): Uint32Array {
    let valid = this.offsetsValid;
    if (this.offsetsEpoch !== memoryEpoch) {
      this.offsetsEpoch = memoryEpoch;
      valid = 0;
    }
    if (valid < numBlocks) {
      const offsets = this.offsets;
      const blocks = this.blocks;
      for (let i = valid; i < numBlocks; i++) offsets[i] = space.blockByteOffset(blocks[i]!);
      valid = numBlocks;
    }
    this.offsetsValid = valid;
    let view = this.offsetsView;
    if (view.length !== numBlocks) {
      view = this.offsets.subarray(0, numBlocks);
      this.offsetsView = view;
    }
    return view;
  }

  /** The one-token input of a decode step (reused buffer). */
  decodeInput(): Int32Array {
    this.decodeToken[0] = this.tokens[this.numTokens - 1]!;
    return this.decodeToken;
  }
}
