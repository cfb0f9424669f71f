// Worker balance benchmark (issue 14): produce throughput of one broker process (compiled, --threads 2,
// --worker-balance-interval 0 so that only this benchmark decides when a round runs) with every partition of the
// loaded topic on partition worker 0, against the same load after one balancing round
// (`POST /admin/workers/balance`) spread them over both workers, in the same process, run after run:
//   1. every partition of the topic is moved to worker 0 by hand (`POST /admin/workers/moves`);
//   2. `GET /admin/workers` starts the load window; autocannon produces keyless records (`--record-bytes`, the
//      broker's sticky partitioner spreads them over the partitions) with `--connections` connections for
//      `--duration` s: "hot on worker 0";
//   3. `POST /admin/workers/balance` plans over the load of that window and moves partitions to worker 1;
//   4. the same load again: "after the balance";
//   5. every partition back on worker 0 by hand, and the same load once more: "hot on worker 0 again".
// The machine is shared and noisy, and drifts: each run's ratio is "after" over the mean of the two windows
// around it (A-B-A, so a steady drift cancels), reported beside the medians; a warm-up window (discarded)
// runs first; the per-worker appended bytes confirm where the records went. Records default to 16 KiB: with
// small records the acceptor thread (HTTP parsing) is the bottleneck on 2 cores, and where the partitions sit
// among the workers cannot change much (see the README's figures). Writes bench/results/worker-balance-<iso>.json and
// .md and prints the table.
// Usage: node --import tsx bench/worker-balance.ts [--quick] [--runs 3] [--duration 6] [--connections 32]
//        [--partitions 4] [--record-bytes 16384]
// Not a test: the numbers depend on the machine and its load. Runs on the main thread of its own process.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { describeMachine, intFlag, loadavgNow, median } from './lib/cluster.js';
import { root, type Server, startBroker, stopServer } from './lib/servers.js';
import { report } from './lib/table.js';

const quick = process.argv.includes('--quick');
const runs = intFlag('runs', quick ? 1 : 3);
const durationS = intFlag('duration', quick ? 3 : 6);
const connections = intFlag('connections', 32);
const partitions = intFlag('partitions', 4);
const recordBytes = intFlag('record-bytes', 16_384);
const topic = 'hot';

interface WorkersView {
  readonly workers: readonly { readonly appended_bytes: number }[];
  readonly partitions: readonly {
    readonly topic: string;
    readonly partition: number;
    readonly worker: number;
  }[];
}

interface RoundView {
  readonly moved: number;
  readonly reason: string;
}

async function call<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const json = (await response.json()) as T;
  if (response.status >= 300)
    throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

interface Window {
  readonly requestsPerS: number;
  readonly mbPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Bytes each worker appended during the window. */
  readonly appendedByWorker: number[];
  readonly placement: number[];
}

async function workersView(base: string): Promise<WorkersView> {
  return call<WorkersView>(base, 'GET', '/admin/workers');
}

async function window(server: Server, seconds = durationS): Promise<Window> {
  const before = await workersView(server.base);
  const startedMs = performance.now();
  const result = await autocannon({
    url: `${server.base}/topics/${topic}/produce`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ value: 'v'.repeat(recordBytes) }),
    connections,
    duration: seconds,
  });
  const elapsedS = (performance.now() - startedMs) / 1000;
  const after = await workersView(server.base);
  const completed = result['2xx'];
  return {
    requestsPerS: completed / elapsedS,
    mbPerS: (completed * recordBytes) / elapsedS / 1e6,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    appendedByWorker: after.workers.map((w, i) => w.appended_bytes - before.workers[i]!.appended_bytes),
    placement: after.partitions
      .filter((p) => p.topic === topic)
      .sort((a, b) => a.partition - b.partition)
      .map((p) => p.worker),
  };
}

async function allOnWorkerZero(server: Server): Promise<void> {
  const view = await workersView(server.base);
  for (const p of view.partitions) {
    if (p.topic === topic && p.worker !== 0) {
      await call(server.base, 'POST', '/admin/workers/moves', { topic, partition: p.partition, worker: 0 });
    }
  }
}

async function main(): Promise<void> {
  mkdirSync(join(root, '.tmp'), { recursive: true });
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  const server = await startBroker(
    ['--threads', '2', '--worker-balance-interval', '0'],
    'bench-worker-balance-',
  );
  const raw: { before: Window; after: Window; again: Window; round: RoundView }[] = [];
  try {
    await call(server.base, 'POST', `/topics/${topic}`, { num_partitions: partitions });
    await window(server, Math.min(3, durationS));
    for (let run = 0; run < runs; run++) {
      await allOnWorkerZero(server);
      const before = await window(server);
      const round = await call<RoundView>(server.base, 'POST', '/admin/workers/balance');
      const after = await window(server);
      await allOnWorkerZero(server);
      const again = await window(server);
      raw.push({ before, after, again, round });
      const base = (before.requestsPerS + again.requestsPerS) / 2;
      console.log(
        `run ${run + 1}: ${Math.round(before.requestsPerS)} -> ${Math.round(after.requestsPerS)} -> ` +
          `${Math.round(again.requestsPerS)} req/s (${(after.requestsPerS / base).toFixed(2)}x); moved ` +
          `${round.moved}: ${before.placement.join(',')} -> ${after.placement.join(',')}`,
      );
    }
  } finally {
    await stopServer(server);
  }
  const row = (label: string, pick: (r: (typeof raw)[number]) => Window) => {
    const ws = raw.map(pick);
    return {
      phase: label,
      'req/s (median)': Math.round(median(ws.map((w) => w.requestsPerS))),
      'MB/s (median)': median(ws.map((w) => w.mbPerS)).toFixed(1),
      'p50 ms': median(ws.map((w) => w.p50Ms)),
      'p99 ms': median(ws.map((w) => w.p99Ms)),
      errors: ws.reduce((n, w) => n + w.errors, 0),
      'appended MB per worker (last run)': ws[ws.length - 1]!.appendedByWorker.map((b) =>
        (b / 1e6).toFixed(0),
      ).join(' / '),
      'placement (last run)': ws[ws.length - 1]!.placement.join(','),
      runs: ws.map((w) => Math.round(w.requestsPerS)).join(' / '),
    };
  };
  const ratios = raw.map((r) => r.after.requestsPerS / ((r.before.requestsPerS + r.again.requestsPerS) / 2));
  const rows = [
    row('every partition on worker 0', (r) => r.before),
    row('after one balancing round', (r) => r.after),
    row('every partition on worker 0 again', (r) => r.again),
    {
      phase: 'ratio after / mean of the two around it',
      'req/s (median)': median(ratios).toFixed(2),
      runs: ratios.map((x) => x.toFixed(2)).join(' / '),
    },
  ];
  const iso = new Date().toISOString().replace(/[:.]/g, '-');
  report(join(root, 'bench/results', `worker-balance-${iso}`), rows, {
    runs,
    durationS,
    connections,
    partitions,
    recordBytes,
    cores: availableParallelism(),
    machine: describeMachine(),
    loadavg: loadavgNow(),
    raw,
  });
}

await main();
