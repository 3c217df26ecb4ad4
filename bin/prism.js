#!/usr/bin/env node
// Entry point. Runs the bundle in build/server/ (scripts/build-server.mjs), rebuilt first when the sources
// changed since it was built (~0.5 s, still less than loading them through tsx); when it cannot be built
// (esbuild missing, a read-only install), the TypeScript sources through tsx's loader. So an edited
// checkout never runs stale code. PRISM_NO_BUNDLE=1 forces the sources.
let cli = null;
if (process.env.PRISM_NO_BUNDLE !== "1") {
  const { ensureServerBundle } = await import("../scripts/build-server.mjs");
  if (await ensureServerBundle()) cli = await import("../build/server/main.js");
}
if (cli === null) {
  const { register } = await import("tsx/esm/api");
  register();
  cli = await import("../src/cli/main.ts");
}
const code = await cli.main(process.argv.slice(2));
if (typeof code === "number") process.exitCode = code;
