/** Admin API (admin key required when keys are configured) and health/readiness probes. */
import type { FastifyInstance } from "fastify";
import type { GatewayContext } from "../server.ts";
import { PrismError } from "../../core/errors.ts";
import { resolveModel } from "./openai.ts";

export function registerAdminRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  const { backend } = ctx;
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/ready", async (_req, reply) => {
    const ready = backend.ready() && !ctx.shuttingDown();
    await reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : ctx.shuttingDown() ? "shutting_down" : "starting" });
  });
  app.get("/admin/state", async () => backend.adminState());
  // Model ids may contain '/', so the id is everything between /admin/models/ and the last segment.
  app.post<{ Params: { "*": string } }>("/admin/models/*", async (req) => {
    const path = req.params["*"];
    const cut = path.lastIndexOf("/");
    const action = cut < 0 ? "" : path.slice(cut + 1);
    const m = resolveModel(backend, cut < 0 ? path : path.slice(0, cut));
    switch (action) {
      case "load":
        await backend.load(m.id);
        return { id: m.id, status: "loaded" };
      case "unload":
        await backend.unload(m.id);
        return { id: m.id, status: "unloaded" };
      case "pin":
        backend.pin(m.id, true);
        return { id: m.id, pinned: true };
      case "unpin":
        backend.pin(m.id, false);
        return { id: m.id, pinned: false };
      default:
        throw new PrismError("PRISM_HTTP_NOT_FOUND", `unknown admin action '${action}' for model '${m.id}' (load, unload, pin, unpin)`);
    }
  });
}
