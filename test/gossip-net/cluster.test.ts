// Gossip agents on real sockets (127.0.0.1, system-chosen ports, one process): a cluster forms through one
// seed, a member that vanishes without leaving is declared failed by every other, a graceful stop is seen as a
// leave, and a member restarted under the same id is alive again everywhere. Timings are fast overrides of the
// broker profile so that each claim is decided within a few seconds; every wait polls a condition against a
// deadline. Each run draws a base seed for the agents' PRNGs and prints it on failure; GOSSIP_NET_SEED=<seed>
// replays the same core decisions (socket timing is not replayable).
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { GOSSIP_DEFAULTS, type GossipConfig } from '../../src/core/gossip/config.js';
import type { MemberStateName } from '../../src/core/gossip/messages.js';
import type { MembershipEvent } from '../../src/core/gossip/node.js';
import { GossipAgent } from '../../src/gossip/agent.js';
import { spawnThread } from '../../src/runtime/threads.js';

const FAST: GossipConfig = {
  ...GOSSIP_DEFAULTS,
  probeIntervalMs: 50,
  probeTimeoutMs: 20,
  gossipIntervalMs: 20,
  // Minimum suspicion timeout 4 * 50 ms = 200 ms at these sizes; at most 6 times that without confirmations.
  suspicionMult: 4,
  pushPullIntervalMs: 1_000,
  deadReclaimMs: 60_000,
};

/** Bounds on each claim; generous next to the expected sub-second times so a loaded machine does not flake. */
const FORM_MS = 5_000;
const DETECT_MS = 6_000;

const baseSeed = Number(process.env.GOSSIP_NET_SEED ?? randomInt(0, 2 ** 31));
let seedOffset = 0;
let running: GossipAgent[] = [];
const events = new Map<GossipAgent, MembershipEvent[]>();

function meta(index: number) {
  return {
    httpHost: '127.0.0.1',
    httpPort: 8000 + index,
    clusterHost: '127.0.0.1',
    clusterPort: 9000 + index,
    rack: `r${index % 2}`,
    version: 'test',
    dataPorts: [],
    kafkaPort: 0,
  };
}

async function startAgent(nodeId: string, index: number, seeds: string[]): Promise<GossipAgent> {
  const agent = new GossipAgent({
    nodeId,
    host: '127.0.0.1',
    port: 0,
    meta: meta(index),
    config: FAST,
    seed: baseSeed + seedOffset++,
    transport: { streamTimeoutMs: 1_000 },
  });
  const seen: MembershipEvent[] = [];
  events.set(agent, seen);
  agent.onEvent((event) => seen.push(event));
  await agent.start({ seeds });
  running.push(agent);
  return agent;
}

/** A first agent and `size - 1` more that join through it alone. */
async function startCluster(size: number): Promise<GossipAgent[]> {
  const seed = await startAgent('node-0', 0, []);
  const agents = [seed];
  for (let i = 1; i < size; i++) agents.push(await startAgent(`node-${i}`, i, [seed.address]));
  return agents;
}

function describeViews(agents: readonly GossipAgent[]): string {
  return agents
    .map((a) => {
      const view = a
        .members()
        .map((m) => `${m.nodeId}=${m.state}@${m.incarnation}`)
        .join(' ');
      return `${a.nodeId}: ${view}`;
    })
    .join('\n');
}

/** Polls `condition` every 10 ms until it holds; fails with the cluster's views and the seed at the deadline. */
async function waitFor(
  what: string,
  deadlineMs: number,
  condition: () => boolean,
  agents: readonly GossipAgent[],
): Promise<number> {
  const startMs = Date.now();
  while (!condition()) {
    if (Date.now() - startMs > deadlineMs) {
      assert.fail(
        `${what}: not within ${deadlineMs} ms (replay with GOSSIP_NET_SEED=${baseSeed})\n${describeViews(agents)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - startMs;
}

function stateAt(agent: GossipAgent, nodeId: string): MemberStateName | undefined {
  return agent.member(nodeId)?.state;
}

function allSeeAllAlive(agents: readonly GossipAgent[]): boolean {
  return agents.every((a) => agents.every((b) => stateAt(a, b.nodeId) === 'alive'));
}

afterEach(async () => {
  await Promise.all(running.map((a) => a.abort()));
  running = [];
  events.clear();
});

describe('gossip agents on loopback sockets', () => {
  it('four agents joining through one seed all see each other alive', async (t) => {
    const agents = await startCluster(4);
    const tookMs = await waitFor('cluster formed', FORM_MS, () => allSeeAllAlive(agents), agents);
    for (const a of agents) {
      assert.equal(a.members().length, 4);
      // Every other member arrived as a join event carrying its metadata.
      const joined = events.get(a)!.filter((e) => e.kind === 'joined');
      assert.deepEqual(
        joined.map((e) => e.member.nodeId).sort(),
        agents
          .filter((b) => b !== a)
          .map((b) => b.nodeId)
          .sort(),
      );
      for (const e of joined) assert.deepEqual(e.member.meta, meta(Number(e.member.nodeId.slice(5))));
      assert.equal(a.transportStats!.malformedIn, 0);
    }
    t.diagnostic(`formed in ${tookMs} ms`);
  });

  it('an agent whose sockets close without leaving is declared failed by every other', async (t) => {
    const agents = await startCluster(4);
    await waitFor('cluster formed', FORM_MS, () => allSeeAllAlive(agents), agents);
    const victim = agents[3]!;
    const others = agents.slice(0, 3);
    await victim.abort();
    const tookMs = await waitFor(
      'victim dead everywhere',
      DETECT_MS,
      () => others.every((a) => stateAt(a, victim.nodeId) === 'dead'),
      others,
    );
    t.diagnostic(`dead everywhere ${tookMs} ms after its sockets closed`);
    for (const a of others) {
      const kinds = events
        .get(a)!
        .filter((e) => e.member.nodeId === victim.nodeId)
        .map((e) => e.kind);
      assert.ok(kinds.includes('failed'), `${a.nodeId} saw ${kinds.join(',')}`);
      assert.ok(!kinds.includes('left'), `${a.nodeId} took a crash for a leave`);
      // The survivors did not suspect one another into death along the way.
      for (const b of others) assert.equal(stateAt(a, b.nodeId), 'alive');
    }
  });

  it('a graceful stop is reported as left by every other member', async (t) => {
    const agents = await startCluster(4);
    await waitFor('cluster formed', FORM_MS, () => allSeeAllAlive(agents), agents);
    const leaver = agents[2]!;
    const others = agents.filter((a) => a !== leaver);
    const stopStartMs = Date.now();
    const result = await leaver.stop();
    t.diagnostic(`stop took ${Date.now() - stopStartMs} ms`);
    assert.equal(result.leaveBroadcastDone, true);
    await waitFor(
      'leaver left everywhere',
      DETECT_MS,
      () => others.every((a) => stateAt(a, leaver.nodeId) === 'left'),
      others,
    );
    for (const a of others) {
      const kinds = events
        .get(a)!
        .filter((e) => e.member.nodeId === leaver.nodeId)
        .map((e) => e.kind);
      assert.ok(kinds.includes('left'), `${a.nodeId} saw ${kinds.join(',')}`);
      assert.ok(!kinds.includes('failed'), `${a.nodeId} took a leave for a failure`);
    }
  });

  it('an agent restarted under the same node id is alive again at every other, with a higher incarnation', async (t) => {
    const agents = await startCluster(4);
    await waitFor('cluster formed', FORM_MS, () => allSeeAllAlive(agents), agents);
    const victim = agents[1]!;
    const others = agents.filter((a) => a !== victim);
    await victim.abort();
    await waitFor(
      'victim dead everywhere',
      DETECT_MS,
      () => others.every((a) => stateAt(a, victim.nodeId) === 'dead'),
      others,
    );
    const deadIncarnation = others[0]!.member(victim.nodeId)!.incarnation;

    // A fresh process: new port, incarnation 0, so it must learn of its own death and outbid it.
    const restarted = await startAgent(victim.nodeId, 1, [agents[0]!.address]);
    assert.notEqual(restarted.address, victim.address);
    const everyone = [...others, restarted];
    const tookMs = await waitFor(
      'restarted agent alive everywhere',
      DETECT_MS,
      () => allSeeAllAlive(everyone),
      everyone,
    );
    t.diagnostic(`alive again everywhere ${tookMs} ms after restart`);
    for (const a of others) {
      const m = a.member(victim.nodeId)!;
      assert.equal(m.address, restarted.address);
      assert.ok(m.incarnation > deadIncarnation, `${a.nodeId} holds incarnation ${m.incarnation}`);
      const kinds = events
        .get(a)!
        .filter((e) => e.member.nodeId === victim.nodeId)
        .map((e) => e.kind);
      assert.ok(kinds.includes('alive_again'), `${a.nodeId} saw ${kinds.join(',')}`);
    }
    assert.ok(restarted.incarnation > deadIncarnation);
  });

  it('an agent inside a worker thread joins and leaves a cluster run by the main thread', async () => {
    const agents = await startCluster(2);
    await waitFor('cluster formed', FORM_MS, () => allSeeAllAlive(agents), agents);
    const worker = spawnThread('test/gossip-net/fixtures/agent-thread', {
      nodeId: 'threaded',
      seedAddress: agents[0]!.address,
      config: FAST,
    });
    const messages: { kind: string; address?: string; leaveBroadcastDone?: boolean }[] = [];
    worker.on('message', (m) => messages.push(m));
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    try {
      await waitFor('thread started', FORM_MS, () => messages.some((m) => m.kind === 'started'), agents);
      const address = messages.find((m) => m.kind === 'started')!.address;
      await waitFor(
        'threaded agent alive at both',
        FORM_MS,
        () => agents.every((a) => stateAt(a, 'threaded') === 'alive'),
        agents,
      );
      assert.equal(agents[1]!.member('threaded')!.address, address);
      worker.postMessage({ kind: 'stop' });
      await waitFor(
        'threaded agent left at both',
        DETECT_MS,
        () => agents.every((a) => stateAt(a, 'threaded') === 'left'),
        agents,
      );
      assert.equal(await exited, 0, 'the thread ends by itself once its agent closed its sockets and timers');
      assert.deepEqual(messages.at(-1), { kind: 'stopped', leaveBroadcastDone: true });
    } finally {
      await worker.terminate();
    }
  });
});
