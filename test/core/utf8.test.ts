// The UTF-8 scan agrees with Node's native validator on arbitrary bytes and points at the first bad byte.
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { test } from 'node:test';
import fc from 'fast-check';
import { firstInvalidUtf8 } from '../../src/core/utf8.js';

test('firstInvalidUtf8 is -1 exactly when the bytes are UTF-8, and the prefix before it is UTF-8', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.string({ unit: 'binary' }).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))),
      ),
      (bytes) => {
        const at = firstInvalidUtf8(bytes);
        assert.equal(at === -1, isUtf8(bytes));
        if (at >= 0) assert.ok(isUtf8(bytes.subarray(0, at)), 'everything before the bad byte is UTF-8');
      },
    ),
    { numRuns: 2000 },
  );
});

test('overlong forms, surrogates and lone continuation bytes are found', () => {
  assert.equal(firstInvalidUtf8(Buffer.from([0x61, 0xc0, 0xaf])), 1);
  assert.equal(firstInvalidUtf8(Buffer.from([0x80])), 0);
  assert.equal(firstInvalidUtf8(Buffer.from([0x61, 0x62, 0xed, 0xa0, 0x80])), 2);
  assert.equal(firstInvalidUtf8(Buffer.from([0xf4, 0x90, 0x80, 0x80])), 0);
  assert.equal(firstInvalidUtf8(Buffer.from('héllo €', 'utf8')), -1);
});
