/**
 * One OpenAI request → one or more generations (prompts × n choices) on the backend, with stop strings,
 * incremental detokenisation, logprobs and usage accounted per choice. Transport-agnostic: the routes
 * decide whether events become SSE chunks or one JSON body.
 */
import { PrismError } from "../core/errors.ts";
import type { SamplingParams } from "../core/records.ts";
import type { FinishOutcome, GenerationHandle, RequestTimings, ServedModel, ServingBackend } from "./backend.ts";
import type { GenRequest } from "./openai-request.ts";

export type FinishReason = "stop" | "length";

export interface TokenLogprob {
  readonly token: string;
  readonly logprob: number;
  readonly bytes: number[];
  readonly top: { token: string; logprob: number; bytes: number[] }[];
}

export interface ChoiceEvents {
  /** New text for choice `index` (may be "" when only logprobs advance). */
  onText(index: number, text: string, logprob: TokenLogprob | null): void;
  onChoiceDone(index: number, reason: FinishReason): void;
  /** All choices done (or the request failed/cancelled). */
  onDone(result: GenerationResult): void;
}

export interface GenerationResult {
  readonly error: PrismError | null;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly choices: readonly { text: string; reason: FinishReason | null; logprobs: TokenLogprob[] | null }[];
  readonly timings: readonly (RequestTimings | null)[];
}

const utf8 = new TextEncoder();

/** Longest suffix of `text` that is a proper prefix of some stop string (held back while streaming). */
function holdbackLength(text: string, stops: readonly string[]): number {
  let best = 0;
  for (const s of stops) {
    const max = Math.min(s.length - 1, text.length);
    for (let k = max; k > best; k--) {
      if (text.endsWith(s.slice(0, k))) {
        best = k;
        break;
      }
    }
  }
  return best;
}

class Choice {
  text = "";
  pending = "";
  reason: FinishReason | null = null;
  numTokens = 0;
  done = false;
  handle: GenerationHandle | null = null;
  timings: RequestTimings | null = null;
  readonly logprobs: TokenLogprob[] | null;
  readonly detok: { push(token: number): string; flush(): string };
  constructor(readonly index: number, model: ServedModel, wantLogprobs: boolean, promptTokens: Int32Array) {
    this.detok = model.detokenizer(promptTokens);
    this.logprobs = wantLogprobs ? [] : null;
  }
}

export interface RunOptions {
  readonly defaultMaxTokens: number;
  readonly timeoutMs: number;
  readonly requestTag: string;
  /** Random seed used when the request gives none. */
  readonly fallbackSeed: number;
  /** Injected so tests and the server share one code path. */
  readonly setTimer: (fn: () => void, ms: number) => { clear(): void };
}

export interface RunningGeneration {
  /** Client went away, or the server is shutting down: cancel every choice now. */
  cancel(): void;
}

/** Tokenise every prompt up front so a bad prompt fails before anything is queued. */
export function encodePrompts(req: GenRequest, model: ServedModel): Int32Array[] {
  const out: Int32Array[] = [];
  if (req.kind === "chat") out.push(model.encodeChat(req.messages));
  else {
    for (let i = 0; i < req.prompts.length; i++) {
      const p = req.prompts[i]!;
      if (p.kind === "text") out.push(model.encode(p.text, true));
      else {
        for (const t of p.tokens) {
          if (t >= model.vocabSize) {
            throw new PrismError("PRISM_TOKEN_OUT_OF_RANGE", `prompt token id ${t} is outside the vocabulary of '${model.id}' (size ${model.vocabSize})`, { param: "prompt" });
          }
        }
        out.push(p.tokens);
      }
    }
  }
  for (const toks of out) {
    if (toks.length === 0) throw new PrismError("PRISM_HTTP_INVALID_REQUEST", "the prompt is empty", { param: req.kind === "chat" ? "messages" : "prompt" });
    if (toks.length >= model.contextTokens) {
      throw new PrismError("PRISM_PROMPT_TOO_LONG",
        `This model's maximum context length is ${model.contextTokens} tokens. However, your prompt has ${toks.length} tokens (at least one token must remain for the completion).`,
        { param: req.kind === "chat" ? "messages" : "prompt" });
    }
  }
  return out;
}

export function maxTokensFor(req: GenRequest, model: ServedModel, promptLen: number, defaultMaxTokens: number): number {
  const room = model.contextTokens - promptLen;
  if (req.maxTokens === null) return Math.max(1, Math.min(defaultMaxTokens, room));
  if (req.maxTokens > room) {
    throw new PrismError("PRISM_PROMPT_TOO_LONG",
      `This model's maximum context length is ${model.contextTokens} tokens. However, you requested ${promptLen + req.maxTokens} tokens (${promptLen} in the prompt, ${req.maxTokens} for the completion). Reduce the prompt or max_tokens.`,
      { param: req.kind === "chat" ? "max_completion_tokens" : "max_tokens" });
  }
  return req.maxTokens;
}

export function startGeneration(
  backend: ServingBackend,
  model: ServedModel,
  req: GenRequest,
  prompts: readonly Int32Array[],
  events: ChoiceEvents,
  opts: RunOptions,
): RunningGeneration {
  // Validate every prompt before submitting any (and before any timer), so a bad second prompt never leaves
  // the first one running.
  const maxTokensOf = prompts.map((p) => maxTokensFor(req, model, p.length, opts.defaultMaxTokens));
  const numChoices = prompts.length * req.n;
  const choices: Choice[] = [];
  for (let i = 0; i < numChoices; i++) choices.push(new Choice(i, model, req.logprobs, prompts[Math.floor(i / req.n)]!));
  let promptTokens = 0;
  for (const p of prompts) promptTokens += p.length;
  let remaining = numChoices;
  let failure: PrismError | null = null;
  let finished = false;
  const timer = opts.setTimer(() => {
    failure ??= new PrismError("PRISM_REQUEST_TIMEOUT", `request timed out after ${opts.timeoutMs} ms`);
    cancelAll();
  }, opts.timeoutMs);

  const finishAll = (): void => {
    if (finished) return;
    finished = true;
    timer.clear();
    let completionTokens = 0;
    for (const c of choices) completionTokens += c.numTokens;
    events.onDone({
      error: failure,
      promptTokens,
      completionTokens,
      choices: choices.map((c) => ({ text: c.text, reason: c.reason, logprobs: c.logprobs })),
      timings: choices.map((c) => c.timings),
    });
  };

  const emit = (c: Choice, text: string, lp: TokenLogprob | null): void => {
    c.text += text;
    if (!c.done || text.length > 0 || lp !== null) events.onText(c.index, text, lp);
  };

  /** Append new text; returns true when a stop string ended the choice. */
  const push = (c: Choice, piece: string, lp: TokenLogprob | null, final: boolean): boolean => {
    c.pending += piece;
    if (req.stop.length > 0) {
      let cut = -1;
      for (const s of req.stop) {
        const at = c.pending.indexOf(s);
        if (at >= 0 && (cut < 0 || at < cut)) cut = at;
      }
      if (cut >= 0) {
        emit(c, c.pending.slice(0, cut), lp);
        c.pending = "";
        return true;
      }
      const hold = final ? 0 : holdbackLength(c.pending, req.stop);
      const out = c.pending.slice(0, c.pending.length - hold);
      c.pending = c.pending.slice(c.pending.length - hold);
      if (out.length > 0 || lp !== null) emit(c, out, lp);
      return false;
    }
    const out = c.pending;
    c.pending = "";
    if (out.length > 0 || lp !== null) emit(c, out, lp);
    return false;
  };

  const endChoice = (c: Choice, reason: FinishReason | null): void => {
    if (c.done) return;
    c.done = true;
    c.reason = reason;
    if (reason !== null) events.onChoiceDone(c.index, reason);
  };

  function cancelAll(): void {
    for (const c of choices) c.handle?.cancel();
  }

  const logprobOf = (token: number, logprob: number, topT: Int32Array | null, topL: Float32Array | null): TokenLogprob => {
    const text = model.tokenText(token);
    const top: TokenLogprob["top"] = [];
    if (topT !== null && topL !== null) {
      for (let k = 0; k < topT.length; k++) {
        const t = model.tokenText(topT[k]!);
        top.push({ token: t, logprob: topL[k]!, bytes: Array.from(utf8.encode(t)) });
      }
    }
    return { token: text, logprob, bytes: Array.from(utf8.encode(text)), top };
  };

  for (let i = 0; i < numChoices && failure === null; i++) {
    const c = choices[i]!;
    const promptIdx = Math.floor(i / req.n);
    const promptTokensI = prompts[promptIdx]!;
    const maxTokens = maxTokensOf[promptIdx]!;
    const baseSeed = req.seed ?? opts.fallbackSeed;
    const sampling: SamplingParams = {
      temperature: req.temperature,
      topK: req.topK,
      topP: req.topP,
      minP: req.minP,
      repetitionPenalty: req.repetitionPenalty,
      frequencyPenalty: req.frequencyPenalty,
      presencePenalty: req.presencePenalty,
      // choice i of n gets its own stream, so n>1 gives n different samples yet each is reproducible
      seed: (baseSeed + Math.imul(i % req.n, 0x9e3779b1)) | 0,
      topLogprobs: req.topLogprobs,
      logprobs: req.logprobs,
    };
    const r = backend.generate(
      { model, promptTokens: promptTokensI, maxTokens, sampling, ignoreEos: req.ignoreEos, tag: `${opts.requestTag}/${i}` },
      {
        onToken(token, logprob, topT, topL) {
          if (c.done) return;
          c.numTokens++;
          const lp = c.logprobs !== null ? logprobOf(token, logprob, topT, topL) : null;
          if (lp !== null) c.logprobs!.push(lp);
          if (!req.ignoreEos && model.isEos(token)) {
            if (lp !== null) emit(c, "", lp);
            return;
          }
          const piece = c.detok.push(token);
          if (push(c, piece, lp, false)) {
            endChoice(c, "stop");
            c.handle?.cancel();
          }
        },
        onFinish(outcome: FinishOutcome, timings) {
          c.timings = timings;
          if (!c.done) {
            switch (outcome.kind) {
              case "finished":
                push(c, c.detok.flush(), null, true);
                if (c.pending.length > 0) emit(c, c.pending, null);
                c.pending = "";
                endChoice(c, outcome.reason);
                break;
              case "cancelled":
                endChoice(c, null);
                break;
              case "failed":
                failure ??= outcome.error;
                endChoice(c, null);
                cancelAll();
                break;
            }
          }
          remaining--;
          if (remaining === 0) finishAll();
        },
      },
    );
    if (r.kind === "rejected") {
      failure = r.retryAfterS !== undefined
        ? new PrismError(r.error.code, r.error.message, { ...r.error.details, retryAfterS: r.retryAfterS })
        : r.error;
      // choices never submitted count as done
      remaining -= numChoices - i;
      for (let j = i; j < numChoices; j++) choices[j]!.done = true;
      cancelAll();
      if (remaining === 0) finishAll();
      break;
    }
    c.handle = r.handle;
  }
  return {
    cancel() {
      // every close of a finished stream lands here; an Error (with its stack) for nothing is measurable
      if (finished) return;
      failure ??= new PrismError("PRISM_REQUEST_CANCELLED", "request cancelled");
      cancelAll();
    },
  };
}
