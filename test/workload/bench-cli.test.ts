// `prism bench` end to end against the fixture server: JSON output, HTML report, per-request CSV.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { register } from "../../src/cli/commands/bench.ts";
import { writeTrace, traceFromRows, type TraceRow } from "../../src/workload/trace-format.ts";
import { startFakeServer } from "./fixtures/fake-openai-server.ts";

test("prism bench --json --report --requests-out", async () => {
  const srv = await startFakeServer({
    "tiny-a": { ttftMs: 20, tokenMs: 2, slo: { ttft_slo_ms: 2000, tpot_slo_ms: 500 } },
    "tiny-b": { ttftMs: 30, tokenMs: 2, slo: { ttft_slo_ms: 1, tpot_slo_ms: 500 } },
  });
  const dir = mkdtempSync(join(tmpdir(), "prism-bench-cli-"));
  let out = "";
  try {
    const rows: TraceRow[] = [];
    for (let i = 0; i < 12; i++) rows.push({ arrivalS: i * 0.03, model: `m${i % 3}`, inputTokens: 8, outputTokens: 4 });
    const tracePath = join(dir, "t.csv");
    writeTrace(tracePath, traceFromRows(rows));
    const program = new Command("prism").exitOverride();
    register(program, { out: (s) => (out += s) });
    await program.parseAsync(
      ["bench", "--url", srv.url, "--trace", tracePath, "--models", "round-robin", "--json", "--report", join(dir, "r.html"), "--requests-out", join(dir, "req.csv"), "--sample-state-ms", "20"],
      { from: "user" },
    );
    const j = JSON.parse(out) as {
      numSent: number;
      servedModels: Record<string, string>;
      slos: Record<string, { ttftMs: number }>;
      report: { overall: { count: number; failed: number; ttftAttainment: number }; perModel: Array<{ name: string; ttftAttainment: number }> };
    };
    assert.equal(j.numSent, 12);
    assert.deepEqual(j.servedModels, { m0: "tiny-a", m1: "tiny-b", m2: "tiny-a" });
    // per-model SLOs come from the server's prism extension
    assert.equal(j.slos["m1"]!.ttftMs, 1);
    assert.equal(j.report.overall.count, 12);
    assert.equal(j.report.overall.failed, 0);
    assert.equal(j.report.perModel.find((g) => g.name === "m1")!.ttftAttainment, 0, "a 1 ms TTFT SLO is never met against a 30 ms server");
    assert.equal(j.report.perModel.find((g) => g.name === "m0")!.ttftAttainment, 1);
    const html = readFileSync(join(dir, "r.html"), "utf8");
    assert.match(html, /<title>prism bench/);
    assert.ok(html.length > 1_000_000, "echarts is inlined");
    assert.ok(!/<\/script>\s*<\/head>[\s\S]*<script src=/.test(html), "no external script");
    const csv = readFileSync(join(dir, "req.csv"), "utf8").trim().split("\n");
    assert.equal(csv.length, 13);
    assert.match(csv[1]!, /^0,m0,tiny-a,0\.000000,/);
  } finally {
    rmSync(dir, { recursive: true });
    await srv.close();
  }
});

test("prism bench usage errors", async () => {
  const program = new Command("prism").exitOverride();
  register(program);
  await assert.rejects(program.parseAsync(["bench", "--trace", "x.csv"], { from: "user" }), /--url is required/);
  await assert.rejects(program.parseAsync(["bench", "--url", "http://127.0.0.1:9", "--trace", "/nonexistent.csv"], { from: "user" }), /cannot read trace/);
  await assert.rejects(program.parseAsync(["bench", "--url", "http://x", "--trace", "x", "--slo", "p99=3"], { from: "user" }), /unknown key/);
});
