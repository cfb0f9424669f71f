// The CRC-32 of the batch format: the table-driven path used for small inputs is the same function as zlib's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { createPrng } from '../../src/core/prng.js';
import { crc32, crc32Range, tableCrc32 } from '../../src/storage/crc.js';

test("the table CRC equals zlib's for every length up to 600 bytes and for random contents", () => {
  const rng = createPrng(5);
  for (let length = 0; length <= 600; length++) {
    for (let round = 0; round < 4; round++) {
      const bytes = new Uint8Array(length);
      for (let i = 0; i < length; i++) bytes[i] = rng.nextInt(256);
      const expected = zlibCrc32(bytes);
      assert.equal(tableCrc32(bytes), expected, `table, length ${length}`);
      assert.equal(crc32(bytes), expected, `crc32, length ${length}`);
      // A view at an odd offset into a larger buffer computes over exactly its own bytes.
      const padded = new Uint8Array(length + 3);
      padded.set(bytes, 1);
      assert.equal(tableCrc32(padded.subarray(1, 1 + length)), expected, `view, length ${length}`);
      // The same range given by its bounds, without a view.
      assert.equal(tableCrc32(padded, 1, 1 + length), expected, `range, length ${length}`);
      assert.equal(crc32Range(padded, 1, 1 + length), expected, `crc32Range, length ${length}`);
    }
  }
});
