/**
 * The one request-trace format used by `prism trace gen`, `prism bench` and the simulator.
 *
 * On disk: CSV with a header naming at least `arrival_s,model,input_tokens,output_tokens` (any order; extra
 * columns are ignored), one request per line, sorted by arrival. Leading lines starting with `#` are comments
 * (generators record their parameters there). No CSV quoting: model names may not contain `,` `"` or newlines.
 *
 * In memory: columns in typed arrays, because the simulator replays ~1M requests and a million row objects
 * would cost ~100 MB and GC pauses. Model names are interned into a table; `modelIndex[i]` points into it.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { PrismError } from "../core/errors.ts";

export const TRACE_COLUMNS = ["arrival_s", "model", "input_tokens", "output_tokens"] as const;
export type TraceColumn = (typeof TRACE_COLUMNS)[number];

/** A request trace in columnar form. Invariant: arrivals are finite, >= 0 and non-decreasing. */
export interface Trace {
  readonly numRequests: number;
  /** Distinct model names; `modelIndex` values index this table. */
  readonly modelNames: readonly string[];
  /** Arrival time of each request, seconds from the trace origin. */
  readonly arrivalS: Float64Array;
  readonly modelIndex: Int32Array;
  readonly inputTokens: Int32Array;
  readonly outputTokens: Int32Array;
}

/** One request as an object, for tests and small tools (never on a hot path). */
export interface TraceRow {
  readonly arrivalS: number;
  readonly model: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
}

function invalid(message: string, details: { line: number; column?: string; columnIndex?: number; source?: string }): PrismError {
  const where = details.column !== undefined ? `line ${details.line}, column ${details.column}` : `line ${details.line}`;
  const src = details.source !== undefined ? `${details.source}: ` : "";
  return new PrismError("PRISM_TRACE_INVALID", `${src}${where}: ${message}`, details);
}

const BAD_NAME = /[,"\r\n]/;

/**
 * Parse trace CSV text. Errors are PrismError PRISM_TRACE_INVALID with details
 * `{ line (1-based), column (name), columnIndex (1-based), source }`.
 */
export function parseTrace(text: string, source = "<trace>"): Trace {
  const lines = text.split("\n");
  let lineNo = 0;
  // skip comment/blank lines before the header
  while (lineNo < lines.length) {
    const l = stripCr(lines[lineNo]!);
    if (l.trim() === "" || l.startsWith("#")) lineNo++;
    else break;
  }
  if (lineNo >= lines.length) throw invalid(`empty trace: no header (expected ${TRACE_COLUMNS.join(",")})`, { line: 1, source });
  const header = stripCr(lines[lineNo]!).split(",").map((s) => s.trim());
  const headerLine = lineNo + 1;
  const col: Record<TraceColumn, number> = { arrival_s: -1, model: -1, input_tokens: -1, output_tokens: -1 };
  for (const name of TRACE_COLUMNS) {
    col[name] = header.indexOf(name);
    if (col[name] < 0) {
      throw invalid(`header lacks column '${name}' (expected ${TRACE_COLUMNS.join(",")}; got ${header.join(",")})`, {
        line: headerLine,
        column: name,
        source,
      });
    }
  }
  const numCols = header.length;
  const b = new TraceBuilder(Math.max(16, lines.length - lineNo));
  let lastArrival = -Infinity;
  for (let i = lineNo + 1; i < lines.length; i++) {
    const line = stripCr(lines[i]!);
    if (line === "") continue;
    const lineNum = i + 1;
    if (line.startsWith("#")) continue;
    const cells = line.split(",");
    if (cells.length < numCols) {
      const missing = header[cells.length]!;
      throw invalid(`expected ${numCols} columns, got ${cells.length} (missing '${missing}')`, {
        line: lineNum,
        column: missing,
        columnIndex: cells.length + 1,
        source,
      });
    }
    if (cells.length > numCols) throw invalid(`expected ${numCols} columns, got ${cells.length}`, { line: lineNum, source });
    const arrivalCell = cells[col.arrival_s]!.trim();
    const arrivalS = arrivalCell === "" ? NaN : Number(arrivalCell);
    if (!Number.isFinite(arrivalS) || arrivalS < 0) {
      throw invalid(`arrival_s must be a finite number >= 0, got '${arrivalCell}'`, cellDetails(lineNum, "arrival_s", col, source));
    }
    if (arrivalS < lastArrival) {
      throw invalid(`arrivals must be sorted: ${arrivalS} < previous ${lastArrival}`, cellDetails(lineNum, "arrival_s", col, source));
    }
    lastArrival = arrivalS;
    const model = cells[col.model]!.trim();
    if (model === "") throw invalid("model is empty", cellDetails(lineNum, "model", col, source));
    if (model.includes('"')) throw invalid("quoted fields are not supported", cellDetails(lineNum, "model", col, source));
    const inputTokens = parseCount(cells[col.input_tokens]!, lineNum, "input_tokens", col, source);
    const outputTokens = parseCount(cells[col.output_tokens]!, lineNum, "output_tokens", col, source);
    b.add(arrivalS, model, inputTokens, outputTokens);
  }
  return b.build({ sort: false });
}

function stripCr(s: string): string {
  return s.endsWith("\r") ? s.slice(0, -1) : s;
}

function cellDetails(line: number, column: TraceColumn, col: Record<TraceColumn, number>, source: string) {
  return { line, column, columnIndex: col[column] + 1, source };
}

function parseCount(cell: string, line: number, column: TraceColumn, col: Record<TraceColumn, number>, source: string): number {
  const s = cell.trim();
  const v = s === "" ? NaN : Number(s);
  if (!Number.isInteger(v)) throw invalid(`${column} must be an integer, got '${s}'`, cellDetails(line, column, col, source));
  if (v < 0) throw invalid(`${column} must be >= 0, got ${v}`, cellDetails(line, column, col, source));
  if (v > 0x7fffffff) throw invalid(`${column} too large: ${v}`, cellDetails(line, column, col, source));
  return v;
}

/**
 * Read a trace from a file path, or parse it directly when the argument already is CSV text
 * (contains a newline). Use `parseTrace` to be explicit.
 */
export function readTrace(pathOrText: string): Trace {
  if (pathOrText.includes("\n")) return parseTrace(pathOrText);
  let text: string;
  try {
    text = readFileSync(pathOrText, "utf8");
  } catch (e) {
    throw new PrismError("PRISM_FILE_NOT_FOUND", `cannot read trace ${pathOrText}: ${(e as Error).message}`, { path: pathOrText });
  }
  return parseTrace(text, pathOrText);
}

/** Shortest decimal that round-trips arrivals to microseconds; integers for tokens. */
function formatArrival(s: number): string {
  const r = Math.round(s * 1e6) / 1e6;
  return String(r);
}

/**
 * CSV text of a trace. `comments` become leading `# ` lines (e.g. the generator's parameters).
 * Arrivals are written rounded to 1 µs, so a written-and-read trace equals the original to 1 µs.
 */
export function formatTrace(trace: Trace, comments: readonly string[] = []): string {
  validateTrace(trace);
  const parts: string[] = [];
  for (const c of comments) for (const l of c.split("\n")) parts.push(`# ${l}\n`);
  parts.push(TRACE_COLUMNS.join(","), "\n");
  const names = trace.modelNames;
  for (let i = 0; i < trace.numRequests; i++) {
    parts.push(
      `${formatArrival(trace.arrivalS[i]!)},${names[trace.modelIndex[i]!]!},${trace.inputTokens[i]!},${trace.outputTokens[i]!}\n`,
    );
  }
  return parts.join("");
}

export function writeTrace(path: string, trace: Trace, comments: readonly string[] = []): void {
  writeFileSync(path, formatTrace(trace, comments));
}

/** Throws PRISM_TRACE_INVALID (line = request index + 2, as in the written file) when the invariants do not hold. */
export function validateTrace(trace: Trace): void {
  const n = trace.numRequests;
  if (trace.arrivalS.length < n || trace.modelIndex.length < n || trace.inputTokens.length < n || trace.outputTokens.length < n) {
    throw new PrismError("PRISM_TRACE_INVALID", `trace columns are shorter than numRequests=${n}`, { line: 0 });
  }
  for (const name of trace.modelNames) {
    if (name === "" || BAD_NAME.test(name)) {
      throw new PrismError("PRISM_TRACE_INVALID", `model name ${JSON.stringify(name)} is empty or contains , " or a newline`, {
        line: 0,
        column: "model",
      });
    }
  }
  let last = -Infinity;
  for (let i = 0; i < n; i++) {
    const a = trace.arrivalS[i]!;
    const line = i + 2;
    if (!Number.isFinite(a) || a < 0) throw invalid(`arrival_s must be finite and >= 0, got ${a}`, { line, column: "arrival_s" });
    if (a < last) throw invalid(`arrivals must be sorted: ${a} < previous ${last}`, { line, column: "arrival_s" });
    last = a;
    const m = trace.modelIndex[i]!;
    if (m < 0 || m >= trace.modelNames.length) throw invalid(`model index ${m} out of range`, { line, column: "model" });
    if (trace.inputTokens[i]! < 0) throw invalid(`input_tokens must be >= 0`, { line, column: "input_tokens" });
    if (trace.outputTokens[i]! < 0) throw invalid(`output_tokens must be >= 0`, { line, column: "output_tokens" });
  }
}

export function traceRow(trace: Trace, i: number): TraceRow {
  return {
    arrivalS: trace.arrivalS[i]!,
    model: trace.modelNames[trace.modelIndex[i]!]!,
    inputTokens: trace.inputTokens[i]!,
    outputTokens: trace.outputTokens[i]!,
  };
}

export function traceRows(trace: Trace): TraceRow[] {
  const out: TraceRow[] = [];
  for (let i = 0; i < trace.numRequests; i++) out.push(traceRow(trace, i));
  return out;
}

export function traceFromRows(rows: readonly TraceRow[], opts: { sort?: boolean } = {}): Trace {
  const b = new TraceBuilder(rows.length);
  for (const r of rows) b.add(r.arrivalS, r.model, r.inputTokens, r.outputTokens);
  return b.build({ sort: opts.sort ?? true });
}

/** Empty trace with the given model table (e.g. a generator that produced nothing). */
export function emptyTrace(modelNames: readonly string[] = []): Trace {
  return {
    numRequests: 0,
    modelNames: [...modelNames],
    arrivalS: new Float64Array(0),
    modelIndex: new Int32Array(0),
    inputTokens: new Int32Array(0),
    outputTokens: new Int32Array(0),
  };
}

/**
 * Accumulates requests in growable typed arrays; `build()` sorts by arrival (stable) and trims.
 * Generators emit per-model streams and let the builder merge them.
 */
export class TraceBuilder {
  private arrivalS: Float64Array;
  private modelIndex: Int32Array;
  private inputTokens: Int32Array;
  private outputTokens: Int32Array;
  private n = 0;
  private readonly names: string[] = [];
  private readonly nameToIndex = new Map<string, number>();

  constructor(initialCapacity = 1024, modelNames: readonly string[] = []) {
    const cap = Math.max(1, initialCapacity);
    this.arrivalS = new Float64Array(cap);
    this.modelIndex = new Int32Array(cap);
    this.inputTokens = new Int32Array(cap);
    this.outputTokens = new Int32Array(cap);
    for (const m of modelNames) this.modelId(m);
  }

  get numRequests(): number {
    return this.n;
  }

  /** Index of a model name in the table, adding it if new. */
  modelId(name: string): number {
    let idx = this.nameToIndex.get(name);
    if (idx === undefined) {
      idx = this.names.length;
      this.names.push(name);
      this.nameToIndex.set(name, idx);
    }
    return idx;
  }

  /** Add one request; `model` is a name or an index from `modelId()`. */
  add(arrivalS: number, model: string | number, inputTokens: number, outputTokens: number): void {
    if (this.n === this.arrivalS.length) this.grow();
    const i = this.n++;
    this.arrivalS[i] = arrivalS;
    this.modelIndex[i] = typeof model === "number" ? model : this.modelId(model);
    this.inputTokens[i] = inputTokens;
    this.outputTokens[i] = outputTokens;
  }

  private grow(): void {
    const cap = this.arrivalS.length * 2;
    const a = new Float64Array(cap);
    a.set(this.arrivalS);
    this.arrivalS = a;
    const m = new Int32Array(cap);
    m.set(this.modelIndex);
    this.modelIndex = m;
    const inp = new Int32Array(cap);
    inp.set(this.inputTokens);
    this.inputTokens = inp;
    const out = new Int32Array(cap);
    out.set(this.outputTokens);
    this.outputTokens = out;
  }

  /** Finish: copies the columns (the builder may be reused), sorting by arrival when `sort` (default true). */
  build(opts: { sort?: boolean } = {}): Trace {
    const n = this.n;
    const trace: Trace = {
      numRequests: n,
      modelNames: [...this.names],
      arrivalS: this.arrivalS.slice(0, n),
      modelIndex: this.modelIndex.slice(0, n),
      inputTokens: this.inputTokens.slice(0, n),
      outputTokens: this.outputTokens.slice(0, n),
    };
    return opts.sort === false ? trace : sortTraceByArrival(trace);
  }
}

/** Stable sort by arrival (ties keep insertion order). Returns the input when already sorted. */
export function sortTraceByArrival(trace: Trace): Trace {
  const n = trace.numRequests;
  let sorted = true;
  for (let i = 1; i < n; i++) {
    if (trace.arrivalS[i]! < trace.arrivalS[i - 1]!) {
      sorted = false;
      break;
    }
  }
  if (sorted) return trace;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const a = trace.arrivalS;
  order.sort((x, y) => a[x]! - a[y]! || x - y);
  return permuteTrace(trace, order);
}

/** New trace holding rows `order[0], order[1], ...` of `trace` (same model table). */
export function permuteTrace(trace: Trace, order: ArrayLike<number>): Trace {
  const n = order.length;
  const arrivalS = new Float64Array(n);
  const modelIndex = new Int32Array(n);
  const inputTokens = new Int32Array(n);
  const outputTokens = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = order[i]!;
    arrivalS[i] = trace.arrivalS[j]!;
    modelIndex[i] = trace.modelIndex[j]!;
    inputTokens[i] = trace.inputTokens[j]!;
    outputTokens[i] = trace.outputTokens[j]!;
  }
  return { numRequests: n, modelNames: trace.modelNames, arrivalS, modelIndex, inputTokens, outputTokens };
}

/** Requests with arrival in [fromS, toS), arrivals shifted so fromS becomes 0 when `rebase`. */
export function sliceTrace(trace: Trace, fromS: number, toS: number, opts: { rebase?: boolean } = {}): Trace {
  const lo = lowerBound(trace.arrivalS, trace.numRequests, fromS);
  const hi = lowerBound(trace.arrivalS, trace.numRequests, toS);
  const shift = opts.rebase ? fromS : 0;
  const arrivalS = trace.arrivalS.slice(lo, hi);
  if (shift !== 0) for (let i = 0; i < arrivalS.length; i++) arrivalS[i] = arrivalS[i]! - shift;
  return {
    numRequests: hi - lo,
    modelNames: trace.modelNames,
    arrivalS,
    modelIndex: trace.modelIndex.slice(lo, hi),
    inputTokens: trace.inputTokens.slice(lo, hi),
    outputTokens: trace.outputTokens.slice(lo, hi),
  };
}

function lowerBound(a: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Drop models with no requests and renumber (keeps first-appearance order of the table). */
export function compactModels(trace: Trace): Trace {
  const used = new Uint8Array(trace.modelNames.length);
  for (let i = 0; i < trace.numRequests; i++) used[trace.modelIndex[i]!] = 1;
  const remap = new Int32Array(trace.modelNames.length).fill(-1);
  const names: string[] = [];
  for (let m = 0; m < used.length; m++) {
    if (used[m]) {
      remap[m] = names.length;
      names.push(trace.modelNames[m]!);
    }
  }
  if (names.length === trace.modelNames.length) return trace;
  const modelIndex = new Int32Array(trace.numRequests);
  for (let i = 0; i < trace.numRequests; i++) modelIndex[i] = remap[trace.modelIndex[i]!]!;
  return { ...trace, modelNames: names, modelIndex };
}
