/**
 * A deterministic Executor for scheduler tests (and the device benchmark):
 *   next token = (lastFedToken × 31 + position + salt(model)) mod vocabSize
 * where position is the position of the last fed token. The token depends only on the sequence,
 * never on batching, preemption or which blocks hold the KV, so any schedule of the same request
 * must produce the same tokens.
 *
 * With checkKv, it also keeps the token it "wrote" at every KV slot (keyed by byte offset) and
 * checks, for every sequence of every step, that positions [0, startPos) read back through the
 * plan's blockOffsets hold exactly the tokens fed earlier for that request: a block table that
 * points at someone else's block, or a block freed while still in use, fails loudly.
 *
 * It refuses to run a model whose weights are not loaded (PRISM_ENGINE_NOT_LOADED), so tests also
 * check that the scheduler never steps a non-resident model.
 */
import { PrismError } from "../../src/core/errors.ts";
import type { ModelId } from "../../src/core/ids.ts";
import type { Executor, ModelProfile, SampledToken, StepPlan, StepResult } from "../../src/core/records.ts";

export interface FakeExecutorOptions {
  readonly vocabSize?: number;
  /** Step cost: stepBaseMs + msPerToken × tokens in the plan (reported as computeMs). */
  readonly stepBaseMs?: number;
  readonly msPerToken?: number;
  /** Weight copy cost, ms per byte (durationMs of loadWeights = weightBytes × loadMsPerByte). */
  readonly loadMsPerByte?: number;
  /** Profiles, for weight sizes (load cost); unknown models load in loadMsDefault. */
  readonly profiles?: readonly ModelProfile[];
  readonly loadMsDefault?: number;
  readonly checkKv?: boolean;
  /**
   * With checkKv: write the tokens into this (backed) device memory at the KV offsets, so a
   * compaction that moves KV pages moves them too. Without it, a Map keyed by offset is used, which
   * is only right while no compaction happens.
   */
  readonly memory?: WebAssembly.Memory | null;
  /** Record every plan (a copy) in `plans`. */
  readonly recordPlans?: boolean;
}

export interface RecordedSeq {
  readonly requestId: number;
  readonly modelId: string;
  readonly tokens: number[];
  readonly startPos: number;
  readonly sample: boolean;
  readonly outputIndex: number;
}

export function modelSalt(modelId: string): number {
  let h = 0;
  for (let i = 0; i < modelId.length; i++) h = (h * 131 + modelId.charCodeAt(i)) % 1_000_003;
  return h;
}

export function fakeNextToken(modelId: string, lastToken: number, position: number, vocabSize: number): number {
  return (lastToken * 31 + position + modelSalt(modelId)) % vocabSize;
}

/** What the fake produces for a prompt run alone, greedily: the reference for any schedule. */
export function fakeReference(modelId: string, prompt: ArrayLike<number>, numTokens: number, vocabSize: number, stopIds: readonly number[] = []): number[] {
  const out: number[] = [];
  let last = prompt[prompt.length - 1]!;
  let pos = prompt.length - 1;
  for (let i = 0; i < numTokens; i++) {
    const t = fakeNextToken(modelId, last, pos, vocabSize);
    if (stopIds.includes(t)) break;
    out.push(t);
    last = t;
    pos++;
  }
  return out;
}

export class FakeExecutor implements Executor {
  readonly kind = "fake";
  readonly pagedKv = true;
  readonly vocabSize: number;
  readonly loaded = new Map<ModelId, number>();
  readonly events: string[] = [];
  readonly plans: RecordedSeq[][] = [];
  numSteps = 0;
  numExecutedTokens = 0;
  private readonly opts: FakeExecutorOptions;
  private readonly kvMap = new Map<number, number>();
  private readonly history = new Map<number, number[]>();
  private readonly weightBytes = new Map<string, number>();

  constructor(opts: FakeExecutorOptions = {}) {
    this.opts = opts;
    this.vocabSize = opts.vocabSize ?? 256;
    for (const p of opts.profiles ?? []) this.weightBytes.set(p.id, p.weightBytes);
  }

  loadMs(modelId: ModelId): number {
    const bytes = this.weightBytes.get(modelId);
    if (bytes === undefined) return this.opts.loadMsDefault ?? 10;
    return bytes * (this.opts.loadMsPerByte ?? 0);
  }

  loadSync(modelId: ModelId, byteOffset: number): { durationMs: number } {
    if (this.loaded.has(modelId)) throw new Error(`fake executor: ${modelId} loaded twice`);
    this.loaded.set(modelId, byteOffset);
    this.events.push(`load ${modelId}`);
    return { durationMs: this.loadMs(modelId) };
  }

  async loadWeights(modelId: ModelId, byteOffset: number): Promise<{ readonly durationMs: number }> {
    return this.loadSync(modelId, byteOffset);
  }

  unloadWeights(modelId: ModelId): void {
    if (!this.loaded.delete(modelId)) throw new Error(`fake executor: unload of ${modelId}, which is not loaded`);
    this.events.push(`unload ${modelId}`);
  }

  moveWeights(modelId: ModelId, newByteOffset: number): void {
    if (!this.loaded.has(modelId)) throw new Error(`fake executor: move of ${modelId}, which is not loaded`);
    this.loaded.set(modelId, newByteOffset);
    this.events.push(`move ${modelId}`);
  }

  executeSync(plan: StepPlan): StepResult {
    const sampled: SampledToken[] = [];
    let numTokens = 0;
    const recorded: RecordedSeq[] = [];
    for (const seq of plan.seqs) {
      if (!this.loaded.has(seq.modelId)) {
        throw new PrismError("PRISM_ENGINE_NOT_LOADED", `fake executor: step ${plan.stepIndex} runs ${seq.modelId}, which is not loaded`);
      }
      const n = seq.tokens.length;
      if (n === 0) throw new Error(`fake executor: empty SeqStep for request ${seq.requestId}`);
      const end = seq.startPos + n;
      const wantBlocks = Math.ceil(end / seq.blockTokens);
      if (seq.blockOffsets.length !== wantBlocks) {
        throw new Error(`fake executor: request ${seq.requestId} has ${seq.blockOffsets.length} block offsets for ${end} positions (want ${wantBlocks})`);
      }
      if (this.opts.checkKv === true) this.checkAndWriteKv(seq.requestId, seq.tokens, seq.startPos, seq.blockOffsets, seq.blockTokens);
      numTokens += n;
      if (seq.sample) {
        const last = seq.tokens[n - 1]!;
        const token = fakeNextToken(seq.modelId, last, end - 1, this.vocabSize);
        sampled.push({ requestId: seq.requestId, token, logprob: Number.NaN, topTokens: null, topLogprobs: null });
      }
      if (this.opts.recordPlans === true) {
        recorded.push({ requestId: seq.requestId, modelId: seq.modelId, tokens: Array.from(seq.tokens), startPos: seq.startPos, sample: seq.sample, outputIndex: seq.outputIndex });
      }
    }
    if (this.opts.recordPlans === true) this.plans.push(recorded);
    this.numSteps++;
    this.numExecutedTokens += numTokens;
    const computeMs = (this.opts.stepBaseMs ?? 1) + (this.opts.msPerToken ?? 0.01) * numTokens;
    return { stepIndex: plan.stepIndex, computeMs, sampled };
  }

  async execute(plan: StepPlan): Promise<StepResult> {
    return this.executeSync(plan);
  }

  async close(): Promise<void> {}

  private readKv(byteOffset: number): number | undefined {
    const mem = this.opts.memory;
    if (mem === null || mem === undefined) return this.kvMap.get(byteOffset);
    return new DataView(mem.buffer).getInt32(byteOffset, true);
  }

  private writeKv(byteOffset: number, token: number): void {
    const mem = this.opts.memory;
    if (mem === null || mem === undefined) this.kvMap.set(byteOffset, token);
    else new DataView(mem.buffer).setInt32(byteOffset, token, true);
  }

  private checkAndWriteKv(requestId: number, tokens: Int32Array, startPos: number, offsets: Uint32Array, blockTokens: number): void {
    let hist = this.history.get(requestId);
    if (hist === undefined) {
      hist = [];
      this.history.set(requestId, hist);
    }
    for (let p = 0; p < startPos; p++) {
      const got = this.readKv(offsets[Math.floor(p / blockTokens)]! + 4 * (p % blockTokens));
      if (got !== hist[p]) {
        throw new Error(`fake executor: KV of request ${requestId} at position ${p} holds ${got}, expected ${hist[p]} (block table corrupt or block reused while held)`);
      }
    }
    for (let i = 0; i < tokens.length; i++) {
      const p = startPos + i;
      const t = tokens[i]!;
      if (p < hist.length && hist[p] !== t) {
        throw new Error(`fake executor: request ${requestId} fed token ${t} at position ${p}, earlier ${hist[p]} (recompute differs)`);
      }
      hist[p] = t;
      this.writeKv(offsets[Math.floor(p / blockTokens)]! + 4 * (p % blockTokens), t);
    }
  }
}
