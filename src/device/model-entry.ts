/**
 * What the device scheduler keeps per co-located model: its profile and serving slice, its elastic
 * KV space (created at addModel; virtual, costs nothing until blocks are allocated), whether its
 * weights are resident, its queue, and its prefill-cost estimate.
 */
import type { ModelId } from "../core/ids.ts";
import type { ModelProfile } from "../core/records.ts";
import type { KvSpace } from "../memory/types.ts";
import type { DeviceSchedulerConfig, ModelServingConfig } from "./types.ts";
import { ModelQueue } from "./model-queue.ts";

export type Residency =
  | { readonly kind: "absent" }
  | { readonly kind: "loading"; readonly startedMs: number; readonly byteOffset: number }
  | { readonly kind: "resident"; readonly sinceMs: number; readonly byteOffset: number };

export const ABSENT: Residency = Object.freeze({ kind: "absent" });

export class ModelEntry {
  readonly index: number;
  readonly id: ModelId;
  readonly profile: ModelProfile;
  readonly serving: ModelServingConfig;
  readonly space: KvSpace;
  readonly queue: ModelQueue;
  /** The profile's EOS ids, shared by the model's requests. */
  readonly eosTokenIds: Int32Array;
  /** Pages the weights take (rounded up). */
  readonly weightPages: number;
  residency: Residency;
  pinned: boolean;
  /** Requests of this model admitted (prefilling or decoding). */
  numRunning: number;
  /** Since when the model has had nothing running (and, for keep-alive, nothing queued). */
  idleSinceMs: number;
  /** Since when the weights have been absent (for activation-wait accounting). */
  absentSinceMs: number;
  /** EWMA of ms per prefill token, learned from measured steps. */
  msPerPrefillToken: number;
  /** The layer above asked for the model to be loaded / unloaded (requestLoad / requestUnload). */
  loadRequested: boolean;
  unloadRequested: boolean;
  /** Most blocks this model could ever hold on the device (all KV memory, its own limit). */
  maxKvBlocks: number;
  /** Set during planning when the model has prefill tokens in the step (estimate update). */
  prefilledThisStep: boolean;
  /** Loaded for its queue and has not admitted a request since (it admits its head first). */
  freshlyActivated: boolean;
  /** Skip this model for the rest of the current admission pass. */
  skipInPass: boolean;
  numActivations: number;
  lastActivationMs: number;

  constructor(index: number, profile: ModelProfile, serving: ModelServingConfig, space: KvSpace, cfg: DeviceSchedulerConfig, pageBytes: number, nowMs: number) {
    this.index = index;
    this.id = profile.id;
    this.profile = profile;
    this.serving = serving;
    this.space = space;
    this.queue = new ModelQueue(cfg, serving.ttftSloMs, cfg.prefillMsPerTokenPrior);
    this.eosTokenIds = Int32Array.from(profile.eosTokenIds);
    this.weightPages = Math.ceil(profile.weightBytes / pageBytes);
    this.residency = ABSENT;
    this.pinned = serving.pinned;
    this.numRunning = 0;
    this.idleSinceMs = nowMs;
    this.absentSinceMs = nowMs;
    this.msPerPrefillToken = cfg.prefillMsPerTokenPrior;
    this.loadRequested = false;
    this.unloadRequested = false;
    this.maxKvBlocks = 0;
    this.prefilledThisStep = false;
    this.skipInPass = false;
    this.freshlyActivated = false;
    this.numActivations = 0;
    this.lastActivationMs = Number.NaN;
  }

  /** Nothing queued and nothing running. */
  get isIdle(): boolean {
    return this.numRunning === 0 && this.queue.size === 0;
  }

  get isResident(): boolean {
    return this.residency.kind === "resident";
  }
}
