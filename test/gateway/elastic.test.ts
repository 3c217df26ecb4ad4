// Several models on one device: a burst on one model is served from KV pages another model released, seen
// through /admin/state while the bursts run. The same bursts under `static` stay inside fixed quotas.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { STORIES_GGUF, startTestServer, testConfig } from "../helpers/server.ts";

type Srv = Awaited<ReturnType<typeof startTestServer>>;

interface ModelView {
  id: string;
  kv_pages: number;
  kv_used_blocks: number;
  kv_limit_bytes: number | null;
  queued: number;
  running: number;
}
interface StateView {
  devices: { memory: { total_pages: number; weight_pages: number; headroom_pages: number; page_bytes: number }; models: ModelView[] }[];
}

async function state(srv: Srv): Promise<StateView> {
  return (await (await fetch(`${srv.url}/admin/state`)).json()) as StateView;
}

/** Sends `n` concurrent long completions to `model` and samples /admin/state until all are done. */
async function burst(srv: Srv, model: string, n: number, maxTokens: number): Promise<{ peakPages: Map<string, number>; finish: string[] }> {
  const peakPages = new Map<string, number>();
  let running = true;
  const sampler = (async () => {
    while (running) {
      const s = await state(srv);
      for (const m of s.devices[0]!.models) peakPages.set(m.id, Math.max(peakPages.get(m.id) ?? 0, m.kv_pages));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      fetch(`${srv.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, prompt: `Once upon a time ${i}`, max_tokens: maxTokens, ignore_eos: true }),
      }).then(async (r) => {
        assert.equal(r.status, 200, await r.clone().text());
        const j = (await r.json()) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
        assert.equal(j.usage.completion_tokens, maxTokens);
        return j.choices[0]!.finish_reason;
      }),
    ),
  );
  running = false;
  await sampler;
  return { peakPages, finish: replies };
}

async function settle(srv: Srv): Promise<ModelView[]> {
  for (let i = 0; i < 200; i++) {
    const ms = (await state(srv)).devices[0]!.models;
    if (ms.every((m) => m.kv_used_blocks === 0 && m.queued === 0 && m.running === 0)) return ms;
    await new Promise((r) => setTimeout(r, 10));
  }
  return (await state(srv)).devices[0]!.models;
}

// Two copies of stories260K (1 MiB of weights each) on an 8 MiB device: about 95 pages of KV in all. Each burst
// (12 × 280 tokens ≈ 210 blocks ≈ 70 pages at 3 blocks per page) needs most of that at once, so two bursts
// cannot both be served from disjoint pages.
function config(policy: string) {
  return testConfig({
    yaml: {
      models: [
        { id: "a", path: STORIES_GGUF, ttft_ms: 5000, tpot_ms: 1000, max_running: 16, expected_rate: 1 },
        { id: "b", path: STORIES_GGUF, ttft_ms: 5000, tpot_ms: 1000, max_running: 16, expected_rate: 1 },
      ],
    },
    flags: { "devices.memory": "8MiB", "devices.page_size": "64KiB", "scheduler.policy": policy },
  });
}

describe("elastic KV memory across models on one device", () => {
  test("prism: b's burst maps pages that a's burst released (peaks add up to more than the KV capacity)", async () => {
    const srv = await startTestServer(config("prism"));
    try {
      const s0 = await state(srv);
      const mem = s0.devices[0]!.memory;
      // An upper bound on the pages KV can ever map (weights take more once the models are active).
      const kvCapacityPages = mem.total_pages - mem.headroom_pages;
      assert.ok(kvCapacityPages > 60 && kvCapacityPages < 130, `capacity ${kvCapacityPages}`);
      for (const m of s0.devices[0]!.models) assert.equal(m.kv_limit_bytes, null, "prism sets no per-model KV quota");

      const a = await burst(srv, "a", 12, 270);
      assert.ok(a.finish.every((f) => f === "length"));
      const afterA = await settle(srv);
      const peakA = a.peakPages.get("a") ?? 0;
      // a gave its pages back (a small reserve may stay mapped; it is a cache, not a quota)
      const aHeld = afterA.find((m) => m.id === "a")!.kv_pages;
      assert.ok(aHeld < peakA / 4, `a still holds ${aHeld} of its ${peakA} peak pages`);

      const b = await burst(srv, "b", 12, 270);
      const peakB = b.peakPages.get("b") ?? 0;
      assert.ok(peakA > kvCapacityPages / 2 && peakB > kvCapacityPages / 2, `peaks a=${peakA} b=${peakB} of ${kvCapacityPages}`);
      assert.ok(peakA + peakB > kvCapacityPages, `b reused a's pages: ${peakA} + ${peakB} > ${kvCapacityPages}`);
      const end = await settle(srv);
      for (const m of end) assert.equal(m.kv_used_blocks, 0);
    } finally {
      await srv.close();
    }
  });

  test("static: the same bursts stay inside each model's fixed quota and still complete", async () => {
    const srv = await startTestServer(config("static"));
    try {
      const s0 = await state(srv);
      const mem = s0.devices[0]!.memory;
      const quotas = new Map(s0.devices[0]!.models.map((m) => [m.id, m.kv_limit_bytes]));
      for (const id of ["a", "b"]) assert.ok(typeof quotas.get(id) === "number", `static sets a quota for ${id}`);
      for (const id of ["a", "b"]) {
        const r = await burst(srv, id, 12, 270);
        assert.ok(r.finish.every((f) => f === "length"));
        const quotaPages = Math.ceil(quotas.get(id)! / mem.page_bytes);
        assert.ok((r.peakPages.get(id) ?? 0) <= quotaPages, `${id} peak ${r.peakPages.get(id)} pages > quota ${quotaPages}`);
        await settle(srv);
      }
    } finally {
      await srv.close();
    }
  });
});
