// Backpressure and shutdown: a flood past the queue limits gets 429 + Retry-After for the excess, every accepted
// request completes in full, nothing accepted is lost; shutdown refuses new work and drains what it accepted.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, testConfig } from "../helpers/server.ts";

type Srv = Awaited<ReturnType<typeof startTestServer>>;

interface Outcome {
  status: number;
  retryAfter: string | null;
  code: string | null;
  completionTokens: number;
  finish: string | null;
}

async function complete(srv: Srv, body: Record<string, unknown>): Promise<Outcome> {
  const r = await fetch(`${srv.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const j = (await r.json()) as any;
  return {
    status: r.status,
    retryAfter: r.headers.get("retry-after"),
    code: j.error?.code ?? null,
    completionTokens: j.usage?.completion_tokens ?? 0,
    finish: j.choices?.[0]?.finish_reason ?? null,
  };
}

/** Streams one completion; returns the number of content chunks and whether [DONE] arrived. */
async function stream(srv: Srv, body: Record<string, unknown>): Promise<{ status: number; tokens: number; done: boolean }> {
  const r = await fetch(`${srv.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
  });
  if (r.status !== 200) {
    await r.text();
    return { status: r.status, tokens: 0, done: false };
  }
  const text = await r.text();
  let tokens = 0;
  let done = false;
  for (const line of text.split("\n")) {
    if (!line.startsWith("data: ")) continue;
    const data = line.slice(6);
    if (data === "[DONE]") done = true;
    else {
      const j = JSON.parse(data) as any;
      if (j.usage) tokens = j.usage.completion_tokens;
    }
  }
  return { status: r.status, tokens, done };
}

async function idle(srv: Srv): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    const s = (await (await fetch(`${srv.url}/admin/state`)).json()) as any;
    const busy = s.devices.some((d: any) => d.models.some((m: any) => m.kv_used_blocks + m.queued + m.running > 0));
    if (!busy && s.in_flight === 0) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

describe("overload", () => {
  test("per-model limit: the excess of a flood gets 429 with Retry-After; every accepted request completes in full", async () => {
    const srv = await startTestServer(
      testConfig({
        yaml: {
          models: [
            { id: "stories", path: (await import("../helpers/server.ts")).STORIES_GGUF, max_running: 2, max_queue: 3 },
          ],
        },
      }),
    );
    try {
      const maxTokens = 48;
      const flood = await Promise.all(
        Array.from({ length: 40 }, (_, i) => complete(srv, { model: "stories", prompt: `Tim ${i}`, max_tokens: maxTokens, ignore_eos: true })),
      );
      const ok = flood.filter((o) => o.status === 200);
      const limited = flood.filter((o) => o.status === 429);
      assert.equal(ok.length + limited.length, flood.length, `other statuses: ${flood.filter((o) => o.status !== 200 && o.status !== 429).map((o) => o.status)}`);
      assert.ok(ok.length >= 5, `at least running + queued accepted (${ok.length})`);
      assert.ok(limited.length > 0, "the flood exceeded the limit");
      for (const o of ok) {
        assert.equal(o.completionTokens, maxTokens);
        assert.equal(o.finish, "length");
      }
      for (const o of limited) {
        assert.equal(o.code, "PRISM_QUEUE_FULL");
        assert.match(o.retryAfter ?? "", /^[1-9]\d*$/);
      }
      assert.ok(await idle(srv), "nothing left queued or holding KV");
      // after the flood the server serves normally
      assert.equal((await complete(srv, { model: "stories", prompt: "Once", max_tokens: 4 })).status, 200);
    } finally {
      await srv.close();
    }
  });

  test("server-wide limit applies across models; streams that were accepted all finish with [DONE]", async () => {
    const srv = await startTestServer(testConfig({ flags: { "server.max_queue_total": 4 } }));
    try {
      const flood = await Promise.all(
        Array.from({ length: 24 }, (_, i) => stream(srv, { model: i % 2 === 0 ? "stories" : "tiny", prompt: `Lily ${i}`, max_tokens: 100, ignore_eos: true })),
      );
      const ok = flood.filter((o) => o.status === 200);
      assert.equal(ok.length + flood.filter((o) => o.status === 429).length, flood.length);
      assert.ok(ok.length >= 4 && ok.length < flood.length, `accepted ${ok.length}`);
      for (const o of ok) assert.deepEqual({ tokens: o.tokens, done: o.done }, { tokens: 100, done: true });
      assert.ok(await idle(srv));
    } finally {
      await srv.close();
    }
  });
});

describe("graceful shutdown", () => {
  test("stops accepting (503), drains the streams it accepted, then closes", async () => {
    const srv = await startTestServer(testConfig({ flags: { "server.shutdown_grace": "20s" } }));
    const inFlight = Array.from({ length: 3 }, (_, i) => stream(srv, { model: "stories", prompt: `Ben ${i}`, max_tokens: 200, ignore_eos: true }));
    // wait until all three are admitted
    for (let i = 0; i < 200; i++) {
      const s = (await (await fetch(`${srv.url}/admin/state`)).json()) as any;
      if (s.in_flight === 3) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const closing = srv.close();
    const late = await complete(srv, { model: "stories", prompt: "late", max_tokens: 4 }).catch(() => ({ status: 0 }) as Outcome);
    assert.ok(late.status === 503 || late.status === 0, `a request during shutdown got ${late.status}`);
    const results = await Promise.all(inFlight);
    for (const r of results) assert.deepEqual(r, { status: 200, tokens: 200, done: true });
    await closing;
    await assert.rejects(fetch(`${srv.url}/health`), "the socket is closed after the drain");
  });
});
