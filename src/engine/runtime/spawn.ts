/** Starting worker threads whose entry is a TypeScript module (through bootstrap.mjs + tsx). */
import { Worker } from "node:worker_threads";

const BOOTSTRAP_URL = new URL("./bootstrap.mjs", import.meta.url);

/**
 * Spawns a worker running the .ts module at `entryUrl`; `data` becomes workerData (plus tsEntry).
 * `data` may hold a shared WebAssembly.Memory and SharedArrayBuffers (shared, not copied).
 */
export function spawnTsWorker(entryUrl: URL, data: Record<string, unknown>, name: string): Worker {
  return new Worker(BOOTSTRAP_URL, {
    workerData: { ...data, tsEntry: entryUrl.href },
    name,
    // The parent's --import tsx (if any) is not needed: the bootstrap registers tsx itself.
    execArgv: [],
  });
}
