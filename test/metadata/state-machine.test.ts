// The metadata state machine, replica placement and their avsc codec: deterministic apply, refusals that
// change nothing, leader-epoch fencing, snapshot images that rebuild the same state, Kafka-style placement
// (even leaders, spread followers, racks), and decoders that never throw on garbage.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { assignReplicas } from '../../src/core/metadata/placement.js';
import { type MetadataCommand, MetadataStateMachine } from '../../src/core/metadata/state-machine.js';
import {
  decodeAdminReply,
  decodeAdminRequest,
  decodeCommand,
  decodeImage,
  encodeAdminReply,
  encodeAdminRequest,
  encodeCommand,
  encodeImage,
} from '../../src/metadata/codec.js';
import type { BrokerRegistration, TopicMetadata } from '../../src/metadata/types.js';

function broker(id: string, rack = ''): BrokerRegistration {
  return {
    id,
    httpHost: '127.0.0.1',
    httpPort: 8000,
    clusterHost: '127.0.0.1',
    clusterPort: 7000,
    rack,
    version: '0.1.0',
    fenced: false,
    shuttingDown: false,
    dataPorts: [9001, 9002],
    kafkaPort: 9092,
    registeredAtMs: 1,
  };
}

function topic(name: string, replicas: string[][], topicId = `${name}-id`): TopicMetadata {
  return {
    name,
    topicSeq: 0,
    topicId,
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

/** Applies commands through the codec, as the control thread does with committed entries. */
function applyAll(
  sm: MetadataStateMachine,
  commands: readonly MetadataCommand[],
  from = sm.appliedIndex + 1,
) {
  return commands.map((c, i) => {
    const decoded = decodeCommand(encodeCommand(c));
    assert.ok(decoded.ok, JSON.stringify(decoded));
    return sm.apply(from + i, decoded.value);
  });
}

describe('metadata state machine', () => {
  test('registers brokers, creates a topic on them, and answers a repeat idempotently', () => {
    const sm = new MetadataStateMachine();
    const results = applyAll(sm, [
      { kind: 'register_broker', broker: broker('a') },
      { kind: 'register_broker', broker: broker('b') },
      { kind: 'create_topic', topic: topic('t', [['a'], ['b']]) },
      { kind: 'create_topic', topic: topic('t', [['b'], ['a']], 'another-id') },
      { kind: 'create_topic', topic: topic('t', [['a']], 'third-id') },
    ]);
    assert.deepEqual(
      results.map((r) => r.kind),
      ['registered', 'registered', 'created', 'exists_same', 'exists_different'],
    );
    const snap = sm.snapshot();
    assert.equal(snap.version, 5);
    assert.equal(snap.topics.get('t')?.topicId, 't-id', 'the first creation wins');
    assert.deepEqual([...snap.brokers.keys()], ['a', 'b']);
    assert.equal(sm.snapshot(), snap, 'the same view until something changes');
  });

  test('a topic placed on an unknown broker, or malformed, is refused and changes nothing', () => {
    const sm = new MetadataStateMachine();
    applyAll(sm, [{ kind: 'register_broker', broker: broker('a') }]);
    const before = sm.snapshot();
    const bad: TopicMetadata[] = [
      topic('t', [['ghost']]),
      { ...topic('t', [['a']]), numPartitions: 2 },
      topic('t', [['a', 'a']]),
      {
        ...topic('t', [['a']]),
        partitions: [
          { partition: 0, leader: 'x', leaderEpoch: 0, partitionEpoch: 0, replicas: ['a'], isr: ['a'] },
        ],
      },
    ];
    for (const t of bad) {
      const [result] = applyAll(sm, [{ kind: 'create_topic', topic: t }]);
      assert.equal(result!.kind, 'invalid');
    }
    assert.deepEqual([...sm.snapshot().topics.keys()], []);
    assert.deepEqual(sm.snapshot().brokers, before.brokers, 'the registry is untouched');
  });

  test('topics get increasing sequence numbers from the state machine, never reused', () => {
    const sm = new MetadataStateMachine();
    applyAll(sm, [
      { kind: 'register_broker', broker: broker('a') },
      { kind: 'create_topic', topic: topic('x', [['a']]) },
      { kind: 'create_topic', topic: topic('y', [['a']]) },
      { kind: 'delete_topic', name: 'x' },
      { kind: 'create_topic', topic: topic('x', [['a']], 'x-again') },
    ]);
    const topics = sm.snapshot().topics;
    assert.deepEqual([topics.get('y')!.topicSeq, topics.get('x')!.topicSeq], [2, 3]);
  });

  test('leader elections are compare-and-set on the partition epoch and pick from the ISR', () => {
    const sm = new MetadataStateMachine();
    applyAll(sm, [
      { kind: 'register_broker', broker: broker('a') },
      { kind: 'register_broker', broker: broker('b') },
      { kind: 'register_broker', broker: broker('c') },
      { kind: 'create_topic', topic: topic('t', [['a', 'b', 'c']]) },
    ]);
    const elect = (expected: number, leader: string, isr: string[], unclean = false): MetadataCommand => ({
      kind: 'elect_leaders',
      elections: [
        { topicId: 't-id', topic: 't', partition: 0, expectedPartitionEpoch: expected, leader, isr, unclean },
      ],
    });
    const refusals = (results: ReturnType<typeof applyAll>) =>
      results.map((r) => (r.kind === 'partitions_changed' ? r.outcomes[0]!.refusal : r.kind));
    assert.deepEqual(
      refusals(
        applyAll(sm, [
          elect(0, 'b', ['b', 'c']),
          elect(0, 'a', ['a']),
          elect(1, 'b', ['b', 'a']),
          elect(1, 'c', ['b']),
          elect(1, 'c', ['c'], true),
          elect(1, 'c', ['c']),
        ]),
      ),
      [
        null,
        'stale partition epoch 0, now 1',
        'an election may only remove ISR members',
        'the leader must be in the ISR',
        'topic t does not allow unclean leader election',
        null,
      ],
    );
    let p = sm.snapshot().topics.get('t')!.partitions[0]!;
    assert.deepEqual(
      { leader: p.leader, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, isr: p.isr },
      { leader: 'c', leaderEpoch: 2, partitionEpoch: 2, isr: ['c'] },
    );
    // Offline: no leader, the ISR kept as it was; then the ISR member is elected again.
    assert.deepEqual(
      refusals(applyAll(sm, [elect(2, '', ['a']), elect(2, '', ['c']), elect(3, 'c', ['c'])])),
      ['an offline partition keeps its ISR', null, null],
    );
    p = sm.snapshot().topics.get('t')!.partitions[0]!;
    assert.deepEqual([p.leader, p.leaderEpoch, p.partitionEpoch], ['c', 4, 4]);
    // A fenced or shutting-down broker is never elected.
    applyAll(sm, [{ kind: 'set_broker_shutting_down', brokerId: 'c', shuttingDown: true }]);
    assert.match(String(refusals(applyAll(sm, [elect(4, 'c', ['c'])]))[0]), /shutting down/);
  });

  test('ISR changes apply only for the current leader epoch and partition epoch, adding only live brokers', () => {
    const sm = new MetadataStateMachine();
    applyAll(sm, [
      { kind: 'register_broker', broker: broker('a') },
      { kind: 'register_broker', broker: broker('b') },
      { kind: 'register_broker', broker: broker('c') },
      { kind: 'create_topic', topic: topic('t', [['a', 'b', 'c']]) },
      { kind: 'fence_broker', brokerId: 'c', fenced: true },
    ]);
    const alter = (
      leader: string,
      leaderEpoch: number,
      partitionEpoch: number,
      isr: string[],
    ): MetadataCommand => ({
      kind: 'alter_isr',
      changes: [{ topicId: 't-id', topic: 't', partition: 0, leader, leaderEpoch, partitionEpoch, isr }],
    });
    const results = applyAll(sm, [
      alter('b', 0, 0, ['b']),
      alter('a', 0, 0, ['a', 'b']),
      alter('a', 0, 0, ['a']),
      alter('a', 0, 1, ['b']),
      alter('a', 0, 1, ['a', 'c']),
      alter('a', 0, 1, ['a', 'b']),
    ]);
    assert.deepEqual(
      results.map((r) => (r.kind === 'partitions_changed' ? r.outcomes[0]!.refusal : r.kind)),
      [
        'not the leader of epoch 0 (a)',
        null,
        'stale partition epoch 0, now 1',
        'the leader must be in the ISR',
        'broker c cannot join the ISR: not registered, or fenced, or shutting down',
        null,
      ],
    );
    const p = sm.snapshot().topics.get('t')!.partitions[0]!;
    assert.deepEqual([p.leaderEpoch, p.partitionEpoch, p.isr], [0, 2, ['a', 'b']]);
  });

  test('deleting a topic drops its committed offsets; fencing and unregistering brokers', () => {
    const sm = new MetadataStateMachine();
    const offset = (t: string, p: number, o: number) => ({
      topic: t,
      partition: p,
      offset: o,
      metadata: '',
      committedAtMs: 1,
    });
    const results = applyAll(sm, [
      { kind: 'register_broker', broker: broker('a') },
      { kind: 'create_topic', topic: topic('t', [['a'], ['a']]) },
      { kind: 'commit_offsets', group: 'g', offsets: [offset('t', 0, 5), offset('t', 1, 7)] },
      { kind: 'commit_offsets', group: 'g', offsets: [offset('t', 9, 1)] },
      { kind: 'fence_broker', brokerId: 'a', fenced: true },
      { kind: 'unregister_broker', brokerId: 'a' },
      { kind: 'delete_topic', name: 't' },
      { kind: 'delete_topic', name: 't' },
      { kind: 'unregister_broker', brokerId: 'a' },
    ]);
    assert.deepEqual(
      results.map((r) => r.kind),
      [
        'registered',
        'created',
        'committed',
        'invalid',
        'broker_updated',
        'broker_in_use',
        'deleted',
        'unknown',
        'unregistered',
      ],
    );
    assert.deepEqual(sm.committedOffsets('g'), []);
    assert.equal(sm.snapshot().brokers.size, 0);
  });

  test('applying out of order is a bug', () => {
    const sm = new MetadataStateMachine();
    sm.apply(3, undefined);
    assert.throws(() => sm.apply(3, undefined), /applied after/);
    assert.throws(() => sm.skip(2), /skipped after/);
  });

  test('an image rebuilds the same state, and the replay from it matches a replay from the start', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc
              .constantFrom('a', 'b', 'c')
              .map((id): MetadataCommand => ({ kind: 'register_broker', broker: broker(id) })),
            fc
              .tuple(
                fc.constantFrom('x', 'y'),
                fc.constantFrom('a', 'b', 'c'),
                fc.integer({ min: 1, max: 3 }),
              )
              .map(
                ([name, b, n]): MetadataCommand => ({
                  kind: 'create_topic',
                  topic: topic(
                    name,
                    Array.from({ length: n }, () => [b]),
                  ),
                }),
              ),
            fc.constantFrom('x', 'y').map((name): MetadataCommand => ({ kind: 'delete_topic', name })),
            fc
              .constantFrom('a', 'b')
              .map((id): MetadataCommand => ({ kind: 'fence_broker', brokerId: id, fenced: true })),
          ),
          { maxLength: 30 },
        ),
        fc.nat(),
        (commands, cutSeed) => {
          const cut = commands.length === 0 ? 0 : cutSeed % commands.length;
          const whole = new MetadataStateMachine();
          const wholeResults = applyAll(whole, commands, 1);
          const first = new MetadataStateMachine();
          applyAll(first, commands.slice(0, cut), 1);
          const decoded = decodeImage(encodeImage(first.image()));
          assert.ok(decoded.ok);
          const restored = MetadataStateMachine.fromImage(decoded.value);
          const rest = applyAll(restored, commands.slice(cut), cut + 1);
          assert.deepEqual(rest, wholeResults.slice(cut));
          assert.deepEqual(restored.image(), whole.image());
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('replica placement', () => {
  const brokers = ['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, rack: '' }));

  test('leaders spread evenly and no partition holds a broker twice', () => {
    for (let start = 0; start < 5; start++) {
      const placed = assignReplicas(brokers, 20, 3, false, start);
      assert.equal(placed.kind, 'ok');
      if (placed.kind !== 'ok') return;
      const leaders = new Map<string, number>();
      for (const replicas of placed.replicas) {
        assert.equal(new Set(replicas).size, 3);
        leaders.set(replicas[0]!, (leaders.get(replicas[0]!) ?? 0) + 1);
      }
      assert.deepEqual([...leaders.values()], [4, 4, 4, 4, 4]);
    }
  });

  test('the result depends on the set of brokers, not their order', () => {
    const a = assignReplicas(brokers, 7, 2, false, 3);
    const b = assignReplicas([...brokers].reverse(), 7, 2, false, 3);
    assert.deepEqual(a, b);
  });

  test('rack awareness puts the replicas of a partition in different racks while racks remain', () => {
    const racked = [
      { id: 'a1', rack: 'a' },
      { id: 'a2', rack: 'a' },
      { id: 'b1', rack: 'b' },
      { id: 'b2', rack: 'b' },
      { id: 'c1', rack: 'c' },
    ];
    const placed = assignReplicas(racked, 12, 3, true, 1);
    assert.equal(placed.kind, 'ok');
    if (placed.kind !== 'ok') return;
    for (const replicas of placed.replicas) {
      const racks = new Set(replicas.map((id) => racked.find((b) => b.id === id)!.rack));
      assert.equal(racks.size, 3, replicas.join(','));
    }
    const two = assignReplicas(racked.slice(0, 4), 6, 3, true, 0);
    assert.equal(two.kind, 'ok', 'three replicas over two racks: every rack used, then any broker');
  });

  test('rack awareness over brokers without any rack is plain placement, as in Kafka', () => {
    const plain = assignReplicas(brokers, 7, 3, false, 2);
    const aware = assignReplicas(brokers, 7, 3, true, 2);
    assert.equal(aware.kind, 'ok', JSON.stringify(aware));
    assert.deepEqual(aware, plain);
  });

  test('too few brokers, or racks missing under rack awareness, are refused with the reason', () => {
    assert.match(
      JSON.stringify(assignReplicas(brokers.slice(0, 2), 1, 3, false, 0)),
      /larger than the 2 available/,
    );
    assert.match(
      JSON.stringify(
        assignReplicas(
          [
            { id: 'a', rack: 'r' },
            { id: 'b', rack: '' },
          ],
          1,
          1,
          true,
          0,
        ),
      ),
      /b started without --rack/,
    );
  });
});

describe('topic config changes', () => {
  const changes = { retentionMs: 60_000, retentionBytes: null, minInsyncReplicas: null, segmentBytes: null };

  test('an alter changes only the given settings of the topic it names, fenced by topic id', () => {
    const sm = new MetadataStateMachine();
    applyAll(sm, [
      { kind: 'register_broker', broker: broker('a') },
      { kind: 'create_topic', topic: topic('t', [['a'], ['a']]) },
    ]);
    const [altered] = applyAll(sm, [{ kind: 'alter_topic_config', name: 't', topicId: 't-id', changes }]);
    assert.equal(altered!.kind, 'altered');
    const config = sm.topic('t')!.config;
    assert.equal(config.retentionMs, 60_000);
    assert.equal(config.retentionBytes, -1);
    assert.equal(config.segmentBytes, 1 << 20);
    assert.equal(sm.snapshot().topics.get('t')!.config.retentionMs, 60_000, 'the snapshot shows the change');
    // A proposal made for an earlier topic of the same name changes nothing.
    const [stale] = applyAll(sm, [
      { kind: 'alter_topic_config', name: 't', topicId: 'old-id', changes: { ...changes, retentionMs: 1 } },
    ]);
    assert.equal(stale!.kind, 'unknown');
    assert.equal(sm.topic('t')!.config.retentionMs, 60_000);
  });

  test('an alter out of range is refused and changes nothing; the image carries the altered config', () => {
    const sm = new MetadataStateMachine();
    applyAll(sm, [
      { kind: 'register_broker', broker: broker('a') },
      { kind: 'create_topic', topic: topic('t', [['a']]) },
    ]);
    const before = sm.topic('t');
    for (const bad of [
      { retentionMs: -2, retentionBytes: null, minInsyncReplicas: null, segmentBytes: null },
      { retentionMs: null, retentionBytes: null, minInsyncReplicas: 2, segmentBytes: null },
      { retentionMs: null, retentionBytes: -5, minInsyncReplicas: null, segmentBytes: null },
      { retentionMs: null, retentionBytes: null, minInsyncReplicas: null, segmentBytes: 1024 },
      { retentionMs: null, retentionBytes: null, minInsyncReplicas: null, segmentBytes: 2 ** 31 },
    ]) {
      const [result] = applyAll(sm, [
        { kind: 'alter_topic_config', name: 't', topicId: 't-id', changes: bad },
      ]);
      assert.equal(result!.kind, 'invalid', JSON.stringify(bad));
      assert.equal(sm.topic('t'), before);
    }
    applyAll(sm, [{ kind: 'alter_topic_config', name: 't', topicId: 't-id', changes }]);
    const decoded = decodeImage(encodeImage(sm.image()));
    assert.ok(decoded.ok);
    assert.equal(MetadataStateMachine.fromImage(decoded.value).topic('t')!.config.retentionMs, 60_000);
  });

  test('the alter command round-trips through the codec, as a command and as an admin request', () => {
    const alter = { kind: 'alter_topic_config' as const, name: 't', topicId: 'id', changes };
    const bytes = encodeCommand(alter);
    assert.equal(bytes[0], 2);
    assert.deepEqual(decodeCommand(bytes), { ok: true, value: alter });
    const request = { kind: 'alter_topic_config' as const, name: 't', changes };
    assert.deepEqual(decodeAdminRequest(encodeAdminRequest(request)), { ok: true, value: request });
  });

  test('a segment size change travels in its own branch and is applied; other changes keep the old branch', () => {
    const withSize = { ...changes, segmentBytes: 8 << 20 };
    const alter = { kind: 'alter_topic_config' as const, name: 't', topicId: 't-id', changes: withSize };
    const bytes = encodeCommand(alter);
    assert.deepEqual(decodeCommand(bytes), { ok: true, value: alter });
    assert.notDeepEqual(
      bytes.subarray(0, 2),
      encodeCommand({ ...alter, changes }).subarray(0, 2),
      'a different union branch (old nodes never meet an unknown field in the old one)',
    );
    const request = { kind: 'alter_topic_config' as const, name: 't', changes: withSize };
    assert.deepEqual(decodeAdminRequest(encodeAdminRequest(request)), { ok: true, value: request });

    const sm = new MetadataStateMachine();
    applyAll(sm, [
      { kind: 'register_broker', broker: broker('a') },
      { kind: 'create_topic', topic: topic('t', [['a']]) },
    ]);
    const decoded = decodeCommand(bytes);
    assert.ok(decoded.ok);
    const [result] = applyAll(sm, [decoded.value]);
    assert.equal(result!.kind, 'altered');
    assert.equal(sm.topic('t')!.config.segmentBytes, 8 << 20);
    assert.equal(sm.topic('t')!.config.retentionMs, 60_000);
  });
});

describe('metadata codec', () => {
  test('admin requests and replies round-trip', () => {
    const request = {
      kind: 'create_topic' as const,
      request: {
        name: 't',
        numPartitions: 2,
        replicationFactor: 1,
        rackAwareness: false,
        config: topic('t', [['a']]).config,
        replicationFactorDefaulted: true,
        minInsyncDefaulted: false,
      },
      nowMs: 17,
    };
    assert.deepEqual(decodeAdminRequest(encodeAdminRequest(request)), { ok: true, value: request });
    const reply = {
      kind: 'created',
      index: 9,
      topic: topic('t', [['a']]),
      reason: '',
      leaderId: 'a',
      refusals: [],
    };
    assert.deepEqual(decodeAdminReply(encodeAdminReply(reply)), { ok: true, value: reply });
    const empty = { ...reply, topic: null };
    assert.deepEqual(decodeAdminReply(encodeAdminReply(empty)), { ok: true, value: empty });
  });

  test('commands and images of version 1 (before replication) are read and upgraded', () => {
    // Bytes written by the version-1 codec, kept as captured.
    const register = Buffer.from(
      '01020261123132372e302e302e31807d123132372e302e302e31b06d000a302e312e300002',
      'hex',
    );
    const create = Buffer.from(
      '0108027408742d6964020200010180808001020002000261060202610002026100000a',
      'hex',
    );
    const image = Buffer.from(
      '010e020261123132372e302e302e31807d123132372e302e302e31b06d000a302e312e3000020002027408742d6964020200010180808001020002000261060202610002026100000a0000',
      'hex',
    );
    const r = decodeCommand(register);
    assert.ok(r.ok && r.value.kind === 'register_broker');
    assert.deepEqual([r.value.broker.shuttingDown, r.value.broker.dataPorts], [false, []]);
    const c = decodeCommand(create);
    assert.ok(c.ok && c.value.kind === 'create_topic');
    assert.equal(c.value.topic.config.uncleanLeaderElection, false);
    assert.equal(
      c.value.topic.partitions[0]!.partitionEpoch,
      3,
      'the partition epoch starts at the leader epoch',
    );
    const i = decodeImage(image);
    assert.ok(i.ok);
    assert.equal(i.value.appliedIndex, 7);
    assert.deepEqual([i.value.topics[0]!.topicSeq, i.value.nextTopicSeq], [1, 2]);
    const sm = MetadataStateMachine.fromImage(i.value);
    sm.apply(8, { kind: 'create_topic', topic: topic('u', [['a']]) });
    assert.equal(sm.snapshot().topics.get('u')!.topicSeq, 2);
  });

  test('registrations and images written before brokers advertised Kafka ports read with none (0)', () => {
    // Bytes written by the codec before the Kafka port (command version 2, image version 4), kept as captured.
    const register = Buffer.from(
      '02020261123132372e302e302e31807d123132372e302e302e31b06d000a302e312e3000020004d28c01d48c0100',
      'hex',
    );
    const image = Buffer.from(
      '040e02020261123132372e302e302e31807d123132372e302e302e31b06d000a302e312e3000020004d28c01d48c01000000000000',
      'hex',
    );
    const withoutPort = { ...broker('a'), kafkaPort: 0 };
    assert.deepEqual(decodeCommand(register), {
      ok: true,
      value: { kind: 'register_broker', broker: withoutPort },
    });
    const i = decodeImage(image);
    assert.ok(i.ok);
    assert.deepEqual(i.value.brokers, [withoutPort]);
    // A registration without a Kafka port is written as before, so nodes of the older build read it; and so
    // is an image whose brokers have none (a cluster upgraded with --kafka-port -1 stays readable by them).
    assert.deepEqual(encodeCommand({ kind: 'register_broker', broker: withoutPort }), register);
    assert.deepEqual(encodeImage(i.value), image);
    // One with a port takes the appended branch and reads back whole, as does an image with it.
    const withPort = broker('a');
    const encoded = encodeCommand({ kind: 'register_broker', broker: withPort });
    assert.notDeepEqual(encoded, register);
    assert.deepEqual(decodeCommand(encoded), {
      ok: true,
      value: { kind: 'register_broker', broker: withPort },
    });
    const sm = new MetadataStateMachine();
    sm.apply(1, { kind: 'register_broker', broker: withPort });
    const again = decodeImage(encodeImage(sm.image()));
    assert.ok(again.ok);
    assert.equal(again.value.brokers[0]!.kafkaPort, 9092);
  });

  test('garbage never throws: every decoder answers with a value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        for (const decode of [decodeCommand, decodeImage, decodeAdminRequest, decodeAdminReply]) {
          const result = decode(bytes);
          assert.equal(typeof result.ok, 'boolean');
        }
      }),
      { numRuns: 2000 },
    );
    assert.deepEqual(decodeCommand(new Uint8Array([9, 0])).ok, false);
    // A count of 2^31 array items in a few bytes is refused before any loop.
    assert.equal(decodeImage(new Uint8Array([1, 2, 0xfe, 0xff, 0xff, 0xff, 0x0f])).ok, false);
  });
});
