// The pure controller: what it proposes for dead, fenced and shutting-down leaders (a new leader from the ISR,
// offline with the ISR kept, unclean only where allowed), dead ISR members, the preferred leader's return, the
// registry following gossip, and Raft membership. Decisions are applied through the real state machine, so a
// proposal the state machine would refuse shows up as a failure here.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Controller,
  type ControllerAction,
  type ControllerConfig,
  type GossipState,
  type MemberView,
} from '../../src/core/metadata/controller.js';
import { type MetadataCommand, MetadataStateMachine } from '../../src/core/metadata/state-machine.js';
import type { BrokerRegistration, TopicMetadata } from '../../src/metadata/types.js';

const config: ControllerConfig = {
  self: 'a',
  raftVoters: 3,
  voterReplaceAfterMs: 30_000,
  absentFenceMs: 10_000,
  preferredLeaderDelayMs: 5_000,
  partitionChangesPerCommandMax: 100,
};

function member(id: string, state: GossipState = 'alive'): MemberView {
  return {
    id,
    state,
    httpHost: '127.0.0.1',
    httpPort: 8000,
    clusterHost: '127.0.0.1',
    clusterPort: 7000,
    rack: '',
    version: '1',
    dataPorts: [9000],
    kafkaPort: 0,
  };
}

function registration(id: string): BrokerRegistration {
  return {
    id,
    httpHost: '127.0.0.1',
    httpPort: 8000,
    clusterHost: '127.0.0.1',
    clusterPort: 7000,
    rack: '',
    version: '1',
    dataPorts: [9000],
    kafkaPort: 0,
    fenced: false,
    shuttingDown: false,
    registeredAtMs: 0,
  };
}

function topic(name: string, replicas: string[][], unclean = false): TopicMetadata {
  return {
    name,
    topicSeq: 0,
    topicId: `${name}-id`,
    numPartitions: replicas.length,
    replicationFactor: replicas[0]!.length,
    rackAwareness: false,
    config: {
      retentionMs: -1,
      retentionBytes: -1,
      segmentBytes: 1 << 20,
      minInsyncReplicas: Math.min(2, replicas[0]!.length),
      cleanupPolicy: 'delete',
      uncleanLeaderElection: unclean,
    },
    partitions: replicas.map((r, partition) => ({
      partition,
      leader: r[0]!,
      leaderEpoch: 0,
      partitionEpoch: 0,
      replicas: r,
      isr: r,
    })),
    createdAtMs: 0,
  };
}

class World {
  readonly sm = new MetadataStateMachine();
  private index = 0;
  readonly controller: Controller;
  constructor(ids: string[], topics: TopicMetadata[], controllerConfig: ControllerConfig = config) {
    this.controller = new Controller(controllerConfig);
    for (const id of ids) this.apply({ kind: 'register_broker', broker: registration(id) });
    for (const t of topics) this.apply({ kind: 'create_topic', topic: t });
  }
  apply(command: MetadataCommand) {
    const result = this.sm.apply(++this.index, command);
    if (result.kind === 'partitions_changed') {
      for (const o of result.outcomes)
        assert.equal(o.refusal, null, `${o.topic}-${o.partition}: ${o.refusal}`);
    }
    assert.notEqual(result.kind, 'invalid', JSON.stringify(result));
    return result;
  }
  /** Decides and applies the proposals (not the membership changes), as the shell would. */
  step(members: MemberView[], nowMs: number): ControllerAction[] {
    const actions = this.controller.decide({
      nowMs,
      metadata: this.sm.snapshot(),
      members,
      raft: { voters: ['a', 'b', 'c'], learners: [], commit: 1, match: new Map(), confChangePending: false },
    });
    for (const action of actions) if (action.kind === 'propose') this.apply(action.command);
    return actions;
  }
  partition(name: string, p = 0) {
    return this.sm.snapshot().topics.get(name)!.partitions[p]!;
  }
}

describe('controller', () => {
  test('a dead leader is replaced by the next live ISR member, and the dead one leaves the ISR', () => {
    const w = new World(['a', 'b', 'c'], [topic('t', [['b', 'c', 'a']])]);
    w.step([member('a'), member('b', 'dead'), member('c')], 0);
    const p = w.partition('t');
    assert.deepEqual([p.leader, p.isr, p.leaderEpoch], ['c', ['c', 'a'], 1]);
    assert.equal(w.sm.broker('b')!.fenced, true);
    assert.equal(w.step([member('a'), member('b', 'dead'), member('c')], 1).length, 0, 'nothing more to do');
  });

  test('with no live ISR member the partition goes offline and keeps its ISR; the ISR member brings it back', () => {
    const w = new World(['a', 'b', 'c'], [topic('t', [['b', 'c', 'a']])]);
    w.apply({
      kind: 'alter_isr',
      changes: [
        {
          topicId: 't-id',
          topic: 't',
          partition: 0,
          leader: 'b',
          leaderEpoch: 0,
          partitionEpoch: 0,
          isr: ['b'],
        },
      ],
    });
    w.step([member('a'), member('b', 'dead'), member('c')], 0);
    let p = w.partition('t');
    assert.deepEqual([p.leader, p.isr], ['', ['b']], 'c and a are not in the ISR: never elected cleanly');
    // First the registry lifts b's fence, then, from that state, b is elected.
    w.step([member('a'), member('b'), member('c')], 1);
    w.step([member('a'), member('b'), member('c')], 2);
    p = w.partition('t');
    assert.deepEqual([p.leader, p.isr], ['b', ['b']]);
  });

  test('an unclean election happens only where the topic allows it, leaving the leader alone in the ISR', () => {
    const w = new World(['a', 'b', 'c'], [topic('u', [['b', 'c', 'a']], true)]);
    w.apply({
      kind: 'alter_isr',
      changes: [
        {
          topicId: 'u-id',
          topic: 'u',
          partition: 0,
          leader: 'b',
          leaderEpoch: 0,
          partitionEpoch: 0,
          isr: ['b'],
        },
      ],
    });
    const actions = w.step([member('a'), member('b', 'dead'), member('c')], 0);
    const p = w.partition('u');
    assert.deepEqual([p.leader, p.isr], ['c', ['c']]);
    assert.ok(
      actions.some(
        (a) => a.kind === 'propose' && a.command.kind === 'elect_leaders' && a.command.elections[0]!.unclean,
      ),
    );
  });

  test('a shutting-down leader hands over to an ISR member; alone, it keeps leading until it is gone', () => {
    const w = new World(['a', 'b', 'c'], [topic('t', [['b', 'c', 'a']]), topic('solo', [['b']])]);
    w.apply({ kind: 'set_broker_shutting_down', brokerId: 'b', shuttingDown: true });
    const all = [member('a'), member('b'), member('c')];
    w.step(all, 0);
    assert.deepEqual([w.partition('t').leader, w.partition('t').isr], ['c', ['c', 'a']]);
    assert.equal(w.partition('solo').leader, 'b', 'nobody else can lead it');
    w.step([member('a'), member('b', 'left'), member('c')], 1);
    assert.equal(w.partition('solo').leader, '');
  });

  test('dead followers leave the ISR of a live leader, never the leader itself', () => {
    const w = new World(['a', 'b', 'c'], [topic('t', [['a', 'b', 'c']])]);
    w.step([member('a'), member('b', 'dead'), member('c', 'dead')], 0);
    const p = w.partition('t');
    assert.deepEqual([p.leader, p.isr, p.leaderEpoch], ['a', ['a'], 0]);
  });

  test('the preferred replica gets leadership back after being live in the ISR for the delay', () => {
    const w = new World(['a', 'b', 'c'], [topic('t', [['b', 'c', 'a']])]);
    w.step([member('a'), member('b', 'dead'), member('c')], 0);
    assert.equal(w.partition('t').leader, 'c');
    // b is back and the leader (c) took it into the ISR.
    const all = [member('a'), member('b'), member('c')];
    w.step(all, 1000);
    const p = w.partition('t');
    w.apply({
      kind: 'alter_isr',
      changes: [
        {
          topicId: 't-id',
          topic: 't',
          partition: 0,
          leader: 'c',
          leaderEpoch: p.leaderEpoch,
          partitionEpoch: p.partitionEpoch,
          isr: ['c', 'a', 'b'],
        },
      ],
    });
    w.step(all, 2000);
    assert.equal(w.partition('t').leader, 'c', 'not before the delay');
    w.step(all, 7001);
    assert.equal(w.partition('t').leader, 'b');
  });

  test('the planted bug elects outside the ISR (and the state machine refuses it)', () => {
    const w = new World(['a', 'b', 'c'], [topic('t', [['b', 'c', 'a']])], {
      ...config,
      plantedBug: 'elect_outside_isr',
    });
    w.apply({
      kind: 'alter_isr',
      changes: [
        {
          topicId: 't-id',
          topic: 't',
          partition: 0,
          leader: 'b',
          leaderEpoch: 0,
          partitionEpoch: 0,
          isr: ['b'],
        },
      ],
    });
    assert.throws(() => w.step([member('a'), member('b', 'dead'), member('c')], 0), /not in the ISR/);
  });

  test('Raft membership: live brokers join as learners and caught-up learners fill the voter seats', () => {
    const controller = new Controller(config);
    const sm = new MetadataStateMachine();
    for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) {
      sm.apply(i + 1, { kind: 'register_broker', broker: registration(id) });
    }
    const members = ['a', 'b', 'c', 'd'].map((id) => member(id));
    const decide = (voters: string[], learners: string[], match: [string, number][], nowMs = 0) =>
      controller
        .decide({
          nowMs,
          metadata: sm.snapshot(),
          members,
          raft: { voters, learners, commit: 10, match: new Map(match), confChangePending: false },
        })
        .filter((a) => a.kind === 'conf_change');
    assert.deepEqual(decide(['a'], ['b', 'c'], []), [
      { kind: 'conf_change', change: { op: 'add_learner', nodeId: 'd' } },
    ]);
    // One voter and one caught-up learner: two voters would have two members that can stall the group, so the
    // promotion waits for a second learner to follow it at once.
    assert.deepEqual(decide(['a'], ['b', 'c', 'd'], [['c', 10]]), []);
    assert.deepEqual(
      decide(
        ['a'],
        ['b', 'c', 'd'],
        [
          ['c', 10],
          ['d', 10],
        ],
      ),
      [{ kind: 'conf_change', change: { op: 'promote', nodeId: 'c' } }],
    );
    // Two voters (the first of the pair promoted): the next goes at once, to an odd number.
    assert.deepEqual(decide(['a', 'c'], ['b', 'd'], [['d', 10]]), [
      { kind: 'conf_change', change: { op: 'promote', nodeId: 'd' } },
    ]);
    assert.deepEqual(decide(['a', 'b', 'c'], ['d'], [['d', 10]]), []);
  });

  test('Raft membership: a learner votes only after it has been live for learnerSettleMs', () => {
    const controller = new Controller({ ...config, learnerSettleMs: 2_000 });
    const sm = new MetadataStateMachine();
    for (const [i, id] of ['a', 'b', 'c'].entries()) {
      sm.apply(i + 1, { kind: 'register_broker', broker: registration(id) });
    }
    const decide = (live: string[], nowMs: number) =>
      controller
        .decide({
          nowMs,
          metadata: sm.snapshot(),
          members: ['a', 'b', 'c'].map((id) => member(id, live.includes(id) ? 'alive' : 'dead')),
          raft: {
            voters: ['a'],
            learners: ['b', 'c'],
            commit: 10,
            match: new Map([
              ['b', 10],
              ['c', 10],
            ]),
            confChangePending: false,
          },
        })
        .filter((a) => a.kind === 'conf_change');
    assert.deepEqual(decide(['a', 'b', 'c'], 0), [], 'just joined: not yet');
    assert.deepEqual(decide(['a', 'b', 'c'], 1_999), []);
    assert.deepEqual(decide(['a', 'b', 'c'], 2_000), [
      { kind: 'conf_change', change: { op: 'promote', nodeId: 'b' } },
    ]);
    // A learner that died meanwhile starts over when it comes back, and the promotion waits for two again.
    assert.deepEqual(decide(['a', 'c'], 2_100), []);
    assert.deepEqual(decide(['a', 'b', 'c'], 2_200), [], 'b is back but has not settled');
    assert.deepEqual(decide(['a', 'b', 'c'], 4_200), [
      { kind: 'conf_change', change: { op: 'promote', nodeId: 'b' } },
    ]);
  });
});
