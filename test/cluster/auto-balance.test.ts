// The automatic balance after a broker joins, with real broker processes (issue 14): three brokers started
// with --auto-balance node-add and a topic of 6 partitions with 2 replicas each; a fourth broker joins and,
// without any request, the replicas move until every broker holds within one of the even share (3 each), the
// moves finish, and nothing is left in the plan the operator's route would apply. Every process started is
// killed by PID in `after`.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type ClusterNode, http, TestCluster, waitFor } from './processes.js';

const args = ['--auto-balance', 'node-add'];
let cluster: TestCluster;
let extraDir = '';

before(async () => {
  cluster = await TestCluster.start(3, args);
  extraDir = await mkdtemp(join(tmpdir(), 'broker-auto-balance-'));
});
after(async () => {
  await cluster?.stopAll();
  if (extraDir !== '') await rm(extraDir, { recursive: true, force: true });
});

test('a broker that joins gets its share of replicas without a request', { timeout: 90_000 }, async () => {
  const n1 = cluster.nodes[0]!;
  const created = await http(n1, 'POST', '/topics/spread', { num_partitions: 6, replication_factor: 2 });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const counts = async (): Promise<Map<string, number>> => {
    const got = await http(n1, 'GET', '/topics/spread');
    const out = new Map<string, number>();
    for (const p of got.json.partitions as { replicas: string[] }[])
      for (const id of p.replicas) out.set(id, (out.get(id) ?? 0) + 1);
    return out;
  };
  assert.equal((await counts()).get('n4'), undefined);
  const n4: ClusterNode = { id: 'n4', dataDir: join(extraDir, 'n4'), clusterPort: 0, process: null };
  cluster.nodes.push(n4);
  const joined = performance.now();
  await cluster.startNode(n4, args);
  const settled = await waitFor('the automatic balance to give n4 its share', 60_000, async () => {
    // Moves first, then the placement: a move that ends between the two reads cannot leave a count taken while
    // a partition still listed both its old and its new replica (12 replicas in all once every move is done).
    const moves = (await http(n1, 'GET', '/admin/assignment-plan')).json.moves as unknown[];
    if (moves.length > 0) return undefined;
    const now = await counts();
    const total = [...now.values()].reduce((a, b) => a + b, 0);
    return now.get('n4') === 3 && total === 12 ? now : undefined;
  });
  console.log(
    `# replicas per broker ${(performance.now() - joined).toFixed(0)} ms after n4 started: ${JSON.stringify(Object.fromEntries(settled))}`,
  );
  for (const id of ['n1', 'n2', 'n3', 'n4']) assert.equal(settled.get(id), 3, `${id} holds 3 of 12 replicas`);
  // Nothing left to do: the plan the operator's route would apply is empty.
  const plan = await http(n1, 'GET', '/admin/assignment-plan');
  assert.deepEqual(plan.json.proposed, []);
});
