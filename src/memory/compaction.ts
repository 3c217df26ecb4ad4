/**
 * Compaction: slide every occupied unit (a used KV page, or a whole weight region) towards one end
 * of the device, keeping their order, so the free pages become one contiguous run.
 *
 * When: only inside DeviceMemory.allocWeights, when the free total covers the request but no free
 * run does. The device scheduler calls allocWeights only at safe points between steps, so no kernel
 * is reading a block or a weight while it moves.
 *
 * Why a slide (LISP2-style) and not a targeted move: each unit moves to an address on the packed
 * side of its current one, so its destination holds only free pages or its own old pages; a move is
 * one memmove (copyWithin), never needs scratch space, and cannot fail. Both directions are costed
 * first and the cheaper one (fewer bytes copied) is run.
 *
 * Preconditions: no reserved KV pages (DeviceMemory releases them first; they are idle anyway).
 */
import { internal, type PagePool } from "./page-pool.ts";
import type { WeightArena, WeightRegionImpl } from "./weight-arena.ts";
import type { KvSpaceImpl } from "./kv-space.ts";
import { buildOwnership, OWNER_FREE, OWNER_WEIGHTS, type Ownership } from "./ownership.ts";

export interface WeightMove {
  readonly region: WeightRegionImpl;
  readonly oldByteOffset: number;
}

export interface CompactionResult {
  readonly movedBytes: number;
  /** Regions whose offset changed, in the order they moved. */
  readonly weightMoves: readonly WeightMove[];
}

type Direction = "down" | "up";

export function compact(pool: PagePool, arena: WeightArena, spaces: readonly KvSpaceImpl[]): CompactionResult {
  // The slide reads the map only ahead of its cursor, where moves never write, so one map serves
  // both dry runs and the real one.
  const map = buildOwnership(pool, arena, spaces, null);
  const spaceAt = (slot: number): KvSpaceImpl => {
    const s = spaces.find((x) => x.slot === slot);
    if (s === undefined) throw internal(`page owned by unknown space slot ${slot}`);
    return s;
  };
  const down = slide(pool, map, arena, spaceAt, "down", false);
  const up = slide(pool, map, arena, spaceAt, "up", false);
  return slide(pool, map, arena, spaceAt, down.movedBytes <= up.movedBytes ? "down" : "up", true);
}

/** With apply = false only counts the bytes a slide would copy. */
function slide(
  pool: PagePool,
  map: Ownership,
  arena: WeightArena,
  spaceAt: (slot: number) => KvSpaceImpl,
  dir: Direction,
  apply: boolean,
): CompactionResult {
  const total = pool.totalPages;
  const moves: WeightMove[] = [];
  let movedBytes = 0;
  // down: [0, dst) packed, [dst, p) free.  up: [dst, total) packed, (p, dst) free.
  let dst = dir === "down" ? 0 : total;
  let p = dir === "down" ? 0 : total - 1;
  while (dir === "down" ? p < total : p >= 0) {
    const owner = map.owner[p]!;
    if (owner === OWNER_FREE) {
      p += dir === "down" ? 1 : -1;
      continue;
    }
    if (owner === OWNER_WEIGHTS) {
      const region = arena.atSlot(map.tag[p]!);
      const len = region.numPages;
      const first = dir === "down" ? p : p - len + 1;
      if (region.firstPage !== first) throw internal(`weight region of ${region.modelId} not where its pages say`);
      const target = dir === "down" ? dst : dst - len;
      if (target !== first) {
        movedBytes += region.bytes;
        if (apply) {
          moves.push({ region, oldByteOffset: region.byteOffset });
          arena.move(region, target);
        }
      }
      dst = dir === "down" ? dst + len : dst - len;
      p = dir === "down" ? first + len : first - 1;
      continue;
    }
    const target = dir === "down" ? dst : dst - 1;
    if (target !== p) {
      movedBytes += pool.pageBytes;
      if (apply) moveKvPage(pool, spaceAt(owner), map.tag[p]!, p, target);
    }
    dst = dir === "down" ? dst + 1 : dst - 1;
    p += dir === "down" ? 1 : -1;
  }
  return { movedBytes, weightMoves: moves };
}

function moveKvPage(pool: PagePool, space: KvSpaceImpl, vp: number, src: number, dst: number): void {
  if (vp < 0) throw internal(`reserved KV page ${src} present during compaction`);
  pool.copyPages(src, dst, pool.pageBytes);
  pool.release(src);
  pool.take(dst);
  space.relocate(vp, dst);
}
