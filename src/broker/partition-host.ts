// The body of a partition worker thread: it owns a set of partition logs outright (no locks) and serves the
// acceptor's requests from its request ring in batches. One batch = every frame available (up to a bound):
// produce frames are encoded into one buffer of record batches per partition, then each touched partition gets
// ONE write and, with the default policy (syncIntervalMs = 0), ONE fsync covering every request of the batch
// (group commit); only then are the answers written to the response ring and published with one store and at
// most one notify. Fetches are served after the batch's appends; control frames (open, delete, describe,
// shutdown) are applied in ring order, after the appends that preceded them.
//
// Logs are opened lazily, on first use (their offsets come from their checkpoints until then), and every
// segment file goes through one bounded descriptor cache per worker, so a worker serves thousands of
// partitions with a few hundred descriptors. A partition whose storage fails (a full disk, an I/O error) goes
// offline for writes: requests are refused at once and definitely, reads go on while its log is consistent,
// and a retry every `repairIntervalMs` brings it back (reopening the log when its state is unknown).
// Invariants: a produce is answered Ok only for records below the flushed offset (fsync per batch) or the log
// end (interval policy) after the batch's flush; `offlineCount` is the number of partitions with `offline`.
// Runs on one partition worker thread; nothing here is shared with another thread except the rings and the
// stats buffer.

import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { assert } from '../core/assert.js';
import { BATCH_HEADER_BYTES, BatchWriter, type RecordHeader } from '../core/log/record-batch.js';
import { partitionDirName } from '../core/names.js';
import { ReserveFailure, RingReader, RingWriter } from '../ring/spsc-ring.js';
import { crc32 } from '../storage/crc.js';
import { DescriptorCache } from '../storage/descriptor-cache.js';
import type { Disk } from '../storage/disk.js';
import {
  DEFAULT_LOG_CONFIG,
  faultOrRethrow,
  type LogConfig,
  PartitionLog,
  type ReadResult,
  type StorageFault,
} from '../storage/partition-log.js';
import {
  FrameKind,
  fetchDetailBytes,
  fetchResultHeaderBytes,
  type ProduceRecordVisitor,
  produceResultBytes,
  visitProduceRecords,
  WireStatus,
  writeFetchDetail,
  writeFetchResultHeader,
  writeProduceResult,
} from './wire.js';
import { StatSlot, WorkerStatsWriter } from './worker-stats.js';

export interface PartitionHostOptions {
  readonly workerIndex: number;
  readonly requests: SharedArrayBuffer;
  readonly responses: SharedArrayBuffer;
  readonly stats: SharedArrayBuffer;
  readonly dataDir: string;
  readonly syncIntervalMs: number;
  readonly indexIntervalBytes: number;
  /** Frames handled per batch at most, so answers never wait behind an unbounded drain. */
  readonly framesPerBatchMax: number;
  readonly retentionCheckIntervalMs: number;
  /** How often a partition whose storage failed tries to come back (default 1000 ms). */
  readonly repairIntervalMs?: number;
  /**
   * Real descriptors this worker keeps open for segment files at most (the descriptor budget's share of one
   * worker; see src/core/descriptor-budget.ts).
   */
  readonly segmentFdsMax: number;
  /**
   * The data dir's last shutdown was clean (every log closed and checkpointed at its end): a partition opens
   * lazily, on first use, its figures read from its checkpoint. Otherwise every partition with data is
   * recovered when it is opened.
   */
  readonly cleanShutdown: boolean;
}

interface PartitionState {
  readonly slot: number;
  readonly name: string;
  request: OpenRequest;
  readonly dir: string;
  readonly config: LogConfig;
  /** Null while the log cannot be open: it failed to open, or it broke and waits for its repair. */
  log: PartitionLog | null;
  /** Taken from the worker's pool while records are staged in a ring batch, returned after it. */
  writer: BatchWriter | null;
  /**
   * Set while the partition cannot take writes (a full disk, an I/O error): produce requests are refused at
   * once and definitely, reads go on while the log is open, and `repairOffline` brings it back.
   */
  offline: Offline | null;
  /** The figures last known, for `describe` while the log is closed. */
  figures: Record<string, number>;
  /** Produce requests whose records sit in `writer`, not yet appended. */
  readonly staged: PendingProduce[];
  recordsStaged: number;
  /** Appended during the current ring batch: needs the batch's fsync before its answers go out. */
  touched: boolean;
  /** When a damaged read of this partition was last logged (ms since epoch). */
  corruptLoggedAtMs: number;
}

interface Offline {
  fault: StorageFault;
  readonly sinceMs: number;
}

interface PendingProduce {
  correlationId: number;
  state: PartitionState | null;
  recordCount: number;
  /** Records staged in the same writer before this request's: its offsets start after them. */
  recordsBefore: number;
  status: WireStatus;
  baseOffset: number;
}

interface PendingFetch {
  correlationId: number;
  slot: number;
  offset: number;
  maxBytes: number;
  maxOffset: number;
}

const partitionMetadataFile = 'partition.metadata';
/** Batch writers kept for reuse, and the largest buffer worth keeping. */
const idleWritersMax = 8;
const idleWriterBytesMax = 1024 * 1024;
/** Partitions not yet opened that one retention pass opens to look at their segments. */
const retentionOpensPerPass = 100;
/** How often a partition whose storage failed tries to come back (a bounded, time-based retry). */
const defaultRepairIntervalMs = 1000;
/** Space a full disk must have again before a partition takes writes: a whole batch plus index and checkpoint. */
const repairFreeBytesMargin = 64 * 1024;
/** A partition logs damaged reads at most this often (each one is still counted). */
const corruptLogIntervalMs = 10_000;

export class PartitionHost {
  private readonly reader: RingReader;
  private readonly writer: RingWriter;
  private readonly responseBytes: Uint8Array;
  private readonly stats: WorkerStatsWriter;
  private readonly partitions = new Map<number, PartitionState>();
  private readonly produces: PendingProduce[] = [];
  private readonly fetches: PendingFetch[] = [];
  private readonly touched: PartitionState[] = [];
  /** One visitor reused for every produce frame: no closures per frame. */
  private readonly stager = new RecordStager((state) => this.appendStaged(state));
  private running = true;
  private readonly idleWriters: BatchWriter[] = [];
  /** Segment files go through this: at most `segmentFdsMax` real descriptors open in this worker. */
  private readonly disk: DescriptorCache;
  /** Partitions whose log is open now. */
  private openLogs = 0;
  /** Partitions with `offline` set. */
  private offlineCount = 0;
  private nextRepairMs = 0;
  /** The first retention pass comes one interval after start, not while partitions are being opened. */
  private lastRetentionMs = Date.now();
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private readonly repairIntervalMs: number;

  constructor(
    private readonly options: PartitionHostOptions,
    disk: Disk,
    /**
     * Where the worker's log lines go: stderr, which reaches the process log (workers have no logger of their
     * own); tests collect them.
     */
    private readonly report: (line: string) => void = (line) => {
      process.stderr.write(`${line}\n`);
    },
  ) {
    this.reader = new RingReader(options.requests);
    this.writer = new RingWriter(options.responses);
    this.responseBytes = this.writer.bytes;
    this.stats = new WorkerStatsWriter(options.stats);
    this.disk = new DescriptorCache(disk, options.segmentFdsMax);
    this.repairIntervalMs = options.repairIntervalMs ?? defaultRepairIntervalMs;
    this.loopDelay.enable();
  }

  async run(): Promise<void> {
    while (this.running) {
      let waitMs = this.options.syncIntervalMs > 0 ? this.options.syncIntervalMs : 1000;
      if (this.offlineCount > 0) waitMs = Math.min(waitMs, this.repairIntervalMs);
      await this.reader.waitAsync(waitMs);
      const nowMs = Date.now();
      await this.serveBatch();
      if (this.options.syncIntervalMs > 0) this.flushDue(nowMs);
      if (this.offlineCount > 0 && nowMs >= this.nextRepairMs) {
        this.nextRepairMs = nowMs + this.repairIntervalMs;
        this.repairOffline(nowMs);
      }
      if (nowMs - this.lastRetentionMs >= this.options.retentionCheckIntervalMs) {
        this.lastRetentionMs = nowMs;
        this.applyRetention(nowMs);
      }
      this.stats.set(StatSlot.eventLoopDelayP99Seconds, this.loopDelay.percentile(99) / 1e9);
      this.stats.set(StatSlot.partitions, this.partitions.size);
      this.stats.set(StatSlot.partitionsStorageOffline, this.offlineCount);
      this.stats.set(StatSlot.openLogs, this.openLogs);
      this.stats.set(StatSlot.segmentFdsOpen, this.disk.openDescriptors);
      this.stats.set(StatSlot.segmentFdEvictions, this.disk.evictions);
    }
    this.loopDelay.disable();
  }

  /** Drains one batch of frames and answers all of them. */
  private async serveBatch(): Promise<void> {
    const reader = this.reader;
    let frames = 0;
    while (frames < this.options.framesPerBatchMax && reader.next()) {
      frames++;
      const kind = reader.kind;
      const correlationId = reader.correlationId;
      const at = reader.payloadOffset;
      const length = reader.payloadBytes;
      if (kind === FrameKind.Produce) {
        this.stageProduce(correlationId, at, length);
      } else if (kind === FrameKind.Fetch) {
        const view = reader.view;
        this.fetches.push({
          correlationId,
          slot: view.getUint32(at, true),
          maxBytes: view.getUint32(at + 4, true),
          offset: view.getFloat64(at + 8, true),
          maxOffset: view.getFloat64(at + 16, true),
        });
      } else if (kind === FrameKind.Control) {
        const request = JSON.parse(
          Buffer.from(reader.bytes.buffer, reader.bytes.byteOffset + at, length).toString('utf8'),
        );
        // Control frames take effect in ring order: finish the appends staged before them first.
        await this.commitAppends();
        await this.answerControl(correlationId, this.control(request as ControlRequest));
      } else {
        assert(false, `unknown request frame kind ${kind}`);
      }
    }
    // Every staged record was copied into a batch writer and every fetch's fields were read: hand the
    // request bytes back to the acceptor with one store before the slow part (write, fsync).
    reader.release();
    if (frames === 0) return;
    this.stats.observeBatch(frames);
    await this.commitAppends();
    await this.serveFetches();
    this.writer.publish();
  }

  // ------------------------------------------------------------------------------------------------------
  // Produce.

  private stageProduce(correlationId: number, at: number, length: number): void {
    const view = this.reader.view;
    const slot = view.getUint32(at, true);
    const recordCount = view.getUint32(at + 16, true);
    const state = this.partitions.get(slot) ?? null;
    const pending: PendingProduce = {
      correlationId,
      state,
      recordCount,
      recordsBefore: 0,
      status: WireStatus.Ok,
      baseOffset: -1,
    };
    this.produces.push(pending);
    if (state === null) {
      pending.status = WireStatus.UnknownPartition;
      return;
    }
    if (!this.ensureLog(state)) {
      // Nothing is attempted while the partition cannot write: the refusal is definite.
      pending.status = offlineStatus(state);
      return;
    }
    state.writer ??= this.idleWriters.pop() ?? new BatchWriter(64 * 1024, 16 * 1024 * 1024);
    pending.recordsBefore = state.recordsStaged;
    state.staged.push(pending);
    this.stager.stage(state, pending, this.reader.bytes, view, at, length, this.appendChunkBytes(state));
  }

  /** Staged bytes above which a partition's writer is appended early, so one append never outgrows a segment. */
  private appendChunkBytes(state: PartitionState): number {
    return Math.min(Math.floor(state.config.segmentBytes / 2), 8 * 1024 * 1024);
  }

  /** One write for everything staged in `state`'s writer; assigns each staged request its base offset. */
  private appendStaged(state: PartitionState): void {
    if (state.staged.length === 0) return;
    const bytes = state.writer!.bytes();
    let status: WireStatus = WireStatus.Ok;
    let firstOffset = -1;
    if (state.offline !== null || state.log === null) {
      // It went offline earlier in this ring batch: the rest is refused without a pointless attempt.
      status = offlineStatus(state);
    } else {
      const result = state.log.append(bytes, { assignOffsets: true, leaderEpoch: 0, nowMs: Date.now() });
      if (result.kind === 'ok') {
        firstOffset = result.firstOffset;
        this.stats.observeAppend(state.recordsStaged, bytes.byteLength);
      } else if (result.kind === 'storage_failed') {
        this.goOffline(state, result.fault);
        status = result.definite ? offlineStatus(state) : WireStatus.StorageError;
      } else {
        assert(
          result.kind === 'batch_too_large' || result.kind === 'append_too_large',
          `append refused: ${result.kind}`,
        );
        status = WireStatus.TooLarge;
      }
    }
    for (const pending of state.staged) {
      // A request split over several appends keeps the base offset of its first one, and fails if any fails.
      if (pending.status !== WireStatus.Ok) continue;
      if (status !== WireStatus.Ok) {
        pending.status = status;
        pending.baseOffset = -1;
      } else if (pending.baseOffset === -1) {
        pending.baseOffset = firstOffset + pending.recordsBefore;
      }
    }
    state.staged.length = 0;
    state.recordsStaged = 0;
    state.writer!.reset();
    if (status === WireStatus.Ok && !state.touched) {
      state.touched = true;
      this.touched.push(state);
    }
  }

  /** One write per touched partition, one fsync each (policy permitting), then every produce answer. */
  private async commitAppends(): Promise<void> {
    if (this.produces.length === 0) return;
    for (const pending of this.produces) {
      if (pending.state !== null && pending.state.staged.length > 0) this.appendStaged(pending.state);
    }
    if (this.options.syncIntervalMs === 0) {
      for (const state of this.touched) {
        const log = state.log;
        if (log === null) continue;
        const startedNs = process.hrtime.bigint();
        // A failed sync cuts the log back to its durable end (see PartitionLog.syncData); the answers below
        // compare each request with what is left.
        const result = log.flush();
        if (result.fault !== null) this.goOffline(state, result.fault);
        this.stats.observeFsync(Number(process.hrtime.bigint() - startedNs) / 1e9);
      }
    }
    for (const state of this.touched) state.touched = false;
    this.touched.length = 0;
    for (const pending of this.produces) {
      const state = pending.state;
      const log = state?.log ?? null;
      if (pending.status === WireStatus.Ok && state !== null && log !== null) {
        // Acknowledged only what the log still holds: durable with fsync-per-batch, appended otherwise. A
        // request past that lost its records to a failed write or sync: definitely, unless the log broke.
        const kept = this.options.syncIntervalMs === 0 ? log.flushedOffset : log.logEndOffset;
        if (pending.baseOffset + pending.recordCount > kept) {
          pending.status = log.broken !== null ? WireStatus.StorageError : offlineStatus(state);
        }
      }
      const at = await this.reserveResponse(produceResultBytes);
      writeProduceResult(
        this.writer.view,
        at,
        pending.status,
        pending.status === WireStatus.Ok ? pending.baseOffset : -1,
        log?.logEndOffset ?? -1,
        state === null || log === null ? -1 : this.highWatermark(state),
      );
      this.writer.commit(FrameKind.ProduceResult, pending.correlationId, produceResultBytes);
    }
    for (const pending of this.produces) {
      const state = pending.state;
      if (state === null || state.writer === null || state.staged.length > 0) continue;
      // Back to the pool, unless it grew for a large batch: an idle partition holds no buffer.
      if (this.idleWriters.length < idleWritersMax && state.writer.capacityBytes <= idleWriterBytesMax) {
        this.idleWriters.push(state.writer);
      }
      state.writer = null;
    }
    this.produces.length = 0;
    // A log that broke in this batch is closed now that its answers are out; `repairOffline` reopens it.
    for (const state of this.partitions.values()) {
      if (state.log !== null && state.log.broken !== null) this.closeBrokenLog(state);
    }
  }

  private highWatermark(state: PartitionState): number {
    const log = state.log;
    assert(log !== null, 'the high watermark of an open log');
    // With fsync before acknowledging, consumers see only what is durable: a record a crash could still take
    // back is never handed out. With an interval policy the log end is the watermark, as in Kafka.
    return this.options.syncIntervalMs === 0 ? log.flushedOffset : log.logEndOffset;
  }

  // ------------------------------------------------------------------------------------------------------
  // Storage faults.

  /** Takes the partition's writes offline (logged once per transition), or records the newer fault. */
  private goOffline(state: PartitionState, fault: StorageFault): void {
    if (state.offline !== null) {
      state.offline.fault = fault;
      return;
    }
    state.offline = { fault, sinceMs: Date.now() };
    this.offlineCount++;
    this.report(
      `partition ${state.name}: storage offline, writes refused until it is repaired (${fault.full ? 'disk full' : 'I/O error'}, ${fault.code}: ${fault.message})`,
    );
  }

  private goOnline(state: PartitionState, nowMs: number): void {
    const offline = state.offline;
    if (offline === null) return;
    state.offline = null;
    this.offlineCount--;
    this.report(
      `partition ${state.name}: storage back online after ${((nowMs - offline.sinceMs) / 1000).toFixed(1)} s`,
    );
  }

  private closeBrokenLog(state: PartitionState): void {
    const log = state.log;
    if (log === null) return;
    state.figures = this.figures(state);
    log.abandon();
    state.log = null;
    this.openLogs--;
  }

  /**
   * The bounded retry of partitions that cannot write, every `repairIntervalMs` from the worker loop. A full
   * disk waits until statfs shows room for a whole batch again; then a consistent log simply takes writes
   * again, and a broken or unopened one is opened afresh, whose recovery cuts whatever was left unsynced.
   */
  private repairOffline(nowMs: number): void {
    for (const state of this.partitions.values()) {
      const offline = state.offline;
      if (offline === null) continue;
      if (offline.fault.full) {
        let freeBytes: number;
        try {
          freeBytes = this.disk.freeBytes(this.options.dataDir);
        } catch {
          continue;
        }
        if (freeBytes < state.config.maxBatchBytes + repairFreeBytesMargin) continue;
      }
      if (state.log !== null && state.log.broken === null) {
        this.goOnline(state, nowMs);
        continue;
      }
      this.closeBrokenLog(state);
      const fault = this.openLog(state);
      if (fault === null) this.goOnline(state, nowMs);
      else offline.fault = fault;
    }
  }

  /**
   * Opens the partition's log on first use (see `PartitionHostOptions.cleanShutdown`). False when the
   * partition cannot take requests now: it is offline, or opening failed (which takes it offline).
   */
  private ensureLog(state: PartitionState): boolean {
    if (state.offline !== null) return false;
    if (state.log !== null) return true;
    const fault = this.openLog(state);
    if (fault === null) return true;
    this.goOffline(state, fault);
    return false;
  }

  /**
   * A partition's offsets without opening its log. Exact for a new partition (no directory) and after a clean
   * shutdown (a checkpoint of this very topic then holds the log end); after a crash the checkpoint's recovery
   * point is only a lower bound of the log end (`exact` 0), and the log is recovered when first used (the
   * acceptor asks for every such partition soon after start). Null when the log must be opened to know
   * anything: no checkpoint, or a directory left by another topic of this name.
   */
  private figuresWithoutOpening(state: PartitionState): Record<string, number> | null {
    try {
      const recorded = readSmallFile(this.disk, join(state.dir, partitionMetadataFile));
      if (recorded === null) return this.disk.exists(state.dir) ? null : emptyFigures;
      if (recorded.trim() !== `topic_id=${state.request.topicId}`) return null;
      const checkpoint = PartitionLog.readCheckpointFile(this.disk, state.dir);
      if (checkpoint === null || checkpoint.logStartOffset > checkpoint.recoveryPoint) return null;
      return {
        logStartOffset: checkpoint.logStartOffset,
        logEndOffset: checkpoint.recoveryPoint,
        highWatermark: checkpoint.recoveryPoint,
        exact: this.options.cleanShutdown ? 1 : 0,
      };
    } catch (error) {
      faultOrRethrow(error, `reading the checkpoint of ${state.dir}`);
      return null;
    }
  }

  /** Opens (or reopens) a partition's log and its metadata file; a storage fault is returned, not thrown. */
  private openLog(state: PartitionState): StorageFault | null {
    const request = state.request;
    const metadataPath = join(state.dir, partitionMetadataFile);
    let log: PartitionLog | null = null;
    try {
      if (this.disk.exists(state.dir)) {
        const recorded = readSmallFile(this.disk, metadataPath);
        if (recorded !== null && recorded.trim() !== `topic_id=${request.topicId}`) {
          // A directory left by an earlier topic of the same name (deleted before its files were): never serve
          // its records as the new topic's.
          this.disk.removeDir(state.dir);
          this.disk.fsyncDir(this.options.dataDir);
        }
      }
      log = PartitionLog.open(state.dir, state.config, this.disk, Date.now());
      if (!this.disk.exists(metadataPath))
        writeSmallFileAtomically(
          this.disk,
          state.dir,
          partitionMetadataFile,
          `topic_id=${request.topicId}\n`,
        );
    } catch (error) {
      log?.abandon();
      return faultOrRethrow(error, `opening ${state.dir}`);
    }
    state.log = log;
    this.openLogs++;
    const recovery = log.recovery;
    if (recovery.reason !== null || recovery.damaged.length > 0) {
      this.report(
        `partition ${state.name}: recovery ${recovery.reason === null ? '' : `cut ${recovery.bytesTruncated} bytes (${recovery.reason})`}${recovery.damaged.map((d) => `; damage at rest in ${d}`).join('')}`,
      );
    }
    return null;
  }

  // ------------------------------------------------------------------------------------------------------
  // Fetch.

  private async serveFetches(): Promise<void> {
    for (const fetch of this.fetches) {
      const state = this.partitions.get(fetch.slot);
      const maxBytes = Math.min(fetch.maxBytes, this.writer.payloadBytesMax - fetchResultHeaderBytes);
      if (state === undefined) {
        const at = await this.reserveResponse(fetchResultHeaderBytes);
        writeFetchResultHeader(this.writer.view, at, WireStatus.UnknownPartition, -1, -1, -1);
        this.writer.commit(FrameKind.FetchResult, fetch.correlationId, fetchResultHeaderBytes);
        continue;
      }
      // Opened on first use; an offline partition with its log open still serves reads (a full disk).
      if (state.log === null && state.offline === null) this.ensureLog(state);
      const log = state.log;
      if (log === null) {
        const at = await this.reserveResponse(fetchResultHeaderBytes);
        writeFetchResultHeader(this.writer.view, at, WireStatus.StorageUnavailable, -1, -1, -1);
        this.writer.commit(FrameKind.FetchResult, fetch.correlationId, fetchResultHeaderBytes);
        continue;
      }
      const highWatermark = this.highWatermark(state);
      const maxOffset = fetch.maxOffset < 0 ? highWatermark : Math.min(fetch.maxOffset, highWatermark);
      let status: WireStatus = WireStatus.Ok;
      if (fetch.offset < log.logStartOffset || fetch.offset > highWatermark)
        status = WireStatus.OffsetOutOfRange;
      // Room for max_bytes, and for one whole batch in case the first is larger (a consumer always
      // progresses); the log reads straight into the response ring.
      const regionBytes = Math.min(
        this.writer.payloadBytesMax - fetchResultHeaderBytes,
        Math.max(maxBytes, log.config.maxBatchBytes),
      );
      const at = await this.reserveResponse(
        fetchResultHeaderBytes + (status === WireStatus.Ok ? regionBytes : 0),
      );
      let readBytes = 0;
      if (status === WireStatus.Ok && fetch.offset < maxOffset) {
        const target = this.responseBytes.subarray(
          at + fetchResultHeaderBytes,
          at + fetchResultHeaderBytes + regionBytes,
        );
        // Every batch the log returns passed its CRC check in place, in the ring, before this frame is
        // published: damaged bytes never reach the acceptor.
        const read = log.read(fetch.offset, maxBytes, maxOffset, target);
        if (read.kind === 'ok') {
          readBytes = read.bytes.byteLength;
          if (read.bytes.buffer !== target.buffer) {
            assert(readBytes <= regionBytes, 'a fetched batch is larger than the response region');
            target.set(read.bytes);
          }
        } else if (read.kind === 'corrupt') {
          status = WireStatus.CorruptData;
          writeFetchDetail(this.writer.view, at, read.firstOffset, read.endOffset);
          readBytes = fetchDetailBytes;
          this.stats.add(StatSlot.corruptReads, 1);
          this.reportCorruptRead(state, read);
        } else if (read.kind === 'batch_too_large') {
          status = WireStatus.TooLarge;
          writeFetchDetail(this.writer.view, at, read.baseOffset, read.batchBytes);
          readBytes = fetchDetailBytes;
        } else status = WireStatus.OffsetOutOfRange;
      }
      writeFetchResultHeader(
        this.writer.view,
        at,
        status,
        log.logStartOffset,
        highWatermark,
        log.logEndOffset,
      );
      this.writer.commit(FrameKind.FetchResult, fetch.correlationId, fetchResultHeaderBytes + readBytes);
    }
    this.fetches.length = 0;
  }

  /**
   * Logs a damaged read, at most once per `corruptLogIntervalMs` per partition: a consumer retrying the same
   * range must not flood the log (the metric counts every one).
   */
  private reportCorruptRead(state: PartitionState, read: Extract<ReadResult, { kind: 'corrupt' }>): void {
    const nowMs = Date.now();
    if (nowMs - state.corruptLoggedAtMs < corruptLogIntervalMs) return;
    state.corruptLoggedAtMs = nowMs;
    this.report(
      `partition ${state.name}: damaged data refused: offsets ${read.firstOffset}..${read.endOffset - 1} (segment ${read.segmentBaseOffset}, byte ${read.position}: ${read.reason}); consumers can resume at offset ${read.endOffset}`,
    );
  }

  /** Reserves a response frame, publishing and waiting for the acceptor to free space if the ring is full. */
  private async reserveResponse(payloadBytes: number): Promise<number> {
    for (;;) {
      const at = this.writer.reserve(payloadBytes);
      if (at >= 0) return at;
      assert(at === ReserveFailure.full, `response of ${payloadBytes} bytes can never fit the response ring`);
      this.writer.publish();
      await this.writer.waitForSpace(payloadBytes);
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // Control.

  private control(request: ControlRequest): Record<string, unknown> {
    switch (request.op) {
      case 'open':
        return this.open(request);
      case 'open_many':
        return { ok: true, partitions: request.partitions.map((p) => this.open({ ...p, op: 'open' })) };
      case 'describe_many':
        // Opens (recovering) each partition whose offsets were only a lower bound, and answers them exactly.
        return {
          ok: true,
          partitions: request.slots.map((slot) => {
            const state = this.partitions.get(slot);
            if (state === undefined) return { ok: false, message: `slot ${slot} is not open here` };
            this.ensureLog(state);
            return { ok: true, ...this.figures(state) };
          }),
        };
      case 'describe': {
        const state = this.partitions.get(request.slot);
        if (state === undefined) return { ok: false, message: `slot ${request.slot} is not open here` };
        this.ensureLog(state);
        return { ok: true, ...this.figures(state) };
      }
      case 'configure': {
        // A topic's retention was altered: take it, and apply it now rather than at the next periodic pass.
        const state = this.partitions.get(request.slot);
        if (state === undefined) return { ok: false, message: `slot ${request.slot} is not open here` };
        state.request = {
          ...state.request,
          retentionMs: request.retentionMs,
          retentionBytes: request.retentionBytes,
        };
        if (state.log !== null && state.offline === null) {
          state.log.setRetention(request.retentionMs, request.retentionBytes);
          state.log.applyRetention(Date.now());
        }
        return { ok: true, ...this.figures(state) };
      }
      case 'offset_for_timestamp': {
        // Kafka's ListOffsets by time: the first offset whose record timestamp is at or after the time,
        // never at or past the high watermark (consumers do not see those records yet).
        const state = this.partitions.get(request.slot);
        if (state === undefined) return { ok: false, message: `slot ${request.slot} is not open here` };
        if (!this.ensureLog(state) || state.log === null) {
          return {
            ok: false,
            message: `${state.name} cannot be read now: ${state.offline?.fault.message ?? 'not open'}`,
          };
        }
        const found = state.log.offsetForTimestamp(request.timestampMs);
        const highWatermark = this.highWatermark(state);
        return {
          ok: true,
          offset: found === null || found >= highWatermark ? null : found,
          ...this.figures(state),
        };
      }
      case 'delete': {
        const state = this.partitions.get(request.slot);
        if (state === undefined) return { ok: true };
        this.partitions.delete(request.slot);
        if (state.offline !== null) this.goOnline(state, Date.now());
        try {
          if (state.log !== null) {
            state.log.delete();
            this.openLogs--;
          } else {
            this.disk.removeDir(state.dir);
            this.disk.fsyncDir(this.options.dataDir);
          }
        } catch (error) {
          // The topic is gone from the metadata either way; files left behind are removed by the next open
          // of a topic with this name (its topic id differs).
          const fault = faultOrRethrow(error, `deleting ${state.dir}`);
          this.report(`partition ${state.name}: delete left files behind (${fault.message})`);
        }
        return { ok: true };
      }
      case 'health': {
        const offline: Record<string, unknown>[] = [];
        for (const state of this.partitions.values()) {
          if (state.offline === null) continue;
          const fault = state.offline.fault;
          offline.push({
            topic: state.request.topic,
            partition: state.request.partition,
            reason: fault.full ? 'storage_full' : 'storage_unavailable',
            code: fault.code,
            message: fault.message,
            since_ms: state.offline.sinceMs,
          });
        }
        return { ok: true, offline };
      }
      case 'shutdown': {
        // Clean: every log closed at its end, so the next start may open partitions lazily from checkpoints.
        const clean = this.closeAll();
        this.running = false;
        return { ok: true, clean };
      }
    }
  }

  private open(request: OpenRequest): Record<string, unknown> {
    const dir = join(this.options.dataDir, partitionDirName(request.topic, request.partition));
    const config: LogConfig = {
      ...DEFAULT_LOG_CONFIG,
      segmentBytes: request.segmentBytes,
      retentionMs: request.retentionMs,
      retentionBytes: request.retentionBytes,
      syncIntervalMs: this.options.syncIntervalMs,
      indexIntervalBytes: this.options.indexIntervalBytes,
      // A batch must fit a fetch answer in the response ring and a segment.
      maxBatchBytes: Math.min(
        DEFAULT_LOG_CONFIG.maxBatchBytes,
        this.writer.payloadBytesMax - fetchResultHeaderBytes,
        request.segmentBytes,
      ),
    };
    const state: PartitionState = {
      slot: request.slot,
      name: `${request.topic}-${request.partition}`,
      request,
      dir,
      config,
      log: null,
      writer: null,
      offline: null,
      figures: emptyFigures,
      staged: [],
      recordsStaged: 0,
      touched: false,
      corruptLoggedAtMs: Number.NEGATIVE_INFINITY,
    };
    this.partitions.set(request.slot, state);
    const figures = this.figuresWithoutOpening(state);
    if (figures !== null) {
      // Opened on first use: an idle partition costs no descriptor and almost no memory.
      state.figures = figures;
      return { ok: true, ...figures };
    }
    // A log that cannot be opened (a full disk, an I/O error) leaves the partition offline, not the worker
    // dead: it is retried with the others, and everything else keeps being served.
    const fault = this.openLog(state);
    if (fault !== null) this.goOffline(state, fault);
    return { ok: true, ...this.figures(state) };
  }

  private figures(state: PartitionState): Record<string, number> {
    if (state.log === null) return state.figures;
    return {
      exact: 1,
      logStartOffset: state.log.logStartOffset,
      logEndOffset: state.log.logEndOffset,
      highWatermark: this.highWatermark(state),
      sizeBytes: state.log.sizeBytes,
      segmentCount: state.log.segmentCount,
    };
  }

  private async answerControl(correlationId: number, answer: Record<string, unknown>): Promise<void> {
    const text = Buffer.from(JSON.stringify(answer), 'utf8');
    const at = await this.reserveResponse(text.byteLength);
    this.responseBytes.set(text, at);
    this.writer.commit(FrameKind.ControlResult, correlationId, text.byteLength);
  }

  // ------------------------------------------------------------------------------------------------------
  // Background duties.

  private flushDue(nowMs: number): void {
    for (const state of this.partitions.values()) {
      const result = state.log?.maybeFlush(nowMs) ?? null;
      if (result !== null && result.fault !== null) this.goOffline(state, result.fault);
      if (state.log?.broken) this.closeBrokenLog(state);
    }
  }

  private applyRetention(nowMs: number): void {
    let opens = 0;
    for (const state of this.partitions.values()) {
      // A partition not opened since start has old segments too: a few are opened per pass, so retention
      // reaches every one in time without opening thousands at once.
      if (state.log === null && state.offline === null && state.figures.logEndOffset! > 0) {
        if (opens >= retentionOpensPerPass) continue;
        opens++;
        this.ensureLog(state);
      }
      // Retention runs on a full disk too: deleting old segments is what frees space there.
      if (state.log === null || state.log.broken !== null) continue;
      const result = state.log.applyRetention(nowMs);
      if (result.fault !== null) this.goOffline(state, result.fault);
    }
  }

  private closeAll(): boolean {
    let clean = true;
    for (const state of this.partitions.values()) {
      // A partition never opened since a crash was not recovered: its checkpoint is not its log end.
      if (state.offline !== null || (state.log === null && state.figures.exact !== 1)) clean = false;
      const fault = state.log?.close() ?? null;
      if (fault !== null) {
        clean = false;
        this.report(
          `partition ${state.name}: closing the log failed (${fault.message}); the next start recovers it`,
        );
      }
    }
    this.partitions.clear();
    this.openLogs = 0;
    return clean;
  }
}

type OpenRequest = {
  op: 'open';
  slot: number;
  topic: string;
  partition: number;
  topicId: string;
  segmentBytes: number;
  retentionMs: number;
  retentionBytes: number;
};
type ControlRequest =
  | OpenRequest
  | { op: 'describe'; slot: number }
  | { op: 'configure'; slot: number; retentionMs: number; retentionBytes: number }
  | { op: 'offset_for_timestamp'; slot: number; timestampMs: number }
  | { op: 'delete'; slot: number }
  | { op: 'health' }
  | { op: 'open_many'; partitions: Omit<OpenRequest, 'op'>[] }
  | { op: 'describe_many'; slots: number[] }
  | { op: 'shutdown' };

/** The definite refusal for a partition that cannot write now: full disk, or failed storage. */
function offlineStatus(state: PartitionState): WireStatus {
  return state.offline === null || state.offline.fault.full
    ? WireStatus.StorageFull
    : WireStatus.StorageUnavailable;
}

/** The figures of a partition with nothing on disk yet. `exact` 1: the acceptor may trust them as they are. */
const emptyFigures: Record<string, number> = {
  logStartOffset: 0,
  logEndOffset: 0,
  highWatermark: 0,
  sizeBytes: 0,
  segmentCount: 0,
  exact: 1,
};

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

/**
 * Encodes the records of one produce frame into its partition's batch writer, straight from the ring bytes.
 * A frame larger than one batch may hold is split into several batches; when the staged bytes reach the
 * append chunk they are appended mid-frame (offsets stay contiguous: nothing else appends to the log between).
 * One instance serves every frame of a worker, so staging allocates nothing but the key/value views.
 */
class RecordStager implements ProduceRecordVisitor {
  private state: PartitionState | null = null;
  private pending: PendingProduce | null = null;
  private bytes: Uint8Array = new Uint8Array(0);
  private chunkBytes = 0;
  private batchStart = 0;
  private recordsInBatch = 0;
  private timestampMs = 0;
  private key: Uint8Array | null = null;
  private value: Uint8Array | null = null;
  private readonly headers: RecordHeader[] = [];

  constructor(private readonly appendStaged: (state: PartitionState) => void) {}

  stage(
    state: PartitionState,
    pending: PendingProduce,
    bytes: Uint8Array,
    view: DataView,
    at: number,
    length: number,
    chunkBytes: number,
  ): void {
    this.state = state;
    this.pending = pending;
    this.bytes = bytes;
    this.chunkBytes = chunkBytes;
    const writer = state.writer!;
    this.batchStart = writer.sizeBytes;
    this.recordsInBatch = 0;
    writer.beginBatch();
    visitProduceRecords(view, at, length, this);
    assert(this.recordsInBatch > 0, 'a produce request carries at least one record');
    writer.endBatch(crc32);
    if (writer.sizeBytes >= chunkBytes) this.appendStaged(state);
    this.state = null;
    this.pending = null;
  }

  onRecord(
    timestampMs: number,
    keyAt: number,
    keyLength: number,
    valueAt: number,
    valueLength: number,
  ): void {
    this.timestampMs = timestampMs;
    this.key = keyLength < 0 ? null : this.bytes.subarray(keyAt, keyAt + keyLength);
    this.value = valueLength < 0 ? null : this.bytes.subarray(valueAt, valueAt + valueLength);
    this.headers.length = 0;
  }

  onHeader(keyAt: number, keyLength: number, valueAt: number, valueLength: number): void {
    const bytes = this.bytes;
    this.headers.push({
      key: Buffer.from(bytes.buffer, bytes.byteOffset + keyAt, keyLength).toString('utf8'),
      value: valueLength < 0 ? null : bytes.slice(valueAt, valueAt + valueLength),
    });
  }

  onRecordEnd(): void {
    const state = this.state!;
    const writer = state.writer!;
    const batchBytesMax = state.config.maxBatchBytes;
    const recordBytes = writer.recordSizeBytes(this.key, this.value, this.headers);
    // The acceptor bounds every record well below a batch (recordBytesMax), so one always fits.
    assert(
      BATCH_HEADER_BYTES + recordBytes <= batchBytesMax,
      'a record larger than a batch reached the worker',
    );
    if (this.recordsInBatch > 0 && writer.sizeBytes - this.batchStart + recordBytes > batchBytesMax) {
      writer.endBatch(crc32);
      if (writer.sizeBytes >= this.chunkBytes) {
        this.appendStaged(state);
        state.staged.push(this.pending!);
      }
      this.batchStart = writer.sizeBytes;
      this.recordsInBatch = 0;
      writer.beginBatch();
    }
    writer.addRecord(this.timestampMs, this.key, this.value, this.headers);
    state.recordsStaged++;
    this.recordsInBatch++;
  }
}
