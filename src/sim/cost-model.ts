/**
 * Roofline cost model of one device step, and the Executor the simulator (and parity tests) plug in
 * instead of a real engine.
 *
 * Per model present in a step:
 *   computeMs = (2·params·T + 4·L·H·d·Σ n·(startPos + (n+1)/2)) / tp / (peakFlops·mfu)
 *   memoryMs  = (weightBytes/tp + kvBytesPerToken/tp · Σ (startPos + n)) / (memBw·mbu)
 *   commMs    = tp > 1 ? 2·L·(allReduceLatency + 2·(tp−1)/tp · T·hidden·dtype / peerLink) : 0
 *   busyMs_m  = max(computeMs, memoryMs) + commMs + S·msPerSampledSeq   (the device is busy: GPU work)
 *   groupMs_m = busyMs_m + stepOverheadMs                 (one model alone: + launch/scheduling gaps)
 * and for the step: stepMs = max(Σ_m busyMs_m, max_m groupMs_m).
 * Models co-located on a device run as separate engines (Prism: one engine process per model): their
 * GPU work serialises (Σ busy), but one engine's CPU-side overhead (scheduler, kernel launches with
 * CUDA graphs off) overlaps the others' GPU work, so a step with k models costs the larger of the
 * serialised GPU time and the slowest model's own step. With one model: busy + overhead.
 * with T = tokens fed this step, n = tokens of one sequence, S = sequences that sample this step, L layers,
 * H query heads, d head dim. msPerSampledSeq is 0 on GPUs; the CPU engine's per-row classifier and
 * vocabulary pass need it (catalog.ts Efficiency, calibrate.ts).
 * Per request, outside any step: requestOverheadMs (HTTP, tokenisation, admission, the first token's way
 * out) delays the request's arrival at the schedulers and adds to its TTFT; 0 on GPUs.
 * Activation: loadMs = activationStartMs + (weightBytes/tp) / (hostLink·hostLinkEfficiency); the ranks
 * of a TP model load in parallel.
 *
 * Why this form: it is Vidur's roofline reduced to the two terms that dominate LLM serving (weight and
 * KV streaming for decode, GEMM FLOPs for prefill), and it is cheap enough to evaluate per step in the
 * simulator's hot loop (one pass over the plan, no allocation).
 */
import type { Executor, ModelProfile, SampledToken, StepPlan, StepResult } from "../core/records.ts";
import type { ModelId } from "../core/ids.ts";
import { PrismError } from "../core/errors.ts";
import {
  DEVICES,
  efficiencyFor,
  kvBytesPerTokenPerLayer,
  MODELS,
  weightBytes,
  type DeviceSpec,
  type DeviceType,
  type Efficiency,
  type ModelArch,
  type ModelArchId,
} from "./catalog.ts";

/** Precomputed per-(model, device) coefficients; everything the hot loop needs, in ms. */
export interface ModelCost {
  readonly modelId: ModelId;
  readonly arch: ModelArch;
  readonly tp: number;
  /** ms per fed token of linear-layer FLOPs. */
  readonly msPerTokenFlops: number;
  /** ms per (query token × context position) of attention FLOPs. */
  readonly msPerAttnPair: number;
  /** ms to stream the weights once. */
  readonly msWeights: number;
  /** ms to stream one token's KV (all layers, this rank's heads). */
  readonly msPerKvToken: number;
  /** ms of TP all-reduce per step (latency part) and per fed token (bandwidth part). */
  readonly commMsPerStep: number;
  readonly commMsPerToken: number;
  readonly stepOverheadMs: number;
  /** ms per sequence that samples this step (Efficiency.msPerSampledSeq). */
  readonly msPerSampledSeq: number;
  /** Activation (weight load) time, ms. */
  readonly loadMs: number;
  /** Profile handed to the schedulers: per-rank weights and KV (what one device holds). */
  readonly profile: ModelProfile;
  /** The token the cost-model executor "samples" for this model (nonEosToken). */
  readonly sampleToken: number;
}

export interface CostModelOptions {
  readonly deviceType: DeviceType;
  /** Override the device's efficiency constants (calibration, tests). */
  readonly efficiency?: Partial<Efficiency>;
  /** Override the device spec (tests, what-if). */
  readonly device?: Partial<DeviceSpec>;
}

export interface ModelSpecInput {
  readonly id: ModelId;
  readonly arch: ModelArchId;
  /** Tensor-parallel degree (default: the arch's defaultTp). */
  readonly tp?: number;
}

/** A token id the cost-model executor "samples": deterministic, never EOS, inside the vocabulary. */
export function nonEosToken(profile: ModelProfile): number {
  for (let t = 1; t < profile.vocabSize; t++) if (!profile.eosTokenIds.includes(t)) return t;
  return 0;
}

export class CostModel {
  readonly deviceType: DeviceType;
  readonly device: DeviceSpec;
  readonly eff: Efficiency;
  private readonly costs = new Map<ModelId, ModelCost>();
  // scratch for stepMs: per-model accumulators, indexed by a small per-step slot number
  private slotCost: ModelCost[] = [];
  private slotTokens: Float64Array<ArrayBuffer> = new Float64Array(16);
  private slotPairs: Float64Array<ArrayBuffer> = new Float64Array(16);
  private slotKv: Float64Array<ArrayBuffer> = new Float64Array(16);
  private slotSampled: Float64Array<ArrayBuffer> = new Float64Array(16);
  /** Device-busy time of the last stepMs (Σ busy over models), for utilisation. */
  lastBusyMs = 0;

  constructor(opts: CostModelOptions) {
    this.deviceType = opts.deviceType;
    this.device = { ...DEVICES[opts.deviceType], ...(opts.device ?? {}) };
    this.eff = { ...efficiencyFor(opts.deviceType), ...(opts.efficiency ?? {}) };
  }

  /** Register a model; returns its coefficients (idempotent for the same id and arch). */
  addModel(spec: ModelSpecInput): ModelCost {
    const existing = this.costs.get(spec.id);
    if (existing !== undefined) return existing;
    const c = modelCost(spec, this.device, this.eff);
    this.costs.set(spec.id, c);
    return c;
  }

  cost(id: ModelId): ModelCost {
    const c = this.costs.get(id);
    if (c === undefined) throw new PrismError("PRISM_SIM_INVALID", `cost model: model '${id}' was not registered`, { modelId: id });
    return c;
  }

  models(): ModelCost[] {
    return [...this.costs.values()];
  }

  /** Modelled duration of one step, ms. One pass over plan.seqs; allocates nothing in steady state. */
  stepMs(plan: StepPlan): number {
    return this.stepMsSampling(plan, null);
  }

  /**
   * stepMs, and in the same pass one sampled token per sampling seq into `out` (the executor's
   * reusable records); returns the duration, `out.count` tells how many were written.
   */
  stepMsSampling(plan: StepPlan, out: SampledSink | null): number {
    const seqs = plan.seqs;
    let numSlots = 0;
    const slotCost = this.slotCost;
    // Locals (re-read after growSlots): the loop runs once per planned sequence, ~10^8 times an hour.
    let tokens = this.slotTokens;
    let pairs = this.slotPairs;
    let kv = this.slotKv;
    let sampled = this.slotSampled;
    let lastModelId: ModelId | null = null;
    let k = 0;
    for (let i = 0; i < seqs.length; i++) {
      const s = seqs[i]!;
      const modelId = s.modelId;
      if (modelId !== lastModelId) {
        // find (or open) this model's slot; steps hold few models, so a linear scan beats a Map
        k = 0;
        while (k < numSlots && slotCost[k]!.modelId !== modelId) k++;
        if (k === numSlots) {
          if (k === tokens.length) {
            this.growSlots();
            tokens = this.slotTokens;
            pairs = this.slotPairs;
            kv = this.slotKv;
            sampled = this.slotSampled;
          }
          slotCost[k] = this.cost(modelId);
          tokens[k] = 0;
          pairs[k] = 0;
          kv[k] = 0;
          sampled[k] = 0;
          numSlots++;
        }
        lastModelId = modelId;
      }
      if (s.sample) {
        sampled[k]! += 1;
        if (out !== null) out.put(s.requestId, slotCost[k]!.sampleToken);
      }
      const n = s.tokens.length;
      const startPos = s.startPos;
      tokens[k]! += n;
      pairs[k]! += n * (startPos + (n + 1) / 2);
      kv[k]! += startPos + n;
    }
    let sumBusy = 0;
    let maxGroup = 0;
    for (let k = 0; k < numSlots; k++) {
      const c = slotCost[k]!;
      const busy = this.busyMs(c, tokens[k]!, pairs[k]!, kv[k]!, sampled[k]!);
      sumBusy += busy;
      if (busy + c.stepOverheadMs > maxGroup) maxGroup = busy + c.stepOverheadMs;
    }
    this.lastBusyMs = sumBusy;
    return sumBusy > maxGroup ? sumBusy : maxGroup;
  }

  /** Device-busy (GPU) time of one model's share of a step, without the fixed overhead. */
  busyMs(c: ModelCost, numTokens: number, attnPairs: number, kvTokens: number, sampledSeqs = 0): number {
    const computeMs = numTokens * c.msPerTokenFlops + attnPairs * c.msPerAttnPair;
    const memoryMs = c.msWeights + kvTokens * c.msPerKvToken;
    const commMs = c.tp > 1 ? c.commMsPerStep + numTokens * c.commMsPerToken : 0;
    // the sampling term is added only when present, so a device without it (GPUs) keeps bit-identical times
    const roofMs = (computeMs > memoryMs ? computeMs : memoryMs) + commMs;
    return sampledSeqs > 0 && c.msPerSampledSeq > 0 ? roofMs + sampledSeqs * c.msPerSampledSeq : roofMs;
  }

  /** Step time of one model alone, from its aggregates (see the header formula). */
  groupMs(c: ModelCost, numTokens: number, attnPairs: number, kvTokens: number, sampledSeqs = 0): number {
    return this.busyMs(c, numTokens, attnPairs, kvTokens, sampledSeqs) + c.stepOverheadMs;
  }

  /**
   * A prefill of `numTokens` prompt tokens in one step, alone on the device (positions [startPos, startPos+n));
   * `sample` = this chunk ends the prompt and samples the first output token.
   */
  prefillMs(id: ModelId, numTokens: number, startPos = 0, sample = true): number {
    return this.groupMs(this.cost(id), numTokens, numTokens * (startPos + (numTokens + 1) / 2), startPos + numTokens, sample ? 1 : 0);
  }

  /** One decode step of `batch` sequences whose contexts total `contextTokens` (before this step). */
  decodeMs(id: ModelId, batch: number, contextTokens: number): number {
    return this.groupMs(this.cost(id), batch, contextTokens + batch, contextTokens + batch, batch);
  }

  loadMs(id: ModelId): number {
    return this.cost(id).loadMs;
  }

  private growSlots(): void {
    const n = this.slotTokens.length * 2;
    const grow = (a: Float64Array): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    this.slotTokens = grow(this.slotTokens);
    this.slotPairs = grow(this.slotPairs);
    this.slotKv = grow(this.slotKv);
    this.slotSampled = grow(this.slotSampled);
  }
}

export function modelCost(spec: ModelSpecInput, device: DeviceSpec, eff: Efficiency): ModelCost {
  const arch: ModelArch = MODELS[spec.arch];
  const tp = spec.tp ?? arch.defaultTp;
  if (!Number.isInteger(tp) || tp < 1) throw new PrismError("PRISM_SIM_INVALID", `model '${spec.id}': tp must be an integer >= 1, got ${tp}`, { modelId: spec.id, tp });
  const flopsPerMs = (device.peakFlops * eff.mfu) / 1000;
  const bytesPerMs = (device.memBwBytesPerS * eff.mbu) / 1000;
  const wBytesRank = weightBytes(arch) / tp;
  const kvLayerRank = kvBytesPerTokenPerLayer(arch) / tp;
  const kvTokenRank = kvLayerRank * arch.numLayers;
  const peerBytesPerMs = device.peerLinkBytesPerS / 1000;
  const hostBytesPerMs = (device.hostLinkBytesPerS * eff.hostLinkEfficiency) / 1000;
  const eos = [arch.vocabSize > 2 ? 2 : 0];
  const profile: ModelProfile = Object.freeze({
    id: spec.id,
    weightBytes: Math.ceil(wBytesRank),
    numLayers: arch.numLayers,
    kvBytesPerTokenPerLayer: Math.ceil(kvLayerRank),
    maxContextTokens: arch.maxContextTokens,
    vocabSize: arch.vocabSize,
    eosTokenIds: Object.freeze(eos),
  });
  return Object.freeze({
    sampleToken: nonEosToken(profile),
    modelId: spec.id,
    arch,
    tp,
    msPerTokenFlops: (2 * arch.params) / tp / flopsPerMs,
    msPerAttnPair: (4 * arch.numLayers * arch.numHeads * arch.headDim) / tp / flopsPerMs,
    msWeights: wBytesRank / bytesPerMs,
    msPerKvToken: kvTokenRank / bytesPerMs,
    commMsPerStep: 2 * arch.numLayers * eff.allReduceLatencyMs,
    commMsPerToken: tp > 1 ? (2 * arch.numLayers * 2 * ((tp - 1) / tp) * arch.hidden * arch.dtypeBytes) / peerBytesPerMs : 0,
    stepOverheadMs: eff.stepOverheadMs,
    msPerSampledSeq: eff.msPerSampledSeq,
    loadMs: eff.activationStartMs + wBytesRank / hostBytesPerMs,
    profile,
  });
}

/**
 * The simulator's executor: steps take the modelled time, every sampled token is the model's
 * `nonEosToken` (so requests run to their trace output length). `executeSync` is what the
 * simulator's loop calls; the async `execute` (for the server-style DeviceLoop in parity tests)
 * resolves with the same record.
 *
 * `executeSync` returns a record whose `sampled` array and entries are REUSED by the next call
 * (the hot loop allocates nothing per step); callers must consume it before the next step.
 */
/** Receives the sampled tokens of a step from CostModel.stepMsSampling. */
export interface SampledSink {
  put(requestId: SampledToken["requestId"], token: number): void;
}

export class CostModelExecutor implements Executor, SampledSink {
  readonly kind = "cost-model";
  readonly pagedKv = true;
  readonly costModel: CostModel;
  private count = 0;
  private readonly pool: MutableSampled[] = [];
  private readonly sampled: MutableSampled[] = [];
  private readonly result: { stepIndex: number; computeMs: number; sampled: readonly SampledToken[] };

  constructor(costModel: CostModel) {
    this.costModel = costModel;
    this.result = { stepIndex: 0, computeMs: 0, sampled: this.sampled };
  }

  /** Modelled step; the returned record is reused by the next call. */
  executeSync(plan: StepPlan): StepResult {
    this.count = 0;
    const ms = this.costModel.stepMsSampling(plan, this);
    this.sampled.length = this.count;
    this.result.stepIndex = plan.stepIndex;
    this.result.computeMs = ms;
    return this.result;
  }

  /** SampledSink: called by the cost model once per sampling seq, in plan order. */
  put(requestId: SampledToken["requestId"], token: number): void {
    const n = this.count++;
    let e = this.pool[n];
    if (e === undefined) {
      e = { requestId, token, logprob: Number.NaN, topTokens: null, topLogprobs: null };
      this.pool.push(e);
    } else {
      e.requestId = requestId;
      e.token = token;
    }
    this.sampled[n] = e;
  }

  loadWeights(modelId: ModelId, _byteOffset: number): Promise<{ readonly durationMs: number }> {
    return Promise.resolve({ durationMs: this.costModel.loadMs(modelId) });
  }
  unloadWeights(_modelId: ModelId): void {}
  moveWeights(_modelId: ModelId, _newByteOffset: number): void {}

  /** Async form (fresh record per call, safe to hold). */
  execute(plan: StepPlan): Promise<StepResult> {
    const r = this.executeSync(plan);
    return Promise.resolve({
      stepIndex: r.stepIndex,
      computeMs: r.computeMs,
      sampled: r.sampled.map((s) => ({ ...s })),
    });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

interface MutableSampled {
  requestId: SampledToken["requestId"];
  token: number;
  logprob: number;
  topTokens: Int32Array | null;
  topLogprobs: Float32Array | null;
}

/** Analytic latency of one request alone on an idle device (no queueing), for calibration checks. */
export interface LatencyPrediction {
  readonly ttftMs: number;
  readonly tpotMs: number;
  /** Modelled activation time if the model must be loaded first (not included in ttftMs). */
  readonly loadMs: number;
}

/**
 * Predict TTFT and TPOT of one request served alone, the way `prism serve` would run it: the prompt
 * in chunks of `prefillChunkTokens` (one step each), then one decode step per output token after the
 * first. Used by the lead to compare against a measured `prism serve` run (see compareLatency).
 */
export function predictServeLatency(args: {
  readonly deviceType: DeviceType;
  readonly arch: ModelArchId;
  readonly promptTokens: number;
  readonly outputTokens: number;
  readonly prefillChunkTokens?: number;
  readonly tp?: number;
  readonly efficiency?: Partial<Efficiency>;
  /** Override the device's effective rates (a fit made on this machine now: calibrate.ts fitDevice). */
  readonly device?: Partial<DeviceSpec>;
}): LatencyPrediction {
  const cm = new CostModel({ deviceType: args.deviceType, ...(args.efficiency ? { efficiency: args.efficiency } : {}), ...(args.device ? { device: args.device } : {}) });
  const id = "m" as ModelId;
  cm.addModel({ id, arch: args.arch, ...(args.tp !== undefined ? { tp: args.tp } : {}) });
  const chunk = Math.max(1, args.prefillChunkTokens ?? args.promptTokens);
  let ttftMs = 0;
  for (let pos = 0; pos < args.promptTokens; pos += chunk) {
    const n = Math.min(chunk, args.promptTokens - pos);
    ttftMs += cm.prefillMs(id, n, pos, pos + n >= args.promptTokens);
  }
  let decodeTotal = 0;
  const steps = Math.max(0, args.outputTokens - 1);
  for (let i = 0; i < steps; i++) decodeTotal += cm.decodeMs(id, 1, args.promptTokens + i);
  return { ttftMs: ttftMs + cm.eff.requestOverheadMs, tpotMs: steps > 0 ? decodeTotal / steps : 0, loadMs: cm.loadMs(id) };
}

/** Relative error of a prediction against a measurement; `withinTolerance` uses |pred − meas| / meas ≤ tol. */
export function compareLatency(
  predicted: { readonly ttftMs: number; readonly tpotMs: number },
  measured: { readonly ttftMs: number; readonly tpotMs: number },
  tolerance = 0.25,
): { ttftRelErr: number; tpotRelErr: number; withinTolerance: boolean } {
  const ttftRelErr = (predicted.ttftMs - measured.ttftMs) / measured.ttftMs;
  const tpotRelErr = (predicted.tpotMs - measured.tpotMs) / measured.tpotMs;
  return { ttftRelErr, tpotRelErr, withinTolerance: Math.abs(ttftRelErr) <= tolerance && Math.abs(tpotRelErr) <= tolerance };
}
