// The operators' topic routes beside the acceptor's: altering a topic's config (a metadata change through
// Raft, which every node then applies to the partitions it leads) and finding a partition's offset for a time
// (Kafka's ListOffsets by timestamp, asked of the partition's worker). Also the offset lookups the group
// offset reset needs (earliest, latest, by time), so that both answer from the same fresh figures.
// Runs on the acceptor (main) thread only.
import { validateTopicName } from '../core/names.js';
import { type OffsetReset, parseTopicAlter } from '../http/ops-bodies.js';
import { isParamError, parseIntegerParam } from '../http/params.js';
import { parseJsonBody } from '../http/produce-body.js';
import type { HttpRequest, Reply } from '../http/server.js';
import { Status } from '../messages/status.js';
import type { MetadataStore, TopicMetadata } from '../metadata/types.js';
import type { Acceptor, PartitionRoute, TopicRoute } from './acceptor.js';

/** Fresh offsets of one partition this node leads, and the offset a time maps to when one was asked for. */
export interface PartitionOffsets {
  readonly logStartOffset: number;
  readonly highWatermark: number;
  /** First offset at or after the asked time, below the high watermark; null when no record is that new. */
  readonly offsetForTime: number | null;
}

export type OffsetsLookup =
  | { readonly kind: 'ok'; readonly offsets: PartitionOffsets }
  | { readonly kind: 'not_leader'; readonly message: string }
  | { readonly kind: 'gone'; readonly message: string };

export class TopicAdmin {
  constructor(
    private readonly acceptor: Acceptor,
    private readonly store: MetadataStore,
  ) {}

  /** `POST /topics/{topic}/config`: changes the given settings; answers the topic's whole config. */
  alterConfig(request: HttpRequest, reply: Reply): void {
    const name = request.params[0] ?? '';
    const route = this.topicOrReply(name, reply);
    if (route === null) return;
    const parsedJson = parseJsonBody(request.body?.toString('utf8') ?? '');
    if (!parsedJson.ok) return reply.error('bad_request', parsedJson.message);
    const parsed = parseTopicAlter(parsedJson.value, route.meta.replicationFactor);
    if (parsed.kind === 'error') return reply.error('bad_request', `topic '${name}': ${parsed.message}`);
    if (!this.acceptor.serving) {
      return reply.error('overloaded', `the broker is not serving: ${this.acceptor.notServingReason}`);
    }
    this.store.alterTopicConfig(name, parsed.value).then(
      async (result) => {
        if (result.kind === 'unknown') return reply.error('unknown_topic', `topic '${name}' does not exist`);
        // The snapshot with the new config is applied (and handed to the partitions) before the answer.
        await this.acceptor.metadataSettled();
        reply.json(200, JSON.stringify({ topic: name, config: configJson(result.topic) }));
      },
      (error: unknown) => {
        const failure = (error as { failure?: { error: string; message: string; indefinite: boolean } })
          .failure;
        if (failure?.error === 'bad_request') return reply.error('bad_request', failure.message);
        reply.error('no_leader', `could not alter the topic: ${(error as Error).message}`, {
          indefinite: failure?.indefinite ?? false,
        });
      },
    );
  }

  /**
   * `PATCH /topics/{topic}` `{"num_partitions": N}`: more partitions (Kafka's CreatePartitions; increase only),
   * placed as a new topic's are. Keys map to partitions by their number, so keyed records of the topic may land
   * on another partition from now on, as in Kafka.
   */
  addPartitions(request: HttpRequest, reply: Reply): void {
    const name = request.params[0] ?? '';
    const route = this.topicOrReply(name, reply);
    if (route === null) return;
    const parsed = parseJsonBody(request.body?.toString('utf8') ?? '');
    if (!parsed.ok) return reply.error('bad_request', parsed.message);
    const body = parsed.value as Record<string, unknown> | null;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return reply.error('bad_request', 'the body must be a JSON object {"num_partitions": N}');
    }
    const unknown = Object.keys(body).filter((k) => k !== 'num_partitions');
    if (unknown.length > 0) {
      return reply.error(
        'bad_request',
        `unknown field '${unknown[0]}': PATCH /topics/{topic} changes num_partitions; config goes to POST /topics/{topic}/config`,
      );
    }
    const count = body.num_partitions;
    const now = route.meta.numPartitions;
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count <= now || count > 4096) {
      return reply.error(
        'bad_request',
        `num_partitions must be an integer above the topic's ${now} partitions (they can only grow) and at most 4096, got ${JSON.stringify(count)}`,
      );
    }
    const crowded = this.acceptor.partitionLimitProblem(
      name,
      count - now,
      route.meta.replicationFactor,
      true,
    );
    if (crowded !== null) return reply.error('too_many_partitions', crowded);
    const grow = this.store.addPartitions;
    if (grow === undefined) return reply.error('bad_request', 'this broker cannot add partitions');
    if (!this.acceptor.serving) {
      return reply.error('overloaded', `the broker is not serving: ${this.acceptor.notServingReason}`);
    }
    grow.call(this.store, name, count).then(
      async (result) => {
        if (result.kind === 'unknown') return reply.error('unknown_topic', `topic '${name}' does not exist`);
        await this.acceptor.metadataSettled();
        const t = result.topic;
        reply.json(
          200,
          JSON.stringify({
            topic: name,
            num_partitions: t.numPartitions,
            partitions: t.partitions.map((p) => ({
              partition: p.partition,
              leader: p.leader,
              replicas: p.replicas,
            })),
          }),
        );
      },
      (error: unknown) => {
        const failure = (error as { failure?: { error: string; message: string; indefinite: boolean } })
          .failure;
        if (failure?.error === 'bad_request') return reply.error('bad_request', failure.message);
        reply.error('no_leader', `could not add partitions: ${(error as Error).message}`, {
          indefinite: failure?.indefinite ?? false,
        });
      },
    );
  }

  /** `GET /topics/{topic}/partitions/{p}/offsets?timestamp=MS`: the first offset at or after the time. */
  offsetsForTime(request: HttpRequest, reply: Reply): void {
    const route = this.topicOrReply(request.params[0] ?? '', reply);
    if (route === null) return;
    const partitionNumber = parseIntegerParam('partition', request.params[1] ?? '', 0, 0x7fffffff);
    if (isParamError(partitionNumber)) return reply.error(partitionNumber.error, partitionNumber.message);
    const partition = route.partitions[partitionNumber];
    if (partition === undefined) {
      return reply.error(
        'unknown_partition',
        `topic '${route.meta.name}' has partitions 0..${route.meta.numPartitions - 1}; there is no partition ${partitionNumber}`,
      );
    }
    const text = new URLSearchParams(request.query).get('timestamp');
    if (text === null) {
      return reply.error('bad_parameter', 'timestamp is required: milliseconds since the epoch');
    }
    const timestampMs = parseIntegerParam('timestamp', text, 0, Number.MAX_SAFE_INTEGER);
    if (isParamError(timestampMs))
      return reply.error(timestampMs.error, `${timestampMs.message} (ms since the epoch)`);
    this.lookup(partition, timestampMs).then(
      (found) => {
        if (found.kind === 'not_leader') return reply.error('no_leader', found.message);
        if (found.kind === 'gone') return reply.error('unknown_topic', found.message);
        const o = found.offsets;
        reply.json(
          200,
          JSON.stringify({
            topic: partition.topic,
            partition: partition.partition,
            timestamp: timestampMs,
            offset: o.offsetForTime,
            log_start_offset: o.logStartOffset,
            high_watermark: o.highWatermark,
          }),
        );
      },
      (error: unknown) => reply.error('overloaded', (error as Error).message),
    );
  }

  /** Fresh offsets of a partition from its leader (wherever it is), with the offset for `timestampMs` if given. */
  async lookup(partition: PartitionRoute, timestampMs: number | null): Promise<OffsetsLookup> {
    const described = await this.acceptor.describe(partition);
    if ('failure' in described) return { kind: 'not_leader', message: described.failure.message };
    if (described.status === Status.UnknownPartition) {
      return { kind: 'gone', message: `${partition.topic}-${partition.partition} is gone` };
    }
    if (described.status !== Status.Ok || described.role !== 'leader' || described.highWatermark < 0) {
      return {
        kind: 'not_leader',
        message: `the leader of ${partition.topic}-${partition.partition} cannot answer now (leadership is moving); retry`,
      };
    }
    let offsetForTime: number | null = null;
    if (timestampMs !== null) {
      const answer = await this.acceptor.controlPartition(partition, {
        op: 'offset_for_timestamp',
        topicSeq: partition.topicSeq,
        partition: partition.partition,
        timestampMs,
      });
      if (!answer.ok) return { kind: 'not_leader', message: answer.message };
      offsetForTime = 'offset' in answer ? answer.offset : null;
    }
    return {
      kind: 'ok',
      offsets: {
        logStartOffset: described.logStartOffset,
        highWatermark: described.highWatermark,
        offsetForTime,
      },
    };
  }

  /**
   * Where a group offset reset moves each partition: the target clamped into [log start, high watermark], as
   * Kafka does; a time with no record that new moves to the high watermark. `committed` gives the current
   * offset for a shift (from the log start when nothing was committed).
   */
  async resetTargets(
    route: TopicRoute,
    reset: OffsetReset,
    committed: (partition: number) => number | undefined,
  ): Promise<
    | { readonly kind: 'ok'; readonly targets: ReadonlyArray<{ partition: number; offset: number }> }
    | {
        readonly kind: 'error';
        readonly error: 'no_leader' | 'unknown_topic' | 'unknown_partition';
        readonly message: string;
      }
  > {
    const numbers = reset.partitions ?? route.partitions.map((p) => p.partition);
    const missing = numbers.find((n) => route.partitions[n] === undefined);
    if (missing !== undefined) {
      return {
        kind: 'error',
        error: 'unknown_partition',
        message: `topic '${route.meta.name}' has partitions 0..${route.meta.numPartitions - 1}; there is no partition ${missing}`,
      };
    }
    const target = reset.target;
    const lookups = await Promise.all(
      numbers.map((n) =>
        this.lookup(route.partitions[n]!, target.to === 'timestamp' ? target.timestampMs : null),
      ),
    );
    const targets: { partition: number; offset: number }[] = [];
    for (const [i, found] of lookups.entries()) {
      if (found.kind === 'not_leader') return { kind: 'error', error: 'no_leader', message: found.message };
      if (found.kind === 'gone') return { kind: 'error', error: 'unknown_topic', message: found.message };
      const { logStartOffset, highWatermark, offsetForTime } = found.offsets;
      const partition = numbers[i]!;
      let offset: number;
      switch (target.to) {
        case 'earliest':
          offset = logStartOffset;
          break;
        case 'latest':
          offset = highWatermark;
          break;
        case 'offset':
          offset = target.offset;
          break;
        case 'timestamp':
          offset = offsetForTime ?? highWatermark;
          break;
        case 'shift':
          offset = (committed(partition) ?? logStartOffset) + target.shift;
          break;
      }
      targets.push({ partition, offset: Math.min(highWatermark, Math.max(logStartOffset, offset)) });
    }
    return { kind: 'ok', targets };
  }

  private topicOrReply(name: string, reply: Reply): TopicRoute | null {
    const problem = validateTopicName(name);
    if (problem !== null) {
      reply.error('invalid_name', problem);
      return null;
    }
    const route = this.acceptor.topicRoute(name);
    if (route === undefined) {
      reply.error('unknown_topic', `topic '${name}' does not exist`);
      return null;
    }
    return route;
  }
}

function configJson(topic: TopicMetadata): Record<string, unknown> {
  return {
    retention_ms: topic.config.retentionMs,
    retention_bytes: topic.config.retentionBytes,
    segment_bytes: topic.config.segmentBytes,
    min_insync_replicas: topic.config.minInsyncReplicas,
    cleanup_policy: topic.config.cleanupPolicy,
  };
}
