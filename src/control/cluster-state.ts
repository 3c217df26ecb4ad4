/**
 * Building the ClusterState a policy plans on, from what the devices report (DeviceSnapshot) and
 * what the control layer knows about each model (ModelRecord: profile, SLOs, demand, pending
 * requests). GlobalScheduler.observe() and the simulator call this same function; tests and the
 * benchmark call it on crafted snapshots. Cold path: once per round (and once per router miss).
 */
import { PrismError } from "../core/errors.ts";
import { assertNever } from "../core/result.ts";
import type { DeviceId, ModelId } from "../core/ids.ts";
import type { Action, ClusterState, ControlModel, DemandView, DeviceView, InstanceState, InstanceView, ModelView } from "./types.ts";

/** One instance as a device reports it. */
export interface InstanceSnapshot {
  readonly modelId: ModelId;
  readonly state: InstanceState;
  readonly kvUsedBytes: number;
  readonly kvLimitBytes: number | null;
  readonly kvLimitRevision: number;
  readonly queuedRequests: number;
  readonly runningRequests: number;
  readonly lastUsedMs: number;
  readonly sinceMs: number;
}

/** One device as it reports itself. */
export interface DeviceSnapshot {
  readonly id: DeviceId;
  /** Bytes usable for weights + KV. */
  readonly memoryBytes: number;
  /** Page size of the device memory (KV limits round down to pages); default 1. */
  readonly pageBytes?: number;
  readonly instances: readonly InstanceSnapshot[];
}

/** What the control layer knows about one model at observation time. */
export interface ModelRecord {
  readonly id: ModelId;
  readonly weightBytes: number;
  readonly kvBytesPerToken: number;
  readonly maxContextTokens: number;
  readonly ttftSloMs: number;
  readonly tpotSloMs: number;
  readonly pinned: boolean;
  /** Unloaded by an operator and not requested since (default false). */
  readonly heldOut?: boolean;
  readonly keepAliveMs: number;
  readonly expectedRatePerS: number;
  readonly demand: DemandView;
  readonly pendingRequests: number;
  readonly oldestPendingMs: number;
}

export const NO_DEMAND: DemandView = Object.freeze({
  arrivalRatePerS: 0,
  tokenRatePerS: 0,
  promptSqRatePerS: 0,
  outstandingRequests: 0,
  outstandingTokens: 0,
  violationFraction: 0,
  lastArrivalMs: -Infinity,
});

/** K+V bytes per token over all layers. */
export function kvBytesPerToken(m: ControlModel): number {
  return m.profile.kvBytesPerTokenPerLayer * m.profile.numLayers;
}

/** A ModelRecord from a configured model; demand and pending default to none. */
export function modelRecord(m: ControlModel, opts: {
  readonly expectedRatePerS?: number;
  readonly defaultKeepAliveMs: number;
  readonly demand?: DemandView;
  readonly pendingRequests?: number;
  readonly oldestPendingMs?: number;
}): ModelRecord {
  return {
    id: m.profile.id,
    weightBytes: m.profile.weightBytes,
    kvBytesPerToken: kvBytesPerToken(m),
    maxContextTokens: m.profile.maxContextTokens,
    ttftSloMs: m.ttftSloMs,
    tpotSloMs: m.tpotSloMs,
    pinned: m.pinned ?? false,
    keepAliveMs: m.keepAliveMs ?? opts.defaultKeepAliveMs,
    expectedRatePerS: opts.expectedRatePerS ?? 0,
    demand: opts.demand ?? NO_DEMAND,
    pendingRequests: opts.pendingRequests ?? 0,
    oldestPendingMs: opts.oldestPendingMs ?? Infinity,
  };
}

/**
 * Join device snapshots and model records into a ClusterState. Devices must be given in DeviceId
 * order with dense ids 0..D-1; every instance must name a known model, at most once per device.
 */
export function buildClusterState(nowMs: number, models: readonly ModelRecord[], devices: readonly DeviceSnapshot[]): ClusterState {
  const index = new Map<ModelId, number>();
  models.forEach((m, i) => {
    if (index.has(m.id)) throw new PrismError("PRISM_CONFIG_INVALID", `model '${m.id}' is listed twice`, { model: m.id });
    index.set(m.id, i);
  });
  const perModel: InstanceView[][] = models.map(() => []);
  const deviceViews: DeviceView[] = devices.map((dev, d) => {
    if ((dev.id as number) !== d) {
      throw new PrismError("PRISM_UNKNOWN_DEVICE", `device ids must be dense and ordered: position ${d} holds device ${dev.id}`, { device: dev.id });
    }
    let weightBytes = 0;
    let kvUsedBytes = 0;
    let queued = 0;
    let running = 0;
    const instances: InstanceView[] = [];
    for (const s of dev.instances) {
      const m = index.get(s.modelId);
      if (m === undefined) throw new PrismError("PRISM_UNKNOWN_MODEL", `device ${d} reports unknown model '${s.modelId}'`, { model: s.modelId, device: d });
      if (instances.some((i) => i.model === m)) {
        throw new PrismError("PRISM_INTERNAL", `device ${d} reports model '${s.modelId}' twice`, { model: s.modelId, device: d });
      }
      const view: InstanceView = {
        model: m,
        device: d,
        state: s.state,
        weightBytes: models[m]!.weightBytes,
        kvUsedBytes: s.kvUsedBytes,
        kvLimitBytes: s.kvLimitBytes,
        kvLimitRevision: s.kvLimitRevision,
        queuedRequests: s.queuedRequests,
        runningRequests: s.runningRequests,
        lastUsedMs: s.lastUsedMs,
        sinceMs: s.sinceMs,
      };
      instances.push(view);
      perModel[m]!.push(view);
      weightBytes += view.weightBytes;
      kvUsedBytes += s.kvUsedBytes;
      queued += s.queuedRequests;
      running += s.runningRequests;
    }
    return { index: d, id: dev.id, memoryBytes: dev.memoryBytes, pageBytes: dev.pageBytes ?? 1, weightBytes, kvUsedBytes, queuedRequests: queued, runningRequests: running, instances };
  });
  const modelViews: ModelView[] = models.map((r, m) => {
    let queued = 0;
    let running = 0;
    for (const i of perModel[m]!) {
      queued += i.queuedRequests;
      running += i.runningRequests;
    }
    return {
      index: m,
      id: r.id,
      weightBytes: r.weightBytes,
      kvBytesPerToken: r.kvBytesPerToken,
      maxContextTokens: r.maxContextTokens,
      ttftSloMs: r.ttftSloMs,
      tpotSloMs: r.tpotSloMs,
      pinned: r.pinned,
      heldOut: r.heldOut ?? false,
      keepAliveMs: r.keepAliveMs,
      expectedRatePerS: r.expectedRatePerS,
      demand: r.demand,
      pendingRequests: r.pendingRequests,
      oldestPendingMs: r.oldestPendingMs,
      waitingRequests: r.pendingRequests + queued,
      runningRequests: running,
      instances: perModel[m]!,
    };
  });
  return { nowMs, models: modelViews, devices: deviceViews };
}

/**
 * Weight bytes on each device once `actions` are applied, by the ledger's memory rule (deactivations
 * free, migration sources keep their bytes this round). For tests and assertions.
 */
export function weightsAfter(state: ClusterState, actions: readonly Action[]): Float64Array {
  const bytes = Float64Array.from(state.devices, (d) => d.weightBytes);
  const idx = new Map(state.models.map((m) => [m.id, m] as const));
  for (const a of actions) {
    switch (a.kind) {
      case "activate":
        bytes[a.device]! += idx.get(a.model)!.weightBytes;
        break;
      case "deactivate":
        bytes[a.device]! -= idx.get(a.model)!.weightBytes;
        break;
      case "migrate":
        bytes[a.to]! += idx.get(a.model)!.weightBytes;
        break;
      case "setKvLimit":
        break;
      default:
        assertNever(a, "action");
    }
  }
  return bytes;
}
