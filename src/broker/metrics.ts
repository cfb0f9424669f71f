// The broker's Prometheus metrics. prom-client keeps one registry per thread, so everything lives in the
// acceptor's registry: counters the acceptor sees itself (records and bytes per topic, request latency) and
// figures the partition workers publish in their shared stats buffers, rendered at scrape time. With
// --acceptor-threads above 1, each extra acceptor thread keeps its own instance and posts its request figures
// (`AcceptorFigures`) to the primary once a second; the primary's exposition adds them to its own.
// One instance per acceptor thread (the primary's on the main thread).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Registry } from 'prom-client';
import { HeapMeter } from '../runtime/heap-meter.js';
import { batchFramesBuckets, fsyncBucketsSeconds, StatSlot } from './worker-stats.js';

export interface WorkerFigures {
  readonly index: number;
  readonly stats: Float64Array;
  readonly requestRingOccupancyBytes: number;
  readonly responseRingOccupancyBytes: number;
  readonly inFlight: number;
  readonly queuedSends: number;
}

export interface PartitionFigures {
  readonly topic: string;
  readonly partition: number;
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  readonly highWatermark: number;
}

export interface ConnectionFigures {
  readonly connections: number;
  readonly maxConnections: number;
  readonly openDescriptors: number;
  readonly openFilesLimit: number;
  readonly refused: number;
  readonly exhausted: boolean;
}

/**
 * A counter the hot path bumps with one add (prom-client's labelled children hash their label object on every
 * call); its value is copied into the registry's counter at scrape time.
 */
export class Tally {
  value = 0;
  inc(value: number): void {
    this.value += value;
  }
}

export interface TopicCounters {
  readonly producedRecords: Tally;
  readonly producedBytes: Tally;
  readonly consumedRecords: Tally;
  readonly consumedBytes: Tally;
}

/** One (operation, status) series of the request-latency histogram: cumulative bucket counts, sum, count. */
interface LatencyCell {
  readonly operation: string;
  readonly status: number;
  readonly buckets: Float64Array;
  sumSeconds: number;
  count: number;
}

/**
 * An extra acceptor thread's cumulative request figures, as it posts them to the primary: per topic
 * [topic, produced records, produced bytes, consumed records, consumed bytes], and per latency series
 * [operation, status, cumulative bucket counts, sum of seconds, count].
 */
export interface AcceptorFigures {
  readonly topics: readonly (readonly [string, number, number, number, number])[];
  readonly latency: readonly (readonly [string, number, readonly number[], number, number])[];
}

const requestBucketsSeconds = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30,
];

function newLatencyCell(operation: string, status: number): LatencyCell {
  return {
    operation,
    status,
    buckets: new Float64Array(requestBucketsSeconds.length),
    sumSeconds: 0,
    count: 0,
  };
}

export class BrokerMetrics {
  readonly registry = new Registry();
  readonly producedRecords: Counter<'topic'>;
  readonly producedBytes: Counter<'topic'>;
  readonly consumedRecords: Counter<'topic'>;
  readonly consumedBytes: Counter<'topic'>;
  readonly offloadedRequests: Counter;
  /** Produce requests refused and consume requests refused or delayed for a byte-rate quota. */
  readonly quotaThrottled: Counter<'quota' | 'transport'>;
  /** Requests and upgrades refused for a per-client limit (`per_ip`: --max-connections-per-ip). */
  readonly connectionsRefused: Counter<'reason'>;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private readonly heapMeter = new HeapMeter();
  /** The connection guard's figures, once the server runs. */
  connections: (() => ConnectionFigures) | null = null;
  /** The extra acceptor threads' latest figures (primary only, with --acceptor-threads above 1). */
  peerFigures: (() => readonly AcceptorFigures[]) | null = null;

  constructor(
    private readonly workers: () => readonly WorkerFigures[],
    private readonly partitions: () => readonly PartitionFigures[],
  ) {
    const registers = [this.registry];
    const sumsOf = (column: 1 | 2 | 3 | 4) => this.topicSums(column);
    this.producedRecords = new Counter({
      name: 'broker_produced_records_total',
      help: 'Records appended, by topic',
      labelNames: ['topic'],
      registers,
      collect() {
        this.reset();
        for (const [topic, value] of sumsOf(1)) this.inc({ topic }, value);
      },
    });
    this.producedBytes = new Counter({
      name: 'broker_produced_bytes_total',
      help: 'Key, value and header bytes of appended records, by topic',
      labelNames: ['topic'],
      registers,
      collect() {
        this.reset();
        for (const [topic, value] of sumsOf(2)) this.inc({ topic }, value);
      },
    });
    this.consumedRecords = new Counter({
      name: 'broker_consumed_records_total',
      help: 'Records returned to consumers, by topic',
      labelNames: ['topic'],
      registers,
      collect() {
        this.reset();
        for (const [topic, value] of sumsOf(3)) this.inc({ topic }, value);
      },
    });
    this.consumedBytes = new Counter({
      name: 'broker_consumed_bytes_total',
      help: 'Batch bytes read for consumers, by topic',
      labelNames: ['topic'],
      registers,
      collect() {
        this.reset();
        for (const [topic, value] of sumsOf(4)) this.inc({ topic }, value);
      },
    });
    this.offloadedRequests = new Counter({
      name: 'broker_offloaded_requests_total',
      help: 'Produce bodies of largeBodyBytes or more, parsed on the piscina pool instead of the acceptor thread',
      registers,
    });
    this.quotaThrottled = new Counter({
      name: 'broker_quota_throttled_total',
      help: 'Produces refused (429 or an error frame) and consumes refused (429) or held back (WebSocket streams) because the principal was over its byte-rate quota, by quota (produce, consume) and transport (http, ws)',
      labelNames: ['quota', 'transport'],
      registers,
    });
    this.connectionsRefused = new Counter({
      name: 'broker_client_limit_refusals_total',
      help: 'Requests and WebSocket upgrades refused (429, connection closed) for a per-client limit, by reason (per_ip: --max-connections-per-ip)',
      labelNames: ['reason'],
      registers,
    });
    const partitionsOf = this.partitions;
    const workersOf = this.workers;
    new Gauge({
      name: 'kafka_topic_partition_current_offset',
      help: 'Log end offset of each partition (the next offset to be written)',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const p of partitionsOf())
          this.set({ topic: p.topic, partition: String(p.partition) }, p.logEndOffset);
      },
    });
    new Gauge({
      name: 'kafka_topic_partition_oldest_offset',
      help: 'Log start offset of each partition',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const p of partitionsOf())
          this.set({ topic: p.topic, partition: String(p.partition) }, p.logStartOffset);
      },
    });
    new Gauge({
      name: 'kafka_topic_partition_high_watermark',
      help: 'High watermark of each partition: consumers read below it',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const p of partitionsOf())
          this.set({ topic: p.topic, partition: String(p.partition) }, p.highWatermark);
      },
    });
    const loopDelay = this.loopDelay;
    loopDelay.enable();
    new Gauge({
      name: 'broker_event_loop_delay_p99_seconds',
      help: 'p99 event-loop delay per thread since the previous scrape',
      labelNames: ['thread'],
      registers,
      collect: () => {
        const gauge = this.registry.getSingleMetric('broker_event_loop_delay_p99_seconds') as Gauge<'thread'>;
        gauge.reset();
        gauge.set({ thread: 'acceptor' }, loopDelay.percentile(99) / 1e9);
        loopDelay.reset();
        for (const w of this.workers()) {
          gauge.set({ thread: `partition-${w.index}` }, w.stats[StatSlot.eventLoopDelayP99Seconds] ?? 0);
        }
      },
    });
    const heap = this.heapMeter;
    new Counter({
      name: 'broker_thread_heap_allocated_bytes_total',
      help: "Bytes allocated on each thread's V8 heap since it started (Buffer backing stores excluded)",
      labelNames: ['thread'],
      registers,
      collect() {
        this.reset();
        this.inc({ thread: 'acceptor' }, heap.allocatedBytes());
        for (const w of workersOf()) {
          this.inc({ thread: `partition-${w.index}` }, w.stats[StatSlot.heapAllocatedBytes] ?? 0);
        }
      },
    });
    new Counter({
      name: 'broker_thread_gc_seconds_total',
      help: 'Seconds each thread spent in garbage-collection pauses since it started',
      labelNames: ['thread'],
      registers,
      collect() {
        this.reset();
        this.inc({ thread: 'acceptor' }, heap.gcSeconds());
        for (const w of workersOf()) {
          this.inc({ thread: `partition-${w.index}` }, w.stats[StatSlot.gcSeconds] ?? 0);
        }
      },
    });
  }

  private readonly topicTallies = new Map<string, TopicCounters>();

  /** The WebSocket fan-out's figures (StreamFeeds), read at scrape time. */
  registerStreamFeeds(feeds: { readonly joined: number; readonly shared: number }): void {
    new Counter({
      name: 'broker_stream_fetches_joined_total',
      help: 'WebSocket stream fetches not sent because another stream of the partition was already fetching the same records',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(feeds.joined);
      },
    });
    new Counter({
      name: 'broker_stream_shared_answers_total',
      help: 'Fetch answers decoded and made into WebSocket frames once for several streams',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(feeds.shared);
      },
    });
  }

  /** Per topic, this thread's tally in `column` (AcceptorFigures' topic columns) plus the extra threads'. */
  private topicSums(column: 1 | 2 | 3 | 4): Map<string, number> {
    const sums = new Map<string, number>();
    for (const [topic, c] of this.topicTallies) {
      const tally = [c.producedRecords, c.producedBytes, c.consumedRecords, c.consumedBytes][column - 1]!;
      sums.set(topic, tally.value);
    }
    for (const peer of this.peerFigures?.() ?? []) {
      for (const row of peer.topics) sums.set(row[0], (sums.get(row[0]) ?? 0) + row[column]);
    }
    return sums;
  }

  /** This thread's request figures, for the primary's exposition (an extra acceptor thread posts them). */
  figures(): AcceptorFigures {
    const topics: [string, number, number, number, number][] = [];
    for (const [topic, c] of this.topicTallies) {
      topics.push([
        topic,
        c.producedRecords.value,
        c.producedBytes.value,
        c.consumedRecords.value,
        c.consumedBytes.value,
      ]);
    }
    const latency: [string, number, number[], number, number][] = [];
    for (const byStatus of this.latency.values()) {
      for (const cell of byStatus.values()) {
        latency.push([cell.operation, cell.status, [...cell.buckets], cell.sumSeconds, cell.count]);
      }
    }
    return { topics, latency };
  }

  /** The hot path's counters of one topic (the same ones for as long as the process lives). */
  topicCounters(topic: string): TopicCounters {
    let counters = this.topicTallies.get(topic);
    if (counters === undefined) {
      counters = {
        producedRecords: new Tally(),
        producedBytes: new Tally(),
        consumedRecords: new Tally(),
        consumedBytes: new Tally(),
      };
      this.topicTallies.set(topic, counters);
    }
    return counters;
  }

  /** operation -> status -> series; two lookups and a few adds per request, nothing allocated. */
  private readonly latency = new Map<string, Map<number, LatencyCell>>();

  /** Requests observed by `observeRequest`. */
  private requestsObserved = 0;

  /**
   * A number that moves whenever `figures()` would differ: requests observed plus every topic tally (an
   * acks=0 produce is counted after its answer). An extra acceptor posts its figures only when it moved.
   */
  figuresVersion(): number {
    let version = this.requestsObserved;
    for (const c of this.topicTallies.values()) {
      version +=
        c.producedRecords.value + c.producedBytes.value + c.consumedRecords.value + c.consumedBytes.value;
    }
    return version;
  }

  /** Observes one request's latency. */
  observeRequest(operation: string, status: number, seconds: number): void {
    this.requestsObserved++;
    let byStatus = this.latency.get(operation);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.latency.set(operation, byStatus);
    }
    let cell = byStatus.get(status);
    if (cell === undefined) {
      cell = newLatencyCell(operation, status);
      byStatus.set(status, cell);
    }
    for (let i = requestBucketsSeconds.length - 1; i >= 0 && seconds <= requestBucketsSeconds[i]!; i--)
      cell.buckets[i]! += 1;
    cell.sumSeconds += seconds;
    cell.count += 1;
  }

  /** The request-latency histogram in the exposition format (what prom-client would print for it). */
  private renderLatency(lines: string[]): void {
    const name = 'broker_http_request_duration_seconds';
    lines.push(
      `# HELP ${name} HTTP request latency from the first byte handled to the answer, by route and status`,
      `# TYPE ${name} histogram`,
    );
    // This thread's series, with every extra acceptor thread's added in (into fresh cells: this thread's own
    // keep counting).
    const cells = new Map<string, LatencyCell>();
    const add = (
      operation: string,
      status: number,
      buckets: ArrayLike<number>,
      sumSeconds: number,
      count: number,
    ): void => {
      const key = `${operation} ${status}`;
      let cell = cells.get(key);
      if (cell === undefined) {
        cell = newLatencyCell(operation, status);
        cells.set(key, cell);
      }
      for (let i = 0; i < cell.buckets.length; i++) cell.buckets[i]! += buckets[i] ?? 0;
      cell.sumSeconds += sumSeconds;
      cell.count += count;
    };
    for (const byStatus of this.latency.values()) {
      for (const c of byStatus.values()) add(c.operation, c.status, c.buckets, c.sumSeconds, c.count);
    }
    for (const peer of this.peerFigures?.() ?? []) {
      for (const [operation, status, buckets, sumSeconds, count] of peer.latency) {
        add(operation, status, buckets, sumSeconds, count);
      }
    }
    for (const cell of cells.values()) {
      const labels = `operation="${cell.operation}",status="${cell.status}"`;
      for (let i = 0; i < requestBucketsSeconds.length; i++)
        lines.push(`${name}_bucket{le="${requestBucketsSeconds[i]}",${labels}} ${cell.buckets[i]}`);
      lines.push(`${name}_bucket{le="+Inf",${labels}} ${cell.count}`);
      lines.push(`${name}_sum{${labels}} ${cell.sumSeconds}`);
      lines.push(`${name}_count{${labels}} ${cell.count}`);
    }
  }

  /** The whole exposition: the registry plus the workers' figures rendered here. */
  async render(): Promise<string> {
    const base = await this.registry.metrics();
    const lines: string[] = [base.trimEnd()];
    this.renderLatency(lines);
    const workers = this.workers();
    const gauge = (name: string, help: string, pick: (w: WorkerFigures) => number): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
      for (const w of workers) lines.push(`${name}{worker="${w.index}"} ${pick(w)}`);
    };
    const counter = (name: string, help: string, slot: number): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const w of workers) lines.push(`${name}{worker="${w.index}"} ${w.stats[slot] ?? 0}`);
    };
    gauge(
      'broker_ring_occupancy_bytes',
      'Bytes waiting in the request ring of each worker',
      (w) => w.requestRingOccupancyBytes,
    );
    gauge(
      'broker_response_ring_occupancy_bytes',
      'Bytes waiting in the response ring of each worker',
      (w) => w.responseRingOccupancyBytes,
    );
    gauge(
      'broker_worker_requests_in_flight',
      'Requests sent to each worker and not yet answered',
      (w) => w.inFlight,
    );
    gauge(
      'broker_worker_requests_queued',
      'Requests waiting for ring space, per worker',
      (w) => w.queuedSends,
    );
    gauge(
      'broker_worker_partitions',
      'Partitions owned by each worker',
      (w) => w.stats[StatSlot.partitions] ?? 0,
    );
    gauge(
      'broker_partitions_storage_offline',
      'Partitions that cannot take writes now (full disk or failed storage), per worker; reads go on',
      (w) => w.stats[StatSlot.partitionsStorageOffline] ?? 0,
    );
    counter(
      'broker_worker_appended_records_total',
      'Records appended by each worker',
      StatSlot.appendedRecords,
    );
    counter(
      'broker_worker_appended_bytes_total',
      'Batch bytes written by each worker',
      StatSlot.appendedBytes,
    );
    counter(
      'broker_worker_appended_during_sync_records_total',
      'Records each worker wrote while the previous group commit was syncing (pipelined group commit)',
      StatSlot.appendedDuringSyncRecords,
    );
    gauge(
      'broker_replica_max_lag_records',
      'Records the furthest-behind follower lags a partition led by each worker (refreshed every second)',
      (w) => w.stats[StatSlot.replicaMaxLagRecords] ?? 0,
    );
    counter(
      'broker_log_corrupt_batches_total',
      'Reads refused because a stored batch failed its header or CRC check (damaged data at rest), per worker',
      StatSlot.corruptReads,
    );
    gauge(
      'broker_worker_open_logs',
      'Partition logs open per worker (the others open on first use)',
      (w) => w.stats[StatSlot.openLogs] ?? 0,
    );
    gauge(
      'broker_partitions_awaiting_recovery',
      'Partitions per worker whose logs a crash left to recover and that are not recovered yet (recovered in the background, or at once when a request needs one)',
      (w) => w.stats[StatSlot.partitionsAwaitingRecovery] ?? 0,
    );
    gauge(
      'broker_segment_fds_open',
      'Descriptors open for segment files per worker (bounded by the segment descriptor cache)',
      (w) => w.stats[StatSlot.segmentFdsOpen] ?? 0,
    );
    counter(
      'broker_segment_fd_evictions_total',
      'Segment file descriptors closed to make room in the per-worker cache',
      StatSlot.segmentFdEvictions,
    );
    gauge(
      'broker_index_cache_bytes',
      "Bytes of sealed segments' offset and time indexes held in memory per worker (bounded by the index cache)",
      (w) => w.stats[StatSlot.indexCacheBytes] ?? 0,
    );
    counter(
      'broker_index_cache_drops_total',
      "Sealed segments' indexes dropped from memory to stay within the per-worker index cache",
      StatSlot.indexCacheDrops,
    );
    counter(
      'broker_index_cache_loads_total',
      "Sealed segments' indexes read back from their files after being dropped",
      StatSlot.indexCacheLoads,
    );
    const c = this.connections?.();
    if (c !== undefined) {
      const single = (name: string, type: string, help: string, value: number): void => {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
      };
      single(
        'broker_client_connections',
        'gauge',
        'Client connections, estimated from open descriptors',
        c.connections,
      );
      single('broker_client_connections_max', 'gauge', 'The client connection cap', c.maxConnections);
      single(
        'broker_open_fds',
        'gauge',
        'Descriptors open in the process at the last sample',
        c.openDescriptors,
      );
      single('broker_open_fds_limit', 'gauge', 'The soft open-files limit of the process', c.openFilesLimit);
      single(
        'broker_connections_refused_total',
        'counter',
        'Requests and upgrades refused with 503 at the client connection cap (their connection closed)',
        c.refused,
      );
      single(
        'broker_fds_exhausted',
        'gauge',
        '1 while the process is at its open-files limit (spare descriptors released, requests shed)',
        c.exhausted ? 1 : 0,
      );
    }
    histogram(
      lines,
      'broker_fsync_duration_seconds',
      'Duration of each log fsync',
      workers,
      fsyncBucketsSeconds,
      StatSlot.fsyncBuckets,
      StatSlot.fsyncSecondsSum,
      StatSlot.fsyncCount,
    );
    histogram(
      lines,
      'broker_worker_batch_frames',
      'Frames drained from the request ring per batch',
      workers,
      batchFramesBuckets,
      StatSlot.batchBuckets,
      StatSlot.frames,
      StatSlot.batches,
    );
    return `${lines.join('\n')}\n`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function histogram(
  lines: string[],
  name: string,
  help: string,
  workers: readonly WorkerFigures[],
  bounds: readonly number[],
  bucketSlot: number,
  sumSlot: number,
  countSlot: number,
): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  for (const w of workers) {
    for (let i = 0; i < bounds.length; i++) {
      lines.push(`${name}_bucket{le="${bounds[i]}",worker="${w.index}"} ${w.stats[bucketSlot + i] ?? 0}`);
    }
    const count = w.stats[countSlot] ?? 0;
    lines.push(`${name}_bucket{le="+Inf",worker="${w.index}"} ${count}`);
    lines.push(`${name}_sum{worker="${w.index}"} ${w.stats[sumSlot] ?? 0}`);
    lines.push(`${name}_count{worker="${w.index}"} ${count}`);
  }
}
