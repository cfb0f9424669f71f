// kafkajs, unchanged, against a real broker process on its Kafka port: topics created, described and deleted,
// records produced (acks 0, 1 and all; idempotent), fetched and listed by offset, and records the same whichever
// door they came in by (HTTP or Kafka). Garbage on the Kafka port closes that connection and nothing else.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import kafkajs, { type Admin, type Kafka as KafkaClient, type Producer } from 'kafkajs';

const { Kafka, logLevel, ConfigResourceTypes, CompressionTypes } = kafkajs;

import { type BrokerProcess, killBroker, spawnBroker } from '../broker/process.js';

let broker: BrokerProcess;
let dataDir: string;
let kafka: KafkaClient;
let admin: Admin;
let producer: Producer;

interface FetchedRecord {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | undefined>;
  timestamp: string;
}

interface FetchedPartition {
  partition: number;
  errorCode: number;
  highWatermark: string;
  messages: FetchedRecord[];
}

interface KafkajsBroker {
  fetch(request: unknown): Promise<{ responses: { topicName: string; partitions: FetchedPartition[] }[] }>;
}

interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(which: { nodeId: string }): Promise<KafkajsBroker>;
}

/** kafkajs's own cluster client (what its consumer fetches with), for group-less fetches. */
async function kafkajsFetch(
  topic: string,
  partition: number,
  offset: number,
  maxWaitTime = 100,
): Promise<FetchedPartition> {
  const create = Object.getOwnPropertySymbols(kafka).find(
    (s) => s.description === 'private:Kafka:createCluster',
  );
  assert.ok(create !== undefined, 'kafkajs exposes its cluster factory');
  const cluster = (kafka as unknown as Record<symbol, (o: object) => KafkajsCluster>)[create]!({});
  await cluster.connect();
  try {
    await cluster.addTargetTopic(topic);
    const leaders = cluster.findLeaderForPartitions(topic, [partition]);
    const nodeId = Object.keys(leaders)[0]!;
    const leader = await cluster.findBroker({ nodeId });
    const answer = await leader.fetch({
      maxWaitTime,
      topics: [{ topic, partitions: [{ partition, fetchOffset: String(offset), maxBytes: 1 << 20 }] }],
    });
    return answer.responses[0]!.partitions[0]!;
  } finally {
    await cluster.disconnect();
  }
}

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${broker.base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? null : JSON.parse(text) };
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'kafka-kafkajs-'));
  broker = await spawnBroker(['--data-dir', dataDir, '--kafka-port', '0', '--threads', '2']);
  assert.ok(broker.kafkaPort > 0, 'the broker reports the Kafka port it bound');
  kafka = new Kafka({
    clientId: 'kafkajs-test',
    brokers: [`127.0.0.1:${broker.kafkaPort}`],
    logLevel: logLevel.NOTHING,
    retry: { retries: 3, initialRetryTime: 50 },
  });
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
});

after(async () => {
  await producer?.disconnect().catch(() => undefined);
  await admin?.disconnect().catch(() => undefined);
  if (broker !== undefined) await killBroker(broker, 'SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('kafkajs against the Kafka listener', () => {
  test('topics are created, described with this broker leading every partition, and deleted', async () => {
    assert.equal(await admin.createTopics({ topics: [{ topic: 'meta', numPartitions: 3 }] }), true);
    // Created again: Kafka's TOPIC_ALREADY_EXISTS, which kafkajs reports as false.
    assert.equal(await admin.createTopics({ topics: [{ topic: 'meta', numPartitions: 3 }] }), false);
    const { topics } = await admin.fetchTopicMetadata({ topics: ['meta'] });
    assert.equal(topics[0]?.partitions.length, 3);
    for (const p of topics[0]!.partitions) {
      assert.equal(p.partitionErrorCode, 0);
      assert.deepEqual(p.replicas, [p.leader]);
      assert.deepEqual(p.isr, [p.leader]);
    }
    const described = await http('GET', '/topics/meta');
    assert.equal(described.status, 200);
    assert.ok((await admin.listTopics()).includes('meta'));
    await admin.deleteTopics({ topics: ['meta'] });
    assert.ok(!(await admin.listTopics()).includes('meta'));
    assert.equal((await http('GET', '/topics/meta')).status, 404);
  });

  test('a bad topic is refused with a Kafka error and nothing is created', async () => {
    const kafkaError = (type: string) => (error: unknown) => {
      const errors = (error as { errors?: { type?: string }[] }).errors ?? [];
      assert.deepEqual(
        errors.map((e) => e.type),
        [type],
      );
      return true;
    };
    await assert.rejects(
      admin.createTopics({ topics: [{ topic: 'bad/name' }] }),
      kafkaError('INVALID_TOPIC_EXCEPTION'),
    );
    await assert.rejects(
      admin.createTopics({
        topics: [{ topic: 'cfg', configEntries: [{ name: 'compression.type', value: 'lz4' }] }],
      }),
      kafkaError('INVALID_CONFIG'),
    );
    assert.ok(!(await admin.listTopics()).includes('cfg'));
  });

  test('topic settings given at creation are described by DescribeConfigs and by HTTP', async () => {
    await admin.createTopics({
      topics: [{ topic: 'configured', configEntries: [{ name: 'retention.ms', value: '60000' }] }],
    });
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: 'configured' }],
    });
    const entries = described.resources[0]!.configEntries;
    const retention = entries.find((e) => e.configName === 'retention.ms');
    assert.equal(retention?.configValue, '60000');
    assert.equal(retention?.isDefault, false);
    assert.equal(entries.find((e) => e.configName === 'cleanup.policy')?.configValue, 'delete');
    const http = await fetch(`${broker.base}/topics/configured`).then((r) => r.json() as Promise<any>);
    assert.equal(http.config.retention_ms, 60000);
  });

  test('a record produced over HTTP reads identically through kafkajs', async () => {
    assert.equal((await http('POST', '/topics/from-http', { num_partitions: 1 })).status, 201);
    const timestamp = 1_790_000_000_123;
    const produced = await http('POST', '/topics/from-http/produce', {
      key: 'user-1',
      value: 'héllo',
      headers: { trace: 't-1', empty: '' },
      timestamp,
      partition: 0,
    });
    assert.equal(produced.status, 201, JSON.stringify(produced.json));
    const fetched = await kafkajsFetch('from-http', 0, 0);
    assert.equal(fetched.errorCode, 0);
    assert.equal(fetched.highWatermark, '1');
    assert.equal(fetched.messages.length, 1);
    const [record] = fetched.messages;
    assert.equal(record!.offset, String(produced.json.offset));
    assert.equal(record!.key?.toString(), 'user-1');
    assert.equal(record!.value?.toString(), 'héllo');
    assert.equal(record!.timestamp, String(timestamp));
    assert.deepEqual(
      Object.fromEntries(Object.entries(record!.headers).map(([k, v]) => [k, v?.toString()])),
      { trace: 't-1', empty: '' },
    );
  });

  test('records produced by kafkajs read identically over HTTP, at the offsets Kafka answered', async () => {
    await admin.createTopics({ topics: [{ topic: 'from-kafka', numPartitions: 1 }] });
    const timestamp = 1_790_000_000_456;
    const sent = await producer.send({
      topic: 'from-kafka',
      acks: -1,
      messages: [
        { key: 'k1', value: 'v1', headers: { h1: 'a', h2: 'b' }, timestamp: String(timestamp), partition: 0 },
        { key: null, value: 'v2', timestamp: String(timestamp + 1), partition: 0 },
        { key: 'k3', value: null, timestamp: String(timestamp + 2), partition: 0 },
      ],
    });
    assert.equal(sent[0]?.errorCode, 0);
    assert.equal(sent[0]?.baseOffset, '0');
    const consumed = await http('GET', '/topics/from-kafka/partitions/0/consume?offset=0&limit=10');
    assert.equal(consumed.status, 200);
    assert.deepEqual(
      consumed.json.messages.map((m: Record<string, unknown>) => [
        m.offset,
        m.key,
        m.value,
        m.headers,
        m.timestamp,
      ]),
      [
        [0, 'k1', 'v1', { h1: 'a', h2: 'b' }, timestamp],
        [1, null, 'v2', {}, timestamp + 1],
        [2, 'k3', null, {}, timestamp + 2],
      ],
    );
    // And the same through kafkajs, which checks the batch's CRC-32C on the way back.
    const fetched = await kafkajsFetch('from-kafka', 0, 1);
    assert.deepEqual(
      fetched.messages
        .filter((m) => Number(m.offset) >= 1)
        .map((m) => [m.offset, m.key, m.value?.toString()]),
      [
        ['1', null, 'v2'],
        ['2', Buffer.from('k3'), undefined],
      ].map(([o, k, v]) => [o, k, v]),
    );
  });

  test('a gzip-compressed batch is refused with UNSUPPORTED_COMPRESSION_TYPE and nothing is written', async () => {
    // The log stores batches as they come and HTTP consumers read their records directly: compressed ones
    // would need decompressing on every read path, so the producer is told to send them uncompressed.
    await admin.createTopics({ topics: [{ topic: 'gzip', numPartitions: 1 }] });
    const strict = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
    await strict.connect();
    try {
      await assert.rejects(
        strict.send({ topic: 'gzip', compression: CompressionTypes.GZIP, messages: [{ value: 'zipped' }] }),
        (error: Error & { type?: string; cause?: { type?: string } }) => {
          assert.equal(error.type ?? error.cause?.type, 'UNSUPPORTED_COMPRESSION_TYPE', String(error));
          return true;
        },
      );
      const sent = await strict.send({ topic: 'gzip', messages: [{ value: 'plain' }] });
      assert.equal(sent[0]?.baseOffset, '0', 'nothing of the refused batch was written');
    } finally {
      await strict.disconnect();
    }
    const consumed = await http('GET', '/topics/gzip/partitions/0/consume?offset=0');
    assert.deepEqual(
      consumed.json.messages.map((m: { value: string }) => m.value),
      ['plain'],
    );
  });

  test('acks 0, 1 and all each append; keyed records land where murmur2 puts them', async () => {
    await admin.createTopics({ topics: [{ topic: 'acks', numPartitions: 3 }] });
    for (const acks of [0, 1, -1]) {
      await producer.send({ topic: 'acks', acks, messages: [{ key: 'user-123', value: `acks ${acks}` }] });
    }
    // murmur2("user-123") % 3 = 2 (README), the partition kafkajs's default partitioner picks too.
    const deadline = Date.now() + 5000;
    let values: string[] = [];
    while (Date.now() < deadline) {
      const consumed = await http('GET', '/topics/acks/partitions/2/consume?offset=0');
      values = consumed.json.messages.map((m: { value: string }) => m.value);
      if (values.length === 3) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(values, ['acks 0', 'acks 1', 'acks -1']);
  });

  test('an idempotent producer gets an id from the broker and its batches follow one another', async () => {
    await admin.createTopics({ topics: [{ topic: 'idem', numPartitions: 1 }] });
    const idempotent = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
    await idempotent.connect();
    try {
      const first = await idempotent.send({ topic: 'idem', messages: [{ value: 'a' }, { value: 'b' }] });
      const second = await idempotent.send({ topic: 'idem', messages: [{ value: 'c' }] });
      assert.equal(first[0]?.baseOffset, '0');
      assert.equal(second[0]?.baseOffset, '2');
    } finally {
      await idempotent.disconnect();
    }
    const fetched = await kafkajsFetch('idem', 0, 0);
    const producerIds = new Set(
      fetched.messages.map(
        (m) => (m as unknown as { batchContext: { producerId: string } }).batchContext.producerId,
      ),
    );
    assert.equal(producerIds.size, 1);
    assert.notEqual([...producerIds][0], '-1', 'the batches carry the producer id the broker allocated');
  });

  test('ListOffsets answers earliest, latest and by timestamp', async () => {
    await admin.createTopics({ topics: [{ topic: 'offsets', numPartitions: 1 }] });
    await producer.send({
      topic: 'offsets',
      messages: [1000, 2000, 3000].map((t) => ({
        value: `at ${t}`,
        timestamp: String(1_790_000_000_000 + t),
      })),
    });
    const [latest] = await admin.fetchTopicOffsets('offsets');
    assert.deepEqual({ low: latest?.low, high: latest?.high }, { low: '0', high: '3' });
    const [byTime] = await admin.fetchTopicOffsetsByTimestamp('offsets', 1_790_000_001_500);
    assert.equal(byTime?.offset, '1');
    const [future] = await admin.fetchTopicOffsetsByTimestamp('offsets', 1_790_000_009_000);
    // No record that new: Kafka answers -1, which kafkajs turns into the high watermark.
    assert.ok(future?.offset === '-1' || future?.offset === '3', `got ${future?.offset}`);
  });

  test('a fetch with nothing to read waits up to maxWaitTime and answers as soon as a record arrives', async () => {
    await admin.createTopics({ topics: [{ topic: 'poll', numPartitions: 1 }] });
    const started = performance.now();
    const idle = await kafkajsFetch('poll', 0, 0, 300);
    const idleMs = performance.now() - started;
    assert.equal(idle.messages.length, 0);
    assert.ok(idleMs >= 250, `an empty fetch waited ${idleMs.toFixed(0)} ms of 300`);
    const waiting = kafkajsFetch('poll', 0, 0, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const sentAt = performance.now();
    await http('POST', '/topics/poll/produce', { value: 'wake', partition: 0 });
    const woken = await waiting;
    assert.equal(woken.messages[0]?.value?.toString(), 'wake');
    assert.ok(performance.now() - sentAt < 5000, 'the long poll ended with the record, not the wait');
  });

  test('garbage on the Kafka port closes that connection; the broker keeps serving', async () => {
    const garbage = [
      Buffer.from('7fffffff', 'hex'), // a frame far above the bound
      Buffer.from('0000000a004400000000000100ff', 'hex').subarray(0, 14), // unknown API key 68
      Buffer.from('0000000a000000010000000100ff', 'hex').subarray(0, 14), // Produce v1
      Buffer.from('0000000e0003000100000001ffff7fffffff', 'hex'), // Metadata v1 with 2^31-1 topics
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    ];
    for (const bytes of garbage) {
      const closed = await new Promise<boolean>((resolve) => {
        const socket = connect(broker.kafkaPort, '127.0.0.1', () => socket.write(bytes));
        const timer = setTimeout(() => {
          socket.destroy();
          resolve(false);
        }, 5000);
        socket.on('data', () => undefined);
        socket.on('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
        socket.on('error', () => undefined);
      });
      assert.ok(closed, `the broker closed the connection after ${bytes.toString('hex').slice(0, 40)}`);
    }
    assert.equal(broker.child.exitCode, null, 'the broker is still running');
    const { topics } = await admin.fetchTopicMetadata({ topics: ['from-kafka'] });
    assert.equal(topics[0]?.name, 'from-kafka');
  });
});
