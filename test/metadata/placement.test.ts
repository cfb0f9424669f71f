// Choosing where a new topic's replicas go (core/metadata/placement.ts placeTopic): healthy brokers first, then
// alive ones, then every registered one; a healthy replica leads; replicas on brokers not alive start outside
// the ISR. The last case is the race raft-processes met: a broker killed a moment ago, declared dead by gossip
// but not fenced yet, was counted by the client's default replication factor but not by placement.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CandidateBroker, placeTopic } from '../../src/core/metadata/placement.js';

const broker = (id: string, alive = true, healthy = alive): CandidateBroker => ({
  id,
  rack: '',
  alive,
  healthy,
});

test('healthy brokers are enough: only they hold replicas, all in the ISR', () => {
  const placed = placeTopic(
    [broker('a'), broker('b'), broker('c'), broker('d', true, false)],
    4,
    3,
    false,
    0,
  );
  assert.equal(placed.kind, 'ok');
  if (placed.kind !== 'ok') return;
  for (const p of placed.partitions) {
    assert.ok(!p.replicas.includes('d'), 'a suspect is used only when the healthy ones are too few');
    assert.deepEqual(p.isr, p.replicas);
  }
});

test('a suspect broker may hold a replica when needed, never the leadership', () => {
  const placed = placeTopic([broker('a'), broker('b'), broker('c', true, false)], 3, 3, false, 2);
  assert.equal(placed.kind, 'ok');
  if (placed.kind !== 'ok') return;
  for (const p of placed.partitions) {
    assert.notEqual(p.replicas[0], 'c');
    assert.deepEqual(p.isr, p.replicas, 'a suspect is still alive: in the ISR');
  }
});

test('a broker declared dead but not fenced yet still counts, outside the ISR and never leading', () => {
  const placed = placeTopic([broker('a'), broker('b'), broker('c', false)], 3, 3, false, 2);
  assert.equal(placed.kind, 'ok', JSON.stringify(placed));
  if (placed.kind !== 'ok') return;
  for (const p of placed.partitions) {
    assert.equal(p.replicas.length, 3);
    assert.notEqual(p.replicas[0], 'c');
    assert.deepEqual(
      p.isr,
      p.replicas.filter((id) => id !== 'c'),
    );
  }
  const tooMany = placeTopic([broker('a'), broker('b'), broker('c', false)], 1, 4, false, 0);
  assert.equal(tooMany.kind, 'error');
});
