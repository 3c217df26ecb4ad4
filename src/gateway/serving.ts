/**
 * PrismBackend: the serving system under the gateway. Per device: one DeviceMemory (a WebAssembly.Memory
 * shared with the engine), one executor (the WASM engine, in a worker thread by default), one
 * DeviceScheduler and its DeviceLoop. Across devices: the GlobalScheduler (placement, activation,
 * migration, routing) from src/control. Requests arrive here already validated and tokenised.
 */
import type { Logger } from "pino";
import { PrismError } from "../core/errors.ts";
import { deviceId as toDeviceId, modelId as toModelId, requestId as toRequestId, type ModelId, type RequestId } from "../core/ids.ts";
import type { Clock } from "../core/clock.ts";
import { SeededRng } from "../core/rng.ts";
import type { Executor, ModelProfile } from "../core/records.ts";
import type { ServeConfig } from "../config/load.ts";
import { DeviceMemory } from "../memory/device-memory.ts";
import { DeviceScheduler } from "../device/device-scheduler.ts";
import { DeviceLoop, type LoopHost } from "../device/loop.ts";
import { resolveDeviceSchedulerConfig } from "../device/config.ts";
import type { RequestOutcome, RequestSink, RequestStats, SubmitRequest } from "../device/types.ts";
import type { SampledToken } from "../core/records.ts";
import { GlobalScheduler } from "../control/global-scheduler.ts";
import { getPolicy } from "../control/policies/registry.ts";
import { createEngineExecutor, profileOf, requiredPrefixBytes } from "../engine/model/executor.ts";
import { planWeightLayout } from "../engine/model/weights.ts";
import { WorkerExecutor } from "../engine/runtime/worker-executor.ts";
import { IncrementalDetokenizer } from "../engine/tokenizer/tokenizer.ts";
import { renderChat } from "../engine/tokenizer/chat-template.ts";
import type {
  BackendMetrics, ChatMessage, FinishOutcome, GenerateInput, GenerationSink, ServedModel, ServingBackend, SubmitResult,
} from "./backend.ts";
import type { LoadedModel } from "./models.ts";
import { flushSseWrites } from "./sse.ts";

export const monotonicClock: Clock = { nowMs: () => performance.now() };

/** Longest run of back-to-back device-loop actions between two event-loop turns (sockets, timers). */
const MAX_LOOP_CHAIN_MS = 1;
let lastTurnMs = 0;

/**
 * How the device loop yields after each action. First the SSE events of the step that just ended leave (one
 * write per response: no token waits past its step). Then the next action runs on a fresh event-loop turn
 * (setImmediate: I/O polled, timers run) — unless the loop had one less than MAX_LOOP_CHAIN_MS ago, in which
 * case it continues as a microtask. A real step takes milliseconds, so every step still gets its own turn; a
 * sub-millisecond one (a tiny model, a zero-cost engine) skips an epoll_wait per step, and sockets and timers
 * still run at least every millisecond.
 */
export const nodeLoopHost: LoopHost = {
  defer: (fn) => {
    flushSseWrites();
    if (performance.now() - lastTurnMs < MAX_LOOP_CHAIN_MS) {
      queueMicrotask(fn);
      return;
    }
    setImmediate(() => {
      lastTurnMs = performance.now();
      fn();
    });
  },
  after: (ms, fn) => {
    const t = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(t);
  },
};

class Served implements ServedModel {
  readonly id: string;
  readonly aliases: readonly string[];
  readonly createdS: number;
  readonly contextTokens: number;
  readonly vocabSize: number;
  readonly ttftSloMs: number;
  readonly tpotSloMs: number;
  pinned: boolean;
  readonly profile: ModelProfile;
  private readonly eos: Set<number>;
  constructor(readonly loaded: LoadedModel, createdS: number) {
    const e = loaded.entry;
    this.id = e.id;
    this.aliases = e.aliases;
    this.createdS = createdS;
    this.contextTokens = loaded.cfg.contextLength;
    this.vocabSize = loaded.cfg.vocabSize;
    this.ttftSloMs = e.ttftSloMs;
    this.tpotSloMs = e.tpotSloMs;
    this.pinned = e.pinned;
    this.profile = profileOf(toModelId(e.id), loaded.cfg, planWeightLayout(loaded.gguf, loaded.cfg));
    this.eos = new Set(loaded.cfg.eosTokenIds);
  }
  encode(text: string, addBos: boolean): Int32Array {
    return this.loaded.tokenizer.encode(text, { addBos: addBos && this.loaded.cfg.addBos });
  }
  encodeChat(messages: readonly ChatMessage[]): Int32Array {
    const t = this.loaded.tokenizer;
    const text = renderChat(messages, {
      template: this.loaded.cfg.chatTemplate,
      bosToken: t.tokenText(t.bosId),
      eosToken: t.tokenText(this.loaded.cfg.eosTokenIds[0] ?? t.bosId),
      addGenerationPrompt: true,
    });
    // A template that writes the BOS text itself already starts with it; do not add a second one.
    const bosText = t.tokenText(t.bosId);
    const addBos = this.loaded.cfg.addBos && !text.startsWith(bosText);
    return t.encode(text, { addBos, parseSpecial: true });
  }
  detokenizer(promptTokens: Int32Array): { push(token: number): string; flush(): string } {
    return IncrementalDetokenizer.forContinuation(this.loaded.tokenizer, promptTokens);
  }
  tokenText(token: number): string {
    return this.loaded.tokenizer.tokenText(token);
  }
  isEos(token: number): boolean {
    return this.eos.has(token);
  }
}

/** Adapts one gateway generation to the device scheduler's sink protocol. */
class Pending implements RequestSink {
  done = false;
  constructor(
    readonly backend: PrismBackend,
    readonly id: RequestId,
    readonly model: Served,
    readonly sink: GenerationSink,
  ) {}
  onToken(_requestId: RequestId, s: SampledToken): void {
    if (!this.done) this.sink.onToken(s.token, s.logprob, s.topTokens, s.topLogprobs);
  }
  onFinish(_requestId: RequestId, outcome: RequestOutcome, stats: RequestStats): void {
    if (this.done) return;
    this.done = true;
    this.backend.finished(this);
    const fin: FinishOutcome = outcome;
    this.sink.onFinish(fin, {
      queueMs: stats.queueMs,
      ttftMs: stats.ttftMs,
      tpotMs: stats.tpotMs,
      e2eMs: stats.finishedMs - stats.arrivalMs,
      preemptions: stats.numPreemptions,
    });
  }
}

interface Device {
  readonly index: number;
  readonly memory: DeviceMemory;
  readonly scheduler: DeviceScheduler;
  readonly loop: DeviceLoop;
  readonly executor: Executor;
}

export interface BackendOptions {
  readonly config: ServeConfig;
  readonly models: readonly LoadedModel[];
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Replaces the engine (the gateway benchmark's zero-cost executor). */
  readonly executorFactory?: (memory: DeviceMemory, prefixBytes: number, device: number) => Promise<Executor>;
}

export class PrismBackend implements ServingBackend {
  private readonly served: Served[];
  private readonly byName = new Map<string, Served>();
  private readonly devices: Device[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly inFlightByModel = new Map<string, number>();
  private nextRequestId = 1;
  private accepting = true;
  private isReady = false;
  private global!: GlobalScheduler;
  private roundTimer: NodeJS.Timeout | null = null;
  private readonly clock: Clock;

  private constructor(private readonly opts: BackendOptions) {
    this.clock = opts.clock ?? monotonicClock;
    const createdS = Math.floor(Date.now() / 1000);
    this.served = opts.models.map((m) => new Served(m, createdS));
    for (const s of this.served) {
      for (const name of [s.id, ...s.aliases]) this.byName.set(name, s);
      this.inFlightByModel.set(s.id, 0);
    }
  }

  static async create(opts: BackendOptions): Promise<PrismBackend> {
    const b = new PrismBackend(opts);
    await b.start();
    return b;
  }

  private async start(): Promise<void> {
    const { config } = this.opts;
    const dc = config.devices;
    const sc = config.scheduler;
    const budget = { maxBatchTokens: sc.maxBatchTokens, maxSampleRows: Math.min(sc.maxBatchSeqs, sc.maxBatchTokens) };
    const rawPrefix = requiredPrefixBytes(this.opts.models.map((m) => m.cfg), budget);
    const prefixBytes = Math.ceil(rawPrefix / 65536) * 65536;
    const policy = getPolicy(sc.policy).needs.localPolicy;
    const schedCfg = resolveDeviceSchedulerConfig({
      policy,
      maxBatchTokens: sc.maxBatchTokens,
      maxBatchSeqs: sc.maxBatchSeqs,
      prefillChunkTokens: sc.prefillChunkTokens,
      blockTokens: dc.blockTokens,
      maxQueuedPerModel: Math.max(1, ...config.models.map((m) => m.maxQueue), 256),
      maxQueuedTotal: config.server.maxQueueTotal,
      abortUnreachable: sc.abortUnreachableSlo,
      demoteExpired: sc.demoteExpired,
      lateMaxRunning: sc.lateMaxRunning,
      lateMaxWaitMs: sc.lateMaxWaitMs,
      guardFirstTokens: sc.guardFirstTokens,
    });
    for (let i = 0; i < dc.count; i++) {
      const memory = new DeviceMemory({
        budgetBytes: dc.memoryBytes, pageBytes: dc.pageBytes, kvHeadroomFraction: dc.kvHeadroom,
        backed: true, shared: dc.worker, prefixBytes,
      });
      const executor = this.opts.executorFactory
        ? await this.opts.executorFactory(memory, prefixBytes, i)
        : await this.createEngine(memory, prefixBytes, budget);
      const scheduler = new DeviceScheduler({ deviceId: toDeviceId(i), memory, clock: this.clock, rng: new SeededRng(1000 + i), config: schedCfg });
      const loop = new DeviceLoop({
        scheduler, executor, memory, clock: this.clock, host: nodeLoopHost,
        onError: (e) => this.opts.logger.error({ err: e, device: i }, "device loop failed"),
      });
      this.devices.push({ index: i, memory, scheduler, loop, executor });
    }
    this.global = new GlobalScheduler({
      devices: this.devices.map((d) => ({ scheduler: d.scheduler, memory: d.memory })),
      models: this.served.map((s) => ({
        profile: s.profile,
        ttftSloMs: s.ttftSloMs,
        tpotSloMs: s.tpotSloMs,
        pinned: s.pinned,
        keepAliveMs: s.loaded.entry.keepAliveMs,
        serving: { maxRunning: s.loaded.entry.maxRunning },
      })),
      expectedRates: new Map(this.served.map((s) => [s.id, s.loaded.entry.expectedRate])),
      policy: sc.policy,
      clock: this.clock,
      config: { roundMs: sc.roundMs, tau: sc.tau, maxMigrationsPerRound: sc.maxMigrationsPerRound, idleEvictMs: sc.idleEvictMs },
      // Work a submit triggers (activations, replica changes) runs after the current request handler returns.
      defer: (fn) => setImmediate(fn),
      onActions: (actions, nowMs, source) => {
        if (actions.length > 0) this.opts.logger.debug({ actions, nowMs: Math.round(nowMs), source }, "placement actions");
      },
    });
    for (const d of this.devices) d.loop.start();
    // The first round places pinned models and those with an expected rate before any request arrives.
    this.global.tick(this.clock.nowMs());
    if (Number.isFinite(sc.roundMs) && sc.roundMs > 0) {
      this.roundTimer = setInterval(() => {
        try {
          this.global.tick(this.clock.nowMs());
        } catch (e) {
          this.opts.logger.error({ err: e }, "global scheduling round failed");
        }
      }, sc.roundMs);
      this.roundTimer.unref();
    }
    this.isReady = true;
  }

  private async createEngine(memory: DeviceMemory, prefixBytes: number, budget: { maxBatchTokens: number; maxSampleRows: number }): Promise<Executor> {
    const dc = this.opts.config.devices;
    const models = this.opts.models.map((m) => ({ id: m.entry.id, path: m.path }));
    if (dc.worker) {
      return WorkerExecutor.create({
        module: new URL("../engine/model/executor.ts", import.meta.url),
        exportName: "createEngineExecutor",
        memory: memory.memory!,
        options: { prefixBytes, kernels: dc.kernels, models, ...budget },
        name: "prism-engine",
        onAsyncError: (e) => this.opts.logger.error({ err: e }, "engine worker error"),
      });
    }
    return createEngineExecutor({
      memory: memory.memory!, prefixBytes, kernels: dc.kernels, ...budget,
      models: this.opts.models.map((m) => ({ id: m.entry.id, path: m.path })),
    });
  }

  models(): readonly ServedModel[] {
    return this.served;
  }

  resolve(name: string): ServedModel | null {
    return this.byName.get(name) ?? null;
  }

  generate(input: GenerateInput, sink: GenerationSink): SubmitResult {
    if (!this.accepting) return { kind: "rejected", error: new PrismError("PRISM_SHUTTING_DOWN", "the server is shutting down") };
    const model = input.model as Served;
    const inFlight = this.inFlightByModel.get(model.id) ?? 0;
    const cap = model.loaded.entry.maxQueue + model.loaded.entry.maxRunning;
    if (inFlight >= cap) {
      return { kind: "rejected", error: new PrismError("PRISM_QUEUE_FULL", `model '${model.id}' has ${inFlight} requests queued or running (limit ${cap}); retry later`), retryAfterS: this.retryAfterS(model) };
    }
    if (this.pending.size >= this.opts.config.server.maxQueueTotal) {
      return { kind: "rejected", error: new PrismError("PRISM_QUEUE_FULL", `the server has ${this.pending.size} requests queued or running (limit ${this.opts.config.server.maxQueueTotal}); retry later`), retryAfterS: this.retryAfterS(model) };
    }
    const id = toRequestId(this.nextRequestId++);
    const p = new Pending(this, id, model, sink);
    const spec: SubmitRequest = {
      requestId: id,
      modelId: model.profile.id,
      promptTokens: input.promptTokens,
      maxTokens: input.maxTokens,
      sampling: input.sampling,
      ignoreEos: input.ignoreEos,
      arrivalMs: this.clock.nowMs(),
      sink: p,
    };
    this.pending.set(id, p);
    this.inFlightByModel.set(model.id, inFlight + 1);
    const r = this.global.submit(spec);
    if (r !== "accepted") {
      this.pending.delete(id);
      this.inFlightByModel.set(model.id, inFlight);
      p.done = true;
      if (r === "busy") return { kind: "rejected", error: new PrismError("PRISM_QUEUE_FULL", `no device can queue another request for '${model.id}' now; retry later`), retryAfterS: this.retryAfterS(model) };
      return { kind: "rejected", error: r };
    }
    return {
      kind: "accepted",
      handle: {
        cancel: () => {
          if (!p.done) this.global.cancel(id);
        },
      },
    };
  }

  /** Rough time until a queued request would start: queue length × recent per-request time. */
  private retryAfterS(model: Served): number {
    const n = this.inFlightByModel.get(model.id) ?? 0;
    return Math.min(60, Math.max(1, Math.ceil((n * model.tpotSloMs * 16) / 1000 / Math.max(1, model.loaded.entry.maxRunning))));
  }

  /** Called by Pending when a request ends (any outcome). */
  finished(p: Pending): void {
    this.pending.delete(p.id);
    this.inFlightByModel.set(p.model.id, Math.max(0, (this.inFlightByModel.get(p.model.id) ?? 1) - 1));
  }

  inFlight(): number {
    return this.pending.size;
  }

  ready(): boolean {
    return this.isReady;
  }

  async load(modelId: string): Promise<void> {
    const s = this.byName.get(modelId);
    if (!s) throw new PrismError("PRISM_UNKNOWN_MODEL", `unknown model '${modelId}'`);
    await this.global.load(s.profile.id);
  }

  async unload(modelId: string): Promise<void> {
    const s = this.byName.get(modelId);
    if (!s) throw new PrismError("PRISM_UNKNOWN_MODEL", `unknown model '${modelId}'`);
    await this.global.unload(s.profile.id);
  }

  pin(modelId: string, pinned: boolean): void {
    const s = this.byName.get(modelId);
    if (!s) throw new PrismError("PRISM_UNKNOWN_MODEL", `unknown model '${modelId}'`);
    s.pinned = pinned;
    this.global.pin(s.profile.id, pinned);
  }

  adminState(): unknown {
    const now = this.clock.nowMs();
    return {
      policy: this.opts.config.scheduler.policy,
      in_flight: this.pending.size,
      devices: this.devices.map((d) => {
        const snap = d.memory.snapshot();
        const stats = d.scheduler.stats();
        const spaceOf = new Map(snap.spaces.map((s) => [s.modelId as string, s]));
        const weightOf = new Map(snap.weights.map((w) => [w.modelId as string, w]));
        return {
          device: d.index,
          executor: d.executor.kind,
          memory: {
            budget_bytes: snap.budgetBytes, page_bytes: snap.pageBytes, total_pages: snap.totalPages, free_pages: snap.freePages,
            headroom_pages: snap.headroomPages, weight_pages: snap.weightPages, kv_pages: snap.kvPages,
          },
          queued: stats.numQueued,
          running: stats.numRunning,
          steps: stats.numSteps,
          activations: stats.numActivations,
          evictions: stats.numEvictions,
          preemptions: stats.numPreemptions,
          models: stats.models.map((m) => {
            const sp = spaceOf.get(m.modelId);
            const w = weightOf.get(m.modelId);
            const served = this.byName.get(m.modelId);
            return {
              id: m.modelId,
              residency: m.residency,
              pinned: m.pinned,
              keep_alive_ms: served ? nullIfInfinite(served.loaded.entry.keepAliveMs) : null,
              weight_bytes: w?.bytes ?? 0,
              kv_used_blocks: m.usedBlocks,
              kv_pages: m.mappedPages,
              kv_reserved_pages: sp?.reservedPages ?? 0,
              kv_limit_bytes: sp?.limitBytes ?? null,
              queued: m.numQueued,
              running: m.numRunning,
              activations: m.numActivations,
            };
          }),
        };
      }),
      placement: this.global.placementView(),
      uptime_ms: Math.round(now),
    };
  }

  metricsSnapshot(): BackendMetrics {
    const running = new Map<string, number>();
    const waiting = new Map<string, number>();
    const kvPagesUsed: { model: string; device: number; pages: number }[] = [];
    const deviceMemoryBytes: { device: number; kind: string; bytes: number }[] = [];
    let activations = 0;
    let evictions = 0;
    for (const s of this.served) {
      running.set(s.id, 0);
      waiting.set(s.id, 0);
    }
    for (const d of this.devices) {
      const stats = d.scheduler.stats();
      activations += stats.numActivations;
      evictions += stats.numEvictions + stats.numKeepAliveUnloads + stats.numManualUnloads;
      for (const m of stats.models) {
        running.set(m.modelId, (running.get(m.modelId) ?? 0) + m.numRunning);
        waiting.set(m.modelId, (waiting.get(m.modelId) ?? 0) + m.numQueued);
        kvPagesUsed.push({ model: m.modelId, device: d.index, pages: m.mappedPages });
      }
      const snap = d.memory.snapshot();
      deviceMemoryBytes.push(
        { device: d.index, kind: "weights", bytes: snap.weightPages * snap.pageBytes },
        { device: d.index, kind: "kv", bytes: snap.kvPages * snap.pageBytes },
        { device: d.index, kind: "free", bytes: snap.freePages * snap.pageBytes },
        { device: d.index, kind: "budget", bytes: snap.budgetBytes },
      );
    }
    return { running, waiting, kvPagesUsed, deviceMemoryBytes, activations, evictions, migrations: this.global.counters.migrations };
  }

  async shutdown(deadlineMs: number): Promise<void> {
    this.accepting = false;
    if (this.roundTimer) clearInterval(this.roundTimer);
    const until = performance.now() + deadlineMs;
    while (this.pending.size > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const p of [...this.pending.values()]) this.global.cancel(p.id);
    for (let i = 0; i < 50 && this.pending.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    for (const d of this.devices) await d.loop.stop();
    for (const d of this.devices) await d.executor.close();
  }
}

function nullIfInfinite(ms: number): number | null {
  return Number.isFinite(ms) ? ms : null;
}

export type { ModelId };
