/**
 * Readers for the single-service traces (no model column): Azure LLM 2023 (code, conv), Mooncake (conversation,
 * synthetic), and the length-only distributions (ShareGPT, arXiv, BWB). All return the same columnar shape.
 */
import { csvLines, dataError, parseNumberCell, readTraceDataText, traceDataPath } from "./paths.ts";

export interface ServiceTrace {
  readonly name: string;
  readonly numRequests: number;
  /** Seconds from the first request (sorted). */
  readonly arrivalS: Float64Array;
  readonly inputTokens: Int32Array;
  readonly outputTokens: Int32Array;
  /** Time span of the source, seconds (last arrival − first). */
  readonly spanS: number;
}

/** Token-length pairs without timestamps. */
export interface LengthPairs {
  readonly name: string;
  readonly inputTokens: Int32Array;
  readonly outputTokens: Int32Array;
}

export const AZURE_FILES = { code: "azure_llm_2023/AzureLLMInferenceTrace_code.csv", conv: "azure_llm_2023/AzureLLMInferenceTrace_conv.csv" } as const;
export const MOONCAKE_FILES = {
  conversation: "mooncake_fast25/conversation_trace.jsonl",
  synthetic: "mooncake_fast25/synthetic_trace.jsonl",
} as const;
export const LENGTH_FILES = {
  sharegpt: "length_dists/sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
  arxiv: "length_dists/arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv",
  bwb: "length_dists/bwb_stats_llama2_tokenizer_filtered_v2.csv",
} as const;

const TS = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/;

/**
 * A naive `YYYY-MM-DD HH:MM:SS[.fffffff]` string as (days since the Unix epoch, seconds of the day), read as UTC.
 * Parsed by hand: V8's Date reads it as local time and truncates to ms (workloads.md §2.1). Two parts because
 * epoch seconds in one double keep only ~0.2 µs, coarser than the trace's 100 ns.
 */
export function parseNaiveTimestamp(s: string): { days: number; secondsOfDay: number } | null {
  const m = TS.exec(s.trim());
  if (!m) return null;
  const days = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / 86_400_000;
  const frac = m[7] !== undefined ? Number(`0.${m[7]}`) : 0;
  return { days, secondsOfDay: Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]) + frac };
}

/** Seconds from `origin` to `t`, both naive timestamps (NaN when either does not parse). */
export function naiveTimestampDiffS(t: string, origin: string): number {
  const a = parseNaiveTimestamp(t);
  const b = parseNaiveTimestamp(origin);
  if (!a || !b) return NaN;
  return (a.days - b.days) * 86_400 + (a.secondsOfDay - b.secondsOfDay);
}

export function readAzureTrace(which: keyof typeof AZURE_FILES, tracesDir?: string): ServiceTrace {
  const file = traceDataPath(tracesDir, AZURE_FILES[which]);
  const lines = csvLines(readTraceDataText(tracesDir, AZURE_FILES[which]));
  if (lines[0] !== "TIMESTAMP,ContextTokens,GeneratedTokens") throw dataError(file, 1, `unexpected header '${lines[0] ?? ""}'`);
  const n = lines.length - 1;
  const arrivalS = new Float64Array(n);
  const inputTokens = new Int32Array(n);
  const outputTokens = new Int32Array(n);
  const origin = n > 0 ? (lines[1]!.split(",")[0] ?? "") : "";
  for (let i = 0; i < n; i++) {
    const cells = lines[i + 1]!.split(",");
    const t = naiveTimestampDiffS(cells[0] ?? "", origin);
    if (!Number.isFinite(t)) throw dataError(file, i + 2, `bad TIMESTAMP '${cells[0] ?? ""}'`);
    arrivalS[i] = t;
    if (i > 0 && arrivalS[i]! < arrivalS[i - 1]!) throw dataError(file, i + 2, "timestamps not sorted");
    inputTokens[i] = parseNumberCell(cells[1], file, i + 2, "ContextTokens");
    outputTokens[i] = parseNumberCell(cells[2], file, i + 2, "GeneratedTokens");
  }
  return { name: `azure-${which}`, numRequests: n, arrivalS, inputTokens, outputTokens, spanS: n > 0 ? arrivalS[n - 1]! : 0 };
}

export function readMooncakeTrace(which: keyof typeof MOONCAKE_FILES, tracesDir?: string): ServiceTrace {
  const file = traceDataPath(tracesDir, MOONCAKE_FILES[which]);
  const lines = csvLines(readTraceDataText(tracesDir, MOONCAKE_FILES[which]));
  const n = lines.length;
  const arrivalS = new Float64Array(n);
  const inputTokens = new Int32Array(n);
  const outputTokens = new Int32Array(n);
  let t0 = 0;
  for (let i = 0; i < n; i++) {
    let rec: { timestamp?: unknown; input_length?: unknown; output_length?: unknown };
    try {
      rec = JSON.parse(lines[i]!) as typeof rec;
    } catch (e) {
      throw dataError(file, i + 1, `bad JSON: ${(e as Error).message}`);
    }
    const ts = rec.timestamp;
    const inp = rec.input_length;
    const out = rec.output_length;
    if (typeof ts !== "number" || typeof inp !== "number" || typeof out !== "number") {
      throw dataError(file, i + 1, "expected numeric timestamp, input_length, output_length");
    }
    if (i === 0) t0 = ts;
    arrivalS[i] = (ts - t0) / 1000;
    if (i > 0 && arrivalS[i]! < arrivalS[i - 1]!) throw dataError(file, i + 1, "timestamps not sorted");
    inputTokens[i] = inp;
    outputTokens[i] = out;
  }
  return { name: `mooncake-${which}`, numRequests: n, arrivalS, inputTokens, outputTokens, spanS: n > 0 ? arrivalS[n - 1]! : 0 };
}

export function readLengthPairs(which: keyof typeof LENGTH_FILES, tracesDir?: string): LengthPairs {
  const file = traceDataPath(tracesDir, LENGTH_FILES[which]);
  const lines = csvLines(readTraceDataText(tracesDir, LENGTH_FILES[which]));
  const header = (lines[0] ?? "").split(",");
  const pi = header.indexOf("num_prefill_tokens");
  const di = header.indexOf("num_decode_tokens");
  if (pi < 0 || di < 0) throw dataError(file, 1, "header lacks num_prefill_tokens/num_decode_tokens");
  const n = lines.length - 1;
  const inputTokens = new Int32Array(n);
  const outputTokens = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cells = lines[i + 1]!.split(",");
    inputTokens[i] = parseNumberCell(cells[pi], file, i + 2, "num_prefill_tokens");
    outputTokens[i] = parseNumberCell(cells[di], file, i + 2, "num_decode_tokens");
  }
  return { name: which, inputTokens, outputTokens };
}
