// `npm run bench:gateway`: the gateway's own overhead — HTTP parsing, validation, tokenisation, both schedulers,
// the device loop, detokenisation and response encoding — with a zero-cost engine (every step returns at once),
// on loopback. Load comes from autocannon in a child process so the server keeps the main thread.
//
// Scenarios: a short non-streaming completion (prompt of a few words, max_tokens 1) and a 64-token stream.
// Throughput at 64 connections (autocannon); latency at 1 connection (a sequential hrtime-timed client). "Added" latency = the gateway's p50/p99 minus those of a
// bare node:http server sending an equal-sized canned reply, measured in the same round, so loopback and client
// costs cancel. Rounds alternate server and baseline; medians over rounds. Each scenario first runs
// BENCH_WARMUP_SECONDS (default 2) of load that is not recorded, so round 1 measures a warmed-up server (JIT
// and pools), as a long-running one is, instead of its first seconds. BENCH_ROUNDS, BENCH_SECONDS override.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { existsSync } from "node:fs";
import pino from "pino";
import { loadConfig } from "../src/config/load.ts";
import { startPrism } from "../src/gateway/start.ts";
import type { Executor, SampledToken, StepPlan, StepResult } from "../src/core/records.ts";
import type { ModelId } from "../src/core/ids.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const STORIES = resolve(import.meta.dirname, "../../shared/models/stories260K.gguf");

/** Zero-cost executor: one fixed printable token per sampling sequence, never EOS, no compute. */
class ZeroCostExecutor implements Executor {
  readonly kind = "zero-cost";
  readonly pagedKv = true;
  async loadWeights(_m: ModelId, _o: number): Promise<{ durationMs: number }> {
    return { durationMs: 0 };
  }
  unloadWeights(): void {}
  moveWeights(): void {}
  async execute(plan: StepPlan): Promise<StepResult> {
    const sampled: SampledToken[] = [];
    for (const s of plan.seqs) {
      if (s.sample) sampled.push({ requestId: s.requestId, token: 300 + (s.startPos % 50), logprob: Number.NaN, topTokens: null, topLogprobs: null });
    }
    return { stepIndex: plan.stepIndex, computeMs: 0, sampled };
  }
  async close(): Promise<void> {}
}

interface Cannon {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

function autocannon(url: string, body: string, connections: number, seconds = SECONDS): Promise<Cannon> {
  const bin = resolve(import.meta.dirname, "../node_modules/autocannon/autocannon.js");
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [bin, "-j", "-c", String(connections), "-d", String(seconds), "-m", "POST", "-H", "content-type=application/json", "-b", body, url], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", fail);
    child.on("close", (code) => {
      if (code !== 0) return fail(new Error(`autocannon exited ${code}: ${err}`));
      const j = JSON.parse(out);
      ok({ rps: j.requests.average, p50: j.latency.p50, p99: j.latency.p99, non2xx: j.non2xx, errors: j.errors + j.timeouts });
    });
  });
}

/**
 * Sequential requests from a child process over one keep-alive connection, timed with hrtime (autocannon's
 * latencies are whole milliseconds, too coarse for sub-millisecond overhead).
 */
function latencyClient(url: string, body: string): Promise<{ p50: number; p99: number; n: number }> {
  const code = `
    const http = require("node:http");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const u = new URL(process.argv[1]); const body = process.argv[2]; const until = Date.now() + Number(process.argv[3]) * 1000;
    const lat = [];
    const one = () => new Promise((ok, fail) => {
      const t0 = process.hrtime.bigint();
      const req = http.request({ agent, host: u.hostname, port: u.port, path: u.pathname, method: "POST",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on("end", () => { if (res.statusCode !== 200) fail(new Error("status " + res.statusCode)); else ok(Number(process.hrtime.bigint() - t0) / 1e6); });
      });
      req.on("error", fail);
      req.end(body);
    });
    (async () => {
      for (let i = 0; i < 50; i++) await one();
      while (Date.now() < until) lat.push(await one());
      lat.sort((a, b) => a - b);
      const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
      process.stdout.write(JSON.stringify({ p50: q(0.5), p99: q(0.99), n: lat.length }));
      agent.destroy();
    })().catch((e) => { console.error(e); process.exit(1); });`;
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ["-e", code, url, body, String(SECONDS)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", fail);
    child.on("close", (c) => (c === 0 ? ok(JSON.parse(out)) : fail(new Error(`latency client exited ${c}: ${err}`))));
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function cannedServer(reply: string, contentType: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(reply) });
      res.end(reply);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}`, server };
}

async function main(): Promise<void> {
  if (!existsSync(STORIES)) throw new Error(`bench data missing: ${STORIES} (../shared must sit beside the repository)`);
  const dataDir = mkdtempSync(join(tmpdir(), "prism-bench-gw-"));
  const config = loadConfig({
    env: {},
    flags: {
      "server.host": "127.0.0.1", "server.port": 0, "server.log_level": "silent", "server.max_queue_total": 100000,
      "devices.count": 1, "devices.memory": "256MiB", "devices.page_size": "64KiB", "devices.worker": false,
      "scheduler.max_batch_seqs": 256, "scheduler.max_batch_tokens": 4096,
      data_dir: dataDir, models_dir: join(dataDir, "models"), demo_models: false,
      models: [{ id: "stories", path: STORIES, max_running: 256, max_queue: 100000, ttft_ms: 1000, tpot_ms: 100 }],
    },
  });
  const prism = await startPrism(config, { logger: pino({ level: "silent" }), executorFactory: async () => new ZeroCostExecutor() });
  const url = `${prism.url}/v1/completions`;
  const shortBody = JSON.stringify({ model: "stories", prompt: "Once upon a time", max_tokens: 1 });
  const streamBody = JSON.stringify({ model: "stories", prompt: "Once upon a time", max_tokens: 64, ignore_eos: true, stream: true });

  // Canned replies of the same size as the gateway's, for the baseline.
  const shortReply = await (await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: shortBody })).text();
  const streamReply = await (await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: streamBody })).text();
  if (!streamReply.endsWith("data: [DONE]\n\n") || streamReply.split("\n\n").length < 66) throw new Error(`unexpected stream: ${streamReply.slice(0, 200)}`);
  const baseShort = await cannedServer(shortReply, "application/json");
  const baseStream = await cannedServer(streamReply, "text/event-stream");

  const scenarios = [
    { name: "completion, non-streaming, max_tokens 1", body: shortBody, base: baseShort.url },
    { name: "completion, streaming, 64 tokens", body: streamBody, base: baseStream.url },
  ].filter((sc) => process.env.BENCH_ONLY === undefined || sc.name.includes(process.env.BENCH_ONLY));
  console.log(`bench:gateway — ${ROUNDS} rounds × ${SECONDS} s per measurement (after ${WARMUP_SECONDS} s of warm-up), zero-cost engine, loopback, autocannon in a child process`);
  const rows: string[][] = [];
  for (const sc of scenarios) {
    const thr: number[] = [];
    const p50: number[] = [];
    const p99: number[] = [];
    const bp50: number[] = [];
    const bp99: number[] = [];
    const addedP50: number[] = [];
    const addedP99: number[] = [];
    let failures = 0;
    if (WARMUP_SECONDS > 0) {
      const w = await autocannon(url, sc.body, 64, WARMUP_SECONDS);
      failures += w.non2xx + w.errors;
    }
    for (let r = 0; r < ROUNDS; r++) {
      const t = await autocannon(url, sc.body, 64);
      const l = await latencyClient(url, sc.body);
      const b = await latencyClient(sc.base, sc.body);
      failures += t.non2xx + t.errors;
      thr.push(t.rps);
      p50.push(l.p50);
      p99.push(l.p99);
      bp50.push(b.p50);
      bp99.push(b.p99);
      addedP50.push(l.p50 - b.p50);
      addedP99.push(l.p99 - b.p99);
      console.log(`  ${sc.name} round ${r + 1}: ${t.rps.toFixed(0)} req/s @64; p50 ${l.p50.toFixed(3)} ms (bare ${b.p50.toFixed(3)}), p99 ${l.p99.toFixed(3)} ms (bare ${b.p99.toFixed(3)}) @1, ${l.n} requests`);
    }
    if (failures > 0) throw new Error(`${sc.name}: ${failures} failed requests`);
    const f = (x: number): string => x.toFixed(3);
    rows.push([sc.name, median(thr).toFixed(0), `${f(median(p50))} / ${f(median(p99))}`, `${f(median(bp50))} / ${f(median(bp99))}`, `${f(median(addedP50))} / ${f(median(addedP99))}`]);
  }
  const header = ["scenario", "req/s (64 conns)", "p50 / p99 ms (1 conn)", "bare http p50 / p99 ms", "added p50 / p99 ms"];
  console.log("");
  console.log(`| ${header.join(" | ")} |`);
  console.log(`|${header.map(() => "---").join("|")}|`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  console.log("\ntargets: ≥ 5000 req/s (short completion), < 1 ms added p50");
  await prism.close();
  baseShort.server.close();
  baseStream.server.close();
  rmSync(dataDir, { recursive: true, force: true });
}

await main();
