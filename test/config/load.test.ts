// Config: YAML file < environment < flags, validated once; unknown keys named with the fix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { parseBytes, parseDurationMs } from "../../src/config/units.ts";

function withFile(yaml: string, fn: (path: string, dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "prism-config-"));
  try {
    const path = join(dir, "prism.yaml");
    writeFileSync(path, yaml);
    fn(path, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const code = (c: string, msg?: RegExp) => (e: any) => e.code === c && (msg === undefined || msg.test(e.message));

test("defaults: 127.0.0.1:8000, policy prism, demo models on, one device", () => {
  const c = loadConfig({ env: {} });
  assert.equal(c.server.host, "127.0.0.1");
  assert.equal(c.server.port, 8000);
  assert.equal(c.scheduler.policy, "prism");
  assert.equal(c.scheduler.demoteExpired, true);
  assert.equal(c.scheduler.lateMaxRunning, 8);
  assert.equal(c.scheduler.lateMaxWaitMs, 60_000);
  assert.equal(c.scheduler.abortUnreachableSlo, false);
  assert.equal(c.scheduler.guardFirstTokens, true);
  assert.equal(c.devices.count, 1);
  assert.equal(c.demoModels, true);
  assert.equal(c.devices.memoryBytes % c.devices.pageBytes, 0);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.server) && Object.isFrozen(c.models), "validated once, then frozen");
});

test("file < env < flags, and relative model paths resolve against the config file", () => {
  withFile(
    `server:\n  port: 9001\n  api_keys: [a]\ndevices:\n  memory: 256MiB\n  page_size: 64KiB\nscheduler:\n  policy: static\n  demote_expired: false\n  guard_first_tokens: false\n  late_max_running: 2\n  late_max_wait: 90s\nmodels:\n  - id: m\n    path: weights/m.gguf\n    keep_alive: 90s\n    ttft_ms: 700\n`,
    (path, dir) => {
      const fileOnly = loadConfig({ file: path, env: {} });
      assert.equal(fileOnly.server.port, 9001);
      assert.deepEqual(fileOnly.server.apiKeys, ["a"]);
      assert.equal(fileOnly.devices.memoryBytes, 256 * 1024 * 1024);
      assert.equal(fileOnly.devices.pageBytes, 65536);
      assert.equal(fileOnly.scheduler.policy, "static");
      assert.equal(fileOnly.scheduler.demoteExpired, false);
      assert.equal(fileOnly.scheduler.guardFirstTokens, false);
      assert.equal(fileOnly.scheduler.lateMaxRunning, 2);
      assert.equal(fileOnly.scheduler.lateMaxWaitMs, 90_000);
      assert.deepEqual(fileOnly.models[0]!.source, { kind: "file", path: join(dir, "weights/m.gguf") });
      assert.equal(fileOnly.models[0]!.keepAliveMs, 90_000);
      assert.equal(fileOnly.models[0]!.ttftSloMs, 700);
      const env = loadConfig({ file: path, env: { PRISM_PORT: "9002", PRISM_POLICY: "swap", PRISM_API_KEYS: "x, y" } });
      assert.equal(env.server.port, 9002);
      assert.equal(env.scheduler.policy, "swap");
      assert.deepEqual(env.server.apiKeys, ["x", "y"]);
      const flags = loadConfig({ file: path, env: { PRISM_PORT: "9002" }, flags: { "server.port": 9003, "scheduler.policy": undefined } });
      assert.equal(flags.server.port, 9003);
      assert.equal(flags.scheduler.policy, "static", "an unset flag does not override");
    },
  );
});

test("unknown keys are rejected, naming the key and the likely fix", () => {
  withFile(`server:\n  prot: 9000\n`, (path) => {
    assert.throws(() => loadConfig({ file: path, env: {} }), code("PRISM_CONFIG_UNKNOWN_KEY", /server\.prot.*did you mean 'port'/));
  });
  withFile(`models:\n  - id: m\n    path: x.gguf\n    ttft: 100\n`, (path) => {
    assert.throws(() => loadConfig({ file: path, env: {} }), code("PRISM_CONFIG_UNKNOWN_KEY", /models\[0\]\.ttft.*did you mean 'ttft_ms'/));
  });
  withFile(`schedular:\n  policy: prism\n`, (path) => {
    assert.throws(() => loadConfig({ file: path, env: {} }), code("PRISM_CONFIG_UNKNOWN_KEY", /did you mean 'scheduler'/));
  });
  assert.throws(() => loadConfig({ env: {}, flags: { "devices.pagesize": "64KiB" } }), code("PRISM_CONFIG_UNKNOWN_KEY", /page_size/));
});

test("bad values name the key: types, ranges, sizes, durations, policies, env values, YAML syntax, missing file", () => {
  assert.throws(() => loadConfig({ env: {}, flags: { "server.port": 70000 } }), code("PRISM_CONFIG_INVALID", /server\.port/));
  assert.throws(() => loadConfig({ env: {}, flags: { "scheduler.policy": "roundrobin" } }), code("PRISM_CONFIG_INVALID", /scheduler\.policy/));
  assert.throws(() => loadConfig({ env: {}, flags: { "scheduler.late_max_running": 0 } }), code("PRISM_CONFIG_INVALID", /scheduler\.late_max_running/));
  assert.throws(() => loadConfig({ env: {}, flags: { "devices.page_size": "3000" } }), code("PRISM_CONFIG_INVALID", /power of two/));
  assert.throws(() => loadConfig({ env: {}, flags: { "devices.memory": "8GiB" } }), code("PRISM_CONFIG_INVALID", /3\.5GiB/));
  assert.throws(() => loadConfig({ env: {}, flags: { "devices.memory": "lots" } }), code("PRISM_CONFIG_INVALID", /devices\.memory/));
  assert.throws(() => loadConfig({ env: { PRISM_PORT: "eighty" } }), code("PRISM_CONFIG_INVALID", /PRISM_PORT/));
  assert.throws(() => loadConfig({ env: { PRISM_WORKER: "maybe" } }), code("PRISM_CONFIG_INVALID", /PRISM_WORKER/));
  assert.throws(() => loadConfig({ file: "/nonexistent/prism.yaml", env: {} }), code("PRISM_FILE_NOT_FOUND"));
  withFile(`server: [unclosed\n`, (path) => assert.throws(() => loadConfig({ file: path, env: {} }), code("PRISM_CONFIG_INVALID", /not valid YAML/)));
  withFile(`models:\n  - id: m\n`, (path) => assert.throws(() => loadConfig({ file: path, env: {} }), code("PRISM_CONFIG_INVALID", /exactly one of 'path'.*'gen'/)));
  withFile(`models:\n  - id: m\n    path: a.gguf\n  - id: n\n    path: b.gguf\n    aliases: [m]\n`, (path) =>
    assert.throws(() => loadConfig({ file: path, env: {} }), code("PRISM_CONFIG_INVALID", /'m' is used twice/)));
});

test("units: sizes and durations", () => {
  assert.equal(parseBytes("64KiB", "k"), 65536);
  assert.equal(parseBytes("1.5GiB", "k"), 1.5 * 1024 ** 3);
  assert.equal(parseBytes(4096, "k"), 4096);
  assert.equal(parseDurationMs("250ms", "k"), 250);
  assert.equal(parseDurationMs("5m", "k"), 300_000);
  assert.equal(parseDurationMs("1h", "k"), 3_600_000);
  assert.throws(() => parseBytes("-1KiB", "k"));
  assert.throws(() => parseDurationMs("soon", "k"));
});
