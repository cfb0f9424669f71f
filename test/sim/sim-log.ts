// The simulated log of one partition replica on one broker's simulated disk, for the replication simulation.
// Records are unique numbers (a producer's value ids); a batch is { baseOffset, epoch, values } as the real
// record-batch header carries them. The log keeps its records flat (one value and one leader epoch per
// offset, plus a flag where each batch starts), so reads, truncations and comparisons are index arithmetic.
//
// Invariants (asserted): offsets are dense from the log start; the durable end never passes the log end; a
// batch appended from a leader starts exactly at the log end. Each log owns the EpochCache its replica core
// uses: an appended batch's epoch is assigned into it (as the real log does from each batch header), a
// truncation cuts it with the log, and a crash REBUILDS it from the batches that survived, as the real log
// does on recovery. Entries the core itself assigned (a new leader's epoch at its log end) survive only as
// long as the process does.
//
// Disk model: an append is in the page cache until a flush completes; `startFlush` captures the log end at
// the moment the fsync starts and `completeFlush` makes exactly that much durable (appends made while the
// fsync runs are not covered; a truncation during it lowers what it covers). Truncation and reset are
// durable at once (a real log truncates and fsyncs before it goes on). A crash loses everything past the
// durable end, or with `tornRate` only part of the unsynced tail, cut at a batch boundary.
// Single-threaded; owned by the simulation.

import { EpochCache } from '../../src/core/replication/epoch-cache.js';
import type { SimRandom } from './raft-random.js';

export interface SimBatch {
  readonly baseOffset: number;
  readonly epoch: number;
  readonly values: readonly number[];
}

export class SimLogError extends Error {
  override readonly name = 'SimLogError';
}

function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new SimLogError(what);
}

export class SimLog {
  readonly epochs = new EpochCache();
  private start = 0;
  /** Record values by (offset - start). */
  private readonly vals: number[] = [];
  /** The leader epoch stamped in each record's batch, by (offset - start). */
  private readonly eps: number[] = [];
  /** Whether a batch starts at each offset, by (offset - start). */
  private readonly starts: boolean[] = [];
  private durable = 0;
  /** The log end captured when the fsync in progress started; -1 when none runs. */
  private flushing = -1;

  get logStartOffset(): number {
    return this.start;
  }

  get logEndOffset(): number {
    return this.start + this.vals.length;
  }

  get durableEndOffset(): number {
    return this.durable;
  }

  get flushInProgress(): boolean {
    return this.flushing >= 0;
  }

  /** The value at `offset`, or undefined when the log does not hold it. */
  valueAt(offset: number): number | undefined {
    return this.vals[offset - this.start];
  }

  /** The leader epoch stamped at `offset`, or -1 when the log does not hold it. */
  epochAt(offset: number): number {
    return this.eps[offset - this.start] ?? -1;
  }

  /** Whether the log holds `value` at `offset` durably. */
  holdsDurably(offset: number, value: number): boolean {
    return offset >= this.start && offset < this.durable && this.vals[offset - this.start] === value;
  }

  /** A leader appends one batch stamped with its epoch. */
  appendAsLeader(epoch: number, values: readonly number[]): SimBatch {
    const batch: SimBatch = { baseOffset: this.logEndOffset, epoch, values };
    this.push(batch);
    return batch;
  }

  /** A follower appends the leader's batches verbatim, with their epochs. */
  appendBatches(batches: readonly SimBatch[]): void {
    for (const b of batches) {
      check(
        b.baseOffset === this.logEndOffset,
        `batch at ${b.baseOffset} appended at log end ${this.logEndOffset}`,
      );
      this.push(b);
    }
  }

  private push(b: SimBatch): void {
    check(b.values.length > 0, 'an empty batch');
    for (let i = 0; i < b.values.length; i++) {
      this.vals.push(b.values[i]!);
      this.eps.push(b.epoch);
      this.starts.push(i === 0);
    }
    this.epochs.assign(b.epoch, b.baseOffset);
  }

  /**
   * Up to `batchesMax` batches from `fromOffset` to `toOffset` (exclusive, at most the log end); a batch cut
   * by either bound is sliced.
   */
  read(fromOffset: number, toOffset: number, batchesMax: number): SimBatch[] {
    check(
      fromOffset >= this.start && fromOffset <= this.logEndOffset,
      `read at ${fromOffset} outside the log`,
    );
    const out: SimBatch[] = [];
    let i = fromOffset - this.start;
    const n = Math.min(this.vals.length, toOffset - this.start);
    while (i < n && out.length < batchesMax) {
      const first = i;
      i++;
      while (i < n && !this.starts[i]) i++;
      out.push({
        baseOffset: this.start + first,
        epoch: this.eps[first]!,
        values: this.vals.slice(first, i),
      });
    }
    return out;
  }

  /** Starts an fsync of everything written so far; false when one is running or nothing is unsynced. */
  startFlush(): boolean {
    if (this.flushing >= 0 || this.durable >= this.logEndOffset) return false;
    this.flushing = this.logEndOffset;
    return true;
  }

  /** The fsync started by `startFlush` completed. */
  completeFlush(): void {
    if (this.flushing < 0) return;
    if (this.flushing > this.durable) this.durable = this.flushing;
    this.flushing = -1;
  }

  /** Cuts the log (and its epoch cache) at `offset`; at or past the end it only cuts the epoch cache. */
  truncateTo(offset: number): void {
    check(offset >= this.start, `truncate to ${offset} below the log start ${this.start}`);
    if (offset < this.logEndOffset) {
      const keep = offset - this.start;
      this.vals.length = keep;
      this.eps.length = keep;
      this.starts.length = keep;
    }
    if (this.durable > this.logEndOffset) this.durable = this.logEndOffset;
    if (this.flushing > this.logEndOffset) this.flushing = this.logEndOffset;
    // Kafka does this even when nothing is cut: a trailing epoch that wrote nothing must go too.
    this.epochs.truncateFromEnd(Math.min(offset, this.logEndOffset));
  }

  /** Drops everything; the log continues at `offset`. */
  reset(offset: number): void {
    this.vals.length = 0;
    this.eps.length = 0;
    this.starts.length = 0;
    this.start = offset;
    this.durable = offset;
    this.flushing = -1;
    this.epochs.clear();
  }

  /**
   * The broker died: whatever was not fsynced is lost (with `tornRate`, the write may have reached the disk
   * up to some batch boundary past the durable end). The epoch cache is rebuilt from the surviving batches.
   * Returns how many records were lost.
   */
  crash(random: SimRandom, tornRate: number): number {
    let keep = this.durable;
    const end = this.logEndOffset;
    if (end > keep && random.chance(tornRate)) {
      const boundaries: number[] = [];
      for (let o = keep + 1; o < end; o++) if (this.starts[o - this.start]) boundaries.push(o);
      boundaries.push(end);
      keep = random.pick(boundaries);
    }
    const lost = end - keep;
    const k = keep - this.start;
    this.vals.length = k;
    this.eps.length = k;
    this.starts.length = k;
    this.durable = keep;
    this.flushing = -1;
    this.epochs.clear();
    for (let i = 0; i < k; i++) if (this.starts[i]) this.epochs.assign(this.eps[i]!, this.start + i);
    return lost;
  }

  /** Whether the epoch cache says what the batch headers say for every batch from `fromOffset` on. */
  epochCacheAgreesFrom(fromOffset: number): boolean {
    for (let o = Math.max(fromOffset, this.start); o < this.logEndOffset; o++) {
      if (this.starts[o - this.start] && this.epochs.epochAt(o) !== this.eps[o - this.start]) return false;
    }
    return true;
  }

  /** The records (values and epochs by offset from the log start): a view for end-of-run comparisons, not a copy. */
  records(): { start: number; values: readonly number[]; epochs: readonly number[] } {
    return { start: this.start, values: this.vals, epochs: this.eps };
  }
}
