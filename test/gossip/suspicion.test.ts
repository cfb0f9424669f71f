// Lifeguard's suspicion timer: starts at the maximum, shrinks with each independent confirmation, reaches
// the minimum after k of them, and is not fooled by repeated or original accusers.
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

  it('never rises, and stays within [min, max], whatever the accusers', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'), { maxLength: 20 }),
        (k, minMs, mult, accusers) => {
          const s = new Suspicion(0, 'a', k, minMs, minMs * mult);
          let previous = s.timeoutMs();
          for (const accuser of accusers) {
            s.confirm(accuser);
            const now = s.timeoutMs();
            assert.ok(now <= previous && now >= minMs && now <= minMs * mult);
            previous = now;
          }
          if (s.confirmations >= k) assert.equal(s.timeoutMs(), minMs);
        },
      ),
    );
  });
});
