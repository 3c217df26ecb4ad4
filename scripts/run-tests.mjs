// `npm test`: type-check, then every test file under test/ through node's own runner with tsx.
// Node 20's --test does not expand globs, so the files are listed here.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync, existsSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
if (!existsSync(join(root, "..", "shared", "models", "stories260K.gguf"))) {
  console.error("FATAL: ../shared is missing (expected ../shared/models and ../shared/traces beside the repository). Tests that need it will fail.");
}

const filter = process.argv.slice(2);
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}
let files = walk(join(root, "test"));
if (filter.length > 0) files = files.filter((f) => filter.some((s) => f.includes(s)));

if (!process.env.PRISM_SKIP_TYPECHECK && filter.length === 0) {
  const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", root], { stdio: "inherit" });
  if (tsc.status !== 0) {
    console.error("type check failed");
    process.exit(1);
  }
}

const args = ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=2", ...files];
const r = spawnSync(process.execPath, args, { stdio: "inherit", cwd: root, env: { ...process.env } });
process.exit(r.status ?? 1);
