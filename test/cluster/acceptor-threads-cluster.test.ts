// Three real broker processes with two acceptor threads each and a cluster secret: 20 client connections (each
// its own keep-alive connection, so both threads of a node take some) produce with acks=all to partitions led
// by every node, so the extra acceptors forward to other nodes' leaders over the authenticated data link; then
// one node is killed mid-load. Every acknowledged record is in the surviving replicas at its offset, nothing
// refused definitely is anywhere, produce goes on after the failover, and the extra acceptors of the node the
// producers talk to served produce themselves.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TestCluster, waitFor } from './processes.js';
import {
  checkRecords,
  emptyOutcomes,
  type Outcomes,
  readThrough,
  sleep,
  waitFullyReplicated,
} from './replication-workload.js';

const topic = 'fwd';
const partitions = 6;
let cluster: TestCluster | undefined;
let dir = '';
const agents: http.Agent[] = [];
after(async () => {
  for (const agent of agents) agent.destroy();
  await cluster?.stopAll();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** One JSON request on `agent`'s single connection; rejects when no answer comes. */
function send(
  agent: http.Agent,
  base: string,
  path: string,
  body: unknown,
): Promise<{ status: number; body: any }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path,
        agent,
        headers: { 'content-type': 'application/json' },
        timeout: 5_000,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          try {
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) });
          } catch (error) {
            reject(error);
          }
        });
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
    request.end(JSON.stringify(body));
  });
}

/** `connections` producers on `base`, each on its own connection, recording every outcome (no retries). */
function producers(base: () => string | null, connections: number, outcomes: Outcomes, tag: string) {
  let running = true;
  const loops = Array.from({ length: connections }, async (_, c) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    for (let i = 0; running; i++) {
      const at = base();
      if (at === null) break;
      const value = `${tag}-${c}-${i}`;
      const partition = (c + i) % partitions;
      try {
        const answer = await send(agent, at, `/topics/${topic}/produce?acks=all`, { partition, value });
        if (answer.status === 201) {
          outcomes.acked.set(value, { partition, offset: answer.body.offset, atMs: performance.now() });
          outcomes.ackTimes.push({ atMs: performance.now(), partition });
        } else if (answer.body.indefinite === true) outcomes.unknown.add(value);
        else {
          outcomes.refused.add(value);
          await sleep(20);
        }
      } catch {
        outcomes.unknown.add(value);
        await sleep(20);
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

test('two acceptor threads per node forward to leaders on other nodes, across a node killed mid-load', {
  timeout: 120_000,
}, async (t) => {
  dir = await mkdtemp(join(tmpdir(), 'broker-acceptors-cluster-'));
  const secretPath = join(dir, 'secret');
  await writeFile(secretPath, `${randomBytes(48).toString('base64')}\n`);
  cluster = await TestCluster.start(3, ['--acceptor-threads', '2', '--cluster-secret-file', secretPath]);
  const [n1, n2, n3] = cluster.nodes as [
    (typeof cluster.nodes)[0],
    (typeof cluster.nodes)[0],
    (typeof cluster.nodes)[0],
  ];
  const created = await fetch(`${n1.process!.base}/topics/${topic}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ num_partitions: partitions, replication_factor: 3 }),
  });
  assert.equal(created.status, 201, await created.text());
  const workload = [n1, n3].map((n) => ({ id: n.id, base: () => n.process?.base ?? null }));
  await waitFullyReplicated(workload, topic, partitions, 30_000);
  const leaders = ((await (await fetch(`${n1.process!.base}/topics/${topic}`)).json()) as any).partitions.map(
    (p: { leader: string }) => p.leader,
  );
  t.diagnostic(`leaders ${leaders.join(', ')}`);
  assert.ok(new Set(leaders).size >= 2, 'partitions are led by several nodes, so requests are forwarded');

  const outcomes = emptyOutcomes();
  const load = [
    producers(() => n1.process?.base ?? null, 16, outcomes, 'a'),
    producers(() => n3.process?.base ?? null, 4, outcomes, 'b'),
  ];
  try {
    await waitFor('acknowledged writes before the kill', 15_000, async () =>
      outcomes.acked.size >= 100 ? true : undefined,
    );
    const beforeKill = outcomes.acked.size;
    await cluster.kill(n2, 'SIGKILL');
    const killedAtMs = performance.now();
    // Produce goes on after the failover: writes acknowledged on every partition after the kill.
    await waitFor('writes acknowledged on every partition after the kill', 20_000, async () => {
      const after = new Set(
        [...outcomes.acked.values()].filter((a) => a.atMs > killedAtMs).map((a) => a.partition),
      );
      return after.size === partitions ? true : undefined;
    });
    t.diagnostic(
      `acknowledged ${beforeKill} before the kill; every partition written again ${Math.round(performance.now() - killedAtMs)} ms after it`,
    );
  } finally {
    for (const l of load) await l.stop();
  }

  // Every partition through n1 (it asks each leader): every acknowledged record at its offset, nothing
  // refused anywhere, no gap.
  // n2 is down: each partition led by a survivor, and its high watermark covers every acknowledged record.
  const parts = await waitFor('every partition led by a survivor', 15_000, async () => {
    const view = (await (await fetch(`${n1.process!.base}/topics/${topic}`)).json()) as any;
    const all = view.partitions as { partition: number; leader: string | null; high_watermark: number }[];
    return all.every((p) => p.leader !== null && p.leader !== 'n2' && p.high_watermark !== null)
      ? all
      : undefined;
  });
  let unknownIn = 0;
  for (const p of parts as { partition: number; high_watermark: number }[]) {
    const records = await readThrough(n1.process!.base, topic, p.partition, p.high_watermark);
    unknownIn += checkRecords(records, p.partition, outcomes, `partition ${p.partition} via n1`);
  }
  t.diagnostic(
    `acked ${outcomes.acked.size}, refused ${outcomes.refused.size}, unknown ${outcomes.unknown.size} (${unknownIn} of them written)`,
  );
  const metrics = await (await fetch(`${n1.process!.base}/metrics`)).text();
  const served = /^broker_acceptor_requests_total\{acceptor="1",outcome="served"\} (\d+)/m.exec(metrics);
  assert.ok(served !== null && Number(served[1]) > 0, "n1's extra acceptor served produce itself");
});
