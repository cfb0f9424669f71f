// Test helper for the replication fault tests: producers that send unique values to every node's HTTP port
// without retrying and record each outcome (acknowledged at an offset, refused definitely, or unknown), a
// watch of how long each partition goes without an acknowledged write after a fault, and the checks made
// afterwards: every partition read through every node and every replica's files read directly.
// Runs in the test process only.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { forEachRecord } from '../../src/core/log/record-batch.js';
import { partitionDirName } from '../../src/core/names.js';
import { RealDisk } from '../../src/storage/disk.js';
import { DEFAULT_LOG_CONFIG, PartitionLog } from '../../src/storage/partition-log.js';

/** A broker the workload can reach: its HTTP base URL, or null while it is down (or cut off). */
export interface WorkloadNode {
  readonly id: string;
  base(): string | null;
}

export interface Outcomes {
  /** value -> where it was acknowledged */
  readonly acked: Map<string, { partition: number; offset: number; atMs: number }>;
  /** values refused definitely: nothing may have been appended */
  readonly refused: Set<string>;
  /** values whose outcome the client cannot know (indefinite answers, timeouts, dropped connections) */
  readonly unknown: Set<string>;
  /** acknowledged writes per partition, in time order: (time, partition) */
  readonly ackTimes: { atMs: number; partition: number }[];
  readonly errors: Map<string, number>;
}

export function emptyOutcomes(): Outcomes {
  return { acked: new Map(), refused: new Set(), unknown: new Set(), ackTimes: [], errors: new Map() };
}

/**
 * Runs one producer per node until `stop()` is called: each sends single-record produces with unique values
 * round-robin over the partitions, waiting for each answer (no retries, ever), and records the outcome.
 */
export function startProducers(
  nodes: readonly WorkloadNode[],
  topic: string,
  partitions: number,
  acks: 'all' | '1',
  outcomes: Outcomes,
  tag: string,
): { stop(): Promise<void> } {
  let running = true;
  const loops = nodes.map(async (node, n) => {
    for (let i = 0; running; i++) {
      const base = node.base();
      if (base === null) {
        await sleep(50);
        continue;
      }
      const value = `${tag}-${node.id}-${i}`;
      const partition = (i + n) % partitions;
      const started = performance.now();
      try {
        const response = await fetch(`${base}/topics/${topic}/produce?acks=${acks}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ value, partition }),
          signal: AbortSignal.timeout(5_000),
        });
        const body = (await response.json()) as Record<string, unknown>;
        if (response.status === 201) {
          assert.equal(body.partition, partition);
          outcomes.acked.set(value, { partition, offset: body.offset as number, atMs: performance.now() });
          outcomes.ackTimes.push({ atMs: performance.now(), partition });
        } else if (body.indefinite === true) {
          outcomes.unknown.add(value);
          count(outcomes.errors, `indefinite ${response.status}: ${shorten(String(body.message))}`);
        } else {
          outcomes.refused.add(value);
          count(outcomes.errors, `definite ${response.status}: ${shorten(String(body.message))}`);
          await sleep(20);
        }
      } catch (error) {
        // The request may have reached the broker: its outcome is unknown.
        outcomes.unknown.add(value);
        count(outcomes.errors, `no answer: ${(error as Error).name}`);
        if (performance.now() - started < 100) await sleep(50);
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** What idempotent producers saw besides their outcomes. */
export interface IdempotentFigures {
  /** Requests sent again after an unknown outcome or a definite refusal. */
  retries: number;
  /** Answers that said "duplicate": a retry of a batch the log already held. */
  duplicates: number;
  /** Refusals a retry of the same sequence must never get (out of order, fenced, unknown producer). */
  readonly sequenceErrors: string[];
}

/**
 * Runs one idempotent producer per node until `stop()`: a producer id from POST /producers, a sequence per
 * partition, and every request retried with the same sequence (on whichever node is up) until it is
 * acknowledged, as a Kafka client with enable.idempotence does. An acknowledged value is recorded once;
 * a value still unresolved at the stop is unknown.
 */
export function startIdempotentProducers(
  nodes: readonly WorkloadNode[],
  topic: string,
  partitions: number,
  outcomes: Outcomes,
  tag: string,
): { figures: IdempotentFigures; stop(): Promise<void> } {
  let running = true;
  const figures: IdempotentFigures = { retries: 0, duplicates: 0, sequenceErrors: [] };
  const anyBase = (n: number): string | null => {
    for (let k = 0; k < nodes.length; k++) {
      const base = nodes[(n + k) % nodes.length]!.base();
      if (base !== null) return base;
    }
    return null;
  };
  const loops = nodes.map(async (node, n) => {
    let producerId = -1;
    while (running && producerId < 0) {
      const base = anyBase(n);
      try {
        if (base !== null) {
          const r = await fetch(`${base}/producers`, { method: 'POST', signal: AbortSignal.timeout(5_000) });
          if (r.status === 201) producerId = ((await r.json()) as { producer_id: number }).producer_id;
        }
      } catch {}
      if (producerId < 0) await sleep(100);
    }
    const sequences = new Array<number>(partitions).fill(0);
    for (let i = 0; running; i++) {
      const value = `${tag}-${node.id}-${i}`;
      const partition = (i + n) % partitions;
      const sequence = sequences[partition]!;
      let attempt = 0;
      for (; ; attempt++) {
        if (!running) {
          outcomes.unknown.add(value);
          break;
        }
        if (attempt > 0) {
          figures.retries++;
          await sleep(20);
        }
        const base = anyBase(n + attempt);
        if (base === null) continue;
        try {
          const response = await fetch(`${base}/topics/${topic}/produce`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'producer-id': String(producerId),
              'producer-epoch': '0',
              sequence: String(sequence),
            },
            body: JSON.stringify({ value, partition }),
            signal: AbortSignal.timeout(5_000),
          });
          const body = (await response.json()) as Record<string, unknown>;
          if (response.status === 201) {
            assert.equal(body.partition, partition);
            if (body.duplicate === true) figures.duplicates++;
            outcomes.acked.set(value, { partition, offset: body.offset as number, atMs: performance.now() });
            outcomes.ackTimes.push({ atMs: performance.now(), partition });
            break;
          }
          const message = String(body.message);
          count(
            outcomes.errors,
            `${body.indefinite === true ? 'indefinite' : 'definite'} ${response.status}: ${shorten(message)}`,
          );
          if (response.status === 409) {
            figures.sequenceErrors.push(`${value} seq ${sequence}: ${message}`);
            outcomes.unknown.add(value);
            break;
          }
        } catch (error) {
          count(outcomes.errors, `no answer: ${(error as Error).name}`);
        }
      }
      sequences[partition] = sequence + 1;
    }
  });
  return {
    figures,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

function shorten(message: string): string {
  return message.replace(/\d+/g, 'N').slice(0, 120);
}

function count(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The first acknowledged write to `partition` at or after `fromMs`, waiting up to `timeoutMs` for one. */
export async function firstAckAfter(
  outcomes: Outcomes,
  partition: number,
  fromMs: number,
  timeoutMs: number,
): Promise<number | null> {
  const deadline = performance.now() + timeoutMs;
  let seen = 0;
  for (;;) {
    for (let i = seen; i < outcomes.ackTimes.length; i++) {
      const a = outcomes.ackTimes[i]!;
      if (a.partition === partition && a.atMs >= fromMs) return a.atMs;
    }
    seen = outcomes.ackTimes.length;
    if (performance.now() > deadline) return null;
    await sleep(20);
  }
}

export async function getJson(base: string, path: string, timeoutMs = 3_000): Promise<any> {
  const response = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: response.status, body: await response.json() };
}

/** The partition's leader as a node sees it; null when it cannot say. */
export async function leaderOf(node: WorkloadNode, topic: string, partition: number): Promise<string | null> {
  const base = node.base();
  if (base === null) return null;
  try {
    const got = await getJson(base, `/topics/${topic}/partitions/${partition}`);
    return got.status === 200 && typeof got.body.leader === 'string' ? got.body.leader : null;
  } catch {
    return null;
  }
}

/** Waits until every partition has every replica in its ISR and every replica's log end equals the leader's. */
export async function waitFullyReplicated(
  nodes: readonly WorkloadNode[],
  topic: string,
  partitions: number,
  timeoutMs: number,
): Promise<any[]> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    const base = nodes.map((n) => n.base()).find((b) => b !== null);
    if (base !== undefined && base !== null) {
      try {
        const got = await getJson(base, `/topics/${topic}`);
        const parts = got.body.partitions as any[] | undefined;
        last = JSON.stringify(
          parts?.map((p) => [p.partition, p.leader, p.isr, p.high_watermark, p.replica_state]),
        );
        if (
          got.status === 200 &&
          parts !== undefined &&
          parts.length === partitions &&
          parts.every(
            (p) =>
              p.leader !== null &&
              p.isr.length === p.replicas.length &&
              p.high_watermark !== null &&
              (p.replica_state as any[]).every((r) => r.log_end_offset === p.log_end_offset) &&
              p.high_watermark === p.log_end_offset,
          )
        ) {
          return parts;
        }
      } catch {}
    }
    if (performance.now() > deadline) assert.fail(`not fully replicated within ${timeoutMs} ms: ${last}`);
    await sleep(200);
  }
}

/** Every record of a partition through one node's HTTP API, by offset (the node asks the leader if need be). */
export async function readThrough(base: string, topic: string, partition: number, highWatermark: number) {
  const out: { offset: number; value: string }[] = [];
  let offset = 0;
  while (offset < highWatermark) {
    const got = await getJson(
      base,
      `/topics/${topic}/partitions/${partition}/consume?offset=${offset}&limit=1000`,
      10_000,
    );
    assert.equal(got.status, 200, JSON.stringify(got.body));
    const messages = got.body.messages as { offset: number; value: string }[];
    assert.ok(messages.length > 0, `no progress at offset ${offset} of ${highWatermark}`);
    for (const m of messages) out.push({ offset: m.offset, value: m.value });
    offset = messages[messages.length - 1]!.offset + 1;
  }
  return out;
}

/** A replica's batches below `highWatermark` straight from its files (the broker must be stopped). */
export function readReplicaFiles(dataDir: string, topic: string, partition: number, highWatermark: number) {
  const dir = join(dataDir, partitionDirName(topic, partition));
  const log = PartitionLog.open(dir, { ...DEFAULT_LOG_CONFIG }, new RealDisk(), Date.now());
  try {
    const records: { offset: number; value: string }[] = [];
    const batches: Buffer[] = [];
    let offset = log.logStartOffset;
    while (offset < highWatermark) {
      const target = Buffer.alloc(4 * 1024 * 1024);
      const read = log.read(offset, 1024 * 1024, highWatermark, target);
      assert.equal(read.kind, 'ok', `replica in ${dir} read at ${offset}: ${JSON.stringify(read)}`);
      if (read.kind !== 'ok') break;
      const bytes = Buffer.from(read.bytes);
      assert.ok(bytes.byteLength > 0, `replica in ${dir} ends at ${offset}, below ${highWatermark}`);
      batches.push(bytes);
      let last = offset - 1;
      forEachRecord(
        bytes,
        (r) => {
          records.push({ offset: r.offset, value: Buffer.from(r.value!).toString('utf8') });
          last = r.offset;
        },
        { fromOffset: offset },
      );
      offset = last + 1;
    }
    return { records: records.filter((r) => r.offset < highWatermark), bytes: Buffer.concat(batches) };
  } finally {
    log.close();
  }
}

/**
 * The checks on one partition's records (as read somewhere): offsets dense from 0, no value twice, every
 * value acknowledged at this partition at its offset, no refused value anywhere. Returns how many of the
 * unknown outcomes made it in.
 */
export function checkRecords(
  records: readonly { offset: number; value: string }[],
  partition: number,
  outcomes: Outcomes,
  where: string,
): number {
  const seen = new Set<string>();
  let unknownIn = 0;
  records.forEach((r, i) => {
    assert.equal(r.offset, i, `${where}: offsets are dense`);
    assert.ok(!seen.has(r.value), `${where}: ${r.value} appears twice`);
    seen.add(r.value);
    assert.ok(
      !outcomes.refused.has(r.value),
      `${where}: ${r.value} was refused definitely but is at ${r.offset}`,
    );
    const acked = outcomes.acked.get(r.value);
    if (acked !== undefined) {
      assert.equal(acked.partition, partition, `${where}: ${r.value} acknowledged on another partition`);
      assert.equal(
        r.offset,
        acked.offset,
        `${where}: ${r.value} acknowledged at ${acked.offset}, found at ${r.offset}`,
      );
    }
    if (outcomes.unknown.has(r.value)) unknownIn++;
  });
  for (const [value, a] of outcomes.acked) {
    if (a.partition === partition)
      assert.ok(seen.has(value), `${where}: acknowledged ${value} (offset ${a.offset}) is lost`);
  }
  return unknownIn;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
