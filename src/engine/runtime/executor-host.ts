/**
 * Entry of an executor worker (started through bootstrap.mjs by WorkerExecutor). It imports the
 * factory named in workerData, builds the executor with the JSON options (plus the shared device
 * memory), then serves requests strictly one at a time in arrival order — so an unload or move
 * posted after an execute takes effect after it, exactly as in-process. On close it closes the
 * executor, calls the module's optional `releaseThreadResources()` export, closes its port and lets
 * the thread end by itself.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { Executor } from "../../core/records.ts";
import type { ModelId } from "../../core/ids.ts";
import { toWireError, type HostData, type HostReply, type HostRequest } from "./protocol.ts";

const data = workerData as HostData;
const port = parentPort!;
const post = (m: HostReply): void => port.postMessage(m);

type Factory = (options: unknown) => Executor | Promise<Executor>;

let factoryModule: Record<string, unknown> = {};

async function build(): Promise<Executor> {
  const mod = (await import(data.moduleUrl)) as Record<string, unknown>;
  factoryModule = mod;
  const factory = mod[data.exportName];
  if (typeof factory !== "function") throw new Error(`${data.moduleUrl} has no exported function '${data.exportName}'`);
  const options = data.memory === null ? data.options : { ...(data.options as object), memory: data.memory };
  return (factory as Factory)(options);
}

async function handle(ex: Executor, req: HostRequest): Promise<unknown> {
  switch (req.kind) {
    case "execute":
      return ex.execute(req.plan);
    case "loadWeights":
      return ex.loadWeights(req.modelId as ModelId, req.byteOffset);
    case "unloadWeights":
      return ex.unloadWeights(req.modelId as ModelId);
    case "moveWeights":
      return ex.moveWeights(req.modelId as ModelId, req.newByteOffset);
    case "call": {
      const fn = (ex as unknown as Record<string, unknown>)[req.method];
      if (typeof fn !== "function") throw new Error(`executor '${ex.kind}' has no method '${req.method}'`);
      return (fn as (...a: unknown[]) => unknown).apply(ex, req.args as unknown[]);
    }
    case "close": {
      await ex.close();
      // Thread-wide native resources (node-llama-cpp's backend) must be released before the
      // thread ends; the factory's module may export this hook.
      const release = factoryModule["releaseThreadResources"];
      if (typeof release === "function") await (release as () => Promise<void>)();
      return undefined;
    }
  }
}

try {
  const ex = await build();
  let chain: Promise<void> = Promise.resolve();
  port.on("message", (req: HostRequest) => {
    chain = chain.then(async () => {
      try {
        const value = await handle(ex, req);
        post({ kind: "ok", id: req.id, value });
      } catch (e) {
        post({ kind: "error", id: req.id, error: toWireError(e) });
      }
      if (req.kind === "close") port.close();
    });
  });
  post({ kind: "ready", executorKind: ex.kind, pagedKv: ex.pagedKv });
} catch (e) {
  post({ kind: "initError", error: toWireError(e) });
}
