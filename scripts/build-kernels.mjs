// Compiles the AssemblyScript kernels to WASM SIMD (runs on `npm ci` via postinstall, and before
// test/start; no download). Two builds, because a module importing a shared memory cannot import
// an unshared one: build/kernels.wasm (shared, engine + helper thread) and
// build/kernels.unshared.wasm. Skips work when the outputs are newer than the source.
// Keep the argument list in sync with ascArgs() in src/engine/kernels/wasm-kernels.ts.
import { existsSync, mkdirSync, statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const src = join(root, "src/engine/kernels/as/kernels.ts");
const outDir = join(root, "build");
if (!existsSync(src)) process.exit(0);
mkdirSync(outDir, { recursive: true });
const asc = join(root, "node_modules/assemblyscript/bin/asc.js");
if (!existsSync(asc)) {
  console.error("build-kernels: assemblyscript is not installed; run npm ci");
  process.exit(1);
}
const srcMtime = statSync(src).mtimeMs;
for (const shared of [true, false]) {
  const out = join(outDir, shared ? "kernels.wasm" : "kernels.unshared.wasm");
  if (existsSync(out) && statSync(out).mtimeMs >= srcMtime && !process.argv.includes("--force")) continue;
  const args = [asc, src, "-O3", "--runtime", "stub", "--enable", "simd",
    ...(shared ? ["--enable", "threads", "--sharedMemory"] : []),
    "--importMemory", "--initialMemory", "1", "--maximumMemory", "65536", "--noAssert", "-o", out];
  const r = spawnSync(process.execPath, args, { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
