// Idempotent-producer state: retries of any of the last five batches are duplicates with their original
// offsets, gaps and zombie epochs are refused, new epochs start over at 0, sequences wrap, and a table rebuilt
// by replaying the same batches decides the same (a new leader answers a retry as the old one would have).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ProducerStateTable, SEQUENCE_MAX } from '../../src/core/replication/producer-state.js';

test('retries are duplicates with their offsets; gaps and old epochs are refused', () => {
  const t = new ProducerStateTable();
  assert.deepEqual(t.check(7, 0, 3, 2), { kind: 'unknown_producer' });
  assert.deepEqual(t.check(7, 0, 0, 2), { kind: 'ok' });
  t.record(7, 0, 0, 2, 100, 1);
  for (let i = 1; i <= 6; i++) {
    assert.deepEqual(t.check(7, 0, i * 2, 2), { kind: 'ok' });
    t.record(7, 0, i * 2, 2, 100 + i * 2, 1);
  }
  assert.deepEqual(t.check(7, 0, 12, 2), { kind: 'duplicate', firstOffset: 112, lastOffset: 113 });
  assert.deepEqual(t.check(7, 0, 4, 2), { kind: 'duplicate', firstOffset: 104, lastOffset: 105 });
  assert.deepEqual(t.check(7, 0, 2, 2), { kind: 'out_of_order', expectedSequence: 14, gotSequence: 2 });
  assert.deepEqual(t.check(7, 0, 15, 1), { kind: 'out_of_order', expectedSequence: 14, gotSequence: 15 });
  t.record(7, 1, 0, 1, 200, 2);
  assert.deepEqual(t.check(7, 0, 14, 1), { kind: 'fenced_epoch', currentEpoch: 1 });
  assert.deepEqual(t.check(7, 2, 5, 1), { kind: 'out_of_order', expectedSequence: 0, gotSequence: 5 });
});

test('sequences wrap from 2^31 - 1 to 0', () => {
  const t = new ProducerStateTable();
  t.record(1, 0, 0, 1, 0, 0);
  t.record(1, 0, 1, SEQUENCE_MAX, 1, 0);
  assert.deepEqual(t.check(1, 0, 0, 3), { kind: 'ok' });
});

test('a table rebuilt by replaying the batches decides exactly as the one that recorded them', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 4 })), { maxLength: 60 }),
      fc.array(
        fc.tuple(
          fc.integer({ min: 0, max: 3 }),
          fc.integer({ min: 0, max: 40 }),
          fc.integer({ min: 1, max: 4 }),
        ),
      ),
      (appends, probes) => {
        const live = new ProducerStateTable();
        const log: [number, number, number, number][] = [];
        const next = new Map<number, number>();
        let offset = 0;
        for (const [pid, count] of appends) {
          const seq = next.get(pid) ?? 0;
          assert.equal(live.check(pid, 0, seq, count).kind, 'ok');
          live.record(pid, 0, seq, count, offset, 0);
          log.push([pid, seq, count, offset]);
          next.set(pid, seq + count);
          offset += count;
        }
        const replayed = new ProducerStateTable();
        for (const [pid, seq, count, at] of log) replayed.record(pid, 0, seq, count, at, 0);
        for (const [pid, seq, count] of probes) {
          assert.deepEqual(replayed.check(pid, 0, seq, count), live.check(pid, 0, seq, count));
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('past producersMax the producer idle longest is dropped', () => {
  const t = new ProducerStateTable({ batchesPerProducer: 5, producersMax: 2 });
  t.record(1, 0, 0, 1, 0, 10);
  t.record(2, 0, 0, 1, 1, 20);
  t.record(3, 0, 0, 1, 2, 30);
  assert.equal(t.size, 2);
  assert.equal(t.entry(1), undefined);
  assert.equal(t.expire(100, 75), 1);
});
