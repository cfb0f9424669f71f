// The record batch format: what the writer encodes the decoder returns unchanged; the leader's in-place
// patches keep the CRC valid; the validator rejects any damage inside the CRC's range.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  BATCH_HEADER_BYTES,
  BatchField,
  BatchWriter,
  readBatchHeader,
  shallowBatchValid,
  utf8ByteLength,
  validateBatch,
  writeInt32,
  writeInt64,
} from '../../src/core/log/record-batch.js';
import { crc32, crc32Range } from '../../src/storage/crc.js';
import { decodeAll, encodeBatches, type ModelRecord } from './helpers.js';

const bytesOrNull = fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null, freq: 5 });
const record: fc.Arbitrary<ModelRecord> = fc.record({
  timestampMs: fc.integer({ min: 0, max: 2 ** 45 }),
  key: bytesOrNull,
  value: bytesOrNull,
  headers: fc.array(fc.record({ key: fc.string({ unit: 'grapheme', maxLength: 12 }), value: bytesOrNull }), {
    maxLength: 3,
  }),
});
const batches = fc.array(fc.array(record, { minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 5 });

test('every batch the writer encodes decodes to the same records, offsets and timestamps', () => {
  fc.assert(
    fc.property(batches, (input) => {
      const bytes = encodeBatches(input, new BatchWriter(16));
      let offset = 0;
      let pos = 0;
      for (const records of input) {
        // Offsets are assigned per batch as the log would, by patching the base offset.
        writeInt64(bytes, pos + BatchField.baseOffset, offset);
        const header = readBatchHeader(bytes, pos);
        assert.equal(header.recordCount, records.length);
        assert.equal(header.maxTimestampMs, Math.max(...records.map((r) => r.timestampMs)));
        assert.equal(header.firstTimestampMs, records[0]!.timestampMs);
        assert.equal(header.producerId, -1);
        assert.equal(header.baseSequence, -1);
        pos += 12 + header.batchLength;
        offset += records.length;
      }
      assert.equal(pos, bytes.length);
      const decoded = decodeAll(bytes);
      const expected = input.flat();
      assert.equal(decoded.length, expected.length);
      decoded.forEach((r, i) => {
        const e = expected[i]!;
        assert.equal(r.offset, i);
        assert.equal(r.timestampMs, e.timestampMs);
        assert.deepEqual(r.key, e.key);
        assert.deepEqual(r.value, e.value);
        assert.deepEqual(
          r.headers.map((h) => [h.key, h.value]),
          e.headers.map((h) => [h.key, h.value]),
        );
      });
    }),
    { numRuns: 300 },
  );
});

test('the leader patches base offset and leader epoch in place without invalidating the CRC', () => {
  fc.assert(
    fc.property(
      fc.array(record, { minLength: 1, maxLength: 5 }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 10 }),
      fc.integer({ min: -1, max: 0x7fffffff }),
      (records, baseOffset, epoch) => {
        const bytes = encodeBatches([records]);
        writeInt64(bytes, BatchField.baseOffset, baseOffset);
        writeInt32(bytes, BatchField.partitionLeaderEpoch, epoch);
        const check = validateBatch(bytes, 0, bytes.length, crc32, {
          batchBytesMax: bytes.length,
          deep: true,
        });
        assert.equal(check.kind, 'ok');
        assert.equal(readBatchHeader(bytes, 0).partitionLeaderEpoch, epoch);
        assert.deepEqual(
          decodeAll(bytes).map((r) => r.offset),
          records.map((_, i) => baseOffset + i),
        );
      },
    ),
    { numRuns: 200 },
  );
});

test('a flipped bit anywhere in the CRC range, the magic, or a short body fails validation', () => {
  fc.assert(
    fc.property(fc.array(record, { minLength: 1, maxLength: 5 }), fc.nat(), fc.nat(7), (records, at, bit) => {
      const bytes = encodeBatches([records]);
      const options = { batchBytesMax: bytes.length, deep: true } as const;
      const protectedStart = BatchField.magic;
      const position = protectedStart + (at % (bytes.length - protectedStart));
      const damaged = bytes.slice();
      damaged[position] = damaged[position]! ^ (1 << bit);
      assert.notEqual(
        validateBatch(damaged, 0, damaged.length, crc32, options).kind,
        'ok',
        `flip at ${position}`,
      );
      const cut = at % bytes.length;
      assert.equal(validateBatch(bytes, 0, cut, crc32, options).kind, 'incomplete', `cut at ${cut}`);
    }),
    { numRuns: 300 },
  );
});

test('offset continuity and length sanity are checked before anything else is trusted', () => {
  const bytes = encodeBatches([[{ timestampMs: 5, key: null, value: new Uint8Array(10), headers: [] }]]);
  const options = { batchBytesMax: 1 << 20, deep: true } as const;
  assert.equal(
    validateBatch(bytes, 0, bytes.length, crc32, { ...options, expectedBaseOffset: 0 }).kind,
    'ok',
  );
  const wrongOffset = validateBatch(bytes, 0, bytes.length, crc32, { ...options, expectedBaseOffset: 1 });
  assert.equal(wrongOffset.kind, 'corrupt');
  const huge = bytes.slice();
  writeInt32(huge, BatchField.batchLength, 0x7ffffff0);
  assert.equal(validateBatch(huge, 0, huge.length, crc32, options).kind, 'corrupt');
  const tiny = bytes.slice();
  writeInt32(tiny, BatchField.batchLength, BATCH_HEADER_BYTES - 13);
  assert.equal(validateBatch(tiny, 0, tiny.length, crc32, options).kind, 'corrupt');
});

test('timestamps before the first record, long values and many records round-trip through the varints', () => {
  const writer = new BatchWriter(8);
  writer.beginBatch({ producerId: 2 ** 40, producerEpoch: 3, baseSequence: 17 });
  const big = new Uint8Array(70_000).fill(7);
  writer.addRecord(1_700_000_000_000, null, big);
  writer.addRecord(1_700_000_000_000 - 2 ** 40, new Uint8Array(0), null, [{ key: 'ключ', value: null }]);
  for (let i = 0; i < 300; i++) writer.addRecord(1_700_000_000_000 + i * 1000, null, null);
  writer.endBatch(crc32);
  const bytes = writer.bytes();
  const header = readBatchHeader(bytes, 0);
  assert.equal(header.producerId, 2 ** 40);
  assert.equal(header.producerEpoch, 3);
  assert.equal(header.baseSequence, 17);
  const decoded = decodeAll(bytes);
  assert.equal(decoded.length, 302);
  assert.deepEqual(decoded[0]!.value, big);
  assert.equal(decoded[1]!.timestampMs, 1_700_000_000_000 - 2 ** 40);
  assert.deepEqual(decoded[1]!.key, new Uint8Array(0));
  assert.equal(decoded[1]!.headers[0]!.key, 'ключ');
  assert.equal(decoded[301]!.timestampMs, 1_700_000_000_000 + 299_000);
  assert.equal(decoded[301]!.offset, 301);
});

test('utf8ByteLength agrees with TextEncoder, lone surrogates included', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
      assert.equal(utf8ByteLength(text), new TextEncoder().encode(text).length);
    }),
    { numRuns: 500 },
  );
  assert.equal(utf8ByteLength('\ud800x'), new TextEncoder().encode('\ud800x').length);
});

test('records added as ranges of a larger buffer encode exactly as records added as views', () => {
  fc.assert(
    fc.property(fc.array(record, { minLength: 1, maxLength: 8 }), fc.nat(5), (records, padBytes) => {
      const byViews = new BatchWriter(16);
      const byRanges = new BatchWriter(16);
      byViews.beginBatch();
      byRanges.beginBatch();
      for (const r of records) {
        // The key and value sit at odd places inside one source buffer.
        const keyLength = r.key === null ? -1 : r.key.length;
        const valueLength = r.value === null ? -1 : r.value.length;
        const source = new Uint8Array(
          padBytes + Math.max(keyLength, 0) + padBytes + Math.max(valueLength, 0),
        );
        const keyAt = padBytes;
        const valueAt = keyAt + Math.max(keyLength, 0) + padBytes;
        if (r.key !== null) source.set(r.key, keyAt);
        if (r.value !== null) source.set(r.value, valueAt);
        assert.equal(
          byRanges.recordSizeBytesOf(keyLength, valueLength, r.headers),
          byViews.recordSizeBytes(r.key, r.value, r.headers),
        );
        byViews.addRecord(r.timestampMs, r.key, r.value, r.headers);
        byRanges.addRecordFrom(
          r.timestampMs,
          source,
          keyAt,
          keyLength,
          source,
          valueAt,
          valueLength,
          r.headers,
        );
      }
      byViews.endBatch(crc32);
      byRanges.endBatch(crc32, crc32Range);
      assert.deepEqual(byRanges.bytes(), byViews.bytes());
    }),
    { numRuns: 200 },
  );
});

test('the allocation-free header check agrees with validateBatch on sound and damaged batches', () => {
  fc.assert(
    fc.property(fc.array(record, { minLength: 1, maxLength: 5 }), fc.nat(), fc.nat(7), (records, at, bit) => {
      const bytes = encodeBatches([records]);
      const options = { batchBytesMax: bytes.length, deep: false } as const;
      assert.equal(shallowBatchValid(bytes, 0, bytes.length, bytes.length), true);
      const damaged = bytes.slice();
      const position = at % BATCH_HEADER_BYTES;
      damaged[position] = damaged[position]! ^ (1 << bit);
      const cut = at % (bytes.length + 1);
      for (const [b, end] of [
        [damaged, damaged.length],
        [bytes, cut],
      ] as const) {
        assert.equal(
          shallowBatchValid(b, 0, end, bytes.length),
          validateBatch(b, 0, end, crc32, options).kind === 'ok',
          `flip at ${position}, cut at ${cut}`,
        );
      }
    }),
    { numRuns: 500 },
  );
});
