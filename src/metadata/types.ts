// Cluster metadata as the data plane sees it: topics, their configuration and, per partition, replicas,
// leader, leader epoch and in-sync replicas. Plain values only, so the same shapes can be written to a file on
// one node today and applied from the Raft log tomorrow. Pure: callable from any thread.
import type { Reassignment } from '../core/metadata/state-machine.js';
import type { AclBinding } from '../core/security/acl.js';

export interface TopicConfig {
  /** Whole segments older than this are deleted; -1 keeps them forever. */
  readonly retentionMs: number;
  /** Whole segments are deleted while the partition is larger than this; -1 means no limit. */
  readonly retentionBytes: number;
  readonly segmentBytes: number;
  readonly minInsyncReplicas: number;
  readonly cleanupPolicy: 'delete' | 'compact';
  /**
   * Kafka's unclean.leader.election.enable: when every in-sync replica is gone, elect any live replica (and
   * lose what only the in-sync ones held) rather than stay offline. Off by default; its use is logged.
   */
  readonly uncleanLeaderElection: boolean;
}

export interface PartitionAssignment {
  readonly partition: number;
  /** The leading broker, or '' while the partition is offline (no eligible replica is alive). */
  readonly leader: string;
  /** Bumped by every leader election; stamped into every batch the leader writes. */
  readonly leaderEpoch: number;
  /** Bumped by every change of leader or ISR: an ISR proposal names the epoch it was based on. */
  readonly partitionEpoch: number;
  readonly replicas: readonly string[];
  readonly isr: readonly string[];
}

export interface TopicMetadata {
  readonly name: string;
  /**
   * A number the state machine gives each topic it creates, one higher each time and never reused: with the
   * partition number it names a partition in frames between threads and between nodes.
   */
  readonly topicSeq: number;
  /** Random id given at creation: a partition directory left over from a deleted topic of the same name is
   *  recognised by its different id and never served as the new topic's data. */
  readonly topicId: string;
  readonly numPartitions: number;
  readonly replicationFactor: number;
  readonly rackAwareness: boolean;
  readonly config: TopicConfig;
  readonly partitions: readonly PartitionAssignment[];
  readonly createdAtMs: number;
}

/** A broker as the cluster registered it: where to reach it and where it sits. */
export interface BrokerRegistration {
  readonly id: string;
  readonly httpHost: string;
  readonly httpPort: number;
  readonly clusterHost: string;
  readonly clusterPort: number;
  /** Failure domain for rack-aware placement; empty when unknown. */
  readonly rack: string;
  /** Broker software version, so a rolling upgrade shows in the registry. */
  readonly version: string;
  /** Set while gossip holds the broker dead: no new replica or leadership is placed on it. */
  readonly fenced: boolean;
  /** Set by a controlled shutdown: the controller moves its leaderships away and takes it out of every ISR. */
  readonly shuttingDown: boolean;
  /** Ports of the broker's partition workers' data links (replica fetch, forwarded requests), one per worker. */
  readonly dataPorts: readonly number[];
  /**
   * The port of the broker's Kafka listener (at `httpHost`), the one it bound; 0 when it has none (the
   * listener is off, or the broker registered before brokers advertised it).
   */
  readonly kafkaPort: number;
  readonly registeredAtMs: number;
}

/** A consistent, versioned view of the metadata; a newer version replaces an older one whole. */
export interface MetadataSnapshot {
  /** The Raft index of the last change applied (0 before any). */
  readonly version: number;
  readonly topics: ReadonlyMap<string, TopicMetadata>;
  readonly brokers: ReadonlyMap<string, BrokerRegistration>;
  /** Partitions moving to new replicas (absent where moves do not exist: a single node's file store). */
  readonly reassignments?: readonly Reassignment[];
  /** The cluster's ACL bindings (absent where there are none to keep: a single node's file store). */
  readonly acls?: readonly AclBinding[];
}

export type CreateTopicResult =
  | { readonly kind: 'created'; readonly topic: TopicMetadata }
  /** The topic exists with the very same settings: creation is idempotent, like a retried Kafka admin call. */
  | { readonly kind: 'exists_same'; readonly topic: TopicMetadata }
  | { readonly kind: 'exists_different'; readonly topic: TopicMetadata };

export type DeleteTopicResult =
  | { readonly kind: 'deleted'; readonly topic: TopicMetadata }
  | { readonly kind: 'unknown' };

/** The settings a topic's config may change after creation; null leaves a setting as it is. */
export interface TopicConfigChanges {
  readonly retentionMs: number | null;
  readonly retentionBytes: number | null;
  readonly minInsyncReplicas: number | null;
  /** Applies to segments rolled after the change; existing segments keep their size. */
  readonly segmentBytes: number | null;
}

export type AlterTopicResult =
  | { readonly kind: 'altered'; readonly topic: TopicMetadata }
  | { readonly kind: 'unknown' };

export interface CreateTopicRequest {
  readonly name: string;
  readonly numPartitions: number;
  readonly replicationFactor: number;
  readonly rackAwareness: boolean;
  readonly config: TopicConfig;
  /**
   * The body gave no replication_factor: the metadata leader may lower it to the brokers it can place on
   * (the asking node's view of the live brokers can be a moment behind the leader's).
   */
  readonly replicationFactorDefaulted: boolean;
  /** The body gave no config.min_insync_replicas: it follows a lowered replication factor. */
  readonly minInsyncDefaulted: boolean;
}

/**
 * Where topic metadata lives. On one node it is a file written atomically; with a cluster the implementation
 * proposes changes to Raft and resolves once they are committed. Either way a change is durable before the
 * promise resolves, and `snapshot()` reflects every resolved change.
 */
export interface MetadataStore {
  snapshot(): MetadataSnapshot;
  createTopic(request: CreateTopicRequest, nowMs: number): Promise<CreateTopicResult>;
  deleteTopic(name: string): Promise<DeleteTopicResult>;
  /** Changes the given config settings of a topic; a change the topic cannot take is refused (rejects). */
  alterTopicConfig(name: string, changes: TopicConfigChanges): Promise<AlterTopicResult>;
  /** Grows a topic to `count` partitions; absent where the store cannot (refused with a 400). */
  addPartitions?(name: string, count: number): Promise<AlterTopicResult>;
  /** A producer id for an idempotent producer, never handed out before (durable before it resolves). */
  allocateProducerId(): Promise<number>;
  /** Called after every change with the new snapshot. */
  onChange(listener: (snapshot: MetadataSnapshot) => void): void;
  close(): Promise<void>;
}
