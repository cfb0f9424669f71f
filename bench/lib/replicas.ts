// Helpers for the replication benchmark: a partition's replica state as `GET /topics/{t}/partitions/{p}` shows
// it (leader, ISR, each replica's log end), polling it with a deadline, topic creation with a replication
// factor, and a sequential single-record producer that retries every failure after a short pause and records
// each acknowledgement. Callable from the main thread of a benchmark process only.
import type { ClusterNode } from '../../test/cluster/processes.js';

/** One replica's row in `replica_state`, as the partition's leader reports it. */
export interface ReplicaStateView {
  readonly broker: string;
  readonly in_sync: boolean;
  readonly log_end_offset: number | null;
  readonly lag: number | null;
}

/** `GET /topics/{t}/partitions/{p}`; the figures are absent when the leader did not answer. */
export interface PartitionView {
  readonly partition: number;
  readonly leader: string | null;
  readonly leader_epoch: number;
  readonly replicas: string[];
  readonly isr: string[];
  readonly offline: boolean;
  readonly log_start_offset?: number | null;
  readonly high_watermark?: number | null;
  readonly log_end_offset?: number | null;
  readonly size_bytes?: number;
  readonly segment_count?: number;
  readonly replica_state?: ReplicaStateView[] | null;
  readonly error?: string;
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function baseOf(node: ClusterNode): string {
  if (node.process === null) throw new Error(`${node.id} is not running`);
  return node.process.base;
}

/** The partition as `node` describes it, or null if it did not answer 200 within `timeoutMs`. */
export async function partitionView(
  node: ClusterNode,
  topic: string,
  partition: number,
  timeoutMs = 2_000,
): Promise<PartitionView | null> {
  if (node.process === null) return null;
  try {
    const response = await fetch(`${node.process.base}/topics/${topic}/partitions/${partition}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      return null;
    }
    return (await response.json()) as PartitionView;
  } catch {
    return null;
  }
}

/**
 * Polls the partition through `node` every `intervalMs` (start to start) until `check` returns a value, or
 * throws after `timeoutMs` with the last view seen.
 */
export async function pollPartition<T>(
  what: string,
  node: ClusterNode,
  topic: string,
  partition: number,
  timeoutMs: number,
  intervalMs: number,
  check: (view: PartitionView) => T | undefined,
): Promise<T> {
  const deadlineMs = performance.now() + timeoutMs;
  let last: PartitionView | null = null;
  for (;;) {
    const startedMs = performance.now();
    const view = await partitionView(node, topic, partition, Math.max(250, intervalMs * 5));
    if (view !== null) {
      last = view;
      const value = check(view);
      if (value !== undefined) return value;
    }
    if (performance.now() > deadlineMs)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last view ${JSON.stringify(last)}`,
      );
    const leftMs = intervalMs - (performance.now() - startedMs);
    if (leftMs > 0) await sleepMs(leftMs);
  }
}

/** Every replica in the ISR, a leader, and every replica's log end equal to the leader's. */
export function fullyInSync(view: PartitionView): boolean {
  if (view.leader === null || view.offline) return false;
  if (view.isr.length !== view.replicas.length) return false;
  const end = view.log_end_offset;
  if (end === null || end === undefined || view.replica_state === null || view.replica_state === undefined)
    return false;
  return view.replica_state.every((r) => r.in_sync && r.log_end_offset === end);
}

/** `POST /topics/{name}` with `num_partitions` and `replication_factor`; throws unless 201 or 200. */
export async function createReplicatedTopic(
  node: ClusterNode,
  name: string,
  numPartitions: number,
  replicationFactor: number,
): Promise<void> {
  const response = await fetch(`${baseOf(node)}/topics/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ num_partitions: numPartitions, replication_factor: replicationFactor }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  if (response.status !== 201 && response.status !== 200)
    throw new Error(`creating ${name} (rf ${replicationFactor}) answered ${response.status}: ${text}`);
}

/** Failed attempts kept in full per producer. */
const failureLogMax = 50;

export interface Ack {
  readonly value: string;
  readonly offset: number;
  /** When the request that got this acknowledgement was first sent, and when its answer arrived. */
  readonly sentAtMs: number;
  readonly ackedAtMs: number;
}

export interface SequentialProducer {
  readonly acks: Ack[];
  /** Failed attempts by kind (`503 50301`, `fetch TypeError`, ...). */
  readonly failures: Map<string, number>;
  /** The first failed attempts in full: when the answer came, what it was. */
  readonly failureLog: { readonly atMs: number; readonly kind: string; readonly message: string }[];
  /** Called after each acknowledgement; the benchmark waits on these. */
  onAck: ((ack: Ack) => void) | null;
  stop(): Promise<void>;
}

/**
 * One producer sending single records with acks=all to `base()` one at a time. A failure of any kind (503
 * while leadership moves, a refused connection, a timeout) is retried with the same value after `retryMs`,
 * so an outcome that was unknown may be written twice; each value is acknowledged at most once here.
 */
export function startSequentialProducer(
  base: () => string,
  topic: string,
  tag: string,
  retryMs: number,
  requestTimeoutMs: number,
): SequentialProducer {
  let running = true;
  const producer: SequentialProducer = {
    acks: [],
    failures: new Map(),
    failureLog: [],
    onAck: null,
    stop: async () => {
      running = false;
      await loop;
    },
  };
  const fail = (kind: string, message: string): void => {
    producer.failures.set(kind, (producer.failures.get(kind) ?? 0) + 1);
    if (producer.failureLog.length < failureLogMax)
      producer.failureLog.push({ atMs: performance.now(), kind, message: message.slice(0, 300) });
  };
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const value = `${tag}-${i}`;
      const body = JSON.stringify({ value });
      const sentAtMs = performance.now();
      while (running) {
        try {
          const response = await fetch(`${base()}/topics/${topic}/produce?acks=all`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            signal: AbortSignal.timeout(requestTimeoutMs),
          });
          const text = await response.text();
          if (response.status === 201) {
            const offset = (JSON.parse(text) as { offset: number }).offset;
            const ack: Ack = { value, offset, sentAtMs, ackedAtMs: performance.now() };
            producer.acks.push(ack);
            producer.onAck?.(ack);
            break;
          }
          let code = '';
          try {
            code = String((JSON.parse(text) as { error_code?: number }).error_code ?? '');
          } catch {}
          fail(`${response.status} ${code}`.trim(), text);
        } catch (error) {
          const cause = (error as { cause?: unknown }).cause;
          fail(
            `fetch ${(error as Error).name}`,
            `${String(error)}${cause === undefined ? '' : ` (${String(cause)})`}`,
          );
        }
        await sleepMs(retryMs);
      }
    }
  })();
  return producer;
}
