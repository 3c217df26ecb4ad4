// Compiles the AssemblyScript kernels to WASM SIMD (runs on `npm ci` via postinstall; no download).
import { existsSync, mkdirSync } from "node:fs";
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
const args = [asc, src, "-O3", "--runtime", "stub", "--enable", "simd", "--enable", "threads",
  "--importMemory", "--sharedMemory", "--initialMemory", "1", "--maximumMemory", "65536",
  "--noAssert", "-o", join(outDir, "kernels.wasm")];
const r = spawnSync(process.execPath, args, { stdio: "inherit" });
process.exit(r.status ?? 1);
