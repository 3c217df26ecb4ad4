/**
 * Which resident model to unload when another model needs its memory (time sharing). Pure
 * functions of (models, now); the scheduler applies the choice.
 *
 * Never evicted: pinned models, models with a request running (prefilling/decoding: "in flight"),
 * models not resident (a load in flight), the model being served, and a model just activated for
 * its queue head until it admitted that head (every activation serves at least one request).
 * Candidates, least valuable first:
 *   tier 1: idle (nothing queued, nothing running);
 *   tier 2: only queued requests, and only when the caller serves a request more urgent than all of
 *           them (the device-wide queue head). Without tier 2, a steady stream to a resident model
 *           would starve a more urgent model that needs its memory, and two models whose weights
 *           cannot be co-resident would deadlock once both have queued work.
 * Within a tier: longest idle first (least recently useful), then the cheaper reload (fewer weight
 * bytes), then device order, so the choice is deterministic.
 */
import type { ModelEntry } from "./model-entry.ts";

export function evictionTier(m: ModelEntry, forModel: ModelEntry, allowQueued: boolean): 0 | 1 | 2 {
  if (m === forModel || m.pinned || m.residency.kind !== "resident" || m.numRunning > 0) return 0;
  if (m.freshlyActivated && m.queue.size > 0) return 0;
  if (m.queue.size === 0) return 1;
  return allowQueued ? 2 : 0;
}

export function pickEvictionVictim(models: readonly (ModelEntry | null)[], forModel: ModelEntry, allowQueued: boolean, nowMs: number): ModelEntry | null {
  let best: ModelEntry | null = null;
  let bestTier = 0;
  for (const m of models) {
    if (m === null) continue;
    const tier = evictionTier(m, forModel, allowQueued);
    if (tier === 0) continue;
    if (best === null || tier < bestTier || (tier === bestTier && lessValuable(m, best, nowMs))) {
      best = m;
      bestTier = tier;
    }
  }
  return best;
}

/** Pages all candidates would give back if every one were evicted. */
export function evictablePages(models: readonly (ModelEntry | null)[], forModel: ModelEntry, allowQueued: boolean): number {
  let pages = 0;
  for (const m of models) if (m !== null && evictionTier(m, forModel, allowQueued) !== 0) pages += m.weightPages;
  return pages;
}

function lessValuable(a: ModelEntry, b: ModelEntry, nowMs: number): boolean {
  const idleA = nowMs - a.idleSinceMs;
  const idleB = nowMs - b.idleSinceMs;
  if (idleA !== idleB) return idleA > idleB;
  if (a.profile.weightBytes !== b.profile.weightBytes) return a.profile.weightBytes < b.profile.weightBytes;
  return a.index < b.index;
}
