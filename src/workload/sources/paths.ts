/**
 * Where the real trace data lives: ../shared/traces beside the repository (never copied into it), or a
 * directory the caller passes (`--traces-dir`). Missing data fails loudly with the path that was tried.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PrismError } from "../../core/errors.ts";

/** Absolute path of ../shared/traces relative to the repository root. */
export function defaultTracesDir(): string {
  return fileURLToPath(new URL("../../../../shared/traces/", import.meta.url));
}

export function resolveTracesDir(dir?: string): string {
  return dir ?? defaultTracesDir();
}

/** Path of `rel` under the traces directory; throws PRISM_FILE_NOT_FOUND naming it when absent. */
export function traceDataPath(tracesDir: string | undefined, rel: string): string {
  const p = join(resolveTracesDir(tracesDir), rel);
  if (!existsSync(p)) {
    throw new PrismError(
      "PRISM_FILE_NOT_FOUND",
      `trace data file not found: ${p} (expected ../shared/traces beside the repository, or pass --traces-dir)`,
      { path: p },
    );
  }
  return p;
}

export function readTraceDataText(tracesDir: string | undefined, rel: string): string {
  return readFileSync(traceDataPath(tracesDir, rel), "utf8");
}

/** Lines of a CSV text without the trailing empty line; `\r` stripped. */
export function csvLines(text: string): string[] {
  const lines = text.split("\n");
  const out: string[] = [];
  for (const l of lines) {
    const s = l.endsWith("\r") ? l.slice(0, -1) : l;
    if (s !== "") out.push(s);
  }
  return out;
}

export function dataError(file: string, line: number, message: string): PrismError {
  return new PrismError("PRISM_TRACE_INVALID", `${file}: line ${line}: ${message}`, { path: file, line });
}

export function parseNumberCell(cell: string | undefined, file: string, line: number, column: string): number {
  const v = cell === undefined || cell.trim() === "" ? NaN : Number(cell);
  if (!Number.isFinite(v)) throw dataError(file, line, `column ${column}: not a number: '${cell ?? ""}'`);
  return v;
}
