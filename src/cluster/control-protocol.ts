// The messages between the acceptor (main thread) and the control thread, carried by the control worker's
// MessagePort (structured clone, so Maps cross as Maps). Low rate by design: admin requests, status queries and
// metadata snapshots, never a produced record.
//
// Invariants: every request carries an `id` unique among the acceptor's outstanding requests and gets exactly
// one `reply` with that id; a `metadata` event always carries a version above the previous one; the control
// thread posts the snapshot that contains a change before the reply that reports it, so the acceptor sees the
// change as soon as it answers its client. Types only: importable from any thread.

import type { MessagePort } from 'node:worker_threads';
import type { LogLevel } from '../config/config.js';
import type { CommittedOffset, ReassignChange } from '../core/metadata/state-machine.js';
import type { RaftRole } from '../core/raft/types.js';
import type { AclBinding, AclFilter } from '../core/security/acl.js';
import type {
  AlterTopicResult,
  CreateTopicRequest,
  CreateTopicResult,
  DeleteTopicResult,
  MetadataSnapshot,
  TopicConfigChanges,
  TopicMetadata,
} from '../metadata/types.js';
import type { ClusterTlsShared } from '../security/cluster-tls.js';

/** What the control thread needs from the broker's configuration. */
export interface ControlOptions {
  readonly nodeId: string;
  readonly dataDir: string;
  /** Interface to bind the cluster port on. */
  readonly host: string;
  readonly clusterPort: number;
  /** Address other brokers use for this one (HTTP and cluster port). */
  readonly address: string;
  readonly seeds: readonly string[];
  readonly rack: string;
  readonly version: string;
  readonly raftVoters: number;
  readonly gossipIntervalMs: number;
  readonly gossipDeadReclaimMs: number;
  readonly raftTickMs: number;
  readonly raftElectionTicks: number;
  /** A voter dead (or gone) this long is replaced by a caught-up learner, if there is one. */
  readonly voterReplaceAfterMs: number;
  /** A Raft snapshot is taken after this many entries applied since the last one. */
  readonly snapshotEveryEntries: number;
  /** Bound on a forwarded admin request, leader search included. */
  readonly forwardTimeoutMs: number;
  /**
   * Topics of a data dir written before it had a Raft log (the single-node `metadata.json`): the node, once it
   * leads its new one-node cluster, proposes each with its original id, so its partitions keep their data.
   */
  readonly importTopics: readonly TopicMetadata[];
  /** The control thread's log: the broker's level, and pretty lines when the broker's are. */
  readonly logLevel: LogLevel;
  readonly logPretty: boolean;
  /** Figures for /metrics (control-stats.ts), written by the control thread and read by the acceptor. */
  readonly statsBuffer: SharedArrayBuffer;
  /**
   * One port per partition worker (worker-protocol.ts), transferred to the control thread at spawn: metadata goes
   * down them, ISR changes come up.
   */
  readonly workerPorts: readonly MessagePort[];
  /** How long a controlled shutdown waits for this node's leaderships to move before stopping anyway. */
  readonly controlledShutdownTimeoutMs: number;
  /** The cluster secret's bytes (`--cluster-secret-file`), or null when node-to-node traffic is not authenticated. */
  readonly clusterSecret: Uint8Array | null;
  /** Authentication failure counters shared by every thread (security/cluster-auth.ts `createAuthStats`). */
  readonly authStats: SharedArrayBuffer;
  /** Cluster TLS's files and the shared reload generation (security/cluster-tls.ts); null without it. */
  readonly clusterTls: ClusterTlsShared | null;
}

export type ControlRequest =
  | {
      readonly id: number;
      readonly op: 'advertise';
      readonly httpPort: number;
      /** The partition workers' data-link ports, by worker index. */
      readonly dataPorts: readonly number[];
      /** The Kafka listener's bound port; 0 when it is off. */
      readonly kafkaPort: number;
    }
  /**
   * Controlled shutdown (`true`): this broker is marked shutting down, the controller moves its leaderships to
   * in-sync replicas and takes it out of every ISR; answered once it leads nothing another replica could lead,
   * or after `controlledShutdownTimeoutMs`. `false` clears the mark (a broker that starts again).
   */
  | { readonly id: number; readonly op: 'set_shutting_down'; readonly shuttingDown: boolean }
  | {
      readonly id: number;
      readonly op: 'create_topic';
      readonly request: CreateTopicRequest;
      readonly nowMs: number;
    }
  | { readonly id: number; readonly op: 'delete_topic'; readonly name: string }
  | {
      readonly id: number;
      readonly op: 'alter_topic_config';
      readonly name: string;
      readonly changes: TopicConfigChanges;
    }
  | {
      readonly id: number;
      readonly op: 'commit_offsets';
      readonly group: string;
      readonly offsets: readonly CommittedOffset[];
    }
  /**
   * From the groups' coordinator: a change of committed offsets, proposed only if this node still leads the
   * metadata Raft group in `term` (never forwarded: a coordinator that lost its term must not write behind its
   * successor, whose offsets it cannot see). Answered once committed and applied.
   */
  | {
      readonly id: number;
      readonly op: 'group_command';
      readonly term: number;
      readonly command: GroupCommand;
    }
  /** Start (target non-empty) or cancel (target empty) partition moves; per change null or a refusal. */
  | { readonly id: number; readonly op: 'reassign'; readonly changes: readonly ReassignChange[] }
  /** Leadership back to every partition's preferred replica now where it is live and in the ISR. */
  | { readonly id: number; readonly op: 'elect_preferred_leaders' }
  /** Grows a topic to `count` partitions (never shrinks it). */
  | { readonly id: number; readonly op: 'add_partitions'; readonly name: string; readonly count: number }
  /** An idempotent producer id, unique in the cluster (the Raft index of the allocating entry). */
  | { readonly id: number; readonly op: 'allocate_producer_id' }
  /** ACL bindings added (those present are skipped) or removed by a filter; answered with those changed. */
  | { readonly id: number; readonly op: 'create_acls'; readonly acls: readonly AclBinding[] }
  | { readonly id: number; readonly op: 'delete_acls'; readonly filter: AclFilter }
  | { readonly id: number; readonly op: 'status' }
  | { readonly id: number; readonly op: 'stop' };

/** What the groups' coordinator writes to the metadata log. */
export type GroupCommand =
  | { readonly kind: 'commit_offsets'; readonly group: string; readonly offsets: readonly CommittedOffset[] }
  | { readonly kind: 'delete_group'; readonly group: string };

/** Every group's committed offsets, as the metadata state machine holds them. */
export type GroupOffsets = readonly {
  readonly group: string;
  readonly offsets: readonly CommittedOffset[];
}[];

/** Why a request could not be carried out; `indefinite` when it may have been applied anyway. */
export interface ControlFailure {
  readonly kind: 'failed';
  readonly error: 'no_leader' | 'overloaded' | 'bad_request' | 'internal' | 'not_coordinator';
  readonly message: string;
  readonly indefinite: boolean;
}

export type ControlReply =
  | { readonly kind: 'ok' }
  | CreateTopicResult
  | DeleteTopicResult
  | AlterTopicResult
  | { readonly kind: 'committed'; readonly count: number }
  | { readonly kind: 'producer_id'; readonly producerId: number }
  /** Batched partition changes: per change, null when applied, else why it was refused. */
  | { readonly kind: 'partitions_changed'; readonly refusals: readonly (string | null)[] }
  | { readonly kind: 'status'; readonly status: ClusterStatus }
  /** The ACL bindings a create_acls added or a delete_acls removed. */
  | { readonly kind: 'acls_changed'; readonly acls: readonly AclBinding[] }
  | ControlFailure;

export type ControlEvent =
  | { readonly type: 'started'; readonly clusterPort: number }
  | { readonly type: 'metadata'; readonly snapshot: MetadataSnapshot }
  /** The node has a leader and has applied the log as far as that leader had committed when it joined. */
  | { readonly type: 'ready' }
  | { readonly type: 'reply'; readonly id: number; readonly reply: ControlReply }
  /** The metadata Raft leader as this node knows it ('' when none is known), on every change. */
  | { readonly type: 'raft_leader'; readonly leaderId: string; readonly term: number }
  /**
   * This node leads the metadata group in `term` and has applied everything committed before the term: it is
   * the groups' coordinator from now on, starting from these committed offsets. A later `raft_leader` event
   * naming another node (or another term) ends it.
   */
  | { readonly type: 'coordinator'; readonly term: number; readonly groups: GroupOffsets }
  | { readonly type: 'fatal'; readonly message: string };

export interface ClusterMemberStatus {
  readonly node_id: string;
  /** Gossip's view: alive, suspect, dead or left; 'unknown' for a registered broker gossip has not met. */
  readonly state: string;
  /** voter, learner, or none (registered or gossiping, but not in the Raft configuration). */
  readonly raft_role: 'voter' | 'learner' | 'none';
  readonly leader: boolean;
  readonly fenced: boolean;
  readonly rack: string;
  readonly address: string;
  readonly http_port: number;
  /** The member's Kafka listener port, 0 when it advertises none. */
  readonly kafka_port: number;
  readonly cluster_port: number;
  readonly incarnation: number | null;
  /** On the leader: the last log index known to be on this member. */
  readonly match_index: number | null;
}

export interface ClusterStatus {
  readonly node_id: string;
  readonly raft: {
    readonly role: RaftRole;
    readonly leader_id: string | null;
    readonly term: number;
    readonly commit_index: number;
    readonly applied_index: number;
    readonly last_index: number;
    readonly voters: readonly string[];
    readonly learners: readonly string[];
    /** Set while this node cannot write its Raft storage and stays out of the group: what fails, since when. */
    readonly storage_error: {
      readonly code: string;
      readonly message: string;
      readonly since_ms: number;
    } | null;
  };
  readonly metadata_version: number;
  readonly members: readonly ClusterMemberStatus[];
}
