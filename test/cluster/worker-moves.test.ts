// Moves between a node's partition workers in a 3-node cluster (issue 14), real processes with --threads 2 and
// a topic of replication factor 3, under acks=all producers sending through every node (so other nodes forward
// to the leader's worker): the leader's replica of a partition moves to its other worker, then back, and a
// follower's replica moves too. Followers fetching from the moved leader get MOVED answers and follow it to its
// new port; acceptors forwarding produces learn it the same way. Afterwards every replica is in the ISR with the
// leader's log end, and every acknowledged record is on every node once, at its offset, offsets dense.
// Every process started is killed by PID in `after`.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type BrokerProcess, killBroker, spawnBroker } from '../broker/process.js';
import {
  checkRecords,
  emptyOutcomes,
  getJson,
  readThrough,
  sleep,
  startProducers,
  type WorkloadNode,
  waitFullyReplicated,
} from './replication-workload.js';

const topic = 'wmoves';
const partitions = 2;
const processes: BrokerProcess[] = [];
let root = '';

after(async () => {
  for (const p of processes) await killBroker(p);
  if (root !== '') await rm(root, { recursive: true, force: true });
});

async function post(base: string, path: string, body: unknown) {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, body: (await response.json()) as any };
}

async function workerOf(base: string, partition: number): Promise<number> {
  const got = await getJson(base, '/admin/workers');
  assert.equal(got.status, 200, JSON.stringify(got.body));
  const p = (got.body.partitions as any[]).find((x) => x.topic === topic && x.partition === partition);
  assert.ok(p !== undefined, `no replica of ${topic}-${partition} listed: ${JSON.stringify(got.body)}`);
  return p.worker as number;
}

test('a leader partition moved between workers while followers replicate from it: nothing acknowledged lost', async () => {
  root = await mkdtemp(join(tmpdir(), 'broker-worker-moves-'));
  const args = (id: string) => [
    '--node-id',
    id,
    '--data-dir',
    join(root, id),
    '--threads',
    '2',
    '--worker-balance-interval',
    '0',
  ];
  const n1 = await spawnBroker(args('n1'), 30_000);
  processes.push(n1);
  const seeds = ['--seeds', `127.0.0.1:${n1.clusterPort}`];
  const others = await Promise.all(['n2', 'n3'].map((id) => spawnBroker([...args(id), ...seeds], 30_000)));
  processes.push(...others);
  const nodes = new Map([
    ['n1', n1],
    ['n2', others[0]!],
    ['n3', others[1]!],
  ]);
  const created = await post(n1.base, `/topics/${topic}`, {
    num_partitions: partitions,
    replication_factor: 3,
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const workload: WorkloadNode[] = [...nodes].map(([id, p]) => ({ id, base: () => p.base }));
  await waitFullyReplicated(workload, topic, partitions, 20_000);

  const outcomes = emptyOutcomes();
  // Two producers per node (distinct ids: a record's value names its producer).
  const twice = [...workload, ...workload.map((w) => ({ id: `${w.id}b`, base: w.base }))];
  const producers = startProducers(twice, topic, partitions, 'all', outcomes, 'wm');
  try {
    await sleep(1_000);
    const info = await getJson(n1.base, `/topics/${topic}/partitions/0`);
    const leaderId = info.body.leader as string;
    const leader = nodes.get(leaderId)!;
    const followerId = [...nodes.keys()].find((id) => id !== leaderId)!;
    const follower = nodes.get(followerId)!;
    const ackedBefore = () => outcomes.acked.size;
    // The leader's replica to its other worker and back, the follower's to its other worker.
    for (const [base, what] of [
      [leader.base, `leader ${leaderId}`],
      [follower.base, `follower ${followerId}`],
      [leader.base, `leader ${leaderId}`],
    ] as const) {
      const from = await workerOf(base, 0);
      const moved = await post(base, '/admin/workers/moves', { topic, partition: 0, worker: 1 - from });
      assert.equal(moved.status, 200, `${what}: ${JSON.stringify(moved.body)}`);
      assert.equal(await workerOf(base, 0), 1 - from);
      const before = ackedBefore();
      // Records keep being acknowledged on partition 0: the followers found the moved leader (acks=all needs
      // them), and forwarded produces found its new worker.
      const deadline = performance.now() + 15_000;
      const onP0 = () => [...outcomes.acked.values()].filter((a) => a.partition === 0).length;
      const p0Before = onP0();
      while (ackedBefore() < before + 20 || onP0() < p0Before + 10) {
        assert.ok(
          performance.now() < deadline,
          `${what}: acks=all produces to partition 0 resume after the move`,
        );
        await sleep(100);
      }
      console.log(`# moved ${what}'s replica of ${topic}-0 from worker ${from} in ${moved.body.took_ms} ms`);
    }
  } finally {
    await producers.stop();
  }
  const replicated = await waitFullyReplicated(workload, topic, partitions, 20_000);
  for (const p of replicated) {
    for (const [id, node] of nodes) {
      const records = await readThrough(node.base, topic, p.partition, p.high_watermark);
      checkRecords(records, p.partition, outcomes, `${id} ${topic}-${p.partition}`);
    }
  }
  const errors = [...outcomes.errors].map(([e, n]) => `${n}x ${e}`).join('; ');
  console.log(
    `# ${outcomes.acked.size} acknowledged, ${outcomes.unknown.size} unknown, ${outcomes.refused.size} refused: ${errors}`,
  );
  assert.ok(outcomes.acked.size > 100, `only ${outcomes.acked.size} acknowledged`);
});
