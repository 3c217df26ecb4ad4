import { test } from "node:test";
import assert from "node:assert/strict";
import { parseModelsConfig, resolveModels } from "../../src/sim/models-file.ts";

test("models file: defaults, scale forms, explicit SLO", () => {
  const c = parseModelsConfig({ models: [{ id: "a", arch: "llama-3.2-1b" }, { id: "b", arch: "llama-3.3-70b", tp: 4, slo: { ttft_ms: 900, tpot_ms: 80 } }] });
  assert.equal(c.deviceType, "h100");
  assert.deepEqual(c.sloScale, { ttft: 5, tpot: 5 });
  assert.equal(c.models[0]!.tp, null);
  assert.deepEqual(c.models[1]!.slo, { ttftMs: 900, tpotMs: 80 });
  const c2 = parseModelsConfig({ device: "a100", slo_scale: { ttft: 3, tpot: 8 } });
  assert.deepEqual(c2.sloScale, { ttft: 3, tpot: 8 });
});

test("models file: unknown keys are rejected, naming the key and where", () => {
  assert.throws(() => parseModelsConfig({ devices: "h100" }, "f.yaml"), (e: Error & { code?: string }) => e.code === "PRISM_CONFIG_UNKNOWN_KEY" && /unknown key 'devices'/.test(e.message));
  assert.throws(
    () => parseModelsConfig({ models: [{ id: "a", arch: "llama-3.2-1b", tpp: 2 }] }),
    (e: Error & { code?: string }) => e.code === "PRISM_CONFIG_UNKNOWN_KEY" && /'tpp' at models\[0\]/.test(e.message),
  );
  assert.throws(() => parseModelsConfig({ models: [{ id: "a", arch: "gpt-9" }] }), (e: Error & { code?: string }) => e.code === "PRISM_CONFIG_INVALID" && /models\[0\]\.arch/.test(e.message));
  assert.throws(() => parseModelsConfig({ models: [{ id: "a", arch: "llama-3.2-1b" }, { id: "a", arch: "llama-3.2-1b" }] }), /twice/);
});

test("resolveModels: default_arch fills trace models; missing ones are named", () => {
  const c = parseModelsConfig({ default_arch: "llama-3.1-8b", models: [{ id: "a", arch: "llama-3.2-1b" }] });
  const r = resolveModels(c, ["a", "z"]);
  assert.deepEqual(r.map((m) => [m.id, m.arch]), [["a", "llama-3.2-1b"], ["z", "llama-3.1-8b"]]);
  const c2 = parseModelsConfig({ models: [{ id: "a", arch: "llama-3.2-1b" }] });
  assert.throws(() => resolveModels(c2, ["a", "q"]), /'?q/);
});
