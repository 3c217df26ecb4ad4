// Admin API, probes, Prometheus metrics and the per-request log line, against a real server.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import pino from "pino";
import { startPrism } from "../../src/gateway/start.ts";
import { testConfig } from "../helpers/server.ts";

type Srv = Awaited<ReturnType<typeof startPrism>>;

describe("admin, probes, metrics, logs", () => {
  let srv: Srv;
  const lines: any[] = [];
  const rawLines: string[] = [];
  before(async () => {
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split("\n")) if (l.trim() !== "") { rawLines.push(l); lines.push(JSON.parse(l)); }
        cb();
      },
    });
    srv = await startPrism(testConfig({ flags: { "scheduler.round": "50ms" } }), { logger: pino({ level: "info" }, sink) });
  });
  after(async () => {
    await srv.close();
  });
  const get = async (path: string): Promise<any> => (await fetch(`${srv.url}${path}`)).json();
  const post = async (path: string): Promise<{ status: number; json: any }> => {
    const r = await fetch(`${srv.url}${path}`, { method: "POST" });
    return { status: r.status, json: await r.json() };
  };
  const modelState = async (id: string): Promise<any> => (await get("/admin/state")).devices[0].models.find((m: any) => m.id === id);

  test("probes", async () => {
    assert.deepEqual(await get("/health"), { status: "ok" });
    assert.deepEqual(await get("/ready"), { status: "ready" });
  });

  test("/admin/state: budget, pages, models with residency, KV and queues, placement", async () => {
    const s = await get("/admin/state");
    assert.equal(s.policy, "prism");
    assert.equal(s.devices.length, 1);
    const d = s.devices[0];
    assert.equal(d.memory.budget_bytes, 64 * 1024 * 1024);
    assert.equal(d.memory.page_bytes, 64 * 1024);
    assert.equal(d.memory.total_pages, 1024);
    assert.deepEqual(d.models.map((m: any) => m.id).sort(), ["stories", "tiny"]);
    for (const m of d.models) {
      for (const k of ["residency", "pinned", "keep_alive_ms", "weight_bytes", "kv_used_blocks", "kv_pages", "queued", "running"]) assert.ok(k in m, `${k} in model state`);
    }
    assert.equal(s.placement.policy, "prism");
  });

  test("load, unload, pin, unpin (by id or alias); unknown models and actions are 404", async () => {
    assert.deepEqual((await post("/admin/models/tiny/load")).json, { id: "tiny", status: "loaded" });
    assert.equal((await modelState("tiny")).residency, "resident");
    assert.ok((await modelState("tiny")).weight_bytes > 0);
    assert.deepEqual((await post("/admin/models/stories260k/pin")).json, { id: "stories", pinned: true });
    assert.equal((await modelState("stories")).pinned, true);
    assert.deepEqual((await post("/admin/models/stories/unpin")).json, { id: "stories", pinned: false });
    assert.equal((await modelState("stories")).pinned, false);
    assert.deepEqual((await post("/admin/models/tiny/unload")).json, { id: "tiny", status: "unloaded" });
    // unloaded: gone from the device, or still listed (draining) as absent with no weights
    const unloaded = async (): Promise<boolean> => {
      const t = await modelState("tiny");
      return t === undefined || (t.residency === "absent" && t.weight_bytes === 0);
    };
    assert.ok(await unloaded());
    // an operator's unload sticks across scheduling rounds (no prefetch back into free memory)
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(await unloaded(), "tiny stays unloaded");
    const unknown = await post("/admin/models/nope/load");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.code, "model_not_found");
    assert.equal((await post("/admin/models/tiny/explode")).status, 404);
    // a request after an unload activates the model again
    const r = await fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "tiny", prompt: "a", max_tokens: 2 }) });
    assert.equal(r.status, 200);
    assert.equal((await modelState("tiny")).residency, "resident");
  });

  test("/metrics: vLLM-style names, histograms count finished requests, SLO counters, memory by kind", async () => {
    const before = await (await fetch(`${srv.url}/metrics`)).text();
    const count = (text: string): number => Number(/^prism:time_to_first_token_seconds_count\{model="stories"\} (\d+)/m.exec(text)?.[1] ?? 0);
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "stories", prompt: "Once", max_tokens: 5 }) });
      assert.equal(r.status, 200);
      await r.text();
    }
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    assert.equal(count(text) - count(before), 3);
    for (const name of [
      "prism:time_to_first_token_seconds_bucket", "prism:time_per_output_token_seconds_sum", "prism:e2e_request_latency_seconds_count",
      "prism:num_requests_running", "prism:num_requests_waiting", "prism:kv_pages_used", "prism:device_memory_bytes",
      "prism:model_activations_total", "prism:model_evictions_total", "prism:migrations_total", "prism:slo_attained_total",
    ]) assert.match(text, new RegExp(`^${name}`, "m"), name);
    assert.match(text, /^prism:device_memory_bytes\{device="0",kind="budget"\} 67108864$/m);
    assert.match(text, /^prism:slo_attained_total\{model="stories",slo="ttft"\} [1-9]/m);
  });

  test("one structured log line per request: id, model, tokens, TTFT, status", async () => {
    const n0 = lines.filter((l) => l.msg === "request").length;
    const r = await fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "stories", prompt: "Lily", max_tokens: 3 }) });
    const id = ((await r.json()) as any).id;
    const reqLines = lines.filter((l) => l.msg === "request");
    assert.equal(reqLines.length, n0 + 1);
    const l = reqLines.at(-1);
    assert.equal(l.id, id);
    assert.equal(l.model, "stories");
    assert.equal(l.status, 200);
    assert.equal(l.completionTokens, 3);
    assert.ok(l.promptTokens > 0 && typeof l.ttftMs === "number" && typeof l.reqId === "string");
    // each key once (JSON.parse keeps the last of duplicates, log shippers may not)
    const raw = rawLines.filter((x) => x.includes(`"id":"${id}"`));
    assert.equal(raw.length, 1);
    assert.equal(raw[0]!.split('"reqId":').length - 1, 1, raw[0]);
  });
});
