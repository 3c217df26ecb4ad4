// The official `openai` client against a real running server with the real engine.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { SHARED, startTestServer } from "../helpers/server.ts";

const golden = JSON.parse(readFileSync(join(SHARED, "models/stories260K.greedy-once-64.json"), "utf8")) as { continuationText: string; generatedTokens: number[] };

describe("OpenAI API through the official client", () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let client: OpenAI;
  before(async () => {
    server = await startTestServer();
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await server.close();
  });

  test("lists models with ids, aliases and SLOs", async () => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id).sort();
    assert.deepEqual(ids, ["stories", "tiny"]);
    const m = await client.models.retrieve("stories260k");
    assert.equal(m.id, "stories");
  });

  test("completions, greedy, equal llama.cpp's golden continuation", async () => {
    const r = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 64, temperature: 0 });
    assert.equal(r.object, "text_completion");
    assert.equal(r.choices[0]!.text, golden.continuationText);
    assert.equal(r.choices[0]!.finish_reason, "length");
    assert.deepEqual(r.usage, { prompt_tokens: 5, completion_tokens: 64, total_tokens: 69 });
  });

  test("streaming completions give the same text, then usage, then [DONE]", async () => {
    const stream = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 64, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.text;
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.equal(text, golden.continuationText);
    assert.equal(finish, "length");
    assert.deepEqual(usage, { prompt_tokens: 5, completion_tokens: 64, total_tokens: 69 });
  });

  test("chat, streaming and not", async () => {
    const r = await client.chat.completions.create({ model: "stories", messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 20, temperature: 0 });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0]!.message.role, "assistant");
    assert.equal(r.usage!.completion_tokens, 20);
    const s = await client.chat.completions.create({ model: "stories", messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 20, temperature: 0, stream: true });
    let text = "";
    let role: string | undefined;
    for await (const chunk of s) {
      const d = chunk.choices[0]?.delta;
      if (d?.role) role = d.role;
      text += d?.content ?? "";
    }
    assert.equal(role, "assistant");
    assert.equal(text, r.choices[0]!.message.content);
  });

  test("n > 1 gives n choices; the same seed reproduces them", async () => {
    const a = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 24, temperature: 1, n: 3, seed: 42 });
    const b = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 24, temperature: 1, n: 3, seed: 42 });
    assert.equal(a.choices.length, 3);
    assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
    assert.deepEqual(a.choices.map((c) => c.text), b.choices.map((c) => c.text));
    assert.equal(new Set(a.choices.map((c) => c.text)).size > 1, true, "different choices should differ at temperature 1");
    assert.equal(a.usage!.completion_tokens, 72);
  });

  test("stop sequences end the text before the stop string, finish_reason stop", async () => {
    // golden continuation: ", there was a little girl named Lily. She loved ..."
    const r = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 64, temperature: 0, stop: ["Lily"] });
    assert.equal(r.choices[0]!.finish_reason, "stop");
    const idx = golden.continuationText.indexOf("Lily");
    assert.equal(r.choices[0]!.text, golden.continuationText.slice(0, idx));
    const s = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 64, temperature: 0, stop: ["Lily"], stream: true });
    let text = "";
    for await (const c of s) text += c.choices[0]?.text ?? "";
    assert.equal(text, golden.continuationText.slice(0, idx));
  });

  test("logprobs: chat top_logprobs and completions logprobs", async () => {
    const r = await client.chat.completions.create({ model: "stories", messages: [{ role: "user", content: "Hi" }], max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = r.choices[0]!.logprobs!.content!;
    assert.equal(content.length, 5);
    for (const t of content) {
      assert.ok(t.logprob <= 0);
      assert.equal(t.top_logprobs.length, 3);
      assert.ok(t.top_logprobs[0]!.logprob >= t.top_logprobs[2]!.logprob);
    }
    const c = await client.completions.create({ model: "stories", prompt: "Once", max_tokens: 4, temperature: 0, logprobs: 2 });
    assert.equal(c.choices[0]!.logprobs!.tokens!.length, 4);
    assert.equal(c.choices[0]!.logprobs!.top_logprobs!.length, 4);
  });

  test("an unknown model is a 404 naming close models", async () => {
    await assert.rejects(
      client.completions.create({ model: "storys", prompt: "x", max_tokens: 1 }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.NotFoundError);
        assert.equal((e as InstanceType<typeof OpenAI.NotFoundError>).code, "model_not_found");
        assert.match((e as Error).message, /stories/);
        return true;
      },
    );
  });
});
