// ecosystem.config.cjs under real pm2 (its own PM2_HOME in a temp dir, ports chosen free here and passed
// through the environment): the three brokers form one cluster (3 Raft voters), and a rolling `pm2 reload`
// under acks=all produce restarts them one at a time and loses no acknowledged write: every acknowledged record
// is read back at its offset afterwards. The topic is replicated (3 replicas), so a stopping broker hands its
// leaderships over first; a producer whose broker is down sends to the next one (any broker forwards to the
// leader). Failures during the reload are counted, split into definite (nothing appended) and indefinite.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePorts } from './ports.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pm2Bin = join(root, 'node_modules/pm2/bin/pm2');
const home = mkdtempSync(join(tmpdir(), 'pm2-home-'));
const dataRoot = mkdtempSync(join(tmpdir(), 'pm2-data-'));
let httpPorts: number[] = [];
let env: Record<string, string> = {};

function pm2(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [pm2Bin, ...args], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}

/** The PIDs pm2 reports for the brokers (0 while one is down). */
async function brokerPids(): Promise<number[]> {
  const { output } = await pm2(['jlist']);
  const list = JSON.parse(output.slice(output.indexOf('['))) as { name: string; pid: number }[];
  return list.sort((a, b) => a.name.localeCompare(b.name)).map((p) => p.pid);
}

async function get(port: number, path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await response.text();
  return { status: response.status, body: text.startsWith('{') ? JSON.parse(text) : text };
}

async function until<T>(what: string, probe: () => Promise<T | null>, deadlineMs: number): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function clusterFormed(): Promise<void> {
  for (const port of httpPorts) {
    await until(
      `the broker on ${port} to see 3 voters, all alive`,
      async () => {
        const status = (await get(port, '/cluster/status')).body;
        const alive = status.members.filter((m: any) => m.state === 'alive').length;
        return status.raft.voters.length === 3 && alive === 3 && status.raft.leader_id !== null ? true : null;
      },
      45_000,
    );
  }
}

let startedPids: number[] = [];

before(async () => {
  const ports = await freePorts(9);
  httpPorts = ports.slice(0, 3);
  env = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    PM2_HOME: home,
    // One action at a time: the rolling restart the ecosystem file documents (`npm run pm2:reload`).
    PM2_CONCURRENT_ACTIONS: '1',
    LOGBROKER_HTTP_PORTS: httpPorts.join(','),
    LOGBROKER_CLUSTER_PORTS: ports.slice(3, 6).join(','),
    LOGBROKER_KAFKA_PORTS: ports.slice(6).join(','),
    LOGBROKER_DATA_ROOT: dataRoot,
    LOGBROKER_HOST: '127.0.0.1',
    BROKER_COMPILED: '0',
    BROKER_THREADS: '1',
  };
  const started = await pm2(['start', 'ecosystem.config.cjs']);
  assert.equal(started.code, 0, started.output);
  startedPids = await brokerPids();
});

after(async () => {
  const pids = await brokerPids().catch(() => [] as number[]);
  await pm2(['kill']);
  // pm2 kill stops its daemon and the apps; anything left is ended by its PID.
  for (const pid of [...pids, ...startedPids]) {
    try {
      if (pid > 0) process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  rmSync(home, { recursive: true, force: true });
  rmSync(dataRoot, { recursive: true, force: true });
});

interface Ack {
  readonly partition: number;
  readonly offset: number;
  readonly value: string;
}

describe('pm2 ecosystem', () => {
  test('pm2 start brings up a three-broker cluster, each broker reported ready to pm2', async () => {
    assert.equal(startedPids.length, 3);
    assert.ok(startedPids.every((pid) => pid > 0));
    await clusterFormed();
  });

  test('a rolling pm2 reload under acks=all produce restarts one broker at a time and loses no acknowledged write', async () => {
    const [first] = httpPorts;
    const created = await fetch(`http://127.0.0.1:${first}/topics/rolling`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ num_partitions: 3 }),
    });
    assert.equal(created.status, 201);
    const topic = (await get(first!, '/topics/rolling')).body;
    const leaderPort = new Map<number, number>();
    for (const p of topic.partitions) {
      const port = httpPorts[Number(p.leader.slice('broker-'.length)) - 1]!;
      leaderPort.set(p.partition, port);
      await until(
        `${p.leader} to open partition ${p.partition}`,
        async () =>
          (await get(port, `/topics/rolling/partitions/${p.partition}`)).status === 200 ? true : null,
        10_000,
      );
    }

    const acks: Ack[] = [];
    let definite = 0;
    let indefinite = 0;
    let producing = true;
    const failures = new Map<string, number>();
    const count = (map: Map<string, number>, key: string) =>
      map.set(
        key.replace(/\d+/g, 'N').slice(0, 140),
        (map.get(key.replace(/\d+/g, 'N').slice(0, 140)) ?? 0) + 1,
      );
    let sequence = 0;
    // One producer per partition, each sending to the partition's leader first, one request at a time.
    const producers = topic.partitions.map(async (p: { partition: number }) => {
      let port = leaderPort.get(p.partition)!;
      while (producing) {
        const value = `v-${p.partition}-${sequence++}`;
        try {
          const response = await fetch(`http://127.0.0.1:${port}/topics/rolling/produce?acks=all`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ value, partition: p.partition }),
          });
          const body = (await response.json()) as any;
          if (response.status === 201) {
            acks.push({ partition: p.partition, offset: body.offset, value });
            continue;
          }
          count(
            failures,
            `${body.indefinite === true ? 'indefinite' : 'definite'} ${response.status}: ${body.message}`,
          );
          if (body.indefinite === true) indefinite++;
          else definite++;
        } catch (error) {
          // Refused before anything was sent is definite; a connection cut mid-request is not.
          const code = (error as { cause?: { code?: string } }).cause?.code;
          count(failures, `no answer: ${code}`);
          if (code === 'ECONNREFUSED') definite++;
          else indefinite++;
        }
        // This broker is restarting (or not serving yet): go on through the next one, as a client would.
        port = httpPorts[(httpPorts.indexOf(port) + 1) % httpPorts.length]!;
        await new Promise((r) => setTimeout(r, 20));
      }
    });

    // Watch the brokers while the reload runs: never two of them down at once.
    let watching = true;
    let mostDown = 0;
    const watcher = (async () => {
      while (watching) {
        const up = await Promise.all(
          httpPorts.map((port) =>
            get(port, '/health').then(
              (a) => a.status === 200,
              () => false,
            ),
          ),
        );
        mostDown = Math.max(mostDown, up.filter((u) => !u).length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    await until(
      'some acknowledged writes before the reload',
      async () => (acks.length >= 30 ? true : null),
      10_000,
    );
    const before = await brokerPids();
    const reload = await pm2(['reload', 'ecosystem.config.cjs']);
    assert.equal(reload.code, 0, reload.output);
    await clusterFormed();
    const ackedBeforeEnd = acks.length;
    await until(
      'writes acknowledged after the reload',
      async () => (acks.length >= ackedBeforeEnd + 30 ? true : null),
      20_000,
    );
    producing = false;
    watching = false;
    await Promise.all(producers);
    await watcher;
    const afterPids = await brokerPids();
    for (let i = 0; i < 3; i++) assert.notEqual(afterPids[i], before[i], `broker-${i + 1} was restarted`);
    assert.ok(mostDown <= 1, `${mostDown} brokers were down at once`);

    // Every acknowledged record is at its offset, each partition's offsets are dense, no value twice.
    for (const p of topic.partitions) {
      const port = leaderPort.get(p.partition)!;
      const stored: { offset: number; value: string }[] = [];
      for (let offset = 0; ; ) {
        const read = (
          await get(port, `/topics/rolling/partitions/${p.partition}/consume?offset=${offset}&limit=1000`)
        ).body;
        stored.push(...read.messages);
        if (read.count === 0 || read.next_offset >= read.high_watermark) break;
        offset = read.next_offset;
      }
      for (const [i, r] of stored.entries()) assert.equal(r.offset, i, 'offsets are dense');
      const values = stored.map((r) => r.value);
      assert.equal(new Set(values).size, values.length, 'no value twice');
      for (const ack of acks.filter((a) => a.partition === p.partition)) {
        assert.equal(
          stored[ack.offset]?.value,
          ack.value,
          `acknowledged ${ack.value} at ${ack.partition}/${ack.offset}`,
        );
      }
    }
    console.log(
      `pm2 reload: ${acks.length} acknowledged writes all read back; ${definite} definite and ${indefinite} indefinite failures while partitions' brokers restarted; at most ${mostDown} broker down at once`,
    );
    for (const [message, n] of [...failures].sort((a, b) => b[1] - a[1]).slice(0, 5)) {
      console.log(`#   ${n} x ${message}`);
    }
  });
});
