// Gossip heals after a real network partition: three brokers, each in a network namespace of its own joined by
// a bridge (10.231.0.0/24, a subnet that exists only inside the namespaces this test creates). One node's link
// is cut for longer than detection plus the dead-member reclaim time (so each side forgets the other), then
// restored. The claim: within seconds of the heal every node holds every other alive and unfenced, and they
// agree on one Raft leader. Before the periodic reconnect, gossip stayed split for good (each side `unknown`,
// the cut node `fenced`). Needs root and `ip` (iproute2); skipped with a message when namespaces cannot be
// created. Every namespace (and with it every veth and the bridge) is deleted in `finally`.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ip, killChildren, makeBridgedNamespaces, removeNamespaces } from './netns.js';
import type { StatusView } from './processes.js';
import { waitFor } from './processes.js';

const binPath = fileURLToPath(new URL('../../bin/broker.mjs', import.meta.url));
const subnet = '10.231.0';
const httpPort = 8080;
const clusterPort = 7946;
/** How long the brokers remember a dead member (`--gossip-dead-reclaim`; 30 s by default, shorter here). */
const deadReclaimMs = 10_000;
/** Detection (about 4 s) plus the reclaim time plus margin: when the link comes back, both sides forgot. */
const cutMs = 4_000 + deadReclaimMs + 4_000;
/** The claim: merged within this long after the heal (the sim shows under 1 s; real timers and Raft add some). */
const healBudgetMs = 10_000;

interface NsNode {
  readonly id: string;
  readonly ns: string;
  readonly address: string;
  child: ChildProcess | undefined;
  output: string;
}

/** GET a JSON path from inside the node's namespace (the test's own namespace has no route to the subnet). */
function getJson(node: NsNode, path: string): unknown {
  const script = `fetch('http://${node.address}:${httpPort}${path}',{signal:AbortSignal.timeout(1500)}).then(r=>r.text()).then(t=>process.stdout.write(t),()=>process.exit(1))`;
  try {
    const out = execFileSync('ip', ['netns', 'exec', node.ns, process.execPath, '-e', script], {
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5_000,
    });
    return JSON.parse(out.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Every node's view and its latest log lines, for a failure message. */
function describe(nodes: readonly NsNode[]): string {
  return nodes
    .map((n) => {
      const v = getJson(n, '/cluster/status') as StatusView | undefined;
      const members = v?.members.map((m) => `${m.node_id}=${m.state}${m.fenced ? '/fenced' : ''}`).join(' ');
      const lines = n.output.split('\n').filter((l) => !l.includes('"config"'));
      return `--- ${n.id}: leader ${v?.raft.leader_id} voters ${v?.raft.voters.join(',')} members ${members}\n${lines.slice(-30).join('\n')}`;
    })
    .join('\n');
}

test('gossip re-merges within seconds after a partition longer than the reclaim time (network namespaces)', {
  timeout: 150_000,
}, async (t) => {
  const tag = `lb${process.pid % 100_000}`;
  const bridgeNs = `${tag}-br`;
  const nodes: NsNode[] = [1, 2, 3].map((i) => ({
    id: `n${i}`,
    ns: `${tag}-n${i}`,
    address: `${subnet}.${i}`,
    child: undefined,
    output: '',
  }));
  const created: string[] = [];
  const root = mkdtempSync(join(tmpdir(), 'broker-netns-'));
  try {
    const skip = makeBridgedNamespaces(bridgeNs, nodes, created);
    if (skip !== null) {
      t.skip(skip);
      return;
    }

    // Started together (the joiners retry until the founder listens), each in its namespace.
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
        n.address,
        '--address',
        n.address,
        '--port',
        String(httpPort),
        '--cluster-port',
        String(clusterPort),
        '--data-dir',
        join(root, n.id),
        '--threads',
        '1',
        '--gossip-dead-reclaim',
        String(deadReclaimMs),
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

    /** Every node holds all three alive and unfenced (gossip merged, and the leader lifted the fence). */
    const gossipMerged = (views: StatusView[]): boolean =>
      views.every((v) => v.members.length === 3 && v.members.every((m) => m.state === 'alive' && !m.fenced));
    /** Every node follows the same leader among three voters. */
    const raftAgreed = (views: StatusView[]): boolean => {
      const leader = views[0]!.raft.leader_id;
      return views.every((v) => v.raft.voters.length === 3 && leader !== null && v.raft.leader_id === leader);
    };
    const allViews = (): StatusView[] | undefined => {
      const views = nodes.map((n) => getJson(n, '/cluster/status') as StatusView | undefined);
      return views.some((v) => v === undefined) ? undefined : (views as StatusView[]);
    };
    const merged = async (): Promise<true | undefined> => {
      const views = allViews();
      return views !== undefined && gossipMerged(views) && raftAgreed(views) ? true : undefined;
    };
    await waitFor('three voters, all alive everywhere', 60_000, merged, 250).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${describe(nodes)}`);
    });

    // Cut n3 off long enough for everyone to declare the other side dead and then forget it.
    ip('netns', 'exec', bridgeNs, 'ip', 'link', 'set', 'v2b', 'down');
    const cutAt = performance.now();
    await waitFor(
      'n1 to see n3 dead',
      15_000,
      async () => {
        const v = getJson(nodes[0]!, '/cluster/status') as StatusView | undefined;
        return v?.members.find((m) => m.node_id === 'n3')?.state === 'dead' ? true : undefined;
      },
      250,
    );
    const remaining = cutMs - (performance.now() - cutAt);
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
    // Both sides have forgotten each other in gossip: the case that never healed.
    const n1View = getJson(nodes[0]!, '/cluster/status') as StatusView;
    const n3View = getJson(nodes[2]!, '/cluster/status') as StatusView;
    assert.notEqual(n1View.members.find((m) => m.node_id === 'n3')?.state, 'alive');
    assert.notEqual(n3View.members.find((m) => m.node_id === 'n1')?.state, 'alive');

    ip('netns', 'exec', bridgeNs, 'ip', 'link', 'set', 'v2b', 'up');
    const healedAt = performance.now();
    let gossipMs: number | undefined;
    let raftMs: number | undefined;
    await waitFor(
      'every node to hold every other alive and unfenced, under one leader, after the heal',
      healBudgetMs,
      async () => {
        const views = allViews();
        if (views === undefined) return undefined;
        if (gossipMs === undefined && gossipMerged(views)) gossipMs = performance.now() - healedAt;
        if (raftMs === undefined && raftAgreed(views)) raftMs = performance.now() - healedAt;
        return gossipMs !== undefined && raftMs !== undefined ? true : undefined;
      },
      100,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${describe(nodes)}`);
    });
    console.log(
      `# cut ${(healedAt - cutAt).toFixed(0)} ms; after the heal gossip merged (all alive, unfenced) in ${gossipMs!.toFixed(0)} ms, one Raft leader in ${raftMs!.toFixed(0)} ms`,
    );
    for (const n of nodes) assert.equal(n.child!.exitCode, null, `${n.id} is still running`);
  } finally {
    await killChildren(nodes.map((n) => n.child));
    removeNamespaces(created);
    rmSync(root, { recursive: true, force: true });
  }
});
