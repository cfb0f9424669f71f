// An extra acceptor thread (`--acceptor-threads N`, N > 1): a uWebSockets.js app listening on the client port
// beside the primary acceptor's (the kernel spreads connections over every socket bound to it), with its own
// ring pair to every partition worker. It serves the data plane itself (produce, batch produce, consume) through
// its own Acceptor and router, exactly as the primary does, and relays every other HTTP request and every
// WebSocket connection to the primary acceptor's loopback port (src/http/relay.ts), which serves them with the
// client's address. The primary keeps it current: metadata snapshots, the worker balancer's placement, and the
// hold of a partition while it moves between workers (so requests are neither lost nor reordered by a move).
// It never sends a worker a control op that changes placement, nor its shutdown: those come from the primary.
// Runs on an extra acceptor thread only (workers/acceptor.ts); `ExtraAcceptorMessage` is the protocol with the
// main thread.

import type { MessagePort } from 'node:worker_threads';
import type { BrokerConfig } from '../config/config.js';
import { assert } from '../core/assert.js';
import { OffloadPool } from '../http/offload-pool.js';
import { decodePathParam } from '../http/params.js';
import { installRelay, type Relay } from '../http/relay.js';
import { dataRoutes } from '../http/routes.js';
import { type HttpServer, startHttpServer } from '../http/server.js';
import type { MetadataSnapshot, MetadataStore } from '../metadata/types.js';
import { atomicsWaitAsync } from '../ring/spsc-ring.js';
import type { Logger } from '../runtime/logger.js';
import { type ClusterTlsShared, loadClusterTlsMaterial } from '../security/cluster-tls.js';
import { accessControlFor } from '../security/setup.js';
import { Acceptor } from './acceptor.js';
import { AddressLimiter } from './address-limiter.js';
import { linkPoolFor } from './link-pool.js';
import { type AcceptorFigures, BrokerMetrics } from './metrics.js';
import { PartitionRouter } from './router.js';
import { WorkerLink } from './worker-link.js';

/** What the main thread hands an extra acceptor thread at spawn. */
export interface ExtraAcceptorData {
  /** 1..N-1 (0 is the primary acceptor). */
  readonly index: number;
  readonly config: BrokerConfig;
  /** The client port as the primary bound it (the config may say 0). */
  readonly port: number;
  /** One ring pair per partition worker, in worker order, and that worker's doorbell. */
  readonly rings: readonly {
    readonly requests: SharedArrayBuffer;
    readonly responses: SharedArrayBuffer;
    readonly doorbell: SharedArrayBuffer;
  }[];
  /** The primary acceptor's loopback port for relays, and the token that proves one. */
  readonly relayPort: number;
  readonly relayToken: string;
  /** Word 0 is 1 while the primary's connection guard admits new requests (the process is below its caps). */
  readonly admitting: SharedArrayBuffer;
  readonly clusterSecret: Uint8Array | null;
  readonly authStats: SharedArrayBuffer;
  readonly clusterTls: ClusterTlsShared | null;
  /** The channel to the main thread (`ExtraAcceptorMessage` both ways). */
  readonly port2: MessagePort;
  /** This thread's figures for the primary's /metrics (`AcceptorStat` slots, Float64). */
  readonly stats: SharedArrayBuffer;
  /**
   * Word 0: set by the main thread when the process exits at once (a fatal error); this thread then closes every
   * socket and sets word 1. A thread that ends with uWebSockets.js sockets open aborts the whole process.
   */
  readonly closeNow: SharedArrayBuffer;
}

/** Slots of an extra acceptor's shared figures (a Float64Array over `ExtraAcceptorData.stats`). */
export const AcceptorStat = {
  /** Requests this thread served itself (produce, consume), by any status. */
  served: 0,
  /** HTTP requests relayed to the primary and answered by it. */
  relayed: 1,
  /** Relayed WebSocket connections open now. */
  wsOpen: 2,
  /** Requests and connections the relay failed itself (primary unreachable, timeout, a bound hit). */
  relayFailures: 3,
} as const;
export const ACCEPTOR_STAT_SLOTS = 4;
/** How often the relay's figures are copied into the shared slots, and the partitions' counts posted. */
const statsIntervalMs = 1_000;

/** Main thread -> extra acceptor, and back. */
export type ExtraAcceptorMessage =
  | { readonly type: 'metadata'; readonly snapshot: MetadataSnapshot }
  /** The worker balancer's placement overrides (partition key -> worker index), all of them. */
  | { readonly type: 'placement'; readonly entries: readonly (readonly [number, number])[] }
  /** Hold the partition's new requests; answered `held` once every earlier one is in its worker's ring. */
  | { readonly type: 'hold'; readonly key: number; readonly id: number }
  /** The move ended: the partition is on worker `to` now (null: it stayed), and what was held goes there. */
  | { readonly type: 'moved'; readonly key: number; readonly to: number | null; readonly hashed: boolean }
  | { readonly type: 'stop' }
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'held'; readonly id: number }
  /**
   * This thread's cumulative request and byte counts for the partitions whose counts changed since the last
   * `loads` (key, requests, bytes), and the keys it no longer routes: the worker balancer adds them to the
   * primary's own.
   */
  | {
      readonly type: 'loads';
      readonly entries: readonly (readonly [number, number, number])[];
      readonly gone: readonly number[];
    }
  /** This thread's request figures (cumulative), for the primary's /metrics. */
  | { readonly type: 'figures'; readonly figures: AcceptorFigures }
  | { readonly type: 'stopped'; readonly inFlight: number };

/** How long a stopping extra acceptor waits for the answers to requests it sent. */
const stopWaitMs = 5_000;

/** The primary's metadata, as its snapshots arrive; this thread never changes metadata itself. */
class MirroredMetadata implements MetadataStore {
  private current: MetadataSnapshot = { version: 0, topics: new Map(), brokers: new Map() };
  private readonly listeners: ((snapshot: MetadataSnapshot) => void)[] = [];

  snapshot(): MetadataSnapshot {
    return this.current;
  }

  onChange(listener: (snapshot: MetadataSnapshot) => void): void {
    this.listeners.push(listener);
  }

  /** A newer snapshot from the primary (an older one, reordered, is ignored). */
  apply(snapshot: MetadataSnapshot): void {
    if (snapshot.version < this.current.version) return;
    this.current = snapshot;
    for (const listener of this.listeners) listener(snapshot);
  }

  private refuse(): Promise<never> {
    return Promise.reject(new Error('metadata changes are served by the primary acceptor thread'));
  }
  createTopic(): Promise<never> {
    return this.refuse();
  }
  deleteTopic(): Promise<never> {
    return this.refuse();
  }
  alterTopicConfig(): Promise<never> {
    return this.refuse();
  }
  allocateProducerId(): Promise<never> {
    return this.refuse();
  }
  async close(): Promise<void> {}
}

/** Runs the thread until the main thread says `stop`. */
export async function runExtraAcceptor(data: ExtraAcceptorData, log: Logger): Promise<void> {
  const { config } = data;
  const port = data.port2;
  const store = new MirroredMetadata();
  const links = data.rings.map(
    (r, i) =>
      new WorkerLink(
        i,
        r.requests,
        r.responses,
        { queuedSendsMax: 10_000, responsesPerDrainMax: 4096 },
        r.doorbell,
      ),
  );
  const linkRuns = links.map((link) => link.run());
  // Its own registry; its request figures (per topic, latency) are posted to the primary's /metrics each second.
  const metrics = new BrokerMetrics(
    () => [],
    () => [],
  );
  const tlsMaterial = data.clusterTls === null ? null : loadClusterTlsMaterial(data.clusterTls.files);
  const pool = linkPoolFor(
    config.nodeId,
    {
      clusterSecret: data.clusterSecret,
      authStats: data.authStats,
      clusterTls: data.clusterTls,
      clusterTlsMaterial: tlsMaterial,
    },
    (fields, message) => log.warn(fields, message),
  );
  const router = new PartitionRouter(
    config.nodeId,
    links,
    pool,
    metrics,
    Acceptor.baseLimits(config, links[0]!.payloadBytesMax),
  );
  const offload = new OffloadPool(1, 64);
  const acceptor = new Acceptor(config, store, router, links, metrics, offload);
  const access = accessControlFor(config, log, metrics.registry);
  store.onChange((snapshot) => access.setAcls(snapshot.version, snapshot.acls));
  acceptor.openAll();
  acceptor.serving = true;
  const admitting = new Int32Array(data.admitting);
  const addressLimiter =
    config.maxConnectionsPerIp === 0
      ? null
      : new AddressLimiter({
          maxConnections: config.maxConnectionsPerIp,
          refused: metrics.connectionsRefused,
          log,
        });
  let relay: Relay | null = null;
  const routes = dataRoutes(acceptor);
  for (const route of routes) {
    assert(route.pattern.startsWith('/topics/:topic/'), 'a data route names its topic first');
  }
  const stats = new Float64Array(data.stats);
  const copyRelayStats = (): void => {
    const current = relay as Relay | null;
    if (current === null) return;
    stats[AcceptorStat.relayed] = current.stats.httpRelayed;
    stats[AcceptorStat.wsOpen] = current.stats.wsOpen;
    stats[AcceptorStat.relayFailures] = current.stats.failures;
  };
  /** Requests counted per partition key at the last `loads` post (bounded by the partitions routed). */
  const postedRequests = new Map<number, number>();
  const postLoads = (): void => {
    const entries: [number, number, number][] = [];
    for (const topic of router.allTopics()) {
      for (const p of topic.partitions) {
        if (postedRequests.get(p.key) === p.sentRequests) continue;
        postedRequests.set(p.key, p.sentRequests);
        entries.push([p.key, p.sentRequests, p.sentBytes]);
      }
    }
    const gone: number[] = [];
    for (const key of postedRequests.keys()) {
      if (router.routeByKey(key) === undefined) gone.push(key);
    }
    for (const key of gone) postedRequests.delete(key);
    if (entries.length > 0 || gone.length > 0)
      port.postMessage({ type: 'loads', entries, gone } satisfies ExtraAcceptorMessage);
  };
  // Posted only when they changed: an idle thread posts nothing.
  let postedVersion = 0;
  const postFigures = (): void => {
    const version = metrics.figuresVersion();
    if (version === postedVersion) return;
    postedVersion = version;
    port.postMessage({ type: 'figures', figures: metrics.figures() } satisfies ExtraAcceptorMessage);
  };
  const statsTimer = setInterval(() => {
    copyRelayStats();
    postLoads();
    postFigures();
  }, statsIntervalMs);
  const server: HttpServer = await startHttpServer(routes, {
    host: config.host,
    port: data.port,
    maxRequestBytes: config.maxRequestBytes,
    admit: () => Atomics.load(admitting, 0) === 1,
    access,
    ...(addressLimiter === null ? {} : { addressCap: addressLimiter }),
    onRequestDone: (operation, status, seconds) => {
      stats[AcceptorStat.served]!++;
      metrics.observeRequest(operation, status, seconds);
    },
    // A topic this thread has not heard of may be one the primary created a moment ago (its snapshot is on its
    // way here): the primary answers for it, with the metadata it has.
    intercept: (_route, res, req) => {
      const current = relay as Relay | null;
      if (current === null || router.topic(decodePathParam(req.getParameter(0) ?? '')) !== undefined) {
        return false;
      }
      current.forward(res, req);
      return true;
    },
    fallback: (app) => {
      relay = installRelay(app, {
        port: data.relayPort,
        token: data.relayToken,
        maxRequestBytes: config.maxRequestBytes,
        requestTimeoutMs: 120_000,
        socketsMax: 256,
        wsBufferedBytesMax: 4 * 1024 * 1024,
      });
    },
  });
  await addressLimiter?.start(server.port);
  const closeNow = new Int32Array(data.closeNow);
  const closeApp = (): void => (server.app as unknown as { close(): void }).close();
  // Not a loop: the pending wait does not keep the thread alive, and the word is set once.
  const exitWatch = atomicsWaitAsync(closeNow, 0, 0);
  void Promise.resolve(exitWatch.value).then(() => {
    if (Atomics.load(closeNow, 0) === 0) return;
    closeApp();
    Atomics.store(closeNow, 1, 1);
    Atomics.notify(closeNow, 1);
  });

  const stopped = new Promise<void>((resolveStop) => {
    port.on('message', (message: ExtraAcceptorMessage) => {
      switch (message.type) {
        case 'metadata':
          store.apply(message.snapshot);
          return;
        case 'placement':
          router.placement.clear();
          for (const [key, worker] of message.entries) router.placement.set(key, worker);
          return;
        case 'hold': {
          const route = router.routeByKey(message.key);
          if (route !== undefined) router.hold(route);
          // The links publish what this turn wrote at setImmediate; this one runs after them, so every request
          // sent before the hold is in its worker's ring when the primary hears `held`.
          setImmediate(() => {
            port.postMessage({ type: 'held', id: message.id } satisfies ExtraAcceptorMessage);
          });
          return;
        }
        case 'moved': {
          const route = router.routeByKey(message.key);
          if (message.to !== null) {
            if (message.hashed) router.placement.delete(message.key);
            else router.placement.set(message.key, message.to);
          }
          if (route !== undefined) {
            router.releaseHold(route, message.to === null ? null : (links[message.to] ?? null));
          }
          return;
        }
        case 'stop':
          resolveStop();
          return;
      }
    });
  });
  port.postMessage({ type: 'listening', port: server.port } satisfies ExtraAcceptorMessage);
  await stopped;
  server.stopListening();
  addressLimiter?.stop();
  const deadline = performance.now() + stopWaitMs;
  while (links.some((link) => link.inFlight > 0) && performance.now() < deadline) {
    await new Promise((resolveWait) => setTimeout(resolveWait, 10));
  }
  const inFlight = links.reduce((sum, link) => sum + link.inFlight, 0);
  clearInterval(statsTimer);
  copyRelayStats();
  postLoads();
  postFigures();
  (relay as Relay | null)?.close();
  for (const link of links) link.stop();
  await Promise.race([Promise.all(linkRuns), new Promise((r) => setTimeout(r, 1_000))]);
  await offload.close();
  pool.close();
  // Every connection closed: a thread that ends with uWebSockets.js sockets open aborts the process.
  closeApp();
  port.postMessage({ type: 'stopped', inFlight } satisfies ExtraAcceptorMessage);
  port.close();
}
