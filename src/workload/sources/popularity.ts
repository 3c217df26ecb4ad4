/**
 * Real per-model popularity tables (shares summing to 1, most popular first), for synthetic workloads that want
 * a measured rather than a Zipf law: LMSYS-Chat-1M 125-day (25 models), LMSYS day 55 (16 models, MuxServe),
 * Arena 27-model request counts, GenTD26 (87 diffusion base models; popularity only).
 */
import { readArenaTrace } from "./arena.ts";
import { csvLines, dataError, parseNumberCell, readTraceDataText, traceDataPath } from "./paths.ts";

export const POPULARITY_SOURCES = ["lmsys125", "lmsys-day55", "arena", "gentd26"] as const;
export type PopularitySource = (typeof POPULARITY_SOURCES)[number];

export interface Popularity {
  readonly source: string;
  /** Source model names, most popular first. */
  readonly names: readonly string[];
  /** Shares, descending, summing to 1. */
  readonly shares: Float64Array;
}

function fromWeights(source: string, names: string[], weights: number[]): Popularity {
  const order = names.map((_, i) => i).sort((a, b) => weights[b]! - weights[a]! || a - b);
  const total = weights.reduce((s, w) => s + w, 0);
  return {
    source,
    names: order.map((i) => names[i]!),
    shares: Float64Array.from(order.map((i) => weights[i]! / total)),
  };
}

export function readPopularity(source: PopularitySource, tracesDir?: string): Popularity {
  switch (source) {
    case "lmsys125": {
      const rel = "muxserve_lmsys_chat_1m/lmsys_chat_1m_model_avg_rate_125days.csv";
      const file = traceDataPath(tracesDir, rel);
      const lines = csvLines(readTraceDataText(tracesDir, rel));
      const h = (lines[0] ?? "").split(",");
      const cm = h.indexOf("model");
      const cr = h.indexOf("avg_rate_rps_over_125_days");
      if (cm < 0 || cr < 0) throw dataError(file, 1, "unexpected header");
      const names: string[] = [];
      const w: number[] = [];
      lines.slice(1).forEach((l, i) => {
        const c = l.split(",");
        names.push(c[cm]!);
        w.push(parseNumberCell(c[cr], file, i + 2, "avg_rate_rps_over_125_days"));
      });
      return fromWeights(source, names, w);
    }
    case "lmsys-day55": {
      const rel = "muxserve_lmsys_chat_1m/lmsys_day55_16models_rates.csv";
      const file = traceDataPath(tracesDir, rel);
      const lines = csvLines(readTraceDataText(tracesDir, rel));
      const h = (lines[0] ?? "").split(",");
      const cn = h.indexOf("llm_name");
      const cr = h.indexOf("rate_rps_original");
      if (cn < 0 || cr < 0) throw dataError(file, 1, "unexpected header");
      const byName = new Map<string, number>();
      lines.slice(1).forEach((l, i) => {
        const c = l.split(",");
        // the same 16 rows repeat once per condense factor; rate_rps_original is the same in each
        byName.set(c[cn]!, parseNumberCell(c[cr], file, i + 2, "rate_rps_original"));
      });
      return fromWeights(source, [...byName.keys()], [...byName.values()]);
    }
    case "arena": {
      const t = readArenaTrace(tracesDir);
      const counts = new Map<number, number>();
      for (let i = 0; i < t.numRequests; i++) counts.set(t.modelId[i]!, (counts.get(t.modelId[i]!) ?? 0) + 1);
      return fromWeights(source, [...counts.keys()].map((k) => `arena-${k}`), [...counts.values()]);
    }
    case "gentd26": {
      const rel = "alibaba_gentd26/lora_request_trace.csv";
      const file = traceDataPath(tracesDir, rel);
      const lines = csvLines(readTraceDataText(tracesDir, rel));
      const h = (lines[0] ?? "").split(",");
      const cm = h.indexOf("checkpoint_model_version_id");
      if (cm < 0) throw dataError(file, 1, "header lacks checkpoint_model_version_id");
      const counts = new Map<string, number>();
      for (let i = 1; i < lines.length; i++) {
        const m = lines[i]!.split(",")[cm] ?? "";
        if (m === "") continue;
        counts.set(m, (counts.get(m) ?? 0) + 1);
      }
      return fromWeights(source, [...counts.keys()], [...counts.values()]);
    }
  }
}
