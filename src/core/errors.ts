/**
 * The one registry of error codes. Code checks `err.code` (never `instanceof`, which breaks across
 * worker_threads). Only gateway/error-mapping.ts turns a `kind` into an HTTP status.
 *
 * To add an error: add a row here, with a stable code that is never reused for another meaning.
 */
export const ErrorKind = {
  /** Caller passed something invalid (HTTP 400). */
  invalid: "invalid",
  /** A named thing does not exist (404). */
  notFound: "not_found",
  /** Authentication missing or wrong (401). */
  auth: "auth",
  /** Too large (413). */
  tooLarge: "too_large",
  /** Busy now, retry later (429). */
  busy: "busy",
  /** Cannot serve at all right now: shutting down, overloaded (503). */
  unavailable: "unavailable",
  /** Broken invariant: a bug (500). */
  internal: "internal",
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

interface ErrorSpec {
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  readonly summary: string;
}

export const ERRORS = {
  // config / CLI
  PRISM_CONFIG_INVALID: { kind: "invalid", retryable: false, summary: "configuration is invalid" },
  PRISM_CONFIG_UNKNOWN_KEY: { kind: "invalid", retryable: false, summary: "configuration has an unknown key" },
  PRISM_CLI_USAGE: { kind: "invalid", retryable: false, summary: "command-line usage error" },
  PRISM_FILE_NOT_FOUND: { kind: "not_found", retryable: false, summary: "file not found" },

  // memory
  PRISM_MEM_INVALID_ARGUMENT: { kind: "invalid", retryable: false, summary: "invalid argument to the memory API" },
  PRISM_MEM_UNKNOWN_BLOCK: { kind: "invalid", retryable: false, summary: "block id is not allocated in this KV space" },
  PRISM_MEM_DOUBLE_FREE: { kind: "invalid", retryable: false, summary: "block freed twice" },
  PRISM_MEM_FOREIGN_BLOCK: { kind: "invalid", retryable: false, summary: "block belongs to another KV space" },
  PRISM_MEM_UNKNOWN_SPACE: { kind: "invalid", retryable: false, summary: "KV space does not exist or was destroyed" },
  PRISM_MEM_UNKNOWN_REGION: { kind: "invalid", retryable: false, summary: "weight region does not exist" },
  PRISM_MEM_BLOCK_TOO_LARGE: { kind: "invalid", retryable: false, summary: "a KV block does not fit in one page" },
  PRISM_MEM_BUDGET_TOO_LARGE: { kind: "invalid", retryable: false, summary: "device memory budget too large to back" },
  PRISM_MEM_SPACE_BUSY: { kind: "invalid", retryable: false, summary: "KV space still holds blocks" },

  // engine
  PRISM_GGUF_BAD_MAGIC: { kind: "invalid", retryable: false, summary: "not a GGUF file" },
  PRISM_GGUF_TRUNCATED: { kind: "invalid", retryable: false, summary: "GGUF file is truncated" },
  PRISM_GGUF_UNSUPPORTED_VERSION: { kind: "invalid", retryable: false, summary: "unsupported GGUF version" },
  PRISM_GGUF_UNSUPPORTED_ARCH: { kind: "invalid", retryable: false, summary: "unsupported model architecture" },
  PRISM_GGUF_UNSUPPORTED_TYPE: { kind: "invalid", retryable: false, summary: "unsupported tensor type" },
  PRISM_GGUF_CORRUPT: { kind: "invalid", retryable: false, summary: "GGUF file is corrupt" },
  PRISM_GGUF_MISSING: { kind: "invalid", retryable: false, summary: "GGUF file lacks a required key or tensor" },
  PRISM_GGUF_UNSUPPORTED_TOKENIZER: { kind: "invalid", retryable: false, summary: "unsupported tokenizer model in GGUF" },
  PRISM_LLAMA2C_INVALID: { kind: "invalid", retryable: false, summary: "invalid llama2.c checkpoint or tokenizer" },
  PRISM_MODEL_SHAPE_INVALID: { kind: "invalid", retryable: false, summary: "invalid model shape" },
  PRISM_PROMPT_TOO_LONG: { kind: "invalid", retryable: false, summary: "prompt exceeds the model's context length" },
  PRISM_TOKEN_OUT_OF_RANGE: { kind: "invalid", retryable: false, summary: "token id outside the vocabulary" },
  PRISM_SAMPLING_INVALID: { kind: "invalid", retryable: false, summary: "invalid sampling parameter" },
  PRISM_TEMPLATE_ERROR: { kind: "invalid", retryable: false, summary: "chat template failed to render" },
  PRISM_ENGINE_NOT_LOADED: { kind: "internal", retryable: false, summary: "model weights are not loaded on the executor" },
  PRISM_ENGINE_WORKER_DIED: { kind: "unavailable", retryable: true, summary: "engine worker exited" },
  PRISM_ENGINE_BATCH_TOO_LARGE: { kind: "internal", retryable: false, summary: "step plan exceeds the executor's batch budget (tokens, sample rows or block-table entries)" },
  PRISM_ENGINE_SCRATCH_TOO_SMALL: { kind: "invalid", retryable: false, summary: "executor prefix area too small for the model's activation scratch" },
  PRISM_ENGINE_BAD_PLAN: { kind: "internal", retryable: false, summary: "step plan is malformed (block table, positions or offsets)" },

  // device scheduler
  PRISM_REQUEST_TOO_LARGE: { kind: "invalid", retryable: false, summary: "request cannot fit in device memory even alone" },
  PRISM_MODEL_TOO_LARGE: { kind: "invalid", retryable: false, summary: "model weights cannot fit on the device" },
  PRISM_MODEL_NOT_ON_DEVICE: { kind: "not_found", retryable: false, summary: "model is not placed on this device" },
  PRISM_MODEL_BUSY: { kind: "busy", retryable: true, summary: "model has requests in flight" },
  PRISM_QUEUE_FULL: { kind: "busy", retryable: true, summary: "queue is full" },
  PRISM_SLO_UNREACHABLE: { kind: "unavailable", retryable: true, summary: "request can no longer meet its TTFT SLO" },
  PRISM_REQUEST_CANCELLED: { kind: "invalid", retryable: false, summary: "request was cancelled" },
  PRISM_REQUEST_TIMEOUT: { kind: "unavailable", retryable: true, summary: "request timed out" },
  PRISM_SHUTTING_DOWN: { kind: "unavailable", retryable: true, summary: "server is shutting down" },
  PRISM_REQUEST_INVALID: { kind: "invalid", retryable: false, summary: "request is malformed for this device (empty prompt, bad maxTokens, duplicate id)" },
  PRISM_MODEL_ALREADY_ON_DEVICE: { kind: "invalid", retryable: false, summary: "model is already placed on this device" },

  // control
  PRISM_UNKNOWN_POLICY: { kind: "invalid", retryable: false, summary: "unknown scheduling policy" },
  PRISM_UNKNOWN_MODEL: { kind: "not_found", retryable: false, summary: "unknown model" },
  PRISM_UNKNOWN_DEVICE: { kind: "not_found", retryable: false, summary: "unknown device" },
  PRISM_NO_CAPACITY: { kind: "unavailable", retryable: true, summary: "no device can hold the model" },

  // gateway
  PRISM_HTTP_INVALID_REQUEST: { kind: "invalid", retryable: false, summary: "invalid request" },
  PRISM_HTTP_UNSUPPORTED_PARAM: { kind: "invalid", retryable: false, summary: "unsupported parameter" },
  PRISM_HTTP_BODY_TOO_LARGE: { kind: "too_large", retryable: false, summary: "request body too large" },
  PRISM_HTTP_UNAUTHORIZED: { kind: "auth", retryable: false, summary: "missing or invalid API key" },
  PRISM_HTTP_NOT_FOUND: { kind: "not_found", retryable: false, summary: "route not found" },
  PRISM_OVERLOADED: { kind: "unavailable", retryable: true, summary: "server overloaded" },

  // workload / bench / sim
  PRISM_TRACE_INVALID: { kind: "invalid", retryable: false, summary: "invalid request trace" },
  PRISM_SIM_INVALID: { kind: "invalid", retryable: false, summary: "invalid simulator input" },

  PRISM_INTERNAL: { kind: "internal", retryable: false, summary: "internal error" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** The only error class Prism throws for expected failures. */
export class PrismError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  /** Machine-readable details (offending parameter name, line number, ...). */
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    const spec: ErrorSpec = ERRORS[code];
    this.name = "PrismError";
    this.code = code;
    this.kind = spec.kind;
    this.retryable = spec.retryable;
    this.details = Object.freeze({ ...details });
  }
  toJSON(): { code: ErrorCode; message: string; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function prismError(code: ErrorCode, message: string, details: Record<string, unknown> = {}): PrismError {
  return new PrismError(code, message, details);
}

/** True for anything carrying a registered code, including errors re-created after crossing a worker boundary. */
export function isPrismError(e: unknown): e is PrismError {
  return typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string" &&
    Object.hasOwn(ERRORS, (e as { code: string }).code);
}

/** Rebuild a PrismError from its JSON form (after postMessage). */
export function reviveError(json: { code: string; message: string; details?: Record<string, unknown> }): PrismError {
  const code = (Object.hasOwn(ERRORS, json.code) ? json.code : "PRISM_INTERNAL") as ErrorCode;
  return new PrismError(code, json.message, json.details ?? {});
}
