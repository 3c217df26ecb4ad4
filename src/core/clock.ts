/**
 * Time is injected. The server passes a MonotonicClock; the simulator passes a VirtualClock.
 * Schedulers, memory and policies read time only through this interface so both worlds decide alike.
 */
export interface Clock {
  /** Milliseconds since an arbitrary, fixed origin; monotonic, may be fractional. */
  nowMs(): number;
}

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  private t: number;
  constructor(startMs = 0) {
    this.t = startMs;
  }
  nowMs(): number {
    return this.t;
  }
  advance(ms: number): void {
    if (!(ms >= 0)) throw new Error(`ManualClock.advance: ms must be >= 0, got ${ms}`);
    this.t += ms;
  }
  set(ms: number): void {
    if (!(ms >= this.t)) throw new Error(`ManualClock.set: time cannot go back (${ms} < ${this.t})`);
    this.t = ms;
  }
}
