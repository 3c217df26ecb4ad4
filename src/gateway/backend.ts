/**
 * What the HTTP layer needs from the serving system. `PrismBackend` (serving.ts) implements it with the
 * real engine, memory and both schedulers; the gateway benchmark uses the same class with a zero-cost
 * executor. Everything HTTP-shaped stays in the gateway; everything below speaks records.
 */
import type { SamplingParams } from "../core/records.ts";
import type { PrismError } from "../core/errors.ts";

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

export interface ServedModel {
  readonly id: string;
  readonly aliases: readonly string[];
  readonly createdS: number;
  readonly contextTokens: number;
  readonly vocabSize: number;
  readonly ttftSloMs: number;
  readonly tpotSloMs: number;
  readonly pinned: boolean;
  encode(text: string, addBos: boolean): Int32Array;
  /** Chat messages → prompt token ids (template from the model, or the default one). */
  encodeChat(messages: readonly ChatMessage[]): Int32Array;
  /** A fresh incremental detokenizer (streams only whole UTF-8 characters). */
  detokenizer(promptTokens: Int32Array): { push(token: number): string; flush(): string };
  /** Text of one token (for logprobs). */
  tokenText(token: number): string;
  isEos(token: number): boolean;
}

export interface GenerateInput {
  readonly model: ServedModel;
  readonly promptTokens: Int32Array;
  readonly maxTokens: number;
  readonly sampling: SamplingParams;
  readonly ignoreEos: boolean;
  /** For logs and admin state. */
  readonly tag: string;
}

export type FinishOutcome =
  | { readonly kind: "finished"; readonly reason: "stop" | "length" }
  | { readonly kind: "cancelled" }
  | { readonly kind: "failed"; readonly error: PrismError };

export interface RequestTimings {
  readonly queueMs: number;
  readonly ttftMs: number;
  readonly tpotMs: number;
  readonly e2eMs: number;
  readonly preemptions: number;
}

/** Receives one generation's tokens, in order, then exactly one finish. */
export interface GenerationSink {
  onToken(token: number, logprob: number, topTokens: Int32Array | null, topLogprobs: Float32Array | null): void;
  onFinish(outcome: FinishOutcome, timings: RequestTimings | null): void;
}

export interface GenerationHandle {
  /** Stop generating and free the request's KV blocks; the sink then gets a "cancelled" finish. Idempotent. */
  cancel(): void;
}

export type SubmitResult =
  | { readonly kind: "accepted"; readonly handle: GenerationHandle }
  | { readonly kind: "rejected"; readonly error: PrismError; readonly retryAfterS?: number };

export interface ServingBackend {
  models(): readonly ServedModel[];
  /** By id or alias. */
  resolve(name: string): ServedModel | null;
  generate(input: GenerateInput, sink: GenerationSink): SubmitResult;
  /** JSON for GET /admin/state. */
  adminState(): unknown;
  load(modelId: string): Promise<void>;
  unload(modelId: string): Promise<void>;
  pin(modelId: string, pinned: boolean): void;
  /** True once models are registered and devices run. */
  ready(): boolean;
  /** Requests queued or running right now, all models. */
  inFlight(): number;
  /** Stop accepting; resolve when in-flight work is done or the deadline passes (then cancel the rest). */
  shutdown(deadlineMs: number): Promise<void>;
  /** Sampled on each /metrics scrape. */
  metricsSnapshot(): BackendMetrics;
}

export interface BackendMetrics {
  readonly running: ReadonlyMap<string, number>;
  readonly waiting: ReadonlyMap<string, number>;
  readonly kvPagesUsed: readonly { readonly model: string; readonly device: number; readonly pages: number }[];
  readonly deviceMemoryBytes: readonly { readonly device: number; readonly kind: string; readonly bytes: number }[];
  readonly activations: number;
  readonly evictions: number;
  readonly migrations: number;
}
