// The FETCH message (a consumer's read of one partition, HTTP or WebSocket, local or forwarded to the leader) and
// its answer. This module owns both layouts; little-endian, offsets as float64.
//
// FETCH request (32 bytes):
// | 0  | 4 topic sequence number | 4 | 4 partition |
// | 8  | 8 offset to read from (f64)                |
// | 16 | 4 max bytes (u32): whole batches up to this, at least one |
// | 20 | 4 wait ms (u32): with nothing to read yet, the worker holds the request until records arrive or the
// |    |   wait ends (a long poll served where the data is, so a forwarded one costs no extra round trips) |
// | 24 | 8 max offset (f64, exclusive; -1 = the servable high watermark) |
//
// The offset asked may be -2 (earliest) or -1 (latest): the leader resolves it once, when the request arrives
// (a long poll for 'latest' then waits for records after the high watermark of that moment), and answers it.
//
// FETCH answer:
// | 0  | 1 status | 1 | 7 reserved | 8 | 8 log start (f64) | 16 | 8 high watermark (f64; -1 when not servable) |
// | 24 | 8 log end (f64) | 32 | 8 the offset read from (f64: the one asked, or what -2 / -1 resolved to) |
// | 40 | ... Ok: whole record batches in the log's on-disk format (the first may start below the offset read)
// |    |     CorruptData: | 40 | 8 first damaged offset | 48 | 8 offset to resume from |
// |    |     TooLarge:    | 40 | 8 base offset of the batch | 48 | 8 its size in bytes |
// Callable from any thread.
import { assert, assertionFailed } from '../core/assert.js';
import type { Status } from './status.js';

export const FETCH_REQUEST_BYTES = 32;
export const FETCH_ANSWER_HEADER_BYTES = 40;
/** The offsets a fetch may ask for instead of a number; the leader resolves them. */
export const FETCH_EARLIEST = -2;
export const FETCH_LATEST = -1;
export const FETCH_DETAIL_BYTES = 16;

export interface FetchRequest {
  topicSeq: number;
  partition: number;
  offset: number;
  maxBytes: number;
  waitMs: number;
  /**
   * Batches whose base offset is at or past this are not read: an offset (>= 0); `FETCH_NO_OFFSET_BOUND`; or
   * `fetchRecordsBound(n)`, n records past the offset the leader resolved (an HTTP consume's `limit`, so the
   * leader reads and checks no more batches than the answer can use). A leader from before the record bound
   * reads any negative value as no bound.
   */
  maxOffset: number;
}

export const FETCH_NO_OFFSET_BOUND = -1;

/** The `maxOffset` of a fetch that wants `records` records at most past the offset it reads from. */
export function fetchRecordsBound(records: number): number {
  assert(Number.isSafeInteger(records) && records >= 1, `a records bound is at least 1, got ${records}`);
  return -1 - records;
}

/** The exclusive bound on base offsets a fetch from `fromOffset` (resolved) asks for, or +Infinity for none. */
export function fetchOffsetBound(maxOffset: number, fromOffset: number): number {
  if (maxOffset >= 0) return maxOffset;
  if (maxOffset <= -2) return fromOffset + (-1 - maxOffset);
  return Number.POSITIVE_INFINITY;
}

export function writeFetchRequest(view: DataView, at: number, r: Readonly<FetchRequest>): void {
  view.setUint32(at, r.topicSeq, true);
  view.setUint32(at + 4, r.partition, true);
  view.setFloat64(at + 8, r.offset, true);
  view.setUint32(at + 16, r.maxBytes, true);
  view.setUint32(at + 20, r.waitMs, true);
  view.setFloat64(at + 24, r.maxOffset, true);
}

export function readFetchRequest(view: DataView, at: number): FetchRequest {
  return {
    topicSeq: view.getUint32(at, true),
    partition: view.getUint32(at + 4, true),
    offset: view.getFloat64(at + 8, true),
    maxBytes: view.getUint32(at + 16, true),
    waitMs: view.getUint32(at + 20, true),
    maxOffset: view.getFloat64(at + 24, true),
  };
}

export interface FetchAnswerHeader {
  status: Status;
  logStartOffset: number;
  highWatermark: number;
  logEndOffset: number;
  /** The offset the read started from (an asked -2 / -1 resolved); -1 when nothing was read. */
  fetchOffset: number;
}

export function writeFetchAnswerHeader(view: DataView, at: number, h: Readonly<FetchAnswerHeader>): void {
  view.setUint8(at, h.status);
  view.setFloat64(at + 8, h.logStartOffset, true);
  view.setFloat64(at + 16, h.highWatermark, true);
  view.setFloat64(at + 24, h.logEndOffset, true);
  view.setFloat64(at + 32, h.fetchOffset, true);
}

export function readFetchAnswerHeader(
  view: DataView,
  at: number,
  length: number,
  into: FetchAnswerHeader,
): FetchAnswerHeader {
  if (!(length >= FETCH_ANSWER_HEADER_BYTES)) {
    assertionFailed(`a fetch answer has a ${FETCH_ANSWER_HEADER_BYTES}-byte header`);
  }
  into.status = view.getUint8(at) as Status;
  into.logStartOffset = view.getFloat64(at + 8, true);
  into.highWatermark = view.getFloat64(at + 16, true);
  into.logEndOffset = view.getFloat64(at + 24, true);
  into.fetchOffset = view.getFloat64(at + 32, true);
  return into;
}

/** Writes the two-number detail of a CorruptData or TooLarge answer after its header at `at`. */
export function writeFetchDetail(view: DataView, at: number, first: number, second: number): void {
  view.setFloat64(at + FETCH_ANSWER_HEADER_BYTES, first, true);
  view.setFloat64(at + FETCH_ANSWER_HEADER_BYTES + 8, second, true);
}

/** Reads that detail from the bytes after the header. */
export function readFetchDetail(payload: Uint8Array): readonly [number, number] {
  assert(payload.byteLength >= FETCH_DETAIL_BYTES, 'a fetch detail is 16 bytes');
  const view = new DataView(payload.buffer, payload.byteOffset, FETCH_DETAIL_BYTES);
  return [view.getFloat64(0, true), view.getFloat64(8, true)];
}
