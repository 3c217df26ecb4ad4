/**
 * The one table of hardware and model numbers the simulator's cost model uses, each row citing its
 * source. Change a number here (and its citation), never inline in the cost model.
 *
 * Conventions: bytes are bytes (GB = 1e9, GiB = 2^30); FLOP/s and bytes/s are per device (per GPU);
 * "dense" tensor-core throughput (vendor sparsity numbers are halved back). Efficiency factors
 * (mfu, mbu, overheads) are NOT datasheet facts: they are our calibration, documented in cost-model.ts.
 */

const GB = 1e9;
const GiB = 2 ** 30;
const TFLOPS = 1e12;

export interface DeviceSpec {
  readonly name: string;
  /** Physical device memory in bytes (what the memory layer manages, weights + KV + headroom). */
  readonly memBytes: number;
  /** Peak dense bf16 tensor throughput, FLOP/s. */
  readonly peakFlops: number;
  /** Peak memory (HBM/GDDR/DRAM) bandwidth, bytes/s. */
  readonly memBwBytesPerS: number;
  /** Host→device link bandwidth per direction, bytes/s (weight loading on activation). */
  readonly hostLinkBytesPerS: number;
  /** Device↔device link per direction, bytes/s (tensor-parallel all-reduce). */
  readonly peerLinkBytesPerS: number;
}

/**
 * Devices. Sources:
 * - H100 SXM5 80GB: NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100): 80 GB HBM3,
 *   3.35 TB/s, BF16 1,979 TFLOPS with sparsity → 989.5 dense; PCIe Gen5 x16 64 GB/s per direction
 *   (128 GB/s bidirectional); NVLink 900 GB/s bidirectional → 450 GB/s per direction.
 * - H200 SXM 141GB: NVIDIA H200 datasheet (nvidia.com/en-us/data-center/h200): 141 GB HBM3e, 4.8 TB/s,
 *   BF16 1,979 TFLOPS sparse → 989.5 dense; PCIe Gen5 64 GB/s; NVLink 900 GB/s.
 * - A100 SXM4 80GB: NVIDIA A100 datasheet (nvidia.com/en-us/data-center/a100): 80 GB HBM2e, 2,039 GB/s,
 *   BF16 312 TFLOPS dense; PCIe Gen4 x16 32 GB/s per direction (64 bidirectional); NVLink 600 GB/s.
 * - L40S 48GB: NVIDIA L40S datasheet (nvidia.com/en-us/data-center/l40s): 48 GB GDDR6, 864 GB/s,
 *   BF16 362.05 TFLOPS dense (733 sparse); PCIe Gen4 x16 32 GB/s per direction; no NVLink (peer via PCIe).
 * - cpu: the project's own WASM/TS engine on this host (1 thread of a shared 2-core VM, f32 KV).
 *   Constants are FITTED, not datasheet: see CPU_EFFICIENCY below and calibrate.ts.
 */
export const DEVICES = {
  // NVIDIA H100 SXM5 datasheet: 80 GB HBM3 (80 GiB physical; nvidia-smi reports 81,559 MiB), 3.35 TB/s, 989.5 TF bf16 dense, PCIe5 64 GB/s, NVLink 450 GB/s/dir
  h100: { name: "H100-SXM5-80GB", memBytes: 80 * GiB, peakFlops: 989.5 * TFLOPS, memBwBytesPerS: 3350 * GB, hostLinkBytesPerS: 64 * GB, peerLinkBytesPerS: 450 * GB },
  // NVIDIA H200 SXM datasheet: 141 GB HBM3e, 4.8 TB/s, 989.5 TF bf16 dense, PCIe5 64 GB/s, NVLink 450 GB/s/dir
  h200: { name: "H200-SXM-141GB", memBytes: 141 * GB, peakFlops: 989.5 * TFLOPS, memBwBytesPerS: 4800 * GB, hostLinkBytesPerS: 64 * GB, peerLinkBytesPerS: 450 * GB },
  // NVIDIA A100 SXM4 80GB datasheet: 80 GB HBM2e, 2,039 GB/s, 312 TF bf16 dense, PCIe4 32 GB/s, NVLink 300 GB/s/dir
  a100: { name: "A100-SXM4-80GB", memBytes: 80 * GiB, peakFlops: 312 * TFLOPS, memBwBytesPerS: 2039 * GB, hostLinkBytesPerS: 32 * GB, peerLinkBytesPerS: 300 * GB },
  // NVIDIA L40S datasheet: 48 GB GDDR6, 864 GB/s, 362.05 TF bf16 dense, PCIe4 32 GB/s, no NVLink (PCIe peer 32 GB/s)
  l40s: { name: "L40S-48GB", memBytes: 48 * GiB, peakFlops: 362.05 * TFLOPS, memBwBytesPerS: 864 * GB, hostLinkBytesPerS: 32 * GB, peerLinkBytesPerS: 32 * GB },
  // FITTED (calibrate.ts fitDevice over CPU_BENCH_SAMPLES = `npm run bench:engine -- --quick`, ours 1T f32 stories15M, with CPU_EFFICIENCY): worst error 3%; memory = 1 GiB budget; host link = memcpy
  cpu: { name: "CPU-engine", memBytes: 1 * GiB, peakFlops: 88.9e9, memBwBytesPerS: 55.4 * GB, hostLinkBytesPerS: 4 * GB, peerLinkBytesPerS: 4 * GB },
} as const satisfies Record<string, DeviceSpec>;

export type DeviceType = keyof typeof DEVICES;
export const DEVICE_TYPES = Object.keys(DEVICES) as DeviceType[];

export interface ModelArch {
  readonly name: string;
  /** Hugging Face repository whose config.json gave the shape. */
  readonly hfRepo: string;
  /** Total parameters (incl. embeddings; tied embeddings counted once). */
  readonly params: number;
  readonly numLayers: number;
  readonly hidden: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly intermediate: number;
  readonly vocabSize: number;
  readonly maxContextTokens: number;
  /** Bytes per parameter / KV element (bf16 = 2). */
  readonly dtypeBytes: number;
  /** Tensor-parallel degree the model is served with by default (1 = one device). */
  readonly defaultTp: number;
}

/**
 * Models. Shapes from each repository's config.json (hidden_size, num_hidden_layers,
 * num_attention_heads, num_key_value_heads, head_dim or hidden/heads, intermediate_size, vocab_size,
 * max_position_embeddings); parameter counts from the model cards. Weight bytes = params × 2 (bf16).
 * KV bytes per token = 2 (K,V) × kvHeads × headDim × 2 bytes × layers: 1B → 32 KiB, 8B → 128 KiB,
 * matching the Prism prototype's utils/model_info.json cell sizes (prism.md §5.2).
 */
export const MODELS = {
  // meta-llama/Llama-3.2-1B config.json: L16 h2048 H32 KV8 d64 ff8192 V128256 ctx131072, tied emb; card: 1.24B
  "llama-3.2-1b": { name: "Llama-3.2-1B", hfRepo: "meta-llama/Llama-3.2-1B", params: 1.24e9, numLayers: 16, hidden: 2048, numHeads: 32, numKvHeads: 8, headDim: 64, intermediate: 8192, vocabSize: 128256, maxContextTokens: 131072, dtypeBytes: 2, defaultTp: 1 },
  // meta-llama/Llama-3.2-3B config.json: L28 h3072 H24 KV8 d128 ff8192 V128256 ctx131072, tied emb; card: 3.21B
  "llama-3.2-3b": { name: "Llama-3.2-3B", hfRepo: "meta-llama/Llama-3.2-3B", params: 3.21e9, numLayers: 28, hidden: 3072, numHeads: 24, numKvHeads: 8, headDim: 128, intermediate: 8192, vocabSize: 128256, maxContextTokens: 131072, dtypeBytes: 2, defaultTp: 1 },
  // meta-llama/Llama-3.1-8B config.json: L32 h4096 H32 KV8 d128 ff14336 V128256 ctx131072; card: 8.03B
  "llama-3.1-8b": { name: "Llama-3.1-8B", hfRepo: "meta-llama/Llama-3.1-8B", params: 8.03e9, numLayers: 32, hidden: 4096, numHeads: 32, numKvHeads: 8, headDim: 128, intermediate: 14336, vocabSize: 128256, maxContextTokens: 131072, dtypeBytes: 2, defaultTp: 1 },
  // Qwen/Qwen2.5-7B config.json: L28 h3584 H28 KV4 d128 ff18944 V152064 ctx32768 (max_position_embeddings 131072 w/ YaRN); card: 7.61B
  "qwen2.5-7b": { name: "Qwen2.5-7B", hfRepo: "Qwen/Qwen2.5-7B", params: 7.61e9, numLayers: 28, hidden: 3584, numHeads: 28, numKvHeads: 4, headDim: 128, intermediate: 18944, vocabSize: 152064, maxContextTokens: 32768, dtypeBytes: 2, defaultTp: 1 },
  // Qwen/Qwen2.5-14B config.json: L48 h5120 H40 KV8 d128 ff13824 V152064 ctx32768; card: 14.7B
  "qwen2.5-14b": { name: "Qwen2.5-14B", hfRepo: "Qwen/Qwen2.5-14B", params: 14.7e9, numLayers: 48, hidden: 5120, numHeads: 40, numKvHeads: 8, headDim: 128, intermediate: 13824, vocabSize: 152064, maxContextTokens: 32768, dtypeBytes: 2, defaultTp: 1 },
  // Qwen/Qwen2.5-32B config.json: L64 h5120 H40 KV8 d128 ff27648 V152064 ctx32768; card: 32.5B (Prism serves it with TP, prism.md §5.2)
  "qwen2.5-32b": { name: "Qwen2.5-32B", hfRepo: "Qwen/Qwen2.5-32B", params: 32.5e9, numLayers: 64, hidden: 5120, numHeads: 40, numKvHeads: 8, headDim: 128, intermediate: 27648, vocabSize: 152064, maxContextTokens: 32768, dtypeBytes: 2, defaultTp: 2 },
  // meta-llama/Llama-3.3-70B-Instruct config.json: L80 h8192 H64 KV8 d128 ff28672 V128256 ctx131072; card: 70.6B (Prism: tp_size 4)
  "llama-3.3-70b": { name: "Llama-3.3-70B", hfRepo: "meta-llama/Llama-3.3-70B-Instruct", params: 70.6e9, numLayers: 80, hidden: 8192, numHeads: 64, numKvHeads: 8, headDim: 128, intermediate: 28672, vocabSize: 128256, maxContextTokens: 131072, dtypeBytes: 2, defaultTp: 4 },
  // llama2.c stories15M (karpathy/tinyllamas; src/engine/model/shapes.ts): L6 h288 H6 KV6 d48 ff768 V32000 ctx256, tied classifier; ~15.2M params; f32 on the CPU engine (bench:engine's model)
  "stories15m": { name: "stories15M", hfRepo: "karpathy/tinyllamas (stories15M)", params: 15.19e6, numLayers: 6, hidden: 288, numHeads: 6, numKvHeads: 6, headDim: 48, intermediate: 768, vocabSize: 32000, maxContextTokens: 256, dtypeBytes: 4, defaultTp: 1 },
  // The project's test model: ../shared/models/stories260K (llama2.c): L5 h64 H8 KV4 d8 ff172 V512 ctx512; f32 weights/KV on the CPU engine
  "stories260k": { name: "stories260K", hfRepo: "karpathy/tinyllamas (stories260K)", params: 0.26e6, numLayers: 5, hidden: 64, numHeads: 8, numKvHeads: 4, headDim: 8, intermediate: 172, vocabSize: 512, maxContextTokens: 512, dtypeBytes: 4, defaultTp: 1 },
} as const satisfies Record<string, ModelArch>;

export type ModelArchId = keyof typeof MODELS;
export const MODEL_ARCH_IDS = Object.keys(MODELS) as ModelArchId[];

export function isDeviceType(s: string): s is DeviceType {
  return Object.hasOwn(DEVICES, s);
}
export function isModelArchId(s: string): s is ModelArchId {
  return Object.hasOwn(MODELS, s);
}

/** Weight bytes of the whole model (all ranks). */
export function weightBytes(arch: ModelArch): number {
  return arch.params * arch.dtypeBytes;
}

/** K+V bytes of one token in one layer, whole model (all ranks). */
export function kvBytesPerTokenPerLayer(arch: ModelArch): number {
  return 2 * arch.numKvHeads * arch.headDim * arch.dtypeBytes;
}

/**
 * Efficiency constants of the roofline model. Not datasheet numbers: chosen so that modelled dedicated
 * latencies match published measurements (cost-model.ts explains each). Per device type.
 */
export interface Efficiency {
  /** Achieved fraction of peak FLOP/s on GEMM-dominated (prefill) work. */
  readonly mfu: number;
  /** Achieved fraction of peak memory bandwidth on weight/KV streaming (decode). */
  readonly mbu: number;
  /** Fixed cost per model per step (kernel launches, scheduler, sampling), ms. */
  readonly stepOverheadMs: number;
  /**
   * Device time per sequence that samples this step (its classifier row and the pass over the
   * vocabulary), ms, on top of the roofline. 0 on GPUs, where the vocabulary projection is one
   * batched GEMM inside the FLOP term; on the CPU engine it is a per-row matvec + argmax that runs far
   * below the prefill GEMM rate, which one peak FLOP rate cannot express for both prefill and decode.
   */
  readonly msPerSampledSeq: number;
  /** Achieved fraction of the host link when loading weights (pinned, multi-threaded copy). */
  readonly hostLinkEfficiency: number;
  /** Fixed cost of an activation besides the copy (bind a pre-initialised worker), ms. */
  readonly activationStartMs: number;
  /** Latency of one all-reduce (TP), ms; two per layer. */
  readonly allReduceLatencyMs: number;
  /**
   * Time a request spends in the server outside device steps, ms: from its arrival to its admission
   * (HTTP, JSON, tokenisation, hand-off to the device loop) plus the first token's way back to the
   * client. It adds to TTFT (and E2E) but occupies no device time. 0 on GPUs (the catalog's GPU
   * overhead is folded into stepOverheadMs as the Prism prototype measured it).
   */
  readonly requestOverheadMs: number;
}

/**
 * GPU efficiencies. stepOverheadMs = 5.9 is calibrated so that a dedicated Llama-3.2-1B on an H100
 * decodes at ≈ 6.9 ms/token, the dedicated p99 TPOT the Prism prototype reports for its 1B model with
 * CUDA graphs disabled (prism.md §5.2, trace.py: "base TPOT 6.94 ms"). mfu 0.5 / mbu 0.7 are typical
 * achieved fractions for bf16 GEMM and decode streaming (Vidur and vLLM roofline studies).
 * Activation: Prism reports < 1.5 s for 1B–70B with pre-initialised workers and parallel loading from
 * CPU shared memory (prism.md §2.1); 0.5 host-link efficiency + 200 ms start gives 1B 0.28 s,
 * 8B 0.70 s, 70B/TP4 (35 GB per rank in parallel) 1.3 s on H100.
 */
export const GPU_EFFICIENCY: Efficiency = {
  mfu: 0.5,
  mbu: 0.7,
  stepOverheadMs: 5.9,
  msPerSampledSeq: 0,
  hostLinkEfficiency: 0.5,
  activationStartMs: 200,
  allReduceLatencyMs: 0.01,
  requestOverheadMs: 0,
};

/**
 * CPU engine fit (device "cpu"): peakFlops / memBw above are effective values with mfu = mbu = 1;
 * CPU_ENGINE_STEP_OVERHEAD_MS is the fitted per-step cost of the engine itself (JS dispatch) and
 * msPerSampledSeq the per-row cost of the classifier matvec + argmax over 32000 logits, which batched
 * decode pays per sequence and a prefill once. From calibrate.ts fitDevice(CPU_BENCH_SAMPLES):
 * 88.9 GFLOP/s, 55.4 GB/s, 2.06 ms per step, 0.54 ms per sampled sequence (worst error 4% over
 * prefill 1×128 and decode B=1/8/32).
 */
export const CPU_ENGINE_STEP_OVERHEAD_MS = 2.06;
/**
 * What `prism serve` adds to each step beyond the executor call that bench:engine times: the device
 * loop's planning and applying, the hand-off to and from the engine worker, streaming the token. The
 * GPU overhead above likewise comes from a server's TPOT, not a kernel timing. Measured by timing the
 * executor inside a running server (sequential single requests, stories15M f32, worker engine): server
 * TPOT minus the engine's own step time, median 0.4–0.6 ms across prompt lengths and load.
 * (It was 3.0 ms, taken as server TPOT minus an engine fit made at another time on this noisy host,
 * which attributed load drift to the server.)
 */
export const CPU_SERVE_LOOP_MS = 0.5;
/**
 * Per request, outside steps (Efficiency.requestOverheadMs): in the same measurement, arrival to the
 * first prefill step 2.5–3.3 ms and the last prefill step's end to the client's first byte 1.1–1.5 ms.
 */
export const CPU_REQUEST_OVERHEAD_MS = 4.0;

export const CPU_EFFICIENCY: Efficiency = {
  mfu: 1,
  mbu: 1,
  stepOverheadMs: CPU_ENGINE_STEP_OVERHEAD_MS + CPU_SERVE_LOOP_MS,
  msPerSampledSeq: 0.54,
  hostLinkEfficiency: 1,
  activationStartMs: 5,
  allReduceLatencyMs: 0,
  requestOverheadMs: CPU_REQUEST_OVERHEAD_MS,
};

export function efficiencyFor(type: DeviceType): Efficiency {
  return type === "cpu" ? CPU_EFFICIENCY : GPU_EFFICIENCY;
}
