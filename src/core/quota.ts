// Byte-rate quotas per principal (Kafka's producer_byte_rate / consumer_byte_rate): one token bucket per
// principal, refilled at `bytesPerS` up to a burst of `burstMs` worth of bytes. A request is admitted while its
// principal's bucket is not in debt, and then charged its full size (a request cannot be cut), which may put
// the bucket in debt; the principal waits until the refill has repaid it. Over time a principal is therefore
// held to `bytesPerS` plus one burst plus one request.
//
// Invariants: at most `entriesMax` buckets are kept. A bucket that has refilled to its burst holds nothing a new
// bucket would not, so it is dropped by `evictIdle`; when the table is full of busy buckets, the least recently
// used one is dropped (its principal then starts with a full burst again: a bounded loss, never unbounded
// memory). The map's order is least recently used first (an entry is re-inserted when touched).
//
// Pure: no clock (times are passed in, in ms), no I/O. Owned by one thread (the acceptor).
import { assert } from './assert.js';
import { TokenBucket } from './token-bucket.js';

export interface QuotaOptions {
  /** Bytes a second each principal may move; must be positive (a quota of 0 means none: build no table). */
  readonly bytesPerS: number;
  /** Burst allowed after idleness, as that many milliseconds of the rate (Kafka samples over ~1 s windows). */
  readonly burstMs: number;
  /** Buckets kept at most (one per principal seen recently). */
  readonly entriesMax: number;
}

export class QuotaTable {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly burstBytes: number;

  constructor(readonly options: QuotaOptions) {
    assert(options.bytesPerS > 0, 'a quota needs a positive byte rate');
    assert(options.burstMs > 0 && options.entriesMax > 0, 'a quota needs a positive burst and table size');
    // A burst of at least one byte, so that a tiny rate still admits something.
    this.burstBytes = Math.max(1, Math.floor((options.bytesPerS * options.burstMs) / 1000));
  }

  get size(): number {
    return this.buckets.size;
  }

  /**
   * Milliseconds `principal` must wait before its next request is admitted; 0 when it may go now. Does not
   * create a bucket (a principal with none has its full burst).
   */
  delayMs(principal: string, nowMs: number): number {
    const bucket = this.buckets.get(principal);
    if (bucket === undefined) return 0;
    const tokens = bucket.available(nowMs);
    if (tokens > 0) return 0;
    // The refill must bring the bucket from `tokens` (<= 0) to 1.
    return Math.ceil(((1 - tokens) * 1000) / this.options.bytesPerS);
  }

  /** Charges `bytes` to `principal` (the bucket may go into debt). */
  charge(principal: string, bytes: number, nowMs: number): void {
    assert(Number.isFinite(bytes) && bytes >= 0, `a quota charge must be a byte count, got ${bytes}`);
    let bucket = this.buckets.get(principal);
    if (bucket === undefined) {
      if (this.buckets.size >= this.options.entriesMax) this.makeRoom(nowMs);
      bucket = new TokenBucket(this.options.bytesPerS, this.burstBytes, nowMs);
    } else {
      // Least recently used first: a touched entry moves to the end.
      this.buckets.delete(principal);
    }
    bucket.spend(bytes, nowMs);
    this.buckets.set(principal, bucket);
    assert(this.buckets.size <= this.options.entriesMax, 'the quota table is over its bound');
  }

  /** Drops every bucket that has refilled to its burst; returns how many were dropped. */
  evictIdle(nowMs: number): number {
    let dropped = 0;
    for (const [principal, bucket] of this.buckets) {
      if (bucket.available(nowMs) >= this.burstBytes) {
        this.buckets.delete(principal);
        dropped++;
      }
    }
    return dropped;
  }

  private makeRoom(nowMs: number): void {
    if (this.evictIdle(nowMs) > 0) return;
    const oldest = this.buckets.keys().next();
    if (oldest.done !== true) this.buckets.delete(oldest.value);
  }
}

/**
 * The seconds a client is told to wait (Retry-After) for a delay in ms: whole seconds, at least 1, since
 * HTTP's Retry-After has no finer unit.
 */
export function retryAfterSecondsOf(delayMs: number): number {
  return Math.max(1, Math.ceil(delayMs / 1000));
}
