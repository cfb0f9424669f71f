// Produce benchmark (autocannon): the broker against a bare uWebSockets.js handler in the same run, with the
// default durability (fsync before acknowledging) and with --wal-sync-interval 1000; the seed's scenarios
// (200 producers x 100 messages, 100 producers for a while, 50 producers, one sequential producer); batch
// produce records/s; the broker's peak RSS. Each comparison is repeated and reported as medians and ratios,
// because this machine is shared and noisy. Because a throughput ratio on 2 shared cores mostly measures who gets
// the cores, each load also reports the server's CPU time per completed request (user + system of all its
// threads, from /proc, over the whole load), and a second comparison runs at an equal CPU budget: the server
// with every thread pinned to one core (taskset), this process and its load generator to the other.
// Batch produce is measured with the three bodies of POST /topics/{t}/records side by side: JSON
// `{"records": [...]}`, NDJSON, and Kafka record batches (application/vnd.kafka.record-batch), 1000 records of
// 50 B each, with ratios to the JSON body of the same run.
// Writes bench/results/produce-<iso>.json and prints a table.
// Usage: node --import tsx bench/produce.ts [--duration 10] [--runs 3] [--quick] [--no-pinned] [--single]
// [--value-bytes N] [--batch] [--seed] [--help]
// (--single: only the 200-connection single-message comparison, for A/B runs of a hot-path change;
// --seed: only the seed's four scenarios, broker against the bare handler, --runs times;
// --batch: only the batch-body comparison, a fresh broker per run, the bodies' order rotated run by run;
// --baseline <dir>: also run the broker of another built checkout, e.g. a `git worktree` of the previous commit
// with `npm run build` done, interleaved with this one in every run).
import { execFileSync } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { encodeRecordBatch } from '../src/core/log/batch-body.js';
import { cpuSeconds, root, type Server, startBareUws, startBroker, stopServer } from './lib/servers.js';
import { report } from './lib/table.js';

const args = process.argv.slice(2);
if (args.includes('--help')) {
  process.stdout.write(
    [
      'node --import tsx bench/produce.ts [options]',
      '  --duration S     seconds per load (default 10; 3 with --quick)',
      '  --runs N         interleaved runs per comparison, reported as medians (default 3; 1 with --quick)',
      '  --quick          short loads, one run',
      '  --no-pinned      skip the comparison with the server pinned to one core',
      '  --single         only the 200-connection single-message comparison',
      "  --seed           only the seed's four scenarios, broker vs the bare handler",
      '  --batch          only batch produce: JSON vs NDJSON vs record-batch bodies, 1000 x 50 B records',
      '  --sequential     only one sequential producer, latency in microseconds: raw write+fdatasync vs bare',
      '                   uWS vs the broker (fsync before ack), interleaved',
      '  --value-bytes N  records of N bytes in the single-message loads (default: the 50 B message)',
      '  --baseline DIR   also run the broker of another built checkout, interleaved',
      '',
    ].join('\n'),
  );
  process.exit(0);
}
const argValue = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const quick = args.includes('--quick');
const singleOnly = args.includes('--single');
const batchOnly = args.includes('--batch');
const sequentialOnly = args.includes('--sequential');
const seedOnly = args.includes('--seed');
const baselineAt = args.indexOf('--baseline');
const baselineCheckout = baselineAt >= 0 ? args[baselineAt + 1] : undefined;
const durationS = argValue('duration', quick ? 3 : 10);
const runs = argValue('runs', quick ? 1 : 3);
const valueBytes = argValue('value-bytes', 0);
// The seed's 50 B message by default; --value-bytes N for large records (a disk-bound load: long fsyncs).
const payload = JSON.stringify({
  value: valueBytes > 0 ? 'v'.repeat(valueBytes) : 'Peak-msg-payload-0123456789abcdefghijklmnop',
});

async function startBrokerWithTopic(extra: string[], checkout?: string): Promise<Server> {
  const server = await startBroker(extra, 'bench-produce-', undefined, checkout);
  const created = await fetch(`${server.base}/topics/bench`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ num_partitions: 4 }),
  });
  if (created.status !== 201)
    throw new Error(`topic creation failed: ${created.status} ${await created.text()}`);
  return server;
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

/** Pins every thread of `pid` to `cpus` (a taskset list such as "1"). */
function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

interface LoadResult {
  /** Server CPU microseconds per completed request. */
  readonly cpuUsPerRequest: number;
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly peakRssBytes: number;
  /** Bytes allocated on the acceptor's V8 heap per completed request (brokers only; 0 for the bare handler). */
  readonly acceptorAllocBytesPerRequest: number;
  /** Same, summed over the partition workers. */
  readonly workerAllocBytesPerRequest: number;
  /** Share of the load's wall time the acceptor spent in GC pauses (brokers only). */
  readonly acceptorGcShare: number;
  /** Completed requests per log fsync (brokers with fsync before ack; 0 otherwise). */
  readonly requestsPerFsync: number;
  /** Share of the appended records written while the previous group commit synced (pipelining). */
  readonly writtenDuringSyncShare: number;
}

interface HeapFigures {
  readonly acceptorAllocBytes: number;
  readonly workerAllocBytes: number;
  readonly acceptorGcSeconds: number;
  readonly fsyncs: number;
  readonly appendedRecords: number;
  readonly appendedDuringSyncRecords: number;
}

/** The sum over every series of a counter in a Prometheus text exposition. */
function counterSum(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** The broker's per-thread heap counters from /metrics (zeros for a server without them). */
async function heapFigures(server: Server): Promise<HeapFigures> {
  if (server.dataDir === null)
    return {
      acceptorAllocBytes: 0,
      workerAllocBytes: 0,
      acceptorGcSeconds: 0,
      fsyncs: 0,
      appendedRecords: 0,
      appendedDuringSyncRecords: 0,
    };
  const text = await (await fetch(`${server.base}/metrics`)).text();
  let acceptorAllocBytes = 0;
  let workerAllocBytes = 0;
  let acceptorGcSeconds = 0;
  for (const line of text.split('\n')) {
    const match = /^broker_thread_(heap_allocated_bytes|gc_seconds)_total\{thread="([^"]+)"\} (\S+)$/.exec(
      line,
    );
    if (match === null) continue;
    const value = Number(match[3]);
    if (match[1] === 'gc_seconds') {
      if (match[2] === 'acceptor') acceptorGcSeconds = value;
    } else if (match[2] === 'acceptor') acceptorAllocBytes = value;
    else workerAllocBytes += value;
  }
  return {
    acceptorAllocBytes,
    workerAllocBytes,
    acceptorGcSeconds,
    fsyncs: counterSum(text, 'broker_fsync_duration_seconds_count'),
    appendedRecords: counterSum(text, 'broker_worker_appended_records_total'),
    appendedDuringSyncRecords: counterSum(text, 'broker_worker_appended_during_sync_records_total'),
  };
}

interface LoadOptions {
  readonly connections: number;
  readonly durationS?: number;
  readonly amount?: number;
  readonly pipelining?: number;
  /** Default application/json. */
  readonly contentType?: string;
  /** Paths each connection goes through in turn, instead of `path` alone. */
  readonly paths?: readonly string[];
}

async function load(
  server: Server,
  path: string,
  body: string | Buffer,
  options: LoadOptions,
): Promise<LoadResult> {
  let peakRssBytes = 0;
  const sampler = setInterval(() => {
    peakRssBytes = Math.max(peakRssBytes, rssBytes(server.child.pid!));
  }, 100);
  const heapBefore = await heapFigures(server);
  const startedMs = performance.now();
  const cpuBefore = cpuSeconds(server.child.pid!);
  const result = await autocannon({
    url: `${server.base}${path}`,
    method: 'POST',
    headers: { 'content-type': options.contentType ?? 'application/json' },
    body,
    ...(options.paths === undefined ? {} : { requests: options.paths.map((p) => ({ path: p })) }),
    connections: options.connections,
    pipelining: options.pipelining ?? 1,
    ...(options.amount !== undefined
      ? { amount: options.amount }
      : { duration: options.durationS ?? durationS }),
  });
  const elapsedS = (performance.now() - startedMs) / 1000;
  const cpuUsed = cpuSeconds(server.child.pid!) - cpuBefore;
  clearInterval(sampler);
  const heapAfter = await heapFigures(server);
  peakRssBytes = Math.max(peakRssBytes, rssBytes(server.child.pid!));
  // autocannon rounds rates to whole seconds in amount mode: compute the rate from our own clock.
  const completed = result.requests.total;
  return {
    cpuUsPerRequest: completed === 0 ? 0 : (cpuUsed * 1e6) / completed,
    requestsPerS: completed / elapsedS,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    peakRssBytes,
    acceptorAllocBytesPerRequest:
      completed === 0 ? 0 : (heapAfter.acceptorAllocBytes - heapBefore.acceptorAllocBytes) / completed,
    workerAllocBytesPerRequest:
      completed === 0 ? 0 : (heapAfter.workerAllocBytes - heapBefore.workerAllocBytes) / completed,
    acceptorGcShare: (heapAfter.acceptorGcSeconds - heapBefore.acceptorGcSeconds) / elapsedS,
    requestsPerFsync:
      heapAfter.fsyncs === heapBefore.fsyncs ? 0 : completed / (heapAfter.fsyncs - heapBefore.fsyncs),
    writtenDuringSyncShare:
      heapAfter.appendedRecords === heapBefore.appendedRecords
        ? 0
        : (heapAfter.appendedDuringSyncRecords - heapBefore.appendedDuringSyncRecords) /
          (heapAfter.appendedRecords - heapBefore.appendedRecords),
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
  const raw: Record<string, LoadResult[]> = { bare: [], fsync: [], interval: [], baseline: [] };
  if (batchOnly) {
    await batchComparison(rows, raw);
    writeReport(rows, raw);
    return;
  }
  if (sequentialOnly) {
    await sequentialComparison(rows);
    writeReport(rows, raw);
    return;
  }
  if (seedOnly) {
    await seedComparison(rows, raw);
    writeReport(rows, raw);
    return;
  }

  // Single-message produce, 200 connections: bare uWS vs broker (fsync before ack) vs broker (1 s interval),
  // interleaved run by run so that drift in machine load hits all three alike.
  for (let run = 0; run < runs; run++) {
    const bare = await startBareUws();
    raw.bare!.push(await load(bare, '/topics/bench/produce', payload, { connections: 200 }));
    await stopServer(bare);
    const fsyncBroker = await startBrokerWithTopic([]);
    raw.fsync!.push(await load(fsyncBroker, '/topics/bench/produce', payload, { connections: 200 }));
    await stopServer(fsyncBroker);
    const intervalBroker = await startBrokerWithTopic(['--wal-sync-interval', '1000']);
    raw.interval!.push(await load(intervalBroker, '/topics/bench/produce', payload, { connections: 200 }));
    await stopServer(intervalBroker);
    if (baselineCheckout !== undefined) {
      const baseline = await startBrokerWithTopic([], baselineCheckout);
      raw.baseline!.push(await load(baseline, '/topics/bench/produce', payload, { connections: 200 }));
      await stopServer(baseline);
    }
  }
  const med = (key: string, field: keyof LoadResult): number => median(raw[key]!.map((r) => r[field]));
  const bareRate = med('bare', 'requestsPerS');
  for (const [key, label] of [
    ['bare', 'bare uWS handler'],
    ['fsync', 'broker, fsync before ack (default)'],
    ['interval', 'broker, --wal-sync-interval 1000'],
    ...(baselineCheckout === undefined
      ? []
      : ([['baseline', `baseline broker (${baselineCheckout}), fsync before ack`]] as const)),
  ] as const) {
    rows.push({
      scenario: `${label}, 200 conns`,
      'req/s (median)': Math.round(med(key, 'requestsPerS')),
      'ratio to bare': (med(key, 'requestsPerS') / bareRate).toFixed(2),
      'p50 ms': med(key, 'p50Ms'),
      'p99 ms': med(key, 'p99Ms'),
      errors: raw[key]!.reduce((n, r) => n + r.errors + r.non2xx, 0),
      'peak RSS MB': (med(key, 'peakRssBytes') / 1e6).toFixed(0),
      'CPU us/req': med(key, 'cpuUsPerRequest').toFixed(1),
      'CPU ratio to bare': (med(key, 'cpuUsPerRequest') / med('bare', 'cpuUsPerRequest')).toFixed(2),
      'alloc B/req acceptor': Math.round(med(key, 'acceptorAllocBytesPerRequest')),
      'alloc B/req workers': Math.round(med(key, 'workerAllocBytesPerRequest')),
      'GC % acceptor': (med(key, 'acceptorGcShare') * 100).toFixed(1),
      'req/fsync': med(key, 'requestsPerFsync').toFixed(1),
      '% written during sync': (med(key, 'writtenDuringSyncShare') * 100).toFixed(0),
      runs: raw[key]!.map((r) => Math.round(r.requestsPerS)).join(' / '),
    });
  }
  rows.push({
    scenario: 'fsync-before-ack / interval',
    'ratio to bare': (med('fsync', 'requestsPerS') / med('interval', 'requestsPerS')).toFixed(2),
  });

  // Equal CPU budget: the server (all threads) on core 1, this process (autocannon) on core 0; interleaved.
  if (!args.includes('--no-pinned') && !singleOnly && availableParallelism() >= 2) {
    pin(process.pid, '0');
    const pinned: Record<string, LoadResult[]> = { bare: [], fsync: [] };
    for (let run = 0; run < runs; run++) {
      const bare = await startBareUws();
      pin(bare.child.pid!, '1');
      pinned.bare!.push(await load(bare, '/topics/bench/produce', payload, { connections: 200 }));
      await stopServer(bare);
      const fsyncBroker = await startBrokerWithTopic([]);
      pin(fsyncBroker.child.pid!, '1');
      pinned.fsync!.push(await load(fsyncBroker, '/topics/bench/produce', payload, { connections: 200 }));
      await stopServer(fsyncBroker);
    }
    pin(process.pid, `0-${availableParallelism() - 1}`);
    const pmed = (key: string, field: keyof LoadResult): number => median(pinned[key]!.map((r) => r[field]));
    for (const [key, label] of [
      ['bare', 'bare uWS handler'],
      ['fsync', 'broker, fsync before ack'],
    ] as const) {
      rows.push({
        scenario: `${label}, 200 conns, server pinned to 1 core`,
        'req/s (median)': Math.round(pmed(key, 'requestsPerS')),
        'ratio to bare': (pmed(key, 'requestsPerS') / pmed('bare', 'requestsPerS')).toFixed(2),
        'p50 ms': pmed(key, 'p50Ms'),
        'p99 ms': pmed(key, 'p99Ms'),
        errors: pinned[key]!.reduce((n, r) => n + r.errors + r.non2xx, 0),
        'CPU us/req': pmed(key, 'cpuUsPerRequest').toFixed(1),
        'CPU ratio to bare': (pmed(key, 'cpuUsPerRequest') / pmed('bare', 'cpuUsPerRequest')).toFixed(2),
        runs: pinned[key]!.map((r) => Math.round(r.requestsPerS)).join(' / '),
      });
    }
    raw.pinnedBare = pinned.bare!;
    raw.pinnedFsync = pinned.fsync!;
  }

  if (!singleOnly) await seedScenarios(rows);
  writeReport(rows, raw);
}

/** One request at a time over one keep-alive connection; each request's latency in ms, sorted. */
async function sequentialLatenciesMs(base: string, path: string, count: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(path, base);
  const post = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        },
      );
      request.on('error', reject);
      request.end(payload);
    });
  for (let i = 0; i < 300; i++) await post(); // warm-up
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const startedNs = process.hrtime.bigint();
    const status = await post();
    if (status >= 300) throw new Error(`sequential produce answered ${status}`);
    latencies.push(Number(process.hrtime.bigint() - startedNs) / 1e6);
  }
  agent.destroy();
  return latencies.sort((a, b) => a - b);
}

/** The floor for a durable acknowledgement: write 120 B + fdatasync, one after another, in the data dir's file system. */
function fdatasyncLatenciesMs(count: number): number[] {
  const path = join(root, '.tmp', `fsync-probe-${process.pid}`);
  const fd = openSync(path, 'w');
  const bytes = Buffer.alloc(120, 1);
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const startedNs = process.hrtime.bigint();
    writeSync(fd, bytes);
    fdatasyncSync(fd);
    latencies.push(Number(process.hrtime.bigint() - startedNs) / 1e6);
  }
  closeSync(fd);
  unlinkSync(path);
  return latencies.sort((a, b) => a - b);
}

/** One sequential producer (the seed's fourth scenario), with microsecond latencies, interleaved run by run. */
async function sequentialComparison(rows: Record<string, unknown>[]): Promise<void> {
  const count = quick ? 1000 : 3000;
  const byKey: Record<string, number[][]> = { fsync: [], bare: [], broker: [], baseline: [] };
  for (let run = 0; run < runs; run++) {
    byKey.fsync!.push(fdatasyncLatenciesMs(count));
    const bare = await startBareUws();
    byKey.bare!.push(await sequentialLatenciesMs(bare.base, '/topics/bench/produce', count));
    await stopServer(bare);
    const broker = await startBrokerWithTopic([]);
    byKey.broker!.push(await sequentialLatenciesMs(broker.base, '/topics/bench/produce', count));
    await stopServer(broker);
    if (baselineCheckout !== undefined) {
      const baseline = await startBrokerWithTopic([], baselineCheckout);
      byKey.baseline!.push(await sequentialLatenciesMs(baseline.base, '/topics/bench/produce', count));
      await stopServer(baseline);
    }
  }
  const at = (sorted: number[], q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
  for (const [key, label] of [
    ['fsync', 'write 120 B + fdatasync, in a loop (the floor)'],
    ['bare', 'bare uWS handler, one sequential producer'],
    ['broker', 'broker, fsync before ack, one sequential producer'],
    ['baseline', `baseline broker (${baselineCheckout}), one sequential producer`],
  ] as const) {
    const runsOf = byKey[key]!;
    if (runsOf.length === 0) continue;
    const med = (q: number): string => median(runsOf.map((sorted) => at(sorted, q))).toFixed(3);
    rows.push({
      scenario: label,
      'p50 ms': med(0.5),
      'p90 ms': med(0.9),
      'p99 ms': med(0.99),
      'p99.9 ms': med(0.999),
      runs: runsOf
        .map((sorted) => `p50 ${at(sorted, 0.5).toFixed(3)} p99 ${at(sorted, 0.99).toFixed(3)}`)
        .join(' / '),
    });
  }
}

function writeReport(rows: Record<string, unknown>[], raw: Record<string, LoadResult[]>): void {
  const iso = new Date().toISOString().replace(/[:.]/g, '-');
  report(join(root, 'bench/results', `produce-${iso}`), rows, {
    durationS,
    runs,
    raw,
    cores: availableParallelism(),
    loadAverage: loadavg(),
  });
}

/** Records per batch request, and their values (50 B each), the same for every body. */
const batchRecords = 1000;
const batchValues = Array.from({ length: batchRecords }, (_, i) => `record-${i}`.padEnd(50, '.'));
/** The bench topic's partitions: JSON and NDJSON records are keyless (sticky), record batches name one. */
const benchPartitions = 4;

interface BatchBody {
  readonly key: string;
  readonly label: string;
  readonly contentType: string;
  readonly body: string | Buffer;
  readonly paths?: readonly string[];
}

function batchBodies(): BatchBody[] {
  const nowMs = Date.now();
  return [
    {
      key: 'json',
      label: 'JSON {"records": [...]}',
      contentType: 'application/json',
      body: JSON.stringify({ records: batchValues.map((value) => ({ value })) }),
    },
    {
      key: 'ndjson',
      label: 'NDJSON (application/x-ndjson)',
      contentType: 'application/x-ndjson',
      body: `${batchValues.map((value) => JSON.stringify({ value })).join('\n')}\n`,
    },
    {
      key: 'binary',
      label: 'record batch (application/vnd.kafka.record-batch)',
      contentType: 'application/vnd.kafka.record-batch',
      body: Buffer.from(encodeRecordBatch(batchValues.map((value) => ({ value, timestampMs: nowMs })))),
      // Each request names a partition; connections go round the topic's partitions as sticky JSON does.
      paths: Array.from({ length: benchPartitions }, (_, p) => `/topics/bench/records?partition=${p}`),
    },
  ];
}

function batchRow(label: string, connections: number, results: LoadResult[], jsonRate: number) {
  const rate = median(results.map((r) => r.requestsPerS));
  return {
    scenario: `batch produce, ${batchRecords} x 50 B records, ${label}, ${connections} conns`,
    'req/s (median)': Math.round(rate),
    'records/s': Math.round(rate * batchRecords),
    'ratio to JSON': (rate / jsonRate).toFixed(2),
    'p50 ms': median(results.map((r) => r.p50Ms)),
    'p99 ms': median(results.map((r) => r.p99Ms)),
    errors: results.reduce((n, r) => n + r.errors + r.non2xx, 0),
    'CPU us/req': median(results.map((r) => r.cpuUsPerRequest)).toFixed(1),
    'alloc B/req acceptor': Math.round(median(results.map((r) => r.acceptorAllocBytesPerRequest))),
    'GC % acceptor': (median(results.map((r) => r.acceptorGcShare)) * 100).toFixed(1),
    runs: results.map((r) => Math.round(r.requestsPerS * batchRecords)).join(' / '),
  };
}

/**
 * The three batch bodies at 4 and 16 connections: a fresh broker per run, every body loaded in it, their order
 * rotated run by run so that drift in the machine's load does not favour one; medians and ratios to JSON.
 */
async function batchComparison(
  rows: Record<string, unknown>[],
  raw: Record<string, LoadResult[]>,
): Promise<void> {
  const bodies = batchBodies();
  const connectionCounts = [4, 16];
  for (let run = 0; run < runs; run++) {
    const broker = await startBrokerWithTopic([]);
    for (const connections of connectionCounts) {
      for (let k = 0; k < bodies.length; k++) {
        const body = bodies[(k + run) % bodies.length]!;
        const result = await load(broker, '/topics/bench/records', body.body, {
          connections,
          durationS,
          contentType: body.contentType,
          ...(body.paths === undefined ? {} : { paths: body.paths }),
        });
        const key = `batch-${body.key}-${connections}`;
        raw[key] = [...(raw[key] ?? []), result];
      }
    }
    await stopServer(broker);
  }
  for (const connections of connectionCounts) {
    const jsonRate = median(raw[`batch-json-${connections}`]!.map((r) => r.requestsPerS));
    for (const body of bodies) {
      rows.push(batchRow(body.label, connections, raw[`batch-${body.key}-${connections}`]!, jsonRate));
    }
  }
}

const seedScenarioList: [string, string, Parameters<typeof load>[3]][] = [
  ['seed200', 'seed: 200 producers x 100 messages', { connections: 200, amount: 20_000 }],
  ['seed100', 'seed: 100 producers, sustained', { connections: 100, durationS }],
  ['seed50', 'seed: 50 producers', { connections: 50, durationS }],
  ['seed1', 'seed: 1 sequential producer', { connections: 1, amount: quick ? 500 : 2000 }],
];

/**
 * `--seed`: the seed's four scenarios against the broker (default durability) and against the bare uWS handler
 * with the same load, `runs` times, the two servers alternating scenario by scenario; medians and ratios.
 */
async function seedComparison(
  rows: Record<string, unknown>[],
  raw: Record<string, LoadResult[]>,
): Promise<void> {
  for (let run = 0; run < runs; run++) {
    const bare = await startBareUws();
    const broker = await startBrokerWithTopic([]);
    for (const [key, , options] of seedScenarioList) {
      const bareResult = await load(bare, '/topics/bench/produce', payload, options);
      const brokerResult = await load(broker, '/topics/bench/produce', payload, options);
      raw[`${key}-bare`] = [...(raw[`${key}-bare`] ?? []), bareResult];
      raw[`${key}-broker`] = [...(raw[`${key}-broker`] ?? []), brokerResult];
    }
    await stopServer(broker);
    await stopServer(bare);
  }
  const med = (key: string, field: keyof LoadResult): number => median(raw[key]!.map((r) => r[field]));
  for (const [key, label] of seedScenarioList) {
    for (const [server, name] of [
      ['bare', 'bare uWS handler'],
      ['broker', 'broker, fsync before ack'],
    ] as const) {
      const k = `${key}-${server}`;
      rows.push({
        scenario: `${label}: ${name}`,
        'req/s (median)': Math.round(med(k, 'requestsPerS')),
        'ratio to bare': (med(k, 'requestsPerS') / med(`${key}-bare`, 'requestsPerS')).toFixed(2),
        'p50 ms': med(k, 'p50Ms'),
        'p99 ms': med(k, 'p99Ms'),
        errors: raw[k]!.reduce((n, r) => n + r.errors + r.non2xx, 0),
        'peak RSS MB': (med(k, 'peakRssBytes') / 1e6).toFixed(0),
        'CPU us/req': med(k, 'cpuUsPerRequest').toFixed(1),
        'CPU ratio to bare': (med(k, 'cpuUsPerRequest') / med(`${key}-bare`, 'cpuUsPerRequest')).toFixed(2),
        runs: raw[k]!.map((r) => Math.round(r.requestsPerS)).join(' / '),
      });
    }
  }
}

/** The seed's scenarios and batch produce, default durability, one broker. */
async function seedScenarios(rows: Record<string, unknown>[]): Promise<void> {
  const broker = await startBrokerWithTopic([]);
  for (const [, label, options] of seedScenarioList) {
    const result = await load(broker, '/topics/bench/produce', payload, options);
    rows.push({
      scenario: label,
      'req/s (median)': Math.round(result.requestsPerS),
      'p50 ms': result.p50Ms,
      'p99 ms': result.p99Ms,
      errors: result.errors + result.non2xx,
      'peak RSS MB': (result.peakRssBytes / 1e6).toFixed(0),
      'CPU us/req': result.cpuUsPerRequest.toFixed(1),
      'alloc B/req acceptor': Math.round(result.acceptorAllocBytesPerRequest),
      'alloc B/req workers': Math.round(result.workerAllocBytesPerRequest),
      'GC % acceptor': (result.acceptorGcShare * 100).toFixed(1),
    });
  }
  // Batch produce: 1000 records of 50 B per request, as JSON, NDJSON and record batches, one after the other.
  for (const connections of [4, 16]) {
    const results = new Map<string, LoadResult>();
    for (const body of batchBodies()) {
      results.set(
        body.key,
        await load(broker, '/topics/bench/records', body.body, {
          connections,
          durationS,
          contentType: body.contentType,
          ...(body.paths === undefined ? {} : { paths: body.paths }),
        }),
      );
    }
    const jsonRate = results.get('json')!.requestsPerS;
    for (const body of batchBodies()) {
      const result = results.get(body.key)!;
      rows.push({
        ...batchRow(body.label, connections, [result], jsonRate),
        'peak RSS MB': (result.peakRssBytes / 1e6).toFixed(0),
      });
    }
  }
  await stopServer(broker);
}

await main();
