/**
 * Arrival processes. Each function appends arrival times (seconds, increasing) for one model to `out`.
 */
import type { Rng } from "../../core/rng.ts";
import { gamma, gammaInterArrival, stochasticRound, weibull } from "../samplers.ts";
import type { WindowPattern } from "../sources/servegen.ts";

/**
 * Piecewise-constant rate multiplier e(t) with mean 1 over [0, durationS): segment j covers
 * [j·segmentS, (j+1)·segmentS) with multiplier `levels[j]`.
 */
export interface Envelope {
  readonly segmentS: number;
  readonly levels: Float64Array;
}

/**
 * Renewal process with inter-arrival Gamma(rate, CV) (CV = 1: Poisson) on [0, durationS). With an envelope the
 * process runs in operational time τ = ∫e and is mapped back (time rescaling), so the local rate is
 * rate·e(t) and the CV of the stationary pieces is kept.
 */
export function renewalArrivals(rng: Rng, ratePerS: number, cv: number, durationS: number, out: number[], envelope?: Envelope): void {
  if (!(ratePerS > 0) || !(durationS > 0)) return;
  // start in a stationary state: the first arrival after a random phase of a gap (equilibrium renewal)
  let tau = gammaInterArrival(rng, ratePerS, cv) * rng.next();
  const horizon = envelope ? cumulativeIntensity(envelope, durationS) : durationS;
  let seg = 0;
  let segTau0 = 0;
  while (tau < horizon) {
    if (!envelope) out.push(tau);
    else {
      // invert τ(t) = ∫0^t e: walk segments (arrivals are increasing so the cursor only moves forward)
      for (;;) {
        const lvl = envelope.levels[seg] ?? 0;
        const segTau = lvl * envelope.segmentS;
        if (tau < segTau0 + segTau || seg >= envelope.levels.length - 1) {
          const t = seg * envelope.segmentS + (lvl > 0 ? (tau - segTau0) / lvl : 0);
          if (t < durationS) out.push(t);
          break;
        }
        segTau0 += segTau;
        seg++;
      }
    }
    tau += gammaInterArrival(rng, ratePerS, cv);
  }
}

function cumulativeIntensity(e: Envelope, durationS: number): number {
  let s = 0;
  for (let j = 0; j < e.levels.length; j++) {
    const a = j * e.segmentS;
    if (a >= durationS) break;
    s += e.levels[j]! * (Math.min(durationS, a + e.segmentS) - a);
  }
  return s;
}

/** Envelope from per-window rates (normalised to mean 1 over the windows used). */
export function envelopeFromRates(rates: ArrayLike<number>, segmentS: number): Envelope {
  let sum = 0;
  for (let i = 0; i < rates.length; i++) sum += rates[i]!;
  const m = sum / rates.length;
  const levels = new Float64Array(rates.length);
  for (let i = 0; i < rates.length; i++) levels[i] = m > 0 ? rates[i]! / m : 1;
  return { segmentS, levels };
}

/**
 * ServeGen's construction for one window: stochastic-round(rate·windowS) arrivals whose gaps follow the
 * window's fitted law, rescaled to fill the window. Upstream draws ⌈rate·Δ⌉ gaps; rounding up inflates low
 * rates (0.001 req/s would get one request per window), so we round stochastically, which keeps the expected
 * count exactly rate·Δ. We draw n+1 gaps and place n arrivals at the first n cumulative sums, so no arrival
 * sits exactly on a window edge.
 */
export function windowArrivals(rng: Rng, pattern: WindowPattern, ratePerS: number, windowStartS: number, windowS: number, gaps: number[], out: number[]): number {
  if (pattern.kind === "idle" || !(ratePerS > 0)) return 0;
  const n = stochasticRound(rng, ratePerS * windowS);
  if (n === 0) return 0;
  gaps.length = 0;
  let sum = 0;
  for (let i = 0; i <= n; i++) {
    const g = pattern.kind === "gamma" ? gamma(rng, pattern.shape, pattern.scale) : weibull(rng, pattern.shape, pattern.scale);
    gaps.push(g);
    sum += g;
  }
  if (!(sum > 0)) {
    // every gap underflowed to 0 (extreme shapes): spread evenly instead
    for (let i = 0; i < n; i++) out.push(windowStartS + ((i + 1) * windowS) / (n + 1));
    return n;
  }
  const k = windowS / sum;
  let c = 0;
  for (let i = 0; i < n; i++) {
    c += gaps[i]!;
    out.push(windowStartS + c * k);
  }
  return n;
}

/**
 * Prism/S-LoRA on/off phases: a request at time t of an on/off model is dropped when
 * ((t + phaseS) mod periodS) < offFraction·periodS.
 */
export function isOff(t: number, periodS: number, offFraction: number, phaseS: number): boolean {
  const x = (t + phaseS) % periodS;
  return x < offFraction * periodS;
}

/**
 * Replay a recorded arrival sequence from `offsetS`, mapped t' = (t − offsetS)·timeScale, cycling through the
 * source (lap after lap, each lap one source span plus one mean gap long) until t' reaches durationS.
 * Calls `emit(sourceIndex, tOut)` in increasing tOut.
 */
export function cyclicReplay(
  arrivalS: Float64Array,
  offsetS: number,
  timeScale: number,
  durationS: number,
  emit: (sourceIndex: number, tOutS: number) => void,
): void {
  const n = arrivalS.length;
  if (n === 0) return;
  const first = arrivalS[0]!;
  const span = arrivalS[n - 1]! - first;
  const cycle = n > 1 ? (span * n) / (n - 1) : 1;
  const off = ((((offsetS - first) % cycle) + cycle) % cycle) + first;
  // first index at or after the offset
  let i = 0;
  while (i < n && arrivalS[i]! < off) i++;
  let base = -off; // source time + base = time since offset
  for (;;) {
    if (i >= n) {
      i = 0;
      base += cycle;
    }
    const tOut = (arrivalS[i]! + base) * timeScale;
    if (tOut >= durationS) return;
    emit(i, tOut);
    i++;
  }
}
