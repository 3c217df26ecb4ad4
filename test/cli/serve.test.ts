// `prism serve` as users run it: a child process from bin/prism.js, a YAML config, the engine in a worker thread
// (the default), the official client, then SIGTERM → graceful exit 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import OpenAI from "openai";
import { STORIES_GGUF, requireShared } from "../helpers/server.ts";

const BIN = resolve(import.meta.dirname, "../../bin/prism.js");

test("prism serve: config file, worker engine, official client, SIGTERM drains and exits 0", async () => {
  requireShared();
  const dir = mkdtempSync(join(tmpdir(), "prism-serve-cli-"));
  try {
    const cfg = join(dir, "prism.yaml");
    writeFileSync(cfg, [
      "server:", "  port: 0", "  log_level: warn",
      "devices:", "  memory: 64MiB", "  page_size: 64KiB",
      `data_dir: ${join(dir, "data")}`, `models_dir: ${join(dir, "models")}`,
      "models:", `  - id: stories`, `    path: ${STORIES_GGUF}`, "    aliases: [stories260k]",
      "",
    ].join("\n"));
    const child = spawn(process.execPath, [BIN, "serve", "--config", cfg], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    const url = await new Promise<string>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`no ready line in 60 s: ${stderr}`)), 60_000);
      child.stderr.on("data", (d) => {
        stderr += d;
        const m = /OpenAI API at (http:\/\/\S+)\/v1/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          ok(m[1]!);
        }
      });
      child.on("exit", (code) => fail(new Error(`exited ${code} before ready: ${stderr}`)));
    });
    assert.match(stderr, /serving stories on 1 device\(s\) of 64 MiB, policy prism/);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused" });
    const c = await client.completions.create({ model: "stories260k", prompt: "Once upon a time", max_tokens: 12, temperature: 0 });
    assert.equal(c.model, "stories");
    assert.equal(c.usage?.completion_tokens, 12);
    assert.ok(c.choices[0]!.text.length > 0);
    const admin = (await (await fetch(`${url}/admin/state`)).json()) as any;
    assert.equal(admin.devices[0].executor, "wasm");
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /SIGTERM: draining/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("prism --help lists the commands", async () => {
  const out = await new Promise<string>((ok) => {
    const c = spawn(process.execPath, [BIN, "--help"], { stdio: ["ignore", "pipe", "inherit"] });
    let s = "";
    c.stdout.on("data", (d) => (s += d));
    c.on("exit", () => ok(s));
  });
  for (const cmd of ["serve", "run", "bench", "sim", "trace", "model"]) assert.match(out, new RegExp(`^\\s+${cmd}\\b`, "m"), cmd);
});
