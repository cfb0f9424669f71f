// The acceptor's HTTP handlers for topics, produce and consume. It validates every request, picks the partition
// (Kafka's murmur2 for keys, sticky round-robin without one), encodes produce, fetch and describe messages and
// hands them to the partition router (router.ts), which delivers them to the partition's leader: the local
// worker's ring, or the leader's worker on another node over the data link. Any node therefore serves any
// partition. A long poll waits where the data is (the leader's worker holds the fetch until the high watermark
// passes it), so a forwarded one costs no extra round trips. It never touches a file.
//
// Outcomes: a refusal the worker answers is definite (nothing written) unless its status says otherwise; a
// forwarded request whose connection died, or that timed out, is indefinite (503 with `"indefinite": true`):
// the broker never retries a produce on its own then. It does retry, at once and a few times, a request the
// leader's worker answered "unknown partition" while this node's metadata has the partition (the worker had
// not applied the metadata that created it yet): nothing was done, so the retry is safe.
// Runs on the acceptor (main) thread only.
import type { BrokerConfig } from '../config/config.js';
import { assert } from '../core/assert.js';
import { type ErrorName, errors } from '../core/errors.js';
import { rewriteBatchCrcs } from '../core/kafka/crc32c.js';
import { type BodyBatch, checkBatchBody, describeCheckedBody } from '../core/log/batch-body.js';
import { type DecodedRecord, forEachRecord } from '../core/log/record-batch.js';
import { validateTopicName } from '../core/names.js';
import { AnswerWriter } from '../http/answer-bytes.js';
import { BufferPool } from '../http/buffer-pool.js';
import type { OffloadPool } from '../http/offload-pool.js';
import { isParamError, parseAcks, parseConsumeQuery, parseIntegerParam } from '../http/params.js';
import {
  bodyFormatOf,
  type ParsedRecord,
  type ProduceLimits,
  type ProduceParse,
  parseBatchProduce,
  parseJsonBody,
  parseNdjsonProduce,
  parseSingleProduce,
} from '../http/produce-body.js';
import { chunkGroup, groupByPartition, placeOne } from '../http/produce-groups.js';
import type { LargeProduceTask } from '../http/produce-offload.js';
import { recordFieldsJson } from '../http/record-json.js';
import type { HttpRequest, Reply } from '../http/server.js';
import { parseTopicCreate } from '../http/topic-body.js';
import { LinkFailure, LinkFailureKind, linkFailureIndefinite } from '../link/data-link.js';
import { type ControlAnswer, type ControlRequest, decodeJson, encodeJson } from '../messages/control.js';
import { DESCRIBE_REQUEST_BYTES, type DescribeAnswer, readDescribeAnswer } from '../messages/describe.js';
import {
  FETCH_ANSWER_HEADER_BYTES,
  FETCH_EARLIEST,
  FETCH_LATEST,
  FETCH_REQUEST_BYTES,
  type FetchAnswerHeader,
  fetchRecordsBound,
  readFetchAnswerHeader,
  writeFetchRequest,
} from '../messages/fetch.js';
import { MessageKind } from '../messages/kinds.js';
import {
  Acks,
  emptyProduceAnswer,
  encodeBatchProduceRequest,
  encodeProduceRequest,
  PRODUCE_HEADER_BYTES,
  type ProduceAnswer,
  type ProduceHeader,
  type ProducerFields,
  produceRequestBytes,
  readProduceAnswer,
} from '../messages/produce.js';
import { Status } from '../messages/status.js';
import type { MetadataStore } from '../metadata/types.js';
import { crc32 } from '../storage/crc.js';
import type { BrokerMetrics } from './metrics.js';
import {
  linkFailureMessage,
  type PartitionRoute,
  type PartitionRouter,
  STICKY_RECORDS_MAX,
  type TopicRoute,
} from './router.js';
import { fetchStatusAnswer, produceStatusAnswer } from './status-answer.js';
import type { PayloadEncoder, ResponseHandler, WorkerLink } from './worker-link.js';

export type { PartitionRoute, TopicRoute } from './router.js';

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

/**
 * Told the outcome of a single-record produce sent with `Acceptor.produceSingle` (a WebSocket produce session);
 * `context` is what the caller passed, handed back so that no closure is made per record.
 */
export interface SingleProduceTarget {
  produced(partition: number, offset: number, context: unknown): void;
  produceFailed(failure: ProduceFailure, context: unknown): void;
}

/** One partition's share of a produce request, ready to be encoded into a produce message. */
export interface SendGroup {
  readonly partition: number;
  readonly indexes: ArrayLike<number> & Iterable<number>;
  readonly payloadBytes: number;
  readonly encode: (bytes: Buffer, view: DataView, at: number, header: ProduceHeader) => void;
}

/** What a fetch came back with, as streams and HTTP consume see it. */
export interface FetchOutcome {
  /** `Status.Ok`, a worker's refusal, or -1 with `failure` set when the leader could not be reached. */
  readonly status: number;
  readonly header: FetchAnswerHeader;
  /** Ok: the batches (valid only during the callback); otherwise the detail, if any. */
  readonly payload: Uint8Array;
  /** Set when the request never got a worker's answer (no leader, the link failed). */
  readonly failure: ProduceFailure | null;
}

/** Consume answers carry at most this many records (api.md caps `limit` at 1000). */
/** The offset a fetch message carries for 'earliest' and 'latest': the leader resolves them. */
export const OFFSET_EARLIEST = FETCH_EARLIEST;
export const OFFSET_LATEST = FETCH_LATEST;
/** Retries of a request the leader's worker answered "unknown partition" while the metadata has it. */
const unknownRetriesMax = 20;
const unknownRetryDelayMs = 10;
/**
 * While leadership moves (the leader is unreachable with nothing sent, answers that it no longer leads, or
 * there is no leader for a moment), a request is sent again to whoever leads next, for this long at most:
 * each of those failures is definite (nothing was written), so a retry can neither lose nor duplicate a
 * record, and a failover then shows to clients as latency rather than errors. Outcomes that are unknown are
 * never retried.
 */
const leaderMoveWaitMs = 3_000;
const leaderMoveRetryDelayMs = 50;
/**
 * A forwarded request answered MOVED (the leader's node put the partition on another of its workers; nothing
 * was carried out) goes again to the worker named: at once the first time, then after a pause, as the two
 * workers may disagree for the moment of the move.
 */
const movedResendsMax = 8;
const movedResendDelayMs = 25;
/** A forwarded request waits this long for the leader's answer beyond its own wait (acks=all included). */
const forwardTimeoutMs = 35_000;
/** Cached produce-answer prefixes at most (one per topic name; cleared when full, then rebuilt on use). */
const answerPrefixesMax = 10_000;
/** Record-batch bodies up to this size (and below --large-body-bytes) are copied into reused buffers. */
const recordBatchBodyPoolBytesMax = 1024 * 1024;
/** Reused body buffers kept free at most (one is taken per record-batch request in flight). */
const recordBatchBodyPoolFreeMax = 16;
/** How long a leader holds an acks=all produce for its followers before answering it as timed out. */
const produceAckTimeoutMs = 30_000;

export class Acceptor {
  private readonly stickyTopics = new Set<TopicRoute>();
  private stickyFlushScheduled = false;
  serving = false;
  notServingReason = 'starting';

  constructor(
    private readonly config: BrokerConfig,
    private readonly store: MetadataStore,
    readonly router: PartitionRouter,
    readonly links: readonly WorkerLink[],
    private readonly metrics: BrokerMetrics,
    private readonly offload: OffloadPool | null,
  ) {
    this.bodyPool = new BufferPool(
      Math.min(config.largeBodyBytes, recordBatchBodyPoolBytesMax),
      recordBatchBodyPoolFreeMax,
    );
  }

  /** What a topic create without settings gets (HTTP and Kafka alike): the broker's defaults, live brokers. */
  private topicCreateDefaults(): Parameters<typeof parseTopicCreate>[2] {
    const liveBrokers = Math.max(1, this.router.liveBrokers().filter((b) => !b.shuttingDown).length);
    return {
      numPartitions: this.config.defaultNumPartitions,
      replicationFactor: Math.min(this.config.defaultReplicationFactor, liveBrokers),
      retentionMs: this.config.retentionMs,
      retentionBytes: this.config.retentionBytes,
      segmentBytes: this.config.segmentBytes,
      partitionsMax: 4096,
      liveBrokers,
    };
  }

  /** The produce limits every topic starts from: a record must fit one log batch and one ring frame. */
  static baseLimits(config: BrokerConfig, payloadBytesMax: number): ProduceLimits {
    return {
      // Kafka's max.message.bytes: a record must fit one log batch (1 MiB, or one ring frame if smaller) with
      // room for the batch header and the record's framing.
      recordBytesMax: Math.min(config.maxRequestBytes, 1024 * 1024, payloadBytesMax - 64) - 1024,
      batchRecordsMax: 100_000,
      headersMax: 64,
    };
  }

  /** Follows the store: every snapshot reroutes (workers reconcile their replicas on their own). */
  openAll(): void {
    this.store.onChange((snapshot) => this.router.apply(snapshot));
    this.router.apply(this.store.snapshot());
  }

  /** Resolves once every snapshot received so far has been applied (routing is synchronous now). */
  metadataSettled(): Promise<void> {
    return Promise.resolve();
  }

  topicRoute(name: string): TopicRoute | undefined {
    return this.router.topic(name);
  }

  /** The servable high watermark this node's replica reported, or undefined when none is known here. */
  highWatermarkOf(topic: string, partition: number): number | undefined {
    const route = this.router.topic(topic)?.partitions[partition];
    if (route === undefined || !route.reported || route.highWatermark < 0) return undefined;
    return route.highWatermark;
  }

  /** Partitions with figures from a replica on this node (for /metrics). */
  /**
   * The figures of the partitions led here, for the kafka_exporter-named gauges: each partition is exported
   * by its leader only, so that a cluster-wide sum counts it once and a follower's lag never shows as its value.
   */
  partitionFigures(): PartitionRoute[] {
    const out: PartitionRoute[] = [];
    for (const topic of this.router.allTopics())
      for (const p of topic.partitions) if (p.reported && p.leader === this.config.nodeId) out.push(p);
    return out;
  }

  /** Long polls are held by the workers, which answer them when they stop; nothing waits here. */
  wakeAllWaiters(): void {}

  // ------------------------------------------------------------------------------------------------------
  // Sending, with the retry of "unknown partition" while the metadata still has it.

  /**
   * Sends a message about `route` to its leader and calls `onAnswer` once: with the worker's answer, or with a
   * failure when there is no leader, the queue is full, or the link failed.
   */
  private sendTo(
    route: PartitionRoute,
    kind: number,
    payloadBytes: number,
    encode: PayloadEncoder,
    onAnswer: (view: DataView, bytes: Buffer, at: number, length: number) => void,
    onFailure: (failure: ProduceFailure) => void,
    timeoutMs: number,
  ): void {
    this.dispatch(new ClosureSend(this, route, kind, payloadBytes, timeoutMs, encode, onAnswer, onFailure));
  }

  /** Hands `send` to the router; a missing leader is waited for (briefly, while it moves), else a failure. */
  dispatch(send: PartitionSend): void {
    const route = send.route;
    send.leader = route.leader;
    const result = this.router.send(
      route,
      send.kind,
      send.payloadBytes,
      send.encodeFn,
      send.answerFn,
      send.timeoutMs,
    );
    if (result === 'no_target' && this.mayWaitForLeader(send))
      return this.again(send, leaderMoveRetryDelayMs);
    if (result === 'no_target') {
      const target = this.router.target(route);
      send.failed({
        name: 'no_leader',
        message: target.kind === 'none' ? target.message : `no route to ${route.topic}-${route.partition}`,
        indefinite: false,
      });
    } else if (result === 'overloaded') {
      send.failed({
        name: 'overloaded',
        message: `too many requests are queued for ${route.topic}-${route.partition}; retry`,
        indefinite: false,
      });
    } else if (result === 'too_large') {
      send.failed({
        name: 'payload_too_large',
        message: `the request for ${route.topic}-${route.partition} exceeds one message frame; split it or raise --ring-bytes`,
        indefinite: false,
      });
    }
  }

  /** The router's answer to `send`: retried when the partition is not there yet or its leader moves. */
  routerAnswered(
    send: PartitionSend,
    answerKind: number,
    view: DataView,
    bytes: Buffer,
    at: number,
    length: number,
  ): void {
    const route = send.route;
    if (answerKind === MessageKind.MovedAnswer) {
      const learned = this.router.learnMoved(route, send.leader, view, at, length);
      if (learned && send.attempt < movedResendsMax)
        return this.again(send, send.attempt === 0 ? 0 : movedResendDelayMs);
      return send.failed({
        name: 'no_leader',
        message: `the leader of ${route.topic}-${route.partition} (broker ${send.leader}) is moving it between its worker threads; nothing was written; retry`,
        indefinite: false,
      });
    }
    if (answerKind === LinkFailureKind) {
      const failure = bytes[at]!;
      if (failure === LinkFailure.unreachable && this.mayWaitForLeader(send))
        return this.again(send, leaderMoveRetryDelayMs);
      return send.failed({
        name: 'no_leader',
        message: linkFailureMessage(failure, route.topic, route.partition, send.leader),
        indefinite: linkFailureIndefinite(failure),
      });
    }
    // Every answer's first byte is its status.
    const status = bytes[at];
    if (status === Status.UnknownPartition && send.attempt < unknownRetriesMax && this.stillRouted(route)) {
      return this.again(send, unknownRetryDelayMs);
    }
    if (
      (status === Status.NotLeader || status === Status.HighWatermarkNotReady) &&
      this.mayWaitForLeader(send)
    ) {
      return this.again(send, leaderMoveRetryDelayMs);
    }
    send.answered(view, bytes, at, length);
  }

  private again(send: PartitionSend, delayMs: number): void {
    send.attempt++;
    setTimeout(() => this.dispatch(send), delayMs);
  }

  private mayWaitForLeader(send: PartitionSend): boolean {
    return performance.now() + leaderMoveRetryDelayMs < send.moveDeadlineMs && this.stillRouted(send.route);
  }

  private stillRouted(route: PartitionRoute): boolean {
    return this.router.topic(route.topic)?.partitions[route.partition] === route;
  }

  /** A JSON control request to a partition's leader (rare operations). */
  controlPartition(route: PartitionRoute, request: ControlRequest): Promise<ControlAnswer> {
    const payload = encodeJson(request);
    return new Promise((resolve) => {
      this.sendTo(
        route,
        MessageKind.Control,
        payload.byteLength,
        (bytes, _v, at) => {
          payload.copy(bytes, at);
        },
        (_view, bytes, at, length) => {
          resolve(
            decodeJson<ControlAnswer>(bytes.subarray(at, at + length)) ?? {
              ok: false,
              status: Status.UnknownPartition,
              message: 'the leader answered something that is not JSON',
            },
          );
        },
        (failure) => resolve({ ok: false, status: -1, message: failure.message }),
        forwardTimeoutMs,
      );
    });
  }

  /** A JSON control request to one local worker (health). */
  controlWorker(link: WorkerLink, request: ControlRequest): Promise<ControlAnswer> {
    const payload = encodeJson(request);
    return new Promise((resolve, reject) => {
      const outcome = link.send(
        MessageKind.Control,
        payload.byteLength,
        (bytes, _v, at) => {
          payload.copy(bytes, at);
        },
        (_kind, _view, bytes, at, length) => {
          resolve(
            decodeJson<ControlAnswer>(bytes.subarray(at, at + length)) ?? {
              ok: false,
              status: -1,
              message: 'bad answer',
            },
          );
        },
      );
      if (outcome === 'overloaded' || outcome === 'too_large') {
        reject(new Error(`control request to worker ${link.workerIndex} refused: ${outcome}`));
      }
    });
  }

  /** Asks a partition's leader for its figures (and each replica's log end); null when it could not. */
  describe(route: PartitionRoute): Promise<DescribeAnswer | { readonly failure: ProduceFailure }> {
    return new Promise((resolve) => {
      this.sendTo(
        route,
        MessageKind.Describe,
        DESCRIBE_REQUEST_BYTES,
        (_b, view, at) => {
          view.setUint32(at, route.topicSeq, true);
          view.setUint32(at + 4, route.partition, true);
        },
        (view, bytes, at, length) => {
          const answer = readDescribeAnswer(bytes, view, at, length);
          resolve(
            answer ?? {
              failure: {
                name: 'internal',
                message: 'the leader answered a malformed describe',
                indefinite: false,
              },
            },
          );
        },
        (failure) => resolve({ failure }),
        forwardTimeoutMs,
      );
    });
  }

  /**
   * Sends one encoded record batch (a Kafka client's, validated by the caller) to the partition's leader,
   * where it is appended as it is. `onResult` runs once, with the worker's answer or a failure; `batch` must
   * stay valid until then (a retry after a leader move encodes it again).
   */
  produceBatch(
    route: PartitionRoute,
    header: ProduceHeader,
    batch: Uint8Array,
    recordCount: number,
    maxTimestampMs: number,
    onResult: (answer: ProduceAnswer | null, failure: ProduceFailure | null) => void,
  ): void {
    const answer = emptyProduceAnswer();
    this.sendTo(
      route,
      MessageKind.Produce,
      PRODUCE_HEADER_BYTES + batch.byteLength,
      (bytes, view, at) => {
        encodeBatchProduceRequest(bytes, view, at, header, batch, recordCount, maxTimestampMs);
      },
      (view, _bytes, at, length) => onResult(readProduceAnswer(view, at, length, answer), null),
      (failure) => onResult(null, failure),
      header.timeoutMs + forwardTimeoutMs,
    );
  }

  /**
   * Creates a topic from a body shaped like the HTTP one (`{num_partitions, replication_factor, config}`),
   * with the same defaults, checks and limits. Resolves with the outcome; never rejects.
   */
  createTopicFromBody(
    name: string,
    json: unknown,
  ): Promise<
    | { readonly kind: 'created' | 'exists_same' | 'exists_different'; readonly topic: TopicRoute | null }
    | { readonly kind: 'error'; readonly error: ErrorName; readonly message: string }
  > {
    const problem = validateTopicName(name);
    if (problem !== null) return Promise.resolve({ kind: 'error', error: 'invalid_name', message: problem });
    const parsed = parseTopicCreate(name, json, this.topicCreateDefaults());
    if (parsed.kind === 'error') return Promise.resolve(parsed);
    if (!this.serving) {
      return Promise.resolve({
        kind: 'error',
        error: 'overloaded',
        message: `the broker is not serving: ${this.notServingReason}`,
      });
    }
    const crowded = this.partitionLimitProblem(
      name,
      parsed.request.numPartitions,
      parsed.request.replicationFactor,
    );
    if (crowded !== null)
      return Promise.resolve({ kind: 'error', error: 'too_many_partitions', message: crowded });
    return this.store.createTopic(parsed.request, Date.now()).then(
      (result) => ({ kind: result.kind, topic: this.router.topic(name) ?? null }),
      (error: unknown) => ({
        kind: 'error' as const,
        error: 'no_leader' as const,
        message: `could not record the topic: ${String((error as Error)?.message ?? error)}`,
      }),
    );
  }

  /** A producer id from the metadata (as POST /producers), epoch 0; rejects when the store cannot. */
  allocateProducerId(): Promise<number> {
    if (!this.serving)
      return Promise.reject(new Error(`the broker is not serving: ${this.notServingReason}`));
    return this.store.allocateProducerId();
  }

  /** Deletes a topic through the metadata store; resolves 'unknown' when it does not exist. */
  deleteTopicByName(name: string): Promise<'deleted' | 'unknown'> {
    if (!this.serving)
      return Promise.reject(new Error(`the broker is not serving: ${this.notServingReason}`));
    return this.store.deleteTopic(name).then((result) => result.kind);
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
    const parsed = parseTopicCreate(name, json, this.topicCreateDefaults());
    if (parsed.kind === 'error') return reply.error(parsed.error, parsed.message);
    if (!this.serving)
      return reply.error('overloaded', `the broker is not serving: ${this.notServingReason}`);
    const crowded = this.partitionLimitProblem(
      name,
      parsed.request.numPartitions,
      parsed.request.replicationFactor,
    );
    if (crowded !== null) return reply.error('too_many_partitions', crowded);
    this.store.createTopic(parsed.request, Date.now()).then(
      (result) => {
        if (result.kind === 'exists_different') {
          return reply.error('topic_exists', `topic '${name}' already exists with other settings`);
        }
        // The store delivers the snapshot holding the topic before this answer, so it is routed already.
        const route = this.router.topic(name);
        if (route === undefined || route.meta.topicId !== result.topic.topicId) {
          return reply.error('no_leader', `topic '${name}' changed while it was being created; retry`);
        }
        reply.json(result.kind === 'created' ? 201 : 200, JSON.stringify(this.describeTopic(route, null)));
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
   * `growing`: `numPartitions` more for an existing topic.
   */
  partitionLimitProblem(
    name: string,
    numPartitions: number,
    replicationFactor: number,
    growing = false,
  ): string | null {
    if (!growing && this.router.topic(name) !== undefined) return null;
    const limit = this.config.maxPartitionsPerThread * this.config.threads;
    const live = this.router.liveBrokers().map((b) => b.id);
    const brokers = live.length > 0 ? live : [this.config.nodeId];
    const share = Math.ceil((numPartitions * replicationFactor) / brokers.length);
    for (const broker of brokers) {
      let held = 0;
      for (const topic of this.router.allTopics()) {
        for (const p of topic.meta.partitions) if (p.replicas.includes(broker)) held++;
      }
      if (held + share > limit) {
        return `topic '${name}' would put ${held + share} partitions on broker ${broker}, which serves at most ${limit} (--max-partitions-per-thread ${this.config.maxPartitionsPerThread} x --threads ${this.config.threads}); use fewer partitions, delete topics, or add brokers`;
      }
    }
    return null;
  }

  listTopics(request: HttpRequest, reply: Reply): void {
    // With ACLs on, only the topics the principal may describe (Kafka's Metadata answer).
    const visible = request.mayDescribe;
    const names = this.router.topicNames().filter((name) => visible === undefined || visible('topic', name));
    reply.json(200, JSON.stringify({ topics: names, count: names.length }));
  }

  /** `GET /topics/{t}`: the metadata, and each partition's offsets and replica log ends from its leader. */
  getTopic(request: HttpRequest, reply: Reply): void {
    const route = this.topicOrReply(request.params[0] ?? '', reply);
    if (route === null) return;
    Promise.all(route.partitions.map((p) => this.describe(p))).then(
      (answers) => reply.json(200, JSON.stringify(this.describeTopic(route, answers))),
      (error: unknown) => reply.error('overloaded', (error as Error).message),
    );
  }

  /**
   * POST /producers: a producer id unique in the cluster (through the metadata Raft, or the single-node
   * metadata file), epoch 0. Its sequences start at 0 on every partition it writes to.
   */
  createProducer(_request: HttpRequest, reply: Reply): void {
    if (!this.serving)
      return reply.error('overloaded', `the broker is not serving: ${this.notServingReason}`);
    this.store.allocateProducerId().then(
      (producerId) => reply.json(201, JSON.stringify({ producer_id: producerId, producer_epoch: 0 })),
      (error: unknown) => this.replyStoreError(reply, 'could not allocate a producer id', error),
    );
  }

  deleteTopic(request: HttpRequest, reply: Reply): void {
    const name = request.params[0] ?? '';
    const route = this.topicOrReply(name, reply);
    if (route === null) return;
    if (!this.serving)
      return reply.error('overloaded', `the broker is not serving: ${this.notServingReason}`);
    this.store.deleteTopic(name).then(
      (result) => {
        if (result.kind === 'unknown') return reply.error('unknown_topic', `topic '${name}' does not exist`);
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

  /** A partition's replica state for clients: leader's figures, each replica's log end and lag. */
  private partitionJson(
    route: TopicRoute,
    partition: number,
    answer: DescribeAnswer | { readonly failure: ProduceFailure } | null,
  ): Record<string, unknown> {
    const p = route.meta.partitions[partition]!;
    const base = {
      partition: p.partition,
      leader: p.leader === '' ? null : p.leader,
      leader_epoch: p.leaderEpoch,
      replicas: p.replicas,
      isr: p.isr,
      offline: p.leader === '',
    };
    if (answer === null) return base;
    if ('failure' in answer || answer.status !== Status.Ok) {
      const local = route.partitions[partition]!;
      // The leader did not answer: a replica here may still know the figures.
      return {
        ...base,
        log_start_offset: local.reported ? local.logStartOffset : null,
        high_watermark: local.reported && local.highWatermark >= 0 ? local.highWatermark : null,
        log_end_offset: local.reported ? local.logEndOffset : null,
        replica_state: null,
        error: 'failure' in answer ? answer.failure.message : `the leader answered status ${answer.status}`,
      };
    }
    const ends = new Map(answer.replicas.map((r) => [r.id, r.logEndOffset]));
    return {
      ...base,
      log_start_offset: answer.logStartOffset,
      high_watermark: answer.highWatermark >= 0 ? answer.highWatermark : null,
      log_end_offset: answer.logEndOffset,
      size_bytes: answer.sizeBytes,
      segment_count: answer.segmentCount,
      replica_state: p.replicas.map((id) => {
        const end = id === p.leader ? answer.logEndOffset : (ends.get(id) ?? -1);
        return {
          broker: id,
          in_sync: p.isr.includes(id),
          log_end_offset: end >= 0 ? end : null,
          lag: end >= 0 ? Math.max(0, answer.logEndOffset - end) : null,
        };
      }),
    };
  }

  private describeTopic(
    route: TopicRoute,
    answers: readonly (DescribeAnswer | { readonly failure: ProduceFailure })[] | null,
  ): Record<string, unknown> {
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
        unclean_leader_election: meta.config.uncleanLeaderElection,
      },
      partitions: meta.partitions.map((p) =>
        this.partitionJson(route, p.partition, answers?.[p.partition] ?? null),
      ),
    };
  }

  private topicOrReply(name: string, reply: Reply): TopicRoute | null {
    const problem = validateTopicName(name);
    if (problem !== null) {
      reply.error('invalid_name', problem);
      return null;
    }
    const route = this.router.topic(name);
    if (route === undefined) {
      reply.error('unknown_topic', `topic '${name}' does not exist; create it with POST /topics/${name}`);
      return null;
    }
    return route;
  }

  /**
   * For a client that asked for redirects: when `route` is led on another node, answers 503 naming the leader
   * and its URL and returns true; otherwise false (the request is served here, forwarded if need be).
   */
  private redirected(request: HttpRequest, route: PartitionRoute, reply: Reply): boolean {
    if (request.redirectToLeader !== true) return false;
    const target = this.router.target(route);
    if (target.kind !== 'remote') return false;
    const broker = target.broker;
    // Every node of a cluster is assumed to serve its client port as this one does (TLS or not).
    const scheme = this.config.tlsCertFile === null ? 'http' : 'https';
    const url = `${scheme}://${broker.httpHost}:${broker.httpPort}`;
    reply.redirect(
      `partition ${route.partition} of topic '${route.topic}' is led by broker ${broker.id} at ${url}; send requests for it there`,
      broker.id,
      url,
    );
    return true;
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

  /** `GET /topics/{t}/partitions/{p}`: asked of the leader, wherever it is. */
  partitionInfo(request: HttpRequest, reply: Reply): void {
    const topic = this.topicOrReply(request.params[0] ?? '', reply);
    if (topic === null) return;
    const route = this.partitionOrReply(topic, request.params[1] ?? '', reply);
    if (route === null) return;
    if (this.redirected(request, route, reply)) return;
    this.describe(route).then((answer) => {
      if ('failure' in answer && route.leader === '') {
        return reply.json(
          200,
          JSON.stringify({ topic: topic.meta.name, ...this.partitionJson(topic, route.partition, answer) }),
        );
      }
      if ('failure' in answer)
        return reply.error(answer.failure.name, answer.failure.message, { indefinite: false });
      if (answer.status === Status.UnknownPartition) {
        return reply.error(
          'unknown_partition',
          `partition ${route.partition} of '${topic.meta.name}' is gone`,
        );
      }
      reply.json(
        200,
        JSON.stringify({ topic: topic.meta.name, ...this.partitionJson(topic, route.partition, answer) }),
      );
    });
  }

  // ------------------------------------------------------------------------------------------------------
  // Produce.

  produce(request: HttpRequest, reply: Reply, batch: boolean): void {
    const topic = this.topicOrReply(request.params[0] ?? '', reply);
    if (topic === null) return;
    const acks = parseAcks(request.query);
    if (typeof acks === 'string') return reply.error('bad_parameter', acks);
    const format = bodyFormatOf(request.contentType);
    if (format !== 'json' && !batch) {
      return reply.error(
        'unsupported_media_type',
        `Content-Type '${request.contentType.slice(0, 64)}' is a batch body: send it to POST /topics/{topic}/records; this route takes one record as JSON`,
      );
    }
    if (format === 'record-batch') return this.produceRecordBatches(request, reply, topic, acks);
    const ndjson = format === 'ndjson';
    const producer = parseProducerHeaders(request);
    if (typeof producer === 'string') return reply.error('bad_request', producer);
    if (producer !== null && acks !== Acks.all) {
      // As in Kafka: a duplicate can only be recognized for a write whose outcome the producer learns.
      return reply.error('bad_parameter', 'an idempotent produce (Producer-Id) needs acks=all');
    }
    if (!this.serving)
      return reply.error('overloaded', `the broker is not serving: ${this.notServingReason}`);
    const body = request.body!;
    const nowMs = Date.now();
    const payloadBytesMax = this.links[0]!.payloadBytesMax;
    if (body.byteLength >= this.config.largeBodyBytes && this.offload !== null && producer === null) {
      // Large bodies are parsed, validated and encoded on a piscina thread; the body is copied because the
      // HTTP layer may still own its memory.
      const task: LargeProduceTask = {
        body: transferableBody(request),
        batch,
        ndjson,
        limits: topic.limits,
        nowMs,
        numPartitions: topic.meta.numPartitions,
        stickyStart: topic.sticky.peek(),
        stickyRecordsMax: STICKY_RECORDS_MAX,
        stickyEligible: topic.sticky.eligiblePartitions(),
        payloadBytesMax,
      };
      topic.sticky.nextBatch();
      this.metrics.offloadedRequests.inc();
      this.offload.planProduce(task).then(
        (plan) => {
          if (plan.kind === 'error') return reply.error(plan.error, plan.message);
          if (this.router.topic(topic.meta.name) !== topic) {
            return reply.error('unknown_topic', `topic '${topic.meta.name}' was deleted`);
          }
          const groups: SendGroup[] = plan.groups.map((g) => ({
            partition: g.partition,
            indexes: g.indexes,
            payloadBytes: g.length,
            encode: (bytes, view, at, header) => {
              bytes.set(plan.payloads.subarray(g.at, g.at + g.length), at);
              patchProduceHeader(view, at, header);
            },
          }));
          this.sendGroups(
            topic,
            groups,
            acks,
            null,
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
    let parsed: ProduceParse;
    if (ndjson) parsed = parseNdjsonProduce(body.toString('utf8'), topic.limits, nowMs);
    else {
      const parsedJson = parseJsonBody(body.toString('utf8'));
      if (!parsedJson.ok) return reply.error('bad_request', parsedJson.message);
      parsed = batch
        ? parseBatchProduce(parsedJson.value, topic.limits, nowMs)
        : parseSingleProduce(parsedJson.value, topic.limits, nowMs);
    }
    if (parsed.kind === 'error') return reply.error(parsed.error, parsed.message);
    const records = parsed.records;
    if (!batch && producer === null && acks !== Acks.none && records.length === 1) {
      return this.produceOne(request, reply, topic, records, acks);
    }
    const grouped = groupByPartition(records, topic.meta.numPartitions, topic.sticky);
    this.endStickyBatchLater(topic);
    if (grouped.kind === 'unknown_partition') {
      return reply.error(
        'unknown_partition',
        `${batch ? `records[${grouped.recordIndex}]: ` : ''}topic '${topic.meta.name}' has partitions 0..${topic.meta.numPartitions - 1}; there is no partition ${grouped.partition}`,
      );
    }
    if (
      grouped.groups.length === 1 &&
      this.redirected(request, topic.partitions[grouped.groups[0]!.partition]!, reply)
    )
      return;
    if (producer !== null && grouped.groups.length > 1) {
      return reply.error(
        'bad_request',
        'an idempotent produce (Producer-Id) carries the records of one partition: sequences are per partition; give every record the same partition (or key) or send one request per partition',
      );
    }
    let recordBytes = 0;
    for (const record of records) recordBytes += fieldLength(record.key) + fieldLength(record.value);
    const chunks = grouped.groups.flatMap((whole) => chunkGroup(whole, payloadBytesMax));
    if (producer !== null && chunks.length > 1) {
      return reply.error(
        'payload_too_large',
        'an idempotent produce must fit one message frame; send fewer records per request',
      );
    }
    const groups: SendGroup[] = chunks.map((g) => ({
      partition: g.partition,
      indexes: g.indexes,
      payloadBytes: produceRequestBytes(g.records),
      encode: (bytes, view, at, header) => {
        encodeProduceRequest(bytes, view, at, header, g.records);
      },
    }));
    this.sendGroups(
      topic,
      groups,
      acks,
      producer,
      reply,
      batch,
      records.length,
      recordBytes,
      records[0]!.timestampMs,
    );
  }

  /**
   * `POST /topics/{t}/records?partition=N` with `Content-Type: application/vnd.kafka.record-batch`: the body is
   * one or more Kafka magic-2 record batches as a Kafka client encodes them. The whole body is checked first
   * (CRC-32C, framing, record counts, no compression: src/core/log/batch-body.ts), on a piscina thread when it
   * is `largeBodyBytes` or more, so nothing of a bad body is sent; then each batch's CRC-32C is swapped for the
   * log's CRC-32 and the batches go, one after the other, through `produceBatch` (the Kafka listener's path:
   * the produce message's batch flag, appended as they are with broker-assigned offsets). An idempotent
   * producer's id, epoch and sequence are the batch's own header fields, as in Kafka. The answer is the JSON
   * batch answer: an offset (or error) per record in body order.
   */
  private produceRecordBatches(request: HttpRequest, reply: Reply, topic: TopicRoute, acks: Acks): void {
    if ((request.producerId ?? '') + (request.producerEpoch ?? '') + (request.sequence ?? '') !== '') {
      return reply.error(
        'bad_request',
        'a record-batch body carries its producer id, epoch and base sequence in each batch header; send no Producer-Id, Producer-Epoch or Sequence headers with it',
      );
    }
    const partitionText = new URLSearchParams(request.query).get('partition');
    if (partitionText === null) {
      return reply.error(
        'bad_parameter',
        'a record-batch body needs the partition in the query: POST /topics/{topic}/records?partition=N',
      );
    }
    const route = this.partitionOrReply(topic, partitionText, reply);
    if (route === null) return;
    if (!this.serving)
      return reply.error('overloaded', `the broker is not serving: ${this.notServingReason}`);
    if (this.redirected(request, route, reply)) return;
    const body = request.body!;
    const limits = {
      batchBytesMax: route.link.payloadBytesMax - 64,
      recordsMax: topic.limits.batchRecordsMax,
    };
    if (body.byteLength >= this.config.largeBodyBytes && this.offload !== null) {
      // Bytes that own their whole ArrayBuffer: transferred to the pool thread and moved back.
      const copy = transferableBody(request);
      this.metrics.offloadedRequests.inc();
      this.offload.checkBatches({ kind: 'batches', body: copy, limits }).then(
        (outcome) => {
          if (!reply.open) return;
          if (!(outcome instanceof Uint8Array)) return reply.error(outcome.error, outcome.message);
          if (this.router.topic(topic.meta.name) !== topic) {
            return reply.error('unknown_topic', `topic '${topic.meta.name}' was deleted`);
          }
          const described = describeCheckedBody(outcome);
          this.sendRecordBatches(
            topic,
            route,
            outcome,
            described.batches,
            described.recordCount,
            acks,
            reply,
            null,
          );
        },
        (error: unknown) =>
          reply.error('overloaded', `large request could not be checked now: ${(error as Error).message}`),
      );
      return;
    }
    // A copy: the HTTP layer may own the body's memory, and the batches are sent after this returns.
    const copy = this.bodyPool.take(body.byteLength);
    copy.set(body);
    const checked = checkBatchBody(copy, limits);
    if (checked.kind === 'error') {
      this.bodyPool.give(copy);
      return reply.error(checked.error, checked.message);
    }
    // Kafka checksums batches with CRC-32C, the log with CRC-32: the same bytes, checksummed its way.
    rewriteBatchCrcs(copy, crc32);
    this.sendRecordBatches(
      topic,
      route,
      copy,
      checked.batches,
      checked.recordCount,
      acks,
      reply,
      this.bodyPool,
    );
  }

  /** Copies of record-batch bodies below the large-body size, reused (bounded: one per request in flight). */
  private readonly bodyPool: BufferPool;
  /** The per-record answer of a record-batch produce, written as bytes; grown (by doubling) when too small. */
  private batchAnswer = new AnswerWriter(64 * 1024);
  private readonly batchAnswerSuffix = Buffer.from(',"error_code":null,"error":null}', 'latin1');

  /**
   * Sends checked batches (CRC-32 already) of one body to a partition, each after the previous one was
   * answered, so they keep their order; the first refusal stops the rest, which are answered with it.
   */
  private sendRecordBatches(
    topic: TopicRoute,
    route: PartitionRoute,
    body: Uint8Array,
    batches: readonly BodyBatch[],
    recordCount: number,
    acks: Acks,
    reply: Reply,
    pool: BufferPool | null,
  ): void {
    if (acks !== Acks.all && batches.some((b) => b.producer !== null)) {
      pool?.give(body);
      // As in Kafka: a duplicate can only be recognized for a write whose outcome the producer learns.
      return reply.error('bad_parameter', 'an idempotent batch (producer id set) needs acks=all');
    }
    topic.counters.producedRecords.inc(recordCount);
    topic.counters.producedBytes.inc(body.byteLength);
    const baseOffsets: number[] = new Array(batches.length).fill(-1);
    let failure: ProduceFailure | null = null;
    let duplicate = false;
    const answer = (): void => {
      if (!reply.open) return;
      if (failure !== null && baseOffsets[0] === -1) {
        return reply.error(failure.name, failure.message, { indefinite: failure.indefinite });
      }
      const partition = route.partition;
      if (failure === null && acks !== Acks.none) {
        // The common answer, written as bytes: a prefix, the offset and a suffix per record.
        const prefix = Buffer.from(`{"partition":${partition},"offset":`, 'latin1');
        const needBytes = 64 + recordCount * (prefix.length + 17 + this.batchAnswerSuffix.length);
        if (needBytes > this.batchAnswer.capacityBytes) {
          let capacity = this.batchAnswer.capacityBytes;
          while (capacity < needBytes) capacity *= 2;
          this.batchAnswer = new AnswerWriter(capacity);
        }
        const writer = this.batchAnswer.begin().ascii('{"offsets":[');
        for (let b = 0; b < batches.length; b++) {
          if (b > 0) writer.ascii(',');
          writer.consecutive(prefix, baseOffsets[b]!, batches[b]!.recordCount, this.batchAnswerSuffix);
        }
        writer.ascii(duplicate ? '],"duplicate":true}' : ']}');
        return reply.json(200, writer.finish());
      }
      const failed =
        failure === null
          ? ''
          : `,"error_code":${errors[failure.name].code},"error":${JSON.stringify(failure.message)}}`;
      const parts: string[] = new Array(batches.length);
      for (let b = 0; b < batches.length; b++) {
        const base = baseOffsets[b]!;
        const count = batches[b]!.recordCount;
        let text = '';
        for (let k = 0; k < count; k++) {
          if (k > 0 || b > 0) text += ',';
          text +=
            base >= 0 || acks === Acks.none
              ? `{"partition":${partition},"offset":${acks === Acks.none ? 'null' : base + k},"error_code":null,"error":null}`
              : `{"partition":${partition},"offset":null${failed}`;
        }
        parts[b] = text;
      }
      reply.json(
        acks === Acks.none ? 202 : 200,
        `{"offsets":[${parts.join('')}]${duplicate ? ',"duplicate":true' : ''}}`,
      );
    };
    const header = (batch: BodyBatch): ProduceHeader => ({
      topicSeq: route.topicSeq,
      partition: route.partition,
      acks,
      producer: batch.producer,
      timeoutMs: produceAckTimeoutMs,
    });
    if (acks === Acks.none) {
      // Handed over in order on the partition's ring or link; nothing is waited for (offsets unknown). The body
      // is read until every batch was encoded (a retry encodes again), i.e. until each is answered.
      let unanswered = batches.length;
      const settled = (): void => {
        if (--unanswered === 0) pool?.give(body);
      };
      for (const batch of batches) {
        const bytes = body.subarray(batch.at, batch.at + batch.sizeBytes);
        this.produceBatch(route, header(batch), bytes, batch.recordCount, batch.maxTimestampMs, settled);
      }
      return answer();
    }
    const sendNext = (i: number): void => {
      const batch = batches[i]!;
      const bytes = body.subarray(batch.at, batch.at + batch.sizeBytes);
      this.produceBatch(
        route,
        header(batch),
        bytes,
        batch.recordCount,
        batch.maxTimestampMs,
        (result, sendFailure) => {
          if (sendFailure !== null) failure = sendFailure;
          else if (result!.status !== Status.Ok) {
            failure = produceStatusAnswer(
              result!.status,
              topic.meta.name,
              route.partition,
              this.config.dataDir,
              result!.detail,
            );
          } else {
            baseOffsets[i] = result!.baseOffset;
            if (result!.duplicate) duplicate = true;
          }
          if (failure !== null || i + 1 === batches.length) {
            pool?.give(body);
            return answer();
          }
          sendNext(i + 1);
        },
      );
    };
    sendNext(0);
  }

  /**
   * One record, acks 1 or all, no producer id (the common HTTP produce): placed without grouping and sent as one
   * `ProduceOne` object instead of a closure per step. Answers exactly as the grouped path does.
   */
  private produceOne(
    request: HttpRequest,
    reply: Reply,
    topic: TopicRoute,
    records: ParsedRecord[],
    acks: Acks,
  ): void {
    const numPartitions = topic.meta.numPartitions;
    const partition = placeOne(records[0]!, numPartitions, topic.sticky);
    this.endStickyBatchLater(topic);
    if (partition >= numPartitions) {
      return reply.error(
        'unknown_partition',
        `topic '${topic.meta.name}' has partitions 0..${numPartitions - 1}; there is no partition ${partition}`,
      );
    }
    const route = topic.partitions[partition]!;
    if (this.redirected(request, route, reply)) return;
    countOne(topic, records[0]!);
    this.dispatch(new ProduceOne(this, topic, route, records, acks, reply));
  }

  /**
   * One record (`records` holds just it), acks=all, to the partition it is placed on; its outcome goes to
   * `target` with `context`. The WebSocket produce path: one send object per record, where `appendGroups`
   * makes a group, an offsets table and closures. Returns -1, or the partition the record names when the topic
   * has no such partition (nothing is sent then).
   */
  produceSingle(
    topic: TopicRoute,
    records: ParsedRecord[],
    target: SingleProduceTarget,
    context: unknown,
  ): number {
    assert(records.length === 1, 'produceSingle takes one record');
    const numPartitions = topic.meta.numPartitions;
    const partition = placeOne(records[0]!, numPartitions, topic.sticky);
    this.endStickyBatchLater(topic);
    if (partition >= numPartitions) return partition;
    countOne(topic, records[0]!);
    this.dispatch(new ProduceToTarget(this, topic, topic.partitions[partition]!, records, target, context));
    return -1;
  }

  /** Answers written as bytes; each is sent before the next is begun (one thread). */
  readonly answerWriter = new AnswerWriter();
  private readonly answerPrefixes = new Map<string, Buffer>();

  /** `{"topic":<name>,"partition":` as UTF-8, made once per topic name (bounded by the topics that exist). */
  produceAnswerPrefix(topic: string): Buffer {
    let prefix = this.answerPrefixes.get(topic);
    if (prefix === undefined) {
      if (this.answerPrefixes.size >= answerPrefixesMax) this.answerPrefixes.clear();
      prefix = Buffer.from(`{"topic":${JSON.stringify(topic)},"partition":`, 'utf8');
      this.answerPrefixes.set(topic, prefix);
    }
    return prefix;
  }

  /** Scratch for decoding produce answers; each is read and used before the next arrives (one thread). */
  readonly produceAnswerScratch = emptyProduceAnswer();

  /** The client's error for a produce the worker refused with `status`. */
  produceFailure(status: Status, topic: string, partition: number, detail: number): ProduceFailure {
    return produceStatusAnswer(status, topic, partition, this.config.dataDir, detail);
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

  /** Sends one produce message per partition group and answers once every group is answered. */
  private sendGroups(
    topic: TopicRoute,
    groups: readonly SendGroup[],
    acks: Acks,
    producer: ProducerFields | null,
    reply: Reply,
    batch: boolean,
    recordCount: number,
    recordBytes: number,
    firstTimestampMs: number,
  ): void {
    this.appendGroups(
      topic,
      groups,
      acks,
      recordCount,
      recordBytes,
      (offsets, failure, allFailed, duplicate) => {
        // A retried idempotent batch the log already holds: its original offsets, nothing written again.
        const duplicateField = duplicate ? ',"duplicate":true' : '';
        if (!batch) {
          if (failure !== null)
            return reply.error(failure.name, failure.message, { indefinite: failure.indefinite });
          const only = offsets[0]!;
          return reply.json(
            acks === 0 ? 202 : 201,
            `{"topic":${JSON.stringify(topic.meta.name)},"partition":${only.partition},"offset":${only.offset},"timestamp":${firstTimestampMs}${duplicateField}}`,
          );
        }
        // Every record failed the same way: answer with that error; otherwise report per record (Confluent v2).
        if (failure !== null && allFailed) {
          return reply.error(failure.name, failure.message, { indefinite: failure.indefinite });
        }
        reply.json(
          acks === 0 ? 202 : 200,
          duplicate ? JSON.stringify({ offsets, duplicate: true }) : JSON.stringify({ offsets }),
        );
      },
      producer,
    );
  }

  /**
   * Sends one produce message per partition group to each partition's leader; `done` runs once every group is
   * answered (at once for acks=0) with an offset or error per record in request order. Shared by HTTP and
   * WebSocket produce.
   */
  appendGroups(
    topic: TopicRoute,
    groups: readonly SendGroup[],
    acks: Acks,
    recordCount: number,
    recordBytes: number,
    done: (
      offsets: RecordOffset[],
      firstFailure: ProduceFailure | null,
      allFailed: boolean,
      duplicate: boolean,
    ) => void,
    producer: ProducerFields | null = null,
  ): void {
    const offsets: RecordOffset[] = new Array(recordCount);
    let remaining = groups.length;
    let failures = 0;
    let firstFailure: ProduceFailure | null = null;
    let duplicate = false;
    const finish = (): void => done(offsets, firstFailure, failures === groups.length, duplicate);
    topic.counters.producedRecords.inc(recordCount);
    topic.counters.producedBytes.inc(recordBytes);
    const answer = emptyProduceAnswer();
    for (const group of groups) {
      const partition = topic.partitions[group.partition]!;
      const fail = (failure: ProduceFailure): void => {
        firstFailure ??= failure;
        failures++;
        for (const i of group.indexes) {
          offsets[i] = {
            partition: group.partition,
            offset: null,
            error_code: errors[failure.name].code,
            error: failure.message,
          };
        }
      };
      const settle = (): void => {
        if (--remaining === 0 && acks !== 0) finish();
      };
      const header: ProduceHeader = {
        topicSeq: partition.topicSeq,
        partition: partition.partition,
        acks,
        producer,
        timeoutMs: produceAckTimeoutMs,
      };
      this.sendTo(
        partition,
        MessageKind.Produce,
        group.payloadBytes,
        (bytes, view, at) => group.encode(bytes, view, at, header),
        (view, _bytes, at, length) => {
          readProduceAnswer(view, at, length, answer);
          if (answer.status === Status.Ok) {
            if (answer.duplicate) duplicate = true;
            let k = 0;
            for (const i of group.indexes) {
              offsets[i] = {
                partition: group.partition,
                offset: acks === 0 ? null : answer.baseOffset + k,
                error_code: null,
                error: null,
              };
              k++;
            }
          } else {
            fail(
              produceStatusAnswer(
                answer.status,
                topic.meta.name,
                group.partition,
                this.config.dataDir,
                answer.detail,
              ),
            );
          }
          settle();
        },
        (failure) => {
          fail(failure);
          settle();
        },
        forwardTimeoutMs,
      );
    }
    if (acks === 0) {
      // acks=0: answer once the records are handed over; offsets are not known (Kafka returns -1).
      for (const group of groups) {
        for (const i of group.indexes)
          offsets[i] ??= { partition: group.partition, offset: null, error_code: null, error: null };
      }
      finish();
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // Consume.

  consume(request: HttpRequest, reply: Reply): void {
    const topic = this.topicOrReply(request.params[0] ?? '', reply);
    if (topic === null) return;
    const partition = this.partitionOrReply(topic, request.params[1] ?? '', reply);
    if (partition === null) return;
    if (this.redirected(request, partition, reply)) return;
    const parsed = parseConsumeQuery(request.query, {
      maxBytesCap: partition.link.payloadBytesMax - FETCH_ANSWER_HEADER_BYTES,
      maxWaitMs: this.config.maxWaitMs,
    });
    if (isParamError(parsed)) return reply.error(parsed.error, parsed.message);
    const { offset, maxBytes, waitMs, limit, valueFormat } = parsed;
    // The leader reads no batch past the `limit` records the answer can carry (fewer bytes read and checked).
    this.fetchBatch(partition, offset, maxBytes, waitMs, fetchRecordsBound(limit), (outcome) => {
      if (!reply.open) return;
      if (outcome.failure !== null) return reply.error(outcome.failure.name, outcome.failure.message);
      const h = outcome.header;
      if (outcome.status !== Status.Ok) {
        const answer = fetchStatusAnswer(
          outcome.status,
          outcome.payload,
          topic.meta.name,
          partition.partition,
          offset,
          h.logStartOffset,
          h.highWatermark,
        );
        return reply.error(answer.name, answer.message);
      }
      const from = offset >= 0 ? offset : h.fetchOffset;
      this.answerFetch(
        topic,
        partition,
        from,
        limit,
        valueFormat === 'base64',
        outcome.payload,
        h.highWatermark,
        reply,
      );
    });
  }

  /**
   * Reads whole batches from `offset` (OFFSET_EARLIEST / OFFSET_LATEST are resolved by the leader) below the
   * high watermark on the partition's leader, waiting there up to `waitMs` for records. `onResult` gets the
   * outcome once; its batch bytes are valid only during the call.
   */
  fetchBatch(
    partition: PartitionRoute,
    offset: number,
    maxBytes: number,
    waitMs: number,
    maxOffset: number,
    onResult: (outcome: FetchOutcome) => void,
  ): void {
    const header: FetchAnswerHeader = {
      status: Status.Ok,
      logStartOffset: -1,
      highWatermark: -1,
      logEndOffset: -1,
      fetchOffset: -1,
    };
    this.sendTo(
      partition,
      MessageKind.Fetch,
      FETCH_REQUEST_BYTES,
      (_bytes, view, at) =>
        writeFetchRequest(view, at, {
          topicSeq: partition.topicSeq,
          partition: partition.partition,
          offset,
          maxBytes,
          waitMs,
          maxOffset,
        }),
      (view, bytes, at, length) => {
        readFetchAnswerHeader(view, at, length, header);
        onResult({
          status: header.status,
          header,
          payload: bytes.subarray(at + FETCH_ANSWER_HEADER_BYTES, at + length),
          failure: null,
        });
      },
      (failure) => onResult({ status: -1, header, payload: new Uint8Array(0), failure }),
      waitMs + forwardTimeoutMs,
    );
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

/** The acceptor's partition header fields patched into a produce message encoded without them (offload). */
/**
 * One message on its way to a partition's leader, retried (same object) while the partition is being created
 * or its leader moves. The router's two callbacks are made once per send, bound to it: the hot path's sends
 * are objects with methods rather than a closure per step.
 */
abstract class PartitionSend {
  attempt = 0;
  /** The leader when last dispatched, for failure messages. */
  leader = '';
  readonly moveDeadlineMs = performance.now() + leaderMoveWaitMs;
  readonly encodeFn: PayloadEncoder;
  readonly answerFn: ResponseHandler;

  constructor(
    acceptor: Acceptor,
    readonly route: PartitionRoute,
    readonly kind: number,
    readonly payloadBytes: number,
    readonly timeoutMs: number,
    encodeFn?: PayloadEncoder,
  ) {
    this.encodeFn = encodeFn ?? ((bytes, view, at) => this.encode(bytes, view, at));
    this.answerFn = (answerKind, view, bytes, at, length) =>
      acceptor.routerAnswered(this, answerKind, view, bytes, at, length);
  }

  abstract encode(bytes: Buffer, view: DataView, at: number): void;
  /** The worker's answer (after any retries). Called at most once, and never together with `failed`. */
  abstract answered(view: DataView, bytes: Buffer, at: number, length: number): void;
  abstract failed(failure: ProduceFailure): void;
}

/** A send whose steps are closures (control requests, fetches, grouped produce). */
class ClosureSend extends PartitionSend {
  constructor(
    acceptor: Acceptor,
    route: PartitionRoute,
    kind: number,
    payloadBytes: number,
    timeoutMs: number,
    private readonly encodeWith: PayloadEncoder,
    private readonly onAnswer: (view: DataView, bytes: Buffer, at: number, length: number) => void,
    private readonly onFailure: (failure: ProduceFailure) => void,
  ) {
    super(acceptor, route, kind, payloadBytes, timeoutMs, encodeWith);
  }

  encode(bytes: Buffer, view: DataView, at: number): void {
    this.encodeWith(bytes, view, at);
  }

  answered(view: DataView, bytes: Buffer, at: number, length: number): void {
    this.onAnswer(view, bytes, at, length);
  }

  failed(failure: ProduceFailure): void {
    this.onFailure(failure);
  }
}

/**
 * A single-record produce (acks 1 or all, no producer id): encoded from its parsed record, its answer read into
 * the acceptor's scratch; a refusal goes to `failed`, an offset to `produced`.
 */
abstract class SingleRecordSend extends PartitionSend {
  private readonly header: ProduceHeader;

  constructor(
    protected readonly acceptor: Acceptor,
    protected readonly topic: TopicRoute,
    route: PartitionRoute,
    protected readonly records: ParsedRecord[],
    acks: Acks,
  ) {
    super(acceptor, route, MessageKind.Produce, produceRequestBytes(records), forwardTimeoutMs);
    this.header = {
      topicSeq: route.topicSeq,
      partition: route.partition,
      acks,
      producer: null,
      timeoutMs: produceAckTimeoutMs,
    };
  }

  /** The record was written at `baseOffset` of `partition`. */
  protected abstract produced(partition: number, baseOffset: number): void;

  encode(bytes: Buffer, view: DataView, at: number): void {
    encodeProduceRequest(bytes, view, at, this.header, this.records);
  }

  answered(view: DataView, _bytes: Buffer, at: number, length: number): void {
    const answer = this.acceptor.produceAnswerScratch;
    readProduceAnswer(view, at, length, answer);
    const partition = this.route.partition;
    if (answer.status !== Status.Ok) {
      return this.failed(
        this.acceptor.produceFailure(answer.status, this.topic.meta.name, partition, answer.detail),
      );
    }
    this.produced(partition, answer.baseOffset);
  }
}

/** A single-record HTTP produce (see Acceptor.produceOne), answered with its offset as bytes. */
class ProduceOne extends SingleRecordSend {
  constructor(
    acceptor: Acceptor,
    topic: TopicRoute,
    route: PartitionRoute,
    records: ParsedRecord[],
    acks: Acks,
    private readonly reply: Reply,
  ) {
    super(acceptor, topic, route, records, acks);
  }

  protected produced(partition: number, baseOffset: number): void {
    const writer = this.acceptor.answerWriter
      .begin()
      .bytes(this.acceptor.produceAnswerPrefix(this.topic.meta.name))
      .integer(partition)
      .ascii(',"offset":')
      .integer(baseOffset)
      .ascii(',"timestamp":')
      .integer(this.records[0]!.timestampMs)
      .ascii('}');
    this.reply.json(201, writer.finish());
  }

  failed(failure: ProduceFailure): void {
    this.reply.error(failure.name, failure.message, { indefinite: failure.indefinite });
  }
}

/** A single-record produce with acks=all whose outcome goes to a `SingleProduceTarget` (WebSocket produce). */
class ProduceToTarget extends SingleRecordSend {
  constructor(
    acceptor: Acceptor,
    topic: TopicRoute,
    route: PartitionRoute,
    records: ParsedRecord[],
    private readonly target: SingleProduceTarget,
    private readonly context: unknown,
  ) {
    super(acceptor, topic, route, records, Acks.all);
  }

  protected produced(partition: number, baseOffset: number): void {
    this.target.produced(partition, baseOffset, this.context);
  }

  failed(failure: ProduceFailure): void {
    this.target.produceFailed(failure, this.context);
  }
}

/** Counts one record produced to `topic`: the record and its key and value bytes. */
function countOne(topic: TopicRoute, record: ParsedRecord): void {
  topic.counters.producedRecords.inc(1);
  topic.counters.producedBytes.inc(fieldLength(record.key) + fieldLength(record.value));
}

function patchProduceHeader(view: DataView, at: number, header: ProduceHeader): void {
  view.setUint32(at, header.topicSeq, true);
  view.setUint32(at + 4, header.partition, true);
  view.setUint8(at + 8, header.acks);
  view.setUint32(at + 28, header.timeoutMs, true);
}

/**
 * The idempotent producer headers (api.md): `Producer-Id`, `Producer-Epoch`, `Sequence`, all or none. Null
 * when none is given; a message naming the problem when they are incomplete or out of range.
 */
/**
 * The request's body as bytes that own their whole ArrayBuffer, to be transferred to a piscina thread: the body
 * itself when the HTTP layer handed it over (`bodyOwned`; it is detached by the transfer, so nothing may read
 * it afterwards), else a copy. A fresh multi-megabyte copy costs the acceptor several milliseconds (most of it
 * the allocation and the garbage collection it provokes: about 15 ms for 4 MiB), more than the work it moves.
 */
function transferableBody(request: HttpRequest): Uint8Array {
  const body = request.body!;
  if (request.bodyOwned === true && body.byteOffset === 0 && body.buffer.byteLength === body.byteLength) {
    return new Uint8Array(body.buffer, 0, body.byteLength);
  }
  return new Uint8Array(body);
}

function parseProducerHeaders(request: HttpRequest): ProducerFields | null | string {
  const id = request.producerId ?? '';
  const epoch = request.producerEpoch ?? '';
  const sequence = request.sequence ?? '';
  if (id === '' && epoch === '' && sequence === '') return null;
  if (id === '' || epoch === '' || sequence === '') {
    return 'an idempotent produce needs all of Producer-Id, Producer-Epoch and Sequence (get an id with POST /producers)';
  }
  const producerId = Number(id);
  const producerEpoch = Number(epoch);
  const baseSequence = Number(sequence);
  if (!Number.isSafeInteger(producerId) || producerId < 0)
    return `Producer-Id must be a non-negative integer, got '${id}'`;
  if (!Number.isInteger(producerEpoch) || producerEpoch < 0 || producerEpoch > 0x7fff) {
    return `Producer-Epoch must be an integer from 0 to 32767, got '${epoch}'`;
  }
  if (!Number.isInteger(baseSequence) || baseSequence < 0 || baseSequence > 0x7fffffff) {
    return `Sequence must be an integer from 0 to 2147483647, got '${sequence}'`;
  }
  return { producerId, producerEpoch, baseSequence };
}

function fieldLength(field: string | Uint8Array | null): number {
  if (field === null) return 0;
  return typeof field === 'string' ? field.length : field.byteLength;
}
