// Bundles the CLI and the engine's worker entries with esbuild into build/server/ (gitignored), so `prism`
// starts without tsx: no TypeScript loader thread, no per-module transform or cache lookups, one ESM graph
// of a few files (the packages it imports included, but for EXTERNAL). Runs on `npm ci` (postinstall), and bin/prism.js
// calls ensureServerBundle() on every start: nothing to do when build/server/inputs.json matches the
// sources (scripts/server-inputs.mjs), a rebuild (~0.5 s, less than loading the sources through tsx)
// after an edit. Tests import the sources through tsx and do not need it.
//
// Source files locate things relative to themselves with `new URL(x, import.meta.url)` (the kernels'
// .wasm, the demo traces, the worker entries). The plugin below keeps that meaning in the bundle:
// a URL naming a worker entry points at the entry's bundled file; any other `import.meta.url` becomes the
// URL of the original source file, computed from the bundle's own location (so the checkout can move).
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { bundleUpToDate, inputsFingerprint, OUT_DIR, ROOT } from "./server-inputs.mjs";

const src = (p) => join(ROOT, "src", p);
/** Bundle entry name → source. Workers are started by URL, so each is an entry of its own. */
const ENTRIES = {
  main: src("cli/main.ts"),
  "executor-host": src("engine/runtime/executor-host.ts"),
  "matmul-helper": src("engine/runtime/matmul-helper.ts"),
  "engine-executor": src("engine/model/executor.ts"),
};
/** Worker bootstrap: the source one registers tsx first; bundled entries are plain JS. */
const BOOTSTRAP_SRC = src("engine/runtime/bootstrap.mjs");
const BOOTSTRAP_OUT = "worker-bootstrap.mjs";
const EXTERNAL = ["node-llama-cpp", "@node-llama-cpp/*", "assemblyscript", "assemblyscript/*", "esbuild", "echarts", "echarts/*", "openai", "openai/*", "tsx", "tsx/*", "typescript"];
/** Bundled CommonJS packages call require() for Node's built-ins; ESM output has no require of its own. */
const BANNER = 'import { createRequire as __prismCreateRequire } from "node:module"; const require = __prismCreateRequire(import.meta.url);';
const urlTargets = new Map([...Object.entries(ENTRIES).map(([name, path]) => [path, `./${name}.js`]), [BOOTSTRAP_SRC, `./${BOOTSTRAP_OUT}`]]);

const keepMeaning = {
  name: "prism-import-meta",
  setup(build) {
    build.onLoad({ filter: /\/src\/.*\.ts$/ }, (args) => {
      let code = readFileSync(args.path, "utf8");
      if (!code.includes("import.meta")) return { contents: code, loader: "ts" };
      code = code.replace(/new URL\(\s*(["'])([^"']+)\1\s*,\s*import\.meta\.url\s*\)/g, (whole, _q, rel) => {
        const target = urlTargets.get(resolve(dirname(args.path), rel));
        return target === undefined ? whole : `new URL(${JSON.stringify(target)}, BUNDLE_META_URL)`;
      });
      // every bundled file sits directly in OUT_DIR, so one relative path reaches the source file
      const fromOut = relative(OUT_DIR, args.path).split("\\").join("/");
      code = code.replace(/import\.meta\.url/g, `new URL(${JSON.stringify(fromOut)}, import.meta.url).href`);
      code = code.replace(/BUNDLE_META_URL/g, "import.meta.url");
      if (/import\.meta\.(dirname|filename)/.test(code)) throw new Error(`${args.path}: import.meta.dirname/filename are not mapped in the bundle; use new URL(x, import.meta.url)`);
      return { contents: code, loader: "ts" };
    });
  },
};

/**
 * Builds build/server/ unless it already matches the sources (or `force`). Returns false, having printed
 * why, when it cannot (esbuild missing, a build error, a read-only checkout).
 */
export async function ensureServerBundle({ force = false } = {}) {
  if (!force && bundleUpToDate()) return true;
  const tmpDir = `${OUT_DIR}.tmp-${process.pid}`;
  try {
    await build(tmpDir, force);
    return true;
  } catch (e) {
    rmSync(tmpDir, { recursive: true, force: true });
    if (!(e && Array.isArray(e.errors))) console.error(`build-server: ${e instanceof Error ? e.message : String(e)}`); // esbuild printed its own
    return false;
  }
}

async function build(tmpDir, force) {
  const esbuild = await import("esbuild");
  rmSync(tmpDir, { recursive: true, force: true });
  // the inputs as they were before the build started: an edit during the build leaves the result stale
  const fingerprint = inputsFingerprint();
  await esbuild.build({
    entryPoints: ENTRIES,
    outdir: tmpDir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    // Packages are bundled too (one file graph instead of ~hundreds of CommonJS files through Node's
    // resolver); those with native code, run-time file lookups or only used by other commands stay out.
    external: EXTERNAL,
    banner: { js: BANNER },
    chunkNames: "chunk-[hash]",
    sourcemap: "linked",
    legalComments: "none",
    logLevel: "warning",
    plugins: [keepMeaning],
  });
  writeFileSync(join(tmpDir, BOOTSTRAP_OUT), [
    "// Worker entry for bundled modules (the source tree's bootstrap.mjs registers tsx first).",
    'import { workerData } from "node:worker_threads";',
    "await import(workerData.tsEntry);",
    "",
  ].join("\n"));
  writeFileSync(join(tmpDir, "package.json"), '{ "type": "module" }\n');
  writeFileSync(join(tmpDir, "inputs.json"), `${JSON.stringify(fingerprint)}\n`);
  mkdirSync(dirname(OUT_DIR), { recursive: true });
  // a start running at the same moment may have built (and be loading) the same bundle: keep that one
  if (!force && bundleUpToDate()) {
    rmSync(tmpDir, { recursive: true, force: true });
    return;
  }
  try {
    rmSync(OUT_DIR, { recursive: true, force: true });
    renameSync(tmpDir, OUT_DIR);
  } catch (e) {
    // another start built it at the same moment
    rmSync(tmpDir, { recursive: true, force: true });
    if (!bundleUpToDate()) throw e;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const ok = await ensureServerBundle({ force: process.argv.includes("--force") });
  process.exitCode = ok ? 0 : 1;
}
