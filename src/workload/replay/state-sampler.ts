/**
 * `--sample-state-ms N`: poll the gateway's /admin/state during a run and keep, per sample, the KV pages each
 * model holds. The state document's shape belongs to the gateway; we read it tolerantly: every object in it
 * that names a model (`model`, `modelId` or `id`, a string) and carries a page count (`kvPages`, `usedPages`,
 * `numPages` or `pages`, a number) adds that count to the model's total for the sample.
 */

export interface StateSample {
  /** Ms since the run's origin (the trace's t = 0). */
  readonly tMs: number;
  /** KV pages per served model id. */
  readonly kvPagesByModel: Readonly<Record<string, number>>;
}

const MODEL_KEYS = ["model", "modelId", "id"] as const;
const PAGE_KEYS = ["kvPages", "usedPages", "numPages", "pages"] as const;

export function extractKvPages(doc: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  const visit = (x: unknown, depth: number): void => {
    if (depth > 12 || x === null || typeof x !== "object") return;
    if (Array.isArray(x)) {
      for (const y of x) visit(y, depth + 1);
      return;
    }
    const o = x as Record<string, unknown>;
    const model = MODEL_KEYS.map((k) => o[k]).find((v): v is string => typeof v === "string");
    const pages = PAGE_KEYS.map((k) => o[k]).find((v): v is number => typeof v === "number" && Number.isFinite(v));
    if (model !== undefined && pages !== undefined) out[model] = (out[model] ?? 0) + pages;
    for (const v of Object.values(o)) if (v !== null && typeof v === "object") visit(v, depth + 1);
  };
  visit(doc, 0);
  return out;
}
