// Partitions moving between a node's partition workers, on real broker processes with --threads 2:
// - with every hot partition on worker 0, the balancer spreads them while producers run, the per-worker stats
//   show worker 1 appending, and every acknowledged record is there once, at its offset, in order;
// - a move by hand (POST /admin/workers/moves) while acks=all producers and a long poll run: nothing lost or
//   reordered, offsets contiguous, the long poll ends and the next one gets the records; bad input is a 4xx;
// - a restart with a different --threads serves every partition's records (partition files are per partition).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { call, tempDataDir } from './harness.js';
import { type BrokerProcess, killBroker, spawnBroker } from './process.js';

const started: BrokerProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const broker of started) await killBroker(broker);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Ack {
  readonly partition: number;
  readonly offset: number;
  readonly value: string;
}

interface WorkersView {
  readonly workers: {
    worker: number;
    partitions: number;
    appended_bytes: number;
    appended_records: number;
    bytes_per_s: number;
  }[];
  readonly partitions: {
    topic: string;
    partition: number;
    worker: number;
    hashed_worker: number;
    moving: boolean;
  }[];
  readonly balancer: { moves_done: number; last_round: { reason: string } | null };
}

async function workers(base: string): Promise<WorkersView> {
  const answer = await call(base, 'GET', '/admin/workers');
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body as WorkersView;
}

/** Producers writing to the given partitions until stopped; each acknowledged record is kept. */
function produce(
  base: string,
  topic: string,
  partitions: readonly number[],
  acks: 'all' | '1',
  count: number,
) {
  const acked: Ack[] = [];
  const failures: string[] = [];
  let stop = false;
  const body = 'x'.repeat(2000);
  const loops = Array.from({ length: count }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const partition = partitions[(w + i) % partitions.length]!;
      const value = `w${w}-${i}-${body}`;
      const answer = await call(base, 'POST', `/topics/${topic}/produce?acks=${acks}`, { partition, value });
      if (answer.status === 201) {
        acked.push({ partition: answer.body.partition, offset: answer.body.offset, value });
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

/** Every record of the partitions, checking offsets are contiguous from 0. */
async function readAll(base: string, topic: string, partitions: readonly number[]) {
  const seen = new Map<string, { partition: number; offset: number }>();
  for (const p of partitions) {
    let offset = 0;
    for (;;) {
      const page = await call(
        base,
        'GET',
        `/topics/${topic}/partitions/${p}/consume?offset=${offset}&limit=1000`,
      );
      assert.equal(page.status, 200, JSON.stringify(page.body));
      for (const m of page.body.messages) {
        assert.equal(m.offset, offset, `partition ${p}: offsets must be contiguous`);
        assert.ok(!seen.has(m.value), `${String(m.value).slice(0, 20)} appears twice`);
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
    const found = seen.get(ack.value);
    assert.ok(
      found !== undefined,
      `acknowledged ${ack.value.slice(0, 20)} at ${ack.partition}/${ack.offset} was lost`,
    );
    assert.deepEqual(
      found,
      { partition: ack.partition, offset: ack.offset },
      `${ack.value.slice(0, 20)} moved`,
    );
  }
  // Per producer and partition, acknowledged records keep their order.
  const last = new Map<string, number>();
  for (const ack of acks) {
    const key = `${ack.value.split('-')[0]}/${ack.partition}`;
    assert.ok((last.get(key) ?? -1) < ack.offset, 'order within a partition');
    last.set(key, ack.offset);
  }
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

test('with every hot partition on worker 0, the balancer spreads them; no acknowledged record is lost', async (t) => {
  const dataDir = tempDataDir('broker-worker-balance-');
  dirs.push(dataDir);
  const broker = await spawnBroker([
    '--data-dir',
    dataDir,
    '--threads',
    '2',
    '--worker-balance-interval',
    '1s',
  ]);
  started.push(broker);
  assert.equal((await call(broker.base, 'POST', '/topics/hot', { num_partitions: 4 })).status, 201);
  const view = await workers(broker.base);
  const hot = view.partitions.filter((p) => p.topic === 'hot' && p.worker === 0).map((p) => p.partition);
  assert.equal(hot.length, 2, `two of four partitions hash to worker 0: ${JSON.stringify(view.partitions)}`);
  const appendedBefore = view.workers[1]!.appended_bytes;

  const load = produce(broker.base, 'hot', hot, '1', 16);
  const spread = await until('the hot partitions on two workers', 30_000, async () => {
    const v = await workers(broker.base);
    const placed = v.partitions.filter((p) => p.topic === 'hot' && hot.includes(p.partition));
    return new Set(placed.map((p) => p.worker)).size === 2 ? v : null;
  });
  // Worker 1 appends the records of the partition it took over.
  await until('worker 1 appending', 10_000, async () => {
    const v = await workers(broker.base);
    return v.workers[1]!.appended_bytes > appendedBefore + 100_000 ? v : null;
  });
  await load.stop();
  const moved = spread.partitions.filter((p) => p.topic === 'hot' && p.worker !== p.hashed_worker);
  assert.equal(moved.length, 1, 'one hot partition moved');
  assert.ok(spread.balancer.moves_done >= 1);
  assert.ok(load.acked.length > 100, `only ${load.acked.length} acknowledged`);
  checkAcked(load.acked, await readAll(broker.base, 'hot', hot));
  // Steady again: the next rounds keep it where it is (no flapping back).
  const after = await workers(broker.base);
  assert.deepEqual(
    after.partitions.filter((p) => p.topic === 'hot').map((p) => p.worker),
    spread.partitions.filter((p) => p.topic === 'hot').map((p) => p.worker),
  );
  t.diagnostic(
    `${load.acked.length} acknowledged, ${load.failures.length} refused (${load.failures[0] ?? ''})`,
  );
});

test('a move by hand during acks=all produce and a long poll: nothing lost or reordered; bad input is a 4xx', async (t) => {
  const dataDir = tempDataDir('broker-worker-move-');
  dirs.push(dataDir);
  const broker = await spawnBroker([
    '--data-dir',
    dataDir,
    '--threads',
    '2',
    '--worker-balance-interval',
    '0',
  ]);
  started.push(broker);
  assert.equal((await call(broker.base, 'POST', '/topics/moving', { num_partitions: 2 })).status, 201);
  const bad = async (body: unknown, status: number, text: RegExp) => {
    const answer = await call(broker.base, 'POST', '/admin/workers/moves', body);
    assert.equal(answer.status, status, JSON.stringify(answer.body));
    assert.match(JSON.stringify(answer.body), text);
  };
  await bad('not json', 400, /JSON|json/);
  await bad({ topic: 'moving', partition: 0 }, 400, /worker must be an integer from 0 to 1/);
  await bad({ topic: 'moving', partition: 0, worker: 2 }, 400, /worker must be an integer from 0 to 1/);
  await bad({ topic: 'moving', partition: -1, worker: 0 }, 400, /partition must be/);
  await bad({ topic: 'moving', partition: 0, worker: 0, extra: 1 }, 400, /unknown field/);
  await bad({ topic: 'nope', partition: 0, worker: 0 }, 404, /no topic/);
  await bad({ topic: 'moving', partition: 5, worker: 0 }, 404, /no partition 5/);
  const view = await workers(broker.base);
  const p0 = view.partitions.find((p) => p.topic === 'moving' && p.partition === 0)!;
  await bad({ topic: 'moving', partition: 0, worker: p0.worker }, 409, /already/);
  assert.equal((await workers(broker.base)).balancer.moves_done, 0, 'refused requests moved nothing');

  // A long poll waiting at the end of partition 0 when it moves, and a WebSocket stream of partition 0.
  const poll = call(broker.base, 'GET', '/topics/moving/partitions/0/consume?offset=0&wait_ms=20000');
  const streamed: { offset: number; value: string }[] = [];
  let streamClosed: number | null = null;
  const ws = new WebSocket(
    `${broker.base.replace('http', 'ws')}/ws/consume/moving?partition=0&offset=earliest`,
  );
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data));
    if (typeof frame.offset === 'number') streamed.push({ offset: frame.offset, value: frame.value });
  });
  ws.on('close', (code) => {
    streamClosed = code;
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const load = produce(broker.base, 'moving', [0, 1], 'all', 8);
  await until('records acknowledged', 10_000, async () => (load.acked.length >= 50 ? true : null));
  let worker = p0.worker;
  const moves: number[] = [];
  for (let i = 0; i < 4; i++) {
    worker = 1 - worker;
    const answer = await call(broker.base, 'POST', '/admin/workers/moves', {
      topic: 'moving',
      partition: 0,
      worker,
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.to, worker);
    moves.push(answer.body.took_ms);
    const before = load.acked.length;
    await until('records acknowledged after the move', 10_000, async () =>
      load.acked.length >= before + 30 ? true : null,
    );
  }
  const polled = await poll;
  assert.equal(polled.status, 200, JSON.stringify(polled.body));
  await load.stop();
  assert.deepEqual(load.failures, [], 'no produce failed across the moves');
  const seen = await readAll(broker.base, 'moving', [0, 1]);
  checkAcked(load.acked, seen);
  // The stream went on across the moves: every record of partition 0, in order, no gap.
  const onP0 = [...seen.values()].filter((v) => v.partition === 0).length;
  await until('the stream to deliver all of partition 0', 15_000, async () =>
    streamed.length >= onP0 ? true : null,
  );
  assert.equal(streamClosed, null, 'the stream stayed open');
  assert.deepEqual(
    streamed.map((f) => f.offset),
    Array.from({ length: streamed.length }, (_, i) => i),
  );
  for (const f of streamed) assert.deepEqual(seen.get(f.value), { partition: 0, offset: f.offset });
  ws.close();
  const placed = (await workers(broker.base)).partitions.find(
    (p) => p.topic === 'moving' && p.partition === 0,
  )!;
  assert.equal(placed.worker, worker);
  t.diagnostic(`${load.acked.length} acknowledged across 4 moves taking ${moves.join(', ')} ms`);
});

test('a restart with a different --threads serves every partition (files are per partition, not per worker)', async () => {
  const dataDir = tempDataDir('broker-worker-threads-');
  dirs.push(dataDir);
  const first = await spawnBroker(['--data-dir', dataDir, '--threads', '1']);
  started.push(first);
  assert.equal((await call(first.base, 'POST', '/topics/spread', { num_partitions: 5 })).status, 201);
  const load = produce(first.base, 'spread', [0, 1, 2, 3, 4], '1', 5);
  await until('records acknowledged', 10_000, async () => (load.acked.length >= 100 ? true : null));
  await load.stop();
  await killBroker(first, 'SIGTERM');
  const second = await spawnBroker(['--data-dir', dataDir, '--threads', '3']);
  started.push(second);
  const view = await workers(second.base);
  const spread = view.partitions.filter((p) => p.topic === 'spread');
  assert.equal(new Set(spread.map((p) => p.worker)).size, 3, 'five partitions on three workers');
  checkAcked(load.acked, await readAll(second.base, 'spread', [0, 1, 2, 3, 4]));
  // And back to one.
  await killBroker(second, 'SIGTERM');
  const third = await spawnBroker(['--data-dir', dataDir, '--threads', '1']);
  started.push(third);
  checkAcked(load.acked, await readAll(third.base, 'spread', [0, 1, 2, 3, 4]));
});

test('moves right after kill -9, while the workers still recover logs in the background: nothing acknowledged is lost', async (t) => {
  const dataDir = tempDataDir('broker-worker-crash-move-');
  dirs.push(dataDir);
  const args = ['--data-dir', dataDir, '--threads', '2', '--worker-balance-interval', '0'];
  const first = await spawnBroker(args);
  started.push(first);
  const count = 300;
  assert.equal((await call(first.base, 'POST', '/topics/crashed', { num_partitions: count })).status, 201);
  const acked: Ack[] = [];
  for (let round = 0; round < 2; round++) {
    const records = Array.from({ length: count }, (_, p) => ({ partition: p, value: `r${round}-p${p}` }));
    const answer = await call(first.base, 'POST', '/topics/crashed/records', { records });
    assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
    for (const [i, r] of (answer.body.offsets as { partition: number; offset: number }[]).entries()) {
      acked.push({ partition: r.partition, offset: r.offset, value: records[i]!.value });
    }
  }
  await killBroker(first);
  const second = await spawnBroker(args);
  started.push(second);
  // Moved at once, in both directions: some of these are still waiting for recovery when the move starts.
  const view = await workers(second.base);
  const moved = view.partitions.filter((p) => p.topic === 'crashed' && p.partition >= count - 20);
  const metrics = await (await fetch(`${second.base}/metrics`)).text();
  const waiting = [...metrics.matchAll(/^broker_partitions_awaiting_recovery\{[^}]*\} (\S+)$/gm)].reduce(
    (sum, m) => sum + Number(m[1]),
    0,
  );
  for (const p of moved) {
    const answer = await call(second.base, 'POST', '/admin/workers/moves', {
      topic: 'crashed',
      partition: p.partition,
      worker: 1 - p.worker,
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  }
  // Every partition takes a write after the moves, and holds every acknowledged record before it.
  const more = Array.from({ length: count }, (_, p) => ({ partition: p, value: `after-p${p}` }));
  const answer = await call(second.base, 'POST', '/topics/crashed/records', { records: more });
  assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
  for (const [i, r] of (answer.body.offsets as { partition: number; offset: number }[]).entries()) {
    assert.equal(
      r.offset,
      2,
      `partition ${r.partition}: the next offset after the two records before the crash`,
    );
    acked.push({ partition: r.partition, offset: r.offset, value: more[i]!.value });
  }
  const seen = await readAll(
    second.base,
    'crashed',
    Array.from({ length: count }, (_, p) => p),
  );
  checkAcked(acked, seen);
  t.diagnostic(`${waiting} of ${count} partitions awaited recovery when ${moved.length} were moved`);
});
