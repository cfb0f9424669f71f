// Partition moves (`POST /admin/reassignments`) on 3-node clusters of real broker processes (compiled,
// `--threads 1` each, as TestCluster starts them): one cluster unthrottled and one whose brokers all run with
// `--replication-throttle` (`--throttle` MiB/s), both up for the whole benchmark, each figure beside a baseline
// from the same run, because this machine is shared:
//   1. reassignment rate: a topic of 1 partition, replication_factor 1, holding `--mb` MB of ~10 KB records
//      (batch produce, ~1 MB per request), moved to another broker, run after run (each run moves it on from
//      where the last left it; the clusters alternate, the order rotating): time from the POST until the new
//      replica is 0 records behind (`GET /admin/assignment-plan` polled every 20 ms) and until the move
//      finished (the partition's replicas equal the target), as MB/s of log bytes (`size_bytes`). Baselines
//      on the node that leads the partition just before the move: a raw sequential read of its partition files
//      (1 MiB reads, warm page cache) and a sequential HTTP consume of the partition (1000 records per
//      request). On the throttled cluster: measured rate / throttle, per run (target: within 20%);
//   2. produce latency during moves, on the unthrottled cluster: a topic of 3 partitions, replication_factor
//      2, partitions 0 and 1 each holding `--mb` MB; one sequential acks=all producer (`POST
//      /topics/{t}/produce`, `{"value":"x","partition":0}`) to partition 0's leader for `--duration` s while
//      partition 1 (another partition), or partition 0 itself, is moved back to back for the whole window (each
//      move replaces the follower by the third broker, the leader stays), against the same producer with no
//      move; the move poller runs in all three (same 20 ms polls of the plan and the topic), interleaved run by
//      run (the order rotates). p50 / p99 of the producer's acknowledgements and the per-run p99 ratios; and,
//      once the window is over and the last move finished, the latency of one more produce. (After a move of
//      partition 0 itself, one acks=all produce was seen to wait ~10 s, --replica-lag-time-max; when that
//      comes later than this probe it lands in the next window: see the max latencies in the detail column.)
// The clients (loaders, pollers, producer, raw reads) run here, in the benchmark's own process; the brokers are
// child processes. Writes bench/results/moves-<iso>.json and .md and prints the table.
// Usage: node --import tsx bench/moves.ts [--quick] [--runs 3] [--mb 64] [--throttle 16] [--duration 10]
// Not a test: the numbers depend on the machine and its load. Runs on the main thread of its own process.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { partitionDirName } from '../src/core/names.js';
import {
  armWatchdog,
  type ClusterNode,
  describeMachine,
  intFlag,
  loadavgNow,
  median,
  percentile,
  startCluster,
  stopCluster,
  type TestCluster,
} from './lib/cluster.js';
import { type Answer, Failures, call as httpCall } from './lib/http.js';
import { baseOf, fullyInSync, type PartitionView, pollPartition, sleepMs } from './lib/replicas.js';
import { root } from './lib/servers.js';
import { report } from './lib/table.js';

const quick = process.argv.includes('--quick');
const runs = intFlag('runs', quick ? 2 : 3);
const mb = intFlag('mb', quick ? 16 : 64);
const throttleMiB = intFlag('throttle', quick ? 8 : 16);
const durationS = intFlag('duration', quick ? 3 : 10);
const throttleBytesPerS = throttleMiB * 1024 * 1024;
const recordBytes = 10_000;
const batchRecords = 100;
const loadWorkers = 2;
const pollMs = 20;
const retryMs = 20;
const consumeLimit = 1000;
/** Bounds on every phase: beyond these the cluster is broken, not slow. */
const requestTimeoutMs = 30_000;
const topicReadyWaitMs = 60_000;
const unthrottledMoveWaitMs = 120_000;
/** A throttled move may take up to three times what the throttle allows, plus this. */
const throttledMoveSlackMs = 60_000;
const settleWaitMs = 120_000;
/** The whole benchmark; past it everything started is killed and the process exits 1. */
const totalBudgetMs = (quick ? 10 : 30) * 60_000;

type Row = Record<string, unknown>;
const columns = [
  'scenario',
  'MB/s',
  'ms',
  'p50 ms',
  'p99 ms',
  'vs baseline',
  'errors',
  'load',
  'detail',
] as const;
type Column = (typeof columns)[number];

/** Every column in the same order on every row, so that the table's columns read left to right as listed. */
function row(cells: Partial<Record<Column, string | number>>): Row {
  return Object.fromEntries(columns.map((c) => [c, cells[c]]));
}

// ------------------------------------------------------------------------------------------------------------
// ------------------------------------------------------------------------------------------------------------
// HTTP.

/** One request with this benchmark's deadline (see lib/http.ts). */
function call(
  base: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  timeoutMs = requestTimeoutMs,
): Promise<Answer> {
  return httpCall(base, method, path, body, timeoutMs);
}

interface TopicPartition {
  readonly partition: number;
  readonly replicas: string[];
  readonly isr: string[];
  readonly leader: string | null;
  readonly size_bytes?: number;
}

interface MoveView {
  readonly topic: string;
  readonly partition: number;
  readonly from: string[];
  readonly to: string[];
  readonly adding: { broker: string; in_isr: boolean; records_behind: number | null }[];
  readonly elapsed_ms: number;
}

async function topicPartitions(base: string, topic: string): Promise<TopicPartition[] | null> {
  const got = await call(base, 'GET', `/topics/${topic}`, undefined, 2_000);
  if (got.kind !== '') return null;
  return (JSON.parse(got.text) as { partitions: TopicPartition[] }).partitions;
}

async function movesInProgress(base: string): Promise<MoveView[] | null> {
  const got = await call(base, 'GET', '/admin/assignment-plan', undefined, 2_000);
  if (got.kind !== '') return null;
  return ((JSON.parse(got.text) as { moves?: MoveView[] }).moves ?? []) as MoveView[];
}

async function createTopic(node: ClusterNode, topic: string, partitions: number, rf: number): Promise<void> {
  const got = await call(baseOf(node), 'POST', `/topics/${topic}`, {
    num_partitions: partitions,
    replication_factor: rf,
  });
  if (got.status !== 201 && got.status !== 200)
    throw new Error(`creating ${topic} answered ${got.status}: ${got.text.slice(0, 300)}`);
  for (let p = 0; p < partitions; p++) {
    await pollPartition(`${topic}-${p} to have a full ISR`, node, topic, p, topicReadyWaitMs, 50, (v) =>
      fullyInSync(v) && v.replicas.length === rf ? true : undefined,
    );
  }
}

/** Appends `mbToLoad` MB of ~10 KB records to the partition through its leader, ~1 MB per request. */
async function loadPartition(
  cluster: TestCluster,
  topic: string,
  partition: number,
  mbToLoad: number,
): Promise<{ records: number; ms: number; view: PartitionView }> {
  const any = cluster.running()[0]!;
  const leaderView = await pollPartition(
    `${topic}-${partition} leader`,
    any,
    topic,
    partition,
    30_000,
    50,
    (v) => (v.leader !== null ? v : undefined),
  );
  const base = baseOf(cluster.node(leaderView.leader!));
  const records = Array.from({ length: batchRecords }, (_, i) => ({
    value: `${partition}-${i}-`.padEnd(recordBytes, 'x'),
    partition,
  }));
  const body = JSON.stringify({ records });
  const requests = Math.ceil((mbToLoad * 1e6) / (batchRecords * recordBytes));
  const startedMs = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requests) {
      next++;
      const got = await call(base, 'POST', `/topics/${topic}/records`, body);
      if (got.kind !== '') throw new Error(`batch produce answered ${got.kind}: ${got.text.slice(0, 300)}`);
      const answer = JSON.parse(got.text) as { offsets: { error_code?: number | null }[] };
      const failed = answer.offsets.find((o) => o.error_code !== undefined && o.error_code !== null);
      if (failed !== undefined) throw new Error(`batch produce refused a record: ${JSON.stringify(failed)}`);
    }
  };
  await Promise.all(Array.from({ length: loadWorkers }, worker));
  const ms = performance.now() - startedMs;
  const total = requests * batchRecords;
  const view = await pollPartition(
    `${topic}-${partition} to hold ${total} records`,
    any,
    topic,
    partition,
    60_000,
    50,
    (v) => (fullyInSync(v) && v.high_watermark === total && typeof v.size_bytes === 'number' ? v : undefined),
  );
  return { records: total, ms, view };
}

/** Reads every file of the directory sequentially in 1 MiB reads; the bytes read. */
function readDirectory(dir: string): number {
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  let total = 0;
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    const fd = openSync(path, 'r');
    try {
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, null);
        if (n === 0) break;
        total += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return total;
}

/** Reads the partition from offset 0 to `endOffset`, 1000 records per request; the JSON bytes received. */
async function consumeAll(base: string, topic: string, endOffset: number): Promise<number> {
  let offset = 0;
  let bytes = 0;
  while (offset < endOffset) {
    const got = await call(
      base,
      'GET',
      `/topics/${topic}/partitions/0/consume?offset=${offset}&limit=${consumeLimit}`,
    );
    if (got.kind !== '') throw new Error(`consume answered ${got.kind}: ${got.text.slice(0, 300)}`);
    bytes += got.text.length;
    const answer = JSON.parse(got.text) as { next_offset: number; count: number };
    if (answer.count === 0) throw new Error(`consume at ${offset} returned nothing before ${endOffset}`);
    offset = answer.next_offset;
  }
  return bytes;
}

// ------------------------------------------------------------------------------------------------------------
// One move, timed: POST, then the plan and the topic polled together every 20 ms (start to start).

interface TimedMove {
  readonly from: string[];
  readonly to: string[];
  /** POST -> answer. */
  readonly postMs: number;
  /** POST -> every new replica 0 records behind (or the move already finished). */
  readonly caughtUpMs: number;
  /** POST -> the partition's replicas equal the target and the move is gone from the plan. */
  readonly finishedMs: number;
  /** The move's own `elapsed_ms` the last time the plan showed it. */
  readonly lastElapsedMs: number | null;
  readonly polls: number;
  readonly pollFailures: number;
  /** [ms since the POST, records behind of the first new replica] whenever it changed. */
  readonly progress: [number, number | null][];
}

async function timedMove(
  controlBase: string,
  topic: string,
  partition: number,
  target: readonly string[],
  timeoutMs: number,
): Promise<TimedMove> {
  const before = (await topicPartitions(controlBase, topic))?.[partition];
  if (before === undefined) throw new Error(`${topic}-${partition} not described before the move`);
  const startedMs = performance.now();
  const posted = await call(controlBase, 'POST', '/admin/reassignments', {
    partitions: [{ topic, partition, replicas: target }],
  });
  const postMs = performance.now() - startedMs;
  if (posted.status !== 202)
    throw new Error(
      `reassignment of ${topic}-${partition} to ${target.join(',')} answered ${posted.status}: ${posted.text.slice(0, 300)}`,
    );
  let caughtUpAtMs = Number.NaN;
  let finishedAtMs = Number.NaN;
  let seen = false;
  let lastElapsedMs: number | null = null;
  let polls = 0;
  let pollFailures = 0;
  const progress: [number, number | null][] = [];
  const deadlineMs = startedMs + timeoutMs;
  const same = (a: readonly string[]) => a.join() === target.join();
  for (;;) {
    const pollStartMs = performance.now();
    const [moves, parts] = await Promise.all([
      movesInProgress(controlBase),
      topicPartitions(controlBase, topic),
    ]);
    const now = performance.now();
    polls++;
    if (moves === null || parts === null) pollFailures++;
    const mine = moves?.find((m) => m.topic === topic && m.partition === partition);
    if (mine !== undefined) {
      seen = true;
      lastElapsedMs = mine.elapsed_ms;
      const behind = mine.adding[0]?.records_behind ?? null;
      if (progress.length === 0 || progress[progress.length - 1]![1] !== behind)
        progress.push([Math.round(now - startedMs), behind]);
      if (
        Number.isNaN(caughtUpAtMs) &&
        mine.adding.length > 0 &&
        mine.adding.every((a) => a.records_behind === 0)
      )
        caughtUpAtMs = now;
    }
    const p = parts?.[partition];
    const done = p !== undefined && same(p.replicas) && moves !== null && mine === undefined;
    if (done) {
      if (Number.isNaN(caughtUpAtMs)) caughtUpAtMs = now;
      finishedAtMs = now;
      break;
    }
    if (now > deadlineMs)
      throw new Error(
        `move of ${topic}-${partition} to ${target.join(',')} not finished after ${timeoutMs} ms (seen in the plan: ${seen}); last plan entry ${JSON.stringify(mine)}, last placement ${JSON.stringify(p)}`,
      );
    const leftMs = pollMs - (performance.now() - pollStartMs);
    if (leftMs > 0) await sleepMs(leftMs);
  }
  return {
    from: before.replicas,
    to: [...target],
    postMs,
    caughtUpMs: caughtUpAtMs - startedMs,
    finishedMs: finishedAtMs - startedMs,
    lastElapsedMs,
    polls,
    pollFailures,
    progress,
  };
}

// ------------------------------------------------------------------------------------------------------------
// 1. Reassignment rate, unthrottled and throttled, against raw read and HTTP consume on the same leader.

type Kind = 'unthrottled' | 'throttled';

interface RateRun {
  readonly kind: Kind;
  readonly run: number;
  readonly leader: string;
  readonly target: string;
  readonly sizeBytes: number;
  readonly endOffset: number;
  readonly rawReadBytes: number;
  readonly rawReadMs: number;
  readonly consumeMs: number;
  readonly consumeJsonBytes: number;
  readonly move: TimedMove;
  readonly loadavg1m: number;
}

const rateTopic = 'bulk';

async function rateRun(cluster: TestCluster, kind: Kind, run: number): Promise<RateRun> {
  const control = cluster.nodes[0]!;
  const controlBase = baseOf(control);
  const part = (await topicPartitions(controlBase, rateTopic))?.[0];
  if (part === undefined || part.leader === null) throw new Error(`${rateTopic}-0 has no leader on ${kind}`);
  const leader = cluster.node(part.leader);
  // The leader must serve the partition with every record before the baselines read it.
  const view = await pollPartition(
    `${rateTopic}-0 served by ${leader.id}`,
    leader,
    rateTopic,
    0,
    settleWaitMs,
    50,
    (v) =>
      v.leader === leader.id && v.high_watermark === v.log_end_offset && typeof v.size_bytes === 'number'
        ? v
        : undefined,
  );
  const endOffset = view.log_end_offset!;
  const sizeBytes = view.size_bytes!;
  const rawStartMs = performance.now();
  const rawReadBytes = readDirectory(join(leader.dataDir, partitionDirName(rateTopic, 0)));
  const rawReadMs = performance.now() - rawStartMs;
  const consumeStartMs = performance.now();
  const consumeJsonBytes = await consumeAll(baseOf(leader), rateTopic, endOffset);
  const consumeMs = performance.now() - consumeStartMs;
  await sleepMs(300);
  // Each run moves the partition to the next broker round the ring, so the source and target rotate.
  const index = cluster.nodes.indexOf(leader);
  const target = cluster.nodes[(index + 1) % cluster.nodes.length]!;
  const timeoutMs =
    kind === 'unthrottled'
      ? unthrottledMoveWaitMs
      : (3 * sizeBytes * 1000) / throttleBytesPerS + throttledMoveSlackMs;
  const move = await timedMove(controlBase, rateTopic, 0, [target.id], timeoutMs);
  return {
    kind,
    run,
    leader: leader.id,
    target: target.id,
    sizeBytes,
    endOffset,
    rawReadBytes,
    rawReadMs,
    consumeMs,
    consumeJsonBytes,
    move,
    loadavg1m: loadavgNow()[0] ?? Number.NaN,
  };
}

const mbPerS = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const fixed = (value: number, digits = 1): string => (Number.isNaN(value) ? '-' : value.toFixed(digits));

function rateRows(all: readonly RateRun[]): Row[] {
  const rows: Row[] = [];
  const throttleMB = throttleBytesPerS / 1e6;
  for (const kind of ['unthrottled', 'throttled'] as const) {
    const list = all.filter((r) => r.kind === kind);
    if (list.length === 0) continue;
    const mb = fixed(median(list.map((r) => r.sizeBytes)) / 1e6);
    const label =
      kind === 'unthrottled'
        ? 'unthrottled'
        : `--replication-throttle ${throttleMiB} MiB/s (${fixed(throttleMB)} MB/s)`;
    const caught = list.map((r) => mbPerS(r.sizeBytes, r.move.caughtUpMs));
    const finished = list.map((r) => mbPerS(r.sizeBytes, r.move.finishedMs));
    const consume = list.map((r) => mbPerS(r.sizeBytes, r.consumeMs));
    const raw = list.map((r) => mbPerS(r.rawReadBytes, r.rawReadMs));
    const perRun = (f: (r: RateRun) => string) => list.map(f).join(' / ');
    rows.push(
      row({
        scenario: `move ${mb} MB, 1 partition RF 1, ${label}: POST -> new replica 0 records behind`,
        'MB/s': fixed(median(caught)),
        ms: Math.round(median(list.map((r) => r.move.caughtUpMs))),
        'vs baseline': fixed(median(caught.map((c, i) => c / consume[i]!)), 2),
        load: fixed(median(list.map((r) => r.loadavg1m)), 2),
        detail: `vs baseline = / HTTP consume, per run ${perRun((r) => (mbPerS(r.sizeBytes, r.move.caughtUpMs) / mbPerS(r.sizeBytes, r.consumeMs)).toFixed(2))}; runs MB/s ${caught.map((v) => fixed(v)).join(' / ')}; moves ${perRun((r) => `${r.leader}->${r.target}`)}; poll failures ${list.reduce((n, r) => n + r.move.pollFailures, 0)}`,
      }),
      row({
        scenario: `move ${mb} MB, ${label}: POST -> move finished (replicas = target)`,
        'MB/s': fixed(median(finished)),
        ms: Math.round(median(list.map((r) => r.move.finishedMs))),
        'vs baseline': fixed(median(finished.map((f, i) => f / consume[i]!)), 2),
        detail: `runs ms ${perRun((r) => String(Math.round(r.move.finishedMs)))}; caught up -> finished ${perRun((r) => String(Math.round(r.move.finishedMs - r.move.caughtUpMs)))} ms; POST answered in ${perRun((r) => String(Math.round(r.move.postMs)))} ms`,
      }),
      row({
        scenario: `baseline (${kind} cluster): sequential HTTP consume of the partition on its leader (${consumeLimit} per request)`,
        'MB/s': fixed(median(consume)),
        ms: Math.round(median(list.map((r) => r.consumeMs))),
        detail: `log bytes per second; runs ${consume.map((v) => fixed(v)).join(' / ')}; ${fixed(median(list.map((r) => r.consumeJsonBytes)) / 1e6)} MB of JSON per run`,
      }),
      row({
        scenario: `baseline (${kind} cluster): raw sequential read of the leader's partition files (1 MiB reads)`,
        'MB/s': fixed(median(raw)),
        ms: Math.round(median(list.map((r) => r.rawReadMs))),
        detail: `runs ${raw.map((v) => fixed(v)).join(' / ')}; ${fixed(median(list.map((r) => r.rawReadBytes)) / 1e6)} MB read (segments and indexes)`,
      }),
    );
    if (kind === 'throttled') {
      const ratios = list.map((r) => r.sizeBytes / (r.move.caughtUpMs / 1000) / throttleBytesPerS);
      const med = median(ratios);
      rows.push(
        row({
          scenario: `throttled move: measured rate (to 0 behind) / throttle (target 0.8-1.2)`,
          'vs baseline': fixed(med, 2),
          detail: `per run ${ratios.map((v) => v.toFixed(2)).join(' / ')}; ${ratios.every((v) => v >= 0.8 && v <= 1.2) ? 'every run within 20%' : 'NOT every run within 20%'}; to finished: ${list.map((r) => (r.sizeBytes / (r.move.finishedMs / 1000) / throttleBytesPerS).toFixed(2)).join(' / ')}`,
        }),
      );
    }
  }
  return rows;
}

// ------------------------------------------------------------------------------------------------------------
// 2. Produce latency on partition 0 while moves run back to back (of partition 1, or of partition 0 itself).

type LatencyKey = 'none' | 'other' | 'same';
const latencyLabels: Record<LatencyKey, string> = {
  none: 'no move',
  other: 'partition 1 moved back to back',
  same: 'partition 0 itself moved back to back',
};
const liveTopic = 'live';

interface LatencyRun {
  readonly key: LatencyKey;
  readonly run: number;
  readonly acks: number;
  readonly acksPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly failures: Record<string, number>;
  readonly failureSamples: string[];
  readonly movesFinished: number;
  readonly movesRefused: number;
  /** Share of the producer's window during which a move was in progress (POST to finish seen). */
  readonly movingShare: number;
  readonly moves: { from: string[]; to: string[]; caughtUpMs: number; finishedMs: number }[];
  /**
   * After the window, once the mover stopped (its last move finished): latency of one more acks=all produce
   * to partition 0 (retried until acknowledged), and how many attempts it took.
   */
  readonly afterProbeMs: number;
  readonly afterProbeAttempts: number;
  readonly leaderBefore: string;
  readonly leaderAfter: string | null;
  readonly loadavg1m: number;
}

/** The target of the next move of a partition: keep the leader first, replace the other replica by the third broker. */
function nextTarget(cluster: TestCluster, part: TopicPartition): string[] {
  const leader = part.leader!;
  const third = cluster.nodes.map((n) => n.id).find((id) => !part.replicas.includes(id))!;
  return [leader, third];
}

async function latencyRun(cluster: TestCluster, key: LatencyKey, run: number): Promise<LatencyRun> {
  const controlBase = baseOf(cluster.nodes[0]!);
  // Start from a settled topic: no move in progress, every replica in sync.
  for (const p of [0, 1]) {
    const lead = (await topicPartitions(controlBase, liveTopic))?.[p]?.leader ?? cluster.nodes[0]!.id;
    await pollPartition(
      `${liveTopic}-${p} in sync on its leader`,
      cluster.node(lead),
      liveTopic,
      p,
      settleWaitMs,
      50,
      (v) => (fullyInSync(v) && v.replicas.length === 2 ? true : undefined),
    );
  }
  const p0 = (await topicPartitions(controlBase, liveTopic))![0]!;
  const leaderBefore = p0.leader!;
  const producerBase = baseOf(cluster.node(leaderBefore));
  const movedPartition = key === 'same' ? 0 : 1;

  // The mover: moves back to back while `moving`; with key 'none' it polls the same routes at the same rate.
  let moving = true;
  let movesRefused = 0;
  const intervals: [number, number][] = [];
  const moves: LatencyRun['moves'] = [];
  const mover = (async () => {
    while (moving) {
      if (key === 'none') {
        const startMs = performance.now();
        await Promise.all([movesInProgress(controlBase), topicPartitions(controlBase, liveTopic)]);
        const leftMs = pollMs - (performance.now() - startMs);
        if (leftMs > 0) await sleepMs(leftMs);
        continue;
      }
      const part = (await topicPartitions(controlBase, liveTopic))?.[movedPartition];
      if (part === undefined || part.leader === null) {
        await sleepMs(pollMs);
        continue;
      }
      const startMs = performance.now();
      try {
        const m = await timedMove(
          controlBase,
          liveTopic,
          movedPartition,
          nextTarget(cluster, part),
          unthrottledMoveWaitMs,
        );
        intervals.push([startMs, startMs + m.finishedMs]);
        moves.push({
          from: m.from,
          to: m.to,
          caughtUpMs: Math.round(m.caughtUpMs),
          finishedMs: Math.round(m.finishedMs),
        });
      } catch (error) {
        if (!String(error).includes('answered')) throw error;
        movesRefused++;
        console.warn(`    move refused: ${String(error).slice(0, 300)}`);
        await sleepMs(100);
      }
    }
  })();
  // The window starts once the first move is in progress (the mover's POST went out).
  await sleepMs(key === 'none' ? 0 : 100);

  const latenciesMs: number[] = [];
  const failures = new Failures();
  const body = JSON.stringify({ value: 'x', partition: 0 });
  const windowStartMs = performance.now();
  const windowEndMs = windowStartMs + durationS * 1000;
  try {
    while (performance.now() < windowEndMs) {
      const sentMs = performance.now();
      // A record is retried until acknowledged; its latency runs from its first send.
      for (;;) {
        const got = await call(producerBase, 'POST', `/topics/${liveTopic}/produce?acks=all`, body);
        if (got.status === 201 || got.status === 200) {
          latenciesMs.push(performance.now() - sentMs);
          break;
        }
        failures.note(got.kind, got.text);
        if (performance.now() > windowEndMs + 10_000) break;
        await sleepMs(retryMs);
      }
    }
  } finally {
    moving = false;
    await mover;
  }
  const windowMs = performance.now() - windowStartMs;
  // One more record once the last move finished: the first acks=all produce after a move of partition 0
  // itself was seen to wait about --replica-lag-time-max (10 s); measured apart (and for 'none' and 'other'
  // too, as their baseline). The stall may also come later, in the next window.
  const probeStartMs = performance.now();
  let afterProbeAttempts = 0;
  let afterProbeMs = Number.NaN;
  while (performance.now() - probeStartMs < 60_000) {
    afterProbeAttempts++;
    const got = await call(producerBase, 'POST', `/topics/${liveTopic}/produce?acks=all`, body);
    if (got.status === 201 || got.status === 200) {
      afterProbeMs = performance.now() - probeStartMs;
      break;
    }
    failures.note(`after the window: ${got.kind}`, got.text);
    await sleepMs(retryMs);
  }
  let coveredMs = 0;
  for (const [a, b] of intervals)
    coveredMs += Math.max(0, Math.min(b, windowStartMs + windowMs) - Math.max(a, windowStartMs));
  latenciesMs.sort((a, b) => a - b);
  const after = (await topicPartitions(controlBase, liveTopic))?.[0];
  return {
    key,
    run,
    acks: latenciesMs.length,
    acksPerS: latenciesMs.length / (windowMs / 1000),
    p50Ms: percentile(latenciesMs, 0.5),
    p99Ms: percentile(latenciesMs, 0.99),
    maxMs: latenciesMs[latenciesMs.length - 1] ?? Number.NaN,
    failures: failures.byKind,
    failureSamples: failures.samples,
    movesFinished: moves.length,
    movesRefused,
    movingShare: coveredMs / windowMs,
    moves,
    afterProbeMs,
    afterProbeAttempts,
    leaderBefore,
    leaderAfter: after?.leader ?? null,
    loadavg1m: loadavgNow()[0] ?? Number.NaN,
  };
}

function latencyRows(all: readonly LatencyRun[], partitionMb: number): Row[] {
  const rows: Row[] = [];
  const base = all.filter((r) => r.key === 'none');
  for (const key of ['none', 'other', 'same'] as const) {
    const list = all.filter((r) => r.key === key);
    if (list.length === 0) continue;
    const ratios = list.map((r, i) => r.p99Ms / base[i]!.p99Ms);
    const errors = list.reduce((n, r) => n + Object.values(r.failures).reduce((m, v) => m + v, 0), 0);
    const leaderMoved = list.filter((r) => r.leaderAfter !== r.leaderBefore).length;
    const probes = list.map((r) => r.afterProbeMs);
    rows.push(
      row({
        scenario: `produce to partition 0, 1 sequential acks=all producer x ${durationS} s, 3 partitions RF 2, unthrottled cluster: ${latencyLabels[key]}${key === 'none' ? '' : ` (${fixed(partitionMb)} MB each move)`}`,
        'p50 ms': fixed(median(list.map((r) => r.p50Ms)), 2),
        'p99 ms': fixed(median(list.map((r) => r.p99Ms)), 2),
        'vs baseline': key === 'none' ? '' : fixed(median(ratios), 2),
        errors,
        load: fixed(median(list.map((r) => r.loadavg1m)), 2),
        detail: `${key === 'none' ? '' : `p99 / no move per run ${ratios.map((v) => v.toFixed(2)).join(' / ')}; `}acks/s ${list.map((r) => Math.round(r.acksPerS)).join(' / ')}; p99 ${list.map((r) => r.p99Ms.toFixed(1)).join(' / ')} ms; max ${list.map((r) => Math.round(r.maxMs)).join(' / ')} ms${key === 'none' ? '' : `; moves finished in the window ${list.map((r) => r.movesFinished).join(' / ')}, a move in progress ${list.map((r) => `${Math.round(r.movingShare * 100)}%`).join(' / ')} of it, refused ${list.reduce((n, r) => n + r.movesRefused, 0)}`}${leaderMoved > 0 ? `; partition 0's leader changed in ${leaderMoved} runs` : ''}`,
      }),
      row({
        scenario: `  the first produce to partition 0 after the window (${key === 'none' ? 'no move' : 'the last move finished'})`,
        ms: Math.round(median(probes)),
        'vs baseline':
          key === 'none' ? '' : fixed(median(list.map((r, i) => r.afterProbeMs / base[i]!.afterProbeMs)), 1),
        detail: `runs ${probes.map((v) => Math.round(v)).join(' / ')} ms; attempts ${list.map((r) => r.afterProbeAttempts).join(' / ')}`,
      }),
    );
  }
  return rows;
}

// ------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const timer = armWatchdog('moves bench', totalBudgetMs);
  const machine = describeMachine();
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  // The compiled broker, as production runs it (TestCluster's processes inherit this environment).
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  process.env.BROKER_COMPILED = '1';
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: root,
    encoding: 'utf8',
  }).trim();
  // Other work in progress in src/ is compiled into what runs; the JSON names it.
  const srcChanges = execFileSync('git', ['status', '--porcelain', 'src', 'workers'], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((l) => l !== '');
  console.log(
    `moves: ${runs} runs, ${mb} MB per partition, throttle ${throttleMiB} MiB/s, producer windows ${durationS} s; ${machine.cpus} cpus, load ${machine.loadavgStart.join(' ')}; ${commit}`,
  );

  const rows: Row[] = [];
  const rateRuns: RateRun[] = [];
  const latencyRuns: LatencyRun[] = [];
  const loads: Record<string, unknown> = {};
  let plain: TestCluster | undefined;
  let throttled: TestCluster | undefined;
  let failure: unknown;
  try {
    plain = await startCluster(3);
    throttled = await startCluster(3, ['--replication-throttle', String(throttleBytesPerS)]);
    const byKind: Record<Kind, TestCluster> = { unthrottled: plain, throttled };
    for (const kind of ['unthrottled', 'throttled'] as const) {
      const cluster = byKind[kind];
      await createTopic(cluster.nodes[0]!, rateTopic, 1, 1);
      const loaded = await loadPartition(cluster, rateTopic, 0, mb);
      loads[`${kind} ${rateTopic}-0`] = {
        records: loaded.records,
        ms: Math.round(loaded.ms),
        sizeBytes: loaded.view.size_bytes,
      };
      console.log(
        `  ${kind}: loaded ${loaded.records} records, ${fixed(loaded.view.size_bytes! / 1e6)} MB of log on ${loaded.view.leader} in ${Math.round(loaded.ms)} ms`,
      );
    }

    // 1. Rate: the clusters alternate run by run, the order rotating.
    for (let run = 1; run <= runs; run++) {
      const order: Kind[] = run % 2 === 1 ? ['unthrottled', 'throttled'] : ['throttled', 'unthrottled'];
      for (const kind of order) {
        const r = await rateRun(byKind[kind], kind, run);
        rateRuns.push(r);
        console.log(
          `  run ${run} ${kind}: ${r.leader} -> ${r.target}, ${fixed(r.sizeBytes / 1e6)} MB: 0 behind after ${Math.round(r.move.caughtUpMs)} ms (${fixed(mbPerS(r.sizeBytes, r.move.caughtUpMs))} MB/s), finished ${Math.round(r.move.finishedMs)} ms; consume ${fixed(mbPerS(r.sizeBytes, r.consumeMs))} MB/s, raw ${fixed(mbPerS(r.rawReadBytes, r.rawReadMs))} MB/s; load ${r.loadavg1m}`,
        );
        await sleepMs(500);
      }
    }
    rows.push(...rateRows(rateRuns));

    // 2. Latency, on the unthrottled cluster; the throttled one is no longer needed.
    await stopCluster(throttled);
    throttled = undefined;
    await createTopic(plain.nodes[0]!, liveTopic, 3, 2);
    let partitionMb = 0;
    for (const p of [0, 1]) {
      const loaded = await loadPartition(plain, liveTopic, p, mb);
      partitionMb = loaded.view.size_bytes! / 1e6;
      loads[`unthrottled ${liveTopic}-${p}`] = {
        records: loaded.records,
        ms: Math.round(loaded.ms),
        sizeBytes: loaded.view.size_bytes,
      };
      console.log(
        `  ${liveTopic}-${p}: loaded ${fixed(partitionMb)} MB in ${Math.round(loaded.ms)} ms (RF 2)`,
      );
    }
    const orders: LatencyKey[][] = [
      ['none', 'other', 'same'],
      ['other', 'same', 'none'],
      ['same', 'none', 'other'],
    ];
    for (let run = 1; run <= runs; run++) {
      for (const key of orders[(run - 1) % orders.length]!) {
        const r = await latencyRun(plain, key, run);
        latencyRuns.push(r);
        console.log(
          `  run ${run} ${key}: ${r.acks} acks (${Math.round(r.acksPerS)}/s), p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, max ${Math.round(r.maxMs)} ms, failures ${JSON.stringify(r.failures)}, moves ${r.movesFinished} (${Math.round(r.movingShare * 100)}% of the window), next produce after ${Math.round(r.afterProbeMs)} ms, leader ${r.leaderBefore}->${r.leaderAfter}; load ${r.loadavg1m}`,
        );
        for (const s of r.failureSamples) console.log(`    ${s}`);
        await sleepMs(500);
      }
    }
    rows.push(...latencyRows(latencyRuns, partitionMb));
  } catch (error) {
    failure = error;
  } finally {
    await stopCluster(throttled);
    await stopCluster(plain);
    clearTimeout(timer);
  }
  machine.loadavgEnd = loadavgNow();
  if (failure !== undefined) {
    console.error(
      `moves bench failed: ${failure instanceof Error ? (failure.stack ?? failure.message) : String(failure)}`,
    );
    process.exit(1);
  }
  rows.push(
    row({
      scenario: 'load average (1 / 5 / 15 min) at start and at end',
      load: `${machine.loadavgStart.join(' ')} -> ${machine.loadavgEnd.join(' ')}`,
    }),
  );
  const iso = new Date().toISOString().replace(/[:.]/g, '-');
  report(join(root, 'bench/results', `moves-${iso}`), rows, {
    commit,
    srcChanges,
    args: { quick, runs, mb, throttleMiB, throttleBytesPerS, durationS, recordBytes, batchRecords },
    machine,
    loads,
    rate: rateRuns,
    latency: latencyRuns,
  });
}

await main();
