/**
 * The simulator's clock: time moves only when the event loop pops the next event. Implements the
 * shared Clock, so schedulers read simulated time exactly as they read wall time in the server.
 */
import type { Clock } from "../core/clock.ts";

export class VirtualClock implements Clock {
  private us = 0;
  nowMs(): number {
    return this.us / 1000;
  }
  nowUs(): number {
    return this.us;
  }
  /** Move to an event's time. Time never goes back (a broken event queue would be a bug). */
  advanceToUs(us: number): void {
    if (us < this.us) throw new Error(`VirtualClock: time cannot go back (${us} < ${this.us} us)`);
    this.us = us;
  }
}
