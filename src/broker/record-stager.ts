// Encodes the records of one produce message into its partition's batch writer, straight from the ring's (or
// the data link's) bytes. A message larger than one batch may hold is split into several batches; when the
// staged bytes reach the append chunk they are appended mid-message (offsets stay contiguous: nothing else
// appends to the log in between). An idempotent produce (producer id, epoch, base sequence) is always one
// batch of its own, so that its producer fields describe exactly its records. One instance serves every message
// of a worker, and record fields are copied straight from the message's bytes (as ranges, no views), so staging
// a record without headers allocates nothing.
// Runs on one partition worker thread.
import { assert } from '../core/assert.js';
import { BATCH_HEADER_BYTES, type BatchWriter, type RecordHeader } from '../core/log/record-batch.js';
import { type ProduceRecordVisitor, type ProducerFields, visitProduceRecords } from '../messages/produce.js';
import { crc32, crc32Range } from '../storage/crc.js';

/** What the stager needs of a partition: its writer, its batch bound, and where to count staged records. */
export interface StagingTarget<P> {
  readonly writer: BatchWriter;
  readonly maxBatchBytes: number;
  /** Produce requests whose records sit in `writer`, not yet appended. */
  readonly staged: P[];
  recordsStaged: number;
}

export class RecordStager<P> implements ProduceRecordVisitor {
  private target: StagingTarget<P> | null = null;
  private pending: P | null = null;
  private bytes: Uint8Array = new Uint8Array(0);
  private chunkBytes = 0;
  private batchStart = 0;
  private recordsInBatch = 0;
  private single = false;
  private timestampMs = 0;
  /** The current record's key and value as ranges of `bytes` (length -1: null). */
  private keyAt = 0;
  private keyLength = -1;
  private valueAt = 0;
  private valueLength = -1;
  private readonly headers: RecordHeader[] = [];

  constructor(private readonly appendStaged: (target: StagingTarget<P>) => void) {}

  /**
   * Stages one produce message's records (well formed: checked by the caller for one from another node).
   * Returns false, staging nothing, when an idempotent message does not fit one batch.
   */
  stage(
    target: StagingTarget<P>,
    pending: P,
    bytes: Uint8Array,
    view: DataView,
    at: number,
    length: number,
    chunkBytes: number,
    producer: ProducerFields | null,
  ): boolean {
    const writer = target.writer;
    const recordsBefore = target.recordsStaged;
    this.target = target;
    this.pending = pending;
    this.bytes = bytes;
    this.chunkBytes = chunkBytes;
    this.batchStart = writer.sizeBytes;
    this.recordsInBatch = 0;
    this.single = producer !== null;
    if (producer === null) writer.beginBatch();
    else writer.beginBatch(producer);
    try {
      assert(visitProduceRecords(view, at, length, this), 'a produce message to stage is well formed');
    } catch (error) {
      if (!(error instanceof SplitRefused)) throw error;
      // Only an idempotent message gets here, within its one batch: nothing of it was appended yet.
      writer.abortBatch();
      target.recordsStaged = recordsBefore;
      this.target = null;
      this.pending = null;
      return false;
    }
    assert(this.recordsInBatch > 0, 'a produce request carries at least one record');
    writer.endBatch(crc32, crc32Range);
    if (writer.sizeBytes >= chunkBytes) this.appendStaged(target);
    this.target = null;
    this.pending = null;
    return true;
  }

  onRecord(
    timestampMs: number,
    keyAt: number,
    keyLength: number,
    valueAt: number,
    valueLength: number,
  ): void {
    this.timestampMs = timestampMs;
    this.keyAt = keyAt;
    this.keyLength = keyLength;
    this.valueAt = valueAt;
    this.valueLength = valueLength;
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
    const target = this.target!;
    const writer = target.writer;
    const batchBytesMax = target.maxBatchBytes;
    const recordBytes = writer.recordSizeBytesOf(this.keyLength, this.valueLength, this.headers);
    // The acceptor bounds every record well below a batch (recordBytesMax), so one always fits.
    assert(
      BATCH_HEADER_BYTES + recordBytes <= batchBytesMax,
      'a record larger than a batch reached the worker',
    );
    if (this.recordsInBatch > 0 && writer.sizeBytes - this.batchStart + recordBytes > batchBytesMax) {
      // An idempotent batch's producer fields name all of its records: it is never split.
      if (this.single) throw new SplitRefused();
      writer.endBatch(crc32, crc32Range);
      if (writer.sizeBytes >= this.chunkBytes) {
        this.appendStaged(target);
        target.staged.push(this.pending!);
      }
      this.batchStart = writer.sizeBytes;
      this.recordsInBatch = 0;
      writer.beginBatch();
    }
    const bytes = this.bytes;
    writer.addRecordFrom(
      this.timestampMs,
      bytes,
      this.keyAt,
      this.keyLength,
      bytes,
      this.valueAt,
      this.valueLength,
      this.headers,
    );
    target.recordsStaged++;
    this.recordsInBatch++;
  }
}

class SplitRefused extends Error {}
