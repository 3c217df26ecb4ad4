// Entry point of the kernels package: the contract, both implementations and the f16/Q8_0 helpers.
export { WType, KERNEL_RESERVED_BYTES, weightMatrixBytes } from "./types.ts";
export { q8ActivationBytes, q8r4Bytes, repackQ8_0x4 } from "./q8-layout.ts";
export type { Kernels } from "./types.ts";
export { createTsKernels } from "./ts-kernels.ts";
export { createWasmKernels } from "./wasm-kernels.ts";
export { F16_TO_F32, f32ToF16, quantizeQ8_0 } from "./f16.ts";
