/**
 * Validation of /v1/chat/completions and /v1/completions bodies into one normalised record.
 * Every unknown or unsupported parameter is a 400 that names it: nothing is silently ignored.
 */
import { PrismError } from "../core/errors.ts";
import type { ChatMessage } from "./backend.ts";

export interface Limits {
  readonly maxN: number;
  readonly maxStopStrings: number;
  readonly maxStopStringLength: number;
  readonly maxTopLogprobs: number;
}

export type PromptInput = { readonly kind: "text"; readonly text: string } | { readonly kind: "tokens"; readonly tokens: Int32Array };

export interface GenRequest {
  readonly kind: "chat" | "completion";
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  /** Completions: one entry per prompt (OpenAI accepts a batch of prompts). */
  readonly prompts: readonly PromptInput[];
  /** null = not given (server default, capped by the context). */
  readonly maxTokens: number | null;
  readonly n: number;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly stop: readonly string[];
  readonly temperature: number;
  readonly topP: number;
  readonly topK: number;
  readonly minP: number;
  readonly repetitionPenalty: number;
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  readonly seed: number | null;
  /** Chat: logprobs=true; completions: logprobs=N (then topLogprobs = N). */
  readonly logprobs: boolean;
  readonly topLogprobs: number;
  readonly ignoreEos: boolean;
  readonly echo: boolean;
  readonly user: string | null;
}

const COMMON = new Set([
  "model", "max_tokens", "temperature", "top_p", "n", "stream", "stream_options", "stop", "seed",
  "presence_penalty", "frequency_penalty", "logprobs", "user",
  // widely used extensions (vLLM / llama.cpp)
  "top_k", "min_p", "repetition_penalty", "ignore_eos",
]);
const CHAT_ONLY = new Set(["messages", "max_completion_tokens", "top_logprobs", "response_format", "store", "metadata"]);
const COMPLETION_ONLY = new Set(["prompt", "echo", "best_of", "suffix"]);
/** Known OpenAI parameters we do not implement: named in a clear 400. */
const UNSUPPORTED = new Set([
  "tools", "tool_choice", "functions", "function_call", "parallel_tool_calls", "logit_bias", "audio", "modalities",
  "prediction", "reasoning_effort", "service_tier", "web_search_options", "verbosity",
]);

function bad(message: string, param: string, code: "PRISM_HTTP_INVALID_REQUEST" | "PRISM_HTTP_UNSUPPORTED_PARAM" = "PRISM_HTTP_INVALID_REQUEST"): PrismError {
  return new PrismError(code, message, { param });
}

function num(body: Record<string, unknown>, key: string, def: number, min: number, max: number, integer = false): number {
  const v = body[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== "number" || !Number.isFinite(v)) throw bad(`'${key}' must be a finite number, got ${JSON.stringify(v)}`, key);
  if (integer && !Number.isInteger(v)) throw bad(`'${key}' must be an integer, got ${v}`, key);
  if (v < min || v > max) throw bad(`'${key}' must be between ${min} and ${max}, got ${v}`, key);
  return v;
}

function bool(body: Record<string, unknown>, key: string, def: boolean): boolean {
  const v = body[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== "boolean") throw bad(`'${key}' must be a boolean, got ${JSON.stringify(v)}`, key);
  return v;
}

function contentText(content: unknown, i: number): string {
  if (typeof content === "string") return content;
  if (content === null) return "";
  if (Array.isArray(content)) {
    let s = "";
    for (let j = 0; j < content.length; j++) {
      const part = content[j] as { type?: unknown; text?: unknown } | null;
      if (typeof part !== "object" || part === null || part.type !== "text" || typeof part.text !== "string") {
        const t = typeof part === "object" && part !== null ? String(part.type) : typeof part;
        throw bad(`messages[${i}].content[${j}]: only text parts are supported (got type '${t}')`, `messages[${i}].content`, t === "text" ? "PRISM_HTTP_INVALID_REQUEST" : "PRISM_HTTP_UNSUPPORTED_PARAM");
      }
      s += part.text;
    }
    return s;
  }
  throw bad(`messages[${i}].content must be a string or an array of text parts`, `messages[${i}].content`);
}

function parseMessages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v)) throw bad("'messages' must be an array of {role, content}", "messages");
  if (v.length === 0) throw bad("'messages' must not be empty", "messages");
  const out: ChatMessage[] = [];
  for (let i = 0; i < v.length; i++) {
    const m = v[i] as Record<string, unknown> | null;
    if (typeof m !== "object" || m === null || Array.isArray(m)) throw bad(`messages[${i}] must be an object`, `messages[${i}]`);
    for (const k of Object.keys(m)) {
      if (k !== "role" && k !== "content" && k !== "name") {
        throw bad(`messages[${i}].${k} is not supported`, `messages[${i}].${k}`, "PRISM_HTTP_UNSUPPORTED_PARAM");
      }
    }
    const role = m["role"];
    if (role !== "system" && role !== "user" && role !== "assistant" && role !== "developer") {
      throw bad(`messages[${i}].role must be one of system, developer, user, assistant (got ${JSON.stringify(role)})`, `messages[${i}].role`);
    }
    out.push({ role: role === "developer" ? "system" : role, content: contentText(m["content"], i) });
  }
  return out;
}

function tokenArray(v: unknown[], param: string): Int32Array {
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const t = v[i];
    if (typeof t !== "number" || !Number.isInteger(t) || t < 0 || t > 0x7fffffff) throw bad(`${param}[${i}] must be a non-negative integer token id`, param);
    out[i] = t;
  }
  return out;
}

function parsePrompt(v: unknown): PromptInput[] {
  if (typeof v === "string") return [{ kind: "text", text: v }];
  if (Array.isArray(v)) {
    if (v.length === 0) throw bad("'prompt' must not be an empty array", "prompt");
    if (v.every((x) => typeof x === "string")) return (v as string[]).map((text) => ({ kind: "text", text }));
    if (v.every((x) => typeof x === "number")) return [{ kind: "tokens", tokens: tokenArray(v, "prompt") }];
    if (v.every((x) => Array.isArray(x))) return (v as unknown[][]).map((a, i) => ({ kind: "tokens", tokens: tokenArray(a, `prompt[${i}]`) }));
  }
  throw bad("'prompt' must be a string, an array of strings, an array of token ids, or an array of token-id arrays", "prompt");
}

export function parseGenRequest(kind: "chat" | "completion", raw: unknown, limits: Limits): GenRequest {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad("the request body must be a JSON object", "body");
  const body = raw as Record<string, unknown>;
  for (const k of Object.keys(body)) {
    if (UNSUPPORTED.has(k)) throw bad(`parameter '${k}' is not supported by this server`, k, "PRISM_HTTP_UNSUPPORTED_PARAM");
    const known = COMMON.has(k) || (kind === "chat" ? CHAT_ONLY.has(k) : COMPLETION_ONLY.has(k));
    if (!known) throw bad(`unknown parameter '${k}'`, k, "PRISM_HTTP_UNSUPPORTED_PARAM");
  }
  const model = body["model"];
  if (typeof model !== "string" || model.length === 0) throw bad("'model' is required and must be a non-empty string", "model");

  const messages = kind === "chat" ? parseMessages(body["messages"]) : [];
  if (kind === "completion" && body["prompt"] === undefined) throw bad("'prompt' is required", "prompt");
  const prompts = kind === "completion" ? parsePrompt(body["prompt"]) : [];

  let maxTokens: number | null = null;
  for (const key of ["max_tokens", "max_completion_tokens"]) {
    if (body[key] !== undefined && body[key] !== null) maxTokens = num(body, key, 0, 1, 2 ** 31 - 1, true);
  }
  const n = num(body, "n", 1, 1, limits.maxN, true);
  const stream = bool(body, "stream", false);
  let includeUsage = false;
  const so = body["stream_options"];
  if (so !== undefined && so !== null) {
    if (typeof so !== "object" || Array.isArray(so)) throw bad("'stream_options' must be an object", "stream_options");
    for (const k of Object.keys(so)) {
      if (k !== "include_usage") throw bad(`stream_options.${k} is not supported`, `stream_options.${k}`, "PRISM_HTTP_UNSUPPORTED_PARAM");
    }
    if (!stream) throw bad("'stream_options' is only allowed when 'stream' is true", "stream_options");
    includeUsage = bool(so as Record<string, unknown>, "include_usage", false);
  }
  let stop: string[] = [];
  const st = body["stop"];
  if (typeof st === "string") stop = [st];
  else if (Array.isArray(st)) {
    if (!st.every((s) => typeof s === "string")) throw bad("'stop' must be a string or an array of strings", "stop");
    stop = st as string[];
  } else if (st !== undefined && st !== null) throw bad("'stop' must be a string or an array of strings", "stop");
  if (stop.length > limits.maxStopStrings) throw bad(`'stop' has ${stop.length} strings; at most ${limits.maxStopStrings} are allowed`, "stop");
  for (const s of stop) {
    if (s.length === 0) throw bad("'stop' strings must not be empty", "stop");
    if (s.length > limits.maxStopStringLength) throw bad(`a 'stop' string is longer than ${limits.maxStopStringLength} characters`, "stop");
  }
  let logprobs = false;
  let topLogprobs = 0;
  if (kind === "chat") {
    logprobs = bool(body, "logprobs", false);
    topLogprobs = num(body, "top_logprobs", 0, 0, limits.maxTopLogprobs, true);
    if (topLogprobs > 0 && !logprobs) throw bad("'top_logprobs' requires 'logprobs': true", "top_logprobs");
    const rf = body["response_format"];
    if (rf !== undefined && rf !== null) {
      if (typeof rf !== "object" || (rf as { type?: unknown }).type !== "text") {
        throw bad("only response_format {\"type\": \"text\"} is supported", "response_format", "PRISM_HTTP_UNSUPPORTED_PARAM");
      }
    }
  } else {
    const lp = body["logprobs"];
    if (lp !== undefined && lp !== null) {
      const k = num(body, "logprobs", 0, 0, Math.min(5, limits.maxTopLogprobs), true);
      logprobs = true;
      topLogprobs = k;
    }
    if (body["echo"] === true) throw bad("'echo': true is not supported", "echo", "PRISM_HTTP_UNSUPPORTED_PARAM");
    bool(body, "echo", false);
    const bestOf = num(body, "best_of", 1, 1, limits.maxN, true);
    if (bestOf !== 1) throw bad("'best_of' other than 1 is not supported", "best_of", "PRISM_HTTP_UNSUPPORTED_PARAM");
    if (body["suffix"] !== undefined && body["suffix"] !== null) throw bad("'suffix' is not supported", "suffix", "PRISM_HTTP_UNSUPPORTED_PARAM");
  }
  const seedV = body["seed"];
  let seed: number | null = null;
  if (seedV !== undefined && seedV !== null) seed = num(body, "seed", 0, -(2 ** 53), 2 ** 53, true);
  const user = body["user"];
  if (user !== undefined && user !== null && typeof user !== "string") throw bad("'user' must be a string", "user");
  const store = body["store"];
  if (store === true) throw bad("'store': true is not supported", "store", "PRISM_HTTP_UNSUPPORTED_PARAM");
  const metadata = body["metadata"];
  if (metadata !== undefined && metadata !== null && (typeof metadata !== "object" || Array.isArray(metadata))) throw bad("'metadata' must be an object", "metadata");

  return {
    kind, model, messages, prompts, maxTokens, n, stream, includeUsage, stop,
    temperature: num(body, "temperature", 1, 0, 2),
    topP: num(body, "top_p", 1, Number.MIN_VALUE, 1),
    topK: num(body, "top_k", 0, 0, 1_000_000, true),
    minP: num(body, "min_p", 0, 0, 1),
    repetitionPenalty: num(body, "repetition_penalty", 1, Number.MIN_VALUE, 10),
    presencePenalty: num(body, "presence_penalty", 0, -2, 2),
    frequencyPenalty: num(body, "frequency_penalty", 0, -2, 2),
    seed, logprobs, topLogprobs,
    ignoreEos: bool(body, "ignore_eos", false),
    echo: false,
    user: typeof user === "string" ? user : null,
  };
}
