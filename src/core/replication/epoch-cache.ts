// The leader-epoch cache of one partition replica (Kafka's LeaderEpochFileCache, KIP-101 and KIP-279): the list
// of (leader epoch, start offset) pairs of its log, oldest first. Entry (e, s) says: the first record written
// by the leader of epoch e is at offset s, and every record from s up to the next entry's start offset was
// written in epoch e. It is how two replicas find where their logs part: the follower asks the leader for the
// end offset of its own latest epoch and truncates there, never to its own high watermark.
//
// Invariants (asserted): epochs strictly increase, start offsets never decrease (an epoch that wrote nothing
// shares its start offset with the next one: a leader records its epoch at its log end when elected, before
// it has appended anything), every epoch is >= 0 and every offset a safe integer.
//
// Persistence is the owner's: `entries()` is what a checkpoint stores, `fromEntries` reads it back, and the
// log rebuilds entries for its unflushed tail from the epoch stamped in each batch header.
// Pure: no I/O, no clock; owned by one thread (a partition worker, or the simulation).
import { assert } from '../assert.js';

export interface EpochEntry {
  readonly epoch: number;
  readonly startOffset: number;
}

/** The answer to "where does epoch e end in this log?" (Kafka's OffsetsForLeaderEpoch). */
export interface EpochEndOffset {
  /** The largest epoch in the cache that is <= the one asked about; -1 when there is none. */
  readonly epoch: number;
  /**
   * The start offset of the first epoch after `epoch` (where `epoch`'s records end), or the log end offset
   * when `epoch` is the latest; -1 when `epoch` is -1.
   */
  readonly endOffset: number;
}

export const UNDEFINED_EPOCH_END: EpochEndOffset = { epoch: -1, endOffset: -1 };

export class EpochCache {
  private list: EpochEntry[] = [];
  private changes = 0;

  /** Grows by one with every change: an owner that persists the cache compares it with what it wrote. */
  get version(): number {
    return this.changes;
  }

  /** Replaces the whole content (an owner loading its checkpoint into a cache others hold). */
  replaceWith(entries: readonly EpochEntry[]): void {
    this.list = [];
    for (const entry of entries) this.assign(entry.epoch, entry.startOffset);
    this.changes++;
  }

  static fromEntries(entries: readonly EpochEntry[]): EpochCache {
    const cache = new EpochCache();
    for (const entry of entries) cache.assign(entry.epoch, entry.startOffset);
    return cache;
  }

  entries(): readonly EpochEntry[] {
    return this.list;
  }

  get size(): number {
    return this.list.length;
  }

  /** The latest epoch, or -1 for an empty cache. */
  get latestEpoch(): number {
    return this.list.at(-1)?.epoch ?? -1;
  }

  /** The start offset of `epoch`, or -1 when the cache has no entry for exactly that epoch. */
  startOffsetOf(epoch: number): number {
    for (let i = this.list.length - 1; i >= 0; i--) {
      const entry = this.list[i]!;
      if (entry.epoch === epoch) return entry.startOffset;
      if (entry.epoch < epoch) return -1;
    }
    return -1;
  }

  /**
   * Records that epoch `epoch` starts at `startOffset`. Returns true when the cache changed. An epoch older
   * than the latest is ignored (its batches were already accounted for); the latest epoch again keeps its
   * first start offset.
   */
  assign(epoch: number, startOffset: number): boolean {
    assert(Number.isSafeInteger(epoch) && epoch >= 0, `bad leader epoch ${epoch}`);
    assert(Number.isSafeInteger(startOffset) && startOffset >= 0, `bad epoch start offset ${startOffset}`);
    const last = this.list.at(-1);
    if (last !== undefined && epoch <= last.epoch) return false;
    assert(
      last === undefined || startOffset >= last.startOffset,
      `epoch ${epoch} would start at ${startOffset}, before epoch ${last?.epoch} at ${last?.startOffset}`,
    );
    this.list.push({ epoch, startOffset });
    this.changes++;
    return true;
  }

  /**
   * Where `epoch` ends in a log whose end offset is `logEndOffset`: the largest cached epoch <= `epoch`, and
   * the start of the epoch after it (or the log end when it is the latest). Kafka's endOffsetFor.
   */
  endOffsetFor(epoch: number, logEndOffset: number): EpochEndOffset {
    if (epoch < 0) return UNDEFINED_EPOCH_END;
    for (let i = this.list.length - 1; i >= 0; i--) {
      const entry = this.list[i]!;
      if (entry.epoch > epoch) continue;
      const next = this.list[i + 1];
      return { epoch: entry.epoch, endOffset: next === undefined ? logEndOffset : next.startOffset };
    }
    return UNDEFINED_EPOCH_END;
  }

  /** The epoch the record at `offset` was written in, or -1 when the cache does not cover it. */
  epochAt(offset: number): number {
    for (let i = this.list.length - 1; i >= 0; i--) {
      if (this.list[i]!.startOffset <= offset) return this.list[i]!.epoch;
    }
    return -1;
  }

  /** After the log was truncated to `endOffset`: drops the epochs that start at or after it. */
  truncateFromEnd(endOffset: number): boolean {
    const before = this.list.length;
    while (this.list.length > 0 && this.list.at(-1)!.startOffset >= endOffset) this.list.pop();
    if (this.list.length === before) return false;
    this.changes++;
    return true;
  }

  /**
   * After the log start moved to `startOffset`: epochs that ended before it go; the one it falls in now
   * starts there (Kafka keeps it so that its end offset can still be answered).
   */
  truncateFromStart(startOffset: number): boolean {
    let changed = false;
    while (this.list.length > 1 && this.list[1]!.startOffset <= startOffset) {
      this.list.shift();
      changed = true;
    }
    const first = this.list[0];
    if (first !== undefined && first.startOffset < startOffset) {
      this.list[0] = { epoch: first.epoch, startOffset };
      changed = true;
    }
    if (changed) this.changes++;
    return changed;
  }

  /** Empties the cache (a log truncated fully, to be refilled from the leader). */
  clear(): void {
    if (this.list.length > 0) this.changes++;
    this.list = [];
  }
}
