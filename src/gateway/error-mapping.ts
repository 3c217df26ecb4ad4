/**
 * The only place where an error becomes an HTTP status and OpenAI's error JSON
 * ({"error": {"message", "type", "param", "code"}}), the inverse of openai-node's APIError.generate.
 */
import { isPrismError, PrismError, type ErrorKind } from "../core/errors.ts";
import { assertNever } from "../core/result.ts";

export interface HttpError {
  readonly status: number;
  readonly body: { error: { message: string; type: string; param: string | null; code: string } };
  readonly headers: Record<string, string>;
}

function statusOf(kind: ErrorKind): number {
  switch (kind) {
    case "invalid":
      return 400;
    case "auth":
      return 401;
    case "not_found":
      return 404;
    case "too_large":
      return 413;
    case "busy":
      return 429;
    case "unavailable":
      return 503;
    case "internal":
      return 500;
    default:
      return assertNever(kind, "error kind");
  }
}

function typeOf(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return status === 503 ? "service_unavailable_error" : "server_error";
  return "invalid_request_error";
}

/** OpenAI's own codes where one exists, else our stable PRISM_* code. */
function openAiCode(e: PrismError): string {
  switch (e.code) {
    case "PRISM_PROMPT_TOO_LONG":
      return "context_length_exceeded";
    case "PRISM_UNKNOWN_MODEL":
      return "model_not_found";
    case "PRISM_HTTP_UNAUTHORIZED":
      return "invalid_api_key";
    default:
      return e.code;
  }
}

export function toHttpError(e: unknown, requestId: string): HttpError {
  const pe = isPrismError(e)
    ? (e as PrismError)
    : new PrismError("PRISM_INTERNAL", `internal error (request ${requestId}); see the server log`);
  const status = statusOf(pe.kind);
  const headers: Record<string, string> = {};
  const retryAfter = pe.details["retryAfterS"];
  if (status === 429 || status === 503) headers["retry-after"] = String(typeof retryAfter === "number" ? Math.max(1, Math.ceil(retryAfter)) : 1);
  const param = pe.details["param"];
  return {
    status,
    headers,
    body: { error: { message: pe.message, type: typeOf(status), param: typeof param === "string" ? param : null, code: openAiCode(pe) } },
  };
}
