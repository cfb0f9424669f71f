// Helpers for the cluster benchmarks (metadata-commit, raft-failover): clusters of real broker processes through
// the test helper `TestCluster` (which starts brokers from source and kills them by PID), cleanup of those
// processes (and their temp dirs) on SIGINT/SIGTERM, at exit and by a watchdog, polling for an agreed Raft leader, timed topic creation, percentiles
// and the machine's description. Callable from the main thread of a benchmark process only.
import { rmSync } from 'node:fs';
import { cpus, loadavg, platform, release } from 'node:os';
import { dirname } from 'node:path';
import { type ClusterNode, type StatusView, statusOf, TestCluster } from '../../test/cluster/processes.js';

export { type ClusterNode, type StatusView, statusOf, TestCluster };

/** Clusters still running; killed by PID on a signal or at exit so an interrupted run leaves nothing behind. */
const live = new Set<TestCluster>();
let handlersInstalled = false;

function killAllNow(): void {
  for (const cluster of live) {
    for (const node of cluster.nodes) {
      const pid = node.process?.child.pid;
      if (pid === undefined) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
}

/** Removes the live clusters' temp dirs (after killAllNow: nothing writes there any more). */
function removeDirsNow(): void {
  for (const cluster of live) {
    const first = cluster.nodes[0];
    if (first !== undefined) rmSync(dirname(first.dataDir), { recursive: true, force: true });
  }
}

/**
 * Ends the process after `budgetMs` whatever it is doing, every broker killed by PID and the temp dirs removed:
 * a benchmark stuck on a broker never leaves processes behind.
 */
export function armWatchdog(label: string, budgetMs: number): NodeJS.Timeout {
  const timer = setTimeout(() => {
    console.error(`${label}: over its ${budgetMs / 60_000} min budget; killing everything`);
    killAllNow();
    removeDirsNow();
    process.exit(1);
  }, budgetMs);
  timer.unref();
  return timer;
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    killAllNow();
    removeDirsNow();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAllNow();
      removeDirsNow();
      process.exit(130);
    });
  }
}

/**
 * Starts `count` brokers (`--threads 1`, as TestCluster does, plus `extraArgs` for every broker) and registers
 * them for cleanup.
 */
export async function startCluster(count: number, extraArgs: readonly string[] = []): Promise<TestCluster> {
  installHandlers();
  const cluster = await TestCluster.start(count, extraArgs);
  live.add(cluster);
  return cluster;
}

/** Kills every process of the cluster by PID and removes its data dirs. Safe to call twice. */
export async function stopCluster(cluster: TestCluster | undefined): Promise<void> {
  if (cluster === undefined) return;
  try {
    await cluster.stopAll();
  } finally {
    live.delete(cluster);
  }
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The status of every node, or undefined if one did not answer within `timeoutMs`. */
export async function statuses(
  nodes: readonly ClusterNode[],
  timeoutMs = 1000,
): Promise<StatusView[] | undefined> {
  const all = await Promise.all(nodes.map((n) => statusOf(n, timeoutMs)));
  return all.every((s) => s !== null) ? (all as StatusView[]) : undefined;
}

/** The leader every given node names, if they all name the same one and it is one of them. */
export function agreed(nodes: readonly ClusterNode[], views: readonly StatusView[]): string | undefined {
  const leader = views[0]?.raft.leader_id ?? null;
  if (leader === null || !nodes.some((n) => n.id === leader)) return undefined;
  return views.every((v) => v.raft.leader_id === leader) ? leader : undefined;
}

/**
 * Polls the nodes every `intervalMs` (start to start) until `check` returns a value, or throws after
 * `timeoutMs`. A node that does not answer within the interval counts as not agreeing yet.
 */
export async function pollStatuses<T>(
  what: string,
  nodes: readonly ClusterNode[],
  timeoutMs: number,
  intervalMs: number,
  check: (views: StatusView[]) => T | undefined,
): Promise<T> {
  const deadlineMs = performance.now() + timeoutMs;
  for (;;) {
    const startedMs = performance.now();
    const views = await statuses(nodes, Math.max(intervalMs * 5, 250));
    if (views !== undefined) {
      const value = check(views);
      if (value !== undefined) return value;
    }
    if (performance.now() > deadlineMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    const leftMs = intervalMs - (performance.now() - startedMs);
    if (leftMs > 0) await sleepMs(leftMs);
  }
}

/** Every node reports `voters` voters and the same leader, which is one of them. */
export function agreedLeader(
  nodes: readonly ClusterNode[],
  voters: number,
  timeoutMs: number,
  intervalMs = 50,
): Promise<string> {
  return pollStatuses(`${voters} voters and an agreed leader`, nodes, timeoutMs, intervalMs, (views) =>
    views.every((v) => v.raft.voters.length === voters) ? agreed(nodes, views) : undefined,
  );
}

export interface CreateResult {
  readonly status: number;
  /** Client side, from before `fetch` until the whole response body was read. */
  readonly latencyMs: number;
  readonly body: string;
}

/** `POST /topics/<name>` with body `{}` (one partition, one Raft commit), timed on the client. */
export async function createTopic(
  node: ClusterNode,
  name: string,
  timeoutMs = 10_000,
): Promise<CreateResult> {
  if (node.process === null) throw new Error(`${node.id} is not running`);
  const url = `${node.process.base}/topics/${name}`;
  const startedMs = performance.now();
  try {
    const response = await fetch(url, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await response.text();
    return { status: response.status, latencyMs: performance.now() - startedMs, body };
  } catch (error) {
    return { status: 0, latencyMs: performance.now() - startedMs, body: String(error) };
  }
}

/** Nearest-rank percentile of ascending `sorted`; NaN when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly platform: string;
  readonly release: string;
  readonly node: string;
  readonly loadavgStart: number[];
  loadavgEnd: number[];
}

export function describeMachine(): Machine {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    platform: platform(),
    release: release(),
    node: process.version,
    loadavgStart: loadavg().map((l) => round(l, 2)),
    loadavgEnd: [],
  };
}

export function loadavgNow(): number[] {
  return loadavg().map((l) => round(l, 2));
}

/**
 * Flag value `--name <n>` or `--name=<n>` as a positive integer, or the default. The second form is the one
 * that survives `npm run bench <name> --name=<n>`, which passes on only the arguments starting with `--`.
 */
export function intFlag(name: string, defaultValue: number): number {
  const joined = process.argv.find((a) => a.startsWith(`--${name}=`));
  const at = process.argv.indexOf(`--${name}`);
  if (joined === undefined && at < 0) return defaultValue;
  const value = Number(joined === undefined ? process.argv[at + 1] : joined.slice(name.length + 3));
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} needs a positive integer`);
  return value;
}
