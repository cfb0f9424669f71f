// Replicated partitions under process faults, with real broker processes (issue 11): three brokers, a topic
// of 3 partitions with replication factor 3 and min ISR 2; one producer per node sends unique values with
// acks=all to its node's HTTP port and never retries. Meanwhile the leader of a partition is killed with
// SIGKILL and restarted (5 times, a partition after another), or paused with SIGSTOP for 5 s and continued. Afterwards
// every partition is read through every node and every replica's files are read directly: no acknowledged
// value lost, none at two offsets, offsets dense, nothing of a definite refusal appended, the replicas
// identical below the high watermark. A new leader must take writes within 3 s of a kill at the median.
// A negative control runs beside the kills: a topic written with acks=1, whose losses are reported (they
// are allowed there) and not failed.
// Every process started is killed by PID in `after`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ClusterNode, TestCluster, waitFor } from './processes.js';
import {
  checkRecords,
  emptyOutcomes,
  firstAckAfter,
  getJson,
  type IdempotentFigures,
  leaderOf,
  type Outcomes,
  percentile,
  readReplicaFiles,
  readThrough,
  sleep,
  startIdempotentProducers,
  startProducers,
  type WorkloadNode,
  waitFullyReplicated,
} from './replication-workload.js';

const partitions = 3;

function workloadNodes(cluster: TestCluster): WorkloadNode[] {
  return cluster.nodes.map((n) => ({ id: n.id, base: () => n.process?.base ?? null }));
}

async function createTopic(cluster: TestCluster, name: string): Promise<void> {
  const base = cluster.nodes[0]!.process!.base;
  const response = await fetch(`${base}/topics/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      num_partitions: partitions,
      replication_factor: 3,
      config: { min_insync_replicas: 2 },
    }),
  });
  assert.equal(response.status, 201, await response.text());
  // Every node routes it before the load starts.
  for (const node of cluster.nodes) {
    await waitFor(`${node.id} to know ${name}`, 10_000, async () => {
      const got = await getJson(node.process!.base, `/topics/${name}`).catch(() => null);
      return got?.status === 200 && got.body.partitions.every((p: any) => p.high_watermark === 0)
        ? true
        : undefined;
    });
  }
}

/**
 * Reads every partition through every node's HTTP API and from every replica's files (the brokers stopped
 * first), and checks them; returns how many values of unknown outcome made it in.
 */
async function verify(
  cluster: TestCluster,
  topic: string,
  outcomes: Outcomes,
  options: { readonly lossAllowed: boolean },
): Promise<{ unknownIn: number; lost: number }> {
  const nodes = workloadNodes(cluster);
  const parts = await waitFullyReplicated(nodes, topic, partitions, 60_000);
  let unknownIn = 0;
  let lost = 0;
  for (const p of parts) {
    const hw = p.high_watermark as number;
    let reference: string | null = null;
    for (const node of cluster.nodes) {
      const records = await readThrough(node.process!.base, topic, p.partition, hw);
      const text = JSON.stringify(records);
      if (reference === null) reference = text;
      else assert.equal(text, reference, `partition ${p.partition} reads the same through ${node.id}`);
    }
    const records = JSON.parse(reference!) as { offset: number; value: string }[];
    if (options.lossAllowed) {
      const present = new Set(records.map((r) => r.value));
      for (const [value, a] of outcomes.acked) if (a.partition === p.partition && !present.has(value)) lost++;
    } else {
      unknownIn += checkRecords(records, p.partition, outcomes, `${topic}-${p.partition}`);
    }
  }
  return { unknownIn, lost };
}

/** Stops every broker (SIGTERM) and compares the replicas' files below each partition's high watermark. */
async function compareReplicaFiles(cluster: TestCluster, topic: string, highWatermarks: Map<number, number>) {
  await Promise.all(cluster.nodes.map((node) => cluster.kill(node, 'SIGTERM')));
  for (const [partition, hw] of highWatermarks) {
    let reference: Buffer | null = null;
    for (const node of cluster.nodes) {
      const replica = readReplicaFiles(node.dataDir, topic, partition, hw);
      assert.equal(replica.records.length, hw, `${node.id} holds ${topic}-${partition} up to ${hw}`);
      if (reference === null) reference = replica.bytes;
      else
        assert.ok(
          replica.bytes.equals(reference),
          `${node.id}'s ${topic}-${partition} is byte-identical below ${hw}`,
        );
    }
  }
}

/** Idempotent producers retried every request until acknowledged: each value exactly once, none lost. */
async function verifyIdempotent(
  cluster: TestCluster,
  topic: string,
  outcomes: Outcomes,
  figures: IdempotentFigures,
  name: string,
): Promise<void> {
  report(
    name,
    outcomes,
    `; ${figures.retries} retries, ${figures.duplicates} answered as duplicates of a batch already written`,
  );
  assert.deepEqual(figures.sequenceErrors, [], 'a retry with the same sequence is never refused as a gap');
  assert.ok(outcomes.acked.size > 50, 'the idempotent load kept going');
  assert.ok(outcomes.unknown.size <= 3, 'only the requests in flight at the stop are unresolved');
  await verify(cluster, topic, outcomes, { lossAllowed: false });
}

/** A broker that exited on its own is a failure to explain: its last output goes to the test's log. */
function reportExited(cluster: TestCluster | undefined): void {
  for (const node of cluster?.nodes ?? []) {
    const child = node.process?.child;
    if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
      console.log(`# ${node.id} exited (${child.exitCode ?? child.signalCode}):`);
      for (const line of node.process!.output().slice(-4000).split('\n')) console.log(`#   ${line}`);
    }
  }
}

/**
 * Once every partition is fully replicated again: followers that were killed made their leaders shrink the
 * ISR and expand it again, and nothing is under-replicated, offline or lagging now.
 */
async function checkReplicationMetrics(cluster: TestCluster, topics: readonly string[]): Promise<void> {
  let shrinks = 0;
  let expands = 0;
  await sleep(1_500); // the lag figure is refreshed every second
  const lagOf = async (node: ClusterNode): Promise<number> => {
    const text = await fetch(`${node.process!.base}/metrics`).then((r) => r.text());
    let sum = 0;
    for (const m of text.matchAll(/^broker_replica_max_lag_records(?:\{[^}]*\})? (\S+)$/gm))
      sum += Number(m[1]);
    return sum;
  };
  for (const node of cluster.nodes) {
    // Every partition was fully replicated by its leader's account: a lag seen here is a replica that still
    // believes it leads, which the metadata corrects within a few seconds (the figure is refreshed every
    // second). One that stays for 10 s is a failure: its view of every partition goes to the log first.
    const firstSeen = await lagOf(node);
    if (firstSeen === 0) continue;
    const since = performance.now();
    while ((await lagOf(node)) !== 0 && performance.now() - since < 10_000) await sleep(250);
    const gone = (await lagOf(node)) === 0;
    console.log(
      `# ${node.id} reported a replica lag of ${firstSeen} after the load stopped; ${gone ? `0 after ${(performance.now() - since).toFixed(0)} ms` : 'still after 10 s'}`,
    );
    if (gone) continue;
    console.log(`# ${node.id}'s log ends with:`);
    for (const line of node.process!.output().slice(-6000).split('\n')) console.log(`#   ${line}`);
    console.log("# every node's view:");
    for (const other of cluster.nodes) {
      for (const topic of topics) {
        for (let p = 0; p < partitions; p++) {
          const got = await getJson(other.process!.base, `/topics/${topic}/partitions/${p}`).catch(
            (e: unknown) => ({ status: 0, body: String(e) }),
          );
          console.log(`#   ${other.id} ${topic}-${p}: ${got.status} ${JSON.stringify(got.body)}`);
        }
      }
    }
  }
  for (const node of cluster.nodes) {
    const text = await fetch(`${node.process!.base}/metrics`).then((r) => r.text());
    const value = (name: string): number => {
      const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm');
      let sum = 0;
      let found = false;
      for (const m of text.matchAll(match)) {
        sum += Number(m[1]);
        found = true;
      }
      assert.ok(found, `${node.id} exports ${name}`);
      return sum;
    };
    shrinks += value('kafka_server_replicamanager_isrshrinks_total');
    expands += value('kafka_server_replicamanager_isrexpands_total');
    assert.equal(
      value('kafka_server_replicamanager_underreplicatedpartitions'),
      0,
      `${node.id} under-replicated`,
    );
    assert.equal(value('kafka_controller_kafkacontroller_offlinepartitionscount'), 0, `${node.id} offline`);
    assert.equal(value('broker_replica_max_lag_records'), 0, `${node.id} replica lag`);
  }
  console.log(`# ISR shrinks ${shrinks}, expands ${expands} over the kills`);
  assert.ok(shrinks > 0 && expands > 0, 'killed followers left the ISR and came back, and were counted');
}

function report(name: string, outcomes: Outcomes, extra = ''): void {
  const errors = [...outcomes.errors.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6);
  console.log(
    `# ${name}: ${outcomes.acked.size} acknowledged, ${outcomes.refused.size} refused, ${outcomes.unknown.size} unknown${extra}`,
  );
  for (const [message, n] of errors) console.log(`#   ${n} x ${message}`);
}

describe('replicated partitions under SIGKILL of leaders, real processes', { timeout: 240_000 }, () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await TestCluster.start(3);
    await createTopic(cluster, 'kills');
    await createTopic(cluster, 'kills-acks1');
    await createTopic(cluster, 'kills-idem');
  });
  after(async () => {
    reportExited(cluster);
    await cluster?.stopAll();
  });

  test('no acknowledged write lost or duplicated while leaders are killed and restarted 5 times; acks=1 reported', async () => {
    const nodes = workloadNodes(cluster);
    const outcomes = emptyOutcomes();
    const control = emptyOutcomes();
    const producers = startProducers(nodes, 'kills', partitions, 'all', outcomes, 'a');
    const controlProducers = startProducers(nodes, 'kills-acks1', partitions, '1', control, 'c');
    const exactly = emptyOutcomes();
    const idempotent = startIdempotentProducers(nodes, 'kills-idem', partitions, exactly, 'i');
    const failovers: number[] = [];
    const started = performance.now();
    await sleep(1_000);
    // The load stops however the kills end: a failed assertion must not leave producers looping forever.
    try {
      for (let round = 0, kills = 0; kills < 5 && performance.now() - started < 90_000; round++) {
        const partition = round % partitions;
        const live = cluster.nodes.find((n) => n.process !== null)!;
        const leaderId = await leaderOf(
          { id: live.id, base: () => live.process?.base ?? null },
          'kills',
          partition,
        );
        const victim = leaderId === null ? undefined : cluster.nodes.find((n) => n.id === leaderId);
        if (victim === undefined || victim.process === null) {
          await sleep(500);
          continue;
        }
        const killedAt = performance.now();
        await cluster.kill(victim, 'SIGKILL');
        kills++;
        const firstAck = await firstAckAfter(outcomes, partition, killedAt, 10_000);
        assert.ok(
          firstAck !== null,
          `no write to partition ${partition} acknowledged within 10 s of killing ${victim.id}`,
        );
        failovers.push(firstAck - killedAt);
        await sleep(Math.max(0, 1_000 - (performance.now() - killedAt)));
        await cluster.startNode(victim);
        await sleep(500);
      }
    } finally {
      await producers.stop();
      await controlProducers.stop();
      await idempotent.stop();
    }
    const p50 = percentile(failovers, 50);
    report(
      'SIGKILL acks=all',
      outcomes,
      `; kill to first acknowledged write on the new leader: p50 ${p50.toFixed(0)} ms, max ${Math.max(...failovers).toFixed(0)} ms over ${failovers.length} kills`,
    );
    assert.ok(failovers.length >= 5, `only ${failovers.length} kills in 90 s`);
    assert.ok(p50 <= 3_000, `a new leader takes writes ${p50.toFixed(0)} ms after a kill at the median`);
    assert.ok(outcomes.acked.size > 100, 'the load kept going');

    const checked = await verify(cluster, 'kills', outcomes, { lossAllowed: false });
    console.log(
      `# SIGKILL acks=all: ${checked.unknownIn} of ${outcomes.unknown.size} unknown outcomes were written`,
    );
    const controlChecked = await verify(cluster, 'kills-acks1', control, { lossAllowed: true });
    report('SIGKILL acks=1 (negative control)', control, `; acknowledged but lost: ${controlChecked.lost}`);
    await verifyIdempotent(cluster, 'kills-idem', exactly, idempotent.figures, 'SIGKILL idempotent');
    await checkReplicationMetrics(cluster, ['kills', 'kills-acks1', 'kills-idem']);

    const highWatermarks = new Map<number, number>();
    const parts = (await getJson(cluster.nodes[0]!.process!.base, '/topics/kills')).body.partitions as any[];
    for (const p of parts) highWatermarks.set(p.partition, p.high_watermark);
    await compareReplicaFiles(cluster, 'kills', highWatermarks);
  });
});

describe('replicated partitions under SIGSTOP of leaders, real processes', { timeout: 180_000 }, () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await TestCluster.start(3);
    await createTopic(cluster, 'pauses');
    await createTopic(cluster, 'pauses-idem');
  });
  after(async () => {
    reportExited(cluster);
    await cluster?.stopAll();
  });

  test('no acknowledged write lost or duplicated while leaders are paused for 5 s', async () => {
    const nodes = workloadNodes(cluster);
    const outcomes = emptyOutcomes();
    const producers = startProducers(nodes, 'pauses', partitions, 'all', outcomes, 'p');
    const exactly = emptyOutcomes();
    const idempotent = startIdempotentProducers(nodes, 'pauses-idem', partitions, exactly, 'q');
    const failovers: number[] = [];
    await sleep(1_000);
    try {
      for (let round = 0; round < 2; round++) {
        const partition = round % partitions;
        const leaderId = await leaderOf(nodes[0]!, 'pauses', partition);
        const victim: ClusterNode | undefined = cluster.nodes.find((n) => n.id === leaderId);
        assert.ok(victim?.process, `partition ${partition} has a leader`);
        const pid = victim.process.child.pid!;
        const pausedAt = performance.now();
        process.kill(pid, 'SIGSTOP');
        // Requests sent to the paused node wait with it; the others' must go on once a new leader is elected.
        const firstAck = await firstAckAfter(outcomes, partition, pausedAt + 50, 5_000);
        await sleep(Math.max(0, 5_000 - (performance.now() - pausedAt)));
        process.kill(pid, 'SIGCONT');
        if (firstAck !== null) failovers.push(firstAck - pausedAt);
        await sleep(3_000);
      }
    } finally {
      await producers.stop();
      await idempotent.stop();
    }
    report(
      'SIGSTOP acks=all',
      outcomes,
      `; pause to first acknowledged write elsewhere: ${failovers.map((f) => f.toFixed(0)).join(', ')} ms (${failovers.length} of 2 pauses failed over before the node continued)`,
    );
    assert.ok(outcomes.acked.size > 50, 'the load kept going');
    const checked = await verify(cluster, 'pauses', outcomes, { lossAllowed: false });
    console.log(
      `# SIGSTOP acks=all: ${checked.unknownIn} of ${outcomes.unknown.size} unknown outcomes were written`,
    );
    await verifyIdempotent(cluster, 'pauses-idem', exactly, idempotent.figures, 'SIGSTOP idempotent');
    const highWatermarks = new Map<number, number>();
    const parts = (await getJson(cluster.nodes[0]!.process!.base, '/topics/pauses')).body.partitions as any[];
    for (const p of parts) highWatermarks.set(p.partition, p.high_watermark);
    await compareReplicaFiles(cluster, 'pauses', highWatermarks);
  });
});
