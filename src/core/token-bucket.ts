// A token bucket over bytes, with the time passed in: `rate` tokens a second accrue up to `burst`; `take` hands
// out at most what is there. Used by a partition worker to throttle what it sends to replicas that are catching
// up (a partition being moved, a follower far behind), Kafka's leader.replication.throttled.rate.
// Pure: no clock, no I/O; owned by one thread.
import { assert } from './assert.js';

export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  /** Starts with `initial` tokens (full when absent); a negative `nowMs` starts the clock at the first call. */
  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    nowMs: number,
    initial = burst,
  ) {
    assert(ratePerS > 0 && burst > 0, 'a token bucket needs a positive rate and burst');
    this.tokens = Math.min(burst, initial);
    this.lastMs = nowMs;
  }

  /** Tokens available at `nowMs` (refilled first). */
  available(nowMs: number): number {
    if (this.lastMs < 0) this.lastMs = nowMs;
    if (nowMs > this.lastMs) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.lastMs) * this.ratePerS) / 1000);
      this.lastMs = nowMs;
    }
    return Math.floor(this.tokens);
  }

  /** Spends `amount` (it may be more than available: a read cannot be cut inside a batch; the debt is repaid). */
  spend(amount: number, nowMs: number): void {
    this.available(nowMs);
    this.tokens -= amount;
  }
}
