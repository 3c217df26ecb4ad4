/**
 * The per-step record, one reused object per scheduler: filled after every completed step (a few
 * numbers, and with an onStep subscriber one pass over the models' KV spaces), then handed to the
 * subscriber. Without one (the simulator) the per-model arrays are filled only when the record is
 * read through lastStepRecord, from the state at that read.
 */
import type { DeviceId, ModelId } from "../core/ids.ts";
import type { ModelEntry } from "./model-entry.ts";
import type { StepRecord } from "./types.ts";

export class StepRecordImpl implements StepRecord {
  readonly deviceId: DeviceId;
  stepIndex = 0;
  startMs = 0;
  endMs = 0;
  stepMs = 0;
  numSeqs = 0;
  numPrefillTokens = 0;
  numDecodeTokens = 0;
  numQueued = 0;
  numRunning = 0;
  modelIds: readonly ModelId[] = [];
  kvPages: Int32Array = new Int32Array(0);
  kvUsedBlocks: Int32Array = new Int32Array(0);
  queuedByModel: Int32Array = new Int32Array(0);
  runningByModel: Int32Array = new Int32Array(0);
  /** Model slot of each modelIds entry. */
  private slots: Int32Array = new Int32Array(0);
  /** The per-model arrays describe the last fill (false: filled lazily by fillModels). */
  modelsFilled = false;

  constructor(deviceId: DeviceId) {
    this.deviceId = deviceId;
  }

  /** Models were added or removed: rebuild the per-model arrays (fresh arrays, old records stay valid). */
  setModels(models: readonly (ModelEntry | null)[]): void {
    const live = models.filter((m): m is ModelEntry => m !== null);
    this.modelIds = Object.freeze(live.map((m) => m.id));
    this.slots = Int32Array.from(live.map((m) => m.index));
    this.kvPages = new Int32Array(live.length);
    this.kvUsedBlocks = new Int32Array(live.length);
    this.queuedByModel = new Int32Array(live.length);
    this.runningByModel = new Int32Array(live.length);
    this.modelsFilled = false;
  }

  /** models: null leaves the per-model arrays for fillModels (nobody reads them now). */
  fill(stepIndex: number, startMs: number, endMs: number, stepMs: number, numSeqs: number, numPrefillTokens: number,
    numDecodeTokens: number, numQueued: number, numRunning: number, models: readonly (ModelEntry | null)[] | null): void {
    this.stepIndex = stepIndex;
    this.startMs = startMs;
    this.endMs = endMs;
    this.stepMs = stepMs;
    this.numSeqs = numSeqs;
    this.numPrefillTokens = numPrefillTokens;
    this.numDecodeTokens = numDecodeTokens;
    this.numQueued = numQueued;
    this.numRunning = numRunning;
    if (models === null) {
      this.modelsFilled = false;
      return;
    }
    this.fillModels(models);
  }

  fillModels(models: readonly (ModelEntry | null)[]): void {
    this.modelsFilled = true;
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) {
      const m = models[slots[i]!]!;
      const space = m.space;
      this.kvPages[i] = space.mappedPages;
      this.kvUsedBlocks[i] = space.usedBlocks;
      this.queuedByModel[i] = m.queue.size;
      this.runningByModel[i] = m.numRunning;
    }
  }
}
