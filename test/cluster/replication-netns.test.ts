// Replicated partitions across a real network partition (issue 11): three brokers, each in a network
// namespace of its own. Brokers talk over a bridge (10.232.0.0/24); the test process reaches each broker over
// a private link of its own (10.233.N.0/24), so cutting a broker off the bridge isolates it from the other
// brokers but not from its clients: the case where Kafka lost acknowledged writes (an ISR shrunk to a lone
// leader, then a partition). The leader of a partition is cut off for 10 s while producers write with
// acks=all (never retrying) and idempotent producers retry every request until it is acknowledged; then the
// link is restored. Afterwards: no acknowledged write lost or duplicated, every idempotent value exactly once,
// the isolated leader's unreplicated tail cut away, every replica byte-identical below the high watermark.
// Needs root and `ip` (iproute2); skipped with a message when namespaces cannot be created. Every broker is
// killed by PID and every namespace (with its veths and the bridge) deleted in `finally`.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ip, killChildren, makeBridgedNamespaces, removeNamespaces } from './netns.js';
import { waitFor } from './processes.js';
import {
  checkRecords,
  emptyOutcomes,
  firstAckAfter,
  getJson,
  leaderOf,
  type Outcomes,
  readReplicaFiles,
  readThrough,
  sleep,
  startIdempotentProducers,
  startProducers,
  type WorkloadNode,
  waitFullyReplicated,
} from './replication-workload.js';

const binPath = fileURLToPath(new URL('../../bin/broker.mjs', import.meta.url));
const httpPort = 8080;
const clusterPort = 7946;
const partitions = 3;
const cutMs = 10_000;

interface NsNode {
  readonly id: string;
  readonly ns: string;
  /** On the bridge, advertised to the other brokers. */
  readonly address: string;
  /** On the test's private link to this broker. */
  readonly clientAddress: string;
  readonly dataDir: string;
  child: ChildProcess | undefined;
  output: string;
}

test('no acknowledged write lost or duplicated when a leader is cut off from the other brokers for 10 s (network namespaces)', {
  timeout: 240_000,
}, async (t) => {
  const tag = `lr${process.pid % 100_000}`;
  const bridgeNs = `${tag}-br`;
  const root = mkdtempSync(join(tmpdir(), 'broker-repl-netns-'));
  const nodes: NsNode[] = [1, 2, 3].map((i) => ({
    id: `n${i}`,
    ns: `${tag}-n${i}`,
    address: `10.232.0.${i}`,
    clientAddress: `10.233.${i}.2`,
    dataDir: join(root, `n${i}`),
    child: undefined,
    output: '',
  }));
  const created: string[] = [];
  const rootLinks: string[] = [];
  try {
    const skip = makeBridgedNamespaces(bridgeNs, nodes, created);
    if (skip !== null) {
      t.skip(skip);
      return;
    }
    for (const [i, n] of nodes.entries()) {
      // The client link: the root namespace's end stays here, the other end goes into the node's namespace.
      const rootEnd = `${tag}c${i}`;
      ip('link', 'add', rootEnd, 'type', 'veth', 'peer', 'name', `c${i}`, 'netns', n.ns);
      rootLinks.push(rootEnd);
      ip('addr', 'add', `10.233.${i + 1}.1/24`, 'dev', rootEnd);
      ip('link', 'set', rootEnd, 'up');
      ip('netns', 'exec', n.ns, 'ip', 'addr', 'add', `${n.clientAddress}/24`, 'dev', `c${i}`);
      ip('netns', 'exec', n.ns, 'ip', 'link', 'set', `c${i}`, 'up');
    }

    for (const n of nodes) {
      const seeds = n.id === 'n1' ? [] : ['--seeds', `${nodes[0]!.address}:${clusterPort}`];
      const args = [
        'netns',
        'exec',
        n.ns,
        process.execPath,
        binPath,
        'start',
        '--node-id',
        n.id,
        '--host',
        '0.0.0.0',
        '--address',
        n.address,
        '--port',
        String(httpPort),
        '--cluster-port',
        String(clusterPort),
        '--data-dir',
        n.dataDir,
        '--threads',
        '1',
        ...seeds,
      ];
      // `ip netns exec` execs the command, so the child's PID is the broker's.
      const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (c: Buffer) => {
        n.output += c.toString('utf8');
      });
      child.stderr!.on('data', (c: Buffer) => {
        n.output += c.toString('utf8');
      });
      n.child = child;
    }
    const workload: WorkloadNode[] = nodes.map((n) => ({
      id: n.id,
      base: () => (n.child?.exitCode === null ? `http://${n.clientAddress}:${httpPort}` : null),
    }));
    const base = (n: NsNode) => `http://${n.clientAddress}:${httpPort}`;

    await waitFor(
      'three voters under one leader',
      60_000,
      async () => {
        const views = await Promise.all(
          nodes.map((n) => getJson(base(n), '/cluster/status', 1_000).catch(() => null)),
        );
        const leader = views[0]?.body.raft.leader_id;
        return views.every(
          (v) => v?.status === 200 && v.body.raft.voters.length === 3 && v.body.raft.leader_id === leader,
        ) && leader !== null
          ? true
          : undefined;
      },
      250,
    );
    for (const topic of ['split', 'split-idem']) {
      const created = await fetch(`${base(nodes[0]!)}/topics/${topic}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          num_partitions: partitions,
          replication_factor: 3,
          config: { min_insync_replicas: 2 },
        }),
      });
      assert.equal(created.status, 201, await created.text());
      await waitFullyReplicated(workload, topic, partitions, 20_000);
    }

    const outcomes = emptyOutcomes();
    const exactly = emptyOutcomes();
    const producers = startProducers(workload, 'split', partitions, 'all', outcomes, 's');
    const idempotent = startIdempotentProducers(workload, 'split-idem', partitions, exactly, 'x');
    await sleep(1_500);
    const leaderId = await leaderOf(workload[0]!, 'split', 0);
    const victim = nodes.find((n) => n.id === leaderId);
    assert.ok(victim !== undefined, 'split-0 has a leader');
    const link = `v${nodes.indexOf(victim)}b`;
    ip('netns', 'exec', bridgeNs, 'ip', 'link', 'set', link, 'down');
    const cutAt = performance.now();
    const firstAck = await firstAckAfter(outcomes, 0, cutAt + 100, cutMs);
    const remaining = cutMs - (performance.now() - cutAt);
    if (remaining > 0) await sleep(remaining);
    // While cut off, the old leader may not have taken any acks=all write: it has no other in-sync replica.
    const newLeader = await leaderOf(workload.find((w) => w.id !== victim.id)!, 'split', 0);
    ip('netns', 'exec', bridgeNs, 'ip', 'link', 'set', link, 'up');
    await sleep(3_000);
    await producers.stop();
    await idempotent.stop();

    report(
      `cut ${victim.id} (leader of split-0) for ${cutMs} ms`,
      outcomes,
      `; new leader ${newLeader}; first acknowledged write to split-0 ${firstAck === null ? 'none' : `${(firstAck - cutAt).toFixed(0)} ms`} after the cut`,
    );
    report(
      'idempotent',
      exactly,
      `; ${idempotent.figures.retries} retries, ${idempotent.figures.duplicates} duplicates`,
    );
    assert.notEqual(newLeader, victim.id, 'the majority elected another leader');
    assert.ok(firstAck !== null, 'the majority took writes to split-0 while its old leader was cut off');
    assert.deepEqual(idempotent.figures.sequenceErrors, []);

    for (const [topic, o] of [
      ['split', outcomes],
      ['split-idem', exactly],
    ] as const) {
      const parts = await waitFullyReplicated(workload, topic, partitions, 60_000);
      for (const p of parts) {
        const hw = p.high_watermark as number;
        let reference: string | null = null;
        for (const n of nodes) {
          const records = await readThrough(base(n), topic, p.partition, hw);
          const text = JSON.stringify(records);
          if (reference === null) reference = text;
          else assert.equal(text, reference, `${topic}-${p.partition} reads the same through ${n.id}`);
        }
        checkRecords(JSON.parse(reference!), p.partition, o, `${topic}-${p.partition}`);
      }
    }
    for (const n of nodes) assert.equal(n.child!.exitCode, null, `${n.id} is still running`);

    // Stopped cleanly, every replica's files hold the same bytes below the high watermark.
    const highWatermarks = new Map<number, number>();
    for (const p of (await getJson(base(nodes[0]!), '/topics/split')).body.partitions as any[])
      highWatermarks.set(p.partition, p.high_watermark);
    for (const n of nodes) {
      const gone = once(n.child!, 'exit');
      process.kill(n.child!.pid!, 'SIGTERM');
      await gone;
    }
    for (const [partition, hw] of highWatermarks) {
      let reference: Buffer | null = null;
      for (const n of nodes) {
        const replica = readReplicaFiles(n.dataDir, 'split', partition, hw);
        assert.equal(replica.records.length, hw, `${n.id} holds split-${partition} up to ${hw}`);
        if (reference === null) reference = replica.bytes;
        else assert.ok(replica.bytes.equals(reference), `${n.id}'s split-${partition} is byte-identical`);
      }
    }
  } catch (error) {
    for (const n of nodes) {
      const lines = n.output.split('\n').filter((l) => l.includes('"level":5') || l.includes('"level":6'));
      console.log(`# ${n.id} errors:\n${lines.slice(-10).join('\n')}`);
    }
    throw error;
  } finally {
    await killChildren(nodes.map((n) => n.child));
    for (const l of rootLinks) {
      try {
        ip('link', 'del', l);
      } catch {}
    }
    removeNamespaces(created);
    rmSync(root, { recursive: true, force: true });
  }
});

function report(name: string, outcomes: Outcomes, extra: string): void {
  const errors = [...outcomes.errors.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
  console.log(
    `# ${name}: ${outcomes.acked.size} acknowledged, ${outcomes.refused.size} refused, ${outcomes.unknown.size} unknown${extra}`,
  );
  for (const [message, n] of errors) console.log(`#   ${n} x ${message}`);
}
