/** POST /v1/chat/completions, POST /v1/completions, GET /v1/models[/id] in OpenAI's exact shapes. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { PrismError } from "../../core/errors.ts";
import type { ServedModel, ServingBackend } from "../backend.ts";
import { encodePrompts, startGeneration, type GenerationResult, type TokenLogprob } from "../generation.ts";
import { parseGenRequest, type GenRequest } from "../openai-request.ts";
import type { GatewayContext } from "../server.ts";
import { closestNames } from "../names.ts";
import { SseWriter } from "../sse.ts";

function modelObject(m: ServedModel): Record<string, unknown> {
  return {
    id: m.id,
    object: "model",
    created: m.createdS,
    owned_by: "prism",
    // Prism extension: what `prism bench` and dashboards need to know about the model.
    prism: { aliases: m.aliases, context_length: m.contextTokens, ttft_slo_ms: m.ttftSloMs, tpot_slo_ms: m.tpotSloMs, pinned: m.pinned },
  };
}

export function resolveModel(backend: ServingBackend, name: string): ServedModel {
  const m = backend.resolve(name);
  if (m !== null) return m;
  const names = backend.models().flatMap((x) => [x.id, ...x.aliases]);
  const close = closestNames(name, names);
  const hint = close.length > 0 ? ` Did you mean: ${close.join(", ")}?` : ` Available: ${names.slice(0, 20).join(", ")}.`;
  throw new PrismError("PRISM_UNKNOWN_MODEL", `The model '${name}' does not exist.${hint}`, { param: "model", candidates: close });
}

function chatLogprobs(lps: readonly TokenLogprob[] | null): unknown {
  if (lps === null) return null;
  return { content: lps.map((l) => ({ token: l.token, logprob: l.logprob, bytes: l.bytes, top_logprobs: l.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })) })), refusal: null };
}

function completionLogprobs(lps: readonly TokenLogprob[] | null, textOffset0: number): unknown {
  if (lps === null) return null;
  const text_offset: number[] = [];
  let off = textOffset0;
  for (const l of lps) {
    text_offset.push(off);
    off += l.token.length;
  }
  return {
    tokens: lps.map((l) => l.token),
    token_logprobs: lps.map((l) => l.logprob),
    top_logprobs: lps.map((l) => Object.fromEntries(l.top.map((t) => [t.token, t.logprob]))),
    text_offset,
  };
}

function usageOf(r: GenerationResult): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
}

export function registerOpenAiRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  const { backend } = ctx;
  // Ids are unique per process start (random prefix) and cheap per request (a counter): random bytes per
  // request cost ~2% of a short completion.
  const idPrefix = randomBytes(8).toString("hex");
  let nextId = 0;

  app.get("/v1/models", async () => ({ object: "list", data: backend.models().map(modelObject) }));
  app.get<{ Params: { "*": string } }>("/v1/models/*", async (req) => modelObject(resolveModel(backend, req.params["*"])));

  const handler = (kind: "chat" | "completion") => async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (ctx.shuttingDown()) throw new PrismError("PRISM_SHUTTING_DOWN", "the server is shutting down; retry on another instance");
    const req = parseGenRequest(kind, request.body, ctx.config.limits);
    const model = resolveModel(backend, req.model);
    const prompts = encodePrompts(req, model);
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${idPrefix}${(nextId++).toString(16).padStart(8, "0")}`;
    const created = Math.floor(Date.now() / 1000);
    const object = kind === "chat" ? (req.stream ? "chat.completion.chunk" : "chat.completion") : "text_completion";
    const startedMs = performance.now();
    const log = (status: number, r: GenerationResult | null, err: PrismError | null): void => {
      // the record is built only when it will be written (one object per request otherwise); reqId comes from
      // fastify's per-request child logger (adding it here wrote the key twice)
      if (!(request.log as unknown as Logger).isLevelEnabled("info")) return;
      const t = r?.timings.find((x) => x !== null) ?? null;
      request.log.info({
        id, model: model.id, kind, stream: req.stream, n: req.n, status,
        promptTokens: r?.promptTokens ?? 0, completionTokens: r?.completionTokens ?? 0,
        ttftMs: t ? Math.round(t.ttftMs * 10) / 10 : null, e2eMs: Math.round((performance.now() - startedMs) * 10) / 10,
        ...(err ? { code: err.code } : {}),
      }, "request");
    };
    const common = { defaultMaxTokens: ctx.config.limits.defaultMaxTokens, timeoutMs: ctx.config.server.requestTimeoutMs, requestTag: id, fallbackSeed: (Math.random() * 2 ** 31) | 0, setTimer: ctx.setTimer };

    if (!req.stream) {
      const result = await new Promise<GenerationResult>((resolve) => {
        const gen = startGeneration(backend, model, req, prompts, { onText() {}, onChoiceDone() {}, onDone: resolve }, common);
        reply.raw.on("close", () => {
          if (!reply.raw.writableFinished) gen.cancel();
        });
      });
      ctx.observe(model, result);
      if (result.error !== null) {
        log(0, result, result.error);
        throw result.error;
      }
      log(200, result, null);
      const choices = result.choices.map((c, index) =>
        kind === "chat"
          ? { index, message: { role: "assistant", content: c.text, refusal: null }, logprobs: chatLogprobs(c.logprobs), finish_reason: c.reason ?? "stop" }
          : { index, text: c.text, logprobs: completionLogprobs(c.logprobs, 0), finish_reason: c.reason ?? "stop" });
      await reply.send({ id, object, created, model: model.id, system_fingerprint: ctx.fingerprint, choices, usage: usageOf(result) });
      return;
    }

    // Streaming: Server-Sent Events, one chunk per token, then (optionally) usage, then [DONE]. The status
    // line is written only once the backend has accepted the request, so a rejection (429, 503, 400) keeps
    // its HTTP status like OpenAI's, instead of arriving as an event after a 200.
    const res = reply.raw;
    const out = new SseWriter(res);
    let headSent = false;
    const send = (text: string): void => out.send(text);
    const write = (obj: unknown): void => send(`data: ${JSON.stringify(obj)}\n\n`);
    const usageNull = req.includeUsage ? { usage: null } : {};
    const chunk = (choice: Record<string, unknown>): Record<string, unknown> => ({ id, object, created, model: model.id, system_fingerprint: ctx.fingerprint, choices: [choice], ...usageNull });
    const textOffsets = new Map<number, number>();
    // The per-token event without logprobs, pre-rendered around the text (same bytes as JSON.stringify(chunk)).
    const head = `data: ${JSON.stringify({ id, object, created, model: model.id, system_fingerprint: ctx.fingerprint }).slice(0, -1)},"choices":[{"index":`;
    const tail = `,"logprobs":null,"finish_reason":null}]${req.includeUsage ? ',"usage":null' : ""}}\n\n`;
    const textKey = kind === "chat" ? ',"delta":{"content":' : ',"text":';
    const textClose = kind === "chat" ? "}" : "";
    if (kind === "chat") {
      for (let i = 0; i < prompts.length * req.n; i++) write(chunk({ index: i, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }));
    }
    let rejected: PrismError | null = null;
    let finished = false;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const gen = startGeneration(backend, model, req, prompts, {
      onText(index, text, lp) {
        if (lp === null) {
          if (kind === "completion") textOffsets.set(index, (textOffsets.get(index) ?? 0) + text.length);
          send(`${head}${index}${textKey}${JSON.stringify(text)}${textClose}${tail}`);
        } else if (kind === "chat") write(chunk({ index, delta: { content: text }, logprobs: chatLogprobs([lp]), finish_reason: null }));
        else {
          const off = textOffsets.get(index) ?? 0;
          textOffsets.set(index, off + text.length);
          write(chunk({ index, text, logprobs: completionLogprobs([lp], off), finish_reason: null }));
        }
      },
      onChoiceDone(index, reason) {
        if (kind === "chat") write(chunk({ index, delta: {}, logprobs: null, finish_reason: reason }));
        else write(chunk({ index, text: "", logprobs: null, finish_reason: reason }));
      },
      onDone(result) {
        finished = true;
        ctx.observe(model, result);
        if (!headSent && result.error !== null && result.completionTokens === 0) {
          // nothing streamed yet: answer with the error's own status
          rejected = result.error;
          log(0, result, result.error);
          resolveDone();
          return;
        }
        if (result.error !== null && result.error.code !== "PRISM_REQUEST_CANCELLED") {
          const mapped = ctx.mapError(result.error, String(request.id));
          write(mapped.body);
          log(mapped.status, result, result.error);
        } else {
          if (req.includeUsage) write({ id, object, created, model: model.id, system_fingerprint: ctx.fingerprint, choices: [], usage: usageOf(result) });
          log(result.error ? 499 : 200, result, result.error);
        }
        send("data: [DONE]\n\n");
        if (headSent) out.end();
        resolveDone();
      },
    }, common);
    if (rejected !== null) throw rejected;
    reply.hijack();
    res.on("close", () => {
      out.abandon();
      gen.cancel();
    });
    out.start({
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-request-id": String(request.id),
      ...ctx.corsHeaders,
    });
    headSent = true;
    if (finished) out.end();
    await done;
  };

  app.post("/v1/chat/completions", handler("chat"));
  app.post("/v1/completions", handler("completion"));
}

export type { GenRequest };
