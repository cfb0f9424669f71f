// The primary acceptor's side of the extra acceptor threads (`--acceptor-threads N`, N > 1): spawns them once
// this node serves, keeps them current (every metadata snapshot, the worker balancer's placement), holds a
// partition on every one of them while it moves between workers, and stops them before the workers are told
// to shut down. The threads themselves are src/broker/extra-acceptor.ts.
// Runs on the acceptor (main) thread only.
import { MessageChannel, type Worker } from 'node:worker_threads';
import { Counter, Gauge, type Registry } from 'prom-client';
import { assert } from '../core/assert.js';
import type { MetadataSnapshot } from '../metadata/types.js';
import type { Logger } from '../runtime/logger.js';
import { spawnThread } from '../runtime/threads.js';
import {
  ACCEPTOR_STAT_SLOTS,
  AcceptorStat,
  type ExtraAcceptorData,
  type ExtraAcceptorMessage,
} from './extra-acceptor.js';
import type { AcceptorFigures } from './metrics.js';

/** Spawn-time settings shared by every extra acceptor (ExtraAcceptorData without the per-thread fields). */
export type ExtraAcceptorShared = Omit<ExtraAcceptorData, 'index' | 'rings' | 'port2' | 'stats' | 'closeNow'>;

/** How long a move waits for every extra acceptor to hold the partition; past it the move is refused. */
const holdWaitMs = 2_000;
/** How long a start waits for an extra acceptor to listen, and a stop for it to finish. */
const startWaitMs = 30_000;
const stopWaitMs = 10_000;
/** How long an exiting process waits for each extra acceptor to close its sockets. */
const closeNowWaitMs = 500;

interface Peer {
  readonly index: number;
  readonly closeNow: Int32Array;
  readonly stats: Float64Array;
  readonly worker: Worker;
  readonly port: import('node:worker_threads').MessagePort;
  readonly exited: Promise<unknown>;
  /** Its last posted counts per partition key: [requests, bytes] (bounded by the partitions it routes). */
  readonly loads: Map<number, [number, number]>;
  /** Its last posted request figures. */
  figures: AcceptorFigures | null;
}

export class ExtraAcceptors {
  private nextHoldId = 1;
  /** Holds waiting for their `held` answers: hold id -> answers still missing and the resolver. */
  private readonly holds = new Map<number, { missing: number; done: () => void }>();
  private stopping = false;
  /** Resolves once every extra acceptor listens on the client port; rejects if one could not. */
  listening: Promise<void> = Promise.resolve();

  private constructor(
    private readonly peers: readonly Peer[],
    private readonly log: Logger,
  ) {}

  /**
   * Spawns `rings.length` extra acceptors (rings[a][w]: acceptor a's ring pair to worker w, with that worker's
   * doorbell), each told the current metadata and placement before anything else; `listening` resolves once
   * every one listens on the client port (on failure they are stopped). Returned at once, so that no change
   * made meanwhile can miss them. `onFatal` is told of a thread that failed.
   */
  static spawn(
    shared: ExtraAcceptorShared,
    rings: ExtraAcceptorData['rings'][],
    snapshot: MetadataSnapshot,
    placement: readonly (readonly [number, number])[],
    log: Logger,
    onFatal: (message: string) => void,
  ): ExtraAcceptors {
    const peers: Peer[] = [];
    const listening: Promise<void>[] = [];
    for (let a = 0; a < rings.length; a++) {
      const channel = new MessageChannel();
      const stats = new SharedArrayBuffer(ACCEPTOR_STAT_SLOTS * 8);
      const closeNow = new SharedArrayBuffer(8);
      const data: ExtraAcceptorData = {
        ...shared,
        index: a + 1,
        rings: rings[a]!,
        port2: channel.port2,
        stats,
        closeNow,
      };
      const worker = spawnThread('workers/acceptor', data, {
        name: `acceptor-${a + 1}`,
        transferList: [channel.port2],
      });
      const exited = new Promise((done) => worker.once('exit', done));
      worker.on('error', (error) => onFatal(`acceptor thread ${a + 1} failed: ${String(error)}`));
      const peer: Peer = {
        index: a + 1,
        closeNow: new Int32Array(closeNow),
        stats: new Float64Array(stats),
        worker,
        port: channel.port1,
        exited,
        loads: new Map(),
        figures: null,
      };
      peers.push(peer);
      channel.port1.postMessage({ type: 'metadata', snapshot } satisfies ExtraAcceptorMessage);
      channel.port1.postMessage({ type: 'placement', entries: placement } satisfies ExtraAcceptorMessage);
      listening.push(
        new Promise<void>((resolveListen, rejectListen) => {
          const timer = setTimeout(
            () => rejectListen(new Error(`acceptor thread ${a + 1} did not listen within ${startWaitMs} ms`)),
            startWaitMs,
          );
          channel.port1.on('message', (message: ExtraAcceptorMessage) => {
            if (message.type === 'listening') {
              clearTimeout(timer);
              resolveListen();
            }
          });
          void exited.then(() => {
            clearTimeout(timer);
            rejectListen(new Error(`acceptor thread ${a + 1} exited before it listened`));
          });
        }),
      );
    }
    const extras = new ExtraAcceptors(peers, log);
    process.on('exit', () => extras.closeNowSync());
    for (const peer of peers) {
      peer.port.on('message', (message: ExtraAcceptorMessage) => extras.onMessage(peer, message));
      void peer.exited.then((code) => {
        if (!extras.stopping)
          onFatal(`acceptor thread ${peer.index} exited unexpectedly (code ${String(code)})`);
      });
    }
    extras.listening = Promise.all(listening).then(
      () =>
        log.info({ acceptorThreads: peers.length + 1 }, 'extra acceptor threads listen on the client port'),
      async (error: unknown) => {
        await extras.stop();
        throw error;
      },
    );
    return extras;
  }

  get count(): number {
    return this.peers.length;
  }

  /**
   * Exports every extra acceptor's figures: requests it served itself and relayed, relay failures, relayed
   * WebSockets open (the primary's own requests are `broker_http_requests_total`).
   */
  registerMetrics(registry: Registry): void {
    const peers = this.peers;
    new Counter({
      name: 'broker_acceptor_requests_total',
      help: 'Requests taken by each extra acceptor thread: served itself (produce, consume) or relayed to the primary',
      labelNames: ['acceptor', 'outcome'],
      registers: [registry],
      collect() {
        this.reset();
        for (const peer of peers) {
          const acceptor = String(peer.index);
          this.inc({ acceptor, outcome: 'served' }, peer.stats[AcceptorStat.served]!);
          this.inc({ acceptor, outcome: 'relayed' }, peer.stats[AcceptorStat.relayed]!);
          this.inc({ acceptor, outcome: 'relay_failed' }, peer.stats[AcceptorStat.relayFailures]!);
        }
      },
    });
    new Gauge({
      name: 'broker_acceptor_relayed_websockets',
      help: 'WebSocket connections each extra acceptor thread relays to the primary now',
      labelNames: ['acceptor'],
      registers: [registry],
      collect() {
        for (const peer of peers)
          this.set({ acceptor: String(peer.index) }, peer.stats[AcceptorStat.wsOpen]!);
      },
    });
  }

  /**
   * Partition `key`'s requests and request bytes routed to workers by the extra acceptors since they started,
   * as of their last `loads` (at most about a second old); zeros when none has routed any.
   */
  countsOf(key: number): { requests: number; bytes: number } {
    let requests = 0;
    let bytes = 0;
    for (const peer of this.peers) {
      const counts = peer.loads.get(key);
      if (counts === undefined) continue;
      requests += counts[0];
      bytes += counts[1];
    }
    return { requests, bytes };
  }

  /** Every extra acceptor's request figures as last posted (about a second old at most). */
  figures(): AcceptorFigures[] {
    const all: AcceptorFigures[] = [];
    for (const peer of this.peers) if (peer.figures !== null) all.push(peer.figures);
    return all;
  }

  private onMessage(peer: Peer, message: ExtraAcceptorMessage): void {
    if (message.type === 'figures') {
      peer.figures = message.figures;
      return;
    }
    if (message.type === 'loads') {
      for (const [key, requests, bytes] of message.entries) peer.loads.set(key, [requests, bytes]);
      for (const key of message.gone) peer.loads.delete(key);
      return;
    }
    if (message.type !== 'held') return;
    const hold = this.holds.get(message.id);
    if (hold === undefined) return; // timed out already
    hold.missing--;
    if (hold.missing === 0) {
      this.holds.delete(message.id);
      hold.done();
    }
  }

  /** Every metadata snapshot goes to every extra acceptor, in order. */
  metadata(snapshot: MetadataSnapshot): void {
    for (const peer of this.peers) {
      peer.port.postMessage({ type: 'metadata', snapshot } satisfies ExtraAcceptorMessage);
    }
  }

  /**
   * Holds partition `key`'s new requests on every extra acceptor; resolves once each one's earlier requests are
   * in their worker's ring. Rejects past `holdWaitMs` (the caller ends the move with `moved(key, null)`).
   */
  hold(key: number): Promise<void> {
    assert(!this.stopping, 'no hold while the extra acceptors stop');
    const id = this.nextHoldId++;
    return new Promise<void>((resolveHold, rejectHold) => {
      const timer = setTimeout(() => {
        this.holds.delete(id);
        rejectHold(
          new Error(`the extra acceptor threads did not hold the partition within ${holdWaitMs} ms`),
        );
      }, holdWaitMs);
      this.holds.set(id, {
        missing: this.peers.length,
        done: () => {
          clearTimeout(timer);
          resolveHold();
        },
      });
      for (const peer of this.peers) {
        peer.port.postMessage({ type: 'hold', key, id } satisfies ExtraAcceptorMessage);
      }
    });
  }

  /** A move ended: on worker `to` now (null: it stayed where it was); `hashed`: `to` is its hashed worker. */
  moved(key: number, to: number | null, hashed: boolean): void {
    for (const peer of this.peers) {
      peer.port.postMessage({ type: 'moved', key, to, hashed } satisfies ExtraAcceptorMessage);
    }
  }

  /**
   * For a process that exits at once (a fatal error; `process.on('exit')`): asks every extra acceptor still
   * running to close its sockets, and waits for each a little (a thread ending with uWebSockets.js sockets open
   * aborts the process instead of letting it exit with its code).
   */
  closeNowSync(): void {
    for (const peer of this.peers) {
      Atomics.store(peer.closeNow, 0, 1);
      Atomics.notify(peer.closeNow, 0);
    }
    for (const peer of this.peers) Atomics.wait(peer.closeNow, 1, 0, closeNowWaitMs);
  }

  /**
   * Stops every extra acceptor: it stops listening, waits for the answers to what it sent (bounded) and exits.
   * Called before the workers get their shutdown frames, so no request of theirs is left behind one.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const peer of this.peers) peer.port.postMessage({ type: 'stop' } satisfies ExtraAcceptorMessage);
    const timeout = new Promise<'timeout'>((done) => setTimeout(() => done('timeout'), stopWaitMs).unref());
    const outcome = await Promise.race([Promise.all(this.peers.map((p) => p.exited)), timeout]);
    if (outcome === 'timeout') {
      this.log.warn(
        { waitedMs: stopWaitMs },
        'extra acceptor threads did not stop in time; terminating them',
      );
      await Promise.all(this.peers.map((p) => p.worker.terminate()));
    }
    for (const peer of this.peers) peer.port.close();
  }
}
