/**
 * Plain records exchanged between the device scheduler (decides), the memory (accounts) and the
 * executor (runs). Nothing here refers to engine internals, sockets or timers, so the same records
 * flow through the real engine, a worker thread, node-llama-cpp and the simulator's cost model.
 */
import type { DeviceId, ModelId, RequestId } from "./ids.ts";

/** What the schedulers need to know about a model; produced by the engine's loader or the sim catalog. */
export interface ModelProfile {
  readonly id: ModelId;
  /** Bytes of device memory the weights occupy while the model is resident (contiguous region). */
  readonly weightBytes: number;
  readonly numLayers: number;
  /** K and V bytes of one token in one layer (2 × kvHeads × headDim × bytes per element). */
  readonly kvBytesPerTokenPerLayer: number;
  readonly maxContextTokens: number;
  readonly vocabSize: number;
  readonly eosTokenIds: readonly number[];
}

/** Per-request sampling; defaults are OpenAI's. Validated at the edge (gateway / CLI). */
export interface SamplingParams {
  /** 0 means greedy (argmax). */
  readonly temperature: number;
  /** 0 disables. */
  readonly topK: number;
  /** 1 disables. */
  readonly topP: number;
  /** 0 disables. */
  readonly minP: number;
  /** 1 disables; llama.cpp semantics (divide positive logits, multiply negative ones) over seen tokens. */
  readonly repetitionPenalty: number;
  /** OpenAI semantics: logit -= count × frequencyPenalty + (count > 0) × presencePenalty over generated tokens. */
  readonly frequencyPenalty: number;
  readonly presencePenalty: number;
  /**
   * The random draw for output token i depends only on (seed, i), so a preempted request that is
   * recomputed, or the same request on another device, samples the same tokens.
   */
  readonly seed: number;
  /** Number of top alternatives to report per sampled token (0 = none). */
  readonly topLogprobs: number;
  /** Report the sampled token's log-probability. */
  readonly logprobs: boolean;
}

export const GREEDY: SamplingParams = Object.freeze({
  temperature: 0,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
  seed: 0,
  topLogprobs: 0,
  logprobs: false,
});

/** One sequence's share of a step: a prefill chunk or one decode token. */
export interface SeqStep {
  readonly requestId: RequestId;
  readonly modelId: ModelId;
  /** Token ids fed this step (a prefill chunk, or the last sampled token when decoding). */
  readonly tokens: Int32Array;
  /** Position of tokens[0] in the sequence; KV for positions [0, startPos) is already in the blocks. */
  readonly startPos: number;
  /**
   * Byte offsets, inside the device memory, of the KV blocks covering positions
   * [0, startPos + tokens.length). Block b holds positions [b·blockTokens, (b+1)·blockTokens);
   * its layout is [layer][K|V][tokenInBlock][kvDim] of f32.
   */
  readonly blockOffsets: Uint32Array;
  readonly blockTokens: number;
  /** Sample a next token from the last fed position (last prefill chunk, or decode). */
  readonly sample: boolean;
  readonly sampling: SamplingParams;
  /** Index of the output token being sampled (0 for the first), for (seed, index) sampling. */
  readonly outputIndex: number;
  /** Tokens the penalties count (generated so far); null when no penalty is set. */
  readonly penaltyTokens: Int32Array | null;
}

export interface StepPlan {
  readonly deviceId: DeviceId;
  /** Increments by one per executed step on the device. */
  readonly stepIndex: number;
  readonly seqs: readonly SeqStep[];
}

export interface SampledToken {
  readonly requestId: RequestId;
  readonly token: number;
  /** Log-probability of `token` under the (penalised, temperature-scaled) distribution; NaN when not asked. */
  readonly logprob: number;
  /** Top alternatives, best first, when sampling.topLogprobs > 0; else null. */
  readonly topTokens: Int32Array | null;
  readonly topLogprobs: Float32Array | null;
}

export interface StepResult {
  readonly stepIndex: number;
  /** Time the executor spent on the step (measured, or modelled by the simulator's cost model). */
  readonly computeMs: number;
  /** One entry per SeqStep with sample = true, in plan order. */
  readonly sampled: readonly SampledToken[];
}

/**
 * Runs steps for one device. Called by the device loop only: one `execute` at a time per device,
 * never concurrently with `loadWeights`/`moveWeights` on the same device (those run at safe points
 * between steps). Implementations: the WASM engine (in-process or in a worker), node-llama-cpp,
 * the simulator's cost model, and test fakes.
 */
export interface Executor {
  /** Short name for logs and stats ("wasm", "llama.cpp", "cost-model", "fake"). */
  readonly kind: string;
  /** True when KV lives in the shared device memory (blockOffsets are honoured); false = fixed private KV. */
  readonly pagedKv: boolean;
  /** Copy the model's weights from the host cache into device memory at byteOffset. Resolves when usable. */
  loadWeights(modelId: ModelId, byteOffset: number): Promise<{ readonly durationMs: number }>;
  /** Forget the model's device copy (the memory layer reclaims the bytes). */
  unloadWeights(modelId: ModelId): void;
  /** The memory layer moved the model's weight region (compaction); bytes are already copied. */
  moveWeights(modelId: ModelId, newByteOffset: number): void;
  execute(plan: StepPlan): Promise<StepResult>;
  /** Release threads and buffers. */
  close(): Promise<void>;
}
