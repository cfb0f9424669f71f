// A broker that leaves for good, with real broker processes (issue 14): four brokers started with
// --auto-balance continuous and a short --node-down-timeout; a topic of 4 partitions with 2 replicas each gets
// acks=all records; one broker that is not the metadata leader is killed with SIGKILL and never comes back.
// Without any request, its replicas are re-created on the live brokers: every partition ends with 2 replicas,
// both in the ISR, none on the dead broker, and every acknowledged record is still readable. Every process
// started is killed by PID in `after`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { http, TestCluster, waitFor } from './processes.js';

const args = ['--auto-balance', 'continuous', '--node-down-timeout', '2s'];
let cluster: TestCluster;

before(async () => {
  cluster = await TestCluster.start(4, args);
});
after(async () => {
  await cluster?.stopAll();
});

interface PartitionView {
  partition: number;
  replicas: string[];
  isr: string[];
  leader: string;
}

test('the replicas of a broker down past the timeout move to live brokers; nothing acknowledged is lost', {
  timeout: 120_000,
}, async () => {
  const n1 = cluster.nodes[0]!;
  const created = await http(n1, 'POST', '/topics/lasting', { num_partitions: 4, replication_factor: 2 });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const perPartition = 25;
  for (let p = 0; p < 4; p++) {
    const records = Array.from({ length: perPartition }, (_, i) => ({ value: `p${p}-r${i}`, partition: p }));
    const produced = await waitFor(`acks=all produce to partition ${p}`, 20_000, async () => {
      const answer = await http(n1, 'POST', '/topics/lasting/records?acks=all', { records });
      return answer.status === 200 ? answer : undefined;
    });
    assert.equal((produced.json.offsets as unknown[]).length, perPartition);
  }
  const controller = ((await http(n1, 'GET', '/cluster/status')).json.raft as { leader_id: string })
    .leader_id;
  const partitions = (await http(n1, 'GET', '/topics/lasting')).json.partitions as PartitionView[];
  // The victim: a broker holding replicas that is neither the metadata leader nor the node asked here.
  const counts = new Map<string, number>();
  for (const p of partitions) for (const id of p.replicas) counts.set(id, (counts.get(id) ?? 0) + 1);
  const victimId = [...counts.keys()].filter((id) => id !== controller && id !== n1.id).sort()[0]!;
  assert.ok(victimId !== undefined, `a broker to kill among ${JSON.stringify(Object.fromEntries(counts))}`);
  const victim = cluster.node(victimId);
  const asker = cluster.nodes.find((n) => n.id !== victimId && n.id !== controller) ?? n1;
  const held = counts.get(victimId)!;
  await cluster.kill(victim, 'SIGKILL');
  const killedAt = performance.now();

  const settled = await waitFor(`${victimId}'s ${held} replicas re-created elsewhere`, 90_000, async () => {
    const got = await http(asker, 'GET', '/topics/lasting');
    if (got.status !== 200) return undefined;
    const now = got.json.partitions as PartitionView[];
    const moves = (await http(asker, 'GET', '/admin/assignment-plan')).json.moves as unknown[];
    const done = now.every(
      (p) =>
        !p.replicas.includes(victimId) && p.replicas.length === 2 && p.isr.length === 2 && p.leader !== '',
    );
    return done && moves.length === 0 ? now : undefined;
  });
  console.log(
    `# ${held} replicas of ${victimId} re-created ${(performance.now() - killedAt).toFixed(0)} ms after kill -9 (timeout 2 s): ${JSON.stringify(settled.map((p) => p.replicas))}`,
  );
  for (const p of settled) {
    const read = await waitFor(`partition ${p.partition} readable`, 20_000, async () => {
      const answer = await http(
        asker,
        'GET',
        `/topics/lasting/partitions/${p.partition}/consume?offset=0&limit=100`,
      );
      return answer.status === 200 && answer.json.count === perPartition ? answer : undefined;
    });
    const values = (read.json.messages as { value: string }[]).map((m) => m.value);
    assert.deepEqual(
      values,
      Array.from({ length: perPartition }, (_, i) => `p${p.partition}-r${i}`),
    );
  }
});
