/**
 * DeviceMemoryOptions → validated, defaulted, frozen settings. Called once per device by the
 * DeviceMemory constructor; bad options throw PRISM_MEM_INVALID_ARGUMENT / PRISM_MEM_BUDGET_TOO_LARGE.
 */
import { PrismError } from "../core/errors.ts";
import type { DeviceMemoryOptions } from "./types.ts";

/** 64 KiB: the WebAssembly page size. */
export const WASM_PAGE_BYTES = 65536;
/** wasm32 linear memory cannot exceed 4 GiB. */
export const MAX_BACKED_BYTES = 65536 * WASM_PAGE_BYTES;
export const MIN_PAGE_BYTES = 4096;
/** kvcached's GPU_UTILIZATION = 0.95. */
export const DEFAULT_KV_HEADROOM_FRACTION = 0.05;
/** Block ids travel in Int32Array block tables. */
export const MAX_BLOCK_ID = 0x7fffffff;

export interface ResolvedMemoryOptions {
  readonly budgetBytes: number;
  readonly pageBytes: number;
  readonly totalPages: number;
  readonly kvHeadroomFraction: number;
  readonly headroomPages: number;
  readonly minReservedPages: number;
  readonly maxReservedPages: number;
  readonly backed: boolean;
  readonly shared: boolean;
  readonly prefixBytes: number;
}

function invalid(option: string, value: unknown, why: string): PrismError {
  return new PrismError("PRISM_MEM_INVALID_ARGUMENT", `DeviceMemory option ${option}=${String(value)}: ${why}`, { option, value });
}

function isNonNegativeSafeInt(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Reserved-page defaults: kvcached's 5 / 10 (made for 2 MiB GPU pages), scaled down on small devices so
 * a 64-page CPU device does not park a third of its memory in idle reserves: max ≤ totalPages/32,
 * min ≤ totalPages/64. (Reserves are reclaimable anyway, see README "reserved pages".)
 */
function defaultReserved(totalPages: number): { min: number; max: number } {
  const max = Math.min(10, Math.floor(totalPages / 32));
  const min = Math.min(5, Math.floor(totalPages / 64), max);
  return { min, max };
}

export function resolveOptions(opts: DeviceMemoryOptions): ResolvedMemoryOptions {
  const { budgetBytes, pageBytes } = opts;
  if (!isNonNegativeSafeInt(pageBytes) || pageBytes < MIN_PAGE_BYTES || (pageBytes & (pageBytes - 1)) !== 0 || pageBytes > 2 ** 30) {
    throw invalid("pageBytes", pageBytes, `must be a power of two in [${MIN_PAGE_BYTES}, 2^30]`);
  }
  if (!isNonNegativeSafeInt(budgetBytes) || budgetBytes === 0 || budgetBytes % pageBytes !== 0) {
    throw invalid("budgetBytes", budgetBytes, `must be a positive multiple of pageBytes (${pageBytes})`);
  }
  const totalPages = budgetBytes / pageBytes;
  if (totalPages > MAX_BLOCK_ID) throw invalid("budgetBytes", budgetBytes, "too many pages; use a larger pageBytes");

  const kvHeadroomFraction = opts.kvHeadroomFraction ?? DEFAULT_KV_HEADROOM_FRACTION;
  if (typeof kvHeadroomFraction !== "number" || !(kvHeadroomFraction >= 0 && kvHeadroomFraction < 1)) {
    throw invalid("kvHeadroomFraction", kvHeadroomFraction, "must be in [0, 1)");
  }
  // Rounded up: the headroom is a floor under free memory that KV must not cross. The epsilon keeps
  // 0.05 × 100 (= 5.000000000000001 in floating point) at 5 pages.
  const headroomPages = Math.min(totalPages, Math.max(0, Math.ceil(totalPages * kvHeadroomFraction - 1e-9)));

  const defaults = defaultReserved(totalPages);
  const maxReservedPages = opts.maxReservedPages ?? Math.max(defaults.max, opts.minReservedPages ?? 0);
  const minReservedPages = opts.minReservedPages ?? Math.min(defaults.min, maxReservedPages);
  if (!isNonNegativeSafeInt(maxReservedPages)) throw invalid("maxReservedPages", maxReservedPages, "must be a non-negative integer");
  if (!isNonNegativeSafeInt(minReservedPages) || minReservedPages > maxReservedPages) {
    throw invalid("minReservedPages", minReservedPages, `must be an integer in [0, maxReservedPages=${maxReservedPages}]`);
  }

  const backed = opts.backed;
  if (typeof backed !== "boolean") throw invalid("backed", backed, "must be true or false");
  const shared = opts.shared ?? false;
  if (typeof shared !== "boolean") throw invalid("shared", shared, "must be true or false");
  const prefixBytes = opts.prefixBytes ?? 0;
  // 16-byte alignment keeps every page (and f32x4 loads in kernels) aligned.
  if (!isNonNegativeSafeInt(prefixBytes) || prefixBytes % 16 !== 0) {
    throw invalid("prefixBytes", prefixBytes, "must be a non-negative multiple of 16");
  }
  if (backed && prefixBytes + budgetBytes > MAX_BACKED_BYTES) {
    throw new PrismError(
      "PRISM_MEM_BUDGET_TOO_LARGE",
      `prefixBytes + budgetBytes = ${prefixBytes + budgetBytes} exceeds the 4 GiB a WebAssembly.Memory can hold; lower the budget or use backed: false`,
      { budgetBytes, prefixBytes, maxBytes: MAX_BACKED_BYTES },
    );
  }
  return Object.freeze({
    budgetBytes, pageBytes, totalPages, kvHeadroomFraction, headroomPages,
    minReservedPages, maxReservedPages, backed, shared, prefixBytes,
  });
}
