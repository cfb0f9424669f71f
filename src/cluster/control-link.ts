// The acceptor's side of the control thread: spawns it, sends it requests and matches their replies, and
// presents the Raft-replicated metadata as the `MetadataStore` the data plane uses (`ClusterMetadataStore`).
//
// Invariants: at most `pendingRequestsMax` requests wait for a reply (more are refused at once, so a stuck
// control thread cannot grow the acceptor's memory); every pending request settles exactly once, with the
// reply or, if the thread dies, with an error; the snapshot only moves forward in version.
// Main (acceptor) thread only.

import type { Worker } from 'node:worker_threads';
import type { ReassignChange } from '../core/metadata/state-machine.js';
import type { AclBinding, AclFilter } from '../core/security/acl.js';
import type {
  AlterTopicResult,
  CreateTopicRequest,
  CreateTopicResult,
  DeleteTopicResult,
  MetadataSnapshot,
  MetadataStore,
  TopicConfigChanges,
} from '../metadata/types.js';
import { spawnThread } from '../runtime/threads.js';
import type {
  ClusterStatus,
  ControlEvent,
  ControlFailure,
  ControlOptions,
  ControlReply,
  ControlRequest,
  GroupCommand,
  GroupOffsets,
} from './control-protocol.js';

const pendingRequestsMax = 4096;

/** Distributes Omit over a union, so each request kind keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** A refused or failed control request; `indefinite` when the change may have been made anyway. */
export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(
    readonly failure: ControlFailure,
    options?: { cause?: unknown },
  ) {
    super(failure.message, options);
  }
}

export class ControlLink {
  private readonly pending = new Map<number, (reply: ControlReply) => void>();
  private nextId = 1;
  private snapshotNow: MetadataSnapshot = { version: 0, topics: new Map(), brokers: new Map() };
  private readonly listeners: ((snapshot: MetadataSnapshot) => void)[] = [];
  private exited = false;
  private readyResolve!: () => void;
  /** Resolves once the node has a leader and has caught up with it. */
  readonly ready: Promise<void> = new Promise((resolve) => {
    this.readyResolve = resolve;
  });
  isReady = false;
  clusterPort = 0;
  /** The metadata Raft leader as the control thread last told it ('' when none is known). */
  raftLeader: { readonly leaderId: string; readonly term: number } = { leaderId: '', term: 0 };
  /** Set while this node coordinates the consumer groups: its term and the offsets it started from. */
  coordinatorTerm: { readonly term: number; readonly groups: GroupOffsets } | null = null;
  /** Called after the leader or this node's coordinator term changes. */
  onCoordinatorChange: () => void = () => undefined;
  /** Called when the thread reports a fatal error or exits unexpectedly. */
  onFatal: (message: string) => void = () => undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (event: ControlEvent) => this.onEvent(event));
    worker.on('error', (error) => this.fail(`control thread failed: ${error.stack ?? error.message}`));
    worker.on('exit', (code) => {
      this.exited = true;
      this.fail(`control thread exited with code ${code}`);
    });
  }

  /** Spawns the control thread and resolves once it has bound the cluster port and started Raft. */
  static async start(options: ControlOptions): Promise<ControlLink> {
    // The partition workers' ports move to the control thread (a MessagePort in workerData must be transferred).
    // The control thread's garbage is small and short-lived (Raft entries, gossip datagrams): a small young
    // generation keeps its resident memory down.
    const worker = spawnThread('workers/control', options, {
      name: 'control',
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
      transferList: [...options.workerPorts],
    });
    const link = new ControlLink(worker);
    await new Promise<void>((resolve, reject) => {
      link.onStarted = resolve;
      link.onFatal = (message) => reject(new Error(message));
    });
    link.onFatal = () => undefined;
    return link;
  }

  private onStarted: () => void = () => undefined;

  get snapshot(): MetadataSnapshot {
    return this.snapshotNow;
  }

  onChange(listener: (snapshot: MetadataSnapshot) => void): void {
    this.listeners.push(listener);
  }

  request(request: WithoutId<ControlRequest>): Promise<ControlReply> {
    if (this.exited) return Promise.reject(new Error('the control thread is not running'));
    if (this.pending.size >= pendingRequestsMax) {
      return Promise.resolve({
        kind: 'failed',
        error: 'overloaded',
        message: `more than ${pendingRequestsMax} cluster requests waiting`,
        indefinite: false,
      });
    }
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage({ ...request, id });
    });
  }

  /** A change of committed offsets from this node's coordinator, made only in `term` (see `group_command`). */
  groupCommand(term: number, command: GroupCommand): Promise<ControlReply> {
    return this.request({ op: 'group_command', term, command });
  }

  async status(): Promise<ClusterStatus> {
    const reply = await this.request({ op: 'status' });
    if (reply.kind !== 'status') throw new ControlError(asFailure(reply));
    return reply.status;
  }

  /** Leaves gossip, stops Raft and closes the cluster port; resolves when the thread has exited. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    await this.request({ op: 'stop' }).catch(() => undefined);
    await exited;
  }

  private onEvent(event: ControlEvent): void {
    switch (event.type) {
      case 'started':
        this.clusterPort = event.clusterPort;
        this.onStarted();
        return;
      case 'metadata':
        if (event.snapshot.version <= this.snapshotNow.version && this.snapshotNow.version > 0) return;
        this.snapshotNow = event.snapshot;
        for (const listener of this.listeners) listener(event.snapshot);
        return;
      case 'raft_leader':
        this.raftLeader = { leaderId: event.leaderId, term: event.term };
        if (this.coordinatorTerm !== null && this.coordinatorTerm.term !== event.term) {
          this.coordinatorTerm = null;
        }
        this.onCoordinatorChange();
        return;
      case 'coordinator':
        if (event.term !== this.raftLeader.term) return;
        this.coordinatorTerm = { term: event.term, groups: event.groups };
        this.onCoordinatorChange();
        return;
      case 'ready':
        this.isReady = true;
        this.readyResolve();
        return;
      case 'reply': {
        const settle = this.pending.get(event.id);
        if (settle === undefined) return;
        this.pending.delete(event.id);
        settle(event.reply);
        return;
      }
      case 'fatal':
        this.fail(event.message);
        return;
    }
  }

  private fail(message: string): void {
    for (const settle of this.pending.values()) {
      settle({ kind: 'failed', error: 'internal', message, indefinite: true });
    }
    this.pending.clear();
    this.onFatal(message);
  }
}

function asFailure(reply: ControlReply): ControlFailure {
  if (reply.kind === 'failed') return reply;
  return { kind: 'failed', error: 'internal', message: `unexpected reply ${reply.kind}`, indefinite: false };
}

/** The Raft-replicated metadata behind the `MetadataStore` interface the acceptor already speaks. */
export class ClusterMetadataStore implements MetadataStore {
  constructor(private readonly link: ControlLink) {}

  snapshot(): MetadataSnapshot {
    return this.link.snapshot;
  }

  onChange(listener: (snapshot: MetadataSnapshot) => void): void {
    this.link.onChange(listener);
  }

  async createTopic(request: CreateTopicRequest, nowMs: number): Promise<CreateTopicResult> {
    const reply = await this.link.request({ op: 'create_topic', request, nowMs });
    if (reply.kind === 'created' || reply.kind === 'exists_same' || reply.kind === 'exists_different') {
      return reply;
    }
    throw new ControlError(asFailure(reply));
  }

  async deleteTopic(name: string): Promise<DeleteTopicResult> {
    const reply = await this.link.request({ op: 'delete_topic', name });
    if (reply.kind === 'deleted' || reply.kind === 'unknown') return reply;
    throw new ControlError(asFailure(reply));
  }

  async alterTopicConfig(name: string, changes: TopicConfigChanges): Promise<AlterTopicResult> {
    const reply = await this.link.request({ op: 'alter_topic_config', name, changes });
    if (reply.kind === 'altered' || reply.kind === 'unknown') return reply;
    throw new ControlError(asFailure(reply));
  }

  /** Starts or cancels partition moves; per change null when applied, else why it was refused. */
  async reassign(changes: readonly ReassignChange[]): Promise<readonly (string | null)[]> {
    const reply = await this.link.request({ op: 'reassign', changes });
    if (reply.kind === 'partitions_changed') return reply.refusals;
    throw new ControlError(asFailure(reply));
  }

  async addPartitions(name: string, count: number): Promise<AlterTopicResult> {
    const reply = await this.link.request({ op: 'add_partitions', name, count });
    if (reply.kind === 'altered' || reply.kind === 'unknown') return reply;
    throw new ControlError(asFailure(reply));
  }

  /** Asks the controller to move leaderships to the preferred replicas now (answered once asked). */
  async electPreferredLeaders(): Promise<void> {
    const reply = await this.link.request({ op: 'elect_preferred_leaders' });
    if (reply.kind !== 'ok') throw new ControlError(asFailure(reply));
  }

  /** Adds ACL bindings cluster-wide (durable once resolved); the ones that were new. */
  async createAcls(acls: readonly AclBinding[]): Promise<readonly AclBinding[]> {
    const reply = await this.link.request({ op: 'create_acls', acls });
    if (reply.kind === 'acls_changed') return reply.acls;
    throw new ControlError(asFailure(reply));
  }

  /** Removes every ACL binding the filter matches; the ones removed. */
  async deleteAcls(filter: AclFilter): Promise<readonly AclBinding[]> {
    const reply = await this.link.request({ op: 'delete_acls', filter });
    if (reply.kind === 'acls_changed') return reply.acls;
    throw new ControlError(asFailure(reply));
  }

  async allocateProducerId(): Promise<number> {
    const reply = await this.link.request({ op: 'allocate_producer_id' });
    if (reply.kind === 'producer_id') return reply.producerId;
    throw new ControlError(asFailure(reply));
  }

  async close(): Promise<void> {
    await this.link.stop();
  }
}
