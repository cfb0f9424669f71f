// The control plane of one node: the Raft host that replicates cluster metadata, the metadata state machine it
// applies, the SWIM gossip agent that says who is alive, the cluster RPC that forwards admin requests to the
// Raft leader, and, while this node leads, the shell of the controller (src/core/metadata/controller.ts, a pure
// decision): every round it hands the controller the metadata, the gossip view and the Raft configuration and
// proposes what it decides (registry changes, partition leader elections and ISR changes, Raft membership), one
// at a time. It also carries the partition workers' side: metadata deltas down one MessagePort per worker
// (worker-protocol.ts) once this node has caught up with a leader, and their ISR proposals up to the metadata
// leader; and a controlled shutdown, which marks this broker shutting down and waits for its leaderships to move.
// All of it shares one cluster port: TCP for Raft and RPC, UDP for gossip.
//
// Gossip learns its way into the cluster from the seeds and, for a node that already has Raft state, from the
// broker registry: every registered broker's cluster address is a gossip peer, tried while this node is alone
// and whenever gossip does not hold it alive (a restarted founder without `--seeds`, a healed partition).
// Cluster events (gossip membership changes, Raft leader changes, this node's role, brokers registered,
// fenced and unfenced, Raft membership changes, Raft storage failures) are logged at info with the node ids
// and counted in the shared stats buffer the acceptor serves on /metrics. Events re-applied from the stored
// log at start are history, not news: they are neither logged nor counted.
//
// Invariants: the state machine only changes inside Raft's apply callback, in log order; at most one membership
// change is in flight (the Raft core refuses a second); a request from the acceptor gets exactly one reply;
// the snapshot holding a change is posted before the reply reporting it; every wait (leader search, forwarded
// call, apply) is bounded by `forwardTimeoutMs`.
// Runs on the control worker thread only (workers/control.ts); tests may run several in one process.

import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import { assert } from '../core/assert.js';
import { GOSSIP_DEFAULTS, type GossipConfig } from '../core/gossip/config.js';
import type { MemberSnapshot, MembershipEvent } from '../core/gossip/node.js';
import {
  Controller,
  type ControllerAction,
  DEFAULT_CONTROLLER_TIMINGS,
  type MemberView,
} from '../core/metadata/controller.js';
import { placeTopic as placeTopicReplicas, settleDefaultReplication } from '../core/metadata/placement.js';
import {
  type ApplyResult,
  type MetadataCommand,
  MetadataStateMachine,
} from '../core/metadata/state-machine.js';
import { createPrng } from '../core/prng.js';
import type { RaftStatus } from '../core/raft/raft.js';
import { type ConfChange, decodeConfChange, type Entry, type Snapshot } from '../core/raft/types.js';
import type { AclBinding } from '../core/security/acl.js';
import { GossipAgent, type JoinEvent } from '../gossip/agent.js';
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
import { RaftHost, type RaftSoftStatus, type StorageFault } from '../raft/node-host.js';
import type { Logger } from '../runtime/logger.js';
import { ClusterAuth } from '../security/cluster-auth.js';
import { ClusterTls } from '../security/cluster-tls.js';
import { RealDisk } from '../storage/disk.js';
import type {
  ClusterMemberStatus,
  ClusterStatus,
  ControlEvent,
  ControlFailure,
  ControlOptions,
  ControlReply,
  ControlRequest,
  GroupCommand,
} from './control-protocol.js';
import {
  type ClusterEventKind,
  ControlStatSlot,
  ControlStatsWriter,
  type GossipMemberState,
} from './control-stats.js';
import { ClusterPort } from './port.js';
import { RpcClient, RpcError, RpcServer } from './rpc.js';
import type { ControlToWorker, WorkerToControl } from './worker-protocol.js';

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
  private rpc: RpcClient = new RpcClient();
  private timer: NodeJS.Timeout | null = null;
  private publishScheduled = false;
  private lastPublishedVersion = -1;
  private lastSnapshotIndex = 0;
  private readySent = false;
  /** The leader's commit index when this node first heard from a leader: applying it makes the node ready. */
  private readyAtIndex = -1;
  /** The leader and term last told to the acceptor. */
  private toldLeader: { leaderId: string; term: number } = { leaderId: '\u0000', term: -1 };
  /** This node's term as the groups' coordinator: it starts once the log it was elected with is applied. */
  private coordinatorStart: { term: number; index: number; told: boolean } | null = null;
  private httpPort = 0;
  private stopped = false;
  private confChangeInFlight = false;
  /** The controller's decisions (pure); run while this node leads the metadata group. */
  private readonly controller: Controller;
  /** The data-link ports this node's workers listen on, advertised through gossip. */
  private dataPorts: readonly number[] = [];
  /** The Kafka listener's port this node advertises; 0 when it has none. */
  private kafkaPort = 0;
  /** What each partition worker was last sent (topics by name, and the version), for deltas. */
  private workerSent: { version: number; topics: Map<string, TopicMetadata> } | null = null;
  /** A controlled shutdown asked for: the flag stays set until this process ends. */
  private shuttingDown = false;
  /** This node's own shutting-down mark from an earlier run is being cleared. */
  private clearingShutdownMark = false;
  private readonly importPending: TopicMetadata[];
  private reconcileRunning = false;
  private readonly stats: ControlStatsWriter;
  /** Role, leader and term as last reported, to log and count their changes. */
  private soft: RaftSoftStatus = { role: 'follower', leaderId: '', term: 0 };
  /** The cluster secret's keys, when one is configured: every node-to-node byte is checked against it. */
  private readonly auth: ClusterAuth | undefined;
  /** Cluster TLS, when configured: every node-to-node TCP connection is mutual TLS with the cluster CA. */
  private readonly tls: ClusterTls | undefined;

  private constructor(
    private readonly options: ControlOptions,
    private readonly emit: (event: ControlEvent) => void,
    private readonly log: Logger,
  ) {
    this.importPending = [...options.importTopics];
    this.auth =
      options.clusterSecret === null
        ? undefined
        : new ClusterAuth({
            nodeId: options.nodeId,
            secret: options.clusterSecret,
            stats: options.authStats,
            warn: (fields, message) => log.warn(fields, message),
          });
    this.tls =
      options.clusterTls === null
        ? undefined
        : new ClusterTls({
            ...options.clusterTls,
            stats: options.authStats,
            warn: (fields, message) => log.warn(fields, message),
          });
    this.stats = new ControlStatsWriter(options.statsBuffer);
    this.controller = new Controller({
      self: options.nodeId,
      raftVoters: options.raftVoters,
      voterReplaceAfterMs: options.voterReplaceAfterMs,
      ...DEFAULT_CONTROLLER_TIMINGS,
    });
    for (const port of options.workerPorts) {
      port.on('message', (message: WorkerToControl) => this.onWorkerMessage(port, message));
    }
  }

  /** Binds the cluster port and starts Raft. Gossip starts with `advertise`, once the HTTP port is known. */
  static async start(
    options: ControlOptions,
    emit: (event: ControlEvent) => void,
    log: Logger,
  ): Promise<ControlPlane> {
    const plane = new ControlPlane(options, emit, log);
    await plane.open();
    return plane;
  }

  /** Logs one cluster event at info and counts it. */
  private event(kind: ClusterEventKind, fields: Record<string, unknown>, message: string): void {
    this.stats.event(kind);
    this.log.info({ event: kind, ...fields }, message);
  }

  private async open(): Promise<void> {
    const o = this.options;
    this.port = await ClusterPort.open({
      host: o.host,
      port: o.clusterPort,
      ...(this.auth === undefined ? {} : { auth: this.auth }),
      ...(this.tls === undefined ? {} : { tls: this.tls }),
    });
    this.rpc = new RpcClient({}, this.auth, this.tls);
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
      onStorageFault: (fault) => this.onStorageFault(fault),
    });
    for (const b of this.sm.snapshot().brokers.values()) this.notePeerFromRegistry(b);
    this.raft.onSoftStateChange((now) => {
      this.noteSoftState(now);
      this.onSoftState();
    });
    // A lone founder elects itself inside RaftHost.start, before the listener exists: report that too.
    const initial = this.raft.status();
    this.soft = { role: 'follower', leaderId: '', term: initial.term };
    this.noteSoftState({ role: initial.role, leaderId: initial.leaderId, term: initial.term });
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
        this.advertise(request.httpPort, request.dataPorts, request.kafkaPort).then(
          () => reply({ kind: 'ok' }),
          fail,
        );
        return;
      case 'set_shutting_down':
        this.setShuttingDown(request.shuttingDown).then(reply, fail);
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
      case 'allocate_producer_id':
        this.admin({ kind: 'allocate_producer_id' }).then(reply, fail);
        return;
      case 'group_command':
        this.groupCommand(request.term, request.command).then(reply, fail);
        return;
      case 'elect_preferred_leaders':
        this.admin({ kind: 'elect_preferred_leaders' }).then(reply, fail);
        return;
      case 'add_partitions':
        this.admin({ kind: 'add_partitions', name: request.name, count: request.count }).then(reply, fail);
        return;
      case 'create_acls':
        this.admin({ kind: 'create_acls', acls: request.acls }).then(reply, fail);
        return;
      case 'delete_acls':
        this.admin({ kind: 'delete_acls', filter: request.filter }).then(reply, fail);
        return;
      case 'reassign':
        this.admin({ kind: 'reassign_partitions', changes: request.changes, nowMs: Date.now() }).then(
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

  private async advertise(httpPort: number, dataPorts: readonly number[], kafkaPort: number): Promise<void> {
    this.httpPort = httpPort;
    this.dataPorts = [...dataPorts];
    this.kafkaPort = kafkaPort;
    const o = this.options;
    const meta = {
      httpHost: o.address,
      httpPort,
      clusterHost: o.address,
      clusterPort: this.port.port,
      rack: o.rack,
      version: o.version,
      dataPorts: this.dataPorts,
      kafkaPort: this.kafkaPort,
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
      deadReclaimMs: o.gossipDeadReclaimMs,
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
      log: this.log,
      onJoinEvent: (event) => this.onJoinEvent(event),
    });
    this.gossip.onEvent((event) => {
      this.notePeer(event.member);
      this.noteGossipEvent(event.kind, event.member);
      this.onGossipChange();
    });
    await this.gossip.start({ seeds: o.seeds });
    this.updateGossipPeers();
    this.countGossipMembers();
  }

  private onJoinEvent(event: JoinEvent): void {
    if (event.kind === 'attempt') this.stats.add(ControlStatSlot.joinAttempts);
    else if (event.kind === 'failed') this.stats.add(ControlStatSlot.joinFailures);
    else this.event('gossip_joined', { through: event.through }, 'gossip: this node joined the cluster');
  }

  /** Every registered broker is a gossip peer: how a node with Raft state finds the others again. */
  private updateGossipPeers(): void {
    if (this.gossip === null) return;
    const peers: string[] = [];
    for (const b of this.sm.snapshot().brokers.values()) {
      if (b.id !== this.options.nodeId && b.clusterPort !== 0)
        peers.push(`${b.clusterHost}:${b.clusterPort}`);
    }
    this.gossip.setPeers(peers);
  }

  private noteGossipEvent(kind: MembershipEvent['kind'], member: MemberSnapshot): void {
    const fields = {
      member: member.nodeId,
      address: member.address,
      incarnation: member.incarnation,
      state: member.state,
    };
    switch (kind) {
      case 'joined':
        this.event('member_joined', fields, `gossip: member ${member.nodeId} joined`);
        break;
      case 'alive_again':
        this.event('member_alive', fields, `gossip: member ${member.nodeId} is alive again`);
        break;
      case 'suspect':
        this.event('member_suspect', fields, `gossip: member ${member.nodeId} is suspected`);
        break;
      case 'failed':
        this.event('member_dead', fields, `gossip: member ${member.nodeId} is dead`);
        break;
      case 'left':
        this.event('member_left', fields, `gossip: member ${member.nodeId} left`);
        break;
      case 'updated':
        this.event('member_updated', fields, `gossip: member ${member.nodeId} changed its addresses`);
        break;
    }
    this.countGossipMembers();
  }

  private countGossipMembers(): void {
    const counts: Record<GossipMemberState, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of this.gossipMembers()) counts[m.state]++;
    this.stats.gossipMembers(counts);
  }

  /** Logs and counts changes of the Raft leader and of this node's role. */
  private noteSoftState(now: RaftSoftStatus): void {
    const before = this.soft;
    this.soft = now;
    if (now.leaderId !== before.leaderId) {
      this.stats.add(ControlStatSlot.leaderChanges);
      if (now.leaderId === '') {
        this.event(
          'leader_lost',
          { previousLeader: before.leaderId, term: now.term },
          `raft: metadata leader ${before.leaderId} lost (term ${now.term})`,
        );
      } else {
        this.event(
          'leader_elected',
          { leader: now.leaderId, previousLeader: before.leaderId || null, term: now.term },
          `raft: ${now.leaderId} is the metadata leader (term ${now.term})`,
        );
      }
    }
    if (now.role !== before.role) {
      if (now.role === 'leader') {
        this.event(
          'became_leader',
          { term: now.term },
          `raft: this node became the metadata leader (term ${now.term})`,
        );
      } else if (now.role === 'follower') {
        this.event(
          'became_follower',
          { term: now.term, leader: now.leaderId || null, previousRole: before.role },
          `raft: this node became a follower (term ${now.term})`,
        );
      }
    }
  }

  private onStorageFault(fault: StorageFault): void {
    if (fault.kind === 'failed') {
      this.stats.add(ControlStatSlot.raftStorageFailures);
      this.stats.set(ControlStatSlot.raftStorageStalled, 1);
      const fields = {
        code: fault.code,
        error: fault.message,
        step: fault.step,
        failures: fault.failures,
        retryInMs: fault.retryInMs,
        dir: join(this.options.dataDir, 'raft'),
      };
      // Once per state change at error; the retries of the same failure at debug.
      if (fault.failures === 1) {
        this.stats.event('raft_storage_failed');
        this.log.error(
          { event: 'raft_storage_failed', ...fields },
          `raft: cannot persist Raft state (${fault.code}); this node stays out of the metadata group and retries until the disk works again`,
        );
      } else {
        this.log.debug(fields, 'raft: Raft storage still failing');
      }
    } else {
      this.stats.set(ControlStatSlot.raftStorageStalled, 0);
      this.event(
        'raft_storage_recovered',
        { stalledMs: fault.stalledMs, failures: fault.failures },
        `raft: Raft storage works again after ${fault.stalledMs} ms; this node is back in the metadata group`,
      );
    }
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
    // During RaftHost.start the stored log is re-applied before `raft` is assigned: history, not news.
    const news = this.raft !== undefined;
    let groupOnly = false;
    if (entry.kind === 'conf') {
      this.sm.skip(entry.index);
      // Membership is the Raft core's; peers stay addressed after a removal, a removed broker may come back.
      if (news) this.noteConfChange(decodeConfChange(entry.data), entry.index);
    } else if (entry.data.length === 0) {
      this.sm.apply(entry.index, undefined);
    } else {
      const decoded = decodeCommand(entry.data);
      assert(
        decoded.ok,
        `committed metadata entry ${entry.index} does not decode: ${JSON.stringify(decoded)}`,
      );
      const kind = decoded.value.kind;
      groupOnly = kind === 'commit_offsets' || kind === 'delete_group' || kind === 'allocate_producer_id';
      const before = news ? this.registryEventBefore(decoded.value) : undefined;
      const result = this.sm.apply(entry.index, decoded.value);
      if (before !== undefined) this.noteRegistryChange(decoded.value, before, entry.index);
      this.results.set(entry.index, result);
      if (this.results.size > resultsKeptMax) {
        const oldest = this.results.keys().next().value as number;
        this.results.delete(oldest);
      }
      if (decoded.value.kind === 'register_broker') {
        this.notePeerFromRegistry(decoded.value.broker);
        this.updateGossipPeers();
      }
    }
    // Offsets and producer ids are not part of the metadata the data plane follows: no snapshot for them.
    if (!groupOnly) this.schedulePublish();
    if (!this.readySent && this.readyAtIndex >= 0 && this.sm.appliedIndex >= this.readyAtIndex)
      this.sendReady();
    if (news) this.maybeStartCoordinator();
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

  /** What the registry held before a registry command, to tell a registration from a re-addressing. */
  private registryEventBefore(command: MetadataCommand): { known: boolean; fenced: boolean } | undefined {
    if (command.kind === 'register_broker') {
      const known = this.sm.broker(command.broker.id);
      return { known: known !== undefined, fenced: known?.fenced ?? false };
    }
    if (command.kind === 'fence_broker' || command.kind === 'set_broker_shutting_down') {
      const known = this.sm.broker(command.brokerId);
      return {
        known: known !== undefined,
        fenced: command.kind === 'fence_broker' ? (known?.fenced ?? false) : (known?.shuttingDown ?? false),
      };
    }
    return undefined;
  }

  private noteRegistryChange(
    command: MetadataCommand,
    before: { known: boolean; fenced: boolean },
    index: number,
  ): void {
    if (command.kind === 'register_broker') {
      const b = command.broker;
      this.event(
        'broker_registered',
        { broker: b.id, httpHost: b.httpHost, httpPort: b.httpPort, clusterPort: b.clusterPort, index },
        before.known
          ? `registry: broker ${b.id} registered again with new addresses`
          : `registry: broker ${b.id} registered`,
      );
    } else if (
      command.kind === 'set_broker_shutting_down' &&
      before.known &&
      before.fenced !== command.shuttingDown
    ) {
      this.event(
        'broker_shutting_down',
        { broker: command.brokerId, shuttingDown: command.shuttingDown, index },
        command.shuttingDown
          ? `registry: broker ${command.brokerId} is shutting down; its leaderships move to in-sync replicas`
          : `registry: broker ${command.brokerId} is back from a controlled shutdown`,
      );
    } else if (command.kind === 'fence_broker' && before.known && before.fenced !== command.fenced) {
      if (command.fenced) {
        this.event(
          'broker_fenced',
          { broker: command.brokerId, index },
          `registry: broker ${command.brokerId} fenced (gossip holds it dead or gone); no new partitions go to it`,
        );
      } else {
        this.event(
          'broker_unfenced',
          { broker: command.brokerId, index },
          `registry: broker ${command.brokerId} unfenced (alive again)`,
        );
      }
    }
  }

  private noteConfChange(change: ConfChange, index: number): void {
    const fields = { member: change.nodeId, index };
    switch (change.op) {
      case 'add_learner':
        this.event(
          'learner_added',
          fields,
          `raft: ${change.nodeId} added to the metadata group as a learner`,
        );
        return;
      case 'add_voter':
        this.event('voter_added', fields, `raft: ${change.nodeId} added to the metadata group as a voter`);
        return;
      case 'promote':
        this.event('learner_promoted', fields, `raft: learner ${change.nodeId} promoted to voter`);
        return;
      case 'remove':
        this.event('member_removed', fields, `raft: ${change.nodeId} removed from the metadata group`);
        return;
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
    this.updateGossipPeers();
    this.schedulePublish();
  }

  private onSoftState(): void {
    const s = this.raft.status();
    this.noteCoordinator(s);
    if (this.readyAtIndex < 0 && s.leaderId !== '') {
      this.readyAtIndex = s.commit;
      if (this.sm.appliedIndex >= this.readyAtIndex && !this.readySent) this.sendReady();
    }
    if (s.role === 'leader') this.reconcile();
  }

  /**
   * The groups' coordinator is the metadata leader, from the moment it has applied everything committed before
   * its term (the log it was elected with): the offsets it starts from are then the latest committed ones.
   * Every change of leader or term is told to the acceptor, which forwards group requests to the leader.
   */
  private noteCoordinator(s: RaftStatus): void {
    if (s.leaderId !== this.toldLeader.leaderId || s.term !== this.toldLeader.term) {
      this.toldLeader = { leaderId: s.leaderId, term: s.term };
      this.emit({ type: 'raft_leader', leaderId: s.leaderId, term: s.term });
    }
    if (s.role === 'leader' && this.coordinatorStart?.term !== s.term) {
      this.coordinatorStart = { term: s.term, index: s.lastIndex, told: false };
    }
    this.maybeStartCoordinator();
  }

  private maybeStartCoordinator(): void {
    const start = this.coordinatorStart;
    if (start === null || start.told || this.raft === undefined) return;
    const s = this.raft.status();
    if (s.role !== 'leader' || s.term !== start.term || this.sm.appliedIndex < start.index) return;
    start.told = true;
    this.emit({ type: 'coordinator', term: start.term, groups: this.sm.image().groups });
  }

  /** A change of committed offsets from this node's coordinator, made only in the term it coordinates. */
  private async groupCommand(term: number, command: GroupCommand): Promise<ControlReply> {
    const s = this.raft.status();
    if (this.stopped || s.role !== 'leader' || s.term !== term) {
      return failure(
        'not_coordinator',
        `this node no longer coordinates the consumer groups (its metadata term ${term} is over); nothing was written`,
      );
    }
    const deadline = Date.now() + this.options.forwardTimeoutMs;
    const answer = await withDeadline(this.proposeCommand(command), deadline, () => ({
      kind: 'failed_indefinite',
      index: 0,
      topic: null,
      reason: `the offsets were proposed but not applied within ${this.options.forwardTimeoutMs} ms; they may or may not be committed`,
      leaderId: this.options.nodeId,
    }));
    switch (answer.kind) {
      case 'failed_indefinite':
        return failure('no_leader', answer.reason, true);
      case 'not_leader':
        return failure(
          'not_coordinator',
          'this node lost the metadata leadership before the offsets were proposed; nothing was written',
        );
      case 'retry':
      case 'storage_failed':
        return failure(
          'no_leader',
          `the offsets could not be proposed (${answer.reason}); nothing was written`,
        );
      default:
        return toControlReply(answer);
    }
  }

  private sendReady(): void {
    this.readySent = true;
    this.publish();
    this.emit({ type: 'ready' });
    this.clearOwnShutdownMark();
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
    if (snapshot.version !== this.lastPublishedVersion) {
      this.lastPublishedVersion = snapshot.version;
      this.emit({ type: 'metadata', snapshot });
    }
    // Partition workers act on the metadata (lead, follow, delete), so they get it only once this node has
    // caught up with a leader: a restarted node's own log may be far behind.
    if (this.readySent) this.postToWorkers(snapshot);
  }

  /** Sends each partition worker what changed since the last message: topics by object identity. */
  private postToWorkers(snapshot: MetadataSnapshot): void {
    if (this.options.workerPorts.length === 0) return;
    const sent = this.workerSent;
    if (sent !== null && sent.version === snapshot.version) return;
    const changed: TopicMetadata[] = [];
    const deleted: string[] = [];
    for (const t of snapshot.topics.values()) if (sent?.topics.get(t.name) !== t) changed.push(t);
    if (sent !== null) {
      for (const [name, t] of sent.topics) {
        const now = snapshot.topics.get(name);
        if (now === undefined || now.topicId !== t.topicId) deleted.push(t.topicId);
      }
    }
    const message: ControlToWorker = {
      type: 'metadata',
      version: snapshot.version,
      full: sent === null,
      brokers: [...snapshot.brokers.values()],
      topics: changed,
      deletedTopicIds: deleted,
    };
    for (const port of this.options.workerPorts) port.postMessage(message);
    this.workerSent = { version: snapshot.version, topics: new Map(snapshot.topics) };
  }

  // ---- Partition workers: ISR changes their partition leaders ask for ----

  private onWorkerMessage(port: MessagePort, message: WorkerToControl): void {
    assert(
      message.type === 'alter_isr',
      `unknown message from a partition worker: ${JSON.stringify(message)}`,
    );
    const answer = (refusals: readonly (string | null)[] | null, failureText: string | null) => {
      const result: ControlToWorker = {
        type: 'alter_isr_result',
        requestId: message.requestId,
        refusals,
        failure: failureText,
      };
      port.postMessage(result);
    };
    this.admin({ kind: 'alter_isr', changes: message.changes }).then(
      (r) => {
        if (r.kind === 'partitions_changed') answer(r.refusals, null);
        else answer(null, r.kind === 'failed' ? r.message : `unexpected answer ${r.kind}`);
      },
      (error: unknown) => answer(null, String(error)),
    );
  }

  // ---- Controlled shutdown ----

  /**
   * Marks this broker shutting down (or no longer), through the metadata leader. When marking, waits until the
   * controller has moved every leadership it can (each partition this node leads has nobody else in its ISR),
   * bounded by `controlledShutdownTimeoutMs`.
   */
  private async setShuttingDown(shuttingDown: boolean): Promise<ControlReply> {
    if (shuttingDown) this.shuttingDown = true;
    const marked = await this.admin({
      kind: 'set_broker_shutting_down',
      brokerId: this.options.nodeId,
      shuttingDown,
    });
    if (marked.kind === 'failed' || !shuttingDown) return marked;
    const deadline = Date.now() + this.options.controlledShutdownTimeoutMs;
    const leadsMovable = () => {
      for (const t of this.sm.snapshot().topics.values()) {
        for (const p of t.partitions) if (p.leader === this.options.nodeId && p.isr.length > 1) return true;
      }
      return false;
    };
    while (leadsMovable() && Date.now() < deadline && !this.stopped) await sleep(25);
    return { kind: 'ok' };
  }

  /** A broker that starts again clears the shutting-down mark its last controlled shutdown left. */
  private clearOwnShutdownMark(): void {
    if (this.shuttingDown || this.clearingShutdownMark || this.stopped) return;
    if (this.sm.broker(this.options.nodeId)?.shuttingDown !== true) return;
    this.clearingShutdownMark = true;
    void this.admin({
      kind: 'set_broker_shutting_down',
      brokerId: this.options.nodeId,
      shuttingDown: false,
    }).then((r) => {
      this.clearingShutdownMark = false;
      if (r.kind === 'failed')
        this.log.warn({ reason: r.message }, 'could not clear the shutting-down mark yet');
    });
  }

  private onTimer(): void {
    if (this.stopped) return;
    const s = this.raft.status();
    this.noteCoordinator(s);
    if (!this.readySent && this.readyAtIndex < 0 && s.leaderId !== '') this.onSoftState();
    if (this.readySent) this.clearOwnShutdownMark();
    if (s.role === 'leader') this.reconcile();
  }

  // ---- Admin requests: run on the leader, forwarded from anywhere else ----

  private async admin(request: AdminRequest): Promise<ControlReply> {
    const deadline = Date.now() + this.options.forwardTimeoutMs;
    /** Why the last try failed when a retry may help (a leader whose disk fails is soon replaced). */
    let lastReason = '';
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) return failure('no_leader', 'this node is shutting down; nothing was proposed');
      const s = this.raft.status();
      let answer: AdminReply;
      if (s.role === 'leader') {
        // Bounded like a forwarded call: a proposal that is not applied in time has an unknown outcome.
        answer = await withDeadline(this.adminAsLeader(request), deadline, () => ({
          kind: 'failed_indefinite',
          index: 0,
          topic: null,
          reason: `the change was proposed but not applied within ${this.options.forwardTimeoutMs} ms; it may or may not have been made`,
          leaderId: this.options.nodeId,
        }));
        // This node's own storage fails: it cannot lead, and it cannot learn who does while it is out of the
        // group. Nothing was proposed: a definite answer, at once.
        if (answer.kind === 'storage_failed') return failure('no_leader', answer.reason);
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
      if (answer.kind === 'not_leader' || answer.kind === 'retry' || answer.kind === 'storage_failed') {
        // A forwarded request met a leader whose disk fails: its followers elect another leader soon.
        if (answer.kind === 'storage_failed') lastReason = answer.reason;
        if (Date.now() + 50 >= deadline) {
          return failure(
            'no_leader',
            lastReason !== ''
              ? `${lastReason}; no other metadata leader took over within ${this.options.forwardTimeoutMs} ms`
              : `no metadata leader answered within ${this.options.forwardTimeoutMs} ms`,
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
          const stall = this.raft.storageStall();
          const why =
            stall === undefined
              ? ''
              : ` (this node cannot write its Raft log: ${stall.code}, ${stall.message})`;
          return failure(
            'no_leader',
            `the change was committed at index ${answer.index} but not yet applied here${why}`,
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
      case 'alter_isr':
        command = { kind: 'alter_isr', changes: request.changes };
        break;
      case 'allocate_producer_id':
        command = { kind: 'allocate_producer_id' };
        break;
      case 'reassign_partitions':
        command = { kind: 'reassign_partitions', changes: request.changes, nowMs: request.nowMs };
        break;
      case 'create_acls':
        command = { kind: 'create_acls', acls: request.acls };
        break;
      case 'delete_acls':
        command = { kind: 'delete_acls', filter: request.filter };
        break;
      case 'add_partitions': {
        const placed = this.placeMorePartitions(request.name, request.count);
        if (typeof placed === 'string') return reply('invalid', 0, null, placed);
        if (placed === null) return reply('unknown', 0, null);
        command = placed;
        break;
      }
      case 'elect_preferred_leaders':
        // Not a command of its own: the controller decides the elections, with the delay waived, and proposes
        // them as it does every other (compare-and-set on each partition epoch).
        this.controller.electPreferredLeadersNow();
        this.reconcile();
        return reply('ok', 0, null);
      case 'set_broker_shutting_down':
        command = {
          kind: 'set_broker_shutting_down',
          brokerId: request.brokerId,
          shuttingDown: request.shuttingDown,
        };
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
      case 'storage_failed':
        return {
          kind: 'storage_failed',
          index: 0,
          topic: null,
          reason: `the metadata leader ${this.options.nodeId} cannot write its Raft log in ${join(this.options.dataDir, 'raft')} (${outcome.stall.code}: ${outcome.stall.message}); nothing was proposed`,
          leaderId: this.options.nodeId,
        };
    }
  }

  /**
   * The command that grows a topic to `count` partitions, the new ones placed as a new topic's would be;
   * null for an unknown topic, a string saying why not.
   */
  private placeMorePartitions(name: string, count: number): MetadataCommand | string | null {
    const t = this.sm.topic(name);
    if (t === undefined) return null;
    if (count <= t.numPartitions) {
      return `topic '${name}' has ${t.numPartitions} partitions; their number can only grow (asked for ${count})`;
    }
    const candidates = [...this.sm.snapshot().brokers.values()]
      .filter((b) => !b.fenced && !b.shuttingDown)
      .map((b) => ({
        id: b.id,
        rack: b.rack,
        alive: this.isAlive(b.id),
        healthy: b.id === this.options.nodeId || this.gossip?.member(b.id)?.state === 'alive',
      }));
    const placed = placeTopicReplicas(
      candidates,
      count - t.numPartitions,
      t.replicationFactor,
      t.rackAwareness,
      Math.floor(Math.random() * Math.max(1, candidates.length)),
    );
    if (placed.kind === 'error') return placed.reason;
    return {
      kind: 'add_partitions',
      name,
      topicId: t.topicId,
      partitions: placed.partitions.map((p, i) => ({
        partition: t.numPartitions + i,
        leader: p.replicas[0]!,
        leaderEpoch: 0,
        partitionEpoch: 0,
        replicas: [...p.replicas],
        isr: [...p.isr],
      })),
    };
  }

  /** Decides a new topic's id, placement and creation time: the state machine only checks them. */
  private placeTopic(request: Extract<AdminRequest, { kind: 'create_topic' }>): TopicMetadata | string {
    const r = request.request;
    const candidates = [...this.sm.snapshot().brokers.values()]
      .filter((b) => !b.fenced && !b.shuttingDown)
      .map((b) => ({
        id: b.id,
        rack: b.rack,
        alive: this.isAlive(b.id),
        healthy: b.id === this.options.nodeId || this.gossip?.member(b.id)?.state === 'alive',
      }));
    const settled = settleDefaultReplication(r, candidates.length);
    const placed = placeTopicReplicas(
      candidates,
      r.numPartitions,
      settled.replicationFactor,
      r.rackAwareness,
      Math.floor(Math.random() * Math.max(1, candidates.length)),
    );
    if (placed.kind === 'error') return placed.reason;
    return {
      name: r.name,
      topicSeq: 0,
      topicId: randomUUID(),
      numPartitions: r.numPartitions,
      replicationFactor: settled.replicationFactor,
      rackAwareness: r.rackAwareness,
      config: settled.config,
      partitions: placed.partitions.map((p, partition) => ({
        partition,
        leader: p.replicas[0]!,
        leaderEpoch: 0,
        partitionEpoch: 0,
        replicas: [...p.replicas],
        isr: [...p.isr],
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
    // Every expected failure (lost leadership, a full queue, a failing disk, a refused conf change) comes back
    // as a value and ends this round; the next round retries. A rejection is a bug (a failed assertion): it
    // is left unhandled, which stops the control thread and with it the broker.
    void this.reconcileOnce().then(() => {
      this.reconcileRunning = false;
    });
  }

  private async reconcileOnce(): Promise<void> {
    if (this.raft.status().role !== 'leader') return;
    const status = this.raft.status();
    const progress = this.raft.progress();
    const actions: ControllerAction[] = this.controller.decide({
      nowMs: Date.now(),
      metadata: this.sm.snapshot(),
      members: this.gossipMembers().map(memberView),
      raft: {
        voters: status.conf.voters,
        learners: status.conf.learners,
        commit: status.commit,
        match: new Map([...(progress?.entries() ?? [])].map(([id, p]) => [id, p.match])),
        confChangePending: this.confChangeInFlight,
      },
    });
    // Each decision is compare-and-set on the state it was made from; one that lost a race is refused and
    // decided again from the newer state next round.
    for (const action of actions) {
      if (this.raft.status().role !== 'leader' || this.stopped) return;
      if (action.kind === 'propose') {
        const answer = await this.proposeCommand(action.command);
        this.noteControllerOutcome(action.command, answer);
      } else {
        const b = this.sm.broker(action.change.nodeId);
        if (b !== undefined) this.notePeerFromRegistry(b);
        await this.confChange(action.change);
      }
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
  }

  /** Logs the controller's partition decisions: elections (unclean ones loudly) and offline partitions. */
  private noteControllerOutcome(command: MetadataCommand, answer: AdminReply): void {
    if (command.kind !== 'elect_leaders' || answer.kind !== 'partitions_changed') return;
    const refusals = answer.refusals ?? [];
    for (const [i, e] of command.elections.entries()) {
      if ((refusals[i] ?? '') !== '') continue;
      const fields = { topic: e.topic, partition: e.partition, leader: e.leader, isr: e.isr };
      if (e.leader === '') {
        this.event(
          'partition_offline',
          fields,
          `controller: ${e.topic}-${e.partition} is offline: no in-sync replica is alive`,
        );
      } else if (e.unclean) {
        this.stats.event('unclean_leader_election');
        this.log.warn(
          { event: 'unclean_leader_election', ...fields },
          `controller: UNCLEAN leader election of ${e.topic}-${e.partition}: ${e.leader} was not in sync; records only the lost in-sync replicas held are gone`,
        );
      } else {
        this.event(
          'partition_leader_elected',
          fields,
          `controller: ${e.leader} leads ${e.topic}-${e.partition}`,
        );
      }
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
        kafka_port: g?.meta.kafkaPort ?? b?.kafkaPort ?? (id === this.options.nodeId ? this.kafkaPort : 0),
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
        storage_error:
          s.storageStall === undefined
            ? null
            : {
                code: s.storageStall.code,
                message: s.storageStall.message,
                since_ms: s.storageStall.sinceMs,
              },
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
    case 'partitions_changed':
      return {
        ...reply('partitions_changed', index, null),
        refusals: result.outcomes.map((o) => o.refusal ?? ''),
      };
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
    case 'producer_id_allocated':
      return reply('producer_id', index, null);
    case 'invalid':
      return reply('invalid', index, null, result.reason);
    case 'acls_created':
      return reply('acls_changed', index, null, JSON.stringify(result.created));
    case 'acls_deleted':
      return reply('acls_changed', index, null, JSON.stringify(result.deleted));
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
    case 'producer_id':
      assert(answer.index > 0, 'a producer id is the index of an applied entry');
      return { kind: 'producer_id', producerId: answer.index };
    case 'invalid':
      return failure('bad_request', answer.reason);
    case 'ok':
      return { kind: 'ok' };
    case 'acls_changed':
      return { kind: 'acls_changed', acls: JSON.parse(answer.reason) as AclBinding[] };
    case 'partitions_changed':
      return {
        kind: 'partitions_changed',
        refusals: (answer.refusals ?? []).map((r) => (r === '' ? null : r)),
      };
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

/** What the controller needs of a gossip member. */
function memberView(m: MemberSnapshot): MemberView {
  return {
    id: m.nodeId,
    state: m.state,
    httpHost: m.meta.httpHost,
    httpPort: m.meta.httpPort,
    clusterHost: m.meta.clusterHost,
    clusterPort: m.meta.clusterPort,
    rack: m.meta.rack,
    version: m.meta.version,
    dataPorts: m.meta.dataPorts,
    kafkaPort: m.meta.kafkaPort,
  };
}

/** `promise`, or `onTimeout()` once `deadlineMs` (a Date.now() time) passes first. */
async function withDeadline<T>(promise: Promise<T>, deadlineMs: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), Math.max(1, deadlineMs - Date.now()));
  });
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
