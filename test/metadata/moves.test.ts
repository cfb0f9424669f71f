// Partition moves in the metadata state machine, the controller and the planner (issue 14): a move adds the
// new replicas outside the ISR, is finished only once they are all in it (replicas become the target, the
// others leave the ISR, a leader outside the target hands over), can be cancelled while the leader is an
// original replica, survives a snapshot image and the codec; the controller finishes exactly the moves whose
// targets are in the ISR; the planner drains a broker and evens out replicas (few moves) and preferred leaders.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Controller, DEFAULT_CONTROLLER_TIMINGS } from '../../src/core/metadata/controller.js';
import { planBalance, planDecommission } from '../../src/core/metadata/rebalance.js';
import { type MetadataCommand, MetadataStateMachine } from '../../src/core/metadata/state-machine.js';
import { decodeCommand, decodeImage, encodeCommand, encodeImage } from '../../src/metadata/codec.js';
import type { BrokerRegistration, TopicMetadata } from '../../src/metadata/types.js';

function broker(id: string): BrokerRegistration {
  return {
    id,
    httpHost: '127.0.0.1',
    httpPort: 8000,
    clusterHost: '127.0.0.1',
    clusterPort: 7000,
    rack: '',
    version: '0.1.0',
    fenced: false,
    shuttingDown: false,
    dataPorts: [9001],
    kafkaPort: 0,
    registeredAtMs: 1,
  };
}

function topic(replicas: string[][]): TopicMetadata {
  return {
    name: 't',
    topicSeq: 0,
    topicId: 't-id',
    numPartitions: replicas.length,
    replicationFactor: replicas[0]!.length,
    rackAwareness: false,
    config: {
      retentionMs: -1,
      retentionBytes: -1,
      segmentBytes: 1 << 20,
      minInsyncReplicas: 1,
      cleanupPolicy: 'delete',
      uncleanLeaderElection: false,
    },
    partitions: replicas.map((r, partition) => ({
      partition,
      leader: r[0]!,
      leaderEpoch: 0,
      partitionEpoch: 0,
      replicas: r,
      isr: r,
    })),
    createdAtMs: 5,
  };
}

let index = 0;
function apply(sm: MetadataStateMachine, command: MetadataCommand) {
  const decoded = decodeCommand(encodeCommand(command));
  assert.ok(decoded.ok, JSON.stringify(decoded));
  return sm.apply(++index, decoded.value);
}

function cluster(): MetadataStateMachine {
  index = 0;
  const sm = new MetadataStateMachine();
  for (const id of ['a', 'b', 'c', 'd']) apply(sm, { kind: 'register_broker', broker: broker(id) });
  apply(sm, { kind: 'create_topic', topic: topic([['a', 'b']]) });
  return sm;
}

const move = (target: string[]) => ({
  kind: 'reassign_partitions' as const,
  changes: [{ topicId: 't-id', topic: 't', partition: 0, target }],
  nowMs: 1,
});
const part = (sm: MetadataStateMachine) => sm.topic('t')!.partitions[0]!;
const refusals = (result: unknown) =>
  (result as { outcomes: { refusal: string | null }[] }).outcomes.map((o) => o.refusal);

test('a move adds the new replicas outside the ISR and finishes only once they are in it', () => {
  const sm = cluster();
  assert.deepEqual(refusals(apply(sm, move(['c', 'd']))), [null]);
  assert.deepEqual(part(sm).replicas, ['c', 'd', 'a', 'b']);
  assert.deepEqual(part(sm).isr, ['a', 'b']);
  const finish = (epoch: number) => ({
    kind: 'finish_reassignments' as const,
    changes: [{ topicId: 't-id', topic: 't', partition: 0, expectedPartitionEpoch: epoch }],
  });
  assert.match(refusals(apply(sm, finish(part(sm).partitionEpoch)))[0]!, /not in the ISR yet/);
  // The leader adds c and d once they caught up.
  const p = part(sm);
  apply(sm, {
    kind: 'alter_isr',
    changes: [
      {
        topicId: 't-id',
        topic: 't',
        partition: 0,
        leader: 'a',
        leaderEpoch: p.leaderEpoch,
        partitionEpoch: p.partitionEpoch,
        isr: ['a', 'b', 'c', 'd'],
      },
    ],
  });
  assert.match(refusals(apply(sm, finish(p.partitionEpoch)))[0]!, /stale partition epoch/);
  const image = decodeImage(encodeImage(sm.image()));
  assert.ok(image.ok);
  assert.equal(image.value.reassignments.length, 1, 'the move survives a snapshot');
  const restored = MetadataStateMachine.fromImage(image.value);
  assert.deepEqual(refusals(restored.apply(index + 1, finish(part(restored).partitionEpoch))), [null]);
  const done = part(restored);
  assert.deepEqual(done.replicas, ['c', 'd']);
  assert.deepEqual(done.isr, ['c', 'd']);
  assert.equal(done.leader, 'c', 'a leader outside the target hands over to its first replica');
  assert.equal(done.leaderEpoch, p.leaderEpoch + 1);
  assert.equal(restored.image().reassignments.length, 0);
});

test('bad moves are refused and change nothing; a cancel restores the replicas', () => {
  const sm = cluster();
  const before = part(sm);
  assert.match(refusals(apply(sm, move(['c'])))[0]!, /replication factor 2/);
  assert.match(refusals(apply(sm, move(['c', 'c'])))[0]!, /twice/);
  assert.match(refusals(apply(sm, move(['c', 'zz'])))[0]!, /not registered/);
  assert.deepEqual(part(sm), before);
  assert.deepEqual(refusals(apply(sm, move(['a', 'c']))), [null]);
  assert.match(refusals(apply(sm, move(['a', 'd'])))[0]!, /in progress/);
  assert.deepEqual(refusals(apply(sm, move([]))), [null]);
  assert.deepEqual(part(sm).replicas, ['a', 'b']);
  assert.deepEqual(part(sm).isr, ['a', 'b']);
  assert.match(refusals(apply(sm, move([])))[0]!, /no move/);
});

test('the controller finishes the moves whose targets are all in the ISR', () => {
  const sm = cluster();
  apply(sm, move(['a', 'c']));
  const controller = new Controller({
    self: 'a',
    raftVoters: 3,
    voterReplaceAfterMs: 30_000,
    ...DEFAULT_CONTROLLER_TIMINGS,
  });
  const members = ['a', 'b', 'c', 'd'].map((id) => ({
    id,
    state: 'alive' as const,
    httpHost: '127.0.0.1',
    httpPort: 8000,
    clusterHost: '127.0.0.1',
    clusterPort: 7000,
    rack: '',
    version: '0.1.0',
    dataPorts: [9001],
    kafkaPort: 0,
  }));
  const decide = () =>
    controller
      .decide({
        nowMs: 10,
        metadata: sm.snapshot(),
        members,
        raft: { voters: ['a'], learners: [], commit: 1, match: new Map(), confChangePending: false },
      })
      .filter((a) => a.kind === 'propose' && a.command.kind === 'finish_reassignments');
  assert.equal(decide().length, 0, 'c is not in the ISR yet');
  const p = part(sm);
  apply(sm, {
    kind: 'alter_isr',
    changes: [
      {
        topicId: 't-id',
        topic: 't',
        partition: 0,
        leader: 'a',
        leaderEpoch: p.leaderEpoch,
        partitionEpoch: p.partitionEpoch,
        isr: ['a', 'b', 'c'],
      },
    ],
  });
  const actions = decide();
  assert.equal(actions.length, 1);
  const action = actions[0]!;
  assert.ok(action.kind === 'propose');
  apply(sm, action.command);
  assert.deepEqual(part(sm).replicas, ['a', 'c']);
  assert.equal(part(sm).leader, 'a', 'a leader in the target keeps leading');
});

test('plans: a decommission drains a broker evenly; a balance evens out replicas with few moves', () => {
  const placed = [
    { topic: 't', topicId: 'x', partition: 0, replicas: ['a', 'b'] },
    { topic: 't', topicId: 'x', partition: 1, replicas: ['b', 'c'] },
    { topic: 't', topicId: 'x', partition: 2, replicas: ['c', 'a'] },
    { topic: 't', topicId: 'x', partition: 3, replicas: ['a', 'b'] },
  ];
  const drained = planDecommission(placed, ['a', 'b', 'c', 'd'], 'a');
  assert.equal(drained.kind, 'ok');
  if (drained.kind !== 'ok') return;
  assert.equal(drained.moves.length, 3);
  for (const m of drained.moves) assert.ok(!m.to.includes('a') && new Set(m.to).size === 2);
  const stuck = planDecommission(placed, ['a', 'b'], 'a');
  assert.equal(stuck.kind, 'error');

  const balanced = planBalance(placed, ['a', 'b', 'c', 'd']);
  assert.equal(balanced.kind, 'ok');
  if (balanced.kind !== 'ok') return;
  const counts = new Map<string, number>();
  const after = placed.map((p) => balanced.moves.find((m) => m.partition === p.partition)?.to ?? p.replicas);
  for (const r of after) for (const id of r) counts.set(id, (counts.get(id) ?? 0) + 1);
  assert.deepEqual([...counts.values()].sort(), [2, 2, 2, 2]);
  const replicaMoves = balanced.moves.filter((m) => m.to.some((id) => !m.from.includes(id)));
  assert.equal(replicaMoves.length, 2, 'two replicas move to d, nothing else');
  const leads = new Map<string, number>();
  for (const r of after) leads.set(r[0]!, (leads.get(r[0]!) ?? 0) + 1);
  assert.deepEqual([...leads.values()].sort(), [1, 1, 1, 1], 'one preferred leadership each');
  assert.equal(
    planBalance(
      after.map((r, i) => ({ ...placed[i]!, replicas: r })),
      ['a', 'b', 'c', 'd'],
    ).kind,
    'ok',
  );
});

test('rack-aware plans keep each partition over as many racks as before; plain topics move by counts alone', () => {
  // Racks: a1, a2 in rack A; b1 in B; c1 (new, empty) in C; n1 in no rack.
  const racks = new Map([
    ['a1', 'A'],
    ['a2', 'A'],
    ['b1', 'B'],
    ['c1', 'C'],
  ]);
  const spread = (replicas: readonly string[]) => new Set(replicas.map((id) => racks.get(id))).size;
  const placed = Array.from({ length: 6 }, (_, i) => ({
    topic: 'r',
    topicId: 'rid',
    partition: i,
    replicas: i % 2 === 0 ? ['a1', 'b1'] : ['b1', 'a2'],
    rackAware: true,
  }));
  // Draining a1: a2 (same rack A) would keep the spread, c1 (rack C) too; b1 never (it holds them all).
  const drained = planDecommission(placed, ['a1', 'a2', 'b1', 'c1'], 'a1', racks);
  assert.equal(drained.kind, 'ok');
  if (drained.kind !== 'ok') return;
  assert.equal(drained.moves.length, 3);
  for (const m of drained.moves) assert.equal(spread(m.to), 2, `${m.partition}: still two racks`);
  // Without C, draining b1 could only go to rack A: every replica pair would be A + A. Refused, named.
  const narrowing = planDecommission(placed, ['a1', 'a2', 'b1'], 'b1', racks);
  assert.equal(narrowing.kind, 'error');
  if (narrowing.kind === 'error') assert.match(narrowing.reason, /rack-aware .* fewer racks/);
  // The same topic not rack-aware: the move to rack A is planned.
  const plain = placed.map((p) => ({ ...p, rackAware: false }));
  assert.equal(planDecommission(plain, ['a1', 'a2', 'b1'], 'b1', racks).kind, 'ok');

  // A balance onto c1 never narrows a partition: moving b1's replica of a1+b1 to c1 keeps 2 racks (A, C),
  // and so does any other move it makes; counts end within one of each other.
  const balanced = planBalance(placed, ['a1', 'a2', 'b1', 'c1'], racks);
  assert.equal(balanced.kind, 'ok');
  if (balanced.kind !== 'ok') return;
  assert.ok(balanced.moves.length > 0, 'c1 gets replicas');
  const after = placed.map((p) => balanced.moves.find((m) => m.partition === p.partition)?.to ?? p.replicas);
  for (const [i, r] of after.entries()) assert.equal(spread(r), 2, `partition ${i} spans two racks`);
  const counts = new Map<string, number>();
  for (const r of after) for (const id of r) counts.set(id, (counts.get(id) ?? 0) + 1);
  const values = [...counts.values()];
  assert.ok(Math.max(...values) - Math.min(...values) <= 1, `balanced: ${JSON.stringify([...counts])}`);

  // Two brokers of rack A only, partitions on one of them and a B broker: a balance does not pair a1 with a2.
  const narrow = [
    { topic: 'r', topicId: 'rid', partition: 0, replicas: ['a1', 'b1'], rackAware: true },
    { topic: 'r', topicId: 'rid', partition: 1, replicas: ['a1', 'b1'], rackAware: true },
    { topic: 'r', topicId: 'rid', partition: 2, replicas: ['b1', 'a1'], rackAware: true },
  ];
  const kept = planBalance(narrow, ['a1', 'a2', 'b1'], racks);
  assert.equal(kept.kind, 'ok');
  if (kept.kind !== 'ok') return;
  for (const m of kept.moves) assert.equal(spread(m.to), 2, `${m.partition}: ${m.to.join(',')}`);
});
