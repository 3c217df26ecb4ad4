/**
 * The configuration schema: one slice per component, unknown keys rejected, defaults filled.
 * Validated once in load.ts; components receive their frozen slice, never this whole object.
 */
import { z } from "zod";

const size = z.union([z.number().nonnegative(), z.string()]);
const duration = z.union([z.number(), z.string()]);

export const ServerSchema = z.strictObject({
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(8000),
  /** Keys accepted as `Authorization: Bearer <key>` on /v1. Empty = no auth. */
  api_keys: z.array(z.string().min(1)).default([]),
  /** Keys accepted on /admin (also accepted on /v1). Empty with api_keys set = api_keys also administer. */
  admin_keys: z.array(z.string().min(1)).default([]),
  body_limit: size.default("1MiB"),
  request_timeout: duration.default("10m"),
  shutdown_grace: duration.default("30s"),
  /** Slow-loris guard: the whole request (headers + body) must arrive within this time. */
  header_timeout: duration.default("10s"),
  max_queue_total: z.number().int().positive().default(1024),
  log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export const DevicesSchema = z.strictObject({
  count: z.number().int().min(1).max(64).default(1),
  /** Memory budget per device, or "auto" (a share of the machine's free memory). */
  memory: z.union([size, z.literal("auto")]).default("auto"),
  page_size: size.default("256KiB"),
  /** Fraction of each device's memory no KV space may map into. */
  kv_headroom: z.number().min(0).max(0.5).default(0),
  /** Kernel implementation for the embedded engine. */
  kernels: z.enum(["wasm", "ts"]).default("wasm"),
  /** Run each device's engine in a worker thread (keeps HTTP responsive). */
  worker: z.boolean().default(true),
  /** Tokens per KV block. */
  block_tokens: z.number().int().min(1).max(1024).default(16),
});

export const GenSchema = z.strictObject({
  shape: z.string(),
  dtype: z.enum(["f32", "f16", "q8_0"]).default("q8_0"),
  seed: z.number().int().default(1),
});

export const ModelSchema = z.strictObject({
  id: z.string().min(1).regex(/^[A-Za-z0-9._:\/-]+$/, "model ids may use letters, digits and . _ : / -"),
  /** A GGUF file (relative paths resolve against the config file's folder). */
  path: z.string().optional(),
  /** Or a generated random-weight model (cached under data_dir). */
  gen: GenSchema.optional(),
  aliases: z.array(z.string().min(1)).default([]),
  ttft_ms: z.number().positive().default(2000),
  tpot_ms: z.number().positive().default(200),
  pinned: z.boolean().default(false),
  keep_alive: duration.default("5m"),
  max_running: z.number().int().positive().default(32),
  max_queue: z.number().int().positive().default(256),
  /** Expected request rate (req/s) used by placement policies before demand is measured. */
  expected_rate: z.number().nonnegative().default(1),
  backend: z.enum(["engine", "llama.cpp"]).default("engine"),
});

export const SchedulerSchema = z.strictObject({
  policy: z.enum(["prism", "static", "swap", "muxserve", "elastic"]).default("prism"),
  round: duration.default("1s"),
  tau: z.number().min(0).default(0.2),
  max_migrations_per_round: z.number().int().min(0).default(1),
  idle_evict: duration.default("5m"),
  max_batch_tokens: z.number().int().positive().default(256),
  max_batch_seqs: z.number().int().positive().default(64),
  prefill_chunk_tokens: z.number().int().positive().default(128),
  abort_unreachable_slo: z.boolean().default(false),
  demote_expired: z.boolean().default(true),
  late_max_running: z.number().int().positive().default(8),
  late_max_wait: duration.default("60s"),
  guard_first_tokens: z.boolean().default(true),
});

export const LimitsSchema = z.strictObject({
  /** max_tokens when the request gives none (capped by the context). */
  default_max_tokens: z.number().int().positive().default(256),
  max_n: z.number().int().positive().default(8),
  max_stop_strings: z.number().int().positive().default(16),
  max_stop_string_length: z.number().int().positive().default(256),
  max_top_logprobs: z.number().int().min(0).max(20).default(20),
});

export const ConfigSchema = z.strictObject({
  server: ServerSchema.default(ServerSchema.parse({})),
  devices: DevicesSchema.default(DevicesSchema.parse({})),
  models: z.array(ModelSchema).default([]),
  scheduler: SchedulerSchema.default(SchedulerSchema.parse({})),
  limits: LimitsSchema.default(LimitsSchema.parse({})),
  /** Where generated demo models and caches live (relative to the working directory). */
  data_dir: z.string().default(".prism"),
  /** Every *.gguf here is served too (model id = file name without .gguf). */
  models_dir: z.string().default("models"),
  /** Add the built-in demo models when no model is configured. */
  demo_models: z.boolean().default(true),
});

export type RawConfig = z.input<typeof ConfigSchema>;
export type ParsedConfig = z.output<typeof ConfigSchema>;
