// The acceptor's partition router: from the metadata alone, where each partition's requests go. The leader on
// this node -> the ring of the local worker that owns the partition (src/core/ownership.ts: the hash, or this
// node's placement override set by the worker balancer, src/broker/worker-moves.ts); the leader on another node
// -> the data link of that node's owning worker (a pooled connection; a MOVED answer teaches which worker owns
// it there now, `learnMoved`, and the acceptor sends the request again, to that one's port); no leader -> nowhere, with a message saying why.
// While a partition moves between this node's workers its requests are held here, in order, in a bounded queue
// (past it: overloaded, a 503 with Retry-After), and released to the new worker once it holds the log.
// Each route counts the requests and request bytes sent to a local worker (two additions per request, no
// allocation): the balancer's load figures. It also keeps the figures (log start, log end, servable high watermark) that this
// node's workers report for the replicas they hold, so that describing a partition held here needs no request.
// The one seam between handlers and partitions: `send` takes a message for a partition and delivers it, local
// or remote, and a failure of the data link comes back as an answer like any other (`LinkFailureKind`).
// Runs on the acceptor (main) thread only.
import { LearnedPlacements, ownerOf, partitionKey } from '../core/ownership.js';
import { StickyPartitioner } from '../core/partitioner.js';
import type { ProduceLimits } from '../http/produce-body.js';
import { LinkFailure, LinkFailureKind } from '../link/data-link.js';
import type { PartitionState } from '../messages/describe.js';
import { readMovedAnswer } from '../messages/moved.js';
import type {
  BrokerRegistration,
  MetadataSnapshot,
  PartitionAssignment,
  TopicMetadata,
} from '../metadata/types.js';
import type { LinkPool } from './link-pool.js';
import type { BrokerMetrics, TopicCounters } from './metrics.js';
import type { ResponseHandler, WorkerLink } from './worker-link.js';

export interface PartitionRoute {
  readonly topic: string;
  readonly topicSeq: number;
  readonly partition: number;
  readonly key: number;
  /** The broker leading the partition ('' while it is offline), its epoch, replicas and ISR: the metadata's. */
  leader: string;
  leaderEpoch: number;
  replicas: readonly string[];
  isr: readonly string[];
  /** The worker of this node that owns the partition (leader or follower here, or not at all). */
  link: WorkerLink;
  /** Requests and request payload bytes sent to the local worker since start (the balancer's load figures). */
  sentRequests: number;
  sentBytes: number;
  /** Requests waiting while the partition moves between this node's workers; null when it is not moving. */
  held: HeldSend[] | null;
  /** Figures this node's worker reported for its replica; `reported` false while it has not (or holds none). */
  reported: boolean;
  logStartOffset: number;
  logEndOffset: number;
  /** The servable high watermark (-1 while the leader cannot serve one yet, or unknown here). */
  highWatermark: number;
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

/** Where a partition's requests go now. */
export type Target =
  | { readonly kind: 'local'; readonly link: WorkerLink }
  | { readonly kind: 'remote'; readonly broker: BrokerRegistration; readonly port: number }
  | { readonly kind: 'none'; readonly message: string };

export type SendResult = 'sent' | 'queued' | 'overloaded' | 'too_large' | 'no_target';

interface HeldSend {
  readonly kind: number;
  readonly payloadBytes: number;
  readonly encode: (bytes: Buffer, view: DataView, at: number) => void;
  readonly onAnswer: ResponseHandler;
  readonly timeoutMs: number;
}

/** Requests held per moving partition at most; more are refused as overloaded (503 with Retry-After). */
export const HELD_SENDS_MAX = 4096;

/** Keyless records go to one partition for this many records, then move on (Kafka's sticky partitioner). */
export const STICKY_RECORDS_MAX = 1000;

export class PartitionRouter {
  private readonly topics = new Map<string, TopicRoute>();
  private readonly byKey = new Map<number, PartitionRoute>();
  private brokers: ReadonlyMap<string, BrokerRegistration> = new Map();
  private version = -1;
  /** This node's placement overrides (partition key -> worker index): the worker balancer's moves. */
  readonly placement = new Map<number, number>();
  /** Other nodes' overrides, learned from their workers' MOVED answers. */
  private readonly learned = new LearnedPlacements();
  /** Told of every topic added (its partition count) or removed (0): the group coordinator listens. */
  onTopicChange: (topic: string, partitions: number) => void = () => undefined;

  constructor(
    private readonly nodeId: string,
    private readonly links: readonly WorkerLink[],
    private readonly pool: LinkPool,
    private readonly metrics: BrokerMetrics,
    private readonly baseLimits: ProduceLimits,
  ) {}

  topic(name: string): TopicRoute | undefined {
    return this.topics.get(name);
  }

  topicNames(): string[] {
    return [...this.topics.keys()].sort();
  }

  allTopics(): IterableIterator<TopicRoute> {
    return this.topics.values();
  }

  broker(id: string): BrokerRegistration | undefined {
    return this.brokers.get(id);
  }

  get brokerCount(): number {
    return this.brokers.size;
  }

  /** Every registered broker, fenced ones included. */
  allBrokers(): IterableIterator<BrokerRegistration> {
    return this.brokers.values();
  }

  liveBrokers(): BrokerRegistration[] {
    return [...this.brokers.values()].filter((b) => !b.fenced);
  }

  /** Follows a new metadata snapshot: topics added, changed (leaders, ISR, config) and removed. */
  apply(snapshot: MetadataSnapshot): void {
    if (snapshot.version < this.version) return;
    this.version = snapshot.version;
    this.brokers = snapshot.brokers;
    for (const [name, route] of this.topics) {
      const meta = snapshot.topics.get(name);
      if (meta === undefined || meta.topicId !== route.meta.topicId) this.removeTopic(route);
    }
    for (const meta of snapshot.topics.values()) {
      const route = this.topics.get(meta.name);
      if (route === undefined) this.addTopic(meta);
      else if (route.meta !== meta) this.updateTopic(route, meta);
    }
  }

  private partitionRoute(meta: TopicMetadata, p: PartitionAssignment): PartitionRoute {
    const route: PartitionRoute = {
      topic: meta.name,
      topicSeq: meta.topicSeq,
      partition: p.partition,
      key: partitionKey(meta.topicSeq, p.partition),
      leader: p.leader,
      leaderEpoch: p.leaderEpoch,
      replicas: p.replicas,
      isr: p.isr,
      link: this.links[ownerOf(meta.topicSeq, p.partition, this.links.length, this.placement)]!,
      sentRequests: 0,
      sentBytes: 0,
      held: null,
      reported: false,
      logStartOffset: 0,
      logEndOffset: 0,
      highWatermark: -1,
    };
    this.byKey.set(route.key, route);
    return route;
  }

  private addTopic(meta: TopicMetadata): void {
    const partitions: PartitionRoute[] = meta.partitions.map((p) => this.partitionRoute(meta, p));
    const route: TopicRoute = {
      meta,
      partitions,
      sticky: stickyFor(meta),
      counters: this.metrics.topicCounters(meta.name),
      limits: {
        ...this.baseLimits,
        recordBytesMax: Math.min(this.baseLimits.recordBytesMax, meta.config.segmentBytes - 1024),
      },
    };
    this.setEligible(route);
    this.topics.set(meta.name, route);
    this.onTopicChange(meta.name, meta.numPartitions);
  }

  private updateTopic(route: TopicRoute, meta: TopicMetadata): void {
    (route as { meta: TopicMetadata }).meta = meta;
    // A topic that grew (partitions are only ever added): routes for the new ones, a partitioner over all.
    const grew = meta.partitions.length > route.partitions.length;
    for (let i = route.partitions.length; i < meta.partitions.length; i++) {
      route.partitions.push(this.partitionRoute(meta, meta.partitions[i]!));
    }
    if (grew) (route as { sticky: StickyPartitioner }).sticky = stickyFor(meta);
    for (const p of route.partitions) {
      const assignment = meta.partitions[p.partition]!;
      p.leader = assignment.leader;
      p.leaderEpoch = assignment.leaderEpoch;
      p.replicas = assignment.replicas;
      p.isr = assignment.isr;
      if (!assignment.replicas.includes(this.nodeId)) p.reported = false;
    }
    this.setEligible(route);
    if (grew) this.onTopicChange(meta.name, meta.numPartitions);
  }

  private removeTopic(route: TopicRoute): void {
    if (this.topics.get(route.meta.name) === route) this.topics.delete(route.meta.name);
    for (const p of route.partitions) {
      this.byKey.delete(p.key);
      this.placement.delete(p.key);
    }
    this.onTopicChange(route.meta.name, 0);
  }

  /**
   * Keyless records go to partitions led here when there are any (no hop between nodes), else to any
   * partition with a leader; an offline partition never takes them.
   */
  private setEligible(route: TopicRoute): void {
    const local = route.partitions.filter((p) => p.leader === this.nodeId).map((p) => p.partition);
    const led = route.partitions.filter((p) => p.leader !== '').map((p) => p.partition);
    route.sticky.setEligible(local.length > 0 ? local : led);
  }

  /** A worker reported a replica's figures. */
  onPartitionState(state: PartitionState): void {
    const route = this.byKey.get(partitionKey(state.topicSeq, state.partition));
    if (route === undefined) return;
    route.reported = true;
    route.logStartOffset = state.logStartOffset;
    route.logEndOffset = state.logEndOffset;
    route.highWatermark = state.highWatermark;
  }

  target(route: PartitionRoute): Target {
    if (route.leader === '') {
      return {
        kind: 'none',
        message: `partition ${route.partition} of topic '${route.topic}' is offline: no in-sync replica is alive (last in sync: ${route.isr.join(', ')}); retry`,
      };
    }
    if (route.leader === this.nodeId) return { kind: 'local', link: route.link };
    const broker = this.brokers.get(route.leader);
    if (broker === undefined || broker.dataPorts.length === 0) {
      return {
        kind: 'none',
        message: `partition ${route.partition} of topic '${route.topic}' is led by broker ${route.leader}, which this node cannot reach yet; retry`,
      };
    }
    const port = broker.dataPorts[this.learned.workerFor(broker, route.topicSeq, route.partition)]!;
    return { kind: 'remote', broker, port };
  }

  /** Where clients of another node would go for `route` (the 503 for clients that ask not to be forwarded). */
  leaderUrl(route: PartitionRoute): string {
    const b = this.brokers.get(route.leader);
    return b === undefined ? '' : `http://${b.httpHost}:${b.httpPort}`;
  }

  /**
   * Sends one message about `route` to its leader: the local worker's ring, or the leader's worker over the
   * data link. `onAnswer` runs once with the answer, or with a `LinkFailureKind` frame (its byte: LinkFailure)
   * when a remote leader could not be reached or did not answer in `timeoutMs`.
   */
  send(
    route: PartitionRoute,
    kind: number,
    payloadBytes: number,
    encode: (bytes: Buffer, view: DataView, at: number) => void,
    onAnswer: ResponseHandler,
    timeoutMs: number,
  ): SendResult {
    const held = route.held;
    if (held !== null) {
      if (held.length >= HELD_SENDS_MAX) return 'overloaded';
      held.push({ kind, payloadBytes, encode, onAnswer, timeoutMs });
      return 'queued';
    }
    const target = this.target(route);
    if (target.kind === 'local') {
      route.sentRequests++;
      route.sentBytes += payloadBytes;
      return target.link.send(kind, payloadBytes, encode, onAnswer);
    }
    return this.sendTo(target, kind, payloadBytes, encode, onAnswer, timeoutMs);
  }

  /**
   * Broker `leaderId` (the leader when the request went) answered MOVED for `route`: remembers which of its workers holds the partition now, so
   * the next send goes to that worker's port. False when the answer is malformed or names no known worker.
   */
  learnMoved(route: PartitionRoute, leaderId: string, view: DataView, at: number, length: number): boolean {
    const broker = this.brokers.get(leaderId);
    const moved = readMovedAnswer(view, at, length);
    if (broker === undefined || moved === null) return false;
    let named = false;
    for (const e of moved) {
      if (e.worker >= broker.dataPorts.length) continue;
      this.learned.learn(broker, e.topicSeq, e.partition, e.worker);
      if (e.topicSeq === route.topicSeq && e.partition === route.partition) named = true;
    }
    return named;
  }

  /** Starts holding the partition's requests (it is about to move between this node's workers). */
  hold(route: PartitionRoute): void {
    if (route.held === null) route.held = [];
  }

  /**
   * Moves the route to `link` (or leaves it, with null) and sends what was held, in arrival order, before
   * anything that comes after.
   */
  releaseHold(route: PartitionRoute, link: WorkerLink | null): void {
    const held = route.held;
    if (link !== null) route.link = link;
    route.held = null;
    for (const h of held ?? []) {
      const result = this.send(route, h.kind, h.payloadBytes, h.encode, h.onAnswer, h.timeoutMs);
      if (result === 'overloaded') failWith(h.onAnswer, LinkFailure.overloaded);
      else if (result === 'no_target' || result === 'too_large')
        failWith(h.onAnswer, LinkFailure.unreachable);
    }
  }

  /** The local route of a partition key (the topics now), if there is one. */
  routeByKey(key: number): PartitionRoute | undefined {
    return this.byKey.get(key);
  }

  sendTo(
    target: Target,
    kind: number,
    payloadBytes: number,
    encode: (bytes: Buffer, view: DataView, at: number) => void,
    onAnswer: ResponseHandler,
    timeoutMs: number,
  ): SendResult {
    switch (target.kind) {
      case 'none':
        return 'no_target';
      case 'local':
        return target.link.send(kind, payloadBytes, encode, onAnswer);
      case 'remote': {
        const client = this.pool.client(target.broker.clusterHost, target.port);
        return client.send(kind, payloadBytes, encode, onAnswer, timeoutMs);
      }
    }
  }
}

/** The text of a link failure for a client. */
export function linkFailureMessage(
  failure: number,
  topic: string,
  partition: number,
  leader: string,
): string {
  const where = `the leader of ${topic}-${partition} (broker ${leader})`;
  switch (failure) {
    case LinkFailure.unreachable:
      return `${where} could not be reached; nothing was sent; retry`;
    case LinkFailure.overloaded:
      return `too many requests are waiting for ${where}; nothing was sent; retry`;
    case LinkFailure.lost:
      return `the connection to ${where} ended before it answered: the outcome is unknown`;
    default:
      return `${where} did not answer in time: the outcome is unknown`;
  }
}

export { LinkFailureKind };

/** Answers a request with a link failure frame (its one byte: the failure), as a failed data link would. */
function failWith(onAnswer: ResponseHandler, failure: number): void {
  const bytes = Buffer.alloc(1, failure);
  onAnswer(LinkFailureKind, new DataView(bytes.buffer, bytes.byteOffset, 1), bytes, 0, 1);
}

function stickyFor(meta: TopicMetadata): StickyPartitioner {
  return new StickyPartitioner(
    meta.numPartitions,
    STICKY_RECORDS_MAX,
    Math.floor(Math.random() * meta.numPartitions),
  );
}
