// The acceptor: the HTTP handlers of one node and the routing state behind them. It validates every request,
// picks the partition (Kafka's murmur2 for keys, sticky round-robin without one), encodes produce and fetch
// requests straight into the owning worker's request ring, and answers when the worker's response frame
// arrives. Long-poll consumers wait in a bounded per-partition list and are woken by the append that moves
// the high watermark (the produce answer), never by polling. It never touches a file.
// Runs on the acceptor (main) thread only.

import type { BrokerConfig } from '../config/config.js';
import { assert } from '../core/assert.js';
import { type ErrorName, errors } from '../core/errors.js';
import { type DecodedRecord, forEachRecord } from '../core/log/record-batch.js';
import { validateTopicName } from '../core/names.js';
import { StickyPartitioner } from '../core/partitioner.js';
import type { OffloadPool } from '../http/offload-pool.js';
import { isParamError, parseIntegerParam, parseOptionalIntegerParam } from '../http/params.js';
import {
  type ProduceLimits,
  type ProduceParse,
  parseBatchProduce,
  parseJsonBody,
  parseSingleProduce,
} from '../http/produce-body.js';
import { chunkGroup, groupByPartition } from '../http/produce-groups.js';
import type { LargeProduceTask } from '../http/produce-offload.js';
import { recordFieldsJson } from '../http/record-json.js';
import type { HttpRequest, Reply } from '../http/server.js';
import { parseTopicCreate } from '../http/topic-body.js';
import type { MetadataSnapshot, MetadataStore, TopicMetadata } from '../metadata/types.js';
import type { BrokerMetrics, TopicCounters } from './metrics.js';
import {
  encodeProduceRequest,
  FrameKind,
  fetchRequestBytes,
  fetchResultHeaderBytes,
  produceRequestBytes,
  readFetchDetail,
  WireStatus,
  writeFetchRequest,
} from './wire.js';
import type { SendOutcome, WorkerLink } from './worker-link.js';

export interface PartitionRoute {
  readonly topic: string;
  readonly partition: number;
  readonly slot: number;
  readonly link: WorkerLink;
  /** The broker leading this partition, from the metadata. */
  leader: string;
  /** True when this node leads the partition and it is open on `link`'s worker; requests go nowhere else. */
  local: boolean;
  /** Where clients reach the leader (`http://host:port`), or '' when the leader is unknown. */
  leaderUrl: string;
  logStartOffset: number;
  logEndOffset: number;
  highWatermark: number;
  sizeBytes: number;
  segmentCount: number;
  /**
   * False while the offsets above are only lower bounds: the worker has not recovered the partition's log
   * since a crash (it opens logs lazily). `ensureExact` asks for the exact ones.
   */
  exact: boolean;
  /** Long-poll consumers waiting for the high watermark to pass their offset. */
  readonly waiters: Set<Waiter>;
}

export interface TopicRoute {
  readonly meta: TopicMetadata;
  readonly partitions: PartitionRoute[];
  readonly sticky: StickyPartitioner;
  /** The topic's labelled counters, resolved once (a label lookup per request is measurable). */
  readonly counters: TopicCounters;
  /** Produce limits of this topic: a record must fit one batch, and a batch one segment. */
  readonly limits: ProduceLimits;
}

export interface RecordOffset {
  partition: number;
  offset: number | null;
  error_code: number | null;
  error: string | null;
}

export interface ProduceFailure {
  readonly name: ErrorName;
  readonly message: string;
  readonly indefinite: boolean;
}

/** One partition's share of a produce request, ready to be encoded into that partition's ring. */
export interface SendGroup {
  readonly partition: number;
  readonly indexes: ArrayLike<number> & Iterable<number>;
  readonly payloadBytes: number;
  readonly encode: (bytes: Buffer, view: DataView, at: number, slot: number, acks: 0 | 1 | 2) => void;
}

interface Waiter {
  readonly offset: number;
  readonly wake: () => void;
}

export interface ControlAnswer {
  readonly ok: boolean;
  readonly message?: string;
  readonly logStartOffset?: number;
  readonly logEndOffset?: number;
  readonly highWatermark?: number;
  readonly sizeBytes?: number;
  readonly segmentCount?: number;
  /** 1 when the offsets are exact, 0 when they are lower bounds (a log not recovered yet). */
  readonly exact?: number;
  /** Per partition, for `open_many`. */
  readonly partitions?: readonly ControlAnswer[];
}

/** Consume answers carry at most this many records (api.md caps `limit` at 1000). */
const consumeLimitMax = 1000;
const consumeLimitDefault = 100;
const consumeMaxBytesDefault = 1024 * 1024;
const waitersPerPartitionMax = 10_000;
/** Partitions opened by one control frame: 500 answers of figures stay far below a ring frame. */
const opensPerFrameMax = 500;
/** Partitions one frame asks a worker to recover: each may take a scan, and requests wait behind the frame. */
const describesPerFrameMax = 20;
/** Keyless records go to one partition for this many records, then move on (Kafka's sticky partitioner). */
const stickyRecordsMax = 1000;

export class Acceptor {
  private readonly topics = new Map<string, TopicRoute>();
  private nextSlot = 1;
  private readonly stickyTopics = new Set<TopicRoute>();
  private stickyFlushScheduled = false;
  private readonly limits: ProduceLimits;
  private snapshotChain: Promise<void> = Promise.resolve();
  private appliedVersion = -1;
  private brokers: MetadataSnapshot['brokers'] = new Map();
  serving = false;
  /** Told of every topic opened (its partition count) or deleted (0): the group coordinator listens. */
  onTopicChange: (topic: string, partitions: number) => void = () => undefined;
  notServingReason = 'starting';

  constructor(
    private readonly config: BrokerConfig,
    private readonly store: MetadataStore,
    readonly links: readonly WorkerLink[],
    private readonly metrics: BrokerMetrics,
    private readonly offload: OffloadPool | null,
  ) {
    this.limits = {
      // Kafka's max.message.bytes: a record must fit one log batch (1 MiB, or one ring frame if smaller) with
      // room for the batch header and the record's framing.
      recordBytesMax: Math.min(config.maxRequestBytes, 1024 * 1024, links[0]!.payloadBytesMax - 64) - 1024,
      batchRecordsMax: 100_000,
      headersMax: 64,
    };
  }

  // ------------------------------------------------------------------------------------------------------
  // Routing state.

  /**
   * Opens every partition this node leads, then follows the store: every new snapshot opens the topics that
   * appeared, removes those that went away and moves partitions whose leader changed. Called once at start-up.
   */
  async openAll(): Promise<void> {
    this.store.onChange((snapshot) => {
      this.applySnapshotLater(snapshot);
    });
    await this.applySnapshotLater(this.store.snapshot());
  }

  /** Resolves once every snapshot received so far has been applied to the routes. */
  metadataSettled(): Promise<void> {
    return this.snapshotChain;
  }

  private applySnapshotLater(snapshot: MetadataSnapshot): Promise<void> {
    this.snapshotChain = this.snapshotChain.then(() => this.applySnapshot(snapshot));
    return this.snapshotChain;
  }

  /** Answers every long poll now (at shutdown): each fetches once more and replies with what it finds. */
  wakeAllWaiters(): void {
    for (const topic of this.topics.values()) {
      for (const partition of topic.partitions) {
        for (const waiter of [...partition.waiters]) {
          partition.waiters.delete(waiter);
          waiter.wake();
        }
      }
    }
  }

  topicRoute(name: string): TopicRoute | undefined {
    return this.topics.get(name);
  }

  /** The high watermark of a partition, or undefined if there is no such partition. */
  highWatermarkOf(topic: string, partition: number): number | undefined {
    return this.topics.get(topic)?.partitions[partition]?.highWatermark;
  }

  partitionFigures(): PartitionRoute[] {
    const out: PartitionRoute[] = [];
    for (const topic of this.topics.values()) out.push(...topic.partitions);
    return out;
  }

  private workerFor(topic: string, partition: number): WorkerLink {
    let hash = 0;
    for (let i = 0; i < topic.length; i++) hash = (hash * 31 + topic.charCodeAt(i)) | 0;
    return this.links[((hash >>> 0) + partition) % this.links.length]!;
  }

  private async applySnapshot(snapshot: MetadataSnapshot): Promise<void> {
    if (snapshot.version < this.appliedVersion) return;
    this.appliedVersion = snapshot.version;
    this.brokers = snapshot.brokers;
    const work: Promise<unknown>[] = [];
    for (const [name, route] of this.topics) {
      const meta = snapshot.topics.get(name);
      if (meta === undefined || meta.topicId !== route.meta.topicId) work.push(this.removeTopic(route));
    }
    await Promise.all(work);
    const opens: Promise<unknown>[] = [];
    for (const meta of snapshot.topics.values()) {
      const route = this.topics.get(meta.name);
      if (route === undefined) opens.push(this.openTopic(meta));
      else if (route.meta !== meta) opens.push(this.updateTopic(route, meta));
    }
    await Promise.all(opens);
  }

  /** Forgets a topic deleted from the metadata and has its workers delete its partitions' files. */
  private async removeTopic(route: TopicRoute): Promise<void> {
    // Routing forgets the topic first, so no new request reaches partitions that are being removed.
    if (this.topics.get(route.meta.name) === route) this.topics.delete(route.meta.name);
    this.onTopicChange(route.meta.name, 0);
    for (const partition of route.partitions) {
      partition.local = false;
      for (const waiter of partition.waiters) waiter.wake();
      partition.waiters.clear();
    }
    await Promise.all(route.partitions.map((p) => this.control(p.link, { op: 'delete', slot: p.slot })));
  }

  /** Follows leadership changes of an existing topic: a partition now led here is opened on its worker. */
  private async updateTopic(route: TopicRoute, meta: TopicMetadata): Promise<void> {
    const before = route.meta.config;
    (route as { meta: TopicMetadata }).meta = meta;
    // An altered retention reaches the partitions already open here; newly opened ones get it with `open`.
    const retentionChanged =
      before.retentionMs !== meta.config.retentionMs || before.retentionBytes !== meta.config.retentionBytes;
    const opens: PartitionRoute[] = [];
    const configured: Promise<unknown>[] = [];
    for (const p of route.partitions) {
      const assignment = meta.partitions[p.partition]!;
      p.leader = assignment.leader;
      p.leaderUrl = this.urlOf(assignment.leader);
      const local = assignment.leader === this.config.nodeId;
      if (local && !p.local) opens.push(p);
      else if (!local) p.local = false;
      else if (retentionChanged) configured.push(this.configurePartition(meta, p));
    }
    await Promise.all([this.openPartitions(meta, opens), ...configured]);
    route.sticky.setEligible(localPartitions(route.partitions));
  }

  private urlOf(brokerId: string): string {
    const b = this.brokers.get(brokerId);
    return b === undefined ? '' : `http://${b.httpHost}:${b.httpPort}`;
  }

  /**
   * Has the workers open partitions led here: one control frame per worker for up to `opensPerFrameMax` of
   * them (a topic of thousands of partitions is a handful of frames, not thousands of round trips), frames to
   * one worker in sequence so its queue stays short. A worker opens a partition lazily when it can (its
   * figures then come from the checkpoint), so this is cheap for idle partitions.
   */
  private async openPartitions(meta: TopicMetadata, routes: readonly PartitionRoute[]): Promise<void> {
    const byLink = new Map<WorkerLink, PartitionRoute[]>();
    for (const route of routes) {
      const list = byLink.get(route.link);
      if (list === undefined) byLink.set(route.link, [route]);
      else list.push(route);
    }
    await Promise.all(
      [...byLink].map(async ([link, list]) => {
        for (let i = 0; i < list.length; i += opensPerFrameMax) {
          const chunk = list.slice(i, i + opensPerFrameMax);
          const answer = await this.control(link, {
            op: 'open_many',
            partitions: chunk.map((route) => ({
              slot: route.slot,
              topic: meta.name,
              partition: route.partition,
              topicId: meta.topicId,
              segmentBytes: meta.config.segmentBytes,
              retentionMs: meta.config.retentionMs,
              retentionBytes: meta.config.retentionBytes,
            })),
          });
          assert(
            answer.ok && answer.partitions?.length === chunk.length,
            `opening partitions of ${meta.name}`,
          );
          chunk.forEach((route, j) => {
            updateFromControl(route, answer.partitions![j]!);
            route.local = true;
          });
        }
      }),
    );
  }

  private async configurePartition(meta: TopicMetadata, route: PartitionRoute): Promise<void> {
    const answer = await this.control(route.link, {
      op: 'configure',
      slot: route.slot,
      retentionMs: meta.config.retentionMs,
      retentionBytes: meta.config.retentionBytes,
    });
    if (answer.ok) updateFromControl(route, answer);
  }

  private async openTopic(meta: TopicMetadata): Promise<TopicRoute> {
    const partitions: PartitionRoute[] = [];
    for (let p = 0; p < meta.numPartitions; p++) {
      const leader = meta.partitions[p]?.leader ?? '';
      partitions.push({
        topic: meta.name,
        partition: p,
        slot: this.nextSlot++,
        link: this.workerFor(meta.name, p),
        leader,
        local: false,
        leaderUrl: this.urlOf(leader),
        logStartOffset: 0,
        logEndOffset: 0,
        highWatermark: 0,
        sizeBytes: 0,
        segmentCount: 0,
        exact: false,
        waiters: new Set(),
      });
    }
    await this.openPartitions(
      meta,
      partitions.filter((p) => p.leader === this.config.nodeId),
    );
    const sticky = new StickyPartitioner(
      meta.numPartitions,
      stickyRecordsMax,
      Math.floor(Math.random() * meta.numPartitions),
    );
    sticky.setEligible(localPartitions(partitions));
    const route: TopicRoute = {
      meta,
      partitions,
      counters: this.metrics.topicCounters(meta.name),
      limits: {
        ...this.limits,
        recordBytesMax: Math.min(this.limits.recordBytesMax, meta.config.segmentBytes - 1024),
      },
      sticky,
    };
    this.topics.set(meta.name, route);
    this.onTopicChange(meta.name, meta.numPartitions);
    return route;
  }

  /**
   * Makes the figures of `partitions` exact: the workers open (recover) those whose logs they have not opened
   * since a crash and answer their offsets. Up to `describesPerFrameMax` per control frame, frames to one
   * worker in sequence, so a worker never stalls long on recovery between requests.
   */
  async ensureExact(partitions: readonly PartitionRoute[]): Promise<void> {
    const byLink = new Map<WorkerLink, PartitionRoute[]>();
    for (const route of partitions) {
      if (route.exact || !route.local) continue;
      const list = byLink.get(route.link);
      if (list === undefined) byLink.set(route.link, [route]);
      else list.push(route);
    }
    await Promise.all(
      [...byLink].map(async ([link, list]) => {
        for (let i = 0; i < list.length; i += describesPerFrameMax) {
          const chunk = list.slice(i, i + describesPerFrameMax);
          const answer = await this.control(link, { op: 'describe_many', slots: chunk.map((r) => r.slot) });
          chunk.forEach((route, j) => {
            const figures = answer.partitions?.[j];
            if (figures?.ok === true) updateFromControl(route, figures);
          });
        }
      }),
    );
  }

  /** Every local partition whose figures are lower bounds, made exact in the background (after a crash). */
  settleFigures(): Promise<number> {
    const pending: PartitionRoute[] = [];
    for (const topic of this.topics.values()) {
      for (const p of topic.partitions) if (p.local && !p.exact) pending.push(p);
    }
    return this.ensureExact(pending).then(() => pending.length);
  }

  /** Sends a JSON control request to a worker and resolves with its JSON answer. */
  control(link: WorkerLink, request: Record<string, unknown>): Promise<ControlAnswer> {
    const payload = Buffer.from(JSON.stringify(request), 'utf8');
    return new Promise((resolve, reject) => {
      const outcome = link.send(
        FrameKind.Control,
        payload.byteLength,
        (bytes, _view, at) => {
          bytes.set(payload, at);
        },
        (_kind, _view, bytes, at, length) => {
          resolve(JSON.parse(bytes.toString('utf8', at, at + length)) as ControlAnswer);
        },
      );
      if (outcome === 'overloaded' || outcome === 'too_large') {
        reject(new Error(`control request to worker ${link.workerIndex} refused: ${outcome}`));
      }
    });
  }

  // ------------------------------------------------------------------------------------------------------
  // Topics.

  createTopic(request: HttpRequest, reply: Reply, nameFromQuery = false): void {
    let name = request.params[0] ?? '';
    if (nameFromQuery) name = new URLSearchParams(request.query).get('name') ?? '';
    const problem = validateTopicName(name);
    if (problem !== null) return reply.error('invalid_name', problem);
    let json: unknown = {};
    const text = request.body?.toString('utf8') ?? '';
    if (text.trim().length > 0) {
      const parsed = parseJsonBody(text);
      if (!parsed.ok) return reply.error('bad_request', parsed.message);
      json = parsed.value;
    }
    const parsed = parseTopicCreate(name, json, {
      numPartitions: this.config.defaultNumPartitions,
      retentionMs: this.config.retentionMs,
      retentionBytes: this.config.retentionBytes,
      segmentBytes: this.config.segmentBytes,
      partitionsMax: 4096,
      liveBrokers: Math.max(1, [...this.brokers.values()].filter((b) => !b.fenced).length),
    });
    if (parsed.kind === 'error') return reply.error(parsed.error, parsed.message);
    if (parsed.request.replicationFactor > 1) {
      // Placing replicas that nothing copies to would report durability the cluster does not have.
      return reply.error(
        'bad_request',
        `topic '${name}': replication_factor ${parsed.request.replicationFactor} needs partition replication, which this broker does not provide yet; use 1`,
      );
    }
    if (!this.serving)
      return reply.error('overloaded', `the broker is not serving: ${this.notServingReason}`);
    const crowded = this.partitionLimitProblem(
      name,
      parsed.request.numPartitions,
      parsed.request.replicationFactor,
    );
    if (crowded !== null) return reply.error('too_many_partitions', crowded);
    this.store.createTopic(parsed.request, Date.now()).then(
      async (result) => {
        if (result.kind === 'exists_different') {
          return reply.error('topic_exists', `topic '${name}' already exists with other settings`);
        }
        // The store delivers the snapshot holding the topic before this answer: wait until it is routed.
        await this.metadataSettled();
        const route = this.topics.get(name);
        if (route === undefined || route.meta.topicId !== result.topic.topicId) {
          return reply.error('no_leader', `topic '${name}' changed while it was being created; retry`);
        }
        reply.json(result.kind === 'created' ? 201 : 200, JSON.stringify(this.describeTopic(route, false)));
      },
      (error: unknown) => this.replyStoreError(reply, 'could not record the topic', error),
    );
  }

  /**
   * Refuses up front a topic that would give a broker more partitions than it serves (like Redpanda's
   * topic_partitions_per_shard): --max-partitions-per-thread x --threads of this broker, assumed alike on every
   * broker. Placement spreads replicas evenly over the live brokers, so a broker gets at most
   * ceil(partitions x replication factor / live brokers) of the new ones; the check uses that and the replicas
   * each broker holds now. Null when it fits (or the topic exists: creating it again is answered by the store).
   */
  private partitionLimitProblem(
    name: string,
    numPartitions: number,
    replicationFactor: number,
  ): string | null {
    if (this.topics.has(name)) return null;
    const limit = this.config.maxPartitionsPerThread * this.config.threads;
    const live = [...this.brokers.entries()].filter(([, b]) => !b.fenced).map(([id]) => id);
    const brokers = live.length > 0 ? live : [this.config.nodeId];
    const share = Math.ceil((numPartitions * replicationFactor) / brokers.length);
    for (const broker of brokers) {
      let held = 0;
      for (const topic of this.topics.values()) {
        for (const p of topic.meta.partitions) if (p.replicas.includes(broker)) held++;
      }
      if (held + share > limit) {
        return `topic '${name}' would put ${held + share} partitions on broker ${broker}, which serves at most ${limit} (--max-partitions-per-thread ${this.config.maxPartitionsPerThread} x --threads ${this.config.threads}); use fewer partitions, delete topics, or add brokers`;
      }
    }
    return null;
  }

  listTopics(_request: HttpRequest, reply: Reply): void {
    const names = [...this.topics.keys()].sort();
    reply.json(200, JSON.stringify({ topics: names, count: names.length }));
  }

  getTopic(request: HttpRequest, reply: Reply): void {
    const route = this.topicOrReply(request.params[0] ?? '', reply);
    if (route === null) return;
    this.ensureExact(route.partitions).then(
      () => reply.json(200, JSON.stringify(this.describeTopic(route, true))),
      (error: unknown) => reply.error('overloaded', (error as Error).message),
    );
  }

  deleteTopic(request: HttpRequest, reply: Reply): void {
    const name = request.params[0] ?? '';
    const route = this.topicOrReply(name, reply);
    if (route === null) return;
    if (!this.serving)
      return reply.error('overloaded', `the broker is not serving: ${this.notServingReason}`);
    this.store.deleteTopic(name).then(
      async (result) => {
        if (result.kind === 'unknown') return reply.error('unknown_topic', `topic '${name}' does not exist`);
        // The store delivers the snapshot without the topic first; its removal is done once that is applied.
        await this.metadataSettled();
        reply.json(200, JSON.stringify({ topic: name, deleted: true }));
      },
      (error: unknown) => this.replyStoreError(reply, 'could not delete the topic', error),
    );
  }

  private replyStoreError(reply: Reply, what: string, error: unknown): void {
    const failure = (error as { failure?: { error: string; message: string; indefinite: boolean } }).failure;
    if (failure?.error === 'bad_request') return reply.error('bad_request', failure.message);
    const indefinite = failure?.indefinite ?? false;
    reply.error('no_leader', `${what}: ${(error as Error).message}`, { indefinite });
  }

  private describeTopic(route: TopicRoute, withOffsets: boolean): Record<string, unknown> {
    const meta = route.meta;
    return {
      topic: meta.name,
      topic_id: meta.topicId,
      num_partitions: meta.numPartitions,
      replication_factor: meta.replicationFactor,
      rack_awareness: meta.rackAwareness,
      config: {
        retention_ms: meta.config.retentionMs,
        retention_bytes: meta.config.retentionBytes,
        segment_bytes: meta.config.segmentBytes,
        min_insync_replicas: meta.config.minInsyncReplicas,
        cleanup_policy: meta.config.cleanupPolicy,
      },
      partitions: meta.partitions.map((p) => {
        const base = {
          partition: p.partition,
          leader: p.leader,
          leader_epoch: p.leaderEpoch,
          replicas: p.replicas,
          isr: p.isr,
        };
        if (!withOffsets) return base;
        const live = route.partitions[p.partition]!;
        // Only the leader knows a partition's offsets (until replication): elsewhere they are unknown, not 0.
        if (!live.local) return { ...base, log_start_offset: null, high_watermark: null };
        return { ...base, log_start_offset: live.logStartOffset, high_watermark: live.highWatermark };
      }),
    };
  }

  private topicOrReply(name: string, reply: Reply): TopicRoute | null {
    const problem = validateTopicName(name);
    if (problem !== null) {
      reply.error('invalid_name', problem);
      return null;
    }
    const route = this.topics.get(name);
    if (route === undefined) {
      reply.error('unknown_topic', `topic '${name}' does not exist; create it with POST /topics/${name}`);
      return null;
    }
    return route;
  }

  private partitionOrReply(topic: TopicRoute, text: string, reply: Reply): PartitionRoute | null {
    const partition = parseIntegerParam('partition', text, 0, 0x7fffffff);
    if (isParamError(partition)) {
      reply.error(partition.error, partition.message);
      return null;
    }
    const route = topic.partitions[partition];
    if (route === undefined) {
      reply.error(
        'unknown_partition',
        `topic '${topic.meta.name}' has partitions 0..${topic.meta.numPartitions - 1}; there is no partition ${partition}`,
      );
      return null;
    }
    return route;
  }

  partitionInfo(request: HttpRequest, reply: Reply): void {
    const topic = this.topicOrReply(request.params[0] ?? '', reply);
    if (topic === null) return;
    const route = this.partitionOrReply(topic, request.params[1] ?? '', reply);
    if (route === null) return;
    const meta = topic.meta.partitions[route.partition]!;
    if (!route.local) return reply.error('no_leader', notLeaderMessage(route));
    this.control(route.link, { op: 'describe', slot: route.slot }).then(
      (answer) => {
        if (!answer.ok) return reply.error('unknown_partition', answer.message ?? 'partition is gone');
        updateFromControl(route, answer);
        reply.json(
          200,
          JSON.stringify({
            topic: topic.meta.name,
            partition: route.partition,
            leader: meta.leader,
            leader_epoch: meta.leaderEpoch,
            replicas: meta.replicas,
            isr: meta.isr,
            log_start_offset: route.logStartOffset,
            log_end_offset: route.logEndOffset,
            high_watermark: route.highWatermark,
            size_bytes: route.sizeBytes,
            segment_count: route.segmentCount,
          }),
        );
      },
      (error: unknown) => reply.error('overloaded', (error as Error).message),
    );
  }

  // ------------------------------------------------------------------------------------------------------
  // Produce.

  produce(request: HttpRequest, reply: Reply, batch: boolean): void {
    const topic = this.topicOrReply(request.params[0] ?? '', reply);
    if (topic === null) return;
    const acks = parseAcks(request.query);
    if (typeof acks === 'string') return reply.error('bad_parameter', acks);
    if (!this.serving)
      return reply.error('overloaded', `the broker is not serving: ${this.notServingReason}`);
    const body = request.body!;
    const nowMs = Date.now();
    if (body.byteLength >= this.config.largeBodyBytes && this.offload !== null) {
      // Large bodies are parsed, validated and encoded on a piscina thread; the body is copied because the
      // HTTP layer may still own its memory.
      const task: LargeProduceTask = {
        body: new Uint8Array(body),
        batch,
        limits: topic.limits,
        nowMs,
        numPartitions: topic.meta.numPartitions,
        stickyStart: topic.sticky.peek(),
        stickyRecordsMax: stickyRecordsMax,
        stickyEligible: topic.sticky.eligiblePartitions(),
        payloadBytesMax: this.links[0]!.payloadBytesMax,
      };
      topic.sticky.nextBatch();
      this.metrics.offloadedRequests.inc();
      this.offload.planProduce(task).then(
        (plan) => {
          if (plan.kind === 'error') return reply.error(plan.error, plan.message);
          if (!this.topics.has(topic.meta.name))
            return reply.error('unknown_topic', `topic '${topic.meta.name}' was deleted`);
          const groups: SendGroup[] = plan.groups.map((g) => ({
            partition: g.partition,
            indexes: g.indexes,
            payloadBytes: g.length,
            encode: (bytes, view, at, slot, groupAcks) => {
              bytes.set(plan.payloads.subarray(g.at, g.at + g.length), at);
              view.setUint32(at, slot, true);
              view.setUint8(at + 4, groupAcks);
            },
          }));
          this.sendGroups(
            topic,
            groups,
            acks,
            reply,
            batch,
            plan.recordCount,
            plan.recordBytes,
            plan.firstTimestampMs,
          );
        },
        (error: unknown) =>
          reply.error('overloaded', `large request could not be parsed now: ${(error as Error).message}`),
      );
      return;
    }
    const parsedJson = parseJsonBody(body.toString('utf8'));
    if (!parsedJson.ok) return reply.error('bad_request', parsedJson.message);
    const parsed: ProduceParse = batch
      ? parseBatchProduce(parsedJson.value, topic.limits, nowMs)
      : parseSingleProduce(parsedJson.value, topic.limits, nowMs);
    if (parsed.kind === 'error') return reply.error(parsed.error, parsed.message);
    const records = parsed.records;
    const grouped = groupByPartition(records, topic.meta.numPartitions, topic.sticky);
    this.endStickyBatchLater(topic);
    if (grouped.kind === 'unknown_partition') {
      return reply.error(
        'unknown_partition',
        `${batch ? `records[${grouped.recordIndex}]: ` : ''}topic '${topic.meta.name}' has partitions 0..${topic.meta.numPartitions - 1}; there is no partition ${grouped.partition}`,
      );
    }
    let recordBytes = 0;
    for (const record of records) recordBytes += fieldLength(record.key) + fieldLength(record.value);
    const payloadBytesMax = this.links[0]!.payloadBytesMax;
    const groups: SendGroup[] = grouped.groups
      .flatMap((whole) => chunkGroup(whole, payloadBytesMax))
      .map((g) => ({
        partition: g.partition,
        indexes: g.indexes,
        payloadBytes: produceRequestBytes(g.records),
        encode: (bytes, view, at, slot, groupAcks) => {
          encodeProduceRequest(bytes, view, at, slot, groupAcks, g.records);
        },
      }));
    this.sendGroups(topic, groups, acks, reply, batch, records.length, recordBytes, records[0]!.timestampMs);
  }

  /**
   * Keyless records of one event-loop turn share a partition (they reach the worker in one ring batch, so one
   * write and one fsync cover them all); the next turn moves on, which spreads load over partitions and workers.
   */
  endStickyBatchLater(topic: TopicRoute): void {
    this.stickyTopics.add(topic);
    if (this.stickyFlushScheduled) return;
    this.stickyFlushScheduled = true;
    setImmediate(() => {
      this.stickyFlushScheduled = false;
      for (const touched of this.stickyTopics) touched.sticky.nextBatch();
      this.stickyTopics.clear();
    });
  }

  /** Sends one produce frame per partition group and answers once every group is answered. */
  private sendGroups(
    topic: TopicRoute,
    groups: readonly SendGroup[],
    acks: 0 | 1 | 2,
    reply: Reply,
    batch: boolean,
    recordCount: number,
    recordBytes: number,
    firstTimestampMs: number,
  ): void {
    this.appendGroups(topic, groups, acks, recordCount, recordBytes, (offsets, failure, allFailed) => {
      if (!batch) {
        if (failure !== null) {
          return reply.error(failure.name, failure.message, { indefinite: failure.indefinite });
        }
        const only = offsets[0]!;
        return reply.json(
          acks === 0 ? 202 : 201,
          `{"topic":${JSON.stringify(topic.meta.name)},"partition":${only.partition},"offset":${only.offset},"timestamp":${firstTimestampMs}}`,
        );
      }
      // Every record failed the same way: answer with that error; otherwise report per record (Confluent v2).
      if (failure !== null && allFailed) {
        return reply.error(failure.name, failure.message, { indefinite: failure.indefinite });
      }
      reply.json(acks === 0 ? 202 : 200, JSON.stringify({ offsets }));
    });
  }

  /**
   * Sends one produce frame per partition group; `done` runs once every group is answered (at once for
   * acks=0) with an offset or error per record in request order. Shared by HTTP and WebSocket produce.
   */
  appendGroups(
    topic: TopicRoute,
    groups: readonly SendGroup[],
    acks: 0 | 1 | 2,
    recordCount: number,
    recordBytes: number,
    done: (offsets: RecordOffset[], firstFailure: ProduceFailure | null, allFailed: boolean) => void,
  ): void {
    const offsets: RecordOffset[] = new Array(recordCount);
    let remaining = groups.length;
    let failures = 0;
    let firstFailure: ProduceFailure | null = null;
    const finish = (): void => done(offsets, firstFailure, failures === groups.length);
    topic.counters.producedRecords.inc(recordCount);
    topic.counters.producedBytes.inc(recordBytes);

    for (const group of groups) {
      const partition = topic.partitions[group.partition]!;
      const fail = (name: ErrorName, message: string, indefinite: boolean): void => {
        firstFailure ??= { name, message, indefinite };
        failures++;
        for (const i of group.indexes) {
          offsets[i] = {
            partition: group.partition,
            offset: null,
            error_code: errors[name].code,
            error: message,
          };
        }
      };
      if (!partition.local) {
        fail('no_leader', notLeaderMessage(partition), false);
        if (--remaining === 0 && acks !== 0) finish();
        continue;
      }
      const outcome: SendOutcome = partition.link.send(
        FrameKind.Produce,
        group.payloadBytes,
        (bytes, view, at) => group.encode(bytes, view, at, partition.slot, acks),
        (_kind, view, _bytes, at) => {
          const status = view.getUint8(at) as WireStatus;
          if (status === WireStatus.Ok) {
            const baseOffset = view.getFloat64(at + 8, true);
            partition.logEndOffset = view.getFloat64(at + 16, true);
            this.advanceHighWatermark(partition, view.getFloat64(at + 24, true));
            for (let k = 0; k < group.indexes.length; k++) {
              offsets[group.indexes[k]!] = {
                partition: group.partition,
                offset: acks === 0 ? null : baseOffset + k,
                error_code: null,
                error: null,
              };
            }
          } else {
            const [name, message, indefinite] = produceFailure(
              status,
              topic.meta.name,
              group.partition,
              this.config.dataDir,
            );
            fail(name, message, indefinite);
          }
          if (--remaining === 0 && acks !== 0) finish();
        },
      );
      if (outcome === 'too_large') {
        fail(
          'payload_too_large',
          `the records for partition ${group.partition} exceed one request frame (${partition.link.payloadBytesMax} bytes); split the request or raise --ring-bytes`,
          false,
        );
        if (--remaining === 0 && acks !== 0) finish();
      } else if (outcome === 'overloaded') {
        fail('overloaded', `worker ${partition.link.workerIndex} has too many requests queued; retry`, false);
        if (--remaining === 0 && acks !== 0) finish();
      }
    }
    if (acks === 0) {
      // acks=0: answer once the records are handed to the worker; offsets are not known (Kafka returns -1).
      for (const group of groups) {
        for (const i of group.indexes) {
          offsets[i] ??= { partition: group.partition, offset: null, error_code: null, error: null };
        }
      }
      finish();
    }
  }

  private advanceHighWatermark(partition: PartitionRoute, highWatermark: number): void {
    if (highWatermark <= partition.highWatermark) return;
    partition.highWatermark = highWatermark;
    if (partition.waiters.size === 0) return;
    for (const waiter of partition.waiters) {
      if (waiter.offset < highWatermark) {
        partition.waiters.delete(waiter);
        waiter.wake();
      }
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // Consume.

  consume(request: HttpRequest, reply: Reply): void {
    const topic = this.topicOrReply(request.params[0] ?? '', reply);
    if (topic === null) return;
    const partition = this.partitionOrReply(topic, request.params[1] ?? '', reply);
    if (partition === null) return;
    if (!partition.local) return reply.error('no_leader', notLeaderMessage(partition));
    const query = new URLSearchParams(request.query);
    const offsetText = query.get('offset') ?? 'earliest';
    let offset = -1;
    if (offsetText !== 'earliest' && offsetText !== 'latest') {
      const parsed = parseIntegerParam('offset', offsetText, 0, Number.MAX_SAFE_INTEGER);
      if (isParamError(parsed))
        return reply.error(parsed.error, `${parsed.message} (or 'earliest' / 'latest')`);
      offset = parsed;
    }
    const limitAsked = parseOptionalIntegerParam(
      'limit',
      query.get('limit') ?? undefined,
      1,
      Number.MAX_SAFE_INTEGER,
      consumeLimitDefault,
    );
    if (isParamError(limitAsked)) return reply.error(limitAsked.error, limitAsked.message);
    // api.md: limit is capped at 1000, so a larger one is served as 1000 rather than refused.
    const limit = Math.min(limitAsked, consumeLimitMax);
    const maxBytesCap = partition.link.payloadBytesMax - fetchResultHeaderBytes;
    const maxBytes = parseOptionalIntegerParam(
      'max_bytes',
      query.get('max_bytes') ?? undefined,
      1,
      maxBytesCap,
      Math.min(consumeMaxBytesDefault, maxBytesCap),
    );
    if (isParamError(maxBytes)) return reply.error(maxBytes.error, maxBytes.message);
    const waitMs = parseOptionalIntegerParam(
      'wait_ms',
      query.get('wait_ms') ?? undefined,
      0,
      this.config.maxWaitMs,
      0,
    );
    if (isParamError(waitMs)) return reply.error(waitMs.error, waitMs.message);
    const isolation = query.get('isolation') ?? 'read_uncommitted';
    if (isolation !== 'read_uncommitted' && isolation !== 'read_committed') {
      return reply.error(
        'bad_parameter',
        `isolation must be read_uncommitted or read_committed, got '${isolation}'`,
      );
    }
    const valueFormat = query.get('value_format') ?? 'string';
    if (valueFormat !== 'string' && valueFormat !== 'base64') {
      return reply.error('bad_parameter', `value_format must be 'string' or 'base64', got '${valueFormat}'`);
    }
    const deadlineMs = performance.now() + waitMs;
    const start = (): void => {
      if (offsetText === 'earliest') offset = partition.logStartOffset;
      else if (offsetText === 'latest') offset = partition.highWatermark;
      this.fetch(topic, partition, offset, limit, maxBytes, valueFormat === 'base64', deadlineMs, reply);
    };
    // 'earliest' and 'latest' need the exact offsets, which a partition not recovered since a crash lacks.
    if (offset >= 0 || partition.exact) return start();
    this.ensureExact([partition]).then(start, (error: unknown) =>
      reply.error('overloaded', (error as Error).message),
    );
  }

  /**
   * Reads whole batches from `offset` (up to the high watermark) on the partition's worker. `onResult` gets the
   * worker's status and, for Ok, the batch bytes, valid only during the call. Returns false when the worker's
   * queue is full (nothing was sent).
   */
  fetchBatch(
    partition: PartitionRoute,
    offset: number,
    maxBytes: number,
    onResult: (
      status: WireStatus,
      batches: Uint8Array,
      highWatermark: number,
      logStartOffset: number,
    ) => void,
  ): boolean {
    const outcome = partition.link.send(
      FrameKind.Fetch,
      fetchRequestBytes,
      (_bytes, view, at) => writeFetchRequest(view, at, partition.slot, offset, maxBytes, -1),
      (_kind, view, bytes, at, length) => {
        const status = view.getUint8(at) as WireStatus;
        const logStartOffset = view.getFloat64(at + 8, true);
        const highWatermark = view.getFloat64(at + 16, true);
        if (status !== WireStatus.UnknownPartition) {
          partition.logStartOffset = logStartOffset;
          partition.logEndOffset = view.getFloat64(at + 24, true);
          this.advanceHighWatermark(partition, highWatermark);
        }
        onResult(
          status,
          bytes.subarray(at + fetchResultHeaderBytes, at + length),
          highWatermark,
          logStartOffset,
        );
      },
    );
    assert(outcome !== 'too_large', 'a fetch request does not fit a ring frame');
    return outcome !== 'overloaded';
  }

  /**
   * Calls `wake` once the partition's high watermark passes `offset` (the append that moves it, seen in its
   * produce answer), or when the topic is deleted. Returns a function that cancels the wait.
   */
  whenDataPast(partition: PartitionRoute, offset: number, wake: () => void): () => void {
    const waiter: Waiter = { offset, wake };
    if (offset < partition.highWatermark) {
      queueMicrotask(wake);
      return () => undefined;
    }
    partition.waiters.add(waiter);
    return () => {
      partition.waiters.delete(waiter);
    };
  }

  private fetch(
    topic: TopicRoute,
    partition: PartitionRoute,
    offset: number,
    limit: number,
    maxBytes: number,
    base64: boolean,
    deadlineMs: number,
    reply: Reply,
  ): void {
    if (!reply.open) return;
    const sent = this.fetchBatch(
      partition,
      offset,
      maxBytes,
      (status, batches, highWatermark, logStartOffset) => {
        if (status === WireStatus.UnknownPartition) {
          return reply.error('unknown_topic', `topic '${topic.meta.name}' was deleted`);
        }
        if (status === WireStatus.OffsetOutOfRange) {
          return reply.error(
            'offset_out_of_range',
            `offset ${offset} is outside the log of ${topic.meta.name}-${partition.partition}: valid offsets are ${logStartOffset}..${highWatermark}`,
          );
        }
        if (status !== WireStatus.Ok) {
          const [name, message] = fetchFailure(status, batches, topic.meta.name, partition.partition);
          return reply.error(name, message);
        }
        if (batches.byteLength === 0 && performance.now() < deadlineMs && this.serving) {
          this.waitForData(topic, partition, offset, limit, maxBytes, base64, deadlineMs, reply);
          return;
        }
        this.answerFetch(topic, partition, offset, limit, base64, batches, highWatermark, reply);
      },
    );
    if (!sent) reply.error('overloaded', 'the partition worker has too many requests queued');
  }

  private waitForData(
    topic: TopicRoute,
    partition: PartitionRoute,
    offset: number,
    limit: number,
    maxBytes: number,
    base64: boolean,
    deadlineMs: number,
    reply: Reply,
  ): void {
    if (partition.waiters.size >= waitersPerPartitionMax) {
      return this.answerFetch(
        topic,
        partition,
        offset,
        limit,
        base64,
        Buffer.alloc(0),
        partition.highWatermark,
        reply,
      );
    }
    let timer: NodeJS.Timeout | null = null;
    const waiter: Waiter = {
      offset,
      wake: () => {
        if (timer !== null) clearTimeout(timer);
        partition.waiters.delete(waiter);
        // The deadline is past or data arrived: fetch once more, and answer whatever it returns.
        this.fetch(topic, partition, offset, limit, maxBytes, base64, 0, reply);
      },
    };
    partition.waiters.add(waiter);
    timer = setTimeout(waiter.wake, Math.max(1, deadlineMs - performance.now()));
  }

  private answerFetch(
    topic: TopicRoute,
    partition: PartitionRoute,
    offset: number,
    limit: number,
    base64: boolean,
    batches: Uint8Array,
    highWatermark: number,
    reply: Reply,
  ): void {
    const parts: string[] = [];
    let count = 0;
    let nextOffset = offset;
    const topicJson = JSON.stringify(topic.meta.name);
    const prefix = `{"topic":${topicJson},"partition":${partition.partition},`;
    const result = forEachRecord(
      batches,
      (record: DecodedRecord) => {
        if (count >= limit) return;
        parts.push(`${prefix}${recordFieldsJson(record, base64)}`);
        count++;
        nextOffset = record.offset + 1;
      },
      { fromOffset: offset, toOffsetExclusive: highWatermark },
    );
    if (result.kind === 'corrupt' && count === 0) {
      // The worker checked every batch's CRC; records whose framing still fails are damage all the same.
      return reply.error(
        'corrupt_data',
        `a stored batch of ${topic.meta.name}-${partition.partition} at offset ${nextOffset} cannot be decoded (${result.reason}); it is not served`,
      );
    }
    topic.counters.consumedRecords.inc(count);
    topic.counters.consumedBytes.inc(batches.byteLength);
    reply.json(
      200,
      `{"messages":[${parts.join(',')}],"count":${count},"next_offset":${nextOffset},"high_watermark":${highWatermark}}`,
    );
  }
}

function localPartitions(partitions: readonly PartitionRoute[]): number[] {
  return partitions.filter((p) => p.local).map((p) => p.partition);
}

/** The answer for a partition this node does not lead: where its leader is, so the client can go there. */
export function notLeaderMessage(partition: PartitionRoute): string {
  const where =
    partition.leader === ''
      ? 'has no leader right now; retry'
      : `is led by broker ${partition.leader}${partition.leaderUrl === '' ? '' : ` at ${partition.leaderUrl}`}; send requests for it there`;
  return `partition ${partition.partition} of topic '${partition.topic}' ${where}`;
}

function updateFromControl(route: PartitionRoute, answer: ControlAnswer): void {
  if (answer.logStartOffset !== undefined) route.logStartOffset = answer.logStartOffset;
  if (answer.logEndOffset !== undefined) route.logEndOffset = answer.logEndOffset;
  if (answer.highWatermark !== undefined && answer.highWatermark > route.highWatermark) {
    route.highWatermark = answer.highWatermark;
  }
  if (answer.sizeBytes !== undefined) route.sizeBytes = answer.sizeBytes;
  if (answer.segmentCount !== undefined) route.segmentCount = answer.segmentCount;
  if (answer.exact !== undefined) route.exact = answer.exact === 1;
}

function parseAcks(query: string): 0 | 1 | 2 | string {
  if (query === '') return 2;
  const value = new URLSearchParams(query).get('acks');
  if (value === null || value === 'all' || value === '-1') return 2;
  if (value === '1') return 1;
  if (value === '0') return 0;
  return `acks must be 0, 1, all or -1, got '${value}'`;
}

function produceFailure(
  status: WireStatus,
  topic: string,
  partition: number,
  dataDir: string,
): [ErrorName, string, boolean] {
  switch (status) {
    case WireStatus.StorageFull:
      return [
        'storage_full',
        `the disk holding ${topic}-${partition} (data dir ${dataDir}) is full or over quota: nothing was written; writes resume by themselves once space is freed`,
        false,
      ];
    case WireStatus.StorageUnavailable:
      return [
        'storage_unavailable',
        `the storage of ${topic}-${partition} (data dir ${dataDir}) failed with an I/O error and is being repaired: nothing was written; the broker log has the error`,
        false,
      ];
    case WireStatus.UnknownPartition:
      return ['unknown_topic', `topic '${topic}' was deleted`, false];
    case WireStatus.TooLarge:
      return [
        'payload_too_large',
        `the records exceed the log's batch limit of ${topic}-${partition}`,
        false,
      ];
    case WireStatus.StorageError:
      return [
        'storage_unavailable',
        `the write to ${topic}-${partition} (data dir ${dataDir}) failed and could not be undone either: the outcome is unknown; the partition is being repaired`,
        true,
      ];
    case WireStatus.ShuttingDown:
      return ['overloaded', 'the broker is shutting down; retry on another node', false];
    default:
      return ['internal', `unexpected worker status ${status}`, true];
  }
}

/** The error answer for a fetch the worker refused (any status but Ok and OffsetOutOfRange). */
export function fetchFailure(
  status: WireStatus,
  payload: Uint8Array,
  topic: string,
  partition: number,
): [ErrorName, string] {
  switch (status) {
    case WireStatus.UnknownPartition:
      return ['unknown_topic', `topic '${topic}' was deleted`];
    case WireStatus.CorruptData: {
      const [first, end] = readFetchDetail(payload);
      return ['corrupt_data', corruptRangeMessage(topic, partition, first, end)];
    }
    case WireStatus.TooLarge: {
      const [baseOffset, batchBytes] = readFetchDetail(payload);
      return [
        'payload_too_large',
        `the stored batch at offset ${baseOffset} of ${topic}-${partition} is ${batchBytes} bytes, more than one response frame holds; restart the broker with a larger --ring-bytes`,
      ];
    }
    case WireStatus.StorageUnavailable:
      return [
        'storage_unavailable',
        `the storage of ${topic}-${partition} failed and is being repaired; retry shortly`,
      ];
    default:
      return ['internal', `unexpected worker status ${status} for a fetch of ${topic}-${partition}`];
  }
}

/** What a client is told about a damaged range: which offsets, and how to step over them. */
export function corruptRangeMessage(topic: string, partition: number, first: number, end: number): string {
  return `offsets ${first}..${end - 1} of topic '${topic}' partition ${partition} are damaged on disk and cannot be served; consume from offset ${end} to skip them (the broker log names the segment file)`;
}

function fieldLength(field: string | Uint8Array | null): number {
  if (field === null) return 0;
  return typeof field === 'string' ? field.length : field.byteLength;
}
