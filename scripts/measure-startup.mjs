// Later-start time of `prism serve` with the embedded default (the demo models, engine in a worker):
// wall time from spawning the process to the first 200 of a one-token completion, polled every 5 ms.
// The demo models are generated once by a warm-up start that is not counted (that is the first-start
// cost); then N counted starts, alternating between the checkouts given, median per checkout.
//
//   node scripts/measure-startup.mjs [-n 5] [--npm] [checkout ...]     (default checkout: this one)
//
// --npm starts through `npm start` (prestart's build checks included), as a user would.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const args = process.argv.slice(2);
let n = 5;
let viaNpm = false;
const roots = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "-n") n = Number(args[++i]);
  else if (args[i] === "--npm") viaNpm = true;
  else roots.push(resolve(args[i]));
}
if (roots.length === 0) roots.push(resolve(import.meta.dirname, ".."));

function freePort() {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

async function oneStart(root, dataDir) {
  const port = await freePort();
  const serveArgs = ["--port", String(port), "--data-dir", dataDir, "--models-dir", join(dataDir, "none"), "--log-level", "warn"];
  const t0 = performance.now();
  const child = viaNpm
    ? spawn("npm", ["start", "--silent", "--", ...serveArgs], { cwd: root, stdio: ["ignore", "ignore", "pipe"], detached: true })
    : spawn(process.execPath, [join(root, "bin/prism.js"), "serve", ...serveArgs], { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let exited = false;
  const gone = new Promise((ok) => child.on("exit", () => ((exited = true), ok())));
  const body = JSON.stringify({ model: "demo", prompt: "Once upon a time", max_tokens: 1 });
  let ms = -1;
  while (!exited && performance.now() - t0 < 120_000) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      await r.arrayBuffer();
      if (r.status === 200) {
        ms = performance.now() - t0;
        break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  // npm runs the server as a grandchild: signal the whole group
  if (viaNpm) process.kill(-child.pid, "SIGTERM");
  else child.kill("SIGTERM");
  await gone;
  if (ms < 0) throw new Error(`no 200 from ${root}: ${stderr.slice(-2000)}`);
  return ms;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const dataDirs = roots.map(() => mkdtempSync(join(tmpdir(), "prism-startup-")));
try {
  const first = [];
  for (let i = 0; i < roots.length; i++) first.push(await oneStart(roots[i], dataDirs[i]));
  const times = roots.map(() => []);
  for (let k = 0; k < n; k++) {
    for (let i = 0; i < roots.length; i++) times[i].push(await oneStart(roots[i], dataDirs[i]));
  }
  for (let i = 0; i < roots.length; i++) {
    const t = times[i];
    console.log(`${roots[i]}${viaNpm ? " (npm start)" : ""}: first start ${(first[i] / 1000).toFixed(2)} s (generates the demo models); ` +
      `later starts to the first 200: median ${(median(t) / 1000).toFixed(2)} s of ${n} [${t.map((x) => (x / 1000).toFixed(2)).join(", ")}]`);
  }
} finally {
  for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
}
