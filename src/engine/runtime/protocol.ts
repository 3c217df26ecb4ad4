/**
 * Messages between WorkerExecutor (engine-facing thread) and executor-host.ts (the worker). Plans and
 * results are structured-cloned (typed arrays are copied, never transferred: the device loop may
 * reuse its arrays). Errors cross as {code, message, details} and are revived with reviveError.
 */
import type { StepPlan } from "../../core/records.ts";

export type HostRequest =
  | { readonly kind: "execute"; readonly id: number; readonly plan: StepPlan }
  | { readonly kind: "loadWeights"; readonly id: number; readonly modelId: string; readonly byteOffset: number }
  | { readonly kind: "unloadWeights"; readonly id: number; readonly modelId: string }
  | { readonly kind: "moveWeights"; readonly id: number; readonly modelId: string; readonly newByteOffset: number }
  /** Any other async method of the hosted executor (e.g. the engine's registerModel). */
  | { readonly kind: "call"; readonly id: number; readonly method: string; readonly args: readonly unknown[] }
  | { readonly kind: "close"; readonly id: number };

export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly details?: Record<string, unknown>;
}

export type HostReply =
  | { readonly kind: "ready"; readonly executorKind: string; readonly pagedKv: boolean }
  | { readonly kind: "initError"; readonly error: WireError }
  | { readonly kind: "ok"; readonly id: number; readonly value: unknown }
  | { readonly kind: "error"; readonly id: number; readonly error: WireError };

/** workerData of an executor host. */
export interface HostData {
  /** File URL (or absolute path) of the module that exports the executor factory. */
  readonly moduleUrl: string;
  readonly exportName: string;
  /** Structured-clonable options; `memory` (if given) is added as options.memory. */
  readonly options: unknown;
  readonly memory: WebAssembly.Memory | null;
}

export function toWireError(e: unknown): WireError {
  if (typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string" && (e as { code: string }).code.startsWith("PRISM_")) {
    const pe = e as { code: string; message?: unknown; details?: unknown };
    const details = typeof pe.details === "object" && pe.details !== null ? { ...(pe.details as Record<string, unknown>) } : {};
    return { code: pe.code, message: String(pe.message ?? pe.code), details: cloneable(details) };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return { code: "PRISM_INTERNAL", message: `${err.message}\n${err.stack ?? ""}`, details: {} };
}

/** Details must survive structured clone; anything that doesn't becomes its string form. */
function cloneable(details: Record<string, unknown>): Record<string, unknown> {
  try {
    structuredClone(details);
    return details;
  } catch {
    return Object.fromEntries(Object.entries(details).map(([k, v]) => [k, typeof v === "object" ? String(v) : v]));
  }
}
