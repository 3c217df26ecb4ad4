/**
 * Usage snapshots and the page-conservation audit. Snapshots are cold-path (admin API, metrics,
 * simulator reports, one per step at most); the audit is for tests and debugging.
 *
 * The invariant the audit checks: every page of the budget is in exactly one place —
 *   free | a weight region | a KV space's used page | a KV space's reserved page —
 * and every counter kept incrementally agrees with a recount from the page tables.
 */
import { PrismError } from "../core/errors.ts";
import type { MemorySnapshot } from "./types.ts";
import type { KvSpaceImpl } from "./kv-space.ts";
import type { PagePool } from "./page-pool.ts";
import { buildOwnership, OWNER_FREE, OWNER_WEIGHTS, TAG_RESERVED } from "./ownership.ts";
import type { WeightArena } from "./weight-arena.ts";
import type { ResolvedMemoryOptions } from "./options.ts";

export interface AccountingView {
  readonly settings: ResolvedMemoryOptions;
  readonly pool: PagePool;
  readonly arena: WeightArena;
  readonly liveSpaces: readonly KvSpaceImpl[];
  readonly totalReservedPages: number;
  readonly numCompactions: number;
  readonly compactionMovedBytes: number;
}

export function takeSnapshot(v: AccountingView): MemorySnapshot {
  const { settings, pool, arena } = v;
  let kvPages = 0;
  for (const s of v.liveSpaces) kvPages += s.mappedPages;
  const weights = [...arena.regions()]
    .sort((a, b) => a.firstPage - b.firstPage)
    .map((r) => ({ modelId: r.modelId, bytes: r.bytes, pages: r.numPages, byteOffset: r.byteOffset }));
  return {
    budgetBytes: settings.budgetBytes,
    pageBytes: settings.pageBytes,
    totalPages: settings.totalPages,
    freePages: pool.freePages,
    headroomPages: settings.headroomPages,
    weightPages: arena.weightPages,
    kvPages,
    kvReservedPages: v.totalReservedPages,
    numCompactions: v.numCompactions,
    compactionMovedBytes: v.compactionMovedBytes,
    weights,
    spaces: v.liveSpaces.map((s) => s.snapshot()),
  };
}

/** Recount everything; returns the list of broken invariants (empty when sound). */
export function auditProblems(v: AccountingView): string[] {
  const { pool, arena } = v;
  const problems: string[] = [];
  const total = pool.totalPages;
  let free = 0;
  let weightPages = 0;
  const kvUsed = new Map<number, number>();
  const kvReserved = new Map<number, number>();
  const map = buildOwnership(pool, arena, v.liveSpaces, problems);
  for (let p = 0; p < total; p++) {
    const owner = map.owner[p]!;
    if (owner === OWNER_FREE) free++;
    else if (owner === OWNER_WEIGHTS) weightPages++;
    else {
      const m = map.tag[p] === TAG_RESERVED ? kvReserved : kvUsed;
      m.set(owner, (m.get(owner) ?? 0) + 1);
    }
  }
  if (free !== pool.freePages || pool.countFreeBits() !== free) {
    problems.push(`free pages: counter ${pool.freePages}, owners ${free}, bitmap ${pool.countFreeBits()}`);
  }
  let regionPages = 0;
  for (const r of arena.regions()) {
    regionPages += r.numPages;
    for (let p = r.firstPage; p < r.firstPage + r.numPages; p++) {
      if (map.owner[p] !== OWNER_WEIGHTS || map.tag[p] !== r.slot) problems.push(`weights of ${r.modelId}: page ${p} not theirs`);
    }
    if (r.numPages * pool.pageBytes < r.bytes) problems.push(`weights of ${r.modelId}: ${r.numPages} pages < ${r.bytes} bytes`);
  }
  if (regionPages !== weightPages || arena.weightPages !== weightPages) {
    problems.push(`weight pages: counter ${arena.weightPages}, regions ${regionPages}, owners ${weightPages}`);
  }
  let usedSum = 0;
  let reservedSum = 0;
  const slots = new Set<number>();
  for (const s of v.liveSpaces) {
    slots.add(s.slot);
    if ((kvUsed.get(s.slot) ?? 0) !== s.usedPages) problems.push(`${s.modelId}: owns ${kvUsed.get(s.slot) ?? 0} used pages, counts ${s.usedPages}`);
    if ((kvReserved.get(s.slot) ?? 0) !== s.reservedPages) problems.push(`${s.modelId}: owns ${kvReserved.get(s.slot) ?? 0} reserved pages, counts ${s.reservedPages}`);
    usedSum += s.usedPages;
    reservedSum += s.reservedPages;
    s.audit(problems);
  }
  for (const slot of [...kvUsed.keys(), ...kvReserved.keys()]) if (!slots.has(slot)) problems.push(`pages owned by dead space slot ${slot}`);
  if (reservedSum !== v.totalReservedPages) problems.push(`reserved pages: counter ${v.totalReservedPages}, spaces ${reservedSum}`);
  if (free + weightPages + usedSum + reservedSum !== total) {
    problems.push(`conservation: free ${free} + weights ${weightPages} + kv used ${usedSum} + kv reserved ${reservedSum} != ${total}`);
  }
  return problems;
}

export function assertSound(v: AccountingView): void {
  const problems = auditProblems(v);
  if (problems.length > 0) {
    throw new PrismError("PRISM_INTERNAL", `device memory audit failed: ${problems.slice(0, 5).join("; ")}`, { problems });
  }
}
