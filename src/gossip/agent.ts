// A running gossip member: owns one GossipNode (the pure SWIM/Lifeguard core) and one GossipTransport, and is
// the only place where the two meet the clock. It calls `tick` from a timer armed at `nextWakeMs()`, feeds
// every received packet to `receive`, sends every Outgoing and hands membership events to its listeners.
//
// Joining: while this member knows no other live member and has somewhere to go (seeds, or peers the owner
// names with `setPeers`, such as the Raft group's), it retries a join with every seed and peer with capped,
// jittered exponential backoff: members started together in any order (docker-compose, systemd, pm2) find
// each other whoever listens first. Seed host names are resolved with DNS on every attempt, because container
// addresses change across restarts; the resolved addresses and the peers also become the core's reconnect
// peers, so a partition that heals merges through them. Every attempt is logged at debug, every failed
// target at warn (one line per target per backoff step while the backoff grows; once it is at its cap, one
// per target per minute, the others at debug), the join at info. A member that loses every other
// member (all dead or left) starts joining again.
//
// Invariants: time enters the core only as `monotonicNowMs()` values passed in (a wall-clock jump must not look
// like a stall or fire timers early); at most one tick timer and one join timer are armed, and
// none once stopped; outputs are applied in the order the core produced them; after `stop()` or `abort()`
// resolves no socket, timer or listener call remains. Self-contained (no main-thread state, no
// uWebSockets.js) so that it can run inside the control worker thread; one agent belongs to one thread.
import { randomInt } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { ClusterPort } from '../cluster/port.js';
import { assert } from '../core/assert.js';
import type { GossipConfig } from '../core/gossip/config.js';
import { GOSSIP_DEFAULTS } from '../core/gossip/config.js';
import type { MemberMeta, Packet } from '../core/gossip/messages.js';
import { GossipNode, type MemberSnapshot, type MembershipEvent, type Output } from '../core/gossip/node.js';
import type { WireVersion } from '../core/gossip/wire-versions.js';
import { createPrng } from '../core/prng.js';
import {
  GossipTransport,
  parseAddress,
  type StreamOutcome,
  type TransportLimits,
  type TransportStats,
} from './transport.js';

/** Milliseconds on a clock that never jumps, with the epoch of `Date.now()` so values read as times. */
function monotonicNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The log calls the agent makes; a pino logger fits. */
export interface AgentLog {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

const silentLog: AgentLog = { debug() {}, info() {}, warn() {} };

/** Resolves a host name to IPv4 addresses (the cluster port's UDP socket is udp4). */
export type HostResolver = (host: string) => Promise<readonly string[]>;

const dnsResolver: HostResolver = async (host) =>
  (await lookup(host, { all: true, family: 4 })).map((a) => a.address);

export type JoinBackoff = {
  /** Wait before the second attempt; each later wait doubles, up to `maxMs`. */
  readonly initialMs: number;
  readonly maxMs: number;
  /** Each wait is scaled by a random factor in [1 - jitter, 1 + jitter], so members do not retry in step. */
  readonly jitter: number;
};

/**
 * Nodes started together come up within a few hundred ms of each other, so the first retries are quick; the
 * cap keeps a member whose seeds are gone for good at one attempt per seed every 5 s (logged each time).
 */
export const JOIN_BACKOFF_DEFAULTS: JoinBackoff = { initialMs: 200, maxMs: 5_000, jitter: 0.2 };

/** Once the join backoff is at its cap, a target that keeps failing is warned about at most this often. */
const joinWarnEveryMs = 60_000;
/** A refused connection comes back within a round trip; anything slower is not a refusal. */
const goneCheckTimeoutMs = 1_000;

/** What the agent reports about joining, for the owner's metrics. */
export type JoinEvent =
  | { readonly kind: 'attempt'; readonly target: string }
  | { readonly kind: 'failed'; readonly target: string; readonly reason: string }
  | { readonly kind: 'joined'; readonly through: string };

export type GossipAgentOptions = {
  readonly nodeId: string;
  /** Interface to bind for UDP and TCP. */
  readonly host: string;
  /** Gossip port; 0 lets the system choose (tests). */
  readonly port: number;
  /** The host others use to reach this member; defaults to `host`. */
  readonly advertiseHost?: string;
  readonly meta: MemberMeta;
  readonly config?: GossipConfig;
  /** Starting incarnation: a restarted member may pass one above what it last announced. */
  readonly incarnation?: number;
  /** Transport bounds; `udpPacketBytesMax` always comes from the gossip config. */
  readonly transport?: Partial<Omit<TransportLimits, 'udpPacketBytesMax'>>;
  /** 2 makes the member speak only gossip wire version 2, as builds before version 3 do (tests). */
  readonly wireVersionMax?: WireVersion;
  /** Seed of the core's PRNG; drawn from the system CSPRNG when absent. Fixed only to replay a run. */
  readonly seed?: number;
  /**
   * The node's shared cluster port, to gossip on instead of binding `host:port` (then `port` is 0 or its
   * number); the agent never closes it.
   */
  readonly clusterPort?: ClusterPort;
  readonly log?: AgentLog;
  /** DNS for seed host names; the system resolver (IPv4) by default. */
  readonly resolve?: HostResolver;
  readonly joinBackoff?: JoinBackoff;
  /** Told about every join attempt, failure and success. */
  readonly onJoinEvent?: (event: JoinEvent) => void;
};

export type StopResult = {
  /** True when the leave notice was sent its full number of times before the sockets closed. */
  readonly leaveBroadcastDone: boolean;
};

export type MembershipListener = (event: MembershipEvent) => void;

const AgentStates = {
  created: 'created',
  running: 'running',
  leaving: 'leaving',
  stopped: 'stopped',
} as const;
type AgentState = (typeof AgentStates)[keyof typeof AgentStates];

export class GossipAgent {
  readonly options: GossipAgentOptions;
  readonly config: GossipConfig;
  /** The PRNG seed, logged by whoever starts the agent so that a core decision sequence can be replayed. */
  readonly seed: number;
  #state: AgentState = 'created';
  #node: GossipNode | undefined;
  #transport: GossipTransport | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Members whose cluster port is being checked (see #checkGone). */
  readonly #goneChecks = new Set<string>();
  readonly #listeners = new Set<MembershipListener>();
  /** Resolves `stop()` once the leave broadcast is done; checked after every tick while leaving. */
  #leaveDone: (() => void) | undefined;
  readonly #log: AgentLog;
  #seeds: readonly string[] = [];
  /** Gossip addresses of members the owner knows of (the Raft group's), tried like seeds. */
  #peers: readonly string[] = [];
  /** Seeds as last resolved, for the core's reconnect peers between attempts. */
  #resolvedSeeds: readonly string[] = [];
  #joinTimer: NodeJS.Timeout | undefined;
  /** Attempts since the join loop last started; sets the backoff. */
  #joinAttempts = 0;
  /** True while a join attempt or its timer is pending. */
  #joining = false;
  /** Bumped whenever a join loop starts or stops, so an attempt still awaiting from an older loop ends. */
  #joinGeneration = 0;
  /** When each failing target was last warned about (bounded by the seeds and peers, cleared on join). */
  readonly #joinWarnedAtMs = new Map<string, number>();

  constructor(options: GossipAgentOptions) {
    this.options = options;
    this.config = options.config ?? GOSSIP_DEFAULTS;
    this.seed = options.seed ?? randomInt(0, 2 ** 32);
    this.#log = options.log ?? silentLog;
  }

  /** This member's gossip address (`host:port`); available once `start` resolved. */
  get address(): string {
    assert(this.#transport !== undefined, 'gossip agent not started');
    return this.#transport.address;
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  get incarnation(): number {
    return this.#node?.incarnation ?? this.options.incarnation ?? 0;
  }

  get transportStats(): TransportStats | undefined {
    return this.#transport?.stats;
  }

  /** The member list as this member sees it, itself included; empty before `start`. */
  members(): MemberSnapshot[] {
    return this.#node?.members() ?? [];
  }

  member(nodeId: string): MemberSnapshot | undefined {
    return this.#node?.member(nodeId);
  }

  /** Registers a listener for membership events; returns the function that removes it. */
  onEvent(listener: MembershipListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Binds the sockets and starts joining through `seeds` (`host:port`, the host an IPv4 address or a name;
   * none for the first member). Resolves once bound; the join goes on in the background until it succeeds.
   */
  async start(options: { readonly seeds: readonly string[] }): Promise<void> {
    assert(this.#state === 'created', `gossip agent start in state ${this.#state}`);
    const transportOptions = {
      host: this.options.host,
      port: this.options.port,
      limits: { ...this.options.transport, udpPacketBytesMax: this.config.udpPacketBytesMax },
      onPacket: (from: string, packet: Packet) => this.#onPacket(from, packet),
      ...(this.options.clusterPort === undefined ? {} : { clusterPort: this.options.clusterPort }),
      ...(this.options.wireVersionMax === undefined ? {} : { wireVersionMax: this.options.wireVersionMax }),
    };
    this.#transport = await GossipTransport.open(
      this.options.advertiseHost === undefined
        ? transportOptions
        : { ...transportOptions, advertiseHost: this.options.advertiseHost },
    );
    const nodeOptions = {
      nodeId: this.options.nodeId,
      address: this.#transport.address,
      meta: this.options.meta,
      random: createPrng(this.seed),
      nowMs: monotonicNowMs(),
      config: this.config,
    };
    this.#node = new GossipNode(
      this.options.incarnation === undefined
        ? nodeOptions
        : { ...nodeOptions, incarnation: this.options.incarnation },
    );
    this.#state = 'running';
    this.#seeds = [...options.seeds];
    this.#apply({ send: [], events: [] });
    this.#maybeJoin(0);
  }

  /**
   * Gossip addresses of members known from elsewhere (the Raft configuration and broker registry): tried like
   * seeds while this member is alone, and reconnect candidates whenever they are not alive.
   */
  setPeers(addresses: readonly string[]): void {
    if (this.#state !== 'running') return;
    const own = this.#transport!.address;
    this.#peers = [...new Set(addresses)].filter((a) => a !== own);
    this.#updateReconnectPeers();
    this.#maybeJoin(0);
  }

  /** True once this member knows another live member (or has nobody to join: the first member). */
  get joined(): boolean {
    return this.#hasOtherLiveMember();
  }

  #hasOtherLiveMember(): boolean {
    const self = this.options.nodeId;
    for (const m of this.#node?.members() ?? []) {
      if (m.nodeId !== self && (m.state === 'alive' || m.state === 'suspect')) return true;
    }
    return false;
  }

  #updateReconnectPeers(): void {
    this.#node?.setReconnectPeers([...this.#resolvedSeeds, ...this.#peers]);
  }

  /** Starts the join loop (first attempt after `delayMs`) unless it runs, is not needed, or has no target. */
  #maybeJoin(delayMs: number): void {
    if (this.#state !== 'running' || this.#joining || this.#hasOtherLiveMember()) return;
    if (this.#seeds.length === 0 && this.#peers.length === 0) return;
    this.#joining = true;
    this.#joinAttempts = 0;
    const generation = ++this.#joinGeneration;
    this.#joinTimer = setTimeout(() => this.#joinAttempt(generation), delayMs);
  }

  #stopJoining(): void {
    this.#joinWarnedAtMs.clear();
    this.#joining = false;
    this.#joinGeneration++;
    clearTimeout(this.#joinTimer);
    this.#joinTimer = undefined;
  }

  /** One attempt: resolve the seeds, push-pull with every target, then schedule the next unless joined. */
  async #joinAttempt(generation: number): Promise<void> {
    this.#joinTimer = undefined;
    const current = (): boolean => this.#state === 'running' && this.#joinGeneration === generation;
    if (!current()) return;
    if (this.#hasOtherLiveMember()) {
      this.#stopJoining();
      return;
    }
    this.#joinAttempts++;
    const step = this.#joinAttempts;
    const own = this.#transport!.address;
    const resolved = await Promise.all(this.#seeds.map((seed) => this.#resolveSeed(seed, step)));
    if (!current()) return;
    this.#resolvedSeeds = [...new Set(resolved.flat())];
    this.#updateReconnectPeers();
    const targets = [...new Set([...this.#resolvedSeeds, ...this.#peers])].filter((a) => a !== own);
    const outcomes = targets.map(
      (target) =>
        new Promise<void>((done) => {
          this.#log.debug({ target, attempt: step }, 'gossip: trying to join the cluster');
          this.options.onJoinEvent?.({ kind: 'attempt', target });
          this.#sendJoin(target, (outcome) => {
            if (outcome.ok) {
              if (current()) {
                this.#stopJoining();
                this.#log.info({ through: target, attempt: step }, 'gossip: joined the cluster');
                this.options.onJoinEvent?.({ kind: 'joined', through: target });
              }
            } else {
              this.#joinFailed(
                target,
                step,
                { target, attempt: step, reason: outcome.reason },
                'gossip: could not reach a seed or peer to join through; retrying with backoff',
              );
              this.options.onJoinEvent?.({ kind: 'failed', target, reason: outcome.reason });
            }
            done();
          });
        }),
    );
    // Wait for every target's outcome (bounded by the stream timeout) before backing off, so a slow seed
    // cannot have two attempts in flight at once.
    await Promise.all(outcomes);
    if (!current()) return;
    if (this.#hasOtherLiveMember()) {
      this.#stopJoining();
      return;
    }
    const b = this.options.joinBackoff ?? JOIN_BACKOFF_DEFAULTS;
    const baseMs = Math.min(b.maxMs, b.initialMs * 2 ** (step - 1));
    const factor = 1 - b.jitter + 2 * b.jitter * (randomInt(0, 1_000_001) / 1_000_000);
    this.#joinTimer = setTimeout(() => this.#joinAttempt(generation), Math.round(baseMs * factor));
  }

  /**
   * Logs a failed join target at warn while the backoff still grows, then at most once a minute per target
   * (at debug in between), so a seed that is gone for good does not fill the log.
   */
  #joinFailed(target: string, step: number, fields: object, message: string): void {
    const b = this.options.joinBackoff ?? JOIN_BACKOFF_DEFAULTS;
    const atCap = b.initialMs * 2 ** (step - 1) >= b.maxMs;
    const nowMs = monotonicNowMs();
    const last = this.#joinWarnedAtMs.get(target);
    if (!atCap || last === undefined || nowMs - last >= joinWarnEveryMs) {
      this.#joinWarnedAtMs.set(target, nowMs);
      this.#log.warn(fields, message);
    } else {
      this.#log.debug(fields, message);
    }
  }

  /** The seed's IPv4 addresses as `ip:port`; none (logged) when its name does not resolve now. */
  async #resolveSeed(seed: string, step: number): Promise<string[]> {
    const parsed = parseAddress(seed);
    if (parsed === undefined) return [];
    if (isIP(parsed.host) !== 0) return [seed];
    try {
      const addresses = await (this.options.resolve ?? dnsResolver)(parsed.host);
      return addresses.map((ip) => `${ip}:${parsed.port}`);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? String(error);
      this.#joinFailed(
        seed,
        step,
        { seed, attempt: step, reason },
        'gossip: a seed host name does not resolve; retrying with backoff',
      );
      this.options.onJoinEvent?.({ kind: 'failed', target: seed, reason });
      return [];
    }
  }

  /** A join push-pull to `target`, its stream's outcome reported to `onOutcome`. */
  #sendJoin(target: string, onOutcome: (outcome: StreamOutcome) => void): void {
    const output = this.#node!.join([target]);
    const transport = this.#transport!;
    let reported = false;
    for (const out of output.send) {
      if (out.transport === 'stream' && out.to === target && !reported) {
        reported = true;
        transport.sendStream(out.to, out.packet, onOutcome);
      } else if (out.transport === 'udp') transport.sendUdp(out.to, out.packet);
      else transport.sendStream(out.to, out.packet);
    }
    this.#emitEvents(output.events);
    if (!reported) onOutcome({ ok: false, reason: 'nothing was sent' });
  }

  /** Publishes new metadata to the cluster (a higher incarnation makes every member adopt it). */
  updateMetadata(meta: MemberMeta): void {
    assert(this.#state === 'running', `gossip metadata update in state ${this.#state}`);
    this.#apply(this.#node!.updateMetadata(meta, monotonicNowMs()));
  }

  /**
   * Leaves gracefully: announces the leave, keeps ticking until the notice was sent its full number of times
   * or `leaveTimeoutMs` passed (by default ten gossip intervals beyond the retransmit budget), then closes.
   */
  async stop(options: { readonly leaveTimeoutMs?: number } = {}): Promise<StopResult> {
    if (this.#state === 'created' || this.#state === 'stopped') {
      await this.#shutdown();
      return { leaveBroadcastDone: false };
    }
    assert(this.#state === 'running', `gossip agent stop in state ${this.#state}`);
    this.#state = 'leaving';
    const node = this.#node!;
    const leaveTimeoutMs = options.leaveTimeoutMs ?? 40 * this.config.gossipIntervalMs;
    const done = new Promise<void>((resolve) => {
      this.#leaveDone = resolve;
    });
    let deadline: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      deadline = setTimeout(resolve, leaveTimeoutMs);
    });
    this.#apply(node.leave(monotonicNowMs()));
    await Promise.race([done, timedOut]);
    clearTimeout(deadline);
    const leaveBroadcastDone = node.leaveBroadcastDone;
    await this.#shutdown();
    return { leaveBroadcastDone };
  }

  /** Closes everything at once without leaving, as a crash would look to the others. */
  async abort(): Promise<void> {
    await this.#shutdown();
  }

  async #shutdown(): Promise<void> {
    this.#state = 'stopped';
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopJoining();
    this.#leaveDone?.();
    this.#leaveDone = undefined;
    this.#listeners.clear();
    await this.#transport?.close();
  }

  #onPacket(from: string, packet: Packet): void {
    if (this.#state !== 'running' && this.#state !== 'leaving') return;
    this.#apply(this.#node!.receive(from, packet, monotonicNowMs()));
  }

  #onTimer(): void {
    this.#timer = undefined;
    if (this.#state !== 'running' && this.#state !== 'leaving') return;
    this.#apply(this.#node!.tick(monotonicNowMs()));
  }

  /** Sends what the core asked for, tells the listeners, then re-arms the timer for the core's next wake. */
  #apply(output: Output): void {
    const transport = this.#transport!;
    for (const out of output.send) {
      if (out.transport === 'udp') transport.sendUdp(out.to, out.packet);
      else transport.sendStream(out.to, out.packet);
    }
    this.#emitEvents(output.events);
    if (this.#state === 'leaving' && this.#node!.leaveBroadcastDone) {
      this.#leaveDone?.();
      return;
    }
    this.#arm();
  }

  #emitEvents(events: readonly MembershipEvent[]): void {
    for (const event of events) {
      if (event.kind === 'suspect')
        this.#checkGone(event.member.nodeId, event.member.address, event.member.incarnation);
      for (const listener of this.#listeners) listener(event);
    }
    if (events.length === 0 || this.#state !== 'running') return;
    const alone = !this.#hasOtherLiveMember();
    if (this.#joining && !alone) {
      // Someone reached us first (or gossip brought a member): the join is done.
      this.#stopJoining();
      this.#log.info({}, 'gossip: joined the cluster');
      this.options.onJoinEvent?.({ kind: 'joined', through: '' });
    } else if (alone && !this.#joining) {
      // Every other member is dead or left: this side may be the cut-off one. Look for the cluster again,
      // re-resolving the seeds; the first retry waits a backoff step, not zero, so a whole cluster that loses
      // sight of each other does not retry in step.
      this.#maybeJoin((this.options.joinBackoff ?? JOIN_BACKOFF_DEFAULTS).initialMs);
    }
  }

  /**
   * A member fell under suspicion: if its cluster port refuses connections, its process is gone (killed or
   * crashed; a paused one or one behind a cut network does not refuse), and it is declared dead at once
   * rather than after the suspicion timeout, which must stay long enough for pauses to survive. One check per
   * member at a time.
   */
  #checkGone(nodeId: string, address: string, incarnation: number): void {
    if (this.#goneChecks.has(nodeId) || this.#transport === undefined) return;
    this.#goneChecks.add(nodeId);
    this.#transport.probeListening(address, goneCheckTimeoutMs, (refused) => {
      this.#goneChecks.delete(nodeId);
      if (!refused || this.#state !== 'running') return;
      this.#log.info({ node: nodeId, address }, 'gossip: a suspect refuses connections; its process is gone');
      this.#apply(this.#node!.confirmGone(nodeId, incarnation, monotonicNowMs()));
    });
  }

  #arm(): void {
    if (this.#state !== 'running' && this.#state !== 'leaving') return;
    clearTimeout(this.#timer);
    // The core must be ticked no later than its next wake; a wake already past runs on the next turn.
    const delayMs = Math.max(0, this.#node!.nextWakeMs() - monotonicNowMs());
    this.#timer = setTimeout(() => this.#onTimer(), delayMs);
  }
}
