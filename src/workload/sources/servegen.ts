/**
 * ServeGen (Alibaba Model Studio) per-client data (workloads.md §2.3): per 600 s window a rate and a fitted
 * Gamma/Weibull inter-arrival law; per 6 h window empirical length PMFs (xz-compressed JSON whose values are
 * Python dict literals, parsed with a strict regex, never eval'd).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { PrismError } from "../../core/errors.ts";
import { DiscreteSampler } from "../samplers.ts";
import { csvLines, dataError, parseNumberCell, readTraceDataText, resolveTracesDir, traceDataPath } from "./paths.ts";

export const SERVEGEN_POOLS = {
  "m-large": "servegen/data/language/m-large",
  "m-mid": "servegen/data/language/m-mid",
  "m-small": "servegen/data/language/m-small",
  "deepseek-r1": "servegen/data/reason/deepseek-r1",
  "mm-image": "servegen/data/multimodal/mm-image",
} as const;
export type ServegenPool = keyof typeof SERVEGEN_POOLS;
export const SERVEGEN_WINDOW_S = 600;
export const SERVEGEN_LENGTH_WINDOW_S = 6 * 3600;

export function isServegenPool(s: string): s is ServegenPool {
  return Object.hasOwn(SERVEGEN_POOLS, s);
}

/** Fitted inter-arrival law of one 600 s window. `kind: "idle"` = no requests in the window. */
export type WindowPattern =
  | { readonly kind: "idle" }
  | { readonly kind: "gamma"; readonly shape: number; readonly scale: number }
  | { readonly kind: "weibull"; readonly shape: number; readonly scale: number };

export interface ClientTrace {
  readonly pool: ServegenPool;
  readonly clientId: number;
  /** Window start, seconds from the trace origin (0, 600, ...). */
  readonly windowStartS: Float64Array;
  readonly rateRps: Float64Array;
  readonly cv: Float64Array;
  readonly patterns: readonly WindowPattern[];
  readonly hasDataset: boolean;
}

/** Client ids of a pool that have a trace CSV, ascending. */
export function listServegenClients(pool: ServegenPool, tracesDir?: string): number[] {
  const dir = join(resolveTracesDir(tracesDir), SERVEGEN_POOLS[pool]);
  if (!existsSync(dir)) {
    throw new PrismError("PRISM_FILE_NOT_FOUND", `ServeGen pool directory not found: ${dir} (expected ../shared/traces, or pass --traces-dir)`, { path: dir });
  }
  const ids: number[] = [];
  for (const f of readdirSync(dir)) {
    const m = /^chunk-(\d+)-trace\.csv$/.exec(f);
    if (m) ids.push(Number(m[1]));
  }
  return ids.sort((a, b) => a - b);
}

export function readServegenClient(pool: ServegenPool, clientId: number, tracesDir?: string): ClientTrace {
  const rel = `${SERVEGEN_POOLS[pool]}/chunk-${clientId}-trace.csv`;
  const file = traceDataPath(tracesDir, rel);
  const lines = csvLines(readTraceDataText(tracesDir, rel));
  const n = lines.length;
  const windowStartS = new Float64Array(n);
  const rateRps = new Float64Array(n);
  const cv = new Float64Array(n);
  const patterns: WindowPattern[] = [];
  for (let i = 0; i < n; i++) {
    const c = lines[i]!.split(",");
    if (c.length < 6) throw dataError(file, i + 1, `expected 6 columns (t_s,rate_rps,cv,pattern,shape,scale), got ${c.length}`);
    windowStartS[i] = parseNumberCell(c[0], file, i + 1, "t_s");
    rateRps[i] = parseNumberCell(c[1], file, i + 1, "rate_rps");
    cv[i] = Number(c[2]) || 0;
    const pat = c[3]!.trim();
    if (pat === "" || !(rateRps[i]! > 0)) {
      patterns.push({ kind: "idle" });
      rateRps[i] = 0;
      continue;
    }
    const shape = parseNumberCell(c[4], file, i + 1, "shape");
    const scale = parseNumberCell(c[5], file, i + 1, "scale");
    if (pat === "Gamma") patterns.push({ kind: "gamma", shape, scale });
    else if (pat === "Weibull") patterns.push({ kind: "weibull", shape, scale });
    else throw dataError(file, i + 1, `unknown pattern '${pat}'`);
  }
  const hasDataset = existsSync(join(resolveTracesDir(tracesDir), `${SERVEGEN_POOLS[pool]}/chunk-${clientId}-dataset.json.xz`));
  return { pool, clientId, windowStartS, rateRps, cv, patterns, hasDataset };
}

/** Mean rate over windows [fromWindow, toWindow). */
export function meanClientRate(c: ClientTrace, fromWindow: number, toWindow: number): number {
  const hi = Math.min(toWindow, c.rateRps.length);
  if (hi <= fromWindow) return 0;
  let s = 0;
  for (let w = fromWindow; w < hi; w++) s += c.rateRps[w]!;
  return s / (hi - fromWindow);
}

/** Length PMFs of one client for one 6 h window; null fields = no requests then. */
export interface ClientLengthWindow {
  readonly windowStartS: number;
  readonly input: LengthPmf;
  readonly output: LengthPmf;
}

/**
 * Input tokens may be the sum of independent parts (mm-image: text + image + audio + video tokens); sampling
 * draws each part and adds them.
 */
export interface LengthPmf {
  readonly parts: readonly DiscreteSampler[];
}

/**
 * `{224: 0.0003, 225: 0.0007}` → sampler; strict: anything but `number: number` pairs is an error. `{}` (no
 * requests in the window) gives null.
 */
export function parsePythonPmf(text: string, where: string): DiscreteSampler | null {
  const s = text.trim();
  if (!s.startsWith("{") || !s.endsWith("}")) throw new PrismError("PRISM_TRACE_INVALID", `${where}: PMF is not a dict literal`, { where });
  const body = s.slice(1, -1).trim();
  const values: number[] = [];
  const weights: number[] = [];
  if (body !== "") {
    const num = "[-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?";
    const pair = new RegExp(`^\\s*(${num})\\s*:\\s*(${num})\\s*$`);
    for (const item of body.split(",")) {
      if (item.trim() === "") continue;
      const m = pair.exec(item);
      if (!m) throw new PrismError("PRISM_TRACE_INVALID", `${where}: bad PMF entry '${item.trim().slice(0, 40)}'`, { where });
      values.push(Number(m[1]));
      weights.push(Number(m[2]));
    }
  }
  if (values.length === 0) return null;
  return new DiscreteSampler(values, weights);
}

const INPUT_FIELDS_MM = ["text_tokens", "image_tokens", "audio_tokens", "video_tokens"] as const;

const datasetCache = new Map<string, Map<number, ClientLengthWindow>>();

/**
 * Length windows of a client (decompressed with the system `xz`; Node's zlib has no LZMA). Cached per
 * process. Throws PRISM_FILE_NOT_FOUND when the client has no dataset file (55 heavy clients lack one).
 */
export function readServegenLengths(pool: ServegenPool, clientId: number, tracesDir?: string): Map<number, ClientLengthWindow> {
  const rel = `${SERVEGEN_POOLS[pool]}/chunk-${clientId}-dataset.json.xz`;
  const file = traceDataPath(tracesDir, rel);
  const cached = datasetCache.get(file);
  if (cached) return cached;
  let json: string;
  try {
    json = execFileSync("xz", ["-dc", file], { encoding: "utf8", maxBuffer: 512 * 1024 * 1024 });
  } catch (e) {
    throw new PrismError("PRISM_FILE_NOT_FOUND", `cannot decompress ${file} with 'xz -dc' (is xz-utils installed?): ${(e as Error).message}`, { path: file });
  }
  let obj: Record<string, Record<string, string>>;
  try {
    obj = JSON.parse(json) as typeof obj;
  } catch (e) {
    throw new PrismError("PRISM_TRACE_INVALID", `${file}: bad JSON: ${(e as Error).message}`, { path: file });
  }
  const out = new Map<number, ClientLengthWindow>();
  for (const [k, fields] of Object.entries(obj)) {
    const start = Number(k);
    if (!Number.isFinite(start)) throw new PrismError("PRISM_TRACE_INVALID", `${file}: window key '${k}' is not a number`, { path: file });
    if (fields === null || typeof fields !== "object" || Object.keys(fields).length === 0) continue;
    const where = `${file} window ${k}`;
    const outField = fields["output_tokens"];
    if (typeof outField !== "string") throw new PrismError("PRISM_TRACE_INVALID", `${where}: no output_tokens`, { path: file });
    // an empty PMF in any field means the window has no usable length data: skip it, as for `{}` windows
    const inputFields = typeof fields["input_tokens"] === "string" ? ["input_tokens"] : INPUT_FIELDS_MM.filter((f) => typeof fields[f] === "string");
    if (inputFields.length === 0) throw new PrismError("PRISM_TRACE_INVALID", `${where}: no input_tokens or text/image tokens`, { path: file });
    const inputParts = inputFields.map((f) => parsePythonPmf(fields[f]!, `${where} ${f}`));
    const outputPart = parsePythonPmf(outField, `${where} output_tokens`);
    if (outputPart === null || inputParts.some((p) => p === null)) continue;
    out.set(start, { windowStartS: start, input: { parts: inputParts as DiscreteSampler[] }, output: { parts: [outputPart] } });
  }
  datasetCache.set(file, out);
  return out;
}

/** Total rate per window of a pool, and active clients (from derived/pool_total_rate_10min.csv). */
export function readPoolEnvelope(pool: ServegenPool, tracesDir?: string): { windowStartS: Float64Array; totalRateRps: Float64Array } {
  const rel = "servegen/derived/pool_total_rate_10min.csv";
  const file = traceDataPath(tracesDir, rel);
  const lines = csvLines(readTraceDataText(tracesDir, rel));
  const t: number[] = [];
  const r: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const c = lines[i]!.split(",");
    if (c[0] !== pool) continue;
    t.push(parseNumberCell(c[1], file, i + 1, "t_s"));
    r.push(parseNumberCell(c[2], file, i + 1, "total_rate_rps"));
  }
  if (t.length === 0) throw dataError(file, 1, `no rows for pool ${pool}`);
  return { windowStartS: Float64Array.from(t), totalRateRps: Float64Array.from(r) };
}
