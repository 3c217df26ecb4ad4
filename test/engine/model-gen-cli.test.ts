// `prism model gen|convert|info` run in-process through commander (only this command module is registered).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { isPrismError, type ErrorCode } from "../../src/core/errors.ts";
import { register } from "../../src/cli/commands/model.ts";
import { generateRandomModel } from "../../src/engine/model/generate.ts";
import { ggufToWriterInput, gv, parseGguf, writeGguf } from "../../src/engine/gguf/index.ts";
import { writeFileSync } from "node:fs";
import { SHAPES } from "../../src/engine/model/shapes.ts";

const MODELS = new URL("../../../shared/models/", import.meta.url);
function sharedPath(name: string): string {
  const p = fileURLToPath(new URL(name, MODELS));
  if (!existsSync(p)) throw new Error(`test data missing: ${p} (expected ../shared/models beside the repository)`);
  return p;
}
const dir = mkdtempSync(join(tmpdir(), "prism-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function run(...args: string[]): Promise<string> {
  let out = "";
  const program = new Command("prism").exitOverride().configureOutput({ writeErr: () => {}, writeOut: (s) => void (out += s) });
  register(program);
  await program.parseAsync(args, { from: "user" });
  return out;
}

async function rejects(code: ErrorCode, fragment: string, ...args: string[]): Promise<void> {
  await assert.rejects(run(...args), (e: unknown) => isPrismError(e) && e.code === code && e.message.includes(fragment));
}

test("model gen writes the same bytes as generateRandomModel", async () => {
  const out = join(dir, "tiny.gguf");
  const msg = await run("model", "gen", "--shape", "tiny", "--dtype", "q8_0", "--seed", "5", "--out", out, "--context", "100");
  assert.match(msg, /wrote .*tiny\.gguf: tiny q8_0 seed 5/);
  const want = generateRandomModel({ shape: SHAPES.tiny!, dtype: "q8_0", seed: 5, contextLength: 100 });
  assert.ok(Buffer.from(readFileSync(out)).equals(Buffer.from(want)));
  await run("model", "gen", "--shape", "32,1,2,2,64,300", "--out", join(dir, "custom.gguf"));
  assert.ok(existsSync(join(dir, "custom.gguf")));
});

test("model convert reproduces stories260K.gguf; model info describes it", async () => {
  const out = join(dir, "s260.gguf");
  await run("model", "convert", "--llama2c", sharedPath("stories260K.bin"), "--tokenizer", sharedPath("tok512.bin"), "--out", out);
  assert.ok(Buffer.from(readFileSync(out)).equals(readFileSync(sharedPath("stories260K.gguf"))));
  const info = await run("model", "info", out);
  assert.match(info, /architecture: llama {3}name: stories260K/);
  assert.match(info, /shape: +dim 64, hidden 172, layers 5, heads 8, kv heads 4, head dim 8, vocab 512/);
  assert.match(info, /tensor types: F32 ×47 \(1040128 bytes\)/);
  assert.match(info, /parameters: +260032/);
  assert.match(info, /data at 14208/);
  const json = JSON.parse(await run("model", "info", out, "--json")) as { config: { numLayers: number }; tensorCount: number; problem: string | null };
  assert.equal(json.config.numLayers, 5);
  assert.equal(json.tensorCount, 47);
  assert.equal(json.problem, null);
  assert.match(await run("model", "info", out, "--tensors"), /blk\.4\.ffn_down\.weight +F32 +\[172, 64\]/);
});

test("model info summarises the tensor types of a mixed Q8_0/F16/F32 file", async () => {
  const path = join(dir, "mixed.gguf");
  await run("model", "gen", "--shape", "stories260K", "--dtype", "q8_0", "--out", path);
  assert.match(await run("model", "info", path), /tensor types: Q8_0 ×\d+ \(\d+ bytes\), F32 ×\d+ \(\d+ bytes\), F16 ×5/);
});

test("model info reports why Prism cannot serve a file instead of failing", async () => {
  const w = ggufToWriterInput(parseGguf(generateRandomModel({ shape: SHAPES.tiny!, dtype: "f32", seed: 1 }), "t.gguf"));
  const path = join(dir, "falcon.gguf");
  writeFileSync(path, writeGguf({ ...w, metadata: w.metadata.map(([k, v]) => [k, k === "general.architecture" ? gv.str("falcon") : v] as const) }));
  const info = await run("model", "info", path);
  assert.match(info, /architecture: falcon/);
  assert.match(info, /not loadable: PRISM_GGUF_UNSUPPORTED_ARCH: .*'falcon'/);
});

test("bad flags are PRISM_CLI_USAGE / PRISM_MODEL_SHAPE_INVALID; missing inputs PRISM_FILE_NOT_FOUND", async () => {
  await rejects("PRISM_CLI_USAGE", "--shape is required", "model", "gen", "--out", join(dir, "x.gguf"));
  await rejects("PRISM_CLI_USAGE", "--out is required", "model", "gen", "--shape", "tiny");
  await rejects("PRISM_CLI_USAGE", "--dtype must be one of f32, f16, q8_0", "model", "gen", "--shape", "tiny", "--dtype", "q4_0", "--out", join(dir, "x.gguf"));
  await rejects("PRISM_CLI_USAGE", "--seed must be an integer", "model", "gen", "--shape", "tiny", "--seed", "-1", "--out", join(dir, "x.gguf"));
  await rejects("PRISM_CLI_USAGE", "--context must be an integer", "model", "gen", "--shape", "tiny", "--context", "0", "--out", join(dir, "x.gguf"));
  await rejects("PRISM_MODEL_SHAPE_INVALID", "'nope'", "model", "gen", "--shape", "nope", "--out", join(dir, "x.gguf"));
  await rejects("PRISM_MODEL_SHAPE_INVALID", "not a multiple of heads", "model", "gen", "--shape", "30,1,4,4,64,300", "--out", join(dir, "x.gguf"));
  await rejects("PRISM_CLI_USAGE", "--tokenizer is required", "model", "convert", "--llama2c", sharedPath("stories260K.bin"), "--out", join(dir, "x.gguf"));
  await rejects("PRISM_FILE_NOT_FOUND", "/nonexistent/m.bin", "model", "convert", "--llama2c", "/nonexistent/m.bin", "--tokenizer", sharedPath("tok512.bin"), "--out", join(dir, "x.gguf"));
  await rejects("PRISM_FILE_NOT_FOUND", "/nonexistent/x.gguf", "model", "info", "/nonexistent/x.gguf");
  await rejects("PRISM_GGUF_BAD_MAGIC", "stories260K.bin", "model", "info", sharedPath("stories260K.bin"));
  assert.equal(existsSync(join(dir, "x.gguf")), false);
});
