// One member's SWIM failure detector and membership list with hashicorp/memberlist's Lifeguard extensions, as a
// pure state machine. Inputs: `tick(nowMs)`, `receive(from, packet, nowMs)`, `join`, `leave`,
// `updateMetadata`, `seedMembers`; each returns an `Output` listing the packets to send and the membership
// events for the broker registry. The shell owns sockets and timers: it calls `tick` no later than
// `nextWakeMs()`, sends `udp` packets as datagrams and `stream` packets (push-pull) over TCP.
//
// Protocol, per probe interval (stretched by local health): ping the next member of a shuffled round-robin
// order; without an ack within the probe timeout, ask `indirectChecks` members to ping it (ping-req, answered by
// ack or, Lifeguard, by nack when they could not reach it either); without any ack by the end of the interval,
// suspect it. A suspicion becomes a death when its timer (Lifeguard: log(N)-scaled with a floor, shrinking
// with independent confirmations) expires, unless the suspect refutes with a higher incarnation first. Updates ride on every
// ping and ack and on gossip packets every gossip interval; push-pull exchanges full state on join and
// periodically. One addition to memberlist (`verifySuspicions`): while a suspicion runs, the suspecting
// member pings the suspect with the accusation, and a member hearing an accusation older than its last
// refutation answers the sender with its current alive, so a missed refutation broadcast cannot turn into
// a false death. Reconnect (serf's, at a faster pace): every `reconnectIntervalMs` a push-pull goes to one
// random member that is not alive here (held dead or left, forgotten not long ago, or a peer address the
// shell supplies, such as the Raft group's), so two sides of a partition that forgot each other merge again
// once it heals; a member whose refutation such an exchange caused tells the other side at once. Two more: a member we hold dead that sends us a packet is told so directly, so a restarted
// process under the same id refutes its old death even when its seed had forgotten it; and a tick that
// comes well after `nextWakeMs()` means this process did not run (stopped, swapped out), so every wait for
// others moves later by the stall and nothing this member did not observe becomes an accusation.
//
// Invariants: the member map holds this member under its own id, always alive unless it left; a member's
// incarnation never decreases; only the member itself raises its incarnation above what others said; every
// suspect member has a suspicion timer and no other member has one; `liveCount` equals the number of alive
// and suspect members; the member map, relays, broadcast queue, forgotten members and reconnect peers are
// bounded by configuration (membersMax); a forgotten member is never also in the member map.
//
// Kafka ports across wire versions: a message from a version-2 packet (an older build, or a relay by one)
// carries KAFKA_PORT_UNKNOWN. It never replaces a known port: a newer incarnation without one keeps the port
// known before, until a message that carries one for that incarnation arrives; an alive of the same incarnation
// that carries a port this member lacked for it fills it in (and is passed on). A port kept from an older
// incarnation is relayed as unknown, so no member takes it for the current one. Snapshots and events show an
// unknown port as 0 (none advertised yet).
// Called from the control thread only.
import { assert } from '../assert.js';
import { Awareness } from './awareness.js';
import { BroadcastQueue } from './broadcast-queue.js';
import {
  GOSSIP_DEFAULTS,
  type GossipConfig,
  pushPullIntervalScaledMs,
  type Random,
  retransmitLimit,
  suspicionConfirmationsMax,
  suspicionTimeoutMaxMs,
  suspicionTimeoutMinMs,
  validateGossipConfig,
} from './config.js';
import {
  type AliveMessage,
  type DeadMessage,
  estimateMessageBytes,
  estimatePacketOverheadBytes,
  type GossipMessage,
  KAFKA_PORT_UNKNOWN,
  type MemberMeta,
  type MemberStateName,
  type Outgoing,
  type Packet,
  type PushPullMessage,
  type PushPullState,
  type SuspectMessage,
} from './messages.js';
import { Suspicion } from './suspicion.js';

export type MemberSnapshot = {
  readonly nodeId: string;
  readonly address: string;
  readonly incarnation: number;
  readonly state: MemberStateName;
  readonly meta: MemberMeta;
};

export const MembershipEventKinds = {
  joined: 'joined',
  updated: 'updated',
  suspect: 'suspect',
  failed: 'failed',
  left: 'left',
  aliveAgain: 'alive_again',
} as const;
export type MembershipEventKind = (typeof MembershipEventKinds)[keyof typeof MembershipEventKinds];

/** A change the broker registry should hear about; `member` is the state after the change. */
export type MembershipEvent = {
  readonly kind: MembershipEventKind;
  readonly member: MemberSnapshot;
  readonly atMs: number;
};

export type Output = { readonly send: Outgoing[]; readonly events: MembershipEvent[] };

export type GossipNodeOptions = {
  readonly nodeId: string;
  /** This member's gossip address, where others send its packets. */
  readonly address: string;
  readonly meta: MemberMeta;
  readonly random: Random;
  readonly nowMs: number;
  readonly config?: GossipConfig;
  /** Starting incarnation; a restarted member may pass what it last knew to refute its old state at once. */
  readonly incarnation?: number;
};

type Member = {
  readonly nodeId: string;
  address: string;
  incarnation: number;
  state: MemberStateName;
  meta: MemberMeta;
  /** The incarnation whose message told `meta.kafkaPort`; -1 when none did (known only from version 2). */
  kafkaPortIncarnation: number;
  stateChangeMs: number;
  suspicion: Suspicion | undefined;
  removed: boolean;
};

type Probe = {
  readonly target: Member;
  readonly seqNo: number;
  directDeadlineMs: number;
  endMs: number;
  indirectSent: boolean;
  expectedNacks: number;
  nacks: number;
};

/** A member reclaimed from the member map, kept as a reconnect candidate until `reconnectTimeoutMs`. */
type Forgotten = { readonly address: string; readonly forgottenAtMs: number };

type Relay = {
  readonly requester: string;
  readonly requesterSeqNo: number;
  deadlineMs: number;
  readonly wantNack: boolean;
};

/** Room left in every UDP packet for a message count above 127 and for encoder framing the estimate ignores. */
const PACKET_SLACK_BYTES = 16;

export class GossipNode {
  readonly config: GossipConfig;
  readonly #random: Random;
  readonly #self: Member;
  readonly #members = new Map<string, Member>();
  /** Probe order: every other member, shuffled once per round; removed members are dropped at the reshuffle. */
  #probeOrder: Member[] = [];
  #probeIndex = 0;
  readonly #suspects = new Set<Member>();
  readonly #deadOrLeft = new Set<Member>();
  #liveCount = 1;
  readonly #broadcasts: BroadcastQueue;
  readonly #awareness: Awareness;
  readonly #relays = new Map<number, Relay>();
  #probe: Probe | undefined;
  #seqNo = 0;
  #nextProbeMs: number;
  #nextGossipMs: number;
  #nextPushPullMs: number;
  #nextReconnectMs: number;
  /** Reclaimed members by id, oldest first (Map insertion order). */
  readonly #forgotten = new Map<string, Forgotten>();
  /** Addresses the shell says belong to the cluster (seeds, Raft peers), reconnect candidates when not alive. */
  #reconnectPeers: readonly string[] = [];
  #leaving = false;
  #send: Outgoing[] = [];
  #events: MembershipEvent[] = [];

  constructor(options: GossipNodeOptions) {
    const config = options.config ?? GOSSIP_DEFAULTS;
    const problems = validateGossipConfig(config);
    assert(
      problems.length === 0,
      `invalid gossip config: ${problems.map((p) => `${p.field} ${p.problem}`).join('; ')}`,
    );
    this.config = config;
    this.#random = options.random;
    this.#self = {
      nodeId: options.nodeId,
      address: options.address,
      incarnation: options.incarnation ?? 0,
      state: 'alive',
      meta: options.meta,
      kafkaPortIncarnation: Number.MAX_SAFE_INTEGER,
      stateChangeMs: options.nowMs,
      suspicion: undefined,
      removed: false,
    };
    this.#members.set(options.nodeId, this.#self);
    this.#broadcasts = new BroadcastQueue(config.membersMax + 1);
    this.#awareness = new Awareness(config.awarenessMaxMultiplier);
    // Random phases keep members that start together from probing and gossiping in lockstep.
    this.#nextProbeMs = options.nowMs + this.#random.nextInt(config.probeIntervalMs);
    this.#nextGossipMs = options.nowMs + this.#random.nextInt(config.gossipIntervalMs);
    this.#nextPushPullMs = options.nowMs + this.#random.nextInt(Math.max(1, config.pushPullIntervalMs));
    this.#nextReconnectMs = options.nowMs + this.#random.nextInt(Math.max(1, config.reconnectIntervalMs));
  }

  get nodeId(): string {
    return this.#self.nodeId;
  }

  get incarnation(): number {
    return this.#self.incarnation;
  }

  /** Lifeguard local health score: 0 is healthy; timeouts are multiplied by score + 1. */
  get healthScore(): number {
    return this.#awareness.score;
  }

  /** Alive and suspect members, this one included: the N of every log(N) formula. */
  get liveCount(): number {
    return this.#liveCount;
  }

  get pendingBroadcasts(): number {
    return this.#broadcasts.size;
  }

  /** After `leave`: true once the leave notice has been sent its full number of times. */
  get leaveBroadcastDone(): boolean {
    return this.#leaving && this.#broadcasts.pending(this.#self.nodeId) === undefined;
  }

  member(nodeId: string): MemberSnapshot | undefined {
    const m = this.#members.get(nodeId);
    return m === undefined ? undefined : snapshot(m);
  }

  members(): MemberSnapshot[] {
    return [...this.#members.values()].map(snapshot);
  }

  /** The latest time by which the shell must call `tick` again. */
  nextWakeMs(): number {
    let wake = this.#nextGossipMs;
    if (!this.#leaving) {
      wake = Math.min(wake, this.#nextProbeMs);
      if (this.config.pushPullIntervalMs > 0) wake = Math.min(wake, this.#nextPushPullMs);
      if (this.config.reconnectIntervalMs > 0) wake = Math.min(wake, this.#nextReconnectMs);
    }
    const probe = this.#probe;
    if (probe !== undefined) wake = Math.min(wake, probe.indirectSent ? probe.endMs : probe.directDeadlineMs);
    for (const relay of this.#relays.values()) wake = Math.min(wake, relay.deadlineMs);
    for (const m of this.#suspects) {
      wake = Math.min(wake, m.suspicion!.deadlineMs());
      if (this.config.verifySuspicions) wake = Math.min(wake, m.suspicion!.nextVerifyMs);
    }
    return wake;
  }

  /** Advances timers: probe deadlines, suspicion timeouts, relay nacks, gossip, push-pull, reclamation. */
  tick(nowMs: number): Output {
    this.#begin();
    const lateMs = nowMs - this.nextWakeMs();
    if (lateMs > this.config.probeTimeoutMs) this.#recoverFromStall(lateMs);
    this.#expireRelays(nowMs);
    this.#expireSuspicions(nowMs);
    if (!this.#leaving) {
      this.#advanceProbe(nowMs);
      if (this.#probe === undefined && nowMs >= this.#nextProbeMs) this.#startProbe(nowMs);
      if (this.config.pushPullIntervalMs > 0 && nowMs >= this.#nextPushPullMs) this.#pushPull(nowMs);
      if (this.config.reconnectIntervalMs > 0 && nowMs >= this.#nextReconnectMs) this.#reconnect(nowMs);
    }
    if (nowMs >= this.#nextGossipMs) {
      this.#nextGossipMs = nowMs + this.config.gossipIntervalMs;
      this.#gossip(nowMs);
      this.#reclaim(nowMs);
    }
    return this.#end();
  }

  /** Handles one packet that arrived from transport address `from` (UDP source, or the stream's peer). */
  receive(from: string, packet: Packet, nowMs: number): Output {
    this.#begin();
    // Membership updates first: a ping that carries an accusation of us (Lifeguard's buddy system) is then
    // answered by an ack that already carries our refutation.
    for (const message of packet.messages) if (isUpdate(message)) this.#handle(from, packet, message, nowMs);
    for (const message of packet.messages) if (!isUpdate(message)) this.#handle(from, packet, message, nowMs);
    this.#tellTheDead(packet);
    return this.#end();
  }

  /** Starts a full-state exchange with each seed; their replies bring the member list, gossip spreads us. */
  join(seedAddresses: readonly string[]): Output {
    this.#begin();
    // Announce ourselves too: our pings and acks then spread the news, not only the seeds' gossip.
    this.#broadcasts.enqueue(this.#aliveMessage(this.#self));
    for (const address of seedAddresses) {
      if (address === this.#self.address) continue;
      this.#emit(address, 'stream', [this.#pushPullMessage(true, false)]);
    }
    return this.#end();
  }

  /**
   * Adopts known members as alive without disseminating them: a warm start from a member list the caller
   * trusts (a restarted member's last snapshot, a simulation's initial cluster). Gossip corrects it later.
   */
  seedMembers(states: readonly PushPullState[], nowMs: number): Output {
    this.#begin();
    for (const s of states) {
      if (s.state !== 'alive' || this.#members.has(s.nodeId)) continue;
      this.#addMember(s.nodeId, s.address, s.incarnation, s.meta, nowMs);
    }
    // Now that N is known, spread the first anti-entropy exchange over the full scaled interval, so members
    // started together do not all exchange state in the first base interval.
    const pushPullMs = pushPullIntervalScaledMs(this.config, this.#liveCount);
    if (pushPullMs > 0) this.#nextPushPullMs = nowMs + this.#random.nextInt(pushPullMs);
    return this.#end();
  }

  /**
   * Addresses (gossip addresses, `host:port`) of members the shell knows belong to the cluster whatever
   * gossip says: its seeds and the Raft group's peers. Each is a reconnect candidate whenever no alive member
   * has that address. Replaces the previous list; at most `membersMax` are kept.
   */
  setReconnectPeers(addresses: readonly string[]): void {
    this.#reconnectPeers = [...new Set(addresses)]
      .filter((a) => a !== this.#self.address)
      .slice(0, this.config.membersMax);
  }

  /** Announces a graceful leave; the shell keeps calling `tick` until `leaveBroadcastDone`, then closes. */
  leave(nowMs: number): Output {
    this.#begin();
    if (!this.#leaving) {
      this.#leaving = true;
      this.#probe = undefined;
      this.#self.state = 'left';
      this.#self.stateChangeMs = nowMs;
      this.#liveCount--;
      const notice: DeadMessage = {
        kind: 'dead',
        nodeId: this.#self.nodeId,
        incarnation: this.#self.incarnation,
        accuserId: this.#self.nodeId,
      };
      this.#broadcasts.enqueue(notice);
      this.#gossip(nowMs);
    }
    return this.#end();
  }

  /**
   * The shell found a suspect's process gone for certain (its cluster port refuses TCP connections: nothing
   * listens there, which a pause or a cut network never causes): declares it dead now instead of when the
   * suspicion times out. Only a suspect still at `incarnation` is declared, so a member that refuted
   * meanwhile is untouched; a false positive (a process restarted under the same id) refutes it like any
   * death it hears of.
   */
  confirmGone(nodeId: string, incarnation: number, nowMs: number): Output {
    this.#begin();
    const m = this.#members.get(nodeId);
    if (m !== undefined && m !== this.#self && m.state === 'suspect' && m.incarnation === incarnation) {
      this.#onDead({ kind: 'dead', nodeId, incarnation, accuserId: this.#self.nodeId }, nowMs);
    }
    return this.#end();
  }

  /** Publishes new metadata: a higher incarnation makes every member adopt it. */
  updateMetadata(meta: MemberMeta, nowMs: number): Output {
    this.#begin();
    assert(!this.#leaving, 'metadata update after leave');
    this.#self.meta = meta;
    this.#self.incarnation++;
    this.#self.stateChangeMs = nowMs;
    this.#broadcasts.enqueue(this.#aliveMessage(this.#self));
    return this.#end();
  }

  // --- message handling -----------------------------------------------------------------------------------

  #handle(from: string, packet: Packet, message: GossipMessage, nowMs: number): void {
    switch (message.kind) {
      case 'ping':
        // A ping meant for an earlier owner of this address is not ours to answer.
        if (message.targetId === this.#self.nodeId)
          this.#emitUdp(from, { kind: 'ack', seqNo: message.seqNo });
        return;
      case 'ping_req':
        this.#relay(from, message.seqNo, message.targetId, message.targetAddress, message.wantNack, nowMs);
        return;
      case 'ack':
        this.#onAck(message.seqNo);
        return;
      case 'nack':
        if (this.#probe !== undefined && this.#probe.seqNo === message.seqNo) this.#probe.nacks++;
        return;
      case 'alive':
        this.#onAlive(message, nowMs);
        return;
      case 'suspect':
        this.#onSuspect(message, nowMs, from);
        return;
      case 'dead':
        this.#onDead(message, nowMs, from);
        return;
      case 'push_pull': {
        const incarnationBefore = this.#self.incarnation;
        this.#merge(packet.senderId, message, nowMs);
        if (!message.isReply) {
          this.#emit(packet.senderAddress, 'stream', [this.#pushPullMessage(false, true)]);
        } else if (this.#self.incarnation > incarnationBefore) {
          // The peer holds us suspect or dead (a reconnect across a healed partition): our refutation goes
          // to it at once, since it may be the only member that holds the accusation and our gossip may not
          // reach it for a while (it is not alive in our view yet).
          this.#emitUdp(packet.senderAddress, this.#aliveMessage(this.#self));
        }
        return;
      }
    }
  }

  /**
   * A member we hold dead (or left) is sending: a restarted process under the same id, or a false positive
   * that missed its obituary. Tell it directly so it refutes with a higher incarnation; otherwise a restarted
   * member whose seed had already forgotten it would announce an incarnation everyone else ignores. Push-pull
   * is exempt: its reply already carries our whole view.
   */
  #tellTheDead(packet: Packet): void {
    const m = this.#members.get(packet.senderId);
    if (m === undefined || m === this.#self || (m.state !== 'dead' && m.state !== 'left')) return;
    if (packet.messages.some((message) => message.kind === 'push_pull')) return;
    const accuserId = m.state === 'left' ? m.nodeId : this.#self.nodeId;
    this.#emitUdp(packet.senderAddress, {
      kind: 'dead',
      nodeId: m.nodeId,
      incarnation: m.incarnation,
      accuserId,
    });
  }

  #onAck(seqNo: number): void {
    const probe = this.#probe;
    if (probe !== undefined && probe.seqNo === seqNo) {
      // Any ack, direct or relayed, proves the target alive and this member able to reach it.
      this.#awareness.apply(-1);
      this.#probe = undefined;
      return;
    }
    const relay = this.#relays.get(seqNo);
    if (relay !== undefined) {
      this.#relays.delete(seqNo);
      this.#emitUdp(relay.requester, { kind: 'ack', seqNo: relay.requesterSeqNo });
    }
  }

  #relay(
    from: string,
    seqNo: number,
    targetId: string,
    targetAddress: string,
    wantNack: boolean,
    nowMs: number,
  ) {
    if (this.#relays.size >= this.config.relaysMax) return; // Overloaded: the requester counts a missed nack.
    const localSeqNo = this.#nextSeqNo();
    this.#relays.set(localSeqNo, {
      requester: from,
      requesterSeqNo: seqNo,
      deadlineMs: nowMs + this.config.probeTimeoutMs,
      wantNack,
    });
    this.#emitUdp(targetAddress, { kind: 'ping', seqNo: localSeqNo, targetId });
  }

  #expireRelays(nowMs: number): void {
    for (const [seqNo, relay] of this.#relays) {
      if (relay.deadlineMs > nowMs) continue;
      this.#relays.delete(seqNo);
      if (relay.wantNack) this.#emitUdp(relay.requester, { kind: 'nack', seqNo: relay.requesterSeqNo });
    }
  }

  #onAlive(a: AliveMessage, nowMs: number): void {
    if (a.nodeId === this.#self.nodeId) {
      // Someone holds a newer alive about us than we sent: our own stale past (a restart). Outbid it.
      if (a.incarnation > this.#self.incarnation && !this.#leaving) this.#refute(a.incarnation);
      return;
    }
    const m = this.#members.get(a.nodeId);
    if (m === undefined) {
      if (this.#members.size >= this.config.membersMax) return;
      this.#addMember(a.nodeId, a.address, a.incarnation, a.meta, nowMs);
      this.#broadcasts.enqueue(a);
      return;
    }
    const carriesKafkaPort = a.meta.kafkaPort !== KAFKA_PORT_UNKNOWN;
    if (a.incarnation === m.incarnation && carriesKafkaPort && m.kafkaPortIncarnation < a.incarnation) {
      // The port this member missed for this incarnation (it heard the alive through a version-2 relay first).
      m.meta = { ...m.meta, kafkaPort: a.meta.kafkaPort };
      m.kafkaPortIncarnation = a.incarnation;
      if (m.state === 'alive') {
        // Only while alive: a queued alive would replace a suspicion's broadcast about the member.
        this.#broadcasts.enqueue(this.#aliveMessage(m));
        this.#event('updated', m, nowMs);
      }
      return;
    }
    if (a.incarnation <= m.incarnation) return;
    const previous = m.state;
    const meta = carriesKafkaPort ? a.meta : { ...a.meta, kafkaPort: m.meta.kafkaPort };
    const changed = m.address !== a.address || !sameMeta(m.meta, meta) || m.meta.kafkaPort !== meta.kafkaPort;
    m.incarnation = a.incarnation;
    m.address = a.address;
    m.meta = meta;
    if (carriesKafkaPort) m.kafkaPortIncarnation = a.incarnation;
    if (previous !== 'alive') this.#setState(m, 'alive', nowMs);
    this.#broadcasts.enqueue(a);
    if (previous === 'suspect' || previous === 'dead') this.#event('alive_again', m, nowMs);
    else if (previous === 'left') this.#event('joined', m, nowMs);
    else if (changed) this.#event('updated', m, nowMs);
  }

  /**
   * @param replyTo where the accusation came from, when it came in a packet: told directly if it is stale.
   * @param confirms false for suspicions merged from push-pull, which are not independent observations.
   */
  #onSuspect(s: SuspectMessage, nowMs: number, replyTo?: string, confirms = true): void {
    const m = this.#members.get(s.nodeId);
    if (m === undefined) return;
    if (m === this.#self) {
      this.#accused(s.incarnation, replyTo);
      return;
    }
    if (s.incarnation < m.incarnation) return;
    // A suspicion at a higher incarnation than ours means the member refuted the one we hold (we missed the
    // refutation): it is a new suspicion with a fresh timer, not a confirmation of the stale one.
    if (m.state === 'suspect' && s.incarnation === m.incarnation) {
      if (!confirms) return;
      // An independent confirmation shortens the timer; spreading it lets others count it too.
      if (m.suspicion!.confirm(s.accuserId)) this.#broadcasts.enqueue(s);
      return;
    }
    if (m.state === 'dead' || m.state === 'left') return;
    m.incarnation = s.incarnation;
    this.#setState(m, 'suspect', nowMs, s.accuserId);
    this.#broadcasts.enqueue(s);
    this.#event('suspect', m, nowMs);
  }

  #onDead(d: DeadMessage, nowMs: number, replyTo?: string): void {
    const m = this.#members.get(d.nodeId);
    if (m === undefined) return;
    if (m === this.#self) {
      // Even a "left" notice in our own name is refuted unless we are leaving: it is a previous life of this
      // member id, remembered by others, and would hide the restarted member until reclaimed.
      this.#accused(d.incarnation, replyTo);
      return;
    }
    if (d.incarnation < m.incarnation) return;
    if (m.state === 'dead' || m.state === 'left') return;
    m.incarnation = d.incarnation;
    const left = d.accuserId === d.nodeId;
    this.#setState(m, left ? 'left' : 'dead', nowMs);
    this.#broadcasts.enqueue(d);
    this.#event(left ? 'left' : 'failed', m, nowMs);
  }

  /** This member was accused (suspect or dead) at `incarnation` by gossip that reached it. */
  #accused(incarnation: number, replyTo: string | undefined): void {
    if (this.#leaving) return;
    if (incarnation >= this.#self.incarnation) {
      this.#refute(incarnation);
      // Being suspected while alive suggests this member is the slow one (Lifeguard).
      this.#awareness.apply(1);
    } else if (replyTo !== undefined) {
      // An accusation older than our last refutation: its sender missed the refutation, and the broadcast
      // may have run out of retransmissions. Tell the sender directly so its stale timer cannot fire.
      this.#emit(replyTo, 'udp', [this.#aliveMessage(this.#self)]);
    }
  }

  /** Raises our incarnation above `heardIncarnation` and broadcasts alive, overriding suspect and dead. */
  #refute(heardIncarnation: number): void {
    this.#self.incarnation = Math.max(this.#self.incarnation, heardIncarnation) + 1;
    this.#broadcasts.enqueue(this.#aliveMessage(this.#self));
  }

  /**
   * Merges a peer's full state. A remote "dead" becomes a suspicion here rather than a death: the peer may be
   * the one with the bad view, and a suspicion gives the member a chance to refute. A remote suspicion is
   * not an independent confirmation (the peer may only be repeating gossip), so it can start a suspicion
   * but never shortens one.
   */
  #merge(senderId: string, message: PushPullMessage, nowMs: number): void {
    for (const s of message.states) {
      switch (s.state) {
        case 'alive':
          this.#onAlive(
            { kind: 'alive', nodeId: s.nodeId, address: s.address, incarnation: s.incarnation, meta: s.meta },
            nowMs,
          );
          break;
        case 'suspect':
        case 'dead':
          this.#onSuspect(
            { kind: 'suspect', nodeId: s.nodeId, incarnation: s.incarnation, accuserId: senderId },
            nowMs,
            undefined,
            false,
          );
          break;
        case 'left':
          this.#onDead(
            { kind: 'dead', nodeId: s.nodeId, incarnation: s.incarnation, accuserId: s.nodeId },
            nowMs,
          );
          break;
      }
    }
  }

  // --- state changes --------------------------------------------------------------------------------------

  #addMember(nodeId: string, address: string, incarnation: number, meta: MemberMeta, nowMs: number): void {
    const m: Member = {
      nodeId,
      address,
      incarnation,
      state: 'alive',
      meta,
      kafkaPortIncarnation: meta.kafkaPort === KAFKA_PORT_UNKNOWN ? -1 : incarnation,
      stateChangeMs: nowMs,
      suspicion: undefined,
      removed: false,
    };
    this.#members.set(nodeId, m);
    this.#forgotten.delete(nodeId);
    this.#liveCount++;
    // Insert at a random position (swapping out the occupant to the end) so a newcomer is probed within a
    // round wherever the round is, without reshuffling everyone.
    const offset = this.#random.nextInt(this.#probeOrder.length + 1);
    this.#probeOrder.push(m);
    const last = this.#probeOrder.length - 1;
    [this.#probeOrder[offset], this.#probeOrder[last]] = [this.#probeOrder[last]!, this.#probeOrder[offset]!];
    this.#event('joined', m, nowMs);
  }

  #setState(m: Member, state: MemberStateName, nowMs: number, accuserId = this.#self.nodeId): void {
    assert(m !== this.#self, 'own state changes only through leave');
    const wasLive = m.state === 'alive' || m.state === 'suspect';
    const isLive = state === 'alive' || state === 'suspect';
    if (m.state === 'suspect') {
      m.suspicion = undefined;
      this.#suspects.delete(m);
    }
    if (m.state === 'dead' || m.state === 'left') this.#deadOrLeft.delete(m);
    // A member leaving the alive state can no longer confirm the other suspicions.
    if (m.state === 'alive' && state !== 'alive')
      for (const s of this.#suspects) s.suspicion!.withdraw(m.nodeId);
    m.state = state;
    m.stateChangeMs = nowMs;
    if (wasLive && !isLive) this.#liveCount--;
    if (!wasLive && isLive) this.#liveCount++;
    if (state === 'suspect') {
      this.#suspects.add(m);
      // Members that could confirm: those alive (not suspect) in our view, this one included, less the
      // accuser. Counting suspects would wait for confirmations that members failing together cannot send.
      const confirmers = this.#liveCount - this.#suspects.size - 1;
      m.suspicion = new Suspicion(
        nowMs,
        accuserId,
        suspicionConfirmationsMax(this.config, confirmers),
        suspicionTimeoutMinMs(this.config, this.#liveCount),
        suspicionTimeoutMaxMs(this.config, this.#liveCount),
        Math.max(0, confirmers),
      );
    }
    if (state === 'dead' || state === 'left') this.#deadOrLeft.add(m);
    assert(this.#liveCount >= 0 && this.#liveCount <= this.#members.size, 'live member count out of range');
  }

  /**
   * The shell ticked us `stallMs` after our wake time: this process did not run (stopped, swapped out, a long
   * pause). What we waited for during the stall (acks, nacks, refutations) is still unread in the socket, and
   * a Node shell runs this expired timer before it polls the socket. So every wait for others is moved later
   * by the stall: the probe, the relays and each suspicion timer measure only time this member ran, and
   * nothing we did not observe becomes an accusation. The stall also counts as one piece of Lifeguard's
   * evidence that this member is the slow one, like one missed nack. Not more: a member resuming with its
   * probe interval stretched eightfold confirms other suspicions late, which at 4 members (where every
   * confirmation is needed) held deaths past 6 s in simulation, while its own accusations are already
   * prevented by the postponement.
   */
  #recoverFromStall(stallMs: number): void {
    const probe = this.#probe;
    if (probe !== undefined) {
      probe.directDeadlineMs += stallMs;
      probe.endMs += stallMs;
      // The next probe starts when this one ends, as it would have without the stall.
      this.#nextProbeMs = Math.max(this.#nextProbeMs, probe.endMs);
    }
    for (const relay of this.#relays.values()) relay.deadlineMs += stallMs;
    for (const m of this.#suspects) m.suspicion!.postpone(stallMs);
    this.#awareness.apply(1);
  }

  #expireSuspicions(nowMs: number): void {
    for (const m of this.#suspects) {
      const suspicion = m.suspicion!;
      if (this.config.verifySuspicions && nowMs >= suspicion.nextVerifyMs && nowMs < suspicion.deadlineMs()) {
        // Verification ping carrying the accusation: an alive member that already refuted answers with its
        // current alive (see #accused), repairing a refutation this member missed; a dead one stays silent.
        suspicion.nextVerifyMs = nowMs + suspicion.verifyEveryMs;
        this.#emit(m.address, 'udp', [
          { kind: 'ping', seqNo: this.#nextSeqNo(), targetId: m.nodeId },
          { kind: 'suspect', nodeId: m.nodeId, incarnation: m.incarnation, accuserId: this.#self.nodeId },
        ]);
      }
      if (suspicion.deadlineMs() > nowMs) continue;
      this.#onDead(
        { kind: 'dead', nodeId: m.nodeId, incarnation: m.incarnation, accuserId: this.#self.nodeId },
        nowMs,
      );
    }
  }

  #reclaim(nowMs: number): void {
    for (const m of this.#deadOrLeft) {
      if (nowMs - m.stateChangeMs < this.config.deadReclaimMs) continue;
      this.#deadOrLeft.delete(m);
      this.#members.delete(m.nodeId);
      m.removed = true;
      // Kept as a reconnect candidate: if it was cut off rather than dead, this is how it is found again.
      if (this.#forgotten.size >= this.config.membersMax) {
        const oldest = this.#forgotten.keys().next().value as string;
        this.#forgotten.delete(oldest);
      }
      this.#forgotten.set(m.nodeId, { address: m.address, forgottenAtMs: nowMs });
    }
  }

  // --- probing --------------------------------------------------------------------------------------------

  #startProbe(nowMs: number): void {
    const intervalMs = this.#awareness.scale(this.config.probeIntervalMs);
    this.#nextProbeMs = nowMs + intervalMs;
    const target = this.#nextProbeTarget();
    if (target === undefined) return;
    const seqNo = this.#nextSeqNo();
    this.#probe = {
      target,
      seqNo,
      directDeadlineMs: nowMs + this.#awareness.scale(this.config.probeTimeoutMs),
      endMs: nowMs + intervalMs,
      indirectSent: false,
      expectedNacks: 0,
      nacks: 0,
    };
    const messages: GossipMessage[] = [{ kind: 'ping', seqNo, targetId: target.nodeId }];
    // Lifeguard's buddy system: tell a suspect it is suspected, so it can refute without waiting for gossip.
    if (target.state === 'suspect') {
      messages.push({
        kind: 'suspect',
        nodeId: target.nodeId,
        incarnation: target.incarnation,
        accuserId: this.#self.nodeId,
      });
    }
    this.#emit(target.address, 'udp', messages, true);
  }

  #advanceProbe(nowMs: number): void {
    const probe = this.#probe;
    if (probe === undefined) return;
    if (probe.target.removed || probe.target.state === 'dead' || probe.target.state === 'left') {
      this.#probe = undefined;
      return;
    }
    if (!probe.indirectSent && nowMs >= probe.directDeadlineMs) {
      probe.indirectSent = true;
      const relays = this.#randomMembers(
        this.config.indirectChecks,
        (m) => m.state === 'alive' && m !== probe.target,
      );
      for (const relay of relays) {
        this.#emitUdp(relay.address, {
          kind: 'ping_req',
          seqNo: probe.seqNo,
          targetId: probe.target.nodeId,
          targetAddress: probe.target.address,
          wantNack: true,
        });
      }
      probe.expectedNacks = relays.length;
    }
    if (nowMs < probe.endMs) return;
    this.#probe = undefined;
    // Lifeguard: if the relays could not reach the target either (all nacked), the fault is not ours; every
    // missing nack (or no relay at all) counts against our own health.
    const missedNacks =
      probe.expectedNacks > 0 ? probe.expectedNacks - Math.min(probe.nacks, probe.expectedNacks) : 1;
    this.#awareness.apply(missedNacks);
    if (probe.target.state === 'alive' || probe.target.state === 'suspect') {
      this.#onSuspect(
        {
          kind: 'suspect',
          nodeId: probe.target.nodeId,
          incarnation: probe.target.incarnation,
          accuserId: this.#self.nodeId,
        },
        nowMs,
      );
    }
  }

  /** Randomized round-robin: each round visits every member once in a fresh random order. */
  #nextProbeTarget(): Member | undefined {
    for (let visited = 0; visited <= this.#probeOrder.length; visited++) {
      if (this.#probeIndex >= this.#probeOrder.length) {
        this.#probeOrder = this.#probeOrder.filter((m) => !m.removed);
        shuffle(this.#probeOrder, this.#random);
        this.#probeIndex = 0;
        if (this.#probeOrder.length === 0) return undefined;
      }
      const m = this.#probeOrder[this.#probeIndex++]!;
      if (!m.removed && (m.state === 'alive' || m.state === 'suspect')) return m;
    }
    return undefined;
  }

  // --- dissemination --------------------------------------------------------------------------------------

  #gossip(nowMs: number): void {
    if (this.#broadcasts.size === 0) return;
    const targets = this.#randomMembers(this.config.gossipNodes, (m) => {
      if (m.state === 'alive' || m.state === 'suspect') return true;
      // Keep telling the recently dead: a false positive learns it was declared dead and refutes.
      return nowMs - m.stateChangeMs < this.config.gossipToTheDeadMs;
    });
    for (const target of targets) {
      const overhead =
        estimatePacketOverheadBytes(this.#self.nodeId, this.#self.address, 0) + PACKET_SLACK_BYTES;
      const updates = this.#broadcasts.take(
        this.config.udpPacketBytesMax - overhead,
        this.#retransmitLimit(),
      );
      if (updates.length === 0) return;
      this.#send.push({ to: target.address, transport: 'udp', packet: this.#packet(updates) });
    }
  }

  #pushPull(nowMs: number): void {
    this.#nextPushPullMs = nowMs + pushPullIntervalScaledMs(this.config, this.#liveCount);
    const [peer] = this.#randomMembers(1, (m) => m.state === 'alive');
    if (peer !== undefined) this.#emit(peer.address, 'stream', [this.#pushPullMessage(false, false)]);
  }

  /**
   * One push-pull with a random member that is not alive here: held dead or left, forgotten less than
   * `reconnectTimeoutMs` ago, or a reconnect peer no alive member answers for. Nothing when there is none.
   */
  #reconnect(nowMs: number): void {
    this.#nextReconnectMs = nowMs + this.#scaledIntervalMs(this.config.reconnectIntervalMs);
    for (const [nodeId, f] of this.#forgotten) {
      if (nowMs - f.forgottenAtMs < this.config.reconnectTimeoutMs) break;
      this.#forgotten.delete(nodeId);
    }
    const liveAddresses = new Set<string>();
    const candidates: string[] = [];
    for (const m of this.#members.values()) {
      if (m.state === 'alive' || m.state === 'suspect') liveAddresses.add(m.address);
      else candidates.push(m.address);
    }
    for (const f of this.#forgotten.values()) candidates.push(f.address);
    for (const address of this.#reconnectPeers) candidates.push(address);
    const eligible = candidates.filter((a) => a !== this.#self.address && !liveAddresses.has(a));
    if (eligible.length === 0) return;
    const target = eligible[this.#random.nextInt(eligible.length)]!;
    this.#emit(target, 'stream', [this.#pushPullMessage(false, false)]);
  }

  /** An interval that grows by one step per doubling of N beyond 32, as memberlist scales push-pull. */
  #scaledIntervalMs(baseMs: number): number {
    return pushPullIntervalScaledMs({ ...this.config, pushPullIntervalMs: baseMs }, this.#liveCount);
  }

  #pushPullMessage(join: boolean, isReply: boolean): PushPullMessage {
    const states: PushPullState[] = [];
    for (const m of this.#members.values()) {
      states.push({
        nodeId: m.nodeId,
        address: m.address,
        incarnation: m.incarnation,
        state: m.state,
        meta: this.#wireMeta(m),
      });
    }
    return { kind: 'push_pull', join, isReply, states };
  }

  #retransmitLimit(): number {
    return retransmitLimit(this.config, this.#liveCount);
  }

  // --- output helpers -------------------------------------------------------------------------------------

  #emitUdp(to: string, message: GossipMessage): void {
    this.#emit(to, 'udp', [message], true);
  }

  /** Queues a packet; UDP packets carry as many pending updates as fit the packet budget. */
  #emit(to: string, transport: 'udp' | 'stream', messages: GossipMessage[], piggyback = false): void {
    if (transport === 'udp') {
      let bytes = estimatePacketOverheadBytes(this.#self.nodeId, this.#self.address, 0) + PACKET_SLACK_BYTES;
      for (const message of messages) bytes += estimateMessageBytes(message);
      assert(bytes <= this.config.udpPacketBytesMax, 'a protocol message alone exceeds the UDP budget');
      if (piggyback) {
        messages.push(
          ...this.#broadcasts.take(this.config.udpPacketBytesMax - bytes, this.#retransmitLimit()),
        );
      }
    }
    this.#send.push({ to, transport, packet: this.#packet(messages) });
  }

  #packet(messages: GossipMessage[]): Packet {
    return { senderId: this.#self.nodeId, senderAddress: this.#self.address, messages };
  }

  #aliveMessage(m: Member): AliveMessage {
    return {
      kind: 'alive',
      nodeId: m.nodeId,
      address: m.address,
      incarnation: m.incarnation,
      meta: this.#wireMeta(m),
    };
  }

  /** A member's meta as sent: a Kafka port not told for its current incarnation goes out as unknown. */
  #wireMeta(m: Member): MemberMeta {
    if (m === this.#self || m.kafkaPortIncarnation >= m.incarnation) return m.meta;
    if (m.meta.kafkaPort === KAFKA_PORT_UNKNOWN) return m.meta;
    return { ...m.meta, kafkaPort: KAFKA_PORT_UNKNOWN };
  }

  #event(kind: MembershipEventKind, m: Member, nowMs: number): void {
    this.#events.push({ kind, member: snapshot(m), atMs: nowMs });
  }

  #randomMembers(k: number, accept: (m: Member) => boolean): Member[] {
    // memberlist's kRandomNodes: bounded random draws, so the cost stays O(k) however large the list.
    const chosen: Member[] = [];
    const order = this.#probeOrder;
    if (order.length === 0) return chosen;
    for (let draws = 0; draws < 3 * order.length && draws < 64 + 8 * k && chosen.length < k; draws++) {
      const m = order[this.#random.nextInt(order.length)]!;
      if (m.removed || chosen.includes(m) || !accept(m)) continue;
      chosen.push(m);
    }
    return chosen;
  }

  #nextSeqNo(): number {
    this.#seqNo = (this.#seqNo + 1) % 0x7fffffff;
    return this.#seqNo;
  }

  #begin(): void {
    assert(
      this.#send.length === 0 && this.#events.length === 0,
      'output of a previous call was not returned',
    );
  }

  #end(): Output {
    const output = { send: this.#send, events: this.#events };
    this.#send = [];
    this.#events = [];
    return output;
  }
}

function isUpdate(message: GossipMessage): boolean {
  return message.kind === 'alive' || message.kind === 'suspect' || message.kind === 'dead';
}

function snapshot(m: Member): MemberSnapshot {
  // Outside the core an unknown Kafka port reads as none (yet): the registry and Metadata skip a 0.
  const meta = m.meta.kafkaPort === KAFKA_PORT_UNKNOWN ? { ...m.meta, kafkaPort: 0 } : m.meta;
  return { nodeId: m.nodeId, address: m.address, incarnation: m.incarnation, state: m.state, meta };
}

function sameMeta(a: MemberMeta, b: MemberMeta): boolean {
  return (
    a.httpHost === b.httpHost &&
    a.httpPort === b.httpPort &&
    a.clusterHost === b.clusterHost &&
    a.clusterPort === b.clusterPort &&
    a.rack === b.rack &&
    a.version === b.version
  );
}

function shuffle<T>(items: T[], random: Random): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}
