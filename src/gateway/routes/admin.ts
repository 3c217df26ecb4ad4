/** Admin API (admin key required when keys are configured) and health/readiness probes. */
import type { FastifyInstance } from "fastify";
import type { GatewayContext } from "../server.ts";
import { resolveModel } from "./openai.ts";

export function registerAdminRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  const { backend } = ctx;
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/ready", async (_req, reply) => {
    const ready = backend.ready() && !ctx.shuttingDown();
    await reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : ctx.shuttingDown() ? "shutting_down" : "starting" });
  });
  app.get("/admin/state", async () => backend.adminState());
  app.post<{ Params: { id: string } }>("/admin/models/:id/load", async (req) => {
    const m = resolveModel(backend, req.params.id);
    await backend.load(m.id);
    return { id: m.id, status: "loaded" };
  });
  app.post<{ Params: { id: string } }>("/admin/models/:id/unload", async (req) => {
    const m = resolveModel(backend, req.params.id);
    await backend.unload(m.id);
    return { id: m.id, status: "unloaded" };
  });
  app.post<{ Params: { id: string } }>("/admin/models/:id/pin", async (req) => {
    const m = resolveModel(backend, req.params.id);
    backend.pin(m.id, true);
    return { id: m.id, pinned: true };
  });
  app.post<{ Params: { id: string } }>("/admin/models/:id/unpin", async (req) => {
    const m = resolveModel(backend, req.params.id);
    backend.pin(m.id, false);
    return { id: m.id, pinned: false };
  });
}
