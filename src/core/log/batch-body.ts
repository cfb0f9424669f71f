// The binary produce body (`Content-Type: application/vnd.kafka.record-batch`): one or more Kafka magic-2 record
// batches back to back, exactly as a Kafka client encodes a partition's records (CRC-32C, uncompressed, no
// transactions). This module owns three things about it:
// - `encodeRecordBatch`: a small encoder for clients, tests and benchmarks (no Kafka library needed);
// - `checkBatchBody`: the whole-body check before anything is sent to a partition (every batch's framing,
//   CRC-32C, record walk, attributes and producer fields, as the Kafka listener checks them, through
//   `checkProducedBatches`), with each refusal mapped to the HTTP error that names it;
// - `describeCheckedBody`: a header-only walk of a body that was checked elsewhere (on a piscina thread).
// A body that passes keeps its bytes: the caller swaps each CRC-32C for the log's CRC-32 of the same range
// (`rewriteBatchCrcs`) and sends every batch through the produce message's batch flag, the Kafka listener's path.
//
// Pure: checksums are injected or imported as pure code; no I/O. Callable from any thread.
import type { ErrorName } from '../errors.js';
import { crc32c } from '../kafka/crc32c.js';
import { kafkaErrors } from '../kafka/error-codes.js';
import { checkProducedBatches } from '../kafka/produce-batches.js';
import {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  BatchField,
  BatchWriter,
  type Crc32,
  type RecordHeader,
  readInt32,
  readInt64,
} from './record-batch.js';

/** The media type of the binary produce body (parameters after ';' are ignored). */
export const RECORD_BATCH_CONTENT_TYPE = 'application/vnd.kafka.record-batch';

/** One record for `encodeRecordBatch`; strings are encoded as UTF-8. */
export interface BodyRecord {
  readonly key?: Uint8Array | string | null;
  readonly value: Uint8Array | string | null;
  readonly headers?: Readonly<Record<string, string>> | null;
  readonly timestampMs: number;
}

/** The idempotent producer fields of a batch (all three, or none). */
export interface BodyProducer {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly baseSequence: number;
}

const textEncoder = new TextEncoder();

function bytesOf(field: Uint8Array | string | null | undefined): Uint8Array | null {
  if (field === null || field === undefined) return null;
  return typeof field === 'string' ? textEncoder.encode(field) : field;
}

/**
 * One Kafka magic-2 record batch holding `records` (at least one), CRC-32C, uncompressed, base offset 0 and
 * leader epoch -1 (the broker assigns both), as a Kafka producer would send it. Concatenate several for a body
 * of more than one batch. `crc` is for tests that need a batch checksummed otherwise.
 */
export function encodeRecordBatch(
  records: readonly BodyRecord[],
  producer: BodyProducer | null = null,
  crc: Crc32 = crc32c,
): Uint8Array {
  if (records.length === 0) throw new RangeError('a record batch holds at least one record');
  let estimateBytes = BATCH_HEADER_BYTES;
  for (const record of records) {
    estimateBytes += 32 + (bytesOf(record.key)?.length ?? 0) + (bytesOf(record.value)?.length ?? 0);
  }
  const writer = new BatchWriter(Math.max(1024, estimateBytes), 1024 * 1024 * 1024);
  writer.beginBatch(
    producer === null
      ? {}
      : {
          producerId: producer.producerId,
          producerEpoch: producer.producerEpoch,
          baseSequence: producer.baseSequence,
        },
  );
  for (const record of records) {
    const headers: RecordHeader[] = [];
    if (record.headers !== null && record.headers !== undefined) {
      for (const [key, value] of Object.entries(record.headers))
        headers.push({ key, value: textEncoder.encode(value) });
    }
    writer.addRecord(record.timestampMs, bytesOf(record.key), bytesOf(record.value), headers);
  }
  writer.endBatch(crc);
  return writer.bytes().slice();
}

/** One checked batch of a body: where it is and what its header says. */
export interface BodyBatch {
  /** Byte position of the batch in the body. */
  readonly at: number;
  readonly sizeBytes: number;
  readonly recordCount: number;
  readonly maxTimestampMs: number;
  readonly producer: BodyProducer | null;
}

export interface BatchBodyLimits {
  /** Largest batch, in bytes (what one produce message can carry). */
  readonly batchBytesMax: number;
  /** Most records in the whole body (the topic's records-per-request bound). */
  readonly recordsMax: number;
}

export type BatchBodyCheck =
  | { readonly kind: 'ok'; readonly batches: BodyBatch[]; readonly recordCount: number }
  | { readonly kind: 'error'; readonly error: ErrorName; readonly message: string };

const where = 'the record-batch body';

function refuse(error: ErrorName, message: string): BatchBodyCheck {
  return { kind: 'error', error, message: `${where}: ${message}` };
}

/** The HTTP error for a Kafka error code that refuses a produced batch. */
function errorNameOf(kafkaCode: number): ErrorName {
  if (kafkaCode === kafkaErrors.UNSUPPORTED_COMPRESSION_TYPE.code) return 'unsupported_media_type';
  if (kafkaCode === kafkaErrors.MESSAGE_TOO_LARGE.code) return 'payload_too_large';
  return 'bad_request';
}

/**
 * Checks a whole body: at least one batch, every batch whole (its length within the body and at most
 * `batchBytesMax`), magic 2, a CRC-32C that matches, records that walk to the batch's end and number its
 * record count, no compression, no transaction or control batch, producer fields all set or all unset; and no
 * more than `recordsMax` records in all. The first problem refuses the body (nothing of it is sent).
 */
export function checkBatchBody(body: Uint8Array, limits: BatchBodyLimits): BatchBodyCheck {
  if (body.length === 0) {
    return refuse('bad_request', 'the body is empty; expected one or more Kafka magic-2 record batches');
  }
  // Magic and lengths first, so that a length running past the body reads as a bad length, not as a batch
  // too large.
  let pos = 0;
  while (pos < body.length) {
    if (body.length - pos < BATCH_HEADER_BYTES) {
      return refuse(
        'bad_request',
        `${body.length - pos} bytes at byte ${pos} are too short for a record batch header (${BATCH_HEADER_BYTES} bytes)`,
      );
    }
    const magic = body[pos + BatchField.magic]!;
    if (magic !== BATCH_MAGIC) {
      return refuse(
        'bad_request',
        `the record batch at byte ${pos} has magic ${magic}; only Kafka magic-2 record batches are accepted`,
      );
    }
    const sizeBytes = 12 + readInt32(body, pos + BatchField.batchLength);
    if (sizeBytes < BATCH_HEADER_BYTES || sizeBytes > body.length - pos) {
      return refuse(
        'bad_request',
        `the record batch at byte ${pos} declares ${sizeBytes} bytes (batchLength ${sizeBytes - 12}); ${body.length - pos} bytes are left in the body`,
      );
    }
    pos += sizeBytes;
  }
  const checked = checkProducedBatches(body, crc32c, limits.batchBytesMax);
  if (checked.kind === 'error') {
    return refuse(
      errorNameOf(checked.errorCode),
      checked.message.replace('CRC mismatch', 'CRC-32C mismatch (Kafka batches carry CRC-32C)'),
    );
  }
  const batches: BodyBatch[] = new Array(checked.batches.length);
  let recordCount = 0;
  for (let i = 0; i < checked.batches.length; i++) {
    const batch = checked.batches[i]!;
    recordCount += batch.recordCount;
    batches[i] = {
      at: batch.bytes.byteOffset - body.byteOffset,
      sizeBytes: batch.bytes.byteLength,
      recordCount: batch.recordCount,
      maxTimestampMs: batch.maxTimestampMs,
      producer: batch.producer,
    };
  }
  // Counted from batches whose records were walked: a header's count is believed only once it checks out.
  if (recordCount > limits.recordsMax) {
    return refuse(
      'payload_too_large',
      `the batches hold ${recordCount} records; at most ${limits.recordsMax} per request`,
    );
  }
  return { kind: 'ok', batches, recordCount };
}

/** The batches of a body `checkBatchBody` passed (on another thread), read from their headers alone. */
export function describeCheckedBody(body: Uint8Array): { batches: BodyBatch[]; recordCount: number } {
  const batches: BodyBatch[] = [];
  let recordCount = 0;
  let pos = 0;
  while (pos < body.length) {
    const sizeBytes = 12 + readInt32(body, pos + BatchField.batchLength);
    const producerId = readInt64(body, pos + BatchField.producerId);
    const count = readInt32(body, pos + BatchField.recordCount);
    batches.push({
      at: pos,
      sizeBytes,
      recordCount: count,
      maxTimestampMs: readInt64(body, pos + BatchField.maxTimestamp),
      producer:
        producerId < 0
          ? null
          : {
              producerId,
              producerEpoch:
                ((body[pos + BatchField.producerEpoch]! << 24) >> 16) |
                body[pos + BatchField.producerEpoch + 1]!,
              baseSequence: readInt32(body, pos + BatchField.baseSequence),
            },
    });
    recordCount += count;
    pos += sizeBytes;
  }
  return { batches, recordCount };
}
