// The pieces between Kafka's record batches and the log's: CRC-32C, the checks on a produced batch, the CRC
// translation both ways, and the broker-id to node-id mapping every broker computes alike.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32c, rewriteBatchCrcs } from '../../../src/core/kafka/crc32c.js';
import { kafkaErrors } from '../../../src/core/kafka/error-codes.js';
import { kafkaNodeIds } from '../../../src/core/kafka/node-ids.js';
import { checkProducedBatches } from '../../../src/core/kafka/produce-batches.js';
import {
  BATCH_HEADER_BYTES,
  BatchField,
  BatchWriter,
  validateBatch,
  writeInt32,
} from '../../../src/core/log/record-batch.js';
import { crc32 } from '../../../src/storage/crc.js';

function batch(options: { producerId?: number; records?: number; crc?: typeof crc32 } = {}): Uint8Array {
  const writer = new BatchWriter(1024, 1 << 20);
  writer.beginBatch(
    options.producerId === undefined
      ? {}
      : { producerId: options.producerId, producerEpoch: 0, baseSequence: 0 },
  );
  for (let i = 0; i < (options.records ?? 2); i++) {
    writer.addRecord(
      1_790_000_000_000 + i,
      new TextEncoder().encode(`k${i}`),
      new TextEncoder().encode(`v${i}`),
    );
  }
  writer.endBatch(options.crc ?? crc32c);
  return writer.bytes().slice();
}

describe('CRC-32C', () => {
  test('matches the published check value and differs from zlib CRC-32', () => {
    const check = new TextEncoder().encode('123456789');
    assert.equal(crc32c(check), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(0)), 0);
    assert.equal(crc32(check), 0xcbf43926);
    const long = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff);
    // The slicing-by-8 path agrees with a byte-at-a-time reference.
    let ref = -1;
    for (const byte of long) {
      ref ^= byte;
      for (let k = 0; k < 8; k++) ref = ref & 1 ? (ref >>> 1) ^ 0x82f63b78 : ref >>> 1;
    }
    assert.equal(crc32c(long), (ref ^ -1) >>> 0);
  });

  test('a batch checksummed one way is rewritten the other way and validates with it', () => {
    const two = Buffer.concat([batch({ crc: crc32c }), batch({ crc: crc32c, records: 3 })]);
    rewriteBatchCrcs(two, crc32);
    const first = validateBatch(two, 0, two.length, crc32, { batchBytesMax: 1 << 20, deep: true });
    assert.equal(first.kind, 'ok');
    if (first.kind !== 'ok') return;
    assert.equal(
      validateBatch(two, first.sizeBytes, two.length, crc32, { batchBytesMax: 1 << 20, deep: true }).kind,
      'ok',
    );
    rewriteBatchCrcs(two, crc32c);
    assert.equal(
      validateBatch(two, 0, two.length, crc32c, { batchBytesMax: 1 << 20, deep: true }).kind,
      'ok',
    );
  });
});

describe('produced batches', () => {
  test('a valid batch passes with its record count and producer fields', () => {
    const checked = checkProducedBatches(batch({ producerId: 7, records: 3 }), crc32c, 1 << 20);
    assert.equal(checked.kind, 'ok');
    if (checked.kind !== 'ok') return;
    assert.equal(checked.batches.length, 1);
    assert.equal(checked.batches[0]!.recordCount, 3);
    assert.deepEqual(checked.batches[0]!.producer, { producerId: 7, producerEpoch: 0, baseSequence: 0 });
    assert.equal(checked.batches[0]!.maxTimestampMs, 1_790_000_000_002);
  });

  test('a wrong CRC, old magic, compression, a transactional bit, a size above the bound or no records are refused', () => {
    const refused = (bytes: Uint8Array | null, code: number, bound = 1 << 20): void => {
      const checked = checkProducedBatches(bytes, crc32c, bound);
      assert.equal(checked.kind, 'error');
      if (checked.kind === 'error') assert.equal(checked.errorCode, code, checked.message);
    };
    refused(batch({ crc: crc32 }), kafkaErrors.CORRUPT_MESSAGE.code);
    const magic1 = batch();
    magic1[BatchField.magic] = 1;
    refused(magic1, kafkaErrors.UNSUPPORTED_FOR_MESSAGE_FORMAT.code);
    for (const [bit, code] of [
      [0x01, kafkaErrors.UNSUPPORTED_COMPRESSION_TYPE.code],
      [0x10, kafkaErrors.INVALID_RECORD.code],
      [0x20, kafkaErrors.INVALID_RECORD.code],
    ] as const) {
      const b = batch();
      b[BatchField.attributes + 1] = bit;
      rewriteBatchCrcs(b, crc32c);
      refused(b, code);
    }
    // A compressed batch as clients send it: its records are not framed as uncompressed ones (gzip bytes here).
    for (const codec of [1, 2, 3, 4]) {
      const zipped = batch({ records: 2 });
      zipped[BatchField.attributes + 1] = codec;
      zipped.fill(0x1f, BATCH_HEADER_BYTES);
      rewriteBatchCrcs(zipped, crc32c);
      refused(zipped, kafkaErrors.UNSUPPORTED_COMPRESSION_TYPE.code);
    }
    refused(batch(), kafkaErrors.MESSAGE_TOO_LARGE.code, 64);
    refused(null, kafkaErrors.CORRUPT_MESSAGE.code);
    refused(batch().subarray(0, 40), kafkaErrors.CORRUPT_MESSAGE.code);
    const lying = batch();
    writeInt32(lying, BatchField.recordCount, 5);
    rewriteBatchCrcs(lying, crc32c);
    refused(lying, kafkaErrors.CORRUPT_MESSAGE.code);
  });
});

describe('Kafka node ids', () => {
  test('trailing digits when unique, the same mapping whatever the order', () => {
    const a = kafkaNodeIds(['broker-1', 'broker-2', 'broker-3']);
    assert.deepEqual([...a.entries()].sort(), [
      ['broker-1', 1],
      ['broker-2', 2],
      ['broker-3', 3],
    ]);
    const b = kafkaNodeIds(['b1', 'c1', 'alpha', 'b2']);
    assert.deepEqual(kafkaNodeIds(['alpha', 'b2', 'c1', 'b1']), b);
    assert.equal(b.get('b2'), 2);
    const values = [...b.values()];
    assert.equal(new Set(values).size, values.length, 'node ids are distinct');
    for (const v of values) assert.ok(Number.isInteger(v) && v >= 0 && v <= 0x7fffffff);
  });
});
