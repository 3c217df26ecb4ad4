/**
 * A cluster driver with a fixed model → device map and no global policy: every model is added to
 * its device(s) at start (optionally pinned and loaded eagerly) and requests go to its first device.
 * Used for the dedicated-device SLO baselines and for single-device tests; it decides nothing a
 * policy would (no placement search, no eviction choice — the DeviceScheduler still makes all
 * device-level decisions).
 */
import type { ModelId } from "../core/ids.ts";
import { isPrismError } from "../core/errors.ts";
import type { SubmitRequest } from "../device/types.ts";
import { MODEL_MAX_RUNNING, type ClusterContext, type ClusterDriver } from "./simulator.ts";

export interface DirectDriverOptions {
  /** Device of each model (indexed like the simulator's models); default all on device 0. */
  readonly deviceOf?: readonly number[];
  /** Pin and load every model at start (dedicated serving). Default true. */
  readonly preload?: boolean;
  /** Keep-alive of unpinned models (ms); default Infinity. */
  readonly keepAliveMs?: number;
}

export class DirectDriver implements ClusterDriver {
  readonly roundMs = null;
  readonly migrations = 0;
  private ctx: ClusterContext | null = null;
  private readonly opts: DirectDriverOptions;

  constructor(opts: DirectDriverOptions = {}) {
    this.opts = opts;
  }

  init(ctx: ClusterContext): void {
    this.ctx = ctx;
    const preload = this.opts.preload ?? true;
    ctx.models.forEach((m, i) => {
      const dev = ctx.devices[this.opts.deviceOf?.[i] ?? 0]!;
      dev.scheduler.addModel(m.cost.profile, {
        ttftSloMs: m.ttftSloMs,
        tpotSloMs: m.tpotSloMs,
        pinned: preload,
        keepAliveMs: this.opts.keepAliveMs ?? Number.POSITIVE_INFINITY,
        maxRunning: Math.min(MODEL_MAX_RUNNING, dev.scheduler.config.maxBatchSeqs),
      });
      if (preload) dev.scheduler.requestLoad(m.cost.modelId as ModelId);
    });
  }

  submit(spec: SubmitRequest, modelIndex: number, _nowMs: number): void {
    const ctx = this.ctx!;
    const dev = ctx.devices[this.opts.deviceOf?.[modelIndex] ?? 0]!;
    const r = dev.scheduler.submit(spec);
    if (r === "busy" || isPrismError(r)) ctx.reject(spec);
  }

  tick(_nowMs: number): void {}
}
