// The routes the operators' tools added, against a real broker: altering a topic's config (and its retention
// taking effect on the open partitions), offsets by time, deleting a consumer group and resetting its offsets,
// each with its refusals of bad input (4xx naming the problem, nothing changed).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errors } from '../../src/core/errors.js';
import { call, startTestBroker, type TestBroker } from './harness.js';

let broker: TestBroker;
let base: string;

before(async () => {
  broker = await startTestBroker({ sessionTimeoutMs: 60_000 });
  base = broker.base;
});
after(async () => {
  await broker.stop();
});

describe('topic config changes', () => {
  test('retention_bytes altered on a live topic deletes its old segments within moments and shows in describe', async () => {
    const created = await call(base, 'POST', '/topics/shrinking', { config: { segment_bytes: 1024 * 1024 } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // Five records of 400 KB: a 1 MiB segment holds two, so they sit in three segments (2, 2, 1).
    const big = 'x'.repeat(400 * 1024);
    for (let i = 0; i < 5; i++) {
      const produced = await call(base, 'POST', '/topics/shrinking/produce', { value: big });
      assert.equal(produced.status, 201, JSON.stringify(produced.body));
    }
    const before = await call(base, 'GET', '/topics/shrinking/partitions/0');
    assert.equal(before.body.log_start_offset, 0);
    assert.equal(before.body.segment_count, 3);

    const altered = await call(base, 'POST', '/topics/shrinking/config', { retention_bytes: 0 });
    assert.equal(altered.status, 200, JSON.stringify(altered.body));
    assert.equal(altered.body.config.retention_bytes, 0);
    assert.equal(altered.body.config.segment_bytes, 1024 * 1024);

    // Every replica applies the change when the committed metadata reaches its worker (milliseconds here).
    let after = await call(base, 'GET', '/topics/shrinking/partitions/0');
    for (const deadline = Date.now() + 5000; after.body.log_start_offset !== 4 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = await call(base, 'GET', '/topics/shrinking/partitions/0');
    }
    assert.equal(after.body.log_start_offset, 4, 'the two sealed segments are gone, the active one stays');
    assert.equal(after.body.segment_count, 1);
    const described = await call(base, 'GET', '/topics/shrinking');
    assert.equal(described.body.config.retention_bytes, 0);
    const consumed = await call(base, 'GET', '/topics/shrinking/partitions/0/consume?offset=0');
    assert.equal(consumed.body.error_code, errors.offset_out_of_range.code);
  });

  test('segment_bytes altered on a live topic: segments rolled from then on take the new size', async () => {
    const created = await call(base, 'POST', '/topics/growing', { config: { segment_bytes: 1024 * 1024 } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const big = 'x'.repeat(400 * 1024);
    const produce = async () => {
      const produced = await call(base, 'POST', '/topics/growing/produce', { value: big });
      assert.equal(produced.status, 201, JSON.stringify(produced.body));
    };
    await produce();
    const altered = await call(base, 'POST', '/topics/growing/config', { segment_bytes: 2 * 1024 * 1024 });
    assert.equal(altered.status, 200, JSON.stringify(altered.body));
    assert.equal(altered.body.config.segment_bytes, 2 * 1024 * 1024);
    // The worker applies the change when the committed metadata reaches it; wait for describe to show it.
    for (let deadline = Date.now() + 5000; Date.now() < deadline; ) {
      const described = await call(base, 'GET', '/topics/growing');
      if (described.body.config.segment_bytes === 2 * 1024 * 1024) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Five records of 400 KB: at 1 MiB per segment they would take three segments; at 2 MiB they fit one.
    for (let i = 0; i < 4; i++) await produce();
    const partition = await call(base, 'GET', '/topics/growing/partitions/0');
    assert.equal(partition.body.log_end_offset, 5);
    assert.equal(partition.body.segment_count, 1, JSON.stringify(partition.body));
    for (const offset of [0, 4]) {
      const consumed = await call(base, 'GET', `/topics/growing/partitions/0/consume?offset=${offset}`);
      assert.equal(consumed.status, 200);
      assert.equal(consumed.body.messages[0].offset, offset);
    }
  });

  test('a config change the topic cannot take is refused by name and changes nothing', async () => {
    await call(base, 'POST', '/topics/steady', { config: { retention_ms: 5000 } });
    const cases: [unknown, RegExp][] = [
      [{ segment_bytes: 1000 }, /segment_bytes must be an integer between 1048576 and 1073741824/],
      [{ cleanup_policy: 'compact' }, /cleanup_policy cannot be altered/],
      [{ retention_msec: 1 }, /unknown config setting 'retention_msec'/],
      [{ retention_ms: -2 }, /retention_ms must be an integer >= -1/],
      [{ retention_ms: '1000' }, /retention_ms must be an integer/],
      [
        { min_insync_replicas: 2 },
        /min_insync_replicas must be an integer between 1 and the replication factor 1/,
      ],
      [{}, /nothing to change/],
      [[1], /JSON object/],
    ];
    for (const [body, pattern] of cases) {
      const answer = await call(base, 'POST', '/topics/steady/config', body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.equal(answer.body.error_code, errors.bad_request.code);
      assert.match(answer.body.message, pattern);
    }
    const notJson = await call(base, 'POST', '/topics/steady/config', '{"retention_ms":');
    assert.equal(notJson.status, 400);
    assert.equal((await call(base, 'GET', '/topics/steady')).body.config.retention_ms, 5000);
    const unknown = await call(base, 'POST', '/topics/nowhere/config', { retention_ms: 1 });
    assert.equal(unknown.body.error_code, errors.unknown_topic.code);
    const badName = await call(base, 'POST', '/topics/b%20d/config', { retention_ms: 1 });
    assert.equal(badName.body.error_code, errors.invalid_name.code);
    const wrapped = await call(base, 'POST', '/topics/steady/config', { config: { retention_ms: 7000 } });
    assert.equal(wrapped.status, 200);
    assert.equal(wrapped.body.config.retention_ms, 7000);
  });
});

describe('offsets by time', () => {
  test('the first offset at or after a time, null past the newest record, 400 for a bad time', async () => {
    await call(base, 'POST', '/topics/timed', {});
    for (const timestamp of [1000, 2000, 3000]) {
      await call(base, 'POST', '/topics/timed/produce', { value: `at-${timestamp}`, timestamp });
    }
    const at = async (q: string) => call(base, 'GET', `/topics/timed/partitions/0/offsets?${q}`);
    assert.equal((await at('timestamp=0')).body.offset, 0);
    assert.equal((await at('timestamp=1500')).body.offset, 1);
    assert.equal((await at('timestamp=2000')).body.offset, 1);
    const past = await at('timestamp=3001');
    assert.equal(past.status, 200);
    assert.equal(past.body.offset, null);
    assert.equal(past.body.high_watermark, 3);
    assert.equal(past.body.log_start_offset, 0);
    for (const q of ['timestamp=soon', 'timestamp=-1', '', 'timestamp=1.5']) {
      const answer = await at(q);
      assert.equal(answer.status, 400, q);
      assert.match(answer.body.message, /timestamp/);
    }
    const noPartition = await call(base, 'GET', '/topics/timed/partitions/7/offsets?timestamp=1');
    assert.equal(noPartition.body.error_code, errors.unknown_partition.code);
  });
});

describe('consumer group admin', () => {
  before(async () => {
    await call(base, 'POST', '/topics/orders', { num_partitions: 2 });
    await call(base, 'POST', '/topics/orders/records', {
      records: Array.from({ length: 20 }, (_, i) => ({
        value: `o${i}`,
        partition: i % 2,
        timestamp: 10_000 + i * 100,
      })),
    });
  });

  async function committed(group: string, partition: number): Promise<number | null> {
    const answer = await call(base, 'GET', `/consumer-groups/${group}/offsets/orders/${partition}`);
    return answer.status === 200 ? answer.body.offset : null;
  }

  test('reset-offsets moves an empty group to earliest, latest, an offset (clamped), a time and by a shift', async () => {
    await call(base, 'POST', '/consumer-groups/billing/offsets/orders/0', { offset: 5 });
    const reset = (body: Record<string, unknown>) =>
      call(base, 'POST', '/consumer-groups/billing/reset-offsets', { topic: 'orders', ...body });

    const earliest = await reset({ to: 'earliest' });
    assert.equal(earliest.status, 200, JSON.stringify(earliest.body));
    assert.deepEqual(earliest.body.offsets, [
      { partition: 0, previous_offset: 5, offset: 0 },
      { partition: 1, previous_offset: null, offset: 0 },
    ]);
    assert.equal(await committed('billing', 0), 0);
    assert.equal(await committed('billing', 1), 0);

    await reset({ to: 'latest' });
    assert.equal(await committed('billing', 0), 10);
    await reset({ to: 'offset', offset: 3, partitions: [1] });
    assert.equal(await committed('billing', 1), 3);
    assert.equal(await committed('billing', 0), 10, 'partitions not named keep their offsets');
    await reset({ to: 'offset', offset: 99 });
    assert.equal(await committed('billing', 0), 10, 'clamped to the high watermark');
    await reset({ to: 'shift', shift: -4 });
    assert.equal(await committed('billing', 0), 6);
    await reset({ to: 'shift', shift: -100 });
    assert.equal(await committed('billing', 0), 0, 'clamped to the log start');
    // Partition 0 holds records 0, 2, 4, ... with timestamps 10000, 10200, ...: 10300 maps to offset 2.
    await reset({ to: 'timestamp', timestamp: 10_300 });
    assert.equal(await committed('billing', 0), 2);
    await reset({ to: 'timestamp', timestamp: 99_999 });
    assert.equal(await committed('billing', 0), 10, 'a time past every record moves to the high watermark');

    const dry = await reset({ to: 'earliest', dry_run: true });
    assert.equal(dry.body.dry_run, true);
    assert.equal(dry.body.offsets[0].offset, 0);
    assert.equal(await committed('billing', 0), 10, 'a dry run changes nothing');
  });

  test('reset-offsets refuses a group with members, and bad bodies, by name', async () => {
    await call(base, 'POST', '/consumer-groups/live/register', { consumer_id: 'c1', topics: ['orders'] });
    const busy = await call(base, 'POST', '/consumer-groups/live/reset-offsets', {
      topic: 'orders',
      to: 'earliest',
    });
    assert.equal(busy.status, 409);
    assert.match(busy.body.message, /1 active member/);
    const cases: [unknown, number, RegExp][] = [
      [{ topic: 'orders', to: 'yesterday' }, 400, /to must be one of/],
      [{ topic: 'orders', to: 'offset' }, 400, /needs 'offset'/],
      [{ topic: 'orders', to: 'offset', offset: -1 }, 400, /needs 'offset'/],
      [{ topic: 'orders', to: 'earliest', offset: 1 }, 400, /'offset' goes only with to=offset/],
      [{ topic: 'orders', to: 'earliest', partitions: [] }, 400, /partitions must be/],
      [{ topic: 'orders', to: 'earliest', partitions: [5] }, 404, /no partition 5/],
      [{ topic: 'orders', to: 'earliest', force: true }, 400, /unknown field 'force'/],
      [{ topic: 'nowhere', to: 'earliest' }, 404, /does not exist/],
      [{ to: 'earliest' }, 400, /topic must be/],
    ];
    for (const [body, status, pattern] of cases) {
      const answer = await call(base, 'POST', '/consumer-groups/idle/reset-offsets', body);
      assert.equal(answer.status, status, JSON.stringify(body));
      assert.match(answer.body.message, pattern);
    }
    assert.equal((await call(base, 'GET', '/consumer-groups/idle')).status, 404, 'nothing was created');
  });

  test('delete removes an empty group with its offsets; a group with members or none at all is refused', async () => {
    await call(base, 'POST', '/consumer-groups/old/offsets/orders/1', { offset: 4 });
    const deleted = await call(base, 'DELETE', '/consumer-groups/old');
    assert.equal(deleted.status, 200);
    assert.deepEqual(deleted.body, { group: 'old', deleted: true });
    assert.equal(await committed('old', 1), null);
    assert.equal(
      (await call(base, 'DELETE', '/consumer-groups/old')).body.error_code,
      errors.unknown_group.code,
    );
    await call(base, 'POST', '/consumer-groups/busy/register', { consumer_id: 'c1', topics: ['orders'] });
    const busy = await call(base, 'DELETE', '/consumer-groups/busy');
    assert.equal(busy.status, 409);
    assert.equal((await call(base, 'GET', '/consumer-groups/busy')).status, 200);
    assert.equal(
      (await call(base, 'DELETE', '/consumer-groups/b%20d')).body.error_code,
      errors.invalid_name.code,
    );
  });
});
