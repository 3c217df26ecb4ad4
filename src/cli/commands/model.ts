/**
 * `prism model gen|convert|info`: make random-weight GGUFs, convert llama2.c checkpoints, inspect GGUF files.
 */
import type { Command } from "commander";
import { readFile, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { PrismError, isPrismError } from "../../core/errors.ts";
import { readGgufFile } from "../../engine/gguf/reader.ts";
import { ggmlTypeName, type GgufFile } from "../../engine/gguf/types.ts";
import { llamaConfigFromGguf, parameterCount, type LlamaConfig } from "../../engine/model/config.ts";
import { Tokenizer } from "../../engine/tokenizer/tokenizer.ts";
import { convertLlama2c, generateRandomModel, WEIGHT_DTYPES, type WeightDtype } from "../../engine/model/generate.ts";
import { parseShape, SHAPES } from "../../engine/model/shapes.ts";

function usage(msg: string): PrismError {
  return new PrismError("PRISM_CLI_USAGE", msg);
}

function intFlag(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min) throw usage(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return Number(v);
}

function required(name: string, v: string | undefined): string {
  if (v === undefined || v === "") throw usage(`--${name} is required`);
  return v;
}

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") throw new PrismError("PRISM_FILE_NOT_FOUND", `${what} ${path} does not exist`, { file: path });
    throw e;
  }
}

/** Prints through commander's output configuration (process.stdout unless a caller configured otherwise). */
function printer(cmd: Command): (text: string) => void {
  const writeOut = cmd.configureOutput().writeOut;
  return writeOut !== undefined ? (t) => writeOut(t) : (t) => void process.stdout.write(t);
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(2)} MiB`;
}

export function register(program: Command): void {
  const model = program.command("model").description("create, convert and inspect GGUF model files");

  model
    .command("gen")
    .description("write a deterministic random-weight Llama GGUF (synthetic vocabulary)")
    .option("--shape <shape>", `${Object.keys(SHAPES).join(" | ")} | dim,layers,heads,kv_heads,hidden,vocab`)
    .option("--dtype <dtype>", `weight encoding: ${WEIGHT_DTYPES.join(" | ")}`, "f32")
    .option("--seed <n>", "PRNG seed (same seed, same bytes)", "1")
    .option("--context <n>", "context length written to the file (default: the shape's)")
    .option("--name <name>", "general.name (default <shape>-random-<dtype>-s<seed>)")
    .option("--out <file>", "output .gguf path")
    .action(async (o: { shape?: string; dtype: string; seed: string; context?: string; name?: string; out?: string }, cmd: Command) => {
      const shape = parseShape(required("shape", o.shape));
      if (!(WEIGHT_DTYPES as readonly string[]).includes(o.dtype)) throw usage(`--dtype must be one of ${WEIGHT_DTYPES.join(", ")}, got '${o.dtype}'`);
      const seed = intFlag("seed", o.seed, 0)!;
      const contextLength = intFlag("context", o.context, 1);
      const out = required("out", o.out);
      const bytes = generateRandomModel({
        shape,
        dtype: o.dtype as WeightDtype,
        seed,
        ...(contextLength !== undefined ? { contextLength } : {}),
        ...(o.name !== undefined ? { name: o.name } : {}),
      });
      await writeFile(out, bytes);
      printer(cmd)(`wrote ${out}: ${shape.name} ${o.dtype} seed ${seed}, ${bytes.byteLength} bytes (${mib(bytes.byteLength)})\n`);
    });

  model
    .command("convert")
    .description("convert a llama2.c legacy checkpoint + tokenizer.bin to GGUF (all F32)")
    .option("--llama2c <file>", "llama2.c model .bin (legacy v0 export)")
    .option("--tokenizer <file>", "llama2.c tokenizer .bin")
    .option("--name <name>", "general.name (default: the model file's base name)")
    .option("--out <file>", "output .gguf path")
    .action(async (o: { llama2c?: string; tokenizer?: string; name?: string; out?: string }, cmd: Command) => {
      const modelPath = required("llama2c", o.llama2c);
      const tokPath = required("tokenizer", o.tokenizer);
      const out = required("out", o.out);
      const name = o.name ?? basename(modelPath).replace(/\.bin$/i, "");
      const bytes = convertLlama2c(await readInput(modelPath, "model"), await readInput(tokPath, "tokenizer"), name, {
        modelFileName: modelPath,
        tokenizerFileName: tokPath,
      });
      await writeFile(out, bytes);
      printer(cmd)(`wrote ${out}: ${name}, ${bytes.byteLength} bytes (${mib(bytes.byteLength)})\n`);
    });

  model
    .command("info")
    .description("print a GGUF file's architecture, shape, tensor types and sizes")
    .argument("<file>", "GGUF file")
    .option("--tensors", "list every tensor")
    .option("--json", "machine-readable output")
    .action(async (file: string, o: { tensors?: boolean; json?: boolean }, cmd: Command) => {
      const print = printer(cmd);
      const f = await readGgufFile(file, { allowAnyType: true });
      const info = describeGguf(f);
      if (o.json === true) {
        print(JSON.stringify(o.tensors === true ? { ...info, tensors: f.tensors } : info, null, 2) + "\n");
        return;
      }
      print(formatInfo(info));
      if (o.tensors === true) {
        for (const t of f.tensors) print(`  ${t.name.padEnd(28)} ${ggmlTypeName(t.type).padEnd(5)} [${t.dims.join(", ")}] ${t.byteLength} bytes @ ${t.offset}\n`);
      }
    });
}

export interface GgufSummary {
  file: string;
  bytes: number;
  version: number;
  alignment: number;
  dataOffset: number;
  metadataCount: number;
  tensorCount: number;
  architecture: string | null;
  name: string | null;
  config: LlamaConfig | null;
  /** Why Prism cannot serve the file (config or tokenizer error), or null. */
  problem: string | null;
  parameters: number | null;
  tensorTypes: Record<string, { count: number; bytes: number }>;
  tokenizer: string | null;
}

export function describeGguf(f: GgufFile): GgufSummary {
  let config: LlamaConfig | null = null;
  let problem: string | null = null;
  try {
    config = llamaConfigFromGguf(f);
    Tokenizer.fromGguf(f);
  } catch (e) {
    if (!isPrismError(e)) throw e;
    problem = `${e.code}: ${e.message}`;
  }
  const tensorTypes: Record<string, { count: number; bytes: number }> = {};
  for (const t of f.tensors) {
    const k = ggmlTypeName(t.type);
    const e = (tensorTypes[k] ??= { count: 0, bytes: 0 });
    e.count++;
    e.bytes += t.byteLength;
  }
  const str = (k: string): string | null => {
    const v = f.metadata.get(k);
    return typeof v === "string" ? v : null;
  };
  return {
    file: f.fileName,
    bytes: f.bytes.byteLength,
    version: f.version,
    alignment: f.alignment,
    dataOffset: f.dataOffset,
    metadataCount: f.metadata.size,
    tensorCount: f.tensors.length,
    architecture: str("general.architecture"),
    name: str("general.name"),
    config,
    problem,
    parameters: config === null ? null : parameterCount(config),
    tensorTypes,
    tokenizer: str("tokenizer.ggml.model"),
  };
}

function formatInfo(s: GgufSummary): string {
  const lines = [
    `file:         ${s.file} (${s.bytes} bytes, ${mib(s.bytes)})`,
    `gguf:         v${s.version}, ${s.metadataCount} metadata keys, ${s.tensorCount} tensors, alignment ${s.alignment}, data at ${s.dataOffset}`,
    `architecture: ${s.architecture ?? "?"}   name: ${s.name ?? "?"}`,
  ];
  const c = s.config;
  if (c !== null) {
    lines.push(
      `shape:        dim ${c.dim}, hidden ${c.hiddenDim}, layers ${c.numLayers}, heads ${c.numHeads}, kv heads ${c.numKvHeads}, head dim ${c.headDim}, vocab ${c.vocabSize}`,
      `context:      ${c.contextLength} tokens; rope theta ${c.ropeTheta}; rms eps ${c.rmsEps}; output ${c.tiedOutput ? "tied to token_embd" : "separate"}${c.qkvBias ? "; q/k/v biases" : ""}`,
      `parameters:   ${s.parameters}`,
      `tokenizer:    ${s.tokenizer ?? "none"}; bos ${c.bosTokenId}, eos ${c.eosTokenIds.join("/")}, add bos ${c.addBos}; chat template ${c.chatTemplate === null ? "none" : `${c.chatTemplate.length} chars`}`,
    );
  }
  const types = Object.entries(s.tensorTypes)
    .map(([k, v]) => `${k} ×${v.count} (${v.bytes} bytes)`)
    .join(", ");
  lines.push(`tensor types: ${types || "none"}`);
  if (s.problem !== null) lines.push(`not loadable: ${s.problem}`);
  return lines.join("\n") + "\n";
}
