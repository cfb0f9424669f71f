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
