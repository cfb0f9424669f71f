// Kafka's classic consumer-group protocol (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// OffsetCommit, OffsetFetch) on the broker's one group coordinator (src/broker/groups-service.ts, the same the
// HTTP and WebSocket consumers use), so that Kafka clients and HTTP consumers can share a group and its offsets.
//
// The coordinator assigns partitions itself (cooperatively: a partition moves once its owner has let go), where
// Kafka's classic protocol lets a leader member compute the assignment. The mapping:
// - JoinGroup joins the member with the topics of its subscription and answers at once, naming the member its
//   own leader with itself as the only member; the assignment a client computes from that is not used.
// - SyncGroup is the member's acknowledgement (a coordinator heartbeat) and returns the partitions the
//   coordinator gives it, encoded as a consumer-protocol assignment.
// - Heartbeat answers REBALANCE_IN_PROGRESS whenever the coordinator's generation or the member's partitions
//   differ from what its last SyncGroup returned: the client joins and syncs again and gets them. A partition
//   moving between members thus reaches its new owner after a round or two of heartbeats.
// - Commits and fetches of offsets go to the coordinator's offsets, made durable the same way as HTTP commits.
// Each request is checked against the ACLs (`GroupAccess`) as the HTTP group routes are: FindCoordinator
// group:describe; JoinGroup group:read and topic:read of each subscribed topic; SyncGroup, Heartbeat and
// LeaveGroup group:read; OffsetCommit group:read and topic:read; OffsetFetch group:describe and topic:describe
// (all of a group's offsets: only the topics the principal may describe). Refusals are the API's error codes.
// Runs on the acceptor (main) thread only.
import { randomUUID } from 'node:crypto';
import type { GroupsService } from '../broker/groups-service.js';
import { decodeSubscriptionTopics, encodeAssignment } from '../core/kafka/consumer-protocol.js';
import { kafkaErrors } from '../core/kafka/error-codes.js';
import type {
  FindCoordinatorRequest,
  FindCoordinatorResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  JoinGroupRequest,
  JoinGroupResponse,
  LeaveGroupRequest,
  LeaveGroupResponse,
  OffsetCommitRequest,
  OffsetCommitResponse,
  OffsetFetchRequest,
  OffsetFetchResponse,
  OffsetFetchResponseTopic,
  SyncGroupRequest,
  SyncGroupResponse,
} from '../core/kafka/messages.generated.js';
import type { CommittedOffset } from '../core/metadata/state-machine.js';
import type { Operation } from '../core/security/acl.js';

const E = kafkaErrors;
/** Kafka's FindCoordinator key types: 0 a group, 1 a transaction (not supported). */
const KEY_TYPE_GROUP = 0;
/** First versions that batch: FindCoordinator's keys, OffsetFetch's groups. */
const FIND_COORDINATOR_BATCHED = 4;
const OFFSET_FETCH_BATCHED = 8;
/** Topics one subscription may name (the coordinator's own bound applies too). */
const SUBSCRIBED_TOPICS_MAX = 1000;
/** Members whose last SyncGroup is remembered; past it the oldest are forgotten (they rejoin). */
const SYNCED_MEMBERS_MAX = 100_000;

/**
 * What the connection's principal may do. The checks count and log a denial (as HTTP's do); `topicVisible` does
 * not, for filtering lists.
 */
export interface GroupAccess {
  readonly principal: string;
  group(groupId: string, operation: Operation): boolean;
  topic(topic: string, operation: Operation): boolean;
  cluster(operation: Operation): boolean;
  topicVisible(topic: string): boolean;
}

export interface CoordinatorAddress {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

/** Where the group coordinator's Kafka listener is, or why none can be named now. */
export type CoordinatorLookup =
  | { readonly kind: 'found'; readonly address: CoordinatorAddress }
  | { readonly kind: 'unavailable'; readonly reason: string };

interface Synced {
  readonly generation: number;
  /** The assignment the member was given, as a stable text for comparison. */
  readonly assignment: string;
}

function key(group: string, member: string): string {
  return `${group}\u0000${member}`;
}

function assignmentText(assignments: Readonly<Record<string, readonly number[]>>): string {
  return JSON.stringify(
    Object.keys(assignments)
      .sort()
      .map((t) => [t, assignments[t]]),
  );
}

export class KafkaGroups {
  private readonly synced = new Map<string, Synced>();

  constructor(
    private readonly groups: GroupsService,
    /** The coordinating broker's Kafka address (this broker's or another's), from any broker. */
    private readonly coordinator: () => CoordinatorLookup,
  ) {}

  /**
   * v0-3 ask for one key, v4 and later for a list (`coordinatorKeys`); every group has the one coordinator (the
   * metadata leader in a cluster), whose Kafka address every broker knows from its registration.
   */
  findCoordinator(
    request: FindCoordinatorRequest,
    version: number,
    access: GroupAccess,
  ): FindCoordinatorResponse {
    const refused = (groupId: string) => ({
      errorCode: E.GROUP_AUTHORIZATION_FAILED.code,
      errorMessage: `principal '${access.principal}' lacks group:describe on '${groupId}'`,
      nodeId: -1,
      host: '',
      port: -1,
    });
    const one = (): {
      errorCode: number;
      errorMessage: string | null;
      nodeId: number;
      host: string;
      port: number;
    } => {
      if (request.keyType !== KEY_TYPE_GROUP) {
        return {
          errorCode: E.COORDINATOR_NOT_AVAILABLE.code,
          errorMessage: 'transactions are not supported',
          nodeId: -1,
          host: '',
          port: -1,
        };
      }
      const lookup = this.coordinator();
      if (lookup.kind === 'unavailable') {
        return {
          errorCode: E.COORDINATOR_NOT_AVAILABLE.code,
          errorMessage: lookup.reason,
          nodeId: -1,
          host: '',
          port: -1,
        };
      }
      return { errorCode: E.NONE.code, errorMessage: null, ...lookup.address };
    };
    const answer = one();
    const group = request.keyType === KEY_TYPE_GROUP;
    if (version >= FIND_COORDINATOR_BATCHED) {
      const coordinators = request.coordinatorKeys.map((key) => ({
        key,
        ...(group && !access.group(key, 'describe') ? refused(key) : answer),
      }));
      return { throttleTimeMs: 0, ...answer, coordinators };
    }
    if (group && !access.group(request.key, 'describe')) {
      return { throttleTimeMs: 0, ...refused(request.key), coordinators: [] };
    }
    return { throttleTimeMs: 0, ...answer, coordinators: [] };
  }

  join(request: JoinGroupRequest, clientId: string | null, access: GroupAccess): JoinGroupResponse {
    const answer = (errorCode: number, fields: Partial<JoinGroupResponse> = {}): JoinGroupResponse => ({
      throttleTimeMs: 0,
      errorCode,
      generationId: -1,
      protocolType: null,
      protocolName: null,
      leader: '',
      memberId: request.memberId,
      members: [],
      ...fields,
    });
    if (!this.groups.coordinates) return answer(E.NOT_COORDINATOR.code);
    if (!access.group(request.groupId, 'read')) return answer(E.GROUP_AUTHORIZATION_FAILED.code);
    const protocol = request.protocols[0];
    if (request.protocolType !== 'consumer' || protocol === undefined) {
      return answer(E.INCONSISTENT_GROUP_PROTOCOL.code);
    }
    const subscription = decodeSubscriptionTopics(protocol.metadata, SUBSCRIBED_TOPICS_MAX);
    if (subscription.kind === 'error') return answer(E.INCONSISTENT_GROUP_PROTOCOL.code);
    // As POST /consumer-groups/{g}/members: the member reads every topic it subscribes to.
    if (!subscription.topics.every((t) => access.topic(t, 'read'))) {
      return answer(E.TOPIC_AUTHORIZATION_FAILED.code);
    }
    const memberId = request.memberId !== '' ? request.memberId : `${clientId ?? 'kafka'}-${randomUUID()}`;
    const result = this.groups.joinMember(
      request.groupId,
      memberId,
      subscription.topics,
      request.sessionTimeoutMs,
    );
    switch (result.kind) {
      case 'ok':
        break;
      case 'invalid_request':
        return answer(
          /session/i.test(result.reason) ? E.INVALID_SESSION_TIMEOUT.code : E.INVALID_GROUP_ID.code,
        );
      case 'too_many_groups':
      case 'group_full':
        return answer(E.GROUP_MAX_SIZE_REACHED.code);
      default:
        return answer(E.INCONSISTENT_GROUP_PROTOCOL.code);
    }
    this.synced.delete(key(request.groupId, memberId));
    return answer(E.NONE.code, {
      generationId: result.generation,
      protocolType: 'consumer',
      protocolName: protocol.name,
      leader: memberId,
      memberId,
      members: [{ memberId, groupInstanceId: null, metadata: protocol.metadata }],
    });
  }

  sync(request: SyncGroupRequest, access: GroupAccess): SyncGroupResponse {
    const answer = (errorCode: number, assignment: Uint8Array = new Uint8Array(0)): SyncGroupResponse => ({
      throttleTimeMs: 0,
      errorCode,
      protocolType: 'consumer',
      protocolName: request.protocolName,
      assignment,
    });
    if (!this.groups.coordinates) return answer(E.NOT_COORDINATOR.code);
    if (!access.group(request.groupId, 'read')) return answer(E.GROUP_AUTHORIZATION_FAILED.code);
    const result = this.groups.heartbeatMember(request.groupId, request.memberId);
    if (result.kind !== 'ok') return answer(E.UNKNOWN_MEMBER_ID.code);
    if (result.generation !== request.generationId) return answer(E.REBALANCE_IN_PROGRESS.code);
    if (this.synced.size >= SYNCED_MEMBERS_MAX) this.synced.delete(this.synced.keys().next().value!);
    this.synced.set(key(request.groupId, request.memberId), {
      generation: result.generation,
      assignment: assignmentText(result.assignments),
    });
    return answer(E.NONE.code, encodeAssignment(result.assignments));
  }

  heartbeat(request: HeartbeatRequest, access: GroupAccess): HeartbeatResponse {
    const answer = (errorCode: number): HeartbeatResponse => ({ throttleTimeMs: 0, errorCode });
    if (!this.groups.coordinates) return answer(E.NOT_COORDINATOR.code);
    if (!access.group(request.groupId, 'read')) return answer(E.GROUP_AUTHORIZATION_FAILED.code);
    const result = this.groups.heartbeatMember(request.groupId, request.memberId);
    if (result.kind !== 'ok') return answer(E.UNKNOWN_MEMBER_ID.code);
    const synced = this.synced.get(key(request.groupId, request.memberId));
    if (
      synced === undefined ||
      result.generation !== request.generationId ||
      result.generation !== synced.generation ||
      assignmentText(result.assignments) !== synced.assignment
    ) {
      return answer(E.REBALANCE_IN_PROGRESS.code);
    }
    return answer(E.NONE.code);
  }

  leave(request: LeaveGroupRequest, access: GroupAccess): LeaveGroupResponse {
    if (!this.groups.coordinates)
      return { throttleTimeMs: 0, errorCode: E.NOT_COORDINATOR.code, members: [] };
    if (!access.group(request.groupId, 'read')) {
      return { throttleTimeMs: 0, errorCode: E.GROUP_AUTHORIZATION_FAILED.code, members: [] };
    }
    // v0-2 name one member; v3 and later a list of them.
    const ids = request.members.length > 0 ? request.members.map((m) => m.memberId) : [request.memberId];
    const members = ids.map((memberId) => {
      const known = this.groups.registry
        .describe(request.groupId)
        ?.members.some((m) => m.memberId === memberId);
      if (known === true) this.groups.leaveMember(request.groupId, memberId);
      this.synced.delete(key(request.groupId, memberId));
      return {
        memberId,
        groupInstanceId: null,
        errorCode: known === true ? E.NONE.code : E.UNKNOWN_MEMBER_ID.code,
      };
    });
    const errorCode = request.members.length === 0 ? members[0]!.errorCode : E.NONE.code;
    return { throttleTimeMs: 0, errorCode, members };
  }

  async commit(request: OffsetCommitRequest, access: GroupAccess): Promise<OffsetCommitResponse> {
    const coordinates = this.groups.coordinates;
    const groupAllowed = !coordinates || access.group(request.groupId, 'read');
    // A client outside the group protocol (no member, generation -1) commits standalone, as HTTP does.
    const standalone = request.memberId === '' && request.generationIdOrMemberEpoch < 0;
    const memberId = standalone ? undefined : request.memberId;
    const generation = standalone ? undefined : request.generationIdOrMemberEpoch;
    const nowMs = Date.now();
    const accepted: CommittedOffset[] = [];
    const acceptedCodes: { errorCode: number }[] = [];
    const topics = request.topics.map((t) => {
      const topicAllowed = groupAllowed && coordinates && access.topic(t.name, 'read');
      return {
        name: t.name,
        partitions: t.partitions.map((p) => {
          const out = { partitionIndex: p.partitionIndex, errorCode: E.NONE.code };
          if (!coordinates) return { ...out, errorCode: E.NOT_COORDINATOR.code };
          if (!groupAllowed) return { ...out, errorCode: E.GROUP_AUTHORIZATION_FAILED.code };
          if (!topicAllowed) return { ...out, errorCode: E.TOPIC_AUTHORIZATION_FAILED.code };
          if (p.committedOffset < 0) return { ...out, errorCode: E.INVALID_COMMIT_OFFSET_SIZE.code };
          const metadata = p.committedMetadata ?? '';
          const result = this.groups.tryCommit(
            request.groupId,
            memberId,
            generation,
            t.name,
            p.partitionIndex,
            p.committedOffset,
            nowMs,
            metadata,
          );
          if (result.kind !== 'ok') return { ...out, errorCode: commitErrorCode(result.kind) };
          accepted.push({
            topic: t.name,
            partition: p.partitionIndex,
            offset: p.committedOffset,
            metadata,
            committedAtMs: nowMs,
          });
          acceptedCodes.push(out);
          return out;
        }),
      };
    });
    if (accepted.length > 0) {
      try {
        await this.groups.commitAllDurably(request.groupId, accepted);
      } catch {
        // Not durable: the client is told to retry (a retry commits it again; in a cluster nothing was recorded).
        for (const out of acceptedCodes) out.errorCode = E.COORDINATOR_NOT_AVAILABLE.code;
      }
    }
    return { throttleTimeMs: 0, topics };
  }

  /** v0-7 name one group (`groupId`, `topics`), v8 and later a list of them (`groups`). */
  fetchOffsets(request: OffsetFetchRequest, version: number, access: GroupAccess): OffsetFetchResponse {
    if (version >= OFFSET_FETCH_BATCHED) {
      const groups = request.groups.map((g) => {
        const one = this.groupOffsets(g.groupId, g.topics, access);
        return { groupId: g.groupId, topics: one.topics, errorCode: one.errorCode };
      });
      return { throttleTimeMs: 0, topics: [], errorCode: E.NONE.code, groups };
    }
    const one = this.groupOffsets(request.groupId, request.topics, access);
    return { throttleTimeMs: 0, topics: one.topics, errorCode: one.errorCode, groups: [] };
  }

  private groupOffsets(
    groupId: string,
    topics: readonly { name: string; partitionIndexes: number[] }[] | null,
    access: GroupAccess,
  ): { errorCode: number; topics: OffsetFetchResponseTopic[] } {
    if (!this.groups.coordinates) return { errorCode: E.NOT_COORDINATOR.code, topics: [] };
    if (!access.group(groupId, 'describe'))
      return { errorCode: E.GROUP_AUTHORIZATION_FAILED.code, topics: [] };
    const registry = this.groups.registry;
    const refused = (partitionIndex: number) => ({
      partitionIndex,
      committedOffset: -1,
      committedLeaderEpoch: -1,
      metadata: '',
      errorCode: E.TOPIC_AUTHORIZATION_FAILED.code,
    });
    const partition = (topic: string, partitionIndex: number) => {
      const offset = registry.committedOffset(groupId, topic, partitionIndex);
      return {
        partitionIndex,
        committedOffset: offset ?? -1,
        committedLeaderEpoch: -1,
        metadata: '',
        errorCode: E.NONE.code,
      };
    };
    if (topics === null) {
      // Every committed offset of the group.
      const byTopic = new Map<string, number[]>();
      for (const o of registry.describe(groupId)?.offsets ?? []) {
        if (!access.topicVisible(o.topic)) continue;
        byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o.partition]);
      }
      return {
        errorCode: E.NONE.code,
        topics: [...byTopic].map(([name, ps]) => ({ name, partitions: ps.map((p) => partition(name, p)) })),
      };
    }
    return {
      errorCode: E.NONE.code,
      topics: topics.map((t) => {
        const allowed = access.topic(t.name, 'describe');
        return {
          name: t.name,
          partitions: t.partitionIndexes.map((p) => (allowed ? partition(t.name, p) : refused(p))),
        };
      }),
    };
  }
}

function commitErrorCode(kind: string): number {
  switch (kind) {
    case 'unknown_member':
    case 'unknown_group':
    case 'group_has_members':
      return E.UNKNOWN_MEMBER_ID.code;
    case 'stale_generation':
      return E.ILLEGAL_GENERATION.code;
    case 'not_owner':
      return E.REBALANCE_IN_PROGRESS.code;
    case 'unknown_partition':
      return E.UNKNOWN_TOPIC_OR_PARTITION.code;
    case 'too_many_groups':
      return E.GROUP_MAX_SIZE_REACHED.code;
    default:
      return E.INVALID_COMMIT_OFFSET_SIZE.code;
  }
}
