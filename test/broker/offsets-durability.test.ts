// Acknowledged consumer-offset commits are durable: a commit answered 200 is still there after the broker
// process is killed with SIGKILL (nothing flushed on the way out) or stopped with SIGTERM, whether it came from
// a standalone client or from a registered member of a group.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { call, tempDataDir } from './harness.js';
import { type BrokerProcess, killBroker, spawnBroker } from './process.js';

const started: BrokerProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const broker of started) await killBroker(broker);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function startWithRecords(signal: NodeJS.Signals, what: string): Promise<[BrokerProcess, string]> {
  const dataDir = tempDataDir(`broker-offsets-${what}-${signal}-`);
  dirs.push(dataDir);
  const broker = await spawnBroker(['--data-dir', dataDir, '--threads', '1']);
  started.push(broker);
  assert.equal((await call(broker.base, 'POST', '/topics/t', { num_partitions: 2 })).status, 201);
  const records = Array.from({ length: 30 }, (_, i) => ({ value: `v${i}`, partition: 1 }));
  assert.equal((await call(broker.base, 'POST', '/topics/t/records', { records })).status, 200);
  return [broker, dataDir];
}

async function restartAndFetch(broker: BrokerProcess, dataDir: string, signal: NodeJS.Signals, path: string) {
  await killBroker(broker, signal);
  const second = await spawnBroker(['--data-dir', dataDir, '--threads', '1']);
  started.push(second);
  const fetched = await call(second.base, 'GET', path);
  await killBroker(second, 'SIGTERM');
  return fetched;
}

/** A standalone client's commit (no member), with nothing else happening before the stop. */
async function standaloneCommit(signal: NodeJS.Signals): Promise<void> {
  const [broker, dataDir] = await startWithRecords(signal, 'standalone');
  const answer = await call(broker.base, 'POST', '/consumer-groups/g/offsets/t/1', { offset: 22 });
  assert.equal(answer.status, 200);
  assert.equal(answer.body.committed, true);
  const fetched = await restartAndFetch(broker, dataDir, signal, '/consumer-groups/g/offsets/t/1');
  assert.equal(
    fetched.status,
    200,
    `standalone commit lost after ${signal}: ${JSON.stringify(fetched.body)}`,
  );
  assert.equal(fetched.body.offset, 22);
}

/** A registered member's commit; heartbeats in between change nothing that needs a write. */
async function memberCommit(signal: NodeJS.Signals): Promise<void> {
  const [broker, dataDir] = await startWithRecords(signal, 'member');
  const joined = await call(broker.base, 'POST', '/consumer-groups/m/register', {
    consumer_id: 'c1',
    topics: ['t'],
  });
  assert.equal(joined.status, 200);
  for (let i = 0; i < 3; i++) {
    const beat = await call(broker.base, 'POST', '/consumer-groups/m/heartbeat', { consumer_id: 'c1' });
    assert.equal(beat.status, 200);
  }
  const answer = await call(broker.base, 'POST', '/consumer-groups/m/topics/t/partitions/1/commit', {
    offset: 17,
    consumer_id: 'c1',
    generation: joined.body.generation,
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const fetched = await restartAndFetch(broker, dataDir, signal, '/consumer-groups/m/offsets/t/1');
  assert.equal(fetched.status, 200, `member commit lost after ${signal}: ${JSON.stringify(fetched.body)}`);
  assert.equal(fetched.body.offset, 17);
}

test('a standalone offset commit answered 200 survives kill -9', async () => {
  await standaloneCommit('SIGKILL');
});

test('a standalone offset commit answered 200 survives SIGTERM', async () => {
  await standaloneCommit('SIGTERM');
});

test("a member's offset commit answered 200 survives kill -9", async () => {
  await memberCommit('SIGKILL');
});
