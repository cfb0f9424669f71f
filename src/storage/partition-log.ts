// The append-only log of one partition: a directory of segments (see `segment.ts`) plus a checkpoint file,
// modelled on Kafka's Log/LogSegment. It is the broker's write-ahead log: an acknowledged batch is in a
// segment file, made durable by `flush` (group commit: the partition worker calls it once per drained batch
// of requests when `syncIntervalMs` is 0).
//
// Invariants:
// - Segments are offset-contiguous: each segment's base offset is the previous one's `nextOffset`; only the
//   last (active) segment is appended to. Every non-active segment is fully durable (a roll flushes it).
// - logStartOffset <= logEndOffset; reads below logStartOffset are refused; segments entirely below it are
//   deleted. flushedOffset <= logEndOffset; everything below flushedOffset is durable.
// - The checkpoint's recovery point R promises that every byte of every batch below R, and every index
//   entry for a batch below R, is durable. It is only raised after those fsyncs and is lowered (durably)
//   before a truncation could rewrite data below it.
// - Recovery trusts segments wholly below R (their tail after the last index entry is walked by header only)
//   and fully verifies (length, magic, CRC, record framing, offset continuity) every batch from the last
//   trusted index entry of every other segment; the first bad batch truncates the log there. Nothing after a
//   corrupt byte is ever served. Recovery time grows with the data written since the last checkpoint
//   (bounded by `RECOVERY_CHECKPOINT_INTERVAL_BYTES` plus the unflushed tail), not with the log size.
//   A sealed segment below R whose headers fail at recovery is damage at rest, not a torn write: it is kept
//   (cutting it would drop every later segment) and reads refuse its damaged range.
// - Reads check every header (sanity and offset continuity) and every batch's CRC before returning it; damage
//   is a value (`corrupt`, with the range lost and where reading resumes), never an assertion.
// - A storage call that fails (ENOSPC, EIO, ...) is a value too (`storage_failed`): a failed write is cut back
//   off the file, a failed sync cuts the log back to its durable end; if even that fails the log is `broken`
//   and its owner reopens it later (recovery then decides from the files).
//
// Checkpoint file `partition.checkpoint` (replaced atomically: temp file, fsync, rename, fsync directory):
//
// | offset | size | field          | notes                                          |
// |--------|------|----------------|------------------------------------------------|
// |      0 |    4 | magic          | 0x4c42434b ('LBCK')                            |
// |      4 |    4 | version        | 1                                              |
// |      8 |    8 | logStartOffset | int64                                          |
// |     16 |    8 | recoveryPoint  | int64                                          |
// |     24 |    4 | crc            | CRC-32 of bytes 0..23                          |
//
// Thread: every method runs on the one partition-worker thread that owns the log, with synchronous I/O.
import { dirname, join } from 'node:path';
import { assert, assertionFailed } from '../core/assert.js';
import {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  BatchField,
  batchCrcMatches,
  type Crc32,
  type Crc32Range,
  checkBatchHeader,
  forEachRecord,
  readInt32,
  readInt64,
  readUint32,
  shallowBatchValid,
  validateBatch,
  writeInt32,
  writeInt64,
} from '../core/log/record-batch.js';
import { INT32_MAX, OffsetIndex, TimeIndex } from '../core/log/segment-index.js';
import { EpochCache, type EpochEntry } from '../core/replication/epoch-cache.js';
import { crc32Range, crc32 as zlibCrc32 } from './crc.js';
import type { Disk, Fd } from './disk.js';
import { SegmentIndexCache } from './index-cache.js';
import { parseSegmentFileName, Segment, segmentFileStem } from './segment.js';

export interface LogConfig {
  /** Roll to a new segment before the active one would exceed this size. */
  readonly segmentBytes: number;
  /** Roll when the active segment's first record is this old (by record timestamp, as Kafka does). */
  readonly segmentMs: number;
  /** Bytes of log between two sparse index entries. */
  readonly indexIntervalBytes: number;
  /** 0: the owner calls `flush` before acknowledging (group commit); > 0: `maybeFlush` at most this often. */
  readonly syncIntervalMs: number;
  /** Delete old segments while the log stays at least this big without them; -1 = unlimited. */
  readonly retentionBytes: number;
  /** Delete old segments whose newest record is older than this; -1 = unlimited. */
  readonly retentionMs: number;
  /** Largest single batch accepted, header included. */
  readonly maxBatchBytes: number;
}

const MiB = 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Kafka-like defaults. segmentBytes 128 MiB (Kafka: 1 GiB) keeps a recovery scan and a retention step
 * small; indexIntervalBytes 4096 (Kafka's) bounds the scan from an index entry to about one page;
 * maxBatchBytes 1 MiB + 12 is Kafka's max.message.bytes; retention 7 days is Kafka's log.retention.hours=168.
 */
export const DEFAULT_LOG_CONFIG: LogConfig = {
  segmentBytes: 128 * MiB,
  segmentMs: 7 * DAY_MS,
  indexIntervalBytes: 4096,
  syncIntervalMs: 0,
  retentionBytes: -1,
  retentionMs: 7 * DAY_MS,
  maxBatchBytes: MiB + 12,
};

/**
 * A flush that brings the data written since the last recovery-point checkpoint to this many bytes also
 * fsyncs the indexes and writes the checkpoint, so a crash never rescans more than this plus the unflushed
 * tail. 32 MiB costs three extra fsyncs per 32 MiB written and bounds recovery to well under a second.
 */
export const RECOVERY_CHECKPOINT_INTERVAL_BYTES = 32 * MiB;
/** An index that reaches this many entries rolls the segment (Kafka's 10 MiB index / 8 bytes per entry). */
export const INDEX_ENTRIES_MAX = 1310720;

export const CHECKPOINT_FILE = 'partition.checkpoint';
/**
 * The leader-epoch checkpoint (replaced atomically like the checkpoint): which leader epoch wrote which range of
 * the log, for the epochs of batches recovery does not read.
 *
 * | offset | size | field        | notes                                         |
 * |--------|------|--------------|-----------------------------------------------|
 * |      0 |    4 | magic        | 0x4c424550 ('LBEP')                           |
 * |      4 |    4 | version      | 1                                             |
 * |      8 |    4 | count n      | int32                                         |
 * |     12 | 12 n | entries      | epoch int32, start offset int64, oldest first |
 * | 12+12n |    4 | crc          | CRC-32 of every byte before it                |
 */
export const EPOCHS_FILE = 'leader-epoch.checkpoint';
const EPOCHS_MAGIC = 0x4c424550;
const EPOCHS_VERSION = 1;
const EPOCHS_HEADER_BYTES = 12;
const EPOCHS_ENTRY_BYTES = 12;
const CHECKPOINT_MAGIC = 0x4c42434b;
const CHECKPOINT_VERSION = 1;
const CHECKPOINT_BYTES = 28;
const TMP_SUFFIX = '.tmp';

/** Recovery reads the log in chunks of at least this size (and at least one whole batch). */
const SCAN_CHUNK_BYTES = 4 * MiB;
/** Header walks (locating an offset in a segment) read this much at a time. */
const WALK_CHUNK_BYTES = 64 * 1024;
/**
 * A resync scan after damage looks this far for the next batch that checks. An index entry every
 * `indexIntervalBytes` (4 KiB) plus one batch (1 MiB at most) is usually much closer; past this bound the range
 * ends at the next index entry that checks, or at the segment's end.
 */
const RESYNC_SCAN_BYTES = 4 * MiB;

/**
 * Scratch buffers shared by every log of the thread (module state is per thread: each worker has its own
 * copy of this module). Reads and walks are synchronous and never nest in a way that shares one buffer, so a
 * log needs no buffers of its own, which keeps an idle partition small.
 */
const scratch = {
  walk: new Uint8Array(WALK_CHUNK_BYTES),
  resync: new Uint8Array(WALK_CHUNK_BYTES),
  header: new Uint8Array(BATCH_HEADER_BYTES),
  /** Grown on demand by recovery scans to max(SCAN_CHUNK_BYTES, maxBatchBytes), then kept. */
  scan: new Uint8Array(0),
};

/** Every problem with `config`, or an empty list. */
export function validateLogConfig(config: LogConfig): string[] {
  const problems: string[] = [];
  const int = (name: keyof LogConfig, min: number, max: number) => {
    const value = config[name];
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer in [${min}, ${max}], got ${value}`);
    }
  };
  int('segmentBytes', BATCH_HEADER_BYTES, INT32_MAX);
  int('segmentMs', 1, Number.MAX_SAFE_INTEGER);
  int('indexIntervalBytes', 1, INT32_MAX);
  int('syncIntervalMs', 0, Number.MAX_SAFE_INTEGER);
  int('retentionBytes', -1, Number.MAX_SAFE_INTEGER);
  int('retentionMs', -1, Number.MAX_SAFE_INTEGER);
  int('maxBatchBytes', BATCH_HEADER_BYTES, INT32_MAX);
  if (problems.length === 0 && config.maxBatchBytes > config.segmentBytes) {
    problems.push(
      `maxBatchBytes (${config.maxBatchBytes}) must not exceed segmentBytes (${config.segmentBytes})`,
    );
  }
  return problems;
}

export interface OpenOptions {
  /** Default: zlib's CRC-32. */
  readonly crc32?: Crc32;
  /**
   * The leader-epoch cache to keep (a replica core may already hold it): refilled from the log's epoch
   * checkpoint and batches when the log opens, then kept by every append and truncation. Default: a new one.
   */
  readonly epochs?: EpochCache;
  /** Default `RECOVERY_CHECKPOINT_INTERVAL_BYTES`; tests lower it to exercise the checkpoint often. */
  readonly recoveryCheckpointIntervalBytes?: number;
  /**
   * The thread's cache of sealed segments' indexes, which may drop them from memory (see index-cache.ts).
   * Default: one of the log's own that keeps every index in memory.
   */
  readonly indexCache?: SegmentIndexCache;
}

export interface AppendOptions {
  /** true: producer path, offsets assigned from the log end and `leaderEpoch` stamped; false: replication. */
  readonly assignOffsets: boolean;
  /** Stamped into every batch when assigning offsets. */
  readonly leaderEpoch: number;
  /** Wall clock, for time-based rolling. */
  readonly nowMs: number;
}

export type AppendResult =
  | {
      readonly kind: 'ok';
      readonly firstOffset: number;
      readonly lastOffset: number;
      readonly batchCount: number;
    }
  | { readonly kind: 'batch_too_large'; readonly batchBytes: number; readonly maxBatchBytes: number }
  | { readonly kind: 'append_too_large'; readonly appendBytes: number; readonly segmentBytes: number }
  | { readonly kind: 'malformed'; readonly position: number; readonly reason: string }
  | { readonly kind: 'offset_mismatch'; readonly expectedOffset: number; readonly actualOffset: number }
  /**
   * The write (or the roll before it) failed. `definite`: nothing of this append is in the log, and the log
   * is consistent; otherwise the log is `broken` and the outcome unknown. A failed roll may also have cut away
   * earlier unsynced appends (see `syncData`): the owner compares its requests with `flushedOffset` and
   * `logEndOffset`.
   */
  | { readonly kind: 'storage_failed'; readonly fault: StorageFault; readonly definite: boolean };

export type FlushResult =
  /** Everything appended is durable. `fault`: a later step (indexes, checkpoint) failed, harmlessly. */
  | { readonly kind: 'ok'; readonly fault: StorageFault | null }
  /**
   * The data sync failed. `definite`: the log was cut back to `flushedOffset` durably, so the records above
   * it are gone; otherwise the log is `broken`.
   */
  | { readonly kind: 'storage_failed'; readonly fault: StorageFault; readonly definite: boolean };

/** A data sync `PartitionLog.flushStart` asked for: the owner fdatasyncs `fd` (null: nothing to sync). */
export interface PendingFlush {
  readonly fd: Fd | null;
  /**
   * What the log looked like when it was asked. Appends may follow while the sync runs (a pipelined group
   * commit): the sync vouches for `sizeBytes` of `segment`, i.e. for the records below `endOffset`, only.
   */
  readonly segment: Segment;
  readonly sizeBytes: number;
  readonly endOffset: number;
}

/** A failed storage call: the file system's error code (ENOSPC, EDQUOT, EIO, ...) and what it was doing. */
export interface StorageFault {
  readonly code: string;
  /** A full disk or an exhausted quota (ENOSPC, EDQUOT): it clears once space is freed. */
  readonly full: boolean;
  readonly message: string;
}

/**
 * The fault that an error thrown by a `Disk` call stands for: an errno code from the file system. Anything
 * else (a bug, a simulated power loss, a bad descriptor, which is a bug too) is rethrown: only I/O faults are
 * expected conditions.
 */
export function faultOrRethrow(error: unknown, doing: string): StorageFault {
  const code = (error as { code?: unknown } | null)?.code;
  if (!(error instanceof Error) || typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code) || code === 'EBADF')
    throw error;
  return { code, full: code === 'ENOSPC' || code === 'EDQUOT', message: `${doing}: ${error.message}` };
}

export type ReadResult =
  | {
      readonly kind: 'ok';
      /** Whole batches (possibly none); the first may start below the requested offset. */
      readonly bytes: Uint8Array;
      /** The offset to read from next: one past the last record returned (the request's offset if none). */
      readonly nextOffset: number;
    }
  | { readonly kind: 'below_log_start'; readonly logStartOffset: number }
  /**
   * The read starts in a damaged range: offsets [firstOffset, endOffset) cannot be served (their bytes fail
   * the header or CRC checks); reading from endOffset works again.
   */
  | {
      readonly kind: 'corrupt';
      readonly firstOffset: number;
      readonly endOffset: number;
      readonly segmentBaseOffset: number;
      /** Byte position of the damage in the segment's `.log` file. */
      readonly position: number;
      readonly reason: string;
    }
  /** The first batch is larger than the caller's buffer (a smaller ring since it was written). */
  | { readonly kind: 'batch_too_large'; readonly baseOffset: number; readonly batchBytes: number };

/** Offsets lost to damage in one segment, derived only from what checks (see `damagedRange`). */
interface DamagedRange {
  readonly firstOffset: number;
  readonly endOffset: number;
  readonly position: number;
  /** Byte position where reading resumes: the batch holding `endOffset`, or the segment's end. */
  readonly resumePosition: number;
  readonly reason: string;
}

type Located =
  | {
      readonly kind: 'found';
      readonly position: number;
      readonly sizeBytes: number;
      readonly baseOffset: number;
    }
  | { readonly kind: 'damaged'; readonly range: DamagedRange };

export type DeleteRecordsResult =
  | { readonly kind: 'ok'; readonly logStartOffset: number; readonly deletedSegments: number }
  | { readonly kind: 'offset_out_of_range'; readonly logEndOffset: number }
  | { readonly kind: 'storage_failed'; readonly fault: StorageFault; readonly definite: boolean };

export type TruncateResult =
  | { readonly kind: 'ok'; readonly logEndOffset: number }
  | { readonly kind: 'below_log_start'; readonly logStartOffset: number };

export interface RetentionResult {
  readonly deletedSegments: number;
  readonly deletedBytes: number;
  readonly logStartOffset: number;
  /** A storage call that failed on the way (the segments it could not delete are tried again next time). */
  readonly fault: StorageFault | null;
}

export interface RecoveryReport {
  /** Segments whose batches were fully verified (not trusted by the recovery point). */
  readonly segmentsScanned: number;
  readonly bytesScanned: number;
  /** Bytes cut off a torn or corrupt tail (including whole later segments). */
  readonly bytesTruncated: number;
  readonly reason: string | null;
  /** Damage found at rest in trusted (sealed, durable) segments, which is kept and refused when read. */
  readonly damaged: readonly string[];
}

export interface SegmentInfo {
  readonly baseOffset: number;
  readonly nextOffset: number;
  readonly sizeBytes: number;
  /** -Infinity for an empty segment. */
  readonly maxTimestampMs: number;
}

const EMPTY = new Uint8Array(0);

export class PartitionLog {
  private readonly segments: Segment[] = [];
  /** The epochs of this log's batches (see src/core/replication/epoch-cache.ts); `epochsWritten` is the
   *  cache version the epoch checkpoint holds. */
  readonly epochs: EpochCache;
  private epochsWritten = -1;
  /** What the checkpoint file durably says, when known (read unchanged by recovery, or written since). */
  private checkpointOnDisk: { logStartOffset: number; recoveryPoint: number } | null = null;
  private logStart = 0;
  private flushed = 0;
  /** The data sync `flushStart` began and `flushFinish` has not ended (at most one). */
  private syncInFlight: PendingFlush | null = null;
  /** The file was cut below what the running sync vouches for (a roll's own sync failed): it vouches for nothing. */
  private cutBelowSync = false;
  private recoveryPoint = 0;
  private bytesSinceCheckpoint = 0;
  private lastFlushMs: number;
  private closed = false;
  /** Reads that met damage since the log was opened (the worker reports the total as a metric). */
  corruptReads = 0;
  private brokenFault: StorageFault | null = null;
  recovery: RecoveryReport = {
    segmentsScanned: 0,
    bytesScanned: 0,
    bytesTruncated: 0,
    reason: null,
    damaged: [],
  };

  private constructor(
    readonly dir: string,
    /** Replaced only through setRetention and setSegmentBytes (topic config changes); read everywhere else. */
    public config: LogConfig,
    private readonly disk: Disk,
    private readonly crc32: Crc32,
    /** `crc32` over a range without a view: only with the default CRC (an injected one has no such twin). */
    private readonly crc32Range: Crc32Range | undefined,
    private readonly checkpointIntervalBytes: number,
    nowMs: number,
    epochs: EpochCache,
    private readonly indexCache: SegmentIndexCache,
  ) {
    this.lastFlushMs = nowMs;
    this.epochs = epochs;
  }

  /**
   * Opens the log in `dir` (created when missing), recovering from whatever a crash left: see the file
   * comment. Asserts that `config` is valid (validate it at start-up with `validateLogConfig`).
   */
  static open(
    dir: string,
    config: LogConfig,
    disk: Disk,
    nowMs: number,
    options: OpenOptions = {},
  ): PartitionLog {
    const problems = validateLogConfig(config);
    assert(problems.length === 0, `invalid log config: ${problems.join('; ')}`);
    const interval = options.recoveryCheckpointIntervalBytes ?? RECOVERY_CHECKPOINT_INTERVAL_BYTES;
    assert(
      Number.isSafeInteger(interval) && interval > 0,
      'recoveryCheckpointIntervalBytes must be positive',
    );
    if (!disk.exists(dir)) {
      disk.mkdir(dir);
      // The partition's own directory entry must survive a power loss along with the files in it.
      disk.fsyncDir(dirname(dir));
    }
    const log = new PartitionLog(
      dir,
      config,
      disk,
      options.crc32 ?? zlibCrc32,
      options.crc32 === undefined ? crc32Range : undefined,
      interval,
      nowMs,
      options.epochs ?? new EpochCache(),
      options.indexCache ?? new SegmentIndexCache(Number.POSITIVE_INFINITY),
    );
    try {
      log.recover();
    } catch (error) {
      // A storage fault half-way (EIO reading, ENOSPC writing the checkpoint, EMFILE) leaves no descriptor open.
      for (const segment of [...log.openedByRecovery, ...log.segments]) segment.close();
      throw error;
    }
    log.openedByRecovery.length = 0;
    return log;
  }

  get logStartOffset(): number {
    return this.logStart;
  }

  /** The next offset to assign. */
  get logEndOffset(): number {
    return this.active.nextOffset;
  }

  /** Everything below this offset is durable. */
  get flushedOffset(): number {
    return this.flushed;
  }

  /** True while a data sync asked for by `flushStart` has not been finished by `flushFinish`. */
  get syncing(): boolean {
    return this.syncInFlight !== null;
  }

  /** Asserts that no data sync runs: the calls that cut, close or reset the log need the file to themselves. */
  private assertNoSync(what: string): void {
    if (this.syncInFlight !== null) assertionFailed(`${what} while a data sync of the log runs`);
  }

  get sizeBytes(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.sizeBytes;
    return total;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** The segments, oldest first (for metrics, admin views and tests). */
  segmentInfos(): SegmentInfo[] {
    return this.segments.map((s) => ({
      baseOffset: s.baseOffset,
      nextOffset: s.nextOffset,
      sizeBytes: s.sizeBytes,
      maxTimestampMs: s.maxTimestampMs,
    }));
  }

  private get active(): Segment {
    const segment = this.segments[this.segments.length - 1];
    assert(segment !== undefined, 'a partition log always has an active segment');
    return segment;
  }

  // -------------------------------------------------------------------------------------------------------
  // Append.

  /**
   * Appends already-encoded whole batches with ONE write. With `assignOffsets` the batches' base offsets are
   * patched in place (in the caller's buffer) from the log end and their leader epoch stamped; without it
   * they must continue the log exactly and their CRCs are verified (they come from another broker).
   * The first batch's base offset is `firstOffset`; each next one starts after the previous one's records.
   * Expected refusals are values; nothing is written then.
   */
  append(bytes: Uint8Array, options: AppendOptions): AppendResult {
    assert(!this.closed, 'append on a closed log');
    const { maxBatchBytes, segmentBytes } = this.config;
    const firstOffset = this.logEndOffset;
    let nextOffset = firstOffset;
    let batchCount = 0;
    let pos = 0;
    while (pos < bytes.length) {
      if (bytes.length - pos < BATCH_HEADER_BYTES) {
        return { kind: 'malformed', position: pos, reason: 'truncated batch header' };
      }
      const size = 12 + readInt32(bytes, pos + BatchField.batchLength);
      if (size > maxBatchBytes) return { kind: 'batch_too_large', batchBytes: size, maxBatchBytes };
      if (options.assignOffsets) {
        // The leader's own batches: checked without an answer object (none is needed unless one is unsound).
        if (!shallowBatchValid(bytes, pos, bytes.length, maxBatchBytes)) {
          const check = validateBatch(bytes, pos, bytes.length, this.crc32, {
            batchBytesMax: maxBatchBytes,
            deep: false,
          });
          assert(check.kind !== 'ok', 'validateBatch agrees with shallowBatchValid');
          return { kind: 'malformed', position: pos, reason: check.reason };
        }
        writeInt64(bytes, pos + BatchField.baseOffset, nextOffset);
        writeInt32(bytes, pos + BatchField.partitionLeaderEpoch, options.leaderEpoch);
        nextOffset += readInt32(bytes, pos + BatchField.recordCount);
      } else {
        const actual = readInt64(bytes, pos + BatchField.baseOffset);
        if (actual !== nextOffset)
          return { kind: 'offset_mismatch', expectedOffset: nextOffset, actualOffset: actual };
        const check = validateBatch(bytes, pos, bytes.length, this.crc32, {
          batchBytesMax: maxBatchBytes,
          deep: true,
        });
        if (check.kind !== 'ok') return { kind: 'malformed', position: pos, reason: check.reason };
        nextOffset += check.recordCount;
      }
      pos += size;
      batchCount++;
    }
    if (batchCount === 0) return { kind: 'ok', firstOffset, lastOffset: firstOffset - 1, batchCount: 0 };
    if (bytes.length > segmentBytes) {
      return { kind: 'append_too_large', appendBytes: bytes.length, segmentBytes };
    }
    assert(Number.isSafeInteger(nextOffset), 'offsets must stay below 2^53');
    if (this.brokenFault !== null) return { kind: 'storage_failed', fault: this.brokenFault, definite: true };
    if (this.shouldRoll(bytes.length, nextOffset - 1, options.nowMs)) {
      const fault = this.roll();
      if (fault !== null) return { kind: 'storage_failed', fault, definite: this.brokenFault === null };
    }
    const segment = this.active;
    const start = segment.sizeBytes;
    try {
      this.disk.write(segment.logFd, bytes, start);
    } catch (error) {
      return this.undoWrite(
        segment,
        start,
        faultOrRethrow(error, `writing ${bytes.length} bytes to ${segment.logPath}`),
      );
    }
    pos = 0;
    while (pos < bytes.length) {
      const size = 12 + readInt32(bytes, pos + BatchField.batchLength);
      const base = readInt64(bytes, pos + BatchField.baseOffset);
      const epoch = readInt32(bytes, pos + BatchField.partitionLeaderEpoch);
      if (epoch > this.epochs.latestEpoch) this.epochs.assign(epoch, base);
      segment.addBatch(
        base,
        base + readInt32(bytes, pos + BatchField.lastOffsetDelta),
        start + pos,
        size,
        readInt64(bytes, pos + BatchField.firstTimestamp),
        readInt64(bytes, pos + BatchField.maxTimestamp),
        this.config.indexIntervalBytes,
      );
      pos += size;
    }
    assert(segment.nextOffset === nextOffset, 'append accounted for every record');
    return { kind: 'ok', firstOffset, lastOffset: nextOffset - 1, batchCount };
  }

  /**
   * A write that failed may have landed a prefix first (a short write before ENOSPC): the file is cut back to
   * where the write started and the cut is made durable, so no partial batch is left for a later append to
   * follow or for recovery to mistake for records (a prefix can hold whole batches of a multi-batch append).
   * Nothing was appended then, definitely. If even the cut fails, the file's tail is unknown: the log is
   * broken (see `broken`) and the outcome indefinite.
   */
  private undoWrite(segment: Segment, start: number, fault: StorageFault): AppendResult {
    try {
      this.disk.truncate(segment.logFd, start);
      this.disk.fdatasync(segment.logFd);
    } catch (error) {
      this.brokenFault = faultOrRethrow(error, `cutting ${segment.logPath} back to ${start} bytes`);
      return { kind: 'storage_failed', fault, definite: false };
    }
    // The sync also made every earlier append durable, unless a pipelined sync of the same file runs: if that
    // one fails, the error may have been reported to it alone, so only its own outcome counts.
    if (this.active === segment && this.syncInFlight === null) this.noteSynced(segment);
    return { kind: 'storage_failed', fault, definite: true };
  }

  private shouldRoll(appendBytes: number, lastOffset: number, nowMs: number): boolean {
    const segment = this.active;
    if (segment.sizeBytes === 0) return false;
    if (segment.sizeBytes + appendBytes > this.config.segmentBytes) return true;
    if (segment.firstTimestampMs !== null && nowMs - segment.firstTimestampMs >= this.config.segmentMs)
      return true;
    if (segment.offsetIndex.count >= INDEX_ENTRIES_MAX - 1) return true;
    return lastOffset - segment.baseOffset > INT32_MAX;
  }

  /**
   * Starts a new active segment at the log end. The old one is flushed with its indexes first, so every
   * non-active segment is durable, and the recovery point moves to the new segment's base.
   */
  private roll(): StorageFault | null {
    const old = this.active;
    // 1. Seal the old segment. A failed data sync is handled as in `flush`: the unsynced tail is cut away.
    if (old.flushedSizeBytes !== old.sizeBytes) {
      const failed = this.syncData(old);
      if (failed !== null) return failed;
    }
    try {
      old.persistIndexes();
      old.syncIndexes();
    } catch (error) {
      // The checkpoint has not moved, so recovery does not trust these index entries: still consistent.
      return faultOrRethrow(error, `sealing the indexes of ${old.logPath}`);
    }
    // 2. The new segment's files, durably in the directory before any record goes into them (a file's fsync
    // does not make its directory entry durable).
    const baseOffset = old.nextOffset;
    let segment: Segment;
    try {
      segment = this.createSegment(baseOffset);
    } catch (error) {
      return this.dropNewSegment(baseOffset, faultOrRethrow(error, `creating segment ${baseOffset}`));
    }
    try {
      this.disk.fsyncDir(this.dir);
    } catch (error) {
      segment.close();
      return this.dropNewSegment(baseOffset, faultOrRethrow(error, `syncing the directory ${this.dir}`));
    }
    this.segments.push(segment);
    // Sealed now that a later segment follows it: its indexes are in their files, synced above.
    old.seal(this.indexCache);
    this.flushed = this.logEndOffset;
    this.recoveryPoint = this.logEndOffset;
    this.bytesSinceCheckpoint = 0;
    // 3. The checkpoint. Failing it leaves the older recovery point on disk, which is still true.
    try {
      this.writeCheckpoint();
    } catch (error) {
      return faultOrRethrow(error, `writing the checkpoint of ${this.dir}`);
    }
    return null;
  }

  /** Removes whatever files of a segment that could not be created in full exist; broken if that fails. */
  private dropNewSegment(baseOffset: number, fault: StorageFault): StorageFault {
    const stem = join(this.dir, segmentFileStem(baseOffset));
    try {
      for (const suffix of ['.log', '.index', '.timeindex']) {
        if (this.disk.exists(stem + suffix)) this.disk.unlink(stem + suffix);
      }
    } catch (error) {
      this.brokenFault = faultOrRethrow(error, `removing the half-created segment ${baseOffset}`);
    }
    return fault;
  }

  /** fsyncs a segment's log data and its indexes. */
  private syncSegment(segment: Segment): void {
    if (segment.flushedSizeBytes !== segment.sizeBytes) {
      this.disk.fdatasync(segment.logFd);
      segment.flushedSizeBytes = segment.sizeBytes;
    }
    segment.persistIndexes();
    segment.syncIndexes();
  }

  // -------------------------------------------------------------------------------------------------------
  // Durability.

  /**
   * Makes every appended batch durable (one fdatasync of the active segment; older ones are durable since
   * their roll). Afterwards flushedOffset = logEndOffset. Every so often also checkpoints the recovery point.
   */
  flush(): FlushResult {
    const pending = this.flushStart();
    let error: unknown;
    if (pending.fd !== null) {
      try {
        this.disk.fdatasync(pending.fd);
      } catch (thrown) {
        error = thrown;
      }
    }
    return this.flushFinish(pending, error);
  }

  /**
   * `flush` in two halves, for an owner that syncs many logs at once (a partition worker's group commit over
   * every partition a batch touched), off its thread: `flushStart` says which descriptor to fdatasync (null:
   * nothing to sync), the owner syncs it (with `Disk.fdatasyncEach`), and `flushFinish` takes the sync's error
   * (undefined when it succeeded) and answers what `flush` would for the records below `pending.endOffset`.
   * At most one sync runs at a time. In between, the log may be appended to (the next batch of a pipelined
   * group commit; a roll included) and read, but not cut, reset or closed (asserted). Those later records
   * become durable with the next sync.
   */
  flushStart(): PendingFlush {
    assert(!this.closed, 'flush on a closed log');
    this.assertNoSync('flushStart');
    const segment = this.active;
    if (this.brokenFault !== null || segment.flushedSizeBytes === segment.sizeBytes) {
      return { fd: null, segment, sizeBytes: segment.sizeBytes, endOffset: this.logEndOffset };
    }
    const pending = {
      fd: segment.logFd,
      segment,
      sizeBytes: segment.sizeBytes,
      endOffset: this.logEndOffset,
    };
    this.syncInFlight = pending;
    this.cutBelowSync = false;
    return pending;
  }

  /** The second half of `flush`: `error` is what the data sync of `pending.fd` threw (undefined: none). */
  flushFinish(pending: PendingFlush, error: unknown): FlushResult {
    assert(!this.closed, 'flush on a closed log');
    assert(
      pending.fd === null ? this.syncInFlight === null : this.syncInFlight === pending,
      'flushFinish ends the sync flushStart began',
    );
    this.syncInFlight = null;
    if (this.brokenFault !== null)
      return { kind: 'storage_failed', fault: this.brokenFault, definite: false };
    if (pending.fd !== null) {
      const segment = pending.segment;
      if (segment !== this.active) {
        // A roll sealed the segment while this sync ran, with a sync of its own. If this one failed, the error
        // may have been reported to it alone and the roll's sync succeeded without the lost pages: nothing
        // about the sealed tail is known any more, so the log is broken (recovery checks it when reopened).
        // Nothing above `pending.endOffset` was acknowledged yet (its sync had not begun).
        if (error !== undefined) {
          this.brokenFault = faultOrRethrow(error, `syncing ${segment.logPath}`);
          return { kind: 'storage_failed', fault: this.brokenFault, definite: false };
        }
      } else if (error !== undefined) {
        // Cuts the log back to what earlier syncs made durable, the appends after this sync began included.
        const failed = this.dataSyncFailed(segment, error);
        return { kind: 'storage_failed', fault: failed, definite: this.brokenFault === null };
      } else if (!this.cutBelowSync && pending.sizeBytes > segment.flushedSizeBytes) {
        this.bytesSinceCheckpoint += pending.sizeBytes - segment.flushedSizeBytes;
        segment.flushedSizeBytes = pending.sizeBytes;
      }
    }
    if (!this.cutBelowSync && pending.endOffset > this.flushed) this.flushed = pending.endOffset;
    this.cutBelowSync = false;
    if (this.bytesSinceCheckpoint >= this.checkpointIntervalBytes) {
      try {
        this.checkpointRecoveryPoint();
      } catch (error) {
        // The records are durable already; only the recovery point stays behind (recovery scans more).
        return { kind: 'ok', fault: faultOrRethrow(error, `checkpointing ${this.dir}`) };
      }
    }
    return { kind: 'ok', fault: null };
  }

  /**
   * fdatasyncs the active segment's data (or the one being sealed by a roll). Returns the fault, or null.
   */
  private syncData(segment: Segment): StorageFault | null {
    try {
      this.disk.fdatasync(segment.logFd);
    } catch (error) {
      return this.dataSyncFailed(segment, error);
    }
    return this.noteSynced(segment);
  }

  /**
   * A data sync failed. The unsynced tail cannot be trusted: the kernel may have dropped the dirty pages (and a
   * retried fsync can report success without writing them, since the error is reported once), so what a later
   * read or a recovery finds there is unknown. The only state that is known is the durable prefix below
   * `flushedOffset`, so the log goes back to it: the file is cut to the flushed size and that cut fsynced. If
   * the cut is durable, the unsynced records are gone for good and were never served (with fsync before
   * acknowledging, consumers read below the flushed offset only), so their writers get a definite failure. If
   * the cut fails too, nothing about the tail is known: the log is broken (reopened by recovery later) and the
   * outcome indefinite. Returns the fault (rethrows what is not an I/O error).
   */
  private dataSyncFailed(segment: Segment, error: unknown): StorageFault {
    const fault = faultOrRethrow(error, `syncing ${segment.logPath}`);
    assert(segment === this.active, 'only the active segment holds unsynced data');
    try {
      this.disk.truncate(segment.logFd, segment.flushedSizeBytes);
      this.disk.fsync(segment.logFd);
    } catch (cutError) {
      this.brokenFault = faultOrRethrow(cutError, `cutting ${segment.logPath} back to its synced size`);
      return fault;
    }
    this.forgetAfter(segment, segment.flushedSizeBytes, this.flushed);
    if (this.syncInFlight !== null) this.cutBelowSync = true;
    return fault;
  }

  /** Accounts for a successful data sync of `segment` (the active one, or one being sealed). */
  private noteSynced(segment: Segment): null {
    this.bytesSinceCheckpoint += segment.sizeBytes - segment.flushedSizeBytes;
    segment.flushedSizeBytes = segment.sizeBytes;
    if (segment === this.active) this.flushed = this.logEndOffset;
    return null;
  }

  /**
   * Forgets, in memory, every batch of `segment` at or after byte `sizeBytes` (offset `nextOffset`), after the
   * file was cut there: index entries past the end go (none of them is persisted: index entries are only
   * written for synced data), and the newest timestamp is found again from what is left.
   */
  private forgetAfter(segment: Segment, sizeBytes: number, nextOffset: number): void {
    const relativeEnd = nextOffset - segment.baseOffset;
    segment.offsetIndex.truncateToCount(segment.offsetIndex.floor(relativeEnd - 1) + 1);
    segment.timeIndex.truncateAfterRelativeOffset(relativeEnd - 1);
    segment.persistedOffsetEntries = Math.min(segment.persistedOffsetEntries, segment.offsetIndex.count);
    segment.persistedTimeEntries = Math.min(segment.persistedTimeEntries, segment.timeIndex.count);
    segment.sizeBytes = sizeBytes;
    segment.flushedSizeBytes = Math.min(segment.flushedSizeBytes, sizeBytes);
    segment.nextOffset = nextOffset;
    if (sizeBytes === 0) segment.firstTimestampMs = null;
    segment.maxTimestampMs = segment.timeIndex.lastTimestampMs;
    const entries = segment.offsetIndex.count;
    this.walk(
      segment,
      entries === 0 ? 0 : segment.offsetIndex.positionAt(entries - 1),
      segment.baseOffset + (entries === 0 ? 0 : segment.offsetIndex.relativeOffsetAt(entries - 1)),
      (...batch) => {
        segment.maxTimestampMs = Math.max(segment.maxTimestampMs, batch[4]);
        return true;
      },
      () => true,
    );
  }

  /**
   * Set when a failed write or sync could not be undone: the files may hold bytes the log does not know of
   * (or miss bytes it counts), so nothing more is appended or flushed. The owner abandons the log and opens it
   * again later; recovery then decides from the files. Reads below the flushed offset stay exact meanwhile.
   */
  get broken(): StorageFault | null {
    return this.brokenFault;
  }

  /** With `syncIntervalMs` > 0: flushes when there is unflushed data and the interval has passed. */
  maybeFlush(nowMs: number): FlushResult | null {
    if (this.flushed === this.logEndOffset) {
      this.lastFlushMs = nowMs;
      return null;
    }
    if (nowMs - this.lastFlushMs < this.config.syncIntervalMs) return null;
    this.lastFlushMs = nowMs;
    return this.flush();
  }

  private checkpointRecoveryPoint(): void {
    this.syncSegment(this.active);
    this.flushed = this.logEndOffset;
    this.recoveryPoint = this.logEndOffset;
    this.bytesSinceCheckpoint = 0;
    this.writeCheckpoint();
  }

  private writeCheckpoint(): void {
    // Unknown while it is rewritten: a failure half-way leaves the old file or the new one.
    this.checkpointOnDisk = null;
    // The epochs of everything below the recovery point must be in the epoch checkpoint before the recovery
    // point says recovery may trust those batches without reading their headers.
    this.writeEpochsIfChanged();
    const bytes = new Uint8Array(CHECKPOINT_BYTES);
    writeInt32(bytes, 0, CHECKPOINT_MAGIC);
    writeInt32(bytes, 4, CHECKPOINT_VERSION);
    writeInt64(bytes, 8, this.logStart);
    writeInt64(bytes, 16, this.recoveryPoint);
    writeInt32(bytes, 24, this.crc32(bytes.subarray(0, 24)));
    const path = join(this.dir, CHECKPOINT_FILE);
    const tmp = path + TMP_SUFFIX;
    const fd = this.disk.open(tmp, true);
    try {
      this.disk.truncate(fd, 0);
      this.disk.write(fd, bytes, 0);
      this.disk.fsync(fd);
    } finally {
      this.disk.close(fd);
    }
    this.disk.rename(tmp, path);
    this.disk.fsyncDir(this.dir);
    this.checkpointOnDisk = { logStartOffset: this.logStart, recoveryPoint: this.recoveryPoint };
  }

  /**
   * True when closing has nothing to make durable: every appended byte synced, the index entries of the active
   * segment in their files (they are synced whenever they are written), the epochs written, and the checkpoint
   * on disk already at the log end (a partition opened and read, or not written since its last checkpoint).
   */
  private unchangedSinceCheckpoint(): boolean {
    const active = this.active;
    const onDisk = this.checkpointOnDisk;
    const end = this.logEndOffset;
    return (
      onDisk !== null &&
      onDisk.logStartOffset === this.logStart &&
      onDisk.recoveryPoint === end &&
      this.recoveryPoint === end &&
      this.flushed === end &&
      active.flushedSizeBytes === active.sizeBytes &&
      active.persistedOffsetEntries === active.offsetIndex.count &&
      active.persistedTimeEntries === active.timeIndex.count &&
      this.epochs.version === this.epochsWritten
    );
  }

  private readCheckpoint(): { logStartOffset: number; recoveryPoint: number } | null {
    return PartitionLog.readCheckpointFile(this.disk, this.dir, this.crc32);
  }

  /** Rewrites the epoch checkpoint (atomically, durably) when the cache changed since it was written. */
  private writeEpochsIfChanged(): void {
    if (this.epochs.version === this.epochsWritten) return;
    const entries = this.epochs.entries();
    const bytes = new Uint8Array(EPOCHS_HEADER_BYTES + entries.length * EPOCHS_ENTRY_BYTES + 4);
    writeInt32(bytes, 0, EPOCHS_MAGIC);
    writeInt32(bytes, 4, EPOCHS_VERSION);
    writeInt32(bytes, 8, entries.length);
    let at = EPOCHS_HEADER_BYTES;
    for (const e of entries) {
      writeInt32(bytes, at, e.epoch);
      writeInt64(bytes, at + 4, e.startOffset);
      at += EPOCHS_ENTRY_BYTES;
    }
    writeInt32(bytes, at, this.crc32(bytes.subarray(0, at)));
    const path = join(this.dir, EPOCHS_FILE);
    const tmp = path + TMP_SUFFIX;
    const fd = this.disk.open(tmp, true);
    try {
      this.disk.truncate(fd, 0);
      this.disk.write(fd, bytes, 0);
      this.disk.fsync(fd);
    } finally {
      this.disk.close(fd);
    }
    this.disk.rename(tmp, path);
    this.disk.fsyncDir(this.dir);
    this.epochsWritten = this.epochs.version;
  }

  /**
   * The epoch checkpoint of the log in `dir`, or null when it is missing or does not check (media damage: the
   * file is replaced atomically after an fsync). Read without opening the log for a partition opened lazily.
   */
  static readEpochsFile(disk: Disk, dir: string, crc32: Crc32 = zlibCrc32): EpochEntry[] | null {
    const path = join(dir, EPOCHS_FILE);
    let fd: number;
    try {
      fd = disk.open(path, false);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') return null;
      throw error;
    }
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(disk.size(fd));
      const n = disk.read(fd, bytes, 0);
      bytes = bytes.subarray(0, n);
    } finally {
      disk.close(fd);
    }
    if (bytes.length < EPOCHS_HEADER_BYTES + 4) return null;
    if (readUint32(bytes, 0) !== EPOCHS_MAGIC || readInt32(bytes, 4) !== EPOCHS_VERSION) return null;
    const count = readInt32(bytes, 8);
    const end = EPOCHS_HEADER_BYTES + count * EPOCHS_ENTRY_BYTES;
    if (count < 0 || bytes.length !== end + 4) return null;
    if (readUint32(bytes, end) !== crc32(bytes.subarray(0, end))) return null;
    const entries: EpochEntry[] = [];
    for (let at = EPOCHS_HEADER_BYTES; at < end; at += EPOCHS_ENTRY_BYTES) {
      const epoch = readInt32(bytes, at);
      const startOffset = readInt64(bytes, at + 4);
      const last = entries.at(-1);
      if (
        epoch < 0 ||
        startOffset < 0 ||
        (last !== undefined && (epoch <= last.epoch || startOffset < last.startOffset))
      ) {
        return null;
      }
      entries.push({ epoch, startOffset });
    }
    return entries;
  }

  /**
   * The checkpoint of the log in `dir` (log start and recovery point), or null when it is missing or does
   * not check. After a clean close the recovery point is the log end, so an owner that knows the last
   * shutdown was clean learns a partition's offsets from this one small read, without opening the log.
   */
  static readCheckpointFile(
    disk: Disk,
    dir: string,
    crc32: Crc32 = zlibCrc32,
  ): { logStartOffset: number; recoveryPoint: number } | null {
    const path = join(dir, CHECKPOINT_FILE);
    let fd: number;
    try {
      fd = disk.open(path, false);
    } catch (error) {
      // One open instead of a check and an open: at start-up this runs once per partition.
      if ((error as { code?: unknown }).code === 'ENOENT') return null;
      throw error;
    }
    const bytes = new Uint8Array(CHECKPOINT_BYTES);
    let n: number;
    try {
      n = disk.read(fd, bytes, 0);
    } finally {
      disk.close(fd);
    }
    // The file is replaced atomically after an fsync, so a bad one is media damage: distrust it entirely
    // (recover every segment) rather than guess.
    if (n !== CHECKPOINT_BYTES || readUint32(bytes, 0) !== CHECKPOINT_MAGIC) return null;
    if (readInt32(bytes, 4) !== CHECKPOINT_VERSION) return null;
    if (readUint32(bytes, 24) !== crc32(bytes.subarray(0, 24))) return null;
    const logStartOffset = readInt64(bytes, 8);
    const recoveryPoint = readInt64(bytes, 16);
    if (logStartOffset < 0 || recoveryPoint < 0) return null;
    return { logStartOffset, recoveryPoint };
  }

  // -------------------------------------------------------------------------------------------------------
  // Recovery.

  private recover(): void {
    const disk = this.disk;
    let dirChanged = false;
    const epochsOnDisk = PartitionLog.readEpochsFile(disk, this.dir, this.crc32);
    this.scannedEpochs = [];
    const logBases: number[] = [];
    const indexFiles: { name: string; baseOffset: number }[] = [];
    for (const name of disk.readdir(this.dir)) {
      if (name.endsWith(TMP_SUFFIX)) {
        disk.unlink(join(this.dir, name));
        dirChanged = true;
        continue;
      }
      const parsed = parseSegmentFileName(name);
      if (parsed === null) continue;
      if (parsed.kind === 'log') logBases.push(parsed.baseOffset);
      else indexFiles.push({ name, baseOffset: parsed.baseOffset });
    }
    logBases.sort((a, b) => a - b);
    const logBaseSet = new Set(logBases);
    for (const file of indexFiles) {
      if (!logBaseSet.has(file.baseOffset)) {
        disk.unlink(join(this.dir, file.name));
        dirChanged = true;
      }
    }
    const checkpoint = this.readCheckpoint();
    this.logStart = checkpoint?.logStartOffset ?? logBases[0] ?? 0;
    const recoveryPointOnDisk = checkpoint?.recoveryPoint ?? 0;
    // Segments wholly below the log start go first: their deletion may have been cut short in any order,
    // and a survivor among them must not be mistaken for a gap in the live log.
    while (logBases.length > 1 && logBases[1]! <= this.logStart) {
      const base = logBases.shift()!;
      const stale = this.openForRecovery(base);
      stale.close();
      stale.unlinkFiles();
      dirChanged = true;
    }

    let segmentsScanned = 0;
    let bytesScanned = 0;
    let bytesTruncated = 0;
    let reason: string | null = null;
    const damaged: string[] = [];
    const verified = new Set<Segment>();
    // Segments whose torn tail recovery cut: the cut is made durable with the rest.
    const cut = new Set<Segment>();
    for (let k = 0; k < logBases.length; k++) {
      const base = logBases[k]!;
      const previous = this.segments[this.segments.length - 1];
      if (reason !== null || (previous !== undefined && previous.nextOffset !== base)) {
        // Everything after a bad batch, or after a gap, goes: a later segment cannot be trusted to continue.
        reason ??= `segment ${base} does not continue the log at ${previous?.nextOffset}`;
        const orphan = this.openForRecovery(base);
        bytesTruncated += disk.size(orphan.logFd);
        orphan.close();
        orphan.unlinkFiles();
        dirChanged = true;
        continue;
      }
      const nextBase = logBases[k + 1];
      const trusted = nextBase !== undefined && nextBase <= recoveryPointOnDisk;
      const segment = this.openForRecovery(base);
      const fileBytes = disk.size(segment.logFd);
      const trustedRelativeLimit = trusted ? nextBase - base : Math.max(0, recoveryPointOnDisk - base);
      const outcome = this.recoverSegment(segment, fileBytes, trustedRelativeLimit, !trusted);
      if (!trusted) {
        segmentsScanned++;
        verified.add(segment);
      }
      bytesScanned += outcome.bytesScanned;
      if (trusted && (segment.sizeBytes !== fileBytes || segment.nextOffset !== nextBase)) {
        // A sealed segment below the recovery point was durable when it was sealed, so a header that fails
        // here is damage at rest, not a torn write: cutting it would throw away every later segment with it.
        // It keeps its bytes and the offsets its successor's name proves; reads report the damaged range.
        damaged.push(
          `segment ${base} at byte ${segment.sizeBytes}: ${outcome.stopReason} (offsets up to ${nextBase - 1} are kept; the damaged range is refused when read)`,
        );
        segment.sizeBytes = fileBytes;
        segment.nextOffset = nextBase;
      } else if (segment.sizeBytes < fileBytes) {
        bytesTruncated += fileBytes - segment.sizeBytes;
        reason = `segment ${base} at byte ${segment.sizeBytes}: ${outcome.stopReason}`;
        disk.truncate(segment.logFd, segment.sizeBytes);
        verified.add(segment);
        cut.add(segment);
      }
      segment.flushedSizeBytes = segment.sizeBytes;
      this.segments.push(segment);
    }
    if (this.segments.length === 0) {
      this.segments.push(this.createSegment(this.logStart));
      dirChanged = true;
    }
    this.logStart = Math.max(this.logStart, this.segments[0]!.baseOffset);
    if (this.logStart > this.logEndOffset) {
      // Only media damage below the log start can cause this (records are flushed before the log start
      // moves past them): start afresh at the log start rather than serve a gap.
      reason ??= `log end ${this.logEndOffset} below log start ${this.logStart}`;
      for (const segment of this.segments.splice(0)) {
        bytesTruncated += segment.sizeBytes;
        segment.close();
        segment.unlinkFiles();
      }
      this.segments.push(this.createSegment(this.logStart));
      dirChanged = true;
    }
    while (this.segments.length > 1 && this.segments[0]!.nextOffset <= this.logStart) {
      const segment = this.segments.shift()!;
      segment.close();
      segment.unlinkFiles();
      dirChanged = true;
    }
    for (const segment of this.segments) {
      if (
        verified.has(segment) &&
        (cut.has(segment) || !this.endsAtRecoveryPoint(segment, recoveryPointOnDisk))
      ) {
        // What recovery read may have been only in the page cache (a killed process, not a power loss).
        this.syncSegment(segment);
        this.disk.fsync(segment.logFd);
      } else if (
        segment.persistedOffsetEntries < segment.offsetIndex.count ||
        segment.persistedTimeEntries < segment.timeIndex.count
      ) {
        // A trusted segment whose index was missing or short: keep the rebuilt entries.
        segment.persistIndexes();
        segment.syncIndexes();
      }
    }
    if (dirChanged) disk.fsyncDir(this.dir);
    // Every segment but the last is sealed, with its indexes in their files (persisted just above if rebuilt).
    for (let i = 0; i < this.segments.length - 1; i++) this.segments[i]!.seal(this.indexCache);
    this.recoverEpochs(epochsOnDisk);
    this.flushed = this.logEndOffset;
    this.recoveryPoint = this.logEndOffset;
    if (
      checkpoint === null ||
      checkpoint.recoveryPoint !== this.recoveryPoint ||
      checkpoint.logStartOffset !== this.logStart
    ) {
      this.writeCheckpoint();
    } else {
      this.checkpointOnDisk = checkpoint;
    }
    this.writeEpochsIfChanged();
    this.recovery = { segmentsScanned, bytesScanned, bytesTruncated, reason, damaged };
  }

  /**
   * True when a segment recovery read is the last one and ends exactly at the recovery point on disk with
   * nothing after it in its file (the caller also asks that nothing was cut): the checkpoint, written only
   * after a sync, already says all of it is durable (the common case after a clean shutdown), so it needs no
   * sync again. Index entries rebuilt in
   * memory are written as usual (recovery trusts index entries only below the recovery point and checks each).
   */
  private endsAtRecoveryPoint(segment: Segment, recoveryPointOnDisk: number): boolean {
    return (
      segment === this.segments[this.segments.length - 1] &&
      segment.nextOffset === recoveryPointOnDisk &&
      segment.sizeBytes === this.disk.size(segment.logFd)
    );
  }

  /** Epochs of the batches recovery read, in offset order; folded into the cache once the log end is known. */
  private scannedEpochs: EpochEntry[] | null = null;

  /**
   * The epoch cache after recovery: the checkpoint's entries, cut to the recovered log (a crash may have come
   * between a truncation and its checkpoint), then the epochs of the batches recovery read (appended after the
   * checkpoint was last written). A log without a checkpoint (written before epochs were kept, or damaged) is
   * seeded with the epoch of its first batch.
   */
  private recoverEpochs(onDisk: EpochEntry[] | null): void {
    const scanned = this.scannedEpochs ?? [];
    this.scannedEpochs = null;
    this.epochs.replaceWith(onDisk ?? []);
    this.epochsWritten = onDisk === null ? -1 : this.epochs.version;
    this.epochs.truncateFromEnd(this.logEndOffset);
    if (onDisk === null && this.logEndOffset > this.logStart) {
      const first = this.firstBatchEpoch();
      if (first >= 0) this.epochs.replaceWith([{ epoch: first, startOffset: this.logStart }]);
    }
    for (const e of scanned) {
      if (e.startOffset < this.logEndOffset && e.epoch > this.epochs.latestEpoch)
        this.epochs.assign(e.epoch, e.startOffset);
    }
    this.epochs.truncateFromStart(this.logStart);
  }

  /** The leader epoch stamped in the first batch at the log start, or -1. */
  private firstBatchEpoch(): number {
    const segment = this.segments[0]!;
    const header = new Uint8Array(BATCH_HEADER_BYTES);
    const located = this.locate(segment, this.logStart);
    if (located.kind !== 'found') return -1;
    const n = this.disk.read(segment.logFd, header, located.position);
    if (n !== BATCH_HEADER_BYTES) return -1;
    return readInt32(header, BatchField.partitionLeaderEpoch);
  }

  /** Segments recovery opened, so that a failed open closes every one of them. */
  private readonly openedByRecovery: Segment[] = [];

  private openForRecovery(baseOffset: number): Segment {
    const segment = Segment.open(this.disk, this.dir, baseOffset);
    this.openedByRecovery.push(segment);
    return segment;
  }

  private createSegment(baseOffset: number): Segment {
    const segment = Segment.open(this.disk, this.dir, baseOffset);
    assert(this.disk.size(segment.logFd) === 0, `new segment ${baseOffset} already has data`);
    segment.nextOffset = baseOffset;
    return segment;
  }

  /**
   * Loads a segment's indexes (entries for batches below the trusted limit only) and scans from the last
   * such entry to the end of the file, rebuilding the index entries after it. Sets the segment's size to the
   * end of the last good batch.
   */
  private recoverSegment(
    segment: Segment,
    fileBytes: number,
    trustedRelativeLimit: number,
    deep: boolean,
  ): { bytesScanned: number; stopReason: string } {
    const indexBytes = this.readWhole(segment.indexFd);
    const timeIndexBytes = this.readWhole(segment.timeIndexFd);
    segment.offsetIndex = OffsetIndex.decode(indexBytes, fileBytes, trustedRelativeLimit);
    for (;;) {
      const entries = segment.offsetIndex.count;
      segment.persistedOffsetEntries = entries;
      const startRelative = entries === 0 ? 0 : segment.offsetIndex.relativeOffsetAt(entries - 1);
      const startPosition = entries === 0 ? 0 : segment.offsetIndex.positionAt(entries - 1);
      segment.timeIndex = TimeIndex.decode(timeIndexBytes, trustedRelativeLimit);
      segment.timeIndex.truncateAfterRelativeOffset(startRelative);
      segment.persistedTimeEntries = segment.timeIndex.count;
      segment.sizeBytes = startPosition;
      segment.nextOffset = segment.baseOffset + startRelative;
      segment.maxTimestampMs = segment.timeIndex.lastTimestampMs;
      segment.firstTimestampMs = null;
      const outcome = this.scan(segment, fileBytes, deep);
      if (outcome.batches === 0 && entries > 0) {
        // The entry itself points at no good batch: distrust it and scan from the one before.
        segment.offsetIndex.truncateToCount(entries - 1);
        continue;
      }
      segment.truncateIndexFiles();
      if (startPosition > 0 && segment.sizeBytes > 0)
        segment.firstTimestampMs = this.firstTimestampAt(segment);
      return { bytesScanned: fileBytes - startPosition, stopReason: outcome.stopReason };
    }
  }

  private firstTimestampAt(segment: Segment): number {
    // A first header that cannot be read (damage in a trusted segment) leaves the age unknown: size rolls it.
    const n = this.disk.read(segment.logFd, scratch.header, 0);
    if (n !== BATCH_HEADER_BYTES) return Number.MAX_SAFE_INTEGER;
    return readInt64(scratch.header, BatchField.firstTimestamp);
  }

  private readWhole(fd: number): Uint8Array {
    const size = this.disk.size(fd);
    const bytes = new Uint8Array(size);
    const n = this.disk.read(fd, bytes, 0);
    return bytes.subarray(0, n);
  }

  /** Validates batches from the segment's current end to `fileBytes`, adding each good one to the segment. */
  private scan(segment: Segment, fileBytes: number, deep: boolean): { batches: number; stopReason: string } {
    const chunkBytes = Math.max(SCAN_CHUNK_BYTES, this.config.maxBatchBytes);
    if (scratch.scan.length < chunkBytes) scratch.scan = new Uint8Array(chunkBytes);
    const buffer = scratch.scan;
    let batches = 0;
    while (segment.sizeBytes < fileBytes) {
      const chunkStart = segment.sizeBytes;
      const n = this.disk.read(
        segment.logFd,
        buffer.subarray(0, Math.min(chunkBytes, fileBytes - chunkStart)),
        chunkStart,
      );
      let offset = 0;
      while (offset < n) {
        const check = validateBatch(buffer, offset, n, this.crc32, {
          batchBytesMax: this.config.maxBatchBytes,
          expectedBaseOffset: segment.nextOffset,
          deep,
        });
        if (check.kind === 'incomplete' && chunkStart + n < fileBytes && offset > 0) break;
        if (check.kind !== 'ok') return { batches, stopReason: check.reason };
        const epoch = readInt32(buffer, offset + BatchField.partitionLeaderEpoch);
        const scanned = this.scannedEpochs;
        if (scanned !== null && epoch >= 0 && epoch > (scanned.at(-1)?.epoch ?? -1)) {
          scanned.push({ epoch, startOffset: check.baseOffset });
        }
        segment.addBatch(
          check.baseOffset,
          check.lastOffset,
          chunkStart + offset,
          check.sizeBytes,
          check.firstTimestampMs,
          check.maxTimestampMs,
          this.config.indexIntervalBytes,
        );
        batches++;
        offset += check.sizeBytes;
      }
      if (n === 0) return { batches, stopReason: 'short read' };
    }
    return { batches, stopReason: 'end of file' };
  }

  // -------------------------------------------------------------------------------------------------------
  // Reads.
  //
  // Every byte read here comes from a file and is bad input until checked: a header is believed only when it
  // is sane and continues the offsets of the walk (base offset and length sit outside the CRC), and a batch
  // is handed out only after its CRC matches. Damage is a value (`corrupt`), never an assertion: the batches
  // before it are served, the damaged range is reported with its bounds, and everything after it reads again.

  /**
   * Reads whole batches from the one segment holding `fromOffset`: the batch containing it first (so the
   * bytes may start below it), then following batches while the total stays within `maxBytes` and their base
   * offsets are below `maxOffsetExclusive` (the high watermark, a batch boundary). At least one batch is
   * returned even if it exceeds `maxBytes`, so a consumer always progresses. The bytes are a view of
   * `target` when it is big enough, else of a new buffer; decode them with `forEachRecord` and `fromOffset`.
   * Every batch returned has a matching CRC; a read stops before a damaged batch, and a read that starts in a
   * damaged range answers `corrupt` with that range. A first batch larger than `target` answers
   * `batch_too_large` (the caller's buffer bounds what it can carry).
   */
  read(
    fromOffset: number,
    maxBytes: number,
    maxOffsetExclusive: number = Number.POSITIVE_INFINITY,
    target?: Uint8Array,
  ): ReadResult {
    assert(!this.closed, 'read on a closed log');
    assert(Number.isSafeInteger(fromOffset) && maxBytes >= 0, 'read arguments');
    if (fromOffset < this.logStart) return { kind: 'below_log_start', logStartOffset: this.logStart };
    const upper = Math.min(this.logEndOffset, maxOffsetExclusive);
    if (fromOffset >= upper) return { kind: 'ok', bytes: EMPTY, nextOffset: fromOffset };
    let k = this.segmentIndexFor(fromOffset);
    while (fromOffset >= this.segments[k]!.nextOffset) k++;
    const segment = this.segments[k]!;
    let located = this.locate(segment, fromOffset);
    for (;;) {
      if (located.kind === 'damaged') return this.corrupt(segment, located.range);
      if (target !== undefined && located.sizeBytes > target.length) {
        return { kind: 'batch_too_large', baseOffset: located.baseOffset, batchBytes: located.sizeBytes };
      }
      const wanted = Math.min(segment.sizeBytes - located.position, Math.max(maxBytes, located.sizeBytes));
      const buffer = target !== undefined && target.length >= wanted ? target : new Uint8Array(wanted);
      const n = this.disk.read(segment.logFd, buffer.subarray(0, wanted), located.position);
      let end = 0;
      let expected = located.baseOffset;
      let damage: string | null = null;
      while (end + BATCH_HEADER_BYTES <= n) {
        const check = checkBatchHeader(buffer, end, expected, segment.sizeBytes - located.position - end);
        if (typeof check === 'string') {
          damage = check;
          break;
        }
        if (expected >= upper || (end > 0 && end + check > maxBytes)) break;
        if (end + check > n) {
          damage = 'the file ends inside the batch';
          break;
        }
        if (!batchCrcMatches(buffer, end, check, this.crc32, this.crc32Range)) {
          damage = 'CRC mismatch';
          break;
        }
        expected += readInt32(buffer, end + BatchField.lastOffsetDelta) + 1;
        end += check;
      }
      if (end > 0) return { kind: 'ok', bytes: buffer.subarray(0, end), nextOffset: expected };
      // The first batch itself is damaged (or the file ends before it): report the range, unless the damaged
      // bytes turn out to end before `fromOffset` (a header that overstated its records), then read on.
      const range = this.damagedRange(
        segment,
        located.position,
        located.baseOffset,
        damage ?? 'the file ends inside the batch header',
      );
      if (fromOffset < range.endOffset) return this.corrupt(segment, range);
      located = this.locateFrom(segment, range.resumePosition, range.endOffset, fromOffset);
    }
  }

  private corrupt(segment: Segment, range: DamagedRange): ReadResult {
    this.corruptReads++;
    return {
      kind: 'corrupt',
      firstOffset: range.firstOffset,
      endOffset: range.endOffset,
      segmentBaseOffset: segment.baseOffset,
      position: range.position,
      reason: range.reason,
    };
  }

  /** Index of the segment with the largest base offset <= `offset`. */
  private segmentIndexFor(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segments[mid]!.baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /**
   * The batch in `segment` that contains `offset` (which must be in the segment), or the damaged range that
   * holds it. Starts from the offset index's floor entry; an entry whose batch does not check (a damaged
   * index, or damage right at the entry) is distrusted for the one before it, down to the segment start.
   */
  private locate(segment: Segment, offset: number): Located {
    const index = segment.offsetIndex;
    for (let entry = index.floor(offset - segment.baseOffset); ; entry--) {
      const position = entry < 0 ? 0 : index.positionAt(entry);
      const baseOffset = entry < 0 ? segment.baseOffset : segment.baseOffset + index.relativeOffsetAt(entry);
      const located = this.locateFrom(segment, position, baseOffset, offset, entry >= 0);
      if (located !== null) return located;
    }
  }

  /**
   * Walks from the batch at `position` (base offset `baseOffset`) to the batch holding `offset`. With
   * `distrustStart`, damage at `position` itself answers null (the caller tries an earlier start).
   */
  private locateFrom(segment: Segment, position: number, baseOffset: number, offset: number): Located;
  private locateFrom(
    segment: Segment,
    position: number,
    baseOffset: number,
    offset: number,
    distrustStart: boolean,
  ): Located | null;
  private locateFrom(
    segment: Segment,
    position: number,
    baseOffset: number,
    offset: number,
    distrustStart = false,
  ): Located | null {
    let result: Located | null = null;
    let badStart = false;
    this.walk(
      segment,
      position,
      baseOffset,
      (at, base, last, size) => {
        if (last < offset) return true;
        result = { kind: 'found', position: at, sizeBytes: size, baseOffset: base };
        return false;
      },
      (range) => {
        if (distrustStart && range.position === position) {
          badStart = true;
          return false;
        }
        if (offset < range.endOffset) {
          result = { kind: 'damaged', range };
          return false;
        }
        return true;
      },
    );
    if (badStart) return null;
    // The walk ran to the segment's end without reaching `offset`: the headers' offsets fall short of what the
    // segment holds, so the remainder is damaged (found without resync: nothing after it is in the segment).
    return (
      result ?? {
        kind: 'damaged',
        range: {
          firstOffset: offset,
          endOffset: segment.nextOffset,
          position: segment.sizeBytes,
          resumePosition: segment.sizeBytes,
          reason: 'the batch headers end before the offsets the segment holds',
        },
      }
    );
  }

  /**
   * Walks the batch headers of `segment` from `position` (a batch whose base offset is `baseOffset`) to its
   * end, checking each header and the continuity of offsets. `visit` gets each sound header and returns false
   * to stop. A header that fails (or a file shorter than the segment) is reported to `onDamage` with its
   * damaged range; returning true continues after the range.
   */
  private walk(
    segment: Segment,
    position: number,
    baseOffset: number,
    visit: (
      position: number,
      baseOffset: number,
      lastOffset: number,
      sizeBytes: number,
      maxTimestampMs: number,
    ) => boolean,
    onDamage: (range: DamagedRange) => boolean,
  ): void {
    const buffer = scratch.walk;
    let expected = baseOffset;
    // The batch walked last: its length (outside the CRC) is what led to the next header.
    let previousPosition = -1;
    let previousBase = 0;
    while (position < segment.sizeBytes) {
      const n = this.disk.read(
        segment.logFd,
        buffer.subarray(0, Math.min(buffer.length, segment.sizeBytes - position)),
        position,
      );
      let offset = 0;
      let damage: string | null = null;
      while (offset + BATCH_HEADER_BYTES <= n) {
        const check = checkBatchHeader(buffer, offset, expected, segment.sizeBytes - position - offset);
        if (typeof check === 'string') {
          damage = check;
          break;
        }
        const last = expected + readInt32(buffer, offset + BatchField.lastOffsetDelta);
        const maxTimestampMs = readInt64(buffer, offset + BatchField.maxTimestamp);
        if (!visit(position + offset, expected, last, check, maxTimestampMs)) return;
        previousPosition = position + offset;
        previousBase = expected;
        expected = last + 1;
        offset += check;
      }
      if (damage === null && offset > 0) {
        position += offset;
        continue;
      }
      // Either a header failed, or fewer than a header's bytes remain where the segment says a batch starts.
      // A damaged length in the batch before would lead here too: unless that batch checks in full (its CRC
      // only matches over its true length), the damage starts at it.
      let at = position + offset;
      if (previousPosition >= 0 && !this.batchChecksAt(segment, previousPosition, previousBase)) {
        at = previousPosition;
        expected = previousBase;
      }
      const range = this.damagedRange(segment, at, expected, damage ?? 'the file ends inside a batch header');
      if (!onDamage(range)) return;
      previousPosition = -1;
      position = range.resumePosition;
      expected = range.endOffset;
    }
  }

  /**
   * The range of offsets lost to damage at `position`, where a batch with base offset `firstOffset` should
   * start. Nothing in the damaged bytes is believed. The end is the first place that reads again: an
   * offset-index entry after the damage whose batch checks (header, base offset equal to the entry's, CRC),
   * else the segment's end; and, if a batch between the damage and that point checks and its headers chain
   * exactly to it (a resync scan over at most `RESYNC_SCAN_BYTES`), that batch instead.
   */
  private damagedRange(
    segment: Segment,
    position: number,
    firstOffset: number,
    reason: string,
  ): DamagedRange {
    let limitPosition = segment.sizeBytes;
    let limitOffset = segment.nextOffset;
    const index = segment.offsetIndex;
    for (let i = index.floor(firstOffset - segment.baseOffset) + 1; i < index.count; i++) {
      const entryPosition = index.positionAt(i);
      const entryOffset = segment.baseOffset + index.relativeOffsetAt(i);
      if (entryPosition <= position || entryOffset <= firstOffset) continue;
      if (this.batchChecksAt(segment, entryPosition, entryOffset)) {
        limitPosition = entryPosition;
        limitOffset = entryOffset;
        break;
      }
    }
    const resume = this.resync(segment, position + 1, firstOffset, limitPosition, limitOffset);
    return {
      firstOffset,
      endOffset: resume?.offset ?? limitOffset,
      position,
      resumePosition: resume?.position ?? limitPosition,
      reason,
    };
  }

  /** Whether the batch at `position` has a sane header with base offset `baseOffset` and a matching CRC. */
  private batchChecksAt(segment: Segment, position: number, baseOffset: number): boolean {
    if (position + BATCH_HEADER_BYTES > segment.sizeBytes) return false;
    const header = scratch.header;
    if (this.disk.read(segment.logFd, header, position) !== BATCH_HEADER_BYTES) return false;
    const size = checkBatchHeader(header, 0, baseOffset, segment.sizeBytes - position);
    if (typeof size === 'string') return false;
    const bytes = new Uint8Array(size);
    if (this.disk.read(segment.logFd, bytes, position) !== size) return false;
    return batchCrcMatches(bytes, 0, size, this.crc32);
  }

  /**
   * Scans `[from, limitPosition)` byte by byte for the first batch whose header is sane with a base offset
   * above `firstOffset`, whose CRC matches, and whose following headers chain with contiguous offsets exactly
   * to (`limitPosition`, `limitOffset`). Null when none is found within `RESYNC_SCAN_BYTES`.
   */
  private resync(
    segment: Segment,
    from: number,
    firstOffset: number,
    limitPosition: number,
    limitOffset: number,
  ): { position: number; offset: number } | null {
    const end = Math.min(limitPosition, from + RESYNC_SCAN_BYTES);
    const buffer = scratch.resync;
    for (let chunkStart = from; chunkStart < end; ) {
      const n = this.disk.read(
        segment.logFd,
        buffer.subarray(0, Math.min(buffer.length, end - chunkStart + BATCH_HEADER_BYTES)),
        chunkStart,
      );
      const last = Math.min(n - BATCH_HEADER_BYTES, end - chunkStart - 1);
      for (let i = 0; i <= last; i++) {
        if (buffer[i + BatchField.magic] !== BATCH_MAGIC) continue;
        const base = readInt64(buffer, i + BatchField.baseOffset);
        if (!(base > firstOffset && base < limitOffset)) continue;
        const position = chunkStart + i;
        if (this.chainsTo(segment, position, base, limitPosition, limitOffset))
          return { position, offset: base };
      }
      if (last < 0) break;
      chunkStart += last + 1;
    }
    return null;
  }

  /** Whether the batch at `position` checks and the headers from it chain exactly to the limit. */
  private chainsTo(
    segment: Segment,
    position: number,
    baseOffset: number,
    limitPosition: number,
    limitOffset: number,
  ): boolean {
    if (!this.batchChecksAt(segment, position, baseOffset)) return false;
    const header = scratch.header;
    let at = position;
    let expected = baseOffset;
    while (at < limitPosition) {
      if (this.disk.read(segment.logFd, header, at) !== BATCH_HEADER_BYTES) return false;
      const size = checkBatchHeader(header, 0, expected, limitPosition - at);
      if (typeof size === 'string') return false;
      expected += readInt32(header, BatchField.lastOffsetDelta) + 1;
      at += size;
    }
    return at === limitPosition && expected === limitOffset;
  }

  /**
   * The first offset (>= the log start) whose record timestamp is >= `timestampMs` (Kafka's ListOffsets by
   * timestamp), or null when there is none. Damaged batches are skipped: their timestamps cannot be believed.
   */
  offsetForTimestamp(timestampMs: number): number | null {
    assert(!this.closed, 'offsetForTimestamp on a closed log');
    for (const segment of this.segments) {
      if (segment.maxTimestampMs < timestampMs || segment.nextOffset <= this.logStart) continue;
      // Every record before the entry's batch is older than the target, so the answer is at or after it.
      const entry = segment.timeIndex.lastBefore(timestampMs);
      const startOffset =
        entry < 0 ? segment.baseOffset : segment.baseOffset + segment.timeIndex.relativeOffsetAt(entry);
      const start = this.locate(segment, startOffset);
      const position = start.kind === 'found' ? start.position : start.range.resumePosition;
      const baseOffset = start.kind === 'found' ? start.baseOffset : start.range.endOffset;
      let found: number | null = null;
      this.walk(
        segment,
        position,
        baseOffset,
        (at, _base, last, size, maxTs) => {
          if (maxTs < timestampMs || last < this.logStart) return true;
          found = this.firstRecordAtOrAfter(segment, at, size, timestampMs);
          return found === null;
        },
        () => true,
      );
      if (found !== null) return found;
    }
    return null;
  }

  private firstRecordAtOrAfter(segment: Segment, position: number, sizeBytes: number, timestampMs: number) {
    const bytes = new Uint8Array(sizeBytes);
    if (this.disk.read(segment.logFd, bytes, position) !== sizeBytes) return null;
    let found: number | null = null;
    forEachRecord(
      bytes,
      (record) => {
        if (found === null && record.timestampMs >= timestampMs) found = record.offset;
      },
      { fromOffset: this.logStart, crc32: this.crc32 },
    );
    return found;
  }

  // -------------------------------------------------------------------------------------------------------
  // Truncation and deletion.

  /**
   * Removes every batch that holds an offset >= `offset` (a batch containing `offset` goes whole, so the
   * log end may land below `offset`, as in Kafka). Deletes later segments. If that leaves the end below the
   * log start, the log start moves down to the end (an empty log). Durable when it returns.
   */
  truncateTo(offset: number): TruncateResult {
    assert(!this.closed, 'truncateTo on a closed log');
    this.assertNoSync('truncateTo');
    if (offset < this.logStart) return { kind: 'below_log_start', logStartOffset: this.logStart };
    if (offset >= this.logEndOffset) {
      // No record to cut, but an epoch recorded at the log end by a leader that wrote nothing is dropped
      // (Kafka's truncateTo does the same): the next batch of an older epoch must not be taken for it.
      if (this.epochs.truncateFromEnd(offset)) this.writeEpochsIfChanged();
      return { kind: 'ok', logEndOffset: this.logEndOffset };
    }
    const k = this.segmentIndexFor(offset);
    const segment = this.segments[k]!;
    // A damaged range holding `offset` goes whole, from the end of the last sound batch before it.
    const located = this.locate(segment, offset);
    const cut =
      located.kind === 'found'
        ? { position: located.position, baseOffset: located.baseOffset }
        : { position: located.range.position, baseOffset: located.range.firstOffset };
    const newEnd = cut.baseOffset;
    if (this.recoveryPoint > newEnd) {
      // Lower the recovery point durably first: the rewritten tail must be scanned after a crash.
      this.recoveryPoint = newEnd;
      this.writeCheckpoint();
    }
    const removed = this.segments.splice(k + 1);
    // The cut segment becomes the active one again: its indexes change and must stay in memory.
    segment.unseal();
    for (let i = removed.length - 1; i >= 0; i--) {
      removed[i]!.close();
      removed[i]!.unlinkFiles();
    }
    if (removed.length > 0) this.disk.fsyncDir(this.dir);
    this.disk.truncate(segment.logFd, cut.position);
    this.disk.fsync(segment.logFd);
    const relativeEnd = newEnd - segment.baseOffset;
    segment.offsetIndex.truncateToCount(segment.offsetIndex.floor(relativeEnd - 1) + 1);
    segment.timeIndex.truncateAfterRelativeOffset(relativeEnd - 1);
    segment.truncateIndexFiles();
    segment.syncIndexes();
    segment.sizeBytes = cut.position;
    segment.flushedSizeBytes = cut.position;
    segment.nextOffset = newEnd;
    segment.maxTimestampMs = segment.timeIndex.lastTimestampMs;
    segment.firstTimestampMs = cut.position === 0 ? null : this.firstTimestampAt(segment);
    const entries = segment.offsetIndex.count;
    this.walk(
      segment,
      entries === 0 ? 0 : segment.offsetIndex.positionAt(entries - 1),
      segment.baseOffset + (entries === 0 ? 0 : segment.offsetIndex.relativeOffsetAt(entries - 1)),
      (...batch) => {
        segment.maxTimestampMs = Math.max(segment.maxTimestampMs, batch[4]);
        return true;
      },
      () => true,
    );
    this.flushed = newEnd;
    this.epochs.truncateFromEnd(newEnd);
    this.writeEpochsIfChanged();
    if (newEnd < this.logStart) {
      // The batch holding `offset` started below the log start: the log is now empty at that batch's base,
      // so a follower can append the leader's whole batch again. Written after the cut, so a crash in
      // between leaves a log start above the end, which recovery turns into an empty log.
      this.logStart = newEnd;
      this.writeCheckpoint();
    }
    return { kind: 'ok', logEndOffset: newEnd };
  }

  /**
   * Moves the log start to `offset` (records below it are no longer served) and deletes the segments
   * entirely below it, never the active one. The new log start is checkpointed before it returns.
   */
  deleteRecordsBefore(offset: number): DeleteRecordsResult {
    this.assertNoSync('deleteRecordsBefore');
    assert(!this.closed, 'deleteRecordsBefore on a closed log');
    if (offset > this.logEndOffset) return { kind: 'offset_out_of_range', logEndOffset: this.logEndOffset };
    if (offset <= this.logStart) return { kind: 'ok', logStartOffset: this.logStart, deletedSegments: 0 };
    // A log start above the durable end could outlive the records it points past: make them durable first.
    if (offset > this.flushed) {
      const flushed = this.flush();
      if (flushed.kind !== 'ok') return flushed;
    }
    this.logStart = offset;
    this.epochs.truncateFromStart(offset);
    let count = 0;
    while (count < this.segments.length - 1 && this.segments[count]!.nextOffset <= offset) count++;
    const fault = this.deleteOldestSegments(count);
    if (fault !== null) return { kind: 'storage_failed', fault, definite: true };
    return { kind: 'ok', logStartOffset: this.logStart, deletedSegments: count };
  }

  /**
   * Drops the whole log and starts it empty at `offset` (a follower whose leader no longer has the records
   * after this log's end: the leader's log start moved past it). The checkpoint naming the new log start is
   * written first, so a crash half-way leaves old segments below the log start, which recovery deletes.
   * Durable when it returns.
   */
  resetTo(offset: number): void {
    this.assertNoSync('resetTo');
    assert(!this.closed, 'resetTo on a closed log');
    assert(Number.isSafeInteger(offset) && offset >= 0, `bad reset offset ${offset}`);
    this.epochs.clear();
    this.logStart = offset;
    this.recoveryPoint = offset;
    this.writeCheckpoint();
    for (const segment of this.segments.splice(0)) {
      segment.close();
      segment.unlinkFiles();
    }
    this.segments.push(this.createSegment(offset));
    this.disk.fsyncDir(this.dir);
    this.flushed = offset;
    this.bytesSinceCheckpoint = 0;
  }

  /** Takes new retention settings (a topic's config was altered); the next retention pass applies them. */
  setRetention(retentionMs: number, retentionBytes: number): void {
    const next: LogConfig = { ...this.config, retentionMs, retentionBytes };
    const problems = validateLogConfig(next);
    assert(problems.length === 0, `bad retention settings: ${problems.join('; ')}`);
    this.config = next;
  }

  /**
   * A new segment size for segments rolled from now on (a topic config change), with the batch bound that goes
   * with it; segments already written keep their size.
   */
  setSegmentBytes(segmentBytes: number, maxBatchBytes: number): void {
    const next: LogConfig = { ...this.config, segmentBytes, maxBatchBytes };
    const problems = validateLogConfig(next);
    assert(problems.length === 0, `bad segment settings: ${problems.join('; ')}`);
    this.config = next;
  }

  /**
   * Deletes whole old segments (never the active one) by `retentionBytes` (while the log would still hold
   * at least that many bytes without the segment) and by `retentionMs` (while the segment's newest record
   * is older than nowMs - retentionMs).
   */
  applyRetention(nowMs: number): RetentionResult {
    this.assertNoSync('applyRetention');
    assert(!this.closed, 'applyRetention on a closed log');
    const { retentionBytes, retentionMs } = this.config;
    let remainingBytes = this.sizeBytes;
    let count = 0;
    let deletedBytes = 0;
    while (count < this.segments.length - 1) {
      const segment = this.segments[count]!;
      const byBytes = retentionBytes >= 0 && remainingBytes - segment.sizeBytes >= retentionBytes;
      const byTime = retentionMs >= 0 && segment.maxTimestampMs < nowMs - retentionMs;
      if (!byBytes && !byTime) break;
      remainingBytes -= segment.sizeBytes;
      deletedBytes += segment.sizeBytes;
      count++;
    }
    let fault: StorageFault | null = null;
    if (count > 0) {
      this.logStart = Math.max(this.logStart, this.segments[count]!.baseOffset);
      this.epochs.truncateFromStart(this.logStart);
      fault = this.deleteOldestSegments(count);
    }
    return { deletedSegments: count, deletedBytes, logStartOffset: this.logStart, fault };
  }

  /**
   * Deletes the `count` oldest segments. The checkpoint (with the new log start) goes first: if the unlinks
   * are lost in a crash, recovery deletes the segments again. On a full disk the checkpoint cannot be written,
   * yet deleting is what frees space: then each deletion is made durable (fsyncDir) before the next, oldest
   * first, so whatever a crash keeps is still a contiguous log (a lost unlink of an older segment beside a
   * durable one of a younger would leave a gap, which recovery treats as the end of the log).
   */
  private deleteOldestSegments(count: number): StorageFault | null {
    let fault: StorageFault | null = null;
    try {
      this.writeCheckpoint();
    } catch (error) {
      fault = faultOrRethrow(error, `checkpointing ${this.dir} before deleting old segments`);
    }
    if (count === 0) return fault;
    const oneByOne = fault !== null;
    try {
      for (let i = 0; i < count; i++) {
        const segment = this.segments[0]!;
        segment.close();
        this.segments.shift();
        segment.unlinkFiles();
        if (oneByOne) this.disk.fsyncDir(this.dir);
      }
      if (!oneByOne) this.disk.fsyncDir(this.dir);
    } catch (error) {
      // What was not deleted stays (on disk, or in memory too); a later retention pass tries again.
      fault ??= faultOrRethrow(error, `deleting old segments of ${this.dir}`);
    }
    return fault;
  }

  // -------------------------------------------------------------------------------------------------------
  // Lifecycle.

  /**
   * Flushes, makes the indexes durable and checkpoints the recovery point, so the next open scans nothing.
   * The descriptors are closed whatever happens; a storage fault on the way is returned (the next open's
   * recovery then does what the close could not).
   */
  close(): StorageFault | null {
    if (this.closed) return null;
    this.assertNoSync('close');
    let fault = this.brokenFault;
    if (fault === null && !this.unchangedSinceCheckpoint()) {
      const flushed = this.flush();
      fault = flushed.fault;
      if (flushed.kind === 'ok') {
        try {
          this.checkpointRecoveryPoint();
        } catch (error) {
          fault = faultOrRethrow(error, `checkpointing ${this.dir} on close`);
        }
      }
    }
    for (const segment of this.segments) segment.close();
    this.closed = true;
    return fault;
  }

  /** Drops the descriptors without flushing: what a killed process leaves behind (for tests and benches). */
  abandon(): void {
    if (this.closed) return;
    for (const segment of this.segments) segment.close();
    this.closed = true;
  }

  /** Removes the partition's directory and everything in it. */
  delete(): void {
    this.assertNoSync('delete');
    this.abandon();
    this.disk.removeDir(this.dir);
    this.disk.fsyncDir(dirname(this.dir));
  }
}
