// Shared pieces of the storage tests: a record model, building batches with the BatchWriter and decoding a
// read back into model records.
import assert from 'node:assert/strict';
import { BatchWriter, forEachRecord, type RecordHeader } from '../../src/core/log/record-batch.js';
import type { Prng } from '../../src/core/prng.js';
import { crc32 } from '../../src/storage/crc.js';
import type { PartitionLog } from '../../src/storage/partition-log.js';

export interface ModelRecord {
  readonly timestampMs: number;
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers: readonly RecordHeader[];
}

export interface StoredRecord extends ModelRecord {
  readonly offset: number;
}

/** Encodes `batches` back to back, as the partition worker does for one drained batch of requests. */
export function encodeBatches(batches: readonly (readonly ModelRecord[])[], writer = new BatchWriter(1024)) {
  writer.reset();
  for (const records of batches) {
    writer.beginBatch();
    for (const r of records) writer.addRecord(r.timestampMs, r.key, r.value, r.headers);
    writer.endBatch(crc32);
  }
  return writer.bytes().slice();
}

export function randomBytesOrNull(rng: Prng, maxBytes: number): Uint8Array | null {
  if (rng.nextInt(6) === 0) return null;
  const bytes = new Uint8Array(rng.nextInt(maxBytes + 1));
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.nextInt(256);
  return bytes;
}

const headerKeys = ['trace', 'ü-key', '', 'content-type', '日本'];

export function randomRecord(rng: Prng, timestampMs: number, maxValueBytes: number): ModelRecord {
  const headers: RecordHeader[] = [];
  const headerCount = rng.nextInt(4) === 0 ? rng.nextInt(3) + 1 : 0;
  for (let i = 0; i < headerCount; i++) {
    headers.push({ key: headerKeys[rng.nextInt(headerKeys.length)]!, value: randomBytesOrNull(rng, 8) });
  }
  return {
    timestampMs,
    key: randomBytesOrNull(rng, 12),
    value: randomBytesOrNull(rng, maxValueBytes),
    headers,
  };
}

/** Decodes whole batches into records with offsets in [fromOffset, toOffsetExclusive), copying the bytes. */
export function decodeAll(bytes: Uint8Array, fromOffset = 0, toOffsetExclusive?: number): StoredRecord[] {
  const out: StoredRecord[] = [];
  const result = forEachRecord(
    bytes,
    (r) => {
      out.push({
        offset: r.offset,
        timestampMs: r.timestampMs,
        key: r.key === null ? null : r.key.slice(),
        value: r.value === null ? null : r.value.slice(),
        headers: r.headers.map((h) => ({
          key: new TextDecoder().decode(h.key),
          value: h.value === null ? null : h.value.slice(),
        })),
      });
    },
    toOffsetExclusive === undefined ? { fromOffset, crc32 } : { fromOffset, toOffsetExclusive, crc32 },
  );
  assert.equal(result.kind, 'ok', `decode failed: ${JSON.stringify(result)}`);
  return out;
}

/** Reads every record in [fromOffset, log end) by following `nextOffset`, with `maxBytes` per read. */
export function readAll(log: PartitionLog, fromOffset: number, maxBytes = 4096): StoredRecord[] {
  const out: StoredRecord[] = [];
  let offset = fromOffset;
  for (let guard = 0; offset < log.logEndOffset; guard++) {
    assert.ok(guard < 1_000_000, 'readAll made no progress');
    const result = log.read(offset, maxBytes);
    assert.equal(result.kind, 'ok');
    if (result.kind !== 'ok') break;
    const records = decodeAll(result.bytes, offset);
    assert.ok(records.length > 0, `read at ${offset} returned no records`);
    assert.equal(records[0]!.offset, offset, 'a read continues exactly at the requested offset');
    out.push(...records);
    offset = result.nextOffset;
  }
  return out;
}

export function assertSameRecord(actual: StoredRecord, expected: StoredRecord, context: string): void {
  assert.equal(actual.offset, expected.offset, `${context}: offset`);
  assert.equal(actual.timestampMs, expected.timestampMs, `${context}: timestamp at ${expected.offset}`);
  assert.deepEqual(actual.key, expected.key, `${context}: key at ${expected.offset}`);
  assert.deepEqual(actual.value, expected.value, `${context}: value at ${expected.offset}`);
  assert.deepEqual(
    actual.headers.map((h) => [h.key, h.value]),
    expected.headers.map((h) => [h.key, h.value]),
    `${context}: headers at ${expected.offset}`,
  );
}

/** The seed of a randomized test: from SEED in the environment (to replay), else fresh. */
export function testSeed(): number {
  const fromEnv = process.env.SEED;
  return fromEnv !== undefined ? Number(fromEnv) : Math.floor(Math.random() * 0x7fffffff);
}

/** Appends one record holding `value` (UTF-8) at the log end; returns its offset (asserts the append worked). */
export function appendValue(log: PartitionLog, value: string): number {
  const result = log.append(
    encodeBatches([[{ timestampMs: 1, key: null, value: new TextEncoder().encode(value), headers: [] }]]),
    { assignOffsets: true, leaderEpoch: 0, nowMs: 1 },
  );
  assert.equal(result.kind, 'ok');
  return result.kind === 'ok' ? result.firstOffset : -1;
}
