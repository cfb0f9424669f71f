// The transmit-limited broadcast queue: least transmitted and newest first, one entry per member, dropped
// after the retransmit limit, never more than the byte budget, never more than its bound.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BroadcastQueue } from '../../src/core/gossip/broadcast-queue.js';
import { estimateMessageBytes, type UpdateMessage } from '../../src/core/gossip/messages.js';

const suspect = (nodeId: string, incarnation = 0): UpdateMessage => ({
  kind: 'suspect',
  nodeId,
  incarnation,
  accuserId: 'x',
});

describe('broadcast queue', () => {
  it('sends the least transmitted updates first and, among equals, the newest', () => {
    const q = new BroadcastQueue(10);
    q.enqueue(suspect('a'));
    q.enqueue(suspect('b'));
    const oneBytes = estimateMessageBytes(suspect('a'));
    assert.deepEqual(
      q.take(oneBytes, 5).map((m) => m.nodeId),
      ['b'],
    );
    q.enqueue(suspect('c'));
    assert.deepEqual(
      q.take(2 * oneBytes, 5).map((m) => m.nodeId),
      ['c', 'a'],
    );
    assert.deepEqual(
      q.take(10 * oneBytes, 5).map((m) => m.nodeId),
      ['c', 'b', 'a'],
    );
  });

  it('keeps only the latest update about a member', () => {
    const q = new BroadcastQueue(10);
    q.enqueue(suspect('a', 1));
    q.enqueue({ kind: 'dead', nodeId: 'a', incarnation: 2, accuserId: 'y' });
    assert.equal(q.size, 1);
    assert.deepEqual(q.take(1000, 3), [{ kind: 'dead', nodeId: 'a', incarnation: 2, accuserId: 'y' }]);
  });

  it('drops an update once it has been sent the retransmit limit', () => {
    const q = new BroadcastQueue(10);
    q.enqueue(suspect('a'));
    for (let i = 0; i < 3; i++) assert.equal(q.take(1000, 3).length, 1);
    assert.equal(q.size, 0);
    assert.deepEqual(q.take(1000, 3), []);
  });

  it('stays within its bound by dropping the oldest update', () => {
    const q = new BroadcastQueue(2);
    q.enqueue(suspect('a'));
    q.enqueue(suspect('b'));
    q.enqueue(suspect('c'));
    assert.equal(q.size, 2);
    assert.equal(q.pending('a'), undefined);
  });

  it('never takes more estimated bytes than the budget', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 60 }), fc.nat({ max: 2 ** 40 })), {
          maxLength: 80,
        }),
        fc.integer({ min: 0, max: 1400 }),
        (updates, budget) => {
          const q = new BroadcastQueue(100);
          for (const [id, inc] of updates) q.enqueue(suspect(id, inc));
          const taken = q.take(budget, 4);
          const bytes = taken.reduce((sum, m) => sum + estimateMessageBytes(m), 0);
          assert.ok(bytes <= budget);
          assert.ok(q.size <= 100);
        },
      ),
    );
  });
});
