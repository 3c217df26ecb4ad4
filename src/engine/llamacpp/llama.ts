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
