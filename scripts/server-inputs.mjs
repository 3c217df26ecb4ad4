// What the server bundle (build/server/, scripts/build-server.mjs) is built from, as one fingerprint:
// path, size and mtime of every file under src/, of the build scripts and of package.json. Shared by the
// build (skip when unchanged) and bin/prism.js (use the bundle only when it matches; ~10 ms for ~160 files).
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

export const ROOT = join(import.meta.dirname, "..");
export const OUT_DIR = join(ROOT, "build/server");
const EXTRA = ["scripts/build-server.mjs", "scripts/server-inputs.mjs", "package.json"];

function walk(dir, out) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
}

export function inputsFingerprint() {
  const files = [];
  walk(join(ROOT, "src"), files);
  for (const f of EXTRA) files.push(join(ROOT, f));
  files.sort();
  const h = createHash("sha256");
  for (const f of files) {
    const s = statSync(f);
    h.update(`${relative(ROOT, f)}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return { sha256: h.digest("hex"), numFiles: files.length };
}

/** True when build/server holds a complete bundle of the current inputs. */
export function bundleUpToDate() {
  let stored;
  try {
    stored = JSON.parse(readFileSync(join(OUT_DIR, "inputs.json"), "utf8"));
  } catch {
    return false;
  }
  return stored.sha256 === inputsFingerprint().sha256;
}
