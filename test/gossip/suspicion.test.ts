// Lifeguard's suspicion timer: starts at the maximum, shrinks with each independent confirmation, reaches
// the minimum after k of them, is not fooled by repeated or original accusers, stops waiting for confirmers
// that can no longer confirm, and can be postponed by a stall of its owner.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Suspicion } from '../../src/core/gossip/suspicion.js';

describe('suspicion timeout', () => {
  it('starts at the maximum and reaches the minimum after k independent confirmations', () => {
    const s = new Suspicion(1000, 'a', 3, 2000, 12_000);
    assert.equal(s.timeoutMs(), 12_000);
    assert.equal(s.deadlineMs(), 13_000);
    assert.equal(s.confirm('b'), true);
    // max - (max - min) * log(2) / log(4) = 12000 - 10000 / 2
    assert.equal(s.timeoutMs(), 7000);
    assert.equal(s.confirm('c'), true);
    assert.equal(s.confirm('d'), true);
    assert.equal(s.timeoutMs(), 2000);
    assert.equal(s.confirm('e'), false, 'confirmations beyond k are not counted');
  });

  it('does not count the first accuser or a repeated accuser as a confirmation', () => {
    const s = new Suspicion(0, 'a', 3, 1000, 6000);
    assert.equal(s.confirm('a'), false);
    assert.equal(s.confirm('b'), true);
    assert.equal(s.confirm('b'), false);
    assert.equal(s.confirmations, 1);
  });

  it('uses the minimum at once when no confirmation is expected (k = 0)', () => {
    const s = new Suspicion(0, 'a', 0, 1000, 6000);
    assert.equal(s.timeoutMs(), 1000);
  });

  it('stops waiting for a confirmer that became suspect itself, but only when confirmers are short', () => {
    // 4 members: the accuser's two peers are the only confirmers (k = 2).
    const small = new Suspicion(0, 'a', 2, 3000, 6000, 2);
    small.withdraw('c');
    assert.equal(small.k, 1);
    assert.equal(small.timeoutMs(), 6000, 'no confirmation yet: still the maximum');
    assert.equal(small.confirm('b'), true);
    assert.equal(small.timeoutMs(), 3000, 'the one confirmation left brings it to the minimum');
    // Many confirmers: losing one changes nothing.
    const large = new Suspicion(0, 'a', 3, 3000, 16_000, 400);
    large.withdraw('c');
    assert.equal(large.k, 3);
    // A member that already confirmed, or was withdrawn before, is not withdrawn again.
    const counted = new Suspicion(0, 'a', 2, 3000, 6000, 2);
    counted.confirm('b');
    counted.withdraw('b');
    counted.withdraw('c');
    counted.withdraw('c');
    assert.equal(counted.k, 1);
    assert.equal(counted.timeoutMs(), 3000);
  });

  it('moves its deadline and its next verification by a stall of its owner', () => {
    const s = new Suspicion(1000, 'a', 0, 3000, 3000);
    assert.equal(s.deadlineMs(), 4000);
    assert.equal(s.nextVerifyMs, 2000);
    s.postpone(2500);
    assert.equal(s.deadlineMs(), 6500);
    assert.equal(s.nextVerifyMs, 4500);
  });

  it('never rises, and stays within [min, max], whatever the accusers and withdrawals', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.boolean(), fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i')), {
          maxLength: 20,
        }),
        fc.nat({ max: 8 }),
        (k, minMs, mult, accusers, extraConfirmers) => {
          const s = new Suspicion(0, 'a', k, minMs, minMs * mult, k + extraConfirmers);
          let previous = s.timeoutMs();
          for (const [withdraw, accuser] of accusers) {
            if (withdraw) s.withdraw(accuser);
            else s.confirm(accuser);
            assert.ok(s.confirmations <= s.k && s.k <= k);
            const now = s.timeoutMs();
            assert.ok(now <= previous && now >= minMs && now <= minMs * mult);
            previous = now;
          }
          if (s.confirmations >= s.k) assert.equal(s.timeoutMs(), minMs);
        },
      ),
    );
  });
});
