// Human-friendly sizes and durations in config files, env vars and flags.
import { PrismError } from "../core/errors.ts";

const SIZE_UNITS: Record<string, number> = {
  "": 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4,
};

/** "512MiB", "1.5 GB", 1048576 → bytes (integer). */
export function parseBytes(v: string | number, what: string): number {
  if (typeof v === "number") {
    if (!Number.isFinite(v) || v < 0) throw new PrismError("PRISM_CONFIG_INVALID", `${what}: expected a non-negative size, got ${v}`, { key: what });
    return Math.floor(v);
  }
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  const unit = m?.[2]?.toLowerCase() ?? "";
  const mult = SIZE_UNITS[unit];
  if (!m || mult === undefined) {
    throw new PrismError("PRISM_CONFIG_INVALID", `${what}: cannot read size '${v}' (use e.g. 512MiB, 1GiB, 2000000)`, { key: what });
  }
  return Math.floor(Number(m[1]) * mult);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, "": 1 };

/** "5m", "30s", "250ms", 1000 → milliseconds; -1 / "-1" / "forever" → Infinity (never expires). */
export function parseDurationMs(v: string | number, what: string): number {
  if (v === -1 || v === "-1" || v === "forever" || v === "inf") return Infinity;
  if (typeof v === "number") {
    if (!Number.isFinite(v) || v < 0) throw new PrismError("PRISM_CONFIG_INVALID", `${what}: expected a non-negative duration in ms (or -1 for forever), got ${v}`, { key: what });
    return v;
  }
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|)\s*$/.exec(v);
  const mult = m ? DURATION_UNITS[m[2] ?? ""] : undefined;
  if (!m || mult === undefined) {
    throw new PrismError("PRISM_CONFIG_INVALID", `${what}: cannot read duration '${v}' (use e.g. 250ms, 30s, 5m, or -1 for forever)`, { key: what });
  }
  return Number(m[1]) * mult;
}
