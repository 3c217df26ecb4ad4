// Entry point of the kernels package: the contract, both implementations and the f16/Q8_0 helpers.
export { WType, KERNEL_RESERVED_BYTES, weightRowBytes } from "./types.ts";
export type { Kernels } from "./types.ts";
export { createTsKernels } from "./ts-kernels.ts";
export { createWasmKernels } from "./wasm-kernels.ts";
export { F16_TO_F32, f32ToF16, quantizeQ8_0 } from "./f16.ts";
