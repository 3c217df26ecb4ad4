// Branded ids: a ModelId can never be passed where a DeviceId is expected.
// Numeric ids are used in hot maps (typed-array indices); string ids only at the edges.
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Stable user-facing model name, e.g. "tiny-chat". */
export type ModelId = Brand<string, "ModelId">;
/** Index of a device on this host or in a simulated cluster (0-based, dense). */
export type DeviceId = Brand<number, "DeviceId">;
/** Process-unique, monotonically increasing request number (dense enough for typed-array maps). */
export type RequestId = Brand<number, "RequestId">;
/** Physical page index inside one DeviceMemory (0-based, dense). */
export type PageId = Brand<number, "PageId">;
/** Block id inside one KV space: virtualPage * blocksPerPage + slot. Stable while the block is held. */
export type BlockId = number;

export const modelId = (s: string): ModelId => s as ModelId;
export const deviceId = (n: number): DeviceId => n as DeviceId;
export const requestId = (n: number): RequestId => n as RequestId;
export const pageId = (n: number): PageId => n as PageId;
