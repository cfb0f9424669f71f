// docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here): the compose file
// parses, its broker services run the image's exec-form entrypoint with their command and environment, and
// three brokers started outside Docker with exactly that command and environment form a cluster (3 voters, all
// alive). The image's HEALTHCHECK script answers healthy for a serving broker and unhealthy for none. The
// cluster also shows that a node exports offsets only for partitions it leads (each is exported once).
//
// Translations, each because Docker is not here: ports and data dirs are free ports and temp dirs; `--host
// 0.0.0.0` listens on 127.0.0.1 (tests use loopback only); a service host name in SEEDS becomes `localhost`
// with that service's port (still a host name, resolved by the broker as Docker's DNS would be), and in
// BROKER_ADDRESS 127.0.0.1; the source tree runs instead of dist (BROKER_COMPILED unset). The seed's variable
// names NODE_ID, PORT, CLUSTER_PORT and SEEDS are passed as they are: the broker reads them.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { freePorts } from './ports.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true });
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

/** The exec-form arrays and ENV of the Dockerfile's last stage. */
function imageSettings() {
  const lastStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const execForm = (instruction: string): string[] => {
    const match = new RegExp(`^${instruction}\\s+(\\[.*\\])\\s*$`, 'm').exec(lastStage);
    assert.ok(match, `the image has no exec-form ${instruction}`);
    return JSON.parse(match[1]!) as string[];
  };
  const env: Record<string, string> = {};
  for (const line of lastStage.matchAll(/^ENV\s+(.+)$/gm)) {
    for (const pair of line[1]!.trim().split(/\s+/)) {
      const [key, value] = pair.split('=') as [string, string];
      env[key] = value;
    }
  }
  const health = /^HEALTHCHECK .*CMD\s+(\[.*\])\s*$/m.exec(lastStage);
  assert.ok(health, 'the image has an exec-form HEALTHCHECK');
  return {
    entrypoint: execForm('ENTRYPOINT'),
    cmd: execForm('CMD'),
    env,
    healthcheck: JSON.parse(health[1]!) as string[],
    user: /^USER\s+(\S+)/m.exec(lastStage)?.[1],
  };
}

const image = imageSettings();
const brokerServices = Object.entries(compose.services as Record<string, any>).filter(
  ([, s]) => s.build !== undefined,
);

interface Started {
  readonly name: string;
  readonly httpPort: number;
  readonly child: ChildProcess;
  output: string;
}

const started: Started[] = [];
const dataDirs: string[] = [];

async function startService(
  name: string,
  service: any,
  ports: ReadonlyMap<string, { http: number; cluster: number }>,
): Promise<Started> {
  const mine = ports.get(name)!;
  const env: Record<string, string> = { ...image.env, ...(service.environment as Record<string, string>) };
  const dataDir = mkdtempSync(join(tmpdir(), `compose-${name}-`));
  dataDirs.push(dataDir);
  const toLoopback = (host: string) => (ports.has(host) ? '127.0.0.1' : host);
  const seeds = (env.SEEDS ?? '')
    .split(',')
    .filter((s) => s !== '')
    .map((seed) => {
      const host = seed.split(':')[0]!;
      assert.ok(ports.has(host), `${name}: seed ${seed} names no broker service`);
      return `localhost:${ports.get(host)!.cluster}`;
    });
  const translated: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ID: env.NODE_ID!,
    PORT: String(mine.http),
    CLUSTER_PORT: String(mine.cluster),
    SEEDS: seeds.join(','),
    BROKER_DATA_DIR: dataDir,
    BROKER_LOG_LEVEL: 'info',
    // Each container has its own 9092; here the three share one host, so each takes a free port.
    BROKER_KAFKA_PORT: '0',
  };
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('BROKER_') || key in translated || key === 'BROKER_COMPILED') continue;
    translated[key] = key === 'BROKER_ADDRESS' ? toLoopback(value) : value;
  }
  const command = (service.command ?? image.cmd) as string[];
  const args = command.map((arg, i) =>
    command[i - 1] === '--host' && arg === '0.0.0.0' ? '127.0.0.1' : arg,
  );
  assert.equal(image.entrypoint[0], 'node');
  const child = spawn(process.execPath, [...image.entrypoint.slice(1), ...args], {
    cwd: root,
    env: translated,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const entry: Started = { name, httpPort: mine.http, child, output: '' };
  started.push(entry);
  child.stdout!.on('data', (d: Buffer) => (entry.output += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (entry.output += d.toString('utf8')));
  // Serving is logged once the broker has joined a metadata leader; the founder serves on its own.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not serve within 30 s:\n${entry.output}`)),
      30_000,
    );
    const check = () => {
      if (entry.output.includes('"msg":"broker serving"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${entry.output}`));
    });
  });
  return entry;
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

function runHealthcheck(port: number): Promise<number | null> {
  const child = spawn(process.execPath, image.healthcheck.slice(1), {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', BROKER_PORT: String(port) },
    stdio: 'ignore',
  });
  return once(child, 'exit').then(([code]) => code as number | null);
}

before(async () => {
  const allPorts = await freePorts(brokerServices.length * 2);
  const ports = new Map(
    brokerServices.map(([name], i) => [name, { http: allPorts[2 * i]!, cluster: allPorts[2 * i + 1]! }]),
  );
  // Compose starts a service after those it depends on: the founder first, then the others together.
  const first = brokerServices.filter(([, s]) => s.depends_on === undefined);
  const rest = brokerServices.filter(([, s]) => s.depends_on !== undefined);
  for (const [name, service] of first) await startService(name, service, ports);
  await Promise.all(rest.map(([name, service]) => startService(name, service, ports)));
});

after(async () => {
  for (const s of started) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      const exited = once(s.child, 'exit');
      process.kill(s.child.pid!, 'SIGKILL');
      await exited;
    }
  }
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

describe('docker-compose cluster, run outside Docker', () => {
  test('the compose file has three brokers with volumes and init, plus Prometheus and provisioned Grafana', () => {
    assert.equal(brokerServices.length, 3);
    for (const [name, service] of brokerServices) {
      assert.equal(service.init, true, `${name}: init (signals reach node, zombies are reaped)`);
      assert.ok(
        (service.volumes as string[]).some((v) => v.endsWith(':/data')),
        `${name}: a data volume`,
      );
      for (const key of ['NODE_ID', 'PORT', 'CLUSTER_PORT', 'SEEDS']) {
        assert.ok(key in service.environment, `${name}: ${key}`);
      }
    }
    assert.ok(compose.services.prometheus);
    const grafanaVolumes = compose.services.grafana.volumes as string[];
    assert.ok(grafanaVolumes.some((v) => v.startsWith('./deploy/grafana/provisioning:')));
    assert.ok(grafanaVolumes.some((v) => v.startsWith('./deploy/grafana/dashboards:')));
    const scrape = readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8');
    for (const [name] of brokerServices)
      assert.ok(scrape.includes(`${name}:8080`), `Prometheus scrapes ${name}`);
    assert.deepEqual(image.entrypoint, [
      'node',
      '--max-semi-space-size=2',
      '--heap-growing-percent=30',
      '--no-allocation-site-pretenuring',
      'bin/broker.mjs',
    ]);
    assert.equal(image.user, 'node', 'the image runs as a non-root user');
  });

  test('the three brokers form one cluster: 3 voters, every member alive on every node', async () => {
    for (const s of started) {
      await until(
        `${s.name} to see 3 voters, all alive`,
        async () => {
          const status = (await get(s.httpPort, '/cluster/status')).body;
          const alive = status.members.filter((m: any) => m.state === 'alive').length;
          return status.raft.voters.length === 3 && alive === 3 ? status : null;
        },
        30_000,
      );
    }
    const ids = new Set(started.map((s) => s.name));
    const status = (await get(started[0]!.httpPort, '/cluster/status')).body;
    assert.deepEqual(new Set(status.raft.voters), ids, 'node ids come from NODE_ID');
  });

  test("the image's HEALTHCHECK is healthy for a serving broker and unhealthy where none answers", async () => {
    assert.equal(await runHealthcheck(started[0]!.httpPort), 0);
    const [unused] = await freePorts(1);
    assert.equal(await runHealthcheck(unused!), 1);
  });

  test('a node exports offsets only for the partitions it leads, and describes every one with the figures of its leader', async () => {
    const first = started[0]!;
    const created = await fetch(`http://127.0.0.1:${first.httpPort}/topics/spread`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ num_partitions: 6 }),
    });
    assert.equal(created.status, 201);
    const topic = (await get(first.httpPort, '/topics/spread')).body;
    const portOf = new Map(started.map((s) => [s.name, s.httpPort]));
    for (const p of topic.partitions) {
      // The leader learns of the topic when it applies the metadata change, a moment after the founder answers.
      await until(
        `${p.leader} to open partition ${p.partition}`,
        async () =>
          (await get(portOf.get(p.leader)!, `/topics/spread/partitions/${p.partition}`)).status === 200
            ? true
            : null,
        10_000,
      );
      const produced = await fetch(`http://127.0.0.1:${portOf.get(p.leader)}/topics/spread/produce`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ value: 'x', partition: p.partition }),
      });
      assert.equal(produced.status, 201, `produce to ${p.leader}`);
    }
    const ledHere = topic.partitions.filter((p: any) => p.leader === first.name).map((p: any) => p.partition);
    const ledElsewhere = topic.partitions
      .filter((p: any) => p.leader !== first.name)
      .map((p: any) => p.partition);
    assert.ok(ledElsewhere.length > 0, 'placement spreads leaders over the brokers');
    // Any node describes every partition with its leader's figures (asked of the leader when it is elsewhere).
    const described = (await get(first.httpPort, '/topics/spread')).body;
    for (const p of described.partitions) assert.equal(p.high_watermark, 1, `partition ${p.partition}`);
    const metrics = (await get(first.httpPort, '/metrics')).body as string;
    for (const p of ledHere) {
      assert.ok(metrics.includes(`kafka_topic_partition_current_offset{topic="spread",partition="${p}"} 1`));
    }
    for (const p of ledElsewhere) {
      assert.ok(!metrics.includes(`kafka_topic_partition_current_offset{topic="spread",partition="${p}"}`));
      // The metadata figures are the cluster's, the same on every node.
      assert.match(
        metrics,
        new RegExp(`kafka_topic_partition_leader\\{topic="spread",partition="${p}",leader="broker\\d"\\} 1`),
      );
    }
  });
});
