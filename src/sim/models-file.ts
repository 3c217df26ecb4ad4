/**
 * The simulator's models file (YAML), validated once here; unknown keys are rejected with a message
 * naming the key. Example (examples/sim/*.yaml):
 *
 *   device: h100            # a catalog device type (catalog.ts DEVICES)
 *   slo_scale: 5            # SLO = scale × the model's dedicated p99 (or {ttft: 5, tpot: 5})
 *   default_arch: llama-3.1-8b   # optional: trace models not listed below get this arch
 *   cost: { step_overhead_ms: 5.9, activation_start_ms: 200 }   # optional cost-model overrides
 *   models:
 *     - id: chat-small
 *       arch: llama-3.2-1b
 *     - id: big
 *       arch: llama-3.3-70b
 *       tp: 4
 *       slo: { ttft_ms: 2000, tpot_ms: 100 }   # explicit SLO (overrides slo_scale)
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { PrismError } from "../core/errors.ts";
import { modelId, type ModelId } from "../core/ids.ts";
import { DEVICE_TYPES, MODEL_ARCH_IDS, type DeviceType, type Efficiency, type ModelArchId } from "./catalog.ts";

const positive = z.number().positive();

const SloSchema = z.strictObject({
  ttft_ms: positive,
  tpot_ms: positive,
});

const ModelEntrySchema = z.strictObject({
  id: z.string().min(1),
  arch: z.enum(MODEL_ARCH_IDS as [ModelArchId, ...ModelArchId[]]),
  tp: z.number().int().min(1).max(8).optional(),
  slo: SloSchema.optional(),
});

/** Overrides of the cost model's efficiency constants (catalog.ts GPU_EFFICIENCY / CPU_EFFICIENCY). */
const CostSchema = z.strictObject({
  mfu: z.number().positive().max(1).optional(),
  mbu: z.number().positive().max(1).optional(),
  step_overhead_ms: z.number().min(0).optional(),
  host_link_efficiency: z.number().positive().optional(),
  activation_start_ms: z.number().min(0).optional(),
  request_overhead_ms: z.number().min(0).optional(),
});

const ScaleSchema = z.union([positive, z.strictObject({ ttft: positive, tpot: positive })]);

export const ModelsFileSchema = z.strictObject({
  device: z.enum(DEVICE_TYPES as [DeviceType, ...DeviceType[]]).default("h100"),
  slo_scale: ScaleSchema.default(5),
  default_arch: z.enum(MODEL_ARCH_IDS as [ModelArchId, ...ModelArchId[]]).optional(),
  cost: CostSchema.optional(),
  models: z.array(ModelEntrySchema).default([]),
});

export interface SimModelSpec {
  readonly id: ModelId;
  readonly arch: ModelArchId;
  readonly tp: number | null;
  /** Explicit SLO, or null = slo scale × dedicated p99. */
  readonly slo: { readonly ttftMs: number; readonly tpotMs: number } | null;
}

export interface SimModelsConfig {
  readonly deviceType: DeviceType;
  readonly sloScale: { readonly ttft: number; readonly tpot: number };
  readonly defaultArch: ModelArchId | null;
  /** Efficiency overrides for the cost model. */
  readonly efficiency: Partial<Efficiency>;
  readonly models: readonly SimModelSpec[];
}

function pathOf(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s === "" ? String(p) : `.${String(p)}`;
  return s === "" ? "(top level)" : s;
}

/** Validate a parsed YAML/JSON value. `source` names the file in messages. */
export function parseModelsConfig(value: unknown, source = "models file"): SimModelsConfig {
  const r = ModelsFileSchema.safeParse(value ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    if (issue.code === "unrecognized_keys") {
      const keys = (issue as { keys: string[] }).keys;
      const key = keys[0]!;
      throw new PrismError("PRISM_CONFIG_UNKNOWN_KEY", `${source}: unknown key '${key}' at ${pathOf(issue.path)}${keys.length > 1 ? ` (also: ${keys.slice(1).join(", ")})` : ""}`, { key, keys, path: pathOf(issue.path) });
    }
    throw new PrismError("PRISM_CONFIG_INVALID", `${source}: ${pathOf(issue.path)}: ${issue.message}`, { path: pathOf(issue.path) });
  }
  const f = r.data;
  const seen = new Set<string>();
  for (const m of f.models) {
    if (seen.has(m.id)) throw new PrismError("PRISM_CONFIG_INVALID", `${source}: model id '${m.id}' appears twice`, { modelId: m.id });
    seen.add(m.id);
  }
  const scale = typeof f.slo_scale === "number" ? { ttft: f.slo_scale, tpot: f.slo_scale } : f.slo_scale;
  const c = f.cost ?? {};
  const efficiency: Partial<Efficiency> = {
    ...(c.mfu !== undefined ? { mfu: c.mfu } : {}),
    ...(c.mbu !== undefined ? { mbu: c.mbu } : {}),
    ...(c.step_overhead_ms !== undefined ? { stepOverheadMs: c.step_overhead_ms } : {}),
    ...(c.host_link_efficiency !== undefined ? { hostLinkEfficiency: c.host_link_efficiency } : {}),
    ...(c.activation_start_ms !== undefined ? { activationStartMs: c.activation_start_ms } : {}),
    ...(c.request_overhead_ms !== undefined ? { requestOverheadMs: c.request_overhead_ms } : {}),
  };
  return Object.freeze({
    deviceType: f.device,
    sloScale: Object.freeze(scale),
    defaultArch: f.default_arch ?? null,
    efficiency: Object.freeze(efficiency),
    models: Object.freeze(
      f.models.map((m) =>
        Object.freeze({
          id: modelId(m.id),
          arch: m.arch,
          tp: m.tp ?? null,
          slo: m.slo ? Object.freeze({ ttftMs: m.slo.ttft_ms, tpotMs: m.slo.tpot_ms }) : null,
        }),
      ),
    ),
  });
}

export function loadModelsFile(path: string): SimModelsConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new PrismError("PRISM_FILE_NOT_FOUND", `models file not found: ${path}`, { path });
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (e) {
    throw new PrismError("PRISM_CONFIG_INVALID", `${path}: not valid YAML: ${(e as Error).message}`, { path });
  }
  return parseModelsConfig(value, path);
}

/** The spec for every model the trace names: listed ones, else default_arch, else an error naming them. */
export function resolveModels(cfg: SimModelsConfig, traceModels: readonly string[]): SimModelSpec[] {
  const byId = new Map(cfg.models.map((m) => [m.id as string, m]));
  const out: SimModelSpec[] = [...cfg.models];
  const missing: string[] = [];
  for (const name of traceModels) {
    if (byId.has(name)) continue;
    if (cfg.defaultArch === null) {
      missing.push(name);
      continue;
    }
    const spec: SimModelSpec = { id: modelId(name), arch: cfg.defaultArch, tp: null, slo: null };
    byId.set(name, spec);
    out.push(spec);
  }
  if (missing.length > 0) {
    throw new PrismError("PRISM_SIM_INVALID", `the trace names models the models file does not list (and it sets no default_arch): ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ` … (${missing.length} in all)` : ""}`, { missing });
  }
  return out;
}
