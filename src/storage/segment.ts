// One segment of a partition log: the `.log` file of whole record batches starting at `baseOffset`, its
// sparse offset index (`.index`) and its time index (`.timeindex`), all named by the 20-digit zero-padded
// base offset (Kafka's naming, so a directory listing sorts in offset order). The file formats are described
// in `src/core/log/record-batch.ts` and `src/core/log/segment-index.ts`.
//
// Invariants: the `.log` holds exactly `sizeBytes` bytes of valid, offset-contiguous batches covering
// [baseOffset, nextOffset); index entries point at batch starts below `sizeBytes`; the first
// `persistedOffsetEntries` / `persistedTimeEntries` entries are written to the index files, the rest are only
// in memory until `persistIndexes`. A sealed segment's indexes may be dropped from memory by the thread's
// `SegmentIndexCache` and are read back from their files when next used. Index files are written after the log data they describe and fsynced
// before a recovery-point checkpoint that trusts them.
// Called only by the PartitionLog that owns it, on that log's one thread.
import { join } from 'node:path';
import { assert } from '../core/assert.js';
import {
  OFFSET_INDEX_ENTRY_BYTES,
  OffsetIndex,
  TIME_INDEX_ENTRY_BYTES,
  TimeIndex,
} from '../core/log/segment-index.js';
import type { Disk, Fd } from './disk.js';
import type { SegmentIndexCache } from './index-cache.js';

export const LOG_SUFFIX = '.log';
export const INDEX_SUFFIX = '.index';
export const TIME_INDEX_SUFFIX = '.timeindex';
const segmentNamePattern = /^(\d{20})\.(log|index|timeindex)$/;

/** `00000000000000000042` for 42. */
export function segmentFileStem(baseOffset: number): string {
  assert(Number.isSafeInteger(baseOffset) && baseOffset >= 0, `bad segment base offset ${baseOffset}`);
  return baseOffset.toString().padStart(20, '0');
}

/** The base offset and kind of a segment file name, or null for any other name. */
export function parseSegmentFileName(
  name: string,
): { readonly baseOffset: number; readonly kind: 'log' | 'index' | 'timeindex' } | null {
  const match = segmentNamePattern.exec(name);
  if (match === null) return null;
  const baseOffset = Number(match[1]);
  if (!Number.isSafeInteger(baseOffset)) return null;
  return { baseOffset, kind: match[2] as 'log' | 'index' | 'timeindex' };
}

export class Segment {
  readonly logPath: string;
  readonly indexPath: string;
  readonly timeIndexPath: string;
  sizeBytes = 0;
  /** Bytes of the `.log` known to be durable. */
  flushedSizeBytes = 0;
  nextOffset: number;
  /** Largest record timestamp in the segment; -Infinity while empty. */
  maxTimestampMs = Number.NEGATIVE_INFINITY;
  /** First timestamp of the first batch (the segment's age for time-based rolling); null while empty. */
  firstTimestampMs: number | null = null;
  persistedOffsetEntries = 0;
  persistedTimeEntries = 0;
  private closed = false;
  /** The indexes in memory; null while dropped by the index cache (a sealed segment only). */
  private offsetIndexValue: OffsetIndex | null = new OffsetIndex();
  private timeIndexValue: TimeIndex | null = new TimeIndex();
  /** The cache that may drop this segment's indexes: set while the segment is sealed. */
  private residency: SegmentIndexCache | null = null;

  private constructor(
    private readonly disk: Disk,
    readonly baseOffset: number,
    dir: string,
    readonly logFd: Fd,
    readonly indexFd: Fd,
    readonly timeIndexFd: Fd,
  ) {
    const stem = segmentFileStem(baseOffset);
    this.logPath = join(dir, stem + LOG_SUFFIX);
    this.indexPath = join(dir, stem + INDEX_SUFFIX);
    this.timeIndexPath = join(dir, stem + TIME_INDEX_SUFFIX);
    this.nextOffset = baseOffset;
  }

  /** Opens (creating what is missing) the three files of the segment at `baseOffset`. */
  static open(disk: Disk, dir: string, baseOffset: number): Segment {
    const stem = join(dir, segmentFileStem(baseOffset));
    const fds: Fd[] = [];
    try {
      for (const suffix of [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX])
        fds.push(disk.open(stem + suffix, true));
    } catch (error) {
      // No descriptor outlives a failed open (ENOSPC creating a file, EMFILE).
      for (const fd of fds) disk.close(fd);
      throw error;
    }
    return new Segment(disk, baseOffset, dir, fds[0]!, fds[1]!, fds[2]!);
  }

  /** The sparse offset index, read back from its file first if the index cache dropped it. */
  get offsetIndex(): OffsetIndex {
    this.useIndexes();
    return this.offsetIndexValue!;
  }

  set offsetIndex(index: OffsetIndex) {
    this.offsetIndexValue = index;
  }

  /** The time index, read back from its file first if the index cache dropped it. */
  get timeIndex(): TimeIndex {
    this.useIndexes();
    return this.timeIndexValue!;
  }

  set timeIndex(index: TimeIndex) {
    this.timeIndexValue = index;
  }

  /** Bytes the indexes take in memory now (0 while dropped). */
  get indexBytes(): number {
    return (this.offsetIndexValue?.residentBytes ?? 0) + (this.timeIndexValue?.residentBytes ?? 0);
  }

  /** Makes both indexes resident (read back if dropped) and, for a sealed segment, the most recently used. */
  private useIndexes(): void {
    if (this.offsetIndexValue === null) this.loadIndexes();
    else if (this.residency !== null) this.residency.touch(this);
  }

  /**
   * The segment will take no more batches (a later segment follows it) and its indexes are written and synced:
   * `cache` may drop them from memory from now on. The arrays give back their spare capacity.
   */
  seal(cache: SegmentIndexCache): void {
    assert(!this.closed, 'sealing a closed segment');
    const offsetIndex = this.offsetIndex;
    const timeIndex = this.timeIndex;
    offsetIndex.trimCapacity();
    timeIndex.trimCapacity();
    this.residency = cache;
    cache.admit(this);
  }

  /** The segment takes batches again (a truncation made it the active one): its indexes stay in memory. */
  unseal(): void {
    if (this.residency === null) return;
    // Read back first, while the cache still vouches for the files.
    this.useIndexes();
    this.residency.forget(this);
    this.residency = null;
  }

  /** For the index cache: drops the in-memory indexes if every entry is in the files. */
  dropIndexes(): boolean {
    if (this.closed || this.offsetIndexValue === null || this.timeIndexValue === null) return false;
    if (
      this.persistedOffsetEntries !== this.offsetIndexValue.count ||
      this.persistedTimeEntries !== this.timeIndexValue.count
    ) {
      return false;
    }
    this.offsetIndexValue = null;
    this.timeIndexValue = null;
    return true;
  }

  /**
   * Reads the dropped indexes back from their files: exactly the persisted entries, kept only as far as they
   * are well formed (a file damaged at rest loses its tail entries, and lookups then walk further from an
   * earlier entry, as they do for entries that do not check).
   */
  private loadIndexes(): void {
    assert(!this.closed, 'reading the indexes of a closed segment');
    assert(this.residency !== null, 'only a sealed segment has its indexes dropped');
    const relativeLimit = this.nextOffset - this.baseOffset;
    const offsetBytes = new Uint8Array(this.persistedOffsetEntries * OFFSET_INDEX_ENTRY_BYTES);
    const offsetRead = this.disk.read(this.indexFd, offsetBytes, 0);
    const offsetIndex = OffsetIndex.decode(
      offsetBytes.subarray(0, offsetRead),
      this.sizeBytes,
      relativeLimit,
    );
    const timeBytes = new Uint8Array(this.persistedTimeEntries * TIME_INDEX_ENTRY_BYTES);
    const timeRead = this.disk.read(this.timeIndexFd, timeBytes, 0);
    const timeIndex = TimeIndex.decode(timeBytes.subarray(0, timeRead), relativeLimit);
    offsetIndex.trimCapacity();
    timeIndex.trimCapacity();
    // Entries lost to damage are no longer in memory or (readably) in the files.
    this.persistedOffsetEntries = offsetIndex.count;
    this.persistedTimeEntries = timeIndex.count;
    this.offsetIndexValue = offsetIndex;
    this.timeIndexValue = timeIndex;
    this.residency.loads++;
    this.residency.admit(this);
  }

  /** Bytes of log since the last offset-index entry (or since the start). */
  get bytesSinceIndexEntry(): number {
    const n = this.offsetIndex.count;
    return this.sizeBytes - (n === 0 ? 0 : this.offsetIndex.positionAt(n - 1));
  }

  /** Position of the batch at or before `offset` according to the index (a floor, not exact). */
  floorPosition(offset: number): number {
    const i = this.offsetIndex.floor(offset - this.baseOffset);
    return i < 0 ? 0 : this.offsetIndex.positionAt(i);
  }

  /**
   * Accounts for a batch written (or found by recovery) at `position`, which must be the current end.
   * Adds the index entries the sparse-index rule asks for.
   */
  addBatch(
    baseOffset: number,
    lastOffset: number,
    position: number,
    sizeBytes: number,
    firstTimestampMs: number,
    maxTimestampMs: number,
    indexIntervalBytes: number,
  ): void {
    assert(position === this.sizeBytes, 'segment batches are added at the end');
    assert(baseOffset === this.nextOffset, 'segment batches are offset-contiguous');
    if (position > 0 && this.bytesSinceIndexEntry >= indexIntervalBytes) {
      const relativeOffset = baseOffset - this.baseOffset;
      this.offsetIndex.append(relativeOffset, position);
      if (this.maxTimestampMs > this.timeIndex.lastTimestampMs) {
        this.timeIndex.append(this.maxTimestampMs, relativeOffset);
      }
    }
    if (position === 0) this.firstTimestampMs = firstTimestampMs;
    if (maxTimestampMs > this.maxTimestampMs) this.maxTimestampMs = maxTimestampMs;
    this.sizeBytes = position + sizeBytes;
    this.nextOffset = lastOffset + 1;
  }

  /** Writes the in-memory index entries that are not in the files yet (one write per file). */
  persistIndexes(): void {
    const offsetCount = this.offsetIndex.count;
    if (this.persistedOffsetEntries < offsetCount) {
      const bytes = this.offsetIndex.encode(this.persistedOffsetEntries, offsetCount);
      this.disk.write(this.indexFd, bytes, this.persistedOffsetEntries * OFFSET_INDEX_ENTRY_BYTES);
      this.persistedOffsetEntries = offsetCount;
    }
    const timeCount = this.timeIndex.count;
    if (this.persistedTimeEntries < timeCount) {
      const bytes = this.timeIndex.encode(this.persistedTimeEntries, timeCount);
      this.disk.write(this.timeIndexFd, bytes, this.persistedTimeEntries * TIME_INDEX_ENTRY_BYTES);
      this.persistedTimeEntries = timeCount;
    }
  }

  /**
   * Cuts the index files to the entries that are both persisted and still in memory, after the in-memory
   * indexes were truncated (or loaded from a file with a bad tail). Entries past that point are rewritten by
   * the next `persistIndexes`.
   */
  truncateIndexFiles(): void {
    this.persistedOffsetEntries = Math.min(this.persistedOffsetEntries, this.offsetIndex.count);
    const offsetBytes = this.persistedOffsetEntries * OFFSET_INDEX_ENTRY_BYTES;
    if (this.disk.size(this.indexFd) !== offsetBytes) this.disk.truncate(this.indexFd, offsetBytes);
    this.persistedTimeEntries = Math.min(this.persistedTimeEntries, this.timeIndex.count);
    const timeBytes = this.persistedTimeEntries * TIME_INDEX_ENTRY_BYTES;
    if (this.disk.size(this.timeIndexFd) !== timeBytes) this.disk.truncate(this.timeIndexFd, timeBytes);
  }

  /** Makes the index files durable. */
  syncIndexes(): void {
    this.disk.fdatasync(this.indexFd);
    this.disk.fdatasync(this.timeIndexFd);
  }

  /** Closes the descriptors; closing again does nothing. */
  close(): void {
    if (this.closed) return;
    this.residency?.forget(this);
    this.residency = null;
    this.closed = true;
    this.disk.close(this.logFd);
    this.disk.close(this.indexFd);
    this.disk.close(this.timeIndexFd);
  }

  /** Removes the three files; the caller fsyncs the directory. */
  unlinkFiles(): void {
    this.disk.unlink(this.logPath);
    this.disk.unlink(this.indexPath);
    this.disk.unlink(this.timeIndexPath);
  }
}
