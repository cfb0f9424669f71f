// The ring's pure index arithmetic: frame sizing, the wrap rule, 32-bit counter words and geometry checks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  extendCounter,
  FRAME_HEADER_BYTES,
  frameBytesFor,
  ringGeometryProblems,
  wrapSkipBytes,
} from '../../src/core/ring/ring-index.js';

test('a frame is its header plus payload rounded up to 8 bytes', () => {
  assert.equal(frameBytesFor(0), FRAME_HEADER_BYTES);
  assert.equal(frameBytesFor(1), 24);
  assert.equal(frameBytesFor(8), 24);
  assert.equal(frameBytesFor(9), 32);
});

test('a frame that does not fit before the end skips exactly the bytes up to the end', () => {
  assert.equal(wrapSkipBytes(0, 64, 256), 0);
  assert.equal(wrapSkipBytes(192, 64, 256), 0, 'a frame that ends exactly at the end fits');
  assert.equal(wrapSkipBytes(200, 64, 256), 56);
  assert.equal(wrapSkipBytes(2 ** 32 - 8, 16, 256), 8, 'positions follow the exact counter past 2^32');
});

test('an exact counter is rebuilt from its 32-bit word whenever it is within 2^32 - 1 above the base', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 52 }),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      (baseBytes, aheadBytes) => {
        const counterBytes = baseBytes + aheadBytes;
        // What an Int32Array holds after Atomics.store(counterBytes): the value modulo 2^32, signed.
        const word = (counterBytes % 2 ** 32) | 0;
        assert.equal(extendCounter(baseBytes, word), counterBytes);
      },
    ),
    { numRuns: 2000 },
  );
});

test('a geometry check reports every problem at once', () => {
  assert.deepEqual(ringGeometryProblems({ capacityBytes: 4096, frameBytesMax: 1024 }), []);
  const problems = ringGeometryProblems({ capacityBytes: 1000, frameBytesMax: 12 });
  assert.equal(problems.length, 2, problems.join('; '));
  assert.match(problems[0]!, /power of two/);
  assert.match(problems[1]!, /frameBytesMax must be an integer >= 24/);
  assert.match(ringGeometryProblems({ capacityBytes: 4096, frameBytesMax: 2048 })[0]!, /capacityBytes \/ 4/);
  assert.match(ringGeometryProblems({ capacityBytes: 2 ** 31, frameBytesMax: 1024 })[0]!, /<= 1073741824/);
});
