/** The Prism/S-LoRA 27-model LMSYS Arena trace (workloads.md §2.4): `req_id,arrival_s,model_id,prompt_len,output_len`. */
import { csvLines, dataError, parseNumberCell, readTraceDataText, traceDataPath } from "./paths.ts";

export const ARENA_FILE = "slora_prism_lmsys_arena/real_trace_27models_600s.csv";

export interface ArenaTrace {
  readonly numRequests: number;
  readonly arrivalS: Float64Array;
  /** Adapter index k of `dummy-lora-7b-rank-8-<k>` (0–26). */
  readonly modelId: Int32Array;
  readonly inputTokens: Int32Array;
  readonly outputTokens: Int32Array;
  readonly spanS: number;
}

export function readArenaTrace(tracesDir?: string): ArenaTrace {
  const file = traceDataPath(tracesDir, ARENA_FILE);
  const lines = csvLines(readTraceDataText(tracesDir, ARENA_FILE));
  const header = (lines[0] ?? "").split(",");
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw dataError(file, 1, `header lacks ${name}`);
    return i;
  };
  const ca = col("arrival_s");
  const cm = col("model_id");
  const cp = col("prompt_len");
  const co = col("output_len");
  const n = lines.length - 1;
  const arrivalS = new Float64Array(n);
  const modelId = new Int32Array(n);
  const inputTokens = new Int32Array(n);
  const outputTokens = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cells = lines[i + 1]!.split(",");
    arrivalS[i] = parseNumberCell(cells[ca], file, i + 2, "arrival_s");
    if (i > 0 && arrivalS[i]! < arrivalS[i - 1]!) throw dataError(file, i + 2, "arrivals not sorted");
    modelId[i] = parseNumberCell(cells[cm], file, i + 2, "model_id");
    inputTokens[i] = parseNumberCell(cells[cp], file, i + 2, "prompt_len");
    outputTokens[i] = parseNumberCell(cells[co], file, i + 2, "output_len");
  }
  return { numRequests: n, arrivalS, modelId, inputTokens, outputTokens, spanS: n > 0 ? arrivalS[n - 1]! - arrivalS[0]! : 0 };
}
