// The control plane of one node: the Raft host that replicates cluster metadata, the metadata state machine it
// applies, the SWIM gossip agent that says who is alive, the cluster RPC that forwards admin requests to the
// Raft leader, and, while this node leads, the controller that turns gossip into metadata: it registers brokers,
// fences the dead, adds live brokers to Raft as learners, promotes learners while fewer than `raftVoters` vote,
// and replaces a voter that has been gone for `voterReplaceAfterMs` by a caught-up learner.
// All of it shares one cluster port: TCP for Raft and RPC, UDP for gossip.
//
// Invariants: the state machine only changes inside Raft's apply callback, in log order; at most one membership
// change is in flight (the Raft core refuses a second); a request from the acceptor gets exactly one reply;
// the snapshot holding a change is posted before the reply reporting it; every wait (leader search, forwarded
// call, apply) is bounded by `forwardTimeoutMs`.
// Runs on the control worker thread only (workers/control.ts); tests may run several in one process.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { assert } from '../core/assert.js';
import { GOSSIP_DEFAULTS, type GossipConfig } from '../core/gossip/config.js';
import type { MemberSnapshot } from '../core/gossip/node.js';
import { assignReplicas } from '../core/metadata/placement.js';
import {
  type ApplyResult,
  type MetadataCommand,
  MetadataStateMachine,
} from '../core/metadata/state-machine.js';
import { createPrng } from '../core/prng.js';
import type { ConfChange, Entry, Snapshot } from '../core/raft/types.js';
import { GossipAgent } from '../gossip/agent.js';
import {
  type AdminReply,
  type AdminRequest,
  decodeAdminReply,
  decodeAdminRequest,
  decodeCommand,
  decodeImage,
  encodeAdminReply,
  encodeAdminRequest,
  encodeCommand,
  encodeImage,
} from '../metadata/codec.js';
import type { BrokerRegistration, MetadataSnapshot, TopicMetadata } from '../metadata/types.js';
import { RaftHost } from '../raft/node-host.js';
import { RealDisk } from '../storage/disk.js';
import type {
  ClusterMemberStatus,
  ClusterStatus,
  ControlEvent,
  ControlFailure,
  ControlOptions,
  ControlReply,
  ControlRequest,
} from './control-protocol.js';
import { ClusterPort } from './port.js';
import { RpcClient, RpcError, RpcServer } from './rpc.js';

/** Apply results kept for proposers to pick up; older ones are dropped (nobody waits that long). */
const resultsKeptMax = 4096;
const adminMethod = 'metadata.admin';
const reconcileIntervalMs = 250;

export class ControlPlane {
  private sm = new MetadataStateMachine();
  private readonly results = new Map<number, ApplyResult>();
  private raft: RaftHost = undefined as unknown as RaftHost;
  private gossip: GossipAgent | null = null;
  private port!: ClusterPort;
  private rpcServer!: RpcServer;
  private readonly rpc = new RpcClient();
  private timer: NodeJS.Timeout | null = null;
  private publishScheduled = false;
  private lastPublishedVersion = -1;
  private lastSnapshotIndex = 0;
  private readySent = false;
  /** The leader's commit index when this node first heard from a leader: applying it makes the node ready. */
  private readyAtIndex = -1;
  private httpPort = 0;
  private stopped = false;
  /** When each member was first seen dead or left by gossip (for voter replacement). */
  private readonly goneSinceMs = new Map<string, number>();
  private confChangeInFlight = false;
  private readonly importPending: TopicMetadata[];
  private reconcileRunning = false;

  private constructor(
    private readonly options: ControlOptions,
    private readonly emit: (event: ControlEvent) => void,
  ) {
    this.importPending = [...options.importTopics];
  }

  /** Binds the cluster port and starts Raft. Gossip starts with `advertise`, once the HTTP port is known. */
  static async start(options: ControlOptions, emit: (event: ControlEvent) => void): Promise<ControlPlane> {
    const plane = new ControlPlane(options, emit);
    await plane.open();
    return plane;
  }

  private async open(): Promise<void> {
    const o = this.options;
    this.port = await ClusterPort.open({ host: o.host, port: o.clusterPort });
    this.rpcServer = RpcServer.attach(this.port, (method, payload) => this.onRpc(method, payload));
    this.raft = await RaftHost.start({
      id: o.nodeId,
      dir: join(o.dataDir, 'raft'),
      disk: new RealDisk(),
      listenHost: o.host,
      listenPort: this.port.port,
      peers: {},
      // A node given no seeds founds a cluster of one; a node given seeds waits for the leader to add it.
      initialVoters: o.seeds.length === 0 ? [o.nodeId] : [],
      tickMs: o.raftTickMs,
      random: createPrng(Math.floor(Math.random() * 2 ** 32)).nextFloat,
      apply: (entry) => this.apply(entry),
      restore: (snapshot) => this.restore(snapshot),
      raft: { electionTimeoutTicks: o.raftElectionTicks, heartbeatTimeoutTicks: 1 },
      transport: { clusterPort: this.port },
    });
    for (const b of this.sm.snapshot().brokers.values()) this.notePeerFromRegistry(b);
    this.raft.onSoftStateChange(() => this.onSoftState());
    this.emit({ type: 'started', clusterPort: this.port.port });
    this.publish();
    this.timer = setInterval(() => this.onTimer(), reconcileIntervalMs);
  }

  /** Requests from the acceptor; each gets exactly one reply event. */
  handle(request: ControlRequest): void {
    const reply = (r: ControlReply) => this.emit({ type: 'reply', id: request.id, reply: r });
    const fail = (error: unknown) => reply(internalFailure(error));
    switch (request.op) {
      case 'advertise':
        this.advertise(request.httpPort).then(() => reply({ kind: 'ok' }), fail);
        return;
      case 'create_topic':
        this.admin({ kind: 'create_topic', request: request.request, nowMs: request.nowMs }).then(
          reply,
          fail,
        );
        return;
      case 'delete_topic':
        this.admin({ kind: 'delete_topic', name: request.name }).then(reply, fail);
        return;
      case 'alter_topic_config':
        this.admin({ kind: 'alter_topic_config', name: request.name, changes: request.changes }).then(
          reply,
          fail,
        );
        return;
      case 'commit_offsets':
        this.admin({ kind: 'commit_offsets', group: request.group, offsets: request.offsets }).then(
          reply,
          fail,
        );
        return;
      case 'status':
        reply({ kind: 'status', status: this.status() });
        return;
      case 'stop':
        this.stop().then(() => reply({ kind: 'ok' }), fail);
        return;
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.handOverLeadership(1_000);
    // Leave gossip first so the others hear "left" rather than wait for a failure detector.
    if (this.gossip !== null) await this.gossip.stop({ leaveTimeoutMs: 1000 }).catch(() => undefined);
    this.rpc.close();
    await this.raft.stop();
    this.rpcServer.close();
    await this.port.close();
  }

  /** A leader that stops hands leadership to its most caught-up live voter, so nobody waits for a timeout. */
  private async handOverLeadership(timeoutMs: number): Promise<void> {
    const s = this.raft.status();
    if (s.role !== 'leader') return;
    const progress = this.raft.progress();
    const target = s.conf.voters
      .filter((id) => id !== this.options.nodeId && this.gossip?.member(id)?.state === 'alive')
      .sort((a, b) => (progress?.get(b)?.match ?? 0) - (progress?.get(a)?.match ?? 0))[0];
    if (target === undefined || this.raft.transferLeadership(target).kind !== 'ok') return;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.raft.status().leaderId === this.options.nodeId) await sleep(10);
  }

  // ---- Gossip ----

  private async advertise(httpPort: number): Promise<void> {
    this.httpPort = httpPort;
    const o = this.options;
    const meta = {
      httpHost: o.address,
      httpPort,
      clusterHost: o.address,
      clusterPort: this.port.port,
      rack: o.rack,
      version: o.version,
    };
    if (this.gossip !== null) {
      this.gossip.updateMetadata(meta);
      return;
    }
    const config: GossipConfig = {
      ...GOSSIP_DEFAULTS,
      probeIntervalMs: o.gossipIntervalMs,
      // Keep the default's ratio of probe timeout to interval (80 / 200).
      probeTimeoutMs: Math.max(1, Math.round((GOSSIP_DEFAULTS.probeTimeoutMs * o.gossipIntervalMs) / 200)),
    };
    this.gossip = new GossipAgent({
      nodeId: o.nodeId,
      host: o.host,
      port: this.port.port,
      advertiseHost: o.address,
      meta,
      config,
      clusterPort: this.port,
      // A restarted member announces itself above anything it said before its restart.
      incarnation: Date.now() - 1_700_000_000_000,
    });
    this.gossip.onEvent((event) => {
      this.notePeer(event.member);
      this.onGossipChange();
    });
    await this.gossip.start({ seeds: o.seeds });
  }

  /** Raft needs every member's address before it can answer it: gossip is how a newcomer learns them. */
  private notePeer(member: MemberSnapshot): void {
    if (member.nodeId === this.options.nodeId || member.meta.clusterPort === 0) return;
    this.raft.setPeer(member.nodeId, `${member.meta.clusterHost}:${member.meta.clusterPort}`);
  }

  private onGossipChange(): void {
    if (this.raft.status().role === 'leader') this.reconcile();
  }

  // ---- Raft callbacks ----

  private apply(entry: Entry): void {
    if (entry.kind === 'conf') {
      this.sm.skip(entry.index);
      // Membership is the Raft core's; peers stay addressed after a removal, a removed broker may come back.
    } else if (entry.data.length === 0) {
      this.sm.apply(entry.index, undefined);
    } else {
      const decoded = decodeCommand(entry.data);
      assert(
        decoded.ok,
        `committed metadata entry ${entry.index} does not decode: ${JSON.stringify(decoded)}`,
      );
      const result = this.sm.apply(entry.index, decoded.value);
      this.results.set(entry.index, result);
      if (this.results.size > resultsKeptMax) {
        const oldest = this.results.keys().next().value as number;
        this.results.delete(oldest);
      }
      if (decoded.value.kind === 'register_broker') this.notePeerFromRegistry(decoded.value.broker);
    }
    this.schedulePublish();
    if (!this.readySent && this.readyAtIndex >= 0 && this.sm.appliedIndex >= this.readyAtIndex)
      this.sendReady();
    if (this.sm.appliedIndex - this.lastSnapshotIndex >= this.options.snapshotEveryEntries) {
      // Compacting inside apply would re-enter the Ready loop; do it right after.
      const index = this.sm.appliedIndex;
      const image = encodeImage(this.sm.image());
      this.lastSnapshotIndex = index;
      queueMicrotask(() => {
        if (!this.stopped) this.raft.compact(index, image);
      });
    }
  }

  private notePeerFromRegistry(b: BrokerRegistration): void {
    // During RaftHost.start the stored log is re-applied before `raft` is assigned; open() catches up after.
    if (this.raft === undefined) return;
    if (b.id === this.options.nodeId || b.clusterPort === 0) return;
    this.raft.setPeer(b.id, `${b.clusterHost}:${b.clusterPort}`);
  }

  private restore(snapshot: Snapshot): void {
    const decoded = decodeImage(snapshot.data);
    assert(decoded.ok, `metadata snapshot at ${snapshot.index} does not decode`);
    this.sm = MetadataStateMachine.fromImage({ ...decoded.value, appliedIndex: snapshot.index });
    this.lastSnapshotIndex = snapshot.index;
    for (const b of this.sm.snapshot().brokers.values()) this.notePeerFromRegistry(b);
    this.schedulePublish();
  }

  private onSoftState(): void {
    const s = this.raft.status();
    if (this.readyAtIndex < 0 && s.leaderId !== '') {
      this.readyAtIndex = s.commit;
      if (this.sm.appliedIndex >= this.readyAtIndex && !this.readySent) this.sendReady();
    }
    if (s.role === 'leader') this.reconcile();
  }

  private sendReady(): void {
    this.readySent = true;
    this.publish();
    this.emit({ type: 'ready' });
  }

  private schedulePublish(): void {
    if (this.publishScheduled) return;
    this.publishScheduled = true;
    queueMicrotask(() => {
      this.publishScheduled = false;
      this.publish();
    });
  }

  private publish(): void {
    const snapshot = this.sm.snapshot();
    if (snapshot.version === this.lastPublishedVersion) return;
    this.lastPublishedVersion = snapshot.version;
    this.emit({ type: 'metadata', snapshot });
  }

  private onTimer(): void {
    if (this.stopped) return;
    const s = this.raft.status();
    if (!this.readySent && this.readyAtIndex < 0 && s.leaderId !== '') this.onSoftState();
    if (s.role === 'leader') this.reconcile();
  }

  // ---- Admin requests: run on the leader, forwarded from anywhere else ----

  private async admin(request: AdminRequest): Promise<ControlReply> {
    const deadline = Date.now() + this.options.forwardTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const s = this.raft.status();
      let answer: AdminReply;
      if (s.role === 'leader') {
        answer = await this.adminAsLeader(request);
      } else if (s.leaderId === '') {
        answer = {
          kind: 'not_leader',
          index: 0,
          topic: null,
          reason: 'no Raft leader is known',
          leaderId: '',
        };
      } else {
        answer = await this.forward(s.leaderId, request, deadline);
      }
      if (answer.kind === 'not_leader' || answer.kind === 'retry') {
        if (Date.now() + 50 >= deadline) {
          return failure(
            'no_leader',
            `no metadata leader answered within ${this.options.forwardTimeoutMs} ms`,
          );
        }
        await sleep(Math.min(50 * (attempt + 1), 250));
        continue;
      }
      if (answer.kind === 'failed_indefinite') return failure('no_leader', answer.reason, true);
      if (answer.index > 0 && this.sm.appliedIndex < answer.index) {
        // Read-your-writes: answer only once this node's own metadata shows the change.
        const applied = await this.raft.waitApplied(answer.index, Math.max(1, deadline - Date.now()));
        if (!applied) {
          return failure(
            'no_leader',
            `the change was committed at index ${answer.index} but not yet applied here`,
            true,
          );
        }
      }
      this.publish();
      return toControlReply(answer);
    }
  }

  private async forward(leaderId: string, request: AdminRequest, deadlineMs: number): Promise<AdminReply> {
    const leader = this.sm.broker(leaderId);
    const address =
      leader !== undefined ? `${leader.clusterHost}:${leader.clusterPort}` : this.gossipAddressOf(leaderId);
    if (address === undefined) {
      return { kind: 'retry', index: 0, topic: null, reason: `no address for leader ${leaderId}`, leaderId };
    }
    try {
      const bytes = await this.rpc.call(address, adminMethod, encodeAdminRequest(request), {
        timeoutMs: Math.max(1, deadlineMs - Date.now()),
      });
      const decoded = decodeAdminReply(bytes);
      if (!decoded.ok)
        return { kind: 'failed_indefinite', index: 0, topic: null, reason: 'bad reply', leaderId };
      return decoded.value;
    } catch (error) {
      if (error instanceof RpcError && (error.code === 'unreachable' || error.code === 'overloaded')) {
        return { kind: 'retry', index: 0, topic: null, reason: error.message, leaderId };
      }
      const message = error instanceof Error ? error.message : String(error);
      return {
        kind: 'failed_indefinite',
        index: 0,
        topic: null,
        reason: `the leader ${leaderId} did not answer (${message}); the change may or may not have been made`,
        leaderId,
      };
    }
  }

  private gossipAddressOf(id: string): string | undefined {
    const m = this.gossip?.member(id);
    if (m === undefined || m.meta.clusterPort === 0) return undefined;
    return `${m.meta.clusterHost}:${m.meta.clusterPort}`;
  }

  private async onRpc(method: string, payload: Uint8Array): Promise<Uint8Array> {
    if (method !== adminMethod) throw new Error(`unknown method ${method}`);
    const decoded = decodeAdminRequest(payload);
    if (!decoded.ok) throw new Error(`bad admin request: ${decoded.reason}`);
    const s = this.raft.status();
    if (s.role !== 'leader') {
      return encodeAdminReply({
        kind: 'not_leader',
        index: 0,
        topic: null,
        reason: 'not the leader',
        leaderId: s.leaderId,
      });
    }
    return encodeAdminReply(await this.adminAsLeader(decoded.value));
  }

  private async adminAsLeader(request: AdminRequest): Promise<AdminReply> {
    let command: MetadataCommand;
    switch (request.kind) {
      case 'create_topic': {
        // Proposed even when the topic seems to exist: a new leader may not have applied the whole log yet,
        // and the state machine answers exists_same / exists_different from the log's own order.
        const placed = this.placeTopic(request);
        if (typeof placed === 'string') return reply('invalid', 0, null, placed);
        command = { kind: 'create_topic', topic: placed };
        break;
      }
      case 'delete_topic':
        command = { kind: 'delete_topic', name: request.name };
        break;
      case 'commit_offsets':
        command = { kind: 'commit_offsets', group: request.group, offsets: request.offsets };
        break;
      case 'alter_topic_config': {
        // The topic id fences the change to the topic this leader sees now, not a later one of the same name.
        const topic = this.sm.topic(request.name);
        if (topic === undefined) return reply('unknown', 0, null);
        command = {
          kind: 'alter_topic_config',
          name: request.name,
          topicId: topic.topicId,
          changes: request.changes,
        };
        break;
      }
    }
    return this.proposeCommand(command);
  }

  private async proposeCommand(command: MetadataCommand): Promise<AdminReply> {
    const outcome = await this.raft.propose(encodeCommand(command));
    switch (outcome.kind) {
      case 'applied': {
        const result = this.results.get(outcome.index);
        this.results.delete(outcome.index);
        assert(result !== undefined, `no apply result kept for index ${outcome.index}`);
        return fromApplyResult(result, outcome.index);
      }
      case 'not_leader':
      case 'transferring':
        return {
          kind: 'not_leader',
          index: 0,
          topic: null,
          reason: outcome.kind,
          leaderId: outcome.leaderId,
        };
      case 'queue_full':
      case 'superseded':
        return { kind: 'retry', index: 0, topic: null, reason: outcome.kind, leaderId: '' };
      case 'outcome_unknown':
        return {
          kind: 'failed_indefinite',
          index: 0,
          topic: null,
          reason: 'leadership changed while the change was in flight; it may or may not have been made',
          leaderId: '',
        };
    }
  }

  /** Decides a new topic's id, placement and creation time: the state machine only checks them. */
  private placeTopic(request: Extract<AdminRequest, { kind: 'create_topic' }>): TopicMetadata | string {
    const r = request.request;
    const unfenced = [...this.sm.snapshot().brokers.values()].filter((b) => !b.fenced && this.isAlive(b.id));
    // A suspect broker may be dead already: place on it only when the healthy ones are too few.
    const healthy = unfenced.filter(
      (b) => b.id === this.options.nodeId || this.gossip?.member(b.id)?.state === 'alive',
    );
    const live = healthy.length >= r.replicationFactor ? healthy : unfenced;
    const placed = assignReplicas(
      live.map((b) => ({ id: b.id, rack: b.rack })),
      r.numPartitions,
      r.replicationFactor,
      r.rackAwareness,
      Math.floor(Math.random() * Math.max(1, live.length)),
    );
    if (placed.kind === 'error') return placed.reason;
    return {
      name: r.name,
      topicSeq: 0,
      topicId: randomUUID(),
      numPartitions: r.numPartitions,
      replicationFactor: r.replicationFactor,
      rackAwareness: r.rackAwareness,
      config: r.config,
      partitions: placed.replicas.map((replicas, partition) => ({
        partition,
        leader: replicas[0]!,
        leaderEpoch: 0,
        partitionEpoch: 0,
        replicas: [...replicas],
        isr: [...replicas],
      })),
      createdAtMs: request.nowMs,
    };
  }

  private isAlive(id: string): boolean {
    if (id === this.options.nodeId) return true;
    const state = this.gossip?.member(id)?.state;
    return state === 'alive' || state === 'suspect';
  }

  // ---- The controller (leader only) ----

  private reconcile(): void {
    if (this.reconcileRunning || this.stopped) return;
    this.reconcileRunning = true;
    this.reconcileOnce()
      .catch(() => undefined)
      .finally(() => {
        this.reconcileRunning = false;
      });
  }

  private async reconcileOnce(): Promise<void> {
    if (this.raft.status().role !== 'leader') return;
    const nowMs = Date.now();
    const registry = this.sm.snapshot().brokers;
    // 1. The registry follows gossip: register new or re-addressed brokers, fence the dead, unfence the living.
    for (const m of this.gossipMembers()) {
      if (m.meta.httpPort === 0) continue;
      const known = registry.get(m.nodeId);
      const alive = m.state === 'alive' || m.state === 'suspect';
      if (alive) this.goneSinceMs.delete(m.nodeId);
      else if (!this.goneSinceMs.has(m.nodeId)) this.goneSinceMs.set(m.nodeId, nowMs);
      const wanted = {
        id: m.nodeId,
        httpHost: m.meta.httpHost,
        httpPort: m.meta.httpPort,
        clusterHost: m.meta.clusterHost,
        clusterPort: m.meta.clusterPort,
        rack: m.meta.rack,
        version: m.meta.version,
        shuttingDown: known?.shuttingDown ?? false,
        dataPorts: known?.dataPorts ?? [],
      };
      if (alive && (known === undefined || !sameAddresses(known, wanted))) {
        await this.proposeCommand({
          kind: 'register_broker',
          broker: { ...wanted, fenced: false, registeredAtMs: known?.registeredAtMs ?? nowMs },
        });
      } else if (known !== undefined && known.fenced === alive) {
        await this.proposeCommand({ kind: 'fence_broker', brokerId: m.nodeId, fenced: !alive });
      }
      if (this.raft.status().role !== 'leader') return;
    }
    // Topics from a data dir that predates its Raft log, once this node is registered to hold them.
    if (this.importPending.length > 0 && this.sm.broker(this.options.nodeId) !== undefined) {
      for (const t of this.importPending.splice(0)) {
        if (this.sm.topic(t.name) !== undefined) continue;
        const self = this.options.nodeId;
        const partitions = t.partitions.map((p) => ({ ...p, leader: self, replicas: [self], isr: [self] }));
        await this.proposeCommand({
          kind: 'create_topic',
          topic: { ...t, replicationFactor: 1, partitions },
        });
      }
    }
    // 2. Raft membership: live registered brokers join as learners; learners fill the voter seats.
    if (this.confChangeInFlight) return;
    const status = this.raft.status();
    const conf = status.conf;
    const members = new Set([...conf.voters, ...conf.learners]);
    const registered = this.sm.snapshot().brokers;
    for (const b of registered.values()) {
      if (members.has(b.id) || b.fenced || !this.isAlive(b.id)) continue;
      this.notePeerFromRegistry(b);
      await this.confChange({ op: 'add_learner', nodeId: b.id });
      return;
    }
    const progress = this.raft.progress();
    const caughtUp = (id: string) => (progress?.get(id)?.match ?? 0) >= status.commit;
    const candidates = conf.learners.filter((id) => this.isAlive(id) && caughtUp(id));
    if (conf.voters.length < this.options.raftVoters && candidates.length > 0) {
      await this.confChange({ op: 'promote', nodeId: candidates[0]! });
      return;
    }
    // 3. A voter gone for good gives its seat to a caught-up learner.
    for (const id of conf.voters) {
      if (id === this.options.nodeId) continue;
      const since = this.goneSinceMs.get(id);
      if (since === undefined || nowMs - since < this.options.voterReplaceAfterMs) continue;
      if (candidates.length === 0) break;
      await this.confChange({ op: 'remove', nodeId: id });
      return;
    }
  }

  private async confChange(change: ConfChange): Promise<void> {
    this.confChangeInFlight = true;
    try {
      await this.raft.proposeConfChange(change);
    } finally {
      this.confChangeInFlight = false;
    }
  }

  private gossipMembers(): MemberSnapshot[] {
    return this.gossip?.members() ?? [];
  }

  // ---- Status ----

  status(): ClusterStatus {
    const s = this.raft.status();
    const snapshot: MetadataSnapshot = this.sm.snapshot();
    const progress = this.raft.progress();
    const gossip = new Map(this.gossipMembers().map((m) => [m.nodeId, m]));
    const ids = new Set<string>([
      this.options.nodeId,
      ...snapshot.brokers.keys(),
      ...gossip.keys(),
      ...s.conf.voters,
      ...s.conf.learners,
    ]);
    const members: ClusterMemberStatus[] = [...ids].sort().map((id) => {
      const g = gossip.get(id);
      const b = snapshot.brokers.get(id);
      return {
        node_id: id,
        state: g?.state ?? (id === this.options.nodeId ? 'alive' : 'unknown'),
        raft_role: s.conf.voters.includes(id) ? 'voter' : s.conf.learners.includes(id) ? 'learner' : 'none',
        leader: s.leaderId === id,
        fenced: b?.fenced ?? false,
        rack: g?.meta.rack ?? b?.rack ?? '',
        address: g?.meta.httpHost ?? b?.httpHost ?? '',
        http_port: g?.meta.httpPort ?? b?.httpPort ?? (id === this.options.nodeId ? this.httpPort : 0),
        cluster_port: g?.meta.clusterPort ?? b?.clusterPort ?? 0,
        incarnation: g?.incarnation ?? null,
        match_index: progress?.get(id)?.match ?? null,
      };
    });
    return {
      node_id: this.options.nodeId,
      raft: {
        role: s.role,
        leader_id: s.leaderId === '' ? null : s.leaderId,
        term: s.term,
        commit_index: s.commit,
        applied_index: this.sm.appliedIndex,
        last_index: s.lastIndex,
        voters: s.conf.voters,
        learners: s.conf.learners,
      },
      metadata_version: snapshot.version,
      members,
    };
  }
}

function reply(kind: string, index: number, topic: TopicMetadata | null, reason = ''): AdminReply {
  return { kind, index, topic, reason, leaderId: '' };
}

function fromApplyResult(result: ApplyResult, index: number): AdminReply {
  switch (result.kind) {
    case 'created':
    case 'exists_same':
    case 'exists_different':
    case 'deleted':
    case 'altered':
      return reply(result.kind, index, result.topic);
    case 'unknown':
      return reply('unknown', index, null);
    case 'committed':
      return reply('committed', index, null, String(result.count));
    case 'invalid':
      return reply('invalid', index, null, result.reason);
    default:
      return reply('ok', index, null);
  }
}

function toControlReply(answer: AdminReply): ControlReply {
  switch (answer.kind) {
    case 'created':
    case 'exists_same':
    case 'exists_different':
    case 'deleted':
    case 'altered':
      assert(answer.topic !== null, `${answer.kind} without a topic`);
      return { kind: answer.kind, topic: answer.topic };
    case 'unknown':
      return { kind: 'unknown' };
    case 'committed':
      return { kind: 'committed', count: Number(answer.reason) };
    case 'invalid':
      return failure('bad_request', answer.reason);
    case 'ok':
      return { kind: 'ok' };
    default:
      return failure('internal', `unexpected answer ${answer.kind}: ${answer.reason}`);
  }
}

function failure(error: ControlFailure['error'], message: string, indefinite = false): ControlFailure {
  return { kind: 'failed', error, message, indefinite };
}

function internalFailure(error: unknown): ControlFailure {
  return failure('internal', error instanceof Error ? error.message : String(error), true);
}

function sameAddresses(
  b: BrokerRegistration,
  w: Omit<BrokerRegistration, 'fenced' | 'registeredAtMs' | 'shuttingDown' | 'dataPorts'>,
): boolean {
  return (
    b.httpHost === w.httpHost &&
    b.httpPort === w.httpPort &&
    b.clusterHost === w.clusterHost &&
    b.clusterPort === w.clusterPort &&
    b.rack === w.rack &&
    b.version === w.version
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
