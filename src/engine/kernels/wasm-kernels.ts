/**
 * Loads the AssemblyScript kernels (build/kernels.wasm, built by scripts/build-kernels.mjs on
 * install/test/start) and binds them to a memory. Two builds exist because a module that imports
 * a shared memory cannot import an unshared one and vice versa: kernels.wasm (shared, for the
 * engine + helper thread) and kernels.unshared.wasm. If a build is missing (fresh clone without
 * postinstall), it is compiled here with assemblyscript's API and cached in build/.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Kernels } from "./types.ts";

// Must equal KERNEL_RESERVED_BYTES in types.ts (kept local: types.ts re-exports this module).
const RESERVED_BYTES = 1 << 20;
/**
 * Layout of the reserved prefix: [0, 64 KiB) the module's static data; an i32 slot counter at
 * 64 KiB − 64; [64 KiB, 1 MiB) SCRATCH_SLOTS private scratch areas, one per kernel instance (each
 * thread binds its own instance), used by `matmul` for the activations it quantises for a Q8_0_R4
 * matrix. Slots are handed out round-robin through the counter (Atomics, so threads sharing the
 * memory never get the same slot while fewer than SCRATCH_SLOTS instances are alive).
 */
const STATIC_LIMIT_BYTES = 64 * 1024 - 64;
const SLOT_COUNTER_BYTE = 64 * 1024 - 64;
const SCRATCH_START = 64 * 1024;
export const SCRATCH_SLOTS = 8;
export const SCRATCH_SLOT_BYTES = (RESERVED_BYTES - SCRATCH_START) / SCRATCH_SLOTS;

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../../..");
export const KERNEL_SOURCE_PATH = join(repoRoot, "src/engine/kernels/as/kernels.ts");

export function kernelWasmPath(shared: boolean): string {
  return join(repoRoot, "build", shared ? "kernels.wasm" : "kernels.unshared.wasm");
}

/** asc arguments for one build; scripts/build-kernels.mjs uses the same list (keep in sync). */
export function ascArgs(shared: boolean, outFile: string): string[] {
  return [KERNEL_SOURCE_PATH, "-O3", "--runtime", "stub", "--enable", "simd",
    ...(shared ? ["--enable", "threads", "--sharedMemory"] : []),
    "--importMemory", "--initialMemory", "1", "--maximumMemory", "65536", "--noAssert", "-o", outFile];
}

interface KernelExports {
  heapBase(): number;
  setScratch(ptr: number, bytes: number): void;
  matmul: Kernels["matmul"];
  quantizeQ8: Kernels["quantizeQ8"];
  matmulQ8: Kernels["matmulQ8"];
  argmax: Kernels["argmax"];
  addBias: Kernels["addBias"];
  rmsnorm: Kernels["rmsnorm"];
  rope: Kernels["rope"];
  ropeTable: Kernels["ropeTable"];
  ropeApply: Kernels["ropeApply"];
  swiglu: Kernels["swiglu"];
  add: Kernels["add"];
  getRow: Kernels["getRow"];
  writeKv: Kernels["writeKv"];
  attention: Kernels["attention"];
  attentionRows(outPtr: number, qPtr: number, rowTablesPtr: number, rowBlockTokensPtr: number, positionsPtr: number, rowStart: number, rowEnd: number,
    numLayers: number, layer: number, numHeads: number, numKvHeads: number, headDim: number, scratchPtr: number, scale: number): void;
}

const modules = new Map<boolean, Promise<WebAssembly.Module>>();

/** The compiled module (cached per process); workers call this too and instantiate on the shared memory. */
export function loadKernelModule(shared: boolean): Promise<WebAssembly.Module> {
  let m = modules.get(shared);
  if (m === undefined) {
    m = (async () => WebAssembly.compile((await readOrBuild(shared)) as Uint8Array<ArrayBuffer>))();
    modules.set(shared, m);
  }
  return m;
}

async function readOrBuild(shared: boolean): Promise<Uint8Array> {
  const path = kernelWasmPath(shared);
  if (existsSync(path)) return readFileSync(path);
  const binary = await compileKernels(shared);
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, binary);
  } catch {
    // A read-only checkout still works; it just compiles again next time.
  }
  return binary;
}

/** Compiles src/engine/kernels/as/kernels.ts in-process with assemblyscript's API (a few seconds). */
export async function compileKernels(shared: boolean): Promise<Uint8Array> {
  const asc = await import("assemblyscript/asc");
  let binary: Uint8Array | null = null;
  let stderrText = "";
  const { error } = await asc.main(ascArgs(shared, "kernels.wasm"), {
    writeFile: (name: string, contents: Uint8Array | string) => {
      if (name.endsWith(".wasm") && typeof contents !== "string") binary = contents;
    },
    stderr: { write: (s: string | Uint8Array) => { stderrText += String(s); return true; } } as never,
  });
  if (error !== null || binary === null) {
    throw new Error(`compiling ${KERNEL_SOURCE_PATH} failed: ${error?.message ?? "no output"}\n${stderrText}`);
  }
  return binary;
}

export async function createWasmKernels(memory: WebAssembly.Memory): Promise<Kernels> {
  const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
  const module = await loadKernelModule(shared);
  const instance = await WebAssembly.instantiate(module, {
    env: {
      memory,
      abort: (_msg: number, _file: number, line: number, column: number) => {
        throw new Error(`kernels.wasm abort at ${line}:${column}`);
      },
    },
  });
  const ex = instance.exports as unknown as KernelExports;
  if (ex.heapBase() > STATIC_LIMIT_BYTES) {
    throw new Error(`kernels.wasm static data ends at ${ex.heapBase()}, above its ${STATIC_LIMIT_BYTES}-byte area of KERNEL_RESERVED_BYTES`);
  }
  if (memory.buffer.byteLength < RESERVED_BYTES) throw new RangeError(`kernel memory must be at least KERNEL_RESERVED_BYTES (${RESERVED_BYTES}) bytes`);
  const slot = Atomics.add(new Int32Array(memory.buffer), SLOT_COUNTER_BYTE >> 2, 1) % SCRATCH_SLOTS;
  ex.setScratch(SCRATCH_START + slot * SCRATCH_SLOT_BYTES, SCRATCH_SLOT_BYTES);
  return {
    name: "wasm",
    matmul: ex.matmul,
    quantizeQ8: ex.quantizeQ8,
    matmulQ8: ex.matmulQ8,
    argmax: ex.argmax,
    addBias: ex.addBias,
    rmsnorm: ex.rmsnorm,
    rope: ex.rope,
    ropeTable: ex.ropeTable,
    ropeApply: ex.ropeApply,
    swiglu: ex.swiglu,
    add: ex.add,
    getRow: ex.getRow,
    writeKv: ex.writeKv,
    attention: ex.attention,
    attentionRows: (out, q, tables, bts, positions, r0, r1, numLayers, layer, numHeads, numKvHeads, headDim, scratch, _scratchFloats, scale) =>
      ex.attentionRows(out, q, tables, bts, positions, r0, r1, numLayers, layer, numHeads, numKvHeads, headDim, scratch, scale),
  };
}
