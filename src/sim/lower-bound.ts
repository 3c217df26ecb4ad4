/**
 * Fluid lower bound on the devices a workload needs (no policy can do better, up to the window
 * approximation): cut time into windows of `windowS`; in each window,
 *   compute bound = Σ_requests arriving in it of their device time / windowS
 *       device time of a request = tp × Σ over its tokens of max(FLOP time, KV-read time), i.e. perfect
 *       batching (weights streamed for free), no step overhead, no queueing;
 *   memory bound  = (Σ weights of the models with an arrival in the window
 *                    + time-averaged KV of those requests) / usable device memory
 *       a request holds (input + output/2) tokens of KV on average for its dedicated service time;
 * and the bound is max over windows of max(compute, memory), rounded up, and at least the largest TP
 * degree. Window choice: 10 s by default — models idle for ≥ 10 s are where time-sharing pays (Prism:
 * "> 60% of models have > 1,000 idle periods of > 10 s", prism.md §1); a model with an arrival in the
 * window must be resident at some point in it, and activation (≥ 0.3 s) is a large share of a TTFT SLO,
 * so the fluid model charges its weights for the whole window.
 */
import type { Trace } from "../workload/trace-format.ts";
import type { CostModel, ModelCost } from "./cost-model.ts";
import { kvBytesPerTokenPerLayer, weightBytes } from "./catalog.ts";

export interface LowerBoundResult {
  /** ceil(max(computeDevices, memoryDevices, max tp)). */
  readonly devices: number;
  /** Peak over windows of compute demand, in devices (fractional). */
  readonly computeDevices: number;
  /** Peak over windows of memory demand, in devices (fractional). */
  readonly memoryDevices: number;
  readonly windowS: number;
  /** Start of the window that set the bound (seconds). */
  readonly peakWindowStartS: number;
  /** Mean over windows of the compute and memory demand, in devices. */
  readonly meanComputeDevices: number;
  readonly meanMemoryDevices: number;
}

export interface LowerBoundOptions {
  readonly windowS?: number;
  /** Fraction of device memory no KV may use (kvcached headroom, default 0.05). */
  readonly headroomFraction?: number;
}

/**
 * @param costs  ModelCost for each trace model, indexed like trace.modelNames.
 */
export function fluidLowerBound(trace: Trace, costs: readonly ModelCost[], costModel: CostModel, opts: LowerBoundOptions = {}): LowerBoundResult {
  const windowS = opts.windowS ?? 10;
  const usableBytes = costModel.device.memBytes * (1 - (opts.headroomFraction ?? 0.05));
  const numModels = trace.modelNames.length;
  let maxTp = 1;
  const wBytes = new Float64Array(numModels);
  const kvPerToken = new Float64Array(numModels);
  for (let m = 0; m < numModels; m++) {
    const c = costs[m]!;
    maxTp = Math.max(maxTp, c.tp);
    wBytes[m] = weightBytes(c.arch);
    kvPerToken[m] = kvBytesPerTokenPerLayer(c.arch) * c.arch.numLayers;
  }
  const activeStamp = new Int32Array(numModels).fill(-1);
  let peakCompute = 0;
  let peakMemory = 0;
  let peakStart = 0;
  let peakValue = -1;
  let sumCompute = 0;
  let sumMemory = 0;
  let numWindows = 0;
  const n = trace.numRequests;
  const lastS = n > 0 ? trace.arrivalS[n - 1]! : 0;
  let i = 0;
  for (let w = 0; w * windowS <= lastS; w++) {
    const endS = (w + 1) * windowS;
    let computeMs = 0;
    let weights = 0;
    let kvByteMs = 0;
    for (; i < n && trace.arrivalS[i]! < endS; i++) {
      const m = trace.modelIndex[i]!;
      const c = costs[m]!;
      const inTok = trace.inputTokens[i]!;
      const outTok = trace.outputTokens[i]!;
      computeMs += c.tp * requestDeviceMs(c, inTok, outTok);
      if (activeStamp[m] !== w) {
        activeStamp[m] = w;
        weights += wBytes[m]!;
      }
      const lifeMs = costModel.prefillMs(c.modelId, Math.max(1, inTok)) + Math.max(0, outTok - 1) * costModel.decodeMs(c.modelId, 1, inTok + outTok / 2);
      kvByteMs += (inTok + outTok / 2) * kvPerToken[m]! * lifeMs;
    }
    const computeDev = computeMs / (windowS * 1000);
    const memoryDev = (weights + kvByteMs / (windowS * 1000)) / usableBytes;
    sumCompute += computeDev;
    sumMemory += memoryDev;
    numWindows++;
    if (computeDev > peakCompute) peakCompute = computeDev;
    if (memoryDev > peakMemory) peakMemory = memoryDev;
    const v = Math.max(computeDev, memoryDev);
    if (v > peakValue) {
      peakValue = v;
      peakStart = w * windowS;
    }
  }
  return {
    devices: Math.max(maxTp, Math.ceil(Math.max(peakCompute, peakMemory) - 1e-9)),
    computeDevices: peakCompute,
    memoryDevices: peakMemory,
    windowS,
    peakWindowStartS: peakStart,
    meanComputeDevices: numWindows > 0 ? sumCompute / numWindows : 0,
    meanMemoryDevices: numWindows > 0 ? sumMemory / numWindows : 0,
  };
}

/** Per-rank device time of one request under perfect batching: Σ tokens max(FLOP ms, KV-read ms). */
export function requestDeviceMs(c: ModelCost, inputTokens: number, outputTokens: number): number {
  // prefill: compute-bound GEMMs + causal attention over the prompt
  const prefillFlops = inputTokens * c.msPerTokenFlops + ((inputTokens * (inputTokens + 1)) / 2) * c.msPerAttnPair;
  const prefillKv = inputTokens * c.msPerKvToken;
  let ms = Math.max(prefillFlops, prefillKv);
  // decode: each of outputTokens−1 steps attends over a growing context (sum in closed form)
  const steps = Math.max(0, outputTokens - 1);
  if (steps > 0) {
    const ctxSum = steps * inputTokens + (steps * (steps + 1)) / 2;
    const flops = steps * c.msPerTokenFlops + ctxSum * c.msPerAttnPair;
    const kv = ctxSum * c.msPerKvToken;
    ms += Math.max(flops, kv);
  }
  return ms;
}
