// Upgrade: a data dir whose consumer offsets are still in groups.json (from before offsets moved into the
// metadata log) has them imported at start, through the coordinator, and the file renamed to
// groups.json.imported; an offset the log already holds for the same group and partition is newer and kept;
// an offset of a topic deleted since is skipped. Real broker processes, killed by PID in `after`.
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { call, tempDataDir } from './harness.js';
import { type BrokerProcess, killBroker, spawnBroker } from './process.js';

const started: BrokerProcess[] = [];
const dataDir = tempDataDir('broker-groups-import-');
after(async () => {
  for (const broker of started) await killBroker(broker);
  rmSync(dataDir, { recursive: true, force: true });
});

const offset = (topic: string, partition: number, value: number) => ({
  topic,
  partition,
  offset: value,
  metadata: 'from-file',
  commitTimestampMs: 1,
});

test('groups.json is imported into the metadata log once, keeping newer offsets', async () => {
  const first = await spawnBroker(['--data-dir', dataDir, '--threads', '1']);
  started.push(first);
  assert.equal((await call(first.base, 'POST', '/topics/t', { num_partitions: 2 })).status, 201);
  const records = Array.from({ length: 20 }, (_, i) => ({ value: `v${i}`, partition: i % 2 }));
  assert.equal((await call(first.base, 'POST', '/topics/t/records', { records })).status, 200);
  // Committed in the log before the upgrade's file is read: newer than the file's.
  assert.equal(
    (await call(first.base, 'POST', '/consumer-groups/both/offsets/t/0', { offset: 9 })).status,
    200,
  );
  await killBroker(first, 'SIGTERM');

  writeFileSync(
    join(dataDir, 'groups.json'),
    JSON.stringify({
      version: 1,
      clockMs: 1,
      topics: [{ topic: 't', partitionCount: 2 }],
      groups: [
        {
          groupId: 'legacy',
          generation: 3,
          assignor: 'range',
          members: [],
          offsets: [offset('t', 0, 7), offset('t', 1, 4), offset('gone', 0, 5)],
        },
        { groupId: 'both', generation: 1, assignor: 'range', members: [], offsets: [offset('t', 0, 3)] },
      ],
    }),
  );
  const second = await spawnBroker(['--data-dir', dataDir, '--threads', '1']);
  started.push(second);
  const deadline = Date.now() + 10_000;
  while (existsSync(join(dataDir, 'groups.json')) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(existsSync(join(dataDir, 'groups.json.imported')), second.output());
  assert.equal(existsSync(join(dataDir, 'groups.json')), false);
  const legacy0 = await call(second.base, 'GET', '/consumer-groups/legacy/offsets/t/0');
  assert.equal(legacy0.status, 200, JSON.stringify(legacy0.body));
  assert.equal(legacy0.body.offset, 7);
  assert.equal(legacy0.body.metadata, 'from-file');
  assert.equal((await call(second.base, 'GET', '/consumer-groups/legacy/offsets/t/1')).body.offset, 4);
  assert.equal((await call(second.base, 'GET', '/consumer-groups/both/offsets/t/0')).body.offset, 9);
  await killBroker(second, 'SIGKILL');

  // Imported means in the log: the offsets survive a kill -9, and nothing is imported twice.
  const third = await spawnBroker(['--data-dir', dataDir, '--threads', '1']);
  started.push(third);
  assert.equal((await call(third.base, 'GET', '/consumer-groups/legacy/offsets/t/0')).body.offset, 7);
  assert.equal((await call(third.base, 'GET', '/consumer-groups/both/offsets/t/0')).body.offset, 9);
});
