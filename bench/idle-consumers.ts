// Idle WebSocket consumers at scale: the compiled broker (fsync before ack) takes `--consumers` (default 10,000)
// WebSocket streams on one partition from this process, opened `--concurrency` at a time; its RSS (and the
// anonymous part) is sampled before, with every stream open and idle, and after they close. Then one record is
// produced and the time until every stream has it is measured (a fan-out to all of them), and the streams close.
// Needs `ulimit -n` of at least consumers + 1,000 for this process and the broker (the broker inherits it).
// Usage: node --import tsx bench/idle-consumers.ts [--consumers 10000] [--concurrency 200]
// Writes bench/results/idle-consumers-<iso>.json/.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { root, startBroker, stopServer } from './lib/servers.js';
import { report } from './lib/table.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const consumers = option('consumers', 10_000);
const concurrency = option('concurrency', 200);

function memoryMb(pid: number): { rssMb: number; anonMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number =>
    Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { rssMb: +field('VmRSS').toFixed(1), anonMb: +field('RssAnon').toFixed(1) };
}

function openFiles(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  return Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 0);
}

async function main(): Promise<void> {
  if (openFiles() < consumers + 1000) {
    throw new Error(`ulimit -n is ${openFiles()}; run with at least ${consumers + 1000} (ulimit -n 20000)`);
  }
  mkdirSync(join(root, '.tmp'), { recursive: true });
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  const broker = await startBroker([], 'bench-idle-consumers-');
  const pid = broker.child.pid!;
  const sockets: WebSocket[] = [];
  const rows: Record<string, unknown>[] = [];
  try {
    const created = await fetch(`${broker.base}/topics/idle`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ num_partitions: 1 }),
    });
    if (created.status !== 201) throw new Error(`topic: ${created.status} ${await created.text()}`);
    await new Promise((r) => setTimeout(r, 1000));
    const before = memoryMb(pid);
    rows.push({ stage: 'before', consumers: 0, ...before, 'KB per consumer': '', ms: '' });

    let received = 0;
    let allReceived: () => void = () => undefined;
    const everyoneHasIt = new Promise<void>((resolve) => {
      allReceived = resolve;
    });
    const url = `${broker.base.replace('http', 'ws')}/ws/consume/idle?partition=0&offset=latest`;
    const openOne = (): Promise<WebSocket> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        let counted = false;
        ws.on('message', () => {
          if (counted) return;
          counted = true;
          if (++received === consumers) allReceived();
        });
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      });
    const openStarted = performance.now();
    for (let i = 0; i < consumers; i += concurrency) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(concurrency, consumers - i) }, () => openOne()),
      );
      sockets.push(...batch);
    }
    const openMs = performance.now() - openStarted;
    await new Promise((r) => setTimeout(r, 2000));
    const open = memoryMb(pid);
    rows.push({
      stage: 'all open, idle 2 s',
      consumers,
      ...open,
      'KB per consumer': (((open.rssMb - before.rssMb) * 1024) / consumers).toFixed(1),
      ms: `${openMs.toFixed(0)} to open them`,
    });

    const produced = performance.now();
    const answer = await fetch(`${broker.base}/topics/idle/produce`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value: 'to-everyone', partition: 0 }),
    });
    if (answer.status !== 201) throw new Error(`produce: ${answer.status} ${await answer.text()}`);
    const timeout = setTimeout(() => allReceived(), 30_000);
    await everyoneHasIt;
    clearTimeout(timeout);
    const fanOut = memoryMb(pid);
    rows.push({
      stage: 'one record pushed to every consumer',
      consumers: received,
      ...fanOut,
      'KB per consumer': (((fanOut.rssMb - before.rssMb) * 1024) / consumers).toFixed(1),
      ms: `${(performance.now() - produced).toFixed(0)} until the last one had it`,
    });
    if (received !== consumers) throw new Error(`only ${received} of ${consumers} consumers got the record`);

    for (const ws of sockets) ws.close();
    sockets.length = 0;
    await new Promise((r) => setTimeout(r, 3000));
    rows.push({ stage: 'after closing them', consumers: 0, ...memoryMb(pid), 'KB per consumer': '', ms: '' });
  } finally {
    for (const ws of sockets) ws.terminate();
    await stopServer(broker);
  }
  report(
    join(root, 'bench/results', `idle-consumers-${new Date().toISOString().replace(/[:.]/g, '-')}`),
    rows,
    {
      consumers,
    },
  );
}

await main();
