// Starts a real `prism serve` (same code path as the CLI) on an ephemeral loopback port.
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadConfig, type ServeConfig } from "../../src/config/load.ts";
import { startPrism, type RunningPrism } from "../../src/gateway/start.ts";

export const SHARED = resolve(import.meta.dirname, "../../../shared");
export const STORIES_GGUF = join(SHARED, "models/stories260K.gguf");

export function requireShared(path = STORIES_GGUF): string {
  if (!existsSync(path)) throw new Error(`test data missing: ${path} (../shared must sit beside the repository)`);
  return path;
}

/** A config with stories260K (real, trained) and a tiny random model, on one small device. */
export function testConfig(over: { yaml?: Record<string, unknown>; flags?: Record<string, unknown> } = {}): ServeConfig {
  requireShared();
  const dataDir = mkdtempSync(join(tmpdir(), "prism-test-"));
  const raw = {
    server: { host: "127.0.0.1", port: 0, log_level: "silent", shutdown_grace: "5s" },
    devices: { count: 1, memory: "64MiB", page_size: "64KiB", worker: false },
    data_dir: dataDir,
    models_dir: join(dataDir, "models"),
    demo_models: false,
    models: [
      { id: "stories", path: STORIES_GGUF, aliases: ["stories260k"], ttft_ms: 2000, tpot_ms: 500 },
      { id: "tiny", gen: { shape: "tiny", dtype: "f32", seed: 7 }, ttft_ms: 2000, tpot_ms: 500 },
    ],
    ...(over.yaml ?? {}),
  };
  return loadConfig({ flags: { ...flatten(raw), ...(over.flags ?? {}) }, env: {} });
}

function flatten(o: Record<string, unknown>, prefix = ""): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === "object" && v !== null && !Array.isArray(v)) Object.assign(out, flatten(v as Record<string, unknown>, key));
    else out[key] = v;
  }
  return out;
}

export async function startTestServer(cfg: ServeConfig = testConfig()): Promise<RunningPrism & { baseURL: string }> {
  const p = await startPrism(cfg);
  return Object.assign(p, { baseURL: `${p.url}/v1` });
}
