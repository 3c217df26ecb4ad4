/** Builds the whole server from a validated config: models → backend → gateway → listening socket. */
import pino, { type Logger } from "pino";
import type { ServeConfig } from "../config/load.ts";
import type { Executor } from "../core/records.ts";
import type { DeviceMemory } from "../memory/device-memory.ts";
import { createGateway, type Gateway } from "./server.ts";
import { loadModelFile, modelEntries, TokenizerCache, type LoadedModel } from "./models.ts";
import { PrismBackend } from "./serving.ts";

export interface RunningPrism {
  readonly url: string;
  readonly gateway: Gateway;
  readonly backend: PrismBackend;
  readonly models: readonly LoadedModel[];
  readonly logger: Logger;
  /** Graceful: stop accepting, drain up to the grace deadline, close. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  readonly executorFactory?: (memory: DeviceMemory, prefixBytes: number, device: number) => Promise<Executor>;
  /** Called with each model's id while it is being prepared (first start generates demo models). */
  readonly onModel?: (id: string, index: number, total: number) => void;
}

export async function startPrism(config: ServeConfig, opts: StartOptions = {}): Promise<RunningPrism> {
  const logger = opts.logger ?? pino({ level: config.server.logLevel, base: { service: "prism" } });
  const entries = modelEntries(config);
  const models: LoadedModel[] = [];
  const tokenizers = new TokenizerCache();
  for (let i = 0; i < entries.length; i++) {
    opts.onModel?.(entries[i]!.id, i, entries.length);
    models.push(loadModelFile(entries[i]!, config.dataDir, tokenizers));
  }
  // The backend spawns the engine worker before its first await; the tokenizers are built meanwhile, on
  // this thread, while the worker loads its code and kernels on its own.
  const backendStarting = PrismBackend.create({
    config, models, logger, ...(opts.executorFactory ? { executorFactory: opts.executorFactory } : {}),
  });
  try {
    for (const m of models) void m.tokenizer;
  } catch (e) {
    await backendStarting.then((b) => b.shutdown(0), () => undefined);
    throw e;
  }
  const backend = await backendStarting;
  const gateway = createGateway({ backend, config, logger });
  let addr: { host: string; port: number };
  try {
    addr = await gateway.listen(config.server.host, config.server.port);
  } catch (e) {
    await backend.shutdown(0);
    throw e;
  }
  const host = addr.host.includes(":") ? `[${addr.host}]` : addr.host;
  return {
    url: `http://${host}:${addr.port}`,
    gateway,
    backend,
    models,
    logger,
    close: () => gateway.shutdown(),
  };
}
