// Acceptor-thread scaling: the compiled broker with `--acceptor-threads N` (N uWebSockets.js threads sharing the
// client port, each with its own ring pair to every partition worker) for each N of `--threads-list`, with
// `--workers` partition worker threads (the broker's --threads). Per N: single-message produce as bench/produce.ts
// loads it (autocannon, 200 connections, POST /topics/<t>/produce with the same "50 B" message, 55 B of JSON, to
// a topic of 8 partitions), with the default durability (fsync before ack) and, with --interval,
// --wal-sync-interval 1000; requests/s, p50/p99 latency, non-2xx, errors, the broker's CPU seconds per 1,000
// requests (user + system of all its threads, from /proc), its three busiest threads' CPU (% of a core: are N
// acceptors sharing the load?) and its peak RSS; with --consume also, on the same broker before its produce load,
// GET /topics/<t>/partitions/0/consume?offset=0&limit=100 at 50 connections over 100 records put there first.
// Each N runs --runs times, interleaved (1,2,4, 1,2,4, ...), each run on a fresh broker with a fresh data dir
// under .tmp/; medians, and each N's median requests/s relative to N=1's.
// A broker that refuses to start with some N (today's config accepts only 1) gives a row with its error.
// On a 2-core machine more acceptor threads compete with the workers and the load generator for the same
// cores, so the curve is expected to be flat or falling there; the core count and load average are printed.
// Writes bench/results/acceptors-<iso>.json/.md and prints a table.
// Usage: node --import tsx bench/acceptors.ts [--threads-list 1,2,4] [--workers 2] [--runs 3] [--duration 10]
// [--connections 200] [--interval] [--consume] [--consume-connections 50] [--no-build] [--help]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { cpuSeconds, killStartedServers, root, type Server, startBroker, stopServer } from './lib/servers.js';
import { report } from './lib/table.js';

const args = process.argv.slice(2);
if (args.includes('--help')) {
  process.stdout.write(
    [
      'node --import tsx bench/acceptors.ts [options]',
      '  --threads-list L         acceptor thread counts to compare, comma-separated (default 1,2,4)',
      '  --workers W              partition worker threads, the broker flag --threads (default 2)',
      '  --runs R                 runs per N, interleaved, reported as medians (default 3)',
      '  --duration S             seconds per load (default 10)',
      '  --connections C          produce connections (default 200)',
      '  --interval               also a row per N with --wal-sync-interval 1000 (default: only fsync before ack)',
      '  --consume                also a consume row per N: GET .../partitions/0/consume?offset=0&limit=100',
      '  --consume-connections C  consume connections (default 50)',
      '  --no-build               use dist/ as it is instead of running `npm run build` first',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

function option(name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} wants a positive integer`);
  return value;
}

function threadsList(): number[] {
  const i = args.indexOf('--threads-list');
  const text = i >= 0 ? (args[i + 1] ?? '') : '1,2,4';
  const list = text.split(',').map((part) => Number(part.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`--threads-list wants comma-separated positive integers, got '${text}'`);
  return [...new Set(list)];
}

const acceptorCounts = threadsList();
const workers = option('workers', 2);
const runs = option('runs', 3);
const durationS = option('duration', 10);
const connections = option('connections', 200);
const consumeConnections = option('consume-connections', 50);
const withInterval = args.includes('--interval');
const withConsume = args.includes('--consume');
const build = !args.includes('--no-build');

const topic = 'bench';
const partitions = 8;
/** bench/produce.ts's single message (its default, without --value-bytes). */
const payload = JSON.stringify({ value: 'Peak-msg-payload-0123456789abcdefghijklmnop' });
const producePath = `/topics/${topic}/produce`;
const consumePath = `/topics/${topic}/partitions/0/consume?offset=0&limit=100`;
const note =
  'On a 2-core machine more acceptor threads compete with the partition workers and the load generator ' +
  '(this process) for the same cores, so the curve is expected to be flat or falling there.';

const modes = [
  { key: 'fsync', label: 'fsync before ack (default)', flags: [] as string[] },
  ...(withInterval
    ? [{ key: 'interval', label: '--wal-sync-interval 1000', flags: ['--wal-sync-interval', '1000'] }]
    : []),
] as const;

interface LoadResult {
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly completed: number;
  /** Broker CPU seconds (user + system, all threads) per 1,000 completed requests. */
  readonly cpuSPer1kRequests: number;
  /**
   * The broker's three busiest threads over the load, each in % of one core (Node leaves its threads unnamed:
   * with one acceptor the busiest is the main thread, the acceptor; N acceptors sharing the load show as N
   * threads of similar share).
   */
  readonly busiestThreadsPct: readonly number[];
}

interface RunResult {
  readonly acceptors: number;
  readonly mode: string;
  readonly run: number;
  readonly produce?: LoadResult;
  readonly consume?: LoadResult;
  /** The broker's peak resident set (VmHWM) after its loads, bytes. */
  readonly peakRssBytes?: number;
  /** OS threads of the broker process during the produce load (a check that N acceptors started). */
  readonly osThreads?: number;
  /** Why the run has no figures: the broker refused to start, the topic was not created, ... */
  readonly error?: string;
  /** The broker's output when it failed, for the JSON. */
  readonly output?: string;
}

function procStatusField(pid: number, field: string): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** CPU clock ticks (user + system) of each thread of `pid`, by thread id, from /proc/<pid>/task. */
function threadTicks(pid: number): Map<string, number> {
  const ticks = new Map<string, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return ticks;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(tid, Number(fields[11]) + Number(fields[12]));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ticks;
}

async function post(base: string, path: string, body: unknown): Promise<void> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status >= 300) throw new Error(`POST ${path}: ${response.status} ${await response.text()}`);
}

async function load(
  server: Server,
  path: string,
  options: { method: 'GET' | 'POST'; connections: number },
): Promise<{ result: LoadResult; osThreads: number }> {
  const pid = server.child.pid!;
  let osThreads = 0;
  const sampler = setInterval(() => {
    osThreads = Math.max(osThreads, procStatusField(pid, 'Threads'));
  }, 500);
  const startedMs = performance.now();
  const cpuBefore = cpuSeconds(pid);
  const ticksBefore = threadTicks(pid);
  try {
    const result = await autocannon({
      url: `${server.base}${path}`,
      method: options.method,
      ...(options.method === 'POST'
        ? { headers: { 'content-type': 'application/json' }, body: payload }
        : {}),
      connections: options.connections,
      pipelining: 1,
      duration: durationS,
    });
    const elapsedS = (performance.now() - startedMs) / 1000;
    const cpuUsed = cpuSeconds(pid) - cpuBefore;
    const busiestThreadsPct = [...threadTicks(pid)]
      .map(([tid, ticks]) => ticks - (ticksBefore.get(tid) ?? 0))
      .sort((a, b) => b - a)
      .slice(0, 3)
      .map((ticks) => Math.round(ticks / elapsedS)); // USER_HZ = 100: ticks per second = % of a core
    const completed = result.requests.total;
    return {
      result: {
        requestsPerS: completed / elapsedS,
        p50Ms: result.latency.p50,
        p99Ms: result.latency.p99,
        non2xx: result.non2xx,
        errors: result.errors, // autocannon's errors include its timeouts
        completed,
        cpuSPer1kRequests: completed === 0 ? 0 : (cpuUsed * 1000) / completed,
        busiestThreadsPct,
      },
      osThreads,
    };
  } finally {
    clearInterval(sampler);
  }
}

/** Text on one line, short enough for a table cell. */
function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 297)}...` : flat;
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Why a broker did not start, from startBroker's error ("server exited with 2 before serving:" or "server did
 * not start in 30 s:", then everything the broker printed): its error and fatal log lines (level 50 and up),
 * and lines that are not JSON logs (the CLI's "invalid configuration" report); else its last line.
 */
function startFailure(error: unknown): string {
  const [head = '', ...output] = messageOf(error).split('\n');
  const reasons: string[] = [];
  for (const line of output) {
    if (line.trim() === '') continue;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      reasons.push(line.trim());
      continue;
    }
    if (typeof entry !== 'object' || entry === null) continue;
    const log = entry as { level?: unknown; msg?: unknown; message?: unknown; err?: { message?: unknown } };
    if (typeof log.level !== 'number' || log.level < 50) continue;
    const detail = log.message ?? log.err?.message;
    reasons.push(`${String(log.msg)}${detail === undefined ? '' : `: ${String(detail)}`}`);
  }
  if (reasons.length === 0) reasons.push(output.filter((line) => line.trim() !== '').at(-1) ?? '');
  const what = head.replace(/^server exited with (\S+) before serving:$/, 'exited with $1:');
  return oneLine(`${what} ${reasons.join(' | ').replaceAll(': | ', ': ')}`);
}

/** One broker with N acceptor threads in one durability mode: start, topic, loads, stop (also on failure). */
async function oneRun(acceptors: number, mode: (typeof modes)[number], run: number): Promise<RunResult> {
  const dataDir = mkdtempSync(join(root, '.tmp', 'bench-acceptors-'));
  let server: Server | undefined;
  try {
    try {
      server = await startBroker(
        ['--threads', String(workers), '--acceptor-threads', String(acceptors), ...mode.flags],
        'bench-acceptors-',
        dataDir,
      );
    } catch (error) {
      const killed = killStartedServers();
      if (killed.length > 0) console.error(`killed broker PID ${killed.join(', ')} after its failed start`);
      return {
        acceptors,
        mode: mode.key,
        run,
        error: `broker did not start: ${startFailure(error)}`,
        output: messageOf(error),
      };
    }
    try {
      await post(server.base, `/topics/${topic}`, { num_partitions: partitions });
      // 100 records of 50 B in partition 0 (one batch, offsets 0-99), the same for every N, for the consume
      // load to read.
      if (withConsume && mode.key === 'fsync')
        await post(server.base, `/topics/${topic}/records`, {
          records: Array.from({ length: 100 }, (_, i) => ({
            partition: 0,
            value: `record-${i}`.padEnd(50, '.'),
          })),
        });
      // Consume first, while partition 0 holds only those 100 records: after the produce load it also holds
      // what that load put there (a share that varies run by run), and reading offsets 0-99 then costs more.
      const consume =
        withConsume && mode.key === 'fsync'
          ? (await load(server, consumePath, { method: 'GET', connections: consumeConnections })).result
          : undefined;
      const produce = await load(server, producePath, { method: 'POST', connections });
      return {
        acceptors,
        mode: mode.key,
        run,
        produce: produce.result,
        ...(consume === undefined ? {} : { consume }),
        peakRssBytes: procStatusField(server.child.pid!, 'VmHWM') * 1024,
        osThreads: produce.osThreads,
      };
    } catch (error) {
      return {
        acceptors,
        mode: mode.key,
        run,
        error: oneLine(messageOf(error)),
        output: server.output().slice(-5000),
      };
    }
  } finally {
    if (server !== undefined) await stopServer(server);
    for (const pid of killStartedServers()) console.error(`killed leftover broker PID ${pid}`);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

/** The first error of some runs, with how many runs had it. */
function errorsOf(results: readonly RunResult[]): string {
  const failed = results.filter((r) => r.error !== undefined);
  if (failed.length === 0) return '';
  return `${failed.length}/${results.length} runs failed: ${failed[0]!.error}`;
}

function produceRows(all: readonly RunResult[]): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const mode of modes) {
    const ok = (n: number) =>
      all.filter((r) => r.acceptors === n && r.mode === mode.key && r.produce !== undefined);
    const baseRuns = ok(1);
    const baseRate = baseRuns.length === 0 ? undefined : median(baseRuns.map((r) => r.produce!.requestsPerS));
    for (const n of acceptorCounts) {
      const results = all.filter((r) => r.acceptors === n && r.mode === mode.key);
      const good = ok(n);
      const med = (pick: (r: RunResult) => number): number => median(good.map(pick));
      const row: Record<string, unknown> = {
        scenario: `produce, ${mode.label}, ${connections} conns`,
        acceptors: n,
        workers,
      };
      if (good.length > 0) {
        const rate = med((r) => r.produce!.requestsPerS);
        Object.assign(row, {
          'req/s (median)': Math.round(rate),
          'ratio to N=1': baseRate === undefined ? '-' : (rate / baseRate).toFixed(2),
          'p50 ms': med((r) => r.produce!.p50Ms),
          'p99 ms': med((r) => r.produce!.p99Ms),
          non2xx: good.reduce((sum, r) => sum + r.produce!.non2xx, 0),
          errors: good.reduce((sum, r) => sum + r.produce!.errors, 0),
          'CPU s/1k req': med((r) => r.produce!.cpuSPer1kRequests).toFixed(3),
          'peak RSS MB': (med((r) => r.peakRssBytes!) / 1e6).toFixed(0),
          'OS threads': med((r) => r.osThreads!),
          'busiest threads % core': [0, 1, 2]
            .map((k) => med((r) => r.produce!.busiestThreadsPct[k] ?? 0))
            .join('/'),
          runs: good.map((r) => Math.round(r.produce!.requestsPerS)).join(' / '),
        });
      }
      row.error = errorsOf(results);
      rows.push(row);
    }
  }
  if (withConsume) {
    for (const n of acceptorCounts) {
      const results = all.filter((r) => r.acceptors === n && r.mode === 'fsync');
      const good = results.filter((r) => r.consume !== undefined);
      const row: Record<string, unknown> = {
        scenario: `consume, partition 0, limit 100, ${consumeConnections} conns`,
        acceptors: n,
        workers,
      };
      if (good.length > 0) {
        const baseRuns = all.filter((r) => r.acceptors === 1 && r.consume !== undefined);
        const baseRate =
          baseRuns.length === 0 ? undefined : median(baseRuns.map((r) => r.consume!.requestsPerS));
        const rate = median(good.map((r) => r.consume!.requestsPerS));
        Object.assign(row, {
          'req/s (median)': Math.round(rate),
          'ratio to N=1': baseRate === undefined ? '-' : (rate / baseRate).toFixed(2),
          'p50 ms': median(good.map((r) => r.consume!.p50Ms)),
          'p99 ms': median(good.map((r) => r.consume!.p99Ms)),
          non2xx: good.reduce((sum, r) => sum + r.consume!.non2xx, 0),
          errors: good.reduce((sum, r) => sum + r.consume!.errors, 0),
          'CPU s/1k req': median(good.map((r) => r.consume!.cpuSPer1kRequests)).toFixed(3),
          'busiest threads % core': [0, 1, 2]
            .map((k) => median(good.map((r) => r.consume!.busiestThreadsPct[k] ?? 0)))
            .join('/'),
          runs: good.map((r) => Math.round(r.consume!.requestsPerS)).join(' / '),
        });
      }
      row.error = errorsOf(results);
      rows.push(row);
    }
  }
  return rows;
}

async function main(): Promise<void> {
  mkdirSync(join(root, '.tmp'), { recursive: true });
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  if (build) execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  const cores = availableParallelism();
  const loadBefore = loadavg();
  const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  console.log(
    `acceptor threads ${acceptorCounts.join(', ')}; ${workers} workers; ${runs} runs of ${durationS} s; ` +
      `${cores} cores (os.availableParallelism()); load average ${fmtLoad(loadBefore)}`,
  );

  const all: RunResult[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      for (const n of acceptorCounts) {
        for (const mode of modes) {
          const result = await oneRun(n, mode, run);
          all.push(result);
          console.log(
            `run ${run + 1}/${runs}, N=${n}, ${mode.key}: ` +
              (result.produce === undefined
                ? `FAILED: ${result.error}`
                : `${Math.round(result.produce.requestsPerS)} req/s, p99 ${result.produce.p99Ms} ms` +
                  (result.consume === undefined
                    ? ''
                    : `; consume ${Math.round(result.consume.requestsPerS)} req/s, p99 ${result.consume.p99Ms} ms`)),
          );
        }
      }
    }
  } finally {
    for (const pid of killStartedServers()) console.error(`killed leftover broker PID ${pid}`);
  }

  const loadAfter = loadavg();
  const rows = produceRows(all);
  const iso = new Date().toISOString().replace(/[:.]/g, '-');
  console.log(
    `\n${cores} cores (os.availableParallelism()); load average before ${fmtLoad(loadBefore)}, after ${fmtLoad(loadAfter)}`,
  );
  console.log(`note: ${note}`);
  report(join(root, 'bench/results', `acceptors-${iso}`), rows, {
    acceptorThreads: acceptorCounts,
    workers,
    runs,
    durationS,
    connections,
    consumeConnections: withConsume ? consumeConnections : null,
    modes: modes.map((m) => m.key),
    partitions,
    producePath,
    consumePath: withConsume ? consumePath : null,
    payloadBytes: Buffer.byteLength(payload),
    cores,
    loadAverage: { before: loadBefore, after: loadAfter },
    note,
    raw: all,
  });
}

process.once('SIGINT', () => process.exit(130)); // servers.ts kills its children on 'exit'
process.once('SIGTERM', () => process.exit(143));
await main();
