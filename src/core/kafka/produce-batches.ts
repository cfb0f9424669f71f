// Splits the records of one partition in a Kafka Produce request into record batches and checks each one
// before anything is sent to a partition: magic 2 (the only format the log stores; older clients' message sets
// are refused), a CRC and record framing that check out, no compression (the log stores uncompressed batches
// only), not transactional and not a control batch (there are no transactions here), and producer fields that
// are all set or all unset. A batch that passes is appended as it is; the broker only patches its base offset
// and leader epoch, outside the CRC, as Kafka does.
//
// Pure: the checksum is injected (Kafka's CRC-32C, crc32c.ts). Callable from any thread.
import {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  BatchField,
  type Crc32,
  readInt32,
  readInt64,
  validateBatch,
} from '../log/record-batch.js';
import { kafkaErrors } from './error-codes.js';

/** Attribute bits of a record batch (Kafka's DefaultRecordBatch). */
export const BatchAttribute = {
  compressionMask: 0x07,
  timestampTypeLogAppend: 0x08,
  transactional: 0x10,
  control: 0x20,
} as const;

/** Kafka's compression codecs by attribute value. */
const compressionNames: Readonly<Record<number, string>> = { 1: 'gzip', 2: 'snappy', 3: 'lz4', 4: 'zstd' };

/** Bytes 16 (magic) sits at the same place in every Kafka message format. */
const MAGIC_AT = 16;

export interface ProducedBatch {
  /** The batch's bytes: a view into the request. */
  readonly bytes: Uint8Array;
  readonly recordCount: number;
  readonly maxTimestampMs: number;
  /** Set for an idempotent producer's batch. */
  readonly producer: {
    readonly producerId: number;
    readonly producerEpoch: number;
    readonly baseSequence: number;
  } | null;
}

export type ProducedBatches =
  | { readonly kind: 'ok'; readonly batches: readonly ProducedBatch[] }
  | { readonly kind: 'error'; readonly errorCode: number; readonly message: string };

function refuse(code: number, message: string): ProducedBatches {
  return { kind: 'error', errorCode: code, message };
}

/**
 * Checks `records` (a partition's records field) and returns its batches, or the Kafka error code that
 * refuses the whole partition's data. `batchBytesMax` bounds one batch (the topic's max.message.bytes).
 */
export function checkProducedBatches(
  records: Uint8Array | null,
  crc32: Crc32,
  batchBytesMax: number,
): ProducedBatches {
  if (records === null || records.length === 0) {
    return refuse(kafkaErrors.CORRUPT_MESSAGE.code, 'the partition carries no records');
  }
  const batches: ProducedBatch[] = [];
  let pos = 0;
  while (pos < records.length) {
    if (records.length - pos > MAGIC_AT && records[pos + MAGIC_AT] !== BATCH_MAGIC) {
      return refuse(
        kafkaErrors.UNSUPPORTED_FOR_MESSAGE_FORMAT.code,
        `message format v${records[pos + MAGIC_AT]} is not supported: only record batches (magic 2)`,
      );
    }
    if (records.length - pos < BATCH_HEADER_BYTES) {
      return refuse(kafkaErrors.CORRUPT_MESSAGE.code, `truncated record batch header at byte ${pos}`);
    }
    const size = 12 + readInt32(records, pos + BatchField.batchLength);
    if (size > batchBytesMax) {
      return refuse(
        kafkaErrors.MESSAGE_TOO_LARGE.code,
        `a record batch of ${size} bytes is above ${batchBytesMax}`,
      );
    }
    // Before the records are checked: a compressed batch's records are not framed as uncompressed ones, and
    // its producer must hear that compression, not corruption, is the problem.
    const attributes =
      (records[pos + BatchField.attributes]! << 8) | records[pos + BatchField.attributes + 1]!;
    const compression = attributes & BatchAttribute.compressionMask;
    if (compression !== 0) {
      return refuse(
        kafkaErrors.UNSUPPORTED_COMPRESSION_TYPE.code,
        `compressed record batches (${compressionNames[compression] ?? `codec ${compression}`}) are not supported: the log stores batches as produced and HTTP consumers read their records directly; produce with compression none (compression.type=none)`,
      );
    }
    const check = validateBatch(records, pos, records.length, crc32, { batchBytesMax, deep: true });
    if (check.kind !== 'ok') {
      return refuse(kafkaErrors.CORRUPT_MESSAGE.code, `record batch at byte ${pos}: ${check.reason}`);
    }
    if ((attributes & (BatchAttribute.transactional | BatchAttribute.control)) !== 0) {
      return refuse(kafkaErrors.INVALID_RECORD.code, 'transactional and control batches are not supported');
    }
    if ((attributes & BatchAttribute.timestampTypeLogAppend) !== 0) {
      return refuse(
        kafkaErrors.INVALID_TIMESTAMP.code,
        'LogAppendTime batches come from brokers, not producers',
      );
    }
    const producerId = readInt64(records, pos + BatchField.producerId);
    const producerEpoch =
      ((records[pos + BatchField.producerEpoch]! << 24) >> 16) | records[pos + BatchField.producerEpoch + 1]!;
    const baseSequence = readInt32(records, pos + BatchField.baseSequence);
    if (!Number.isSafeInteger(producerId)) {
      return refuse(kafkaErrors.INVALID_RECORD.code, 'the producer id is beyond 2^53');
    }
    const idempotent = producerId >= 0;
    if (idempotent && (producerEpoch < 0 || baseSequence < 0)) {
      return refuse(
        kafkaErrors.INVALID_RECORD.code,
        `producer id ${producerId} with epoch ${producerEpoch} and sequence ${baseSequence}: all three must be set`,
      );
    }
    batches.push({
      bytes: records.subarray(pos, pos + check.sizeBytes),
      recordCount: check.recordCount,
      maxTimestampMs: check.maxTimestampMs,
      producer: idempotent ? { producerId, producerEpoch, baseSequence } : null,
    });
    pos += check.sizeBytes;
  }
  return { kind: 'ok', batches };
}
