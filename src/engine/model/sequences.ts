/**
 * A tiny standalone generation loop over any paged Executor, for tests, benchmarks and `prism run`
 * (the server uses the device scheduler instead). Each step puts every active sequence into ONE
 * StepPlan — decode tokens first, then prefill chunks while the step's token budget lasts — so
 * sequences of different models interleave exactly as under the real scheduler.
 *
 * KV blocks come from a `KvBlockProvider` per sequence (src/engine must not import src/memory; tests
 * and the CLI pass an adapter over a DeviceMemory KvSpace). Blocks are allocated as positions grow
 * and all of them are freed when the call returns or throws.
 */
import { PrismError } from "../../core/errors.ts";
import { deviceId, requestId, type ModelId } from "../../core/ids.ts";
import { GREEDY, type Executor, type SamplingParams, type SeqStep, type StepPlan } from "../../core/records.ts";
import { usesPenalties } from "../sampler/validate.ts";

/** The slice of a KV space the loop needs (the memory layer's KvSpace fits through a thin adapter). */
export interface KvBlockProvider {
  readonly blockTokens: number;
  /** Block ids, or null when the memory cannot give numBlocks now. */
  alloc(numBlocks: number): number[] | null;
  /** Byte offset of a block inside the device memory. */
  byteOffset(blockId: number): number;
  free(blockIds: readonly number[]): void;
}

export interface SequenceSpec {
  readonly modelId: string;
  readonly blocks: KvBlockProvider;
  /** Fed as-is (add BOS yourself). At least one token. */
  readonly promptTokens: ArrayLike<number>;
  readonly maxTokens: number;
  readonly sampling?: SamplingParams;
  /** Generation stops after sampling one of these (it is not included in `tokens`). Default none. */
  readonly stopTokenIds?: readonly number[];
  /** Called for every generated token as soon as its step finishes. */
  readonly onToken?: (token: number, outputIndex: number) => void;
}

export interface SequenceResult {
  readonly tokens: number[];
  /** Log-probability per token (NaN unless sampling.logprobs). */
  readonly logprobs: number[];
  readonly finishReason: "length" | "stop";
  readonly promptTokens: number;
  /** From the call's start to the first generated token. */
  readonly firstTokenMs: number;
  /** From the call's start to the last token. */
  readonly totalMs: number;
}

export interface RunOptions {
  /** Tokens per step over all sequences (≤ the executor's maxBatchTokens). Default 512. */
  readonly maxBatchTokens?: number;
  /** Sampling sequences per step (≤ the executor's maxSampleRows). Default 64. */
  readonly maxSampleRows?: number;
  /** First request id used (one per sequence). Default 1. */
  readonly firstRequestId?: number;
}

class SeqState {
  readonly tokens: number[] = [];
  readonly logprobs: number[] = [];
  readonly blockIds: number[] = [];
  blockTable: Uint32Array;
  /** Positions whose KV is in the blocks. */
  pos = 0;
  finishReason: "length" | "stop" | null = null;
  firstTokenMs = NaN;
  totalMs = NaN;
  readonly prompt: Int32Array;
  readonly generated: Int32Array;
  readonly sampling: SamplingParams;
  readonly penalties: boolean;

  constructor(
    readonly spec: SequenceSpec,
    readonly requestId: number,
  ) {
    this.prompt = Int32Array.from(spec.promptTokens);
    this.generated = new Int32Array(Math.max(1, spec.maxTokens));
    this.blockTable = new Uint32Array(16);
    this.sampling = spec.sampling ?? GREEDY;
    this.penalties = usesPenalties(this.sampling);
  }

  ensureBlocks(numPositions: number): void {
    const bt = this.spec.blocks.blockTokens;
    const need = Math.ceil(numPositions / bt) - this.blockIds.length;
    if (need <= 0) return;
    const ids = this.spec.blocks.alloc(need);
    if (ids === null) {
      throw new PrismError("PRISM_REQUEST_TOO_LARGE", `request ${this.requestId}: no KV blocks left for ${numPositions} positions of '${this.spec.modelId}'`, {
        requestId: this.requestId,
      });
    }
    const total = this.blockIds.length + ids.length;
    if (total > this.blockTable.length) {
      const grown = new Uint32Array(Math.max(total, this.blockTable.length * 2));
      grown.set(this.blockTable);
      this.blockTable = grown;
    }
    for (const id of ids) {
      this.blockTable[this.blockIds.length] = this.spec.blocks.byteOffset(id);
      this.blockIds.push(id);
    }
  }

  release(): void {
    if (this.blockIds.length > 0) this.spec.blocks.free(this.blockIds.splice(0));
  }
}

/** Runs all sequences to completion, interleaved step by step; results in input order. */
export async function runSequences(executor: Executor, specs: readonly SequenceSpec[], opts: RunOptions = {}): Promise<SequenceResult[]> {
  const maxBatchTokens = opts.maxBatchTokens ?? 512;
  const maxSampleRows = opts.maxSampleRows ?? 64;
  const t0 = performance.now();
  const states = specs.map((s, i) => {
    if (s.promptTokens.length === 0) throw new PrismError("PRISM_ENGINE_BAD_PLAN", `sequence ${i}: the prompt must have at least one token`);
    if (!Number.isSafeInteger(s.maxTokens) || s.maxTokens < 0) throw new PrismError("PRISM_ENGINE_BAD_PLAN", `sequence ${i}: maxTokens must be a non-negative integer`);
    return new SeqState(s, (opts.firstRequestId ?? 1) + i);
  });
  for (const st of states) if (st.spec.maxTokens === 0) st.finishReason = "length";
  let stepIndex = 0;
  try {
    for (;;) {
      const active = states.filter((s) => s.finishReason === null);
      if (active.length === 0) break;
      const steps: SeqStep[] = [];
      const stepStates: SeqState[] = [];
      let budget = maxBatchTokens;
      let sampleRows = 0;
      // Decode first (one token each), then prefill chunks with what is left of the budget.
      for (const phase of [0, 1]) {
        for (const st of active) {
          const decoding = st.pos >= st.prompt.length;
          if ((phase === 0) !== decoding || budget === 0 || sampleRows === maxSampleRows) continue;
          let feed: Int32Array;
          if (decoding) {
            feed = st.generated.subarray(st.tokens.length - 1, st.tokens.length);
          } else {
            const n = Math.min(st.prompt.length - st.pos, budget);
            feed = st.prompt.subarray(st.pos, st.pos + n);
          }
          const sample = decoding || st.pos + feed.length === st.prompt.length;
          st.ensureBlocks(st.pos + feed.length);
          budget -= feed.length;
          if (sample) sampleRows++;
          steps.push({
            requestId: requestId(st.requestId),
            modelId: st.spec.modelId as ModelId,
            tokens: feed,
            startPos: st.pos,
            blockOffsets: st.blockTable.subarray(0, st.blockIds.length),
            blockTokens: st.spec.blocks.blockTokens,
            sample,
            sampling: st.sampling,
            outputIndex: st.tokens.length,
            penaltyTokens: st.penalties ? st.generated.subarray(0, st.tokens.length) : null,
          });
          stepStates.push(st);
        }
      }
      const plan: StepPlan = { deviceId: deviceId(0), stepIndex: stepIndex++, seqs: steps };
      const result = await executor.execute(plan);
      let k = 0;
      const now = performance.now() - t0;
      for (let i = 0; i < steps.length; i++) {
        const st = stepStates[i]!;
        const step = steps[i]!;
        st.pos += step.tokens.length;
        if (!step.sample) continue;
        const r = result.sampled[k++];
        if (r === undefined || r.requestId !== step.requestId) throw new PrismError("PRISM_INTERNAL", `step ${plan.stepIndex}: executor returned no sample for request ${step.requestId}`);
        if (st.tokens.length === 0) st.firstTokenMs = now;
        st.totalMs = now;
        if (st.spec.stopTokenIds?.includes(r.token) === true) {
          st.finishReason = "stop";
          st.release();
          continue;
        }
        st.generated[st.tokens.length] = r.token;
        st.tokens.push(r.token);
        st.logprobs.push(r.logprob);
        st.spec.onToken?.(r.token, st.tokens.length - 1);
        if (st.tokens.length >= st.spec.maxTokens) {
          st.finishReason = "length";
          st.release();
        }
      }
    }
  } finally {
    for (const st of states) st.release();
  }
  return states.map((st) => ({
    tokens: st.tokens,
    logprobs: st.logprobs,
    finishReason: st.finishReason ?? "length",
    promptTokens: st.prompt.length,
    firstTokenMs: st.firstTokenMs,
    totalMs: st.totalMs,
  }));
}

export interface GenerateOptions extends Omit<SequenceSpec, "modelId">, RunOptions {
  readonly executor: Executor;
  readonly modelId: string;
}

/** One sequence: prefill the prompt (chunked by maxBatchTokens), then decode up to maxTokens. */
export async function generate(opts: GenerateOptions): Promise<SequenceResult> {
  const [r] = await runSequences(opts.executor, [opts], opts);
  return r!;
}
