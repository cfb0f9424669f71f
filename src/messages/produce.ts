// The PRODUCE message and its answer, as carried by a request ring (acceptor to worker) and by the data link
// (a node forwarding a client's produce to the partition's leader). This module owns both layouts: encoders
// write straight into the ring's or the frame's bytes, decoders read in place. All integers little-endian;
// offsets, timestamps and producer ids travel as float64 (exact below 2^53).
//
// PRODUCE request:
// | at | size | field                                                              |
// | 0  | 4    | topic sequence number (u32, the metadata's topicSeq)               |
// | 4  | 4    | partition (u32)                                                    |
// | 8  | 1    | acks: 0, 1 or 2 (= all)                                            |
// | 9  | 1    | flags: bit 0 idempotent (producer id, epoch and sequence are set) |
// |    |      |   bit 1 batch: the records are one encoded magic-2 record batch   |
// | 10 | 2    | producer epoch (i16; -1 = none)                                    |
// | 12 | 4    | record count (u32, >= 1)                                           |
// | 16 | 8    | producer id (f64; -1 = none)                                       |
// | 24 | 4    | base sequence (i32; -1 = none)                                     |
// | 28 | 4    | acks=all wait bound in ms (u32)                                    |
// | 32 | 8    | latest record timestamp ms (f64)                                   |
// | 40 | ...  | with the batch flag: one whole record batch as a Kafka client sent  |
// |    |      | it (CRC-checked by the acceptor; its producer fields match above), |
// |    |      | appended as it is; otherwise records, back to back:                |
// |    | 8    |   timestamp ms (f64)                                               |
// |    | 4    |   key length (i32, -1 = null), then the key bytes                  |
// |    | 4    |   value length (i32, -1 = null), then the value bytes              |
// |    | 2    |   header count (u16), then per header: key length (u16), key       |
// |    |      |   (UTF-8), value length (i32, -1 = null), value                    |
//
// PRODUCE answer (48 bytes):
// | 0  | 1 status (messages/status.ts) | 1 | 1 flags: bit 0 duplicate (a retried batch; nothing appended) |
// | 2  | 6 reserved                                                                                      |
// | 8  | 8 base offset (f64; -1 when nothing was appended)                                              |
// | 16 | 8 log end offset (f64)  | 24 | 8 high watermark (f64; -1 while it cannot be served)           |
// | 32 | 8 log start offset (f64)                                                                       |
// | 40 | 8 detail (f64): the expected sequence (OutOfOrderSequence), the producer's epoch                |
// |    |   (FencedProducerEpoch), the ISR size (NotEnoughReplicas); otherwise 0                         |
// Callable from any thread.
import { assertionFailed } from '../core/assert.js';
import type { Status } from './status.js';

export const PRODUCE_HEADER_BYTES = 40;
/** Flag bits of a produce request. */
export const ProduceFlag = { idempotent: 1, batch: 2 } as const;
export const PRODUCE_ANSWER_BYTES = 48;

export const Acks = { none: 0, leader: 1, all: 2 } as const;
export type Acks = (typeof Acks)[keyof typeof Acks];

/** One record as the acceptor has it after parsing JSON: strings are encoded as UTF-8 on the way in. */
export interface OutgoingRecord {
  key: string | Uint8Array | null;
  value: string | Uint8Array | null;
  headers: readonly (readonly [string, string | Uint8Array | null])[] | null;
  timestampMs: number;
}

/** The idempotent producer fields of a produce, or none. */
export interface ProducerFields {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly baseSequence: number;
}

export interface ProduceHeader {
  readonly topicSeq: number;
  readonly partition: number;
  readonly acks: Acks;
  readonly producer: ProducerFields | null;
  readonly timeoutMs: number;
}

function fieldBytes(field: string | Uint8Array | null): number {
  if (field === null) return 0;
  return typeof field === 'string' ? Buffer.byteLength(field, 'utf8') : field.byteLength;
}

/** Bytes one record takes in a produce request. */
export function recordWireBytes(record: OutgoingRecord): number {
  let bytes = 8 + 4 + fieldBytes(record.key) + 4 + fieldBytes(record.value) + 2;
  if (record.headers !== null) {
    for (const [key, value] of record.headers)
      bytes += 2 + Buffer.byteLength(key, 'utf8') + 4 + fieldBytes(value);
  }
  return bytes;
}

/** Exact payload size of a produce request carrying `records`, so a ring or frame can reserve it once. */
export function produceRequestBytes(records: readonly OutgoingRecord[]): number {
  let bytes = PRODUCE_HEADER_BYTES;
  for (const record of records) bytes += recordWireBytes(record);
  return bytes;
}

function writeField(target: Buffer, view: DataView, at: number, field: string | Uint8Array | null): number {
  if (field === null) {
    view.setInt32(at, -1, true);
    return at + 4;
  }
  let length: number;
  if (typeof field === 'string') {
    length = target.write(field, at + 4, 'utf8');
  } else {
    target.set(field, at + 4);
    length = field.byteLength;
  }
  view.setInt32(at, length, true);
  return at + 4 + length;
}

/** Writes the 40-byte header of a produce request carrying `recordCount` records. */
export function writeProduceHeader(
  view: DataView,
  at: number,
  header: ProduceHeader,
  recordCount: number,
  maxTimestampMs: number,
): void {
  view.setUint32(at, header.topicSeq, true);
  view.setUint32(at + 4, header.partition, true);
  view.setUint8(at + 8, header.acks);
  view.setUint8(at + 9, header.producer === null ? 0 : ProduceFlag.idempotent);
  view.setInt16(at + 10, header.producer?.producerEpoch ?? -1, true);
  view.setUint32(at + 12, recordCount, true);
  view.setFloat64(at + 16, header.producer?.producerId ?? -1, true);
  view.setInt32(at + 24, header.producer?.baseSequence ?? -1, true);
  view.setUint32(at + 28, header.timeoutMs, true);
  view.setFloat64(at + 32, maxTimestampMs, true);
}

/**
 * Writes a produce request at `at` (a Buffer and a DataView over the same bytes) and returns the bytes
 * written, which equal `produceRequestBytes(records)`.
 */
export function encodeProduceRequest(
  target: Buffer,
  view: DataView,
  at: number,
  header: ProduceHeader,
  records: readonly OutgoingRecord[],
): number {
  let maxTimestampMs = -1;
  for (const record of records) if (record.timestampMs > maxTimestampMs) maxTimestampMs = record.timestampMs;
  writeProduceHeader(view, at, header, records.length, maxTimestampMs);
  let cursor = at + PRODUCE_HEADER_BYTES;
  for (const record of records) {
    view.setFloat64(cursor, record.timestampMs, true);
    cursor = writeField(target, view, cursor + 8, record.key);
    cursor = writeField(target, view, cursor, record.value);
    const headers = record.headers;
    view.setUint16(cursor, headers === null ? 0 : headers.length, true);
    cursor += 2;
    if (headers !== null) {
      for (const [key, value] of headers) {
        const keyLength = target.write(key, cursor + 2, 'utf8');
        view.setUint16(cursor, keyLength, true);
        cursor = writeField(target, view, cursor + 2 + keyLength, value);
      }
    }
  }
  return cursor - at;
}

/**
 * Writes a produce request whose records are one encoded record batch (a Kafka client's, validated by the
 * caller): the header with the batch flag, then the batch's bytes. Returns the bytes written.
 */
export function encodeBatchProduceRequest(
  target: Uint8Array,
  view: DataView,
  at: number,
  header: ProduceHeader,
  batch: Uint8Array,
  recordCount: number,
  maxTimestampMs: number,
): number {
  writeProduceHeader(view, at, header, recordCount, maxTimestampMs);
  view.setUint8(at + 9, view.getUint8(at + 9) | ProduceFlag.batch);
  target.set(batch, at + PRODUCE_HEADER_BYTES);
  return PRODUCE_HEADER_BYTES + batch.byteLength;
}

/** Whether a produce request carries one encoded record batch rather than records. */
export function isBatchProduce(view: DataView, at: number): boolean {
  return (view.getUint8(at + 9) & ProduceFlag.batch) !== 0;
}

/** Reads a produce request's header in place. */
export function readProduceHeader(
  view: DataView,
  at: number,
): ProduceHeader & { readonly recordCount: number } {
  return readProduceHeaderInto(view, at, emptyProduceHeader());
}

/** A produce header as `readProduceHeaderInto` fills it: one object reused for every request of a thread. */
export interface ProduceHeaderFields {
  topicSeq: number;
  partition: number;
  acks: Acks;
  producer: ProducerFields | null;
  timeoutMs: number;
  recordCount: number;
}

export function emptyProduceHeader(): ProduceHeaderFields {
  return { topicSeq: 0, partition: 0, acks: Acks.none, producer: null, timeoutMs: 0, recordCount: 0 };
}

/**
 * Reads a produce request's header into `into` (reused by the caller, valid until its next call) and returns
 * it. Allocates only the producer fields of an idempotent produce, which their receiver may keep.
 */
export function readProduceHeaderInto(
  view: DataView,
  at: number,
  into: ProduceHeaderFields,
): ProduceHeaderFields {
  const idempotent = (view.getUint8(at + 9) & ProduceFlag.idempotent) !== 0;
  into.topicSeq = view.getUint32(at, true);
  into.partition = view.getUint32(at + 4, true);
  into.acks = view.getUint8(at + 8) as Acks;
  into.producer = idempotent
    ? {
        producerId: view.getFloat64(at + 16, true),
        producerEpoch: view.getInt16(at + 10, true),
        baseSequence: view.getInt32(at + 24, true),
      }
    : null;
  into.timeoutMs = view.getUint32(at + 28, true);
  into.recordCount = view.getUint32(at + 12, true);
  return into;
}

/** The partition a request (produce, fetch or describe) names: all of them start with it. */
export function readPartitionKey(view: DataView, at: number): { topicSeq: number; partition: number } {
  return { topicSeq: view.getUint32(at, true), partition: view.getUint32(at + 4, true) };
}

/** Walks the records of a produce request in place; the visitor gets offsets into the bytes, -1 for null. */
export interface ProduceRecordVisitor {
  onRecord(
    timestampMs: number,
    keyAt: number,
    keyLength: number,
    valueAt: number,
    valueLength: number,
    headerCount: number,
  ): void;
  onHeader(keyAt: number, keyLength: number, valueAt: number, valueLength: number): void;
  onRecordEnd(): void;
}

/**
 * Visits every record. Returns false when the payload is malformed (a length running past the frame, trailing
 * bytes): a frame from the ring was written by this process and is asserted by the caller, a frame from the
 * data link comes from another node and is refused.
 */
export function visitProduceRecords(
  view: DataView,
  at: number,
  length: number,
  visitor: ProduceRecordVisitor,
): boolean {
  const end = at + length;
  if (length < PRODUCE_HEADER_BYTES) return false;
  const count = view.getUint32(at + 12, true);
  let cursor = at + PRODUCE_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (cursor + 14 > end) return false;
    const timestampMs = view.getFloat64(cursor, true);
    cursor += 8;
    const keyLength = view.getInt32(cursor, true);
    const keyAt = cursor + 4;
    cursor = keyAt + Math.max(keyLength, 0);
    if (keyLength < -1 || cursor + 6 > end) return false;
    const valueLength = view.getInt32(cursor, true);
    const valueAt = cursor + 4;
    cursor = valueAt + Math.max(valueLength, 0);
    if (valueLength < -1 || cursor + 2 > end) return false;
    const headerCount = view.getUint16(cursor, true);
    cursor += 2;
    visitor.onRecord(timestampMs, keyAt, keyLength, valueAt, valueLength, headerCount);
    for (let h = 0; h < headerCount; h++) {
      if (cursor + 6 > end) return false;
      const hKeyLength = view.getUint16(cursor, true);
      const hKeyAt = cursor + 2;
      cursor = hKeyAt + hKeyLength;
      if (cursor + 4 > end) return false;
      const hValueLength = view.getInt32(cursor, true);
      const hValueAt = cursor + 4;
      cursor = hValueAt + Math.max(hValueLength, 0);
      if (hValueLength < -1 || cursor > end) return false;
      visitor.onHeader(hKeyAt, hKeyLength, hValueAt, hValueLength);
    }
    visitor.onRecordEnd();
  }
  return cursor === end;
}

const noVisitor: ProduceRecordVisitor = {
  onRecord: () => undefined,
  onHeader: () => undefined,
  onRecordEnd: () => undefined,
};

/** True when the records of a produce request are well formed (for a request from another node). */
export function validProduceRecords(view: DataView, at: number, length: number): boolean {
  return visitProduceRecords(view, at, length, noVisitor);
}

export interface ProduceAnswer {
  status: Status;
  duplicate: boolean;
  baseOffset: number;
  logEndOffset: number;
  highWatermark: number;
  logStartOffset: number;
  detail: number;
}

export function writeProduceAnswer(view: DataView, at: number, answer: Readonly<ProduceAnswer>): void {
  view.setUint8(at, answer.status);
  view.setUint8(at + 1, answer.duplicate ? 1 : 0);
  view.setFloat64(at + 8, answer.baseOffset, true);
  view.setFloat64(at + 16, answer.logEndOffset, true);
  view.setFloat64(at + 24, answer.highWatermark, true);
  view.setFloat64(at + 32, answer.logStartOffset, true);
  view.setFloat64(at + 40, answer.detail, true);
}

/** Reads a produce answer into `into` (reused by the caller, so decoding allocates nothing). */
export function readProduceAnswer(
  view: DataView,
  at: number,
  length: number,
  into: ProduceAnswer,
): ProduceAnswer {
  if (!(length >= PRODUCE_ANSWER_BYTES))
    assertionFailed(`a produce answer is ${PRODUCE_ANSWER_BYTES} bytes, got ${length}`);
  into.status = view.getUint8(at) as Status;
  into.duplicate = (view.getUint8(at + 1) & 1) === 1;
  into.baseOffset = view.getFloat64(at + 8, true);
  into.logEndOffset = view.getFloat64(at + 16, true);
  into.highWatermark = view.getFloat64(at + 24, true);
  into.logStartOffset = view.getFloat64(at + 32, true);
  into.detail = view.getFloat64(at + 40, true);
  return into;
}

export function emptyProduceAnswer(): ProduceAnswer {
  return {
    status: 0 as Status,
    duplicate: false,
    baseOffset: -1,
    logEndOffset: -1,
    highWatermark: -1,
    logStartOffset: -1,
    detail: 0,
  };
}
