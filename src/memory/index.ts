// The memory layer's public surface: DeviceMemory (one per device) and the contract types.
export * from "./types.ts";
export { DeviceMemory } from "./device-memory.ts";
export { KvSpaceImpl } from "./kv-space.ts";
export type { WeightRegionImpl } from "./weight-arena.ts";
export { DEFAULT_KV_HEADROOM_FRACTION, MIN_PAGE_BYTES, WASM_PAGE_BYTES, type ResolvedMemoryOptions } from "./options.ts";
