/**
 * The one node-llama-cpp instance of the process, created with the settings that matter on small
 * shared CPUs (reference/engine.md §1): prebuilt CPU binary only (`gpu: false, build: "never"`,
 * never compiles or downloads) and one thread (`maxThreads: 1`; ggml's spinning pool with the
 * default thread count was ~1,000× slower on the 2-vCPU machine).
 */
import type { Llama } from "node-llama-cpp";

let llamaPromise: Promise<Llama> | null = null;
let llamaInstance: Llama | null = null;

/**
 * node-llama-cpp disposes its Llama on process 'beforeExit' (an event loop that ran empty while
 * awaiting), so a disposed instance is replaced rather than reused.
 */
export function getCpuLlama(): Promise<Llama> {
  if (llamaInstance?.disposed === true) {
    llamaInstance = null;
    llamaPromise = null;
  }
  llamaPromise ??= (async () => {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    llamaInstance = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1 });
    return llamaInstance;
  })();
  return llamaPromise;
}

/**
 * Disposes the thread's Llama (native backend) if one was created. A worker thread hosting the
 * llama.cpp executor must call this before it ends: terminating a worker with a live Llama
 * aborts the whole process ("terminate called after throwing an instance of 'Napi::Error'").
 */
export async function disposeCpuLlama(): Promise<void> {
  const pending = llamaPromise;
  llamaPromise = null;
  llamaInstance = null;
  if (pending === null) return;
  const llama = await pending.catch(() => null);
  if (llama !== null && !llama.disposed) await llama.dispose();
}
