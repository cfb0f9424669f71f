// The leader's view of one follower's log (etcd's Progress): how far it is known to match, what to send next,
// and how to send it. `probe` sends one append at a time until the follower's position is found;
// `replicate` streams appends optimistically with at most `inflightMax` unacknowledged; `snapshot` waits for
// an InstallSnapshot to land (and falls back to probing after a timeout, since the snapshot may be lost).
// Invariants: match < next; the inflight queue holds increasing last-indexes and never exceeds its bound.
// Pure: used only by the RaftNode of a leader.

import { assert } from '../assert.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append is outstanding, so wait for an answer or a heartbeat response. */
  probeSent = false;
  /** In snapshot state: the index of the snapshot sent, and ticks spent waiting for it. */
  pendingSnapshot = 0;
  snapshotWaitTicks = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Last index of each append in flight, oldest first (replicate state only). */
  private readonly inflight: number[] = [];

  constructor(
    next: number,
    private readonly inflightMax: number,
  ) {
    assert(next >= 1, 'progress next below 1');
    this.next = next;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflight.length >= this.inflightMax;
      case 'snapshot':
        return true;
    }
  }

  becomeProbe(): void {
    // Coming back from a snapshot, resume right after it if it is known to have landed.
    if (this.state === 'snapshot') {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = 'probe';
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight.length = 0;
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight.length = 0;
  }

  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.snapshotWaitTicks = 0;
    this.probeSent = false;
    this.inflight.length = 0;
  }

  /** An append carrying entries up to `lastIndex` was sent. */
  sentEntries(lastIndex: number): void {
    if (this.state === 'replicate') {
      assert(this.inflight.length < this.inflightMax, 'inflight appends over the bound');
      this.next = lastIndex + 1;
      this.inflight.push(lastIndex);
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** The follower acknowledged `index`; returns whether that is news. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    let freed = 0;
    while (freed < this.inflight.length && this.inflight[freed]! <= index) freed++;
    if (freed > 0) this.inflight.splice(0, freed);
    return updated;
  }

  /**
   * The follower rejected an append at `rejected`; `matchHint` is the highest index that may still match.
   * Returns false for a stale reject (one that answers an append older than the current position).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** A heartbeat response arrived: unblock a probe and make room for one more append if full. */
  heartbeatAnswered(): void {
    this.probeSent = false;
    if (this.state === 'replicate' && this.inflight.length >= this.inflightMax) this.inflight.shift();
  }
}
