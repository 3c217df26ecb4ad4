/**
 * An Executor that runs another executor in a worker thread, so the thread that serves HTTP never
 * waits on a matmul. The worker imports a factory by module URL + export name and calls it with
 * structured-clonable options (plus `memory`, the shared device memory, when given).
 *
 * Who calls it: the device loop, exactly like an in-process executor (one execute at a time;
 * load/move/unload between steps). unloadWeights/moveWeights are void in the contract, so they are
 * posted without waiting; the worker applies requests in order. A failure of one of them (a broken
 * invariant) is reported to `onAsyncError` if given, and rejects the next call made after the
 * failure arrived (calls already in flight complete normally: their work was done). If the worker
 * dies, every pending and later call rejects with PRISM_ENGINE_WORKER_DIED.
 */
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Worker } from "node:worker_threads";
import { PrismError, reviveError } from "../../core/errors.ts";
import type { ModelId } from "../../core/ids.ts";
import type { Executor, StepPlan, StepResult } from "../../core/records.ts";
import type { HostData, HostReply, HostRequest, WireError } from "./protocol.ts";
import { spawnTsWorker } from "./spawn.ts";

export interface WorkerExecutorOptions {
  /** Module exporting the factory: a file URL, or an absolute path. */
  readonly module: string | URL;
  /** Name of the exported factory, e.g. "createEngineExecutor". Called as factory(options). */
  readonly exportName: string;
  /** Structured-clonable options for the factory. */
  readonly options?: Record<string, unknown>;
  /** Shared device memory; passed to the factory as options.memory. */
  readonly memory?: WebAssembly.Memory;
  /** Thread name (diagnostics). */
  readonly name?: string;
  /** Called when a fire-and-forget request (unloadWeights, moveWeights) failed in the worker. */
  readonly onAsyncError?: (error: PrismError) => void;
}

interface Pending {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** How long close() waits for the worker to end by itself before terminating it. */
const WORKER_EXIT_GRACE_MS = 5000;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class WorkerExecutor implements Executor {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Error of a fire-and-forget request (unload/move), delivered by the next awaited call. */
  private deferredError: PrismError | null = null;
  private deadError: PrismError | null = null;
  private closing = false;
  private onAsyncError: ((error: PrismError) => void) | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly kind: string,
    readonly pagedKv: boolean,
  ) {
    worker.on("message", (m: HostReply) => this.onReply(m));
    worker.on("error", (e: unknown) => this.die(`engine worker threw: ${e instanceof Error ? e.message : String(e)}`));
    worker.on("exit", (code: number) => this.die(`engine worker exited with code ${code}`));
  }

  /** Spawns the worker and resolves once the hosted executor is constructed. */
  static async create(opts: WorkerExecutorOptions): Promise<WorkerExecutor> {
    const moduleUrl = opts.module instanceof URL ? opts.module.href
      : opts.module.startsWith("file:") ? opts.module : pathToFileURL(opts.module).href;
    fileURLToPath(moduleUrl); // throws early on a non-file URL
    const data: HostData = { moduleUrl, exportName: opts.exportName, options: opts.options ?? {}, memory: opts.memory ?? null };
    const worker = spawnTsWorker(new URL("./executor-host.ts", import.meta.url), data as unknown as Record<string, unknown>, opts.name ?? "prism-engine");
    const ready = await new Promise<{ executorKind: string; pagedKv: boolean }>((resolve, reject) => {
      const onExit = (code: number): void => reject(new PrismError("PRISM_ENGINE_WORKER_DIED", `engine worker exited with code ${code} during start-up`, { exitCode: code }));
      const onError = (e: unknown): void => reject(new PrismError("PRISM_ENGINE_WORKER_DIED", `engine worker failed to start: ${e instanceof Error ? e.message : String(e)}`, {}));
      worker.once("exit", onExit);
      worker.once("error", onError);
      worker.once("message", (m: HostReply) => {
        worker.off("exit", onExit);
        worker.off("error", onError);
        if (m.kind === "ready") resolve({ executorKind: m.executorKind, pagedKv: m.pagedKv });
        else if (m.kind === "initError") {
          void worker.terminate();
          reject(reviveError(m.error as WireError & { details?: Record<string, unknown> }));
        } else reject(new PrismError("PRISM_INTERNAL", `unexpected first message from engine worker: ${m.kind}`, {}));
      });
    });
    const ex = new WorkerExecutor(worker, ready.executorKind, ready.pagedKv);
    ex.onAsyncError = opts.onAsyncError ?? null;
    return ex;
  }

  loadWeights(modelId: ModelId, byteOffset: number): Promise<{ readonly durationMs: number }> {
    return this.request({ kind: "loadWeights", modelId, byteOffset }) as Promise<{ durationMs: number }>;
  }

  unloadWeights(modelId: ModelId): void {
    this.post({ kind: "unloadWeights", modelId });
  }

  moveWeights(modelId: ModelId, newByteOffset: number): void {
    this.post({ kind: "moveWeights", modelId, newByteOffset });
  }

  execute(plan: StepPlan): Promise<StepResult> {
    return this.request({ kind: "execute", plan }) as Promise<StepResult>;
  }

  /** Calls any other async method of the hosted executor (e.g. registerModel); args/result are cloned. */
  call<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    return this.request({ kind: "call", method, args }) as Promise<T>;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    if (this.deadError !== null) {
      this.closing = true;
      return;
    }
    const exited = new Promise<void>((resolve) => this.worker.once("exit", () => resolve()));
    try {
      await this.request({ kind: "close" });
    } finally {
      this.closing = true;
    }
    // Let the thread end by itself (native addons clean up on a normal exit; terminate() with a
    // live node-llama-cpp backend aborts the process); terminate only a thread that hangs.
    const timer = setTimeout(() => void this.worker.terminate(), WORKER_EXIT_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  private post(req: DistributiveOmit<HostRequest, "id">): number {
    const id = this.nextId++;
    if (this.deadError !== null) {
      this.deferredError ??= this.deadError;
      return id;
    }
    this.pending.set(id, {
      resolve: () => undefined,
      reject: (e) => {
        this.deferredError ??= e as PrismError;
        this.onAsyncError?.(e as PrismError);
      },
    });
    this.worker.postMessage({ ...req, id } as HostRequest);
    return id;
  }

  private request(req: DistributiveOmit<HostRequest, "id">): Promise<unknown> {
    if (this.deadError !== null) return Promise.reject(this.deadError);
    if (this.closing) return Promise.reject(new PrismError("PRISM_SHUTTING_DOWN", "executor is closed", {}));
    const deferred = this.deferredError;
    if (deferred !== null) {
      this.deferredError = null;
      return Promise.reject(deferred);
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id } as HostRequest);
    });
  }

  private onReply(m: HostReply): void {
    if (m.kind !== "ok" && m.kind !== "error") return;
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    this.pending.delete(m.id);
    if (m.kind === "ok") p.resolve(m.value);
    else p.reject(reviveError(m.error as WireError & { details?: Record<string, unknown> }));
  }

  private die(reason: string): void {
    if (this.closing || this.deadError !== null) return;
    this.deadError = new PrismError("PRISM_ENGINE_WORKER_DIED", reason, { executor: this.kind });
    for (const p of this.pending.values()) p.reject(this.deadError);
    this.pending.clear();
  }
}

/** Function form of WorkerExecutor.create. */
export function createWorkerExecutor(opts: WorkerExecutorOptions): Promise<WorkerExecutor> {
  return WorkerExecutor.create(opts);
}
