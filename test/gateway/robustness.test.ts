// The robustness suite (keep it, it grows): every bad input gets the right status and error body;
// afterwards the server still serves, no KV page is in use and no request is left in any queue.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { startTestServer, testConfig } from "../helpers/server.ts";

type Srv = Awaited<ReturnType<typeof startTestServer>>;

async function post(srv: Srv, path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(`${srv.url}${path}`, { method: "POST", body: typeof body === "string" ? body : new Uint8Array(body), headers: { "content-type": "application/json", ...headers } });
  const text = await r.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json, headers: r.headers };
}

function assertOpenAiError(r: { status: number; json: any }, status: number, code?: string | RegExp, param?: string): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(typeof r.json.error.message, "string");
  assert.equal(typeof r.json.error.type, "string");
  assert.ok("param" in r.json.error && "code" in r.json.error);
  if (code instanceof RegExp) assert.match(r.json.error.code, code);
  else if (code !== undefined) assert.equal(r.json.error.code, code);
  if (param !== undefined) assert.equal(r.json.error.param, param);
}

async function kvBlocksInUse(srv: Srv): Promise<{ blocks: number; queued: number; running: number }> {
  const s = (await (await fetch(`${srv.url}/admin/state`)).json()) as any;
  let blocks = 0;
  let queued = 0;
  let running = 0;
  for (const d of s.devices) {
    for (const m of d.models) {
      blocks += m.kv_used_blocks;
      queued += m.queued;
      running += m.running;
    }
  }
  return { blocks, queued, running };
}

async function settle(srv: Srv): Promise<{ blocks: number; queued: number; running: number }> {
  for (let i = 0; i < 100; i++) {
    const s = await kvBlocksInUse(srv);
    if (s.blocks === 0 && s.queued === 0 && s.running === 0) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  return kvBlocksInUse(srv);
}

describe("robustness", () => {
  let srv: Srv;
  before(async () => {
    srv = await startTestServer(testConfig({ flags: { "server.body_limit": "1MiB", "server.header_timeout": "1500ms", "limits.max_stop_strings": 16 } }));
  });
  after(async () => {
    await srv.close();
  });
  const ok = { model: "stories", prompt: "Once upon a time", max_tokens: 4 };

  test("malformed JSON → 400", async () => {
    assertOpenAiError(await post(srv, "/v1/completions", "{\"model\": "), 400, "PRISM_HTTP_INVALID_REQUEST", "body");
    assertOpenAiError(await post(srv, "/v1/completions", ""), 400);
    assertOpenAiError(await post(srv, "/v1/completions", "[1,2]"), 400);
  });
  test("wrong types and missing fields → 400 naming the parameter", async () => {
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, max_tokens: "4" })), 400, "PRISM_HTTP_INVALID_REQUEST", "max_tokens");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, temperature: "hot" })), 400, undefined, "temperature");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ model: "stories" })), 400, undefined, "prompt");
    assertOpenAiError(await post(srv, "/v1/chat/completions", JSON.stringify({ model: "stories" })), 400, undefined, "messages");
    assertOpenAiError(await post(srv, "/v1/chat/completions", JSON.stringify({ model: "stories", messages: [{ role: "wizard", content: "x" }] })), 400, undefined, "messages[0].role");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ prompt: "x" })), 400, undefined, "model");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, stream: "yes" })), 400, undefined, "stream");
  });
  test("negative, NaN-like and out-of-range numbers → 400", async () => {
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, max_tokens: -1 })), 400, undefined, "max_tokens");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, temperature: -0.5 })), 400, undefined, "temperature");
    assertOpenAiError(await post(srv, "/v1/completions", "{\"model\":\"stories\",\"prompt\":\"x\",\"temperature\":NaN}"), 400);
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, top_p: 1.5 })), 400, undefined, "top_p");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, n: 0 })), 400, undefined, "n");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, n: 1000 })), 400, undefined, "n");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, presence_penalty: 3 })), 400, undefined, "presence_penalty");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, prompt: [1, -5] })), 400, undefined, "prompt");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, prompt: [1, 99999] })), 400, "PRISM_TOKEN_OUT_OF_RANGE");
  });
  test("huge max_tokens and prompts longer than the context → 400 context_length_exceeded", async () => {
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, max_tokens: 1_000_000 })), 400, "context_length_exceeded", "max_tokens");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, prompt: "word ".repeat(2000) })), 400, "context_length_exceeded", "prompt");
    // streaming requests get the same status, not a 200 stream carrying an error event
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, stream: true, max_tokens: 1_000_000 })), 400, "context_length_exceeded", "max_tokens");
    assertOpenAiError(await post(srv, "/v1/chat/completions", JSON.stringify({ model: "stories", messages: [{ role: "user", content: "hi" }], stream: true, max_completion_tokens: 1_000_000 })), 400, "context_length_exceeded");
    // a second prompt that is too long rejects the whole request before the first one is submitted
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, prompt: ["Once", "word ".repeat(2000)] })), 400, "context_length_exceeded");
  });
  test("10 MB body → 413", async () => {
    const big = JSON.stringify({ ...ok, prompt: "a".repeat(10 * 1024 * 1024) });
    const r = await post(srv, "/v1/completions", big);
    assertOpenAiError(r, 413, "PRISM_HTTP_BODY_TOO_LARGE");
  });
  test("invalid UTF-8 → 400", async () => {
    const bytes = Buffer.concat([Buffer.from("{\"model\":\"stories\",\"prompt\":\""), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from("\"}")]);
    assertOpenAiError(await post(srv, "/v1/completions", bytes), 400, "PRISM_HTTP_INVALID_REQUEST");
  });
  test("thousands of stop strings → 400", async () => {
    const stop = Array.from({ length: 5000 }, (_, i) => `s${i}`);
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, stop })), 400, undefined, "stop");
  });
  test("unknown and unsupported parameters → 400 naming them", async () => {
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, frobnicate: 1 })), 400, "PRISM_HTTP_UNSUPPORTED_PARAM", "frobnicate");
    assertOpenAiError(await post(srv, "/v1/chat/completions", JSON.stringify({ model: "stories", messages: [{ role: "user", content: "x" }], tools: [] })), 400, "PRISM_HTTP_UNSUPPORTED_PARAM", "tools");
    assertOpenAiError(await post(srv, "/v1/completions", JSON.stringify({ ...ok, logit_bias: { "1": 2 } })), 400, "PRISM_HTTP_UNSUPPORTED_PARAM", "logit_bias");
  });
  test("unknown routes → 404 in OpenAI's shape", async () => {
    const r = await fetch(`${srv.url}/v1/nope`);
    assert.equal(r.status, 404);
    const j = (await r.json()) as any;
    assert.equal(j.error.code, "PRISM_HTTP_NOT_FOUND");
  });
  test("slow-loris: a client that trickles its request is cut off, others are served meanwhile", async () => {
    const sock = connect(Number(new URL(srv.url).port), "127.0.0.1");
    await new Promise<void>((r) => sock.once("connect", () => r()));
    sock.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    const closed = new Promise<string>((resolve) => {
      let data = "";
      sock.on("data", (d) => (data += d.toString()));
      sock.on("close", () => resolve(data));
      sock.on("error", () => resolve(data));
    });
    // meanwhile the server answers others
    const r = await post(srv, "/v1/completions", JSON.stringify(ok));
    assert.equal(r.status, 200);
    const reply = await closed;
    assert.ok(reply === "" || /^HTTP\/1\.1 408/.test(reply), `unexpected reply: ${reply.slice(0, 80)}`);
  });
  test("a client that disconnects mid-stream cancels its request and frees its KV", async () => {
    const ac = new AbortController();
    const r = await fetch(`${srv.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "stories", prompt: "Once upon a time", max_tokens: 400, stream: true, ignore_eos: true }),
      signal: ac.signal,
    });
    const reader = r.body!.getReader();
    await reader.read();
    await reader.read();
    ac.abort();
    const s = await settle(srv);
    assert.deepEqual(s, { blocks: 0, queued: 0, running: 0 });
  });
  test("after the whole suite the server still serves, with zero KV blocks in use and empty queues", async () => {
    const r = await post(srv, "/v1/completions", JSON.stringify(ok));
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].finish_reason, "length");
    assert.deepEqual(await settle(srv), { blocks: 0, queued: 0, running: 0 });
    const health = await fetch(`${srv.url}/health`);
    assert.equal(health.status, 200);
  });
});

describe("API keys", () => {
  let srv: Srv;
  before(async () => {
    srv = await startTestServer(testConfig({ flags: { "server.api_keys": ["k-user"], "server.admin_keys": ["k-admin"] } }));
  });
  after(async () => {
    await srv.close();
  });
  test("missing or wrong key → 401; right key → 200; admin needs the admin key", async () => {
    const body = JSON.stringify({ model: "stories", prompt: "Once", max_tokens: 2 });
    assertOpenAiError(await post(srv, "/v1/completions", body), 401, "invalid_api_key");
    assertOpenAiError(await post(srv, "/v1/completions", body, { authorization: "Bearer nope" }), 401);
    assert.equal((await post(srv, "/v1/completions", body, { authorization: "Bearer k-user" })).status, 200);
    assert.equal((await fetch(`${srv.url}/admin/state`, { headers: { authorization: "Bearer k-user" } })).status, 401);
    assert.equal((await fetch(`${srv.url}/admin/state`, { headers: { authorization: "Bearer k-admin" } })).status, 200);
    assert.equal((await fetch(`${srv.url}/health`)).status, 200);
  });
});
