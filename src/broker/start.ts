// Assembly of one broker node: the metadata store (the control thread), the partition worker threads with their
// ring pairs, their data-link ports and their ports to the control thread, the partition router and acceptor,
// the HTTP server, plus graceful shutdown (a controlled shutdown that moves this node's leaderships to in-sync
// replicas first, then stop listening, let the rings drain, have every worker fsync and close its logs, close
// the store). A worker thread that dies is fatal for the process: its
// partitions would otherwise be silently unavailable. A stop requested while the node is still starting (an
// aborted `signal`: SIGTERM while it waits for a metadata leader, say) closes whatever was started and
// rejects with `StartAborted`, so shutdown is bounded in every state.
// Called on the main thread, which becomes the acceptor thread.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { PartitionWorkerData } from '../../workers/partition.js';
import { ClusterMetadataStore, ControlLink } from '../cluster/control-link.js';
import { registerClusterAuthMetrics, registerControlMetrics } from '../cluster/control-metrics.js';
import { createControlStats } from '../cluster/control-stats.js';
import type { BrokerConfig } from '../config/config.js';
import { assert } from '../core/assert.js';
import { errorBody } from '../core/errors.js';
import type { GroupsSnapshot } from '../core/groups/registry.js';
import { buildAclRoutes } from '../http/acl-routes.js';
import { buildMoveRoutes } from '../http/move-routes.js';
import { OffloadPool } from '../http/offload-pool.js';
import { openApiDocument } from '../http/openapi.js';
import { buildOpsRoutes } from '../http/ops-routes.js';
import { buildRoutes } from '../http/routes.js';
import {
  type HttpServer,
  type Route,
  type ServerOptions,
  setRelayToken,
  startHttpServer,
} from '../http/server.js';
import { findUiDir, loadUiAssets, registerUi } from '../http/static-ui.js';
import { buildWorkerRoutes } from '../http/worker-routes.js';
import { KafkaApiHandlers } from '../kafka/handlers.js';
import { KafkaListener } from '../kafka/listener.js';
import { MessageKind } from '../messages/kinds.js';
import { Status } from '../messages/status.js';
import { FileMetadataStore } from '../metadata/file-store.js';
import { createDoorbell, createRingPair } from '../ring/spsc-ring.js';
import { countOpenDescriptors, countThreads, descriptorBudgetFor } from '../runtime/fd-limit.js';
import { spawnThread } from '../runtime/threads.js';
import { createAuthStats, readClusterSecretFile } from '../security/cluster-auth.js';
import {
  announceClusterTlsReload,
  type ClusterTlsMaterial,
  type ClusterTlsShared,
  createClusterTlsReload,
  loadClusterTlsMaterial,
} from '../security/cluster-tls.js';
import { accessControlFor, isLoopback } from '../security/setup.js';
import { loadTlsSettings, type TlsSettings } from '../security/tls.js';
import { Acceptor, type PartitionRoute } from './acceptor.js';
import { AclAdmin } from './acl-admin.js';
import { AddressLimiter } from './address-limiter.js';
import { AutoBalancer } from './auto-balance.js';
import { ClientQuotas } from './client-quotas.js';
import { registerClusterMetrics } from './cluster-metrics.js';
import { ConnectionGuard } from './connection-guard.js';
import { ExtraAcceptors } from './extra-acceptors.js';
import { GroupAdmin } from './group-admin.js';
import { type CoordinatorTarget, GroupForwarder } from './group-forward.js';
import { GroupMembers } from './group-members.js';
import { GroupsService } from './groups-service.js';
import { linkPoolFor } from './link-pool.js';
import { BrokerMetrics } from './metrics.js';
import { MoveAdmin } from './move-admin.js';
import { DEFAULT_REPLICATION_OPTIONS } from './partition-worker.js';
import { PartitionRouter } from './router.js';
import { defaultStreamOptions, StreamServer } from './streams.js';
import { TopicAdmin } from './topic-admin.js';
import { WorkerLink } from './worker-link.js';
import { WorkerMoves } from './worker-moves.js';
import { createWorkerStats, StatSlot } from './worker-stats.js';

export interface BrokerHandle {
  /** The HTTP port actually bound (useful with port 0). */
  readonly port: number;
  /**
   * Re-reads the TLS files (SIGHUP) and serves them to new connections that name one of the certificate's DNS
   * names (SNI); resolves with those names. Rejects naming the problem (bad files, no DNS name, no TLS), and
   * the certificates served stay as they were.
   */
  reloadTls?(): Promise<readonly string[]>;
  /**
   * Re-reads the cluster TLS files (SIGHUP) and has every thread use them for the node-to-node connections it
   * makes or accepts from now on. Rejects naming every problem (and the certificates in use stay), or when
   * cluster TLS is off.
   */
  reloadClusterTls?(): Promise<ClusterTlsMaterial>;
  /** Stops accepting, drains the rings, fsyncs and closes every log. Resolves when all threads are gone. */
  close(): Promise<void>;
}

const packageVersion = '0.1.0';
/** Kafka requests one connection may have in service at once (Kafka clients pipeline 5 by default). */
const kafkaInFlightMax = 64;
/** A controlled shutdown waits this long at most for this node's leaderships to move. */
const controlledShutdownTimeoutMs = 10_000;
/** In the data dir: present only between a clean shutdown and the next start. */
const cleanShutdownFile = 'clean-shutdown';

/** fsyncs a directory, so that the creation or removal of an entry in it is durable. */
function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The start was stopped by `signal` before the broker served; everything it had started is closed. */
export class StartAborted extends Error {
  override readonly name = 'StartAborted';
}

export async function startBroker(
  config: BrokerConfig,
  log: Logger,
  signal?: AbortSignal,
): Promise<BrokerHandle> {
  assert(config.acceptorThreads >= 1, 'at least one acceptor thread');
  // The cluster secret is read before anything starts: a missing or short one stops the start, named.
  const clusterSecret =
    config.clusterSecretFile === null ? null : readClusterSecretFile(config.clusterSecretFile);
  const authStats = createAuthStats();
  // So are the cluster TLS files: every problem named at once, a key that is not the certificate's refused.
  const clusterTlsFiles =
    config.clusterTlsCertFile === null ||
    config.clusterTlsKeyFile === null ||
    config.clusterTlsCaFile === null
      ? null
      : {
          certFile: config.clusterTlsCertFile,
          keyFile: config.clusterTlsKeyFile,
          caFile: config.clusterTlsCaFile,
        };
  const clusterTlsMaterial = clusterTlsFiles === null ? null : loadClusterTlsMaterial(clusterTlsFiles);
  const clusterTls: ClusterTlsShared | null =
    clusterTlsFiles === null ? null : { files: clusterTlsFiles, reload: createClusterTlsReload() };
  if (clusterTlsMaterial !== null) {
    logClusterTls(
      log,
      clusterTlsMaterial,
      'cluster TLS on: Raft, cluster RPC, gossip streams and the data link are mutual TLS with the cluster CA',
    );
  }
  if (clusterSecret === null && !isLoopback(config.host)) {
    log.warn(
      { host: config.host, clusterPort: config.clusterPort },
      `CLUSTER TRAFFIC IS NOT AUTHENTICATED and the cluster and data-link ports listen on ${config.host}, beyond loopback: anyone who can reach them can join the cluster and inject Raft, gossip, RPC and replication messages. Give every node the same --cluster-secret-file (openssl rand -base64 48 > secret)`,
    );
  }
  if (clusterSecret !== null) log.info('cluster secret on: node-to-node traffic is authenticated');
  // So are the TLS files: a missing file or a key that is not the certificate's stops the start, named.
  const tls: TlsSettings | null = loadTlsSettings(config);
  if (tls !== null) logTls(log, tls, 'TLS on the client port: https and wss only');
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const planned = descriptorBudgetFor(config);
  if (planned.kind === 'error') throw new Error(`descriptor budget: ${planned.problems.join('; ')}`);
  const budget = planned.budget;
  // The marker of a clean shutdown says every partition's checkpoint holds its exact log end, so partitions
  // can be opened lazily. It is removed before anything is written: from now on this run may crash.
  const cleanMarker = join(dataDir, cleanShutdownFile);
  const cleanShutdown = existsSync(cleanMarker);
  if (cleanShutdown) {
    unlinkSync(cleanMarker);
    fsyncPath(dataDir);
  }
  // A data dir from before the Raft log keeps its topics in metadata.json: they are imported into the new log.
  const legacyMetadata = join(dataDir, 'metadata.json');
  const importTopics =
    existsSync(legacyMetadata) && !existsSync(join(dataDir, 'raft')) && config.seeds.length === 0
      ? [...(await FileMetadataStore.open(dataDir, config.nodeId)).snapshot().topics.values()]
      : [];
  // The control thread founds a one-node cluster (no seeds) or joins one; metadata comes from its Raft log.
  // Each partition worker gets a port of its own to it, for metadata down and ISR changes up.
  const controlStats = createControlStats();
  const channels = Array.from({ length: config.threads }, () => new MessageChannel());
  const control = await ControlLink.start({
    logLevel: config.logLevel,
    logPretty: process.stdout.isTTY === true,
    statsBuffer: controlStats,
    importTopics,
    nodeId: config.nodeId,
    dataDir,
    host: config.host,
    clusterPort: config.clusterPort,
    address: config.address,
    seeds: config.seeds.map((s) => `${s.host}:${s.port}`),
    rack: config.rack ?? '',
    version: packageVersion,
    raftVoters: config.raftVoters,
    gossipIntervalMs: config.gossipIntervalMs,
    gossipDeadReclaimMs: config.gossipDeadReclaimMs,
    raftTickMs: 50,
    raftElectionTicks: 12,
    voterReplaceAfterMs: config.raftVoterReplaceAfterMs,
    snapshotEveryEntries: 10_000,
    forwardTimeoutMs: 5_000,
    workerPorts: channels.map((c) => c.port1),
    controlledShutdownTimeoutMs: controlledShutdownTimeoutMs,
    clusterSecret,
    authStats,
    clusterTls,
  });
  control.onFatal = (message) => {
    if (closing) return;
    log.fatal({ message }, 'control thread failed; stopping the broker');
    process.exit(1);
  };
  const store = new ClusterMetadataStore(control);

  const links: WorkerLink[] = [];
  const workers: Worker[] = [];
  const exits: Promise<unknown>[] = [];
  const statsViews: Float64Array[] = [];
  const linkRuns: Promise<void>[] = [];
  const dataPortsBound: Promise<number>[] = [];
  let closing = false;
  // With extra acceptor threads, every worker reads a request ring from each acceptor and sleeps on one
  // doorbell they all ring; extraRings[a][w] is extra acceptor a's ring pair to worker w.
  const extraAcceptorCount = config.acceptorThreads - 1;
  const doorbells = Array.from({ length: config.threads }, () =>
    extraAcceptorCount > 0 ? createDoorbell() : null,
  );
  const extraRings = Array.from({ length: extraAcceptorCount }, () =>
    doorbells.map((doorbell) => ({
      ...createRingPair({ capacityBytes: config.ringBytes }),
      doorbell: doorbell!,
    })),
  );
  for (let i = 0; i < config.threads; i++) {
    const rings = createRingPair({ capacityBytes: config.ringBytes });
    const stats = createWorkerStats();
    const controlPort: MessagePort = channels[i]!.port2;
    const options: PartitionWorkerData = {
      workerIndex: i,
      workerCount: config.threads,
      nodeId: config.nodeId,
      dataHost: config.host,
      dataPort: config.dataPort === 0 ? 0 : config.dataPort + i,
      requests: rings.requests,
      responses: rings.responses,
      extraRings: extraRings.map((row) => ({ requests: row[i]!.requests, responses: row[i]!.responses })),
      doorbell: doorbells[i]!,
      stats,
      dataDir,
      syncIntervalMs: config.walSyncIntervalMs,
      commitOverlapMs: config.commitOverlapMs,
      indexIntervalBytes: 4096,
      framesPerBatchMax: 4096,
      retentionCheckIntervalMs: 30_000,
      segmentFdsMax: budget.segmentFdsPerThread,
      cleanShutdown,
      replication: {
        ...DEFAULT_REPLICATION_OPTIONS,
        replicaLagTimeMaxMs: config.replicaLagTimeMaxMs,
        catchUpBytesPerS: config.replicationThrottleBytes,
      },
      controlPort,
      clusterSecret,
      authStats,
      clusterTls,
    };
    // A small young generation: a partition worker's garbage is short-lived and small (frames are
    // encoded in place), and every megabyte of semi-space is resident memory per thread.
    const worker = spawnThread('workers/partition', options, {
      name: `partition-${i}`,
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
      transferList: [controlPort],
    });
    dataPortsBound.push(
      new Promise<number>((bound) => {
        worker.on('message', (message: { type: string; dataPort: number }) => {
          if (message.type === 'listening') bound(message.dataPort);
        });
      }),
    );
    worker.on('error', (error) => {
      log.fatal({ err: error, worker: i }, 'partition worker failed; stopping the broker');
      process.exit(1);
    });
    worker.on('exit', (code) => {
      if (!closing) {
        log.fatal({ worker: i, code }, 'partition worker exited unexpectedly; stopping the broker');
        process.exit(1);
      }
    });
    workers.push(worker);
    exits.push(new Promise((done) => worker.once('exit', done)));
    statsViews.push(new Float64Array(stats));
    const link = new WorkerLink(
      i,
      rings.requests,
      rings.responses,
      { queuedSendsMax: 10_000, responsesPerDrainMax: 4096 },
      doorbells[i]!,
    );
    links.push(link);
    linkRuns.push(link.run());
  }

  const metrics: BrokerMetrics = new BrokerMetrics(
    () =>
      links.map((link, i) => {
        const writer = link.writerStats();
        return {
          index: i,
          stats: statsViews[i]!,
          requestRingOccupancyBytes: writer.occupancyBytes,
          responseRingOccupancyBytes: link.readerStats().occupancyBytes,
          inFlight: link.inFlight,
          queuedSends: link.queuedSends,
        };
      }),
    // Offsets are exported for the replicas this node holds (the leader's figures where it leads, a
    // follower's own otherwise); a partition with no replica here is not this node's to report.
    (): PartitionRoute[] =>
      acceptor.partitionFigures().filter((p) => p.highWatermark >= 0 || p.leader !== config.nodeId),
  );
  registerControlMetrics(metrics.registry, controlStats);
  registerClusterAuthMetrics(metrics.registry, authStats);
  // Authentication and ACLs: the ACLs come with every metadata snapshot, so each node enforces the same set.
  const access = accessControlFor(config, log, metrics.registry);
  access.setAcls(store.snapshot().version, store.snapshot().acls);
  store.onChange((snapshot) => access.setAcls(snapshot.version, snapshot.acls));
  const offload = new OffloadPool(Math.max(1, Math.min(2, config.threads)), 64);
  const pool = linkPoolFor(
    config.nodeId,
    { clusterSecret, authStats, clusterTls, clusterTlsMaterial },
    (fields, message) => log.warn(fields, message),
  );
  const router = new PartitionRouter(
    config.nodeId,
    links,
    pool,
    metrics,
    Acceptor.baseLimits(config, links[0]!.payloadBytesMax),
  );
  for (const link of links) link.onPartitionState = (state) => router.onPartitionState(state);
  const acceptor: Acceptor = new Acceptor(config, store, router, links, metrics, offload);
  const groups = await GroupsService.open({
    dataDir,
    sessionTimeoutMs: config.sessionTimeoutMs,
    tickIntervalMs: 250,
    offsetsRetentionMs: config.offsetsRetentionMs,
    logEndOffset: (topic, partition) => acceptor.highWatermarkOf(topic, partition),
    topicExists: (topic) => acceptor.topicRoute(topic) !== undefined,
    leaderHighWatermark: async (topic, partition) => {
      const route = acceptor.topicRoute(topic)?.partitions[partition];
      if (route === undefined) return undefined;
      const answer = await acceptor.describe(route);
      return 'failure' in answer || answer.status !== Status.Ok ? undefined : answer.highWatermark;
    },
    topicPartitions: () =>
      [...store.snapshot().topics.values()].map((t) => [t.name, t.numPartitions] as const),
    cluster: {
      coordinatorTerm: () => control.coordinatorTerm,
      groupCommand: (term, command) => control.groupCommand(term, command),
    },
  });
  control.onCoordinatorChange = () => groups.coordinatorChanged();
  groups.coordinatorChanged();
  const coordinatorTarget = (): CoordinatorTarget => {
    if (groups.coordinates) return { kind: 'here' };
    const leaderId = control.raftLeader.leaderId;
    if (leaderId === '')
      return { kind: 'none', reason: 'no metadata leader is known (an election is under way)' };
    if (leaderId === config.nodeId) {
      return { kind: 'none', reason: 'this node was just elected and is rebuilding the groups from the log' };
    }
    const leader = store.snapshot().brokers.get(leaderId);
    if (leader === undefined || leader.httpPort === 0) {
      return {
        kind: 'none',
        reason: `the metadata leader ${leaderId} has not advertised its HTTP address yet`,
      };
    }
    return { kind: 'remote', brokerId: leaderId, host: leader.httpHost, port: leader.httpPort };
  };
  const groupForwarder = new GroupForwarder(config.nodeId, coordinatorTarget, tls !== null);
  const groupMembers = new GroupMembers(
    groups,
    coordinatorTarget,
    config.nodeId,
    tls === null ? 'http' : 'https',
  );
  router.onTopicChange = (topic, partitions) => groups.setTopicPartitions(topic, partitions);
  registerClusterMetrics(metrics.registry, {
    nodeId: config.nodeId,
    snapshot: () => store.snapshot(),
    onSnapshot: (listener) => store.onChange(listener),
    highWatermark: (topic, partition) => acceptor.highWatermarkOf(topic, partition),
    groups: () => groups.registry,
  });
  const topicAdmin = new TopicAdmin(acceptor, store);
  const workerMoves = new WorkerMoves({
    nodeId: config.nodeId,
    router,
    links,
    stats: statsViews,
    control: (link, request) => acceptor.controlWorker(link, request),
    intervalMs: config.workerBalanceIntervalMs,
    tolerancePercent: config.workerBalanceTolerancePercent,
    movesMax: config.workerBalanceMovesMax,
    log: {
      info: (fields, message) => log.info(fields, message),
      warn: (fields, message) => log.warn(fields, message),
    },
    peers:
      extraAcceptorCount === 0
        ? null
        : {
            hold: (key) => extras?.hold(key) ?? Promise.resolve(),
            moved: (key, to, hashed) => extras?.moved(key, to, hashed),
            countsOf: (key) => extras?.countsOf(key) ?? { requests: 0, bytes: 0 },
          },
  });
  /** The extra acceptor threads, once spawned (when this node serves); null with one acceptor. */
  let extras: ExtraAcceptors | null = null;
  // Word 0: 1 while the connection guard admits new requests; the extra acceptors read it per request.
  const admitting = new Int32Array(new SharedArrayBuffer(4));
  const moveAdmin = new MoveAdmin({
    snapshot: () => store.snapshot(),
    liveBrokers: () =>
      [...store.snapshot().brokers.values()].filter((b) => !b.fenced && !b.shuttingDown).map((b) => b.id),
    reassign: (changes) => store.reassign(changes),
    electPreferredLeaders: () => store.electPreferredLeaders(),
    replicaLag: async (topic, partition) => {
      const route = acceptor.topicRoute(topic)?.partitions[partition];
      if (route === undefined) return null;
      const answer = await acceptor.describe(route);
      if ('failure' in answer || answer.status !== Status.Ok) return null;
      const records = answer.logEndOffset - answer.logStartOffset;
      return {
        behind: Object.fromEntries(answer.replicas.map((r) => [r.id, answer.logEndOffset - r.logEndOffset])),
        bytesPerRecord: records > 0 ? answer.sizeBytes / records : 0,
      };
    },
  });
  const autoBalancer = new AutoBalancer({
    mode: config.autoBalance,
    nodeId: config.nodeId,
    isLeader: () => control.raftLeader.leaderId === config.nodeId,
    snapshot: () => store.snapshot(),
    balance: () => moveAdmin.balanceNow(),
    drain: (brokerId) => moveAdmin.drainNow(brokerId),
    nodeDownTimeoutMs: config.nodeDownTimeoutMs,
    log: (level, message) => log[level]({ component: 'auto-balance' }, message),
    settleMs: 5_000,
    attemptsMax: 24,
  });
  autoBalancer.onSnapshot(store.snapshot());
  store.onChange((snapshot) => autoBalancer.onSnapshot(snapshot));
  const groupAdmin = new GroupAdmin(groups, acceptor, topicAdmin);
  const uiDir = findUiDir();
  const uiAssets = uiDir === null ? new Map() : loadUiAssets(uiDir);
  if (uiDir === null) log.warn('the web console (ui/) is not installed beside the broker: /ui is not served');
  acceptor.openAll();
  const dataPorts = await Promise.all(dataPortsBound);

  let routes: Route[] = [];
  /** The Kafka listener, once started (after the HTTP server); null when --kafka-port is -1. */
  let kafka: KafkaListener | null = null;
  const startedAtMs = Date.now();
  routes = buildRoutes(acceptor, groups, {
    health: (_q, reply) => {
      if (acceptor.serving) {
        // Partitions that cannot take writes make the node 'degraded', still 200: it serves every read and
        // every other partition, so a load balancer must keep sending it traffic (see the README).
        const offline = statsViews.reduce((sum, v) => sum + (v[StatSlot.partitionsStorageOffline] ?? 0), 0);
        if (offline === 0) return reply.json(200, JSON.stringify({ status: 'ok', node_id: config.nodeId }));
        Promise.all(links.map((link) => acceptor.controlWorker(link, { op: 'health' }))).then(
          (answers) =>
            reply.json(
              200,
              JSON.stringify({
                status: 'degraded',
                node_id: config.nodeId,
                partitions_offline: answers.flatMap((a) => (a as { offline?: unknown[] }).offline ?? []),
              }),
            ),
          () =>
            reply.json(
              200,
              JSON.stringify({
                status: 'degraded',
                node_id: config.nodeId,
                partitions_offline_count: offline,
              }),
            ),
        );
        return;
      }
      const answer = errorBody('overloaded', `not serving: ${acceptor.notServingReason}`);
      reply.json(
        503,
        JSON.stringify({ status: 'unavailable', reason: acceptor.notServingReason, ...answer.body }),
        [['retry-after', '1']],
      );
    },
    clusterStatus: (_q, reply) => {
      control.status().then(
        (status) =>
          reply.json(
            200,
            JSON.stringify({
              ...status,
              serving: acceptor.serving,
              http_port: server.port,
              cluster_port: control.clusterPort,
              kafka_port: kafka?.port ?? null,
              uptime_ms: Date.now() - startedAtMs,
            }),
          ),
        (error: unknown) => reply.error('no_leader', `cluster status unavailable: ${String(error)}`),
      );
    },
    metrics: (_q, reply) => {
      metrics.render().then(
        (text) => reply.text(200, metrics.contentType, text),
        (error: unknown) => reply.error('internal', `metrics failed: ${String(error)}`),
      );
    },
    assignmentPlan: (q, reply) => moveAdmin.plan(q, reply),
    openapi: (_q, reply) => reply.json(200, openApiText),
  });
  routes.push(...buildOpsRoutes(topicAdmin, groupAdmin));
  routes.push(...buildMoveRoutes(moveAdmin));
  routes.push(...buildWorkerRoutes(workerMoves));
  routes.push(
    ...buildAclRoutes(
      new AclAdmin({
        bindings: () => access.aclSet.bindings,
        createAcls: (acls) => store.createAcls(acls),
        deleteAcls: (filter) => store.deleteAcls(filter),
        enforced: access.enabled,
      }),
    ),
  );
  // Every consumer-group route is served by the coordinator: passed on from any other node.
  routes = routes.map((route) =>
    route.pattern.startsWith('/consumer-groups')
      ? { ...route, handle: groupForwarder.wrap(route.handle) }
      : route,
  );
  const openApiText = JSON.stringify(openApiDocument(routes, packageVersion));

  const streams = new StreamServer(acceptor, groups, groupMembers, {
    ...defaultStreamOptions,
    socketMessageBytesMax: config.maxRequestBytes,
  });
  metrics.registerStreamFeeds(streams.feeds);
  streams.access = access;
  const quotas =
    config.quotaProduceBytesPerS === 0 && config.quotaConsumeBytesPerS === 0
      ? null
      : new ClientQuotas({
          produceBytesPerS: config.quotaProduceBytesPerS,
          consumeBytesPerS: config.quotaConsumeBytesPerS,
          entriesMax: quotaPrincipalsMax,
          burstMs: quotaBurstMs,
          sweepIntervalMs: 10_000,
          nowMs: () => performance.now(),
          throttled: metrics.quotaThrottled,
        });
  streams.quotas = quotas;
  const addressLimiter =
    config.maxConnectionsPerIp === 0
      ? null
      : new AddressLimiter({
          maxConnections: config.maxConnectionsPerIp,
          refused: metrics.connectionsRefused,
          log,
        });
  streams.addressCap = addressLimiter;
  if (access.enabled && tls === null && !isLoopback(config.host)) {
    log.warn(
      { host: config.host },
      `bearer tokens travel in clear text: the client port listens on ${config.host} without TLS. Give --tls-cert-file and --tls-key-file, or put a TLS-terminating proxy in front`,
    );
  }
  const guard = new ConnectionGuard({
    budget,
    countDescriptors: countOpenDescriptors,
    segmentDescriptors: () => statsViews.reduce((sum, v) => sum + (v[StatSlot.segmentFdsOpen] ?? 0), 0),
    countThreads,
    openSpare: () => openSync('/dev/null', 'r'),
    closeSpare: (fd) => closeSync(fd),
    log,
  });
  // What is open before the server listens is not a client connection; a round trip to every worker first
  // proves each thread is up with its descriptors open.
  await Promise.all(links.map((link) => acceptor.controlWorker(link, { op: 'health' })));
  guard.measureBaseline();
  streams.admit = () => guard.admitHeld();
  metrics.connections = () => ({
    connections: guard.connections,
    maxConnections: budget.maxConnections,
    openDescriptors: guard.openDescriptors,
    openFilesLimit: budget.openFilesLimit,
    refused: guard.shed,
    exhausted: guard.exhausted,
  });
  // uWebSockets.js shares a port between threads (SO_REUSEPORT) only when it is given one: with port 0 and
  // several acceptors, a free port is found first (and another tried if it was taken meanwhile).
  const sharedPort = (): Promise<number> =>
    extraAcceptorCount > 0 && config.port === 0 ? freePort(config.host) : Promise.resolve(config.port);
  const serverOptions = {
    host: config.host,
    port: await sharedPort(),
    maxRequestBytes: config.maxRequestBytes,
    admit: () => guard.admit(),
    access,
    tls,
    ...(addressLimiter === null ? {} : { addressCap: addressLimiter }),
    ...(quotas === null ? {} : { quotas }),
    relayListen: extraAcceptorCount > 0,
    extend: (app) => {
      streams.register(app);
      registerUi(app, uiAssets);
    },
    onRequestDone: (operation: string, status: number, seconds: number) => {
      metrics.observeRequest(operation, status, seconds);
    },
  } satisfies ServerOptions;
  let server: HttpServer;
  for (let attempt = 1; ; attempt++) {
    try {
      server = await startHttpServer(routes, serverOptions);
      break;
    } catch (error) {
      if (extraAcceptorCount === 0 || config.port !== 0 || attempt === 5) throw error;
      serverOptions.port = await sharedPort();
    }
  }
  guard.start();
  await addressLimiter?.start(server.port);
  // The Kafka wire protocol on its own port, served on this thread through the same acceptor and router.
  // With authentication on, clients authenticate with SASL PLAIN (the password is their bearer token or JWT)
  // and the same ACLs apply as on HTTP; the port has no TLS, so the tokens travel in clear text.
  if (config.kafkaPort >= 0 && access.enabled) {
    log.warn(
      { kafkaPort: config.kafkaPort },
      'the Kafka port authenticates with SASL PLAIN without TLS (SASL_PLAINTEXT): tokens travel in clear text; keep it on a trusted network',
    );
  } else if (config.kafkaPort >= 0 && tls !== null) {
    log.warn({ kafkaPort: config.kafkaPort }, 'the Kafka port has no TLS: its records travel in clear text');
  }
  kafka =
    config.kafkaPort < 0
      ? null
      : new KafkaListener(
          new KafkaApiHandlers(acceptor, {
            config,
            advertised: (): { host: string; port: number } => ({
              host: config.address,
              port: kafka?.port ?? 0,
            }),
            groups,
            coordinator: coordinatorTarget,
            access,
            metadataLeader: () => control.raftLeader.leaderId,
            log,
          }),
          {
            host: config.host,
            port: config.kafkaPort,
            requestBytesMax: config.maxRequestBytes,
            inFlightMax: kafkaInFlightMax,
            connectionsMax: budget.maxConnections,
            admit: () => guard.admit(),
            log,
          },
        );
  try {
    await kafka?.start();
  } catch (error) {
    server.stopListening();
    throw new Error(
      `the Kafka port ${config.kafkaPort} could not be bound (${String((error as Error).message)}); give --kafka-port another port, 0 for a free one, or -1 to turn the Kafka listener off`,
    );
  }
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      // A controlled shutdown first: while this node still serves (and forwards), the controller moves every
      // leadership it holds to an in-sync replica and takes it out of the ISRs, so a rolling restart costs one
      // election per partition and no acks=all write waits for a broker that is going away.
      if (acceptor.serving) {
        acceptor.notServingReason = 'shutting down: moving leaderships to other replicas';
        const moved = await control.request({ op: 'set_shutting_down', shuttingDown: true });
        if (moved.kind === 'failed') log.warn({ reason: moved.message }, 'controlled shutdown incomplete');
      }
      closing = true;
      acceptor.serving = false;
      acceptor.notServingReason = 'shutting down';
      // Extra acceptors first: they stop listening and wait for their answers, before any worker's shutdown.
      await extras?.stop();
      guard.stop();
      addressLimiter?.stop();
      quotas?.stop();
      autoBalancer.stop();
      workerMoves.stop();
      server.stopListening();
      await kafka?.close();
      // The shutdown frame sits behind every request already in the ring, so each worker answers those first,
      // then flushes and closes its logs.
      streams.closeAll();
      pool.close();
      groupForwarder.close();
      const answers = await Promise.all(
        links.map((link) => {
          const answered = new Promise<{ clean?: boolean }>((done) => {
            link.send(
              MessageKind.Shutdown,
              0,
              () => undefined,
              (_kind, _view, bytes, at, length) => {
                done(JSON.parse(bytes.toString('utf8', at, at + length)) as { clean?: boolean });
              },
            );
          });
          link.refuseNewRequests();
          return answered;
        }),
      );
      for (const link of links) link.stop();
      await Promise.all(linkRuns);
      await Promise.all(exits);
      if (answers.every((a) => a.clean === true)) {
        // Every log was closed at its end: the next start may open partitions lazily from checkpoints.
        const fd = openSync(cleanMarker, 'w');
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        fsyncPath(dataDir);
      } else {
        log.warn('some partition logs did not close cleanly; the next start recovers them');
      }
      await offload.close();
      await groups.close();
      await store.close();
      log.info('broker stopped');
    })();
    return closed;
  };
  // Resolves when a stop is requested; every wait for the cluster below races it.
  const aborted = new Promise<'aborted'>((resolve) => {
    if (signal?.aborted === true) resolve('aborted');
    signal?.addEventListener('abort', () => resolve('aborted'), { once: true });
  });
  const unlessAborted = async (wait: Promise<unknown>): Promise<void> => {
    if ((await Promise.race([wait.then(() => 'done' as const), aborted])) === 'done') return;
    await close();
    throw new StartAborted('stopped before the broker was ready to serve');
  };
  // Other brokers learn this node's HTTP, data-link and Kafka ports through gossip; it serves once it has
  // caught up with a leader.
  acceptor.notServingReason = 'joining the cluster: no metadata leader reached yet';
  const advertised = await control.request({
    op: 'advertise',
    httpPort: server.port,
    dataPorts,
    kafkaPort: kafka?.port ?? 0,
  });
  if (advertised.kind === 'failed') throw new Error(`could not start gossip: ${advertised.message}`);
  if (!control.isReady) {
    log.info({ seeds: config.seeds, clusterPort: control.clusterPort }, 'waiting for a metadata leader');
  }
  await unlessAborted(control.ready);
  if (importTopics.length > 0) {
    const names = importTopics.map((t) => t.name);
    while (!names.every((name) => store.snapshot().topics.has(name))) {
      await unlessAborted(new Promise((resolve) => setTimeout(resolve, 20)));
    }
    renameSync(legacyMetadata, `${legacyMetadata}.imported`);
    log.info({ topics: names }, 'imported the topics of metadata.json into the Raft log');
  }
  // Serving means this node can hold partitions: wait for its own registration (with this HTTP port) and fence
  // lift to be applied, or a topic created the moment it says "serving" would find no broker to place on.
  acceptor.notServingReason = 'joining the cluster: waiting to be registered by the metadata leader';
  await unlessAborted(
    new Promise<void>((resolve) => {
      const registered = () => {
        const me = store.snapshot().brokers.get(config.nodeId);
        return (
          me !== undefined &&
          !me.fenced &&
          !me.shuttingDown &&
          me.httpPort === server.port &&
          me.kafkaPort === (kafka?.port ?? 0) &&
          me.dataPorts.length === dataPorts.length &&
          me.dataPorts.every((port, i) => port === dataPorts[i])
        );
      };
      if (registered()) return resolve();
      store.onChange(() => {
        if (registered()) resolve();
      });
    }),
  );
  await unlessAborted(acceptor.metadataSettled());
  // Group requests are answered from the moment the node serves: the coordinator is known (this node, once
  // it has rebuilt the groups, or the metadata leader elsewhere).
  acceptor.notServingReason = 'joining the cluster: waiting for the consumer-group coordinator';
  await unlessAborted(
    new Promise<void>((resolve) => {
      const known = () => {
        const leaderId = control.raftLeader.leaderId;
        return leaderId !== '' && (leaderId !== config.nodeId || groups.coordinates);
      };
      if (known()) return resolve();
      const timer = setInterval(() => {
        if (!known()) return;
        clearInterval(timer);
        resolve();
      }, 10);
      void aborted.then(() => clearInterval(timer));
    }),
  );
  acceptor.serving = true;
  if (extraAcceptorCount > 0) {
    const relayToken = randomBytes(24).toString('hex');
    setRelayToken(relayToken);
    const publishAdmitting = (): void => {
      Atomics.store(admitting, 0, guard.admitting ? 1 : 0);
    };
    publishAdmitting();
    setInterval(publishAdmitting, 100).unref();
    extras = ExtraAcceptors.spawn(
      {
        config,
        port: server.port,
        relayPort: server.relayPort!,
        relayToken,
        admitting: admitting.buffer as SharedArrayBuffer,
        clusterSecret,
        authStats,
        clusterTls,
      },
      extraRings,
      store.snapshot(),
      [...router.placement],
      log,
      (message) => {
        if (closing) return;
        log.fatal({ message }, 'an acceptor thread failed; stopping the broker');
        process.exit(1);
      },
    );
    const spawned = extras;
    spawned.registerMetrics(metrics.registry);
    metrics.peerFigures = () => spawned.figures();
    store.onChange((snapshot) => spawned.metadata(snapshot));
    await unlessAborted(spawned.listening);
  }
  workerMoves.start();
  acceptor.notServingReason = '';
  const legacyGroups = join(dataDir, 'groups.json');
  if (existsSync(legacyGroups) && access.enabled) {
    // The import goes through this node's own group routes, which now want a principal it does not have.
    log.warn(
      { file: legacyGroups },
      'groups.json is not imported while authentication is on; start once without it to import',
    );
  } else if (existsSync(legacyGroups) && tls !== null) {
    // The import goes through this node's own client port, which now speaks TLS with a certificate for others.
    log.warn(
      { file: legacyGroups },
      'groups.json is not imported while TLS is on; start once without it to import',
    );
  } else if (existsSync(legacyGroups)) {
    void importLegacyGroups(legacyGroups, `http://127.0.0.1:${server.port}`, config.nodeId).then(
      (outcome) => log.info(outcome, 'imported the committed offsets of groups.json through the coordinator'),
      (error: unknown) =>
        log.warn(
          { err: error },
          'groups.json could not be imported yet; it is tried again at the next start',
        ),
    );
  }
  log.info(
    {
      port: server.port,
      clusterPort: control.clusterPort,
      kafkaPort: kafka?.port ?? null,
      nodeId: config.nodeId,
      dataDir,
      threads: config.threads,
      walSyncIntervalMs: config.walSyncIntervalMs,
      cleanStart: cleanShutdown,
      descriptors: budget,
    },
    'broker serving',
  );

  const reloadTls = async (): Promise<readonly string[]> => {
    if (tls === null) throw new Error('the client port has no TLS (--tls-cert-file)');
    const next = loadTlsSettings(config);
    assert(next !== null, 'TLS settings vanished');
    if (next.dnsNames.length === 0) {
      throw new Error(
        `the certificate ${next.certFile} has no DNS name in its subjectAltName: only clients that name the server (SNI) can be served a new certificate without a restart`,
      );
    }
    server.reloadTls(next, next.dnsNames);
    logTls(log, next, `TLS certificate reloaded for clients that name ${next.dnsNames.join(', ')} (SNI)`);
    return next.dnsNames;
  };

  const reloadClusterTls = async (): Promise<ClusterTlsMaterial> => {
    if (clusterTls === null) throw new Error('cluster TLS is off (--cluster-tls-cert-file)');
    // Checked here first, so a bad file is reported once and no thread drops the certificates it has.
    const next = loadClusterTlsMaterial(clusterTls.files);
    announceClusterTlsReload(clusterTls.reload);
    logClusterTls(log, next, 'cluster TLS certificates reloaded for new node-to-node connections');
    return next;
  };

  return { port: server.port, reloadTls, reloadClusterTls, close };
}

/** A port free on `host` now (the kernel's pick for port 0), for acceptors that must share one. */
function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, rejectPort) => {
    const probe = createServer();
    probe.once('error', rejectPort);
    probe.listen(0, host, () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address !== null
          ? resolvePort(address.port)
          : rejectPort(new Error('no port')),
      );
    });
  });
}

/** Principals tracked per quota table (one bucket each); beyond it the least recently used is dropped. */
const quotaPrincipalsMax = 100_000;
/** A quota's burst after idleness: one second of its rate (Kafka measures quotas over 1 s samples). */
const quotaBurstMs = 1000;

function logClusterTls(log: Logger, material: ClusterTlsMaterial, message: string): void {
  const fields = {
    subject: material.subject,
    validTo: material.validTo,
    fingerprint256: material.fingerprint256,
  };
  if (material.outOfDate) {
    log.warn(
      fields,
      `${message}; THE CERTIFICATE IS OUTSIDE ITS VALIDITY PERIOD: the other nodes will refuse it`,
    );
  } else {
    log.info(fields, message);
  }
}

function logTls(log: Logger, tls: TlsSettings, message: string): void {
  const fields = {
    subject: tls.subject,
    validTo: tls.validTo,
    fingerprint256: tls.fingerprint256,
    clientAuth: tls.clientAuth,
  };
  if (tls.outOfDate) {
    log.warn(fields, `${message}; THE CERTIFICATE IS OUTSIDE ITS VALIDITY PERIOD: clients will refuse it`);
  } else {
    log.info(fields, message);
  }
}

/**
 * The committed offsets of a groups.json from before the metadata log, committed through this node's own group
 * routes (served by the coordinator, wherever it is) as standalone commits. An offset the log already holds for
 * the same group and partition is newer and is kept. The file is renamed once every offset is in.
 */
async function importLegacyGroups(
  file: string,
  base: string,
  nodeId: string,
): Promise<{ groups: number; imported: number; kept: number }> {
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as GroupsSnapshot;
  let imported = 0;
  let kept = 0;
  const headers = { 'content-type': 'application/json', 'x-imported-by': nodeId };
  for (const group of snapshot.groups) {
    for (const o of group.offsets) {
      const path = `${base}/consumer-groups/${encodeURIComponent(group.groupId)}/offsets/${encodeURIComponent(o.topic)}/${o.partition}`;
      const existing = await fetch(path, { headers, signal: AbortSignal.timeout(10_000) });
      await existing.arrayBuffer();
      if (existing.status === 200) {
        kept++;
        continue;
      }
      const body = JSON.stringify({ offset: o.offset, metadata: o.metadata });
      const made = await fetch(path, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
      const text = await made.text();
      // A topic deleted since is nothing to import.
      if (made.status === 404 || made.status === 416) continue;
      if (made.status !== 200)
        throw new Error(`${group.groupId} ${o.topic}-${o.partition}: ${made.status} ${text}`);
      imported++;
    }
  }
  renameSync(file, `${file}.imported`);
  return { groups: snapshot.groups.length, imported, kept };
}
