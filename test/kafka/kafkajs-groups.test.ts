// kafkajs consumer groups on the broker's one group coordinator, through the Kafka listener: members join and
// share the partitions, a member leaving hands its partitions back, offsets committed by Kafka clients are the
// ones HTTP reads, and every record produced is consumed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Admin, type Consumer, Kafka, logLevel, type Producer } from 'kafkajs';
import { type BrokerProcess, killBroker, spawnBroker } from '../broker/process.js';

let broker: BrokerProcess;
let dataDir: string;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;
const consumers: Consumer[] = [];

async function waitFor(
  what: string | (() => string),
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'kafka-groups-'));
  broker = await spawnBroker(['--data-dir', dataDir, '--kafka-port', '0', '--threads', '2']);
  kafka = new Kafka({
    clientId: 'groups-test',
    brokers: [`127.0.0.1:${broker.kafkaPort}`],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 50 },
  });
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
});

after(async () => {
  for (const c of consumers) await c.disconnect().catch(() => undefined);
  await producer?.disconnect().catch(() => undefined);
  await admin?.disconnect().catch(() => undefined);
  if (broker !== undefined) await killBroker(broker, 'SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
});

function member(name: string, seen: Map<string, string>, partitionsSeen: Set<number>): Consumer {
  // A client of its own, as separate processes would have: kafkajs shares its cache of committed offsets between
  // the consumers of one client, which is not made for several members of one group.
  const client = new Kafka({
    clientId: `groups-test-${name}`,
    brokers: [`127.0.0.1:${broker.kafkaPort}`],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 50 },
  });
  const consumer = client.consumer({
    groupId: 'shared',
    sessionTimeout: 6000,
    heartbeatInterval: 200,
    rebalanceTimeout: 6000,
    maxWaitTimeInMs: 200,
    retry: { retries: 10, initialRetryTime: 50 },
  });
  consumers.push(consumer);
  void consumer.connect().then(async () => {
    await consumer.subscribe({ topic: 'work', fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        seen.set(message.value!.toString(), name);
        partitionsSeen.add(partition);
      },
    });
  });
  return consumer;
}

async function produce(from: number, count: number): Promise<void> {
  await producer.send({
    topic: 'work',
    messages: Array.from({ length: count }, (_, i) => ({ key: `k${from + i}`, value: `r${from + i}` })),
  });
}

describe('kafkajs consumer groups', () => {
  test('members share the partitions, a leaving member hands them back, and every record is consumed', async () => {
    await admin.createTopics({ topics: [{ topic: 'work', numPartitions: 4 }] });
    const seen = new Map<string, string>();
    const partitionsA = new Set<number>();
    const partitionsB = new Set<number>();
    const partitionsC = new Set<number>();
    member('a', seen, partitionsA);
    await produce(0, 40);
    await waitFor('member a to consume the first 40 records', () => seen.size === 40);
    assert.deepEqual([...partitionsA].sort(), [0, 1, 2, 3]);

    const b = member('b', seen, partitionsB);
    const c = member('c', seen, partitionsC);
    // The coordinator's members, as HTTP describes them: three, sharing the four partitions.
    await waitFor('three members with disjoint partitions covering the topic', async () => {
      const described = await fetch(`${broker.base}/consumer-groups/shared`).then(
        (r) => r.json() as Promise<any>,
      );
      const members = (described.members ?? []) as { assignments: Record<string, number[]> }[];
      const owned = members.flatMap((m) => m.assignments.work ?? []);
      return members.length === 3 && owned.length === 4 && new Set(owned).size === 4;
    });
    await produce(40, 80);
    await waitFor('all 120 records consumed', () => seen.size === 120);
    const byMember = new Set([...seen.entries()].filter(([v]) => Number(v.slice(1)) >= 40).map(([, m]) => m));
    assert.ok(byMember.size >= 2, `records after the join were consumed by ${[...byMember].join(', ')}`);

    let last = '';
    await b.disconnect();
    await c.disconnect();
    await waitFor(
      () => `member a to own every partition again (last: ${last})`,
      async () => {
        const described = await fetch(`${broker.base}/consumer-groups/shared`).then(
          (r) => r.json() as Promise<any>,
        );
        const members = (described.members ?? []) as { assignments: Record<string, number[]> }[];
        last = JSON.stringify(described);
        return members.length === 1 && (members[0]!.assignments.work ?? []).length === 4;
      },
    );
    await produce(120, 40);
    await waitFor('all 160 records consumed', () => seen.size === 160);
    assert.ok(
      [...seen.entries()].filter(([v]) => Number(v.slice(1)) >= 120).every(([, m]) => m === 'a'),
      'after b and c left, a consumed everything new',
    );

    // The offsets kafkajs committed are the coordinator's: the same through Kafka and HTTP, at the log end.
    await waitFor('committed offsets at the high watermarks', async () => {
      const [fetched] = await admin.fetchOffsets({ groupId: 'shared', topics: ['work'] });
      const ends = await admin.fetchTopicOffsets('work');
      return fetched!.partitions.every(
        (p) => p.offset === ends.find((e) => e.partition === p.partition)?.high,
      );
    });
    const [fetched] = await admin.fetchOffsets({ groupId: 'shared', topics: ['work'] });
    for (const p of fetched!.partitions) {
      const http = await fetch(`${broker.base}/consumer-groups/shared/offsets/work/${p.partition}`).then(
        (r) => r.json() as Promise<{ offset: number }>,
      );
      assert.equal(String(http.offset), p.offset, `partition ${p.partition}`);
    }
  });

  test('a commit from outside the group protocol is refused while the group has members', async () => {
    await assert.rejects(
      admin.setOffsets({ groupId: 'shared', topic: 'work', partitions: [{ partition: 0, offset: '0' }] }),
    );
    const [fetched] = await admin.fetchOffsets({ groupId: 'shared', topics: ['work'] });
    assert.notEqual(fetched!.partitions.find((p) => p.partition === 0)?.offset, '0');
  });
});
