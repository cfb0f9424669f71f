// The byte-written answers equal what JSON.stringify and template strings produce.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AnswerWriter } from '../../src/http/answer-bytes.js';

test('integers are written as JSON writes them, prefixes and text verbatim', () => {
  const writer = new AnswerWriter(256);
  fc.assert(
    fc.property(
      fc.string(),
      fc.nat(65_535),
      fc.maxSafeInteger(),
      fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
      (topic, partition, offset, timestamp) => {
        const prefix = Buffer.from(`{"topic":${JSON.stringify(topic)},"partition":`, 'utf8');
        fc.pre(prefix.byteLength < 180);
        const bytes = writer
          .begin()
          .bytes(prefix)
          .integer(partition)
          .ascii(',"offset":')
          .integer(offset)
          .ascii(',"timestamp":')
          .integer(timestamp)
          .ascii('}')
          .finish();
        const expected = JSON.stringify({ topic, partition, offset, timestamp });
        assert.equal(Buffer.from(bytes).toString('utf8'), expected);
        assert.deepEqual(JSON.parse(Buffer.from(bytes).toString('utf8')), {
          topic,
          partition,
          offset,
          timestamp,
        });
      },
    ),
    { numRuns: 2000 },
  );
  assert.equal(Buffer.from(writer.begin().integer(0).finish()).toString(), '0');
  assert.throws(() => writer.begin().integer(2 ** 53), /safe integer/);
  assert.throws(() => writer.begin().integer(1.5), /safe integer/);
});

test('a run of consecutive offsets is written as one entry per offset would be, across added digits', () => {
  const writer = new AnswerWriter(64 * 1024);
  const prefix = Buffer.from('{"partition":3,"offset":', 'latin1');
  const suffix = Buffer.from(',"error_code":null,"error":null}', 'latin1');
  fc.assert(
    fc.property(
      fc.oneof(fc.nat(2000), fc.constantFrom(9, 99, 995, 9_999_990, 2 ** 53 - 400)),
      fc.nat(300),
      (first, count) => {
        const bytes = writer.begin().ascii('[').consecutive(prefix, first, count, suffix).ascii(']').finish();
        const expected = Array.from({ length: count }, (_, k) => ({
          partition: 3,
          offset: first + k,
          error_code: null,
          error: null,
        }));
        assert.equal(Buffer.from(bytes).toString('latin1'), JSON.stringify(expected));
      },
    ),
  );
});
