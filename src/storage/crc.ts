// The CRC-32 used by the record batch format: zlib's (IEEE polynomial), native in Node 20. The pure batch code
// in `src/core/log/` takes it as a parameter because core cannot import node:*. Callable from any thread.
//
// Every batch read for a consumer is checked, so the per-call cost matters for small batches: a call into
// zlib costs about 200 ns before it touches a byte, while a table-driven CRC in JavaScript does 64 bytes in
// about 60 ns (bench: `bench/fetch-crc.ts`). Below `SMALL_BYTES` the table computes the same function (same
// polynomial, same result for every input, checked by a test), so it catches exactly what zlib's does.
import { crc32 as zlibCrc32 } from 'node:zlib';
import type { Crc32, Crc32Range } from '../core/log/record-batch.js';

/** Inputs shorter than this use the table: measured faster than a zlib call up to about 256 bytes. */
const SMALL_BYTES = 256;

/** Slice-by-8 tables of the reflected IEEE polynomial 0xEDB88320: table k at [k * 256, k * 256 + 256). */
const TABLE = (() => {
  const table = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = table[n]!;
    for (let k = 1; k < 8; k++) {
      c = table[c & 0xff]! ^ (c >>> 8);
      table[k * 256 + n] = c;
    }
  }
  return table;
})();

/** CRC-32 of `bytes[start, end)` (all of it by default) with the tables, eight bytes a step. */
export function tableCrc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const t = TABLE;
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    c =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^
      t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

export const crc32: Crc32 = (bytes) => (bytes.length < SMALL_BYTES ? tableCrc32(bytes) : zlibCrc32(bytes));

/**
 * `crc32` over `bytes[start, end)`: a small range (a batch of one short record) is checksummed in place, with
 * no view allocated; a large one goes to zlib through a view, whose cost is small beside the bytes'.
 */
export const crc32Range: Crc32Range = (bytes, start, end) =>
  end - start < SMALL_BYTES ? tableCrc32(bytes, start, end) : zlibCrc32(bytes.subarray(start, end));
