// Figures a partition worker publishes for /metrics without any message passing: a small Float64Array over a
// SharedArrayBuffer that the worker writes with plain stores and the acceptor reads when scraped. Each slot
// has a single writer (the worker), and a scrape tolerates a figure one batch old, so no ordering is needed
// beyond what the eventual visibility of plain stores gives. Layout below; histograms are cumulative bucket
// counts in Prometheus' sense (count of observations <= bound), plus sum and count.
// Written by one partition worker thread; read by the acceptor thread.

export const fsyncBucketsSeconds = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];
export const batchFramesBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export const StatSlot = {
  batches: 0,
  frames: 1,
  appendedRecords: 2,
  appendedBytes: 3,
  fsyncCount: 4,
  fsyncSecondsSum: 5,
  eventLoopDelayP99Seconds: 6,
  eventLoopDelayMeanSeconds: 7,
  partitions: 8,
  /** Reads that met damaged stored bytes and were refused (counter). */
  corruptReads: 9,
  /** Partitions that cannot take writes now: a full disk or failed storage (gauge). */
  partitionsStorageOffline: 10,
  /** Partitions whose log is open (gauge); the others are opened on first use. */
  openLogs: 11,
  /** Real descriptors open for segment files (gauge, set at every open and close), at most segmentFdsMax. */
  segmentFdsOpen: 12,
  /** Segment file descriptors closed to make room (counter). */
  segmentFdEvictions: 13,
  /**
   * The most records any follower is behind a partition this worker leads (gauge, refreshed about once a
   * second): log end minus the follower's last reported durable end.
   */
  replicaMaxLagRecords: 14,
  /** Bytes allocated on the worker's V8 heap since it started (counter, refreshed every tick; HeapMeter). */
  heapAllocatedBytes: 15,
  fsyncBuckets: 16,
  batchBuckets: 16 + fsyncBucketsSeconds.length,
  /** Seconds the worker spent in garbage-collection pauses (counter, refreshed every tick; HeapMeter). */
  gcSeconds: 16 + fsyncBucketsSeconds.length + batchFramesBuckets.length,
  /** Records written while a group commit's sync ran, to be synced by the next one (counter; pipelining). */
  appendedDuringSyncRecords: 17 + fsyncBucketsSeconds.length + batchFramesBuckets.length,
  /** Bytes of sealed segments' indexes held in memory by the worker's index cache (gauge). */
  indexCacheBytes: 18 + fsyncBucketsSeconds.length + batchFramesBuckets.length,
  /** Sealed segments' indexes dropped from memory to stay within the cache's budget (counter). */
  indexCacheDrops: 19 + fsyncBucketsSeconds.length + batchFramesBuckets.length,
  /** Sealed segments' indexes read back from their files (counter). */
  indexCacheLoads: 20 + fsyncBucketsSeconds.length + batchFramesBuckets.length,
  /** Partitions whose logs a crash left to recover, not recovered yet (gauge; recovered in the background). */
  partitionsAwaitingRecovery: 21 + fsyncBucketsSeconds.length + batchFramesBuckets.length,
} as const;

export const workerStatsLength = StatSlot.partitionsAwaitingRecovery + 1;

export function createWorkerStats(): SharedArrayBuffer {
  return new SharedArrayBuffer(workerStatsLength * Float64Array.BYTES_PER_ELEMENT);
}

/** The worker's writer: cumulative histogram buckets are updated on every observation (a handful of adds). */
export class WorkerStatsWriter {
  readonly values: Float64Array;

  constructor(buffer: SharedArrayBuffer) {
    this.values = new Float64Array(buffer);
  }

  observeBatch(frames: number): void {
    const v = this.values;
    v[StatSlot.batches]! += 1;
    v[StatSlot.frames]! += frames;
    for (let i = 0; i < batchFramesBuckets.length; i++) {
      if (frames <= batchFramesBuckets[i]!) v[StatSlot.batchBuckets + i]! += 1;
    }
  }

  observeFsync(seconds: number): void {
    const v = this.values;
    v[StatSlot.fsyncCount]! += 1;
    v[StatSlot.fsyncSecondsSum]! += seconds;
    for (let i = 0; i < fsyncBucketsSeconds.length; i++) {
      if (seconds <= fsyncBucketsSeconds[i]!) v[StatSlot.fsyncBuckets + i]! += 1;
    }
  }

  observeAppend(records: number, bytes: number, duringSync = false): void {
    this.values[StatSlot.appendedRecords]! += records;
    this.values[StatSlot.appendedBytes]! += bytes;
    if (duringSync) this.values[StatSlot.appendedDuringSyncRecords]! += records;
  }

  add(slot: number, value: number): void {
    this.values[slot]! += value;
  }

  set(slot: number, value: number): void {
    this.values[slot] = value;
  }
}
