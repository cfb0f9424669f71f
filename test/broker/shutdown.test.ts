// Graceful shutdown through the CLI: SIGTERM stops accepting, lets the rings drain, closes every log and exits
// 0, and everything acknowledged before the signal is served after a restart. (That the close fsyncs is proven
// by the storage tests on a simulated disk; a real process exit keeps the page cache, so it cannot show here.)
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { call, tempDataDir } from './harness.js';
import { type BrokerProcess, killBroker, spawnBroker } from './process.js';

const started: BrokerProcess[] = [];
const dataDir = tempDataDir('broker-shutdown-');
after(async () => {
  for (const broker of started) await killBroker(broker);
  rmSync(dataDir, { recursive: true, force: true });
});

test('SIGTERM drains the rings and exits 0, and the acknowledged records are there after a restart', async () => {
  const args = ['--data-dir', dataDir, '--threads', '2', '--wal-sync-interval', '10s'];
  const first = await spawnBroker(args);
  started.push(first);
  assert.equal((await call(first.base, 'POST', '/topics/calm', { num_partitions: 2 })).status, 201);
  const values = Array.from({ length: 50 }, (_, i) => `calm-${i}`);
  await Promise.all(
    values.map((value, i) => call(first.base, 'POST', '/topics/calm/produce', { value, partition: i % 2 })),
  );
  const exited = once(first.child, 'exit');
  process.kill(first.child.pid!, 'SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0, first.output());

  const second = await spawnBroker(args);
  started.push(second);
  const found: string[] = [];
  for (const p of [0, 1]) {
    const page = await call(second.base, 'GET', `/topics/calm/partitions/${p}/consume?offset=0&limit=1000`);
    for (const m of page.body.messages) found.push(m.value);
  }
  assert.deepEqual(found.sort(), [...values].sort());
});
