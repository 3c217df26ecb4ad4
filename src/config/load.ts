/**
 * Configuration: YAML file < environment (PRISM_*) < command-line flags. Validated once, here;
 * the result is frozen and handed to components in slices. No process.env reads elsewhere.
 */
import { readFileSync, existsSync } from "node:fs";
import { dirname, resolve, isAbsolute } from "node:path";
import { freemem, totalmem } from "node:os";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { PrismError } from "../core/errors.ts";
import { ConfigSchema, type ParsedConfig } from "./schema.ts";
import { parseBytes, parseDurationMs } from "./units.ts";

export type ModelSource =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "gen"; readonly shape: string; readonly dtype: "f32" | "f16" | "q8_0"; readonly seed: number };

export interface ModelEntry {
  readonly id: string;
  readonly source: ModelSource;
  readonly aliases: readonly string[];
  readonly ttftSloMs: number;
  readonly tpotSloMs: number;
  readonly pinned: boolean;
  readonly keepAliveMs: number;
  readonly maxRunning: number;
  readonly maxQueue: number;
  readonly expectedRate: number;
  readonly backend: "engine" | "llama.cpp";
}

export interface ServeConfig {
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly apiKeys: readonly string[];
    readonly adminKeys: readonly string[];
    readonly bodyLimitBytes: number;
    readonly requestTimeoutMs: number;
    readonly shutdownGraceMs: number;
    readonly headerTimeoutMs: number;
    readonly maxQueueTotal: number;
    readonly logLevel: ParsedConfig["server"]["log_level"];
  };
  readonly devices: {
    readonly count: number;
    readonly memoryBytes: number;
    readonly pageBytes: number;
    readonly kvHeadroom: number;
    readonly kernels: "wasm" | "ts";
    readonly worker: boolean;
    readonly blockTokens: number;
  };
  readonly models: readonly ModelEntry[];
  readonly scheduler: {
    readonly policy: ParsedConfig["scheduler"]["policy"];
    readonly roundMs: number;
    readonly tau: number;
    readonly maxMigrationsPerRound: number;
    readonly idleEvictMs: number;
    readonly maxBatchTokens: number;
    readonly maxBatchSeqs: number;
    readonly prefillChunkTokens: number;
    readonly abortUnreachableSlo: boolean;
    readonly demoteExpired: boolean;
    readonly lateMaxRunning: number;
    readonly lateMaxWaitMs: number;
    readonly guardFirstTokens: boolean;
  };
  readonly limits: {
    readonly defaultMaxTokens: number;
    readonly maxN: number;
    readonly maxStopStrings: number;
    readonly maxStopStringLength: number;
    readonly maxTopLogprobs: number;
  };
  readonly dataDir: string;
  readonly modelsDir: string;
  readonly demoModels: boolean;
}

export interface LoadOptions {
  readonly file?: string | undefined;
  /** Overrides from command-line flags, as dotted keys (e.g. {"server.port": 9000}). */
  readonly flags?: Readonly<Record<string, unknown>>;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
}

/** Environment variables we read, and the config key each sets. */
export const ENV_KEYS: Readonly<Record<string, { key: string; type: "string" | "int" | "list" | "bool" | "float" }>> = {
  PRISM_HOST: { key: "server.host", type: "string" },
  PRISM_PORT: { key: "server.port", type: "int" },
  PRISM_API_KEYS: { key: "server.api_keys", type: "list" },
  PRISM_ADMIN_KEYS: { key: "server.admin_keys", type: "list" },
  PRISM_LOG_LEVEL: { key: "server.log_level", type: "string" },
  PRISM_DEVICES: { key: "devices.count", type: "int" },
  PRISM_DEVICE_MEMORY: { key: "devices.memory", type: "string" },
  PRISM_PAGE_SIZE: { key: "devices.page_size", type: "string" },
  PRISM_KERNELS: { key: "devices.kernels", type: "string" },
  PRISM_WORKER: { key: "devices.worker", type: "bool" },
  PRISM_POLICY: { key: "scheduler.policy", type: "string" },
  PRISM_DATA_DIR: { key: "data_dir", type: "string" },
  PRISM_MODELS_DIR: { key: "models_dir", type: "string" },
  PRISM_DEMO_MODELS: { key: "demo_models", type: "bool" },
};

function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split(".");
  let cur = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    const k = parts[i]!;
    const next = cur[k];
    if (typeof next !== "object" || next === null || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

function envValue(name: string, raw: string, type: "string" | "int" | "list" | "bool" | "float"): unknown {
  switch (type) {
    case "string":
      return raw;
    case "list":
      return raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    case "int": {
      const n = Number(raw);
      if (!Number.isInteger(n)) throw new PrismError("PRISM_CONFIG_INVALID", `${name}=${raw}: expected an integer`, { key: name });
      return n;
    }
    case "float": {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new PrismError("PRISM_CONFIG_INVALID", `${name}=${raw}: expected a number`, { key: name });
      return n;
    }
    case "bool":
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new PrismError("PRISM_CONFIG_INVALID", `${name}=${raw}: expected true or false`, { key: name });
  }
}

// ---- unknown-key suggestions -------------------------------------------------------------

type AnySchema = z.ZodType & { _zod: { def: Record<string, unknown> } };

function unwrap(s: AnySchema): AnySchema {
  let cur = s;
  for (let i = 0; i < 10; i++) {
    const def = cur._zod.def as { type?: string; innerType?: AnySchema };
    if ((def.type === "default" || def.type === "optional" || def.type === "nullable") && def.innerType) cur = def.innerType;
    else break;
  }
  return cur;
}

function keysAt(path: readonly PropertyKey[]): string[] {
  let s = unwrap(ConfigSchema as unknown as AnySchema);
  for (const p of path) {
    const def = s._zod.def as { type?: string; shape?: Record<string, AnySchema>; element?: AnySchema };
    if (def.type === "array" && def.element && typeof p === "number") s = unwrap(def.element);
    else if (def.type === "object" && def.shape && typeof p === "string" && def.shape[p]) s = unwrap(def.shape[p]);
    else return [];
  }
  const def = s._zod.def as { type?: string; shape?: Record<string, AnySchema> };
  return def.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

export function closest(name: string, candidates: readonly string[], maxDistance = 3): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return bestD <= Math.max(maxDistance, Math.floor(name.length / 3)) ? best : null;
}

function pathString(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
}

// ---- load ---------------------------------------------------------------------------------

export function loadConfig(opts: LoadOptions = {}): ServeConfig {
  const env = opts.env ?? {};
  const cwd = opts.cwd ?? process.cwd();
  const file = opts.file ?? env["PRISM_CONFIG"];
  let raw: Record<string, unknown> = {};
  let baseDir = cwd;
  const source = file ?? "(defaults)";
  if (file !== undefined) {
    const path = resolve(cwd, file);
    if (!existsSync(path)) throw new PrismError("PRISM_FILE_NOT_FOUND", `config file not found: ${path}`, { path });
    baseDir = dirname(path);
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(path, "utf8"));
    } catch (e) {
      throw new PrismError("PRISM_CONFIG_INVALID", `${path}: not valid YAML: ${(e as Error).message}`, { path });
    }
    if (doc === null || doc === undefined) doc = {};
    if (typeof doc !== "object" || Array.isArray(doc)) {
      throw new PrismError("PRISM_CONFIG_INVALID", `${path}: the top level must be a mapping of sections (server, devices, models, scheduler, limits)`, { path });
    }
    raw = doc as Record<string, unknown>;
  }
  for (const [name, spec] of Object.entries(ENV_KEYS)) {
    const v = env[name];
    if (v !== undefined && v !== "") setPath(raw, spec.key, envValue(name, v, spec.type));
  }
  for (const [k, v] of Object.entries(opts.flags ?? {})) if (v !== undefined) setPath(raw, k, v);

  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === "unrecognized_keys") {
      const key = issue.keys[0]!;
      const where = pathString([...issue.path, key]);
      const known = keysAt(issue.path);
      const guess = closest(key, known);
      const fix = guess ? `did you mean '${guess}'?` : `known keys here: ${known.join(", ")}`;
      throw new PrismError("PRISM_CONFIG_UNKNOWN_KEY", `${source}: unknown key '${where}': ${fix} Remove or rename it.`, { key: where, suggestion: guess });
    }
    const where = pathString(issue.path) || "(top level)";
    throw new PrismError("PRISM_CONFIG_INVALID", `${source}: '${where}': ${issue.message}`, { key: where });
  }
  return normalise(parsed.data, baseDir, cwd);
}

function normalise(c: ParsedConfig, baseDir: string, cwd: string): ServeConfig {
  const pageBytes = parseBytes(c.devices.page_size, "devices.page_size");
  if (pageBytes < 4096 || (pageBytes & (pageBytes - 1)) !== 0) {
    throw new PrismError("PRISM_CONFIG_INVALID", `devices.page_size: must be a power of two ≥ 4KiB, got ${pageBytes}`, { key: "devices.page_size" });
  }
  let memoryBytes: number;
  if (c.devices.memory === "auto") {
    // A quarter of free memory split across devices, capped at 1 GiB each: enough for the demo models,
    // small enough to leave the machine usable. Real deployments set it explicitly.
    const perDevice = Math.min(1024 ** 3, Math.floor(Math.min(freemem(), totalmem() / 2) / 4 / c.devices.count));
    memoryBytes = Math.max(64 * 1024 ** 2, perDevice);
  } else {
    memoryBytes = parseBytes(c.devices.memory, "devices.memory");
  }
  memoryBytes = Math.floor(memoryBytes / pageBytes) * pageBytes;
  if (memoryBytes < pageBytes * 8) {
    throw new PrismError("PRISM_CONFIG_INVALID", `devices.memory: ${memoryBytes} bytes is less than 8 pages of ${pageBytes}`, { key: "devices.memory" });
  }
  if (memoryBytes > 3.5 * 1024 ** 3) {
    throw new PrismError("PRISM_CONFIG_INVALID", `devices.memory: at most 3.5GiB per device (WebAssembly memory is 32-bit); use more devices instead`, { key: "devices.memory" });
  }
  const ids = new Set<string>();
  const models: ModelEntry[] = c.models.map((m, i) => {
    const where = `models[${i}]`;
    if ((m.path === undefined) === (m.gen === undefined)) {
      throw new PrismError("PRISM_CONFIG_INVALID", `${where} (${m.id}): give exactly one of 'path' (a GGUF file) or 'gen' (a generated model)`, { key: where });
    }
    for (const name of [m.id, ...m.aliases]) {
      if (ids.has(name)) throw new PrismError("PRISM_CONFIG_INVALID", `${where}: model id or alias '${name}' is used twice`, { key: where });
      ids.add(name);
    }
    const source: ModelSource = m.path !== undefined
      ? { kind: "file", path: isAbsolute(m.path) ? m.path : resolve(baseDir, m.path) }
      : { kind: "gen", shape: m.gen!.shape, dtype: m.gen!.dtype, seed: m.gen!.seed };
    return {
      id: m.id, source, aliases: m.aliases, ttftSloMs: m.ttft_ms, tpotSloMs: m.tpot_ms, pinned: m.pinned,
      keepAliveMs: parseDurationMs(m.keep_alive, `${where}.keep_alive`), maxRunning: m.max_running, maxQueue: m.max_queue,
      expectedRate: m.expected_rate, backend: m.backend,
    };
  });
  const cfg: ServeConfig = {
    server: {
      host: c.server.host, port: c.server.port, apiKeys: c.server.api_keys, adminKeys: c.server.admin_keys,
      bodyLimitBytes: parseBytes(c.server.body_limit, "server.body_limit"),
      requestTimeoutMs: parseDurationMs(c.server.request_timeout, "server.request_timeout"),
      shutdownGraceMs: parseDurationMs(c.server.shutdown_grace, "server.shutdown_grace"),
      headerTimeoutMs: parseDurationMs(c.server.header_timeout, "server.header_timeout"),
      maxQueueTotal: c.server.max_queue_total, logLevel: c.server.log_level,
    },
    devices: {
      count: c.devices.count, memoryBytes, pageBytes, kvHeadroom: c.devices.kv_headroom, kernels: c.devices.kernels,
      worker: c.devices.worker, blockTokens: c.devices.block_tokens,
    },
    models,
    scheduler: {
      policy: c.scheduler.policy, roundMs: parseDurationMs(c.scheduler.round, "scheduler.round"), tau: c.scheduler.tau,
      maxMigrationsPerRound: c.scheduler.max_migrations_per_round,
      idleEvictMs: parseDurationMs(c.scheduler.idle_evict, "scheduler.idle_evict"),
      maxBatchTokens: c.scheduler.max_batch_tokens, maxBatchSeqs: c.scheduler.max_batch_seqs,
      prefillChunkTokens: c.scheduler.prefill_chunk_tokens, abortUnreachableSlo: c.scheduler.abort_unreachable_slo,
      demoteExpired: c.scheduler.demote_expired, lateMaxRunning: c.scheduler.late_max_running,
      lateMaxWaitMs: parseDurationMs(c.scheduler.late_max_wait, "scheduler.late_max_wait"),
      guardFirstTokens: c.scheduler.guard_first_tokens,
    },
    limits: {
      defaultMaxTokens: c.limits.default_max_tokens, maxN: c.limits.max_n, maxStopStrings: c.limits.max_stop_strings,
      maxStopStringLength: c.limits.max_stop_string_length, maxTopLogprobs: c.limits.max_top_logprobs,
    },
    dataDir: resolve(cwd, c.data_dir),
    modelsDir: resolve(cwd, c.models_dir),
    demoModels: c.demo_models,
  };
  return deepFreeze(cfg);
}

function deepFreeze<T>(o: T): T {
  if (typeof o === "object" && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
