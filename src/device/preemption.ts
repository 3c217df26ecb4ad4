/**
 * Which running sequence gives its KV blocks back when a decoding sequence cannot get a block.
 *
 * The running list is in admission order, which follows queue priority, so its tail holds the
 * lowest-priority sequences (vLLM preempts from the tail the same way). Only sequences behind the
 * needy one are candidates, so a step never gives a block away from a more urgent sequence, and
 * never from one already placed in the step being planned (decodes are planned head to tail).
 * Same-model candidates come first: their freed blocks land in the needy sequence's own KV space,
 * so one preemption surely helps. Another model's freed blocks help only once whole pages empty,
 * so those are taken only when no same-model candidate is left. No candidate → the needy sequence
 * preempts itself (caller's job).
 */
import type { Request } from "./request.ts";

/** Index in `running` of the victim, or -1 when none is behind `needyIndex`. */
export function pickPreemptionVictim(running: readonly Request[], needyIndex: number): number {
  const needy = running[needyIndex]!;
  let other = -1;
  for (let i = running.length - 1; i > needyIndex; i--) {
    const r = running[i]!;
    if ((r.kind !== "prefilling" && r.kind !== "decoding") || r.numBlocks === 0) continue;
    if (r.modelIndex === needy.modelIndex) return i;
    if (other < 0) other = i;
  }
  return other;
}
