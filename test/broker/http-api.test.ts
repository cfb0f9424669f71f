// Integration tests of the HTTP API against a real broker: every route, and every kind of bad input answered
// with a 4xx JSON error that names the problem and writes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errors } from '../../src/core/errors.js';
import { partitionForKey } from '../../src/core/partitioner.js';
import { call, startTestBroker, type TestBroker } from './harness.js';

let broker: TestBroker;
let base: string;

before(async () => {
  broker = await startTestBroker();
  base = broker.base;
});
after(async () => {
  await broker.stop();
});

function assertError(answer: { status: number; body: any }, code: number, mention?: string | RegExp): void {
  assert.equal(answer.status, Math.floor(code / 100), JSON.stringify(answer.body));
  assert.equal(answer.body.error_code, code, JSON.stringify(answer.body));
  assert.equal(typeof answer.body.message, 'string');
  if (mention !== undefined)
    assert.match(answer.body.message, typeof mention === 'string' ? new RegExp(mention) : mention);
}

async function highWatermarks(topic: string, partitions: number): Promise<number[]> {
  const out: number[] = [];
  for (let p = 0; p < partitions; p++) {
    const info = await call(base, 'GET', `/topics/${topic}/partitions/${p}`);
    assert.equal(info.status, 200);
    out.push(info.body.high_watermark);
  }
  return out;
}

describe('admin routes', () => {
  test('health answers 200 while serving', async () => {
    const answer = await call(base, 'GET', '/health');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'ok');
  });

  test('cluster status names this node as the only member and leader', async () => {
    const answer = await call(base, 'GET', '/cluster/status');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.members.length, 1);
    assert.equal(answer.body.raft.leader_id, answer.body.node_id);
    assert.equal(answer.body.members[0].state, 'alive');
  });

  test('the assignment plan lists every partition on this node, with nothing to move', async () => {
    await call(base, 'POST', '/topics/planned', { num_partitions: 2 });
    const plan = await call(base, 'GET', '/admin/assignment-plan');
    assert.equal(plan.status, 200);
    const planned = plan.body.current.filter((p: any) => p.topic === 'planned');
    assert.deepEqual(
      planned.map((p: any) => p.partition),
      [0, 1],
    );
    assert.deepEqual(planned[0].replicas, [plan.body.brokers[0]]);
    assert.deepEqual(plan.body.moves, []);
    assert.deepEqual(plan.body.proposed, [], 'one broker: nothing to even out');
  });

  test('an unknown path is a 404 and a known path with the wrong method is a 405', async () => {
    assertError(await call(base, 'GET', '/nope'), errors.route_not_found.code, 'GET /nope');
    assertError(await call(base, 'PUT', '/topics'), errors.method_not_allowed.code, 'GET, POST');
  });
});

describe('topics', () => {
  test('a topic is created with 201, re-created with the same settings with 200, and with others refused with 409', async () => {
    const created = await call(base, 'POST', '/topics/orders', { num_partitions: 3 });
    assert.equal(created.status, 201);
    assert.equal(created.body.topic, 'orders');
    assert.equal(created.body.num_partitions, 3);
    assert.equal(created.body.partitions.length, 3);
    assert.deepEqual(created.body.partitions[0].replicas, created.body.partitions[0].isr);
    const again = await call(base, 'POST', '/topics/orders', { num_partitions: 3 });
    assert.equal(again.status, 200);
    assertError(
      await call(base, 'POST', '/topics/orders', { num_partitions: 4 }),
      errors.topic_exists.code,
      'other settings',
    );
  });

  test('POST /topics?name= creates a topic for clients of the seed', async () => {
    const created = await call(base, 'POST', '/topics?name=seed-style', {});
    assert.equal(created.status, 201);
    assert.equal(created.body.topic, 'seed-style');
  });

  test("the seed README's create body (rack_awareness on a broker without --rack) creates the topic", async () => {
    const created = await call(base, 'POST', '/topics/seed-racks', {
      num_partitions: 3,
      replication_factor: 1,
      rack_awareness: true,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.partitions.length, 3);
  });

  test('list and get show the topics with partitions and offsets', async () => {
    await call(base, 'POST', '/topics/listed', {});
    const list = await call(base, 'GET', '/topics');
    assert.equal(list.status, 200);
    assert.ok(list.body.topics.includes('listed'));
    assert.equal(list.body.count, list.body.topics.length);
    const one = await call(base, 'GET', '/topics/listed');
    assert.equal(one.status, 200);
    assert.equal(one.body.partitions[0].log_start_offset, 0);
    assert.equal(one.body.partitions[0].high_watermark, 0);
  });

  test('bad topic names are refused with 40002 and nothing is created', async () => {
    for (const bad of ['has%20space', 'a'.repeat(250), 'caf%C3%A9', 'semi%3Bcolon']) {
      assertError(await call(base, 'POST', `/topics/${bad}`, {}), errors.invalid_name.code);
    }
    // '.' and '..' cannot travel in a path (URLs normalise them away), so they are sent as ?name=.
    assertError(await call(base, 'POST', '/topics?name=', {}), errors.invalid_name.code, 'empty');
    assertError(await call(base, 'POST', '/topics?name=.', {}), errors.invalid_name.code, "'.'");
    assertError(await call(base, 'POST', '/topics?name=..', {}), errors.invalid_name.code, "'..'");
    assertError(await call(base, 'POST', '/topics?name=a%2Fb', {}), errors.invalid_name.code);
    const list = await call(base, 'GET', '/topics');
    assert.ok(!list.body.topics.some((t: string) => t.includes(' ') || t === '.' || t === '..'));
  });

  test('bad topic bodies name the field at fault', async () => {
    assertError(
      await call(base, 'POST', '/topics/t-bad', '{nope'),
      errors.bad_request.code,
      'not valid JSON',
    );
    assertError(
      await call(base, 'POST', '/topics/t-bad', { num_partitions: 0 }),
      errors.bad_request.code,
      'num_partitions',
    );
    assertError(
      await call(base, 'POST', '/topics/t-bad', { num_partitions: 'x' }),
      errors.bad_request.code,
      'num_partitions',
    );
    assertError(
      await call(base, 'POST', '/topics/t-bad', { partitions: 3 }),
      errors.bad_request.code,
      "'partitions'",
    );
    assertError(
      await call(base, 'POST', '/topics/t-bad', { replication_factor: 2 }),
      errors.bad_request.code,
      'replication_factor',
    );
    assertError(
      await call(base, 'POST', '/topics/t-bad', { config: { retention_ms: -5 } }),
      errors.bad_request.code,
      'retention_ms',
    );
    assertError(
      await call(base, 'POST', '/topics/t-bad', { config: { cleanup_policy: 'compact' } }),
      errors.bad_request.code,
      'compact',
    );
    assertError(
      await call(base, 'POST', '/topics/t-bad', {}, { 'content-type': 'application/xml' }),
      errors.unsupported_media_type.code,
    );
    assertError(await call(base, 'GET', '/topics/t-bad'), errors.unknown_topic.code);
  });

  test('a deleted topic is gone with its data, and a new topic of the same name starts empty', async () => {
    await call(base, 'POST', '/topics/doomed', {});
    const produced = await call(base, 'POST', '/topics/doomed/produce', { value: 'old' });
    assert.equal(produced.status, 201);
    const deleted = await call(base, 'DELETE', '/topics/doomed');
    assert.equal(deleted.status, 200);
    assertError(await call(base, 'GET', '/topics/doomed'), errors.unknown_topic.code);
    assertError(await call(base, 'DELETE', '/topics/doomed'), errors.unknown_topic.code);
    await call(base, 'POST', '/topics/doomed', {});
    const consumed = await call(base, 'GET', '/topics/doomed/partitions/0/consume?offset=0');
    assert.equal(consumed.status, 200);
    assert.equal(consumed.body.count, 0);
    assert.equal(consumed.body.high_watermark, 0);
  });
});

describe('produce and consume', () => {
  before(async () => {
    await call(base, 'POST', '/topics/events', { num_partitions: 4 });
  });

  test('produced records come back in order with key, value, headers and timestamp', async () => {
    const offsets: number[] = [];
    for (let i = 0; i < 5; i++) {
      const answer = await call(base, 'POST', '/topics/events/produce', {
        value: `v${i}`,
        partition: 1,
        headers: { source: 'web', n: String(i) },
      });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      assert.equal(answer.body.partition, 1);
      assert.equal(typeof answer.body.timestamp, 'number');
      offsets.push(answer.body.offset);
    }
    assert.deepEqual(offsets, [0, 1, 2, 3, 4]);
    const consumed = await call(base, 'GET', '/topics/events/partitions/1/consume?offset=0&limit=10');
    assert.equal(consumed.status, 200);
    assert.equal(consumed.body.count, 5);
    assert.equal(consumed.body.next_offset, 5);
    assert.equal(consumed.body.high_watermark, 5);
    const m = consumed.body.messages[2];
    assert.deepEqual(
      {
        topic: m.topic,
        partition: m.partition,
        offset: m.offset,
        key: m.key,
        value: m.value,
        headers: m.headers,
      },
      {
        topic: 'events',
        partition: 1,
        offset: 2,
        key: null,
        value: 'v2',
        headers: { source: 'web', n: '2' },
      },
    );
    assert.ok(Math.abs(m.timestamp - Date.now()) < 60_000);
    const page = await call(base, 'GET', '/topics/events/partitions/1/consume?offset=3&limit=1');
    assert.deepEqual(
      page.body.messages.map((x: any) => x.offset),
      [3],
    );
    assert.equal(page.body.next_offset, 4);
  });

  test("a keyed record lands on the partition Kafka's murmur2 partitioner picks", async () => {
    for (const key of ['user-123', 'alpha', 'β-key', '']) {
      const answer = await call(base, 'POST', '/topics/events/produce', { key, value: 'x' });
      assert.equal(answer.status, 201);
      assert.equal(answer.body.partition, partitionForKey(Buffer.from(key, 'utf8'), 4), key);
    }
  });

  test('keyless records spread over every partition', async () => {
    const seen = new Set<number>();
    for (let i = 0; i < 40 && seen.size < 4; i++) {
      const answer = await call(base, 'POST', '/topics/events/records', {
        records: Array.from({ length: 10 }, (_, k) => ({ value: `spread-${i}-${k}` })),
      });
      assert.equal(answer.status, 200);
      for (const o of answer.body.offsets) seen.add(o.partition);
    }
    assert.equal(seen.size, 4);
  });

  test('base64 values round-trip as bytes', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const answer = await call(base, 'POST', '/topics/events/produce', {
      value: bytes.toString('base64'),
      value_format: 'base64',
      partition: 2,
    });
    assert.equal(answer.status, 201);
    const consumed = await call(
      base,
      'GET',
      `/topics/events/partitions/2/consume?offset=${answer.body.offset}&limit=1&value_format=base64`,
    );
    assert.equal(consumed.body.messages[0].value, bytes.toString('base64'));
  });

  test('batch produce answers offsets in request order, grouped per partition', async () => {
    const answer = await call(base, 'POST', '/topics/events/records', {
      records: [
        { value: 'a', partition: 3 },
        { value: 'b', partition: 0 },
        { value: 'c', partition: 3 },
      ],
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const [a, b, c] = answer.body.offsets;
    assert.equal(a.partition, 3);
    assert.equal(b.partition, 0);
    assert.equal(c.offset, a.offset + 1);
    assert.equal(a.error_code, null);
  });

  test('every kind of bad produce input is a 4xx naming the problem, and nothing is written', async () => {
    const before = await highWatermarks('events', 4);
    const cases: [unknown, number, string][] = [
      ['{"value": ', errors.bad_request.code, 'not valid JSON'],
      ['', errors.bad_request.code, 'empty'],
      [[1, 2], errors.bad_request.code, 'JSON object'],
      [{ key: 'k' }, errors.bad_request.code, "'value' is required"],
      [{ value: 42 }, errors.bad_request.code, 'value must be a string'],
      [{ value: { a: 1 } }, errors.bad_request.code, 'value must be a string'],
      [{ value: 'x', key: 7 }, errors.bad_request.code, 'key must be a string'],
      [{ value: 'x', vaule: 'typo' }, errors.bad_request.code, "unknown field 'vaule'"],
      [{ value: 'x', headers: ['a'] }, errors.bad_request.code, 'headers'],
      [{ value: 'x', headers: { a: 1 } }, errors.bad_request.code, "header 'a'"],
      [{ value: 'x', partition: -1 }, errors.bad_request.code, 'partition'],
      [{ value: 'x', partition: 1.5 }, errors.bad_request.code, 'partition'],
      [{ value: 'x', partition: '1' }, errors.bad_request.code, 'partition'],
      [{ value: 'x', partition: 4 }, errors.unknown_partition.code, 'no partition 4'],
      [{ value: '!!!', value_format: 'base64' }, errors.bad_request.code, 'base64'],
      [{ value: 'x', value_format: 'hex' }, errors.bad_request.code, 'value_format'],
      [{ value: 'x', timestamp: -1 }, errors.bad_request.code, 'timestamp'],
    ];
    for (const [body, code, mention] of cases) {
      assertError(await call(base, 'POST', '/topics/events/produce', body as string), code, mention);
    }
    assertError(
      await call(base, 'POST', '/topics/events/produce?acks=2', { value: 'x' }),
      errors.bad_parameter.code,
      'acks',
    );
    assertError(
      await call(base, 'POST', '/topics/nope/produce', { value: 'x' }),
      errors.unknown_topic.code,
      'nope',
    );
    assertError(
      await call(base, 'POST', '/topics/events/produce', { value: 'x' }, { 'content-type': 'text/xml' }),
      errors.unsupported_media_type.code,
    );
    assertError(
      await call(base, 'POST', '/topics/events/records', { records: [{ value: 'ok' }, { value: 5 }] }),
      errors.bad_request.code,
      /records\[1\]/,
    );
    assertError(
      await call(base, 'POST', '/topics/events/records', { records: [] }),
      errors.bad_request.code,
      'at least one',
    );
    assertError(
      await call(base, 'POST', '/topics/events/records', { value: 'x' }),
      errors.bad_request.code,
      'records',
    );
    // Bytes that are not UTF-8 inside a JSON string would be stored as U+FFFD: refused, naming the position.
    const invalid: [string, number[]][] = [
      ['overlong slash in a value', [0xc0, 0xaf]],
      ['lone continuation byte in a value', [0x80]],
    ];
    for (const [what, bad] of invalid) {
      const body = Buffer.concat([
        Buffer.from('{"key":"k","value":"a'),
        Buffer.from(bad),
        Buffer.from('b"}'),
      ]);
      const response = await fetch(`${base}/topics/events/produce`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      assert.equal(response.status, 400, what);
      const answer = (await response.json()) as { error_code: number; message: string };
      assert.equal(answer.error_code, errors.bad_request.code, what);
      assert.match(answer.message, /not valid UTF-8 \(first bad byte at position 21\)/, what);
    }
    const badKey = Buffer.concat([
      Buffer.from('{"key":"'),
      Buffer.from([0xc0, 0xaf]),
      Buffer.from('","value":"v"}'),
    ]);
    const keyAnswer = await fetch(`${base}/topics/events/produce`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: badKey,
    });
    assert.equal(keyAnswer.status, 400);
    assert.deepEqual(await highWatermarks('events', 4), before);
  });

  test('a large batch (parsed off the acceptor thread) is appended in order, and a bad one writes nothing', async () => {
    const records = Array.from({ length: 3000 }, (_, i) => ({
      key: `key-${i % 50}`,
      value: `large-${i}`.padEnd(120, '#'),
    }));
    const body = JSON.stringify({ records });
    assert.ok(body.length > 256 * 1024, 'the body must be over the large-body threshold');
    const answer = await call(base, 'POST', '/topics/events/records', body);
    assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
    assert.equal(answer.body.offsets.length, 3000);
    const metricsText = (await call(base, 'GET', '/metrics')).body as string;
    assert.match(
      metricsText,
      /broker_offloaded_requests_total [1-9]/,
      'the large body went through the piscina pool',
    );
    for (let i = 0; i < records.length; i++) {
      assert.equal(answer.body.offsets[i].partition, partitionForKey(Buffer.from(records[i]!.key), 4));
    }
    const first = answer.body.offsets[7];
    const consumed = await call(
      base,
      'GET',
      `/topics/events/partitions/${first.partition}/consume?offset=${first.offset}&limit=1`,
    );
    assert.equal(consumed.body.messages[0].value, records[7]!.value);

    const before = await highWatermarks('events', 4);
    const bad = JSON.stringify({ records: [...records.slice(0, 2500), { value: 17 }] });
    assertError(
      await call(base, 'POST', '/topics/events/records', bad),
      errors.bad_request.code,
      /records\[2500\]/,
    );
    assertError(
      await call(base, 'POST', '/topics/events/records', `${body.slice(0, -2)}`),
      errors.bad_request.code,
      'JSON',
    );
    assert.deepEqual(await highWatermarks('events', 4), before);
  });

  test('a batch larger than a segment is split across segments with contiguous offsets', async () => {
    await call(base, 'POST', '/topics/smallseg', { config: { segment_bytes: 1024 * 1024 } });
    const records = Array.from({ length: 5000 }, (_, i) => ({
      value: `s${i}`.padEnd(400, '~'),
      partition: 0,
    }));
    const answer = await call(base, 'POST', '/topics/smallseg/records', { records });
    assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
    assert.deepEqual(
      answer.body.offsets.map((o: any) => o.offset),
      records.map((_, i) => i),
    );
    const info = await call(base, 'GET', '/topics/smallseg/partitions/0');
    assert.ok(info.body.segment_count >= 2, `segments: ${info.body.segment_count}`);
    let offset = 0;
    while (offset < 5000) {
      const page = await call(
        base,
        'GET',
        `/topics/smallseg/partitions/0/consume?offset=${offset}&limit=1000`,
      );
      assert.ok(page.body.count > 0);
      for (const m of page.body.messages) {
        assert.equal(m.value, records[offset]!.value);
        offset++;
      }
    }
  });

  test('a body over --max-request-bytes is refused with 413 and nothing is written', async () => {
    const before = await highWatermarks('events', 4);
    const huge = 'x'.repeat(9 * 1024 * 1024);
    assertError(
      await call(base, 'POST', '/topics/events/produce', { value: huge }),
      errors.payload_too_large.code,
    );
    assert.deepEqual(await highWatermarks('events', 4), before);
  });

  test('bad consume parameters are 400s naming the parameter; an offset outside the log is a 416', async () => {
    const p = '/topics/events/partitions';
    assertError(await call(base, 'GET', `${p}/abc/consume?offset=0`), errors.bad_parameter.code, 'partition');
    assertError(await call(base, 'GET', `${p}/-1/consume`), errors.bad_parameter.code, 'partition');
    assertError(await call(base, 'GET', `${p}/9/consume`), errors.unknown_partition.code, 'no partition 9');
    assertError(await call(base, 'GET', `${p}/0/consume?offset=abc`), errors.bad_parameter.code, 'offset');
    assertError(await call(base, 'GET', `${p}/0/consume?offset=1.5`), errors.bad_parameter.code, 'offset');
    assertError(await call(base, 'GET', `${p}/0/consume?limit=0`), errors.bad_parameter.code, 'limit');
    assertError(
      await call(base, 'GET', `${p}/0/consume?max_bytes=x`),
      errors.bad_parameter.code,
      'max_bytes',
    );
    assertError(await call(base, 'GET', `${p}/0/consume?wait_ms=-5`), errors.bad_parameter.code, 'wait_ms');
    assertError(
      await call(base, 'GET', `${p}/0/consume?isolation=dirty`),
      errors.bad_parameter.code,
      'isolation',
    );
    assertError(
      await call(base, 'GET', `${p}/0/consume?offset=999999`),
      errors.offset_out_of_range.code,
      'valid offsets',
    );
    assertError(await call(base, 'GET', '/topics/nope/partitions/0/consume'), errors.unknown_topic.code);
  });

  test('limit caps the records returned and max_bytes bounds the read', async () => {
    await call(base, 'POST', '/topics/events/records', {
      records: Array.from({ length: 50 }, (_, i) => ({ value: `m${i}`.padEnd(100, '.'), partition: 0 })),
    });
    const limited = await call(base, 'GET', '/topics/events/partitions/0/consume?offset=0&limit=7');
    assert.equal(limited.body.count, 7);
    // api.md caps limit at 1000: a larger one is served as 1000, not refused.
    await call(base, 'POST', '/topics/events/records', {
      records: Array.from({ length: 1100 }, (_, i) => ({ value: `c${i}`, partition: 0 })),
    });
    const capped = await call(base, 'GET', '/topics/events/partitions/0/consume?offset=0&limit=5000');
    assert.equal(capped.status, 200);
    assert.equal(capped.body.count, 1000);
    const small = await call(
      base,
      'GET',
      '/topics/events/partitions/0/consume?offset=0&limit=1000&max_bytes=1',
    );
    // At least one whole batch comes back even when it is larger than max_bytes, so a consumer progresses.
    assert.ok(small.body.count >= 1);
  });

  test('a long poll is woken by the append, not by its timeout', async () => {
    await call(base, 'POST', '/topics/longpoll', {});
    const startedMs = Date.now();
    const waiting = call(base, 'GET', '/topics/longpoll/partitions/0/consume?offset=0&wait_ms=10000');
    await new Promise((r) => setTimeout(r, 200));
    await call(base, 'POST', '/topics/longpoll/produce', { value: 'wake' });
    const answer = await waiting;
    const elapsedMs = Date.now() - startedMs;
    assert.equal(answer.body.count, 1);
    assert.equal(answer.body.messages[0].value, 'wake');
    assert.ok(elapsedMs < 5000, `long poll took ${elapsedMs} ms`);
    const empty = await call(base, 'GET', '/topics/longpoll/partitions/0/consume?offset=1&wait_ms=150');
    assert.equal(empty.body.count, 0);
    assert.equal(empty.body.next_offset, 1);
  });

  test('partition info reports offsets, size and segments', async () => {
    const info = await call(base, 'GET', '/topics/events/partitions/1');
    assert.equal(info.status, 200);
    assert.ok(info.body.high_watermark >= 5);
    assert.equal(info.body.log_end_offset, info.body.high_watermark);
    assert.ok(info.body.size_bytes > 0);
    assert.ok(info.body.segment_count >= 1);
    assert.deepEqual(info.body.isr, info.body.replicas);
  });

  test('acks=0 answers 202 without an offset, and the record is still appended', async () => {
    await call(base, 'POST', '/topics/fire', {});
    const answer = await call(base, 'POST', '/topics/fire/produce?acks=0', { value: 'and-forget' });
    assert.equal(answer.status, 202);
    assert.equal(answer.body.offset, null);
    const consumed = await call(base, 'GET', '/topics/fire/partitions/0/consume?offset=0&wait_ms=2000');
    assert.equal(consumed.body.messages[0].value, 'and-forget');
  });
});

describe('metrics and the OpenAPI document', () => {
  test('metrics expose produce counters, offsets, ring and fsync figures', async () => {
    await call(base, 'POST', '/topics/metered', {});
    await call(base, 'POST', '/topics/metered/produce', { value: 'm' });
    const answer = await call(base, 'GET', '/metrics');
    assert.equal(answer.status, 200);
    const text = answer.body as string;
    for (const name of [
      'broker_produced_records_total{topic="metered"} 1',
      'kafka_topic_partition_current_offset{topic="metered",partition="0"} 1',
      'broker_http_request_duration_seconds_bucket',
      'broker_fsync_duration_seconds_count{worker="0"}',
      'broker_ring_occupancy_bytes{worker="1"}',
      'broker_worker_batch_frames_bucket',
      'broker_event_loop_delay_p99_seconds{thread="partition-0"}',
      'broker_thread_heap_allocated_bytes_total{thread="acceptor"}',
      'broker_thread_gc_seconds_total{thread="partition-1"}',
      'broker_index_cache_bytes{worker="0"}',
      'broker_index_cache_drops_total{worker="1"}',
      'broker_index_cache_loads_total{worker="0"}',
    ]) {
      assert.ok(text.includes(name), `metrics lack ${name}`);
    }
  });

  test('the OpenAPI document lists exactly the served operations, and each documented path is served', async () => {
    const doc = (await call(base, 'GET', '/openapi.json')).body;
    assert.equal(doc.openapi, '3.1.0');
    const operations: [string, string][] = [];
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(methods)) operations.push([method.toUpperCase(), path]);
    }
    assert.ok(operations.length >= 14);
    for (const [method, path] of operations) {
      const concrete = path.replace('{topic}', 'openapi-probe').replace('{partition}', '0');
      const answer = await call(base, method, concrete, method === 'POST' ? {} : undefined);
      assert.notEqual(
        answer.body?.error_code,
        errors.route_not_found.code,
        `${method} ${path} is documented but not served`,
      );
      assert.notEqual(answer.status, 405, `${method} ${path} is documented but not served`);
    }
  });
});

describe('restart', () => {
  test('topics and records survive a graceful restart', async () => {
    await call(base, 'POST', '/topics/durable', { num_partitions: 2 });
    for (let i = 0; i < 20; i++)
      await call(base, 'POST', '/topics/durable/produce', { value: `d${i}`, partition: i % 2 });
    broker = await broker.restart();
    base = broker.base;
    const list = await call(base, 'GET', '/topics');
    assert.ok(list.body.topics.includes('durable'));
    const consumed = await call(base, 'GET', '/topics/durable/partitions/1/consume?offset=0&limit=100');
    assert.deepEqual(
      consumed.body.messages.map((m: any) => m.value),
      Array.from({ length: 10 }, (_, k) => `d${2 * k + 1}`),
    );
    const produced = await call(base, 'POST', '/topics/durable/produce', { value: 'after', partition: 1 });
    assert.equal(produced.body.offset, 10);
  });
});
