// Choosing where a new topic's replicas go (core/metadata/placement.ts placeTopic): healthy brokers first, then
// alive ones, then every registered one; a healthy replica leads; replicas on brokers not alive start outside
// the ISR. The last case is the race raft-processes met: a broker killed a moment ago, declared dead by gossip
// but not fenced yet, was counted by the client's default replication factor but not by placement. Its twin
// (settleDefaultReplication): the broker already fenced on the leader while the asking node still counted it;
// a defaulted replication factor is lowered to what the leader can place, an explicit one never is.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type CandidateBroker,
  placeTopic,
  settleDefaultReplication,
} from '../../src/core/metadata/placement.js';
import type { CreateTopicRequest } from '../../src/metadata/types.js';

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

const createRequest = (
  replicationFactor: number,
  minInsyncReplicas: number,
  replicationFactorDefaulted: boolean,
  minInsyncDefaulted: boolean,
): CreateTopicRequest => ({
  name: 't',
  numPartitions: 2,
  replicationFactor,
  rackAwareness: false,
  config: {
    retentionMs: -1,
    retentionBytes: -1,
    segmentBytes: 1 << 20,
    minInsyncReplicas,
    cleanupPolicy: 'delete',
    uncleanLeaderElection: false,
  },
  replicationFactorDefaulted,
  minInsyncDefaulted,
});

test('a defaulted replication factor is lowered to the placeable brokers, and a defaulted min ISR follows', () => {
  const settled = settleDefaultReplication(createRequest(3, 2, true, true), 2);
  assert.equal(settled.replicationFactor, 2);
  assert.equal(settled.config.minInsyncReplicas, 1);
  const enough = settleDefaultReplication(createRequest(3, 2, true, true), 3);
  assert.equal(enough.replicationFactor, 3);
  assert.equal(enough.config.minInsyncReplicas, 2);
});

test('an explicit replication factor or min ISR is never changed', () => {
  const explicitRf = settleDefaultReplication(createRequest(3, 2, false, true), 2);
  assert.equal(explicitRf.replicationFactor, 3, 'left for placement to refuse by name');
  const explicitIsr = settleDefaultReplication(createRequest(3, 2, true, false), 1);
  assert.equal(explicitIsr.replicationFactor, 1);
  assert.equal(explicitIsr.config.minInsyncReplicas, 2, 'left for the state machine to refuse');
});
