/**
 * The in-process engine executor: runs StepPlans of many models on one device memory.
 *
 * Who calls it: the device loop (one `execute` at a time; load/move/unload only between steps), the
 * worker runtime (which constructs it inside a worker from JSON options plus the shared memory), and
 * tests / `prism run` through the standalone `generate` helper.
 *
 * Memory map (one WebAssembly.Memory):
 *   [0, KERNEL_RESERVED_BYTES)           kernel module static data
 *   [KERNEL_RESERVED_BYTES, prefixBytes) activation scratch (ScratchLayout), sized for the step budget
 *                                         (maxBatchTokens rows, maxSampleRows logits rows) and the
 *                                         largest registered model
 *   [prefixBytes, ...)                    the memory layer's pages: weight regions and KV blocks
 *
 * A model is *registered* (its parsed GGUF kept as the host cache, layout planned, profile known),
 * then *loaded* (weights copied into a region the memory layer chose) — only loaded models execute.
 * Plans are validated before anything is written, so a bad plan rejects with a PrismError and
 * leaves the memory and KV untouched.
 */
import { PrismError } from "../../core/errors.ts";
import type { ModelId, RequestId } from "../../core/ids.ts";
import type { Executor, ModelProfile, SampledToken, SeqStep, StepPlan, StepResult } from "../../core/records.ts";
import { parseGguf, readGgufFile } from "../gguf/reader.ts";
import type { GgufFile } from "../gguf/types.ts";
import { KERNEL_RESERVED_BYTES, createTsKernels, createWasmKernels, type Kernels } from "../kernels/types.ts";
import { createParallelKernels } from "../runtime/parallel-kernels.ts";
import { Sampler } from "../sampler/sampler.ts";
import { validateSampling } from "../sampler/validate.ts";
import { llamaConfigFromGguf, type LlamaConfig } from "./config.ts";
import { ForwardBatch, ModelPointers, ScratchLayout, forward, type ScratchDims } from "./forward.ts";
import { copyWeights, planWeightLayout, REGION_ALIGN_BYTES, type WeightLayout } from "./weights.ts";

/** Where a model's GGUF comes from: a file path or bytes already in memory (JSON-able with path). */
export interface EngineModelSource {
  readonly id: string;
  readonly path?: string;
  readonly bytes?: Uint8Array;
}

/** Step budget of one forward (per model group of a plan). */
export interface StepBudget {
  /** Rows (prefill + decode tokens) of one model in one step. Default 512. */
  readonly maxBatchTokens?: number;
  /** Sampling sequences of one model in one step. Default 64. */
  readonly maxSampleRows?: number;
  /** u32 block-table entries over the sequences of one model in one step. Default 65536. */
  readonly maxBlockEntries?: number;
}

export interface EngineExecutorOptions extends StepBudget {
  /** The device memory (shared when a worker hosts the executor). Never grown by the executor. */
  readonly memory: WebAssembly.Memory;
  /** Bytes at the start of `memory` owned by the executor; see requiredPrefixBytes. */
  readonly prefixBytes: number;
  /** Kernel implementation; default "wasm". */
  readonly kernels?: "wasm" | "ts";
  /**
   * 1 = split large matmuls with one helper thread (needs a shared memory); default 0. See
   * runtime/parallel-kernels.ts for when it pays.
   */
  readonly helperThreads?: 0 | 1;
  /** Matmuls below this many multiply-adds stay on the calling thread (default: the runtime's). */
  readonly minParallelMacs?: number;
  /** Models to register up front. */
  readonly models?: readonly EngineModelSource[];
}

export const DEFAULT_MAX_BATCH_TOKENS = 512;
export const DEFAULT_MAX_SAMPLE_ROWS = 64;
export const DEFAULT_MAX_BLOCK_ENTRIES = 65536;

/** KV is f32: K and V of one token in one layer = 2 × kvHeads × headDim × 4 bytes. */
export function kvBytesPerTokenPerLayer(cfg: LlamaConfig): number {
  return 2 * cfg.numKvHeads * cfg.headDim * 4;
}

/** The scheduler's view of a model (weights as laid out by planWeightLayout). */
export function profileOf(id: ModelId, cfg: LlamaConfig, layout: WeightLayout): ModelProfile {
  return {
    id,
    weightBytes: layout.bytes,
    numLayers: cfg.numLayers,
    kvBytesPerTokenPerLayer: kvBytesPerTokenPerLayer(cfg),
    maxContextTokens: cfg.contextLength,
    vocabSize: cfg.vocabSize,
    eosTokenIds: [...cfg.eosTokenIds],
  };
}

/**
 * The profile of a GGUF without an executor (e.g. on the scheduler's thread while the executor runs
 * in a worker): validates the architecture, tensors and layout exactly as registration does.
 */
export function modelProfileFromGguf(id: string, gguf: GgufFile): ModelProfile {
  const cfg = llamaConfigFromGguf(gguf);
  return profileOf(id as ModelId, cfg, planWeightLayout(gguf, cfg));
}

function scratchDims(cfgs: readonly LlamaConfig[], budget: StepBudget): ScratchDims {
  const max = (f: (c: LlamaConfig) => number): number => cfgs.reduce((m, c) => Math.max(m, f(c)), 0);
  return {
    maxBatchTokens: budget.maxBatchTokens ?? DEFAULT_MAX_BATCH_TOKENS,
    maxSampleRows: budget.maxSampleRows ?? DEFAULT_MAX_SAMPLE_ROWS,
    maxBlockEntries: budget.maxBlockEntries ?? DEFAULT_MAX_BLOCK_ENTRIES,
    dim: max((c) => c.dim),
    qDim: max((c) => c.numHeads * c.headDim),
    headDim: max((c) => c.headDim),
    kvDim: max((c) => c.numKvHeads * c.headDim),
    hiddenDim: max((c) => c.hiddenDim),
    vocabSize: max((c) => c.vocabSize),
    contextLength: max((c) => c.contextLength),
  };
}

/**
 * Bytes of executor prefix (kernel reserve + activation scratch) needed to run these models with
 * this step budget; pass it as DeviceMemoryOptions.prefixBytes (rounded up as the memory requires).
 */
export function requiredPrefixBytes(cfgs: readonly LlamaConfig[], budget: StepBudget = {}): number {
  return new ScratchLayout(KERNEL_RESERVED_BYTES, scratchDims(cfgs, budget)).end;
}

interface ModelEntry {
  readonly id: ModelId;
  readonly gguf: GgufFile;
  readonly cfg: LlamaConfig;
  readonly layout: WeightLayout;
  readonly profile: ModelProfile;
  readonly ptrs: ModelPointers;
  /** Byte offset of the device copy, or -1 while not loaded. */
  regionOffset: number;
}

/** Called with each sampling row's logits (a view valid only during the call), before sampling. */
export type LogitsHook = (requestId: RequestId, modelId: ModelId, logits: Float32Array) => void;

export class EngineExecutor implements Executor {
  readonly kind: "wasm" | "ts";
  readonly pagedKv = true;
  /** Test hook: sees every sampling row's logits. Null (the default) costs nothing. */
  logitsHook: LogitsHook | null = null;

  private readonly models = new Map<string, ModelEntry>();
  private readonly budget: Required<StepBudget>;
  private scratch: ScratchLayout;
  private readonly batch: ForwardBatch;
  private readonly sampler: Sampler;
  /** Plan index of each sample row of the current group. */
  private readonly sampleSeqIndex: Int32Array;
  /** Per plan index: grouped already (execute's scratch). */
  private done = new Uint8Array(64);
  /** Per plan index: position in StepResult.sampled, or -1. */
  private slotOf = new Int32Array(64);
  private buffer: ArrayBuffer | SharedArrayBuffer;
  private f32: Float32Array;
  private i32: Int32Array;
  private u32: Uint32Array;
  private closed = false;

  constructor(
    readonly memory: WebAssembly.Memory,
    readonly prefixBytes: number,
    private readonly kernels: Kernels,
    budget: StepBudget,
    /** Called by close() (stops a matmul helper thread). */
    private readonly releaseKernels: () => Promise<void> = async () => {},
  ) {
    this.kind = kernels.name;
    this.budget = {
      maxBatchTokens: budget.maxBatchTokens ?? DEFAULT_MAX_BATCH_TOKENS,
      maxSampleRows: budget.maxSampleRows ?? DEFAULT_MAX_SAMPLE_ROWS,
      maxBlockEntries: budget.maxBlockEntries ?? DEFAULT_MAX_BLOCK_ENTRIES,
    };
    for (const [k, v] of Object.entries(this.budget)) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new PrismError("PRISM_CONFIG_INVALID", `engine ${k} must be a positive integer (got ${v})`, { option: k });
    }
    if (!Number.isSafeInteger(prefixBytes) || prefixBytes < KERNEL_RESERVED_BYTES || prefixBytes > memory.buffer.byteLength) {
      throw new PrismError("PRISM_ENGINE_SCRATCH_TOO_SMALL", `prefixBytes ${prefixBytes} must be in [${KERNEL_RESERVED_BYTES}, memory size ${memory.buffer.byteLength}]`, { prefixBytes });
    }
    this.scratch = new ScratchLayout(KERNEL_RESERVED_BYTES, scratchDims([], this.budget));
    this.batch = new ForwardBatch(this.budget.maxBatchTokens, this.budget.maxSampleRows);
    this.sampleSeqIndex = new Int32Array(this.budget.maxSampleRows);
    this.buffer = memory.buffer;
    this.f32 = new Float32Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    this.u32 = new Uint32Array(this.buffer);
    // Logits rows are views of the device memory: greedy runs the SIMD argmax on them in place.
    this.sampler = new Sampler(0, (logits) => kernels.argmax(logits.byteOffset, logits.length));
  }

  /**
   * Parses the GGUF (kept as the host cache), checks the architecture and tensors, plans the
   * weight layout and grows the scratch layout if needed (must fit in prefixBytes). Cold path.
   */
  async registerModel(src: EngineModelSource): Promise<ModelProfile> {
    let gguf: GgufFile;
    if (src.bytes !== undefined) gguf = parseGguf(src.bytes, src.path ?? src.id);
    else if (src.path !== undefined) gguf = await readGgufFile(src.path);
    else throw new PrismError("PRISM_CONFIG_INVALID", `model '${src.id}' needs a path or bytes`, { model: src.id });
    return this.registerGguf(src.id, gguf);
  }

  /** Registers an already-parsed GGUF (the caller keeps no other copy). */
  registerGguf(id: string, gguf: GgufFile): ModelProfile {
    if (this.models.has(id)) throw new PrismError("PRISM_CONFIG_INVALID", `model '${id}' is already registered`, { model: id });
    const cfg = llamaConfigFromGguf(gguf);
    const layout = planWeightLayout(gguf, cfg);
    const others = [...this.models.values()].map((m) => m.cfg);
    const dims = scratchDims([...others, cfg], this.budget);
    const scratch = new ScratchLayout(KERNEL_RESERVED_BYTES, dims);
    if (scratch.end > this.prefixBytes) {
      throw new PrismError(
        "PRISM_ENGINE_SCRATCH_TOO_SMALL",
        `model '${id}' needs ${scratch.end} bytes of executor prefix (kernel reserve + activations for ${dims.maxBatchTokens} tokens, ` +
          `${dims.maxSampleRows} sample rows, vocab ${dims.vocabSize}); the device memory gives ${this.prefixBytes}. ` +
          `Raise prefixBytes (see requiredPrefixBytes) or lower maxBatchTokens / maxSampleRows.`,
        { model: id, neededBytes: scratch.end, prefixBytes: this.prefixBytes },
      );
    }
    this.scratch = scratch;
    const mid = id as ModelId;
    const entry: ModelEntry = { id: mid, gguf, cfg, layout, profile: profileOf(mid, cfg, layout), ptrs: new ModelPointers(cfg, layout), regionOffset: -1 };
    this.models.set(id, entry);
    return entry.profile;
  }

  profile(modelId: string): ModelProfile {
    return this.entry(modelId).profile;
  }
  config(modelId: string): LlamaConfig {
    return this.entry(modelId).cfg;
  }
  /** The host cache (parsed GGUF) of a registered model, e.g. for its tokenizer. */
  gguf(modelId: string): GgufFile {
    return this.entry(modelId).gguf;
  }
  isLoaded(modelId: string): boolean {
    return (this.models.get(modelId)?.regionOffset ?? -1) >= 0;
  }
  modelIds(): string[] {
    return [...this.models.keys()];
  }

  private entry(modelId: string): ModelEntry {
    const e = this.models.get(modelId);
    if (e === undefined) throw new PrismError("PRISM_ENGINE_NOT_LOADED", `model '${modelId}' is not registered on this executor`, { model: modelId });
    return e;
  }

  async loadWeights(modelId: ModelId, byteOffset: number): Promise<{ readonly durationMs: number }> {
    const t0 = performance.now();
    const e = this.entry(modelId);
    this.checkRegion(e, byteOffset);
    copyWeights(this.memory, byteOffset, e.layout, e.gguf);
    e.regionOffset = byteOffset;
    e.ptrs.repoint(byteOffset);
    return { durationMs: performance.now() - t0 };
  }

  unloadWeights(modelId: ModelId): void {
    this.entry(modelId).regionOffset = -1;
  }

  moveWeights(modelId: ModelId, newByteOffset: number): void {
    const e = this.entry(modelId);
    this.checkRegion(e, newByteOffset);
    e.regionOffset = newByteOffset;
    e.ptrs.repoint(newByteOffset);
  }

  private checkRegion(e: ModelEntry, byteOffset: number): void {
    if (!Number.isSafeInteger(byteOffset) || byteOffset % REGION_ALIGN_BYTES !== 0 || byteOffset < this.prefixBytes ||
      byteOffset + e.layout.bytes > this.memory.buffer.byteLength) {
      throw new PrismError("PRISM_INTERNAL", `weight region of '${e.id}' at ${byteOffset} (+${e.layout.bytes} bytes) is misaligned or outside [prefixBytes ${this.prefixBytes}, ${this.memory.buffer.byteLength})`, {
        model: e.id,
        byteOffset,
      });
    }
  }

  async execute(plan: StepPlan): Promise<StepResult> {
    const t0 = performance.now();
    if (this.closed) throw new PrismError("PRISM_SHUTTING_DOWN", "executor is closed");
    this.syncViews();
    const seqs = plan.seqs;
    let numSampled = 0;
    for (let i = 0; i < seqs.length; i++) {
      this.validateSeq(seqs[i]!);
      if (seqs[i]!.sample) numSampled++;
    }
    const sampled = new Array<SampledToken>(numSampled);
    if (this.done.length < seqs.length) {
      this.done = new Uint8Array(seqs.length * 2);
      this.slotOf = new Int32Array(seqs.length * 2);
    }
    const done = this.done;
    // Every group's budget is checked before the first forward runs, so a rejected plan writes no KV.
    done.fill(0, 0, seqs.length);
    for (let first = 0; first < seqs.length; first++) {
      if (done[first] === 1) continue;
      this.checkBudget(plan, seqs[first]!.modelId, first, done);
    }
    let slot = 0;
    for (let i = 0; i < seqs.length; i++) this.slotOf[i] = seqs[i]!.sample ? slot++ : -1;
    done.fill(0, 0, seqs.length);
    for (let first = 0; first < seqs.length; first++) {
      if (done[first] === 1) continue;
      const entry = this.models.get(seqs[first]!.modelId)!;
      this.fillBatch(plan, entry, first, done);
      this.runGroup(plan, entry, sampled);
    }
    return { stepIndex: plan.stepIndex, computeMs: performance.now() - t0, sampled };
  }

  /** Throws (changing nothing) when a sequence step cannot run safely. */
  private validateSeq(s: SeqStep): void {
    const e = this.models.get(s.modelId);
    if (e === undefined || e.regionOffset < 0) {
      throw new PrismError("PRISM_ENGINE_NOT_LOADED", `model '${s.modelId}' is not loaded on this executor`, { model: s.modelId, requestId: s.requestId });
    }
    const cfg = e.cfg;
    const n = s.tokens.length;
    if (n === 0) throw new PrismError("PRISM_ENGINE_BAD_PLAN", `request ${s.requestId}: a step must feed at least one token`, { requestId: s.requestId });
    if (!Number.isSafeInteger(s.startPos) || s.startPos < 0) {
      throw new PrismError("PRISM_ENGINE_BAD_PLAN", `request ${s.requestId}: startPos ${s.startPos} is not a non-negative integer`, { requestId: s.requestId });
    }
    const endPos = s.startPos + n;
    if (endPos > cfg.contextLength) {
      throw new PrismError("PRISM_PROMPT_TOO_LONG", `request ${s.requestId}: ${endPos} tokens exceed the context length ${cfg.contextLength} of model '${s.modelId}'`, {
        requestId: s.requestId,
        numTokens: endPos,
        maxContextTokens: cfg.contextLength,
      });
    }
    const vocab = cfg.vocabSize;
    for (let j = 0; j < n; j++) {
      const t = s.tokens[j]!;
      if (!(t >= 0 && t < vocab)) {
        throw new PrismError("PRISM_TOKEN_OUT_OF_RANGE", `request ${s.requestId}: token id ${t} at position ${s.startPos + j} is outside the vocabulary [0, ${vocab}) of '${s.modelId}'`, {
          requestId: s.requestId,
          token: t,
        });
      }
    }
    if (!Number.isSafeInteger(s.blockTokens) || s.blockTokens <= 0) {
      throw new PrismError("PRISM_ENGINE_BAD_PLAN", `request ${s.requestId}: blockTokens ${s.blockTokens} must be a positive integer`, { requestId: s.requestId });
    }
    const numBlocks = Math.ceil(endPos / s.blockTokens);
    if (s.blockOffsets.length < numBlocks) {
      throw new PrismError("PRISM_ENGINE_BAD_PLAN", `request ${s.requestId}: ${s.blockOffsets.length} KV blocks cannot hold ${endPos} positions (${s.blockTokens} per block)`, {
        requestId: s.requestId,
      });
    }
    const blockBytes = s.blockTokens * cfg.numLayers * e.profile.kvBytesPerTokenPerLayer;
    const limit = this.memory.buffer.byteLength - blockBytes;
    for (let b = 0; b < numBlocks; b++) {
      const off = s.blockOffsets[b]!;
      if (off < this.prefixBytes || off > limit || (off & 3) !== 0) {
        throw new PrismError("PRISM_ENGINE_BAD_PLAN", `request ${s.requestId}: KV block ${b} at byte ${off} (+${blockBytes}) lies outside the device pages or is misaligned`, {
          requestId: s.requestId,
        });
      }
    }
    if (s.sample) {
      validateSampling(s.sampling);
      if (!Number.isSafeInteger(s.outputIndex) || s.outputIndex < 0) {
        throw new PrismError("PRISM_ENGINE_BAD_PLAN", `request ${s.requestId}: outputIndex ${s.outputIndex} must be a non-negative integer`, { requestId: s.requestId });
      }
    }
  }

  /** Throws PRISM_ENGINE_BATCH_TOO_LARGE when the seqs of `modelId` exceed the step budget; marks them in `done`. */
  private checkBudget(plan: StepPlan, modelId: ModelId, first: number, done: Uint8Array): void {
    const seqs = plan.seqs;
    let numRows = 0;
    let numSample = 0;
    let numEntries = 0;
    for (let i = first; i < seqs.length; i++) {
      const s = seqs[i]!;
      if (s.modelId !== modelId) continue;
      done[i] = 1;
      numRows += s.tokens.length;
      numEntries += Math.ceil((s.startPos + s.tokens.length) / s.blockTokens);
      if (s.sample) numSample++;
    }
    const b = this.budget;
    if (numRows > b.maxBatchTokens || numSample > b.maxSampleRows || numEntries > b.maxBlockEntries) {
      throw new PrismError(
        "PRISM_ENGINE_BATCH_TOO_LARGE",
        `step ${plan.stepIndex}: model '${modelId}' has ${numRows} tokens, ${numSample} sampling sequences and ${numEntries} block-table entries; ` +
          `the executor budget is ${b.maxBatchTokens} / ${b.maxSampleRows} / ${b.maxBlockEntries}`,
        { model: modelId, numRows, numSample, numEntries },
      );
    }
  }

  /**
   * Flattens the seqs of `entry`'s model (from plan index `first` on) into this.batch and copies
   * their block tables and positions into the scratch area; marks them in `done`.
   */
  private fillBatch(plan: StepPlan, entry: ModelEntry, first: number, done: Uint8Array): void {
    const seqs = plan.seqs;
    const batch = this.batch;
    const scratch = this.scratch;
    let row = 0;
    let seqCount = 0;
    let sampleCount = 0;
    let tableEntry = 0;
    for (let i = first; i < seqs.length; i++) {
      const s = seqs[i]!;
      if (s.modelId !== entry.id) continue;
      done[i] = 1;
      const si = seqCount++;
      const n = s.tokens.length;
      const blocks = Math.ceil((s.startPos + n) / s.blockTokens);
      const tablePtr = scratch.blockTables + tableEntry * 4;
      this.u32.set(s.blockOffsets.subarray(0, blocks), tablePtr >> 2);
      tableEntry += blocks;
      batch.seqTablePtr[si] = tablePtr;
      batch.seqBlockTokens[si] = s.blockTokens;
      for (let j = 0; j < n; j++) {
        batch.tokens[row] = s.tokens[j]!;
        batch.positions[row] = s.startPos + j;
        batch.rowSeq[row] = si;
        batch.rowTablePtr[row] = tablePtr;
        batch.rowBlockTokens[row] = s.blockTokens;
        row++;
      }
      if (s.sample) {
        batch.sampleRows[sampleCount] = row - 1;
        this.sampleSeqIndex[sampleCount] = i;
        sampleCount++;
      }
    }
    batch.numRows = row;
    batch.numSeqs = seqCount;
    batch.numSampleRows = sampleCount;
    this.i32.set(batch.positions.subarray(0, row), scratch.positions >> 2);
    this.u32.set(batch.rowTablePtr.subarray(0, row), scratch.rowTables >> 2);
    this.i32.set(batch.rowBlockTokens.subarray(0, row), scratch.rowBlockTokens >> 2);
  }

  private runGroup(plan: StepPlan, entry: ModelEntry, sampled: SampledToken[]): void {
    forward(this.kernels, entry.ptrs, this.batch, this.scratch);
    const vocab = entry.cfg.vocabSize;
    const seqs = plan.seqs;
    for (let j = 0; j < this.batch.numSampleRows; j++) {
      const i = this.sampleSeqIndex[j]!;
      const s = seqs[i]!;
      const base = (this.scratch.logits >> 2) + j * vocab;
      const logits = this.f32.subarray(base, base + vocab);
      if (this.logitsHook !== null) this.logitsHook(s.requestId, s.modelId, logits);
      sampled[this.slotOf[i]!] = this.sampler.sample(s.requestId, logits, s.sampling, s.outputIndex, s.penaltyTokens);
    }
  }

  private syncViews(): void {
    if (this.memory.buffer === this.buffer) return;
    this.buffer = this.memory.buffer;
    this.f32 = new Float32Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    this.u32 = new Uint32Array(this.buffer);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const e of this.models.values()) e.regionOffset = -1;
    await this.releaseKernels();
  }
}

/**
 * Creates the executor and registers `opts.models`. JSON-able options plus the memory, so the worker
 * runtime can call it inside a worker thread with the shared WebAssembly.Memory.
 */
export async function createEngineExecutor(opts: EngineExecutorOptions): Promise<EngineExecutor> {
  const base = opts.kernels === "ts" ? createTsKernels(opts.memory) : await createWasmKernels(opts.memory);
  let ex: EngineExecutor;
  if ((opts.helperThreads ?? 0) > 0) {
    const pk = await createParallelKernels(base, opts.memory, {
      helperThreads: 1,
      ...(opts.minParallelMacs !== undefined ? { minMacs: opts.minParallelMacs } : {}),
    });
    ex = new EngineExecutor(opts.memory, opts.prefixBytes, pk, opts, () => pk.close());
  } else {
    ex = new EngineExecutor(opts.memory, opts.prefixBytes, base, opts);
  }
  try {
    for (const m of opts.models ?? []) await ex.registerModel(m);
  } catch (e) {
    await ex.close();
    throw e;
  }
  return ex;
}
