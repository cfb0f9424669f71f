// The on-disk and on-wire record batch: encoder (BatchWriter), decoder (forEachRecord) and the validator used
// by recovery and by the replication append path. Modelled on Kafka's magic-2 record batch.
// Pure: no I/O; the CRC-32 function is injected (the storage shell passes `zlib.crc32`). Callable from any
// thread; a BatchWriter belongs to one thread.
//
// Batch header (big-endian, 61 bytes), then `recordCount` records:
//
// | offset | size | field                | notes                                                            |
// |--------|------|----------------------|------------------------------------------------------------------|
// |      0 |    8 | baseOffset           | int64; assigned by the leader, patched in place                  |
// |      8 |    4 | batchLength          | int32; bytes after this field (whole batch = 12 + batchLength)   |
// |     12 |    4 | partitionLeaderEpoch | int32; stamped by the leader, patched in place; -1 = unset       |
// |     16 |    1 | magic                | int8; always 2                                                   |
// |     17 |    4 | crc                  | uint32 CRC-32 (zlib) over bytes 21..end of batch                 |
// |     21 |    2 | attributes           | int16; bits 0-2 compression (0 = none, others reserved)          |
// |     23 |    4 | lastOffsetDelta      | int32; recordCount - 1 (no compaction holes yet)                 |
// |     27 |    8 | firstTimestamp       | int64 ms; timestamp of the first record                          |
// |     35 |    8 | maxTimestamp         | int64 ms; largest record timestamp                               |
// |     43 |    8 | producerId           | int64; -1 = none (idempotent producer later)                     |
// |     51 |    2 | producerEpoch        | int16; -1 = none                                                 |
// |     53 |    4 | baseSequence         | int32; -1 = none                                                 |
// |     57 |    4 | recordCount          | int32; >= 1                                                      |
//
// Because baseOffset and partitionLeaderEpoch sit before the CRC's range, a leader assigns offsets and stamps
// its epoch without recomputing the CRC, exactly as Kafka does.
//
// Record (all varints zigzag-encoded like Kafka's, so -1 lengths fit in one byte):
//
// | field          | encoding                                                          |
// |----------------|-------------------------------------------------------------------|
// | length         | varint: bytes of the record after this field                      |
// | attributes     | int8, 0                                                           |
// | timestampDelta | varlong: timestamp - firstTimestamp                               |
// | offsetDelta    | varint: offset - baseOffset (equals the record's index)           |
// | keyLength, key | varint (-1 = null key) then the bytes                             |
// | valueLen, value| varint (-1 = null value) then the bytes                           |
// | headerCount    | varint                                                            |
// | each header    | varint key length, UTF-8 key, varint value length (-1 = null), value |
//
// Offsets and timestamps are JS numbers: exact below 2^53, and asserted to be safe integers.
import { assert, assertionFailed } from '../assert.js';

/** CRC-32 (the zlib/IEEE polynomial) of `bytes`, as an unsigned 32-bit value. */
export type Crc32 = (bytes: Uint8Array) => number;
/**
 * The same CRC-32 over `bytes[start, end)`, computed without a view of the range: hot paths that checksum
 * part of a larger buffer (a batch in a writer's buffer or in a read) pass one so that no view is allocated.
 */
export type Crc32Range = (bytes: Uint8Array, start: number, end: number) => number;

export const BATCH_MAGIC = 2;
export const BatchField = {
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  firstTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordCount: 57,
} as const;
/** Bytes of the batch header; records start here. */
export const BATCH_HEADER_BYTES = 61;
/** Bytes before the batchLength field's coverage starts (baseOffset + batchLength). */
export const BATCH_LENGTH_PREFIX_BYTES = 12;
/** The CRC covers the batch from here to its end. */
export const BATCH_CRC_START = BatchField.attributes;

const TWO_POW_32 = 4294967296;
/** Timestamp deltas are written as zigzag varlongs computed in floating point: keep them exact. */
const TIMESTAMP_DELTA_ABS_MAX = 2 ** 51;

// ---------------------------------------------------------------------------------------------------------
// Fixed-width helpers (big-endian), exported for the storage shell which patches headers in place.

export function readInt64(bytes: Uint8Array, pos: number): number {
  const hi = (bytes[pos]! << 24) | (bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!;
  const lo = readUint32(bytes, pos + 4);
  return hi * TWO_POW_32 + lo;
}

export function writeInt64(bytes: Uint8Array, pos: number, value: number): void {
  if (!Number.isSafeInteger(value)) assertionFailed(`int64 field must be a safe integer, got ${value}`);
  const hi = Math.floor(value / TWO_POW_32);
  const lo = value - hi * TWO_POW_32;
  writeInt32(bytes, pos, hi | 0);
  writeInt32(bytes, pos + 4, lo | 0);
}

export function readInt32(bytes: Uint8Array, pos: number): number {
  return (bytes[pos]! << 24) | (bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!;
}

export function readUint32(bytes: Uint8Array, pos: number): number {
  return readInt32(bytes, pos) >>> 0;
}

export function writeInt32(bytes: Uint8Array, pos: number, value: number): void {
  bytes[pos] = value >>> 24;
  bytes[pos + 1] = value >>> 16;
  bytes[pos + 2] = value >>> 8;
  bytes[pos + 3] = value;
}

function readInt16(bytes: Uint8Array, pos: number): number {
  return ((bytes[pos]! << 24) | (bytes[pos + 1]! << 16)) >> 16;
}

function writeInt16(bytes: Uint8Array, pos: number, value: number): void {
  bytes[pos] = value >>> 8;
  bytes[pos + 1] = value;
}

// ---------------------------------------------------------------------------------------------------------
// Varints (zigzag, Kafka style).

export function sizeOfVarint(value: number): number {
  const v = ((value << 1) ^ (value >> 31)) >>> 0;
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

function writeVarint(bytes: Uint8Array, pos: number, value: number): number {
  let v = ((value << 1) ^ (value >> 31)) >>> 0;
  while (v >= 0x80) {
    bytes[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  bytes[pos++] = v;
  return pos;
}

function zigzagLong(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

export function sizeOfVarlong(value: number): number {
  let z = zigzagLong(value);
  let size = 1;
  while (z >= 0x80) {
    z = Math.floor(z / 0x80);
    size++;
  }
  return size;
}

function writeVarlong(bytes: Uint8Array, pos: number, value: number): number {
  let z = zigzagLong(value);
  while (z >= 0x80) {
    bytes[pos++] = (z % 0x80) | 0x80;
    z = Math.floor(z / 0x80);
  }
  bytes[pos++] = z;
  return pos;
}

/**
 * A read position over untrusted bytes. Reading past `end` or an over-long varint clears `ok` instead of
 * throwing, because corrupt input is an expected condition for the validator.
 */
class Cursor {
  bytes: Uint8Array = new Uint8Array(0);
  pos = 0;
  end = 0;
  ok = true;

  reset(bytes: Uint8Array, pos: number, end: number): void {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
    this.ok = true;
  }

  varint(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) {
        this.ok = false;
        return 0;
      }
      const b = this.bytes[this.pos++]!;
      result |= (b & 0x7f) << shift;
      if (b < 0x80) return (result >>> 1) ^ -(result & 1);
    }
    this.ok = false;
    return 0;
  }

  varlong(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) {
        this.ok = false;
        return 0;
      }
      const b = this.bytes[this.pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
      scale *= 0x80;
    }
    this.ok = false;
    return 0;
  }

  /** A view of the next `length` bytes, or null for length -1; clears `ok` on a bad length. */
  bytesOrNull(length: number): Uint8Array | null {
    if (length === -1) return null;
    if (length < 0 || this.pos + length > this.end) {
      this.ok = false;
      return null;
    }
    const view = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return view;
  }

  skip(length: number): void {
    if (length === -1) return;
    if (length < 0 || this.pos + length > this.end) {
      this.ok = false;
      return;
    }
    this.pos += length;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Encoding.

export interface RecordHeader {
  readonly key: string;
  readonly value: Uint8Array | null;
}

export interface BatchOptions {
  /** Default 0; the leader patches it on append. */
  readonly baseOffset?: number;
  /** Default -1; the leader stamps it on append. */
  readonly partitionLeaderEpoch?: number;
  readonly producerId?: number;
  readonly producerEpoch?: number;
  readonly baseSequence?: number;
}

/** UTF-8 byte length of a string, without encoding it. Lone surrogates count as U+FFFD (3 bytes). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

const textEncoder = new TextEncoder();
const noHeaders: readonly RecordHeader[] = [];
const noBatchOptions: BatchOptions = Object.freeze({});

/** Bytes of a record's body (everything after its length varint); lengths of -1 are null fields. */
function recordBodyBytes(
  timestampDelta: number,
  offsetDelta: number,
  keyLength: number,
  valueLength: number,
  headers: readonly RecordHeader[],
): number {
  let size = 1 + sizeOfVarlong(timestampDelta) + sizeOfVarint(offsetDelta);
  size += keyLength < 0 ? 1 : sizeOfVarint(keyLength) + keyLength;
  size += valueLength < 0 ? 1 : sizeOfVarint(valueLength) + valueLength;
  size += sizeOfVarint(headers.length);
  for (let i = 0; i < headers.length; i++) {
    const header = headers[i]!;
    const keyBytes = utf8ByteLength(header.key);
    size += sizeOfVarint(keyBytes) + keyBytes;
    size += header.value === null ? 1 : sizeOfVarint(header.value.length) + header.value.length;
  }
  return size;
}

/** Fields up to this many bytes are copied byte by byte: cheaper than a view of the source for `set`. */
const COPY_LOOP_BYTES_MAX = 64;

/**
 * Writes batches back to back into one reusable buffer that grows by doubling up to `bytesMax`.
 * `beginBatch`, `addRecord`... , `endBatch`, repeated; then `bytes()`; then `reset()` to reuse the buffer.
 * Record keys, values and header values are copied straight into the buffer; nothing else is allocated per
 * record. Exceeding `bytesMax` is a bug in the caller (check `sizeBytes` and `recordSizeBytes` first).
 */
export class BatchWriter {
  private buffer: Uint8Array;
  private position = 0;
  private batchStart = -1;
  private recordCount = 0;
  private firstTimestampMs = 0;
  private maxTimestampMs = 0;
  private batchCountValue = 0;

  constructor(
    initialBytes = 64 * 1024,
    readonly bytesMax = 64 * 1024 * 1024,
  ) {
    assert(initialBytes > 0 && initialBytes <= bytesMax, 'BatchWriter initialBytes must be in (0, bytesMax]');
    this.buffer = new Uint8Array(initialBytes);
  }

  /** Bytes written so far (closed batches plus the open one). */
  get sizeBytes(): number {
    return this.position;
  }

  /** Bytes of the buffer now (it grows by doubling up to `bytesMax`). */
  get capacityBytes(): number {
    return this.buffer.length;
  }

  /** Closed batches since the last reset. */
  get batchCount(): number {
    return this.batchCountValue;
  }

  /** Records in the open batch. */
  get openRecordCount(): number {
    return this.recordCount;
  }

  /** Upper bound of the bytes `addRecord` would add for this record (exact except for the timestamp delta). */
  recordSizeBytes(
    key: Uint8Array | null,
    value: Uint8Array | null,
    headers: readonly RecordHeader[] = noHeaders,
  ) {
    return this.recordSizeBytesOf(
      key === null ? -1 : key.length,
      value === null ? -1 : value.length,
      headers,
    );
  }

  /** `recordSizeBytes` from the key's and value's lengths (-1 for null). */
  recordSizeBytesOf(keyLength: number, valueLength: number, headers: readonly RecordHeader[] = noHeaders) {
    const body = recordBodyBytes(2 ** 50, this.recordCount, keyLength, valueLength, headers);
    return sizeOfVarint(body) + body;
  }

  reset(): void {
    assert(this.batchStart === -1, 'BatchWriter.reset with a batch still open');
    this.position = 0;
    this.batchCountValue = 0;
  }

  /** Drops the open batch and its records, as if it had never begun. */
  abortBatch(): void {
    assert(this.batchStart !== -1, 'BatchWriter.abortBatch without an open batch');
    this.position = this.batchStart;
    this.batchStart = -1;
    this.recordCount = 0;
  }

  beginBatch(options: BatchOptions = noBatchOptions): void {
    assert(this.batchStart === -1, 'BatchWriter.beginBatch with a batch already open');
    this.ensureCapacity(BATCH_HEADER_BYTES);
    this.batchStart = this.position;
    this.recordCount = 0;
    const b = this.buffer;
    const s = this.batchStart;
    writeInt64(b, s + BatchField.baseOffset, options.baseOffset ?? 0);
    writeInt32(b, s + BatchField.partitionLeaderEpoch, options.partitionLeaderEpoch ?? -1);
    b[s + BatchField.magic] = BATCH_MAGIC;
    writeInt16(b, s + BatchField.attributes, 0);
    writeInt64(b, s + BatchField.producerId, options.producerId ?? -1);
    writeInt16(b, s + BatchField.producerEpoch, options.producerEpoch ?? -1);
    writeInt32(b, s + BatchField.baseSequence, options.baseSequence ?? -1);
    this.position += BATCH_HEADER_BYTES;
  }

  addRecord(
    timestampMs: number,
    key: Uint8Array | null,
    value: Uint8Array | null,
    headers: readonly RecordHeader[] = noHeaders,
  ): void {
    this.addRecordFrom(
      timestampMs,
      key,
      0,
      key === null ? -1 : key.length,
      value,
      0,
      value === null ? -1 : value.length,
      headers,
    );
  }

  /**
   * `addRecord` with the key and value given as ranges of source buffers (a length of -1 is null, its source
   * ignored): a produce request's fields are copied straight from the request's bytes, without a view each.
   */
  addRecordFrom(
    timestampMs: number,
    keySource: Uint8Array | null,
    keyAt: number,
    keyLength: number,
    valueSource: Uint8Array | null,
    valueAt: number,
    valueLength: number,
    headers: readonly RecordHeader[] = noHeaders,
  ): void {
    assert(this.batchStart !== -1, 'BatchWriter.addRecord without an open batch');
    if (!Number.isSafeInteger(timestampMs))
      assertionFailed(`record timestamp must be a safe integer, got ${timestampMs}`);
    if (this.recordCount === 0) {
      this.firstTimestampMs = timestampMs;
      this.maxTimestampMs = timestampMs;
    } else if (timestampMs > this.maxTimestampMs) {
      this.maxTimestampMs = timestampMs;
    }
    const timestampDelta = timestampMs - this.firstTimestampMs;
    assert(Math.abs(timestampDelta) < TIMESTAMP_DELTA_ABS_MAX, 'record timestamp delta out of range');
    const offsetDelta = this.recordCount;
    const body = recordBodyBytes(timestampDelta, offsetDelta, keyLength, valueLength, headers);
    this.ensureCapacity(sizeOfVarint(body) + body);
    const b = this.buffer;
    let p = writeVarint(b, this.position, body);
    const bodyStart = p;
    b[p++] = 0;
    p = writeVarlong(b, p, timestampDelta);
    p = writeVarint(b, p, offsetDelta);
    p = writeRangeOrNull(b, p, keySource, keyAt, keyLength);
    p = writeRangeOrNull(b, p, valueSource, valueAt, valueLength);
    p = writeVarint(b, p, headers.length);
    for (let i = 0; i < headers.length; i++) {
      const header = headers[i]!;
      const keyBytes = utf8ByteLength(header.key);
      p = writeVarint(b, p, keyBytes);
      const written = textEncoder.encodeInto(header.key, b.subarray(p, p + keyBytes)).written;
      assert(written === keyBytes, 'header key UTF-8 length mismatch');
      p += keyBytes;
      p = writeBytesOrNull(b, p, header.value);
    }
    assert(p - bodyStart === body, 'record body size mismatch');
    this.position = p;
    this.recordCount++;
  }

  /**
   * Closes the open batch (length, count, timestamps, CRC) and returns its size in bytes. With `crc32Range`
   * (the same function over a range) the CRC is computed without a view of the batch.
   */
  endBatch(crc32: Crc32, crc32Range?: Crc32Range): number {
    assert(this.batchStart !== -1, 'BatchWriter.endBatch without an open batch');
    assert(this.recordCount >= 1, 'a batch holds at least one record');
    const b = this.buffer;
    const s = this.batchStart;
    const size = this.position - s;
    writeInt32(b, s + BatchField.batchLength, size - BATCH_LENGTH_PREFIX_BYTES);
    writeInt32(b, s + BatchField.lastOffsetDelta, this.recordCount - 1);
    writeInt64(b, s + BatchField.firstTimestamp, this.firstTimestampMs);
    writeInt64(b, s + BatchField.maxTimestamp, this.maxTimestampMs);
    writeInt32(b, s + BatchField.recordCount, this.recordCount);
    const crcStart = s + BATCH_CRC_START;
    const crc =
      crc32Range === undefined
        ? crc32(b.subarray(crcStart, this.position))
        : crc32Range(b, crcStart, this.position);
    writeInt32(b, s + BatchField.crc, crc);
    this.batchStart = -1;
    this.batchCountValue++;
    return size;
  }

  /** A view of every closed batch; valid until the next call that writes. */
  bytes(): Uint8Array {
    assert(this.batchStart === -1, 'BatchWriter.bytes with a batch still open');
    return this.buffer.subarray(0, this.position);
  }

  private ensureCapacity(extraBytes: number): void {
    const needed = this.position + extraBytes;
    if (needed <= this.buffer.length) return;
    if (!(needed <= this.bytesMax))
      assertionFailed(`BatchWriter would exceed its bound of ${this.bytesMax} bytes`);
    let capacity = this.buffer.length;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(Math.min(capacity, this.bytesMax));
    grown.set(this.buffer.subarray(0, this.position));
    this.buffer = grown;
  }
}

function writeBytesOrNull(bytes: Uint8Array, pos: number, data: Uint8Array | null): number {
  if (data === null) return writeVarint(bytes, pos, -1);
  pos = writeVarint(bytes, pos, data.length);
  bytes.set(data, pos);
  return pos + data.length;
}

/** Writes `source[at, at + length)` with its length varint, or a null field for a length of -1. */
function writeRangeOrNull(
  bytes: Uint8Array,
  pos: number,
  source: Uint8Array | null,
  at: number,
  length: number,
): number {
  if (length < 0) return writeVarint(bytes, pos, -1);
  if (source === null) return assertionFailed('a record field with a length has no source');
  pos = writeVarint(bytes, pos, length);
  if (at === 0 && length === source.length) bytes.set(source, pos);
  else if (length <= COPY_LOOP_BYTES_MAX) {
    for (let i = 0; i < length; i++) bytes[pos + i] = source[at + i]!;
  } else bytes.set(source.subarray(at, at + length), pos);
  return pos + length;
}

// ---------------------------------------------------------------------------------------------------------
// Header access.

export interface BatchHeader {
  readonly baseOffset: number;
  readonly batchLength: number;
  readonly partitionLeaderEpoch: number;
  readonly magic: number;
  readonly crc: number;
  readonly attributes: number;
  readonly lastOffsetDelta: number;
  readonly firstTimestampMs: number;
  readonly maxTimestampMs: number;
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly recordCount: number;
}

/** Reads the header at `pos`; the caller has checked that 61 bytes are there. */
export function readBatchHeader(bytes: Uint8Array, pos: number): BatchHeader {
  assert(pos + BATCH_HEADER_BYTES <= bytes.length, 'readBatchHeader past the end of the bytes');
  return {
    baseOffset: readInt64(bytes, pos + BatchField.baseOffset),
    batchLength: readInt32(bytes, pos + BatchField.batchLength),
    partitionLeaderEpoch: readInt32(bytes, pos + BatchField.partitionLeaderEpoch),
    magic: bytes[pos + BatchField.magic]!,
    crc: readUint32(bytes, pos + BatchField.crc),
    attributes: readInt16(bytes, pos + BatchField.attributes),
    lastOffsetDelta: readInt32(bytes, pos + BatchField.lastOffsetDelta),
    firstTimestampMs: readInt64(bytes, pos + BatchField.firstTimestamp),
    maxTimestampMs: readInt64(bytes, pos + BatchField.maxTimestamp),
    producerId: readInt64(bytes, pos + BatchField.producerId),
    producerEpoch: readInt16(bytes, pos + BatchField.producerEpoch),
    baseSequence: readInt32(bytes, pos + BatchField.baseSequence),
    recordCount: readInt32(bytes, pos + BatchField.recordCount),
  };
}

/** Whole bytes of the batch at `pos` (12 + batchLength); needs 12 bytes at `pos`. */
export function batchSizeAt(bytes: Uint8Array, pos: number): number {
  return BATCH_LENGTH_PREFIX_BYTES + readInt32(bytes, pos + BatchField.batchLength);
}

// ---------------------------------------------------------------------------------------------------------
// Validation.

export type BatchCheck =
  | {
      readonly kind: 'ok';
      readonly sizeBytes: number;
      readonly baseOffset: number;
      readonly lastOffset: number;
      readonly recordCount: number;
      readonly firstTimestampMs: number;
      readonly maxTimestampMs: number;
    }
  /** The bytes end inside the batch: a torn write. */
  | { readonly kind: 'incomplete'; readonly reason: string }
  | { readonly kind: 'corrupt'; readonly reason: string };

export interface ValidateOptions {
  /** Upper bound of a whole batch in bytes; a longer length field is corruption. */
  readonly batchBytesMax: number;
  /** When set, the batch must start at this offset (offset continuity). */
  readonly expectedBaseOffset?: number;
  /** Check the CRC and walk every record (full validation); false checks only the header's sanity. */
  readonly deep: boolean;
}

const validateCursor = new Cursor();

/**
 * Checks the 61-byte header at `pos` (which must be in `bytes`) without the body: a sane length (at least a
 * header, at most `batchBytesMax`), the magic, a record count that matches the last offset delta, and the
 * expected base offset. Returns the batch's whole size in bytes, or a reason when the header cannot be
 * trusted. Header walks over stored files use it: the fields outside the CRC (base offset, length) are only
 * believed when they also continue the walk.
 */
export function checkBatchHeader(
  bytes: Uint8Array,
  pos: number,
  expectedBaseOffset: number,
  batchBytesMax: number,
): number | string {
  assert(pos + BATCH_HEADER_BYTES <= bytes.length, 'checkBatchHeader past the end of the bytes');
  const size = batchSizeAt(bytes, pos);
  if (size < BATCH_HEADER_BYTES || size > batchBytesMax) return `batch length ${size} out of range`;
  if (bytes[pos + BatchField.magic] !== BATCH_MAGIC) return 'bad magic';
  const baseOffset = readInt64(bytes, pos + BatchField.baseOffset);
  if (baseOffset !== expectedBaseOffset) {
    return `base offset ${baseOffset}, expected ${expectedBaseOffset}`;
  }
  const recordCount = readInt32(bytes, pos + BatchField.recordCount);
  if (recordCount < 1 || readInt32(bytes, pos + BatchField.lastOffsetDelta) !== recordCount - 1) {
    return `record count ${recordCount} does not match the last offset delta`;
  }
  return size;
}

/** Whether the CRC stored in the whole batch at `pos` (of `sizeBytes`, all in `bytes`) matches its bytes. */
export function batchCrcMatches(
  bytes: Uint8Array,
  pos: number,
  sizeBytes: number,
  crc32: Crc32,
  crc32Range?: Crc32Range,
): boolean {
  const start = pos + BATCH_CRC_START;
  const end = pos + sizeBytes;
  const crc = crc32Range === undefined ? crc32(bytes.subarray(start, end)) : crc32Range(bytes, start, end);
  return crc === readUint32(bytes, pos + BatchField.crc);
}

/** Outcomes of `checkShallow`, in the order its checks run; `ok` is 0. */
const Shallow = {
  ok: 0,
  truncatedHeader: 1,
  lengthOutOfRange: 2,
  badMagic: 3,
  baseOffsetOutOfRange: 4,
  baseOffsetUnexpected: 5,
  recordCount: 6,
  truncatedBody: 7,
  timestampOutOfRange: 8,
} as const;

/**
 * The checks of `validateBatch` that need neither the CRC nor the records, as a code: shared by
 * `validateBatch` (which words a failure) and `shallowBatchValid` (the append path, which allocates nothing
 * for a sound batch). `expectedBaseOffset` is checked only with `checkBaseOffset`.
 */
function checkShallow(
  bytes: Uint8Array,
  pos: number,
  end: number,
  batchBytesMax: number,
  checkBaseOffset: boolean,
  expectedBaseOffset: number,
): number {
  if (end - pos < BATCH_HEADER_BYTES) return Shallow.truncatedHeader;
  const size = batchSizeAt(bytes, pos);
  if (size < BATCH_HEADER_BYTES || size > batchBytesMax) return Shallow.lengthOutOfRange;
  if (bytes[pos + BatchField.magic] !== BATCH_MAGIC) return Shallow.badMagic;
  const baseOffset = readInt64(bytes, pos + BatchField.baseOffset);
  if (!Number.isSafeInteger(baseOffset) || baseOffset < 0) return Shallow.baseOffsetOutOfRange;
  if (checkBaseOffset && baseOffset !== expectedBaseOffset) return Shallow.baseOffsetUnexpected;
  const recordCount = readInt32(bytes, pos + BatchField.recordCount);
  const lastOffsetDelta = readInt32(bytes, pos + BatchField.lastOffsetDelta);
  if (recordCount < 1 || lastOffsetDelta !== recordCount - 1) return Shallow.recordCount;
  if (end - pos < size) return Shallow.truncatedBody;
  // The writer only stores safe integers; without this check a header-only walk (deep false) over a flipped
  // timestamp byte handed an unsafe value to the time index, whose assertion stopped recovery.
  if (
    !Number.isSafeInteger(readInt64(bytes, pos + BatchField.firstTimestamp)) ||
    !Number.isSafeInteger(readInt64(bytes, pos + BatchField.maxTimestamp))
  )
    return Shallow.timestampOutOfRange;
  return Shallow.ok;
}

/**
 * Whether `validateBatch(bytes, pos, end, crc32, { batchBytesMax, deep: false })` would answer `ok`, without
 * allocating its answer. A false is worded by calling `validateBatch`.
 */
export function shallowBatchValid(
  bytes: Uint8Array,
  pos: number,
  end: number,
  batchBytesMax: number,
): boolean {
  return checkShallow(bytes, pos, end, batchBytesMax, false, 0) === Shallow.ok;
}

/**
 * Checks the batch at `pos` within `bytes[pos, end)`: length sanity, magic, CRC, record count, offset deltas
 * and record framing, and optionally continuity with the previous batch. Corruption is a value.
 */
export function validateBatch(
  bytes: Uint8Array,
  pos: number,
  end: number,
  crc32: Crc32,
  options: ValidateOptions,
): BatchCheck {
  const expected = options.expectedBaseOffset;
  const shallow = checkShallow(bytes, pos, end, options.batchBytesMax, expected !== undefined, expected ?? 0);
  const size = shallow === Shallow.truncatedHeader ? 0 : batchSizeAt(bytes, pos);
  const baseOffset = shallow === Shallow.truncatedHeader ? 0 : readInt64(bytes, pos + BatchField.baseOffset);
  const recordCount =
    shallow === Shallow.truncatedHeader ? 0 : readInt32(bytes, pos + BatchField.recordCount);
  const lastOffsetDelta =
    shallow === Shallow.truncatedHeader ? 0 : readInt32(bytes, pos + BatchField.lastOffsetDelta);
  switch (shallow) {
    case Shallow.ok:
      break;
    case Shallow.truncatedHeader:
      return { kind: 'incomplete', reason: 'truncated batch header' };
    case Shallow.lengthOutOfRange:
      return { kind: 'corrupt', reason: `batch length ${size} out of range` };
    case Shallow.badMagic:
      return { kind: 'corrupt', reason: 'bad magic' };
    case Shallow.baseOffsetOutOfRange:
      return { kind: 'corrupt', reason: 'base offset out of range' };
    case Shallow.baseOffsetUnexpected:
      return { kind: 'corrupt', reason: `base offset ${baseOffset}, expected ${expected}` };
    case Shallow.recordCount:
      return { kind: 'corrupt', reason: `record count ${recordCount}, last offset delta ${lastOffsetDelta}` };
    case Shallow.truncatedBody:
      return { kind: 'incomplete', reason: 'truncated batch body' };
    default:
      return { kind: 'corrupt', reason: 'timestamp out of range' };
  }
  const firstTimestampMs = readInt64(bytes, pos + BatchField.firstTimestamp);
  const maxTimestampMs = readInt64(bytes, pos + BatchField.maxTimestamp);
  if (options.deep) {
    const crc = readUint32(bytes, pos + BatchField.crc);
    if (crc32(bytes.subarray(pos + BATCH_CRC_START, pos + size)) !== crc) {
      return { kind: 'corrupt', reason: 'CRC mismatch' };
    }
    const problem = checkRecords(bytes, pos + BATCH_HEADER_BYTES, pos + size, recordCount);
    if (problem !== null) return { kind: 'corrupt', reason: problem };
  }
  return {
    kind: 'ok',
    sizeBytes: size,
    baseOffset,
    lastOffset: baseOffset + lastOffsetDelta,
    recordCount,
    firstTimestampMs,
    maxTimestampMs,
  };
}

function checkRecords(bytes: Uint8Array, start: number, end: number, recordCount: number): string | null {
  const c = validateCursor;
  c.reset(bytes, start, end);
  for (let i = 0; i < recordCount; i++) {
    const length = c.varint();
    if (!c.ok || length < 1 || c.pos + length > end) return `record ${i}: bad length`;
    const recordEnd = c.pos + length;
    c.end = recordEnd;
    c.pos++; // attributes
    c.varlong();
    const offsetDelta = c.varint();
    if (c.ok && offsetDelta !== i) return `record ${i}: offset delta ${offsetDelta}`;
    c.skip(c.varint());
    c.skip(c.varint());
    const headerCount = c.varint();
    if (!c.ok || headerCount < 0) return `record ${i}: bad header count`;
    for (let h = 0; h < headerCount && c.ok; h++) {
      const keyLength = c.varint();
      if (keyLength < 0) return `record ${i}: null header key`;
      c.skip(keyLength);
      c.skip(c.varint());
    }
    if (!c.ok || c.pos !== recordEnd) return `record ${i}: framing`;
    c.end = end;
  }
  if (c.pos !== end) return 'bytes after the last record';
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// Decoding.

export interface DecodedHeader {
  /** UTF-8 bytes of the key, a view into the source. */
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
}

export interface DecodedRecord {
  readonly offset: number;
  readonly timestampMs: number;
  /** Views into the source bytes: valid as long as the source is; copy what must outlive it. */
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers: readonly DecodedHeader[];
}

export type DecodeResult =
  | { readonly kind: 'ok'; readonly batches: number; readonly records: number; readonly nextOffset: number }
  | { readonly kind: 'corrupt'; readonly position: number; readonly reason: string };

export interface DecodeOptions {
  /** Records below this offset are skipped (a read may start inside a batch). Default 0. */
  readonly fromOffset?: number;
  /** Records at and above this offset are skipped (the high watermark). Default: none. */
  readonly toOffsetExclusive?: number;
  /** Verify each batch's CRC before visiting it (when the bytes crossed a trust boundary). */
  readonly crc32?: Crc32;
}

const noDecodedHeaders: readonly DecodedHeader[] = [];
const decodeCursor = new Cursor();

/**
 * Walks the whole batches in `bytes` and calls `visit` for every record in [fromOffset, toOffsetExclusive).
 * A malformed batch stops the walk and is reported as a value; records visited before it were sound.
 */
export function forEachRecord(
  bytes: Uint8Array,
  visit: (record: DecodedRecord) => void,
  options: DecodeOptions = {},
): DecodeResult {
  const fromOffset = options.fromOffset ?? 0;
  const toOffset = options.toOffsetExclusive ?? Number.POSITIVE_INFINITY;
  let pos = 0;
  let batches = 0;
  let records = 0;
  let nextOffset = fromOffset;
  while (pos < bytes.length) {
    const check = validateBatch(bytes, pos, bytes.length, options.crc32 ?? noCrc, {
      batchBytesMax: bytes.length - pos,
      deep: options.crc32 !== undefined,
    });
    if (check.kind !== 'ok') return { kind: 'corrupt', position: pos, reason: check.reason };
    batches++;
    if (check.lastOffset >= fromOffset && check.baseOffset < toOffset) {
      const problem = visitRecords(bytes, pos, check, fromOffset, toOffset, visit);
      if (problem !== null) return { kind: 'corrupt', position: pos, reason: problem };
    }
    records += check.recordCount;
    nextOffset = Math.max(nextOffset, Math.min(check.lastOffset + 1, toOffset));
    pos += check.sizeBytes;
  }
  return { kind: 'ok', batches, records, nextOffset };
}

function noCrc(): number {
  return 0;
}

function visitRecords(
  bytes: Uint8Array,
  pos: number,
  batch: { readonly baseOffset: number; readonly firstTimestampMs: number; readonly sizeBytes: number },
  fromOffset: number,
  toOffset: number,
  visit: (record: DecodedRecord) => void,
): string | null {
  const c = decodeCursor;
  const end = pos + batch.sizeBytes;
  const recordCount = readInt32(bytes, pos + BatchField.recordCount);
  c.reset(bytes, pos + BATCH_HEADER_BYTES, end);
  for (let i = 0; i < recordCount; i++) {
    const length = c.varint();
    if (!c.ok || length < 1 || c.pos + length > end) return `record ${i}: bad length`;
    const recordEnd = c.pos + length;
    c.end = recordEnd;
    c.pos++; // attributes
    const timestampDelta = c.varlong();
    const offsetDelta = c.varint();
    const key = c.bytesOrNull(c.varint());
    const value = c.bytesOrNull(c.varint());
    const headerCount = c.varint();
    if (!c.ok || headerCount < 0) return `record ${i}: framing`;
    let headers = noDecodedHeaders;
    if (headerCount > 0) {
      const list: DecodedHeader[] = [];
      for (let h = 0; h < headerCount; h++) {
        const headerKey = c.bytesOrNull(c.varint());
        const headerValue = c.bytesOrNull(c.varint());
        if (!c.ok || headerKey === null) return `record ${i}: header framing`;
        list.push({ key: headerKey, value: headerValue });
      }
      headers = list;
    }
    if (!c.ok || c.pos !== recordEnd) return `record ${i}: framing`;
    c.end = end;
    const offset = batch.baseOffset + offsetDelta;
    if (offset >= toOffset) return null;
    if (offset >= fromOffset) {
      visit({ offset, timestampMs: batch.firstTimestampMs + timestampDelta, key, value, headers });
    }
  }
  return null;
}

/** Decodes one header key's UTF-8 bytes (a convenience for callers that want strings). */
export function headerKeyString(header: DecodedHeader): string {
  return textDecoder.decode(header.key);
}

const textDecoder = new TextDecoder();
