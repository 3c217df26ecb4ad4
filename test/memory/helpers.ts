// Factories and byte-pattern checks shared by the memory tests.
import assert from "node:assert/strict";
import { DeviceMemory, type DeviceMemoryOptions, type KvSpaceOptions } from "../../src/memory/index.ts";
import { modelId, type ModelId } from "../../src/core/ids.ts";

export const KiB = 1024;
export const PAGE = 4 * KiB;

export const A: ModelId = modelId("model-a");
export const B: ModelId = modelId("model-b");
export const C: ModelId = modelId("model-c");
export const D: ModelId = modelId("model-d");

/** A small backed device: 4 KiB pages, no headroom, no reserves unless asked. */
export function makeDevice(numPages: number, extra: Partial<DeviceMemoryOptions> = {}): DeviceMemory {
  return new DeviceMemory({
    budgetBytes: numPages * PAGE,
    pageBytes: PAGE,
    backed: true,
    kvHeadroomFraction: 0,
    minReservedPages: 0,
    maxReservedPages: 0,
    ...extra,
  });
}

/** blockBytes = blockTokens × numLayers × bytesPerTokenPerLayer; with PAGE = 4096 these give blocksPerPage 4. */
export const GEOM4: KvSpaceOptions = { bytesPerTokenPerLayer: 64, numLayers: 4, blockTokens: 4 }; // 1024 B
export const GEOM8: KvSpaceOptions = { bytesPerTokenPerLayer: 32, numLayers: 4, blockTokens: 4 }; // 512 B

/** Deterministic pseudo-random bytes, so a block's or region's content can be compared natively. */
const PATTERN = (() => {
  const b = Buffer.alloc(1 << 20);
  let x = 0x12345678;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
})();

function patternSlice(stamp: number, numBytes: number): Buffer {
  const start = (stamp * 7919) % (PATTERN.length - numBytes);
  return PATTERN.subarray(start, start + numBytes);
}

export function writePattern(dm: DeviceMemory, byteOffset: number, numBytes: number, stamp: number): void {
  assert.ok(dm.memory !== null);
  const view = new Uint8Array(dm.memory.buffer, byteOffset, numBytes);
  view.set(patternSlice(stamp, numBytes));
}

export function hasPattern(dm: DeviceMemory, byteOffset: number, numBytes: number, stamp: number): boolean {
  assert.ok(dm.memory !== null);
  return Buffer.from(dm.memory.buffer, byteOffset, numBytes).equals(patternSlice(stamp, numBytes));
}

export function assertSound(dm: DeviceMemory): void {
  assert.deepEqual(dm.auditProblems(), []);
}

/** Physical page of a block, from its byte offset. */
export function physPage(dm: DeviceMemory, byteOffset: number): number {
  return Math.floor((byteOffset - dm.options.prefixBytes) / dm.options.pageBytes);
}
