// A data dir written before the broker had a Raft log (topics in metadata.json) starts as a one-node cluster
// that imports those topics with their ids, so the partitions keep serving their records.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileMetadataStore } from '../../src/metadata/file-store.js';
import { startTestBroker } from './harness.js';

test('topics of a pre-Raft metadata.json are imported with their ids and keep their data', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'broker-legacy-'));
  try {
    // First life: a broker that writes a record, then its metadata is rewritten as the old file store kept it.
    let broker = await startTestBroker({ nodeId: 'solo' }, dataDir);
    const created = await fetch(`${broker.base}/topics/legacy`, {
      method: 'POST',
      body: '{"num_partitions":2}',
    });
    assert.equal(created.status, 201);
    const topicId = ((await created.json()) as { topic_id: string }).topic_id;
    const produced = await fetch(`${broker.base}/topics/legacy/produce`, {
      method: 'POST',
      body: JSON.stringify({ value: 'kept', partition: 1 }),
    });
    assert.equal(produced.status, 201);
    await broker.handle.close();
    await rm(join(dataDir, 'raft'), { recursive: true });
    const legacy = await FileMetadataStore.open(dataDir, 'solo');
    const request = {
      name: 'legacy',
      numPartitions: 2,
      replicationFactor: 1,
      rackAwareness: false,
      config: {
        retentionMs: -1,
        retentionBytes: -1,
        segmentBytes: 1 << 20,
        minInsyncReplicas: 1,
        cleanupPolicy: 'delete' as const,
        uncleanLeaderElection: false,
      },
      replicationFactorDefaulted: false,
      minInsyncDefaulted: false,
    };
    const made = await legacy.createTopic(request, Date.now());
    assert.equal(made.kind, 'created');
    // The old store gave the topic a fresh id: put back the one the partition directories carry.
    const { writeFileSync, readFileSync } = await import('node:fs');
    const file = join(dataDir, 'metadata.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace(made.topic.topicId, topicId));
    await legacy.close();

    broker = await startTestBroker({ nodeId: 'solo' }, dataDir);
    try {
      const got = await fetch(`${broker.base}/topics/legacy`);
      assert.equal(got.status, 200);
      assert.equal(((await got.json()) as { topic_id: string }).topic_id, topicId);
      const consumed = await fetch(`${broker.base}/topics/legacy/partitions/1/consume?offset=earliest`);
      const body = (await consumed.json()) as { messages: { value: string }[] };
      assert.deepEqual(
        body.messages.map((r) => r.value),
        ['kept'],
      );
      assert.ok(existsSync(`${file}.imported`) && !existsSync(file), 'the old file is set aside');
    } finally {
      await broker.handle.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
