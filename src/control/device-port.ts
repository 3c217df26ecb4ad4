/**
 * What the control layer needs from one device: the DeviceScheduler's model-management and request
 * methods (it satisfies ControlDevice structurally, as does a test fake) plus a read-only view of the
 * device memory for capacity and per-model KV use. The server and the simulator build one
 * DeviceBinding per device: `{ scheduler, memory }`.
 */
import type { DeviceId, ModelId, RequestId } from "../core/ids.ts";
import type { ModelProfile } from "../core/records.ts";
import type { MemorySnapshot, SetLimitResult } from "../memory/types.ts";
import type { DeviceStats, ModelServingConfig, ResidencyKind, SchedulingPolicy, SubmitRequest, SubmitResult, UnloadResult } from "../device/types.ts";

export interface ControlDevice {
  readonly deviceId: DeviceId;
  /** Read to check the local policy matches the global policy's needs (optional for fakes). */
  readonly config?: { readonly policy: SchedulingPolicy };
  addModel(profile: ModelProfile, serving?: Partial<ModelServingConfig>): void;
  removeModel(modelId: ModelId): void;
  hasModel(modelId: ModelId): boolean;
  requestLoad(modelId: ModelId): void;
  requestUnload(modelId: ModelId): UnloadResult;
  pin(modelId: ModelId): void;
  unpin(modelId: ModelId): void;
  setKvLimit(modelId: ModelId, bytes: number, revision: number): SetLimitResult;
  submit(spec: SubmitRequest): SubmitResult;
  cancel(requestId: RequestId): boolean;
  drainModel(modelId: ModelId): SubmitRequest[];
  residency(modelId: ModelId): ResidencyKind;
  stats(): DeviceStats;
}

export interface MemoryView {
  snapshot(): MemorySnapshot;
}

export interface DeviceBinding {
  readonly scheduler: ControlDevice;
  readonly memory: MemoryView;
}

/** Bytes of a device usable for weights + KV (budget minus KV headroom). */
export function usableBytes(snap: MemorySnapshot): number {
  return (snap.totalPages - snap.headroomPages) * snap.pageBytes;
}
