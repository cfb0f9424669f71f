// Streaming benchmark: end-to-end latency from a WebSocket produce to the WebSocket push of the same record at a
// paced 10k records/s (with the default fsync-before-ack and with a 1 s fsync interval), with the server's CPU
// time per record (every thread, from /proc); push throughput to one
// consumer and to 100 consumers of one partition; the same latency load against a bare uWS relay (the floor); the broker's RSS with 1000 idle consumers connected. The
// broker runs compiled, as a child process. Writes bench/results/stream-<iso>.json and prints a table.
// Usage: node --import tsx bench/stream.ts [--quick] [--latency-only] [--baseline DIR] [--runs N]
// (--latency-only: only the produce -> push latency rows; steady* columns leave out the first 2 s of the measured
// run, which follows one second of the same load on another topic: coldMaxMs is that first second's worst latency.
// --baseline DIR: the latency rows also for the broker of another built checkout (a `git worktree` of an
// earlier commit, after `npm run build` there), each fsync mode run on both versions back to back, the order
// alternating between runs; --runs N repeats the relay and the broker rows N times (default 1) and adds the
// medians of each row over the runs. loadAvg1 is the machine's 1-minute load average when the row started.)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { cpuSeconds, root, type Server, startBareUws, startBroker, stopServer } from './lib/servers.js';
import { report } from './lib/table.js';

const quick = process.argv.includes('--quick');
const latencyOnly = process.argv.includes('--latency-only');
function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  if (at < 0) return undefined;
  const value = process.argv[at + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`);
  return value;
}
const baselineCheckout = option('--baseline');
const runs = Number(option('--runs') ?? '1');
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a whole number >= 1, got ${runs}`);

type Broker = Server;
const stopBroker = stopServer;

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match === null ? 0 : Number(match[1]) / 1024;
}

async function post(base: string, path: string, body: unknown): Promise<void> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
}

/**
 * Opens a socket with its message handler attached first: frames can arrive in the same read as the
 * handshake answer, before a handler added after `open` would see them.
 */
function open(
  url: string,
  onMessage: (data: WebSocket.RawData) => void = () => undefined,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('message', onMessage);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** The broker's per-thread heap allocation and GC time so far (zeros for a server without /metrics). */
async function heapFigures(
  server: Server,
): Promise<{ acceptorAllocBytes: number; acceptorGcSeconds: number; workerAllocBytes: number }> {
  const figures = { acceptorAllocBytes: 0, acceptorGcSeconds: 0, workerAllocBytes: 0 };
  const answer = await fetch(`${server.base}/metrics`).catch(() => null);
  if (answer?.status !== 200) return figures;
  for (const line of (await answer.text()).split('\n')) {
    const match = /^broker_thread_(heap_allocated_bytes|gc_seconds)_total\{thread="([^"]+)"\} (\S+)$/.exec(
      line,
    );
    if (match === null) continue;
    const value = Number(match[3]);
    if (match[1] === 'gc_seconds') {
      if (match[2] === 'acceptor') figures.acceptorGcSeconds = value;
    } else if (match[2] === 'acceptor') figures.acceptorAllocBytes = value;
    else figures.workerAllocBytes += value;
  }
  return figures;
}

/**
 * Produces over one socket at `ratePerS` for `seconds`; a consumer socket measures produce → push latency.
 * Also reports the broker's heap allocation per record (acceptor, workers) and the acceptor's GC share.
 */
async function latency(broker: Broker, ratePerS: number, seconds: number, topic = 'lat') {
  await post(broker.base, `/topics/${topic}`, {});
  const ws = broker.base.replace('http', 'ws');
  const latenciesMs: number[] = [];
  // Latencies of records sent after the first 2 s: the steady state, without the stream's start (the first
  // fetch, JIT warm-up), which at 10k records/s would otherwise own the whole top percentile.
  const steadyMs: number[] = [];
  let steadyFromMs = Number.POSITIVE_INFINITY;
  const consumer = await open(`${ws}/ws/consume/${topic}?partition=0&offset=latest`, (data) => {
    const record = JSON.parse(data.toString()) as { value: string };
    const sentMs = Number(record.value);
    latenciesMs.push(performance.now() - sentMs);
    if (sentMs >= steadyFromMs) steadyMs.push(performance.now() - sentMs);
  });
  const producer = await open(`${ws}/ws/produce/${topic}`);
  const heapBefore = await heapFigures(broker);
  const cpuBefore = cpuSeconds(broker.child.pid!);
  const total = ratePerS * seconds;
  const perTick = Math.max(1, Math.round(ratePerS / 1000));
  let sent = 0;
  const started = performance.now();
  steadyFromMs = started + 2000;
  while (sent < total) {
    // Pace by the clock: every millisecond send what is due.
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * ratePerS) + perTick);
    while (sent < due) {
      producer.send(JSON.stringify({ value: String(performance.now()), partition: 0 }));
      sent++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  const deadline = Date.now() + 10_000;
  while (latenciesMs.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const elapsedS = (performance.now() - started) / 1000;
  const cpuUsed = cpuSeconds(broker.child.pid!) - cpuBefore;
  const heapAfter = await heapFigures(broker);
  producer.close();
  consumer.close();
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const steady = [...steadyMs].sort((a, b) => a - b);
  return {
    records: latenciesMs.length,
    achievedPerS: Math.round(total / ((performance.now() - started) / 1000)),
    p50Ms: +percentile(sorted, 50).toFixed(2),
    p99Ms: +percentile(sorted, 99).toFixed(2),
    maxMs: +(sorted.at(-1) ?? 0).toFixed(2),
    steadyP50Ms: +percentile(steady, 50).toFixed(2),
    steadyP99Ms: +percentile(steady, 99).toFixed(2),
    steadyMaxMs: +(steady.at(-1) ?? 0).toFixed(2),
    cpuUsPerRecord: +((cpuUsed * 1e6) / total).toFixed(1),
    acceptorAllocBPerRecord: Math.round(
      (heapAfter.acceptorAllocBytes - heapBefore.acceptorAllocBytes) / total,
    ),
    workerAllocBPerRecord: Math.round((heapAfter.workerAllocBytes - heapBefore.workerAllocBytes) / total),
    acceptorGcPercent: +(
      (100 * (heapAfter.acceptorGcSeconds - heapBefore.acceptorGcSeconds)) /
      elapsedS
    ).toFixed(1),
  };
}

/** Preloads `records` and times how long `consumers` sockets take to receive all of them from offset 0. */
async function pushThroughput(broker: Broker, topic: string, records: number, consumers: number) {
  await post(broker.base, `/topics/${topic}`, {});
  for (let done = 0; done < records; done += 1000) {
    await post(broker.base, `/topics/${topic}/records`, {
      records: Array.from({ length: 1000 }, (_, i) => ({ value: `r${done + i}`.padEnd(50, '.') })),
    });
  }
  console.log(`push throughput: ${records} records loaded, ${consumers} consumer(s)...`);
  const ws = broker.base.replace('http', 'ws');
  const started = performance.now();
  const counts: number[] = [];
  const finished: Promise<void>[] = [];
  for (let c = 0; c < consumers; c++) {
    counts.push(0);
    let done: () => void = () => undefined;
    finished.push(new Promise<void>((resolve) => (done = resolve)));
    const socket: WebSocket = await open(`${ws}/ws/consume/${topic}?partition=0&offset=earliest`, () => {
      if (++counts[c]! === records) {
        socket.close();
        done();
      }
    });
  }
  // Bounded: a stalled stream is reported instead of hanging the benchmark.
  let watchdog: NodeJS.Timeout | undefined;
  const stalled = new Promise<string>((resolve) => {
    watchdog = setTimeout(() => resolve(`stalled; received per consumer: ${JSON.stringify(counts)}`), 30_000);
  });
  const outcome = await Promise.race([Promise.all(finished).then(() => 'ok'), stalled]);
  clearTimeout(watchdog);
  if (outcome !== 'ok') throw new Error(outcome);
  const seconds = (performance.now() - started) / 1000;
  return {
    consumers,
    records,
    seconds: +seconds.toFixed(2),
    deliveriesPerS: Math.round((records * consumers) / seconds),
  };
}

async function idleConsumers(broker: Broker, count: number) {
  await post(broker.base, '/topics/idle', {});
  const before = rssMb(broker.child.pid!);
  const ws = broker.base.replace('http', 'ws');
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i++) sockets.push(await open(`${ws}/ws/consume/idle?partition=0&offset=latest`));
  await new Promise((r) => setTimeout(r, 1000));
  const after = rssMb(broker.child.pid!);
  for (const s of sockets) s.close();
  return {
    consumers: count,
    rssBeforeMb: +before.toFixed(1),
    rssAfterMb: +after.toFixed(1),
    addedMb: +(after - before).toFixed(1),
  };
}

/** One row per scenario and version: the median of each numeric column over the runs. */
function medians(rows: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  const groups = new Map<string, Record<string, unknown>[]>();
  for (const row of rows) {
    const key = `${row.scenario}\u0000${row.version}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  const out: Record<string, unknown>[] = [];
  for (const group of groups.values()) {
    const first = group[0]!;
    const median: Record<string, unknown> = {
      scenario: first.scenario,
      version: first.version,
      run: 'median',
    };
    for (const column of Object.keys(first)) {
      if (column in median || typeof first[column] !== 'number') continue;
      const values = group.map((r) => r[column] as number).sort((a, b) => a - b);
      const middle = Math.floor(values.length / 2);
      const value = values.length % 2 === 1 ? values[middle]! : (values[middle - 1]! + values[middle]!) / 2;
      median[column] = +value.toFixed(2);
    }
    out.push(median);
  }
  return out;
}

async function main(): Promise<void> {
  mkdirSync(join(root, '.tmp'), { recursive: true });
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  if (baselineCheckout !== undefined) {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: resolve(baselineCheckout), stdio: 'inherit' });
  }
  const seconds = quick ? 3 : 10;
  const rows: Record<string, unknown>[] = [];
  const versions: (readonly [string, string])[] = [['this', root]];
  if (baselineCheckout !== undefined) versions.push(['baseline', resolve(baselineCheckout)]);

  for (let run = 1; run <= runs; run++) {
    {
      // The floor: the same client and load against a bare uWS relay (bench/bare-uws.ts), no broker.
      console.log(`run ${run}: latency, bare uWS relay...`);
      const loadAvg1 = +loadavg()[0]!.toFixed(2);
      const bare = await startBareUws();
      const coldMaxMs = (await latency(bare, 10_000, 1, 'warm-up')).maxMs;
      const result = await latency(bare, 10_000, seconds);
      rows.push({
        scenario: 'produce -> WS push latency, 10k rec/s, bare uWS relay (no broker)',
        version: '',
        run,
        loadAvg1,
        coldMaxMs,
        ...result,
      });
      await stopBroker(bare);
    }
    for (const [label, extra] of [
      ['fsync before ack (default)', []],
      ['--wal-sync-interval 1000', ['--wal-sync-interval', '1000']],
    ] as const) {
      // Both versions back to back, the first one alternating between runs.
      const order = run % 2 === 1 ? versions : [...versions].reverse();
      for (const [version, checkout] of order) {
        console.log(`run ${run}: latency, ${label}, ${version}...`);
        const loadAvg1 = +loadavg()[0]!.toFixed(2);
        const broker = await startBroker([...extra], 'bench-stream-', undefined, checkout);
        // The first second after start-up runs cold code (JIT warm-up): its worst latency is reported on its
        // own (coldMaxMs), and the measured run starts on a warm process with a new topic and new sockets.
        const coldMaxMs = (await latency(broker, 10_000, 1, 'warm-up')).maxMs;
        const result = await latency(broker, 10_000, seconds);
        rows.push({
          scenario: `produce -> WS push latency, 10k rec/s, ${label}`,
          version,
          run,
          loadAvg1,
          coldMaxMs,
          ...result,
        });
        await stopBroker(broker);
      }
    }
  }
  if (runs > 1) rows.push(...medians(rows));
  if (latencyOnly) {
    report(join(root, 'bench/results', `stream-${new Date().toISOString().replace(/[:.]/g, '-')}`), rows);
    return;
  }
  const broker = await startBroker(['--wal-sync-interval', '1000'], 'bench-stream-');
  rows.push({
    scenario: 'push throughput, 1 consumer',
    ...(await pushThroughput(broker, 'one', quick ? 20_000 : 200_000, 1)),
  });
  rows.push({
    scenario: 'push throughput, 100 consumers',
    ...(await pushThroughput(broker, 'many', quick ? 2_000 : 20_000, 100)),
  });
  rows.push({ scenario: 'idle consumers', ...(await idleConsumers(broker, 1000)) });
  await stopBroker(broker);

  const iso = new Date().toISOString().replace(/[:.]/g, '-');
  report(join(root, 'bench/results', `stream-${iso}`), rows);
}

await main();
