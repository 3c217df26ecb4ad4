// `prism run` end to end: greedy stories260K streamed to stdout equals the golden texts byte for byte.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { SHARED_MODELS, sharedFile } from "./executor-harness.ts";

const root = resolve(import.meta.dirname, "../..");
const model = resolve(SHARED_MODELS, "stories260K.gguf");

function prism(...args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [resolve(root, "bin/prism.js"), ...args], { encoding: "utf8", cwd: root });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

test("prism run streams the golden greedy texts (prompt echoed, BOS per model metadata)", () => {
  sharedFile("stories260K.gguf");
  const once = prism("run", model, "Once upon a time", "--max-tokens", "64");
  assert.equal(once.status, 0, once.stderr);
  assert.equal(once.stdout, `${Buffer.from(sharedFile("stories260K.greedy-once-64.txt")).toString("utf8")}\n`);
  assert.match(once.stderr, /generated 64 tokens \(length\); decode [\d.]+ tok\/s/);
  const bos = prism("run", model, "--max-tokens", "200", "--kernels", "ts");
  assert.equal(bos.status, 0, bos.stderr);
  assert.equal(bos.stdout, `${Buffer.from(sharedFile("stories260K.greedy-bos-200.txt")).toString("utf8")}\n`);
});

test("prism run rejects bad sampling flags with a PrismError code", () => {
  const bad = prism("run", model, "hi", "--top-p", "0");
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /PRISM_SAMPLING_INVALID: sampling.topP/);
});
