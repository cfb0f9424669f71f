// Offsets retention (Kafka's offsets.retention.minutes, here --offsets-retention-ms): a group with no members
// loses its committed offsets once its newest commit is older than the retention, durably (they stay gone
// after a restart); a group with a member keeps them however old they are, and so does a group with a recent
// commit. The unit below checks the pure rule; the broker test runs it end to end with a 1.5 s retention.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { GroupRegistry } from '../../src/core/groups/registry.js';
import { call, startTestBroker, type TestBroker } from './harness.js';

test('expired groups: empty and with a newest commit older than the retention', () => {
  const registry = new GroupRegistry();
  registry.setTopicPartitions('t', 2, 0);
  assert.equal(registry.commit('old', undefined, undefined, 't', 0, 5, 1_000).kind, 'ok');
  assert.equal(registry.commit('recent', undefined, undefined, 't', 0, 5, 1_000).kind, 'ok');
  assert.equal(registry.commit('recent', undefined, undefined, 't', 1, 5, 9_000).kind, 'ok');
  assert.equal(registry.join('busy', 'm1', ['t'], 1_000).kind, 'ok');
  assert.equal(registry.heartbeat('busy', 'm1', 1_000).kind, 'ok');
  assert.deepEqual(registry.expiredGroups(10_000, 5_000), ['old']);
  assert.deepEqual(registry.expiredGroups(10_000, -1), []);
  assert.deepEqual(registry.expiredGroups(20_000, 5_000), ['old', 'recent']);
});

let broker: TestBroker | undefined;
after(async () => {
  await broker?.stop();
});

test('an empty group loses its offsets after --offsets-retention-ms, a group with a member keeps them', async () => {
  broker = await startTestBroker({ offsetsRetentionMs: 1_500, sessionTimeoutMs: 60_000 });
  const base = broker.base;
  assert.equal((await call(base, 'POST', '/topics/t', { num_partitions: 1 })).status, 201);
  const records = Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` }));
  assert.equal((await call(base, 'POST', '/topics/t/records', { records })).status, 200);
  assert.equal((await call(base, 'POST', '/consumer-groups/idle/offsets/t/0', { offset: 4 })).status, 200);
  const joined = await call(base, 'POST', '/consumer-groups/live/register', {
    consumer_id: 'c',
    topics: ['t'],
  });
  assert.equal(joined.status, 200);
  const committed = await call(base, 'POST', '/consumer-groups/live/offsets/t/0', {
    offset: 6,
    consumer_id: 'c',
    generation: joined.body.generation,
  });
  assert.equal(committed.status, 200, JSON.stringify(committed.body));

  const deadline = Date.now() + 8_000;
  for (;;) {
    await call(base, 'POST', '/consumer-groups/live/heartbeat', { consumer_id: 'c' });
    const idle = await call(base, 'GET', '/consumer-groups/idle/offsets/t/0');
    if (idle.status === 404) break;
    assert.ok(Date.now() < deadline, 'the idle group kept its offsets past the retention');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.equal((await call(base, 'GET', '/consumer-groups/live/offsets/t/0')).body.offset, 6);
  broker = await broker.restart();
  assert.equal((await call(broker.base, 'GET', '/consumer-groups/idle/offsets/t/0')).status, 404);
  const groups = (await call(broker.base, 'GET', '/consumer-groups')).body.groups as { group: string }[];
  assert.ok(!groups.some((g) => g.group === 'idle'), JSON.stringify(groups));
});
