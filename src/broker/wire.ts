// The binary messages between the acceptor thread and a partition worker, carried as frames of the
// request and response rings. Owns their byte layouts; the ring owns framing (length, kind, correlation id).
// Encoders write straight into the ring's shared bytes (no intermediate buffer); decoders read in place.
// All integers little-endian. Offsets and timestamps travel as float64: exact below 2^53, which every offset
// and millisecond timestamp is. Callable from the acceptor (encode requests, decode responses) and from
// partition workers (decode requests, encode responses).
//
// PRODUCE request (kind Produce):
// | at | size | field                                                     |
// | 0  | 4    | partition slot (u32, the worker's handle for one partition) |
// | 4  | 1    | acks: 0, 1 or 2 (= all)                                    |
// | 5  | 3    | reserved, zero                                             |
// | 8  | 8    | latest record timestamp ms (f64), for the time index       |
// | 16 | 4    | record count (u32)                                         |
// | 20 | 4    | reserved, zero                                             |
// | 24 | ...  | records, back to back:                                     |
// |    | 8    |   timestamp ms (f64): the record's create time             |
// |    | 4    |   key length (i32, -1 = null), then the key bytes          |
// |    | 4    |   value length (i32, -1 = null), then the value bytes      |
// |    | 2    |   header count (u16), then per header: key length (u16),  |
// |    |      |   key (UTF-8), value length (i32, -1 = null), value        |
//
// PRODUCE response: | 0 | 1 status | 1 | 7 reserved | 8 | 8 base offset f64 | 16 | 8 log end offset f64 |
//                   | 24 | 8 high watermark f64 |
// FETCH request:    | 0 | 4 slot | 4 | 4 max bytes u32 | 8 | 8 offset f64 | 16 | 8 max offset f64 (exclusive;
//                   -1 = the partition's high watermark) |
// FETCH response:   | 0 | 1 status | 1 | 7 reserved | 8 | 8 log start f64 | 16 | 8 high watermark f64 |
//                   | 24 | 8 log end f64 | 32 | ... whole record batches in the log's on-disk format |
//                   With status CorruptData the payload is instead a detail of two f64: | 32 | first damaged
//                   offset | 40 | end offset (exclusive: reading resumes there) |; with TooLarge: | 32 | base
//                   offset of the batch | 40 | its size in bytes |.
// CONTROL request / response: UTF-8 JSON, for rare operations (open, delete, describe, flush, stats), where
// clarity beats speed.
import { assert } from '../core/assert.js';

export const FrameKind = {
  Produce: 1,
  Fetch: 2,
  Control: 3,
  /** Response kinds mirror request kinds with the high bit set. */
  ProduceResult: 0x81,
  FetchResult: 0x82,
  ControlResult: 0x83,
} as const;

export const WireStatus = {
  Ok: 0,
  UnknownPartition: 1,
  /** The request's records do not fit the log's batch limit; nothing was written. */
  TooLarge: 2,
  /** The requested offset is below the log start or past the log end. */
  OffsetOutOfRange: 3,
  /**
   * The write's outcome is unknown: it reached the file, its fsync failed, and the log could not be cut back
   * to its durable end either (the records may or may not survive).
   */
  StorageError: 4,
  ShuttingDown: 5,
  /** Fetch: the range starts in damaged stored bytes; the detail carries the range (see FETCH response). */
  CorruptData: 6,
  /** Produce: nothing was written; the partition's disk is full or over quota (ENOSPC, EDQUOT). */
  StorageFull: 7,
  /** Nothing was written (or read): the partition's storage failed with an I/O error and is being repaired. */
  StorageUnavailable: 8,
} as const;
export type WireStatus = (typeof WireStatus)[keyof typeof WireStatus];

export const produceHeaderBytes = 24;
export const produceResultBytes = 32;
export const fetchRequestBytes = 24;
export const fetchResultHeaderBytes = 32;
/** Bytes of the detail that follows the header of a CorruptData or TooLarge fetch response. */
export const fetchDetailBytes = 16;

/** One record as the acceptor has it after parsing JSON: strings are encoded as UTF-8 on the way in. */
export interface OutgoingRecord {
  key: string | Uint8Array | null;
  value: string | Uint8Array | null;
  headers: readonly (readonly [string, string | Uint8Array | null])[] | null;
  timestampMs: number;
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

/** Exact payload size of a produce request carrying `records`, so the ring can reserve it once. */
export function produceRequestBytes(records: readonly OutgoingRecord[]): number {
  let bytes = produceHeaderBytes;
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

/**
 * Writes a produce request at `at` in `target` (a Buffer and a DataView over the same ring bytes) and returns
 * the number of bytes written, which equals `produceRequestBytes(records)`.
 */
export function encodeProduceRequest(
  target: Buffer,
  view: DataView,
  at: number,
  slot: number,
  acks: 0 | 1 | 2,
  records: readonly OutgoingRecord[],
): number {
  let maxTimestampMs = -1;
  for (const record of records) if (record.timestampMs > maxTimestampMs) maxTimestampMs = record.timestampMs;
  view.setUint32(at, slot, true);
  view.setUint8(at + 4, acks);
  view.setUint8(at + 5, 0);
  view.setUint16(at + 6, 0, true);
  view.setFloat64(at + 8, maxTimestampMs, true);
  view.setUint32(at + 16, records.length, true);
  view.setUint32(at + 20, 0, true);
  let cursor = at + produceHeaderBytes;
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
 * Walks the records of a produce request in place. The visitor gets offsets into `source`; -1 lengths mean
 * null. Headers are visited through `onHeader` before `onRecordEnd`. Asserts the payload is well formed: the
 * acceptor wrote it in this process, so a malformed one is a bug.
 */
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

export function visitProduceRecords(
  view: DataView,
  at: number,
  length: number,
  visitor: ProduceRecordVisitor,
): void {
  const end = at + length;
  const count = view.getUint32(at + 16, true);
  let cursor = at + produceHeaderBytes;
  for (let i = 0; i < count; i++) {
    const timestampMs = view.getFloat64(cursor, true);
    cursor += 8;
    const keyLength = view.getInt32(cursor, true);
    const keyAt = cursor + 4;
    cursor = keyAt + Math.max(keyLength, 0);
    const valueLength = view.getInt32(cursor, true);
    const valueAt = cursor + 4;
    cursor = valueAt + Math.max(valueLength, 0);
    const headerCount = view.getUint16(cursor, true);
    cursor += 2;
    visitor.onRecord(timestampMs, keyAt, keyLength, valueAt, valueLength, headerCount);
    for (let h = 0; h < headerCount; h++) {
      const hKeyLength = view.getUint16(cursor, true);
      const hKeyAt = cursor + 2;
      cursor = hKeyAt + hKeyLength;
      const hValueLength = view.getInt32(cursor, true);
      const hValueAt = cursor + 4;
      cursor = hValueAt + Math.max(hValueLength, 0);
      visitor.onHeader(hKeyAt, hKeyLength, hValueAt, hValueLength);
    }
    visitor.onRecordEnd();
    assert(cursor <= end, 'produce request records run past the frame');
  }
  assert(cursor === end, 'produce request frame has trailing bytes');
}

export function writeProduceResult(
  view: DataView,
  at: number,
  status: WireStatus,
  baseOffset: number,
  logEndOffset: number,
  highWatermark: number,
): void {
  view.setUint8(at, status);
  view.setFloat64(at + 8, baseOffset, true);
  view.setFloat64(at + 16, logEndOffset, true);
  view.setFloat64(at + 24, highWatermark, true);
}

export function writeFetchRequest(
  view: DataView,
  at: number,
  slot: number,
  offset: number,
  maxBytes: number,
  maxOffset: number,
): void {
  view.setUint32(at, slot, true);
  view.setUint32(at + 4, maxBytes, true);
  view.setFloat64(at + 8, offset, true);
  view.setFloat64(at + 16, maxOffset, true);
}

export function writeFetchResultHeader(
  view: DataView,
  at: number,
  status: WireStatus,
  logStartOffset: number,
  highWatermark: number,
  logEndOffset: number,
): void {
  view.setUint8(at, status);
  view.setFloat64(at + 8, logStartOffset, true);
  view.setFloat64(at + 16, highWatermark, true);
  view.setFloat64(at + 24, logEndOffset, true);
}

/** Writes the two-number detail of a CorruptData or TooLarge fetch response after its header at `at`. */
export function writeFetchDetail(view: DataView, at: number, first: number, second: number): void {
  view.setFloat64(at + fetchResultHeaderBytes, first, true);
  view.setFloat64(at + fetchResultHeaderBytes + 8, second, true);
}

/** Reads the detail of a CorruptData or TooLarge fetch response from its payload (after the header). */
export function readFetchDetail(payload: Uint8Array): readonly [number, number] {
  assert(payload.byteLength >= fetchDetailBytes, 'a fetch detail is 16 bytes');
  const view = new DataView(payload.buffer, payload.byteOffset, fetchDetailBytes);
  return [view.getFloat64(0, true), view.getFloat64(8, true)];
}
