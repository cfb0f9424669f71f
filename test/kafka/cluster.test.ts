// kafkajs against a real 3-broker cluster through the Kafka listeners: every broker advertises its Kafka port,
// so Metadata from any one of them lists all three with each partition's leader, replicas and ISR (Kafka node
// ids n1 -> 1 ...) and the metadata leader as the controller, and the producer sends each partition's batches straight to its leader; FindCoordinator
// from any broker names the metadata leader, where a group of three kafkajs members consumes everything and
// commits; records read identically whichever door (HTTP or Kafka) they came in by. Every process is killed
// by its PID in `after`. A member leaving hands its partitions to the other two; a topic created and deleted
// through Kafka shows on every broker.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Admin, type Consumer, Kafka, logLevel } from 'kafkajs';
import { type ClusterNode, http, statusOf, TestCluster, waitFor } from '../cluster/processes.js';

const TOPIC = 'orders';
const PARTITIONS = 6;
const RECORDS = 300;

let cluster: TestCluster;
let admin: Admin;
const consumers: Consumer[] = [];

function kafkaPortOf(node: ClusterNode): number {
  const port = node.process?.kafkaPort ?? 0;
  assert.ok(port > 0, `${node.id} has a Kafka port`);
  return port;
}

function client(name: string, bootstrap: ClusterNode): Kafka {
  return new Kafka({
    clientId: `cluster-test-${name}`,
    brokers: [`127.0.0.1:${kafkaPortOf(bootstrap)}`],
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 50 },
  });
}

before(async () => {
  cluster = await TestCluster.start(3, ['--kafka-port', '0']);
  const n1 = cluster.nodes[0]!;
  const created = await http(n1, 'POST', `/topics/${TOPIC}`, {
    num_partitions: PARTITIONS,
    replication_factor: 3,
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  // Every partition led and fully in sync, and every broker registered with its Kafka port, as n1 sees it.
  await waitFor('partitions in sync on three replicas', 20_000, async () => {
    const got = await http(n1, 'GET', `/topics/${TOPIC}`);
    const parts = got.json.partitions as { leader: string; isr: string[] }[];
    return parts.every((p) => p.leader !== '' && p.isr.length === 3) ? true : undefined;
  });
  admin = client('admin', cluster.nodes[1]!).admin();
  await admin.connect();
});

after(async () => {
  for (const c of consumers) await c.disconnect().catch(() => undefined);
  await admin?.disconnect().catch(() => undefined);
  await cluster?.stopAll();
});

describe('Kafka protocol on a 3-broker cluster', { timeout: 60_000 }, () => {
  test('Metadata from any broker lists all three with their Kafka ports and each partition as HTTP describes it', async () => {
    const expected = cluster.nodes.map((n) => ({ nodeId: Number(n.id.slice(1)), port: kafkaPortOf(n) }));
    const described = await http(cluster.nodes[0]!, 'GET', `/topics/${TOPIC}`);
    const byHttp = (
      described.json.partitions as { partition: number; leader: string; replicas: string[]; isr: string[] }[]
    )
      .map((p) => ({
        partitionId: p.partition,
        leader: Number(p.leader.slice(1)),
        replicas: p.replicas.map((r) => Number(r.slice(1))).sort(),
        isr: p.isr.map((r) => Number(r.slice(1))).sort(),
      }))
      .sort((a, b) => a.partitionId - b.partitionId);
    assert.ok(new Set(byHttp.map((p) => p.leader)).size >= 2, 'leaders on more than one broker');
    // The registry behind it, as /cluster/status shows it: each member with the Kafka port it bound.
    const status = await http(cluster.nodes[2]!, 'GET', '/cluster/status');
    assert.deepEqual(
      (status.json.members as { node_id: string; kafka_port: number }[]).map((m) => [
        m.node_id,
        m.kafka_port,
      ]),
      cluster.nodes.map((n) => [n.id, kafkaPortOf(n)]),
    );
    const raftLeader = (await statusOf(cluster.nodes[0]!))!.raft.leader_id!;
    for (const bootstrap of cluster.nodes) {
      const one = client(`meta-${bootstrap.id}`, bootstrap).admin();
      await one.connect();
      try {
        const { brokers, controller } = await one.describeCluster();
        assert.equal(
          controller,
          Number(raftLeader.slice(1)),
          `the controller ${bootstrap.id} names is the metadata leader`,
        );
        assert.deepEqual(
          brokers.map((b) => ({ nodeId: b.nodeId, port: b.port })).sort((a, b) => a.nodeId - b.nodeId),
          expected,
          `brokers as ${bootstrap.id} lists them`,
        );
        const { topics } = await one.fetchTopicMetadata({ topics: [TOPIC] });
        const byKafka = topics[0]!.partitions
          .map((p) => ({
            partitionId: p.partitionId,
            leader: p.leader,
            replicas: [...p.replicas].sort(),
            isr: [...p.isr].sort(),
          }))
          .sort((a, b) => a.partitionId - b.partitionId);
        assert.deepEqual(byKafka, byHttp, `partitions as ${bootstrap.id} lists them`);
      } finally {
        await one.disconnect();
      }
    }
  });

  test('an acks=all idempotent producer sends to each leader directly; a group of three consumes everything and commits', async () => {
    const kafka = client('producer', cluster.nodes[2]!);
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    const produceTo = new Set<string>();
    producer.on(producer.events.REQUEST, (e) => {
      if (e.payload.apiName === 'Produce') produceTo.add(e.payload.broker);
    });
    await producer.connect();
    try {
      for (let i = 0; i < RECORDS; i += 50) {
        const sent = await producer.send({
          topic: TOPIC,
          acks: -1,
          messages: Array.from({ length: 50 }, (_, j) => ({ key: `k${i + j}`, value: `v${i + j}` })),
        });
        assert.ok(sent.every((r) => r.errorCode === 0));
      }
    } finally {
      await producer.disconnect();
    }
    // The leaders' Kafka addresses, and no other, took the produce requests.
    const described = await http(cluster.nodes[0]!, 'GET', `/topics/${TOPIC}`);
    const leaders = new Set((described.json.partitions as { leader: string }[]).map((p) => p.leader));
    const leaderAddresses = new Set([...leaders].map((id) => `127.0.0.1:${kafkaPortOf(cluster.node(id))}`));
    assert.ok(leaderAddresses.size >= 2, 'leaders on more than one broker');
    assert.deepEqual([...produceTo].sort(), [...leaderAddresses].sort());
    const ends = await admin.fetchTopicOffsets(TOPIC);
    assert.equal(
      ends.reduce((sum, p) => sum + Number(p.high), 0),
      RECORDS,
    );

    // Three members, each bootstrapped from another broker: FindCoordinator from any of them names one broker.
    const seen = new Map<string, number>();
    for (const [i, bootstrap] of cluster.nodes.entries()) {
      const consumer = client(`member-${i}`, bootstrap).consumer({
        groupId: 'orders-readers',
        sessionTimeout: 6000,
        heartbeatInterval: 200,
        rebalanceTimeout: 6000,
        maxWaitTimeInMs: 200,
        retry: { retries: 10, initialRetryTime: 50 },
      });
      consumers.push(consumer);
      await consumer.connect();
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const value = message.value!.toString();
          seen.set(value, (seen.get(value) ?? 0) + 1);
        },
      });
    }
    // The coordinator is the metadata leader: its members, as HTTP describes them, are the three sharing the topic.
    const status = await statusOf(cluster.nodes[0]!);
    const coordinator = cluster.node(status!.raft.leader_id!);
    await waitFor('three members with disjoint partitions covering the topic', 30_000, async () => {
      const described = await http(coordinator, 'GET', '/consumer-groups/orders-readers');
      const owned = ((described.json.members ?? []) as { assignments: Record<string, number[]> }[]).map(
        (m) => m.assignments[TOPIC] ?? [],
      );
      const all = owned.flat();
      return owned.length === 3 && owned.every((o) => o.length > 0) && new Set(all).size === PARTITIONS
        ? true
        : undefined;
    });
    await waitFor('every record consumed', 30_000, async () => (seen.size === RECORDS ? true : undefined));
    assert.deepEqual([...seen.keys()].sort(), Array.from({ length: RECORDS }, (_, i) => `v${i}`).sort());
    await waitFor('committed offsets at the high watermarks', 20_000, async () => {
      const [fetched] = await admin.fetchOffsets({ groupId: 'orders-readers', topics: [TOPIC] });
      const ok = fetched!.partitions.every(
        (p) => p.offset === ends.find((e) => e.partition === p.partition)?.high,
      );
      return ok ? true : undefined;
    });
    const [fetched] = await admin.fetchOffsets({ groupId: 'orders-readers', topics: [TOPIC] });
    for (const p of fetched!.partitions) {
      const got = await http(
        coordinator,
        'GET',
        `/consumer-groups/orders-readers/offsets/${TOPIC}/${p.partition}`,
      );
      assert.equal(String(got.json.offset), p.offset, `partition ${p.partition}`);
    }

    // A member leaves (LeaveGroup): the two others take its partitions and consume what comes next.
    const countsBeforeLeave = new Map(seen);
    const leaving = consumers.pop()!;
    await leaving.disconnect();
    await waitFor('two members covering the topic', 30_000, async () => {
      const described = await http(coordinator, 'GET', '/consumer-groups/orders-readers');
      const owned = ((described.json.members ?? []) as { assignments: Record<string, number[]> }[]).map(
        (m) => m.assignments[TOPIC] ?? [],
      );
      return owned.length === 2 && new Set(owned.flat()).size === PARTITIONS ? true : undefined;
    });
    const more = client('producer-more', cluster.nodes[2]!).producer({
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await more.connect();
    await more.send({
      topic: TOPIC,
      acks: -1,
      messages: Array.from({ length: 60 }, (_, i) => ({ key: `m${i}`, value: `after-leave-${i}` })),
    });
    await more.disconnect();
    await waitFor('the records sent after the leave consumed by the two left', 30_000, async () =>
      Array.from({ length: 60 }, (_, i) => `after-leave-${i}`).every((v) => seen.has(v)) ? true : undefined,
    );
    const endsAfter = await admin.fetchTopicOffsets(TOPIC);
    await waitFor('committed offsets at the new high watermarks', 20_000, async () => {
      const [now] = await admin.fetchOffsets({ groupId: 'orders-readers', topics: [TOPIC] });
      return now!.partitions.every(
        (p) => p.offset === endsAfter.find((e) => e.partition === p.partition)?.high,
      )
        ? true
        : undefined;
    });
    // Every record before the leave was committed, so the members taking over start at the committed offsets:
    // nothing from before is delivered again (the first joins may redeliver, as Kafka's at-least-once allows).
    const againAfterLeave = [...seen.entries()]
      .filter(([v, n]) => v.startsWith('v') && n !== countsBeforeLeave.get(v))
      .map(([v]) => v);
    assert.deepEqual(againAfterLeave, [], 'records committed before the leave are not delivered again');
  });

  test('a topic created and deleted through Kafka on one broker is seen, served and gone on the others', async () => {
    const created = await admin.createTopics({
      topics: [{ topic: 'kafka-made', numPartitions: 3, replicationFactor: 3 }],
      waitForLeaders: true,
    });
    assert.equal(created, true);
    await waitFor('the topic on every broker with 3 partitions in sync', 20_000, async () => {
      for (const node of cluster.nodes) {
        const got = await http(node, 'GET', '/topics/kafka-made');
        const parts = (got.json.partitions ?? []) as { leader: string; isr: string[] }[];
        if (
          got.status !== 200 ||
          parts.length !== 3 ||
          !parts.every((p) => p.leader !== '' && p.isr.length === 3)
        )
          return undefined;
      }
      return true;
    });
    const producer = client('producer-made', cluster.nodes[0]!).producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const [sent] = await producer.send({
      topic: 'kafka-made',
      acks: -1,
      messages: [{ value: 'made', partition: 1 }],
    });
    await producer.disconnect();
    const read = await http(
      cluster.nodes[2]!,
      'GET',
      `/topics/kafka-made/partitions/1/consume?offset=${sent!.baseOffset}`,
    );
    assert.equal((read.json.messages as { value: string }[])[0]?.value, 'made');

    await admin.deleteTopics({ topics: ['kafka-made'] });
    await waitFor('the topic gone from every broker', 20_000, async () => {
      for (const node of cluster.nodes)
        if ((await http(node, 'GET', '/topics/kafka-made')).status !== 404) return undefined;
      return true;
    });
    assert.ok(!(await admin.listTopics()).includes('kafka-made'), 'Metadata no longer lists it');
  });

  test('a record produced over HTTP on one broker reads identically through Kafka from the leader, and back', async () => {
    const described = await http(cluster.nodes[0]!, 'GET', `/topics/${TOPIC}`);
    const partition = (described.json.partitions as { partition: number; leader: string }[]).find(
      (p) => p.leader !== 'n1',
    )!;
    const timestamp = 1_790_000_000_123;
    // Produced through n1, which forwards to the leader.
    const produced = await http(cluster.nodes[0]!, 'POST', `/topics/${TOPIC}/produce?acks=all`, {
      key: 'http-key',
      value: 'héllo',
      headers: { trace: 't-1' },
      timestamp,
      partition: partition.partition,
    });
    assert.equal(produced.status, 201, JSON.stringify(produced.json));
    const offset = Number(produced.json.offset);

    const reader = client('reader', cluster.nodes[0]!).consumer({
      groupId: 'single-reader',
      maxWaitTimeInMs: 100,
    });
    consumers.push(reader);
    await reader.connect();
    await reader.subscribe({ topic: TOPIC, fromBeginning: true });
    const got = new Promise<{
      offset: string;
      key: string;
      value: string;
      timestamp: string;
      headers: unknown;
    }>((resolve) => {
      void reader.run({
        eachMessage: async ({ partition: p, message }) => {
          if (p !== partition.partition || Number(message.offset) !== offset) return;
          resolve({
            offset: message.offset,
            key: message.key!.toString(),
            value: message.value!.toString(),
            timestamp: message.timestamp,
            headers: Object.fromEntries(
              Object.entries(message.headers ?? {}).map(([k, v]) => [k, v?.toString()]),
            ),
          });
        },
      });
    });
    assert.deepEqual(await got, {
      offset: String(offset),
      key: 'http-key',
      value: 'héllo',
      timestamp: String(timestamp),
      headers: { trace: 't-1' },
    });

    // And back: produced by kafkajs (straight to the leader), read over HTTP from a broker that does not lead.
    const producer = client('producer-2', cluster.nodes[1]!).producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const [sent] = await producer.send({
      topic: TOPIC,
      acks: -1,
      messages: [
        {
          key: 'kafka-key',
          value: 'wörld',
          headers: { h: 'x' },
          timestamp: String(timestamp + 1),
          partition: partition.partition,
        },
      ],
    });
    await producer.disconnect();
    assert.equal(sent!.errorCode, 0);
    const notLeader = cluster.nodes.find((n) => n.id !== partition.leader)!;
    const consumed = await http(
      notLeader,
      'GET',
      `/topics/${TOPIC}/partitions/${partition.partition}/consume?offset=${sent!.baseOffset}&limit=1`,
    );
    assert.equal(consumed.status, 200, JSON.stringify(consumed.json));
    const [m] = consumed.json.messages as Record<string, unknown>[];
    assert.deepEqual(
      [m!.offset, m!.key, m!.value, m!.headers, m!.timestamp],
      [Number(sent!.baseOffset), 'kafka-key', 'wörld', { h: 'x' }, timestamp + 1],
    );
  });
});
