// A real broker under `ulimit -n 200` (issue 10, item 6): a 50-partition topic is created, produced to and
// consumed from on every partition, after a clean restart and after a kill -9 restart too; the process never
// holds more than its limit and logs no descriptor failure. Client connections past the cap are answered 503
// and closed (and counted): idle ones on their request, WebSocket upgrades at once, so the process stays below
// its limit and a new client is answered rather than left hanging; the broker serves again once they close.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { call, tempDataDir } from './harness.js';
import { type BrokerProcess, killBroker, spawnBroker } from './process.js';

const limit = 200;
const partitions = 50;
const dataDir = tempDataDir('broker-descriptors-');
const started: BrokerProcess[] = [];

after(async () => {
  for (const broker of started) await killBroker(broker);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function start(): Promise<BrokerProcess> {
  const broker = await spawnBroker(['--data-dir', dataDir, '--threads', '2'], 30_000, {
    openFilesLimit: limit,
  });
  started.push(broker);
  return broker;
}

function openDescriptors(broker: BrokerProcess): number {
  return fs.readdirSync(`/proc/${broker.child.pid}/fd`).length;
}

/** One record to every partition (one batch request), then every partition read back from offset 0. */
async function produceAndConsumeAll(broker: BrokerProcess, round: number): Promise<void> {
  const records = Array.from({ length: partitions }, (_, p) => ({ value: `r${round}-p${p}`, partition: p }));
  const produced = await call(broker.base, 'POST', '/topics/wide/records', { records });
  assert.equal(produced.status, 200, JSON.stringify(produced.body));
  for (const offset of produced.body.offsets) assert.equal(offset.error_code, null, JSON.stringify(offset));
  for (let p = 0; p < partitions; p++) {
    const read = await call(broker.base, 'GET', `/topics/wide/partitions/${p}/consume?offset=0&limit=100`);
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.deepEqual(
      read.body.messages.map((m: any) => m.value),
      Array.from({ length: round + 1 }, (_, r) => `r${r}-p${p}`),
      `partition ${p} after round ${round}`,
    );
  }
  assert.ok(openDescriptors(broker) < limit - 16, `${openDescriptors(broker)} descriptors open`);
  assert.doesNotMatch(broker.output(), /EMFILE|storage offline|partition worker/);
}

/** Opens `count` TCP connections that send nothing; resolves once each is connected or failed. */
async function idleConnections(port: number, count: number): Promise<net.Socket[]> {
  const sockets = Array.from({ length: count }, () => net.connect(port, '127.0.0.1'));
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.once('connect', () => resolve());
          s.once('error', () => resolve());
        }),
    ),
  );
  for (const s of sockets) s.on('error', () => {});
  return sockets;
}

test('under ulimit -n 200 a 50-partition topic is served on every partition, across a clean and a kill -9 restart', async () => {
  let broker = await start();
  // Right after start the node may not be in its own broker registry yet ("0 available brokers"): a race
  // outside this test's subject, so creation is retried until the registry has it.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const created = await call(broker.base, 'POST', '/topics/wide', { num_partitions: partitions });
    if (created.status === 201) break;
    assert.match(created.body.message, /0 available broker/, JSON.stringify(created.body));
    assert.ok(Date.now() < deadline, 'the topic is created');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await produceAndConsumeAll(broker, 0);

  await killBroker(broker, 'SIGTERM');
  broker = await start();
  assert.match(broker.output(), /"cleanStart":true/, 'the clean shutdown lets partitions open lazily');
  await produceAndConsumeAll(broker, 1);

  await killBroker(broker, 'SIGKILL');
  broker = await start();
  assert.match(broker.output(), /"cleanStart":false/);
  await produceAndConsumeAll(broker, 2);
  await killBroker(broker, 'SIGTERM');
});

test('connections past the cap are answered 503 and closed, new clients are never left hanging, then service resumes', async () => {
  const broker = await start();
  const budget = JSON.parse(/"descriptors":(\{[^}]*\})/.exec(broker.output())![1]!) as {
    maxConnections: number;
  };
  assert.equal(budget.maxConnections, 44);
  const port = broker.port;
  for (const deadline = Date.now() + 10_000; ; ) {
    const created = await call(broker.base, 'POST', '/topics/held', { num_partitions: 1 });
    if (created.status === 201) break;
    assert.ok(Date.now() < deadline, JSON.stringify(created.body));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const sockets = await idleConnections(port, budget.maxConnections + 10);
  try {
    // The guard samples the descriptors (every 250 ms near the cap): poll until it sheds.
    const deadline = Date.now() + 5000;
    let shed: Response | null = null;
    while (shed === null) {
      const answer = await fetch(`${broker.base}/health`);
      if (answer.status === 503) shed = answer;
      else assert.ok(Date.now() < deadline, 'over the cap, requests are shed');
    }
    assert.equal(shed.headers.get('connection'), 'close');
    assert.equal(shed.headers.get('retry-after'), '1');
    assert.equal(((await shed.json()) as { error_code: number }).error_code, 50302);
  } finally {
    for (const s of sockets) s.destroy();
  }
  // Exhaustion by clients that hold their connections (WebSocket consumers): past the cap each new one is
  // answered 503 at once, the process stays below its limit, and a plain request is answered too.
  const consumers: WebSocket[] = [];
  let refusedUpgrades = 0;
  try {
    for (let i = 0; i < 150; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/consume/held?partition=0`);
      const opened = await new Promise<boolean>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`connection ${i} left hanging`)), 5000);
        ws.once('open', () => {
          clearTimeout(timer);
          resolve(true);
        });
        ws.once('unexpected-response', (_req, res) => {
          clearTimeout(timer);
          assert.equal(res.statusCode, 503);
          resolve(false);
        });
        ws.once('error', () => undefined);
      });
      if (opened) consumers.push(ws);
      else refusedUpgrades++;
      assert.ok(
        openDescriptors(broker) < limit,
        `${openDescriptors(broker)} descriptors after ${i + 1} clients`,
      );
    }
    assert.ok(refusedUpgrades > 0, 'upgrades past the cap were refused');
    const answer = await fetch(`${broker.base}/health`, { signal: AbortSignal.timeout(5000) });
    // At the cap the answer is a 503; a client or two below it (the guard samples) it is served.
    assert.ok(
      [200, 503].includes(answer.status),
      `a new client is answered, not left hanging (${answer.status})`,
    );
  } finally {
    for (const ws of consumers) ws.terminate();
  }
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await fetch(`${broker.base}/health`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    assert.ok(
      Date.now() < deadline,
      `the broker serves again once the connections are gone:\n${broker.output()}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const metrics = await (await fetch(`${broker.base}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const refused = Number(/^broker_connections_refused_total (\d+)/m.exec(metrics)?.[1]);
  assert.ok(refused >= 1, `refusals are counted (${refused})`);
  assert.match(broker.output(), /client connections at the cap/);
  assert.ok(openDescriptors(broker) < limit);
});
