// Deterministic simulation of a gossip cluster: many GossipNode cores, a simulated clock advanced in fixed
// steps, and a seeded network with loss and delay. Members can be killed (stop for good), paused (stop
// processing and sending, then resume and drain the backlog their socket buffered), restarted (a fresh
// process under a killed member's id and address, joining through a seed) and added (a real join through
// push-pull with a seed). A resumed member runs its late timers either after its backlog or, as Node's event
// loop does (timers phase before the poll phase), before it. Everything random derives from one seed, so a run replays exactly.
// Records membership events and per-member traffic for the measurements the tests and the benchmark make.
// Single-threaded; used by test/sim/gossip-*.test.ts and bench/gossip-sim.ts.
import { assert } from '../../src/core/assert.js';
import { GOSSIP_DEFAULTS, type GossipConfig, type Random } from '../../src/core/gossip/config.js';
import {
  estimatePacketBytes,
  type MemberMeta,
  type Outgoing,
  type Packet,
  type PushPullState,
} from '../../src/core/gossip/messages.js';
import { GossipNode, type MembershipEventKind, type Output } from '../../src/core/gossip/node.js';

/** sfc32 seeded through splitmix32: small, fast, and good enough for simulation choices. */
export class SeededRandom implements Random {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = next();
    this.#b = next();
    this.#c = next();
    this.#d = next();
    for (let i = 0; i < 12; i++) this.#next32();
  }

  #next32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  nextFloat(): number {
    return this.#next32() / 0x1_0000_0000;
  }

  nextInt(n: number): number {
    assert(Number.isInteger(n) && n >= 1, 'nextInt needs a positive integer bound');
    return Math.floor(this.nextFloat() * n);
  }
}

export type SimOptions = {
  readonly members: number;
  readonly seed: number;
  /** Probability that a UDP packet is lost; stream (TCP) packets are never lost, only delayed. */
  readonly lossRate?: number;
  readonly delayMinMs?: number;
  readonly delayMaxMs?: number;
  readonly stepMs?: number;
  readonly config?: GossipConfig;
  /** Datagrams a paused member's socket buffers; beyond it they are dropped, as a full kernel buffer would. */
  readonly backlogMax?: number;
  /**
   * What a resumed member does first: drain its socket backlog, or tick its expired timers (Node runs the
   * timers phase of its event loop before polling sockets, so a real shell sees the late tick first).
   */
  readonly resumeOrder?: 'backlog_first' | 'timers_first';
};

type Status = 'up' | 'paused' | 'killed';

type SimMember = {
  readonly index: number;
  readonly id: string;
  readonly address: string;
  node: GossipNode;
  createdAtMs: number;
  status: Status;
  /** Once paused, a member's view lags by its pause, which detection time must not charge to the protocol. */
  everPaused: boolean;
  resumeAtMs: number;
  wakeMs: number;
  backlog: { from: string; packet: Packet }[];
  udpPackets: number;
  udpBytes: number;
  streamPackets: number;
  streamBytes: number;
};

export type RecordedEvent = {
  readonly atMs: number;
  readonly observer: string;
  readonly kind: MembershipEventKind;
  readonly subject: string;
};

export type Traffic = {
  readonly udpPacketsPerSec: number;
  readonly udpBytesPerSec: number;
  readonly streamPacketsPerSec: number;
  readonly streamBytesPerSec: number;
};

type InFlight = {
  readonly atMs: number;
  readonly order: number;
  readonly from: string;
  readonly out: Outgoing;
};

/** Binary min-heap on (atMs, order): deliveries in time order, ties in send order. */
class DeliveryHeap {
  readonly #items: InFlight[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): InFlight | undefined {
    return this.#items[0];
  }

  push(item: InFlight): void {
    const items = this.#items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): InFlight | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && before(items[l]!, items[m]!)) m = l;
        if (r < items.length && before(items[r]!, items[m]!)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: InFlight, b: InFlight): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.order < b.order);
}

export function memberMeta(index: number): MemberMeta {
  return {
    httpHost: `10.0.${index >> 8}.${index & 255}`,
    httpPort: 8080,
    clusterHost: `10.0.${index >> 8}.${index & 255}`,
    clusterPort: 9092,
    rack: `rack-${index % 3}`,
    version: '0.1.0',
    dataPorts: [],
    kafkaPort: 0,
  };
}

export class GossipSim {
  nowMs = 0;
  readonly events: RecordedEvent[] = [];
  readonly killedAtMs = new Map<string, number>();
  /** Restart time of a killed member; a member is killed and restarted at most once per run. */
  readonly restartedAtMs = new Map<string, number>();
  readonly options: Required<SimOptions>;
  readonly #members: SimMember[] = [];
  readonly #byAddress = new Map<string, SimMember>();
  readonly #byId = new Map<string, SimMember>();
  readonly #network: SeededRandom;
  readonly #inFlight = new DeliveryHeap();
  /** Group of each member address while the network is partitioned; empty when whole. */
  readonly #groupOf = new Map<string, number>();
  #order = 0;
  packetsDelivered = 0;
  packetsLost = 0;

  constructor(options: SimOptions) {
    this.options = {
      lossRate: 0,
      delayMinMs: 0.5,
      delayMaxMs: 5,
      stepMs: 2,
      config: GOSSIP_DEFAULTS,
      backlogMax: 4096,
      resumeOrder: 'backlog_first',
      ...options,
    };
    this.#network = new SeededRandom(options.seed ^ 0x5eed);
    for (let i = 0; i < options.members; i++) this.#create(i);
    // Warm start: every member begins knowing every other as alive at incarnation 0, as after a completed
    // bootstrap. Joins during the run go through the real push-pull path.
    const states: PushPullState[] = this.#members.map((m) => ({
      nodeId: m.id,
      address: m.address,
      incarnation: 0,
      state: 'alive',
      meta: memberMeta(m.index),
    }));
    for (const m of this.#members) {
      m.node.seedMembers(states, 0);
      m.wakeMs = m.node.nextWakeMs();
    }
  }

  get members(): readonly SimMember[] {
    return this.#members;
  }

  idOf(index: number): string {
    return this.#members[index]!.id;
  }

  node(id: string): GossipNode {
    return this.#byId.get(id)!.node;
  }

  status(id: string): Status {
    return this.#byId.get(id)!.status;
  }

  kill(id: string): void {
    const m = this.#byId.get(id)!;
    m.status = 'killed';
    m.backlog = [];
    this.killedAtMs.set(id, this.nowMs);
  }

  pause(id: string, durationMs: number): void {
    const m = this.#byId.get(id)!;
    assert(m.status === 'up', 'only a running member can be paused');
    m.status = 'paused';
    m.everPaused = true;
    m.resumeAtMs = this.nowMs + durationMs;
  }

  /**
   * Starts a fresh process under killed member `id` (same address, new core at `incarnation`, by default 0)
   * that joins through `seedId`, as a restarted broker would.
   */
  restart(id: string, seedId: string, incarnation?: number): void {
    const m = this.#byId.get(id)!;
    assert(m.status === 'killed' && !this.restartedAtMs.has(id), 'only a killed member restarts, once');
    m.node = this.#newNode(m.index, this.restartedAtMs.size + 1, incarnation);
    m.status = 'up';
    m.createdAtMs = this.nowMs;
    this.restartedAtMs.set(id, this.nowMs);
    this.#dispatch(m, m.node.join([this.#byId.get(seedId)!.address]), this.nowMs);
    m.wakeMs = m.node.nextWakeMs();
  }

  /**
   * Time from `sinceMs` until every other running member recorded `subject` back (`joined` or `alive_again`)
   * and does not hold it dead now; Infinity if some member does not. A later suspicion from packet loss, refuted
   * as usual, does not count against the restart.
   */
  aliveAgainMs(subject: string, sinceMs: number): number {
    const firstBack = new Map<string, number>();
    for (const e of this.events) {
      if (e.subject !== subject || e.atMs < sinceMs || firstBack.has(e.observer)) continue;
      if (e.kind === 'joined' || e.kind === 'alive_again') firstBack.set(e.observer, e.atMs);
    }
    let worst = 0;
    for (const m of this.#members) {
      if (m.id === subject || m.status !== 'up') continue;
      const at = firstBack.get(m.id);
      const state = m.node.member(subject)?.state;
      if (at === undefined || (state !== 'alive' && state !== 'suspect')) return Number.POSITIVE_INFINITY;
      worst = Math.max(worst, at - sinceMs);
    }
    return worst;
  }

  /** Adds a member that joins through `seedId` with a push-pull exchange; returns its id. */
  addMember(seedId: string): string {
    const m = this.#create(this.#members.length);
    this.#dispatch(m, m.node.join([this.#byId.get(seedId)!.address]), this.nowMs);
    m.wakeMs = m.node.nextWakeMs();
    return m.id;
  }

  /**
   * Splits the network: members in different groups (a member named in no group is alone) can no longer
   * reach each other; packets already in flight across the cut are lost when they arrive.
   */
  partition(groups: readonly (readonly string[])[]): void {
    this.#groupOf.clear();
    groups.forEach((group, i) => {
      for (const id of group) this.#groupOf.set(this.#byId.get(id)!.address, i);
    });
    this.#members.forEach((m, i) => {
      if (!this.#groupOf.has(m.address)) this.#groupOf.set(m.address, groups.length + i);
    });
  }

  heal(): void {
    this.#groupOf.clear();
  }

  #cut(from: string, to: string): boolean {
    return this.#groupOf.size > 0 && this.#groupOf.get(from) !== this.#groupOf.get(to);
  }

  /** Runs until `untilMs` of simulated time. */
  runUntil(untilMs: number): void {
    const step = this.options.stepMs;
    while (this.nowMs + step <= untilMs) {
      const t = this.nowMs + step;
      for (;;) {
        const next = this.#inFlight.peek();
        if (next === undefined || next.atMs > t) break;
        this.#inFlight.pop();
        this.#deliver(next);
      }
      this.nowMs = t;
      for (const m of this.#members) {
        if (m.status === 'paused' && m.resumeAtMs <= t) this.#resume(m, t);
        if (m.status === 'up' && m.wakeMs <= t) {
          this.#dispatch(m, m.node.tick(t), t);
          m.wakeMs = m.node.nextWakeMs();
        }
      }
    }
  }

  /** Runs until `predicate` holds (checked every `checkEveryMs`) or `deadlineMs` passes; true if it held. */
  runUntilOr(predicate: () => boolean, deadlineMs: number, checkEveryMs = 50): boolean {
    while (this.nowMs < deadlineMs) {
      if (predicate()) return true;
      this.runUntil(Math.min(deadlineMs, this.nowMs + checkEveryMs));
    }
    return predicate();
  }

  /** Members still running or paused (not killed): the ones whose view must converge. */
  liveIds(): string[] {
    return this.#members.filter((m) => m.status !== 'killed').map((m) => m.id);
  }

  resetTraffic(): void {
    for (const m of this.#members) {
      m.udpPackets = 0;
      m.udpBytes = 0;
      m.streamPackets = 0;
      m.streamBytes = 0;
    }
  }

  /**
   * Mean traffic sent per running member per second over `windowMs` since `resetTraffic`: UDP (probes,
   * acks, gossip: the part SWIM keeps constant in N) and stream (push-pull full state, which grows with N).
   */
  trafficPerMember(windowMs: number): Traffic {
    const running = this.#members.filter((m) => m.status === 'up');
    const total = { udpPackets: 0, udpBytes: 0, streamPackets: 0, streamBytes: 0 };
    for (const m of running) {
      total.udpPackets += m.udpPackets;
      total.udpBytes += m.udpBytes;
      total.streamPackets += m.streamPackets;
      total.streamBytes += m.streamBytes;
    }
    const per = running.length * (windowMs / 1000);
    return {
      udpPacketsPerSec: total.udpPackets / per,
      udpBytesPerSec: total.udpBytes / per,
      streamPacketsPerSec: total.streamPackets / per,
      streamBytesPerSec: total.streamBytes / per,
    };
  }

  /**
   * For a member killed at `killedAtMs`: the time until every live member recorded it failed (or left),
   * Infinity if some live member never did.
   */
  detectionMs(subject: string): number {
    const killedAt = this.killedAtMs.get(subject);
    assert(killedAt !== undefined, `${subject} was not killed`);
    const firstByObserver = new Map<string, number>();
    for (const e of this.events) {
      if (e.subject !== subject || e.atMs < killedAt || (e.kind !== 'failed' && e.kind !== 'left')) continue;
      if (!firstByObserver.has(e.observer)) firstByObserver.set(e.observer, e.atMs);
    }
    let worst = 0;
    // Observers are the live members that existed when it was killed and were never paused; a later joiner
    // learns of the death through its first push-pull, which is join propagation, not detection.
    for (const m of this.#members) {
      if (m.id === subject || m.status === 'killed' || m.everPaused || m.createdAtMs > killedAt) continue;
      const at = firstByObserver.get(m.id);
      if (at === undefined) return Number.POSITIVE_INFINITY;
      worst = Math.max(worst, at - killedAt);
    }
    return worst;
  }

  /** Time from `sinceMs` until every other live member recorded `subject` joined; Infinity if not yet. */
  joinPropagationMs(subject: string, sinceMs: number): number {
    const seen = new Map<string, number>();
    for (const e of this.events) {
      if (e.subject === subject && e.kind === 'joined' && !seen.has(e.observer)) seen.set(e.observer, e.atMs);
    }
    let worst = 0;
    for (const m of this.#members) {
      // Members that joined later learn of it from their own join, which is measured for them.
      if (m.id === subject || m.status === 'killed' || m.createdAtMs > sinceMs) continue;
      const at = seen.get(m.id);
      if (at === undefined) return Number.POSITIVE_INFINITY;
      worst = Math.max(worst, at - sinceMs);
    }
    return worst;
  }

  /**
   * `failed` events about members that were not down at the time (never killed, not yet killed, or already
   * restarted): each one is a false positive.
   */
  falsePositives(): RecordedEvent[] {
    return this.events.filter((e) => {
      if (e.kind !== 'failed') return false;
      const killedAt = this.killedAtMs.get(e.subject);
      const restartedAt = this.restartedAtMs.get(e.subject) ?? Number.POSITIVE_INFINITY;
      return killedAt === undefined || e.atMs < killedAt || e.atMs >= restartedAt;
    });
  }

  countEvents(kind: MembershipEventKind): number {
    let n = 0;
    for (const e of this.events) if (e.kind === kind) n++;
    return n;
  }

  #newNode(index: number, life: number, incarnation?: number): GossipNode {
    const random = new SeededRandom((this.options.seed * 1_000_003 + index + life * 0x10000) >>> 0);
    return new GossipNode({
      nodeId: `m${index}`,
      address: `m${index}:7946`,
      meta: memberMeta(index),
      random,
      nowMs: this.nowMs,
      config: this.options.config,
      ...(incarnation === undefined ? {} : { incarnation }),
    });
  }

  #create(index: number): SimMember {
    const node = this.#newNode(index, 0);
    const id = node.nodeId;
    const address = `${id}:7946`;
    const m: SimMember = {
      index,
      id,
      address,
      node,
      createdAtMs: this.nowMs,
      status: 'up',
      everPaused: false,
      resumeAtMs: 0,
      wakeMs: node.nextWakeMs(),
      backlog: [],
      udpPackets: 0,
      udpBytes: 0,
      streamPackets: 0,
      streamBytes: 0,
    };
    this.#members.push(m);
    this.#byAddress.set(address, m);
    this.#byId.set(id, m);
    return m;
  }

  #resume(m: SimMember, t: number): void {
    m.status = 'up';
    // The process picks up where it stopped: the datagrams its socket buffered and its late timers, in the
    // configured order.
    if (this.options.resumeOrder === 'timers_first') this.#dispatch(m, m.node.tick(t), t);
    const backlog = m.backlog;
    m.backlog = [];
    for (const b of backlog) this.#dispatch(m, m.node.receive(b.from, b.packet, t), t);
    m.wakeMs = Math.min(m.node.nextWakeMs(), t);
  }

  #deliver(flight: InFlight): void {
    const to = this.#byAddress.get(flight.out.to);
    if (to === undefined || to.status === 'killed') return;
    if (this.#cut(flight.from, flight.out.to)) {
      this.packetsLost++;
      return;
    }
    this.packetsDelivered++;
    if (to.status === 'paused') {
      if (to.backlog.length < this.options.backlogMax)
        to.backlog.push({ from: flight.from, packet: flight.out.packet });
      return;
    }
    this.#dispatch(to, to.node.receive(flight.from, flight.out.packet, flight.atMs), flight.atMs);
    to.wakeMs = to.node.nextWakeMs();
  }

  /** Sends `output` of a call `from` made at `atMs` and records its events. */
  #dispatch(from: SimMember, output: Output, atMs: number): void {
    const { lossRate, delayMinMs, delayMaxMs } = this.options;
    const config = this.options.config;
    for (const out of output.send) {
      const bytes = estimatePacketBytes(out.packet);
      if (out.transport === 'stream') {
        from.streamPackets++;
        from.streamBytes += bytes;
      } else {
        from.udpPackets++;
        from.udpBytes += bytes;
        assert(bytes <= config.udpPacketBytesMax, `udp packet of ${bytes} bytes exceeds the budget`);
        if (this.#network.nextFloat() < lossRate) {
          this.packetsLost++;
          continue;
        }
      }
      const delay = delayMinMs + this.#network.nextFloat() * (delayMaxMs - delayMinMs);
      this.#inFlight.push({ atMs: atMs + delay, order: this.#order++, from: from.address, out });
    }
    for (const e of output.events) {
      this.events.push({ atMs: e.atMs, observer: from.id, kind: e.kind, subject: e.member.nodeId });
    }
  }
}
