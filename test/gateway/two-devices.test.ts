// Two devices, four small real models (the real engine), policy prism: one model's load jumps; the global
// scheduler activates it on another device or moves a model (the hot one, or its neighbour away from it), and every request keeps completing throughout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { STORIES_GGUF, startTestServer, testConfig } from "../helpers/server.ts";

test("two devices, four real models: a load jump is followed by placement, no request fails", async () => {
  const srv = await startTestServer(testConfig({
    yaml: {
      models: [
        { id: "s1", path: STORIES_GGUF, ttft_ms: 3000, tpot_ms: 1000, expected_rate: 1 },
        { id: "s2", path: STORIES_GGUF, ttft_ms: 3000, tpot_ms: 1000, expected_rate: 1 },
        { id: "s3", path: STORIES_GGUF, ttft_ms: 3000, tpot_ms: 1000, expected_rate: 1 },
        { id: "hot", path: STORIES_GGUF, ttft_ms: 300, tpot_ms: 1000, expected_rate: 1 },
      ],
    },
    flags: { "devices.count": 2, "devices.memory": "4MiB", "devices.page_size": "64KiB", "scheduler.round": "100ms", "scheduler.policy": "prism" },
  }));
  try {
    const devicesOf = async (id: string): Promise<number[]> => {
      const s = (await (await fetch(`${srv.url}/admin/state`)).json()) as any;
      const m = s.placement.models.find((x: any) => x.id === id);
      return m.instances.filter((i: any) => i.state === "active").map((i: any) => i.device).sort();
    };
    const send = (model: string, i: number, maxTokens = 24): Promise<number> =>
      fetch(`${srv.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, prompt: `Once upon a time ${i}`, max_tokens: maxTokens, ignore_eos: true }),
      }).then(async (r) => {
        await r.text();
        return r.status;
      });
    const statuses: Promise<number>[] = [];
    // phase 1: light traffic on every model
    for (let i = 0; i < 8; i++) {
      for (const m of ["s1", "s2", "s3", "hot"]) statuses.push(send(m, i));
      await new Promise((r) => setTimeout(r, 50));
    }
    const before = await devicesOf("hot");
    const layout = async (): Promise<string> => JSON.stringify(await Promise.all(["s1", "s2", "s3", "hot"].map(async (m) => [m, await devicesOf(m)])));
    const layoutBefore = await layout();
    // phase 2: the hot model's load jumps while the others keep their light traffic
    const seen = new Set<number>(before);
    // keep the jump up until placement reacts (the demand estimate needs a few rounds), at most ~10 s
    let changed = false;
    for (let i = 0; i < 200 && !changed; i++) {
      // long generations: the hot model's KV fills its device, so the device is KV-contended
      for (let k = 0; k < 2; k++) statuses.push(send("hot", 100 + i * 4 + k, 400));
      if (i % 4 === 0) for (const m of ["s1", "s2", "s3"]) statuses.push(send(m, 100 + i));
      await new Promise((r) => setTimeout(r, 50));
      for (const d of await devicesOf("hot")) seen.add(d);
      changed = seen.size === 2 || (await layout()) !== layoutBefore;
    }
    // and requests keep completing after the change
    for (let i = 0; i < 8; i++) for (const m of ["s1", "s2", "s3", "hot"]) statuses.push(send(m, 5000 + i));
    const all = await Promise.all(statuses);
    assert.deepEqual([...new Set(all)], [200], `statuses: ${all.filter((s) => s !== 200).join(",")}`);
    const s = (await (await fetch(`${srv.url}/admin/state`)).json()) as any;
    // the jump changed placement: the hot model got a second device, or a model moved (e.g. its neighbour left)
    assert.ok(changed && (seen.size === 2 || s.placement.counters.migrations > 0),
      `no placement change: ${layoutBefore} → ${await layout()}; counters ${JSON.stringify(s.placement.counters)}`);
  } finally {
    await srv.close();
  }
});
