// node-llama-cpp backend: executor (pagedKv = false), footprint for the scheduler, greedy reference.
export { LlamaCppExecutor, createLlamaCppExecutor, DEFAULT_LLAMACPP_CONTEXT_TOKENS, DEFAULT_LLAMACPP_SEQUENCES } from "./executor.ts";
export type { LlamaCppExecutorOptions, LlamaCppModelSpec } from "./executor.ts";
export { llamaCppFootprint, llamaCppReservedBytes } from "./footprint.ts";
export type { LlamaCppFootprint } from "./footprint.ts";
export { llamaCppGreedy } from "./greedy.ts";
export type { LlamaCppGreedyResult } from "./greedy.ts";
export { disposeCpuLlama, getCpuLlama } from "./llama.ts";
