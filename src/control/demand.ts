/**
 * Per-model demand estimates for the global policies, fed by the router (arrivals) and the device
 * schedulers' result sinks (finishes). Called on every request, so it is typed arrays indexed by the
 * dense model index and allocates nothing.
 *
 * Rates are exponentially decaying event counts: on an event at t the accumulator decays by
 * exp(-(t - tLast)/window) and adds the event's weight; rate(now) = acc·exp(-(now - tLast)/window)/window.
 * For a Poisson stream this is an unbiased rate estimate with an effective window of `window`
 * (Prism's prototype smooths over 30 s; its violation window is 3 s, prism.md §4.2). The accumulator
 * starts at expectedRate × window, so before any arrival the estimate equals the caller's prior and
 * then decays toward what is observed.
 */
import { PrismError } from "../core/errors.ts";
import type { DemandView } from "./types.ts";

export interface DemandOptions {
  readonly numModels: number;
  readonly rateWindowMs: number;
  readonly violationWindowMs: number;
  /** Prior arrival rate per model (req/s), indexed by model; default 0. */
  readonly priorRatesPerS?: ArrayLike<number>;
  /** Prior tokens per request used to seed the token rate (default 0). */
  readonly priorTokensPerRequest?: ArrayLike<number>;
  readonly startMs: number;
}

export class DemandEstimator {
  readonly numModels: number;
  private readonly rateWindowMs: number;
  private readonly violWindowMs: number;
  private readonly arrivalAcc: Float64Array;
  private readonly arrivalAt: Float64Array;
  private readonly tokenAcc: Float64Array;
  private readonly tokenAt: Float64Array;
  /** Σ promptTokens² of arrivals, decayed like the arrival count (prefill interference, prism). */
  private readonly promptSqAcc: Float64Array;
  private readonly violAcc: Float64Array;
  private readonly doneAcc: Float64Array;
  private readonly doneAt: Float64Array;
  private readonly outstandingReqs: Float64Array;
  private readonly outstandingToks: Float64Array;
  private readonly lastArrival: Float64Array;
  private readonly lastFinish: Float64Array;

  constructor(opts: DemandOptions) {
    if (!(opts.rateWindowMs > 0) || !(opts.violationWindowMs > 0)) {
      throw new PrismError("PRISM_CONFIG_INVALID", "demand windows must be > 0 ms", {
        rateWindowMs: opts.rateWindowMs, violationWindowMs: opts.violationWindowMs,
      });
    }
    const n = opts.numModels;
    this.numModels = n;
    this.rateWindowMs = opts.rateWindowMs;
    this.violWindowMs = opts.violationWindowMs;
    this.arrivalAcc = new Float64Array(n);
    this.arrivalAt = new Float64Array(n).fill(opts.startMs);
    this.tokenAcc = new Float64Array(n);
    this.tokenAt = new Float64Array(n).fill(opts.startMs);
    this.promptSqAcc = new Float64Array(n);
    this.violAcc = new Float64Array(n);
    this.doneAcc = new Float64Array(n);
    this.doneAt = new Float64Array(n).fill(opts.startMs);
    this.outstandingReqs = new Float64Array(n);
    this.outstandingToks = new Float64Array(n);
    this.lastArrival = new Float64Array(n).fill(-Infinity);
    this.lastFinish = new Float64Array(n).fill(-Infinity);
    const windowS = opts.rateWindowMs / 1000;
    for (let m = 0; m < n; m++) {
      const r = opts.priorRatesPerS?.[m] ?? 0;
      const tok = opts.priorTokensPerRequest?.[m] ?? 0;
      if (!(r >= 0) || !(tok >= 0)) {
        throw new PrismError("PRISM_CONFIG_INVALID", `expected rate of model #${m} must be >= 0`, { rate: r, tokens: tok });
      }
      this.arrivalAcc[m] = r * windowS;
      this.tokenAcc[m] = r * tok * windowS;
    }
  }

  /** A request for `model` reached the control layer (router). */
  onArrival(model: number, nowMs: number, promptTokens: number): void {
    const dt = nowMs - this.arrivalAt[model]!;
    this.arrivalAcc[model] = decayed(this.arrivalAcc[model]!, dt, this.rateWindowMs) + 1;
    this.promptSqAcc[model] = decayed(this.promptSqAcc[model]!, dt, this.rateWindowMs) + promptTokens * promptTokens;
    this.arrivalAt[model] = Math.max(this.arrivalAt[model]!, nowMs);
    this.addTokens(model, nowMs, promptTokens);
    this.outstandingReqs[model]! += 1;
    this.outstandingToks[model]! += promptTokens;
    this.lastArrival[model] = nowMs;
  }

  /**
   * A request finished. `attained` = it met its SLOs; `promptTokens` must be what onArrival got (it
   * leaves the outstanding work); `outputTokens` count toward the token rate.
   */
  onFinish(model: number, nowMs: number, _ttftMs: number, _tpotMs: number, attained: boolean, promptTokens = 0, outputTokens = 0): void {
    this.addTokens(model, nowMs, outputTokens);
    this.settle(model, nowMs, attained ? 0 : 1, promptTokens);
  }

  /** A request left without finishing (cancelled, rejected, failed): counts as a violation. */
  onDrop(model: number, nowMs: number, promptTokens = 0): void {
    this.settle(model, nowMs, 1, promptTokens);
  }

  /** The client cancelled: the work leaves, but it says nothing about SLOs. */
  onCancel(model: number, nowMs: number, promptTokens = 0): void {
    this.outstandingReqs[model] = Math.max(0, this.outstandingReqs[model]! - 1);
    this.outstandingToks[model] = Math.max(0, this.outstandingToks[model]! - promptTokens);
    this.lastFinish[model] = Math.max(this.lastFinish[model]!, nowMs);
  }

  arrivalRatePerS(model: number, nowMs: number): number {
    return (decayed(this.arrivalAcc[model]!, nowMs - this.arrivalAt[model]!, this.rateWindowMs) * 1000) / this.rateWindowMs;
  }

  /** Σ promptTokens² per second (EWMA over the rate window; no prior). */
  promptSqRatePerS(model: number, nowMs: number): number {
    return (decayed(this.promptSqAcc[model]!, nowMs - this.arrivalAt[model]!, this.rateWindowMs) * 1000) / this.rateWindowMs;
  }

  tokenRatePerS(model: number, nowMs: number): number {
    return (decayed(this.tokenAcc[model]!, nowMs - this.tokenAt[model]!, this.rateWindowMs) * 1000) / this.rateWindowMs;
  }

  violationFraction(model: number, nowMs: number): number {
    const dt = nowMs - this.doneAt[model]!;
    const done = decayed(this.doneAcc[model]!, dt, this.violWindowMs);
    // Below ~one request's worth of recent evidence the fraction says nothing.
    if (done < 1e-3) return 0;
    return decayed(this.violAcc[model]!, dt, this.violWindowMs) / done;
  }

  outstandingRequests(model: number): number {
    return this.outstandingReqs[model]!;
  }

  outstandingTokens(model: number): number {
    return this.outstandingToks[model]!;
  }

  lastArrivalMs(model: number): number {
    return this.lastArrival[model]!;
  }

  lastFinishMs(model: number): number {
    return this.lastFinish[model]!;
  }

  /** A plain record for ClusterState (cold path: once per model per round). */
  view(model: number, nowMs: number): DemandView {
    return {
      arrivalRatePerS: this.arrivalRatePerS(model, nowMs),
      tokenRatePerS: this.tokenRatePerS(model, nowMs),
      promptSqRatePerS: this.promptSqRatePerS(model, nowMs),
      outstandingRequests: this.outstandingReqs[model]!,
      outstandingTokens: this.outstandingToks[model]!,
      violationFraction: this.violationFraction(model, nowMs),
      lastArrivalMs: this.lastArrival[model]!,
    };
  }

  private addTokens(model: number, nowMs: number, numTokens: number): void {
    this.tokenAcc[model] = decayed(this.tokenAcc[model]!, nowMs - this.tokenAt[model]!, this.rateWindowMs) + numTokens;
    this.tokenAt[model] = Math.max(this.tokenAt[model]!, nowMs);
  }

  private settle(model: number, nowMs: number, violated: number, promptTokens: number): void {
    const dt = nowMs - this.doneAt[model]!;
    this.violAcc[model] = decayed(this.violAcc[model]!, dt, this.violWindowMs) + violated;
    this.doneAcc[model] = decayed(this.doneAcc[model]!, dt, this.violWindowMs) + 1;
    this.doneAt[model] = Math.max(this.doneAt[model]!, nowMs);
    // Clamp: a drop for a request the estimator never saw must not make the counters negative.
    this.outstandingReqs[model] = Math.max(0, this.outstandingReqs[model]! - 1);
    this.outstandingToks[model] = Math.max(0, this.outstandingToks[model]! - promptTokens);
    this.lastFinish[model] = nowMs;
  }
}

/** acc·exp(-dt/window); events that arrive out of order (dt < 0) are not decayed. */
function decayed(acc: number, dtMs: number, windowMs: number): number {
  return dtMs > 0 ? acc * Math.exp(-dtMs / windowMs) : acc;
}
