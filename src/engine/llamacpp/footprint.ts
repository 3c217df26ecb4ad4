/**
 * Fixed bytes a node-llama-cpp model occupies: weights plus its context (KV cells for every
 * sequence, allocated up front, and compute buffers). llama.cpp's KV is private and cannot share
 * pages, so the scheduler accounts all of it as the model's weight footprint.
 */
import { PrismError } from "../../core/errors.ts";
import { getCpuLlama } from "./llama.ts";
import { DEFAULT_LLAMACPP_CONTEXT_TOKENS, DEFAULT_LLAMACPP_SEQUENCES } from "./executor.ts";

export interface LlamaCppFootprint {
  readonly weightBytes: number;
  /** KV cells of all sequences + compute buffers (llama.cpp's estimate). */
  readonly contextBytes: number;
  readonly totalBytes: number;
}

/** Estimate before loading, from the GGUF header (node-llama-cpp's GgufInsights). */
export async function llamaCppFootprint(modelPath: string, opts: { sequences?: number; contextTokensPerSequence?: number } = {}): Promise<LlamaCppFootprint> {
  const { readGgufFileInfo, GgufInsights } = await import("node-llama-cpp");
  let info;
  try {
    info = await readGgufFileInfo(modelPath);
  } catch (e) {
    throw new PrismError("PRISM_FILE_NOT_FOUND", `cannot read GGUF '${modelPath}': ${e instanceof Error ? e.message : String(e)}`, { path: modelPath });
  }
  const insights = await GgufInsights.from(info, await getCpuLlama());
  const weightBytes = (await insights.estimateModelResourceRequirementsV2({ gpuLayers: 0 })).cpuRam;
  const contextBytes = (await insights.estimateContextResourceRequirementsV2({
    contextSize: opts.contextTokensPerSequence ?? DEFAULT_LLAMACPP_CONTEXT_TOKENS,
    sequences: opts.sequences ?? DEFAULT_LLAMACPP_SEQUENCES,
    modelGpuLayers: 0,
  })).cpuRam;
  return { weightBytes, contextBytes, totalBytes: weightBytes + contextBytes };
}

/** The bytes to account as the model's weights when it runs on the llama.cpp executor. */
export async function llamaCppReservedBytes(modelPath: string, opts: { sequences?: number; contextTokensPerSequence?: number } = {}): Promise<number> {
  return (await llamaCppFootprint(modelPath, opts)).totalBytes;
}
