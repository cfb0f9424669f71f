// The byte-built stream frame (RecordFrameWriter) against the string-built one (recordFieldsJson): for records
// of every kind of content (escapes, control bytes, multi-byte UTF-8, invalid UTF-8, null, headers, base64,
// values larger than the writer's buffer, offsets up to 2^53 - 1) the bytes are exactly the string's UTF-8.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DecodedRecord } from '../../src/core/log/record-batch.js';
import { createPrng, type Prng } from '../../src/core/prng.js';
import { RecordFrameWriter, recordFieldsJson } from '../../src/http/record-json.js';

/** Pieces a key or value is made of: each kind the escaper treats differently. */
const pieces: readonly Uint8Array[] = [
  Buffer.from('plain ascii'),
  Buffer.from('"quoted" and \\ back\\slashed'),
  Buffer.from([0x00, 0x01, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1b, 0x1f, 0x7f]),
  Buffer.from('héllo wörld ✓ 😀 \u2028\u2029'),
  Buffer.from([0xc3]), // a truncated two-byte sequence: invalid UTF-8
  Buffer.from([0x80, 0xbf]), // lone continuation bytes
  Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate: invalid UTF-8
  Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF: invalid
  Buffer.alloc(0),
];

function bytesOf(prng: Prng): Uint8Array | null {
  const roll = prng.nextInt(10);
  if (roll === 0) return null;
  if (roll === 1) return Buffer.alloc(5000 + prng.nextInt(5000), 0x61 + prng.nextInt(26)); // past 4 KiB
  const parts: Uint8Array[] = [];
  for (let n = prng.nextInt(4); n >= 0; n--) parts.push(pieces[prng.nextInt(pieces.length)]!);
  // Sometimes a view into a larger buffer, as decoded records are.
  const whole = Buffer.concat([Buffer.from('xx'), ...parts, Buffer.from('yy')]);
  return whole.subarray(2, whole.byteLength - 2);
}

function recordOf(prng: Prng): DecodedRecord {
  const headers = [];
  for (let n = prng.nextInt(3) === 0 ? prng.nextInt(3) + 1 : 0; n > 0; n--) {
    headers.push({ key: Buffer.from(`h${n}"\\`), value: prng.nextInt(2) === 0 ? null : bytesOf(prng) });
  }
  const offsets = [0, 9, 10, 12345, 2 ** 31, 2 ** 53 - 1];
  return {
    offset: prng.nextInt(2) === 0 ? offsets[prng.nextInt(offsets.length)]! : prng.nextU32(),
    timestampMs: prng.nextInt(2) === 0 ? 1_796_000_000_000 + prng.nextInt(1e6) : prng.nextInt(100),
    key: bytesOf(prng),
    value: bytesOf(prng),
    headers: headers.map((h) => ({ key: h.key, value: h.value ?? null })),
  } as DecodedRecord;
}

test('a byte-built frame is the UTF-8 of the string-built one, for 3000 random records', () => {
  const prng = createPrng(20261207);
  const writer = new RecordFrameWriter();
  const prefixes = ['{', '{"topic":"t\\"1","partition":3,'];
  for (let i = 0; i < 3000; i++) {
    const record = recordOf(prng);
    const base64 = prng.nextInt(4) === 0;
    const prefix = prefixes[i % prefixes.length]!;
    const expected = `${prefix}${recordFieldsJson(record, base64)}`;
    const frame = writer.frame(Buffer.from(prefix), record, base64);
    const actual = Buffer.from(frame).toString('utf8');
    if (actual !== expected) assert.equal(actual, expected, `record ${i}`);
    assert.equal(frame.byteLength, Buffer.byteLength(expected), `record ${i}: byte length`);
    // The frame is valid JSON whose value is the record's text.
    JSON.parse(actual);
  }
});
