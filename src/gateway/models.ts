/**
 * Which models the server serves: configured entries, the built-in demo models (generated once with
 * deterministic random weights and cached under data_dir), and every *.gguf in models_dir.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { ModelEntry, ServeConfig } from "../config/load.ts";
import { PrismError } from "../core/errors.ts";
import { readGgufHeaderSync } from "../engine/gguf/reader.ts";
import type { GgufFile, GgufValue } from "../engine/gguf/types.ts";
import { llamaConfigFromGguf, type LlamaConfig } from "../engine/model/config.ts";
import { generateRandomModel } from "../engine/model/generate.ts";
import { parseShape } from "../engine/model/shapes.ts";
import { Tokenizer } from "../engine/tokenizer/tokenizer.ts";

/** The embedded default: small enough to generate in seconds on first start, big enough to show sharing. */
export const DEMO_MODELS: readonly { id: string; shape: string; dtype: "f32" | "f16" | "q8_0"; seed: number; ttftMs: number; tpotMs: number; aliases: string[] }[] = [
  { id: "demo-15m-a", shape: "stories15M", dtype: "q8_0", seed: 1, ttftMs: 1000, tpotMs: 100, aliases: ["demo"] },
  { id: "demo-15m-b", shape: "stories15M", dtype: "q8_0", seed: 2, ttftMs: 1000, tpotMs: 100, aliases: [] },
  { id: "demo-15m-c", shape: "stories15M", dtype: "f32", seed: 3, ttftMs: 2000, tpotMs: 150, aliases: [] },
  { id: "demo-tiny", shape: "stories260K", dtype: "f32", seed: 4, ttftMs: 500, tpotMs: 50, aliases: [] },
];

export interface LoadedModel {
  readonly entry: ModelEntry;
  /** File the weights come from (a generated model's cache file too). */
  readonly path: string;
  /** Only the header (metadata and tensor infos): the engine reads the weights itself. */
  readonly gguf: GgufFile;
  readonly cfg: LlamaConfig;
  /** Built on first use (startPrism builds them while the engine worker starts), shared by equal vocabularies. */
  readonly tokenizer: Tokenizer;
}

function sameValue(a: GgufValue | undefined, b: GgufValue | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || typeof a !== "object" || typeof b !== "object") return Number.isNaN(a) && Number.isNaN(b);
  if (a.constructor !== b.constructor || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameValue(a[i] as GgufValue, b[i] as GgufValue)) return false;
  return true;
}

/**
 * Tokenizers of one server start, shared between models whose `tokenizer.*` metadata is equal (everything
 * Tokenizer.fromGguf reads): three demo models built from one shape share one 32k vocabulary, and building
 * it costs more than comparing it (~50 ms against ~1 ms).
 */
export class TokenizerCache {
  private readonly built: { keys: string[]; gguf: GgufFile; tokenizer: Tokenizer }[] = [];

  get(gguf: GgufFile): Tokenizer {
    const keys = [...gguf.metadata.keys()].filter((k) => k.startsWith("tokenizer.")).sort();
    for (const b of this.built) {
      if (b.keys.length === keys.length && b.keys.every((k, i) => k === keys[i] && sameValue(b.gguf.metadata.get(k), gguf.metadata.get(k)))) return b.tokenizer;
    }
    const tokenizer = Tokenizer.fromGguf(gguf);
    this.built.push({ keys, gguf, tokenizer });
    return tokenizer;
  }
}

class Loaded implements LoadedModel {
  private tok: Tokenizer | null = null;
  constructor(
    readonly entry: ModelEntry,
    readonly path: string,
    readonly gguf: GgufFile,
    readonly cfg: LlamaConfig,
    private readonly tokenizers: TokenizerCache,
  ) {}
  get tokenizer(): Tokenizer {
    return (this.tok ??= this.tokenizers.get(this.gguf));
  }
}

function defaults(id: string, source: ModelEntry["source"], over: Partial<ModelEntry> = {}): ModelEntry {
  return {
    id, source, aliases: [], ttftSloMs: 2000, tpotSloMs: 200, pinned: false, keepAliveMs: 5 * 60_000,
    maxRunning: 32, maxQueue: 256, expectedRate: 1, backend: "engine", ...over,
  };
}

/** The model entries the server will serve, in a stable order. */
export function modelEntries(cfg: ServeConfig): ModelEntry[] {
  const out: ModelEntry[] = [...cfg.models];
  const taken = new Set(out.flatMap((m) => [m.id, ...m.aliases]));
  if (existsSync(cfg.modelsDir)) {
    for (const f of readdirSync(cfg.modelsDir).sort()) {
      if (!f.endsWith(".gguf")) continue;
      const id = basename(f, ".gguf");
      if (taken.has(id)) continue;
      taken.add(id);
      out.push(defaults(id, { kind: "file", path: join(cfg.modelsDir, f) }));
    }
  }
  if (out.length === 0 && cfg.demoModels) {
    for (const d of DEMO_MODELS) {
      out.push(defaults(d.id, { kind: "gen", shape: d.shape, dtype: d.dtype, seed: d.seed }, { aliases: d.aliases, ttftSloMs: d.ttftMs, tpotSloMs: d.tpotMs }));
    }
  }
  return out;
}

/** Read (or generate and cache) one model file and parse its header; the tokenizer comes on first use. */
export function loadModelFile(entry: ModelEntry, dataDir: string, tokenizers: TokenizerCache = new TokenizerCache()): LoadedModel {
  let path: string;
  if (entry.source.kind === "file") {
    path = entry.source.path;
    if (!existsSync(path)) throw new PrismError("PRISM_FILE_NOT_FOUND", `model '${entry.id}': GGUF file not found: ${path}`, { path });
  } else {
    const { shape, dtype, seed } = entry.source;
    parseShape(shape);
    const dir = join(dataDir, "generated");
    path = join(dir, `${shape.replace(/[^A-Za-z0-9_.-]/g, "_")}-${dtype}-seed${seed}.gguf`);
    if (!existsSync(path)) {
      const bytes = generateRandomModel({ shape: parseShape(shape), dtype, seed });
      mkdirSync(dir, { recursive: true });
      // write-then-rename so a crash mid-write never leaves a truncated cache file behind
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, bytes);
      renameSync(tmp, path);
    }
  }
  // The server needs the vocabulary and shapes; the weights (most of the file) are read by the engine only.
  const gguf = readGgufHeaderSync(path);
  const cfg = llamaConfigFromGguf(gguf);
  return new Loaded(entry, path, gguf, cfg, tokenizers);
}
