// The Raft log of one node: the stable part read through `Storage` plus an unstable tail (entries and possibly
// a snapshot received from the leader) that a Ready hands out for persisting. Also tracks the commit and
// applied indexes.
// Invariants: the unstable entries start at `offset` and are contiguous; when unstable entries exist they
// supersede any stored entry at or after `offset`; applied <= committed <= lastIndex; a committed entry is
// never truncated (asserted).
// Pure: called only by the RaftNode that owns it.

import { assert } from '../assert.js';
import { entryBytes, type Storage } from './storage.js';
import type { Entry, Snapshot } from './types.js';

export class RaftLog {
  /** Snapshot received from the leader and not yet persisted. */
  unstableSnapshot: Snapshot | undefined = undefined;
  /** Entries not yet persisted; unstable[0] has index `offset`. */
  unstable: Entry[] = [];
  offset: number;
  committed: number;
  applied: number;

  constructor(readonly storage: Storage) {
    this.offset = storage.lastIndex() + 1;
    this.committed = storage.firstIndex() - 1;
    this.applied = storage.firstIndex() - 1;
  }

  firstIndex(): number {
    if (this.unstableSnapshot !== undefined) return this.unstableSnapshot.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.offset + this.unstable.length - 1;
    if (this.unstableSnapshot !== undefined) return this.unstableSnapshot.index;
    return this.storage.lastIndex();
  }

  /** The highest index that is durable (and so may be applied or counted for the leader's own match). */
  stableLastIndex(): number {
    if (this.unstableSnapshot !== undefined) return this.unstableSnapshot.index - 1;
    return this.offset - 1;
  }

  /** The term of `index`, or undefined when compacted away or beyond the end. */
  term(index: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (index === dummy) {
      return this.unstableSnapshot !== undefined ? this.unstableSnapshot.term : this.storage.snapshot().term;
    }
    if (index < dummy || index > this.lastIndex()) return undefined;
    if (this.unstable.length > 0 && index >= this.offset) return this.unstable[index - this.offset]!.term;
    return this.storage.term(index);
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, 'the last entry has no term');
    return t;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** The first entry of `entries` whose term differs from ours (or that we lack); 0 when all match. */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /** The largest index <= `index` whose term is <= `term` (or the first index we cannot see below). */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > 0) {
      const t = this.term(i);
      if (t === undefined || t <= term) break;
      i--;
    }
    return i;
  }

  /** Appends to the unstable tail, replacing everything from entries[0].index on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const after = entries[0]!.index;
    assert(after > this.committed, `append at ${after} would overwrite committed ${this.committed}`);
    assert(after <= this.lastIndex() + 1, `append at ${after} leaves a gap after ${this.lastIndex()}`);
    if (after === this.offset + this.unstable.length) {
      for (const e of entries) this.unstable.push(e);
    } else if (after <= this.offset) {
      // Replaces stored entries too: the shell truncates its stored suffix when it persists these.
      this.offset = after;
      this.unstable = entries.slice();
    } else {
      this.unstable = this.unstable.slice(0, after - this.offset);
      for (const e of entries) this.unstable.push(e);
    }
  }

  /** Entries in [lo, hi) up to `bytesMax` (at least one), or undefined if lo is compacted away. */
  slice(lo: number, hi: number, bytesMax: number): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    assert(hi <= this.lastIndex() + 1, `slice(..${hi}) beyond last ${this.lastIndex()}`);
    if (lo >= hi) return [];
    let out: Entry[] = [];
    let bytes = 0;
    if (lo < this.offset) {
      out = this.storage.entries(lo, Math.min(hi, this.offset), bytesMax);
      for (const e of out) bytes += entryBytes(e);
      if (out.length < Math.min(hi, this.offset) - lo) return out;
    }
    for (let i = Math.max(lo, this.offset); i < hi; i++) {
      const e = this.unstable[i - this.offset]!;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Committed, durable entries not yet handed to the application, up to `bytesMax` (at least one). */
  nextCommittedEntries(bytesMax: number): Entry[] {
    const hi = Math.min(this.committed, this.stableLastIndex());
    if (this.applied >= hi) return [];
    return this.slice(this.applied + 1, hi + 1, bytesMax) ?? [];
  }

  appliedTo(index: number): void {
    if (index <= this.applied) return;
    assert(index <= this.committed, `applied ${index} beyond committed ${this.committed}`);
    this.applied = index;
  }

  /** Replaces the log with a snapshot from the leader. */
  restore(snapshot: Snapshot): void {
    assert(snapshot.index > this.committed, 'restore to a snapshot that is not ahead of commit');
    this.unstableSnapshot = snapshot;
    this.unstable = [];
    this.offset = snapshot.index + 1;
    this.committed = snapshot.index;
  }

  /** The shell persisted entries up to (index, term): drop them from the unstable tail. */
  stableTo(index: number, term: number): void {
    if (this.unstable.length === 0 || index < this.offset) return;
    const e = this.unstable[index - this.offset];
    if (e === undefined || e.term !== term) return;
    this.unstable = this.unstable.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.unstableSnapshot !== undefined && this.unstableSnapshot.index === index) {
      this.unstableSnapshot = undefined;
      if (this.applied < index) this.applied = index;
    }
  }
}
