/**
 * The page → owner map, rebuilt on demand from the KV spaces' page tables and the weight regions.
 * Who uses it: compaction (to walk the device in address order) and the audit (to prove no page is
 * claimed twice and that claimed ⇔ not free). Both are cold paths, so the map is a fresh pair of
 * typed arrays each time rather than per-page state kept up to date on the hot path.
 */
import { internal, type PagePool } from "./page-pool.ts";
import type { WeightArena } from "./weight-arena.ts";

/** owner[] value of a free page. */
export const OWNER_FREE = -1;
/** owner[] value of a page inside a weight region. */
export const OWNER_WEIGHTS = -2;
/** tag[] value of a KV page that is mapped but idle (in its space's reserved pool). */
export const TAG_RESERVED = -1;

export interface Ownership {
  /** Per physical page: OWNER_FREE, OWNER_WEIGHTS, or the slot of the KV space holding it. */
  readonly owner: Int32Array;
  /** KV → virtual page index (TAG_RESERVED when reserved); weights → region slot. */
  readonly tag: Int32Array;
}

/** Something that holds pages and can list them. */
export interface PageHolder {
  claimPages(claim: (page: number, owner: number, tag: number) => void): void;
}

/**
 * Build the map. With `problems`, every inconsistency is reported there; without, the first one
 * throws PRISM_INTERNAL (compaction must not move pages it does not understand).
 */
export function buildOwnership(pool: PagePool, arena: WeightArena, spaces: readonly PageHolder[], problems: string[] | null): Ownership {
  const total = pool.totalPages;
  const owner = new Int32Array(total).fill(OWNER_FREE);
  const tag = new Int32Array(total);
  const report = (msg: string): void => {
    if (problems === null) throw internal(msg);
    problems.push(msg);
  };
  const claim = (page: number, o: number, t: number): void => {
    if (!(page >= 0 && page < total)) return report(`owner ${o} claims page ${page} outside the device`);
    if (owner[page] !== OWNER_FREE) return report(`page ${page} claimed by owner ${owner[page]} and by owner ${o}`);
    owner[page] = o;
    tag[page] = t;
  };
  for (const r of arena.regions()) {
    for (let p = r.firstPage; p < r.firstPage + r.numPages; p++) claim(p, OWNER_WEIGHTS, r.slot);
  }
  for (const s of spaces) s.claimPages(claim);
  for (let p = 0; p < total; p++) {
    if ((owner[p] === OWNER_FREE) !== pool.isFree(p)) report(`page ${p}: owner ${owner[p]} but free bit ${pool.isFree(p)}`);
  }
  return { owner, tag };
}
