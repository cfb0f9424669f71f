// WebSocket streaming against a real broker: pipelined produce with context, push consume in order without
// gaps (also for a consumer that stops reading for a while), permits, consumer groups over a socket, and close
// codes for bad requests.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { errors } from '../../src/core/errors.js';
import { call, startTestBroker, type TestBroker } from './harness.js';

let broker: TestBroker;
let wsBase: string;

before(async () => {
  broker = await startTestBroker();
  wsBase = broker.base.replace('http', 'ws');
});
after(async () => {
  await broker.stop();
});

interface Client {
  readonly ws: WebSocket;
  readonly frames: any[];
  closed: { code: number; reason: string } | null;
  next(predicate: (frame: any) => boolean, what: string, timeoutMs?: number): Promise<any>;
  until(count: number, timeoutMs?: number): Promise<void>;
}

async function connect(path: string): Promise<Client> {
  const ws = new WebSocket(`${wsBase}${path}`);
  const client: Client = {
    ws,
    frames: [],
    closed: null,
    next: (predicate, what, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const found = client.frames.find(predicate);
        if (found !== undefined) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
        const onMessage = () => {
          const hit = client.frames.find(predicate);
          if (hit !== undefined) {
            clearTimeout(timer);
            ws.off('message', onMessage);
            resolve(hit);
          }
        };
        ws.on('message', onMessage);
      }),
    until: (count, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const deadline = Date.now() + timeoutMs;
        const check = () => {
          if (client.frames.length >= count) return resolve();
          if (Date.now() > deadline)
            return reject(new Error(`got ${client.frames.length} of ${count} frames`));
          setTimeout(check, 20);
        };
        check();
      }),
  };
  ws.on('message', (data) => client.frames.push(JSON.parse(data.toString())));
  ws.on('close', (code, reason) => {
    client.closed = { code, reason: reason.toString() };
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return client;
}

async function closedWith(client: Client, timeoutMs = 5000): Promise<{ code: number; reason: string }> {
  const deadline = Date.now() + timeoutMs;
  while (client.closed === null) {
    if (Date.now() > deadline) throw new Error('socket was not closed');
    await new Promise((r) => setTimeout(r, 20));
  }
  return client.closed;
}

describe('websocket produce', () => {
  test('pipelined records are answered with their context and offsets in order per partition', async () => {
    await call(broker.base, 'POST', '/topics/wsprod', { num_partitions: 2 });
    const client = await connect('/ws/produce/wsprod');
    for (let i = 0; i < 200; i++)
      client.ws.send(JSON.stringify({ value: `m${i}`, partition: i % 2, context: i }));
    await client.until(200);
    const byPartition = new Map<number, number[]>();
    for (const frame of client.frames) {
      assert.equal(frame.result, 'ok', JSON.stringify(frame));
      byPartition.set(frame.partition, [...(byPartition.get(frame.partition) ?? []), frame.offset]);
      assert.equal(frame.partition, frame.context % 2);
    }
    assert.deepEqual(
      byPartition.get(0),
      Array.from({ length: 100 }, (_, i) => i),
    );
    assert.deepEqual(
      byPartition.get(1),
      Array.from({ length: 100 }, (_, i) => i),
    );
    client.ws.send('not json');
    client.ws.send(JSON.stringify({ value: 5, context: 'bad' }));
    const syntax = await client.next(
      (f) => f.result === 'error' && f.context === undefined,
      'syntax error frame',
    );
    assert.equal(syntax.error_code, 40001);
    const bad = await client.next((f) => f.context === 'bad', 'error frame with context');
    assert.equal(bad.result, 'error');
    assert.match(bad.message, /value must be a string/);
    // A partition the topic does not have is refused with the context; nothing is written.
    client.ws.send(JSON.stringify({ value: 'x', partition: 2, context: { n: 'missing' } }));
    const missing = await client.next((f) => f.context?.n === 'missing', 'unknown partition frame');
    assert.equal(missing.result, 'error');
    assert.equal(missing.error_code, errors.unknown_partition.code);
    assert.match(missing.message, /no partition 2/);
    // Any JSON context is handed back as it came, and a record without one is answered without the field.
    client.ws.send(JSON.stringify({ value: 'y', partition: 1, context: { a: [1, 'two', null], b: '"q"' } }));
    const echoed = await client.next((f) => f.context?.b === '"q"', 'object context');
    assert.deepEqual(echoed, {
      result: 'ok',
      partition: 1,
      offset: 100,
      context: { a: [1, 'two', null], b: '"q"' },
    });
    client.ws.send(JSON.stringify({ value: 'z', partition: 1 }));
    const bare = await client.next((f) => f.result === 'ok' && f.offset === 101, 'answer without context');
    assert.equal('context' in bare, false);
    // The records and their bytes are counted: 200 records of 2-4 bytes, then 'y' and 'z'.
    const metrics = await (await fetch(`${broker.base}/metrics`)).text();
    assert.match(metrics, /^broker_produced_records_total\{topic="wsprod"\} 202$/m);
    assert.match(metrics, /^broker_produced_bytes_total\{topic="wsprod"\} 692$/m);
    client.ws.close();
  });

  test('an unknown topic closes the socket with 4004 and a reason', async () => {
    const client = await connect('/ws/produce/nope');
    const closed = await closedWith(client);
    assert.equal(closed.code, 4004);
    assert.match(closed.reason, /nope/);
  });
});

describe('websocket consume', () => {
  test('records are pushed in order with no gap, including ones appended after subscribing', async () => {
    await call(broker.base, 'POST', '/topics/wscons', {});
    await call(broker.base, 'POST', '/topics/wscons/records', {
      records: Array.from({ length: 300 }, (_, i) => ({ value: `early-${i}` })),
    });
    const client = await connect('/ws/consume/wscons?partition=0&offset=earliest');
    await client.until(300);
    for (let i = 0; i < 50; i++)
      await call(broker.base, 'POST', '/topics/wscons/produce', { value: `late-${i}` });
    await client.until(350);
    assert.deepEqual(
      client.frames.map((f) => f.offset),
      Array.from({ length: 350 }, (_, i) => i),
    );
    assert.equal(client.frames[299].value, 'early-299');
    assert.equal(client.frames[349].value, 'late-49');
    assert.equal(typeof client.frames[0].timestamp, 'number');
    client.ws.close();
  });

  test('consumers at the tail share fetches: each gets every record once, in order, a slow one included', async () => {
    await call(broker.base, 'POST', '/topics/wsfan', {});
    const clients: Client[] = [];
    for (let i = 0; i < 8; i++) clients.push(await connect('/ws/consume/wsfan?partition=0&offset=0'));
    const values = (text: string) => Number(/_total (\S+)$/m.exec(text)?.[1] ?? 'NaN');
    const scrape = async (name: string) =>
      values(
        (await (await fetch(`${broker.base}/metrics`)).text())
          .split('\n')
          .filter((l) => l.startsWith(name))
          .join('\n'),
      );
    const joinedBefore = await scrape('broker_stream_fetches_joined_total');
    const slow = clients[7]!;
    const slowSocket = (slow.ws as any)._socket;
    slowSocket.pause();
    const total = 400;
    for (let b = 0; b < total / 20; b++) {
      await call(broker.base, 'POST', '/topics/wsfan/records', {
        records: Array.from({ length: 20 }, (_, i) => ({ value: `fan-${b * 20 + i}` })),
      });
      if (b % 5 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    for (const client of clients.slice(0, 7)) await client.until(total);
    slowSocket.resume();
    await slow.until(total);
    for (const client of clients) {
      assert.deepEqual(
        client.frames.map((f) => f.offset),
        Array.from({ length: total }, (_, i) => i),
      );
      assert.equal(client.frames[total - 1].value, `fan-${total - 1}`);
      client.ws.close();
    }
    assert.ok(
      (await scrape('broker_stream_fetches_joined_total')) > joinedBefore,
      'streams at the same offset joined a fetch in flight',
    );
    assert.ok(
      (await scrape('broker_stream_shared_answers_total')) > 0,
      'answers were encoded once for several',
    );
  });

  test('a consumer that stops reading for seconds gets every record afterwards, in order', async () => {
    await call(broker.base, 'POST', '/topics/wsslow', {});
    const client = await connect('/ws/consume/wsslow?partition=0&offset=earliest');
    const socket = (client.ws as any)._socket;
    socket.pause();
    const total = 20_000;
    for (let b = 0; b < total / 1000; b++) {
      await call(broker.base, 'POST', '/topics/wsslow/records', {
        records: Array.from({ length: 1000 }, (_, i) => ({ value: `slow-${b * 1000 + i}`.padEnd(200, '.') })),
      });
    }
    await new Promise((r) => setTimeout(r, 1500));
    socket.resume();
    await client.until(total, 60_000);
    for (let i = 0; i < total; i++) assert.equal(client.frames[i].offset, i);
    assert.equal(client.closed, null, 'a slow consumer is never dropped');
    client.ws.close();
  });

  test('with permits, the broker sends exactly as many records as granted', async () => {
    await call(broker.base, 'POST', '/topics/wsperm', {});
    const client = await connect('/ws/consume/wsperm?partition=0&offset=latest');
    client.ws.send(JSON.stringify({ type: 'permit', count: 5 }));
    // Let the permit reach the broker before anything is appended, so every record is under flow control.
    await new Promise((r) => setTimeout(r, 200));
    await call(broker.base, 'POST', '/topics/wsperm/records', {
      records: Array.from({ length: 30 }, (_, i) => ({ value: `p${i}` })),
    });
    await client.until(5);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(client.frames.length, 5, 'no record beyond the 5 granted');
    client.ws.send(JSON.stringify({ type: 'permit', count: 3 }));
    await client.until(8);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(client.frames.length, 8, 'no record beyond the 8 granted');
    assert.deepEqual(
      client.frames.map((f) => f.offset),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    client.ws.close();
  });

  test('bad consume requests close with 4001 or 4004 and a reason', async () => {
    const cases: [string, number, RegExp][] = [
      ['/ws/consume/wscons?partition=abc', 4001, /partition/],
      ['/ws/consume/wscons?partition=7', 4004, /no partition 7/],
      ['/ws/consume/wscons?offset=soon', 4001, /offset/],
      ['/ws/consume/wscons?offset=999999', 4001, /outside/],
      ['/ws/consume/bad%20name', 4001, /topic name/],
    ];
    for (const [path, code, reason] of cases) {
      const client = await connect(path);
      const closed = await closedWith(client);
      assert.equal(closed.code, code, path);
      assert.match(closed.reason, reason, path);
    }
    const client = await connect('/ws/consume/wscons');
    client.ws.send(JSON.stringify({ type: 'permit', count: 0 }));
    assert.equal((await closedWith(client)).code, 4001);
  });
});

describe('websocket frame limits', () => {
  test('a frame over the 1 MiB limit closes with 1009 and a reason naming the limit', async () => {
    await call(broker.base, 'POST', '/topics/wsbig', { num_partitions: 1 });
    const client = await connect('/ws/produce/wsbig');
    client.ws.send(JSON.stringify({ value: 'x'.repeat(2 * 1024 * 1024) }));
    const closed = await closedWith(client);
    assert.equal(closed.code, 1009);
    assert.match(closed.reason, /exceeds the limit of 1048576 bytes/);
    const consumed = await call(broker.base, 'GET', '/topics/wsbig/partitions/0/consume?offset=0');
    assert.equal(consumed.body.count, 0, 'nothing was written for the refused frame');
  });

  test('a frame that is not valid UTF-8 closes with 1007 and nothing is written', async () => {
    await call(broker.base, 'POST', '/topics/wsutf', { num_partitions: 1 });
    const client = await connect('/ws/produce/wsutf');
    const bad = Buffer.concat([Buffer.from('{"value":"a'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]);
    client.ws.send(bad, { binary: true });
    const closed = await closedWith(client);
    assert.equal(closed.code, 1007);
    assert.match(closed.reason, /UTF-8/);
    const consumed = await call(broker.base, 'GET', '/topics/wsutf/partitions/0/consume?offset=0');
    assert.equal(consumed.body.count, 0);
  });
});

describe('websocket consumer group', () => {
  test('members split the partitions, get records, commit, and take over when one leaves', async () => {
    await call(broker.base, 'POST', '/topics/wsgroup', { num_partitions: 2 });
    const a = await connect('/ws/group/wsg?topics=wsgroup&consumer_id=a&offset_reset=earliest');
    const first = await a.next((f) => f.type === 'assignment', 'assignment for a');
    assert.deepEqual(first.assignments.wsgroup, [0, 1]);
    const b = await connect('/ws/group/wsg?topics=wsgroup&consumer_id=b&offset_reset=earliest');
    await b.next(
      (f) => f.type === 'assignment' && (f.assignments.wsgroup ?? []).length === 1,
      'b gets one partition',
    );
    await a.next(
      (f) => f.type === 'assignment' && (f.assignments.wsgroup ?? []).length === 1,
      'a keeps one partition',
    );
    await call(broker.base, 'POST', '/topics/wsgroup/records', {
      records: Array.from({ length: 20 }, (_, i) => ({ value: `g${i}`, partition: i % 2 })),
    });
    await a.next((f) => f.type === 'record' && f.offset === 9, 'a receives its partition');
    await b.next((f) => f.type === 'record' && f.offset === 9, 'b receives its partition');
    const aPartitions = new Set(a.frames.filter((f) => f.type === 'record').map((f) => f.partition));
    const bPartitions = new Set(b.frames.filter((f) => f.type === 'record').map((f) => f.partition));
    assert.equal(aPartitions.size, 1);
    assert.equal(bPartitions.size, 1);
    assert.notDeepEqual([...aPartitions], [...bPartitions]);
    const aPartition = [...aPartitions][0];
    a.ws.send(JSON.stringify({ type: 'commit', topic: 'wsgroup', partition: aPartition, offset: 10 }));
    await a.next((f) => f.type === 'committed', 'commit answer');
    const fetched = await call(broker.base, 'GET', `/consumer-groups/wsg/offsets/wsgroup/${aPartition}`);
    assert.equal(fetched.body.offset, 10);
    b.ws.close();
    await a.next(
      (f) => f.type === 'assignment' && (f.assignments.wsgroup ?? []).length === 2,
      'a takes over',
    );
    a.ws.close();
  });
});
