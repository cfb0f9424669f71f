// A rolling upgrade's gossip on real sockets: a member that speaks only wire version 2 (as builds before the
// Kafka port do: it sends version 2 and drops version 3; simulated with `wireVersionMax: 2`) is the seed, and
// two members of this build join through it. Each member sends every peer the version it speaks, so the three
// form one membership and nobody is ever suspected, and the two upgraded members still learn each other's
// Kafka ports (from their own version-3 exchanges), which the version-2 relays never overwrite. Timings are the
// fast overrides of cluster.test.ts; waits poll a condition against a deadline.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { GOSSIP_DEFAULTS, type GossipConfig } from '../../src/core/gossip/config.js';
import type { MembershipEvent } from '../../src/core/gossip/node.js';
import type { WireVersion } from '../../src/core/gossip/wire-versions.js';
import { GossipAgent } from '../../src/gossip/agent.js';

const FAST: GossipConfig = {
  ...GOSSIP_DEFAULTS,
  probeIntervalMs: 50,
  probeTimeoutMs: 20,
  gossipIntervalMs: 20,
  suspicionMult: 4,
  pushPullIntervalMs: 1_000,
  deadReclaimMs: 60_000,
};
const FORM_MS = 8_000;
/** Push-pull between the two upgraded members happens every second or two at these settings. */
const PORTS_MS = 20_000;
/** After forming, the membership is watched for this many probe intervals without a suspicion. */
const WATCH_PROBE_INTERVALS = 40;

const baseSeed = Number(process.env.GOSSIP_NET_SEED ?? randomInt(0, 2 ** 31));
let running: GossipAgent[] = [];
const events = new Map<GossipAgent, MembershipEvent[]>();

async function startAgent(
  nodeId: string,
  index: number,
  kafkaPort: number,
  wireVersionMax: WireVersion,
  seeds: string[],
): Promise<GossipAgent> {
  const agent = new GossipAgent({
    nodeId,
    host: '127.0.0.1',
    port: 0,
    meta: {
      httpHost: '127.0.0.1',
      httpPort: 8000 + index,
      clusterHost: '127.0.0.1',
      clusterPort: 9000 + index,
      rack: '',
      version: wireVersionMax === 2 ? 'old' : 'new',
      dataPorts: [],
      kafkaPort,
    },
    config: FAST,
    seed: baseSeed + index,
    transport: { streamTimeoutMs: 1_000 },
    joinBackoff: { initialMs: 50, maxMs: 500, jitter: 0.2 },
    wireVersionMax,
  });
  const seen: MembershipEvent[] = [];
  events.set(agent, seen);
  agent.onEvent((event) => seen.push(event));
  await agent.start({ seeds });
  running.push(agent);
  return agent;
}

async function waitFor(what: string, deadlineMs: number, condition: () => boolean, agents: GossipAgent[]) {
  const startMs = Date.now();
  while (!condition()) {
    if (Date.now() - startMs > deadlineMs) {
      const views = agents
        .map(
          (a) =>
            `${a.nodeId}: ${a
              .members()
              .map((m) => `${m.nodeId}=${m.state}@${m.incarnation} kafka ${m.meta.kafkaPort}`)
              .join(', ')}`,
        )
        .join('\n');
      assert.fail(`${what}: not within ${deadlineMs} ms (replay with GOSSIP_NET_SEED=${baseSeed})\n${views}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

afterEach(async () => {
  await Promise.all(running.map((a) => a.abort()));
  running = [];
  events.clear();
});

describe('gossip across wire versions', () => {
  it('a version-2-only seed and two upgraded members form one membership; the upgraded ones learn each other’s Kafka ports', async () => {
    const old = await startAgent('old', 0, 0, 2, []);
    const a = await startAgent('new-a', 1, 9101, 3, [old.address]);
    const b = await startAgent('new-b', 2, 9102, 3, [old.address]);
    const agents = [old, a, b];
    const allAlive = () => agents.every((x) => agents.every((y) => x.member(y.nodeId)?.state === 'alive'));
    await waitFor('one membership', FORM_MS, allAlive, agents);
    await waitFor(
      'the upgraded members know each other’s Kafka ports',
      PORTS_MS,
      () => a.member('new-b')?.meta.kafkaPort === 9102 && b.member('new-a')?.meta.kafkaPort === 9101,
      agents,
    );
    // Stable: many probe rounds later nobody was suspected, and no port went back to unknown.
    const watchStartMs = Date.now();
    while (Date.now() - watchStartMs < WATCH_PROBE_INTERVALS * FAST.probeIntervalMs) {
      assert.ok(allAlive());
      assert.equal(a.member('new-b')?.meta.kafkaPort, 9102);
      assert.equal(b.member('new-a')?.meta.kafkaPort, 9101);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const agent of agents) {
      const bad = events.get(agent)!.filter((e) => e.kind === 'suspect' || e.kind === 'failed');
      assert.deepEqual(
        bad.map((e) => `${e.kind} ${e.member.nodeId}`),
        [],
        `${agent.nodeId} suspected nobody (replay with GOSSIP_NET_SEED=${baseSeed})`,
      );
    }
    // The old member reads only version 2: it knows the others, without their Kafka ports.
    assert.equal(old.member('new-a')?.meta.kafkaPort, 0);
  });
});
