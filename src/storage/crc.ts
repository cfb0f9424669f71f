// The CRC-32 used by the record batch format: zlib's, native in Node 20. The pure batch code in
// `src/core/log/` takes it as a parameter because core cannot import node:*. Callable from any thread.
import { crc32 as zlibCrc32 } from 'node:zlib';
import type { Crc32 } from '../core/log/record-batch.js';

export const crc32: Crc32 = (bytes) => zlibCrc32(bytes);
