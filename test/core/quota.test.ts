// The byte-rate quota table: a principal is admitted while its bucket is not in debt, a request is charged in
// full (debt included) and the delay is the time the refill needs to repay it; over a long run a principal
// gets its rate plus one burst plus one request; buckets that have refilled are dropped, and the table never
// holds more than its bound (least recently used dropped first when every bucket is busy).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QuotaTable, retryAfterSecondsOf } from '../../src/core/quota.js';

test('admitted while not in debt, the delay repays the debt, principals apart', () => {
  const table = new QuotaTable({ bytesPerS: 1000, burstMs: 1000, entriesMax: 10 });
  assert.equal(table.delayMs('alice', 0), 0, 'a principal never seen has its burst');
  table.charge('alice', 1500, 0);
  // 1000 of burst less 1500: 500 in debt; 501 bytes of refill bring the bucket to 1.
  assert.equal(table.delayMs('alice', 0), 501);
  assert.equal(table.delayMs('alice', 250), 251);
  assert.equal(table.delayMs('alice', 501), 0);
  assert.equal(table.delayMs('bob', 0), 0, 'another principal has a bucket of its own');
  assert.equal(retryAfterSecondsOf(1), 1);
  assert.equal(retryAfterSecondsOf(1000), 1);
  assert.equal(retryAfterSecondsOf(1001), 2);
});

test('over a long run a principal gets its rate, one burst and one request', () => {
  const table = new QuotaTable({ bytesPerS: 10_000, burstMs: 1000, entriesMax: 10 });
  let accepted = 0;
  for (let nowMs = 0; nowMs <= 10_000; nowMs += 5) {
    if (table.delayMs('p', nowMs) === 0) {
      table.charge('p', 700, nowMs);
      accepted += 700;
    }
  }
  assert.ok(accepted <= 10_000 * 10 + 10_000 + 700, `${accepted} bytes in 10 s at 10000 bytes/s`);
  assert.ok(accepted >= 10_000 * 10, `${accepted} bytes in 10 s at 10000 bytes/s`);
});

test('refilled buckets are evicted, and the table keeps its bound with busy buckets', () => {
  const table = new QuotaTable({ bytesPerS: 100, burstMs: 1000, entriesMax: 3 });
  table.charge('a', 50, 0);
  table.charge('b', 50, 0);
  assert.equal(table.evictIdle(100), 0, 'half refilled: kept');
  assert.equal(table.evictIdle(500), 2, 'refilled to the burst: dropped');
  assert.equal(table.size, 0);
  for (const p of ['a', 'b', 'c']) table.charge(p, 500, 1000);
  table.charge('a', 1, 1000); // a is now the most recently used
  table.charge('d', 500, 1000);
  assert.equal(table.size, 3);
  assert.equal(table.delayMs('b', 1000), 0, 'b, the least recently used, was dropped');
  assert.ok(table.delayMs('a', 1000) > 0 && table.delayMs('c', 1000) > 0 && table.delayMs('d', 1000) > 0);
});
