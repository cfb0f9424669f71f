// Bounds the memory that sealed segments' offset and time indexes take on one thread. Each entry of a sparse
// index costs 20 B in memory (8 B offset entry, 12 B time entry) per `indexIntervalBytes` (4 KiB) of log, so
// indexes held for every segment grow with the log: 10 GiB of small batches is about 50 MB. A sealed segment's
// indexes are complete in their files (written and synced when it was sealed), so they can be dropped here and
// read back when a fetch or a time lookup next needs them; the least recently used go first. The active segment
// of each log is never tracked (it is still growing and its newest entries are not in the files yet).
// Owned by one thread: a partition worker shares one cache among all its logs; a log opened without one gets
// its own unbounded cache, which keeps everything (tests, tools).
import { assert } from '../core/assert.js';

/** What the cache can drop: a sealed segment's indexes. */
export interface DroppableIndexes {
  /** Bytes its indexes take in memory now. */
  readonly indexBytes: number;
  /** Drops the in-memory indexes; false when they cannot be read back (not all entries are in the files). */
  dropIndexes(): boolean;
}

/** Bytes of sealed-segment indexes a partition worker keeps in memory: about 13 segments' worth of 128 MiB. */
export const INDEX_CACHE_BYTES_PER_WORKER = 8 * 1024 * 1024;

export class SegmentIndexCache {
  /** Resident indexes in use order, least recently used first, with the bytes each was admitted with. */
  private readonly resident = new Map<DroppableIndexes, number>();
  private residentBytesValue = 0;
  /** Indexes dropped to stay within the budget (a counter). */
  drops = 0;
  /** Indexes read back from their files (a counter). */
  loads = 0;

  constructor(readonly budgetBytes: number) {
    assert(budgetBytes >= 0, 'index cache budget must not be negative');
  }

  get residentBytes(): number {
    return this.residentBytesValue;
  }

  get residentCount(): number {
    return this.resident.size;
  }

  /**
   * `holder`'s indexes are in memory (just sealed, or read back): counts them as most recently used, then drops
   * the least recently used others until the total is within the budget.
   */
  admit(holder: DroppableIndexes): void {
    this.forget(holder);
    const bytes = holder.indexBytes;
    this.resident.set(holder, bytes);
    this.residentBytesValue += bytes;
    if (this.residentBytesValue <= this.budgetBytes) return;
    for (const [other, otherBytes] of this.resident) {
      if (this.residentBytesValue <= this.budgetBytes) break;
      if (other === holder) continue;
      if (!other.dropIndexes()) continue;
      this.resident.delete(other);
      this.residentBytesValue -= otherBytes;
      this.drops++;
    }
  }

  /** Marks `holder` as just used, if it is tracked. */
  touch(holder: DroppableIndexes): void {
    const bytes = this.resident.get(holder);
    if (bytes === undefined) return;
    this.resident.delete(holder);
    this.resident.set(holder, bytes);
  }

  /** Stops tracking `holder` (closed, deleted, or active again after a truncation). */
  forget(holder: DroppableIndexes): void {
    const bytes = this.resident.get(holder);
    if (bytes === undefined) return;
    this.resident.delete(holder);
    this.residentBytesValue -= bytes;
  }
}
