// The batch produce bodies besides JSON, on a real broker (acceptor here, partition worker threads, files in a
// temp dir): `application/vnd.kafka.record-batch` (Kafka magic-2 batches as a client encodes them, to
// `POST /topics/{t}/records?partition=N`) and `application/x-ndjson` (one record object per line). Both read
// back identically through HTTP consume with dense offsets; an idempotent batch sent twice is appended once;
// every malformed body is refused with a 4xx naming its problem and the log does not grow; a large binary body
// is checked off the acceptor thread.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { crc32c, rewriteBatchCrcs } from '../../src/core/kafka/crc32c.js';
import { type BodyRecord, encodeRecordBatch } from '../../src/core/log/batch-body.js';
import { BatchField, writeInt32 } from '../../src/core/log/record-batch.js';
import { call, startTestBroker, type TestBroker } from './harness.js';

const BINARY = 'application/vnd.kafka.record-batch';
const NDJSON = 'application/x-ndjson';

let broker: TestBroker;
let base: string;

before(async () => {
  broker = await startTestBroker({ maxRequestBytes: 512 * 1024, largeBodyBytes: 64 * 1024 });
  base = broker.base;
  for (const topic of ['bin', 'nd', 'idem', 'bad', 'large', 'acks']) {
    const created = await call(base, 'POST', `/topics/${topic}`, { num_partitions: 2 });
    assert.equal(created.status, 201, JSON.stringify(created.body));
  }
});
after(async () => {
  await broker.stop();
});

async function post(path: string, body: Uint8Array | string, contentType: string, headers = {}) {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType, ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) as any };
}

interface Consumed {
  offset: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  timestamp: number;
}

async function consumeAll(topic: string, partition: number): Promise<Consumed[]> {
  const answer = await call(
    base,
    'GET',
    `/topics/${topic}/partitions/${partition}/consume?offset=0&limit=1000`,
  );
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.messages as Consumed[];
}

async function highWatermark(topic: string, partition: number): Promise<number> {
  const answer = await call(base, 'GET', `/topics/${topic}/partitions/${partition}/consume?offset=0&limit=1`);
  return answer.body.high_watermark as number;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

// Recent: records far in the past roll segments and fall to time retention, as in Kafka.
const t0 = Date.now() - 60_000;
const sample: BodyRecord[] = [
  { key: 'k-0', value: 'hello', headers: { source: 'web', trace: 'abc' }, timestampMs: t0 },
  { key: null, value: 'no key', timestampMs: t0 + 5 },
  { key: 'k-2', value: null, headers: { only: 'header' }, timestampMs: t0 - 3 },
  { value: 'ünïcødé ✓', timestampMs: t0 + 1000 },
];

function expected(records: readonly BodyRecord[], firstOffset: number): Consumed[] {
  return records.map((r, i) => ({
    offset: firstOffset + i,
    key: (r.key as string | null | undefined) ?? null,
    value: r.value as string | null,
    headers: { ...(r.headers ?? {}) },
    timestamp: r.timestampMs,
  }));
}

function pick(messages: readonly Consumed[]): Consumed[] {
  return messages.map((m) => ({
    offset: m.offset,
    key: m.key,
    value: m.value,
    headers: m.headers,
    timestamp: m.timestamp,
  }));
}

describe('record-batch and NDJSON batch bodies', () => {
  test('a record-batch body of two batches reads back identically, with dense broker-assigned offsets', async () => {
    const body = concat(encodeRecordBatch(sample.slice(0, 3)), encodeRecordBatch(sample.slice(3)));
    const answer = await post('/topics/bin/records?partition=1', body, BINARY);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(
      answer.body.offsets,
      [0, 1, 2, 3].map((offset) => ({ partition: 1, offset, error_code: null, error: null })),
    );
    const again = await post('/topics/bin/records?partition=1', encodeRecordBatch(sample), BINARY);
    assert.deepEqual(
      again.body.offsets.map((o: { offset: number }) => o.offset),
      [4, 5, 6, 7],
    );
    assert.deepEqual(pick(await consumeAll('bin', 1)), [...expected(sample, 0), ...expected(sample, 4)]);
    assert.equal(await highWatermark('bin', 0), 0, 'only the partition named was written');
  });

  test('an NDJSON body reads back identically; CRLF, blank lines and a last newline are fine', async () => {
    const lines = sample.map((r) =>
      JSON.stringify({
        key: r.key ?? null,
        value: r.value,
        ...(r.headers === undefined ? {} : { headers: r.headers }),
        timestamp: r.timestampMs,
        partition: 0,
      }),
    );
    const body = `${lines[0]}\r\n${lines[1]}\n\n${lines[2]}\n${lines[3]}\n`;
    const answer = await post('/topics/nd/records', body, `${NDJSON}; charset=utf-8`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(
      answer.body.offsets,
      [0, 1, 2, 3].map((offset) => ({ partition: 0, offset, error_code: null, error: null })),
    );
    assert.deepEqual(pick(await consumeAll('nd', 0)), expected(sample, 0));
  });

  test('NDJSON errors name the line, and nothing of the body is written', async () => {
    const good = JSON.stringify({ value: 'x', partition: 0 });
    const cases: [string, number, RegExp][] = [
      [`${good}\n${good}\n{"value": oops}\n`, 400, /^line 3: not valid JSON/],
      [`${good}\n{"value":"x","colour":"red"}`, 400, /^line 2: unknown field 'colour'/],
      [`${good}\n[1,2]\n`, 400, /^line 2: the record must be a JSON object/],
      [`${good}\n{"key":"k"}\n`, 400, /^line 2: 'value' is required/],
      [`${good}\n{"value":"x","partition":7}\n`, 404, /records\[1\].*no partition 7|no partition 7/],
      ['\n\n', 400, /holds no record/],
    ];
    for (const [body, status, message] of cases) {
      const answer = await post('/topics/nd/records', body, NDJSON);
      assert.equal(answer.status, status, `${JSON.stringify(body)}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.body.message, message);
    }
    assert.equal(await highWatermark('nd', 0), 4, 'the earlier test wrote 4; nothing since');
    const single = await post('/topics/nd/produce', good, NDJSON);
    assert.equal(single.status, 415, 'NDJSON is a batch body');
    // The JSON batch body names the record by its index in "records", for each kind of field error.
    const record = { value: 'x', partition: 0 };
    const jsonCases: [unknown[], RegExp][] = [
      [[record, record, { value: 5 }], /^records\[2\]: value must be a string or null, got number$/],
      [[record, { value: 'eA', value_format: 'base64' }], /^records\[1\]: value is not valid base64$/],
      [
        [{ value: 'x', key: 'k', key_format: 'hex' }],
        /^records\[0\]: key_format must be 'string' or 'base64'$/,
      ],
      [[record, { value: 'x', partition: -1 }], /^records\[1\]: partition must be a non-negative integer$/],
    ];
    for (const [records, message] of jsonCases) {
      const answer = await post('/topics/nd/records', JSON.stringify({ records }), 'application/json');
      assert.equal(answer.status, 400, JSON.stringify(answer.body));
      assert.match(answer.body.message, message);
    }
    const bad = await post('/topics/nd/produce', JSON.stringify({ value: ['a'] }), 'application/json');
    assert.equal(bad.body.message, 'value must be a string or null, got array');
    assert.equal(await highWatermark('nd', 0), 4, 'nothing of a refused body is written');
  });

  test('an idempotent record batch sent twice is appended once; acks other than all are refused', async () => {
    const producer = await call(base, 'POST', '/producers');
    assert.equal(producer.status, 201);
    const producerId = producer.body.producer_id as number;
    const records = sample.slice(0, 2);
    const first = encodeRecordBatch(records, { producerId, producerEpoch: 0, baseSequence: 0 });
    const sent = await post('/topics/idem/records?partition=0', first, BINARY);
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    assert.equal(sent.body.duplicate, undefined);
    const retried = await post('/topics/idem/records?partition=0', first, BINARY);
    assert.equal(retried.status, 200);
    assert.equal(retried.body.duplicate, true);
    assert.deepEqual(retried.body.offsets, sent.body.offsets);
    assert.equal(await highWatermark('idem', 0), 2);
    const next = encodeRecordBatch(records, { producerId, producerEpoch: 0, baseSequence: 2 });
    const gap = encodeRecordBatch(records, { producerId, producerEpoch: 0, baseSequence: 9 });
    const outOfOrder = await post('/topics/idem/records?partition=0', gap, BINARY);
    assert.equal(outOfOrder.status, 409, JSON.stringify(outOfOrder.body));
    const acksOne = await post('/topics/idem/records?partition=0&acks=1', next, BINARY);
    assert.equal(acksOne.status, 400);
    assert.match(acksOne.body.message, /acks=all/);
    const withHeaders = await post('/topics/idem/records?partition=0', next, BINARY, {
      'producer-id': String(producerId),
      'producer-epoch': '0',
      sequence: '2',
    });
    assert.equal(withHeaders.status, 400);
    assert.equal(await highWatermark('idem', 0), 2);
    const accepted = await post('/topics/idem/records?partition=0', next, BINARY);
    assert.deepEqual(
      accepted.body.offsets.map((o: { offset: number }) => o.offset),
      [2, 3],
    );
  });

  test('every malformed record-batch body gets its 4xx naming the problem, and the log does not grow', async () => {
    const good = encodeRecordBatch(sample);
    const mutate = (edit: (bytes: Uint8Array) => void, recrc = true): Uint8Array => {
      const bytes = good.slice();
      edit(bytes);
      if (recrc) rewriteBatchCrcs(bytes, crc32c);
      return bytes;
    };
    const badCrc = mutate((b) => {
      b[b.length - 3] = b[b.length - 3]! ^ 0xff;
    }, false);
    const cases: [string, Uint8Array, string, number, RegExp][] = [
      ['empty', new Uint8Array(0), '?partition=0', 400, /empty/],
      ['short', good.subarray(0, 30), '?partition=0', 400, /too short for a record batch header/],
      [
        'length past the body',
        mutate((b) => writeInt32(b, BatchField.batchLength, good.length + 100), false),
        '?partition=0',
        400,
        /declares \d+ bytes/,
      ],
      ['truncated', good.subarray(0, good.length - 1), '?partition=0', 400, /declares \d+ bytes/],
      ['bad CRC', badCrc, '?partition=0', 400, /CRC-32C mismatch/],
      [
        'bad magic',
        mutate((b) => {
          b[BatchField.magic] = 1;
        }),
        '?partition=0',
        400,
        /magic 1/,
      ],
      [
        'record count lies',
        mutate((b) => {
          writeInt32(b, BatchField.recordCount, sample.length + 1);
          writeInt32(b, BatchField.lastOffsetDelta, sample.length);
        }),
        '?partition=0',
        400,
        /record/,
      ],
      [
        'compressed',
        mutate((b) => {
          b[BatchField.attributes + 1] = 1; // gzip
        }),
        '?partition=0',
        415,
        /compress/,
      ],
      ['a good batch then a bad one', concat(good, badCrc), '?partition=0', 400, /at byte \d+: CRC-32C/],
      ['trailing bytes', concat(good, new Uint8Array(10)), '?partition=0', 400, /too short/],
      ['no partition', good, '', 400, /partition/],
      ['unknown partition', good, '?partition=5', 404, /no partition 5/],
      ['bad partition', good, '?partition=x', 400, /partition/],
      ['over --max-request-bytes', new Uint8Array(600 * 1024), '?partition=0', 413, /max-request-bytes/],
    ];
    for (const [name, body, query, status, message] of cases) {
      const answer = await post(`/topics/bad/records${query}`, body, BINARY);
      assert.equal(answer.status, status, `${name}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.body.message, message, name);
      assert.equal(Math.floor(answer.body.error_code / 100), status, name);
    }
    assert.equal(await highWatermark('bad', 0), 0);
    assert.equal(await highWatermark('bad', 1), 0);
    const single = await post('/topics/bad/produce', good, BINARY);
    assert.equal(single.status, 415, 'a record batch is a batch body');
  });

  test('a large record-batch body is checked off the acceptor thread; a bad one writes nothing', async () => {
    const records: BodyRecord[] = Array.from({ length: 3000 }, (_, i) => ({
      key: `key-${i}`,
      value: `large-${i}`.padEnd(100, '#'),
      timestampMs: t0 + i,
    }));
    const body = concat(encodeRecordBatch(records.slice(0, 1500)), encodeRecordBatch(records.slice(1500)));
    assert.ok(body.length > 64 * 1024, 'over the large-body threshold');
    const before = await call(base, 'GET', '/metrics');
    const offloadedBefore = Number(
      /broker_offloaded_requests_total (\d+)/.exec(before.body as string)?.[1] ?? 0,
    );
    const broken = body.slice();
    broken[broken.length - 10] = broken[broken.length - 10]! ^ 1;
    const refused = await post('/topics/large/records?partition=1', broken, BINARY);
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.match(refused.body.message, /CRC-32C mismatch/);
    assert.equal(await highWatermark('large', 1), 0);
    const answer = await post('/topics/large/records?partition=1', body, BINARY);
    assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
    assert.equal(answer.body.offsets.length, 3000);
    assert.ok(answer.body.offsets.every((o: { offset: number }, i: number) => o.offset === i));
    const after = await call(base, 'GET', '/metrics');
    const offloadedAfter = Number(
      /broker_offloaded_requests_total (\d+)/.exec(after.body as string)?.[1] ?? 0,
    );
    assert.equal(offloadedAfter - offloadedBefore, 2, 'both bodies went through the piscina pool');
    const read = await consumeAll('large', 1);
    assert.equal(read.length, 1000);
    assert.deepEqual(
      read.map((m) => [m.offset, m.key, m.value, m.timestamp]),
      records.slice(0, 1000).map((r, i) => [i, r.key, r.value, r.timestampMs]),
    );
    assert.equal(await highWatermark('large', 1), 3000);
  });

  test('a large NDJSON body is parsed off the acceptor thread, and its errors still name the line', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) =>
      JSON.stringify({ key: `k${i}`, value: `nd-${i}`.padEnd(60, '='), partition: 1 }),
    );
    const offloaded = async () =>
      Number(
        /broker_offloaded_requests_total (\d+)/.exec((await call(base, 'GET', '/metrics')).body)?.[1] ?? 0,
      );
    const before = await offloaded();
    const broken = [...lines];
    broken[1500] = '{"value": "unterminated';
    const refused = await post('/topics/large/records', broken.join('\n'), NDJSON);
    assert.equal(refused.status, 400);
    assert.match(refused.body.message, /^line 1501: not valid JSON/);
    const body = lines.join('\n');
    assert.ok(body.length > 64 * 1024);
    const hwBefore = await highWatermark('large', 1);
    const answer = await post('/topics/large/records', body, NDJSON);
    assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
    assert.equal(answer.body.offsets.length, 2000);
    assert.equal(answer.body.offsets[1999].offset, hwBefore + 1999);
    assert.equal(await offloaded(), before + 2);
  });

  test('acks=all, 1 and 0 all append; acks=0 answers 202 without offsets', async () => {
    const batch = encodeRecordBatch(sample.slice(0, 1));
    const all = await post('/topics/acks/records?partition=0&acks=all', batch, BINARY);
    assert.deepEqual([all.status, all.body.offsets[0].offset], [200, 0]);
    const one = await post('/topics/acks/records?partition=0&acks=1', batch, BINARY);
    assert.deepEqual([one.status, one.body.offsets[0].offset], [200, 1]);
    const none = await post('/topics/acks/records?partition=0&acks=0', batch, BINARY);
    assert.deepEqual([none.status, none.body.offsets[0].offset], [202, null]);
    const nd = await post('/topics/acks/records?acks=all', '{"value":"v","partition":0}\n', NDJSON);
    assert.deepEqual([nd.status, nd.body.offsets[0].offset], [200, 3]);
    const deadline = Date.now() + 5000;
    while ((await highWatermark('acks', 0)) < 4 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(await highWatermark('acks', 0), 4);
  });

  test('the OpenAPI document lists both media types and the partition query parameter', async () => {
    const doc = (await call(base, 'GET', '/openapi.json')).body;
    const operation = doc.paths['/topics/{topic}/records'].post;
    assert.deepEqual(Object.keys(operation.requestBody.content).sort(), ['application/json', BINARY, NDJSON]);
    assert.ok(
      operation.parameters.some(
        (p: { name: string; in: string }) => p.name === 'partition' && p.in === 'query',
      ),
    );
  });
});
