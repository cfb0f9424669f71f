// Three RaftHosts in one process over real TCP on 127.0.0.1 with real files in a temp dir: they elect a
// leader, replicate and apply proposals in the same order everywhere, elect a new leader after the leader
// stops, and a stopped node restarted from its directory catches up (including through a compacted log).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createPrng } from '../../src/core/prng.js';
import type { NodeId } from '../../src/core/raft/types.js';
import { RaftHost } from '../../src/raft/node-host.js';
import { RealDisk } from '../../src/storage/disk.js';

const ids = ['a', 'b', 'c'] as const;
const tickMs = 20;
const electionTimeoutTicks = 10;
/** A leader must appear within a few randomized election timeouts (each at most 2 x 10 ticks x 20 ms). */
const electionDeadlineMs = 5_000;

async function waitFor(what: string, cond: () => boolean, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A node's state machine: the normal entries it applied, as "index:payload". */
interface Machine {
  applied: string[];
}

interface Node {
  readonly id: NodeId;
  readonly dir: string;
  port: number;
  host: RaftHost | undefined;
  machine: Machine;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

async function startNode(n: Node, peers: Record<NodeId, string>, seed: number): Promise<void> {
  const machine: Machine = { applied: [] };
  n.machine = machine;
  n.host = await RaftHost.start({
    id: n.id,
    dir: n.dir,
    disk: new RealDisk(),
    listenHost: '127.0.0.1',
    listenPort: n.port,
    peers,
    initialVoters: [...ids],
    tickMs,
    random: createPrng(seed).nextFloat,
    apply: (e) => {
      if (e.kind === 'normal' && e.data.length > 0)
        machine.applied.push(`${e.index}:${decoder.decode(e.data)}`);
    },
    restore: (s) => {
      machine.applied = JSON.parse(decoder.decode(s.data)) as string[];
    },
    raft: { electionTimeoutTicks },
  });
  n.port = Number(n.host.address().split(':').pop());
}

function leaderOf(nodes: readonly Node[]): Node | undefined {
  const leaders = nodes.filter((n) => n.host?.status().role === 'leader');
  return leaders.length === 1 ? leaders[0] : undefined;
}

test('three hosts over TCP elect a leader, apply 100 proposals in one order, survive the leader stopping, and a restarted node catches up', async () => {
  const seed = Number(process.env.RAFT_CLUSTER_SEED ?? Date.now() % 100_000);
  const root = mkdtempSync(join(tmpdir(), 'raft-cluster-'));
  const nodes: Node[] = ids.map((id) => ({
    id,
    dir: join(root, id),
    port: 0,
    host: undefined,
    machine: { applied: [] },
  }));
  try {
    for (const [i, n] of nodes.entries()) await startNode(n, {}, seed + i);
    for (const n of nodes) {
      for (const p of nodes) if (p !== n) n.host!.setPeer(p.id, `127.0.0.1:${p.port}`);
    }
    const addresses = Object.fromEntries(nodes.map((n) => [n.id, `127.0.0.1:${n.port}`]));

    const electedAt = Date.now();
    await waitFor('a leader', () => leaderOf(nodes) !== undefined, electionDeadlineMs);
    const firstElectionMs = Date.now() - electedAt;
    const leader = leaderOf(nodes)!;

    // 100 proposals in flight at once; each resolves when applied on the leader.
    const proposedAt = Date.now();
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, (_, i) => leader.host!.propose(encoder.encode(`p${i}`))),
    );
    for (const o of outcomes) assert.equal(o.kind, 'applied', JSON.stringify(o));
    const hundredAppliedMs = Date.now() - proposedAt;
    const indexes = outcomes.map((o) => (o.kind === 'applied' ? o.index : -1));
    assert.deepEqual(
      indexes,
      [...indexes].sort((x, y) => x - y),
      'proposal order is log order',
    );
    await waitFor(
      'every node to apply 100 entries',
      () => nodes.every((n) => n.machine.applied.length === 100),
      10_000,
    );
    for (const n of nodes)
      assert.deepEqual(n.machine.applied, leader.machine.applied, `${n.id} applied another order`);
    assert.deepEqual(
      leader.machine.applied.map((s) => s.split(':')[1]),
      Array.from({ length: 100 }, (_, i) => `p${i}`),
    );

    // A follower compacts its log so that its restart below goes through snapshot + remaining log.
    const follower = nodes.find((n) => n !== leader)!;
    const applied = follower.host!.status().applied;
    const compacted = follower.host!.compact(
      applied,
      encoder.encode(JSON.stringify(follower.machine.applied)),
    );
    assert.equal(compacted.kind, 'ok');
    assert.equal(follower.host!.status().firstIndex, applied + 1);

    // Stop the leader: the other two elect a new one within the bound and keep committing.
    await leader.host!.stop();
    leader.host = undefined;
    const stoppedAt = Date.now();
    const survivors = nodes.filter((n) => n !== leader);
    await waitFor('a new leader', () => leaderOf(survivors) !== undefined, electionDeadlineMs);
    const failoverMs = Date.now() - stoppedAt;
    const newLeader = leaderOf(survivors)!;
    const more = await Promise.all(
      Array.from({ length: 20 }, (_, i) => newLeader.host!.propose(encoder.encode(`q${i}`))),
    );
    for (const o of more) assert.equal(o.kind, 'applied', JSON.stringify(o));
    await waitFor(
      'survivors to apply 120 entries',
      () => survivors.every((n) => n.machine.applied.length === 120),
      10_000,
    );

    // Restart the old leader from its directory on its old port: it catches up to the same 120 entries.
    const expected = [...newLeader.machine.applied];
    const peersOf = (id: NodeId) => Object.fromEntries(Object.entries(addresses).filter(([p]) => p !== id));
    await startNode(leader, peersOf(leader.id), seed + 10);
    assert.equal(leader.host!.status().recovery.droppedTailBytes, 0);
    await waitFor('the restarted node to catch up', () => leader.machine.applied.length === 120, 10_000);
    assert.deepEqual(leader.machine.applied, expected);

    // The compacted follower restarts too (whether or not it leads now), from snapshot plus log.
    await follower.host!.stop();
    await startNode(follower, peersOf(follower.id), seed + 20);
    assert.equal(follower.host!.status().firstIndex, applied + 1, 'the compaction survived the restart');
    await waitFor('the compacted node to catch up', () => follower.machine.applied.length === 120, 10_000);
    assert.deepEqual(follower.machine.applied, expected);
    await waitFor('a leader after both restarts', () => leaderOf(nodes) !== undefined, electionDeadlineMs);
    console.log(
      `seed ${seed}: first election ${firstElectionMs} ms, 100 proposals applied ${hundredAppliedMs} ms, failover ${failoverMs} ms (replay: RAFT_CLUSTER_SEED=${seed})`,
    );
  } catch (error) {
    throw new Error(`cluster test failed (replay: RAFT_CLUSTER_SEED=${seed})`, { cause: error });
  } finally {
    for (const n of nodes) await n.host?.stop();
    rmSync(root, { recursive: true, force: true });
  }
});
