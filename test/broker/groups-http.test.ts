// Consumer groups over HTTP against a real broker: joins, rebalances with hand-over, session-timeout eviction,
// fenced commits, offset fetches, describe with lag, and committed offsets surviving a restart.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errors } from '../../src/core/errors.js';
import { call, startTestBroker, type TestBroker } from './harness.js';

let broker: TestBroker;
let base: string;

before(async () => {
  broker = await startTestBroker({ sessionTimeoutMs: 10_000 });
  base = broker.base;
  await call(base, 'POST', '/topics/jobs', { num_partitions: 4 });
  await call(base, 'POST', '/topics/jobs/records', {
    records: Array.from({ length: 40 }, (_, i) => ({ value: `job-${i}`, partition: i % 4 })),
  });
});
after(async () => {
  await broker.stop();
});

function owned(assignments: Record<string, number[]>): number[] {
  return [...(assignments.jobs ?? [])].sort();
}

async function waitFor<T>(what: string, probe: () => Promise<T | null>, deadlineMs = 10_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('consumer groups', () => {
  test('a second member gets partitions only after the first released them, and never two owners at once', async () => {
    const first = await call(base, 'POST', '/consumer-groups/g1/register', {
      consumer_id: 'c1',
      topics: ['jobs'],
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.group, 'g1');
    assert.equal(first.body.member_id, 'c1');
    assert.deepEqual(owned(first.body.assignments), [0, 1, 2, 3]);
    assert.equal(first.body.session_timeout_ms, 10_000);

    const second = await call(base, 'POST', '/consumer-groups/g1/register', {
      consumer_id: 'c2',
      topics: ['jobs'],
    });
    assert.equal(second.status, 200);
    // c1 still owns everything until it hears of the rebalance, so c2 starts with nothing.
    assert.deepEqual(owned(second.body.assignments), []);
    const c1 = await call(base, 'POST', '/consumer-groups/g1/heartbeat', { consumer_id: 'c1' });
    assert.equal(c1.body.rebalance, true);
    assert.equal(owned(c1.body.assignments).length, 2);
    const c2 = await call(base, 'POST', '/consumer-groups/g1/heartbeat', { consumer_id: 'c2' });
    assert.equal(owned(c2.body.assignments).length, 2);
    const union = [...owned(c1.body.assignments), ...owned(c2.body.assignments)].sort();
    assert.deepEqual(union, [0, 1, 2, 3]);
  });

  test('commits are fenced by generation and membership, and fetched back', async () => {
    const c1 = await call(base, 'POST', '/consumer-groups/g1/heartbeat', { consumer_id: 'c1' });
    const partition = owned(c1.body.assignments)[0]!;
    const generation = c1.body.generation;
    const ok = await call(base, 'POST', `/consumer-groups/g1/topics/jobs/partitions/${partition}/commit`, {
      offset: 5,
      consumer_id: 'c1',
      generation,
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const fetched = await call(base, 'GET', `/consumer-groups/g1/offsets/jobs/${partition}`);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.body.offset, 5);

    const stale = await call(base, 'POST', `/consumer-groups/g1/topics/jobs/partitions/${partition}/commit`, {
      offset: 6,
      consumer_id: 'c1',
      generation: generation - 1,
    });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error_code, errors.conflict.code);
    const c2 = await call(base, 'POST', '/consumer-groups/g1/heartbeat', { consumer_id: 'c2' });
    const notMine = owned(c2.body.assignments)[0]!;
    const foreign = await call(base, 'POST', `/consumer-groups/g1/topics/jobs/partitions/${notMine}/commit`, {
      offset: 1,
      consumer_id: 'c1',
      generation,
    });
    assert.equal(foreign.status, 409);
    const anonymous = await call(base, 'POST', `/consumer-groups/g1/offsets/jobs/${partition}`, {
      offset: 7,
    });
    assert.equal(
      anonymous.status,
      409,
      'a commit without member identity is refused while the group has members',
    );
    assert.equal((await call(base, 'GET', `/consumer-groups/g1/offsets/jobs/${partition}`)).body.offset, 5);
  });

  test('nothing committed is a 404, not offset 0', async () => {
    const answer = await call(base, 'GET', '/consumer-groups/nobody/offsets/jobs/0');
    assert.equal(answer.status, 404);
    assert.equal(answer.body.error_code, errors.unknown_group.code);
  });

  test('the seed offsets route commits for a group without members', async () => {
    const committed = await call(base, 'POST', '/consumer-groups/standalone/offsets/jobs/2', { offset: 9 });
    assert.equal(committed.status, 200, JSON.stringify(committed.body));
    assert.equal((await call(base, 'GET', '/consumer-groups/standalone/offsets/jobs/2')).body.offset, 9);
    const all = await call(base, 'GET', '/consumer-groups/standalone/offsets/jobs');
    assert.deepEqual(all.body.offsets, [{ partition: 2, offset: 9, metadata: '', lag: 1 }]);
  });

  test('describe shows members, generation, assignment and lag; list shows the groups', async () => {
    const d = await call(base, 'GET', '/consumer-groups/g1');
    assert.equal(d.status, 200);
    assert.equal(d.body.members.length, 2);
    assert.ok(d.body.generation >= 2);
    const offset = d.body.offsets.find((o: any) => o.offset === 5);
    assert.equal(offset.log_end_offset, 10);
    assert.equal(offset.lag, 5);
    const list = await call(base, 'GET', '/consumer-groups');
    assert.ok(list.body.groups.some((g: any) => g.group === 'g1' && g.members === 2));
  });

  test('a member that leaves hands its partitions to the others', async () => {
    const left = await call(base, 'POST', '/consumer-groups/g1/leave', { consumer_id: 'c2' });
    assert.equal(left.status, 200);
    const c1 = await call(base, 'POST', '/consumer-groups/g1/heartbeat', { consumer_id: 'c1' });
    assert.deepEqual(owned(c1.body.assignments), [0, 1, 2, 3]);
    const gone = await call(base, 'POST', '/consumer-groups/g1/heartbeat', { consumer_id: 'c2' });
    assert.equal(gone.status, 404);
  });

  test('a member that stops heartbeating is evicted after its session timeout', async () => {
    await call(base, 'POST', '/consumer-groups/g2/register', {
      consumer_id: 'live',
      topics: ['jobs'],
      session_timeout_ms: 1000,
    });
    await call(base, 'POST', '/consumer-groups/g2/register', {
      consumer_id: 'dies',
      topics: ['jobs'],
      session_timeout_ms: 1000,
    });
    await call(base, 'POST', '/consumer-groups/g2/heartbeat', { consumer_id: 'live' });
    await call(base, 'POST', '/consumer-groups/g2/heartbeat', { consumer_id: 'dies' });
    const startedMs = Date.now();
    const all = await waitFor('eviction', async () => {
      const hb = await call(base, 'POST', '/consumer-groups/g2/heartbeat', { consumer_id: 'live' });
      return owned(hb.body.assignments).length === 4 ? hb : null;
    });
    assert.ok(Date.now() - startedMs >= 500, 'eviction waits for the session timeout');
    assert.deepEqual(owned(all.body.assignments), [0, 1, 2, 3]);
  });

  test('bad group requests are 4xx errors naming the problem', async () => {
    const cases: [string, string, unknown, number, string][] = [
      [
        'POST',
        '/consumer-groups/bad%20name/register',
        { consumer_id: 'x', topics: ['jobs'] },
        errors.invalid_name.code,
        'group name',
      ],
      ['POST', '/consumer-groups/g3/register', { topics: ['jobs'] }, errors.bad_request.code, 'consumer_id'],
      [
        'POST',
        '/consumer-groups/g3/register',
        { consumer_id: 'x', topics: 'jobs' },
        errors.bad_request.code,
        'topics',
      ],
      [
        'POST',
        '/consumer-groups/g3/register',
        { consumer_id: 'x', topics: ['nope'] },
        errors.unknown_topic.code,
        'nope',
      ],
      ['POST', '/consumer-groups/g3/register', '{', errors.bad_request.code, 'JSON'],
      ['POST', '/consumer-groups/g3/heartbeat', { consumer_id: 'ghost' }, errors.unknown_group.code, 'group'],
      ['POST', '/consumer-groups/g3/offsets/jobs/0', { offset: -1 }, errors.bad_request.code, 'offset'],
      [
        'POST',
        '/consumer-groups/g3/offsets/jobs/0',
        { offset: 999 },
        errors.offset_out_of_range.code,
        'high watermark',
      ],
      ['POST', '/consumer-groups/g3/offsets/jobs/abc', { offset: 1 }, errors.bad_parameter.code, 'partition'],
      [
        'POST',
        '/consumer-groups/g3/offsets/jobs/9',
        { offset: 1 },
        errors.unknown_partition.code,
        'partition 9',
      ],
      ['GET', '/consumer-groups/never-seen', undefined, errors.unknown_group.code, 'does not exist'],
    ];
    for (const [method, path, body, code, mention] of cases) {
      const answer = await call(base, method, path, body as string);
      assert.equal(answer.body.error_code, code, `${method} ${path}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.body.message, new RegExp(mention));
    }
  });

  test('committed offsets survive a restart', async () => {
    broker = await broker.restart();
    base = broker.base;
    assert.equal((await call(base, 'GET', '/consumer-groups/standalone/offsets/jobs/2')).body.offset, 9);
    const d = await call(base, 'GET', '/consumer-groups/g1');
    assert.ok(d.body.offsets.some((o: any) => o.offset === 5));
  });
});
