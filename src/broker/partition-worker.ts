// The body of a partition worker thread: it owns the replicas of the partitions assigned to it (by
// src/core/ownership.ts) outright, with no locks, and serves them from three sources: its request ring (the
// local acceptor), its data-link port (acceptors of other nodes forwarding client requests, and followers of
// its leaders fetching), and its fetch sessions (its own followers fetching from other leaders). What it holds
// and in which role comes from the metadata alone: the control thread posts versioned deltas on this worker's
// port, and each one is reconciled replica by replica (leader, follower, or gone: files deleted).
//
// Every replica runs the pure replication core (src/core/replication/partition-replica.ts); this file is its
// shell and does what the core decides, in the order the protocol needs (the same rules as the simulation's
// shell, test/sim/replication-shell.ts):
// - Produce (leader): `canAppend` first, a refusal is definite; records of one drained batch are staged into
//   one buffer per partition, appended with ONE write and, with the default policy, ONE fsync (group commit),
//   stamped with the replica's leader epoch. acks=1 is answered after that fsync, acks=0 at once (by the
//   acceptor), acks=all when the core's high watermark passes the request (`ready().acks`).
//   The group commit is pipelined (`startCommit`, `endSyncs`, `answerCommit`): at most one commit's syncs run
//   on libuv's pool while the loop writes the next batch (when syncs are long) and answers the previous one;
//   a commit's requests are answered only after its own syncs, in request order. Whatever cuts, closes or
//   resets a log waits for the running sync first (`settle`; PartitionLog asserts it).
// - Fetch (leader, consumers): reads only below the servable high watermark; a fetch with nothing to read
//   waits (long poll) in the worker, local or forwarded alike, until the high watermark passes it or its wait
//   ends.
// - Replica fetch (leader, followers): each entry decided by `onFollowerFetch` (epoch checks, divergence, ISR)
//   or answered by `epochEndOffset` (only by the acting leader of the epoch named); records up to the leader's
//   DURABLE end; a request with nothing to send waits until a flush or a high watermark change, or its wait.
// - Follower: one request in flight per session (leader worker); records are appended verbatim, fsynced, and
//   only then the answer is given to the core (`onFetchAnswer`), so the next fetch reports a durable end.
//   Truncations and resets the core asks for are carried out on the log (which cuts its epoch cache too).
// - ISR proposals go to the control thread, which has them committed through the metadata Raft;
//   a refusal or a failure is `proposalFailed`.
//
// Logs are opened lazily (see partition-files.ts): an idle replica costs no descriptor. A replica whose log
// figures are only lower bounds (a crash) is recovered before its core runs: in the background, a bounded
// slice of time per turn (`recoverySliceMs`), or at once when a request or a follower's fetch needs it, so a
// restart after a crash with thousands of partitions serves while it recovers them.
// Invariants: at most one request in flight per fetch session; every request answered exactly once (a ring
// request always; a link request unless its connection closed); answers of a drained batch are published with
// one store and at most one notify.
// The produce and consumer-fetch paths allocate little per request: a produce is decoded into a reused header
// and a pooled request record (its own answer's origin), acks=all waiters sit in a per-replica queue, answers
// are written straight into the response ring from reused scratch objects, and a turn of the loop (`step`)
// runs synchronously unless a phase must wait (ring space, a sync): only then is a promise made.
// Runs on one partition worker thread; nothing here is shared with another thread except the rings, the stats
// buffer and the control port.

import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MessagePort } from 'node:worker_threads';
import type { ControlToWorker, WorkerToControl } from '../cluster/worker-protocol.js';
import { assert, assertionFailed } from '../core/assert.js';
import { BatchWriter, validateBatch } from '../core/log/record-batch.js';
import type { IsrChange } from '../core/metadata/state-machine.js';
import { partitionDirName } from '../core/names.js';
import {
  LearnedPlacements,
  ownerOf,
  PARTITIONS_PER_TOPIC_MAX,
  partitionKey,
  workerOf,
} from '../core/ownership.js';
import {
  type AckOutcome,
  DEFAULT_REPLICA_CONFIG,
  type FetchAnswer,
  type IsrProposal,
  type LogAction,
  PartitionReplica,
  type ReplicaConfig,
} from '../core/replication/partition-replica.js';
import { TokenBucket } from '../core/token-bucket.js';
import { DATA_LINK_DEFAULTS, DataLinkServer, type LinkConnection } from '../link/data-link.js';
import {
  type ControlAnswer,
  type ControlRequest,
  decodeJson,
  encodeJson,
  type Handover,
  type OfflinePartition,
} from '../messages/control.js';
import {
  DESCRIBE_REQUEST_BYTES,
  describeAnswerBytes,
  PARTITION_STATE_BYTES,
  type PartitionState,
  type ReplicaEnd,
  writeDescribeAnswer,
  writePartitionState,
} from '../messages/describe.js';
import {
  FETCH_ANSWER_HEADER_BYTES,
  FETCH_DETAIL_BYTES,
  FETCH_EARLIEST,
  FETCH_LATEST,
  FETCH_REQUEST_BYTES,
  type FetchAnswerHeader,
  type FetchRequest,
  fetchOffsetBound,
  readFetchRequest,
  writeFetchAnswerHeader,
  writeFetchDetail,
} from '../messages/fetch.js';
import { MessageKind } from '../messages/kinds.js';
import { MOVED_ENTRIES_MAX, type MovedEntry, movedAnswerBytes, writeMovedAnswer } from '../messages/moved.js';
import {
  Acks,
  emptyProduceAnswer,
  emptyProduceHeader,
  isBatchProduce,
  PRODUCE_ANSWER_BYTES,
  PRODUCE_HEADER_BYTES,
  type ProducerFields,
  readPartitionKey,
  readProduceHeaderInto,
  validProduceRecords,
  writeProduceAnswer,
} from '../messages/produce.js';
import {
  REPLICA_ANSWER_FIXED_BYTES,
  REPLICA_ENTRY_ANSWER_BYTES,
  type ReplicaAnswerEntry,
  ReplicaOutcome,
  type ReplicaRequestEntry,
  readReplicaFetchRequest,
  visitReplicaAnswer,
  writeReplicaAnswerEntry,
  writeReplicaAnswerHead,
} from '../messages/replica-fetch.js';
import { Status } from '../messages/status.js';
import type { BrokerRegistration, PartitionAssignment, TopicMetadata } from '../metadata/types.js';
import { ReserveFailure, RingReader, RingSet, RingWriter } from '../ring/spsc-ring.js';
import { HeapMeter } from '../runtime/heap-meter.js';
import { ClusterAuth } from '../security/cluster-auth.js';
import { ClusterTls, type ClusterTlsShared } from '../security/cluster-tls.js';
import { crc32 } from '../storage/crc.js';
import { DescriptorCache } from '../storage/descriptor-cache.js';
import type { Disk, Fd } from '../storage/disk.js';
import { INDEX_CACHE_BYTES_PER_WORKER, SegmentIndexCache } from '../storage/index-cache.js';
import {
  DEFAULT_LOG_CONFIG,
  type LogConfig,
  type PendingFlush,
  type ReadResult,
} from '../storage/partition-log.js';
import { FetchSession, type SessionAnswer } from './fetch-session.js';
import { type FilesContext, PartitionFiles } from './partition-files.js';
import { ProducerGuard } from './producer-guard.js';
import { RecordStager, type StagingTarget } from './record-stager.js';
import { StatSlot, WorkerStatsWriter } from './worker-stats.js';

export interface ReplicationOptions {
  /** A follower that has not caught up for this long leaves the ISR (Kafka's replica.lag.time.max.ms). */
  readonly replicaLagTimeMaxMs: number;
  /** acks=all requests wait at most this long for the high watermark (then fail as indefinite). */
  readonly ackTimeoutMs: number;
  /** A replica fetch with nothing to send waits this long at most. */
  readonly fetchWaitMs: number;
  /** Records in one replica-fetch answer at most (at least one batch per partition is sent). */
  readonly fetchBytesMax: number;
  /** A follower's request without an answer in this long (beyond its wait) is given up and retried. */
  readonly fetchTimeoutMs: number;
  /** After a failed replica fetch, or one the leader refused for its metadata, the session waits this long. */
  readonly retryBackoffMs: number;
  /**
   * Bytes a second this worker sends, as a leader, to replicas outside the ISR (catching up after a move or a
   * long absence); 0 sends as fast as they fetch. Followers in the ISR are never throttled.
   */
  readonly catchUpBytesPerS: number;
}

export const DEFAULT_REPLICATION_OPTIONS: ReplicationOptions = {
  replicaLagTimeMaxMs: 10_000,
  ackTimeoutMs: 30_000,
  fetchWaitMs: 500,
  fetchBytesMax: 8 * 1024 * 1024,
  fetchTimeoutMs: 10_000,
  retryBackoffMs: 100,
  catchUpBytesPerS: 0,
};

export interface PartitionWorkerOptions {
  readonly workerIndex: number;
  readonly workerCount: number;
  readonly nodeId: string;
  /** Interface the data link listens on, and the port (0 picks a free one). */
  readonly dataHost: string;
  readonly dataPort: number;
  /** The primary acceptor's ring pair (the main thread: control ops, shutdown and state notices come here). */
  readonly requests: SharedArrayBuffer;
  readonly responses: SharedArrayBuffer;
  /**
   * One ring pair per extra acceptor thread (`--acceptor-threads` above 1), answered by the ring each request
   * came in; absent or empty with one acceptor.
   */
  readonly extraRings?: readonly {
    readonly requests: SharedArrayBuffer;
    readonly responses: SharedArrayBuffer;
  }[];
  /** With extra rings: the doorbell every request ring's writer rings (see RingSet). */
  readonly doorbell?: SharedArrayBuffer | null;
  readonly stats: SharedArrayBuffer;
  readonly dataDir: string;
  readonly syncIntervalMs: number;
  /**
   * Commits whose syncs take at least this long on average (ms) also stage and write the next batch while they
   * sync (see `run`); default `commitOverlapDefaultMs`.
   */
  readonly commitOverlapMs?: number;
  readonly indexIntervalBytes: number;
  /** Frames handled per batch at most, so answers never wait behind an unbounded drain. */
  readonly framesPerBatchMax: number;
  readonly retentionCheckIntervalMs: number;
  /** How often a partition whose storage failed tries to come back (default 1000 ms). */
  readonly repairIntervalMs?: number;
  /** Real descriptors this worker keeps open for segment files at most. */
  readonly segmentFdsMax: number;
  /** The data dir's last shutdown was clean: partitions open lazily, their offsets from checkpoints. */
  readonly cleanShutdown: boolean;
  readonly replication: ReplicationOptions;
  /** The cluster secret's bytes: the data link's connections must prove it both ways. Absent: no check. */
  readonly clusterSecret?: Uint8Array | null;
  /** Authentication failure counters shared with the other threads (security/cluster-auth.ts). */
  readonly authStats?: SharedArrayBuffer;
  /** Cluster TLS for the data link (security/cluster-tls.ts); absent or null without it. */
  readonly clusterTls?: ClusterTlsShared | null;
  /** How long a partition being moved to a sibling worker may wait for its acks=all requests (default 10 s). */
  readonly releaseWaitMs?: number;
}

/** Where an answer goes: a ring (link null; `ring` indexes the acceptors' rings, 0 the primary) or a data-link connection. */
interface Origin {
  readonly link: LinkConnection | null;
  readonly correlationId: number;
  readonly ring: number;
}

/**
 * A replica's records staged for its next append. The object stays with its replica across commits (see
 * `beginStaging`); only the writer, with its buffer, goes back to the pool between them.
 */
interface Staging extends StagingTarget<PendingProduce> {
  writer: BatchWriter;
  maxBatchBytes: number;
  readonly staged: PendingProduce[];
  recordsStaged: number;
  readonly replica: Replica;
}

/**
 * A produce request from drain to answer. It is its own answer's origin (no separate object), and the worker
 * reuses it once it is answered (`acquirePending`, `recyclePending`): nothing may keep one past its answer.
 */
interface PendingProduce extends Origin {
  link: LinkConnection | null;
  correlationId: number;
  ring: number;
  replica: Replica | null;
  recordCount: number;
  acks: Acks;
  /** Records staged in the same writer before this request's: its offsets start after them. */
  recordsBefore: number;
  status: Status;
  baseOffset: number;
  detail: number;
  /** An idempotent retry of a batch the log holds: answered with its offsets, nothing appended. */
  duplicate: boolean;
  /** acks=all: its id with the replica core while it waits for the high watermark; 0 otherwise. */
  ackId: number;
  /** Its answer was written (not left to a wait for ring space): it may be reused. */
  answered: boolean;
}

/**
 * The acks=all requests of one replica waiting for its high watermark, in the order they were registered with
 * the core (ids increase), which is the order the core releases them in: taking one is O(1) at the head.
 */
class AckWaiters {
  private readonly items: PendingProduce[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(pending: PendingProduce): void {
    assert(pending.ackId > 0, 'an acks=all waiter has an id');
    const last = this.items.length > this.head ? this.items[this.items.length - 1]! : null;
    assert(last === null || last.ackId < pending.ackId, 'acks=all waiters are registered in id order');
    this.items.push(pending);
  }

  /** Removes and returns the waiter with this id, or null when none waits under it. */
  take(ackId: number): PendingProduce | null {
    const items = this.items;
    let found = -1;
    for (let i = this.head; i < items.length; i++) {
      if (items[i]!.ackId === ackId) {
        found = i;
        break;
      }
    }
    if (found < 0) return null;
    const pending = items[found]!;
    if (found === this.head) this.head++;
    else items.splice(found, 1);
    if (this.head === items.length) {
      items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > items.length) {
      items.splice(0, this.head);
      this.head = 0;
    }
    return pending;
  }

  /** Removes every waiter, returning them in order. */
  drain(): PendingProduce[] {
    const all = this.items.slice(this.head);
    this.items.length = 0;
    this.head = 0;
    return all;
  }
}

interface ParkedFetch {
  readonly origin: Origin;
  readonly request: FetchRequest;
  readonly untilMs: number;
}

interface ParkedReplicaFetch {
  readonly origin: Origin;
  readonly followerId: string;
  readonly entries: readonly ReplicaRequestEntry[];
  readonly maxBytes: number;
  readonly untilMs: number;
  answered: boolean;
  /** Parked only because the catch-up throttle had nothing left: served again as soon as it has. */
  throttled?: boolean;
}

/** A partition being handed to a sibling worker (control op `release`), waiting for its acks=all requests. */
interface PendingRelease {
  readonly origin: Origin;
  readonly topicSeq: number;
  readonly partition: number;
  readonly toWorker: number;
  readonly untilMs: number;
}

interface Replica {
  readonly key: number;
  readonly topicSeq: number;
  readonly partition: number;
  readonly topic: string;
  readonly topicId: string;
  readonly name: string;
  readonly files: PartitionFiles;
  /** Null while the log's figures are not exact yet (recovered on first use after a crash). */
  core: PartitionReplica | null;
  assignment: PartitionAssignment | null;
  minInsyncReplicas: number;
  staging: Staging | null;
  /** The staging object between commits (its writer detached), reused by the next `beginStaging`. */
  idleStaging: Staging | null;
  /** Idempotent producers' sequences, while this replica leads and has seen an idempotent produce. */
  producers: ProducerGuard | null;
  touched: boolean;
  readonly ackWaiters: AckWaiters;
  /** acks=1 requests whose fsync has not completed (interval policy only: they wait for the next flush). */
  readonly parkedConsumers: ParkedFetch[];
  readonly parkedReplicas: Set<ParkedReplicaFetch>;
  session: FetchSession | null;
  isrInFlight: {
    readonly requestId: number;
    readonly proposal: IsrProposal;
    readonly untilMs: number;
  } | null;
  /** Being handed to a sibling worker: new produces are refused as not-leader (they are retried). */
  releasing: boolean;
  /** The figures last told to the acceptor. */
  noticedHighWatermark: number;
  noticedLogStart: number;
  noticedLogEnd: number;
}

/** How often the replicas' lag figure for the metrics is recomputed (it walks every led partition). */
const lagScanIntervalMs = 1000;
/** How long an ISR proposal waits for the control thread's answer before it is taken as failed. */
const isrAnswerTimeoutMs = 10_000;
/**
 * Batch writers kept for reuse: a commit spread over many partitions stages into one writer per partition, so
 * the pool keeps up to a few hundred, within a byte budget; the largest buffer worth keeping; and the size a
 * new writer starts at (it doubles as a batch needs, up to the log's batch limit).
 */
const idleWritersMax = 512;
const idleWritersBytesMax = 4 * 1024 * 1024;
const idleWriterBytesMax = 1024 * 1024;
const writerInitialBytes = 4 * 1024;
/** Partitions not yet opened that one retention pass opens to look at their segments. */
const retentionOpensPerPass = 100;
const defaultRepairIntervalMs = 1000;
/** Background recovery of crashed logs per turn (requests and syncs run between slices). */
const recoverySliceMs = 10;
/** A partition logs damaged reads at most this often (each one is still counted). */
const corruptLogIntervalMs = 10_000;
/** The replicas' clocks: ticks for lag, acks and proposals. */
const tickIntervalMs = 100;
/**
 * Syncs shorter than this on average are waited for whole; longer ones are cut into quarters, at each of which
 * the loop stages and writes what arrived (the pipelined group commit, see `run`). `--commit-overlap`.
 */
const commitOverlapDefaultMs = 2;
/** The shortest wait between two looks at the ring during a sync. */
const midSyncStepMinMs = 0.25;
/** Weight of the newest sync in `syncMsAverage`. */
const syncAverageWeight = 0.2;
/** The phases of one turn of the loop (see `turnPhase`): the last one ends the turn. */
const turnPhases = 10;
/** Link requests queued for the loop at most; past it a connection stops being read until the loop catches up. */
const linkQueueMax = 8192;
/** Answered produce requests kept for reuse at most (a few drained batches' worth). */
const pendingPoolMax = 4096;

export class PartitionWorker {
  /** The primary acceptor's rings (index 0 of `readers` and `writers`). */
  private readonly reader: RingReader;
  private readonly writer: RingWriter;
  /** Every acceptor's request and response ring, by ring index (0: the primary). */
  private readonly readers: RingReader[];
  private readonly writers: RingWriter[];
  /** The response rings' bytes as Buffers, for encoders that write strings; by ring index. */
  private readonly ringBuffers: Buffer[];
  /** With several request rings: the set the loop sleeps on; null with one (it sleeps on that ring). */
  private readonly ringSet: RingSet | null;
  /** The ring whose frames `drainRing` is handing to `onRequest` (origins made meanwhile answer there). */
  private drainingRing = 0;
  private readonly stats: WorkerStatsWriter;
  private readonly heapMeter = new HeapMeter();
  private readonly replicas = new Map<number, Replica>();
  /**
   * Replicas whose logs must be recovered (a crash left their figures inexact) before their assignment is
   * applied, in the order metadata named them. Bounded by `replicas`.
   */
  private readonly awaitingRecovery = new Set<Replica>();
  private readonly byTopicId = new Map<string, Set<Replica>>();
  private brokers = new Map<string, BrokerRegistration>();
  private metadataVersion = -1;
  /** Produce requests drained since the last commit started (the next commit takes the list itself). */
  private produces: PendingProduce[] = [];
  private readonly fetches: { origin: Origin; request: FetchRequest }[] = [];
  /** Replicas appended to since the last commit started (the next commit takes the list itself). */
  private touched: Replica[] = [];
  /** Emptied lists of finished commits, for the next ones (two commits are alive at most). */
  private readonly spareProduceLists: PendingProduce[][] = [];
  private readonly spareReplicaLists: Replica[][] = [];
  /** The group commit whose syncs run (at most one; see `startCommit`). */
  private commit: Commit | null = null;
  /** Moving average of how long a commit's syncs on the pool take (ms). */
  private syncMsAverage = 0;
  private readonly stager = new RecordStager<PendingProduce>((target) =>
    this.appendStaged((target as Staging).replica),
  );
  private running = true;
  private readonly idleWriters: BatchWriter[] = [];
  /** The buffers of `idleWriters`, in bytes (at most `idleWritersBytesMax`). */
  private idleWritersBytes = 0;
  private readonly files: FilesContext;
  private readonly config: ReplicaConfig;
  private nextRepairMs = 0;
  private lastRetentionMs = Date.now();
  private nextTickMs = 0;
  private nextAckId = 1;
  private nextIsrRequestId = 1;
  private readonly isrRequests = new Map<number, { replica: Replica; proposal: IsrProposal }[]>();
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private readonly repairIntervalMs: number;
  private server: DataLinkServer | null = null;
  /** Requests from the data link and answers to fetch sessions, waiting for the loop. */
  private readonly linkQueue: { origin: Origin; kind: number; payload: Buffer }[] = [];
  private readonly sessionAnswers: SessionAnswer[] = [];
  private readonly sessions = new Map<string, FetchSession>();
  private readonly metadataQueue: ControlToWorker[] = [];
  private readonly parkedReplicaFetches = new Set<ParkedReplicaFetch>();
  /** This worker's share of --replication-throttle, for replicas catching up; null when unthrottled. */
  private readonly catchUpBucket: TokenBucket | null;
  /** Something arrived while the loop was busy: do not sleep before looking at it. */
  private pendingWork = false;
  private readonly stateNotices = new Set<Replica>();
  private readonly auth: ClusterAuth | undefined;
  private readonly tls: ClusterTls | undefined;
  /**
   * The node's placement overrides (partition key -> worker index), this worker's copy: the acceptor sends
   * every change to every worker (control ops `release`, `adopt`, `placement`), before it routes by it.
   */
  private readonly overrides = new Map<number, number>();
  /** The latest metadata of every topic, so that a partition adopted from a sibling worker can be opened. */
  private readonly latestTopics = new Map<string, TopicMetadata>();
  /** Other nodes' overrides, learned from their MOVED answers to this worker's fetch sessions. */
  private readonly learned = new LearnedPlacements();
  /** Partitions being handed to a sibling worker, waiting for their acks=all requests to complete. */
  private readonly releases: PendingRelease[] = [];

  constructor(
    private readonly options: PartitionWorkerOptions,
    disk: Disk,
    private readonly controlPort: MessagePort | null,
    /** Where the worker's log lines go: stderr, which reaches the process log; tests collect them. */
    private readonly report: (line: string) => void = (line) => {
      process.stderr.write(`${line}\n`);
    },
  ) {
    this.auth =
      options.clusterSecret == null
        ? undefined
        : new ClusterAuth({
            nodeId: options.nodeId,
            secret: options.clusterSecret,
            ...(options.authStats === undefined ? {} : { stats: options.authStats }),
            warn: (fields, message) =>
              report(JSON.stringify({ level: 'warn', worker: options.workerIndex, ...fields, msg: message })),
          });
    this.tls =
      options.clusterTls == null
        ? undefined
        : new ClusterTls({
            ...options.clusterTls,
            ...(options.authStats === undefined ? {} : { stats: options.authStats }),
            warn: (fields, message) =>
              report(JSON.stringify({ level: 'warn', worker: options.workerIndex, ...fields, msg: message })),
          });
    const extraRings = options.extraRings ?? [];
    this.readers = [new RingReader(options.requests), ...extraRings.map((r) => new RingReader(r.requests))];
    this.writers = [new RingWriter(options.responses), ...extraRings.map((r) => new RingWriter(r.responses))];
    this.reader = this.readers[0]!;
    this.writer = this.writers[0]!;
    assert(
      extraRings.length === 0 || options.doorbell != null,
      'a worker reading several request rings sleeps on a doorbell',
    );
    this.ringSet = extraRings.length === 0 ? null : new RingSet(this.readers, options.doorbell!);
    const catchUpRate = options.replication.catchUpBytesPerS / options.workerCount;
    // A throttled fetch that finds the bucket empty is parked and served again at the first tick after it
    // refilled; a tenth of a second's worth may go at once (a batch more is lent). Starts empty: no burst.
    const burst = Math.max(1, catchUpRate / 10);
    this.catchUpBucket = catchUpRate > 0 ? new TokenBucket(catchUpRate, burst, -1, 0) : null;
    this.ringBuffers = this.writers.map((w) =>
      Buffer.from(w.bytes.buffer, w.bytes.byteOffset, w.bytes.byteLength),
    );
    this.stats = new WorkerStatsWriter(options.stats);
    this.files = {
      disk: new DescriptorCache(disk, options.segmentFdsMax, (open) =>
        this.stats.set(StatSlot.segmentFdsOpen, open),
      ),
      dataDir: options.dataDir,
      cleanShutdown: options.cleanShutdown,
      openLogs: 0,
      offlineCount: 0,
      report: report,
      indexCache: new SegmentIndexCache(INDEX_CACHE_BYTES_PER_WORKER),
    };
    this.config = {
      ...DEFAULT_REPLICA_CONFIG,
      replicaLagTimeMaxMs: options.replication.replicaLagTimeMaxMs,
      ackTimeoutMs: options.replication.ackTimeoutMs,
    };
    this.repairIntervalMs = options.repairIntervalMs ?? defaultRepairIntervalMs;
    this.loopDelay.enable();
    controlPort?.on('message', (message: ControlToWorker) => {
      this.metadataQueue.push(message);
      this.wake();
    });
  }

  /** Listens on the data-link port; resolves with the port bound. */
  async listen(): Promise<number> {
    this.server = await DataLinkServer.listen(
      this.options.dataHost,
      this.options.dataPort,
      {
        onRequest: (connection, kind, correlationId, _view, bytes, at, length) => {
          // Copied: the socket's buffer is reused once this returns. The loop handles it in its next turn.
          this.linkQueue.push({
            origin: { link: connection, correlationId, ring: 0 },
            kind,
            payload: Buffer.from(bytes.subarray(at, at + length)),
          });
          if (this.linkQueue.length >= linkQueueMax) connection.socket.pause();
          this.wake();
        },
      },
      { ...DATA_LINK_DEFAULTS },
      this.auth,
      this.tls,
    );
    return this.server.port;
  }

  /** The worker of this node that owns the partition now (the hash, or the balancer's override). */
  private ownerOf(topicSeq: number, partition: number): number {
    return ownerOf(topicSeq, partition, this.options.workerCount, this.overrides);
  }

  /** Wakes the loop from its wait on the ring (same thread: the notify resolves the pending waitAsync). */
  private wake(): void {
    this.pendingWork = true;
    if (this.ringSet !== null) this.ringSet.interrupt();
    else this.reader.interrupt();
  }

  async run(): Promise<void> {
    while (this.running) {
      const running = this.commit;
      if (running !== null && !running.ended && running.done !== null) {
        // While a commit syncs, requests gather in the ring. They are not drained at each of the acceptor's
        // notifies (a turn per notify costs more CPU than the writes it would overlap, when syncs are short):
        // the loop waits for the sync, and when syncs are long (a slow disk, large batches) it also wakes
        // every quarter of a sync to stage and write what arrived, so the next sync starts on a written batch.
        // Metadata and data-link requests wake it as ever.
        if (!this.pendingWork) {
          if (this.syncMsAverage >= (this.options.commitOverlapMs ?? commitOverlapDefaultMs)) {
            await Promise.race([running.done, sleep(Math.max(midSyncStepMinMs, this.syncMsAverage / 4))]);
            this.pendingWork = true;
          } else await running.done;
        }
      } else if (!this.pendingWork && this.awaitingRecovery.size > 0) {
        // Logs left to recover: the next slice runs as soon as messages and timers had their turn.
        await new Promise<void>((resolve) => setImmediate(resolve));
      } else if (!this.pendingWork) {
        let waitMs = Math.max(1, this.nextTickMs - performance.now());
        if (this.options.syncIntervalMs > 0) waitMs = Math.min(waitMs, this.options.syncIntervalMs);
        if (this.ringSet !== null) await this.ringSet.waitAsync(waitMs);
        else await this.reader.waitAsync(waitMs);
      }
      this.pendingWork = false;
      const turn = this.step();
      if (turn !== undefined) await turn;
    }
    await this.settle();
    this.loopDelay.disable();
  }

  /** The turn in progress (see `step`): its clock readings, frames drained, and the commit whose syncs ended. */
  private turnNowMs = 0;
  private turnWallMs = 0;
  private turnFrames = 0;
  private turnEnded: Commit | null = null;

  /**
   * One turn of the loop: metadata, requests, appends, answers, followers, time, in that order (`turnPhase`).
   * A turn in which nothing waits (for ring space, a sync, a settle) runs synchronously and returns undefined:
   * only a phase that must wait returns a promise, and the rest of the turn runs after it (`stepAfter`).
   */
  private step(): Promise<void> | undefined {
    this.turnNowMs = performance.now();
    this.turnWallMs = Date.now();
    this.turnFrames = 0;
    // A commit whose syncs ended: its logs learn what is durable now; its requests are answered once the next
    // commit's syncs have started (in commitAppends), so the disk works while this thread answers.
    this.turnEnded = this.commit?.ended === true ? this.endSyncs() : null;
    for (let phase = 0; phase < turnPhases; phase++) {
      const waiting = this.turnPhase(phase);
      if (waiting !== undefined) return this.stepAfter(waiting, phase + 1);
    }
    return undefined;
  }

  /** The rest of a turn, from phase `from`, once `waiting` (the phase before it) ended. */
  private async stepAfter(waiting: Promise<void>, from: number): Promise<void> {
    await waiting;
    for (let phase = from; phase < turnPhases; phase++) {
      const next = this.turnPhase(phase);
      if (next !== undefined) await next;
    }
  }

  /** Runs one phase of the turn; a promise when the phase waits (the next phase starts after it). */
  private turnPhase(phase: number): Promise<void> | undefined {
    const now = this.turnNowMs;
    switch (phase) {
      case 0:
        if (this.metadataQueue.length > 0) return this.applyMetadata(now);
        // Opening a log that was never open touches nothing a sync in flight holds (as a consume's lazy open).
        if (this.awaitingRecovery.size > 0) this.recoverSome(now);
        return undefined;
      case 1:
        this.turnFrames = this.drainRing(now);
        if (this.linkQueue.length > 0) this.drainLink(now);
        return this.commitAppends(this.turnFrames, this.turnEnded);
      case 2:
        // Followers' appends may cut their logs first.
        return this.sessionAnswers.length > 0 ? this.settleThenApplySessionAnswers(now) : undefined;
      case 3:
        return this.fetches.length > 0 ||
          this.fetchesDescribe.length > 0 ||
          this.replicaFetches.length > 0 ||
          this.controls.length > 0
          ? this.serveFetches(now)
          : undefined;
      case 4:
        if (now < this.nextTickMs) return undefined;
        this.nextTickMs = now + tickIntervalMs;
        // Retention, repairs and interval flushes work on the logs.
        return this.settleThenTick(now, this.turnWallMs);
      case 5:
        return this.collectReady(now);
      case 6:
        if (this.hasParkedToServe()) return this.serveParked(now);
        this.hwMoved.clear();
        return undefined;
      case 7:
        if (this.sessions.size > 0) this.driveFollowers(now);
        return this.releases.length > 0 ? this.settleThenDriveReleases(now) : undefined;
      case 8:
        return this.sendStateNotices();
      default:
        this.endTurn(now);
        return undefined;
    }
  }

  /** Metadata may cut, close or delete logs: no sync may run then. */
  private async applyMetadata(now: number): Promise<void> {
    const ended = this.turnEnded;
    this.turnEnded = null;
    if (ended !== null) await this.answerCommit(ended);
    await this.settle();
    for (const message of this.metadataQueue.splice(0)) this.onControlMessage(message, now);
    if (this.awaitingRecovery.size > 0) this.recoverSome(now);
  }

  private async settleThenApplySessionAnswers(now: number): Promise<void> {
    await this.settle();
    await this.applySessionAnswers(now);
  }

  private async settleThenTick(now: number, wallMs: number): Promise<void> {
    await this.settle();
    await this.tick(now, wallMs);
  }

  private async settleThenDriveReleases(now: number): Promise<void> {
    await this.settle();
    await this.driveReleases(now);
  }

  /** The end of a turn: its answers published with one store, and the worker's gauges. */
  private endTurn(now: number): void {
    if (this.turnFrames > 0) this.stats.observeBatch(this.turnFrames);
    for (let i = 0; i < this.writers.length; i++) this.writers[i]!.publish();
    this.stats.set(StatSlot.eventLoopDelayP99Seconds, this.loopDelay.percentile(99) / 1e9);
    this.stats.set(StatSlot.partitions, this.replicas.size);
    this.stats.set(StatSlot.partitionsStorageOffline, this.files.offlineCount);
    this.stats.set(StatSlot.openLogs, this.files.openLogs);
    this.stats.set(StatSlot.partitionsAwaitingRecovery, this.awaitingRecovery.size);
    this.stats.set(StatSlot.segmentFdEvictions, this.files.disk.evictions);
    this.stats.set(StatSlot.indexCacheBytes, this.files.indexCache.residentBytes);
    this.stats.set(StatSlot.indexCacheDrops, this.files.indexCache.drops);
    this.stats.set(StatSlot.indexCacheLoads, this.files.indexCache.loads);
    if (now >= this.nextLagScanMs) {
      this.nextLagScanMs = now + lagScanIntervalMs;
      this.stats.set(StatSlot.replicaMaxLagRecords, this.maxFollowerLag());
    }
  }

  private nextLagScanMs = 0;

  /** The most records a follower is behind any partition led here (0 with none). */
  private maxFollowerLag(): number {
    let max = 0;
    for (const replica of this.replicas.values()) {
      const core = replica.core;
      if (core === null || core.role !== 'leader') continue;
      const end = replica.files.figures().logEndOffset;
      for (const followerEnd of core.followerEnds().values()) {
        // Before a follower's first fetch of this epoch its end is unknown (-1): all of the log is behind.
        max = Math.max(max, end - Math.max(0, followerEnd));
      }
    }
    return max;
  }

  // ------------------------------------------------------------------------------------------------------
  // Metadata: which replicas this worker holds, in which role.

  private onControlMessage(message: ControlToWorker, now: number): void {
    if (message.type === 'alter_isr_result') return this.onIsrResult(message);
    assert(message.version > this.metadataVersion, 'metadata reaches a worker in version order');
    assert(message.full || this.metadataVersion >= 0, 'the first metadata a worker gets is full');
    this.metadataVersion = message.version;
    this.brokers = new Map(message.brokers.map((b) => [b.id, b]));
    if (message.full) this.latestTopics.clear();
    for (const topic of message.topics) this.latestTopics.set(topic.topicId, topic);
    for (const id of message.deletedTopicIds) this.latestTopics.delete(id);
    const seen = new Set<number>();
    for (const topic of message.topics) this.reconcileTopic(topic, seen, now);
    for (const id of message.deletedTopicIds) {
      for (const replica of [...(this.byTopicId.get(id) ?? [])])
        this.removeReplica(replica, 'its topic was deleted');
    }
    if (message.full) {
      for (const replica of [...this.replicas.values()]) {
        if (!seen.has(replica.key)) this.removeReplica(replica, 'its topic is gone');
      }
    }
    // Follower sessions follow the brokers' data ports, which may have changed with the registry.
    for (const replica of this.replicas.values()) this.assignSession(replica);
  }

  private reconcileTopic(topic: TopicMetadata, seen: Set<number>, now: number): void {
    const self = this.options.nodeId;
    for (const p of topic.partitions) {
      if (this.ownerOf(topic.topicSeq, p.partition) !== this.options.workerIndex) continue;
      const key = partitionKey(topic.topicSeq, p.partition);
      let replica = this.replicas.get(key);
      if (!p.replicas.includes(self)) {
        if (replica !== undefined) this.removeReplica(replica, 'this broker is no longer a replica');
        continue;
      }
      seen.add(key);
      if (replica === undefined) replica = this.addReplica(topic, p.partition);
      this.applyAssignment(replica, topic, p, now);
    }
  }

  private addReplica(topic: TopicMetadata, partition: number): Replica {
    const config: LogConfig = {
      ...DEFAULT_LOG_CONFIG,
      segmentBytes: topic.config.segmentBytes,
      retentionMs: topic.config.retentionMs,
      retentionBytes: topic.config.retentionBytes,
      syncIntervalMs: this.options.syncIntervalMs,
      indexIntervalBytes: this.options.indexIntervalBytes,
      maxBatchBytes: this.maxBatchBytesFor(topic.config.segmentBytes),
    };
    const name = `${topic.name}-${partition}`;
    const dir = join(this.options.dataDir, partitionDirName(topic.name, partition));
    const replica: Replica = {
      key: partitionKey(topic.topicSeq, partition),
      topicSeq: topic.topicSeq,
      partition,
      topic: topic.name,
      topicId: topic.topicId,
      name,
      files: new PartitionFiles(name, dir, topic.topicId, config, this.files),
      core: null,
      assignment: null,
      minInsyncReplicas: topic.config.minInsyncReplicas,
      staging: null,
      idleStaging: null,
      touched: false,
      ackWaiters: new AckWaiters(),
      parkedConsumers: [],
      parkedReplicas: new Set(),
      producers: null,
      session: null,
      isrInFlight: null,
      releasing: false,
      noticedHighWatermark: -2,
      noticedLogStart: -2,
      noticedLogEnd: -2,
    };
    this.replicas.set(replica.key, replica);
    let set = this.byTopicId.get(topic.topicId);
    if (set === undefined) {
      set = new Set();
      this.byTopicId.set(topic.topicId, set);
    }
    set.add(replica);
    return replica;
  }

  /** A batch must fit a fetch answer in the response ring and a segment. */
  private maxBatchBytesFor(segmentBytes: number): number {
    return Math.min(
      DEFAULT_LOG_CONFIG.maxBatchBytes,
      this.writer.payloadBytesMax - FETCH_ANSWER_HEADER_BYTES,
      segmentBytes,
    );
  }

  /** The replica's core, created once its log's figures are exact (a crashed log is recovered first). */
  private coreOf(replica: Replica): PartitionReplica | null {
    if (replica.core !== null) return replica.core;
    if (this.awaitingRecovery.size > 0 && this.awaitingRecovery.has(replica)) {
      this.recoverNow(replica, performance.now());
      return replica.core;
    }
    const files = replica.files;
    if (!files.figures().exact && !files.ensureLog()) return null;
    const figures = files.figures();
    replica.core = new PartitionReplica(this.options.nodeId, files.epochs, this.config, {
      logStartOffset: figures.logStartOffset,
      logEndOffset: figures.logEndOffset,
      durableEndOffset: this.durableEnd(replica),
    });
    return replica.core;
  }

  /** Recovers one replica's log and applies the latest metadata for it (its core then exists unless it failed). */
  private recoverNow(replica: Replica, now: number): void {
    this.awaitingRecovery.delete(replica);
    const topic = this.latestTopics.get(replica.topicId);
    const p = topic?.partitions[replica.partition];
    if (topic === undefined || p === undefined || p.partition !== replica.partition) return;
    const files = replica.files;
    // A failed recovery takes the partition offline; the repair loop brings it back and metadata reapplies.
    if (!files.figures().exact && !files.ensureLog()) return;
    this.applyAssignment(replica, topic, p, now);
  }

  /**
   * Recovers replicas waiting for it until `recoverySliceMs` of this turn are spent; while any are left the
   * loop turns again after yielding to the event loop (port messages, timers), not after a request.
   */
  private recoverSome(now: number): void {
    const deadline = performance.now() + recoverySliceMs;
    for (const replica of this.awaitingRecovery) {
      this.recoverNow(replica, now);
      if (performance.now() >= deadline) break;
    }
  }

  private applyAssignment(replica: Replica, topic: TopicMetadata, p: PartitionAssignment, now: number): void {
    if (
      topic.config.retentionMs !== replica.files.config.retentionMs ||
      topic.config.retentionBytes !== replica.files.config.retentionBytes
    ) {
      replica.files.config = {
        ...replica.files.config,
        retentionMs: topic.config.retentionMs,
        retentionBytes: topic.config.retentionBytes,
      };
      // Applied at once: an operator who lowers retention to free space expects the space back now.
      if (replica.files.log === null && replica.files.figures().logEndOffset > 0) replica.files.ensureLog();
      replica.files.log?.setRetention(topic.config.retentionMs, topic.config.retentionBytes);
      this.retain(replica, Date.now());
    }
    if (topic.config.segmentBytes !== replica.files.config.segmentBytes) {
      // Segments rolled from now on take the new size; sealed ones and the active one keep theirs (Kafka's
      // segment.bytes behaves the same way). A closed log reads the new size when it is opened.
      const sizes = {
        segmentBytes: topic.config.segmentBytes,
        maxBatchBytes: this.maxBatchBytesFor(topic.config.segmentBytes),
      };
      replica.files.config = { ...replica.files.config, ...sizes };
      replica.files.log?.setSegmentBytes(sizes.segmentBytes, sizes.maxBatchBytes);
    }
    if (replica.assignment === p && replica.minInsyncReplicas === topic.config.minInsyncReplicas) return;
    if (replica.core === null && !replica.files.figures().exact && replica.files.offline === null) {
      // Recovered later in a slice of a turn, or when a request needs it (coreOf); the latest metadata then.
      this.awaitingRecovery.add(replica);
      return;
    }
    const core = this.coreOf(replica);
    if (core === null) return; // retried with the repair loop
    replica.assignment = p;
    replica.minInsyncReplicas = topic.config.minInsyncReplicas;
    // A new epoch as leader is recorded in the epoch cache, which only an open log persists.
    if (p.leader === this.options.nodeId && p.leaderEpoch > replica.files.epochs.latestEpoch)
      replica.files.ensureLog();
    const roleBefore = core.role;
    const epochBefore = core.leaderEpoch;
    core.applyMetadata(
      {
        leader: p.leader,
        leaderEpoch: p.leaderEpoch,
        partitionEpoch: p.partitionEpoch,
        replicas: p.replicas,
        isr: p.isr,
        minInsyncReplicas: topic.config.minInsyncReplicas,
      },
      now,
    );
    if (core.role !== roleBefore || core.leaderEpoch !== epochBefore) {
      // Requests of the old role or epoch are void: parked fetches are answered, the session reassigned.
      this.answerParkedAsNotLeader(replica);
      this.stateNotices.add(replica);
    }
    this.assignSession(replica);
  }

  /** Puts a follower in the session of its leader's owning worker (or none). */
  private assignSession(replica: Replica): void {
    const core = replica.core;
    let wanted: FetchSession | null = null;
    if (core !== null && core.role === 'follower' && core.leader !== '') {
      const leader = this.brokers.get(core.leader);
      if (leader !== undefined && leader.dataPorts.length > 0) {
        const port = leader.dataPorts[this.learned.workerFor(leader, replica.topicSeq, replica.partition)]!;
        const address = `${leader.clusterHost}:${port}`;
        let session = this.sessions.get(address);
        if (session === undefined || session.leaderId !== leader.id) {
          session?.close();
          session = new FetchSession(
            leader.id,
            leader.clusterHost,
            port,
            this.options.nodeId,
            { ...DATA_LINK_DEFAULTS },
            (answer) => {
              this.sessionAnswers.push(answer);
              this.wake();
            },
            this.auth,
            this.tls,
          );
          this.sessions.set(address, session);
        }
        wanted = session;
      }
    }
    if (replica.session === wanted) return;
    replica.session?.partitions.delete(replica.key);
    replica.session = wanted;
    wanted?.partitions.add(replica.key);
  }

  private removeReplica(replica: Replica, why: string): void {
    this.replicas.delete(replica.key);
    this.awaitingRecovery.delete(replica);
    const set = this.byTopicId.get(replica.topicId);
    if (set !== undefined) {
      set.delete(replica);
      if (set.size === 0) this.byTopicId.delete(replica.topicId);
    }
    replica.session?.partitions.delete(replica.key);
    replica.session = null;
    this.answerParkedAsNotLeader(replica);
    for (const waiter of replica.ackWaiters.drain()) {
      void this.answerProduce(waiter, Status.LostLeadership, -1, replica, 0);
    }
    this.report(`partition ${replica.name}: replica removed (${why}); its files are deleted`);
    replica.files.delete();
  }

  // ------------------------------------------------------------------------------------------------------
  // Requests: the ring and the data link.

  /** Drains a bounded batch of ring frames; produces are staged, the rest queued for this turn. */
  private drainRing(now: number): number {
    let frames = 0;
    // Each acceptor's ring in turn, each with the whole per-turn bound: one busy acceptor cannot starve another.
    for (let ring = 0; ring < this.readers.length; ring++) {
      const reader = this.readers[ring]!;
      this.drainingRing = ring;
      let ringFrames = 0;
      while (ringFrames < this.options.framesPerBatchMax && reader.next()) {
        ringFrames++;
        this.onRequest(
          null,
          reader.correlationId,
          reader.kind,
          reader.view,
          reader.bytes,
          reader.payloadOffset,
          reader.payloadBytes,
          now,
          true,
        );
      }
      // Every staged record was copied into a batch writer and every request's fields were read: hand the
      // request bytes back to the acceptor with one store before the slow part (write, fsync).
      reader.release();
      frames += ringFrames;
    }
    this.drainingRing = 0;
    return frames;
  }

  private drainLink(now: number): void {
    const queued = this.linkQueue.splice(0);
    for (const q of queued) {
      if (q.origin.link?.closed === true) continue;
      const view = new DataView(q.payload.buffer, q.payload.byteOffset, q.payload.byteLength);
      const moved = this.movedIn(q.kind, view, q.payload);
      if (moved !== null) {
        this.answerMoved(q.origin, moved);
        continue;
      }
      this.onRequest(
        q.origin.link,
        q.origin.correlationId,
        q.kind,
        view,
        q.payload,
        0,
        q.payload.byteLength,
        now,
        false,
      );
    }
    if (queued.length >= linkQueueMax) {
      for (const q of queued) q.origin.link?.socket.resume();
    }
  }

  /** The worker that owns the partition when it is not this one (the balancer moved it), else -1. */
  private ownedElsewhere(topicSeq: number, partition: number): number {
    if (partition >= PARTITIONS_PER_TOPIC_MAX) return -1; // malformed: onRequest answers it
    const owner = this.ownerOf(topicSeq, partition);
    return owner === this.options.workerIndex ? -1 : owner;
  }

  /**
   * The partitions a data-link request names that a sibling worker owns now (the node's balancer moved them):
   * the request is answered MOVED and nothing in it is carried out. Produce, fetch and describe carry the
   * partition in their first 8 bytes (no allocation unless it moved); replica fetches are checked where they
   * are parsed (onRequest); malformed requests are left to onRequest.
   */
  private movedIn(kind: number, view: DataView, payload: Buffer): MovedEntry[] | null {
    const length = payload.byteLength;
    let topicSeq = -1;
    let partition = -1;
    switch (kind) {
      case MessageKind.Produce:
      case MessageKind.Describe:
      case MessageKind.Fetch:
        if (length < 8) return null;
        topicSeq = view.getUint32(0, true);
        partition = view.getUint32(4, true);
        break;
      case MessageKind.Control: {
        const request = decodeJson<{ op?: unknown; topicSeq?: unknown; partition?: unknown }>(payload);
        if (
          request?.op === 'offset_for_timestamp' &&
          Number.isSafeInteger(request.topicSeq) &&
          Number.isSafeInteger(request.partition) &&
          (request.partition as number) >= 0
        ) {
          topicSeq = request.topicSeq as number;
          partition = request.partition as number;
        }
        break;
      }
    }
    if (topicSeq < 0) return null;
    const owner = this.ownedElsewhere(topicSeq, partition);
    return owner < 0 ? null : [{ topicSeq, partition, worker: owner }];
  }

  private answerMoved(origin: Origin, moved: readonly MovedEntry[]): void {
    assert(origin.link !== null, 'MOVED answers go over the data link only');
    origin.link.reply(
      MessageKind.MovedAnswer,
      origin.correlationId,
      movedAnswerBytes(moved.length),
      (_b, view, at) => writeMovedAnswer(view, at, moved),
    );
  }

  /**
   * One request from the ring (`link` null) or the data link. Its origin object is made here for the kinds
   * that keep one; a produce is its own origin (a reused PendingProduce).
   */
  private onRequest(
    link: LinkConnection | null,
    correlationId: number,
    kind: number,
    view: DataView,
    bytes: Uint8Array,
    at: number,
    length: number,
    now: number,
    trusted: boolean,
  ): void {
    switch (kind) {
      case MessageKind.Produce:
        if (length >= PRODUCE_HEADER_BYTES && isBatchProduce(view, at)) {
          return this.stageBatchProduce(link, correlationId, view, bytes, at, length, now, trusted);
        }
        if (!trusted && !validProduceRecords(view, at, length)) {
          return void this.answerProduce(
            { link, correlationId, ring: link === null ? this.drainingRing : 0 },
            Status.TooLarge,
            -1,
            null,
            0,
          );
        }
        return this.stageProduce(link, correlationId, view, bytes, at, length, now);
    }
    const origin: Origin = { link, correlationId, ring: link === null ? this.drainingRing : 0 };
    switch (kind) {
      case MessageKind.Fetch:
        if (length < FETCH_REQUEST_BYTES)
          return void this.answerFetchStatus(origin, Status.UnknownPartition, null);
        this.fetches.push({ origin, request: readFetchRequest(view, at) });
        return;
      case MessageKind.Describe:
        if (length < DESCRIBE_REQUEST_BYTES) return;
        this.fetchesDescribe.push({ origin, ...readPartitionKey(view, at) });
        return;
      case MessageKind.ReplicaFetch: {
        const request = readReplicaFetchRequest(
          Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
          view,
          at,
          length,
        );
        if (request === null || origin.link === null) return; // malformed: the follower times out and retries
        let moved: MovedEntry[] | null = null;
        for (const e of request.entries) {
          const owner = this.ownedElsewhere(e.topicSeq, e.partition);
          if (owner < 0) continue;
          moved ??= [];
          if (moved.length < MOVED_ENTRIES_MAX)
            moved.push({ topicSeq: e.topicSeq, partition: e.partition, worker: owner });
        }
        if (moved !== null) return this.answerMoved(origin, moved);
        this.replicaFetches.push({
          origin,
          followerId: request.followerId,
          entries: request.entries,
          maxBytes: Math.min(request.maxBytes, this.options.replication.fetchBytesMax),
          untilMs: now + Math.min(request.waitMs, 30_000),
          answered: false,
        });
        return;
      }
      case MessageKind.Control: {
        const request = decodeJson<ControlRequest>(bytes.subarray(at, at + length));
        this.controls.push({ origin, request });
        return;
      }
      case MessageKind.Shutdown:
        assert(origin.link === null && origin.ring === 0, "shutdown comes from the primary acceptor's ring");
        this.shutdownOrigin = origin;
        this.running = false;
        return;
      default:
        assert(!trusted, `unknown request frame kind ${kind}`);
    }
  }

  private readonly fetchesDescribe: { origin: Origin; topicSeq: number; partition: number }[] = [];
  private readonly controls: { origin: Origin; request: ControlRequest | null }[] = [];
  private readonly replicaFetches: ParkedReplicaFetch[] = [];
  private shutdownOrigin: Origin | null = null;

  // ------------------------------------------------------------------------------------------------------
  // Produce (leader).

  /**
   * The checks every produce passes before anything is staged, whether it carries records or an encoded batch:
   * the partition is here, not being handed to a sibling worker, led here with enough in-sync replicas, and
   * writable. False (with `pending.status` set: a definite refusal) when it may not be appended.
   */
  private admitProduce(pending: PendingProduce, acks: Acks): boolean {
    const replica = pending.replica;
    if (replica === null) {
      pending.status = Status.UnknownPartition;
      return false;
    }
    if (replica.releasing) {
      // Its acks=all requests are completing before it moves; a forwarded produce is retried by its sender.
      pending.status = Status.NotLeader;
      return false;
    }
    const core = this.coreOf(replica);
    if (core === null) {
      pending.status = offlineStatus(replica.files);
      return false;
    }
    const refusal = core.canAppend(acks === Acks.all);
    if (refusal !== null) {
      pending.status =
        refusal.kind === 'not_leader'
          ? Status.NotLeader
          : refusal.kind === 'not_enough_replicas'
            ? Status.NotEnoughReplicas
            : Status.Overloaded;
      if (refusal.kind === 'not_enough_replicas') pending.detail = refusal.isr;
      return false;
    }
    const files = replica.files;
    if (!files.ensureLog() || files.offline !== null) {
      // Nothing is attempted while the partition cannot write: the refusal is definite.
      pending.status = offlineStatus(files);
      return false;
    }
    return true;
  }

  private stageProduce(
    link: LinkConnection | null,
    correlationId: number,
    view: DataView,
    bytes: Uint8Array,
    at: number,
    length: number,
    now: number,
  ): void {
    const header = readProduceHeaderInto(view, at, this.produceHeaderScratch);
    const replica = this.replicas.get(partitionKey(header.topicSeq, header.partition)) ?? null;
    const pending = this.acquirePending(link, correlationId, replica, header.recordCount, header.acks);
    this.produces.push(pending);
    if (!this.admitProduce(pending, header.acks) || replica === null) return;
    // Admitted: the replica has its core and an open, writable log.
    const core = replica.core!;
    const files = replica.files;
    if (replica.staging === null) this.beginStaging(replica);
    const producer = header.producer as ProducerFields | null;
    if (producer !== null && !this.checkSequence(replica, core.leaderEpoch, producer, pending)) return;
    const staging = replica.staging!;
    const log = files.log!;
    const firstOffset = log.logEndOffset + staging.recordsStaged;
    pending.recordsBefore = staging.recordsStaged;
    staging.staged.push(pending);
    const chunkBytes = Math.min(Math.floor(files.config.segmentBytes / 2), 8 * 1024 * 1024);
    if (!this.stager.stage(staging, pending, bytes, view, at, length, chunkBytes, producer)) {
      staging.staged.pop();
      pending.status = Status.TooLarge;
      return;
    }
    replica.producers?.staged(
      producer,
      header.recordCount,
      firstOffset,
      log.logEndOffset + staging.recordsStaged,
      now,
    );
  }

  /**
   * A produce whose records are one encoded record batch (a Kafka client's): appended as it is, its base offset
   * and leader epoch patched in place, after whatever this partition has staged (offsets stay in arrival
   * order). Same checks as a produce of records: leadership, min ISR, idempotent sequences, batch bounds. A
   * batch from another node is CRC-checked and walked again here; one from the ring was by the acceptor.
   */
  private stageBatchProduce(
    link: LinkConnection | null,
    correlationId: number,
    view: DataView,
    bytes: Uint8Array,
    at: number,
    length: number,
    now: number,
    trusted: boolean,
  ): void {
    const header = readProduceHeaderInto(view, at, this.produceHeaderScratch);
    const batch = bytes.subarray(at + PRODUCE_HEADER_BYTES, at + length);
    const replica = this.replicas.get(partitionKey(header.topicSeq, header.partition)) ?? null;
    const pending = this.acquirePending(link, correlationId, replica, header.recordCount, header.acks);
    this.produces.push(pending);
    const check = validateBatch(batch, 0, batch.length, crc32, {
      // The partition's own bound is checked below, as a refusal rather than as damage.
      batchBytesMax: batch.length,
      deep: !trusted,
    });
    if (check.kind !== 'ok' || check.sizeBytes !== batch.length || check.recordCount !== header.recordCount) {
      assert(!trusted, 'a batch from the ring was validated by the acceptor');
      pending.status = Status.TooLarge;
      return;
    }
    if (!this.admitProduce(pending, header.acks) || replica === null) return;
    // Admitted: the replica has its core and an open, writable log.
    const core = replica.core!;
    const files = replica.files;
    if (batch.length > files.config.maxBatchBytes) {
      pending.status = Status.TooLarge;
      return;
    }
    const staging = replica.staging ?? this.beginStaging(replica);
    const producer = header.producer as ProducerFields | null;
    if (producer !== null && !this.checkSequence(replica, core.leaderEpoch, producer, pending)) return;
    // Records staged before this batch go first: offsets follow the order requests arrived in.
    if (staging.staged.length > 0) this.appendStaged(replica);
    if (this.batchCopy.byteLength < batch.length) this.batchCopy = new Uint8Array(batch.length);
    const copy = this.batchCopy.subarray(0, batch.length);
    copy.set(batch);
    const log = files.log!;
    const result = log.append(copy, {
      assignOffsets: true,
      leaderEpoch: core.leaderEpoch,
      nowMs: Date.now(),
    });
    if (result.kind === 'ok') {
      pending.baseOffset = result.firstOffset;
      this.stats.observeAppend(header.recordCount, batch.length, this.commit !== null);
      replica.producers?.staged(producer, header.recordCount, result.firstOffset, result.lastOffset + 1, now);
      if (!replica.touched) {
        replica.touched = true;
        this.touched.push(replica);
      }
    } else if (result.kind === 'storage_failed') {
      files.goOffline(result.fault);
      pending.status = result.definite ? offlineStatus(files) : Status.StorageError;
    } else {
      assert(
        result.kind === 'batch_too_large' || result.kind === 'append_too_large',
        `batch append refused: ${result.kind}`,
      );
      pending.status = Status.TooLarge;
    }
  }

  /** Gives the replica a staging with a writer from the pool, reusing its staging object from earlier commits. */
  private beginStaging(replica: Replica): Staging {
    const pooled = this.idleWriters.pop();
    if (pooled !== undefined) this.idleWritersBytes -= pooled.capacityBytes;
    const writer = pooled ?? new BatchWriter(writerInitialBytes, 16 * 1024 * 1024);
    const maxBatchBytes = replica.files.config.maxBatchBytes;
    let staging = replica.idleStaging;
    if (staging === null) {
      staging = { writer, maxBatchBytes, staged: [], recordsStaged: 0, replica };
    } else {
      assert(staging.staged.length === 0 && staging.recordsStaged === 0, 'an idle staging holds nothing');
      staging.writer = writer;
      staging.maxBatchBytes = maxBatchBytes;
      replica.idleStaging = null;
    }
    replica.staging = staging;
    return staging;
  }

  /** The copy of a client's batch that the log patches (base offset, epoch) and writes. */
  private batchCopy = new Uint8Array(0);
  /** Every produce's header is read into this one object (used only while the request is staged). */
  private readonly produceHeaderScratch = emptyProduceHeader();
  /** Answered produce requests, kept for reuse (at most `pendingPoolMax`). */
  private readonly pendingPool: PendingProduce[] = [];

  /** A produce request record, reused when one is free. */
  private acquirePending(
    link: LinkConnection | null,
    correlationId: number,
    replica: Replica | null,
    recordCount: number,
    acks: Acks,
  ): PendingProduce {
    const pending = this.pendingPool.pop();
    if (pending === undefined) {
      return {
        link,
        correlationId,
        ring: link === null ? this.drainingRing : 0,
        replica,
        recordCount,
        acks,
        recordsBefore: 0,
        status: Status.Ok,
        baseOffset: -1,
        detail: 0,
        duplicate: false,
        ackId: 0,
        answered: false,
      };
    }
    pending.link = link;
    pending.correlationId = correlationId;
    pending.ring = link === null ? this.drainingRing : 0;
    pending.replica = replica;
    pending.recordCount = recordCount;
    pending.acks = acks;
    pending.recordsBefore = 0;
    pending.status = Status.Ok;
    pending.baseOffset = -1;
    pending.detail = 0;
    pending.duplicate = false;
    pending.ackId = 0;
    pending.answered = false;
    return pending;
  }

  /**
   * Takes back a request whose answer was written. One whose answer waited for ring space is left to the
   * collector instead: the wait still reads it.
   */
  private recyclePending(pending: PendingProduce): void {
    if (!pending.answered || this.pendingPool.length >= pendingPoolMax) return;
    pending.link = null;
    pending.replica = null;
    this.pendingPool.push(pending);
  }

  /**
   * Checks an idempotent produce against the producer's last batches on this leader. True: stage it. False:
   * answered without appending (a duplicate with its original offsets, or a refusal).
   */
  private checkSequence(
    replica: Replica,
    leaderEpoch: number,
    producer: ProducerFields,
    pending: PendingProduce,
  ): boolean {
    const staging = replica.staging!;
    const log = replica.files.log!;
    replica.producers ??= new ProducerGuard();
    const guard = replica.producers;
    let table = guard.current(leaderEpoch, log.logEndOffset, staging.recordsStaged);
    if (table === null) {
      // The table is rebuilt from the log, so what is staged must be in the log first.
      if (staging.staged.length > 0) this.appendStaged(replica);
      table = guard.rebuild(log, leaderEpoch, Date.now());
      const scan = guard.lastScan!;
      if (scan.durationMs > 100) {
        this.report(
          `partition ${replica.name}: idempotent producer state rebuilt from ${scan.batches} batches (${scan.bytes} bytes) in ${scan.durationMs.toFixed(0)} ms`,
        );
      }
    }
    const check = guard.check(table, producer, pending.recordCount);
    switch (check.kind) {
      case 'ok':
        return true;
      case 'duplicate':
        assert(
          check.lastOffset - check.firstOffset + 1 === pending.recordCount,
          'a duplicate batch has the original record count',
        );
        pending.duplicate = true;
        pending.baseOffset = check.firstOffset;
        return false;
      case 'out_of_order':
        pending.status = Status.OutOfOrderSequence;
        pending.detail = check.expectedSequence;
        return false;
      case 'fenced_epoch':
        pending.status = Status.FencedProducerEpoch;
        pending.detail = check.currentEpoch;
        return false;
      case 'unknown_producer':
        pending.status = Status.UnknownProducer;
        return false;
    }
  }

  /** One write for everything staged in the replica's writer; assigns each staged request its base offset. */
  private appendStaged(replica: Replica): void {
    const staging = replica.staging;
    if (staging === null || staging.staged.length === 0) return;
    const bytes = staging.writer.bytes();
    const files = replica.files;
    const core = replica.core;
    let status: Status = Status.Ok;
    let firstOffset = -1;
    if (files.offline !== null || files.log === null) {
      // It went offline earlier in this batch: the rest is refused without a pointless attempt.
      status = offlineStatus(files);
    } else if (core === null || core.canAppend(false) !== null) {
      status = Status.NotLeader;
    } else {
      const options = this.produceAppendOptions;
      options.leaderEpoch = core.leaderEpoch;
      options.nowMs = Date.now();
      const result = files.log.append(bytes, options);
      if (result.kind === 'ok') {
        firstOffset = result.firstOffset;
        this.stats.observeAppend(staging.recordsStaged, bytes.byteLength, this.commit !== null);
      } else if (result.kind === 'storage_failed') {
        files.goOffline(result.fault);
        status = result.definite ? offlineStatus(files) : Status.StorageError;
      } else {
        assert(
          result.kind === 'batch_too_large' || result.kind === 'append_too_large',
          `append refused: ${result.kind}`,
        );
        status = Status.TooLarge;
      }
    }
    const staged = staging.staged;
    for (let i = 0; i < staged.length; i++) {
      const pending = staged[i]!;
      // A request split over several appends keeps the base offset of its first one, and fails if any fails.
      if (pending.status !== Status.Ok) continue;
      if (status !== Status.Ok) {
        pending.status = status;
        pending.baseOffset = -1;
      } else if (pending.baseOffset === -1) {
        pending.baseOffset = firstOffset + pending.recordsBefore;
      }
    }
    staging.staged.length = 0;
    staging.recordsStaged = 0;
    staging.writer.reset();
    if (status === Status.Ok && !replica.touched) {
      replica.touched = true;
      this.touched.push(replica);
    }
  }

  /** The options of every append of staged records (the log reads them during the call only). */
  private readonly produceAppendOptions: { assignOffsets: true; leaderEpoch: number; nowMs: number } = {
    assignOffsets: true,
    leaderEpoch: 0,
    nowMs: 0,
  };

  /** The durable end the core counts: flushed with fsync-per-batch, appended with an interval policy. */
  private durableEnd(replica: Replica): number {
    const files = replica.files;
    if (files.log === null) return files.durableEndOffset;
    return this.options.syncIntervalMs === 0 ? files.log.flushedOffset : files.log.logEndOffset;
  }

  private logChanged(replica: Replica): void {
    const core = replica.core;
    if (core === null) return;
    const files = replica.files;
    const logEndOffset = files.logEndOffset;
    core.onLogChanged(files.logStartOffset, logEndOffset, Math.min(this.durableEnd(replica), logEndOffset));
    this.stateNotices.add(replica);
    this.pendingReady.add(replica);
    // Followers waiting for records of this leader may have some now.
    if (replica.parkedReplicas.size > 0) this.flushedSinceParked.add(replica);
  }

  /**
   * The group commit, pipelined: appends what is staged and, unless a commit's sync is running, starts the
   * next one over every partition appended to. Records staged while a sync runs are written at once and wait
   * for the next sync, which starts in the turn after the running one ended, with whatever that turn drained.
   */
  private commitAppends(framesDrained: number, ended: Commit | null): Promise<void> | undefined {
    if (this.commit === null) {
      if (this.produces.length > 0) this.startCommit(framesDrained > 1);
      // The previous commit's answers go first (answers keep the order of the requests), while this one's
      // syncs run on the pool.
      const answering = ended === null ? undefined : this.answerCommit(ended);
      if (answering !== undefined) return this.finishStartedAfter(answering);
      // Synced on this thread (or nothing to sync): answered now.
      const started = this.commit as Commit | null;
      if (started?.ended === true) return this.finishCommit();
      return undefined;
    }
    assert(ended === null, 'a commit ends before the next one starts');
    this.appendAllStaged();
    return undefined;
  }

  /** The rest of `commitAppends` once the previous commit's answers had to wait for ring space. */
  private async finishStartedAfter(answering: Promise<void>): Promise<void> {
    await answering;
    const started = this.commit as Commit | null;
    if (started?.ended === true) await this.finishCommit();
  }

  /** Writes every partition's staged records (one append per partition). */
  private appendAllStaged(): void {
    const produces = this.produces;
    for (let i = 0; i < produces.length; i++) {
      const pending = produces[i]!;
      const staging = pending.replica?.staging;
      if (staging !== null && staging !== undefined && staging.staged.length > 0)
        this.appendStaged(pending.replica!);
    }
  }

  /**
   * Starts a commit: appends what is staged, then one data sync per partition appended to since the last
   * commit began (policy permitting). With several partitions, or more requests already waiting in the ring,
   * the syncs run on libuv's pool (`fdatasyncEach`; the file system commits them together) and the loop goes
   * on staging and writing the next batch meanwhile. One partition of a lone request with nothing waiting (a
   * sequential producer) is synced on this thread, which answers sooner that way. `concurrent`: the turn
   * drained several requests, so more are likely coming. The commit's requests are answered when its own
   * syncs end.
   */
  private startCommit(concurrent = false): void {
    assert(this.commit === null, 'one group commit at a time');
    this.appendAllStaged();
    // The commit takes the lists; new ones (reused from finished commits) gather the next requests.
    const replicas = this.touched;
    this.touched = this.spareReplicaLists.pop() ?? [];
    for (let i = 0; i < replicas.length; i++) replicas[i]!.touched = false;
    const produces = this.produces;
    this.produces = this.spareProduceLists.pop() ?? [];
    const commit: Commit = {
      replicas,
      produces,
      flushes: [],
      fds: [],
      startedNs: process.hrtime.bigint(),
      errors: null,
      ended: false,
      done: null,
    };
    this.commit = commit;
    if (this.options.syncIntervalMs === 0) {
      for (let i = 0; i < replicas.length; i++) {
        const log = replicas[i]!.files.log;
        const flush = log === null ? null : log.flushStart();
        commit.flushes.push(flush);
        if (flush !== null && flush.fd !== null) commit.fds.push(flush.fd);
      }
    }
    const fds = commit.fds;
    const alone =
      !concurrent &&
      !(this.ringSet !== null ? this.ringSet.hasFrames() : this.reader.hasFrames()) &&
      this.linkQueue.length === 0;
    if (fds.length === 0 || (fds.length === 1 && alone)) {
      const errors: unknown[] = fds.length === 0 ? noSyncErrors : [undefined];
      if (fds.length === 1) {
        try {
          this.files.disk.fdatasync(fds[0]!);
        } catch (error) {
          errors[0] = error;
        }
      }
      commit.errors = errors;
      commit.ended = true;
      return;
    }
    commit.done = this.files.disk.fdatasyncEach(fds).then(
      (errors) => {
        commit.errors = errors;
        commit.ended = true;
        const syncMs = Number(process.hrtime.bigint() - commit.startedNs) / 1e6;
        this.syncMsAverage += (syncMs - this.syncMsAverage) * syncAverageWeight;
        this.wake();
      },
      (error: unknown) => {
        // fdatasyncEach reports every sync's error in its answer; a rejection is a bug (or a simulated crash).
        commit.errors = fds.map(() => error);
        commit.ended = true;
        this.wake();
      },
    );
  }

  /**
   * Ends the commit whose syncs ended: the logs learn what is durable (a failed sync cuts its log back, see
   * PartitionLog.flushFinish), the cores learn the new ends, acks=0/1 requests are answered and acks=all ones
   * wait for the high watermark. Then the next commit starts if anything was appended meanwhile.
   */
  private finishCommit(): Promise<void> | undefined {
    return this.answerCommit(this.endSyncs());
  }

  /**
   * The first half of `finishCommit`, once the running commit's syncs ended: each log learns what is durable
   * (a failed sync cuts its log back and takes the partition offline), and the commit is no longer running,
   * so the next one may start before this one's requests are answered (`answerCommit`).
   */
  private endSyncs(): Commit {
    const commit = this.commit;
    if (commit === null || !commit.ended) return assertionFailed('a commit is finished once its syncs ended');
    this.commit = null;
    const errors = commit.errors!;
    let next = 0;
    for (let i = 0; i < commit.flushes.length; i++) {
      const flush = commit.flushes[i]!;
      const replica = commit.replicas[i]!;
      const log = replica.files.log;
      if (flush === null || log === null) continue;
      const result = log.flushFinish(flush, flush.fd === null ? undefined : errors[next++]);
      if (result.fault !== null) replica.files.goOffline(result.fault);
    }
    if (commit.fds.length > 0)
      this.stats.observeFsync(Number(process.hrtime.bigint() - commit.startedNs) / 1e9);
    return commit;
  }

  /**
   * The second half of `finishCommit`: the cores learn the new ends, and the commit's requests are answered.
   * Synchronous while the response ring has room; a promise (to await before answering anything else) only
   * from the first answer that must wait for room.
   */
  private answerCommit(commit: Commit): Promise<void> | undefined {
    const replicas = commit.replicas;
    for (let i = 0; i < replicas.length; i++) this.logChanged(replicas[i]!);
    const now = performance.now();
    const produces = commit.produces;
    for (let i = 0; i < produces.length; i++) {
      const waiting = this.answerCommitted(produces[i]!, now);
      if (waiting !== undefined) return this.answerCommitAfter(waiting, commit, i + 1, now);
    }
    this.releaseCommit(commit);
    return undefined;
  }

  /** `answerCommit` from request `from` on, once the answer before it was written. */
  private async answerCommitAfter(
    waiting: Promise<void>,
    commit: Commit,
    from: number,
    now: number,
  ): Promise<void> {
    await waiting;
    const produces = commit.produces;
    for (let i = from; i < produces.length; i++) {
      const next = this.answerCommitted(produces[i]!, now);
      if (next !== undefined) await next;
    }
    this.releaseCommit(commit);
  }

  /** Answers one request of an ended commit, or registers it to wait for the high watermark (acks=all). */
  private answerCommitted(pending: PendingProduce, now: number): Promise<void> | undefined {
    const replica = pending.replica;
    const log = replica?.files.log ?? null;
    if (pending.status === Status.Ok && replica !== null && log !== null) {
      // Acknowledged only what the log still holds: durable with fsync-per-batch, appended otherwise. A
      // request past that lost its records to a failed write or sync: definitely, unless the log broke.
      if (pending.baseOffset + pending.recordCount > this.durableEnd(replica)) {
        pending.status = log.broken !== null ? Status.StorageError : offlineStatus(replica.files);
      }
    }
    if (pending.status === Status.Ok && pending.acks === Acks.all) {
      const core = replica!.core!;
      pending.ackId = this.nextAckId++;
      replica!.ackWaiters.push(pending);
      core.awaitHighWatermark(pending.ackId, pending.baseOffset + pending.recordCount, now);
      this.pendingReady.add(replica!);
      return undefined;
    }
    const waiting = this.answerProduce(
      pending,
      pending.status,
      pending.status === Status.Ok ? pending.baseOffset : -1,
      replica,
      pending.detail,
      pending.duplicate && pending.status === Status.Ok,
    );
    if (waiting === undefined) pending.answered = true;
    return waiting;
  }

  /** After a commit's answers: idle writers back to the pool, broken logs closed, answered requests reused. */
  private releaseCommit(commit: Commit): void {
    const produces = commit.produces;
    for (let i = 0; i < produces.length; i++) {
      const replica = produces[i]!.replica;
      const staging = replica?.staging;
      if (replica === null || staging === null || staging === undefined || staging.staged.length > 0)
        continue;
      // Back to the pool, unless it grew for a large batch: an idle partition holds no buffer.
      const bytes = staging.writer.capacityBytes;
      if (
        this.idleWriters.length < idleWritersMax &&
        bytes <= idleWriterBytesMax &&
        this.idleWritersBytes + bytes <= idleWritersBytesMax
      ) {
        this.idleWriters.push(staging.writer);
        this.idleWritersBytes += bytes;
      }
      // The object is kept for the next commit, without the writer (which another replica may take).
      staging.writer = detachedWriter;
      replica.staging = null;
      replica.idleStaging = staging;
    }
    // A log that broke in this commit is closed now that its answers are out; the repair loop reopens it. Only
    // the logs this commit wrote or synced can have broken in it (a later commit's sync may still hold one: it
    // is closed after that sync, by that commit's release or the next tick), so a commit costs nothing per
    // partition it did not touch.
    for (let i = 0; i < produces.length; i++) produces[i]!.replica?.files.closeIfBroken();
    const replicas = commit.replicas;
    for (let i = 0; i < replicas.length; i++) replicas[i]!.files.closeIfBroken();
    // acks=all requests still wait for the high watermark: reused once `answerAck` answered them.
    for (let i = 0; i < produces.length; i++) {
      const pending = produces[i]!;
      if (pending.ackId === 0) this.recyclePending(pending);
    }
    // Nothing reads a finished commit's lists any more: the next commits reuse them.
    produces.length = 0;
    if (this.spareProduceLists.length < 2) this.spareProduceLists.push(produces);
    commit.replicas.length = 0;
    if (this.spareReplicaLists.length < 2) this.spareReplicaLists.push(commit.replicas);
  }

  /**
   * Runs commits until nothing appended is left unsynced and no sync runs: before anything that cuts, closes
   * or reopens a log (metadata, follower answers, control requests, ticks, moves, shutdown), and where the
   * followers' appends must be durable before their cores hear of them.
   */
  private async settle(): Promise<void> {
    for (;;) {
      if (this.commit === null) {
        if (this.produces.length === 0 && this.touched.length === 0) return;
        this.startCommit();
      }
      const commit = this.commit!;
      if (!commit.ended) await commit.done;
      await this.finishCommit();
    }
  }

  /**
   * Answers a produce. Synchronous while the response ring has room (the answer is written from a reused
   * scratch record by a function made once); a promise only when it must wait for room, with its own copy of
   * the answer. Callers await a returned promise before answering again, as for `answer`.
   */
  private answerProduce(
    origin: Origin,
    status: Status,
    baseOffset: number,
    replica: Replica | null,
    detail: number,
    duplicate = false,
  ): Promise<void> | undefined {
    const files = replica === null ? null : replica.files;
    const answer = this.produceAnswerScratch;
    answer.status = status;
    answer.duplicate = duplicate;
    answer.baseOffset = baseOffset;
    answer.logEndOffset = files === null ? -1 : files.logEndOffset;
    answer.highWatermark = replica?.core?.servableHighWatermark ?? -1;
    answer.logStartOffset = files === null ? -1 : files.logStartOffset;
    answer.detail = detail;
    if (origin.link === null && !this.writers[origin.ring]!.hasSpaceFor(PRODUCE_ANSWER_BYTES)) {
      const copy = { ...answer };
      return this.answerWhenRoom(origin, MessageKind.ProduceAnswer, PRODUCE_ANSWER_BYTES, (_b, view, at) =>
        writeProduceAnswer(view, at, copy),
      );
    }
    return this.answer(origin, MessageKind.ProduceAnswer, PRODUCE_ANSWER_BYTES, this.encodeProduceAnswer);
  }

  private readonly produceAnswerScratch = emptyProduceAnswer();
  private readonly encodeProduceAnswer = (_bytes: Buffer, view: DataView, at: number): void =>
    writeProduceAnswer(view, at, this.produceAnswerScratch);

  // ------------------------------------------------------------------------------------------------------
  // Answers.

  /**
   * Writes an answer to the ring or to a data-link connection: at once when the ring has room (nothing to
   * await: the hot path allocates no promise), else a promise that resolves once the acceptor freed room and
   * the answer is written. Callers await a returned promise before writing the next answer, so answers keep
   * their order.
   */
  private answer(
    origin: Origin,
    kind: number,
    payloadBytes: number,
    encode: (bytes: Buffer, view: DataView, at: number) => void,
  ): Promise<void> | undefined {
    if (origin.link !== null) {
      origin.link.reply(kind, origin.correlationId, payloadBytes, encode);
      return undefined;
    }
    const writer = this.writers[origin.ring]!;
    const at = writer.reserve(payloadBytes);
    if (at < 0) return this.answerWhenRoom(origin, kind, payloadBytes, encode);
    encode(this.ringBuffers[origin.ring]!, writer.view, at);
    writer.commit(kind, origin.correlationId, payloadBytes);
    return undefined;
  }

  private async answerWhenRoom(
    origin: Origin,
    kind: number,
    payloadBytes: number,
    encode: (bytes: Buffer, view: DataView, at: number) => void,
  ): Promise<void> {
    const at = await this.reserveResponse(payloadBytes, origin.ring);
    const writer = this.writers[origin.ring]!;
    encode(this.ringBuffers[origin.ring]!, writer.view, at);
    writer.commit(kind, origin.correlationId, payloadBytes);
  }

  /**
   * Reserves a response frame in ring `ring` (0: the primary acceptor's), publishing and waiting for the
   * acceptor to free space if the ring is full.
   */
  private async reserveResponse(payloadBytes: number, ring: number): Promise<number> {
    const writer = this.writers[ring]!;
    for (;;) {
      const at = writer.reserve(payloadBytes);
      if (at >= 0) return at;
      assert(at === ReserveFailure.full, `response of ${payloadBytes} bytes can never fit the response ring`);
      writer.publish();
      await writer.waitForSpace(payloadBytes);
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // Consumer fetches (leader): read below the servable high watermark, or wait for it.

  private async serveFetches(now: number): Promise<void> {
    if (this.fetches.length > 0) {
      const fetches = this.fetches.splice(0);
      for (let i = 0; i < fetches.length; i++) {
        const waiting = this.serveFetch(fetches[i]!.origin, fetches[i]!.request, now, true);
        if (waiting !== undefined) await waiting;
      }
    }
    const describes = this.fetchesDescribe.splice(0);
    for (const d of describes) await this.serveDescribe(d.origin, d.topicSeq, d.partition);
    const replicaFetches = this.replicaFetches.splice(0);
    for (const r of replicaFetches) await this.serveReplicaFetch(r, now);
    if (this.controls.length > 0) await this.settle(); // control requests may cut or close logs
    const controls = this.controls.splice(0);
    for (const c of controls) {
      const request = c.request;
      if (request?.op === 'release' && c.origin.link === null && c.origin.ring === 0) {
        this.startRelease(c.origin, request, now);
        continue;
      }
      await this.answerControl(c.origin, await this.control(c.request, c.origin, now));
    }
  }

  private async control(request: ControlRequest | null, origin: Origin, now: number): Promise<ControlAnswer> {
    if (request === null)
      return { ok: false, status: Status.UnknownPartition, message: 'not a JSON control request' };
    if (
      (request.op === 'release' || request.op === 'adopt' || request.op === 'placement') &&
      (origin.link !== null || origin.ring !== 0)
    )
      return {
        ok: false,
        status: Status.UnknownPartition,
        message: `${request.op} is for the local acceptor only`,
      };
    switch (request.op) {
      case 'adopt':
        return this.adopt(request, now);
      case 'placement': {
        const key = partitionKey(request.topicSeq, request.partition);
        assert(
          request.worker === this.options.workerIndex || !this.replicas.has(key),
          `worker ${this.options.workerIndex} told that ${key} is on worker ${request.worker} while it holds it`,
        );
        this.setOverride(request.topicSeq, request.partition, request.worker);
        return { ok: true };
      }
      case 'health': {
        const offline: OfflinePartition[] = [];
        for (const replica of this.replicas.values()) {
          const down = replica.files.offline;
          if (down === null) continue;
          offline.push({
            topic: replica.topic,
            partition: replica.partition,
            reason: down.fault.full ? 'storage_full' : 'storage_unavailable',
            code: down.fault.code,
            message: down.fault.message,
            since_ms: down.sinceMs,
          });
        }
        return { ok: true, offline };
      }
      case 'offset_for_timestamp': {
        // Kafka's ListOffsets by time: the first offset whose record timestamp is at or after the time, never
        // at or past the high watermark (consumers do not see those records yet).
        const replica = this.replicas.get(partitionKey(request.topicSeq, request.partition));
        const core = replica === undefined ? null : this.coreOf(replica);
        if (replica === undefined || core === null) {
          return { ok: false, status: Status.UnknownPartition, message: 'no replica of this partition here' };
        }
        if (core.role !== 'leader') return { ok: false, status: Status.NotLeader, message: 'not the leader' };
        if (!replica.files.ensureLog() || replica.files.log === null) {
          return {
            ok: false,
            status: Status.StorageUnavailable,
            message: `${replica.name} cannot be read now`,
          };
        }
        const found = replica.files.log.offsetForTimestamp(request.timestampMs);
        const highWatermark = core.servableHighWatermark;
        return { ok: true, offset: found === null || found >= highWatermark ? null : found };
      }
      default:
        return { ok: false, status: Status.UnknownPartition, message: 'unknown control operation' };
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // Moves between this node's workers (the acceptor drives them, src/broker/worker-moves.ts): the old worker
  // completes the partition's acks=all requests, answers its parked fetches, closes its log (flushed and
  // checkpointed) and hands back its leadership figures; the new worker opens it and carries them on.

  private setOverride(topicSeq: number, partition: number, worker: number): void {
    assert(worker >= 0 && worker < this.options.workerCount, `placement on worker ${worker}`);
    const key = partitionKey(topicSeq, partition);
    if (worker === workerOf(topicSeq, partition, this.options.workerCount)) this.overrides.delete(key);
    else this.overrides.set(key, worker);
  }

  private startRelease(origin: Origin, request: ControlRequest & { op: 'release' }, now: number): void {
    const replica = this.replicas.get(partitionKey(request.topicSeq, request.partition));
    if (replica !== undefined) replica.releasing = true;
    this.releases.push({
      origin,
      topicSeq: request.topicSeq,
      partition: request.partition,
      toWorker: request.toWorker,
      untilMs: now + (this.options.releaseWaitMs ?? 10_000),
    });
  }

  private async driveReleases(now: number): Promise<void> {
    const waiting: PendingRelease[] = [];
    for (const r of this.releases.splice(0)) {
      const replica = this.replicas.get(partitionKey(r.topicSeq, r.partition));
      const busy =
        replica !== undefined &&
        (replica.ackWaiters.size > 0 ||
          replica.isrInFlight !== null ||
          (replica.staging?.staged.length ?? 0) > 0);
      if (busy && now < r.untilMs) {
        waiting.push(r);
        continue;
      }
      if (busy) {
        replica!.releasing = false;
        await this.answerControl(r.origin, {
          ok: false,
          status: Status.Overloaded,
          message: `${replica!.name} still has ${replica!.ackWaiters.size} acks=all requests waiting for its followers; not moved`,
        });
        continue;
      }
      const handover = replica === undefined ? null : await this.releaseReplica(replica, now);
      this.setOverride(r.topicSeq, r.partition, r.toWorker);
      await this.answerControl(r.origin, { ok: true, handover });
    }
    this.releases.push(...waiting);
  }

  /** Lets go of a replica whose pending acks completed: answers what waits on it, closes its log, keeps its files. */
  private async releaseReplica(replica: Replica, now: number): Promise<Handover | null> {
    // Long polls end now with what there is, as at shutdown; the client's next poll reaches the new worker.
    for (const p of replica.parkedConsumers.splice(0)) await this.serveFetch(p.origin, p.request, now, false);
    for (const request of [...replica.parkedReplicas]) {
      this.unpark(request);
      if (!request.answered) {
        request.answered = true;
        this.sendReplicaAnswer(request, this.decideReplicaFetch(request, now, true)!);
      }
    }
    const core = replica.core;
    const handover: Handover | null =
      core !== null && core.role === 'leader'
        ? {
            leaderEpoch: core.leaderEpoch,
            highWatermark: core.highWatermark,
            epochStartOffset: core.epochStartOffset,
          }
        : null;
    this.replicas.delete(replica.key);
    // Not recovered yet: the new owner recovers it (its files say the log was not closed cleanly).
    this.awaitingRecovery.delete(replica);
    const set = this.byTopicId.get(replica.topicId);
    if (set !== undefined) {
      set.delete(replica);
      if (set.size === 0) this.byTopicId.delete(replica.topicId);
    }
    replica.session?.partitions.delete(replica.key);
    replica.session = null;
    this.stateNotices.delete(replica);
    this.pendingReady.delete(replica);
    this.hwMoved.delete(replica);
    this.flushedSinceParked.delete(replica);
    const clean = replica.files.close();
    this.report(
      JSON.stringify({
        level: 'info',
        worker: this.options.workerIndex,
        partition: replica.name,
        clean,
        high_watermark: handover?.highWatermark ?? null,
        msg: 'partition handed to a sibling worker',
      }),
    );
    return handover;
  }

  private adopt(request: ControlRequest & { op: 'adopt' }, now: number): ControlAnswer {
    const self = this.options.nodeId;
    this.setOverride(request.topicSeq, request.partition, this.options.workerIndex);
    const key = partitionKey(request.topicSeq, request.partition);
    if (this.replicas.has(key)) return { ok: true };
    let topic: TopicMetadata | undefined;
    for (const t of this.latestTopics.values()) if (t.topicSeq === request.topicSeq) topic = t;
    const p = topic?.partitions[request.partition];
    // Gone meanwhile: nothing to open (a deleted topic's files go with the next topic of its name).
    if (topic === undefined || p === undefined) return { ok: true };
    const replica = this.addReplica(topic, request.partition);
    if (!p.replicas.includes(self)) {
      this.removeReplica(replica, 'this broker stopped being a replica while it moved between workers');
      return { ok: true };
    }
    this.applyAssignment(replica, topic, p, now);
    // A replica moved in is recovered now if it must be (coreOf), so the handover finds its core.
    const core = this.coreOf(replica);
    const handover = request.handover;
    if (core !== null && handover !== null) {
      replica.files.ensureLog();
      core.continueLeadership(handover.leaderEpoch, handover.highWatermark, handover.epochStartOffset);
      this.logChanged(replica);
    }
    this.stateNotices.add(replica);
    return { ok: true };
  }

  private async answerControl(origin: Origin, answer: ControlAnswer): Promise<void> {
    const text = encodeJson(answer);
    await this.answer(origin, MessageKind.ControlAnswer, text.byteLength, (out, _v, at) => {
      text.copy(out, at);
    });
  }

  /** Serves one consumer fetch; parks it when there is nothing to read and it may wait. */
  /**
   * Serves a consumer fetch: parks it, or answers it with what it may read. Synchronous while the response ring
   * has room (a promise, to await before answering again, only when the answer waits for room).
   */
  private serveFetch(
    origin: Origin,
    request: FetchRequest,
    now: number,
    mayPark: boolean,
  ): Promise<void> | undefined {
    const replica = this.replicas.get(partitionKey(request.topicSeq, request.partition));
    if (replica === undefined) return this.answerFetchStatus(origin, Status.UnknownPartition, null);
    const core = this.coreOf(replica);
    if (core === null) return this.answerFetchStatus(origin, Status.StorageUnavailable, replica);
    if (core.role !== 'leader') return this.answerFetchStatus(origin, Status.NotLeader, replica);
    const highWatermark = core.servableHighWatermark;
    if (highWatermark < 0) return this.answerFetchStatus(origin, Status.HighWatermarkNotReady, replica);
    const logStartOffset = replica.files.logStartOffset;
    if (request.offset === FETCH_EARLIEST || request.offset === FETCH_LATEST) {
      // Resolved once, here: a long poll for 'latest' then waits for records after this high watermark.
      const resolved = request.offset === FETCH_EARLIEST ? logStartOffset : highWatermark;
      request = { ...request, offset: resolved };
    }
    if (request.offset < logStartOffset || request.offset > highWatermark) {
      return this.answerFetchStatus(origin, Status.OffsetOutOfRange, replica, request.offset);
    }
    const maxOffset = Math.min(fetchOffsetBound(request.maxOffset, request.offset), highWatermark);
    if (request.offset >= maxOffset) {
      if (mayPark && request.waitMs > 0) {
        replica.parkedConsumers.push({ origin, request, untilMs: now + request.waitMs });
        return undefined;
      }
      return this.answerFetchStatus(origin, Status.Ok, replica, request.offset);
    }
    if (!replica.files.ensureLog() || replica.files.log === null) {
      return this.answerFetchStatus(origin, Status.StorageUnavailable, replica);
    }
    const log = replica.files.log;
    const payloadMax =
      origin.link === null ? this.writer.payloadBytesMax : DATA_LINK_DEFAULTS.frameBytesMax - 64;
    const maxBytes = Math.min(request.maxBytes, payloadMax - FETCH_ANSWER_HEADER_BYTES);
    // Room for max_bytes, and for one whole batch in case the first is larger (a consumer always progresses).
    const regionBytes = Math.min(
      payloadMax - FETCH_ANSWER_HEADER_BYTES,
      Math.max(maxBytes, log.config.maxBatchBytes),
    );
    if (origin.link === null) {
      // Straight into the response ring: every batch passed its CRC check in place before it is published.
      const frameBytes = FETCH_ANSWER_HEADER_BYTES + regionBytes;
      const at = this.writers[origin.ring]!.reserve(frameBytes);
      if (at < 0) {
        return this.reserveResponse(frameBytes, origin.ring).then((room) =>
          this.readIntoRing(origin, replica, request, highWatermark, maxBytes, maxOffset, regionBytes, room),
        );
      }
      this.readIntoRing(origin, replica, request, highWatermark, maxBytes, maxOffset, regionBytes, at);
      return undefined;
    }
    const scratch = this.scratch(FETCH_ANSWER_HEADER_BYTES + regionBytes);
    const scratchView = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
    const target = scratch.subarray(FETCH_ANSWER_HEADER_BYTES, FETCH_ANSWER_HEADER_BYTES + regionBytes);
    const read = log.read(request.offset, maxBytes, maxOffset, target);
    const payload = this.placeRead(replica, read, target, scratchView, 0);
    this.writeFetchHeader(scratchView, 0, this.placedStatus, log, highWatermark, request.offset);
    const total = FETCH_ANSWER_HEADER_BYTES + payload;
    origin.link.reply(MessageKind.FetchAnswer, origin.correlationId, total, (out, _v, to) => {
      out.set(scratch.subarray(0, total), to);
    });
    return undefined;
  }

  /** Reads a fetch's records straight into the response frame reserved at `at`, and commits the frame. */
  private readIntoRing(
    origin: Origin,
    replica: Replica,
    request: FetchRequest,
    highWatermark: number,
    maxBytes: number,
    maxOffset: number,
    regionBytes: number,
    at: number,
  ): void {
    const log = replica.files.log!;
    const regionAt = at + FETCH_ANSWER_HEADER_BYTES;
    const writer = this.writers[origin.ring]!;
    const target = writer.bytes.subarray(regionAt, regionAt + regionBytes);
    const read = log.read(request.offset, maxBytes, maxOffset, target);
    const payload = this.placeRead(replica, read, target, writer.view, at);
    this.writeFetchHeader(writer.view, at, this.placedStatus, log, highWatermark, request.offset);
    writer.commit(MessageKind.FetchAnswer, origin.correlationId, FETCH_ANSWER_HEADER_BYTES + payload);
  }

  /** Writes a fetch answer's header from the log's figures, through a reused header object. */
  private writeFetchHeader(
    view: DataView,
    at: number,
    status: Status,
    log: { readonly logStartOffset: number; readonly logEndOffset: number },
    highWatermark: number,
    fetchOffset: number,
  ): void {
    const header = this.fetchHeaderScratch;
    header.status = status;
    header.logStartOffset = log.logStartOffset;
    header.highWatermark = highWatermark;
    header.logEndOffset = log.logEndOffset;
    header.fetchOffset = fetchOffset;
    writeFetchAnswerHeader(view, at, header);
  }

  private readonly fetchHeaderScratch: FetchAnswerHeader = {
    status: Status.Ok,
    logStartOffset: -1,
    highWatermark: -1,
    logEndOffset: -1,
    fetchOffset: -1,
  };
  /** The status `placeRead` decided (read right after it returns). */
  private placedStatus: Status = Status.Ok;

  private scratchBuffer = Buffer.alloc(64 * 1024);

  private scratch(bytes: number): Buffer {
    if (this.scratchBuffer.byteLength < bytes) this.scratchBuffer = Buffer.alloc(bytes);
    return this.scratchBuffer;
  }

  /**
   * Puts a read's outcome in place after a fetch answer's header at `at`: batches, or a detail. Returns the
   * payload's bytes; the answer's status is left in `placedStatus` (no object per answer).
   */
  private placeRead(
    replica: Replica,
    read: ReadResult,
    target: Uint8Array,
    view: DataView,
    at: number,
  ): number {
    if (read.kind === 'ok') {
      if (read.bytes.buffer !== target.buffer) {
        assert(
          read.bytes.byteLength <= target.byteLength,
          'a fetched batch is larger than the answer region',
        );
        target.set(read.bytes);
      }
      this.placedStatus = Status.Ok;
      return read.bytes.byteLength;
    }
    if (read.kind === 'corrupt') {
      writeFetchDetail(view, at, read.firstOffset, read.endOffset);
      this.stats.add(StatSlot.corruptReads, 1);
      this.reportCorruptRead(replica, read);
      this.placedStatus = Status.CorruptData;
      return FETCH_DETAIL_BYTES;
    }
    if (read.kind === 'batch_too_large') {
      writeFetchDetail(view, at, read.baseOffset, read.batchBytes);
      this.placedStatus = Status.TooLarge;
      return FETCH_DETAIL_BYTES;
    }
    this.placedStatus = Status.OffsetOutOfRange;
    return 0;
  }

  private async answerFetchStatus(
    origin: Origin,
    status: Status,
    replica: Replica | null,
    fetchOffset = -1,
  ): Promise<void> {
    const figures = replica?.files.figures();
    await this.answer(origin, MessageKind.FetchAnswer, FETCH_ANSWER_HEADER_BYTES, (_b, view, at) =>
      writeFetchAnswerHeader(view, at, {
        status,
        logStartOffset: figures?.logStartOffset ?? -1,
        highWatermark: replica?.core?.servableHighWatermark ?? -1,
        logEndOffset: figures?.logEndOffset ?? -1,
        fetchOffset,
      }),
    );
  }

  /** Logs a damaged read at most once per `corruptLogIntervalMs` per partition (the metric counts each one). */
  private reportCorruptRead(replica: Replica, read: Extract<ReadResult, { kind: 'corrupt' }>): void {
    const nowMs = Date.now();
    if (nowMs - replica.files.corruptLoggedAtMs < corruptLogIntervalMs) return;
    replica.files.corruptLoggedAtMs = nowMs;
    this.report(
      `partition ${replica.name}: damaged data refused: offsets ${read.firstOffset}..${read.endOffset - 1} (segment ${read.segmentBaseOffset}, byte ${read.position}: ${read.reason}); consumers can resume at offset ${read.endOffset}`,
    );
  }

  private async serveDescribe(origin: Origin, topicSeq: number, partition: number): Promise<void> {
    const replica = this.replicas.get(partitionKey(topicSeq, partition));
    const core = replica === undefined ? null : this.coreOf(replica);
    if (replica === undefined || core === null) {
      const status = replica === undefined ? Status.UnknownPartition : Status.StorageUnavailable;
      const empty = {
        status,
        role: 'none' as const,
        leaderEpoch: -1,
        logStartOffset: -1,
        logEndOffset: -1,
        highWatermark: -1,
        durableEndOffset: -1,
        sizeBytes: 0,
        segmentCount: 0,
        replicas: [],
      };
      await this.answer(origin, MessageKind.DescribeAnswer, describeAnswerBytes([]), (b, v, at) =>
        writeDescribeAnswer(b, v, at, empty),
      );
      return;
    }
    // Exact figures: a partition not opened since a crash is recovered for this.
    if (!replica.files.figures().exact) replica.files.ensureLog();
    const figures = replica.files.figures();
    const replicas: ReplicaEnd[] = [];
    if (core.role === 'leader') {
      for (const [id, end] of core.followerEnds()) replicas.push({ id, logEndOffset: end });
    }
    const answer = {
      status: Status.Ok,
      role: core.role,
      leaderEpoch: core.leaderEpoch,
      logStartOffset: figures.logStartOffset,
      logEndOffset: figures.logEndOffset,
      highWatermark: core.role === 'leader' ? core.servableHighWatermark : core.highWatermark,
      durableEndOffset: this.durableEnd(replica),
      sizeBytes: figures.sizeBytes,
      segmentCount: figures.segmentCount,
      replicas,
    };
    await this.answer(origin, MessageKind.DescribeAnswer, describeAnswerBytes(replicas), (b, v, at) =>
      writeDescribeAnswer(b, v, at, answer),
    );
  }

  // ------------------------------------------------------------------------------------------------------
  // Replica fetches (leader): followers of this worker's leaders.

  /**
   * Decides every entry of a follower's request; answers at once when some entry has something to say, or
   * parks the request until a flush or a high-watermark change gives it something, or its wait ends.
   */
  private async serveReplicaFetch(request: ParkedReplicaFetch, now: number, force = false): Promise<void> {
    if (request.answered || request.origin.link?.closed === true) {
      this.unpark(request);
      return;
    }
    const decided = this.decideReplicaFetch(request, now, force);
    if (decided === null && now < request.untilMs) {
      if (!this.parkedReplicaFetches.has(request)) {
        this.parkedReplicaFetches.add(request);
        for (const e of request.entries)
          this.replicas.get(partitionKey(e.topicSeq, e.partition))?.parkedReplicas.add(request);
      }
      return;
    }
    this.unpark(request);
    request.answered = true;
    this.sendReplicaAnswer(request, decided ?? this.decideReplicaFetch(request, now, true)!);
  }

  private unpark(request: ParkedReplicaFetch): void {
    if (!this.parkedReplicaFetches.delete(request)) return;
    for (const e of request.entries)
      this.replicas.get(partitionKey(e.topicSeq, e.partition))?.parkedReplicas.delete(request);
  }

  /**
   * The answer's entries, or null when no entry has anything to send yet (records, an error, an epoch answer)
   * and `force` is false.
   */
  private decideReplicaFetch(request: ParkedReplicaFetch, now: number, force = false): AnswerPart[] | null {
    const parts: AnswerPart[] = [];
    let worthSending = force;
    let budget = request.maxBytes;
    for (const e of request.entries) {
      const replica = this.replicas.get(partitionKey(e.topicSeq, e.partition));
      const core = replica === undefined ? null : this.coreOf(replica);
      const head = {
        topicSeq: e.topicSeq,
        partition: e.partition,
        outcome: ReplicaOutcome.unknown as ReplicaOutcome,
        epoch: -1,
        a: 0,
        b: 0,
        c: 0,
      };
      if (replica === undefined || core === null) {
        parts.push({ head, records: null });
        worthSending = true;
        continue;
      }
      if (e.kind === 'epoch_query') {
        // Only the acting leader of the epoch the follower names may answer: another log's offsets would lead
        // the follower to truncate wrongly.
        const acting =
          core.role === 'leader' && core.leaderEpoch === e.leaderEpoch && core.canAppend(false) === null;
        if (acting) {
          const end = core.epochEndOffset(e.epoch);
          parts.push({
            head: { ...head, outcome: ReplicaOutcome.epoch_end, epoch: end.epoch, a: end.endOffset },
            records: null,
          });
        } else {
          parts.push({
            head: { ...head, outcome: ReplicaOutcome.not_leader, epoch: core.leaderEpoch },
            records: null,
          });
        }
        worthSending = true;
        continue;
      }
      const decision = core.onFollowerFetch(
        {
          replicaId: request.followerId,
          leaderEpoch: e.leaderEpoch,
          fetchOffset: e.fetchOffset,
          lastFetchedEpoch: e.epoch,
        },
        now,
      );
      switch (decision.kind) {
        case 'read': {
          const out = {
            ...head,
            outcome: ReplicaOutcome.records,
            a: decision.highWatermark,
            b: decision.logStartOffset,
            c: core.logEndOffset,
          };
          if (decision.fromOffset >= decision.toOffset || budget <= 0) {
            parts.push({ head: out, records: null });
            break;
          }
          // A replica outside the ISR is catching up: what it gets is throttled (never below one batch, so a
          // throttled read always progresses; the bucket's debt is repaid before the next).
          const throttled = this.catchUpBucket !== null && !core.isr.includes(request.followerId);
          const allowed = throttled ? this.catchUpBucket!.available(now) : budget;
          if (allowed <= 0) {
            request.throttled = true;
            parts.push({ head: out, records: null });
            break;
          }
          if (!replica.files.ensureLog() || replica.files.log === null) {
            parts.push({ head: { ...head, outcome: ReplicaOutcome.storage_error }, records: null });
            worthSending = true;
            break;
          }
          const read = replica.files.log.read(
            decision.fromOffset,
            Math.min(budget, allowed, e.maxBytes || budget),
            decision.toOffset,
          );
          if (throttled && read.kind === 'ok') this.catchUpBucket!.spend(read.bytes.byteLength, now);
          if (read.kind !== 'ok') {
            if (read.kind === 'corrupt') this.reportCorruptRead(replica, read);
            parts.push({ head: { ...head, outcome: ReplicaOutcome.storage_error }, records: null });
            worthSending = true;
            break;
          }
          budget -= read.bytes.byteLength;
          parts.push({ head: out, records: read.bytes.byteLength > 0 ? Buffer.from(read.bytes) : null });
          if (read.bytes.byteLength > 0) worthSending = true;
          break;
        }
        case 'diverging':
          parts.push({
            head: {
              ...head,
              outcome: ReplicaOutcome.diverging,
              epoch: decision.epoch,
              a: decision.endOffset,
            },
            records: null,
          });
          worthSending = true;
          break;
        case 'out_of_range':
          parts.push({
            head: {
              ...head,
              outcome: ReplicaOutcome.out_of_range,
              a: decision.logStartOffset,
              b: decision.logEndOffset,
            },
            records: null,
          });
          worthSending = true;
          break;
        case 'fenced_epoch':
          parts.push({
            head: { ...head, outcome: ReplicaOutcome.fenced_epoch, epoch: decision.leaderEpoch },
            records: null,
          });
          worthSending = true;
          break;
        case 'not_leader':
          parts.push({
            head: { ...head, outcome: ReplicaOutcome.not_leader, epoch: decision.leaderEpoch },
            records: null,
          });
          worthSending = true;
          break;
      }
      // A follower's fetch may move the high watermark or propose an ISR change: handled with the ready outputs.
      this.pendingReady.add(replica);
    }
    return worthSending ? parts : null;
  }

  private readonly pendingReady = new Set<Replica>();

  private sendReplicaAnswer(request: ParkedReplicaFetch, parts: readonly AnswerPart[]): void {
    const link = request.origin.link;
    if (link === null || link.closed) return;
    let total = REPLICA_ANSWER_FIXED_BYTES;
    for (const p of parts) total += REPLICA_ENTRY_ANSWER_BYTES + (p.records?.byteLength ?? 0);
    link.reply(MessageKind.ReplicaFetchAnswer, request.origin.correlationId, total, (out, view, at) => {
      writeReplicaAnswerHead(view, at, parts.length);
      let cursor = at + REPLICA_ANSWER_FIXED_BYTES;
      for (const p of parts) {
        const bytes = p.records?.byteLength ?? 0;
        writeReplicaAnswerEntry(view, cursor, p.head, bytes);
        if (p.records !== null) out.set(p.records, cursor + REPLICA_ENTRY_ANSWER_BYTES);
        cursor += REPLICA_ENTRY_ANSWER_BYTES + bytes;
      }
    });
  }

  // ------------------------------------------------------------------------------------------------------
  // Followers: fetch sessions to other leaders.

  private driveFollowers(now: number): void {
    for (const session of this.sessions.values()) {
      if (session.inFlight || now < session.retryAtMs || session.partitions.size === 0) continue;
      const entries: ReplicaRequestEntry[] = [];
      for (const key of session.partitions) {
        const replica = this.replicas.get(key);
        const core = replica?.core ?? null;
        if (replica === undefined || core === null) continue;
        const entry = this.planFor(replica, core);
        if (entry !== null) entries.push(entry);
      }
      if (entries.length === 0) continue;
      const wait = this.options.replication.fetchWaitMs;
      session.send(
        {
          waitMs: wait,
          maxBytes: this.options.replication.fetchBytesMax,
          followerId: this.options.nodeId,
          entries,
        },
        wait + this.options.replication.fetchTimeoutMs,
      );
    }
    // Sessions nobody uses any more are closed.
    for (const [address, session] of this.sessions) {
      if (session.partitions.size === 0 && !session.inFlight) {
        session.close();
        this.sessions.delete(address);
      }
    }
  }

  /** The entry a follower puts in its session's next request, after any truncation the core asks for first. */
  private planFor(replica: Replica, core: PartitionReplica): ReplicaRequestEntry | null {
    // A cut must wait for a running sync of the log (a replica that led until a moment ago): next turn.
    if (replica.files.log?.syncing === true) return null;
    for (let cuts = 0; cuts < 4; cuts++) {
      const plan = core.nextPlan();
      switch (plan.kind) {
        case 'idle':
          return null;
        case 'truncate':
          this.carryOut(replica, { kind: 'truncate', offset: plan.offset });
          continue;
        case 'epoch_query':
          return {
            topicSeq: replica.topicSeq,
            partition: replica.partition,
            kind: 'epoch_query',
            leaderEpoch: plan.leaderEpoch,
            epoch: plan.epoch,
            maxBytes: 0,
            fetchOffset: 0,
          };
        case 'fetch':
          return {
            topicSeq: replica.topicSeq,
            partition: replica.partition,
            kind: 'fetch',
            leaderEpoch: plan.leaderEpoch,
            epoch: plan.lastFetchedEpoch,
            maxBytes: this.options.replication.fetchBytesMax,
            fetchOffset: plan.fetchOffset,
          };
      }
    }
    return null;
  }

  /** Carries out a truncation or reset the core asked for, then tells it the log's new figures. */
  private carryOut(replica: Replica, action: LogAction): void {
    if (action.kind === 'none') return;
    const files = replica.files;
    if (!files.ensureLog() || files.log === null) return;
    const log = files.log;
    // The producers' table may count batches the cut removes: it is rebuilt on the next idempotent produce.
    replica.producers?.reset();
    try {
      if (action.kind === 'truncate') {
        const result = log.truncateTo(action.offset);
        assert(result.kind === 'ok', `truncating ${replica.name} to ${action.offset}: ${result.kind}`);
      } else {
        log.resetTo(action.offset);
      }
    } catch (error) {
      files.goOffline({
        code: (error as { code?: string }).code ?? 'EIO',
        full: false,
        message: `cutting ${replica.name}: ${String(error)}`,
      });
      return;
    }
    this.report(
      `partition ${replica.name}: ${action.kind === 'truncate' ? 'truncated' : 'reset'} to ${action.offset} as the leader's epochs say`,
    );
    this.logChanged(replica);
  }

  /** Applies fetch-session answers: appends records verbatim, one fsync per partition, then tells the cores. */
  private async applySessionAnswers(now: number): Promise<void> {
    const answers = this.sessionAnswers.splice(0);
    for (const answer of answers) {
      const session = answer.session;
      if (answer.moved !== undefined) {
        // The leader's node moved these partitions between its workers: follow them to their new ports.
        const leader = this.brokers.get(session.leaderId);
        for (const e of answer.moved) {
          if (leader !== undefined && e.worker < leader.dataPorts.length)
            this.learned.learn(leader, e.topicSeq, e.partition, e.worker);
          const replica = this.replicas.get(partitionKey(e.topicSeq, e.partition));
          if (replica !== undefined) this.assignSession(replica);
        }
        session.retryAtMs = now + this.options.replication.retryBackoffMs;
        continue;
      }
      if (answer.payload === null) {
        session.retryAtMs = now + this.options.replication.retryBackoffMs;
        continue;
      }
      const payload = answer.payload;
      const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      const after: { replica: Replica; answer: FetchAnswer }[] = [];
      const epochAnswers: { replica: Replica; asked: number; epoch: number; endOffset: number }[] = [];
      let backOff = false;
      const ok = visitReplicaAnswer(payload, view, 0, payload.byteLength, (e: ReplicaAnswerEntry) => {
        const replica = this.replicas.get(partitionKey(e.topicSeq, e.partition));
        const core = replica?.core ?? null;
        if (replica === undefined || core === null || replica.session !== session || core.role !== 'follower')
          return;
        const asked = answer.asked.find((a) => a.topicSeq === e.topicSeq && a.partition === e.partition);
        if (asked === undefined || asked.leaderEpoch !== core.leaderEpoch) return; // asked in an older epoch
        switch (e.outcome) {
          case ReplicaOutcome.records: {
            if (e.records.byteLength > 0) {
              const appended = this.appendReplicated(replica, asked.fetchOffset, e.records);
              if (!appended) return;
            }
            after.push({ replica, answer: { kind: 'records', highWatermark: e.a, logStartOffset: e.b } });
            return;
          }
          case ReplicaOutcome.epoch_end:
            epochAnswers.push({ replica, asked: asked.epoch, epoch: e.epoch, endOffset: e.a });
            return;
          case ReplicaOutcome.diverging:
            after.push({ replica, answer: { kind: 'diverging', epoch: e.epoch, endOffset: e.a } });
            return;
          case ReplicaOutcome.out_of_range:
            after.push({ replica, answer: { kind: 'out_of_range', logStartOffset: e.a, logEndOffset: e.b } });
            return;
          case ReplicaOutcome.fenced_epoch:
            after.push({ replica, answer: { kind: 'fenced_epoch', leaderEpoch: e.epoch } });
            backOff = true;
            return;
          case ReplicaOutcome.not_leader:
            after.push({ replica, answer: { kind: 'not_leader', leaderEpoch: e.epoch } });
            backOff = true;
            return;
          default:
            backOff = true;
        }
      });
      if (!ok) {
        this.report(`fetch session ${session.address}: malformed answer from ${session.leaderId}; retrying`);
        backOff = true;
      }
      // The appended records are made durable before the cores hear of them: the next fetch reports them.
      await this.settle();
      for (const { replica, answer: a } of after) {
        this.carryOut(replica, replica.core!.onFetchAnswer(a));
        this.pendingReady.add(replica);
      }
      for (const { replica, asked, epoch, endOffset } of epochAnswers) {
        this.carryOut(replica, replica.core!.onEpochAnswer(asked, { epoch, endOffset }));
        this.pendingReady.add(replica);
      }
      if (backOff) session.retryAtMs = now + this.options.replication.retryBackoffMs;
    }
  }

  /** Appends a leader's batches verbatim at the log end; false (nothing appended) when they do not fit it. */
  private appendReplicated(replica: Replica, fromOffset: number, records: Uint8Array): boolean {
    const files = replica.files;
    if (!files.ensureLog() || files.log === null || files.offline !== null) return false;
    const log = files.log;
    if (fromOffset !== log.logEndOffset) return false; // an answer overtaken by a truncation
    // The batches are the leader's bytes: append works on a copy it may patch (it does not for replication).
    const result = log.append(records, { assignOffsets: false, leaderEpoch: -1, nowMs: Date.now() });
    if (result.kind === 'ok') {
      this.stats.observeAppend(result.lastOffset - result.firstOffset + 1, records.byteLength);
      if (!replica.touched) {
        replica.touched = true;
        this.touched.push(replica);
      }
      return true;
    }
    if (result.kind === 'storage_failed') {
      files.goOffline(result.fault);
      return false;
    }
    this.report(
      `partition ${replica.name}: refused the leader's batches at ${fromOffset} (${result.kind}); fetching again`,
    );
    return false;
  }

  // ------------------------------------------------------------------------------------------------------
  // The cores' outputs, parked requests, time.

  /**
   * Takes the cores' outputs of the replicas that may have some: acks=all answers, ISR proposals, moved high
   * watermarks. Synchronous while the response ring has room for the answers; a promise (to await) only from
   * the first answer that must wait for room.
   */
  private collectReady(now: number): Promise<void> | undefined {
    if (this.pendingReady.size === 0) return undefined;
    const touched = this.readyReplicas;
    touched.length = 0;
    this.pendingReady.forEach(this.pushReadyReplica);
    this.pendingReady.clear();
    // The acks of every replica first, in order, into reused lists: they are answered below.
    const ackReplicas = this.readyAckReplicas;
    const acks = this.readyAcks;
    let changes: { replica: Replica; proposal: IsrProposal }[] | null = null;
    for (let i = 0; i < touched.length; i++) {
      const replica = touched[i]!;
      const core = replica.core;
      if (core === null || !core.hasReady()) continue;
      const rd = core.ready();
      for (let a = 0; a < rd.acks.length; a++) {
        ackReplicas.push(replica);
        acks.push(rd.acks[a]!);
      }
      if (rd.isrProposal !== null) {
        changes ??= [];
        changes.push({ replica, proposal: rd.isrProposal });
      }
      if (rd.highWatermarkChanged) {
        this.stateNotices.add(replica);
        this.hwMoved.add(replica);
      }
    }
    touched.length = 0;
    for (let i = 0; i < acks.length; i++) {
      const waiting = this.answerAck(ackReplicas[i]!, acks[i]!);
      if (waiting !== undefined) return this.collectReadyAfter(waiting, i + 1, changes, now);
    }
    ackReplicas.length = 0;
    acks.length = 0;
    if (changes !== null) this.proposeIsr(changes, now);
    return undefined;
  }

  /** `collectReady` from ack `from` on, once the answer before it was written. */
  private async collectReadyAfter(
    waiting: Promise<void>,
    from: number,
    changes: { replica: Replica; proposal: IsrProposal }[] | null,
    now: number,
  ): Promise<void> {
    await waiting;
    const ackReplicas = this.readyAckReplicas;
    const acks = this.readyAcks;
    for (let i = from; i < acks.length; i++) {
      const next = this.answerAck(ackReplicas[i]!, acks[i]!);
      if (next !== undefined) await next;
    }
    ackReplicas.length = 0;
    acks.length = 0;
    if (changes !== null) this.proposeIsr(changes, now);
  }

  /** Reused by `collectReady`: the replicas it looks at, and the acks their cores released. */
  private readonly readyReplicas: Replica[] = [];
  private readonly readyAckReplicas: Replica[] = [];
  private readonly readyAcks: AckOutcome[] = [];
  private readonly pushReadyReplica = (replica: Replica): void => {
    this.readyReplicas.push(replica);
  };

  private readonly hwMoved = new Set<Replica>();

  /** Answers the produce an ack settles; a promise only when the response ring is full (see `answer`). */
  private answerAck(replica: Replica, ack: AckOutcome): Promise<void> | undefined {
    const waiter = replica.ackWaiters.take(ack.id);
    if (waiter === null) return undefined;
    const status =
      ack.kind === 'ok' ? Status.Ok : ack.kind === 'timed_out' ? Status.AckTimeout : Status.LostLeadership;
    const waiting = this.answerProduce(
      waiter,
      status,
      ack.kind === 'ok' ? waiter.baseOffset : -1,
      replica,
      0,
      waiter.duplicate && ack.kind === 'ok',
    );
    if (waiting === undefined) {
      waiter.answered = true;
      this.recyclePending(waiter);
    }
    return waiting;
  }

  private proposeIsr(changes: { replica: Replica; proposal: IsrProposal }[], now: number): void {
    if (this.controlPort === null) {
      for (const c of changes) c.replica.core?.proposalFailed(c.proposal);
      return;
    }
    const requestId = this.nextIsrRequestId++;
    const isrChanges: IsrChange[] = changes.map(({ replica, proposal }) => ({
      topicId: replica.topicId,
      topic: replica.topic,
      partition: replica.partition,
      leader: this.options.nodeId,
      leaderEpoch: proposal.leaderEpoch,
      partitionEpoch: proposal.partitionEpoch,
      isr: proposal.isr,
    }));
    for (const c of changes)
      c.replica.isrInFlight = { requestId, proposal: c.proposal, untilMs: now + isrAnswerTimeoutMs };
    this.isrRequests.set(requestId, changes);
    const message: WorkerToControl = { type: 'alter_isr', requestId, changes: isrChanges };
    this.controlPort.postMessage(message);
  }

  private onIsrResult(message: Extract<ControlToWorker, { type: 'alter_isr_result' }>): void {
    const changes = this.isrRequests.get(message.requestId);
    if (changes === undefined) return;
    this.isrRequests.delete(message.requestId);
    changes.forEach(({ replica, proposal }, i) => {
      if (replica.isrInFlight?.requestId === message.requestId) replica.isrInFlight = null;
      const refusal = message.refusals === null ? (message.failure ?? 'failed') : message.refusals[i];
      if (refusal !== null && refusal !== undefined) {
        replica.core?.proposalFailed(proposal);
        this.pendingReady.add(replica);
      }
    });
  }

  /** Answers parked fetches that can be answered now: new durable data, a moved watermark, or a deadline. */
  private async serveParked(now: number): Promise<void> {
    for (const replica of this.hwMoved) {
      if (replica.parkedConsumers.length > 0) {
        const parked = replica.parkedConsumers.splice(0);
        for (let i = 0; i < parked.length; i++) {
          const p = parked[i]!;
          const waiting =
            replica.core?.role !== 'leader'
              ? this.answerFetchStatus(p.origin, Status.NotLeader, replica)
              : this.serveFetch(p.origin, p.request, now, now < p.untilMs);
          if (waiting !== undefined) await waiting;
        }
      }
      // Followers learn a moved high watermark at once (they need it to lead with it), records or not.
      if (replica.parkedReplicas.size > 0)
        for (const request of [...replica.parkedReplicas]) await this.serveReplicaFetch(request, now, true);
    }
    this.hwMoved.clear();
    for (const replica of this.flushedSinceParked) {
      for (const request of [...replica.parkedReplicas]) await this.serveReplicaFetch(request, now);
    }
    this.flushedSinceParked.clear();
  }

  private readonly flushedSinceParked = new Set<Replica>();

  /** Whether `serveParked` has anything to look at (else a moved high watermark concerns no parked request). */
  private hasParkedToServe(): boolean {
    if (this.flushedSinceParked.size > 0) return true;
    if (this.hwMoved.size === 0) return false;
    for (const replica of this.hwMoved) {
      if (replica.parkedConsumers.length > 0 || replica.parkedReplicas.size > 0) return true;
    }
    return false;
  }

  private answerParkedAsNotLeader(replica: Replica): void {
    for (const p of replica.parkedConsumers.splice(0))
      void this.answerFetchStatus(p.origin, Status.NotLeader, replica);
    for (const request of [...replica.parkedReplicas]) {
      this.unpark(request);
      if (!request.answered) {
        request.answered = true;
        this.sendReplicaAnswer(request, this.decideReplicaFetch(request, performance.now(), true)!);
      }
    }
  }

  private async tick(now: number, wallMs: number): Promise<void> {
    this.stats.set(StatSlot.heapAllocatedBytes, this.heapMeter.allocatedBytes());
    this.stats.set(StatSlot.gcSeconds, this.heapMeter.gcSeconds());
    for (const replica of this.replicas.values()) {
      // No sync runs now (settled): a log that broke outside a commit, or while a later commit synced it, closes.
      replica.files.closeIfBroken();
      const core = replica.core;
      if (core !== null) {
        core.tick(now);
        if (core.hasReady()) this.pendingReady.add(replica);
      }
      if (replica.isrInFlight !== null && now >= replica.isrInFlight.untilMs) {
        core?.proposalFailed(replica.isrInFlight.proposal);
        replica.isrInFlight = null;
      }
      if (replica.parkedConsumers.length > 0) {
        const due = replica.parkedConsumers.filter((p) => p.untilMs <= now);
        if (due.length > 0) {
          replica.parkedConsumers.splice(
            0,
            replica.parkedConsumers.length,
            ...replica.parkedConsumers.filter((p) => p.untilMs > now),
          );
          for (const p of due) await this.serveFetch(p.origin, p.request, now, false);
        }
      }
    }
    const refilled = this.catchUpBucket !== null && this.catchUpBucket.available(now) > 0;
    for (const request of [...this.parkedReplicaFetches]) {
      if (request.untilMs <= now || request.origin.link?.closed === true || (refilled && request.throttled)) {
        request.throttled = false;
        await this.serveReplicaFetch(request, now);
      }
    }
    // Interval policy: flush what is due, then the cores learn the durable ends.
    if (this.options.syncIntervalMs > 0) {
      for (const replica of this.replicas.values()) {
        const result = replica.files.log?.maybeFlush(wallMs) ?? null;
        if (result !== null && result.fault !== null) replica.files.goOffline(result.fault);
        replica.files.closeIfBroken();
      }
    }
    if (this.files.offlineCount > 0 && wallMs >= this.nextRepairMs) {
      this.nextRepairMs = wallMs + this.repairIntervalMs;
      for (const replica of this.replicas.values()) {
        if (replica.files.offline === null) continue;
        replica.files.repair(wallMs);
        this.logChanged(replica);
      }
    }
    if (wallMs - this.lastRetentionMs >= this.options.retentionCheckIntervalMs) {
      this.lastRetentionMs = wallMs;
      this.applyRetention(wallMs);
    }
  }

  private applyRetention(nowMs: number): void {
    let opens = 0;
    for (const replica of this.replicas.values()) {
      const files = replica.files;
      // A partition not opened since start has old segments too: a few are opened per pass, so retention
      // reaches every one in time without opening thousands at once.
      if (files.log === null && files.offline === null && files.figures().logEndOffset > 0) {
        if (opens >= retentionOpensPerPass) continue;
        opens++;
        files.ensureLog();
      }
      this.retain(replica, nowMs);
    }
  }

  /** One replica's retention, now. It runs on a full disk too: deleting old segments is what frees space. */
  private retain(replica: Replica, nowMs: number): void {
    const log = replica.files.log;
    if (log === null || log.broken !== null) return;
    const result = log.applyRetention(nowMs);
    if (result.fault !== null) replica.files.goOffline(result.fault);
    if (result.deletedSegments > 0) this.logChanged(replica);
  }

  /**
   * Tells the acceptor of replicas whose servable high watermark, log start or log end moved. Synchronous
   * while the response ring has room; else the rest waits for room (`sendStateNoticesWhenRoom`).
   */
  private sendStateNotices(): Promise<void> | undefined {
    if (this.stateNotices.size === 0) return undefined;
    for (const replica of this.stateNotices) {
      if (!this.stateMoved(replica)) continue;
      const at = this.writer.reserve(PARTITION_STATE_BYTES);
      if (at < 0) return this.sendStateNoticesWhenRoom();
      this.writeStateNotice(replica, at);
    }
    this.stateNotices.clear();
    return undefined;
  }

  private async sendStateNoticesWhenRoom(): Promise<void> {
    // Replicas already told are skipped: their noticed figures are the current ones.
    for (const replica of this.stateNotices) {
      if (!this.stateMoved(replica)) continue;
      const at = await this.reserveResponse(PARTITION_STATE_BYTES, 0);
      this.writeStateNotice(replica, at);
    }
    this.stateNotices.clear();
  }

  /** Whether the replica's figures differ from those last told to the acceptor. */
  private stateMoved(replica: Replica): boolean {
    const files = replica.files;
    return (
      (replica.core?.servableHighWatermark ?? -1) !== replica.noticedHighWatermark ||
      files.logStartOffset !== replica.noticedLogStart ||
      files.logEndOffset !== replica.noticedLogEnd
    );
  }

  /** Writes the replica's figures into the reserved frame at `at` and remembers them as told. */
  private writeStateNotice(replica: Replica, at: number): void {
    const files = replica.files;
    const state = this.partitionStateScratch;
    state.topicSeq = replica.topicSeq;
    state.partition = replica.partition;
    state.highWatermark = replica.core?.servableHighWatermark ?? -1;
    state.logStartOffset = files.logStartOffset;
    state.logEndOffset = files.logEndOffset;
    replica.noticedHighWatermark = state.highWatermark;
    replica.noticedLogStart = state.logStartOffset;
    replica.noticedLogEnd = state.logEndOffset;
    writePartitionState(this.writer.view, at, state);
    this.writer.commit(MessageKind.PartitionState, 0, PARTITION_STATE_BYTES);
  }

  private readonly partitionStateScratch: PartitionState = {
    topicSeq: 0,
    partition: 0,
    highWatermark: -1,
    logStartOffset: -1,
    logEndOffset: -1,
  };

  // ------------------------------------------------------------------------------------------------------
  // Shutdown.

  /** Answers the shutdown frame after closing every log; `clean` when each closed at its end. */
  async finish(): Promise<void> {
    this.heapMeter.stop();
    for (const request of [...this.parkedReplicaFetches]) {
      this.unpark(request);
      request.answered = true;
    }
    for (const replica of this.replicas.values()) {
      for (const p of replica.parkedConsumers.splice(0))
        await this.serveFetch(p.origin, p.request, performance.now(), false);
      for (const waiter of replica.ackWaiters.drain())
        await this.answerProduce(waiter, Status.ShuttingDown, -1, replica, 0);
    }
    let clean = true;
    for (const replica of this.replicas.values()) if (!replica.files.close()) clean = false;
    for (const session of this.sessions.values()) session.close();
    await this.server?.close();
    const origin = this.shutdownOrigin;
    if (origin !== null) {
      const text = Buffer.from(JSON.stringify({ ok: true, clean }), 'utf8');
      await this.answer(origin, MessageKind.ShutdownAnswer, text.byteLength, (out, _v, at) => {
        text.copy(out, at);
      });
    }
    for (const writer of this.writers) writer.publish();
  }
}

/** A group commit: the partitions it syncs, what each sync vouches for, and the requests it answers. */
interface Commit {
  readonly replicas: Replica[];
  readonly produces: PendingProduce[];
  /** One per replica, in order (null: nothing to sync, or an interval sync policy). */
  readonly flushes: (PendingFlush | null)[];
  readonly fds: Fd[];
  readonly startedNs: bigint;
  /** Each fd's sync error (undefined: synced), once the syncs ended. */
  errors: unknown[] | null;
  ended: boolean;
  /** Resolves when the syncs ended, for syncs on the pool; null for syncs on this thread. */
  done: Promise<void> | null;
}

interface AnswerPart {
  readonly head: Omit<ReplicaAnswerEntry, 'records'>;
  readonly records: Uint8Array | null;
}

/** The definite refusal for a partition that cannot write now: full disk, or failed storage. */
/** The writer of a staging between commits: never written (its owner takes a pooled one first). */
const detachedWriter = new BatchWriter(1, 1);

/** The sync errors of a commit with nothing to sync (shared: it has no entries to write). */
const noSyncErrors: unknown[] = Object.freeze([]) as unknown as unknown[];

function offlineStatus(files: PartitionFiles): Status {
  return files.offline === null || files.offline.fault.full ? Status.StorageFull : Status.StorageUnavailable;
}
