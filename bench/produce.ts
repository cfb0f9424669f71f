// Produce benchmark (autocannon): the broker against a bare uWebSockets.js handler in the same run, with the
// default durability (fsync before acknowledging) and with --wal-sync-interval 1000; the seed's scenarios
// (200 producers x 100 messages, 100 producers for a while, 50 producers, one sequential producer); batch
// produce records/s; the broker's peak RSS. Each comparison is repeated and reported as medians and ratios,
// because this machine is shared and noisy. Writes bench/results/produce-<iso>.json and prints a table.
// Usage: node --import tsx bench/produce.ts [--duration 10] [--runs 3] [--quick]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const args = process.argv.slice(2);
const argValue = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const quick = args.includes('--quick');
const durationS = argValue('duration', quick ? 3 : 10);
const runs = argValue('runs', quick ? 1 : 3);
const root = fileURLToPath(new URL('..', import.meta.url));
const payload = JSON.stringify({ value: 'Peak-msg-payload-0123456789abcdefghijklmnop' });

interface Server {
  readonly child: ChildProcess;
  readonly base: string;
  readonly dataDir: string | null;
}

function waitForPort(child: ChildProcess, pattern: RegExp): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = pattern.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => {
      output += c.toString('utf8');
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
}

async function startBroker(extra: string[]): Promise<Server> {
  const dataDir = mkdtempSync(join(root, '.tmp', 'bench-produce-'));
  const child = spawn(
    process.execPath,
    [
      join(root, 'bin/broker.mjs'),
      'start',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--data-dir',
      dataDir,
      ...extra,
    ],
    // The compiled tree, as production runs it (npm run build first; main() does it).
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BROKER_LOG_LEVEL: 'info', BROKER_COMPILED: '1' },
    },
  );
  const port = await waitForPort(child, /"port":(\d+)[^\n]*"msg":"broker serving"/);
  const base = `http://127.0.0.1:${port}`;
  const created = await fetch(`${base}/topics/bench`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ num_partitions: 4 }),
  });
  if (created.status !== 201)
    throw new Error(`topic creation failed: ${created.status} ${await created.text()}`);
  return { child, base, dataDir };
}

async function startBare(): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench/bare-uws.ts')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: root,
  });
  const port = await waitForPort(child, /"port":(\d+)/);
  return { child, base: `http://127.0.0.1:${port}`, dataDir: null };
}

async function stop(server: Server): Promise<void> {
  if (server.child.exitCode === null) {
    const exited = new Promise((r) => server.child.once('exit', r));
    process.kill(server.child.pid!, 'SIGTERM');
    await exited;
  }
  if (server.dataDir !== null) rmSync(server.dataDir, { recursive: true, force: true });
}

function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmRSS:\s+(\d+) kB/.exec(status);
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

interface LoadResult {
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly peakRssBytes: number;
}

async function load(
  server: Server,
  path: string,
  body: string,
  options: { connections: number; durationS?: number; amount?: number; pipelining?: number },
): Promise<LoadResult> {
  let peakRssBytes = 0;
  const sampler = setInterval(() => {
    peakRssBytes = Math.max(peakRssBytes, rssBytes(server.child.pid!));
  }, 100);
  const startedMs = performance.now();
  const result = await autocannon({
    url: `${server.base}${path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: options.connections,
    pipelining: options.pipelining ?? 1,
    ...(options.amount !== undefined
      ? { amount: options.amount }
      : { duration: options.durationS ?? durationS }),
  });
  const elapsedS = (performance.now() - startedMs) / 1000;
  clearInterval(sampler);
  peakRssBytes = Math.max(peakRssBytes, rssBytes(server.child.pid!));
  // autocannon rounds rates to whole seconds in amount mode: compute the rate from our own clock.
  const completed = result.requests.total;
  return {
    requestsPerS: completed / elapsedS,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    peakRssBytes,
  };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function main(): Promise<void> {
  mkdirSync(join(root, '.tmp'), { recursive: true });
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  const rows: Record<string, unknown>[] = [];
  const raw: Record<string, LoadResult[]> = { bare: [], fsync: [], interval: [] };

  // Single-message produce, 200 connections: bare uWS vs broker (fsync before ack) vs broker (1 s interval),
  // interleaved run by run so that drift in machine load hits all three alike.
  for (let run = 0; run < runs; run++) {
    const bare = await startBare();
    raw.bare!.push(await load(bare, '/topics/bench/produce', payload, { connections: 200 }));
    await stop(bare);
    const fsyncBroker = await startBroker([]);
    raw.fsync!.push(await load(fsyncBroker, '/topics/bench/produce', payload, { connections: 200 }));
    await stop(fsyncBroker);
    const intervalBroker = await startBroker(['--wal-sync-interval', '1000']);
    raw.interval!.push(await load(intervalBroker, '/topics/bench/produce', payload, { connections: 200 }));
    await stop(intervalBroker);
  }
  const med = (key: string, field: keyof LoadResult): number => median(raw[key]!.map((r) => r[field]));
  const bareRate = med('bare', 'requestsPerS');
  for (const [key, label] of [
    ['bare', 'bare uWS handler'],
    ['fsync', 'broker, fsync before ack (default)'],
    ['interval', 'broker, --wal-sync-interval 1000'],
  ] as const) {
    rows.push({
      scenario: `${label}, 200 conns`,
      'req/s (median)': Math.round(med(key, 'requestsPerS')),
      'ratio to bare': (med(key, 'requestsPerS') / bareRate).toFixed(2),
      'p50 ms': med(key, 'p50Ms'),
      'p99 ms': med(key, 'p99Ms'),
      errors: raw[key]!.reduce((n, r) => n + r.errors + r.non2xx, 0),
      'peak RSS MB': (med(key, 'peakRssBytes') / 1e6).toFixed(0),
      runs: raw[key]!.map((r) => Math.round(r.requestsPerS)).join(' / '),
    });
  }
  rows.push({
    scenario: 'fsync-before-ack / interval',
    'ratio to bare': (med('fsync', 'requestsPerS') / med('interval', 'requestsPerS')).toFixed(2),
  });

  // The seed's scenarios, default durability.
  const broker = await startBroker([]);
  const scenarios: [string, Parameters<typeof load>[3]][] = [
    ['seed: 200 producers x 100 messages', { connections: 200, amount: 20_000 }],
    ['seed: 100 producers, sustained', { connections: 100, durationS }],
    ['seed: 50 producers', { connections: 50, durationS }],
    ['seed: 1 sequential producer', { connections: 1, amount: quick ? 500 : 2000 }],
  ];
  for (const [label, options] of scenarios) {
    const result = await load(broker, '/topics/bench/produce', payload, options);
    rows.push({
      scenario: label,
      'req/s (median)': Math.round(result.requestsPerS),
      'p50 ms': result.p50Ms,
      'p99 ms': result.p99Ms,
      errors: result.errors + result.non2xx,
      'peak RSS MB': (result.peakRssBytes / 1e6).toFixed(0),
    });
  }
  // Batch produce: 1000 records of 50 B per request.
  const batchBody = JSON.stringify({
    records: Array.from({ length: 1000 }, (_, i) => ({ value: `record-${i}`.padEnd(50, '.') })),
  });
  for (const connections of [4, 16]) {
    const result = await load(broker, '/topics/bench/records', batchBody, { connections, durationS });
    rows.push({
      scenario: `batch produce, 1000 x 50 B records, ${connections} conns`,
      'req/s (median)': Math.round(result.requestsPerS),
      'records/s': Math.round(result.requestsPerS * 1000),
      'p50 ms': result.p50Ms,
      'p99 ms': result.p99Ms,
      errors: result.errors + result.non2xx,
      'peak RSS MB': (result.peakRssBytes / 1e6).toFixed(0),
    });
  }
  await stop(broker);

  console.table(rows);
  const iso = new Date().toISOString().replace(/[:.]/g, '-');
  const out = join(root, 'bench/results', `produce-${iso}.json`);
  writeFileSync(
    out,
    JSON.stringify(
      { durationS, runs, rows, raw, cores: (await import('node:os')).availableParallelism() },
      null,
      2,
    ),
  );
  console.log(`wrote ${out}`);
}

await main();
