// The Kafka API handlers: each request decoded by the codec (src/core/kafka), served through the acceptor and
// its partition router exactly as the HTTP handlers are (the same produce, fetch, describe and control messages
// on the same rings and data links; no second data path), and answered in Kafka's terms.
//
// - Produce: each partition's record batches are checked (src/core/kafka/produce-batches.ts) and sent as they
//   are, one produce message per batch, to the leader, which appends them with offsets of its own; acks 0, 1
//   and -1 map onto the broker's acks, the batch's producer fields onto its idempotent producers.
// - Fetch: whole batches from the leader, as HTTP consume reads them; one round without waiting, then, when
//   it found less than minBytes, one round that waits up to maxWaitMs where the data is and answers as soon as
//   any partition has records.
// - Metadata lists every live broker that advertises a Kafka port (registered through gossip and the metadata
//   log, at its HTTP host), and each partition's leader, replicas and ISR by Kafka node id (node-ids.ts, the
//   same mapping on every broker), so clients send to partition leaders directly; the controller is the
//   metadata (Raft) leader (this broker when the leader has no Kafka port), -1 while none is known. A request
//   reaching a broker that does not lead is still served, through the router, as HTTP requests are.
// - FindCoordinator names the group coordinator (the metadata leader in a cluster) from any broker; group
//   requests reaching another broker answer NOT_COORDINATOR, as Kafka does, and the client looks again.
// - With authentication on, a connection authenticates with SASL PLAIN first (sasl.ts; anything else before
//   closes it), and every API is checked against the ACLs as the equivalent HTTP route is
//   (src/http/route-access.ts): Produce topic:write, Fetch topic:read, ListOffsets and DescribeConfigs
//   topic:describe (as offsets-by-time and describe are on HTTP, and as Kafka has them), Metadata lists only the
//   topics the principal may describe, CreateTopics / DeleteTopics topic:create / topic:delete,
//   InitProducerId cluster:write (POST /producers), FindCoordinator group:describe, JoinGroup group:read and
//   topic:read of each subscribed topic, SyncGroup / Heartbeat / LeaveGroup group:read, OffsetCommit group:read
//   and topic:read, OffsetFetch group:describe and topic:describe. A refusal is the API's own error code
//   (TOPIC_/GROUP_/CLUSTER_AUTHORIZATION_FAILED) on the topic, partition or group refused, never a close; it is
//   counted and logged as HTTP denials are.
// Runs on the acceptor (main) thread only.

import type { Logger } from 'pino';
import type { Acceptor, FetchOutcome, PartitionRoute, ProduceFailure } from '../broker/acceptor.js';
import type { CoordinatorTarget } from '../broker/group-forward.js';
import type { GroupsService } from '../broker/groups-service.js';
import type { BrokerConfig } from '../config/config.js';
import { assert } from '../core/assert.js';
import type { ErrorName } from '../core/errors.js';
import { ApiKey, type ApiVersionRange } from '../core/kafka/api-keys.js';
import { apiVersionsResponse } from '../core/kafka/api-versions.js';
import type { DecodeResult } from '../core/kafka/codec.js';
import { crc32c, rewriteBatchCrcs } from '../core/kafka/crc32c.js';
import { kafkaErrors } from '../core/kafka/error-codes.js';
import { decodeRequestBody, encodeResponseFrame, type RequestHeader } from '../core/kafka/header.js';
import {
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type DeleteTopicsRequest,
  type DeleteTopicsResponse,
  type DescribeConfigsRequest,
  type DescribeConfigsResponse,
  type DescribeConfigsResponseDescribeConfigsResourceResult,
  type FetchRequest,
  type FetchResponse,
  type FetchResponsePartitionData,
  type FindCoordinatorRequest,
  type HeartbeatRequest,
  type InitProducerIdRequest,
  type InitProducerIdResponse,
  type JoinGroupRequest,
  type LeaveGroupRequest,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type ListOffsetsResponseListOffsetsPartitionResponse,
  type MetadataRequest,
  type MetadataResponse,
  type MetadataResponseTopic,
  messageSpecs,
  type OffsetCommitRequest,
  type OffsetFetchRequest,
  type ProduceRequest,
  type ProduceResponse,
  type ProduceResponsePartitionProduceResponse,
  type SaslAuthenticateRequest,
  type SaslHandshakeRequest,
  type SyncGroupRequest,
} from '../core/kafka/messages.generated.js';
import { kafkaNodeIds } from '../core/kafka/node-ids.js';
import { KafkaWriter } from '../core/kafka/primitives.js';
import { checkProducedBatches, type ProducedBatch } from '../core/kafka/produce-batches.js';
import { saslGate } from '../core/kafka/sasl.js';
import type { MessageSpec } from '../core/kafka/schema.js';
import type { AccessRequirement, Operation } from '../core/security/acl.js';
import { CLUSTER_RESOURCE } from '../core/security/acl.js';
import { FETCH_ANSWER_HEADER_BYTES, FETCH_NO_OFFSET_BOUND } from '../messages/fetch.js';
import { Acks, type ProduceAnswer } from '../messages/produce.js';
import { Status } from '../messages/status.js';
import { type AccessControl, ANONYMOUS } from '../security/access.js';
import { crc32 } from '../storage/crc.js';
import { type CoordinatorLookup, type GroupAccess, KafkaGroups } from './groups.js';
import type { HandlerOutcome, KafkaConnection, KafkaHandlers } from './listener.js';
import { KafkaSasl, type SaslAnswer } from './sasl.js';

export interface KafkaHandlerOptions {
  readonly config: BrokerConfig;
  /** The host and port this broker's Kafka listener is reached at (Metadata's broker list). */
  readonly advertised: () => { readonly host: string; readonly port: number };
  /** The broker's group coordinator, shared with HTTP and WebSocket consumers. */
  readonly groups: GroupsService;
  /** Which broker coordinates the groups now (the same answer the HTTP group forwarding follows). */
  readonly coordinator: () => CoordinatorTarget;
  /** Authentication (SASL PLAIN with the HTTP tokens and JWTs) and the ACLs, shared with HTTP. */
  readonly access: AccessControl;
  /** The broker id of the current metadata (Raft) leader, '' when unknown: Metadata's controllerId. */
  readonly metadataLeader: () => string;
  readonly log: Logger;
}

/** APIs served in this build without authentication; ApiVersions lists exactly these. */
const servedWithoutSasl: readonly number[] = [
  ApiKey.ApiVersions,
  ApiKey.Metadata,
  ApiKey.Produce,
  ApiKey.Fetch,
  ApiKey.ListOffsets,
  ApiKey.CreateTopics,
  ApiKey.DeleteTopics,
  ApiKey.InitProducerId,
  ApiKey.FindCoordinator,
  ApiKey.JoinGroup,
  ApiKey.SyncGroup,
  ApiKey.Heartbeat,
  ApiKey.LeaveGroup,
  ApiKey.OffsetCommit,
  ApiKey.OffsetFetch,
  ApiKey.DescribeConfigs,
];
/** With authentication on, SASL is listed too (and only then, so clients without SASL config never try it). */
const servedWithSasl: readonly number[] = [
  ...servedWithoutSasl,
  ApiKey.SaslHandshake,
  ApiKey.SaslAuthenticate,
];

const E = kafkaErrors;
/** Kafka's ListOffsets timestamps that ask for a position rather than a time. */
const LATEST_TIMESTAMP = -1;
const EARLIEST_TIMESTAMP = -2;
/** A fetch's whole answer is bounded by one ring frame per partition and this across partitions. */
const FETCH_RESPONSE_BYTES_MAX = 64 * 1024 * 1024;
/** DescribeConfigs: the topic resource type, config sources and types (Kafka's ConfigResource and ConfigDef). */
const RESOURCE_TOPIC = 2;
const CONFIG_SOURCE_TOPIC = 1;
const CONFIG_SOURCE_DEFAULT = 5;
const CONFIG_TYPE_BOOLEAN = 1;
const CONFIG_TYPE_STRING = 2;
const CONFIG_TYPE_INT = 3;
const CONFIG_TYPE_LONG = 5;
const CONFIG_TYPE_LIST = 7;
/** A partition with nothing to return gets empty records, as Kafka sends them (not null). */
const NO_RECORDS = new Uint8Array(0);

type Decoded<T> = { ok: true; value: T } | { ok: false; outcome: HandlerOutcome };

export class KafkaApiHandlers implements KafkaHandlers {
  readonly served: readonly number[];
  private readonly writer = new KafkaWriter(64 * 1024);
  private readonly groups: KafkaGroups;
  private readonly sasl: KafkaSasl;

  constructor(
    private readonly acceptor: Acceptor,
    private readonly options: KafkaHandlerOptions,
  ) {
    this.groups = new KafkaGroups(options.groups, () => this.coordinatorLookup());
    this.sasl = new KafkaSasl(options.access, options.log);
    this.served = options.access.enabled ? servedWithSasl : servedWithoutSasl;
  }

  private coordinatorLookup(): CoordinatorLookup {
    const target = this.options.coordinator();
    if (target.kind === 'none') return { kind: 'unavailable', reason: target.reason };
    const ids = this.nodeIds();
    if (target.kind === 'here') {
      const { host, port } = this.options.advertised();
      return { kind: 'found', address: { nodeId: ids.get(this.options.config.nodeId)!, host, port } };
    }
    const broker = this.acceptor.router.broker(target.brokerId);
    const nodeId = ids.get(target.brokerId);
    if (broker === undefined || broker.kafkaPort === 0 || nodeId === undefined) {
      return {
        kind: 'unavailable',
        reason: `the group coordinator ${target.brokerId} has not advertised a Kafka port`,
      };
    }
    return { kind: 'found', address: { nodeId, host: broker.httpHost, port: broker.kafkaPort } };
  }

  async handle(
    header: RequestHeader,
    frame: Uint8Array,
    bodyStart: number,
    connection: KafkaConnection,
  ): Promise<HandlerOutcome> {
    const gate = saslGate(connection.sasl, header.api.apiKey, this.sasl.enabled, Date.now());
    if (gate.kind === 'close') return gate;
    const access = this.accessFor(connection, header.api.name);
    switch (header.api.apiKey) {
      case ApiKey.ApiVersions: {
        const decoded = this.decode(messageSpecs.ApiVersions.request, header, frame, bodyStart);
        if (!decoded.ok) return decoded.outcome;
        return this.answer(messageSpecs.ApiVersions.response, header, apiVersionsResponse(this.served, 0));
      }
      case ApiKey.SaslHandshake: {
        const d = this.decode<SaslHandshakeRequest>(
          messageSpecs.SaslHandshake.request,
          header,
          frame,
          bodyStart,
        );
        if (!d.ok) return d.outcome;
        const result = this.sasl.handshake(header.apiVersion, d.value, connection);
        return this.answerSasl(messageSpecs.SaslHandshake.response, header, result);
      }
      case ApiKey.SaslAuthenticate: {
        const d = this.decode<SaslAuthenticateRequest>(
          messageSpecs.SaslAuthenticate.request,
          header,
          frame,
          bodyStart,
        );
        if (!d.ok) return d.outcome;
        const result = await this.sasl.authenticate(d.value, connection);
        return this.answerSasl(messageSpecs.SaslAuthenticate.response, header, result);
      }
      case ApiKey.Metadata: {
        const decoded = this.decode<MetadataRequest>(messageSpecs.Metadata.request, header, frame, bodyStart);
        if (!decoded.ok) return decoded.outcome;
        return this.answer(messageSpecs.Metadata.response, header, this.metadata(decoded.value, access));
      }
      case ApiKey.Produce: {
        const decoded = this.decode<ProduceRequest>(messageSpecs.Produce.request, header, frame, bodyStart);
        if (!decoded.ok) return decoded.outcome;
        return this.produce(header, decoded.value, access);
      }
      case ApiKey.Fetch: {
        const decoded = this.decode<FetchRequest>(messageSpecs.Fetch.request, header, frame, bodyStart);
        if (!decoded.ok) return decoded.outcome;
        return this.answer(messageSpecs.Fetch.response, header, await this.fetch(decoded.value, access));
      }
      case ApiKey.ListOffsets: {
        const decoded = this.decode<ListOffsetsRequest>(
          messageSpecs.ListOffsets.request,
          header,
          frame,
          bodyStart,
        );
        if (!decoded.ok) return decoded.outcome;
        return this.answer(
          messageSpecs.ListOffsets.response,
          header,
          await this.listOffsets(decoded.value, access),
        );
      }
      case ApiKey.CreateTopics: {
        const decoded = this.decode<CreateTopicsRequest>(
          messageSpecs.CreateTopics.request,
          header,
          frame,
          bodyStart,
        );
        if (!decoded.ok) return decoded.outcome;
        return this.answer(
          messageSpecs.CreateTopics.response,
          header,
          await this.createTopics(decoded.value, access),
        );
      }
      case ApiKey.DeleteTopics: {
        const decoded = this.decode<DeleteTopicsRequest>(
          messageSpecs.DeleteTopics.request,
          header,
          frame,
          bodyStart,
        );
        if (!decoded.ok) return decoded.outcome;
        return this.answer(
          messageSpecs.DeleteTopics.response,
          header,
          await this.deleteTopics(decoded.value, access),
        );
      }
      case ApiKey.InitProducerId: {
        const decoded = this.decode<InitProducerIdRequest>(
          messageSpecs.InitProducerId.request,
          header,
          frame,
          bodyStart,
        );
        if (!decoded.ok) return decoded.outcome;
        return this.answer(
          messageSpecs.InitProducerId.response,
          header,
          await this.initProducerId(decoded.value, access),
        );
      }
      case ApiKey.FindCoordinator: {
        const d = this.decode<FindCoordinatorRequest>(
          messageSpecs.FindCoordinator.request,
          header,
          frame,
          bodyStart,
        );
        if (!d.ok) return d.outcome;
        return this.answer(
          messageSpecs.FindCoordinator.response,
          header,
          this.groups.findCoordinator(d.value, header.apiVersion, access),
        );
      }
      case ApiKey.JoinGroup: {
        const d = this.decode<JoinGroupRequest>(messageSpecs.JoinGroup.request, header, frame, bodyStart);
        if (!d.ok) return d.outcome;
        return this.answer(
          messageSpecs.JoinGroup.response,
          header,
          this.groups.join(d.value, header.clientId, access),
        );
      }
      case ApiKey.SyncGroup: {
        const d = this.decode<SyncGroupRequest>(messageSpecs.SyncGroup.request, header, frame, bodyStart);
        if (!d.ok) return d.outcome;
        return this.answer(messageSpecs.SyncGroup.response, header, this.groups.sync(d.value, access));
      }
      case ApiKey.Heartbeat: {
        const d = this.decode<HeartbeatRequest>(messageSpecs.Heartbeat.request, header, frame, bodyStart);
        if (!d.ok) return d.outcome;
        return this.answer(messageSpecs.Heartbeat.response, header, this.groups.heartbeat(d.value, access));
      }
      case ApiKey.LeaveGroup: {
        const d = this.decode<LeaveGroupRequest>(messageSpecs.LeaveGroup.request, header, frame, bodyStart);
        if (!d.ok) return d.outcome;
        return this.answer(messageSpecs.LeaveGroup.response, header, this.groups.leave(d.value, access));
      }
      case ApiKey.OffsetCommit: {
        const d = this.decode<OffsetCommitRequest>(
          messageSpecs.OffsetCommit.request,
          header,
          frame,
          bodyStart,
        );
        if (!d.ok) return d.outcome;
        return this.answer(
          messageSpecs.OffsetCommit.response,
          header,
          await this.groups.commit(d.value, access),
        );
      }
      case ApiKey.OffsetFetch: {
        const d = this.decode<OffsetFetchRequest>(messageSpecs.OffsetFetch.request, header, frame, bodyStart);
        if (!d.ok) return d.outcome;
        return this.answer(
          messageSpecs.OffsetFetch.response,
          header,
          this.groups.fetchOffsets(d.value, header.apiVersion, access),
        );
      }
      case ApiKey.DescribeConfigs: {
        const d = this.decode<DescribeConfigsRequest>(
          messageSpecs.DescribeConfigs.request,
          header,
          frame,
          bodyStart,
        );
        if (!d.ok) return d.outcome;
        return this.answer(
          messageSpecs.DescribeConfigs.response,
          header,
          this.describeConfigs(d.value, access),
        );
      }
      default:
        // Claimed by the codec but not served yet: left out of ApiVersions, so a client asking anyway is broken.
        return { kind: 'close', reason: `${header.api.name} is not served` };
    }
  }

  private decode<T>(
    spec: MessageSpec,
    header: RequestHeader,
    frame: Uint8Array,
    bodyStart: number,
  ): Decoded<T> {
    const result: DecodeResult<T> = decodeRequestBody<T>(spec, header, frame, bodyStart);
    if (result.kind === 'error') return { ok: false, outcome: { kind: 'close', reason: result.reason } };
    return { ok: true, value: result.value };
  }

  /** What the connection's principal may do: checks that count and log denials as HTTP's do. */
  private accessFor(connection: KafkaConnection, apiName: string): GroupAccess {
    const access = this.options.access;
    const principal = connection.sasl.kind === 'authenticated' ? connection.sasl.principal : ANONYMOUS;
    // The denial log names the Kafka API, as HTTP's names the route.
    const where = `kafka ${apiName}`;
    const check = (need: AccessRequirement): boolean => access.authorize(principal, [need], where) === null;
    return {
      principal,
      group: (groupId: string, operation: Operation) =>
        check({ resourceType: 'group', resourceName: groupId, operation }),
      topic: (topic: string, operation: Operation) =>
        check({ resourceType: 'topic', resourceName: topic, operation }),
      cluster: (operation: Operation) =>
        check({ resourceType: 'cluster', resourceName: CLUSTER_RESOURCE, operation }),
      topicVisible: (topic: string) =>
        access.allows(principal, { resourceType: 'topic', resourceName: topic, operation: 'describe' }),
    };
  }

  private answerSasl<T>(spec: MessageSpec, header: RequestHeader, result: SaslAnswer<T>): HandlerOutcome {
    const outcome = this.answer(spec, header, result.body);
    if (result.closeAfter === undefined || outcome.kind !== 'frame') return outcome;
    return { ...outcome, closeAfter: result.closeAfter };
  }

  private answer<T>(spec: MessageSpec, header: RequestHeader, body: T): HandlerOutcome {
    const api: ApiVersionRange = header.api;
    const bytes = encodeResponseFrame(this.writer, spec, api, header.apiVersion, header.correlationId, body);
    // The writer is reused by the next answer; the socket keeps a copy.
    return { kind: 'frame', frame: Buffer.from(bytes) };
  }

  // ------------------------------------------------------------------------------------------------------
  // Metadata.

  /** Over every registered broker, fenced ones too, so that a broker's id does not change as others come and go. */
  private nodeIds(): Map<string, number> {
    const ids = [...this.acceptor.router.allBrokers()].map((b) => b.id);
    ids.push(this.options.config.nodeId);
    return kafkaNodeIds(ids);
  }

  private metadata(request: MetadataRequest, access: GroupAccess): MetadataResponse {
    const router = this.acceptor.router;
    const ids = this.nodeIds();
    const self = ids.get(this.options.config.nodeId)!;
    const { host, port } = this.options.advertised();
    // This broker, and every other live one with a Kafka listener: a fenced broker (gone from gossip) is left
    // out, so clients stop sending to it; its partitions get new leaders from the controller.
    const listed = new Set([this.options.config.nodeId]);
    const brokers: { nodeId: number; host: string; port: number; rack: string | null }[] = [
      { nodeId: self, host, port, rack: null },
    ];
    for (const b of router.allBrokers()) {
      if (b.id === this.options.config.nodeId || b.fenced || b.kafkaPort === 0) continue;
      const nodeId = ids.get(b.id);
      assert(nodeId !== undefined, `broker ${b.id} has no Kafka node id`);
      brokers.push({ nodeId, host: b.httpHost, port: b.kafkaPort, rack: b.rack === '' ? null : b.rack });
      listed.add(b.id);
    }
    // All topics: those the principal may describe (as GET /topics lists them). Named ones it may not describe
    // answer TOPIC_AUTHORIZATION_FAILED whether they exist or not, so a name's existence does not leak.
    const names =
      request.topics === null
        ? router.topicNames().filter((n) => access.topicVisible(n))
        : request.topics.map((t) => t.name ?? '').filter((n) => n !== '');
    const topics: MetadataResponseTopic[] = names.map((name) => {
      const route = router.topic(name);
      if (request.topics !== null && !access.topic(name, 'describe')) {
        return {
          errorCode: E.TOPIC_AUTHORIZATION_FAILED.code,
          name,
          topicId: new Uint8Array(16),
          isInternal: false,
          partitions: [],
          topicAuthorizedOperations: -2147483648,
        };
      }
      if (route === undefined) {
        return {
          errorCode: E.UNKNOWN_TOPIC_OR_PARTITION.code,
          name,
          topicId: new Uint8Array(16),
          isInternal: false,
          partitions: [],
          topicAuthorizedOperations: -2147483648,
        };
      }
      const nodeOf = (id: string): number => ids.get(id) ?? -1;
      // A leader not listed (no Kafka port advertised: an older build) is named as this broker, which serves
      // its partitions through the router; a client thus never looks for a broker it was not told of.
      return {
        errorCode: E.NONE.code,
        name,
        topicId: uuidBytes(route.meta.topicId),
        isInternal: false,
        partitions: route.partitions.map((p) => ({
          errorCode: p.leader === '' ? E.LEADER_NOT_AVAILABLE.code : E.NONE.code,
          partitionIndex: p.partition,
          leaderId: p.leader === '' ? -1 : listed.has(p.leader) ? nodeOf(p.leader) : self,
          leaderEpoch: p.leaderEpoch,
          replicaNodes: p.replicas.map(nodeOf),
          isrNodes: p.isr.map(nodeOf),
          offlineReplicas: [],
        })),
        topicAuthorizedOperations: -2147483648,
      };
    });
    return {
      throttleTimeMs: 0,
      brokers,
      clusterId: 'logbroker',
      controllerId: this.controllerId(listed, ids, self),
      topics,
      clusterAuthorizedOperations: -2147483648,
    };
  }

  /**
   * The metadata leader's node id; -1 while there is none. A leader not listed (no Kafka port: an older build)
   * is named as this broker, as partition leaders are: kafkajs sends CreateTopics and DeleteTopics to the
   * controller and fails on an id it was not told of, and this broker forwards them to the leader anyway.
   */
  private controllerId(listed: ReadonlySet<string>, ids: ReadonlyMap<string, number>, self: number): number {
    const leader = this.options.metadataLeader();
    if (leader === '') return -1;
    return listed.has(leader) ? (ids.get(leader) ?? -1) : self;
  }

  // ------------------------------------------------------------------------------------------------------
  // Produce.

  private async produce(
    header: RequestHeader,
    request: ProduceRequest,
    access: GroupAccess,
  ): Promise<HandlerOutcome> {
    const acks =
      request.acks === -1 ? Acks.all : request.acks === 1 ? Acks.leader : request.acks === 0 ? Acks.none : -1;
    const timeoutMs = Math.max(0, Math.min(request.timeoutMs, 30_000));
    const pending: Promise<void>[] = [];
    const responses = request.topicData.map((topic) => {
      const writable = access.topic(topic.name, 'write');
      return {
        name: topic.name,
        partitionResponses: topic.partitionData.map((p): ProduceResponsePartitionProduceResponse => {
          const out: ProduceResponsePartitionProduceResponse = {
            index: p.index,
            errorCode: E.NONE.code,
            baseOffset: -1,
            logAppendTimeMs: -1,
            logStartOffset: -1,
            recordErrors: [],
            errorMessage: null,
          };
          const fail = (code: number, message: string): ProduceResponsePartitionProduceResponse => {
            out.errorCode = code;
            out.errorMessage = message;
            return out;
          };
          if (request.transactionalId !== null) {
            return fail(E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED.code, 'transactions are not supported');
          }
          if (acks === -1)
            return fail(E.INVALID_REQUIRED_ACKS.code, `acks must be -1, 0 or 1, got ${request.acks}`);
          if (!writable) {
            return fail(
              E.TOPIC_AUTHORIZATION_FAILED.code,
              `principal '${access.principal}' lacks topic:write on '${topic.name}'`,
            );
          }
          const route = this.acceptor.topicRoute(topic.name)?.partitions[p.index];
          if (route === undefined) {
            return fail(E.UNKNOWN_TOPIC_OR_PARTITION.code, `${topic.name}-${p.index} does not exist`);
          }
          const checked = checkProducedBatches(p.records, crc32c, route.link.payloadBytesMax - 64);
          if (checked.kind === 'error') return fail(checked.errorCode, checked.message);
          // Kafka checksums batches with CRC-32C, the log with CRC-32: the same bytes, checksummed its way.
          for (const batch of checked.batches) rewriteBatchCrcs(batch.bytes, crc32);
          pending.push(
            this.produceBatches(route, acks as Acks, timeoutMs, checked.batches).then((result) => {
              out.errorCode = result.errorCode;
              out.errorMessage = result.message;
              out.baseOffset = result.baseOffset;
              out.logStartOffset = result.logStartOffset;
            }),
          );
          return out;
        }),
      };
    });
    await Promise.all(pending);
    // acks=0: Kafka sends no response at all; the client does not wait for one.
    if (acks === Acks.none) return { kind: 'none' };
    return this.answer<ProduceResponse>(messageSpecs.Produce.response, header, {
      responses,
      throttleTimeMs: 0,
    });
  }

  /** Sends a partition's batches one after the other (so they keep their order); stops at the first refusal. */
  private async produceBatches(
    route: PartitionRoute,
    acks: Acks,
    timeoutMs: number,
    batches: readonly ProducedBatch[],
  ): Promise<{ errorCode: number; message: string | null; baseOffset: number; logStartOffset: number }> {
    let baseOffset = -1;
    let logStartOffset = -1;
    for (const batch of batches) {
      const result = await new Promise<{ answer: ProduceAnswer | null; failure: ProduceFailure | null }>(
        (resolve) =>
          this.acceptor.produceBatch(
            route,
            {
              topicSeq: route.topicSeq,
              partition: route.partition,
              acks,
              producer: batch.producer,
              timeoutMs,
            },
            batch.bytes,
            batch.recordCount,
            batch.maxTimestampMs,
            (answer, failure) => resolve({ answer: answer === null ? null : { ...answer }, failure }),
          ),
      );
      if (result.failure !== null) {
        return {
          errorCode: failureCode(result.failure),
          message: result.failure.message,
          baseOffset: -1,
          logStartOffset,
        };
      }
      const answer = result.answer!;
      if (answer.status !== Status.Ok) {
        return { errorCode: produceStatusCode(answer.status), message: null, baseOffset: -1, logStartOffset };
      }
      if (baseOffset === -1) baseOffset = answer.baseOffset;
      logStartOffset = answer.logStartOffset;
    }
    return { errorCode: E.NONE.code, message: null, baseOffset, logStartOffset };
  }

  // ------------------------------------------------------------------------------------------------------
  // Fetch.

  private async fetch(request: FetchRequest, access: GroupAccess): Promise<FetchResponse> {
    if (request.sessionId !== 0 || request.sessionEpoch > 0) {
      // No fetch sessions are kept (sessionId 0 in every answer): a client that thinks it has one starts over.
      return { throttleTimeMs: 0, errorCode: E.FETCH_SESSION_ID_NOT_FOUND.code, sessionId: 0, responses: [] };
    }
    interface Part {
      readonly topic: string;
      readonly out: FetchResponsePartitionData;
      readonly route: PartitionRoute | null;
      readonly offset: number;
      readonly maxBytes: number;
    }
    const parts: Part[] = [];
    // v13 and later name topics by id only; the answer names them the way they were asked.
    const responses = request.topics.map((t) => {
      const name = t.topic !== '' ? t.topic : (this.topicNameById(t.topicId) ?? '');
      const readable = name !== '' && access.topic(name, 'read');
      return {
        topic: t.topic,
        topicId: t.topicId,
        partitions: t.partitions.map((p) => {
          const out: FetchResponsePartitionData = {
            partitionIndex: p.partition,
            errorCode: E.NONE.code,
            highWatermark: -1,
            lastStableOffset: -1,
            logStartOffset: -1,
            abortedTransactions: null,
            preferredReadReplica: -1,
            records: NO_RECORDS,
          };
          const route = this.acceptor.topicRoute(name)?.partitions[p.partition] ?? null;
          if (name === '') out.errorCode = E.UNKNOWN_TOPIC_ID.code;
          else if (!readable) out.errorCode = E.TOPIC_AUTHORIZATION_FAILED.code;
          else if (route === null) out.errorCode = E.UNKNOWN_TOPIC_OR_PARTITION.code;
          else if (p.fetchOffset < 0) out.errorCode = E.OFFSET_OUT_OF_RANGE.code;
          const maxBytes =
            route === null
              ? 0
              : Math.max(
                  1,
                  Math.min(p.partitionMaxBytes, route.link.payloadBytesMax - FETCH_ANSWER_HEADER_BYTES),
                );
          parts.push({
            topic: name,
            out,
            route: out.errorCode === E.NONE.code ? route : null,
            offset: p.fetchOffset,
            maxBytes,
          });
          return out;
        }),
      };
    });
    const live = parts.filter((p) => p.route !== null);
    const responseBytesMax = Math.max(1, Math.min(request.maxBytes, FETCH_RESPONSE_BYTES_MAX));
    const minBytes = Math.max(1, request.minBytes);
    let total = 0;
    const take = (part: Part, outcome: FetchOutcome): number => {
      const out = part.out;
      if (outcome.failure !== null) {
        out.errorCode = failureCode(outcome.failure);
        out.records = NO_RECORDS;
        return 0;
      }
      const h = outcome.header;
      out.errorCode = outcome.status === Status.Ok ? E.NONE.code : fetchStatusCode(outcome.status);
      out.highWatermark = h.highWatermark;
      out.lastStableOffset = h.highWatermark;
      out.logStartOffset = h.logStartOffset;
      if (outcome.status !== Status.Ok || outcome.payload.length === 0) {
        out.records = NO_RECORDS;
        return 0;
      }
      // The answer's bytes live in the ring until the callback returns: the response keeps a copy.
      const records = Buffer.from(outcome.payload);
      rewriteBatchCrcs(records, crc32c);
      out.records = records;
      return outcome.payload.length;
    };
    // Round one: what is there now, from every partition at once.
    await Promise.all(
      live.map(
        (part) =>
          new Promise<void>((resolve) =>
            this.acceptor.fetchBatch(
              part.route!,
              part.offset,
              part.maxBytes,
              0,
              FETCH_NO_OFFSET_BOUND,
              (outcome) => {
                total += take(part, outcome);
                resolve();
              },
            ),
          ),
      ),
    );
    const waitMs = Math.max(0, Math.min(request.maxWaitMs, this.options.config.maxWaitMs));
    if (total < minBytes && waitMs > 0 && live.length > 0) {
      // Round two: every partition waits where its data is; the first records answer the whole request, and
      // partitions that have not answered by then keep round one's (empty) result.
      await new Promise<void>((resolve) => {
        let answered = 0;
        let done = false;
        const finish = (): void => {
          if (done) return;
          done = true;
          resolve();
        };
        for (const part of live) {
          this.acceptor.fetchBatch(
            part.route!,
            part.offset,
            part.maxBytes,
            waitMs,
            FETCH_NO_OFFSET_BOUND,
            (outcome) => {
              answered++;
              if (done) return;
              total += take(part, outcome);
              // A short grace lets answers already on their way join this response.
              if (total >= minBytes) setImmediate(finish);
              if (answered === live.length) finish();
            },
          );
        }
      });
    }
    // The whole answer stays within maxBytes, except that the first records found are always returned.
    let sent = 0;
    for (const part of parts) {
      const records = part.out.records;
      if (records === null || records.length === 0) continue;
      if (sent > 0 && sent + records.length > responseBytesMax) part.out.records = NO_RECORDS;
      else sent += records.length;
    }
    return { throttleTimeMs: 0, errorCode: E.NONE.code, sessionId: 0, responses };
  }

  // ------------------------------------------------------------------------------------------------------
  // ListOffsets.

  private async listOffsets(request: ListOffsetsRequest, access: GroupAccess): Promise<ListOffsetsResponse> {
    const pending: Promise<void>[] = [];
    const topics = request.topics.map((t) => {
      const describable = access.topic(t.name, 'describe');
      return {
        name: t.name,
        partitions: t.partitions.map((p) => {
          const out: ListOffsetsResponseListOffsetsPartitionResponse = {
            partitionIndex: p.partitionIndex,
            errorCode: E.NONE.code,
            timestamp: -1,
            offset: -1,
            leaderEpoch: -1,
          };
          if (!describable) {
            out.errorCode = E.TOPIC_AUTHORIZATION_FAILED.code;
            return out;
          }
          const route = this.acceptor.topicRoute(t.name)?.partitions[p.partitionIndex];
          if (route === undefined) {
            out.errorCode = E.UNKNOWN_TOPIC_OR_PARTITION.code;
            return out;
          }
          pending.push(this.listOffset(route, p.timestamp, out));
          return out;
        }),
      };
    });
    await Promise.all(pending);
    return { throttleTimeMs: 0, topics };
  }

  private async listOffset(
    route: PartitionRoute,
    timestamp: number,
    out: ListOffsetsResponseListOffsetsPartitionResponse,
  ): Promise<void> {
    if (timestamp === LATEST_TIMESTAMP || timestamp === EARLIEST_TIMESTAMP) {
      const answer = await this.acceptor.describe(route);
      if ('failure' in answer) {
        out.errorCode = failureCode(answer.failure);
        return;
      }
      if (answer.status !== Status.Ok) {
        out.errorCode = fetchStatusCode(answer.status);
        return;
      }
      if (answer.highWatermark < 0) {
        out.errorCode = E.OFFSET_NOT_AVAILABLE.code;
        return;
      }
      // Consumers read up to the high watermark: "latest" is it, as in Kafka (read_uncommitted, no transactions).
      out.offset = timestamp === LATEST_TIMESTAMP ? answer.highWatermark : answer.logStartOffset;
      out.leaderEpoch = answer.leaderEpoch;
      return;
    }
    if (timestamp < 0) {
      out.errorCode = E.INVALID_REQUEST.code;
      return;
    }
    const answer = await this.acceptor.controlPartition(route, {
      op: 'offset_for_timestamp',
      topicSeq: route.topicSeq,
      partition: route.partition,
      timestampMs: timestamp,
    });
    if (!answer.ok) {
      out.errorCode = answer.status === -1 ? E.NOT_LEADER_OR_FOLLOWER.code : fetchStatusCode(answer.status);
      return;
    }
    const offset = (answer as { offset?: number | null }).offset ?? null;
    // No record at or after the time: Kafka answers offset -1, timestamp -1.
    out.offset = offset ?? -1;
    out.timestamp = offset === null ? -1 : timestamp;
    out.leaderEpoch = route.leaderEpoch;
  }

  // ------------------------------------------------------------------------------------------------------
  // Topics and producers.

  private async createTopics(
    request: CreateTopicsRequest,
    access: GroupAccess,
  ): Promise<CreateTopicsResponse> {
    const seen = new Map<string, number>();
    for (const t of request.topics) seen.set(t.name, (seen.get(t.name) ?? 0) + 1);
    const topics = await Promise.all(
      request.topics.map(async (t) => {
        const result = {
          name: t.name,
          topicId: new Uint8Array(16),
          errorCode: E.NONE.code,
          errorMessage: null as string | null,
          numPartitions: -1,
          replicationFactor: -1,
          configs: null,
        };
        const fail = (code: number, message: string) => ({
          ...result,
          errorCode: code,
          errorMessage: message,
        });
        if ((seen.get(t.name) ?? 0) > 1)
          return fail(E.INVALID_REQUEST.code, `topic '${t.name}' is named twice`);
        if (!access.topic(t.name, 'create')) {
          return fail(
            E.TOPIC_AUTHORIZATION_FAILED.code,
            `principal '${access.principal}' lacks topic:create on '${t.name}'`,
          );
        }
        if (t.assignments.length > 0) {
          return fail(E.INVALID_REPLICA_ASSIGNMENT.code, 'manual replica assignments are not supported');
        }
        const body = topicBody(t.numPartitions, t.replicationFactor, t.configs);
        if (typeof body === 'string') return fail(E.INVALID_CONFIG.code, body);
        if (request.validateOnly) return result;
        const outcome = await this.acceptor.createTopicFromBody(t.name, body);
        if (outcome.kind === 'error') return fail(createErrorCode(outcome.error), outcome.message);
        if (outcome.kind === 'exists_same' || outcome.kind === 'exists_different') {
          return fail(E.TOPIC_ALREADY_EXISTS.code, `topic '${t.name}' already exists`);
        }
        const meta = outcome.topic?.meta;
        return {
          ...result,
          topicId: meta === undefined ? result.topicId : uuidBytes(meta.topicId),
          numPartitions: meta?.numPartitions ?? -1,
          replicationFactor: meta?.partitions[0]?.replicas.length ?? -1,
        };
      }),
    );
    return { throttleTimeMs: 0, topics };
  }

  /** A topic's settings (resource type 2), with whether each is the broker's default; other resources refused. */
  private describeConfigs(request: DescribeConfigsRequest, access: GroupAccess): DescribeConfigsResponse {
    const config = this.options.config;
    const results = request.resources.map((resource) => {
      const base = { resourceType: resource.resourceType, resourceName: resource.resourceName };
      if (resource.resourceType !== RESOURCE_TOPIC) {
        return {
          ...base,
          errorCode: E.INVALID_REQUEST.code,
          errorMessage: 'only topic configs (resource type 2) are described',
          configs: [],
        };
      }
      if (!access.topic(resource.resourceName, 'describe')) {
        return {
          ...base,
          errorCode: E.TOPIC_AUTHORIZATION_FAILED.code,
          errorMessage: `principal '${access.principal}' lacks topic:describe on '${resource.resourceName}'`,
          configs: [],
        };
      }
      const route = this.acceptor.topicRoute(resource.resourceName);
      if (route === undefined) {
        return {
          ...base,
          errorCode: E.UNKNOWN_TOPIC_OR_PARTITION.code,
          errorMessage: `topic '${resource.resourceName}' does not exist`,
          configs: [],
        };
      }
      const c = route.meta.config;
      const entry = (
        name: string,
        value: string,
        isDefault: boolean,
        readOnly: boolean,
        configType: number,
      ): DescribeConfigsResponseDescribeConfigsResourceResult => ({
        name,
        value,
        readOnly,
        isDefault,
        configSource: isDefault ? CONFIG_SOURCE_DEFAULT : CONFIG_SOURCE_TOPIC,
        isSensitive: false,
        synonyms: [],
        configType,
        documentation: null,
      });
      const all = [
        entry(
          'retention.ms',
          String(c.retentionMs),
          c.retentionMs === config.retentionMs,
          false,
          CONFIG_TYPE_LONG,
        ),
        entry(
          'retention.bytes',
          String(c.retentionBytes),
          c.retentionBytes === config.retentionBytes,
          false,
          CONFIG_TYPE_LONG,
        ),
        entry(
          'segment.bytes',
          String(c.segmentBytes),
          c.segmentBytes === config.segmentBytes,
          true,
          CONFIG_TYPE_INT,
        ),
        entry('min.insync.replicas', String(c.minInsyncReplicas), false, false, CONFIG_TYPE_INT),
        entry('cleanup.policy', c.cleanupPolicy, c.cleanupPolicy === 'delete', true, CONFIG_TYPE_LIST),
        entry(
          'unclean.leader.election.enable',
          String(c.uncleanLeaderElection),
          !c.uncleanLeaderElection,
          true,
          CONFIG_TYPE_BOOLEAN,
        ),
        entry('max.message.bytes', String(route.limits.recordBytesMax), true, true, CONFIG_TYPE_INT),
        entry('compression.type', 'producer', true, true, CONFIG_TYPE_STRING),
      ];
      const keys = resource.configurationKeys;
      return {
        ...base,
        errorCode: E.NONE.code,
        errorMessage: null,
        configs: keys === null ? all : all.filter((e) => keys.includes(e.name)),
      };
    });
    return { throttleTimeMs: 0, results };
  }

  /** v0-5 name topics (`topicNames`), v6 and later name them or give their ids (`topics`). */
  private async deleteTopics(
    request: DeleteTopicsRequest,
    access: GroupAccess,
  ): Promise<DeleteTopicsResponse> {
    const zero = new Uint8Array(16);
    const wanted =
      request.topicNames.length > 0
        ? request.topicNames.map((name) => ({ name, topicId: zero }))
        : request.topics.map((t) => ({ name: t.name ?? this.topicNameById(t.topicId), topicId: t.topicId }));
    const responses = await Promise.all(
      wanted.map(async ({ name, topicId }) => {
        if (name === null) {
          return { name, topicId, errorCode: E.UNKNOWN_TOPIC_ID.code, errorMessage: 'no topic has this id' };
        }
        if (!access.topic(name, 'delete')) {
          return {
            name,
            topicId,
            errorCode: E.TOPIC_AUTHORIZATION_FAILED.code,
            errorMessage: `principal '${access.principal}' lacks topic:delete on '${name}'`,
          };
        }
        const id = this.acceptor.topicRoute(name)?.meta.topicId;
        const answerId = id === undefined ? topicId : uuidBytes(id);
        try {
          const kind = await this.acceptor.deleteTopicByName(name);
          return kind === 'deleted'
            ? { name, topicId: answerId, errorCode: E.NONE.code, errorMessage: null }
            : {
                name,
                topicId: answerId,
                errorCode: E.UNKNOWN_TOPIC_OR_PARTITION.code,
                errorMessage: `topic '${name}' does not exist`,
              };
        } catch (error) {
          return {
            name,
            topicId: answerId,
            errorCode: E.REQUEST_TIMED_OUT.code,
            errorMessage: String((error as Error).message),
          };
        }
      }),
    );
    return { throttleTimeMs: 0, responses };
  }

  private topicNameById(topicId: Uint8Array): string | null {
    const hex = Buffer.from(topicId).toString('hex');
    for (const route of this.acceptor.router.allTopics()) {
      if (route.meta.topicId.replaceAll('-', '').toLowerCase() === hex) return route.meta.name;
    }
    return null;
  }

  private async initProducerId(
    request: InitProducerIdRequest,
    access: GroupAccess,
  ): Promise<InitProducerIdResponse> {
    const refuse = (code: number): InitProducerIdResponse => ({
      throttleTimeMs: 0,
      errorCode: code,
      producerId: -1,
      producerEpoch: -1,
    });
    // Transactions are not supported; an idempotent producer (no transactional id) gets a fresh id, epoch 0.
    if (request.transactionalId !== null) return refuse(E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED.code);
    // Kafka's IdempotentWrite; POST /producers needs cluster:write.
    if (!access.cluster('write')) return refuse(E.CLUSTER_AUTHORIZATION_FAILED.code);
    try {
      const producerId = await this.acceptor.allocateProducerId();
      return { throttleTimeMs: 0, errorCode: E.NONE.code, producerId, producerEpoch: 0 };
    } catch {
      return refuse(E.COORDINATOR_NOT_AVAILABLE.code);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Mapping the broker's outcomes onto Kafka error codes.

function produceStatusCode(status: number): number {
  switch (status) {
    case Status.Ok:
      return E.NONE.code;
    case Status.UnknownPartition:
      return E.UNKNOWN_TOPIC_OR_PARTITION.code;
    case Status.TooLarge:
      return E.MESSAGE_TOO_LARGE.code;
    case Status.NotLeader:
    case Status.ShuttingDown:
    case Status.LostLeadership:
    case Status.HighWatermarkNotReady:
      return E.NOT_LEADER_OR_FOLLOWER.code;
    case Status.NotEnoughReplicas:
      return E.NOT_ENOUGH_REPLICAS.code;
    case Status.AckTimeout:
    case Status.Overloaded:
      return E.REQUEST_TIMED_OUT.code;
    case Status.OutOfOrderSequence:
      return E.OUT_OF_ORDER_SEQUENCE_NUMBER.code;
    case Status.FencedProducerEpoch:
      return E.INVALID_PRODUCER_EPOCH.code;
    case Status.UnknownProducer:
      return E.UNKNOWN_PRODUCER_ID.code;
    default:
      return E.KAFKA_STORAGE_ERROR.code;
  }
}

function fetchStatusCode(status: number): number {
  switch (status) {
    case Status.Ok:
      return E.NONE.code;
    case Status.OffsetOutOfRange:
      return E.OFFSET_OUT_OF_RANGE.code;
    case Status.UnknownPartition:
      return E.UNKNOWN_TOPIC_OR_PARTITION.code;
    case Status.NotLeader:
    case Status.ShuttingDown:
      return E.NOT_LEADER_OR_FOLLOWER.code;
    case Status.HighWatermarkNotReady:
      return E.OFFSET_NOT_AVAILABLE.code;
    case Status.Overloaded:
      return E.REQUEST_TIMED_OUT.code;
    default:
      return E.KAFKA_STORAGE_ERROR.code;
  }
}

/** A request that got no worker's answer: no leader reachable (retriable), or an unknown outcome. */
function failureCode(failure: ProduceFailure): number {
  if (failure.indefinite) return E.REQUEST_TIMED_OUT.code;
  switch (failure.name) {
    case 'payload_too_large':
      return E.MESSAGE_TOO_LARGE.code;
    case 'overloaded':
      return E.REQUEST_TIMED_OUT.code;
    case 'no_leader':
      return E.LEADER_NOT_AVAILABLE.code;
    default:
      return E.UNKNOWN_SERVER_ERROR.code;
  }
}

function createErrorCode(error: ErrorName): number {
  switch (error) {
    case 'invalid_name':
      return E.INVALID_TOPIC_EXCEPTION.code;
    case 'too_many_partitions':
      return E.INVALID_PARTITIONS.code;
    case 'overloaded':
    case 'no_leader':
      return E.REQUEST_TIMED_OUT.code;
    default:
      return E.INVALID_REQUEST.code;
  }
}

/** Kafka topic settings this broker keeps, and the body field each one becomes. */
const topicConfigFields: Record<string, string> = {
  'retention.ms': 'retention_ms',
  'retention.bytes': 'retention_bytes',
  'segment.bytes': 'segment_bytes',
  'min.insync.replicas': 'min_insync_replicas',
  'cleanup.policy': 'cleanup_policy',
  'unclean.leader.election.enable': 'unclean_leader_election',
};

/** The HTTP topic body for a CreateTopics entry (-1 means the broker's default), or a problem. */
function topicBody(
  numPartitions: number,
  replicationFactor: number,
  configs: readonly { name: string; value: string | null }[],
): Record<string, unknown> | string {
  const body: Record<string, unknown> = {};
  if (numPartitions !== -1) body.num_partitions = numPartitions;
  if (replicationFactor !== -1) body.replication_factor = replicationFactor;
  const config: Record<string, unknown> = {};
  for (const { name, value } of configs) {
    const field = topicConfigFields[name];
    if (field === undefined)
      return `config '${name}' is not supported; supported: ${Object.keys(topicConfigFields).join(', ')}`;
    if (value === null) continue;
    if (field === 'cleanup_policy') config[field] = value;
    else if (field === 'unclean_leader_election') {
      if (value !== 'true' && value !== 'false') return `${name} must be true or false, got '${value}'`;
      config[field] = value === 'true';
    } else {
      if (!/^-?\d+$/.test(value)) return `${name} must be an integer, got '${value}'`;
      config[field] = Number(value);
    }
  }
  if (Object.keys(config).length > 0) body.config = config;
  return body;
}

/** A UUID string's 16 bytes (all zero when it is not one). */
function uuidBytes(id: string): Uint8Array {
  const hex = id.replaceAll('-', '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return new Uint8Array(16);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}
