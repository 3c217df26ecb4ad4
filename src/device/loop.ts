/**
 * The async driver that runs a DeviceScheduler against a real Executor (the server's side; the
 * simulator drives the same scheduler from its event queue instead). One loop per device:
 *
 *   nextAction → step:   await executor.execute(plan)      → completeStep / failStep
 *              → load:   await executor.loadWeights(...)   → completeLoad / failLoad
 *                        (overlapLoads: not awaited; the loop asks for steps meanwhile, and the
 *                        load's settlement reports back and wakes the loop)
 *              → unload: executor.unloadWeights(modelId)   (memory already freed by the scheduler)
 *              → idle:   wait for the scheduler's wake signal or wakeAtMs
 *   and between actions, yield through host.defer so sockets and timers run (a fast executor
 *   that resolves at once would otherwise starve the event loop on microtasks).
 *
 * Timers live outside src/device (the layer test forbids them here): the caller passes a LoopHost
 * built on setImmediate / setTimeout. The memory's weight-move notifications are forwarded to the
 * executor (moveWeights); they fire inside nextAction (allocWeights), i.e. between steps.
 */
import type { Clock } from "../core/clock.ts";
import type { ModelId } from "../core/ids.ts";
import type { Executor } from "../core/records.ts";
import type { DeviceMemoryApi } from "../memory/types.ts";
import type { DeviceScheduler } from "./device-scheduler.ts";

export interface LoopHost {
  /** Run fn on a later macrotask (the gateway passes setImmediate). */
  defer(fn: () => void): void;
  /** Run fn after delayMs unless the returned cancel is called first (setTimeout / clearTimeout). */
  after(delayMs: number, fn: () => void): () => void;
}

export interface DeviceLoopOptions {
  readonly scheduler: DeviceScheduler;
  readonly executor: Executor;
  readonly memory: DeviceMemoryApi;
  readonly clock: Clock;
  readonly host: LoopHost;
  /** A broken invariant inside the scheduler stops the loop and lands here (default: rethrown from done). */
  readonly onError?: (error: unknown) => void;
}

export class DeviceLoop {
  private readonly sched: DeviceScheduler;
  private readonly executor: Executor;
  private readonly clock: Clock;
  private readonly host: LoopHost;
  private readonly onError: ((error: unknown) => void) | null;
  private stopping = false;
  private started = false;
  /** Set by the wake listener; cleared before each nextAction so no wake is lost. */
  private workSignalled = false;
  private wakeWaiter: (() => void) | null = null;
  private idleWaiters: (() => void)[] = [];
  private isIdleNow = false;
  private donePromise: Promise<void> | null = null;
  /** A background load (overlapLoads) has not reported back yet. */
  private loadRunning = false;
  /** The last background load, settled after its completeLoad / failLoad ran (awaited at stop). */
  private lastLoad: Promise<void> = Promise.resolve();
  private loopError: { readonly error: unknown } | null = null;

  constructor(opts: DeviceLoopOptions) {
    this.sched = opts.scheduler;
    this.executor = opts.executor;
    this.clock = opts.clock;
    this.host = opts.host;
    this.onError = opts.onError ?? null;
    opts.memory.onWeightsMoved((modelId, _old, newByteOffset) => this.executor.moveWeights(modelId, newByteOffset));
    this.sched.setWakeListener(() => this.signal());
  }

  /** Start driving; `done` settles when stop() completes or the loop fails. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.donePromise = this.run();
  }

  get done(): Promise<void> {
    return this.donePromise ?? Promise.resolve();
  }

  /** Finish the outstanding actions (a background load too), then stop (queued requests stay in the scheduler). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.signal();
    await this.done;
  }

  /** Resolves the next time the loop has nothing to do, no load running either (tests, graceful drain). */
  whenIdle(): Promise<void> {
    if (this.isIdleNow && !this.workSignalled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private signal(): void {
    this.workSignalled = true;
    const w = this.wakeWaiter;
    if (w !== null) {
      this.wakeWaiter = null;
      w();
    }
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopping) {
        this.workSignalled = false;
        const action = this.sched.nextAction(this.clock.nowMs());
        this.isIdleNow = false;
        switch (action.kind) {
          case "step": {
            let result;
            try {
              result = await this.executor.execute(action.plan);
            } catch (e) {
              this.sched.failStep(e, this.clock.nowMs());
              break;
            }
            this.sched.completeStep(result, this.clock.nowMs());
            break;
          }
          case "load": {
            if (this.sched.config.overlapLoads) {
              // Set before the call: a load that fails synchronously has reported back when it returns.
              this.loadRunning = true;
              this.lastLoad = this.loadInBackground(action.modelId, action.byteOffset);
              break;
            }
            let r;
            try {
              r = await this.executor.loadWeights(action.modelId, action.byteOffset);
            } catch (e) {
              this.sched.failLoad(action.modelId, e, this.clock.nowMs());
              break;
            }
            this.sched.completeLoad(action.modelId, r.durationMs, this.clock.nowMs());
            break;
          }
          case "unload":
            this.executor.unloadWeights(action.modelId);
            break;
          case "idle":
            await this.waitForWork(action.wakeAtMs);
            break;
          default: {
            const never: never = action;
            throw new Error(`unknown device action ${JSON.stringify(never)}`);
          }
        }
        await new Promise<void>((resolve) => this.host.defer(resolve));
        if (this.loopError !== null) throw this.loopError.error;
      }
      await this.lastLoad;
      if (this.loopError !== null) throw this.loopError.error;
    } catch (e) {
      this.stopping = true;
      this.releaseIdleWaiters();
      await this.lastLoad;
      if (this.onError !== null) this.onError(e);
      else throw e;
    }
    this.releaseIdleWaiters();
  }

  /**
   * overlapLoads: copy the weights while the loop goes on planning steps; report the outcome to the
   * scheduler when it settles (between the loop's synchronous sections: the scheduler accepts
   * completeLoad while a step is outstanding), then wake the loop.
   */
  private async loadInBackground(modelId: ModelId, byteOffset: number): Promise<void> {
    try {
      let r;
      try {
        r = await this.executor.loadWeights(modelId, byteOffset);
      } catch (e) {
        this.sched.failLoad(modelId, e, this.clock.nowMs());
        return;
      }
      this.sched.completeLoad(modelId, r.durationMs, this.clock.nowMs());
    } catch (e) {
      // A broken invariant: stop the loop the way a synchronous one would.
      this.loopError = { error: e };
      this.stopping = true;
    } finally {
      this.loadRunning = false;
      this.signal();
    }
  }

  private waitForWork(wakeAtMs: number | null): Promise<void> {
    if (this.workSignalled || this.stopping) return Promise.resolve();
    if (!this.loadRunning) {
      this.isIdleNow = true;
      this.releaseIdleWaiters();
    }
    return new Promise<void>((resolve) => {
      let cancelTimer: (() => void) | null = null;
      this.wakeWaiter = () => {
        if (cancelTimer !== null) cancelTimer();
        resolve();
      };
      if (wakeAtMs !== null) {
        const delay = Math.max(0, wakeAtMs - this.clock.nowMs());
        cancelTimer = this.host.after(delay, () => {
          this.wakeWaiter = null;
          resolve();
        });
      }
    });
  }

  private releaseIdleWaiters(): void {
    const ws = this.idleWaiters;
    if (ws.length === 0) return;
    this.idleWaiters = [];
    for (const w of ws) w();
  }
}
