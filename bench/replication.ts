// Replicated partitions on a 3-node cluster of real broker processes (compiled, `--threads 1` each, as
// TestCluster starts them), each figure beside its baseline from the same run, because this machine is shared:
//   1. produce: autocannon, `--connections` (default 50) x `--duration` s, one small JSON record per POST with
//      acks=all (the default), to the leader of a one-partition topic with replication_factor 3, the same with
//      replication_factor 1 on the same cluster, and a single-node broker; interleaved run by run (the order
//      rotates), reported per run, as medians, and as the ratios RF3/RF1 of throughput and p99 (the issue's
//      targets: RF3 throughput >= 0.5 of RF1, p99 <= 3x RF1);
//   2. follower catch-up: one follower of an RF3 topic stopped with SIGTERM, `--catchup-mb` of 1 KB records
//      loaded by batch produce while it is down, then restarted: time until its log end equals the leader's
//      and it is back in the ISR, as MB/s of log bytes; against a sequential HTTP consume of the same bytes
//      from the leader and a raw sequential read of the leader's partition files, both in the same run (the
//      page cache is warm for all three);
//   3. failover: `--failovers` rounds of a sequential acks=all producer (sending to a node that does not lead
//      the partition, retrying every failure after 20 ms) while the partition's leader is killed with SIGKILL:
//      time from the kill to the first acknowledgement; the killed node is restarted and back in the ISR before
//      the next round. Every acknowledged record is then looked for in the log.
// With `--catchup-tls` only part 2 runs, `--runs` times on a cluster with cluster TLS (and the cluster secret it
// requires; one node certificate from a CA made with openssl serves the three nodes) and as often on one
// without, alternating, so the data link's TLS cost shows beside its baseline from the same run.
// Writes bench/results/replication-<iso>.json and .md and prints the table.
// Usage: node --import tsx bench/replication.ts [--quick] [--runs 3] [--duration 10] [--connections 50]
//        [--catchup-mb 200] [--failovers 5] [--catchup-tls]
// Not a test: the numbers depend on the machine and its load. Runs on the main thread of its own process.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import autocannon from 'autocannon';
import { partitionDirName } from '../src/core/names.js';
import { makeClusterCertificates } from '../test/security/tls-fixture.js';
import {
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
import {
  type Ack,
  baseOf,
  createReplicatedTopic,
  fullyInSync,
  type PartitionView,
  partitionView,
  pollPartition,
  sleepMs,
  startSequentialProducer,
} from './lib/replicas.js';
import { root } from './lib/servers.js';
import { report } from './lib/table.js';

const quick = process.argv.includes('--quick');
const runs = intFlag('runs', quick ? 1 : 3);
const durationS = intFlag('duration', quick ? 3 : 10);
const connections = intFlag('connections', 50);
const catchUpMb = intFlag('catchup-mb', quick ? 50 : 200);
const failovers = intFlag('failovers', quick ? 2 : 5);
const catchUpTls = process.argv.includes('--catchup-tls');
/** Arguments of every broker of the cluster being measured (cluster TLS on or off). */
let clusterArgs: readonly string[] = [];
/** Bounds on every phase: beyond these the cluster is broken, not slow. */
const topicReadyWaitMs = 30_000;
const isrShrinkWaitMs = 40_000;
const catchUpWaitMs = 180_000;
const failoverAckWaitMs = 30_000;
const rejoinWaitMs = 90_000;
/** The whole benchmark; past it everything started is killed and the process exits 1. */
const totalBudgetMs = (quick ? 12 : 45) * 60_000;
const pollMs = 20;
const retryMs = 20;
const payload = JSON.stringify({ value: 'Peak-msg-payload-0123456789abcdefghijklmnop' });
const catchUpValueBytes = 1000;
const catchUpBatchRecords = 400;
const catchUpProducers = 4;

type Row = Record<string, unknown>;
const columns = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'MB/s', 'ms', 'detail'] as const;
type Column = (typeof columns)[number];

/** Every column in the same order on every row, so that the table's columns read left to right as listed. */
function row(cells: Partial<Record<Column, string | number>>): Row {
  return Object.fromEntries(columns.map((c) => [c, cells[c]]));
}

interface LoadResult {
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly loadavg1m: number;
}

/** Clusters started here, for the watchdog. */
const clusters = new Set<TestCluster>();

async function startTracked(count: number): Promise<TestCluster> {
  const cluster = await startCluster(count, clusterArgs);
  clusters.add(cluster);
  return cluster;
}

async function stopTracked(cluster: TestCluster | undefined): Promise<void> {
  if (cluster === undefined) return;
  clusters.delete(cluster);
  await stopCluster(cluster);
}

/** Kills every broker by PID and removes the clusters' temp dirs (the exit handler of lib/cluster kills too). */
function watchdog(): NodeJS.Timeout {
  const timer = setTimeout(() => {
    console.error(`replication bench: over its ${totalBudgetMs / 60_000} min budget; killing everything`);
    for (const cluster of clusters) {
      for (const node of cluster.nodes) {
        const pid = node.process?.child.pid;
        if (pid !== undefined) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {}
        }
      }
      const dir = cluster.nodes[0] === undefined ? undefined : dirname(cluster.nodes[0].dataDir);
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    }
    process.exit(1);
  }, totalBudgetMs);
  timer.unref();
  return timer;
}

function leaderOf(cluster: TestCluster, view: PartitionView): ClusterNode {
  if (view.leader === null) throw new Error(`partition ${view.partition} has no leader`);
  return cluster.node(view.leader);
}

/** Creates the topic (one partition) and waits until it has a leader and a full, caught-up ISR. */
async function readyTopic(cluster: TestCluster, name: string, rf: number): Promise<ClusterNode> {
  const any = cluster.running()[0]!;
  await createReplicatedTopic(any, name, 1, rf);
  const view = await pollPartition(`${name} to have a full ISR`, any, name, 0, topicReadyWaitMs, 50, (v) =>
    fullyInSync(v) && v.replicas.length === rf ? v : undefined,
  );
  return leaderOf(cluster, view);
}

async function produceLoad(base: string, topic: string): Promise<LoadResult> {
  const startedMs = performance.now();
  const result = await autocannon({
    url: `${base}/topics/${topic}/produce`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: payload,
    connections,
    pipelining: 1,
    duration: durationS,
  });
  const elapsedS = (performance.now() - startedMs) / 1000;
  return {
    // Completed 2xx requests over our own clock; autocannon's own rate rounds to whole seconds.
    requestsPerS: result['2xx'] / elapsedS,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    loadavg1m: loadavgNow()[0] ?? Number.NaN,
  };
}

// ------------------------------------------------------------------------------------------------------------
// 1. Produce throughput and latency: RF3 vs RF1 on one 3-node cluster, and a single-node broker.

type ProduceKey = 'rf3' | 'rf1' | 'single';
const produceLabels: Record<ProduceKey, string> = {
  rf3: '3 nodes, replication_factor 3, acks=all',
  rf1: '3 nodes, replication_factor 1, acks=all',
  single: '1 node, replication_factor 1',
};

async function measureProduce(cluster: TestCluster): Promise<Record<ProduceKey, LoadResult[]>> {
  const raw: Record<ProduceKey, LoadResult[]> = { rf3: [], rf1: [], single: [] };
  const rf3Leader = await readyTopic(cluster, 'produce-rf3', 3);
  const rf1Leader = await readyTopic(cluster, 'produce-rf1', 1);
  console.log(`produce: rf3 led by ${rf3Leader.id}, rf1 led by ${rf1Leader.id}`);
  const orders: ProduceKey[][] = [
    ['rf3', 'rf1', 'single'],
    ['rf1', 'single', 'rf3'],
    ['single', 'rf3', 'rf1'],
  ];
  for (let run = 0; run < runs; run++) {
    for (const key of orders[run % orders.length]!) {
      let result: LoadResult;
      if (key === 'single') {
        let single: TestCluster | undefined;
        try {
          single = await startTracked(1);
          const leader = await readyTopic(single, 'produce-single', 1);
          result = await produceLoad(baseOf(leader), 'produce-single');
        } finally {
          await stopTracked(single);
        }
      } else {
        const leader = key === 'rf3' ? rf3Leader : rf1Leader;
        result = await produceLoad(baseOf(leader), `produce-${key}`);
      }
      raw[key].push(result);
      console.log(
        `  run ${run + 1} ${key}: ${Math.round(result.requestsPerS)} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, errors ${result.errors + result.non2xx}, load ${result.loadavg1m}`,
      );
      await sleepMs(500);
    }
  }
  // The leaders must not have moved during the load (a move would make the figures meaningless).
  for (const topic of ['produce-rf3', 'produce-rf1']) {
    const view = await partitionView(rf3Leader, topic, 0);
    const expected = topic === 'produce-rf3' ? rf3Leader.id : rf1Leader.id;
    if (view?.leader !== expected)
      console.warn(`produce: ${topic} leader moved from ${expected} to ${view?.leader} during the load`);
  }
  return raw;
}

function produceRows(raw: Record<ProduceKey, LoadResult[]>): Row[] {
  const med = (key: ProduceKey, field: keyof LoadResult): number => median(raw[key].map((r) => r[field]));
  const rows: Row[] = [];
  for (const key of ['rf3', 'rf1', 'single'] as const) {
    rows.push(
      row({
        scenario: `produce, ${connections} conns x ${durationS} s: ${produceLabels[key]}`,
        'req/s': Math.round(med(key, 'requestsPerS')),
        'p50 ms': med(key, 'p50Ms'),
        'p99 ms': med(key, 'p99Ms'),
        errors: raw[key].reduce((n, r) => n + r.errors + r.non2xx, 0),
        detail: `runs: ${raw[key].map((r) => `${Math.round(r.requestsPerS)} (p99 ${r.p99Ms})`).join(' / ')}`,
      }),
    );
  }
  const perRun = raw.rf3.map((r, i) => {
    const one = raw.rf1[i]!;
    return `${(r.requestsPerS / one.requestsPerS).toFixed(2)} / ${(r.p99Ms / Math.max(one.p99Ms, 1)).toFixed(2)}`;
  });
  rows.push(
    row({
      scenario: 'RF3 / RF1 throughput (target >= 0.5) / p99 (target <= 3)',
      'req/s': (med('rf3', 'requestsPerS') / med('rf1', 'requestsPerS')).toFixed(2),
      'p99 ms': (med('rf3', 'p99Ms') / Math.max(med('rf1', 'p99Ms'), 1)).toFixed(2),
      detail: `runs (throughput / p99): ${perRun.join(' ; ')}`,
    }),
  );
  return rows;
}

// ------------------------------------------------------------------------------------------------------------
// 2. Follower catch-up against a sequential read of the same bytes from the leader.

interface CatchUpResult {
  readonly leader: string;
  readonly follower: string;
  readonly stopMs: number;
  readonly isrShrinkMs: number;
  readonly logBytes: number;
  readonly records: number;
  readonly loadMs: number;
  readonly consumeMs: number;
  readonly consumeBytesJson: number;
  readonly rawReadMs: number;
  readonly rawReadBytes: number;
  readonly restartServingMs: number;
  /** From the restart command until the follower's log end equals the leader's (as the leader reports it). */
  readonly caughtUpMs: number;
  /** From the restart command until the follower is in the ISR again. */
  readonly inIsrMs: number;
  /** Follower log end offsets seen while polling: [ms since restart, offset]. */
  readonly progress: [number, number][];
}

async function loadRecords(base: string, topic: string, bytesTarget: number): Promise<number> {
  const body = JSON.stringify({
    records: Array.from({ length: catchUpBatchRecords }, (_, i) => ({
      value: `catch-up-${i}-`.padEnd(catchUpValueBytes, 'x'),
    })),
  });
  const requests = Math.ceil(bytesTarget / (catchUpBatchRecords * catchUpValueBytes));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requests) {
      next++;
      const response = await fetch(`${base}/topics/${topic}/records`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      if (response.status !== 200 && response.status !== 201)
        throw new Error(`batch produce answered ${response.status}: ${text.slice(0, 300)}`);
      const answer = JSON.parse(text) as { offsets: { error_code?: number | null; error?: string }[] };
      const failed = answer.offsets.find((o) => o.error_code !== undefined && o.error_code !== null);
      if (failed !== undefined) throw new Error(`batch produce refused a record: ${JSON.stringify(failed)}`);
    }
  };
  await Promise.all(Array.from({ length: catchUpProducers }, worker));
  return requests * catchUpBatchRecords;
}

/** Reads the partition from offset 0 to `endOffset`, 1000 records per request; the JSON bytes received. */
async function consumeAll(base: string, topic: string, endOffset: number): Promise<number> {
  let offset = 0;
  let bytes = 0;
  while (offset < endOffset) {
    const response = await fetch(`${base}/topics/${topic}/partitions/0/consume?offset=${offset}&limit=1000`, {
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    if (response.status !== 200)
      throw new Error(`consume answered ${response.status}: ${text.slice(0, 300)}`);
    bytes += text.length;
    const answer = JSON.parse(text) as { next_offset: number; count: number };
    if (answer.count === 0) throw new Error(`consume at ${offset} returned nothing before ${endOffset}`);
    offset = answer.next_offset;
  }
  return bytes;
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

async function measureCatchUp(cluster: TestCluster): Promise<CatchUpResult> {
  const topic = 'catch-up';
  const leader = await readyTopic(cluster, topic, 3);
  const follower = cluster.nodes.find((n) => n !== leader)!;
  console.log(`catch-up: leader ${leader.id}, stopping follower ${follower.id} with SIGTERM`);

  const stopAtMs = performance.now();
  await cluster.kill(follower, 'SIGTERM');
  const stoppedAtMs = performance.now();
  // acks=all waits for every ISR member, so the load starts once the stopped follower has left the ISR.
  await pollPartition(`${follower.id} to leave the ISR`, leader, topic, 0, isrShrinkWaitMs, 50, (v) =>
    v.isr.includes(follower.id) ? undefined : true,
  );
  const shrunkAtMs = performance.now();

  const loadStartMs = performance.now();
  const records = await loadRecords(baseOf(leader), topic, catchUpMb * 1e6);
  const loadMs = performance.now() - loadStartMs;
  const loaded = await pollPartition('the load to be committed', leader, topic, 0, 30_000, 50, (v) =>
    v.high_watermark === v.log_end_offset && typeof v.size_bytes === 'number' ? v : undefined,
  );
  const endOffset = loaded.log_end_offset!;
  const logBytes = loaded.size_bytes!;
  console.log(
    `  loaded ${records} records, ${(logBytes / 1e6).toFixed(1)} MB of log in ${Math.round(loadMs)} ms`,
  );

  // Baselines, before the follower comes back so nothing else competes: an HTTP consume from the leader of
  // the same records, and a raw read of the leader's partition files (warm page cache, as for the follower).
  const consumeStartMs = performance.now();
  const consumeBytesJson = await consumeAll(baseOf(leader), topic, endOffset);
  const consumeMs = performance.now() - consumeStartMs;
  const rawStartMs = performance.now();
  const rawReadBytes = readDirectory(join(leader.dataDir, partitionDirName(topic, 0)));
  const rawReadMs = performance.now() - rawStartMs;

  const restartAtMs = performance.now();
  await cluster.startNode(follower, clusterArgs);
  const servingAtMs = performance.now();
  const progress: [number, number][] = [];
  let caughtUpAtMs = Number.NaN;
  let inIsrAtMs = Number.NaN;
  await pollPartition(`${follower.id} to catch up`, leader, topic, 0, catchUpWaitMs, pollMs, (v) => {
    const now = performance.now();
    const mine = v.replica_state?.find((r) => r.broker === follower.id);
    const end = mine?.log_end_offset ?? -1;
    if (progress.length === 0 || progress[progress.length - 1]![1] !== end)
      progress.push([Math.round(now - restartAtMs), end]);
    if (Number.isNaN(caughtUpAtMs) && end >= endOffset) caughtUpAtMs = now;
    if (Number.isNaN(inIsrAtMs) && v.isr.includes(follower.id)) inIsrAtMs = now;
    return Number.isNaN(caughtUpAtMs) || Number.isNaN(inIsrAtMs) ? undefined : true;
  });
  return {
    leader: leader.id,
    follower: follower.id,
    stopMs: stoppedAtMs - stopAtMs,
    isrShrinkMs: shrunkAtMs - stoppedAtMs,
    logBytes,
    records,
    loadMs,
    consumeMs,
    consumeBytesJson,
    rawReadMs,
    rawReadBytes,
    restartServingMs: servingAtMs - restartAtMs,
    caughtUpMs: caughtUpAtMs - restartAtMs,
    inIsrMs: inIsrAtMs - restartAtMs,
    progress,
  };
}

function catchUpRows(c: CatchUpResult): Row[] {
  const mbPerS = (bytes: number, ms: number): string => (bytes / 1e6 / (ms / 1000)).toFixed(1);
  const mb = (c.logBytes / 1e6).toFixed(1);
  // The follower's fetching starts once it serves; the time before is process start and log recovery.
  const fetchingMs = c.caughtUpMs - c.restartServingMs;
  return [
    row({
      scenario: `catch-up: follower ${c.follower} restarted after ${mb} MB were written without it (leader ${c.leader})`,
      'MB/s': mbPerS(c.logBytes, c.caughtUpMs),
      ms: Math.round(c.caughtUpMs),
      detail: `restart -> serving ${Math.round(c.restartServingMs)} ms; serving -> log end equal ${Math.round(fetchingMs)} ms (${mbPerS(c.logBytes, fetchingMs)} MB/s); restart -> in ISR ${Math.round(c.inIsrMs)} ms`,
    }),
    row({
      scenario: 'baseline: sequential HTTP consume of the same records from the leader (1000 per request)',
      'MB/s': mbPerS(c.logBytes, c.consumeMs),
      ms: Math.round(c.consumeMs),
      detail: `log bytes per second; ${(c.consumeBytesJson / 1e6).toFixed(1)} MB of JSON received`,
    }),
    row({
      scenario: "baseline: raw sequential read of the leader's partition files (warm page cache)",
      'MB/s': mbPerS(c.rawReadBytes, c.rawReadMs),
      ms: Math.round(c.rawReadMs),
      detail: `${(c.rawReadBytes / 1e6).toFixed(1)} MB read (segments and indexes)`,
    }),
    row({
      scenario: 'catch-up / HTTP consume (rate)',
      'MB/s': (c.consumeMs / c.caughtUpMs).toFixed(2),
      detail: `whole restart; ${(c.consumeMs / fetchingMs).toFixed(2)} counting from serving`,
    }),
    row({
      scenario: 'batch load with the follower down (2 of 3 replicas in the ISR)',
      'MB/s': mbPerS(c.logBytes, c.loadMs),
      ms: Math.round(c.loadMs),
      detail: `${c.records} records of ${catchUpValueBytes} B, ${catchUpBatchRecords} per request, ${catchUpProducers} producers; SIGTERM took ${Math.round(c.stopMs)} ms, leaving the ISR ${Math.round(c.isrShrinkMs)} ms more`,
    }),
  ];
}

// ------------------------------------------------------------------------------------------------------------
// 3. Failover: SIGKILL of the partition leader under a sequential acks=all producer.

interface FailoverRound {
  readonly round: number;
  readonly killed: string;
  readonly killedWasRaftLeader: boolean;
  readonly producerTarget: string;
  readonly newLeader: string | null;
  /** Kill to the first acknowledgement received after it (of a request in flight at the kill or later). */
  readonly firstAckMs: number;
  /** Kill to the first acknowledgement of a record first sent after the kill. */
  readonly firstAckSentAfterMs: number;
  /** Kill to the first time a survivor's metadata names another leader. */
  readonly newLeaderSeenMs: number;
  readonly failures: Record<string, number>;
  /** Failed attempts after the kill: ms since the kill, kind, the broker's message. */
  readonly failureLog: { readonly ms: number; readonly kind: string; readonly message: string }[];
  readonly restartServingMs: number;
  readonly backInIsrMs: number;
  readonly loadavg1m: number;
}

async function raftLeader(node: ClusterNode): Promise<string | null> {
  try {
    const response = await fetch(`${baseOf(node)}/cluster/status`, { signal: AbortSignal.timeout(2_000) });
    const status = (await response.json()) as { raft: { leader_id: string | null } };
    return status.raft.leader_id;
  } catch {
    return null;
  }
}

async function failoverRound(
  cluster: TestCluster,
  topic: string,
  round: number,
  acks: Ack[],
): Promise<FailoverRound> {
  const view = await pollPartition(
    'a full ISR before the kill',
    cluster.running()[0]!,
    topic,
    0,
    rejoinWaitMs,
    50,
    (v) => (fullyInSync(v) ? v : undefined),
  );
  const victim = leaderOf(cluster, view);
  const target = cluster.nodes.find((n) => n !== victim && n.process !== null)!;
  const targetBase = baseOf(target);
  const killedWasRaftLeader = (await raftLeader(target)) === victim.id;

  const producer = startSequentialProducer(() => targetBase, topic, `r${round}`, retryMs, 10_000);
  try {
    // Steady state first: 50 acknowledgements.
    await waitForAcks(producer.acks, (a) => a.length >= 50, 15_000, 'the producer to reach steady state');
    const killAtMs = performance.now();
    // The kill: process.kill runs at once inside; this awaits the exit.
    const killed = cluster.kill(victim, 'SIGKILL');
    let newLeaderSeenMs = Number.NaN;
    let newLeader: string | null = null;
    // Overlapping polls, one started every pollMs: a describe sent while the old leader is gone may wait for
    // it, and a sequential poll would then see the new leader only as late as that wait ends.
    const watch = (async () => {
      const deadlineMs = killAtMs + failoverAckWaitMs;
      const polls: Promise<void>[] = [];
      while (newLeader === null && performance.now() < deadlineMs) {
        polls.push(
          partitionView(target, topic, 0, 1_000).then((v) => {
            if (newLeader === null && v !== null && v.leader !== null && v.leader !== victim.id) {
              newLeaderSeenMs = performance.now() - killAtMs;
              newLeader = v.leader;
            }
          }),
        );
        await sleepMs(pollMs);
      }
      await Promise.all(polls);
    })();
    await killed;
    const afterKill = (a: Ack[]): boolean => a.some((x) => x.ackedAtMs > killAtMs && x.sentAtMs > killAtMs);
    await waitForAcks(producer.acks, afterKill, failoverAckWaitMs, 'an acknowledgement after the kill');
    await watch;
    const first = producer.acks.find((a) => a.ackedAtMs > killAtMs)!;
    const firstSentAfter = producer.acks.find((a) => a.sentAtMs > killAtMs)!;
    await sleepMs(200);
    await producer.stop();
    acks.push(...producer.acks);

    const restartAtMs = performance.now();
    await cluster.startNode(victim, clusterArgs);
    const servingAtMs = performance.now();
    await pollPartition(`${victim.id} back in the ISR`, target, topic, 0, rejoinWaitMs, 50, (v) =>
      fullyInSync(v) ? true : undefined,
    );
    const backAtMs = performance.now();
    return {
      round,
      killed: victim.id,
      killedWasRaftLeader,
      producerTarget: target.id,
      newLeader,
      firstAckMs: first.ackedAtMs - killAtMs,
      firstAckSentAfterMs: firstSentAfter.ackedAtMs - killAtMs,
      newLeaderSeenMs,
      failures: Object.fromEntries(producer.failures),
      failureLog: producer.failureLog.map((f) => ({
        ms: Math.round(f.atMs - killAtMs),
        kind: f.kind,
        message: f.message,
      })),
      restartServingMs: servingAtMs - restartAtMs,
      backInIsrMs: backAtMs - restartAtMs,
      loadavg1m: loadavgNow()[0] ?? Number.NaN,
    };
  } finally {
    await producer.stop();
  }
}

async function waitForAcks(
  acks: Ack[],
  done: (a: Ack[]) => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadlineMs = performance.now() + timeoutMs;
  while (!done(acks)) {
    if (performance.now() > deadlineMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleepMs(2);
  }
}

/** Reads the whole partition from its leader and counts acknowledged values missing at their offsets. */
async function verifyAcks(
  cluster: TestCluster,
  topic: string,
  acks: readonly Ack[],
): Promise<{ checked: number; missing: string[] }> {
  const view = await pollPartition(
    'a leader to read from',
    cluster.running()[0]!,
    topic,
    0,
    30_000,
    50,
    (v) => (v.leader !== null && typeof v.high_watermark === 'number' ? v : undefined),
  );
  const base = baseOf(leaderOf(cluster, view));
  const byOffset = new Map<number, string>();
  let offset = 0;
  while (offset < view.high_watermark!) {
    const response = await fetch(`${base}/topics/${topic}/partitions/0/consume?offset=${offset}&limit=1000`, {
      signal: AbortSignal.timeout(30_000),
    });
    const answer = (await response.json()) as {
      messages: { offset: number; value: string }[];
      next_offset: number;
      count: number;
    };
    if (response.status !== 200 || answer.count === 0) break;
    for (const m of answer.messages) byOffset.set(m.offset, m.value);
    offset = answer.next_offset;
  }
  const missing = acks
    .filter((a) => byOffset.get(a.offset) !== a.value)
    .map((a) => `${a.value}@${a.offset} (found ${byOffset.get(a.offset) ?? 'nothing'})`);
  return { checked: acks.length, missing };
}

function failoverRows(
  rounds: readonly FailoverRound[],
  verified: { checked: number; missing: string[] },
): Row[] {
  const rows: Row[] = rounds.map((r) =>
    row({
      scenario: `failover ${r.round}: SIGKILL of leader ${r.killed}${r.killedWasRaftLeader ? ' (also the Raft leader)' : ''}, producer on ${r.producerTarget}, new leader ${r.newLeader ?? '?'}; ms = kill -> first ack`,
      ms: Math.round(r.firstAckMs),
      errors: Object.values(r.failures).reduce((n, v) => n + v, 0),
      detail: `first ack of a record sent after the kill ${Math.round(r.firstAckSentAfterMs)} ms; new leader in metadata ${Math.round(r.newLeaderSeenMs)} ms; client saw ${JSON.stringify(r.failures)}; restart -> serving ${Math.round(r.restartServingMs)} ms, -> back in ISR ${Math.round(r.backInIsrMs)} ms; load ${r.loadavg1m}`,
    }),
  );
  const triple = (values: number[]): string => {
    const sorted = [...values].sort((a, b) => a - b);
    const p = (q: number) => Math.round(percentile(sorted, q));
    return `${p(0.5)} / ${p(0.99)} / ${Math.round(sorted[sorted.length - 1] ?? Number.NaN)}`;
  };
  // Killing the Raft leader too adds a metadata election before the partition can get a new leader.
  const split = (all: readonly FailoverRound[]): string => {
    const both = all.filter((r) => r.killedWasRaftLeader).map((r) => r.firstAckMs);
    const only = all.filter((r) => !r.killedWasRaftLeader).map((r) => r.firstAckMs);
    const med = (v: number[]) => (v.length === 0 ? '-' : `${Math.round(median(v))} ms`);
    return `median with the Raft leader killed too ${med(both)} (${both.length}), without ${med(only)} (${only.length}); `;
  };
  rows.push(
    row({
      scenario: `failover, ${rounds.length} kills: kill -> first ack p50 / p99 / max`,
      ms: triple(rounds.map((r) => r.firstAckMs)),
      errors: rounds.reduce((n, r) => n + Object.values(r.failures).reduce((m, v) => m + v, 0), 0),
      detail: `${split(rounds)}records sent after the kill: ${triple(rounds.map((r) => r.firstAckSentAfterMs))}; new leader in metadata: ${triple(rounds.map((r) => r.newLeaderSeenMs))}; ${verified.checked} acknowledged records looked for in the log after the last round, ${verified.missing.length} missing`,
    }),
  );
  return rows;
}

// ------------------------------------------------------------------------------------------------------------
// --catchup-tls: part 2 with and without cluster TLS, alternating.

/** The arguments that turn cluster TLS on, with files made in a temp dir (removed at exit). */
function clusterTlsArgs(): string[] {
  const certs = makeClusterCertificates(['node']);
  process.on('exit', () => rmSync(certs.dir, { recursive: true, force: true }));
  const secret = join(certs.dir, 'secret');
  writeFileSync(secret, randomBytes(48).toString('base64'));
  const node = certs.nodes.get('node')!;
  return [
    '--cluster-secret-file',
    secret,
    '--cluster-tls-cert-file',
    node.cert,
    '--cluster-tls-key-file',
    node.key,
    '--cluster-tls-ca-file',
    certs.caCert,
  ];
}

async function measureCatchUpTls(): Promise<{ rows: Row[]; results: Record<string, CatchUpResult[]> }> {
  const tlsArgs = clusterTlsArgs();
  const results: Record<string, CatchUpResult[]> = { plain: [], tls: [] };
  for (let run = 0; run < runs; run++) {
    const order = run % 2 === 0 ? (['plain', 'tls'] as const) : (['tls', 'plain'] as const);
    for (const mode of order) {
      clusterArgs = mode === 'tls' ? tlsArgs : [];
      let cluster: TestCluster | undefined;
      try {
        cluster = await startTracked(3);
        const result = await measureCatchUp(cluster);
        console.log(
          `  ${mode} run ${run + 1}: caught up in ${Math.round(result.caughtUpMs)} ms (${Math.round(result.caughtUpMs - result.restartServingMs)} ms from serving)`,
        );
        results[mode]!.push(result);
      } finally {
        await stopTracked(cluster);
      }
    }
  }
  const fetchMbPerS = (c: CatchUpResult) => c.logBytes / 1e6 / ((c.caughtUpMs - c.restartServingMs) / 1000);
  const rows: Row[] = [];
  for (const mode of ['plain', 'tls'] as const) {
    const all = results[mode]!;
    rows.push(
      row({
        scenario: `catch-up ${mode === 'tls' ? 'with cluster TLS (and the secret)' : 'without cluster TLS or secret'}: MB/s from serving to log end equal, median of ${all.length}`,
        'MB/s': median(all.map(fetchMbPerS)).toFixed(1),
        ms: Math.round(median(all.map((c) => c.caughtUpMs - c.restartServingMs))),
        detail: `runs: ${all.map((c) => `${fetchMbPerS(c).toFixed(1)} MB/s (${(c.logBytes / 1e6).toFixed(0)} MB)`).join(' ; ')}`,
      }),
    );
  }
  rows.push(
    row({
      scenario: 'catch-up with TLS / without (rate, medians)',
      'MB/s': (median(results.tls!.map(fetchMbPerS)) / median(results.plain!.map(fetchMbPerS))).toFixed(2),
    }),
  );
  return { rows, results };
}

async function main(): Promise<void> {
  const timer = watchdog();
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
    `replication: ${runs} runs x ${durationS} s at ${connections} conns, catch-up ${catchUpMb} MB, ${failovers} failovers; ${machine.cpus} cpus, load ${machine.loadavgStart.join(' ')}; ${commit}`,
  );

  const rows: Row[] = [];
  let produceRaw: Record<ProduceKey, LoadResult[]> | undefined;
  let catchUp: CatchUpResult | undefined;
  const rounds: FailoverRound[] = [];
  let verified = { checked: 0, missing: [] as string[] };
  let cluster: TestCluster | undefined;
  if (catchUpTls) {
    try {
      const tls = await measureCatchUpTls();
      rows.push(...tls.rows);
      machine.loadavgEnd = loadavgNow();
      const iso = new Date().toISOString().replace(/[:.]/g, '-');
      report(join(root, 'bench/results', `replication-tls-${iso}`), rows, {
        commit,
        srcChanges,
        args: { quick, runs, catchUpMb, catchUpTls },
        machine,
        catchUp: tls.results,
      });
    } finally {
      clearTimeout(timer);
    }
    return;
  }
  try {
    cluster = await startTracked(3);
    produceRaw = await measureProduce(cluster);
    rows.push(...produceRows(produceRaw));
    catchUp = await measureCatchUp(cluster);
    console.log(
      `  catch-up in ${Math.round(catchUp.caughtUpMs)} ms, in ISR after ${Math.round(catchUp.inIsrMs)} ms`,
    );
    rows.push(...catchUpRows(catchUp));
    await readyTopic(cluster, 'failover', 3);
    const acks: Ack[] = [];
    for (let round = 1; round <= failovers; round++) {
      const r = await failoverRound(cluster, 'failover', round, acks);
      console.log(
        `  failover ${round}: killed ${r.killed}${r.killedWasRaftLeader ? ' (Raft leader)' : ''}, first ack ${Math.round(r.firstAckMs)} ms, new leader ${r.newLeader} seen ${Math.round(r.newLeaderSeenMs)} ms, retries ${JSON.stringify(r.failures)}`,
      );
      for (const f of r.failureLog.filter((x) => x.ms >= 0))
        console.log(`    ${f.ms} ms after the kill: ${f.kind} ${f.message}`);
      rounds.push(r);
    }
    verified = await verifyAcks(cluster, 'failover', acks);
    rows.push(...failoverRows(rounds, verified));
  } finally {
    await stopTracked(cluster);
    clearTimeout(timer);
  }
  machine.loadavgEnd = loadavgNow();
  const iso = new Date().toISOString().replace(/[:.]/g, '-');
  report(join(root, 'bench/results', `replication-${iso}`), rows, {
    commit,
    srcChanges,
    args: { quick, runs, durationS, connections, catchUpMb, failovers },
    machine,
    produce: produceRaw,
    catchUp,
    failover: { rounds, verified },
  });
}

await main();
