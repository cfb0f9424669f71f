// Several acceptor threads sharing the client port (--acceptor-threads 3), on a real broker process:
// - 40 clients, each on its own keep-alive connection (the kernel spreads connections over the three listening
//   sockets), produce with acks=all and read everything back: nothing lost, duplicated or reordered, and every
//   extra acceptor served produce itself and relayed the rest (topic admin, metrics, a 400) to the primary, which
//   answered each as it would its own; the worker balancer and /metrics count every thread's requests;
// - WebSocket consumers land on every acceptor and all get the stream (the extra ones relay it);
// - partitions moving between workers while 8 connections produce with acks=all: every acceptor holds the
//   partition during a move, so nothing is lost or reordered;
// - SIGTERM stops every thread cleanly (exit 0, clean-shutdown marker) and a restart serves every record;
// - kill -9 under acks=all load from 8 connections: every acknowledged record is there after a restart;
// - a fatal error on the main thread under load: the process exits with its code (the extra threads close their
//   sockets first, else the process would abort) and every acknowledged record is there after a restart;
// - with authentication, every thread refuses (401, 403) what the primary refuses, writes nothing then, and
//   applies an ACL granted after the start.
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { tempDataDir } from '../broker/harness.js';
import { type BrokerProcess, killBroker, spawnBroker } from '../broker/process.js';
import { authFiles, bearer, TOKENS } from '../security/fixture.js';

const started: BrokerProcess[] = [];
const dirs: string[] = [];
const agents: http.Agent[] = [];
after(async () => {
  for (const agent of agents) agent.destroy();
  for (const broker of started) await killBroker(broker);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly body: any;
}

/** A client with one keep-alive connection of its own (so that clients spread over the acceptors). */
function client(base: string, headers: Record<string, string> = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  const url = new URL(base);
  return (method: string, path: string, body?: unknown): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      const request = http.request(
        {
          host: url.hostname,
          port: url.port,
          method,
          path,
          agent,
          headers: text === undefined ? headers : { ...headers, 'content-type': 'application/json' },
          timeout: 20_000,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = raw;
            try {
              parsed = JSON.parse(raw);
            } catch {}
            resolve({ status: response.statusCode ?? 0, body: parsed });
          });
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error(`${method} ${path} timed out`)));
      request.on('error', reject);
      request.end(text);
    });
}

/** The extra acceptors' figures from /metrics: acceptor index -> outcome -> count. */
async function acceptorFigures(base: string): Promise<Map<string, Map<string, number>>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const figures = new Map<string, Map<string, number>>();
  for (const match of text.matchAll(
    /^broker_acceptor_requests_total\{acceptor="(\d+)",outcome="(\w+)"\} (\d+)/gm,
  )) {
    const byOutcome = figures.get(match[1]!) ?? new Map<string, number>();
    byOutcome.set(match[2]!, Number(match[3]));
    figures.set(match[1]!, byOutcome);
  }
  return figures;
}

async function until<T>(what: string, deadlineMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    assert.ok(Date.now() < deadline, `${what} within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Ack {
  readonly producer: number;
  readonly partition: number;
  readonly offset: number;
  readonly value: string;
}

/** Every record of the partitions (offsets contiguous from 0), value -> where. */
async function readAll(base: string, topic: string, partitions: readonly number[]) {
  const call = client(base);
  const seen = new Map<string, { partition: number; offset: number }>();
  for (const p of partitions) {
    let offset = 0;
    for (;;) {
      const page = await call('GET', `/topics/${topic}/partitions/${p}/consume?offset=${offset}&limit=1000`);
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
  return seen;
}

function checkAcked(acks: readonly Ack[], seen: Map<string, { partition: number; offset: number }>): void {
  for (const ack of acks) {
    assert.deepEqual(
      seen.get(ack.value),
      { partition: ack.partition, offset: ack.offset },
      `acknowledged ${ack.value} at ${ack.partition}/${ack.offset}`,
    );
  }
  // Per producer and partition, acknowledged records keep their order.
  const last = new Map<string, number>();
  for (const ack of acks) {
    const key = `${ack.producer}/${ack.partition}`;
    assert.ok((last.get(key) ?? -1) < ack.offset, `order within partition ${ack.partition}`);
    last.set(key, ack.offset);
  }
}

/** `count` producers, each on its own connection, writing to `partitions` until stopped. */
function produce(base: string, topic: string, partitions: readonly number[], count: number) {
  const acked: Ack[] = [];
  const failures: string[] = [];
  let stop = false;
  const loops = Array.from({ length: count }, async (_, w) => {
    const call = client(base);
    for (let i = 0; !stop; i++) {
      const partition = partitions[(w + i) % partitions.length]!;
      const value = `p${w}-${i}`;
      let answer: Answer;
      try {
        answer = await call('POST', `/topics/${topic}/produce?acks=all`, { partition, value });
      } catch (error) {
        // The broker went away (a kill test): unknown outcome, not an acknowledgement.
        failures.push(`no answer: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      if (answer.status === 201) {
        acked.push({ producer: w, partition: answer.body.partition, offset: answer.body.offset, value });
      } else {
        failures.push(`${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  });
  return {
    acked,
    failures,
    stop: async () => {
      stop = true;
      await Promise.all(loops);
    },
  };
}

let broker: BrokerProcess;
let dataDir: string;

test('40 connections over three acceptor threads: produce served by every thread, the rest relayed, nothing lost', {
  timeout: 60_000,
}, async (t) => {
  dataDir = tempDataDir('broker-acceptors-');
  dirs.push(dataDir);
  // No automatic balance rounds: each GET /admin/workers gives the rates since the previous one.
  broker = await spawnBroker([
    '--data-dir',
    dataDir,
    '--threads',
    '2',
    '--acceptor-threads',
    '3',
    '--worker-balance-interval',
    '0',
  ]);
  started.push(broker);
  assert.match(broker.output(), /extra acceptor threads listen on the client port/);
  const clients = Array.from({ length: 40 }, () => client(broker.base));
  const created = await clients[0]!('POST', '/topics/spread', { num_partitions: 4 });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  // Opens the worker balancer's look window before any produce.
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assert.equal((await clients[0]!('GET', '/admin/workers')).status, 200);
  const acked: Ack[] = [];
  await Promise.all(
    clients.map(async (call, producer) => {
      // Relayed (or served by the primary): a read of the topic, a refusal, and a batch of produces.
      const topic = await call('GET', '/topics/spread');
      assert.equal(topic.status, 200, JSON.stringify(topic.body));
      assert.equal(topic.body.num_partitions, 4);
      const bad = await call('POST', '/topics/no%20such%20name', { num_partitions: 1 });
      assert.equal(bad.status, 400, JSON.stringify(bad.body));
      const unknown = await call('POST', '/topics/missing/produce', { value: 'x' });
      assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
      assert.match(JSON.stringify(unknown.body), /does not exist/);
      for (let i = 0; i < 10; i++) {
        const partition = (producer + i) % 4;
        const value = `c${producer}-${i}`;
        const answer = await call('POST', '/topics/spread/produce?acks=all', { partition, value });
        assert.equal(answer.status, 201, JSON.stringify(answer.body));
        acked.push({ producer, partition, offset: answer.body.offset, value });
      }
    }),
  );
  const seen = await readAll(broker.base, 'spread', [0, 1, 2, 3]);
  assert.equal(seen.size, 400);
  checkAcked(acked, seen);
  // The relay's figures reach the shared slots once a second.
  const figures = await until('the extra acceptors to count relayed requests', 5_000, async () => {
    const now = await acceptorFigures(broker.base);
    return ['1', '2'].every((a) => (now.get(a)?.get('relayed') ?? 0) > 0) ? now : null;
  });
  t.diagnostic(`extra acceptors: ${JSON.stringify([...figures].map(([a, m]) => [a, [...m]]))}`);
  for (const acceptor of ['1', '2']) {
    const byOutcome = figures.get(acceptor);
    assert.ok(byOutcome !== undefined, `acceptor ${acceptor} has figures`);
    // 40 connections over 3 sockets: each extra acceptor gets some (all on one has odds of about 1e-7).
    assert.ok(byOutcome.get('served')! > 0, `acceptor ${acceptor} served produce itself`);
    assert.ok(byOutcome.get('relayed')! > 0, `acceptor ${acceptor} relayed requests to the primary`);
    assert.equal(byOutcome.get('relay_failed'), 0);
  }
  // The worker balancer counts every acceptor's requests to the workers, not only the primary's: over the window,
  // the 400 produces, the 40 topic reads (each asks every partition's worker for its offsets) and readAll's two
  // pages per partition. The extra threads post their counts once a second; `until` above waited for that.
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  const look = await clients[0]!('GET', '/admin/workers');
  assert.equal(look.status, 200, JSON.stringify(look.body));
  const windowS = look.body.balancer.rates_window_ms / 1000;
  const counted = look.body.partitions
    .filter((p: { topic: string }) => p.topic === 'spread')
    .reduce((sum: number, p: { requests_per_s: number }) => sum + p.requests_per_s * windowS, 0);
  const expected = 400 + 40 * 4 + 2 * 4;
  t.diagnostic(`the balancer counted ${counted.toFixed(1)} of ${expected} requests over ${windowS} s`);
  assert.ok(Math.abs(counted - expected) <= 4, `the balancer counted ${counted} of ${expected} requests`);
  // /metrics counts every thread's records and request latencies (the extra threads post theirs each second).
  const totals = await until('every produce in /metrics', 5_000, async () => {
    const text = await (await fetch(`${broker.base}/metrics`)).text();
    const records = Number(/^broker_produced_records_total\{topic="spread"\} (\d+)/m.exec(text)?.[1] ?? 0);
    const latencies = Number(
      /^broker_http_request_duration_seconds_count\{operation="produce",status="201"\} (\d+)/m.exec(
        text,
      )?.[1] ?? 0,
    );
    return records === 400 && latencies === 400 ? { records, latencies } : null;
  });
  t.diagnostic(`/metrics: ${JSON.stringify(totals)}`);
});

test('WebSocket consumers on every acceptor thread get the whole stream', { timeout: 60_000 }, async () => {
  const sockets: WebSocket[] = [];
  const received: number[][] = [];
  try {
    for (let i = 0; i < 12; i++) {
      const ws = new WebSocket(
        `${broker.base.replace('http', 'ws')}/ws/consume/spread?partition=0&offset=earliest`,
      );
      const offsets: number[] = [];
      received.push(offsets);
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data));
        if (typeof frame.offset === 'number') offsets.push(frame.offset);
      });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      sockets.push(ws);
    }
    const relayedNow = async () => {
      const text = await (await fetch(`${broker.base}/metrics`)).text();
      return [...text.matchAll(/^broker_acceptor_relayed_websockets\{acceptor="\d+"\} (\d+)/gm)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    };
    // The figures are copied once a second; 12 sockets all on the primary has odds of about 2e-6.
    await until('relayed WebSockets counted', 5_000, async () => ((await relayedNow()) > 0 ? true : null));
    // Records produced now reach every consumer, after the 100 already there.
    const call = client(broker.base);
    for (let i = 0; i < 20; i++) {
      const answer = await call('POST', '/topics/spread/produce', { partition: 0, value: `ws-${i}` });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
    }
    await until('every consumer to get all 120 records of partition 0', 15_000, async () =>
      received.every((r) => r.length >= 120) ? true : null,
    );
    for (const offsets of received) {
      assert.deepEqual(
        offsets,
        Array.from({ length: 120 }, (_, i) => i),
      );
    }
  } finally {
    for (const ws of sockets) ws.close();
  }
});

test('partitions moving between workers while 8 connections produce: every acceptor holds them, nothing lost or reordered', {
  timeout: 90_000,
}, async (t) => {
  const call = client(broker.base);
  assert.equal((await call('POST', '/topics/moving', { num_partitions: 2 })).status, 201);
  const load = produce(broker.base, 'moving', [0, 1], 8);
  try {
    await until('records acknowledged', 10_000, async () => (load.acked.length >= 50 ? true : null));
    const view = await call('GET', '/admin/workers');
    let worker = view.body.partitions.find(
      (p: { topic: string; partition: number }) => p.topic === 'moving' && p.partition === 0,
    ).worker as number;
    for (let i = 0; i < 4; i++) {
      worker = 1 - worker;
      const answer = await call('POST', '/admin/workers/moves', { topic: 'moving', partition: 0, worker });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const before = load.acked.length;
      // Long enough for every producer to write to partition 0 on its new worker: an acceptor that kept
      // routing it to the old one would see its requests refused (unknown partition) after its retries.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await until('records acknowledged after the move', 10_000, async () =>
        load.acked.length >= before + 30 ? true : null,
      );
    }
  } finally {
    await load.stop();
  }
  assert.deepEqual(load.failures, [], 'no produce failed across the moves');
  checkAcked(load.acked, await readAll(broker.base, 'moving', [0, 1]));
  t.diagnostic(`${load.acked.length} acknowledged across 4 moves`);
});

test('SIGTERM stops every acceptor thread cleanly and a restart with two serves every record', {
  timeout: 60_000,
}, async () => {
  const before = await readAll(broker.base, 'spread', [0, 1, 2, 3]);
  const exited = new Promise<number | null>((resolve) => broker.child.once('exit', resolve));
  process.kill(broker.child.pid!, 'SIGTERM');
  assert.equal(await exited, 0, broker.output().slice(-2000));
  assert.ok(existsSync(join(dataDir, 'clean-shutdown')), 'every log closed at its end');
  const second = await spawnBroker(['--data-dir', dataDir, '--threads', '2', '--acceptor-threads', '2']);
  started.push(second);
  const after = await readAll(second.base, 'spread', [0, 1, 2, 3]);
  assert.deepEqual([...after].sort(), [...before].sort());
  broker = second;
});

test('kill -9 under acks=all load over two acceptor threads: every acknowledged record survives a restart with three', {
  timeout: 60_000,
}, async () => {
  // The broker the SIGTERM test restarted, with two acceptor threads.
  const first = broker;
  assert.equal((await client(first.base)('POST', '/topics/crash', { num_partitions: 3 })).status, 201);
  const load = produce(first.base, 'crash', [0, 1, 2], 8);
  await until('records acknowledged', 10_000, async () => (load.acked.length >= 200 ? true : null));
  await killBroker(first, 'SIGKILL');
  await load.stop();
  const acked = [...load.acked];
  const second = await spawnBroker(['--data-dir', dataDir, '--threads', '2', '--acceptor-threads', '3']);
  started.push(second);
  checkAcked(acked, await readAll(second.base, 'crash', [0, 1, 2]));
  await killBroker(second, 'SIGTERM');
});

test('a fatal error on the main thread under load over three acceptor threads: exit code 1, not an abort, and every acknowledged record survives', {
  timeout: 60_000,
}, async () => {
  // A preloaded module (NODE_OPTIONS --import) throws an uncaught error on the broker's main thread when the
  // process gets SIGUSR2: the broker's fatal path (log, process.exit(1)) while the extra acceptor threads hold
  // open connections. A thread that ended with its sockets open would abort the whole process instead.
  const dir = tempDataDir('broker-acceptors-fatal-');
  dirs.push(dir);
  const fault = join(dir, 'fatal-on-sigusr2.mjs');
  writeFileSync(
    fault,
    [
      "import { isMainThread } from 'node:worker_threads';",
      'if (isMainThread) {',
      "  process.on('SIGUSR2', () => setImmediate(() => { throw new Error('injected fatal error'); }));",
      '}',
    ].join('\n'),
  );
  const env = {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(fault).href}`.trim(),
  };
  const first = await spawnBroker(['--data-dir', dir, '--threads', '2', '--acceptor-threads', '3'], 20_000, {
    env,
  });
  started.push(first);
  assert.equal((await client(first.base)('POST', '/topics/fatal', { num_partitions: 3 })).status, 201);
  const load = produce(first.base, 'fatal', [0, 1, 2], 12);
  await until('records acknowledged', 10_000, async () => (load.acked.length >= 200 ? true : null));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    first.child.once('exit', (code, signal) => resolve([code, signal])),
  );
  process.kill(first.child.pid!, 'SIGUSR2');
  const [code, signal] = await exited;
  await load.stop();
  assert.deepEqual([code, signal], [1, null], first.output().slice(-2000));
  assert.match(first.output(), /uncaught error: stopping/);
  const second = await spawnBroker(['--data-dir', dir, '--threads', '2']);
  started.push(second);
  checkAcked([...load.acked], await readAll(second.base, 'fatal', [0, 1, 2]));
  await killBroker(second, 'SIGTERM');
});

test('with authentication every acceptor thread refuses what the primary refuses, and takes ACLs granted later', {
  timeout: 60_000,
}, async () => {
  const files = await authFiles();
  const dir = tempDataDir('broker-acceptors-auth-');
  dirs.push(dir, files.dir);
  const secured = await spawnBroker([
    '--data-dir',
    dir,
    '--threads',
    '2',
    '--acceptor-threads',
    '3',
    ...files.flags,
  ]);
  started.push(secured);
  const admin = client(secured.base, bearer(TOKENS.admin));
  assert.equal((await admin('POST', '/topics/team-a.orders', {})).status, 201);
  // Granted after the start: the extra threads learn it from the primary's metadata snapshots.
  const granted = await admin('POST', '/admin/acls', {
    acls: [
      {
        principal: 'alice',
        resource_type: 'topic',
        pattern_type: 'prefixed',
        resource_name: 'team-a.',
        operation: 'write',
      },
    ],
  });
  assert.equal(granted.status, 201, JSON.stringify(granted.body));
  await new Promise((resolve) => setTimeout(resolve, 200));
  const path = '/topics/team-a.orders/produce?acks=all';
  await Promise.all(
    Array.from({ length: 30 }, async (_, i) => {
      const anonymous = await client(secured.base)('POST', path, { partition: 0, value: `anon-${i}` });
      assert.equal(anonymous.status, 401, JSON.stringify(anonymous.body));
      const bob = await client(secured.base, bearer(TOKENS.bob))('POST', path, {
        partition: 0,
        value: `b-${i}`,
      });
      assert.equal(bob.status, 403, JSON.stringify(bob.body));
      const alice = await client(secured.base, bearer(TOKENS.alice))('POST', path, {
        partition: 0,
        value: `a-${i}`,
      });
      assert.equal(alice.status, 201, JSON.stringify(alice.body));
    }),
  );
  const page = await admin('GET', '/topics/team-a.orders/partitions/0/consume?offset=0&limit=1000');
  assert.equal(page.status, 200, JSON.stringify(page.body));
  const values = (page.body.messages as { value: string }[]).map((m) => m.value).sort();
  assert.deepEqual(
    values,
    Array.from({ length: 30 }, (_, i) => `a-${i}`).sort(),
    'only the permitted writes are there',
  );
  const figures = await until('both extra acceptors to serve some of the 90 connections', 5_000, async () => {
    const now = await acceptorFigures(secured.base);
    return ['1', '2'].every((a) => (now.get(a)?.get('served') ?? 0) > 0) ? now : null;
  });
  assert.equal(figures.size, 2);
  await killBroker(secured, 'SIGTERM');
});
