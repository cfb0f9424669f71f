// The acceptor's pool of body buffers: a buffer given back is handed out again, at most `freeMax` are kept,
// bodies larger than a buffer get fresh memory that is not kept, and giving a buffer back twice is a bug.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool } from '../../src/http/buffer-pool.js';

test('a body buffer given back is reused; larger bodies and buffers past the bound are not kept', () => {
  const pool = new BufferPool(1024, 2);
  const a = pool.take(100);
  assert.equal(a.byteLength, 100);
  pool.give(a);
  const b = pool.take(1024);
  assert.equal(b.buffer, a.buffer, 'the same memory, handed out again');
  const big = pool.take(4096);
  assert.equal(big.byteLength, 4096);
  pool.give(big);
  assert.equal(pool.freeCount, 0, 'a fresh larger buffer is dropped');
  const c = pool.take(10);
  const d = pool.take(10);
  pool.give(b);
  pool.give(c);
  pool.give(d);
  assert.equal(pool.freeCount, 2, 'at most freeMax kept');
  const e = pool.take(10);
  pool.give(e);
  assert.throws(() => pool.give(e), /given back twice/);
});
