/**
 * The HTTP gateway: the only code that speaks HTTP. Fastify for routing, body limits and timeouts;
 * pino for one structured line per request; prom-client for /metrics.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { createHash, timingSafeEqual } from "node:crypto";
import { PrismError, isPrismError } from "../core/errors.ts";
import type { ServingBackend, ServedModel } from "./backend.ts";
import { toHttpError, type HttpError } from "./error-mapping.ts";
import type { GenerationResult } from "./generation.ts";
import { GatewayMetrics } from "./metrics.ts";
import { registerAdminRoutes } from "./routes/admin.ts";
import { registerOpenAiRoutes } from "./routes/openai.ts";

export interface GatewayConfig {
  readonly server: {
    readonly apiKeys: readonly string[];
    readonly adminKeys: readonly string[];
    readonly bodyLimitBytes: number;
    readonly requestTimeoutMs: number;
    readonly headerTimeoutMs: number;
    readonly shutdownGraceMs: number;
  };
  readonly limits: {
    readonly defaultMaxTokens: number;
    readonly maxN: number;
    readonly maxStopStrings: number;
    readonly maxStopStringLength: number;
    readonly maxTopLogprobs: number;
  };
}

/** What routes share; built once per server. */
export interface GatewayContext {
  readonly backend: ServingBackend;
  readonly config: GatewayConfig;
  readonly metrics: GatewayMetrics;
  readonly fingerprint: string;
  readonly corsHeaders: Record<string, string>;
  shuttingDown(): boolean;
  setTimer(fn: () => void, ms: number): { clear(): void };
  mapError(e: unknown, requestId: string): HttpError;
  observe(model: ServedModel, r: GenerationResult): void;
}

export interface Gateway {
  readonly app: FastifyInstance;
  readonly context: GatewayContext;
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Stop accepting, let in-flight work finish up to the grace deadline, then close. */
  shutdown(): Promise<void>;
}

function keyMatches(given: string, keys: readonly string[]): boolean {
  const g = createHash("sha256").update(given).digest();
  let ok = false;
  for (const k of keys) if (timingSafeEqual(g, createHash("sha256").update(k).digest())) ok = true;
  return ok;
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true });

export function createGateway(opts: { backend: ServingBackend; config: GatewayConfig; logger: Logger }): Gateway {
  const { backend, config } = opts;
  let shuttingDown = false;
  const app = Fastify({
    loggerInstance: opts.logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.server.bodyLimitBytes,
    // Slow-loris guard: the whole request (headers and body) must arrive within this time.
    requestTimeout: config.server.headerTimeoutMs,
    // Node checks requestTimeout only every connectionsCheckingInterval (30 s by default), which would let a
    // trickling client hold its socket far past the limit.
    http: { connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(config.server.headerTimeoutMs / 4))) },
    return503OnClosing: true,
    genReqId: (() => {
      let n = 0;
      const prefix = Date.now().toString(36);
      return () => `${prefix}-${(++n).toString(36)}`;
    })(),
  });
  app.server.headersTimeout = Math.min(config.server.headerTimeoutMs, 60_000);

  const metrics = new GatewayMetrics(backend);
  const ctx: GatewayContext = {
    backend,
    config,
    metrics,
    fingerprint: "fp_prism_0_1",
    corsHeaders: {},
    shuttingDown: () => shuttingDown,
    setTimer(fn, ms) {
      if (!Number.isFinite(ms)) return { clear() {} };
      const t = setTimeout(fn, ms);
      t.unref();
      return { clear: () => clearTimeout(t) };
    },
    mapError: toHttpError,
    observe(model, r) {
      const m = model.id;
      metrics.promptTokens.inc({ model: m }, r.promptTokens);
      metrics.generationTokens.inc({ model: m }, r.completionTokens);
      const status = r.error === null ? "ok" : r.error.code === "PRISM_REQUEST_CANCELLED" ? "cancelled" : "error";
      metrics.requests.inc({ model: m, status });
      for (const t of r.timings) {
        if (t === null) {
          if (r.error !== null && r.error.code !== "PRISM_REQUEST_CANCELLED") {
            metrics.sloMissed.inc({ model: m, slo: "ttft" });
            metrics.sloMissed.inc({ model: m, slo: "tpot" });
          }
          continue;
        }
        metrics.ttft.observe({ model: m }, t.ttftMs / 1000);
        if (Number.isFinite(t.tpotMs) && t.tpotMs > 0) metrics.tpot.observe({ model: m }, t.tpotMs / 1000);
        metrics.e2e.observe({ model: m }, t.e2eMs / 1000);
        if (status === "cancelled") continue;
        (t.ttftMs <= model.ttftSloMs && status === "ok" ? metrics.sloAttained : metrics.sloMissed).inc({ model: m, slo: "ttft" });
        (t.tpotMs <= model.tpotSloMs && status === "ok" ? metrics.sloAttained : metrics.sloMissed).inc({ model: m, slo: "tpot" });
      }
    },
  };

  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_req, body, done) => {
    const buf = body as Buffer;
    let text: string;
    try {
      text = utf8Strict.decode(buf);
    } catch {
      done(new PrismError("PRISM_HTTP_INVALID_REQUEST", "the request body is not valid UTF-8", { param: "body" }), undefined);
      return;
    }
    if (text.trim().length === 0) {
      done(new PrismError("PRISM_HTTP_INVALID_REQUEST", "the request body is empty; send a JSON object", { param: "body" }), undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(new PrismError("PRISM_HTTP_INVALID_REQUEST", `the request body is not valid JSON: ${(e as Error).message}`, { param: "body" }), undefined);
    }
  });
  app.addContentTypeParser("*", { parseAs: "buffer" }, (req, _body, done) => {
    done(new PrismError("PRISM_HTTP_INVALID_REQUEST", `unsupported content-type '${req.headers["content-type"] ?? ""}'; send application/json`, { param: "content-type" }), undefined);
  });

  const allKeys = [...config.server.apiKeys, ...config.server.adminKeys];
  const adminKeys = config.server.adminKeys.length > 0 ? config.server.adminKeys : config.server.apiKeys;
  app.addHook("onRequest", async (req) => {
    const url = req.url;
    const isAdmin = url.startsWith("/admin");
    const isApi = url.startsWith("/v1");
    if (!isAdmin && !isApi) return;
    const keys = isAdmin ? adminKeys : allKeys;
    if (keys.length === 0) return;
    const auth = req.headers.authorization;
    const m = typeof auth === "string" ? /^Bearer\s+(.+)$/i.exec(auth.trim()) : null;
    if (!m) throw new PrismError("PRISM_HTTP_UNAUTHORIZED", "missing API key: send 'Authorization: Bearer <key>'");
    if (!keyMatches(m[1]!, keys)) throw new PrismError("PRISM_HTTP_UNAUTHORIZED", isAdmin ? "this key may not use the admin API" : "invalid API key");
  });

  app.setErrorHandler((error: unknown, req, reply) => {
    let e: unknown = error;
    const code = (error as { code?: string }).code;
    if (!isPrismError(error)) {
      if (code === "FST_ERR_CTP_BODY_TOO_LARGE") e = new PrismError("PRISM_HTTP_BODY_TOO_LARGE", `request body exceeds the limit of ${config.server.bodyLimitBytes} bytes`);
      else if (code === "FST_ERR_CTP_EMPTY_JSON_BODY" || code === "FST_ERR_CTP_INVALID_JSON_BODY" || code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || code === "FST_ERR_CTP_INVALID_CONTENT_LENGTH") {
        e = new PrismError("PRISM_HTTP_INVALID_REQUEST", (error as Error).message);
      } else if ((error as { statusCode?: number }).statusCode === 400) e = new PrismError("PRISM_HTTP_INVALID_REQUEST", (error as Error).message);
    }
    const mapped = toHttpError(e, String(req.id));
    if (mapped.status >= 500 && !isPrismError(e)) req.log.error({ err: error }, "internal error");
    else if (mapped.status >= 400) req.log.info({ url: req.url, status: mapped.status, code: mapped.body.error.code }, "request rejected");
    metrics.httpRejected.inc({ code: mapped.body.error.code });
    void reply.code(mapped.status).headers(mapped.headers).send(mapped.body);
  });
  app.setNotFoundHandler((req, reply) => {
    const mapped = toHttpError(new PrismError("PRISM_HTTP_NOT_FOUND", `no route ${req.method} ${req.url.split("?")[0]}`), String(req.id));
    void reply.code(404).send(mapped.body);
  });

  app.get("/metrics", async (_req, reply) => {
    const text = await metrics.registry.metrics();
    await reply.header("content-type", metrics.registry.contentType).send(text);
  });
  registerOpenAiRoutes(app, ctx);
  registerAdminRoutes(app, ctx);

  return {
    app,
    context: ctx,
    async listen(host, port) {
      await app.listen({ host, port });
      const addr = app.server.address();
      return { host, port: typeof addr === "object" && addr !== null ? addr.port : port };
    },
    async shutdown() {
      if (shuttingDown) return;
      shuttingDown = true;
      await backend.shutdown(config.server.shutdownGraceMs);
      await app.close();
    },
  };
}
