// RaftHost membership over real TCP on 127.0.0.1 with real files in a temp dir, the way the control thread
// grows a cluster: the first node bootstraps alone, each later node starts empty, is added as a learner by
// the leader, catches up (through an InstallSnapshot, since the leader compacted its log) and is promoted to
// voter. Then: one change at a time, waitApplied on a follower, leadership transfer, failover after the
// leader stops, and a dead voter replaced by a promoted learner.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createPrng } from '../../src/core/prng.js';
import type { ConfChange, NodeId } from '../../src/core/raft/types.js';
import { type ConfChangeOutcome, RaftHost, type RaftSoftStatus } from '../../src/raft/node-host.js';
import { RealDisk } from '../../src/storage/disk.js';

const tickMs = 20;
const electionTimeoutTicks = 10;
/** A leader must appear within a few randomized election timeouts (each at most 2 x 10 ticks x 20 ms). */
const electionDeadlineMs = 5_000;
/** Catching up a handful of entries or one small snapshot over loopback takes a few heartbeats. */
const catchUpDeadlineMs = 5_000;

async function waitFor(what: string, cond: () => boolean, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A node's state machine: the normal entries it applied as "index:payload", and how often it was restored. */
interface Machine {
  applied: string[];
  restores: number;
}

interface Node {
  readonly id: NodeId;
  readonly dir: string;
  host: RaftHost | undefined;
  machine: Machine;
  /** Every soft status its host reported, in order. */
  readonly events: RaftSoftStatus[];
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function hostOf(n: Node): RaftHost {
  assert.ok(n.host !== undefined, `${n.id} is not running`);
  return n.host;
}

function addressOf(n: Node): string {
  return hostOf(n).address();
}

async function startNode(
  root: string,
  id: NodeId,
  initialVoters: readonly NodeId[],
  peers: readonly Node[],
  seed: number,
): Promise<Node> {
  const machine: Machine = { applied: [], restores: 0 };
  const n: Node = { id, dir: join(root, id), host: undefined, machine, events: [] };
  n.host = await RaftHost.start({
    id,
    dir: n.dir,
    disk: new RealDisk(),
    listenHost: '127.0.0.1',
    listenPort: 0,
    peers: Object.fromEntries(peers.map((p) => [p.id, addressOf(p)])),
    initialVoters,
    tickMs,
    random: createPrng(seed).nextFloat,
    apply: (e) => {
      if (e.kind === 'normal' && e.data.length > 0)
        machine.applied.push(`${e.index}:${decoder.decode(e.data)}`);
    },
    restore: (s) => {
      machine.applied = JSON.parse(decoder.decode(s.data)) as string[];
      machine.restores++;
    },
    raft: { electionTimeoutTicks },
  });
  n.host.onSoftStateChange((s) => n.events.push(s));
  return n;
}

function leaderOf(nodes: readonly Node[]): Node | undefined {
  const leaders = nodes.filter((n) => n.host?.status().role === 'leader');
  return leaders.length === 1 ? leaders[0] : undefined;
}

async function electedLeader(nodes: readonly Node[]): Promise<Node> {
  await waitFor('a leader', () => leaderOf(nodes) !== undefined, electionDeadlineMs);
  return leaderOf(nodes)!;
}

/** Proposes `change`, retrying while the previous change (or the leader's first entry) has not committed. */
async function changeMembership(leader: Node, change: ConfChange): Promise<ConfChangeOutcome> {
  const until = Date.now() + catchUpDeadlineMs;
  for (;;) {
    const outcome = await hostOf(leader).proposeConfChange(change);
    if (outcome.kind !== 'conf_change_pending' || Date.now() > until) return outcome;
    await new Promise((r) => setTimeout(r, tickMs));
  }
}

async function proposeAll(leader: Node, payloads: readonly string[]): Promise<void> {
  const outcomes = await Promise.all(payloads.map((p) => hostOf(leader).propose(encoder.encode(p))));
  for (const o of outcomes) assert.equal(o.kind, 'applied', JSON.stringify(o));
}

/**
 * The leader adds `joiner` (started empty) as a learner, waits until the leader sees it caught up, then
 * promotes it. Every running node learns its address first, as the control thread would from gossip.
 */
async function admit(leader: Node, joiner: Node, members: readonly Node[]): Promise<void> {
  for (const m of members) if (m !== joiner) hostOf(m).setPeer(joiner.id, addressOf(joiner));
  const added = await changeMembership(leader, { op: 'add_learner', nodeId: joiner.id });
  assert.equal(added.kind, 'applied', JSON.stringify(added));
  await waitFor(
    `${joiner.id} to catch up in the leader's progress`,
    () => {
      const match = hostOf(leader).progress()?.get(joiner.id)?.match ?? 0;
      return match >= hostOf(leader).status().commit;
    },
    catchUpDeadlineMs,
  );
  const promoted = await changeMembership(leader, { op: 'promote', nodeId: joiner.id });
  assert.equal(promoted.kind, 'applied', JSON.stringify(promoted));
}

test('a single node bootstraps alone, elects itself at once, and commits', async () => {
  const seed = Number(process.env.RAFT_MEMBERSHIP_SEED ?? Date.now() % 100_000);
  const root = mkdtempSync(join(tmpdir(), 'raft-membership-'));
  let a: Node | undefined;
  try {
    a = await startNode(root, 'a', ['a'], [], seed);
    // The only voter campaigns at start instead of waiting for an election timeout.
    const status = hostOf(a).status();
    assert.equal(status.role, 'leader', 'the only voter is leader as soon as start resolves');
    assert.ok(status.term >= 2, 'the bootstrap term is 1; an election raises it');
    assert.equal(a.events.length, 0, 'no listener call before anything changed');
    const outcome = await hostOf(a).propose(encoder.encode('x'));
    assert.equal(outcome.kind, 'applied');
    assert.equal(hostOf(a).appliedIndex, outcome.kind === 'applied' ? outcome.index : -1);
    assert.deepEqual(hostOf(a).status().conf, { voters: ['a'], learners: [] });
    assert.deepEqual([...(hostOf(a).progress()?.keys() ?? [])], ['a']);
    assert.equal(await hostOf(a).waitApplied(hostOf(a).appliedIndex + 1, 50), false, 'nothing more applies');
    const waiting = hostOf(a).waitApplied(hostOf(a).appliedIndex + 1, 60_000);
    await hostOf(a).stop();
    assert.equal(await waiting, false, 'stop answers every waiter');
  } catch (error) {
    throw new Error(`single-node test failed (replay: RAFT_MEMBERSHIP_SEED=${seed})`, { cause: error });
  } finally {
    await a?.host?.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test('empty nodes join as learners through a snapshot and are promoted; transfer, failover and replacing a dead voter', async (t) => {
  const seed = Number(process.env.RAFT_MEMBERSHIP_SEED ?? Date.now() % 100_000);
  const root = mkdtempSync(join(tmpdir(), 'raft-membership-'));
  const nodes: Node[] = [];
  const running = () => nodes.filter((n) => n.host !== undefined);
  try {
    const a = await startNode(root, 'a', ['a'], [], seed);
    nodes.push(a);
    await electedLeader([a]);
    await proposeAll(
      a,
      Array.from({ length: 30 }, (_, i) => `p${i}`),
    );
    // The leader compacts, so every joiner below must be caught up through an InstallSnapshot.
    const applied = hostOf(a).appliedIndex;
    const compacted = hostOf(a).compact(applied, encoder.encode(JSON.stringify(a.machine.applied)));
    assert.equal(compacted.kind, 'ok');
    assert.equal(hostOf(a).status().firstIndex, applied + 1);

    let b: Node | undefined;
    await t.test(
      'a second node started empty joins as a learner, catches up from a snapshot, and becomes a voter',
      async () => {
        b = await startNode(root, 'b', [], [a], seed + 1);
        nodes.push(b);
        assert.deepEqual(hostOf(b).status().conf, { voters: [], learners: [] });
        await admit(a, b, running());
        assert.deepEqual(hostOf(a).status().conf, { voters: ['a', 'b'], learners: [] });
        await waitFor('b to apply the log', () => b!.machine.applied.length === 30, catchUpDeadlineMs);
        assert.deepEqual(b.machine.applied, a.machine.applied);
        assert.equal(b.machine.restores, 1, 'b was caught up through one InstallSnapshot');
        await waitFor(
          'b to see itself a voter',
          () => hostOf(b!).status().conf.voters.includes('b'),
          catchUpDeadlineMs,
        );
        assert.equal(hostOf(b).status().leaderId, 'a');
      },
    );

    let c: Node | undefined;
    await t.test('while one change is uncommitted another is refused as conf_change_pending', async () => {
      c = await startNode(root, 'c', [], [a, b!], seed + 2);
      nodes.push(c);
      for (const m of running()) if (m !== c) hostOf(m).setPeer('c', addressOf(c));
      // With two voters the add commits only after b answers, so the second proposal meets it in flight.
      const first = hostOf(a).proposeConfChange({ op: 'add_learner', nodeId: 'c' });
      const second = await hostOf(a).proposeConfChange({ op: 'add_learner', nodeId: 'd' });
      assert.deepEqual(second, { kind: 'conf_change_pending' });
      assert.equal((await first).kind, 'applied');
      const invalid = await changeMembership(a, { op: 'add_voter', nodeId: 'a' });
      assert.equal(invalid.kind, 'invalid', JSON.stringify(invalid));
      const notLeader = await hostOf(b!).proposeConfChange({ op: 'promote', nodeId: 'c' });
      assert.deepEqual(notLeader, { kind: 'not_leader', leaderId: 'a' });
    });

    await t.test('the third node catches up and is promoted: three voters', async () => {
      await waitFor(
        'c to catch up',
        () => (hostOf(a).progress()?.get('c')?.match ?? 0) >= hostOf(a).status().commit,
        catchUpDeadlineMs,
      );
      const promoted = await changeMembership(a, { op: 'promote', nodeId: 'c' });
      assert.equal(promoted.kind, 'applied', JSON.stringify(promoted));
      await proposeAll(a, ['after-c']);
      await waitFor('c to apply the log', () => c!.machine.applied.length === 31, catchUpDeadlineMs);
      assert.deepEqual(c!.machine.applied, a.machine.applied);
      assert.equal(c!.machine.restores, 1, 'c was caught up through one InstallSnapshot');
      for (const n of running()) {
        await waitFor(
          `${n.id} to see three voters`,
          () => hostOf(n).status().conf.voters.length === 3,
          catchUpDeadlineMs,
        );
        assert.deepEqual(hostOf(n).status().conf, { voters: ['a', 'b', 'c'], learners: [] });
      }
    });

    await t.test('waitApplied on a follower resolves once the entry can be read there', async () => {
      const follower = c!;
      const index = hostOf(a).status().lastIndex + 1;
      assert.ok(hostOf(follower).appliedIndex < index);
      const waited = hostOf(follower).waitApplied(index, catchUpDeadlineMs);
      const outcome = await hostOf(a).propose(encoder.encode('read-your-write'));
      assert.deepEqual(outcome, { kind: 'applied', index, term: hostOf(a).status().term });
      assert.equal(await waited, true);
      assert.ok(hostOf(follower).appliedIndex >= index);
      assert.ok(follower.machine.applied.includes(`${index}:read-your-write`));
      assert.equal(await hostOf(follower).waitApplied(index, 0), true, 'an applied index answers at once');
      assert.equal(await hostOf(follower).waitApplied(index + 1_000, 30), false, 'times out');
    });

    await t.test('transferLeadership moves the leader, and both sides hear of it', async () => {
      const before = hostOf(a).status().term;
      assert.deepEqual(hostOf(a).transferLeadership('b'), { kind: 'ok' });
      await waitFor('b to lead', () => leaderOf(running()) === b, electionDeadlineMs);
      const won = b!.events.find((e) => e.role === 'leader');
      assert.ok(won !== undefined && won.leaderId === 'b' && won.term > before, JSON.stringify(b!.events));
      await waitFor(
        'a to hear of b',
        () => a.events.some((e) => e.role === 'follower' && e.leaderId === 'b'),
        electionDeadlineMs,
      );
      assert.deepEqual(hostOf(a).transferLeadership('c'), { kind: 'not_leader', leaderId: 'b' });
      await proposeAll(b!, ['after-transfer']);
    });

    await t.test('the leader stops: the remaining two elect a leader, report it, and commit', async () => {
      const stopped = b!;
      const termBefore = hostOf(stopped).status().term;
      await hostOf(stopped).stop();
      stopped.host = undefined;
      const survivors = running();
      const next = await electedLeader(survivors);
      assert.ok(
        next.events.some((e) => e.role === 'leader' && e.term > termBefore),
        'the new leader reported its election',
      );
      await proposeAll(next, ['after-failover']);
    });

    await t.test('a dead voter is removed and a caught-up learner promoted in its place', async () => {
      const leader = await electedLeader(running());
      const removed = await changeMembership(leader, { op: 'remove', nodeId: 'b' });
      assert.equal(removed.kind, 'applied', JSON.stringify(removed));
      for (const n of running()) hostOf(n).removePeer('b');
      assert.deepEqual([...hostOf(leader).status().conf.voters].sort(), ['a', 'c']);
      assert.equal(hostOf(leader).progress()?.has('b'), false);
      await proposeAll(leader, ['two-voters']);

      const d = await startNode(root, 'd', [], running(), seed + 3);
      nodes.push(d);
      await admit(leader, d, running());
      await proposeAll(leader, ['three-again']);
      await waitFor(
        'every running node to apply the same log',
        () => running().every((n) => n.machine.applied.join() === leader.machine.applied.join()),
        catchUpDeadlineMs,
      );
      assert.equal(d.machine.restores, 1);
      assert.deepEqual([...hostOf(leader).status().conf.voters].sort(), ['a', 'c', 'd']);
      assert.equal(leader.machine.applied[leader.machine.applied.length - 1]?.split(':')[1], 'three-again');
    });
  } catch (error) {
    throw new Error(`membership test failed (replay: RAFT_MEMBERSHIP_SEED=${seed})`, { cause: error });
  } finally {
    for (const n of nodes) await n.host?.stop();
    rmSync(root, { recursive: true, force: true });
  }
});
