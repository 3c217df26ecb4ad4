/**
 * LlamaCppExecutor: runs StepPlans through node-llama-cpp 3.21.1 (llama.cpp's CPU kernels). It is
 * the reference backend for parity tests and the comparison point of bench/engine.bench.ts.
 *
 * KV: pagedKv = false. llama.cpp allocates each context's KV cells up front and privately
 * (contextTokensPerSequence × sequences cells); it cannot place KV in the shared device memory, so
 * SeqStep.blockOffsets/blockTokens are ignored and no KV pages can be shared or reclaimed. The
 * scheduler must account the fixed bytes of weights + context as the model's weight footprint
 * (see llamaCppReservedBytes / LlamaCppExecutor.profile, whose kvBytesPerTokenPerLayer is 0).
 *
 * Sequences: each model gets one context with `sequencesPerModel` sequences. A request takes a
 * free sequence on its first step (startPos 0) and keeps it until releaseRequest(requestId), or
 * until the sequence is reclaimed for a new request when none is free (least recently stepped
 * request not in the current plan; if that request comes back with startPos > 0 its step fails
 * with PRISM_ENGINE_BAD_PLAN, since its KV is gone). A step with startPos below the sequence's
 * length rolls the sequence back (recompute after preemption); one above it fails.
 *
 * All SeqSteps of a plan are submitted together, so node-llama-cpp decodes them in one llama.cpp
 * batch per model. Greedy (temperature 0) is llama.cpp's argmax; other sampling uses llama.cpp's
 * sampler chain with seed = sampling.seed + outputIndex, which is NOT our engine's (seed, index)
 * draw: only greedy output is comparable across backends.
 */
import type { LlamaContext, LlamaContextSequence, LlamaModel, Token, ControlledEvaluateInputItem } from "node-llama-cpp";
import { PrismError } from "../../core/errors.ts";
import type { ModelId, RequestId } from "../../core/ids.ts";
import type { Executor, ModelProfile, SampledToken, SamplingParams, SeqStep, StepPlan, StepResult } from "../../core/records.ts";
import { disposeCpuLlama, getCpuLlama } from "./llama.ts";

export interface LlamaCppModelSpec {
  readonly id: string;
  /** GGUF file. */
  readonly path: string;
}

export interface LlamaCppExecutorOptions {
  /** Models this executor may load (loadWeights looks the path up by id). More via registerModel. */
  readonly models?: readonly LlamaCppModelSpec[];
  /** Concurrent requests per model (llama.cpp sequences). Default 8. */
  readonly sequencesPerModel?: number;
  /** KV cells per sequence = the longest request (prompt + output). Default 512. */
  readonly contextTokensPerSequence?: number;
  /** llama.cpp batch size (tokens per decode call). Default min(2048, total cells). */
  readonly batchSize?: number;
}

export const DEFAULT_LLAMACPP_SEQUENCES = 8;
export const DEFAULT_LLAMACPP_CONTEXT_TOKENS = 512;

interface SeqSlot {
  readonly seq: LlamaContextSequence;
  requestId: number;
  /** stepIndex of the last plan that fed this sequence. */
  lastStep: number;
}

interface LoadedModel {
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly slots: SeqSlot[];
  readonly byRequest: Map<number, SeqSlot>;
  readonly vocabSize: number;
}

const FREE = -1;

export class LlamaCppExecutor implements Executor {
  readonly kind = "llama.cpp";
  readonly pagedKv = false;
  private readonly paths = new Map<string, string>();
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly disposing = new Set<Promise<void>>();
  readonly sequencesPerModel: number;
  readonly contextTokensPerSequence: number;
  private readonly batchSize: number | undefined;

  constructor(opts: LlamaCppExecutorOptions = {}) {
    this.sequencesPerModel = opts.sequencesPerModel ?? DEFAULT_LLAMACPP_SEQUENCES;
    this.contextTokensPerSequence = opts.contextTokensPerSequence ?? DEFAULT_LLAMACPP_CONTEXT_TOKENS;
    this.batchSize = opts.batchSize;
    for (const [k, v] of [["sequencesPerModel", this.sequencesPerModel], ["contextTokensPerSequence", this.contextTokensPerSequence]] as const) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new PrismError("PRISM_CONFIG_INVALID", `llama.cpp ${k} must be a positive integer (got ${v})`, { option: k });
    }
    for (const m of opts.models ?? []) this.registerModel(m.id, m.path);
  }

  registerModel(id: string, path: string): void {
    this.paths.set(id, path);
  }

  async loadWeights(modelId: ModelId, _byteOffset: number): Promise<{ readonly durationMs: number }> {
    const t0 = performance.now();
    if (this.loaded.has(modelId)) return { durationMs: 0 };
    const path = this.paths.get(modelId);
    if (path === undefined) throw new PrismError("PRISM_UNKNOWN_MODEL", `llama.cpp executor has no GGUF path for model '${modelId}'`, { model: modelId });
    const llama = await getCpuLlama();
    const model = await llama.loadModel({ modelPath: path });
    const context = await model.createContext({
      contextSize: this.contextTokensPerSequence,
      sequences: this.sequencesPerModel,
      threads: 1,
      ...(this.batchSize !== undefined ? { batchSize: this.batchSize } : {}),
    });
    const slots: SeqSlot[] = [];
    for (let i = 0; i < this.sequencesPerModel; i++) slots.push({ seq: context.getSequence(), requestId: FREE, lastStep: -1 });
    const vocabSize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
    this.loaded.set(modelId, { model, context, slots, byRequest: new Map(), vocabSize });
    return { durationMs: performance.now() - t0 };
  }

  unloadWeights(modelId: ModelId): void {
    const m = this.loaded.get(modelId);
    if (m === undefined) throw new PrismError("PRISM_ENGINE_NOT_LOADED", `model '${modelId}' is not loaded on the llama.cpp executor`, { model: modelId });
    this.loaded.delete(modelId);
    const p = (async () => {
      await m.context.dispose();
      await m.model.dispose();
    })();
    this.disposing.add(p);
    void p.finally(() => this.disposing.delete(p));
  }

  /** Weights live in llama.cpp's own (mmapped) memory: nothing to re-point. */
  moveWeights(_modelId: ModelId, _newByteOffset: number): void {}

  /** Frees the request's sequence now (otherwise it is reclaimed lazily when sequences run out). */
  releaseRequest(requestId: RequestId): void {
    for (const m of this.loaded.values()) {
      const slot = m.byRequest.get(requestId);
      if (slot === undefined) continue;
      m.byRequest.delete(requestId);
      slot.requestId = FREE;
    }
  }

  /** Scheduler profile of a loaded model: the whole fixed footprint counts as weights; no KV pages. */
  profile(modelId: ModelId): ModelProfile {
    const m = this.mustGet(modelId);
    const meta = m.model.fileInfo.metadata as unknown as Record<string, { block_count?: number } | undefined> & { general: { architecture: string } };
    return {
      id: modelId,
      weightBytes: m.model.size + m.context.memoryUsage.ram,
      numLayers: meta[meta.general.architecture]?.block_count ?? m.model.fileInsights.totalLayers - 1,
      kvBytesPerTokenPerLayer: 0,
      maxContextTokens: this.contextTokensPerSequence,
      vocabSize: m.vocabSize,
      eosTokenIds: [m.model.tokens.eos, m.model.tokens.eot].filter((t): t is Token => t !== null).map(Number),
    };
  }

  async execute(plan: StepPlan): Promise<StepResult> {
    const t0 = performance.now();
    // Validate and bind every SeqStep to its sequence before evaluating anything.
    const inUse = new Set<SeqSlot>();
    const bound: SeqSlot[] = [];
    for (const s of plan.seqs) bound.push(this.bind(s, plan.stepIndex, inUse));
    // Roll back sequences whose request restarts below its current length.
    await Promise.all(plan.seqs.map(async (s, i) => {
      const slot = bound[i]!;
      const len = slot.seq.nextTokenIndex;
      if (s.startPos === 0 && len > 0) await slot.seq.clearHistory();
      else if (s.startPos < len) await slot.seq.eraseContextTokenRanges([{ start: s.startPos, end: len }]);
    }));
    const outputs = await Promise.all(plan.seqs.map((s, i) => bound[i]!.seq.controlledEvaluate(evalInput(s))));
    const sampled: SampledToken[] = [];
    plan.seqs.forEach((s, i) => {
      if (!s.sample) return;
      const out = outputs[i]![s.tokens.length - 1];
      const token = out?.next.token;
      if (token === undefined || token === null) {
        throw new PrismError("PRISM_INTERNAL", `llama.cpp returned no token for request ${s.requestId}`, { requestId: s.requestId });
      }
      sampled.push(toSampled(s, token, out?.next.probabilities));
    });
    return { stepIndex: plan.stepIndex, computeMs: performance.now() - t0, sampled };
  }

  async close(): Promise<void> {
    for (const id of [...this.loaded.keys()]) this.unloadWeights(id as ModelId);
    await Promise.all([...this.disposing]);
  }

  private mustGet(modelId: string): LoadedModel {
    const m = this.loaded.get(modelId);
    if (m === undefined) throw new PrismError("PRISM_ENGINE_NOT_LOADED", `model '${modelId}' is not loaded on the llama.cpp executor`, { model: modelId });
    return m;
  }

  private bind(s: SeqStep, stepIndex: number, inUse: Set<SeqSlot>): SeqSlot {
    const m = this.mustGet(s.modelId);
    if (s.tokens.length === 0) throw badPlan(s, "a SeqStep needs at least one token");
    if (s.startPos + s.tokens.length > this.contextTokensPerSequence) {
      throw badPlan(s, `positions up to ${s.startPos + s.tokens.length} exceed the ${this.contextTokensPerSequence} KV cells of a llama.cpp sequence`);
    }
    for (const t of s.tokens) {
      if (t < 0 || (m.vocabSize > 0 && t >= m.vocabSize)) throw new PrismError("PRISM_TOKEN_OUT_OF_RANGE", `token ${t} outside the vocabulary of '${s.modelId}'`, { token: t });
    }
    let slot = m.byRequest.get(s.requestId);
    if (slot === undefined) {
      if (s.startPos !== 0) throw badPlan(s, "request has no llama.cpp sequence (its private KV was reclaimed); restart it at position 0");
      slot = m.slots.find((x) => x.requestId === FREE) ?? this.reclaim(m, inUse);
      slot.requestId = s.requestId;
      m.byRequest.set(s.requestId, slot);
    } else if (s.startPos > slot.seq.nextTokenIndex) {
      throw badPlan(s, `KV for positions [${slot.seq.nextTokenIndex}, ${s.startPos}) is missing`);
    }
    if (inUse.has(slot)) throw badPlan(s, "request appears twice in one plan");
    inUse.add(slot);
    slot.lastStep = stepIndex;
    return slot;
  }

  private reclaim(m: LoadedModel, inUse: Set<SeqSlot>): SeqSlot {
    let victim: SeqSlot | null = null;
    for (const x of m.slots) {
      if (inUse.has(x)) continue;
      if (victim === null || x.lastStep < victim.lastStep) victim = x;
    }
    if (victim === null) {
      throw new PrismError("PRISM_ENGINE_BATCH_TOO_LARGE", `plan has more requests than the ${m.slots.length} llama.cpp sequences of the model`, { sequences: m.slots.length });
    }
    m.byRequest.delete(victim.requestId);
    victim.requestId = FREE;
    return victim;
  }
}

function badPlan(s: SeqStep, why: string): PrismError {
  return new PrismError("PRISM_ENGINE_BAD_PLAN", `request ${s.requestId} (${s.modelId}) at position ${s.startPos}: ${why}`, { requestId: s.requestId, startPos: s.startPos });
}

function evalInput(s: SeqStep): ControlledEvaluateInputItem[] {
  const items: ControlledEvaluateInputItem[] = Array.from(s.tokens, (t) => t as Token);
  if (!s.sample) return items;
  const p = s.sampling;
  const wantProbs = p.logprobs || p.topLogprobs > 0;
  items[items.length - 1] = [s.tokens[s.tokens.length - 1]! as Token, {
    generateNext: { token: true, ...(wantProbs ? { probabilities: true } : {}), options: samplerOptions(s, p) },
  }];
  return items;
}

function samplerOptions(s: SeqStep, p: SamplingParams): NonNullable<NonNullable<Extract<ControlledEvaluateInputItem, unknown[]>[1]["generateNext"]>["options"]> {
  if (p.temperature === 0 && p.repetitionPenalty === 1 && p.frequencyPenalty === 0 && p.presencePenalty === 0) return { temperature: 0 };
  return {
    temperature: p.temperature,
    ...(p.topK > 0 ? { topK: p.topK } : {}),
    ...(p.topP < 1 ? { topP: p.topP } : {}),
    ...(p.minP > 0 ? { minP: p.minP } : {}),
    seed: (p.seed + s.outputIndex) >>> 0,
    ...(s.penaltyTokens !== null ? {
      repeatPenalty: {
        punishTokens: Array.from(s.penaltyTokens, (t) => t as Token),
        maxPunishTokens: Math.max(64, s.penaltyTokens.length),
        penalty: p.repetitionPenalty,
        frequencyPenalty: p.frequencyPenalty,
        presencePenalty: p.presencePenalty,
      },
    } : {}),
  };
}

function toSampled(s: SeqStep, token: Token, probabilities: Map<Token, number> | undefined): SampledToken {
  const p = s.sampling;
  let logprob = Number.NaN;
  let topTokens: Int32Array | null = null;
  let topLogprobs: Float32Array | null = null;
  if (probabilities !== undefined) {
    if (p.logprobs) logprob = Math.log(probabilities.get(token) ?? 0);
    if (p.topLogprobs > 0) {
      const n = Math.min(p.topLogprobs, probabilities.size);
      topTokens = new Int32Array(n);
      topLogprobs = new Float32Array(n);
      let i = 0;
      for (const [t, prob] of probabilities) { // sorted best first by node-llama-cpp
        if (i >= n) break;
        topTokens[i] = t;
        topLogprobs[i] = Math.log(prob);
        i++;
      }
    }
  }
  return { requestId: s.requestId, token: Number(token), logprob, topTokens, topLogprobs };
}

/** Factory form (for WorkerExecutor and config-driven construction). */
export function createLlamaCppExecutor(opts: LlamaCppExecutorOptions = {}): LlamaCppExecutor {
  return new LlamaCppExecutor(opts);
}

/**
 * Called by the worker runtime (executor-host.ts) when a worker hosting this executor shuts down:
 * releases the thread's native llama.cpp backend so the worker can end without aborting the process.
 */
export const releaseThreadResources = disposeCpuLlama;
