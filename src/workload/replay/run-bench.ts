/**
 * The open-loop load generator behind `prism bench`: sends each trace request at its arrival time (never
 * waiting for earlier ones), streams it through the OpenAI completions API with the official `openai` client,
 * and records per request when it was sent (and how late), TTFT, end-to-end time, tokens and errors.
 *
 * Timing: one monotonic clock (performance.now); the origin is the trace's t = 0. A request's TTFT and E2E are
 * measured from the moment it was actually sent, so a late send (the client's fault, reported as
 * sendLateMs) is not charged to the server. TTFT = first streamed chunk that carries a choice (as vLLM's
 * benchmark_serving); output tokens = the usage's completion_tokens when reported, else the chunk count.
 *
 * Requests: POST /v1/completions with a synthesised prompt of the trace's input length (prompt.ts),
 * max_tokens = the trace's output length, ignore_eos: true (vLLM's extension; Prism's gateway accepts it) so
 * generation runs to max_tokens, and stream_options.include_usage so the usage gives exact token counts.
 *
 * This module computes no metrics (src/workload may import only src/core); `outcomes` has the shape of
 * metrics/slo.ts RequestOutcomes, which `evaluateSlo` takes as is.
 */
import OpenAI, { APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import { PrismError } from "../../core/errors.ts";
import type { Trace } from "../trace-format.ts";
import { resolveModelMap } from "./model-map.ts";
import { type PromptCalibration, UNCALIBRATED, calibrationFrom, tokenIdPrompt, wordPrompt, wordsFor } from "./prompt.ts";
import { type StateSample, extractKvPages } from "./state-sampler.ts";

export type PromptMode = "words" | "token-ids";

export interface BenchProgress {
  readonly total: number;
  readonly sent: number;
  readonly completed: number;
  readonly failed: number;
  readonly inFlight: number;
  readonly elapsedS: number;
}

export interface BenchOptions {
  /** Server base URL, e.g. http://127.0.0.1:8080 (a trailing /v1 is accepted). */
  readonly url: string;
  readonly trace: Trace;
  /** `--models` spec (see model-map.ts); default identity. */
  readonly models?: string;
  readonly apiKey?: string;
  /** Send only requests arriving before this trace time (seconds). */
  readonly limitS?: number;
  /** Poll /admin/state every N ms (0/undefined: off). */
  readonly sampleStateMs?: number;
  /** Default "words". */
  readonly promptMode?: PromptMode;
  /** Measure words → tokens per served model before the run (2 requests per model, max_tokens 1). Default true. */
  readonly calibrate?: boolean;
  /** Abort a request after this long (default 600 000 ms). */
  readonly requestTimeoutMs?: number;
  /** After the last send, wait at most this long for in-flight requests, then abort them (default: requestTimeoutMs). */
  readonly drainTimeoutMs?: number;
  /** Time between setup and the trace's t = 0 (default 50 ms). */
  readonly startDelayMs?: number;
  /** Called about every 200 ms and once at the end. */
  readonly onProgress?: (p: BenchProgress) => void;
  /** Abort the whole run (in-flight requests fail with code "aborted"). */
  readonly signal?: AbortSignal;
}

/** Same shape as metrics/slo.ts RequestOutcomes (checked by a test). */
export interface BenchOutcomes {
  readonly count: number;
  readonly modelNames: readonly string[];
  readonly modelIndex: Int32Array;
  readonly arrivalS: Float64Array;
  readonly ttftMs: Float64Array;
  readonly e2eMs: Float64Array;
  readonly outputTokens: Int32Array;
  readonly ok: Uint8Array;
}

export interface BenchError {
  /** Index of the request in the trace. */
  readonly index: number;
  readonly model: string;
  /** HTTP status when the server answered with an error; null for connection errors, timeouts and aborts. */
  readonly status: number | null;
  /** The error body's `code` (or type), or `timeout` / `aborted` / `connection` / an exception name. */
  readonly code: string | null;
  readonly message: string;
}

export interface BenchResult {
  readonly url: string;
  readonly startedAtIso: string;
  /** Served model id for each trace model (by trace model index). */
  readonly servedModels: readonly string[];
  /** Model ids the server listed on /v1/models (empty if it did not answer). */
  readonly serverModels: readonly string[];
  /** SLOs from the server's `prism` extension in /v1/models, by served model id. */
  readonly serverSlos: Readonly<Record<string, { readonly ttftMs: number; readonly tpotMs: number }>>;
  readonly calibration: Readonly<Record<string, PromptCalibration>>;
  readonly promptMode: PromptMode;
  /**
   * Requests sent. Outcomes cover every request arriving before limitS (`outcomes.count`); any not sent
   * because the run was aborted are failed with code "aborted".
   */
  readonly numSent: number;
  readonly outcomes: BenchOutcomes;
  /** When each request was sent, seconds since the origin. */
  readonly sendS: Float64Array;
  /** sendS·1000 − arrivalS·1000: how late the client sent it. */
  readonly sendLateMs: Float64Array;
  readonly requestedInputTokens: Int32Array;
  readonly requestedOutputTokens: Int32Array;
  /** usage.prompt_tokens (−1 when not reported). */
  readonly promptTokens: Int32Array;
  /** The completion id the server streamed ("" when none arrived): joins a request to the server's own log line. */
  readonly responseIds: readonly string[];
  readonly errors: readonly BenchError[];
  /** From the origin to the last request's end. */
  readonly wallS: number;
  readonly stateSamples: readonly StateSample[];
  readonly warnings: readonly string[];
}

function v1Url(url: string): string {
  const u = url.replace(/\/+$/, "");
  return u.endsWith("/v1") ? u : `${u}/v1`;
}

function rootUrl(url: string): string {
  return url.replace(/\/+$/, "").replace(/\/v1$/, "");
}

interface ModelEntry {
  id: string;
  prism?: { ttft_slo_ms?: unknown; tpot_slo_ms?: unknown };
}

/** Resolves after ms, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, ms));
    signal.addEventListener("abort", done);
  });
}

export async function runBench(o: BenchOptions): Promise<BenchResult> {
  const trace = o.trace;
  const warnings: string[] = [];
  const requestTimeoutMs = o.requestTimeoutMs ?? 600_000;
  const drainTimeoutMs = o.drainTimeoutMs ?? requestTimeoutMs;
  const promptMode = o.promptMode ?? "words";
  const client = new OpenAI({ baseURL: v1Url(o.url), apiKey: o.apiKey ?? "EMPTY", maxRetries: 0, timeout: requestTimeoutMs });

  // ---- setup: models, SLOs, calibration (before t = 0)
  const serverModels: string[] = [];
  const serverSlos: Record<string, { ttftMs: number; tpotMs: number }> = {};
  try {
    for await (const m of client.models.list()) {
      const e = m as unknown as ModelEntry;
      serverModels.push(e.id);
      const t = Number(e.prism?.ttft_slo_ms);
      const p = Number(e.prism?.tpot_slo_ms);
      if (e.prism && (t > 0 || p > 0)) serverSlos[e.id] = { ttftMs: t > 0 ? t : Infinity, tpotMs: p > 0 ? p : Infinity };
    }
  } catch (e) {
    warnings.push(`GET /v1/models failed (${(e as Error).message}); model ids are not checked`);
  }
  const servedModels = resolveModelMap(o.models, trace.modelNames, serverModels);
  const calibration: Record<string, PromptCalibration> = {};
  for (const id of new Set(servedModels)) {
    calibration[id] = promptMode === "words" && o.calibrate !== false ? await calibrate(client, id, warnings) : UNCALIBRATED;
  }

  // ---- columns
  const limitS = o.limitS ?? Infinity;
  let numToSend = 0;
  while (numToSend < trace.numRequests && trace.arrivalS[numToSend]! < limitS) numToSend++;
  const n = numToSend;
  const ttftMs = new Float64Array(n).fill(NaN);
  const e2eMs = new Float64Array(n).fill(NaN);
  const outputTokens = new Int32Array(n);
  const ok = new Uint8Array(n);
  const sendS = new Float64Array(n).fill(NaN);
  const sendLateMs = new Float64Array(n).fill(NaN);
  const promptTokens = new Int32Array(n).fill(-1);
  const responseIds = new Array<string>(n).fill("");
  const errors: BenchError[] = [];
  const runAbort = new AbortController();
  // per-request controllers, aborted together when the run aborts (one listener, not one per request)
  const live = new Set<AbortController>();
  runAbort.signal.addEventListener("abort", () => {
    for (const c of live) c.abort();
  });
  const onOuterAbort = (): void => runAbort.abort();
  o.signal?.addEventListener("abort", onOuterAbort);

  let sent = 0;
  let completed = 0;
  let failed = 0;
  let lastEndMs = 0;
  const pending = new Set<Promise<void>>();
  const startedAtIso = new Date().toISOString();
  const origin = performance.now() + (o.startDelayMs ?? 50);
  const nowMs = (): number => performance.now() - origin;

  const progress = (): void =>
    o.onProgress?.({ total: n, sent, completed, failed, inFlight: pending.size, elapsedS: Math.max(0, nowMs()) / 1000 });
  const progressTimer = o.onProgress ? setInterval(progress, 200) : null;

  // ---- /admin/state sampling
  const stateSamples: StateSample[] = [];
  let stateTimer: ReturnType<typeof setInterval> | null = null;
  if (o.sampleStateMs !== undefined && o.sampleStateMs > 0) {
    const stateUrl = `${rootUrl(o.url)}/admin/state`;
    let busy = false;
    let stateErrors = 0;
    stateTimer = setInterval(() => {
      if (busy) return;
      busy = true;
      const tMs = nowMs();
      fetch(stateUrl, { headers: o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}, signal: runAbort.signal })
        .then(async (r) => {
          if (!r.ok) throw new Error(`HTTP ${r.status}`);
          stateSamples.push({ tMs, kvPagesByModel: extractKvPages(await r.json()) });
        })
        .catch((e: unknown) => {
          if (stateErrors++ === 0 && !runAbort.signal.aborted) warnings.push(`GET /admin/state failed: ${(e as Error).message}`);
        })
        .finally(() => {
          busy = false;
        });
    }, o.sampleStateMs);
  }

  const runOne = async (i: number): Promise<void> => {
    const m = trace.modelIndex[i]!;
    const served = servedModels[m]!;
    const inTokens = trace.inputTokens[i]!;
    const prompt: string | number[] =
      promptMode === "words" ? wordPrompt(wordsFor(inTokens, calibration[served]!), i * 7) : tokenIdPrompt(Math.max(1, inTokens), i * 7);
    const reqAbort = new AbortController();
    live.add(reqAbort);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reqAbort.abort();
    }, requestTimeoutMs);
    const t0 = performance.now();
    try {
      const body = {
        model: served,
        prompt,
        max_tokens: Math.max(1, trace.outputTokens[i]!),
        stream: true as const,
        stream_options: { include_usage: true },
        ignore_eos: true,
      };
      const stream = await client.completions.create(body as OpenAI.CompletionCreateParamsStreaming, { signal: reqAbort.signal });
      let first = NaN;
      let chunks = 0;
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        if (chunk.choices !== undefined && chunk.choices.length > 0) {
          if (Number.isNaN(first)) {
            first = performance.now() - t0;
            if (typeof chunk.id === "string") responseIds[i] = chunk.id;
          }
          chunks++;
        }
        if (chunk.usage) usage = chunk.usage;
      }
      const end = performance.now() - t0;
      ttftMs[i] = first;
      e2eMs[i] = end;
      outputTokens[i] = usage?.completion_tokens ?? chunks;
      promptTokens[i] = usage?.prompt_tokens ?? -1;
      ok[i] = 1;
      completed++;
    } catch (e) {
      failed++;
      errors.push(describeError(i, trace.modelNames[m]!, e, timedOut));
    } finally {
      clearTimeout(timer);
      live.delete(reqAbort);
      lastEndMs = Math.max(lastEndMs, nowMs());
    }
  };

  // ---- open-loop sending: each request at its arrival time, never awaiting earlier ones
  let i = 0;
  while (i < n && !runAbort.signal.aborted) {
    const dueMs = trace.arrivalS[i]! * 1000;
    const now = nowMs();
    if (now < dueMs) {
      await sleep(dueMs - now, runAbort.signal);
      continue;
    }
    const sentAt = nowMs();
    sendS[i] = sentAt / 1000;
    sendLateMs[i] = sentAt - dueMs;
    sent++;
    const p: Promise<void> = runOne(i).finally(() => pending.delete(p));
    pending.add(p);
    i++;
  }
  const numSent = i;
  // requests never sent because the run was aborted count as failed
  for (let j = numSent; j < n; j++) {
    failed++;
    errors.push({ index: j, model: trace.modelNames[trace.modelIndex[j]!]!, status: null, code: "aborted", message: "run aborted before send" });
  }

  // ---- drain
  if (pending.size > 0) {
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...pending]),
      new Promise<void>((r) => {
        drainTimer = setTimeout(r, drainTimeoutMs);
      }),
    ]);
    clearTimeout(drainTimer);
    if (pending.size > 0) runAbort.abort();
    await Promise.allSettled([...pending]);
  }
  if (progressTimer) clearInterval(progressTimer);
  if (stateTimer) clearInterval(stateTimer);
  runAbort.abort();
  o.signal?.removeEventListener("abort", onOuterAbort);
  progress();
  errors.sort((a, b) => a.index - b.index);

  return {
    url: o.url,
    startedAtIso,
    servedModels,
    serverModels,
    serverSlos,
    calibration,
    promptMode,
    numSent,
    outcomes: {
      count: n,
      modelNames: trace.modelNames,
      modelIndex: trace.modelIndex.slice(0, n),
      arrivalS: trace.arrivalS.slice(0, n),
      ttftMs,
      e2eMs,
      outputTokens,
      ok,
    },
    sendS,
    sendLateMs,
    requestedInputTokens: trace.inputTokens.slice(0, n),
    requestedOutputTokens: trace.outputTokens.slice(0, n),
    promptTokens,
    responseIds,
    errors,
    wallS: lastEndMs / 1000,
    stateSamples,
    warnings,
  };
}

function describeError(index: number, model: string, e: unknown, timedOut: boolean): BenchError {
  if (timedOut || e instanceof APIConnectionTimeoutError) return { index, model, status: null, code: "timeout", message: "request timed out" };
  if (e instanceof APIUserAbortError) return { index, model, status: null, code: "aborted", message: "aborted" };
  if (e instanceof APIError) {
    const body = e.error as { code?: unknown; type?: unknown } | undefined;
    const code = typeof e.code === "string" ? e.code : typeof body?.type === "string" ? body.type : e.status === undefined ? "connection" : null;
    return { index, model, status: e.status ?? null, code, message: e.message };
  }
  const err = e as { name?: string; message?: string };
  return { index, model, status: null, code: err.name ?? "error", message: err.message ?? String(e) };
}

/** Two non-streamed 1-token requests (16 and 64 words) → linear words → tokens map from usage.prompt_tokens. */
async function calibrate(client: OpenAI, model: string, warnings: string[]): Promise<PromptCalibration> {
  const measure = async (words: number): Promise<{ words: number; tokens: number } | null> => {
    const r = await client.completions.create({ model, prompt: wordPrompt(words, 0), max_tokens: 1, stream: false });
    const t = r.usage?.prompt_tokens;
    return typeof t === "number" ? { words, tokens: t } : null;
  };
  try {
    const a = await measure(16);
    const b = await measure(64);
    if (a && b) return calibrationFrom(a, b);
    warnings.push(`calibration for ${model}: the server reported no usage; prompts assume 1 token per word`);
  } catch (e) {
    warnings.push(`calibration for ${model} failed (${(e as Error).message}); prompts assume 1 token per word`);
  }
  return UNCALIBRATED;
}

/** Thrown for unusable options before any request is sent. */
export function benchUsage(message: string): PrismError {
  return new PrismError("PRISM_CLI_USAGE", message);
}
