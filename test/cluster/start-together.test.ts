// Brokers started together, as docker-compose, systemd and pm2 start them: three processes spawned within a
// few hundred milliseconds in random order, and again with the founder (the seed) started last, 2 s after the
// others, form one cluster with three voters; the nodes that found their seed not listening yet retried (and
// logged it) until it was. One seed is given as a host name (`localhost:PORT`), resolved with DNS. And a stop
// is bounded in every state: SIGTERM of a node whose seed never answers (it waits for a metadata leader),
// and of a node left alone mid-election, exits 0 within a few seconds.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  freeClusterPorts,
  killRaw,
  type RawBroker,
  type StatusView,
  servingBase,
  spawnRaw,
  waitFor,
  waitForOutput,
} from './processes.js';

/** Startup of three processes on two shared cores, a join retry at the backoff cap (5 s) and the Raft joins. */
const formBudgetMs = 40_000;
/** The claim for a stop in any state; a clean stop takes about 1-3 s here (leave, Raft stop, thread exits). */
const stopBudgetMs = 6_000;

const root = mkdtempSync(join(tmpdir(), 'broker-together-'));
/** The warning a node logs for a seed that does not answer. */
const failedJoin = /"level":40[^\n]*could not reach a seed or peer to join through/;

/** A start gate that waits `ms`. */
function delayed(ms: number): () => Promise<unknown> {
  return () => new Promise((resolve) => setTimeout(resolve, ms));
}
/** Every process this file starts, registered before anything waits on it, so `after` kills each one. */
const raw: RawBroker[] = [];

after(async () => {
  for (const b of raw) await killRaw(b);
  rmSync(root, { recursive: true, force: true });
});

/** A started broker and its HTTP base URL. */
interface Node {
  readonly process: RawBroker;
  readonly base: string;
}

async function statusOf(b: Node): Promise<StatusView | undefined> {
  try {
    const r = await fetch(`${b.base}/cluster/status`, { signal: AbortSignal.timeout(1_000) });
    return r.status === 200 ? ((await r.json()) as StatusView) : undefined;
  } catch {
    return undefined;
  }
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Starts n1 (no seeds) and n2, n3 (seeding n1, one of them by host name) in `order`, the i-th once `gates[i]`
 * resolves (it is given the processes started so far); resolves once all three serve, keyed by id.
 */
async function startThree(
  name: string,
  order: readonly string[],
  gates: readonly ((started: ReadonlyMap<string, RawBroker>) => Promise<unknown>)[],
): Promise<Map<string, Node>> {
  const ports = await freeClusterPorts(3);
  const founderPort = ports[0]!;
  const argsOf = (id: string): string[] => {
    const i = Number(id.slice(1)) - 1;
    const seeds =
      id === 'n1' ? [] : ['--seeds', id === 'n2' ? `localhost:${founderPort}` : `127.0.0.1:${founderPort}`];
    return [
      '--node-id',
      id,
      '--data-dir',
      join(root, name, id),
      '--cluster-port',
      String(ports[i]),
      '--threads',
      '1',
      ...seeds,
    ];
  };
  const byId = new Map<string, Node>();
  const started = new Map<string, RawBroker>();
  await Promise.all(
    order.map(async (id, i) => {
      await gates[i]!(started);
      const b = spawnRaw(argsOf(id));
      raw.push(b);
      started.set(id, b);
      await waitForOutput(b, /"msg":"broker serving"/, formBudgetMs);
      byId.set(id, { process: b, base: servingBase(b)! });
    }),
  );
  return byId;
}

async function threeVoters(nodes: Map<string, Node>): Promise<StatusView[]> {
  return waitFor('three voters and one leader on every node', formBudgetMs, async () => {
    const views = await Promise.all([...nodes.values()].map(statusOf));
    if (views.some((v) => v === undefined)) return undefined;
    const all = views as StatusView[];
    const leader = all[0]!.raft.leader_id;
    const ok = all.every(
      (v) =>
        v.raft.voters.length === 3 &&
        v.raft.leader_id === leader &&
        leader !== null &&
        v.members.filter((m) => m.state === 'alive').length === 3,
    );
    return ok ? all : undefined;
  });
}

describe('nodes started together', { timeout: 180_000 }, () => {
  /** The cluster formed with its seed started last, reused to leave one node alone. */
  let seedLast: Map<string, Node> | undefined;

  test('three nodes spawned within a few hundred ms in random order form one cluster with three voters', async () => {
    const order = shuffled(['n1', 'n2', 'n3']);
    const nodes = await startThree(
      'random',
      order,
      [0, Math.random() * 300, Math.random() * 300].map(delayed),
    );
    const views = await threeVoters(nodes);
    console.log(`# order ${order.join(', ')}: leader ${views[0]!.raft.leader_id}`);
    for (const v of views) assert.deepEqual([...v.raft.voters].sort(), ['n1', 'n2', 'n3']);
  });

  test('with the seed started 2 s after the others, they retry until it listens, log it, and form one cluster', async () => {
    // The seed starts 2 s after the others have found it not listening (their start takes a few seconds on a
    // loaded machine, so a fixed delay from spawn could let the seed win the race).
    const seedGate = async (started: ReadonlyMap<string, RawBroker>) => {
      await waitFor('n2 and n3 to be up and retrying', formBudgetMs, async () =>
        started.size === 2 && [...started.values()].every((b) => failedJoin.test(b.output()))
          ? true
          : undefined,
      );
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    };
    const nodes = await startThree('seed-last', ['n2', 'n3', 'n1'], [delayed(0), delayed(100), seedGate]);
    await threeVoters(nodes);
    seedLast = nodes;
    for (const id of ['n2', 'n3']) {
      const out = nodes.get(id)!.process.output();
      // Warned about every failed try (at least one: the seed was not up), then joined.
      assert.match(out, failedJoin, `${id} did not warn`);
      assert.match(out, /"event":"gossip_joined"/, `${id} did not log its join`);
    }
    const metrics = await (await fetch(`${nodes.get('n2')!.base}/metrics`)).text();
    assert.match(metrics, /^broker_gossip_join_failures_total [1-9]/m);
  });

  test('SIGTERM of a node whose seed never answers exits 0 within a few seconds', async () => {
    const [nobody] = await freeClusterPorts(1);
    const b = spawnRaw([
      '--node-id',
      'lonely',
      '--data-dir',
      join(root, 'lonely'),
      '--cluster-port',
      '0',
      '--threads',
      '1',
      '--seeds',
      `127.0.0.1:${nobody}`,
    ]);
    raw.push(b);
    await waitForOutput(b, /waiting for a metadata leader/, 30_000);
    // Let it retry a while, as the node did, then stop it.
    await waitForOutput(b, /"attempt":3[^\n]*could not reach a seed/, 10_000);
    const sentAt = performance.now();
    process.kill(b.child.pid!, 'SIGTERM');
    const code = await Promise.race([
      b.exited,
      new Promise((resolve) => setTimeout(() => resolve('still running'), stopBudgetMs)),
    ]);
    const tookMs = performance.now() - sentAt;
    console.log(`# stopped ${tookMs.toFixed(0)} ms after SIGTERM`);
    assert.equal(code, 0, `exit ${String(code)} after ${tookMs.toFixed(0)} ms:\n${b.output().slice(-2000)}`);
    assert.match(b.output(), /broker stopped before it was ready to serve/);
  });

  test('SIGTERM of a node left alone mid-election (its two peers killed) exits 0 within a few seconds', async () => {
    const nodes =
      seedLast ?? (await startThree('alone', ['n1', 'n2', 'n3'], [delayed(0), delayed(0), delayed(0)]));
    await threeVoters(nodes);
    await killRaw(nodes.get('n2')!.process);
    await killRaw(nodes.get('n3')!.process);
    const n1 = nodes.get('n1')!;
    // Without a quorum it loses (or never regains) leadership and keeps campaigning.
    await waitFor('n1 to be without a leader', 10_000, async () => {
      const s = await statusOf(n1);
      return s !== undefined && s.raft.leader_id === null ? true : undefined;
    });
    const sentAt = performance.now();
    process.kill(n1.process.child.pid!, 'SIGTERM');
    const code = await Promise.race([
      n1.process.exited,
      new Promise((resolve) => setTimeout(() => resolve('still running'), stopBudgetMs)),
    ]);
    const tookMs = performance.now() - sentAt;
    console.log(`# stopped ${tookMs.toFixed(0)} ms after SIGTERM`);
    assert.equal(code, 0, `exit ${String(code)} after ${tookMs.toFixed(0)} ms`);
  });
});
