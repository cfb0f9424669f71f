// The files of one partition replica on one broker: its log directory, opened lazily (on first use, its
// offsets read from its checkpoint until then), its leader-epoch cache (loaded from the epoch checkpoint without
// opening the log, so a replica core can run on an idle partition), and its storage faults. A partition whose
// storage fails (a full disk, an I/O error) goes offline for writes: requests are refused at once and
// definitely, reads go on while its log is consistent, and `repair` (called every `repairIntervalMs` by the
// worker) brings it back, reopening the log when its state is unknown.
//
// Invariants: `log` is null or open; `offline` is set exactly while writes are refused; the epoch cache object
// never changes (the replica core holds it), and an open log keeps it (PartitionLog's `epochs` option).
// Runs on one partition worker thread; the counters object is that worker's.
import { join } from 'node:path';
import { EpochCache } from '../core/replication/epoch-cache.js';
import type { DescriptorCache } from '../storage/descriptor-cache.js';
import type { Disk } from '../storage/disk.js';
import type { SegmentIndexCache } from '../storage/index-cache.js';
import { faultOrRethrow, type LogConfig, PartitionLog, type StorageFault } from '../storage/partition-log.js';

const partitionMetadataFile = 'partition.metadata';
/** Space a full disk must have again before a partition takes writes: a whole batch plus index and checkpoint. */
const repairFreeBytesMargin = 64 * 1024;

export interface Offline {
  fault: StorageFault;
  readonly sinceMs: number;
}

/** A partition's offsets as known without its log open; `exact` false while they are lower bounds. */
export interface Figures {
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  readonly sizeBytes: number;
  readonly segmentCount: number;
  readonly exact: boolean;
}

const emptyFigures: Figures = {
  logStartOffset: 0,
  logEndOffset: 0,
  sizeBytes: 0,
  segmentCount: 0,
  exact: true,
};

/** Worker-wide counts the files keep up to date, and where they report. */
export interface FilesContext {
  readonly disk: DescriptorCache;
  readonly dataDir: string;
  /** The data dir's last shutdown was clean: checkpoints hold the log ends. */
  readonly cleanShutdown: boolean;
  openLogs: number;
  offlineCount: number;
  report(line: string): void;
  /** Sealed segments' indexes of every log on the thread, kept in memory within a budget. */
  readonly indexCache: SegmentIndexCache;
}

export class PartitionFiles {
  log: PartitionLog | null = null;
  offline: Offline | null = null;
  readonly epochs = new EpochCache();
  private known: Figures = emptyFigures;
  /** When a damaged read of this partition was last logged (ms since epoch). */
  corruptLoggedAtMs = Number.NEGATIVE_INFINITY;

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly topicId: string,
    public config: LogConfig,
    private readonly ctx: FilesContext,
  ) {
    const figures = this.figuresWithoutOpening();
    if (figures !== null) {
      this.known = figures;
      this.loadEpochs();
    } else {
      // Nothing can be known without the log (no checkpoint, or another topic's directory): open it now.
      const fault = this.openLog();
      if (fault !== null) this.goOffline(fault);
    }
  }

  /** The offsets: from the open log, else as last known. */
  figures(): Figures {
    const log = this.log;
    if (log === null) return this.known;
    return {
      logStartOffset: log.logStartOffset,
      logEndOffset: log.logEndOffset,
      sizeBytes: log.sizeBytes,
      segmentCount: log.segmentCount,
      exact: true,
    };
  }

  /** `figures().logStartOffset` without the figures object (answers and notices read it per request). */
  get logStartOffset(): number {
    const log = this.log;
    return log === null ? this.known.logStartOffset : log.logStartOffset;
  }

  /** `figures().logEndOffset` without the figures object. */
  get logEndOffset(): number {
    const log = this.log;
    return log === null ? this.known.logEndOffset : log.logEndOffset;
  }

  /** Offsets below this are durable (the log's flushed offset; the checkpoint's end while closed). */
  get durableEndOffset(): number {
    return this.log?.flushedOffset ?? this.known.logEndOffset;
  }

  /**
   * Opens the log on first use. False when the partition cannot take requests now: it is offline, or opening
   * failed (which takes it offline).
   */
  ensureLog(): boolean {
    if (this.offline !== null) return this.log !== null;
    if (this.log !== null) return true;
    const fault = this.openLog();
    if (fault === null) return true;
    this.goOffline(fault);
    return false;
  }

  /** Takes the partition's writes offline (logged once per transition), or records the newer fault. */
  goOffline(fault: StorageFault): void {
    if (this.offline !== null) {
      this.offline.fault = fault;
      return;
    }
    this.offline = { fault, sinceMs: Date.now() };
    this.ctx.offlineCount++;
    this.ctx.report(
      `partition ${this.name}: storage offline, writes refused until it is repaired (${fault.full ? 'disk full' : 'I/O error'}, ${fault.code}: ${fault.message})`,
    );
  }

  private goOnline(nowMs: number): void {
    const offline = this.offline;
    if (offline === null) return;
    this.offline = null;
    this.ctx.offlineCount--;
    this.ctx.report(
      `partition ${this.name}: storage back online after ${((nowMs - offline.sinceMs) / 1000).toFixed(1)} s`,
    );
  }

  /**
   * A log that broke (a failed cut-back) is closed once its answers are out; `repair` reopens it. One whose data
   * sync still runs (a pipelined group commit) is closed by a later call, after that sync ended.
   */
  closeIfBroken(): void {
    const log = this.log;
    if (log === null || log.broken === null || log.syncing) return;
    this.known = this.figures();
    log.abandon();
    this.log = null;
    this.ctx.openLogs--;
  }

  /**
   * The bounded retry of a partition that cannot write. A full disk waits until statfs shows room for a whole
   * batch again; then a consistent log simply takes writes again, and a broken or unopened one is opened
   * afresh, whose recovery cuts whatever was left unsynced.
   */
  repair(nowMs: number): void {
    const offline = this.offline;
    if (offline === null) return;
    if (offline.fault.full) {
      let freeBytes: number;
      try {
        freeBytes = this.ctx.disk.freeBytes(this.ctx.dataDir);
      } catch {
        return;
      }
      if (freeBytes < this.config.maxBatchBytes + repairFreeBytesMargin) return;
    }
    if (this.log !== null && this.log.broken === null) {
      this.goOnline(nowMs);
      return;
    }
    if (this.log !== null) {
      this.known = this.figures();
      this.log.abandon();
      this.log = null;
      this.ctx.openLogs--;
    }
    const fault = this.openLog();
    if (fault === null) this.goOnline(nowMs);
    else offline.fault = fault;
  }

  /**
   * A partition's offsets without opening its log. Exact for a new partition (no directory) and after a clean
   * shutdown (a checkpoint of this very topic then holds the log end); after a crash the checkpoint's recovery
   * point is only a lower bound of the log end (`exact` false), and the log is recovered when first used.
   * Null when the log must be opened to know anything: no checkpoint, or a directory left by another topic.
   */
  private figuresWithoutOpening(): Figures | null {
    try {
      const recorded = readSmallFile(this.ctx.disk, join(this.dir, partitionMetadataFile));
      if (recorded === null) return this.ctx.disk.exists(this.dir) ? null : emptyFigures;
      if (recorded.trim() !== `topic_id=${this.topicId}`) return null;
      const checkpoint = PartitionLog.readCheckpointFile(this.ctx.disk, this.dir);
      if (checkpoint === null || checkpoint.logStartOffset > checkpoint.recoveryPoint) return null;
      return {
        logStartOffset: checkpoint.logStartOffset,
        logEndOffset: checkpoint.recoveryPoint,
        sizeBytes: 0,
        segmentCount: 0,
        exact: this.ctx.cleanShutdown,
      };
    } catch (error) {
      faultOrRethrow(error, `reading the checkpoint of ${this.dir}`);
      return null;
    }
  }

  /** The epoch checkpoint into the cache, for a partition whose log is not open. */
  private loadEpochs(): void {
    try {
      const entries = PartitionLog.readEpochsFile(this.ctx.disk, this.dir);
      if (entries !== null) this.epochs.replaceWith(entries);
    } catch (error) {
      faultOrRethrow(error, `reading the epoch checkpoint of ${this.dir}`);
    }
  }

  /** Opens (or reopens) the log and its metadata file; a storage fault is returned, not thrown. */
  private openLog(): StorageFault | null {
    const metadataPath = join(this.dir, partitionMetadataFile);
    let log: PartitionLog | null = null;
    const disk = this.ctx.disk;
    try {
      if (disk.exists(this.dir)) {
        const recorded = readSmallFile(disk, metadataPath);
        if (recorded !== null && recorded.trim() !== `topic_id=${this.topicId}`) {
          // A directory left by an earlier topic of the same name (deleted before its files were): never serve
          // its records as the new topic's.
          disk.removeDir(this.dir);
          disk.fsyncDir(this.ctx.dataDir);
        }
      }
      log = PartitionLog.open(this.dir, this.config, disk, Date.now(), {
        epochs: this.epochs,
        indexCache: this.ctx.indexCache,
      });
      if (!disk.exists(metadataPath)) {
        writeSmallFileAtomically(disk, this.dir, partitionMetadataFile, `topic_id=${this.topicId}\n`);
      }
    } catch (error) {
      log?.abandon();
      return faultOrRethrow(error, `opening ${this.dir}`);
    }
    this.log = log;
    this.ctx.openLogs++;
    const recovery = log.recovery;
    if (recovery.reason !== null || recovery.damaged.length > 0) {
      this.ctx.report(
        `partition ${this.name}: recovery ${recovery.reason === null ? '' : `cut ${recovery.bytesTruncated} bytes (${recovery.reason})`}${recovery.damaged.map((d) => `; damage at rest in ${d}`).join('')}`,
      );
    }
    return null;
  }

  /** Removes the partition's files (its topic was deleted, or the replica moved away). */
  delete(): void {
    if (this.offline !== null) this.goOnline(Date.now());
    try {
      if (this.log !== null) {
        this.log.delete();
        this.log = null;
        this.ctx.openLogs--;
      } else {
        this.ctx.disk.removeDir(this.dir);
        this.ctx.disk.fsyncDir(this.ctx.dataDir);
      }
    } catch (error) {
      // Files left behind are removed by the next open of a topic with this name (its topic id differs).
      const fault = faultOrRethrow(error, `deleting ${this.dir}`);
      this.ctx.report(`partition ${this.name}: delete left files behind (${fault.message})`);
    }
  }

  /** Closes the log at its end; false when the next start must recover it (not clean). */
  close(): boolean {
    let clean = this.offline === null && (this.log !== null || this.known.exact);
    const fault = this.log?.close() ?? null;
    if (fault !== null) {
      clean = false;
      this.ctx.report(
        `partition ${this.name}: closing the log failed (${fault.message}); the next start recovers it`,
      );
    }
    if (this.log !== null) this.ctx.openLogs--;
    this.log = null;
    return clean;
  }
}

/** The text of a small file (up to 4 KiB), or null when it does not exist. */
function readSmallFile(disk: Disk, path: string): string | null {
  let fd: number;
  try {
    fd = disk.open(path, false);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const target = new Uint8Array(4096);
    const n = disk.read(fd, target, 0);
    return Buffer.from(target.buffer, 0, n).toString('utf8');
  } finally {
    disk.close(fd);
  }
}

function writeSmallFileAtomically(disk: Disk, dir: string, name: string, text: string): void {
  const temp = join(dir, `${name}.tmp`);
  const fd = disk.open(temp, true);
  try {
    disk.truncate(fd, 0);
    disk.write(fd, Buffer.from(text, 'utf8'), 0);
    disk.fsync(fd);
  } finally {
    disk.close(fd);
  }
  disk.rename(temp, join(dir, name));
  disk.fsyncDir(dir);
}
