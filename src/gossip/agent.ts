// A running gossip member: owns one GossipNode (the pure SWIM/Lifeguard core) and one GossipTransport, and is
// the only place where the two meet the clock. It calls `tick` from a timer armed at `nextWakeMs()`, feeds
// every received packet to `receive`, sends every Outgoing and hands membership events to its listeners.
//
// Invariants: time enters the core only as `monotonicNowMs()` values passed in (a wall-clock jump must not look
// like a stall or fire timers early); at most one tick timer is armed, and
// none once stopped; outputs are applied in the order the core produced them; after `stop()` or `abort()`
// resolves no socket, timer or listener call remains. Self-contained (no main-thread state, no
// uWebSockets.js) so that it can run inside the control worker thread; one agent belongs to one thread.
import { randomInt } from 'node:crypto';
import type { ClusterPort } from '../cluster/port.js';
import { assert } from '../core/assert.js';
import type { GossipConfig } from '../core/gossip/config.js';
import { GOSSIP_DEFAULTS } from '../core/gossip/config.js';
import type { MemberMeta, Packet } from '../core/gossip/messages.js';
import { GossipNode, type MemberSnapshot, type MembershipEvent, type Output } from '../core/gossip/node.js';
import { createPrng } from '../core/prng.js';
import { GossipTransport, type TransportLimits, type TransportStats } from './transport.js';

/** Milliseconds on a clock that never jumps, with the epoch of `Date.now()` so values read as times. */
function monotonicNowMs(): number {
  return performance.timeOrigin + performance.now();
}

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
  /** Seed of the core's PRNG; drawn from the system CSPRNG when absent. Fixed only to replay a run. */
  readonly seed?: number;
  /**
   * The node's shared cluster port, to gossip on instead of binding `host:port` (then `port` is 0 or its
   * number); the agent never closes it.
   */
  readonly clusterPort?: ClusterPort;
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
  readonly #listeners = new Set<MembershipListener>();
  /** Resolves `stop()` once the leave broadcast is done; checked after every tick while leaving. */
  #leaveDone: (() => void) | undefined;

  constructor(options: GossipAgentOptions) {
    this.options = options;
    this.config = options.config ?? GOSSIP_DEFAULTS;
    this.seed = options.seed ?? randomInt(0, 2 ** 32);
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

  /** Binds the sockets and joins through `seeds` (gossip addresses; none for the first member). */
  async start(options: { readonly seeds: readonly string[] }): Promise<void> {
    assert(this.#state === 'created', `gossip agent start in state ${this.#state}`);
    const transportOptions = {
      host: this.options.host,
      port: this.options.port,
      limits: { ...this.options.transport, udpPacketBytesMax: this.config.udpPacketBytesMax },
      onPacket: (from: string, packet: Packet) => this.#onPacket(from, packet),
      ...(this.options.clusterPort === undefined ? {} : { clusterPort: this.options.clusterPort }),
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
    this.#apply(this.#node.join(options.seeds));
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
    for (const event of output.events) for (const listener of this.#listeners) listener(event);
    if (this.#state === 'leaving' && this.#node!.leaveBroadcastDone) {
      this.#leaveDone?.();
      return;
    }
    this.#arm();
  }

  #arm(): void {
    if (this.#state !== 'running' && this.#state !== 'leaving') return;
    clearTimeout(this.#timer);
    // The core must be ticked no later than its next wake; a wake already past runs on the next turn.
    const delayMs = Math.max(0, this.#node!.nextWakeMs() - monotonicNowMs());
    this.#timer = setTimeout(() => this.#onTimer(), delayMs);
  }
}
