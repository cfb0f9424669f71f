// The binary produce body's pure parts: the encoder writes batches a Kafka reader accepts (CRC-32C) and that
// decode to the records given; the whole-body check passes good bodies, describes them as the header walk does,
// and refuses each kind of damage with the HTTP error naming it. Also the NDJSON body parser.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c, rewriteBatchCrcs } from '../../../src/core/kafka/crc32c.js';
import {
  type BodyRecord,
  checkBatchBody,
  describeCheckedBody,
  encodeRecordBatch,
} from '../../../src/core/log/batch-body.js';
import { BatchField, forEachRecord, validateBatch, writeInt32 } from '../../../src/core/log/record-batch.js';
import { bodyFormatOf, parseNdjsonProduce } from '../../../src/http/produce-body.js';

const limits = { batchBytesMax: 1 << 20, recordsMax: 1000 };
const records: BodyRecord[] = [
  { key: 'k', value: 'v', headers: { h: 'x' }, timestampMs: 1000 },
  { key: null, value: new Uint8Array([0, 255, 7]), timestampMs: 990 },
  { value: null, timestampMs: 1010 },
];

test('an encoded batch is a valid CRC-32C magic-2 batch that decodes to its records', () => {
  const batch = encodeRecordBatch(records, { producerId: 7, producerEpoch: 1, baseSequence: 3 });
  const check = validateBatch(batch, 0, batch.length, crc32c, { batchBytesMax: batch.length, deep: true });
  assert.equal(check.kind, 'ok');
  const decoded: unknown[] = [];
  forEachRecord(batch, (r) => {
    decoded.push([
      r.offset,
      r.key === null ? null : Buffer.from(r.key).toString(),
      r.value === null ? null : [...r.value],
      r.headers.map((h) => [Buffer.from(h.key).toString(), Buffer.from(h.value!).toString()]),
      r.timestampMs,
    ]);
  });
  assert.deepEqual(decoded, [
    [0, 'k', [...Buffer.from('v')], [['h', 'x']], 1000],
    [1, null, [0, 255, 7], [], 990],
    [2, null, null, [], 1010],
  ]);
});

test('a good body of several batches passes, and the header walk describes it the same way', () => {
  const one = encodeRecordBatch(records);
  const two = encodeRecordBatch(records.slice(0, 1), { producerId: 9, producerEpoch: 0, baseSequence: 0 });
  const body = new Uint8Array(Buffer.concat([one, two]));
  const checked = checkBatchBody(body, limits);
  assert.equal(checked.kind, 'ok');
  if (checked.kind !== 'ok') return;
  assert.equal(checked.recordCount, 4);
  assert.deepEqual(checked.batches, [
    { at: 0, sizeBytes: one.length, recordCount: 3, maxTimestampMs: 1010, producer: null },
    {
      at: one.length,
      sizeBytes: two.length,
      recordCount: 1,
      maxTimestampMs: 1000,
      producer: { producerId: 9, producerEpoch: 0, baseSequence: 0 },
    },
  ]);
  assert.deepEqual(describeCheckedBody(body), { batches: checked.batches, recordCount: 4 });
  // A view into a larger buffer reports positions within the view.
  const padded = new Uint8Array(body.length + 5);
  padded.set(body, 5);
  const view = checkBatchBody(padded.subarray(5), limits);
  assert.deepEqual(view.kind === 'ok' ? view.batches.map((b) => b.at) : null, [0, one.length]);
});

test('each kind of damage is refused with the error that names it', () => {
  const good = encodeRecordBatch(records);
  const edit = (change: (b: Uint8Array) => void, recrc = true): Uint8Array => {
    const b = good.slice();
    change(b);
    if (recrc) rewriteBatchCrcs(b, crc32c);
    return b;
  };
  const cases: [string, Uint8Array, string, RegExp, typeof limits?][] = [
    ['empty', new Uint8Array(0), 'bad_request', /empty/],
    ['short', good.subarray(0, 60), 'bad_request', /too short/],
    ['truncated', good.subarray(0, good.length - 1), 'bad_request', /declares/],
    [
      'negative length',
      edit((b) => writeInt32(b, BatchField.batchLength, -5), false),
      'bad_request',
      /declares/,
    ],
    ['bad crc', edit((b) => writeInt32(b, BatchField.crc, 1), false), 'bad_request', /CRC-32C mismatch/],
    [
      'bad magic',
      edit((b) => {
        b[BatchField.magic] = 0;
      }),
      'bad_request',
      /magic 0/,
    ],
    [
      'count lies',
      edit((b) => {
        writeInt32(b, BatchField.recordCount, 4);
        writeInt32(b, BatchField.lastOffsetDelta, 3);
      }),
      'bad_request',
      /record/,
    ],
    [
      'a huge count in a small batch is a lie, not too many records',
      edit((b) => {
        writeInt32(b, BatchField.recordCount, 2 ** 31 - 1);
        writeInt32(b, BatchField.lastOffsetDelta, 2 ** 31 - 2);
      }),
      'bad_request',
      /record/,
    ],
    [
      'count and delta disagree',
      edit((b) => writeInt32(b, BatchField.recordCount, 2)),
      'bad_request',
      /record count 2/,
    ],
    [
      'compressed',
      edit((b) => {
        b[BatchField.attributes + 1] = 4;
      }),
      'unsupported_media_type',
      /compress/,
    ],
    [
      'transactional',
      edit((b) => {
        b[BatchField.attributes + 1] = 0x10;
      }),
      'bad_request',
      /transactional/,
    ],
    ['too large', good, 'payload_too_large', /above/, { batchBytesMax: good.length - 1, recordsMax: 10 }],
    ['too many records', good, 'payload_too_large', /at most 2/, { batchBytesMax: 1 << 20, recordsMax: 2 }],
  ];
  for (const [name, body, error, message, bounds] of cases) {
    const checked = checkBatchBody(body, bounds ?? limits);
    assert.equal(checked.kind, 'error', name);
    if (checked.kind !== 'error') continue;
    assert.equal(checked.error, error, `${name}: ${checked.message}`);
    assert.match(checked.message, message, name);
    assert.match(checked.message, /^the record-batch body: /, name);
  }
});

test('NDJSON: one record per line, errors name the line; the content types are told apart', () => {
  const ndLimits = { recordBytesMax: 1000, batchRecordsMax: 3, headersMax: 4 };
  const ok = parseNdjsonProduce('{"value":"a"}\r\n\n{"key":"k","value":"b","timestamp":5}\n', ndLimits, 42);
  assert.deepEqual(ok.kind === 'ok' ? ok.records.map((r) => [r.key, r.value, r.timestampMs]) : ok, [
    [null, 'a', 42],
    ['k', 'b', 5],
  ]);
  const bad = parseNdjsonProduce('{"value":"a"}\n\n{"value":1}\n', ndLimits, 0);
  assert.equal(bad.kind === 'error' ? bad.message.slice(0, 8) : '', 'line 3: ');
  const many = parseNdjsonProduce('{"value":"a"}\n'.repeat(4), ndLimits, 0);
  assert.equal(many.kind === 'error' ? many.error : '', 'payload_too_large');
  assert.equal(parseNdjsonProduce('', ndLimits, 0).kind, 'error');
  assert.equal(bodyFormatOf('application/x-ndjson; charset=utf-8'), 'ndjson');
  assert.equal(bodyFormatOf('Application/Vnd.Kafka.Record-Batch'), 'record-batch');
  assert.equal(bodyFormatOf('application/vnd.kafka.json.v2+json'), 'json');
  assert.equal(bodyFormatOf(''), 'json');
});
