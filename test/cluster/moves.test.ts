// Partition moves with real broker processes (issue 14): three brokers under continuous acks=all produce; a
// fourth joins and `POST /admin/rebalance` moves replicas to it (each new replica catches up outside the ISR,
// joins it, then the move finishes); afterwards every broker holds within one replica of the even share, and
// after a preferred-leader election within one leadership of it too. Then a broker is decommissioned under
// load, and once it is empty it is killed with SIGKILL: no partition is left under-replicated, and no
// acknowledged record is lost, duplicated or moved (every partition read through a live node, offsets dense).
// An explicit plan, a dry run and the refusals of bad plans are checked on the way. Then the throttle: every
// broker runs with --replication-throttle 4MiB; a move cancelled half-way puts the replicas back, and a
// partition of 8 MB moved to another broker takes about as long as that rate allows, never much less. Then
// PATCH /topics adds partitions, and a move finishes under a new controller after kill -9 of the old one.
// Every process started is killed by PID in `after`.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type ClusterNode, http, TestCluster, waitFor } from './processes.js';
import {
  checkRecords,
  emptyOutcomes,
  getJson,
  readThrough,
  sleep,
  startProducers,
  type WorkloadNode,
} from './replication-workload.js';

const topic = 'moving';
const throttleBytesPerS = 4 * 1024 * 1024;
const throttleArgs = ['--replication-throttle', String(throttleBytesPerS)];
const partitions = 6;
let cluster: TestCluster;
let extraDir = '';

before(async () => {
  cluster = await TestCluster.start(3, throttleArgs);
  extraDir = await mkdtemp(join(tmpdir(), 'broker-moves-'));
});
after(async () => {
  await cluster?.stopAll();
  if (extraDir !== '') await rm(extraDir, { recursive: true, force: true });
});

interface Placement {
  readonly partition: number;
  readonly replicas: string[];
  readonly isr: string[];
  readonly leader: string;
}

async function placement(node: ClusterNode): Promise<Placement[]> {
  const got = await http(node, 'GET', `/topics/${topic}`);
  assert.equal(got.status, 200, JSON.stringify(got.json));
  return got.json.partitions as Placement[];
}

async function movesInProgress(node: ClusterNode): Promise<unknown[]> {
  return (await http(node, 'GET', '/admin/assignment-plan')).json.moves as unknown[];
}

function replicaCounts(parts: readonly Placement[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const p of parts) for (const id of p.replicas) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

test('a joining broker gets its share, a decommissioned broker is emptied, nothing acknowledged is lost', async () => {
  const [n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const created = await http(n1, 'POST', `/topics/${topic}`, {
    num_partitions: partitions,
    replication_factor: 2,
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  for (const node of cluster.nodes) {
    await waitFor(`${node.id} to route ${topic}`, 10_000, async () =>
      (await http(node, 'GET', `/topics/${topic}`)).status === 200 ? true : undefined,
    );
  }
  const outcomes = emptyOutcomes();
  const producerNodes: WorkloadNode[] = cluster.nodes.map((n) => ({
    id: n.id,
    base: () => n.process?.base ?? null,
  }));
  const producers = startProducers(producerNodes, topic, partitions, 'all', outcomes, 'mv');
  try {
    // Bad plans are refused by name, and nothing moves.
    const first = (await placement(n1))[0]!;
    const badFactor = await http(n1, 'POST', '/admin/reassignments', {
      partitions: [{ topic, partition: 0, replicas: ['n1'] }],
    });
    assert.equal(badFactor.status, 400, JSON.stringify(badFactor.json));
    const unknown = await http(n1, 'POST', '/admin/reassignments', {
      partitions: [{ topic, partition: 0, replicas: ['n1', 'nobody'] }],
    });
    assert.equal(unknown.status, 404, JSON.stringify(unknown.json));
    const dry = await http(n2, 'POST', '/admin/reassignments', {
      partitions: [{ topic, partition: 0, replicas: [...first.replicas].reverse() }],
      dry_run: true,
    });
    assert.equal(dry.status, 200, JSON.stringify(dry.json));
    assert.deepEqual((await placement(n1))[0]!.replicas, first.replicas, 'a dry run moves nothing');

    // An explicit plan through a follower node: the preferred leader of partition 0 changes.
    const reversed = [...first.replicas].reverse();
    const explicit = await http(n2, 'POST', '/admin/reassignments', {
      partitions: [{ topic, partition: 0, replicas: reversed }],
    });
    assert.equal(explicit.status, 202, JSON.stringify(explicit.json));
    await waitFor('the explicit move to finish', 15_000, async () => {
      const p0 = (await placement(n1))[0]!;
      return p0.replicas.join() === reversed.join() && (await movesInProgress(n1)).length === 0
        ? true
        : undefined;
    });

    // The leader stayed where it was (it is in the new replicas); an operator's election moves it to the new
    // first replica at once, well before the controller's own 5 s delay would.
    const beforeElection = (await placement(n1))[0]!;
    assert.equal(beforeElection.leader, first.leader, 'a leader among the new replicas keeps leading');
    const asked = performance.now();
    const elected = await http(n2, 'POST', '/admin/preferred-leader-election');
    assert.equal(elected.status, 202, JSON.stringify(elected.json));
    await waitFor('the preferred leader of partition 0', 3_000, async () =>
      (await placement(n1))[0]!.leader === reversed[0] ? true : undefined,
    );
    console.log(`# preferred leader elected ${(performance.now() - asked).toFixed(0)} ms after the request`);

    // A fourth broker joins and gets an even share of the replicas.
    const n4: ClusterNode = { id: 'n4', dataDir: join(extraDir, 'n4'), clusterPort: 0, process: null };
    cluster.nodes.push(n4);
    await cluster.startNode(n4, throttleArgs);
    const rebalanced = await http(n1, 'POST', '/admin/rebalance', {});
    assert.equal(rebalanced.status, 202, JSON.stringify(rebalanced.json));
    assert.ok((rebalanced.json.moves as unknown[]).length > 0, 'the rebalance moves something to n4');
    await waitFor('the rebalance to finish', 30_000, async () =>
      (await movesInProgress(n1)).length === 0 ? true : undefined,
    );
    const balanced = replicaCounts(await placement(n1));
    const shares = ['n1', 'n2', 'n3', 'n4'].map((id) => balanced.get(id) ?? 0);
    console.log(`# replicas per broker after the rebalance: ${JSON.stringify(Object.fromEntries(balanced))}`);
    assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, `uneven: ${shares.join(', ')}`);
    // The plan also evened out the preferred leaders: an election puts leadership there.
    assert.equal((await http(n1, 'POST', '/admin/preferred-leader-election')).status, 202);
    const leads = await waitFor('leaders balanced over the four brokers', 10_000, async () => {
      const counts = new Map<string, number>();
      for (const p of await placement(n1)) counts.set(p.leader, (counts.get(p.leader) ?? 0) + 1);
      const each = ['n1', 'n2', 'n3', 'n4'].map((id) => counts.get(id) ?? 0);
      return Math.max(...each) - Math.min(...each) <= 1 ? each : undefined;
    });
    console.log(`# leaders per broker after the rebalance: ${leads.join(', ')}`);
    await sleep(500);

    // n3 is decommissioned under load, then killed once empty.
    const n3 = cluster.node('n3');
    const drain = await http(n1, 'POST', '/admin/brokers/n3/decommission', {});
    assert.ok([200, 202].includes(drain.status), JSON.stringify(drain.json));
    await waitFor('n3 to be empty', 30_000, async () => {
      const status = await http(n1, 'GET', '/admin/brokers/n3/decommission');
      return status.json.empty === true && (await movesInProgress(n1)).length === 0 ? true : undefined;
    });
    await cluster.kill(n3);
    await sleep(1_000);
    const after = await placement(n1);
    for (const p of after) {
      assert.ok(!p.replicas.includes('n3'), `partition ${p.partition} still on n3`);
      assert.equal(
        p.isr.length,
        p.replicas.length,
        `partition ${p.partition} under-replicated: ${JSON.stringify(p)}`,
      );
    }
    await sleep(500);
  } finally {
    await producers.stop();
  }
  console.log(
    `# ${outcomes.acked.size} acknowledged, ${outcomes.unknown.size} unknown, ${outcomes.refused.size} refused; ${JSON.stringify([...outcomes.errors])}`,
  );
  assert.ok(outcomes.acked.size > 100, `only ${outcomes.acked.size} acknowledged`);
  for (let p = 0; p < partitions; p++) {
    const info = await getJson(n1.process!.base, `/topics/${topic}/partitions/${p}`);
    const records = await readThrough(n1.process!.base, topic, p, info.body.high_watermark as number);
    checkRecords(records, p, outcomes, `partition ${p}`);
  }
});

test('--replication-throttle bounds the rate at which a moved replica catches up', async () => {
  const live = cluster.running();
  const first = live[0]!;
  const created = await http(first, 'POST', '/topics/bulk', { num_partitions: 1, replication_factor: 1 });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const from = (created.json.partitions as { replicas: string[] }[])[0]!.replicas[0]!;
  const to = live.find((n) => n.id !== from)!.id;
  const leader = cluster.node(from);
  await waitFor(`${from} to route bulk`, 10_000, async () =>
    (await http(leader, 'GET', '/topics/bulk')).status === 200 ? true : undefined,
  );
  const value = 'x'.repeat(10_000);
  const records = Array.from({ length: 100 }, () => ({ value, partition: 0 }));
  for (let i = 0; i < 8; i++) {
    const loaded = await http(leader, 'POST', '/topics/bulk/records', { records });
    assert.equal(loaded.status, 200, JSON.stringify(loaded.json));
  }
  const sizeBytes = (await http(leader, 'GET', '/topics/bulk/partitions/0')).json.size_bytes as number;
  assert.ok(sizeBytes > 7_500_000, `the partition holds ${sizeBytes} bytes`);
  // A move cancelled half-way: the replicas are what they were, and the new one is gone.
  const started = await http(first, 'POST', '/admin/reassignments', {
    partitions: [{ topic: 'bulk', partition: 0, replicas: [to] }],
  });
  assert.equal(started.status, 202, JSON.stringify(started.json));
  await sleep(500);
  const cancelled = await http(first, 'DELETE', '/admin/reassignments');
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.json));
  assert.deepEqual(cancelled.json.cancelled, [{ topic: 'bulk', partition: 0 }]);
  await waitFor('the cancelled move to be undone', 10_000, async () => {
    const p = ((await http(first, 'GET', '/topics/bulk')).json.partitions as { replicas: string[] }[])[0]!;
    return p.replicas.join() === from && (await movesInProgress(first)).length === 0 ? true : undefined;
  });
  const startedAt = performance.now();
  const moved = await http(first, 'POST', '/admin/reassignments', {
    partitions: [{ topic: 'bulk', partition: 0, replicas: [to] }],
  });
  assert.equal(moved.status, 202, JSON.stringify(moved.json));
  // Caught up: the new replica is 0 records behind (the leader's figure); the move's finish comes after.
  let caughtUpAt = 0;
  // The plan's progress estimates while the replica is behind: bytes left, net catch-up rate, ETA.
  let estimate: { bytes_left: number; rate_bytes_per_s: number | null; eta_ms: number | null } | null = null;
  let firstBytesLeft = 0;
  await waitFor(
    'the throttled move to finish',
    30_000,
    async () => {
      if (caughtUpAt === 0) {
        const moves = (await http(first, 'GET', '/admin/assignment-plan')).json.moves as {
          adding: {
            records_behind: number | null;
            bytes_left: number;
            rate_bytes_per_s: number | null;
            eta_ms: number | null;
          }[];
        }[];
        const adding = moves[0]?.adding[0];
        if (adding !== undefined && (adding.records_behind ?? 0) > 0) {
          if (firstBytesLeft === 0) firstBytesLeft = adding.bytes_left;
          if (adding.rate_bytes_per_s !== null) estimate = adding;
        }
        if (moves.length === 0 || adding?.records_behind === 0) caughtUpAt = performance.now();
      }
      const p = (await http(first, 'GET', '/topics/bulk')).json.partitions as { replicas: string[] }[];
      return p[0]!.replicas.join() === to ? true : undefined;
    },
    20,
  );
  const elapsedS = (caughtUpAt - startedAt) / 1000;
  const rate = sizeBytes / elapsedS;
  console.log(
    `# ${sizeBytes} bytes caught up from ${from} to ${to} in ${elapsedS.toFixed(2)} s (move finished after ${((performance.now() - startedAt) / 1000).toFixed(2)} s): ${(rate / 1048576).toFixed(2)} MiB/s against a throttle of ${throttleBytesPerS / 1048576} MiB/s`,
  );
  // Within 20 % above (a tenth of a second's worth and one batch may go at once); below, only not far off
  // (a loaded machine is slower, never faster).
  assert.ok(rate <= throttleBytesPerS * 1.2, `${rate} bytes/s is over the throttle`);
  assert.ok(rate >= throttleBytesPerS * 0.6, `${rate} bytes/s is far below the throttle`);
  // The plan showed the gap in bytes (about the partition's size at first) and a rate near the throttle, with an
  // ETA, while the replica caught up.
  console.log(
    `# plan progress: ${firstBytesLeft} bytes left at first; last estimate ${JSON.stringify(estimate)}`,
  );
  assert.ok(
    firstBytesLeft > sizeBytes * 0.5 && firstBytesLeft <= sizeBytes * 1.05,
    `bytes left ${firstBytesLeft} of ${sizeBytes}`,
  );
  const last = estimate as { rate_bytes_per_s: number | null; eta_ms: number | null } | null;
  assert.ok(last !== null && last.rate_bytes_per_s !== null && last.eta_ms !== null, 'a rate and an ETA');
  assert.ok(
    last.rate_bytes_per_s! >= throttleBytesPerS * 0.4 && last.rate_bytes_per_s! <= throttleBytesPerS * 1.5,
    `estimated rate ${last.rate_bytes_per_s} bytes/s against the throttle`,
  );
});

test('PATCH /topics/{t} adds partitions on every node, and refuses to shrink', async () => {
  const live = cluster.running();
  const first = live[0]!;
  const created = await http(first, 'POST', '/topics/grow', { num_partitions: 2, replication_factor: 2 });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const shrink = await http(first, 'PATCH', '/topics/grow', { num_partitions: 1 });
  assert.equal(shrink.status, 400, JSON.stringify(shrink.json));
  const typo = await http(first, 'PATCH', '/topics/grow', { partitions: 4 });
  assert.equal(typo.status, 400, JSON.stringify(typo.json));
  await waitFor(`${live[1]!.id} to route grow`, 10_000, async () =>
    (await http(live[1]!, 'GET', '/topics/grow')).status === 200 ? true : undefined,
  );
  const grown = await http(live[1]!, 'PATCH', '/topics/grow', { num_partitions: 5 });
  assert.equal(grown.status, 200, JSON.stringify(grown.json));
  assert.equal(grown.json.num_partitions, 5);
  for (const node of live) {
    await waitFor(`${node.id} to route 5 partitions`, 10_000, async () => {
      const got = await http(node, 'GET', '/topics/grow');
      return (got.json.partitions as unknown[] | undefined)?.length === 5 ? true : undefined;
    });
    const produced = await http(node, 'POST', '/topics/grow/produce', {
      value: `to-4-from-${node.id}`,
      partition: 4,
    });
    assert.equal(produced.status, 201, JSON.stringify(produced.json));
  }
  const read = await getJson(first.process!.base, '/topics/grow/partitions/4/consume?offset=0&limit=10');
  assert.equal(read.status, 200);
  assert.equal((read.body.messages as unknown[]).length, live.length);
});

test('a move survives the death of the controller: it finishes, and the partition keeps its min ISR', async () => {
  // The decommissioned n3 comes back (empty) so that the metadata group keeps a majority when the controller dies.
  for (const node of cluster.nodes) if (node.process === null) await cluster.startNode(node, throttleArgs);
  const live = cluster.running();
  const first = live[0]!;
  const created = await http(first, 'POST', '/topics/bulk2', { num_partitions: 1, replication_factor: 2 });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const replicas = (created.json.partitions as { replicas: string[] }[])[0]!.replicas;
  for (const node of live) {
    await waitFor(`${node.id} to route bulk2`, 10_000, async () =>
      (await http(node, 'GET', '/topics/bulk2')).status === 200 ? true : undefined,
    );
  }
  const value = 'y'.repeat(10_000);
  const records = Array.from({ length: 100 }, () => ({ value, partition: 0 }));
  for (let i = 0; i < 3; i++) {
    assert.equal((await http(first, 'POST', '/topics/bulk2/records', { records })).status, 200);
  }
  const controller = ((await http(first, 'GET', '/cluster/status')).json.raft as { leader_id: string })
    .leader_id;
  // The new replica is not the controller either: it must outlive the kill to catch up.
  const newcomer = live.map((n) => n.id).find((id) => !replicas.includes(id) && id !== controller)!;
  // Keep the original replica that is not the controller, so one copy outlives the kill.
  const kept = replicas.find((id) => id !== controller) ?? replicas[0]!;
  const target = [newcomer, kept];
  const moved = await http(first, 'POST', '/admin/reassignments', {
    partitions: [{ topic: 'bulk2', partition: 0, replicas: target }],
  });
  assert.equal(moved.status, 202, JSON.stringify(moved.json));
  await sleep(300);
  const victim = cluster.node(controller);
  await cluster.kill(victim);
  const survivor = cluster.running()[0]!;
  let smallestIsr = Number.POSITIVE_INFINITY;
  let lastSeen = '';
  try {
    await waitFor(
      'the move to finish under the new controller',
      30_000,
      async () => {
        const got = await http(survivor, 'GET', '/topics/bulk2').catch(() => null);
        const p = (got?.json.partitions as { replicas: string[]; isr: string[] }[] | undefined)?.[0];
        if (p === undefined) return undefined;
        lastSeen = JSON.stringify(p);
        smallestIsr = Math.min(smallestIsr, p.isr.length);
        return p.replicas.join() === target.join() && p.isr.length === 2 ? true : undefined;
      },
      50,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last seen ${lastSeen}`);
  }
  assert.ok(smallestIsr >= 1, `the ISR fell to ${smallestIsr}`);
  await cluster.startNode(victim, throttleArgs);
  const info = await getJson(survivor.process!.base, '/topics/bulk2/partitions/0');
  assert.equal(info.body.high_watermark, 300, JSON.stringify(info.body));
  console.log(
    `# move of bulk2 from ${replicas.join(',')} to ${target.join(',')} finished after kill -9 of controller ${controller}`,
  );
});
