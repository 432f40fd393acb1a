// Time comes from a clock the caller holds, so expiry can be tested by moving time forward
// instead of sleeping. Every statement that compares against "now" takes it as a parameter.

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  private ms: number;

  constructor(start: Date | number = Date.UTC(2030, 0, 1)) {
    this.ms = typeof start === 'number' ? start : start.getTime();
  }

  now(): Date {
    return new Date(this.ms);
  }

  advanceSeconds(seconds: number): void {
    this.ms += seconds * 1000;
  }
}
