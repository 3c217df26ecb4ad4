// Factories for crafted cluster states: sizes in MiB, rates in req/s, times in ms.
import { deviceId, modelId } from "../../src/core/ids.ts";
import type { ModelProfile } from "../../src/core/records.ts";
import { buildClusterState, NO_DEMAND, type DeviceSnapshot, type InstanceSnapshot, type ModelRecord } from "../../src/control/cluster-state.ts";
import type { Action, ClusterState, ControlModel, InstanceState } from "../../src/control/types.ts";

export const MiB = 1024 * 1024;

export interface ModelOpts {
  weightMiB?: number;
  kvBytesPerToken?: number;
  maxContextTokens?: number;
  ttftMs?: number;
  tpotMs?: number;
  /** Observed (EWMA) arrival rate. */
  rate?: number;
  tokenRate?: number;
  /** Σ prompt tokens² per second. */
  promptSqRate?: number;
  /** Caller's expected rate (initial placement). */
  expected?: number;
  pinned?: boolean;
  keepAliveMs?: number;
  pending?: number;
  oldestPendingMs?: number;
  violation?: number;
  lastArrivalMs?: number;
}

export function model(id: string, o: ModelOpts = {}): ModelRecord {
  return {
    id: modelId(id),
    weightBytes: (o.weightMiB ?? 10) * MiB,
    kvBytesPerToken: o.kvBytesPerToken ?? 1024,
    maxContextTokens: o.maxContextTokens ?? 256,
    ttftSloMs: o.ttftMs ?? 1000,
    tpotSloMs: o.tpotMs ?? 100,
    pinned: o.pinned ?? false,
    keepAliveMs: o.keepAliveMs ?? 5000,
    expectedRatePerS: o.expected ?? 0,
    demand: {
      ...NO_DEMAND,
      arrivalRatePerS: o.rate ?? 0,
      tokenRatePerS: o.tokenRate ?? 0,
      promptSqRatePerS: o.promptSqRate ?? 0,
      violationFraction: o.violation ?? 0,
      lastArrivalMs: o.lastArrivalMs ?? -Infinity,
    },
    pendingRequests: o.pending ?? 0,
    oldestPendingMs: o.oldestPendingMs ?? (o.pending ? 0 : Infinity),
  };
}

export interface InstOpts {
  state?: InstanceState;
  queued?: number;
  running?: number;
  lastUsedMs?: number;
  sinceMs?: number;
  kvUsedMiB?: number;
  limitBytes?: number | null;
  revision?: number;
}

export function inst(id: string, o: InstOpts = {}): InstanceSnapshot {
  return {
    modelId: modelId(id),
    state: o.state ?? "active",
    kvUsedBytes: (o.kvUsedMiB ?? 0) * MiB,
    kvLimitBytes: o.limitBytes ?? null,
    kvLimitRevision: o.revision ?? 0,
    queuedRequests: o.queued ?? 0,
    runningRequests: o.running ?? 0,
    lastUsedMs: o.lastUsedMs ?? 0,
    sinceMs: o.sinceMs ?? 0,
  };
}

export function device(id: number, memoryMiB: number, instances: InstanceSnapshot[] = []): DeviceSnapshot {
  return { id: deviceId(id), memoryBytes: memoryMiB * MiB, instances };
}

export function state(nowMs: number, models: ModelRecord[], devices: DeviceSnapshot[]): ClusterState {
  return buildClusterState(nowMs, models, devices);
}

export const act = (m: string, d: number): Action => ({ kind: "activate", model: modelId(m), device: deviceId(d) });
export const deact = (m: string, d: number): Action => ({ kind: "deactivate", model: modelId(m), device: deviceId(d) });
export const mig = (m: string, from: number, to: number): Action => ({ kind: "migrate", model: modelId(m), from: deviceId(from), to: deviceId(to) });
export const limit = (m: string, d: number, bytes: number, revision: number): Action =>
  ({ kind: "setKvLimit", model: modelId(m), device: deviceId(d), bytes, revision });

export function profile(id: string, o: { weightBytes?: number; numLayers?: number; kvBytesPerTokenPerLayer?: number; maxContextTokens?: number } = {}): ModelProfile {
  return {
    id: modelId(id),
    weightBytes: o.weightBytes ?? 10 * MiB,
    numLayers: o.numLayers ?? 4,
    kvBytesPerTokenPerLayer: o.kvBytesPerTokenPerLayer ?? 256,
    maxContextTokens: o.maxContextTokens ?? 256,
    vocabSize: 32,
    eosTokenIds: [0],
  };
}

export function controlModel(id: string, o: { weightBytes?: number; ttftSloMs?: number; tpotSloMs?: number; pinned?: boolean; keepAliveMs?: number;
  numLayers?: number; kvBytesPerTokenPerLayer?: number; maxContextTokens?: number } = {}): ControlModel {
  const p = profile(id, o);
  return {
    profile: p,
    ttftSloMs: o.ttftSloMs ?? 1000,
    tpotSloMs: o.tpotSloMs ?? 100,
    ...(o.pinned !== undefined ? { pinned: o.pinned } : {}),
    ...(o.keepAliveMs !== undefined ? { keepAliveMs: o.keepAliveMs } : {}),
  };
}
