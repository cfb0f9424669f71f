// The idempotent-producer state of one led partition replica, kept beside its log: the pure
// ProducerStateTable (core/replication/producer-state.ts) plus what tells whether it still describes the log.
// The log is the replicated truth: every idempotent batch carries its producer id, epoch and base sequence
// in its header, on the leader and on every follower alike. So the table is not replicated separately: it is
// rebuilt by scanning the log's batch headers whenever it cannot be trusted (first use after a restart, a new
// leader epoch, an append that failed after the table had counted it, a truncation) and kept up to date by the
// leader as it stages batches, with the offsets those batches will get.
// Used by the partition worker thread that owns the replica.
import { assert } from '../core/assert.js';
import { BATCH_HEADER_BYTES, batchSizeAt, readBatchHeader } from '../core/log/record-batch.js';
import { ProducerStateTable, type SequenceCheck } from '../core/replication/producer-state.js';
import type { ProducerFields } from '../messages/produce.js';
import type { PartitionLog } from '../storage/partition-log.js';

/** Bytes read per step while rebuilding from the log. */
const scanChunkBytes = 1024 * 1024;

export interface ProducerScan {
  readonly batches: number;
  readonly bytes: number;
  readonly durationMs: number;
}

export class ProducerGuard {
  private table: ProducerStateTable | null = null;
  /** The leader epoch the table was built in: a new epoch may follow a truncation, so it is rebuilt. */
  private leaderEpoch = -1;
  /** The offset after everything the table has counted (appended or staged): the log end it expects. */
  private expectedEnd = -1;
  /** The last rebuild, for the operator's log. */
  lastScan: ProducerScan | null = null;

  /**
   * The table for a leader in `leaderEpoch` whose log ends at `logEnd` with `stagedRecords` more staged but
   * not appended; null when it must be rebuilt (call `rebuild` once the staged records are appended).
   */
  current(leaderEpoch: number, logEnd: number, stagedRecords: number): ProducerStateTable | null {
    if (this.table === null || this.leaderEpoch !== leaderEpoch) return null;
    return this.expectedEnd === logEnd + stagedRecords ? this.table : null;
  }

  /** Rebuilds the table from every batch header of the log (corrupt ranges are skipped). */
  rebuild(log: PartitionLog, leaderEpoch: number, nowMs: number): ProducerStateTable {
    const started = performance.now();
    const table = new ProducerStateTable();
    const end = log.logEndOffset;
    let offset = log.logStartOffset;
    let batches = 0;
    let bytes = 0;
    while (offset < end) {
      const read = log.read(offset, scanChunkBytes, end);
      if (read.kind === 'below_log_start') {
        offset = read.logStartOffset;
        continue;
      }
      if (read.kind === 'corrupt') {
        // Damaged bytes are never served; a producer whose last batches sat there starts over (unknown).
        offset = read.endOffset;
        continue;
      }
      if (read.kind !== 'ok' || read.bytes.byteLength === 0) break;
      const chunk = read.bytes;
      for (let pos = 0; pos + BATCH_HEADER_BYTES <= chunk.byteLength; pos += batchSizeAt(chunk, pos)) {
        const h = readBatchHeader(chunk, pos);
        batches++;
        if (h.producerId >= 0 && h.baseSequence >= 0 && h.producerEpoch >= 0 && h.recordCount > 0) {
          table.record(h.producerId, h.producerEpoch, h.baseSequence, h.recordCount, h.baseOffset, nowMs);
        }
      }
      bytes += chunk.byteLength;
      assert(read.nextOffset > offset, 'a producer-state scan moves forward');
      offset = read.nextOffset;
    }
    this.table = table;
    this.leaderEpoch = leaderEpoch;
    this.expectedEnd = log.logEndOffset;
    this.lastScan = { batches, bytes, durationMs: performance.now() - started };
    return table;
  }

  /** What to do with an idempotent batch: append it, answer a duplicate, or refuse it. */
  check(table: ProducerStateTable, producer: ProducerFields, recordCount: number): SequenceCheck {
    return table.check(producer.producerId, producer.producerEpoch, producer.baseSequence, recordCount);
  }

  /**
   * Counts a staged batch (idempotent or not) whose first record will get `firstOffset`; `endAfter` is the log
   * end plus everything staged once it is in. An append that later fails leaves the log short of
   * `expectedEnd`, so the next use rebuilds.
   */
  staged(
    producer: ProducerFields | null,
    recordCount: number,
    firstOffset: number,
    endAfter: number,
    nowMs: number,
  ): void {
    if (this.table === null) return;
    if (producer !== null) {
      this.table.record(
        producer.producerId,
        producer.producerEpoch,
        producer.baseSequence,
        recordCount,
        firstOffset,
        nowMs,
      );
    }
    this.expectedEnd = endAfter;
  }

  /** Forgets everything: the replica is no longer led here, or its log was cut. */
  reset(): void {
    this.table = null;
    this.expectedEnd = -1;
    this.leaderEpoch = -1;
  }
}
