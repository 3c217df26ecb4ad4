/**
 * Token sampling from one row of logits. Called by the executor once per sampling row per step.
 *
 * Pipeline (fixed order, documented because order changes results):
 *   1. penalties over `penaltyTokens` (the tokens generated so far):
 *      repetition (llama.cpp: a seen token's logit is divided by the penalty when > 0, multiplied
 *      when <= 0, once per distinct token), then frequency/presence (OpenAI:
 *      logit -= count × frequencyPenalty + (count > 0) × presencePenalty);
 *   2. temperature = 0 → greedy argmax (lowest id wins ties, like llama.cpp's greedy sampler);
 *   3. otherwise z = logit / temperature, then truncation on z: top-k, then top-p (smallest prefix of
 *      the survivors, most likely first, whose renormalised mass reaches topP), then min-p (keep
 *      p >= minP × p_max); this is vLLM/HF order (temperature before truncation), which is what the
 *      OpenAI-compatible API promises;
 *   4. one uniform draw u = SeededRng(hash(seed, outputIndex)).next() picks from the survivors, so a
 *      recomputed or migrated request samples the same token for the same output index.
 * Logprobs are the log-softmax of z over the whole vocabulary (after penalties and temperature,
 * before truncation); for greedy (temperature 0) they use the temperature-1 distribution of the
 * penalised logits, so the reported numbers stay finite and comparable to OpenAI's.
 *
 * Hot path: scratch arrays are sized to the largest vocabulary seen and reused; top-k is a partial
 * selection (quickselect), top-p pops a heap only as far as the nucleus reaches, top-n logprobs use
 * an insertion list of at most 20. The only allocations per call are the returned record and, when
 * asked for, its two small top-n arrays.
 */
import { SeededRng } from "../../core/rng.ts";
import type { RequestId } from "../../core/ids.ts";
import type { SampledToken, SamplingParams } from "../../core/records.ts";
import { MAX_TOP_LOGPROBS } from "./validate.ts";

export class Sampler {
  private capacity = 0;
  /** Processed logits (penalised, temperature-scaled). */
  private z: Float32Array = new Float32Array(0);
  /** Candidate token ids; [0, numCand) are the survivors. */
  private cand: Int32Array = new Int32Array(0);
  /** Top-p output order (most likely first). */
  private sorted: Int32Array = new Int32Array(0);
  /** Per-token occurrence counts for penalties; all zero between calls. */
  private counts: Int32Array = new Int32Array(0);
  private readonly topIds = new Int32Array(MAX_TOP_LOGPROBS);
  private readonly topVals = new Float64Array(MAX_TOP_LOGPROBS);

  /**
   * @param argmax greedy's scan for logits that need no processing (no penalties, nothing to
   *   report); must return what `argmaxOf` returns. The engine passes its SIMD kernel.
   */
  constructor(vocabSize = 0, private readonly argmax: (logits: Float32Array) => number = argmaxOf) {
    this.ensure(vocabSize);
  }

  private ensure(vocabSize: number): void {
    if (vocabSize <= this.capacity) return;
    this.capacity = vocabSize;
    this.z = new Float32Array(vocabSize);
    this.cand = new Int32Array(vocabSize);
    this.sorted = new Int32Array(vocabSize);
    this.counts = new Int32Array(vocabSize);
  }

  /**
   * Sample from `logits` (length = vocabulary size; not modified). `params` must have passed
   * validateSampling. `penaltyTokens` may be null when no penalty is set; ids outside the
   * vocabulary are ignored.
   */
  sample(
    requestId: RequestId,
    logits: Float32Array,
    params: SamplingParams,
    outputIndex: number,
    penaltyTokens: Int32Array | null,
  ): SampledToken {
    const vocab = logits.length;
    const plainGreedy = params.temperature === 0 && !params.logprobs && params.topLogprobs === 0 &&
      (penaltyTokens === null || penaltyTokens.length === 0 || (params.repetitionPenalty === 1 && params.frequencyPenalty === 0 && params.presencePenalty === 0));
    // The common case (greedy, nothing to report): argmax of the logits as they are, no copy.
    if (plainGreedy) return { requestId, token: this.argmax(logits), logprob: NaN, topTokens: null, topLogprobs: null };
    this.ensure(vocab);
    const z = this.z;
    z.set(logits);
    if (penaltyTokens !== null && penaltyTokens.length > 0) this.applyPenalties(vocab, params, penaltyTokens);

    const greedy = params.temperature === 0;
    if (!greedy && params.temperature !== 1) {
      const invT = 1 / params.temperature;
      for (let i = 0; i < vocab; i++) z[i] = z[i]! * invT;
    }
    let maxZ = -Infinity;
    let argmax = 0;
    for (let i = 0; i < vocab; i++) {
      const v = z[i]!;
      if (v > maxZ) {
        maxZ = v;
        argmax = i;
      }
    }
    const token = greedy ? argmax : this.draw(vocab, params, outputIndex, maxZ);

    const wantLogprobs = params.logprobs || params.topLogprobs > 0;
    if (!wantLogprobs) return { requestId, token, logprob: NaN, topTokens: null, topLogprobs: null };
    let sumExp = 0;
    for (let i = 0; i < vocab; i++) sumExp += Math.exp(z[i]! - maxZ);
    const lse = maxZ + Math.log(sumExp);
    const logprob = z[token]! - lse;
    if (params.topLogprobs === 0) return { requestId, token, logprob, topTokens: null, topLogprobs: null };
    const n = this.topN(vocab, Math.min(params.topLogprobs, vocab));
    const topTokens = new Int32Array(n);
    const topLogprobs = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      topTokens[j] = this.topIds[j]!;
      topLogprobs[j] = this.topVals[j]! - lse;
    }
    return { requestId, token, logprob, topTokens, topLogprobs };
  }

  private applyPenalties(vocab: number, params: SamplingParams, tokens: Int32Array): void {
    const z = this.z;
    const counts = this.counts;
    const rep = params.repetitionPenalty;
    const freq = params.frequencyPenalty;
    const pres = params.presencePenalty;
    if (rep === 1 && freq === 0 && pres === 0) return;
    for (let j = 0; j < tokens.length; j++) {
      const t = tokens[j]!;
      if (t >= 0 && t < vocab) counts[t]!++;
    }
    for (let j = 0; j < tokens.length; j++) {
      const t = tokens[j]!;
      if (t < 0 || t >= vocab) continue;
      const c = counts[t]!;
      if (c === 0) continue; // already applied for this distinct token
      let v = z[t]!;
      if (rep !== 1) v = v <= 0 ? v * rep : v / rep;
      v -= c * freq + pres;
      z[t] = v;
      counts[t] = 0;
    }
  }

  /** Truncate (top-k, top-p, min-p) and draw; returns the token id. */
  private draw(vocab: number, params: SamplingParams, outputIndex: number, maxZ: number): number {
    const z = this.z;
    let cand = this.cand;
    let numCand = vocab;
    for (let i = 0; i < vocab; i++) cand[i] = i;

    if (params.topK > 0 && params.topK < numCand) {
      selectTopK(z, cand, numCand, params.topK);
      numCand = params.topK;
    }
    if (params.topP < 1) {
      let total = 0;
      for (let j = 0; j < numCand; j++) total += Math.exp(z[cand[j]!]! - maxZ);
      const target = params.topP * total;
      heapify(z, cand, numCand);
      const sorted = this.sorted;
      let heapSize = numCand;
      let kept = 0;
      let mass = 0;
      while (heapSize > 0) {
        const top = cand[0]!;
        sorted[kept++] = top;
        mass += Math.exp(z[top]! - maxZ);
        heapSize--;
        cand[0] = cand[heapSize]!;
        siftDown(z, cand, 0, heapSize);
        if (mass >= target) break;
      }
      cand = sorted;
      numCand = kept;
    }
    if (params.minP > 0) {
      // p_i / p_max = exp(z_i − maxZ): the maximum always survives top-k and top-p.
      const threshold = Math.log(params.minP);
      let kept = 0;
      for (let j = 0; j < numCand; j++) {
        const t = cand[j]!;
        if (z[t]! - maxZ >= threshold) cand[kept++] = t;
      }
      numCand = kept;
    }

    let total = 0;
    for (let j = 0; j < numCand; j++) total += Math.exp(z[cand[j]!]! - maxZ);
    const u = drawUniform(params.seed, outputIndex);
    let r = u * total;
    for (let j = 0; j < numCand; j++) {
      const t = cand[j]!;
      r -= Math.exp(z[t]! - maxZ);
      if (r < 0) return t;
    }
    return cand[numCand - 1]!; // rounding left r >= 0 at the end
  }

  /** The n largest entries of z (ties: lower id first) into topIds/topVals, best first. */
  private topN(vocab: number, n: number): number {
    const z = this.z;
    const ids = this.topIds;
    const vals = this.topVals;
    let size = 0;
    for (let i = 0; i < vocab; i++) {
      const v = z[i]!;
      if (size === n && !(v > vals[n - 1]!)) continue;
      let j = size < n ? size++ : n - 1;
      while (j > 0 && vals[j - 1]! < v) {
        vals[j] = vals[j - 1]!;
        ids[j] = ids[j - 1]!;
        j--;
      }
      vals[j] = v;
      ids[j] = i;
    }
    return size;
  }
}

/** a ranks before b: larger value first, lower id on ties (deterministic). */
function before(z: Float32Array, a: number, b: number): boolean {
  const za = z[a]!;
  const zb = z[b]!;
  return za > zb || (za === zb && a < b);
}

/** Reorder cand[0, n) so that cand[0, k) holds the k best (unordered); Hoare quickselect. */
function selectTopK(z: Float32Array, cand: Int32Array, n: number, k: number): void {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = cand[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (before(z, cand[i]!, pivot)) i++;
      while (before(z, pivot, cand[j]!)) j--;
      if (i <= j) {
        const t = cand[i]!;
        cand[i] = cand[j]!;
        cand[j] = t;
        i++;
        j--;
      }
    }
    if (k - 1 <= j) hi = j;
    else if (k - 1 >= i) lo = i;
    else return;
  }
}

function siftDown(z: Float32Array, heap: Int32Array, start: number, size: number): void {
  let i = start;
  const item = heap[i]!;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) break;
    const r = l + 1;
    const c = r < size && before(z, heap[r]!, heap[l]!) ? r : l;
    if (!before(z, heap[c]!, item)) break;
    heap[i] = heap[c]!;
    i = c;
  }
  heap[i] = item;
}

function heapify(z: Float32Array, heap: Int32Array, size: number): void {
  for (let i = (size >>> 1) - 1; i >= 0; i--) siftDown(z, heap, i, size);
}

function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A 32-bit seed that depends only on (seed, outputIndex); all 53 bits of a safe-integer seed count. */
export function sampleSeed(seed: number, outputIndex: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  let h = fmix32(lo ^ 0x9e3779b9);
  h = fmix32(h ^ Math.imul(hi ^ 0x632be5ab, 0x27d4eb2f));
  return fmix32(h ^ Math.imul((outputIndex >>> 0) + 1, 0x9e3779b1));
}

/** The uniform draw in [0, 1) for output index `outputIndex` of a request with `seed`. */
export function drawUniform(seed: number, outputIndex: number): number {
  return new SeededRng(sampleSeed(seed, outputIndex)).next();
}

/** Index of the largest value, the lowest index among equals, NaN never (`sample`'s own scan does the same). */
export function argmaxOf(v: Float32Array): number {
  let max = -Infinity;
  let arg = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (x > max) {
      max = x;
      arg = i;
    }
  }
  return arg;
}
