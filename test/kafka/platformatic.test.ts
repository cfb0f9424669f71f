// @platformatic/kafka (flexible versions throughout: Metadata v12, Produce v9, Fetch v13 with topic ids,
// FindCoordinator v4 and OffsetFetch v8 batched by group, CreateTopics v7, DeleteTopics v6) against a real
// broker process: topics created and deleted, records produced and consumed by a group, identical over HTTP.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { type BrokerProcess, killBroker, spawnBroker } from '../broker/process.js';

let broker: BrokerProcess;
let dataDir: string;
let bootstrapBrokers: string[];

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'kafka-platformatic-'));
  broker = await spawnBroker(['--data-dir', dataDir, '--kafka-port', '0', '--threads', '2']);
  bootstrapBrokers = [`127.0.0.1:${broker.kafkaPort}`];
});

after(async () => {
  if (broker !== undefined) await killBroker(broker, 'SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('@platformatic/kafka against the Kafka listener', () => {
  test('admin, producer and a consumer group: records identical over HTTP, topic deleted', async () => {
    const admin = new Admin({ clientId: 'pk-admin', bootstrapBrokers });
    const producer = new Producer({
      clientId: 'pk-producer',
      bootstrapBrokers,
      serializers: stringSerializers,
    });
    const consumer = new Consumer({
      groupId: 'pk-group',
      clientId: 'pk-consumer',
      bootstrapBrokers,
      deserializers: stringDeserializers,
      maxWaitTime: 200,
    });
    try {
      const created = await admin.createTopics({ topics: ['pk'], partitions: 2, replicas: 1 });
      assert.equal(created[0]?.partitions, 2);
      const described = await fetch(`${broker.base}/topics/pk`).then((r) => r.json() as Promise<any>);
      assert.equal(created[0]?.id, described.topic_id, 'CreateTopics v7 answers the topic id');

      const timestamp = 1_790_000_000_321n;
      const sent = await producer.send({
        messages: [{ topic: 'pk', key: 'k1', value: 'v1', headers: { h: 'x' }, partition: 1, timestamp }],
      });
      assert.equal(sent.offsets?.[0]?.offset, 0n);
      const http = await fetch(`${broker.base}/topics/pk/partitions/1/consume?offset=0`).then(
        (r) => r.json() as Promise<any>,
      );
      assert.deepEqual(
        http.messages.map((m: Record<string, unknown>) => [m.offset, m.key, m.value, m.headers, m.timestamp]),
        [[0, 'k1', 'v1', { h: 'x' }, Number(timestamp)]],
      );
      await fetch(`${broker.base}/topics/pk/produce`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: 'k2', value: 'from http', partition: 0, timestamp: 1_790_000_000_654 }),
      });

      const stream = await consumer.consume({
        autocommit: true,
        topics: ['pk'],
        mode: 'earliest',
        sessionTimeout: 6000,
        heartbeatInterval: 500,
      } as Parameters<typeof consumer.consume>[0]);
      const got = new Map<string, unknown[]>();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${got.size} of 2 records arrived`)), 20_000);
        stream.on('data', (m: any) => {
          got.set(m.key, [m.partition, m.offset, m.value, Object.fromEntries(m.headers), m.timestamp]);
          if (got.size === 2) {
            clearTimeout(timer);
            resolve();
          }
        });
        stream.on('error', reject);
      });
      assert.deepEqual(got.get('k1'), [1, 0n, 'v1', { h: 'x' }, timestamp]);
      assert.deepEqual(got.get('k2'), [0, 0n, 'from http', {}, 1_790_000_000_654n]);
      await stream.close();

      await admin.deleteTopics({ topics: ['pk'] });
      assert.equal((await fetch(`${broker.base}/topics/pk`)).status, 404);
    } finally {
      await new Promise<void>((resolve) => consumer.close(true, () => resolve()));
      await producer.close().catch(() => undefined);
      await admin.close().catch(() => undefined);
    }
  });
});
