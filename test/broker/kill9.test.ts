// Durability under SIGKILL with the default policy (fsync before acknowledging): producers run concurrently,
// the broker process is killed mid-flight, restarted on the same data directory, and every acknowledged record
// must be there exactly once, at its acknowledged offset, in order.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { call, tempDataDir } from './harness.js';
import { type BrokerProcess, killBroker, spawnBroker } from './process.js';

const started: BrokerProcess[] = [];
const dataDir = tempDataDir('broker-kill9-');
after(async () => {
  for (const broker of started) await killBroker(broker);
  rmSync(dataDir, { recursive: true, force: true });
});

interface Ack {
  readonly partition: number;
  readonly offset: number;
  readonly value: string;
}

test('every acknowledged record survives kill -9 exactly once, at its offset, in order', async (t) => {
  const first = await spawnBroker(['--data-dir', dataDir, '--threads', '2']);
  started.push(first);
  const created = await call(first.base, 'POST', '/topics/crash', { num_partitions: 3 });
  assert.equal(created.status, 201);

  const acks: Ack[] = [];
  let stop = false;
  const producers = Array.from({ length: 12 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const value = `w${w}-${i}`;
      try {
        const answer = await call(first.base, 'POST', '/topics/crash/produce', {
          key: `k${w}-${i % 7}`,
          value,
        });
        if (answer.status === 201)
          acks.push({ partition: answer.body.partition, offset: answer.body.offset, value });
      } catch {
        return; // the connection died with the broker: this record's outcome is unknown, which is allowed
      }
    }
  });
  // Let load build up, then kill while requests are in flight.
  const deadline = Date.now() + 10_000;
  while (acks.length < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await killBroker(first, 'SIGKILL');
  stop = true;
  await Promise.all(producers);
  assert.ok(acks.length >= 300, `only ${acks.length} records were acknowledged before the kill`);

  const second = await spawnBroker(['--data-dir', dataDir, '--threads', '2']);
  started.push(second);
  const seen = new Map<string, { partition: number; offset: number }>();
  for (let p = 0; p < 3; p++) {
    let offset = 0;
    for (;;) {
      const page = await call(
        second.base,
        'GET',
        `/topics/crash/partitions/${p}/consume?offset=${offset}&limit=1000`,
      );
      assert.equal(page.status, 200, JSON.stringify(page.body));
      for (const m of page.body.messages) {
        assert.equal(m.offset, offset, `partition ${p}: offsets must be contiguous`);
        assert.ok(!seen.has(m.value), `${m.value} appears twice`);
        seen.set(m.value, { partition: p, offset: m.offset });
        offset = m.offset + 1;
      }
      if (page.body.count === 0) break;
    }
  }
  for (const ack of acks) {
    const found = seen.get(ack.value);
    assert.ok(found !== undefined, `acknowledged ${ack.value} at ${ack.partition}/${ack.offset} was lost`);
    assert.deepEqual(found, { partition: ack.partition, offset: ack.offset }, `${ack.value} moved`);
  }
  // Per producer, acknowledged records keep their order within a partition.
  const byProducer = new Map<string, Ack[]>();
  for (const ack of acks) {
    const key = `${ack.value.split('-')[0]}/${ack.partition}`;
    byProducer.set(key, [...(byProducer.get(key) ?? []), ack]);
  }
  for (const list of byProducer.values()) {
    for (let i = 1; i < list.length; i++)
      assert.ok(list[i]!.offset > list[i - 1]!.offset, 'order within a partition');
  }
  t.diagnostic(`${acks.length} acknowledged before the kill, ${seen.size} present after restart`);
  const produced = await call(second.base, 'POST', '/topics/crash/produce', {
    value: 'after-restart',
    partition: 0,
  });
  assert.equal(produced.status, 201);
});
