// The wire primitives read what Kafka writes (bytes built by hand from the protocol guide's definitions), write
// the same bytes back, and turn every kind of garbage into an error value instead of an exception.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { KafkaReader, KafkaWriter } from '../../../src/core/kafka/primitives.js';

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replaceAll(' ', ''), 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('Kafka wire primitives', () => {
  test('fixed-width integers are big-endian', () => {
    const r = new KafkaReader(hex('ff 7fff 80000000 fffffffffffffffe 0001'));
    assert.equal(r.int8(), -1);
    assert.equal(r.int16(), 0x7fff);
    assert.equal(r.int32(), -0x80000000);
    assert.equal(r.int64(), -2);
    assert.equal(r.uint16(), 1);
    assert.equal(r.error, null);
    assert.equal(r.remaining, 0);
  });

  test('unsigned varints are LEB128 and zigzag varints map -1 to 1 (Kafka ByteUtils)', () => {
    const r = new KafkaReader(hex('00 7f 8001 ffffffff0f 01 02 03 ac02'));
    assert.deepEqual([r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint()], [0, 127, 128, 0xffffffff]);
    assert.deepEqual([r.varint(), r.varint(), r.varint(), r.varlong()], [-1, 1, -2, 150]);
    assert.equal(r.error, null);
    const w = new KafkaWriter(4);
    for (const v of [0, 127, 128, 0xffffffff]) w.uvarint(v);
    for (const v of [-1, 1, -2]) w.varint(v);
    w.varlong(150);
    assert.equal(toHex(w.finish()), '007f8001ffffffff0f010203ac02');
  });

  test('classic strings have an int16 length, compact ones a uvarint of length + 1; -1 and 0 mean null', () => {
    const r = new KafkaReader(hex('0003 616263 ffff 04 78797a 00 01'));
    assert.equal(r.string(false), 'abc');
    assert.equal(r.nullableString(false), null);
    assert.equal(r.string(true), 'xyz');
    assert.equal(r.nullableString(true), null);
    assert.equal(r.string(true), '');
    assert.equal(r.error, null);
    const w = new KafkaWriter(2);
    w.string(false, 'abc');
    w.nullableString(false, null);
    w.string(true, 'xyz');
    w.nullableString(true, null);
    w.string(true, '');
    assert.equal(toHex(w.finish()), '0003616263ffff0478797a0001');
  });

  test('a multi-byte UTF-8 string round-trips and its length counts bytes, not characters', () => {
    const w = new KafkaWriter(1);
    w.string(false, 'zürich ☃');
    w.string(true, 'é'.repeat(200));
    const bytes = w.finish();
    assert.equal(toHex(bytes.subarray(0, 2)), '000b');
    const r = new KafkaReader(bytes);
    assert.equal(r.string(false), 'zürich ☃');
    assert.equal(r.string(true), 'é'.repeat(200));
    assert.equal(r.error, null);
  });

  test('bytes are int32-length (or compact) views into the frame, not copies', () => {
    const frame = hex('00000002 abcd ffffffff 03 0102');
    const r = new KafkaReader(frame);
    const a = r.bytesField(false);
    assert.equal(toHex(a), 'abcd');
    assert.equal(a.buffer, frame.buffer);
    assert.equal(r.nullableBytes(false), null);
    assert.equal(toHex(r.bytesField(true)), '0102');
    assert.equal(r.error, null);
  });

  test('a length past the end of the frame is an error value, and every later read returns zero', () => {
    const r = new KafkaReader(hex('0010 6162'));
    assert.equal(r.string(false), '');
    assert.match(r.error ?? '', /16 bytes needed, 2 left/);
    assert.equal(r.int32(), 0);
    assert.equal(r.remaining, 0);
  });

  test('an array count larger than the frame could hold fails before anything is allocated', () => {
    const r = new KafkaReader(hex('7fffffff 00000000'));
    assert.equal(r.arrayLength(false, false, 4), 0);
    assert.match(r.error ?? '', /array of 2147483647 elements/);
  });

  test('null where the schema does not allow it, negative lengths and invalid UTF-8 are errors', () => {
    for (const [bytes, read] of [
      [hex('ffff'), (r: KafkaReader) => r.string(false)],
      [hex('fffe'), (r: KafkaReader) => r.nullableString(false)],
      [hex('ffffffff'), (r: KafkaReader) => r.arrayLength(false, false, 1)],
      [hex('0002 c328'), (r: KafkaReader) => r.string(false)],
      [hex('ffffffffff0f'), (r: KafkaReader) => r.uvarint()],
      [hex('0020000000000000'), (r: KafkaReader) => r.int64()],
    ] as const) {
      const r = new KafkaReader(bytes);
      read(r);
      assert.notEqual(r.error, null, toHex(bytes));
    }
  });

  test('no sequence of reads over random bytes throws', () => {
    const ops = ['int8', 'int16', 'int32', 'int64', 'uvarint', 'varint', 'varlong', 'uuid'] as const;
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.array(fc.nat(11), { maxLength: 20 }),
        (bytes, picks) => {
          const r = new KafkaReader(bytes);
          for (const pick of picks) {
            if (pick < ops.length) r[ops[pick]!]();
            else if (pick === 8) r.nullableString(pick % 2 === 0);
            else if (pick === 9) r.nullableBytes(true);
            else if (pick === 10) r.arrayLength(false, true, 1);
            else r.string(true);
          }
          assert.ok(r.pos <= r.end);
        },
      ),
    );
  });

  test('the writer grows its buffer and reuses it after reset', () => {
    const w = new KafkaWriter(2);
    for (let i = 0; i < 1000; i++) w.int32(i);
    assert.equal(w.finish().length, 4000);
    w.reset();
    w.int16(7);
    assert.equal(toHex(w.finish()), '0007');
  });
});
