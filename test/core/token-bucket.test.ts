// The byte token bucket behind --replication-throttle: refills at its rate up to its burst, lends beyond what
// it holds (a batch cannot be cut) and is repaid from later refills, and can start empty with its clock set at
// the first call.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket } from '../../src/core/token-bucket.js';

test('refill at the rate up to the burst, debts repaid, an empty start', () => {
  const full = new TokenBucket(1000, 500, 0);
  assert.equal(full.available(0), 500);
  full.spend(800, 0);
  assert.equal(full.available(0), -300);
  assert.equal(full.available(300), 0);
  assert.equal(full.available(10_000), 500, 'capped at the burst');
  const empty = new TokenBucket(1000, 500, -1, 0);
  assert.equal(empty.available(1_000_000), 0, 'the clock starts at the first call');
  assert.equal(empty.available(1_000_250), 250);
  let sent = 0;
  for (let t = 1_000_250; t <= 1_010_250; t += 100) {
    const allowed = empty.available(t);
    if (allowed > 0) {
      empty.spend(allowed + 40, t);
      sent += allowed + 40;
    }
  }
  assert.ok(sent <= 10_000 + 500 + 40, `${sent} bytes in 10 s at 1000 bytes/s`);
  assert.ok(sent >= 9_000, `${sent} bytes in 10 s at 1000 bytes/s`);
});
