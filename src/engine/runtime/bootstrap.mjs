// Worker entry for TypeScript modules: worker_threads cannot start a .ts file directly, so every
// engine worker starts here, registers tsx's ESM loader, then imports the .ts entry named in
// workerData.tsEntry (a file URL). Used by spawn.ts only.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.tsEntry);
