// The CLI imports only the command being run, from a static list (bundlers see static specifiers):
// the list must name every module in src/cli/commands, and each must register the command of its name.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import { COMMAND_MODULES, buildProgram } from "../../src/cli/main.ts";

test("COMMAND_MODULES lists every file in src/cli/commands", () => {
  const files = readdirSync(resolve(import.meta.dirname, "../../src/cli/commands")).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3)).sort();
  assert.deepEqual(Object.keys(COMMAND_MODULES).sort(), files);
});

test("buildProgram(name) registers that command alone; without a name, all of them", async () => {
  for (const name of Object.keys(COMMAND_MODULES)) {
    const p = await buildProgram(name);
    assert.deepEqual(p.commands.map((c) => c.name()), [name]);
  }
  const all = await buildProgram();
  assert.deepEqual(all.commands.map((c) => c.name()).sort(), Object.keys(COMMAND_MODULES).sort());
});

test("bin/prism.js runs from the bundle and, with PRISM_NO_BUNDLE=1, from the sources through tsx", () => {
  const bin = resolve(import.meta.dirname, "../../bin/prism.js");
  for (const env of [{}, { PRISM_NO_BUNDLE: "1" }]) {
    const r = spawnSync(process.execPath, [bin, "--version"], { env: { ...process.env, ...env }, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "0.1.0");
  }
});
