// Deterministic simulation of partition replication together with the metadata Raft and the controller, in
// one seeded event loop. Brokers (3 by default) each run:
// - a RaftNode of the metadata group on a simulated disk (a MemoryStorage holding only what a Ready
//   persisted), applying committed entries, decoded with the real codec, to a MetadataStateMachine; like the
//   real control thread it publishes metadata to its partitions only once it has applied what the leader had
//   committed when it first heard from one;
// - a heartbeat failure detector instead of SWIM (a peer silent for `fdTimeoutMs` is dead), feeding
//   `Controller.decide` on the Raft leader, whose actions are proposed one at a time (propose, wait for the
//   apply, decide again);
// - the partition-worker shell (replication-shell.ts) with a PartitionReplica and a SimLog per partition.
// Clients produce unique values (acks=all, or acks=1 at a configured rate) to the leader named by the
// metadata of a random broker (possibly stale) and never retry.
//
// Clients send batches of one to three records.
// Faults: kill (unsynced log data lost, optionally also the Raft Ready being persisted), restart, pause
// (every timer and message of the broker waits, then it resumes with stale state), network partitions of
// any shape (one-way too), cuts of the replication data links only, message loss, delay (and so
// reordering) and duplication of messages between brokers; an operator's controlled-shutdown flag.
//
// Invariants, checked as each step happens (a violation throws a SimFailure; the scenario runner adds the
// seed and a trace tail):
//  1. An acknowledged acks=all record is, at its acknowledgement, durable on at least min.insync.replicas
//     replicas and on every member of the partition's committed ISR (per the most advanced applied
//     metadata); from then on no ISR member lacks it (checked on every truncation, reset, crash and ISR
//     change), and at the end of a run every replica holds it at its offset.
//  2. The committed log: when a leader raises its high watermark to h, its records below h are recorded as
//     the partition's canonical log (agreeing with what was recorded before, no value at two offsets); every
//     replica's log below its own high watermark equals it.
//  3. One leader per epoch: no two brokers act as leader of a partition with the same leader epoch.
//  4. High watermarks: a leader's never goes back; the served one (servableHighWatermark) of a leader of
//     epoch e is never less than any leader of an epoch <= e has served before (a deposed leader that does
//     not know it yet may lag behind a newer epoch's; consumers fence it by epoch, as in KIP-320).
//  5. Offsets dense in every log, and each log's epoch cache agrees with the epochs stamped in its batches.
//  6. Nothing appended for a definite failure.
//  7. Every controller decision is valid against the metadata it was decided from (the state machine,
//     applied to a copy of that metadata, refuses none of it).
// Topics may allow unclean elections: there a loss of acknowledged records is counted, not failed, but only
// once an unclean election has happened on that partition.
// Single-threaded; no timers, no promises: a plain loop over a binary heap of timed events.

import { AssertionError } from '../../src/core/assert.js';
import {
  Controller,
  type ControllerAction,
  type ControllerConfig,
  type MemberView,
} from '../../src/core/metadata/controller.js';
import {
  type ApplyResult,
  type MetadataCommand,
  MetadataStateMachine,
} from '../../src/core/metadata/state-machine.js';
import { bootstrapEntries, defaultRaftLimits, RaftNode, type Ready } from '../../src/core/raft/raft.js';
import { MemoryStorage } from '../../src/core/raft/storage.js';
import type { Entry, Message } from '../../src/core/raft/types.js';
import {
  DEFAULT_REPLICA_CONFIG,
  type PlantedBug,
  type ReplicaConfig,
} from '../../src/core/replication/partition-replica.js';
import { decodeCommand, encodeCommand } from '../../src/metadata/codec.js';
import type { BrokerRegistration, MetadataSnapshot, TopicMetadata } from '../../src/metadata/types.js';
import { SimFailure } from './raft-harness.js';
import { SimRandom } from './raft-random.js';
import {
  partitionKey,
  ReplicaShell,
  type ShellConfig,
  type ShellHost,
  type ShellMessage,
  type ShellObserver,
  type ShellPartition,
} from './replication-shell.js';
import { type SimBatch, SimLog, SimLogError } from './sim-log.js';

export interface NetOptions {
  lossRate: number;
  duplicateRate: number;
  delayMinMs: number;
  delayMaxMs: number;
}

export const calmNetwork: NetOptions = { lossRate: 0, duplicateRate: 0, delayMinMs: 1, delayMaxMs: 4 };
export const roughNetwork: NetOptions = {
  lossRate: 0.05,
  duplicateRate: 0.03,
  delayMinMs: 1,
  delayMaxMs: 30,
};

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly minInsyncReplicas: number;
  readonly uncleanLeaderElection: boolean;
}

export interface ReplicationSimOptions {
  brokers: number;
  topics: readonly TopicSpec[];
  network: NetOptions;
  /** Chance that a client's produce asks for acks=all (the rest ask for acks=1). */
  acksAllRate: number;
  /** A client produces one record every [min, max] ms while producing. */
  produceIntervalMs: readonly [number, number];
  fsyncDelayMs: readonly [number, number];
  /** Chance that a crash keeps part of the unsynced tail (cut at a batch boundary). */
  tornWriteRate: number;
  replicaBug?: PlantedBug;
  controllerBug?: 'elect_outside_isr';
  trace: boolean;
}

export const defaultTopics: readonly TopicSpec[] = [
  { name: 't', partitions: 3, replicationFactor: 3, minInsyncReplicas: 2, uncleanLeaderElection: false },
];

export const defaultSimOptions: ReplicationSimOptions = {
  brokers: 3,
  topics: defaultTopics,
  network: calmNetwork,
  acksAllRate: 1,
  produceIntervalMs: [3, 14],
  fsyncDelayMs: [1, 6],
  tornWriteRate: 0.3,
  trace: false,
};

// Timings of the simulated cluster. Raft ticks every 20 ms (elections after 200-400 ms); the failure detector
// declares a peer dead after 200 ms of silence; a follower leaves the ISR after 400 ms without catching up.
const brokerTickMs = 20;
const fdIntervalMs = 50;
const fdTimeoutMs = 200;
const controlIntervalMs = 40;
const controlWaitMaxMs = 2_000;
const clientTimeoutMs = 1_500;
const clientMetadataMaxAgeMs = 300;
const fullCheckEveryMs = 250;

const replicaConfig: ReplicaConfig = {
  ...DEFAULT_REPLICA_CONFIG,
  replicaLagTimeMaxMs: 400,
  isrProposalTimeoutMs: 300,
  ackTimeoutMs: 1_000,
  pendingAcksMax: 10_000,
};

const shellTimings = {
  fetchWaitMaxMs: 100,
  fetchBatchesMax: 8,
  requestTimeoutMs: 300,
  retryBackoffMs: 20,
  isrRequestTimeoutMs: 600,
};

export interface RunStats {
  steps: number;
  simulatedMs: number;
  produced: number;
  ackedAll: number;
  acked1: number;
  definite: number;
  indefinite: number;
  elections: number;
  uncleanElections: number;
  isrChanges: number;
  /** Acknowledged acks=all records lost after an unclean election (allowed only there). */
  uncleanLosses: number;
  /** Acknowledged acks=1 records missing from the final log. */
  acks1Losses: number;
  crashedRecords: number;
}

type Body =
  | { readonly k: 'raft'; readonly m: Message }
  | { readonly k: 'hb' }
  | { readonly k: 'shell'; readonly m: ShellMessage };

interface MsgEvent {
  kind: 'msg';
  at: number;
  seq: number;
  from: string;
  to: string;
  /** The receiver's incarnation when sent: a restarted process does not get its predecessor's traffic. */
  toInc: number;
  body: Body;
}
interface TickEvent {
  kind: 'tick';
  at: number;
  seq: number;
  broker: string;
  inc: number;
}
interface FlushEvent {
  kind: 'flush';
  at: number;
  seq: number;
  broker: string;
  inc: number;
  pk: string;
}
/** The clients' clock: every few ms a client may produce, and requests past their deadline expire. */
interface ClientEvent {
  kind: 'produce';
  at: number;
  seq: number;
}
type SimEvent = MsgEvent | TickEvent | FlushEvent | ClientEvent;

/** A binary min-heap of events by (at, seq). */
class EventQueue {
  private readonly heap: SimEvent[] = [];

  get size(): number {
    return this.heap.length;
  }

  peekAt(): number {
    return this.heap[0]?.at ?? Number.POSITIVE_INFINITY;
  }

  push(e: SimEvent): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  pop(): SimEvent | undefined {
    const h = this.heap;
    const top = h[0];
    if (top === undefined) return undefined;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r]!, h[l]!) ? r : l;
        if (!before(h[c]!, last)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

interface Broker {
  readonly id: string;
  readonly raftDisk: MemoryStorage;
  /** Partition logs by key: the broker's disk, surviving crashes (minus what was not fsynced). */
  readonly logs: Map<string, SimLog>;
  readonly random: SimRandom;
  up: boolean;
  paused: boolean;
  incarnation: number;
  raft: RaftNode | undefined;
  sm: MetadataStateMachine;
  /** The commit index learned from the first leader heard of; -1 before. */
  readyAtIndex: number;
  metaReady: boolean;
  published: MetadataSnapshot | null;
  shell: ReplicaShell | undefined;
  heardMs: Map<string, number>;
  controller: Controller | undefined;
  /** The controller's proposal in flight: decide again once it is applied. */
  control: { index: number; startedMs: number } | null;
  /** The index of this node's first entry as leader of its current term (its own empty entry). */
  leaderFromIndex: number;
  wasLeader: boolean;
  ticks: number;
  nextFdMs: number;
  nextControlMs: number;
  /** alter_isr proposals by Raft index, answered when that index is applied here. */
  readonly isrWaiting: Map<number, { term: number; from: string; reqId: number; pk: string }>;
  crashBeforePersist: boolean;
  /** Events that arrived while paused, replayed in order on resume. */
  deferred: SimEvent[];
}

interface TraceEvent {
  t: number;
  node: string;
  what: string;
}

const traceRingSize = 80;

/** Per partition: what the checker knows to be true. */
interface Truth {
  readonly pk: string;
  readonly minIsr: number;
  readonly replicas: readonly string[];
  readonly uncleanAllowed: boolean;
  isr: readonly string[];
  leaderEpoch: number;
  readonly canonVals: number[];
  readonly canonEps: number[];
  readonly canonPos: Map<number, number>;
  /** The highest leader epoch of a leader that committed part of the canonical log. */
  canonLeaderEpoch: number;
  /** acks=all acknowledged values by offset, with the epoch they were written in. */
  readonly ackedAt: (number | undefined)[];
  readonly acked1: { offset: number; value: number }[];
  uncleanElections: number;
  /** The highest leader epoch an unclean election made; -1 before any. */
  uncleanEpochMax: number;
  /** The leader epoch each acknowledged acks=all record was written in. */
  readonly ackedEpochOf: Map<number, number>;
  readonly lost: Set<number>;
  readonly leaderOfEpoch: Map<number, string>;
  readonly servedByEpoch: Map<number, number>;
}

export class ReplicationSim implements ShellObserver {
  readonly rng: SimRandom;
  readonly options: ReplicationSimOptions;
  readonly ids: string[];
  network: NetOptions;
  nowMs = 0;
  readonly stats: RunStats = {
    steps: 0,
    simulatedMs: 0,
    produced: 0,
    ackedAll: 0,
    acked1: 0,
    definite: 0,
    indefinite: 0,
    elections: 0,
    uncleanElections: 0,
    isrChanges: 0,
    uncleanLosses: 0,
    acks1Losses: 0,
    crashedRecords: 0,
  };

  private readonly queue = new EventQueue();
  private seq = 0;
  private nextId = 1;
  private readonly brokers = new Map<string, Broker>();
  private readonly blocked = new Set<string>();
  private readonly dataBlocked = new Set<string>();
  private readonly ring: TraceEvent[] = [];
  private ringNext = 0;
  private readonly shellConfig: ShellConfig;

  // Clients.
  private producing = false;
  private clientsScheduled = false;
  private clientMeta: MetadataSnapshot | null = null;
  private clientMetaMs = 0;
  private nextValue = 1;
  /** Requests in flight, in the order sent (so by deadline). */
  private readonly pending = new Map<number, { pk: string; acksAll: boolean; untilMs: number }>();
  /** acks=all requests answered 'ok', by the broker that answered. */
  private readonly ackedAllBy = new Map<string, number>();
  /** Partitions that acknowledged an acks=all produce since `markLiveness()`. */
  private readonly ackedSinceMark = new Set<string>();

  // Checker state.
  private readonly truths = new Map<string, Truth>();
  private readonly appended = new Set<number>();
  private readonly refusedValues = new Set<number>();
  /** Each replica's high watermark as last checked, per incarnation (a restarted replica starts at 0). */
  private readonly hwSeen = new Map<ShellPartition, number>();
  private globalIndex = 0;
  private globalMeta: MetadataSnapshot | null = null;
  private nextFullCheckMs = fullCheckEveryMs;

  constructor(
    readonly scenario: string,
    readonly seed: number,
    options: Partial<ReplicationSimOptions> = {},
  ) {
    this.options = { ...defaultSimOptions, ...options };
    this.rng = new SimRandom(seed);
    this.network = this.options.network;
    this.ids = Array.from({ length: this.options.brokers }, (_, i) => `b${i + 1}`);
    this.shellConfig = {
      replica: {
        ...replicaConfig,
        ...(this.options.replicaBug ? { plantedBug: this.options.replicaBug } : {}),
      },
      ...shellTimings,
    };
    const boot = this.bootstrapLog();
    for (const id of this.ids) {
      const disk = new MemoryStorage();
      disk.append(boot);
      disk.setHardState({ term: 1, vote: '', commit: boot.length });
      const b: Broker = {
        id,
        raftDisk: disk,
        logs: new Map(),
        random: this.rng.fork(),
        up: false,
        paused: false,
        incarnation: 0,
        raft: undefined,
        sm: new MetadataStateMachine(),
        readyAtIndex: -1,
        metaReady: false,
        published: null,
        shell: undefined,
        heardMs: new Map(),
        controller: undefined,
        control: null,
        leaderFromIndex: Number.MAX_SAFE_INTEGER,
        wasLeader: false,
        ticks: 0,
        nextFdMs: 0,
        nextControlMs: 0,
        isrWaiting: new Map(),
        crashBeforePersist: false,
        deferred: [],
      };
      this.brokers.set(id, b);
    }
    for (const t of this.options.topics) {
      for (let p = 0; p < t.partitions; p++) {
        const replicas = this.placement(t, p);
        const pk = partitionKey(t.name, p);
        for (const id of replicas) this.brokers.get(id)!.logs.set(pk, new SimLog());
        this.truths.set(pk, {
          pk,
          minIsr: t.minInsyncReplicas,
          replicas,
          uncleanAllowed: t.uncleanLeaderElection,
          isr: replicas,
          leaderEpoch: 0,
          canonVals: [],
          canonEps: [],
          canonPos: new Map(),
          canonLeaderEpoch: -1,
          ackedAt: [],
          acked1: [],
          uncleanElections: 0,
          uncleanEpochMax: -1,
          ackedEpochOf: new Map(),
          lost: new Set(),
          leaderOfEpoch: new Map(),
          servedByEpoch: new Map(),
        });
      }
    }
    for (const id of this.ids) this.start(id);
  }

  // ------------------------------------------------------------------------------------------------------
  // Set-up.

  private placement(t: TopicSpec, p: number): string[] {
    const n = this.ids.length;
    return Array.from({ length: t.replicationFactor }, (_, i) => this.ids[(p + i) % n]!);
  }

  /** The log every broker starts with: the voters, then the registry and the topics, all committed. */
  private bootstrapLog(): Entry[] {
    const entries = bootstrapEntries(this.ids);
    const commands: MetadataCommand[] = [];
    for (const id of this.ids) commands.push({ kind: 'register_broker', broker: registration(id) });
    for (const t of this.options.topics) {
      const topic: TopicMetadata = {
        name: t.name,
        topicSeq: 0,
        topicId: `${t.name}-id`,
        numPartitions: t.partitions,
        replicationFactor: t.replicationFactor,
        rackAwareness: false,
        config: {
          retentionMs: -1,
          retentionBytes: -1,
          segmentBytes: 1 << 20,
          minInsyncReplicas: t.minInsyncReplicas,
          cleanupPolicy: 'delete',
          uncleanLeaderElection: t.uncleanLeaderElection,
        },
        partitions: Array.from({ length: t.partitions }, (_, p) => {
          const replicas = this.placement(t, p);
          return {
            partition: p,
            leader: replicas[0]!,
            leaderEpoch: 0,
            partitionEpoch: 0,
            replicas,
            isr: replicas,
          };
        }),
        createdAtMs: 0,
      };
      commands.push({ kind: 'create_topic', topic });
    }
    for (const command of commands) {
      entries.push({ index: entries.length + 1, term: 1, kind: 'normal', data: encodeCommand(command) });
    }
    return entries;
  }

  // ------------------------------------------------------------------------------------------------------
  // Faults.

  isUp(id: string): boolean {
    return this.broker(id).up;
  }

  isPaused(id: string): boolean {
    return this.broker(id).paused;
  }

  /** Starts (or restarts) a broker from its disks. */
  start(id: string): void {
    const b = this.broker(id);
    if (b.up) return;
    b.up = true;
    b.paused = false;
    b.incarnation++;
    b.deferred = [];
    const random = b.random;
    b.raft = new RaftNode({
      ...defaultRaftLimits,
      // A heartbeat every other 20 ms tick; elections after 10 to 20 ticks of silence.
      heartbeatTimeoutTicks: 2,
      id,
      storage: b.raftDisk,
      random: () => random.next(),
    });
    b.sm = new MetadataStateMachine();
    b.readyAtIndex = -1;
    b.metaReady = false;
    b.published = null;
    const host = this.hostFor(b);
    b.shell = new ReplicaShell(id, host, b.logs, this.shellConfig);
    b.heardMs = new Map(this.ids.map((peer) => [peer, this.nowMs]));
    b.controller = new Controller(this.controllerConfig(id));
    b.control = null;
    b.leaderFromIndex = Number.MAX_SAFE_INTEGER;
    b.wasLeader = false;
    b.ticks = 0;
    b.nextFdMs = this.nowMs;
    b.nextControlMs = this.nowMs;
    b.isrWaiting.clear();
    b.crashBeforePersist = false;
    this.note(
      id,
      `start #${b.incarnation} raft term ${b.raftDisk.hardState().term} last ${b.raftDisk.lastIndex()}`,
    );
    this.push({
      kind: 'tick',
      at: this.nowMs + 1 + b.random.int(brokerTickMs),
      seq: 0,
      broker: id,
      inc: b.incarnation,
    });
    this.driveRaft(b);
  }

  /** Kills a broker: unsynced log data is lost; with `beforePersist` it dies at its next Ready's persist. */
  kill(id: string, beforePersist = false): void {
    const b = this.broker(id);
    if (!b.up) return;
    if (beforePersist && !b.paused) {
      b.crashBeforePersist = true;
      this.note(id, 'kill armed (before the next Raft persist)');
      return;
    }
    this.crashNow(b, 'kill');
  }

  private crashNow(b: Broker, why: string): void {
    b.up = false;
    b.paused = false;
    b.incarnation++;
    b.deferred = [];
    b.raft = undefined;
    b.shell = undefined;
    b.controller = undefined;
    let lost = 0;
    for (const [pk, log] of b.logs) {
      lost += log.crash(b.random, this.options.tornWriteRate);
      this.logCut(b.id, pk, log);
    }
    this.stats.crashedRecords += lost;
    this.note(b.id, `${why}: ${lost} unsynced records lost`);
  }

  pause(id: string): void {
    const b = this.broker(id);
    if (!b.up || b.paused) return;
    b.paused = true;
    this.note(id, 'pause');
  }

  resume(id: string): void {
    const b = this.broker(id);
    if (!b.up || !b.paused) return;
    b.paused = false;
    this.note(id, `resume (${b.deferred.length} events waited)`);
    const deferred = b.deferred;
    b.deferred = [];
    for (const e of deferred) {
      e.at = this.nowMs;
      e.seq = this.seq++;
      this.queue.push(e);
    }
  }

  /** Blocks every link between brokers of different groups (a broker in no group is alone). */
  partition(groups: readonly (readonly string[])[]): void {
    this.blocked.clear();
    const groupOf = new Map<string, number>();
    groups.forEach((g, i) => {
      for (const id of g) groupOf.set(id, i);
    });
    this.ids.forEach((id, i) => {
      if (!groupOf.has(id)) groupOf.set(id, groups.length + i);
    });
    for (const a of this.ids) {
      for (const b of this.ids) if (groupOf.get(a) !== groupOf.get(b)) this.blocked.add(`${a}>${b}`);
    }
    this.note('-', `partition ${groups.map((g) => g.join(',')).join(' | ')}`);
  }

  isolate(id: string): void {
    for (const other of this.ids) {
      if (other === id) continue;
      this.blocked.add(`${id}>${other}`);
      this.blocked.add(`${other}>${id}`);
    }
    this.note(id, 'isolate');
  }

  /** Drops everything `from` sends to `to` (an asymmetric partition), keeping other cuts. */
  cutOneWay(from: string, to: string): void {
    this.blocked.add(`${from}>${to}`);
    this.note(from, `cut one way to ${to}`);
  }

  /** Cuts the replication data link between two brokers (both ways); Raft and heartbeats still pass. */
  cutDataLink(a: string, b: string): void {
    this.dataBlocked.add(`${a}>${b}`);
    this.dataBlocked.add(`${b}>${a}`);
    this.note('-', `cut data link ${a}-${b}`);
  }

  heal(): void {
    this.blocked.clear();
    this.dataBlocked.clear();
    this.note('-', 'heal');
  }

  // ------------------------------------------------------------------------------------------------------
  // Queries for scenarios (from the most advanced applied metadata).

  partitionKeys(): string[] {
    return [...this.truths.keys()];
  }

  leaderOf(pk: string): string {
    const [topic, p] = splitKey(pk);
    return this.globalMeta?.topics.get(topic)?.partitions[p]?.leader ?? '';
  }

  isrOf(pk: string): readonly string[] {
    return this.truths.get(pk)!.isr;
  }

  replicasOf(pk: string): readonly string[] {
    return this.truths.get(pk)!.replicas;
  }

  /** How many acks=all requests `broker` has answered 'ok' so far. */
  ackedAllCount(broker: string): number {
    return this.ackedAllBy.get(broker) ?? 0;
  }

  raftLeader(): string {
    for (const b of this.brokers.values()) {
      if (b.up && !b.paused && b.raft?.status().role === 'leader') return b.id;
    }
    return '';
  }

  /** Whether the most advanced applied metadata has `id` marked as shutting down. */
  isShuttingDown(id: string): boolean {
    return this.globalMeta?.brokers.get(id)?.shuttingDown ?? false;
  }

  /** The partitions `id` leads per the most advanced applied metadata. */
  ledBy(id: string): string[] {
    return this.partitionKeys().filter((pk) => this.leaderOf(pk) === id);
  }

  /**
   * An operator's controlled shutdown flag (what a broker asks for on SIGTERM): proposed at the metadata
   * leader, again every `retryMs`, until the applied metadata shows it; a liveness failure past `deadlineMs`.
   */
  setShuttingDown(id: string, shuttingDown: boolean, deadlineMs = 5_000): void {
    const retryMs = 200;
    const end = this.nowMs + deadlineMs;
    const done = () => this.isShuttingDown(id) === shuttingDown;
    while (!done()) {
      if (this.nowMs >= end) {
        this.fail(`liveness: shutting-down flag of ${id} not ${shuttingDown} within ${deadlineMs} ms`);
      }
      const leader = this.raftLeader();
      if (leader !== '') {
        const b = this.broker(leader);
        b.raft!.propose(encodeCommand({ kind: 'set_broker_shutting_down', brokerId: id, shuttingDown }));
        this.driveRaft(b);
      }
      this.runUntilOrAt(Math.min(end, this.nowMs + retryMs), done);
    }
    this.note(id, `shutting down: ${shuttingDown}`);
  }

  // ------------------------------------------------------------------------------------------------------
  // Clients.

  startProducing(): void {
    this.producing = true;
    this.scheduleClients();
  }

  /** The clients' clock runs while they produce or wait for answers. */
  private scheduleClients(): void {
    if (this.clientsScheduled) return;
    this.clientsScheduled = true;
    this.push({ kind: 'produce', at: this.nowMs + this.produceGapMs(), seq: 0 });
  }

  stopProducing(): void {
    this.producing = false;
  }

  /** Starts counting, per partition, acks=all acknowledgements from now on. */
  markLiveness(): void {
    this.ackedSinceMark.clear();
  }

  private produceGapMs(): number {
    const [min, max] = this.options.produceIntervalMs;
    return min + this.rng.int(max - min + 1);
  }

  private produceOnce(): void {
    if (this.clientMeta === null || this.nowMs - this.clientMetaMs > clientMetadataMaxAgeMs) {
      // Metadata from any broker that serves it, possibly stale.
      const serving = this.ids.filter((id) => {
        const b = this.brokers.get(id)!;
        return b.up && !b.paused && b.metaReady;
      });
      if (serving.length === 0) return;
      this.clientMeta = this.brokers.get(this.rng.pick(serving))!.sm.snapshot();
      this.clientMetaMs = this.nowMs;
    }
    const pk = this.rng.pick(this.partitionKeys());
    const [topic, p] = splitKey(pk);
    const leader = this.clientMeta.topics.get(topic)?.partitions[p]?.leader ?? '';
    if (leader === '') return;
    // A batch of one to three records, as a producer's linger would make.
    const values = Array.from({ length: 1 + this.rng.int(3) }, () => this.nextValue++);
    const acksAll = this.rng.chance(this.options.acksAllRate);
    const reqId = this.nextId++;
    this.stats.produced++;
    this.sendFromClient(leader, { kind: 'produce', pk, values, acksAll, reqId });
    this.pending.set(reqId, { pk, acksAll, untilMs: this.nowMs + clientTimeoutMs });
  }

  private onProduceAnswer(m: Extract<ShellMessage, { kind: 'produce_answer' }>): void {
    const req = this.pending.get(m.reqId);
    if (req === undefined) return;
    this.pending.delete(m.reqId);
    if (m.outcome === 'ok') {
      if (req.acksAll) this.ackedSinceMark.add(req.pk);
      return;
    }
    if (m.outcome === 'definite') this.stats.definite++;
    else this.stats.indefinite++;
    this.clientMeta = null;
  }

  /** Requests without an answer by their deadline are indefinite for the client. */
  private expireClientRequests(): void {
    for (const [reqId, req] of this.pending) {
      if (req.untilMs > this.nowMs) return;
      this.pending.delete(reqId);
      this.stats.indefinite++;
      this.clientMeta = null;
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // The event loop.

  private push(e: SimEvent): void {
    e.seq = this.seq++;
    this.queue.push(e);
  }

  /** Advances simulated time by `ms`. */
  runFor(ms: number): void {
    const end = this.nowMs + ms;
    while (this.queue.peekAt() <= end) this.step(this.queue.pop()!);
    this.nowMs = end;
  }

  /** Runs until `cond` holds (checked after every step) or the clock reaches `atMs`. */
  runUntilOrAt(atMs: number, cond: () => boolean): void {
    while (!cond() && this.queue.peekAt() <= atMs) this.step(this.queue.pop()!);
    if (!cond() && this.nowMs < atMs) this.nowMs = atMs;
  }

  /** Runs until `cond` holds (checked after every step); fails after `deadlineMs`. */
  runUntil(what: string, deadlineMs: number, cond: () => boolean): void {
    const end = this.nowMs + deadlineMs;
    while (!cond()) {
      if (this.queue.peekAt() > end) {
        this.nowMs = end;
        this.fail(`liveness: ${what} did not happen within ${deadlineMs} ms`);
      }
      this.step(this.queue.pop()!);
    }
  }

  private step(e: SimEvent): void {
    this.nowMs = e.at;
    this.stats.steps++;
    this.stats.simulatedMs = this.nowMs;
    switch (e.kind) {
      case 'produce':
        this.clientsScheduled = false;
        this.expireClientRequests();
        if (this.producing) this.produceOnce();
        if (this.producing || this.pending.size > 0) this.scheduleClients();
        break;
      case 'msg':
        this.deliver(e);
        break;
      case 'tick': {
        const b = this.brokers.get(e.broker)!;
        if (!b.up || b.incarnation !== e.inc) return;
        if (b.paused) {
          b.deferred.push(e);
          return;
        }
        this.tick(b);
        break;
      }
      case 'flush': {
        const b = this.brokers.get(e.broker)!;
        if (!b.up || b.incarnation !== e.inc) return;
        if (b.paused) {
          b.deferred.push(e);
          return;
        }
        b.shell!.onFlushDone(e.pk);
        break;
      }
    }
    if (this.nowMs >= this.nextFullCheckMs) {
      this.nextFullCheckMs = this.nowMs + fullCheckEveryMs;
      this.checkLogsAgainstCanon();
    }
  }

  private deliver(e: MsgEvent): void {
    if (e.to === 'client') {
      if (e.body.k === 'shell' && e.body.m.kind === 'produce_answer') this.onProduceAnswer(e.body.m);
      return;
    }
    const b = this.brokers.get(e.to)!;
    if (!b.up || b.incarnation !== e.toInc) return;
    if (b.paused) {
      b.deferred.push(e);
      return;
    }
    const body = e.body;
    switch (body.k) {
      case 'raft':
        b.raft!.step(body.m);
        this.driveRaft(b);
        return;
      case 'hb':
        b.heardMs.set(e.from, this.nowMs);
        return;
      case 'shell':
        this.deliverShell(b, e.from, body.m);
    }
  }

  private deliverShell(b: Broker, from: string, m: ShellMessage): void {
    const shell = b.shell!;
    if (this.options.trace) this.note(b.id, `<- ${from} ${describeShellMessage(m)}`);
    switch (m.kind) {
      case 'produce':
        shell.onProduce(from, m);
        return;
      case 'fetch':
        shell.onFetch(from, m);
        return;
      case 'fetch_answer':
        shell.onFetchAnswer(m);
        return;
      case 'epoch_query':
        shell.onEpochQuery(from, m);
        return;
      case 'epoch_answer':
        shell.onEpochAnswer(m);
        return;
      case 'alter_isr':
        this.onAlterIsr(b, from, m);
        return;
      case 'alter_isr_answer':
        shell.onIsrAnswer(m);
        return;
      case 'produce_answer':
        return;
    }
  }

  private send(from: Broker, to: string, body: Body): void {
    const target = this.brokers.get(to)!;
    if (!target.up) return;
    const net = this.network;
    if (this.blocked.has(`${from.id}>${to}`)) return;
    if (
      body.k === 'shell' &&
      this.dataBlocked.size > 0 &&
      isDataMessage(body.m) &&
      this.dataBlocked.has(`${from.id}>${to}`)
    ) {
      return;
    }
    if (this.rng.chance(net.lossRate)) return;
    const copies = this.rng.chance(net.duplicateRate) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const delay = net.delayMinMs + this.rng.int(net.delayMaxMs - net.delayMinMs + 1);
      this.push({
        kind: 'msg',
        at: this.nowMs + delay,
        seq: 0,
        from: from.id,
        to,
        toInc: target.incarnation,
        body,
      });
    }
  }

  /** Client traffic: never partitioned from a broker (clients reach every node), lost like other traffic. */
  private sendFromClient(to: string, m: ShellMessage): void {
    const target = this.brokers.get(to)!;
    if (!target.up) return;
    const net = this.network;
    if (this.rng.chance(net.lossRate)) return;
    const delay = net.delayMinMs + this.rng.int(net.delayMaxMs - net.delayMinMs + 1);
    this.push({
      kind: 'msg',
      at: this.nowMs + delay,
      seq: 0,
      from: 'client',
      to,
      toInc: target.incarnation,
      body: { k: 'shell', m },
    });
  }

  private sendToClient(from: Broker, m: ShellMessage): void {
    const net = this.network;
    if (this.rng.chance(net.lossRate)) return;
    const delay = net.delayMinMs + this.rng.int(net.delayMaxMs - net.delayMinMs + 1);
    this.push({
      kind: 'msg',
      at: this.nowMs + delay,
      seq: 0,
      from: from.id,
      to: 'client',
      toInc: 0,
      body: { k: 'shell', m },
    });
  }

  private hostFor(b: Broker): ShellHost {
    const sim = this;
    return {
      get nowMs() {
        return sim.nowMs;
      },
      newId: () => this.nextId++,
      send: (to, m) => {
        if (to === 'client') this.sendToClient(b, m);
        else this.send(b, to, { k: 'shell', m });
      },
      scheduleFlush: (pk) => {
        const [min, max] = this.options.fsyncDelayMs;
        this.push({
          kind: 'flush',
          at: this.nowMs + min + b.random.int(max - min + 1),
          seq: 0,
          broker: b.id,
          inc: b.incarnation,
          pk,
        });
      },
      metadataLeader: () => b.raft?.status().leaderId ?? '',
      observer: this,
    };
  }

  // ------------------------------------------------------------------------------------------------------
  // A broker's control thread: Raft, failure detector, controller.

  private tick(b: Broker): void {
    this.push({ kind: 'tick', at: this.nowMs + brokerTickMs, seq: 0, broker: b.id, inc: b.incarnation });
    b.ticks++;
    b.raft!.tick();
    this.driveRaft(b);
    if (!b.up) return;
    if (this.nowMs >= b.nextFdMs) {
      b.nextFdMs = this.nowMs + fdIntervalMs;
      for (const peer of this.ids) if (peer !== b.id) this.send(b, peer, { k: 'hb' });
    }
    b.shell!.tick();
    this.controlStep(b);
  }

  private driveRaft(b: Broker): void {
    for (;;) {
      const raft = b.raft;
      if (raft === undefined || !raft.hasReady()) break;
      const rd = raft.ready();
      this.onSoftState(b, rd);
      for (const m of rd.messages) this.send(b, m.to, { k: 'raft', m });
      const risky = rd.hardState !== undefined || rd.entries.length > 0;
      if (b.crashBeforePersist && risky) {
        this.crashNow(b, `crash before persisting ${rd.entries.length} raft entries`);
        return;
      }
      if (rd.entries.length > 0) b.raftDisk.append(rd.entries);
      if (rd.hardState !== undefined) b.raftDisk.setHardState(rd.hardState);
      for (const m of rd.messagesAfterPersist) this.send(b, m.to, { k: 'raft', m });
      for (const e of rd.committedEntries) this.apply(b, e);
      raft.advance(rd);
    }
    if (!b.up) return;
    if (!b.metaReady && b.readyAtIndex >= 0 && b.sm.appliedIndex >= b.readyAtIndex) {
      b.metaReady = true;
      this.note(b.id, `metadata ready at ${b.sm.appliedIndex}`);
    }
    if (b.metaReady) {
      const snap = b.sm.snapshot();
      if (snap !== b.published) {
        b.published = snap;
        b.shell!.reconcile(snap);
      }
    }
  }

  private onSoftState(b: Broker, rd: Ready): void {
    if (b.readyAtIndex < 0 && rd.softState.leaderId !== '') b.readyAtIndex = b.raft!.status().commit;
    const leading = rd.softState.role === 'leader';
    if (leading && !b.wasLeader) {
      b.leaderFromIndex = b.raft!.status().lastIndex;
      b.control = null;
      b.nextControlMs = this.nowMs;
      this.note(b.id, `raft leader of term ${b.raft!.status().term}`);
    } else if (!leading && b.wasLeader) {
      b.control = null;
    }
    b.wasLeader = leading;
  }

  private apply(b: Broker, e: Entry): void {
    let command: MetadataCommand | undefined;
    let result: ApplyResult | undefined;
    if (e.kind === 'conf') {
      b.sm.skip(e.index);
    } else if (e.data.length === 0) {
      b.sm.apply(e.index, undefined);
    } else {
      const decoded = decodeCommand(e.data);
      if (!decoded.ok) this.fail(`committed metadata entry ${e.index} does not decode`);
      command = decoded.value;
      result = b.sm.apply(e.index, command);
    }
    if (b.control !== null && e.index >= b.control.index) b.control = null;
    const waiting = b.isrWaiting.get(e.index);
    if (waiting !== undefined) {
      b.isrWaiting.delete(e.index);
      const ours = e.term === waiting.term;
      const applied =
        ours && result?.kind === 'partitions_changed' && result.outcomes.every((o) => o.refusal === null);
      this.send(b, waiting.from, {
        k: 'shell',
        m: {
          kind: 'alter_isr_answer',
          pk: waiting.pk,
          reqId: waiting.reqId,
          outcome: applied ? 'applied' : 'refused',
        },
      });
    }
    if (e.index > this.globalIndex) {
      this.globalIndex = e.index;
      this.onGlobalApply(b, command, result);
    }
  }

  /** The first apply of an index anywhere: the most advanced metadata moved. */
  private onGlobalApply(
    b: Broker,
    command: MetadataCommand | undefined,
    result: ApplyResult | undefined,
  ): void {
    if (command === undefined || result?.kind !== 'partitions_changed') {
      this.globalMeta = b.sm.snapshot();
      return;
    }
    const meta = b.sm.snapshot();
    this.globalMeta = meta;
    const changed =
      command.kind === 'elect_leaders'
        ? command.elections
        : command.kind === 'alter_isr'
          ? command.changes
          : [];
    changed.forEach((c, i) => {
      const outcome = result.outcomes[i];
      if (outcome === undefined || outcome.refusal !== null) return;
      const pk = partitionKey(c.topic, c.partition);
      const truth = this.truths.get(pk)!;
      const p = meta.topics.get(c.topic)!.partitions[c.partition]!;
      if (command.kind === 'elect_leaders') {
        this.stats.elections++;
        const unclean = 'unclean' in c && c.unclean;
        if (unclean) {
          truth.uncleanElections++;
          truth.uncleanEpochMax = Math.max(truth.uncleanEpochMax, p.leaderEpoch);
          this.stats.uncleanElections++;
        }
        this.note(
          b.id,
          `metadata: ${pk} ${unclean ? 'UNCLEAN ' : ''}leader ${p.leader || '-'} epoch ${p.leaderEpoch} isr ${p.isr.join(',')}`,
        );
      } else {
        this.stats.isrChanges++;
        this.note(b.id, `metadata: ${pk} isr ${p.isr.join(',')} (pe ${p.partitionEpoch})`);
      }
      const before = truth.isr;
      truth.isr = p.isr;
      truth.leaderEpoch = p.leaderEpoch;
      for (const id of p.isr)
        if (!before.includes(id)) this.checkMemberHoldsAcked(truth, id, 'joined the ISR');
    });
  }

  /**
   * The metadata leader's side of an ISR proposal. It answers only what it knows: 'refused' when it cannot
   * propose, otherwise it waits until the Raft index it proposed at is applied HERE (also after losing the
   * leadership: the index is applied all the same) and answers 'applied' if that entry is its own (same term)
   * and the state machine took it, 'refused' if not. A crash loses the answer; the partition leader times out.
   */
  private onAlterIsr(b: Broker, from: string, m: Extract<ShellMessage, { kind: 'alter_isr' }>): void {
    const raft = b.raft!;
    const refuse = () =>
      this.send(b, from, {
        k: 'shell',
        m: { kind: 'alter_isr_answer', pk: m.pk, reqId: m.reqId, outcome: 'refused' },
      });
    if (raft.status().role !== 'leader') {
      refuse();
      return;
    }
    const r = raft.propose(encodeCommand({ kind: 'alter_isr', changes: [m.change] }));
    if (r.kind !== 'ok') {
      refuse();
      return;
    }
    b.isrWaiting.set(r.index, { term: r.term, from, reqId: m.reqId, pk: m.pk });
    this.driveRaft(b);
  }

  private controlStep(b: Broker): void {
    const raft = b.raft;
    if (raft === undefined || !b.up || !b.metaReady) return;
    const status = raft.status();
    if (status.role !== 'leader' || b.sm.appliedIndex < b.leaderFromIndex) return;
    if (b.control !== null) {
      if (this.nowMs - b.control.startedMs < controlWaitMaxMs) return;
      b.control = null;
    }
    if (this.nowMs < b.nextControlMs) return;
    const members: MemberView[] = this.ids.map((id) => ({
      id,
      state: id === b.id || this.nowMs - (b.heardMs.get(id) ?? 0) <= fdTimeoutMs ? 'alive' : 'dead',
      httpHost: 'sim',
      httpPort: 1,
      clusterHost: 'sim',
      clusterPort: 1,
      rack: '',
      version: '1',
      dataPorts: [],
      kafkaPort: 0,
    }));
    const progress = raft.progress();
    const metadata = b.sm.snapshot();
    const actions = b.controller!.decide({
      nowMs: this.nowMs,
      metadata,
      members,
      raft: {
        voters: status.conf.voters,
        learners: status.conf.learners,
        commit: status.commit,
        match: new Map([...(progress ?? new Map())].map(([id, pr]) => [id, pr.match])),
        confChangePending: false,
      },
    });
    const action: ControllerAction | undefined = actions[0];
    if (action === undefined) {
      b.nextControlMs = this.nowMs + controlIntervalMs;
      return;
    }
    if (action.kind === 'propose') {
      this.checkDecision(b, action.command);
      const r = raft.propose(encodeCommand(action.command));
      if (r.kind === 'ok') {
        b.control = { index: r.index, startedMs: this.nowMs };
        if (this.options.trace)
          this.note(b.id, `controller proposes ${describeCommand(action.command)} at ${r.index}`);
      } else {
        b.nextControlMs = this.nowMs + controlIntervalMs;
      }
    } else {
      const r = raft.proposeConfChange(action.change);
      this.note(b.id, `controller conf change ${action.change.op} ${action.change.nodeId}: ${r.kind}`);
      if (r.kind === 'ok') b.control = { index: r.index, startedMs: this.nowMs };
      else b.nextControlMs = this.nowMs + controlIntervalMs;
    }
    this.driveRaft(b);
  }

  private controllerConfig(id: string): ControllerConfig {
    return {
      self: id,
      raftVoters: this.ids.length,
      voterReplaceAfterMs: Number.MAX_SAFE_INTEGER,
      absentFenceMs: 1_000,
      preferredLeaderDelayMs: 500,
      partitionChangesPerCommandMax: 100,
      ...(this.options.controllerBug ? { plantedBug: this.options.controllerBug } : {}),
    };
  }

  // ------------------------------------------------------------------------------------------------------
  // Invariants.

  /** 7: the decision, applied to a copy of the metadata it was made from, is refused nowhere. */
  private checkDecision(b: Broker, command: MetadataCommand): void {
    if (command.kind !== 'elect_leaders' && command.kind !== 'alter_isr') return;
    const probe = MetadataStateMachine.fromImage(b.sm.image());
    const result = probe.apply(b.sm.appliedIndex + 1, command);
    if (result.kind !== 'partitions_changed')
      this.fail(`controller decision ${command.kind} gave ${result.kind}`);
    for (const o of result.outcomes) {
      if (o.refusal !== null) {
        this.fail(
          `controller on ${b.id} decided ${describeCommand(command)}, invalid against its own metadata: ${o.topic}-${o.partition} ${o.refusal}`,
        );
      }
    }
  }

  private truth(pk: string): Truth {
    return this.truths.get(pk)!;
  }

  /** A violation of 1 or 2: counted as a loss where an unclean election has happened, a failure otherwise. */
  /**
   * A violation of 1, 2 or 4. Where the topic allows unclean elections and one has happened on the partition,
   * divergence is expected, and an acknowledged record may be lost, but only one written in an epoch that an
   * unclean election came after: those are counted. Anything else fails the run.
   */
  private violate(truth: Truth, what: string, value?: number): void {
    if (truth.uncleanAllowed && truth.uncleanElections > 0) {
      const ackedInEpoch = value === undefined ? undefined : truth.ackedEpochOf.get(value);
      if (ackedInEpoch === undefined) return;
      if (ackedInEpoch < truth.uncleanEpochMax) {
        if (truth.lost.size === 0) this.note('-', `first unclean loss on ${truth.pk}: ${what}`);
        truth.lost.add(value!);
        return;
      }
      what += ` (acknowledged in epoch ${ackedInEpoch}, after the last unclean election made epoch ${truth.uncleanEpochMax})`;
    }
    this.fail(`${truth.pk}: ${what}`);
  }

  private logOf(broker: string, pk: string): SimLog | undefined {
    return this.brokers.get(broker)!.logs.get(pk);
  }

  private checkMemberHoldsAcked(truth: Truth, member: string, why: string): void {
    const log = this.logOf(member, truth.pk);
    const acked = truth.ackedAt;
    for (let o = 0; o < acked.length; o++) {
      const v = acked[o];
      if (v === undefined || truth.lost.has(v)) continue;
      if (log === undefined || !log.holdsDurably(o, v)) {
        this.violate(
          truth,
          `${member} ${why} without acknowledged record ${v}@${o} (holds ${log?.valueAt(o)}, durable end ${log?.durableEndOffset})`,
          v,
        );
      }
    }
  }

  answeredOk(
    broker: string,
    pk: string,
    baseOffset: number,
    values: readonly number[],
    epoch: number,
    acksAll: boolean,
  ): void {
    if (acksAll) {
      this.stats.ackedAll++;
      this.ackedAllBy.set(broker, (this.ackedAllBy.get(broker) ?? 0) + 1);
      this.ackedSinceMark.add(pk);
    } else {
      this.stats.acked1++;
    }
    for (let i = 0; i < values.length; i++) {
      this.recordAcked(broker, pk, baseOffset + i, values[i]!, epoch, acksAll);
    }
  }

  /** 1, at the acknowledgement of one record. */
  private recordAcked(
    broker: string,
    pk: string,
    offset: number,
    value: number,
    epoch: number,
    acksAll: boolean,
  ): void {
    const truth = this.truth(pk);
    const log = this.logOf(broker, pk)!;
    if (!log.holdsDurably(offset, value)) {
      this.fail(`${pk}: ${broker} answers ok for ${value}@${offset} that it does not hold durably`);
    }
    if (!acksAll) {
      truth.acked1.push({ offset, value });
      return;
    }
    truth.ackedEpochOf.set(value, epoch);
    if (truth.canonVals[offset] !== value) {
      this.violate(
        truth,
        `${broker} acknowledges ${value}@${offset} (epoch ${epoch}) but the committed log has ${truth.canonVals[offset]} there`,
        value,
      );
    }
    let holders = 0;
    for (const r of truth.replicas) if (this.logOf(r, pk)?.holdsDurably(offset, value)) holders++;
    if (holders < truth.minIsr) {
      this.fail(
        `${pk}: ${broker} acknowledges ${value}@${offset} durable on ${holders} replicas, below min.insync.replicas ${truth.minIsr}`,
      );
    }
    for (const r of truth.isr) {
      if (!this.logOf(r, pk)?.holdsDurably(offset, value)) {
        this.violate(
          truth,
          `${broker} acknowledges ${value}@${offset} which ISR member ${r} does not hold durably`,
          value,
        );
      }
    }
    const before = truth.ackedAt[offset];
    if (before !== undefined && before !== value) {
      this.violate(truth, `two acknowledged records at ${offset}: ${before} and ${value}`, before);
    }
    while (truth.ackedAt.length < offset) truth.ackedAt.push(undefined);
    truth.ackedAt[offset] = value;
  }

  refused(broker: string, values: readonly number[]): void {
    for (const value of values) {
      if (this.appended.has(value)) this.fail(`${broker} refuses ${value} definitely after appending it`);
      this.refusedValues.add(value);
    }
  }

  leaderAppended(broker: string, pk: string, log: SimLog, batch: SimBatch): void {
    for (const v of batch.values) {
      if (this.refusedValues.has(v)) this.fail(`${pk}: ${broker} appends ${v}, refused definitely before`);
      this.appended.add(v);
    }
    if (log.epochs.epochAt(batch.baseOffset) !== batch.epoch) {
      this.fail(
        `${pk}: ${broker}'s epoch cache says epoch ${log.epochs.epochAt(batch.baseOffset)} at ${batch.baseOffset}, its batch says ${batch.epoch}`,
      );
    }
  }

  followerAppended(broker: string, pk: string, log: SimLog, batches: readonly SimBatch[]): void {
    for (const b of batches) {
      for (const v of b.values)
        if (this.refusedValues.has(v)) this.fail(`${pk}: ${broker} holds ${v}, refused definitely`);
      if (log.epochs.epochAt(b.baseOffset) !== b.epoch) {
        this.fail(
          `${pk}: ${broker}'s epoch cache says epoch ${log.epochs.epochAt(b.baseOffset)} at ${b.baseOffset}, the batch appended there says ${b.epoch} (cache ${JSON.stringify(log.epochs.entries())})`,
        );
      }
    }
  }

  logCut(broker: string, pk: string, log: SimLog): void {
    const truth = this.truth(pk);
    if (!truth.isr.includes(broker)) return;
    const acked = truth.ackedAt;
    for (let o = Math.min(log.logStartOffset, acked.length) - 1; o >= 0; o--) {
      const v = acked[o];
      if (v !== undefined && !truth.lost.has(v))
        this.violate(
          truth,
          `ISR member ${broker} dropped acknowledged ${v}@${o} (log starts at ${log.logStartOffset})`,
          v,
        );
    }
    for (let o = log.durableEndOffset; o < acked.length; o++) {
      const v = acked[o];
      if (v !== undefined && !truth.lost.has(v) && !log.holdsDurably(o, v)) {
        this.violate(
          truth,
          `ISR member ${broker} lost acknowledged ${v}@${o} (durable end now ${log.durableEndOffset})`,
          v,
        );
      }
    }
  }

  replicaTouched(broker: string, part: ShellPartition): void {
    const r = part.replica;
    const truth = this.truth(part.pk);
    if (r.role === 'leader') {
      const e = r.leaderEpoch;
      const owner = truth.leaderOfEpoch.get(e);
      if (owner === undefined) truth.leaderOfEpoch.set(e, broker);
      else if (owner !== broker) this.fail(`${part.pk}: ${owner} and ${broker} both lead epoch ${e}`);
    }
    const seen = this.hwSeen.get(part) ?? 0;
    const hw = r.highWatermark;
    if (hw > seen) this.checkBelowHw(broker, part, Math.max(seen, part.log.logStartOffset), hw);
    else if (hw < seen && r.role === 'leader') {
      // A follower's watermark may drop to what it holds after a truncation; a leader's never goes back.
      this.fail(`${part.pk}: leader ${broker}'s high watermark went back from ${seen} to ${hw}`);
    }
    if (hw !== seen) this.hwSeen.set(part, hw);
    const served = r.servableHighWatermark;
    if (served >= 0) {
      const e = r.leaderEpoch;
      for (const [epoch, max] of truth.servedByEpoch) {
        if (epoch <= e && served < max) {
          this.violate(
            truth,
            `${broker} (epoch ${e}) serves high watermark ${served} after ${max} was served in epoch ${epoch}`,
          );
        }
      }
      if (served > (truth.servedByEpoch.get(e) ?? -1)) truth.servedByEpoch.set(e, served);
    }
  }

  /** 2: the records in [from, to) of a replica's log, all below its high watermark, are the committed log. */
  private checkBelowHw(broker: string, part: ShellPartition, from: number, to: number): void {
    const truth = this.truth(part.pk);
    const log = part.log;
    const leader = part.replica.role === 'leader';
    // After an unclean election histories fork: a leader of an epoch older than one that already committed
    // records (deposed, and not knowing it yet) neither rewrites nor extends the committed log. Without one,
    // a deposed leader's committed records are the new leader's too, and are simply compared.
    const canonEpoch = truth.canonLeaderEpoch;
    const stale = truth.uncleanElections > 0 && leader && part.replica.leaderEpoch < canonEpoch;
    if (leader && part.replica.leaderEpoch > truth.canonLeaderEpoch) {
      truth.canonLeaderEpoch = part.replica.leaderEpoch;
    }
    for (let o = from; o < to; o++) {
      const v = log.valueAt(o);
      const ep = log.epochAt(o);
      if (v === undefined)
        this.fail(`${part.pk}: ${broker}'s high watermark ${to} is past its log end ${log.logEndOffset}`);
      if (o < truth.canonVals.length) {
        if (truth.canonVals[o] !== v || truth.canonEps[o] !== ep) {
          this.violate(
            truth,
            `${broker} holds ${v}/e${ep} at ${o} below its high watermark ${to}; committed is ${truth.canonVals[o]}/e${truth.canonEps[o]}`,
          );
          // After an unclean election the newest leader's history is the committed one; a deposed leader
          // that does not know it yet must not rewrite it.
          if (truth.uncleanElections > 0 && leader && !stale) {
            this.recanon(truth, o, v, ep);
          }
        }
      } else if (leader && o === truth.canonVals.length && !stale) {
        const at = truth.canonPos.get(v);
        if (at !== undefined) this.fail(`${part.pk}: value ${v} committed at ${at} and again at ${o}`);
        truth.canonVals.push(v);
        truth.canonEps.push(ep);
        truth.canonPos.set(v, o);
      } else {
        this.violate(
          truth,
          `${leader ? 'leader' : 'follower'} ${broker} (epoch ${part.replica.leaderEpoch})'s high watermark ${to} is past the committed log (${truth.canonVals.length}, newest epoch ${canonEpoch})`,
        );
        return;
      }
    }
  }

  /** After an unclean election the new leader's history replaces the committed log from `o` on. */
  private recanon(truth: Truth, o: number, v: number, ep: number): void {
    for (let i = o; i < truth.canonVals.length; i++) truth.canonPos.delete(truth.canonVals[i]!);
    truth.canonVals.length = o;
    truth.canonEps.length = o;
    truth.canonVals.push(v);
    truth.canonEps.push(ep);
    truth.canonPos.set(v, o);
  }

  /** 2 and 5, in full: every replica's log below its high watermark is the committed log. */
  private checkLogsAgainstCanon(): void {
    for (const b of this.brokers.values()) {
      if (!b.up || b.shell === undefined) continue;
      for (const part of b.shell.parts.values()) {
        const truth = this.truth(part.pk);
        if (truth.uncleanElections > 0) continue;
        const log = part.log;
        const hw = Math.min(part.replica.highWatermark, log.logEndOffset);
        for (let o = log.logStartOffset; o < hw; o++) {
          if (log.valueAt(o) !== truth.canonVals[o] || log.epochAt(o) !== truth.canonEps[o]) {
            this.fail(
              `${part.pk}: ${b.id} holds ${log.valueAt(o)} at ${o} below its high watermark ${hw}; committed is ${truth.canonVals[o]}`,
            );
          }
        }
        if (!log.epochCacheAgreesFrom(log.logStartOffset)) {
          this.fail(
            `${part.pk}: ${b.id}'s epoch cache ${JSON.stringify(log.epochs.entries())} disagrees with its batches`,
          );
        }
      }
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // The end of a run.

  /** Every fault healed: all brokers up and resumed, the network whole and calm. */
  healAll(): void {
    this.heal();
    this.network = calmNetwork;
    for (const id of this.ids) {
      const b = this.broker(id);
      b.crashBeforePersist = false;
      if (b.paused) this.resume(id);
      if (!b.up) this.start(id);
    }
  }

  /** Whether every partition has a leader, a full ISR, and every replica holds the leader's whole log. */
  converged(): boolean {
    if (this.pending.size > 0) return false;
    for (const pk of this.truths.keys()) {
      const truth = this.truth(pk);
      const leader = this.leaderOf(pk);
      if (leader === '' || truth.isr.length !== truth.replicas.length) return false;
      const lp = this.broker(leader).shell?.parts.get(pk);
      if (lp === undefined || lp.replica.role !== 'leader' || lp.replica.leaderEpoch !== truth.leaderEpoch)
        return false;
      const end = lp.log.logEndOffset;
      if (lp.replica.highWatermark !== end || lp.log.durableEndOffset !== end) return false;
      for (const r of truth.replicas) {
        const b = this.broker(r);
        if (!b.up || b.paused) return false;
        const part = b.shell?.parts.get(pk);
        if (part === undefined || part.replica.leaderEpoch !== truth.leaderEpoch) return false;
        if (
          part.log.logEndOffset !== end ||
          part.log.durableEndOffset !== end ||
          part.replica.highWatermark !== end
        )
          return false;
      }
    }
    return true;
  }

  /**
   * Heals everything, checks that every partition takes acks=all writes again, waits until all replicas
   * have caught up, and checks the final logs.
   */
  finish(deadlineMs = 20_000): void {
    this.healAll();
    this.options.acksAllRate = 1;
    this.markLiveness();
    this.startProducing();
    this.runUntil('an acknowledged acks=all produce on every partition after healing', deadlineMs, () =>
      this.partitionKeys().every((pk) => this.ackedSinceMark.has(pk)),
    );
    this.stopProducing();
    this.runUntil('every replica caught up with its leader', deadlineMs, () => this.converged());
    this.finalCheck();
  }

  finalCheck(): void {
    this.checkLogsAgainstCanon();
    for (const truth of this.truths.values()) {
      const leader = this.leaderOf(truth.pk);
      const final = this.logOf(leader, truth.pk)!.records();
      for (const r of truth.replicas) {
        const other = this.logOf(r, truth.pk)!.records();
        if (other.start !== final.start || other.values.length !== final.values.length) {
          this.fail(
            `${truth.pk}: ${r}'s log [${other.start}, ${other.start + other.values.length}) differs from the leader's [${final.start}, ${final.start + final.values.length})`,
          );
        }
        for (let i = 0; i < final.values.length; i++) {
          if (other.values[i] !== final.values[i] || other.epochs[i] !== final.epochs[i]) {
            this.fail(`${truth.pk}: ${r} differs from leader ${leader} at ${final.start + i}`);
          }
        }
      }
      const at = new Map<number, number>();
      for (let i = 0; i < final.values.length; i++) {
        const v = final.values[i]!;
        if (at.has(v)) this.fail(`${truth.pk}: value ${v} at ${at.get(v)} and at ${final.start + i}`);
        if (this.refusedValues.has(v))
          this.fail(`${truth.pk}: ${v} was refused definitely but is in the log`);
        at.set(v, final.start + i);
      }
      truth.ackedAt.forEach((v, o) => {
        if (v === undefined) return;
        if (final.values[o - final.start] !== v) {
          this.violate(
            truth,
            `acknowledged ${v}@${o} missing at the end (found ${final.values[o - final.start]})`,
            v,
          );
        }
      });
      this.stats.uncleanLosses += truth.lost.size;
      for (const a of truth.acked1)
        if (final.values[a.offset - final.start] !== a.value) this.stats.acks1Losses++;
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // Reporting.

  private broker(id: string): Broker {
    const b = this.brokers.get(id);
    if (b === undefined) throw new Error(`no broker ${id}`);
    return b;
  }

  note(node: string, what: string): void {
    const ev: TraceEvent = { t: this.nowMs, node, what };
    if (this.ring.length < traceRingSize) this.ring.push(ev);
    else this.ring[this.ringNext] = ev;
    this.ringNext = (this.ringNext + 1) % traceRingSize;
    if (this.options.trace) console.log(formatEvent(ev));
  }

  traceTail(): string[] {
    const ordered =
      this.ring.length < traceRingSize
        ? this.ring
        : [...this.ring.slice(this.ringNext), ...this.ring.slice(0, this.ringNext)];
    return ordered.map(formatEvent);
  }

  fail(reason: string): never {
    throw new SimFailure(`t=${this.nowMs}ms step ${this.stats.steps}: ${reason}`);
  }
}

function registration(id: string): BrokerRegistration {
  return {
    id,
    httpHost: 'sim',
    httpPort: 1,
    clusterHost: 'sim',
    clusterPort: 1,
    rack: '',
    version: '1',
    dataPorts: [],
    kafkaPort: 0,
    fenced: false,
    shuttingDown: false,
    registeredAtMs: 0,
  };
}

function isDataMessage(m: ShellMessage): boolean {
  return (
    m.kind === 'fetch' || m.kind === 'fetch_answer' || m.kind === 'epoch_query' || m.kind === 'epoch_answer'
  );
}

export function splitKey(pk: string): [string, number] {
  const slash = pk.lastIndexOf('/');
  return [pk.slice(0, slash), Number(pk.slice(slash + 1))];
}

function describeCommand(c: MetadataCommand): string {
  switch (c.kind) {
    case 'elect_leaders':
      return `elect ${c.elections.map((e) => `${e.topic}/${e.partition}:${e.leader || '-'}${e.unclean ? '(unclean)' : ''} isr ${e.isr.join(',')}`).join(' ')}`;
    case 'alter_isr':
      return `alter_isr ${c.changes.map((x) => `${x.topic}/${x.partition}:${x.isr.join(',')}`).join(' ')}`;
    case 'fence_broker':
      return `fence ${c.brokerId} ${c.fenced}`;
    default:
      return c.kind;
  }
}

function describeShellMessage(m: ShellMessage): string {
  switch (m.kind) {
    case 'produce':
      return `produce ${m.pk} ${m.values.join(',')} acks=${m.acksAll ? 'all' : '1'}`;
    case 'produce_answer':
      return `produce_answer ${m.outcome} ${m.offset} ${m.reason}`;
    case 'fetch':
      return `fetch ${m.pk} #${m.reqId} e${m.fetch.leaderEpoch} at ${m.fetch.fetchOffset} last e${m.fetch.lastFetchedEpoch}`;
    case 'fetch_answer': {
      const a = m.answer;
      const n = m.batches.reduce((sum, b) => sum + b.values.length, 0);
      const detail = a.kind === 'records' ? `hw ${a.highWatermark} +${n}` : JSON.stringify(a);
      return `fetch_answer ${m.pk} #${m.reqId} from ${m.fromOffset} ${a.kind} ${detail}`;
    }
    case 'epoch_query':
      return `epoch_query ${m.pk} #${m.reqId} e${m.leaderEpoch} asks e${m.epoch}`;
    case 'epoch_answer':
      return `epoch_answer ${m.pk} #${m.reqId} asked e${m.askedEpoch}: ${JSON.stringify(m.answer)}`;
    case 'alter_isr':
      return `alter_isr ${m.pk} #${m.reqId} ${m.change.isr.join(',')} (le ${m.change.leaderEpoch} pe ${m.change.partitionEpoch})`;
    case 'alter_isr_answer':
      return `alter_isr_answer ${m.pk} #${m.reqId} ${m.outcome}`;
  }
}

function formatEvent(ev: TraceEvent): string {
  return `${String(ev.t).padStart(7)}ms ${ev.node.padEnd(3)} ${ev.what}`;
}

/** Whether an error is one a run reports with its seed (an invariant, a liveness check or a core assertion). */
export function isReplicationFailure(err: unknown): err is Error {
  return err instanceof SimFailure || err instanceof AssertionError || err instanceof SimLogError;
}
