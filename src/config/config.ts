// The broker's configuration: one schema that lists every option once (its camelCase name, CLI flag, BROKER_*
// environment variable, config-file key, type, default, bounds and a one-line description), the parsing of
// the four sources, and the validation that turns them into one frozen BrokerConfig.
//
// Precedence: flags > environment > config file (`--config broker.json`) > defaults.
// Every value given is checked, including one that a higher source overrides, and every problem is collected:
// start-up reports them all at once instead of one per attempt. Problems are values (ConfigProblem), never
// exceptions; a caller prints them and exits.
//
// Invariants of a BrokerConfig: every number is a safe integer within its option's bounds, sizes are bytes and
// durations milliseconds (units last in names), the object and everything in it is frozen, and `sources` says
// where each value came from.
//
// Called on the main thread at start-up; the frozen result may be passed to any thread (it is plain data).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { assert } from '../core/assert.js';

export const configSources = ['default', 'file', 'env', 'flag'] as const;
export type ConfigSource = (typeof configSources)[number];

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];
export const autoBalanceModes = ['off', 'node-add', 'continuous'] as const;
export type AutoBalanceMode = (typeof autoBalanceModes)[number];
export const tlsClientAuthModes = ['none', 'request', 'require'] as const;
export type TlsClientAuth = (typeof tlsClientAuthModes)[number];

export interface SeedAddress {
  readonly host: string;
  readonly port: number;
}

/** The validated values, one field per option. Sizes in bytes, durations in milliseconds. */
export interface BrokerValues {
  readonly nodeId: string;
  readonly port: number;
  readonly host: string;
  readonly clusterPort: number;
  /** Kafka wire-protocol port; 0 picks a free one, -1 turns the listener off. */
  readonly kafkaPort: number;
  readonly address: string;
  readonly dataDir: string;
  readonly seeds: readonly SeedAddress[];
  readonly segmentBytes: number;
  readonly walSyncIntervalMs: number;
  readonly commitOverlapMs: number;
  readonly gossipIntervalMs: number;
  readonly gossipDeadReclaimMs: number;
  readonly threads: number;
  readonly rack: string | null;
  readonly configFile: string | null;
  readonly maxRequestBytes: number;
  readonly largeBodyBytes: number;
  readonly ringBytes: number;
  readonly retentionMs: number;
  readonly retentionBytes: number;
  readonly defaultNumPartitions: number;
  readonly sessionTimeoutMs: number;
  /** An empty group's committed offsets are deleted this long after its last commit (-1: kept forever). */
  readonly offsetsRetentionMs: number;
  readonly raftVoters: number;
  readonly raftVoterReplaceAfterMs: number;
  readonly acceptorThreads: number;
  readonly logLevel: LogLevel;
  readonly maxWaitMs: number;
  readonly maxConnections: number;
  readonly segmentFdsPerThread: number;
  readonly maxPartitionsPerThread: number;
  readonly defaultReplicationFactor: number;
  readonly dataPort: number;
  readonly replicaLagTimeMaxMs: number;
  /** How often the worker balancer looks at per-partition load and moves partitions between workers; 0: off. */
  readonly workerBalanceIntervalMs: number;
  /** The busiest worker may carry this many percent above the mean before partitions move. */
  readonly workerBalanceTolerancePercent: number;
  /** Partitions the worker balancer moves per round at most. */
  readonly workerBalanceMovesMax: number;
  /** Bytes a second a leader sends to replicas outside the ISR (moves, long absences); 0: unthrottled. */
  readonly replicationThrottleBytes: number;
  /** 'node-add': a broker registering for the first time gets its share of replicas without a request. */
  readonly autoBalance: AutoBalanceMode;
  /** With `autoBalance` continuous: a broker fenced this long has its replicas moved to live brokers. */
  readonly nodeDownTimeoutMs: number;
  /** Principal -> salted scrypt hash of a bearer token (src/core/security/token-file.ts); null: none. */
  readonly authTokensFile: string | null;
  readonly authJwtHs256SecretFile: string | null;
  readonly authJwtRs256PublicKeyFile: string | null;
  readonly authJwtAudience: string | null;
  readonly authJwtIssuer: string | null;
  /** The shared cluster secret (32 bytes or more) authenticating node-to-node traffic; null: none. */
  readonly clusterSecretFile: string | null;
  /** This node's PEM certificate (chain) for node-to-node TLS; with the key and the CA file, or none of them. */
  readonly clusterTlsCertFile: string | null;
  readonly clusterTlsKeyFile: string | null;
  /** The cluster CA: every node's certificate must chain to it (mutual TLS between nodes). */
  readonly clusterTlsCaFile: string | null;
  /** Principals that bypass ACLs. */
  readonly superUsers: readonly string[];
  readonly metricsRequireAuth: boolean;
  /** PEM certificate (chain) of the client port; with `tlsKeyFile`, the client port speaks only TLS. */
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
  /** PEM CA certificates that client certificates must chain to (with `tlsClientAuth` request or require). */
  readonly tlsCaFile: string | null;
  readonly tlsClientAuth: TlsClientAuth;
  /** Produce bytes a second per principal (Kafka's producer_byte_rate); 0: unlimited. */
  readonly quotaProduceBytesPerS: number;
  /** Consume bytes a second per principal (Kafka's consumer_byte_rate); 0: unlimited. */
  readonly quotaConsumeBytesPerS: number;
  /** Client connections one remote address may hold at once; 0: unlimited. */
  readonly maxConnectionsPerIp: number;
}

export type ConfigField = keyof BrokerValues;

/** The configuration the broker runs with: frozen values plus where each came from. */
export interface BrokerConfig extends BrokerValues {
  readonly sources: Readonly<Record<ConfigField, ConfigSource>>;
}

/** How an option's text is read. */
export type OptionKind =
  | 'integer' // a plain integer
  | 'bytes' // an integer number of bytes, or with a unit: 10MB, 512KiB
  | 'duration' // milliseconds, or with units: 250ms, 1s, 2m, 1m30s
  | 'name' // [a-zA-Z0-9._-]{1,64}
  | 'host' // an IP address or a DNS name
  | 'address' // like host, but reachable by others: not 0.0.0.0 or ::
  | 'path' // a non-empty file system path
  | 'seeds' // comma-separated host:port list
  | 'logLevel' // one of the pino levels
  | 'autoBalance' // off, node-add or continuous
  | 'tlsClientAuth' // none, request or require
  | 'text' // 1-255 printable ASCII characters (a JWT audience or issuer)
  | 'principals' // comma-separated principals (printable ASCII, no spaces or commas)
  | 'boolean'; // true or false

export interface OptionSpec<F extends ConfigField = ConfigField> {
  /** camelCase option name (the field name, unless the field carries a unit the option name does not). */
  readonly name: string;
  readonly field: F;
  /** CLI flag without the leading dashes, kebab-case. */
  readonly flag: string;
  /** Environment variable, `BROKER_` + SCREAMING_SNAKE of the name. */
  readonly env: string;
  /**
   * Other environment names read when `env` is unset, in order: the seed's deployment names (`NODE_ID`,
   * `PORT`, `CLUSTER_PORT`, `SEEDS`), which docker-compose files and Kubernetes manifests set.
   */
  readonly envAliases?: readonly string[];
  /** Key in the JSON config file, snake_case; null when the file cannot set it. */
  readonly fileKey: string | null;
  readonly kind: OptionKind;
  /** The default value; `threads` defaults to the machine's available parallelism, resolved at load. */
  readonly defaultValue: BrokerValues[F] | 'availableParallelism';
  /** The default as documentation shows it. */
  readonly defaultText: string;
  /** Inclusive bounds for numeric kinds. */
  readonly min?: number;
  readonly max?: number;
  readonly powerOfTwo?: boolean;
  readonly description: string;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const dayMs = 24 * 60 * 60 * 1000;
const int32Max = 2 ** 31 - 1;
const seedsMax = 64;

/** Upper bound of the `threads` default: the option's own maximum. */
const threadsMax = 256;

type OptionTable = { readonly [F in ConfigField]: OptionSpec<F> };

/**
 * The schema. The README's configuration table and the CLI's flags are generated from it, so an option
 * documented anywhere is this entry.
 */
export const optionSpecs: OptionTable = {
  nodeId: {
    name: 'nodeId',
    field: 'nodeId',
    flag: 'node-id',
    env: 'BROKER_NODE_ID',
    envAliases: ['NODE_ID'],
    fileKey: 'node_id',
    kind: 'name',
    defaultValue: 'broker-1',
    defaultText: 'broker-1',
    description: 'Unique id of this broker in the cluster, `[a-zA-Z0-9._-]{1,64}`.',
  },
  port: {
    name: 'port',
    field: 'port',
    flag: 'port',
    env: 'BROKER_PORT',
    envAliases: ['PORT'],
    fileKey: 'port',
    kind: 'integer',
    defaultValue: 8080,
    defaultText: '8080',
    min: 0,
    max: 65535,
    description: 'HTTP and WebSocket port for clients; 0 picks a free port.',
  },
  host: {
    name: 'host',
    field: 'host',
    flag: 'host',
    env: 'BROKER_HOST',
    fileKey: 'host',
    kind: 'host',
    defaultValue: '0.0.0.0',
    defaultText: '0.0.0.0',
    description: 'Interface the client port and the cluster port bind to.',
  },
  clusterPort: {
    name: 'clusterPort',
    field: 'clusterPort',
    flag: 'cluster-port',
    env: 'BROKER_CLUSTER_PORT',
    envAliases: ['CLUSTER_PORT'],
    fileKey: 'cluster_port',
    kind: 'integer',
    defaultValue: 7946,
    defaultText: '7946',
    min: 0,
    max: 65535,
    description: 'Port between brokers: TCP for Raft and replication, UDP for gossip; 0 picks a free port.',
  },
  kafkaPort: {
    name: 'kafkaPort',
    field: 'kafkaPort',
    flag: 'kafka-port',
    env: 'BROKER_KAFKA_PORT',
    fileKey: 'kafka_port',
    kind: 'integer',
    defaultValue: 9092,
    defaultText: '9092',
    min: -1,
    max: 65535,
    description:
      'Port of the Kafka wire protocol (kafkajs, librdkafka/kcat, Java clients), advertised at --address; 0 picks a free port, -1 turns it off.',
  },
  address: {
    name: 'address',
    field: 'address',
    flag: 'address',
    env: 'BROKER_ADDRESS',
    fileKey: 'address',
    kind: 'address',
    defaultValue: '127.0.0.1',
    defaultText: '127.0.0.1',
    description: 'Address other brokers and redirected clients use to reach this one.',
  },
  dataDir: {
    name: 'dataDir',
    field: 'dataDir',
    flag: 'data-dir',
    env: 'BROKER_DATA_DIR',
    fileKey: 'data_dir',
    kind: 'path',
    defaultValue: './data',
    defaultText: './data',
    description: 'Directory of the partition logs and the Raft state.',
  },
  seeds: {
    name: 'seeds',
    field: 'seeds',
    flag: 'seeds',
    env: 'BROKER_SEEDS',
    envAliases: ['SEEDS'],
    fileKey: 'seeds',
    kind: 'seeds',
    defaultValue: [],
    defaultText: '(none)',
    description: `Cluster ports of brokers to join, host:port,... (at most ${seedsMax}); none starts a new cluster.`,
  },
  segmentBytes: {
    name: 'segmentSize',
    field: 'segmentBytes',
    flag: 'segment-size',
    env: 'BROKER_SEGMENT_SIZE',
    fileKey: 'segment_size',
    kind: 'bytes',
    defaultValue: 128 * MiB,
    defaultText: '128MiB',
    min: 4 * KiB,
    max: int32Max,
    description: 'Size at which a segment file rolls (bytes, or 10MB / 512KiB style).',
  },
  walSyncIntervalMs: {
    name: 'walSyncInterval',
    field: 'walSyncIntervalMs',
    flag: 'wal-sync-interval',
    env: 'BROKER_WAL_SYNC_INTERVAL',
    fileKey: 'wal_sync_interval',
    kind: 'duration',
    defaultValue: 0,
    defaultText: '0',
    min: 0,
    max: 60 * 60 * 1000,
    description: 'fsync period of the logs; 0 fsyncs each batch before acknowledging it (ms, or 250ms / 1s).',
  },
  commitOverlapMs: {
    name: 'commitOverlap',
    field: 'commitOverlapMs',
    flag: 'commit-overlap',
    env: 'BROKER_COMMIT_OVERLAP',
    fileKey: 'commit_overlap',
    kind: 'duration',
    defaultValue: 2,
    defaultText: '2ms',
    min: 0,
    max: 60 * 1000,
    description:
      'Group commits whose fsyncs take this long on average also stage and write the next batch while they sync; 0 always (ms, or 2ms).',
  },
  gossipIntervalMs: {
    name: 'gossipInterval',
    field: 'gossipIntervalMs',
    flag: 'gossip-interval',
    env: 'BROKER_GOSSIP_INTERVAL',
    fileKey: 'gossip_interval',
    kind: 'duration',
    defaultValue: 200,
    defaultText: '200ms',
    min: 10,
    max: 60 * 1000,
    description: 'Period of the SWIM gossip probe round (ms, or 200ms / 1s).',
  },
  gossipDeadReclaimMs: {
    name: 'gossipDeadReclaim',
    field: 'gossipDeadReclaimMs',
    flag: 'gossip-dead-reclaim',
    env: 'BROKER_GOSSIP_DEAD_RECLAIM',
    fileKey: 'gossip_dead_reclaim',
    kind: 'duration',
    defaultValue: 30_000,
    defaultText: '30s',
    min: 1_000,
    max: 24 * 60 * 60 * 1000,
    description:
      "How long gossip remembers a dead or departed member before forgetting it (memberlist's DeadNodeReclaimTime).",
  },
  threads: {
    name: 'threads',
    field: 'threads',
    flag: 'threads',
    env: 'BROKER_THREADS',
    fileKey: 'threads',
    kind: 'integer',
    defaultValue: 'availableParallelism',
    defaultText: 'CPU count',
    min: 1,
    max: threadsMax,
    description: 'Partition worker threads; the default is os.availableParallelism().',
  },
  rack: {
    name: 'rack',
    field: 'rack',
    flag: 'rack',
    env: 'BROKER_RACK',
    fileKey: 'rack',
    kind: 'name',
    defaultValue: null,
    defaultText: '(none)',
    description: 'Rack or zone of this broker, used to spread replicas; `[a-zA-Z0-9._-]{1,64}`.',
  },
  configFile: {
    name: 'config',
    field: 'configFile',
    flag: 'config',
    env: 'BROKER_CONFIG',
    fileKey: null,
    kind: 'path',
    defaultValue: null,
    defaultText: '(none)',
    description:
      'JSON object of options by file key (numbers in bytes or ms); flags and environment override it.',
  },
  maxRequestBytes: {
    name: 'maxRequestBytes',
    field: 'maxRequestBytes',
    flag: 'max-request-bytes',
    env: 'BROKER_MAX_REQUEST_BYTES',
    fileKey: 'max_request_bytes',
    kind: 'bytes',
    defaultValue: 8 * MiB,
    defaultText: '8MiB',
    min: 1 * KiB,
    max: 1 * GiB,
    description: 'Largest request body; a larger one gets 413 before it is buffered.',
  },
  largeBodyBytes: {
    name: 'largeBodyBytes',
    field: 'largeBodyBytes',
    flag: 'large-body-bytes',
    env: 'BROKER_LARGE_BODY_BYTES',
    fileKey: 'large_body_bytes',
    kind: 'bytes',
    defaultValue: 256 * KiB,
    defaultText: '256KiB',
    min: 1 * KiB,
    max: 1 * GiB,
    description:
      'Bodies at or above this size are parsed off the acceptor thread. At most --max-request-bytes.',
  },
  ringBytes: {
    name: 'ringBytes',
    field: 'ringBytes',
    flag: 'ring-bytes',
    env: 'BROKER_RING_BYTES',
    fileKey: 'ring_bytes',
    kind: 'bytes',
    defaultValue: 2 * MiB,
    defaultText: '2MiB',
    min: 64 * KiB,
    max: 1 * GiB,
    powerOfTwo: true,
    description:
      'Size of each request and response ring, a power of two; one frame (a quarter of it) bounds a record and a fetch.',
  },
  retentionMs: {
    name: 'retentionMs',
    field: 'retentionMs',
    flag: 'retention-ms',
    env: 'BROKER_RETENTION_MS',
    fileKey: 'retention_ms',
    kind: 'integer',
    defaultValue: 7 * dayMs,
    defaultText: '604800000 (7 days)',
    min: -1,
    max: Number.MAX_SAFE_INTEGER,
    description: 'Default age after which whole segments are deleted, in ms; -1 keeps them forever.',
  },
  retentionBytes: {
    name: 'retentionBytes',
    field: 'retentionBytes',
    flag: 'retention-bytes',
    env: 'BROKER_RETENTION_BYTES',
    fileKey: 'retention_bytes',
    kind: 'bytes',
    defaultValue: -1,
    defaultText: '-1',
    min: -1,
    max: Number.MAX_SAFE_INTEGER,
    description: 'Default size per partition above which the oldest segments are deleted; -1 means no limit.',
  },
  defaultNumPartitions: {
    name: 'defaultNumPartitions',
    field: 'defaultNumPartitions',
    flag: 'default-num-partitions',
    env: 'BROKER_DEFAULT_NUM_PARTITIONS',
    fileKey: 'default_num_partitions',
    kind: 'integer',
    defaultValue: 1,
    defaultText: '1',
    min: 1,
    max: 4096,
    description: 'Partitions of a topic created without num_partitions.',
  },
  sessionTimeoutMs: {
    name: 'sessionTimeoutMs',
    field: 'sessionTimeoutMs',
    flag: 'session-timeout-ms',
    env: 'BROKER_SESSION_TIMEOUT_MS',
    fileKey: 'session_timeout_ms',
    kind: 'integer',
    defaultValue: 10_000,
    defaultText: '10000',
    min: 100,
    max: 30 * 60 * 1000,
    description: 'A group member silent this long is removed and its partitions reassigned.',
  },
  offsetsRetentionMs: {
    name: 'offsetsRetentionMs',
    field: 'offsetsRetentionMs',
    flag: 'offsets-retention-ms',
    env: 'BROKER_OFFSETS_RETENTION_MS',
    fileKey: 'offsets_retention_ms',
    kind: 'integer',
    defaultValue: 7 * dayMs,
    defaultText: '604800000 (7 days)',
    min: -1,
    max: Number.MAX_SAFE_INTEGER,
    description:
      "A consumer group with no members loses its committed offsets this long after its last commit (Kafka's offsets.retention.minutes); -1 keeps them forever.",
  },
  raftVoters: {
    name: 'raftVoters',
    field: 'raftVoters',
    flag: 'raft-voters',
    env: 'BROKER_RAFT_VOTERS',
    fileKey: 'raft_voters',
    kind: 'integer',
    defaultValue: 3,
    defaultText: '3',
    min: 1,
    max: 9,
    description: 'Brokers that vote in the metadata Raft group; n voters survive (n-1)/2 failures.',
  },
  raftVoterReplaceAfterMs: {
    name: 'raftVoterReplaceAfter',
    field: 'raftVoterReplaceAfterMs',
    flag: 'raft-voter-replace-after',
    env: 'BROKER_RAFT_VOTER_REPLACE_AFTER',
    fileKey: 'raft_voter_replace_after',
    kind: 'duration',
    defaultValue: 30_000,
    defaultText: '30s',
    min: 1_000,
    max: 24 * 60 * 60 * 1000,
    description:
      'A Raft voter dead or gone this long gives its seat to a caught-up learner (ms, or 30s / 5m).',
  },
  acceptorThreads: {
    name: 'acceptorThreads',
    field: 'acceptorThreads',
    flag: 'acceptor-threads',
    env: 'BROKER_ACCEPTOR_THREADS',
    fileKey: 'acceptor_threads',
    kind: 'integer',
    defaultValue: 1,
    defaultText: '1',
    min: 1,
    max: 64,
    description: 'Threads sharing the client port, each with its own ring pair to every worker.',
  },
  logLevel: {
    name: 'logLevel',
    field: 'logLevel',
    flag: 'log-level',
    env: 'BROKER_LOG_LEVEL',
    fileKey: 'log_level',
    kind: 'logLevel',
    defaultValue: 'info',
    defaultText: 'info',
    description: `Least severe log level written: ${logLevels.join(', ')}.`,
  },
  maxWaitMs: {
    name: 'maxWaitMs',
    field: 'maxWaitMs',
    flag: 'max-wait-ms',
    env: 'BROKER_MAX_WAIT_MS',
    fileKey: 'max_wait_ms',
    kind: 'integer',
    defaultValue: 30_000,
    defaultText: '30000',
    min: 0,
    max: 5 * 60 * 1000,
    description: 'Longest long-poll wait a consume request may ask for (wait_ms), in ms.',
  },
  maxConnections: {
    name: 'maxConnections',
    field: 'maxConnections',
    flag: 'max-connections',
    env: 'BROKER_MAX_CONNECTIONS',
    fileKey: 'max_connections',
    kind: 'integer',
    defaultValue: 0,
    defaultText: '0 (derived)',
    min: 0,
    max: 1_000_000,
    description:
      'Client connections (HTTP and WebSocket) served at once; beyond it requests get 503 and their connection is closed. 0 derives it from the open-files limit (ulimit -n).',
  },
  segmentFdsPerThread: {
    name: 'segmentFdsPerThread',
    field: 'segmentFdsPerThread',
    flag: 'segment-fds-per-thread',
    env: 'BROKER_SEGMENT_FDS_PER_THREAD',
    fileKey: 'segment_fds_per_thread',
    kind: 'integer',
    defaultValue: 0,
    defaultText: '0 (derived)',
    min: 0,
    max: 65_536,
    description:
      'Descriptors each partition worker keeps open for segment files (3 per segment), least recently used closed first; 0 derives it from the open-files limit.',
  },
  maxPartitionsPerThread: {
    name: 'maxPartitionsPerThread',
    field: 'maxPartitionsPerThread',
    flag: 'max-partitions-per-thread',
    env: 'BROKER_MAX_PARTITIONS_PER_THREAD',
    fileKey: 'max_partitions_per_thread',
    kind: 'integer',
    defaultValue: 8192,
    defaultText: '8192',
    min: 1,
    max: 1_000_000,
    description:
      'Partitions a broker serves per partition worker; creating a topic that would put more on a broker is refused (422).',
  },
  defaultReplicationFactor: {
    name: 'defaultReplicationFactor',
    field: 'defaultReplicationFactor',
    flag: 'default-replication-factor',
    env: 'BROKER_DEFAULT_REPLICATION_FACTOR',
    fileKey: 'default_replication_factor',
    kind: 'integer',
    defaultValue: 3,
    defaultText: '3',
    min: 1,
    max: 32,
    description:
      'Replicas of a topic created without replication_factor, capped at the live brokers (1 on a single node).',
  },
  dataPort: {
    name: 'dataPort',
    field: 'dataPort',
    flag: 'data-port',
    env: 'BROKER_DATA_PORT',
    fileKey: 'data_port',
    kind: 'integer',
    defaultValue: 0,
    defaultText: '0',
    min: 0,
    max: 65535,
    description:
      'First data-link port (replication, forwarded requests): partition worker i listens on it + i; 0 picks free ports, advertised through gossip.',
  },
  replicationThrottleBytes: {
    name: 'replicationThrottle',
    field: 'replicationThrottleBytes',
    flag: 'replication-throttle',
    env: 'BROKER_REPLICATION_THROTTLE',
    fileKey: 'replication_throttle',
    kind: 'bytes',
    defaultValue: 0,
    defaultText: '0 (unthrottled)',
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    description:
      "Bytes a second this broker sends, as a leader, to replicas outside the ISR: new replicas of a partition being moved, followers far behind (Kafka's leader.replication.throttled.rate); 0 leaves them unthrottled.",
  },
  autoBalance: {
    name: 'autoBalance',
    field: 'autoBalance',
    flag: 'auto-balance',
    env: 'BROKER_AUTO_BALANCE',
    fileKey: 'auto_balance',
    kind: 'autoBalance',
    defaultValue: 'off',
    defaultText: 'off',
    description:
      "node-add: a broker that joins the cluster for the first time gets its share of replicas and preferred leaderships without a request, by the plan of POST /admin/rebalance (Redpanda's partition_autobalancing_mode=node_add); continuous: that, and the replicas of a broker fenced for --node-down-timeout move to live brokers, by the plan of a decommission; off: only on request.",
  },
  nodeDownTimeoutMs: {
    name: 'nodeDownTimeout',
    field: 'nodeDownTimeoutMs',
    flag: 'node-down-timeout',
    env: 'BROKER_NODE_DOWN_TIMEOUT',
    fileKey: 'node_down_timeout',
    kind: 'duration',
    defaultValue: 15 * 60 * 1000,
    defaultText: '15m',
    min: 1000,
    max: 7 * 24 * 60 * 60 * 1000,
    description:
      "With --auto-balance continuous: a broker fenced (dead to gossip) this long is taken as gone, and its replicas are re-created on live brokers from their leaders (Redpanda's partition_autobalancing_node_availability_timeout_sec); ms, or 15m.",
  },
  replicaLagTimeMaxMs: {
    name: 'replicaLagTimeMax',
    field: 'replicaLagTimeMaxMs',
    flag: 'replica-lag-time-max',
    env: 'BROKER_REPLICA_LAG_TIME_MAX',
    fileKey: 'replica_lag_time_max',
    kind: 'duration',
    defaultValue: 10_000,
    defaultText: '10s',
    min: 100,
    max: 24 * 60 * 60 * 1000,
    description:
      "A follower that has not caught up with its leader for this long leaves the ISR (Kafka's replica.lag.time.max.ms; ms, or 10s).",
  },
  workerBalanceIntervalMs: {
    name: 'workerBalanceInterval',
    field: 'workerBalanceIntervalMs',
    flag: 'worker-balance-interval',
    env: 'BROKER_WORKER_BALANCE_INTERVAL',
    fileKey: 'worker_balance_interval',
    kind: 'duration',
    defaultValue: 10_000,
    defaultText: '10s',
    min: 0,
    max: 24 * 60 * 60 * 1000,
    description:
      "How often the node compares its partition workers' load (request bytes/s and requests/s per partition over the last interval) and moves partitions from the busiest to the least busy worker; 0 turns it off (moves by hand stay: POST /admin/workers/moves). Each partition moved waits 3 intervals before it may move again (ms, or 10s).",
  },
  workerBalanceTolerancePercent: {
    name: 'workerBalanceTolerancePercent',
    field: 'workerBalanceTolerancePercent',
    flag: 'worker-balance-tolerance-percent',
    env: 'BROKER_WORKER_BALANCE_TOLERANCE_PERCENT',
    fileKey: 'worker_balance_tolerance_percent',
    kind: 'integer',
    defaultValue: 25,
    defaultText: '25',
    min: 1,
    max: 1000,
    description:
      "Nothing moves while the busiest partition worker carries at most this many percent above the mean load of the node's workers; a move must also lower the busier of its two workers by 5% of the mean, so balancing stops rather than swaps.",
  },
  workerBalanceMovesMax: {
    name: 'workerBalanceMovesMax',
    field: 'workerBalanceMovesMax',
    flag: 'worker-balance-moves-max',
    env: 'BROKER_WORKER_BALANCE_MOVES_MAX',
    fileKey: 'worker_balance_moves_max',
    kind: 'integer',
    defaultValue: 4,
    defaultText: '4',
    min: 1,
    max: 256,
    description:
      'Partitions moved between workers per balancing round at most (one at a time; each holds its requests in the acceptor for the few milliseconds it takes).',
  },
  authTokensFile: {
    name: 'authTokensFile',
    field: 'authTokensFile',
    flag: 'auth-tokens-file',
    env: 'BROKER_AUTH_TOKENS_FILE',
    fileKey: 'auth_tokens_file',
    kind: 'path',
    defaultValue: null,
    defaultText: '(none)',
    description:
      'Turns authentication on: a file of principal -> salted scrypt hash of a bearer token (JSON or lines; `broker auth hash-token` writes entries). ACLs are enforced once any authentication is on.',
  },
  authJwtHs256SecretFile: {
    name: 'authJwtHs256SecretFile',
    field: 'authJwtHs256SecretFile',
    flag: 'auth-jwt-hs256-secret-file',
    env: 'BROKER_AUTH_JWT_HS256_SECRET_FILE',
    fileKey: 'auth_jwt_hs256_secret_file',
    kind: 'path',
    defaultValue: null,
    defaultText: '(none)',
    description:
      "Turns authentication on: bearer JWTs signed with HS256 by this secret (the file's bytes, 32 or more) are accepted; the principal is `sub`.",
  },
  authJwtRs256PublicKeyFile: {
    name: 'authJwtRs256PublicKeyFile',
    field: 'authJwtRs256PublicKeyFile',
    flag: 'auth-jwt-rs256-public-key-file',
    env: 'BROKER_AUTH_JWT_RS256_PUBLIC_KEY_FILE',
    fileKey: 'auth_jwt_rs256_public_key_file',
    kind: 'path',
    defaultValue: null,
    defaultText: '(none)',
    description:
      'Turns authentication on: bearer JWTs signed with RS256 by the private half of this PEM public key are accepted; the principal is `sub`.',
  },
  authJwtAudience: {
    name: 'authJwtAudience',
    field: 'authJwtAudience',
    flag: 'auth-jwt-audience',
    env: 'BROKER_AUTH_JWT_AUDIENCE',
    fileKey: 'auth_jwt_audience',
    kind: 'text',
    defaultValue: null,
    defaultText: '(any)',
    description: "When set, a JWT's `aud` must contain this value.",
  },
  authJwtIssuer: {
    name: 'authJwtIssuer',
    field: 'authJwtIssuer',
    flag: 'auth-jwt-issuer',
    env: 'BROKER_AUTH_JWT_ISSUER',
    fileKey: 'auth_jwt_issuer',
    kind: 'text',
    defaultValue: null,
    defaultText: '(any)',
    description: "When set, a JWT's `iss` must equal this value.",
  },
  clusterSecretFile: {
    name: 'clusterSecretFile',
    field: 'clusterSecretFile',
    flag: 'cluster-secret-file',
    env: 'BROKER_CLUSTER_SECRET_FILE',
    fileKey: 'cluster_secret_file',
    kind: 'path',
    defaultValue: null,
    defaultText: '(none)',
    description:
      "Authenticates node-to-node traffic (gossip, Raft, cluster RPC, data link) with this shared secret (the file's bytes, 32 or more; `openssl rand -base64 48`); every node of the cluster needs the same one.",
  },
  clusterTlsCertFile: {
    name: 'clusterTlsCertFile',
    field: 'clusterTlsCertFile',
    flag: 'cluster-tls-cert-file',
    env: 'BROKER_CLUSTER_TLS_CERT_FILE',
    fileKey: 'cluster_tls_cert_file',
    kind: 'path',
    defaultValue: null,
    defaultText: '(none)',
    description:
      "This node's PEM certificate (leaf first) for mutual TLS between nodes (Raft, cluster RPC, gossip streams, data link), used as server and as client: give it a key usage for both (extendedKeyUsage serverAuth,clientAuth). Needs --cluster-tls-key-file, --cluster-tls-ca-file and --cluster-secret-file; SIGHUP re-reads the three files for new connections.",
  },
  clusterTlsKeyFile: {
    name: 'clusterTlsKeyFile',
    field: 'clusterTlsKeyFile',
    flag: 'cluster-tls-key-file',
    env: 'BROKER_CLUSTER_TLS_KEY_FILE',
    fileKey: 'cluster_tls_key_file',
    kind: 'path',
    defaultValue: null,
    defaultText: '(none)',
    description:
      'Unencrypted PEM private key of --cluster-tls-cert-file; the start is refused when it does not match the certificate.',
  },
  clusterTlsCaFile: {
    name: 'clusterTlsCaFile',
    field: 'clusterTlsCaFile',
    flag: 'cluster-tls-ca-file',
    env: 'BROKER_CLUSTER_TLS_CA_FILE',
    fileKey: 'cluster_tls_ca_file',
    kind: 'path',
    defaultValue: null,
    defaultText: '(none)',
    description:
      "PEM certificates of the cluster CA: a node accepts a connection from, and connects to, only a peer whose certificate chains to it (the peer's host name is not checked; the CA vouches for cluster membership).",
  },
  superUsers: {
    name: 'superUsers',
    field: 'superUsers',
    flag: 'super-users',
    env: 'BROKER_SUPER_USERS',
    fileKey: 'super_users',
    kind: 'principals',
    defaultValue: [],
    defaultText: '(none)',
    description:
      "Comma-separated principals allowed everything, whatever the ACLs say (Kafka's super.users).",
  },
  metricsRequireAuth: {
    name: 'metricsRequireAuth',
    field: 'metricsRequireAuth',
    flag: 'metrics-require-auth',
    env: 'BROKER_METRICS_REQUIRE_AUTH',
    fileKey: 'metrics_require_auth',
    kind: 'boolean',
    defaultValue: false,
    defaultText: 'false',
    description: '`/metrics` needs a principal with cluster:describe (it is open by default, for scrapers).',
  },
  tlsCertFile: {
    name: 'tlsCertFile',
    field: 'tlsCertFile',
    flag: 'tls-cert-file',
    env: 'BROKER_TLS_CERT_FILE',
    fileKey: 'tls_cert_file',
    kind: 'path',
    defaultValue: null,
    defaultText: '(none)',
    description:
      'PEM certificate (leaf first, then intermediates) of the client port: with --tls-key-file, HTTP and WebSocket are served over TLS only (https, wss). SIGHUP re-reads it (with the key) for clients that connect by a DNS name (SNI); see the README.',
  },
  tlsKeyFile: {
    name: 'tlsKeyFile',
    field: 'tlsKeyFile',
    flag: 'tls-key-file',
    env: 'BROKER_TLS_KEY_FILE',
    fileKey: 'tls_key_file',
    kind: 'path',
    defaultValue: null,
    defaultText: '(none)',
    description:
      'Unencrypted PEM private key of --tls-cert-file; the start is refused when it does not match the certificate.',
  },
  tlsCaFile: {
    name: 'tlsCaFile',
    field: 'tlsCaFile',
    flag: 'tls-ca-file',
    env: 'BROKER_TLS_CA_FILE',
    fileKey: 'tls_ca_file',
    kind: 'path',
    defaultValue: null,
    defaultText: '(none)',
    description:
      'PEM CA certificates that client certificates must chain to (mutual TLS); needs --tls-client-auth request.',
  },
  tlsClientAuth: {
    name: 'tlsClientAuth',
    field: 'tlsClientAuth',
    flag: 'tls-client-auth',
    env: 'BROKER_TLS_CLIENT_AUTH',
    fileKey: 'tls_client_auth',
    kind: 'tlsClientAuth',
    defaultValue: 'none',
    defaultText: 'none',
    description:
      'Client certificates (mutual TLS, with --tls-ca-file): none (not asked for) or request (asked for; one that does not chain to the CA fails the handshake; a client without one gets through and authenticates with a token). require is refused: uWebSockets.js cannot enforce it.',
  },
  quotaProduceBytesPerS: {
    name: 'quotaProduceBytesPerSecond',
    field: 'quotaProduceBytesPerS',
    flag: 'quota-produce-bytes-per-second',
    env: 'BROKER_QUOTA_PRODUCE_BYTES_PER_SECOND',
    fileKey: 'quota_produce_bytes_per_second',
    kind: 'bytes',
    defaultValue: 0,
    defaultText: '0 (unlimited)',
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    description:
      "Produce bytes (request bodies, WebSocket frames) a second each principal may send (Kafka's producer_byte_rate), with a burst of one second's worth; over it a produce is refused with 429 and Retry-After, nothing written. 0: unlimited.",
  },
  quotaConsumeBytesPerS: {
    name: 'quotaConsumeBytesPerSecond',
    field: 'quotaConsumeBytesPerS',
    flag: 'quota-consume-bytes-per-second',
    env: 'BROKER_QUOTA_CONSUME_BYTES_PER_SECOND',
    fileKey: 'quota_consume_bytes_per_second',
    kind: 'bytes',
    defaultValue: 0,
    defaultText: '0 (unlimited)',
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    description:
      "Consume bytes (answers, streamed records) a second each principal may receive (Kafka's consumer_byte_rate); over it HTTP consumes get 429 with Retry-After and WebSocket streams are delayed. 0: unlimited.",
  },
  maxConnectionsPerIp: {
    name: 'maxConnectionsPerIp',
    field: 'maxConnectionsPerIp',
    flag: 'max-connections-per-ip',
    env: 'BROKER_MAX_CONNECTIONS_PER_IP',
    fileKey: 'max_connections_per_ip',
    kind: 'integer',
    defaultValue: 0,
    defaultText: '0 (unlimited)',
    min: 0,
    max: 1_000_000,
    description:
      'Client connections one remote address may hold (counted from the kernel socket table, sampled); beyond it its requests and upgrades get 429 and their connection is closed. 0: unlimited.',
  },
};

/** The schema as a list, in documentation order. */
export const configOptions: readonly OptionSpec[] = Object.values(optionSpecs);

// ---------------------------------------------------------------------------------------------------------
// Parsing of single values. Each returns the value or a message saying what is wrong and what is accepted.

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly message: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(message: string): Parsed<T> => ({ ok: false, message });

/** A decimal integer, optionally signed: `abc`, `1.5`, `1e3` and `` are refused. */
export function parseInteger(text: string): Parsed<number> {
  const trimmed = text.trim();
  if (!/^[+-]?\d+$/.test(trimmed)) return bad(`${JSON.stringify(text)} is not an integer`);
  const value = Number(trimmed);
  if (!Number.isSafeInteger(value)) return bad(`${JSON.stringify(text)} is too large`);
  return ok(value);
}

const byteUnits: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  kib: KiB,
  mib: MiB,
  gib: GiB,
  tib: 1024 * GiB,
};

/**
 * A size in bytes: a plain integer, or an integer with a unit. KB/MB/GB/TB are decimal (1000^n) and
 * KiB/MiB/GiB/TiB binary (1024^n), as in SI and IEC; units are case-insensitive. `-1` passes through for the
 * options where it means "no limit".
 */
export function parseBytes(text: string): Parsed<number> {
  const match = /^\s*([+-]?\d+)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match?.[2]?.toLowerCase();
  const multiplier = unit === undefined ? undefined : byteUnits[unit];
  if (!match || multiplier === undefined) {
    return bad(
      `${JSON.stringify(text)} is not a size (bytes, or a whole number with B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`,
    );
  }
  const value = Number(match[1]) * multiplier;
  if (!Number.isSafeInteger(value)) return bad(`${JSON.stringify(text)} is too large`);
  return ok(value);
}

const durationUnitsMs: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration in milliseconds: a plain integer (ms), or whole numbers with units ms, s, m, h, possibly
 * several (`1m30s`), as Go's time.ParseDuration writes them. Fractions are refused so that every value is an
 * exact number of milliseconds.
 */
export function parseDurationMs(text: string): Parsed<number> {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return parseInteger(trimmed);
  const accepted = 'a duration (ms, or whole numbers with ms, s, m, h: 250ms, 1s, 2m, 1m30s)';
  if (!/^(\d+(ms|s|m|h))+$/.test(trimmed)) return bad(`${JSON.stringify(text)} is not ${accepted}`);
  let totalMs = 0;
  for (const part of trimmed.matchAll(/(\d+)(ms|s|m|h)/g)) {
    totalMs += Number(part[1]) * durationUnitsMs[part[2]!]!;
  }
  if (!Number.isSafeInteger(totalMs)) return bad(`${JSON.stringify(text)} is too large`);
  return ok(totalMs);
}

const namePattern = /^[a-zA-Z0-9._-]{1,64}$/;
// RFC 1123 host names; underscores are let through because container service names use them.
const dnsLabel = '[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?';
const hostnamePattern = new RegExp(`^${dnsLabel}(\\.${dnsLabel})*\\.?$`);

/** An IP address or a DNS name. */
export function parseHost(text: string): Parsed<string> {
  const host = text.trim();
  if (isIP(host) !== 0) return ok(host);
  if (host.length <= 253 && hostnamePattern.test(host)) return ok(host);
  return bad(`${JSON.stringify(text)} is not an IP address or a host name`);
}

/** `host:port` or `[ipv6]:port`, port 1-65535. */
export function parseSeed(text: string): Parsed<SeedAddress> {
  const entry = text.trim();
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(entry) ?? /^([^:[\]]+):(\d+)$/.exec(entry);
  if (!match) return bad(`${JSON.stringify(entry)} is not host:port`);
  const host = match[1]!;
  if (match[0].startsWith('[') ? isIP(host) !== 6 : parseHost(host).ok === false) {
    return bad(`${JSON.stringify(entry)} has a bad host ${JSON.stringify(host)}`);
  }
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return bad(`${JSON.stringify(entry)} has port ${match[2]} outside 1-65535`);
  }
  return ok({ host, port });
}

/** A comma-separated list of seeds; empty entries are skipped, so `` means none. */
export function parseSeeds(text: string): Parsed<readonly SeedAddress[]> {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  if (entries.length > seedsMax) return bad(`${entries.length} seeds, at most ${seedsMax}`);
  const seeds: SeedAddress[] = [];
  const messages: string[] = [];
  for (const entry of entries) {
    const seed = parseSeed(entry);
    if (seed.ok) seeds.push(seed.value);
    else messages.push(seed.message);
  }
  return messages.length > 0 ? bad(messages.join('; ')) : ok(seeds);
}

type Value = BrokerValues[ConfigField];

/** Reads one text (flag, environment) as the option's type, without range checks. */
function parseText(spec: OptionSpec, text: string): Parsed<Value> {
  switch (spec.kind) {
    case 'integer':
      return parseInteger(text);
    case 'bytes':
      return parseBytes(text);
    case 'duration':
      return parseDurationMs(text);
    case 'name':
      return namePattern.test(text) ? ok(text) : bad(`${JSON.stringify(text)} is not [a-zA-Z0-9._-]{1,64}`);
    case 'host':
      return parseHost(text);
    case 'address': {
      const host = parseHost(text);
      if (host.ok && (host.value === '0.0.0.0' || host.value === '::')) {
        return bad(`${JSON.stringify(text)} is not reachable by other brokers; give a concrete address`);
      }
      return host;
    }
    case 'path':
      if (text.length === 0) return bad('an empty path');
      if (text.includes('\0')) return bad('a path with a NUL byte');
      return ok(text);
    case 'seeds':
      return parseSeeds(text);
    case 'logLevel':
      return (logLevels as readonly string[]).includes(text)
        ? ok(text as LogLevel)
        : bad(`${JSON.stringify(text)} is not one of ${logLevels.join(', ')}`);
    case 'autoBalance':
      return (autoBalanceModes as readonly string[]).includes(text)
        ? ok(text as AutoBalanceMode)
        : bad(`${JSON.stringify(text)} is not one of ${autoBalanceModes.join(', ')}`);
    case 'tlsClientAuth':
      return (tlsClientAuthModes as readonly string[]).includes(text)
        ? ok(text as TlsClientAuth)
        : bad(`${JSON.stringify(text)} is not one of ${tlsClientAuthModes.join(', ')}`);
    case 'text':
      return /^[\x20-\x7e]{1,255}$/.test(text)
        ? ok(text)
        : bad(`${JSON.stringify(text)} is not 1-255 printable ASCII characters`);
    case 'principals':
      return parsePrincipals(text);
    case 'boolean':
      return text === 'true'
        ? ok(true)
        : text === 'false'
          ? ok(false)
          : bad(`${JSON.stringify(text)} is not true or false`);
  }
}

/** A comma-separated list of principals; empty entries are skipped. */
export function parsePrincipals(text: string): Parsed<readonly string[]> {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  const badOnes = entries.filter((e) => !/^[\x21-\x7e]{1,255}$/.test(e) || e === '*');
  if (badOnes.length > 0)
    return bad(
      `${badOnes.map((e) => JSON.stringify(e)).join(', ')}: a principal is 1-255 printable ASCII characters, not *`,
    );
  if (entries.length > 1000) return bad(`${entries.length} principals, at most 1000`);
  return ok(entries);
}

/** Reads one JSON value from the config file: numbers where numbers fit, strings as on the command line. */
function parseJson(spec: OptionSpec, value: unknown): Parsed<Value> {
  if (typeof value === 'string') return parseText(spec, value);
  const numeric = spec.kind === 'integer' || spec.kind === 'bytes' || spec.kind === 'duration';
  if (numeric && typeof value === 'number') {
    return Number.isSafeInteger(value) ? ok(value) : bad(`${String(value)} is not an integer`);
  }
  if (spec.kind === 'seeds' && Array.isArray(value) && value.every((entry) => typeof entry === 'string')) {
    return parseSeeds(value.join(','));
  }
  if (
    spec.kind === 'principals' &&
    Array.isArray(value) &&
    value.every((entry) => typeof entry === 'string')
  ) {
    return parsePrincipals(value.join(','));
  }
  if (spec.kind === 'boolean' && typeof value === 'boolean') return ok(value);
  const expected = numeric
    ? 'an integer or a string'
    : spec.kind === 'seeds' || spec.kind === 'principals'
      ? 'a list of strings'
      : spec.kind === 'boolean'
        ? 'true or false'
        : 'a string';
  return bad(`${JSON.stringify(value)} is not ${expected}`);
}

/** Checks a typed value against the option's bounds; null when it is fine. */
function checkRange(spec: OptionSpec, value: Value): string | null {
  if (typeof value !== 'number') return null;
  const { min, max } = spec;
  if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
    const range = `${min ?? '-inf'} to ${max ?? 'inf'}`;
    return `${value} is out of range (${range}${spec.kind === 'bytes' ? ' bytes' : spec.kind === 'duration' ? ' ms' : ''})`;
  }
  if (spec.powerOfTwo === true && (value & (value - 1)) !== 0) return `${value} is not a power of two`;
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// Resolution of the four sources.

export interface ConfigProblem {
  /** The option's camelCase name, or the unknown name as given. */
  readonly option: string;
  readonly source: ConfigSource;
  /** The option as the source spells it: `--threads`, `BROKER_THREADS`, `threads in broker.json`. */
  readonly where: string;
  readonly message: string;
}

export type ConfigResult =
  | { readonly kind: 'ok'; readonly config: BrokerConfig }
  | { readonly kind: 'invalid'; readonly problems: readonly ConfigProblem[] };

export interface ConfigInput {
  /** Flags by name without dashes (`port`, `data-dir`), as given on the command line. */
  readonly flags: Readonly<Record<string, string>>;
  /** The environment; only `BROKER_*` variables of known options are read, empty ones count as unset. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The default of `threads`: os.availableParallelism() in production. */
  readonly availableParallelism: number;
  /** Reads the config file; throws when it cannot. Defaults to a UTF-8 read from disk. */
  readonly readFile?: (path: string) => string;
}

/** One line per problem, naming the option and its source. */
export function formatProblem(problem: ConfigProblem): string {
  return `${problem.where} (${problem.source}): ${problem.message}`;
}

const specByFlag = new Map(configOptions.map((spec) => [spec.flag, spec]));
const specByFileKey = new Map(
  configOptions.flatMap((spec) => (spec.fileKey === null ? [] : [[spec.fileKey, spec] as const])),
);

function whereOf(
  spec: OptionSpec,
  source: ConfigSource,
  file: string | null,
  envName: string | undefined = undefined,
): string {
  switch (source) {
    case 'flag':
      return `--${spec.flag}`;
    case 'env':
      // An alias may have been read rather than the BROKER_* name.
      return envName ?? spec.env;
    case 'file':
      return `${spec.fileKey ?? spec.name} in ${file ?? 'the config file'}`;
    case 'default':
      return spec.name;
  }
}

function readConfigFile(
  path: string,
  readFile: (path: string) => string,
): { readonly entries: Record<string, unknown> | null; readonly message: string | null } {
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    return { entries: null, message: `cannot read ${path}: ${(error as Error).message}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { entries: null, message: `${path} is not valid JSON: ${(error as Error).message}` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { entries: null, message: `${path} must hold a JSON object of options` };
  }
  return { entries: parsed as Record<string, unknown>, message: null };
}

/**
 * Resolves the configuration from flags, environment, config file and defaults. Every problem is reported;
 * the config is returned only when there is none.
 */
export function resolveConfig(input: ConfigInput): ConfigResult {
  const problems: ConfigProblem[] = [];
  const readFile = input.readFile ?? ((path: string) => readFileSync(path, 'utf8'));

  // Raw values by source, highest precedence last so that the last assignment wins.
  type Given = { readonly source: ConfigSource; readonly value: Parsed<Value> };
  const given = new Map<ConfigField, Given[]>();
  const give = (spec: OptionSpec, source: ConfigSource, value: Parsed<Value>, file: string | null): void => {
    if (!value.ok) {
      problems.push({
        option: spec.name,
        source,
        where: whereOf(spec, source, file, envNames.get(spec)),
        message: value.message,
      });
    }
    const list = given.get(spec.field) ?? [];
    list.push({ source, value });
    given.set(spec.field, list);
  };

  const flagTexts = new Map<OptionSpec, string>();
  for (const [flag, text] of Object.entries(input.flags)) {
    const spec = specByFlag.get(flag);
    if (spec === undefined) {
      problems.push({ option: flag, source: 'flag', where: `--${flag}`, message: 'unknown flag' });
    } else {
      flagTexts.set(spec, text);
    }
  }
  const envTexts = new Map<OptionSpec, string>();
  const envNames = new Map<OptionSpec, string>();
  for (const spec of configOptions) {
    // BROKER_* first, then the seed's names: the first one set wins.
    for (const name of [spec.env, ...(spec.envAliases ?? [])]) {
      const text = input.env[name];
      if (text === undefined || text === '') continue;
      envTexts.set(spec, text);
      envNames.set(spec, name);
      break;
    }
  }

  // The config file: its path comes from a flag or the environment, never from the file itself.
  const configSpec = optionSpecs.configFile;
  const configPathText = flagTexts.get(configSpec) ?? envTexts.get(configSpec);
  const configPathSource: ConfigSource = flagTexts.has(configSpec) ? 'flag' : 'env';
  if (configPathText !== undefined && parseText(configSpec, configPathText).ok) {
    const { entries, message } = readConfigFile(configPathText, readFile);
    if (message !== null) {
      problems.push({
        option: configSpec.name,
        source: configPathSource,
        where: whereOf(configSpec, configPathSource, null),
        message,
      });
    }
    for (const [key, value] of Object.entries(entries ?? {})) {
      const spec = specByFileKey.get(key);
      if (spec === undefined) {
        problems.push({
          option: key,
          source: 'file',
          where: `${key} in ${configPathText}`,
          message: `unknown key; known keys: ${[...specByFileKey.keys()].join(', ')}`,
        });
      } else {
        give(spec, 'file', parseJson(spec, value), configPathText);
      }
    }
  }
  for (const [spec, text] of envTexts) give(spec, 'env', parseText(spec, text), null);
  for (const [spec, text] of flagTexts) give(spec, 'flag', parseText(spec, text), null);

  // Pick the highest source of each option, then check its range.
  const values = new Map<ConfigField, Value>();
  const sources = new Map<ConfigField, ConfigSource>();
  for (const spec of configOptions) {
    const list = given.get(spec.field) ?? [];
    let chosenValid = false;
    for (const { source, value } of list) {
      if (!value.ok) continue;
      const message = checkRange(spec, value.value);
      if (message !== null) {
        problems.push({
          option: spec.name,
          source,
          where: whereOf(spec, source, configPathText ?? null, envNames.get(spec)),
          message,
        });
      }
      chosenValid = message === null;
    }
    const chosen = list.at(-1);
    if (chosen === undefined) {
      values.set(spec.field, defaultOf(spec, input.availableParallelism));
      sources.set(spec.field, 'default');
    } else if (chosen.value.ok && chosenValid) {
      // Only a valid value enters the cross-checks, so one bad value is reported once.
      values.set(spec.field, chosen.value.value);
      sources.set(spec.field, chosen.source);
    }
  }

  problems.push(...crossCheck(values, sources, configPathText ?? null, envNames));
  if (problems.length > 0) return { kind: 'invalid', problems };
  return { kind: 'ok', config: freezeConfig(values, sources) };
}

function defaultOf(spec: OptionSpec, availableParallelism: number): Value {
  if (spec.defaultValue === 'availableParallelism') {
    assert(
      Number.isInteger(availableParallelism) && availableParallelism >= 1,
      `availableParallelism ${availableParallelism} must be a positive integer`,
    );
    return Math.min(availableParallelism, threadsMax);
  }
  return spec.defaultValue;
}

/** Relations between options; only checked when every option involved has a valid value. */
function crossCheck(
  values: ReadonlyMap<ConfigField, Value>,
  sources: ReadonlyMap<ConfigField, ConfigSource>,
  file: string | null,
  envNames: ReadonlyMap<OptionSpec, string>,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const problem = (field: ConfigField, message: string): void => {
    const spec = optionSpecs[field];
    const source = sources.get(field) ?? 'default';
    const where = whereOf(spec, source, file, envNames.get(spec));
    problems.push({ option: spec.name, source, where, message });
  };
  const number = (field: ConfigField): number | undefined => {
    const value = values.get(field);
    return typeof value === 'number' ? value : undefined;
  };

  const port = number('port');
  const clusterPort = number('clusterPort');
  if (port !== undefined && clusterPort !== undefined && port !== 0 && port === clusterPort) {
    problem('port', `${port} is also the cluster port (--cluster-port); they must differ`);
  }
  const kafkaPort = number('kafkaPort');
  if (kafkaPort !== undefined && kafkaPort > 0) {
    if (kafkaPort === port)
      problem('kafkaPort', `${kafkaPort} is also the client port (--port); they must differ`);
    if (kafkaPort === clusterPort)
      problem('kafkaPort', `${kafkaPort} is also the cluster port (--cluster-port); they must differ`);
  }
  const acceptorThreads = number('acceptorThreads');
  if (acceptorThreads !== undefined && acceptorThreads > 1) {
    // The extra acceptors relay what they do not serve to the primary over plain loopback HTTP, and quotas are
    // kept per thread: neither TLS on the client port nor quotas would hold with several threads yet.
    if (values.get('tlsCertFile') != null) {
      problem(
        'acceptorThreads',
        `${acceptorThreads} acceptor threads with TLS on the client port (--tls-cert-file): several acceptor threads serve plain HTTP only; use 1, or terminate TLS in front`,
      );
    }
    if ((number('quotaProduceBytesPerS') ?? 0) > 0 || (number('quotaConsumeBytesPerS') ?? 0) > 0) {
      problem(
        'acceptorThreads',
        `${acceptorThreads} acceptor threads with client quotas (--quota-produce-bytes-per-second / --quota-consume-bytes-per-second): quotas are enforced by one acceptor thread only; use 1`,
      );
    }
  }
  const largeBodyBytes = number('largeBodyBytes');
  const maxRequestBytes = number('maxRequestBytes');
  if (largeBodyBytes !== undefined && maxRequestBytes !== undefined && largeBodyBytes > maxRequestBytes) {
    problem('largeBodyBytes', `${largeBodyBytes} is above --max-request-bytes ${maxRequestBytes}`);
  }
  const given = (field: ConfigField): boolean =>
    values.get(field) !== null && values.get(field) !== undefined;
  if (given('authJwtHs256SecretFile') && given('authJwtRs256PublicKeyFile')) {
    problem(
      'authJwtRs256PublicKeyFile',
      'give one JWT key: --auth-jwt-hs256-secret-file or --auth-jwt-rs256-public-key-file',
    );
  }
  const jwt = given('authJwtHs256SecretFile') || given('authJwtRs256PublicKeyFile');
  for (const field of ['authJwtAudience', 'authJwtIssuer'] as const) {
    if (given(field) && !jwt)
      problem(
        field,
        'applies to JWTs: give --auth-jwt-hs256-secret-file or --auth-jwt-rs256-public-key-file',
      );
  }
  if (values.get('metricsRequireAuth') === true && !jwt && !given('authTokensFile')) {
    problem('metricsRequireAuth', 'needs authentication: give --auth-tokens-file or a JWT key');
  }
  const clusterTlsFields = ['clusterTlsCertFile', 'clusterTlsKeyFile', 'clusterTlsCaFile'] as const;
  const clusterTlsGiven = clusterTlsFields.filter((field) => given(field));
  const clusterTlsFlags = {
    clusterTlsCertFile: '--cluster-tls-cert-file',
    clusterTlsKeyFile: '--cluster-tls-key-file',
    clusterTlsCaFile: '--cluster-tls-ca-file',
  } as const;
  const clusterTlsMissing = clusterTlsFields.filter((field) => !given(field));
  if (clusterTlsGiven.length > 0 && clusterTlsMissing.length > 0) {
    problem(
      clusterTlsGiven[0]!,
      `cluster TLS needs all three files (certificate, key, cluster CA) or none: give ${clusterTlsMissing.map((f) => clusterTlsFlags[f]).join(' and ')} too`,
    );
  }
  if (clusterTlsGiven.length > 0 && !given('clusterSecretFile')) {
    problem(
      clusterTlsGiven[0]!,
      "cluster TLS needs the cluster secret too: gossip's UDP datagrams cannot use TLS, and only the secret keeps an outsider from injecting members through them; give --cluster-secret-file",
    );
  }
  if (given('tlsCertFile') && !given('tlsKeyFile')) {
    problem('tlsCertFile', 'needs its private key: give --tls-key-file too');
  }
  if (given('tlsKeyFile') && !given('tlsCertFile')) {
    problem('tlsKeyFile', 'needs its certificate: give --tls-cert-file too');
  }
  const clientAuth = values.get('tlsClientAuth');
  if (given('tlsCaFile') && clientAuth === 'none') {
    problem('tlsCaFile', 'checks client certificates: give --tls-client-auth request or require');
  }
  if ((clientAuth === 'request' || clientAuth === 'require') && !given('tlsCaFile')) {
    problem('tlsClientAuth', `${clientAuth} needs the CA client certificates chain to: give --tls-ca-file`);
  }
  if ((clientAuth === 'request' || clientAuth === 'require') && !given('tlsCertFile')) {
    problem('tlsClientAuth', `${clientAuth} needs TLS on: give --tls-cert-file and --tls-key-file`);
  }
  if (clientAuth === 'require') {
    problem(
      'tlsClientAuth',
      'require cannot be enforced by uWebSockets.js 20.30 (it lets a client without a certificate through and does not show the certificate to the broker): use request with bearer tokens, or terminate TLS in a proxy that requires client certificates',
    );
  }
  return problems;
}

function freezeConfig(
  values: ReadonlyMap<ConfigField, Value>,
  sources: ReadonlyMap<ConfigField, ConfigSource>,
): BrokerConfig {
  const config: Record<string, unknown> = {};
  const sourceOf: Record<string, ConfigSource> = {};
  for (const spec of configOptions) {
    assert(values.has(spec.field), `config field ${spec.field} has no value`);
    const value = values.get(spec.field);
    config[spec.field] = Array.isArray(value)
      ? Object.freeze(
          value.map((entry: SeedAddress | string) =>
            typeof entry === 'string' ? entry : Object.freeze({ ...entry }),
          ),
        )
      : value;
    sourceOf[spec.field] = sources.get(spec.field) ?? 'default';
  }
  config.sources = Object.freeze(sourceOf);
  return Object.freeze(config) as unknown as BrokerConfig;
}

/**
 * A valid config from defaults and typed overrides, for tests and tools that build a broker in-process
 * (e.g. `{ port: 0, dataDir: tmp }`). Asserts that the result is valid: a bad override is a bug in the caller.
 */
export function configForTests(
  overrides: Partial<BrokerValues> = {},
  availableParallelism = 2,
): BrokerConfig {
  const values = new Map<ConfigField, Value>();
  const sources = new Map<ConfigField, ConfigSource>();
  const problems: string[] = [];
  // Tests run many brokers side by side: the cluster port defaults to a free one instead of 7946.
  // The Kafka listener is off unless a test asks for it (kafkaPort: 0 for a free port).
  const withTestDefaults: Partial<BrokerValues> = { clusterPort: 0, kafkaPort: -1, ...overrides };
  for (const spec of configOptions) {
    const override = withTestDefaults[spec.field];
    const value = override === undefined ? defaultOf(spec, availableParallelism) : override;
    const message = checkRange(spec, value);
    if (message !== null) problems.push(`${spec.name}: ${message}`);
    values.set(spec.field, value);
    sources.set(spec.field, override === undefined ? 'default' : 'flag');
  }
  for (const p of crossCheck(values, sources, null, new Map())) problems.push(`${p.option}: ${p.message}`);
  assert(problems.length === 0, `configForTests: ${problems.join('; ')}`);
  return freezeConfig(values, sources);
}

// ---------------------------------------------------------------------------------------------------------
// Documentation.

function rangeText(spec: OptionSpec): string {
  if (spec.min === undefined && spec.max === undefined) return '';
  const unit = spec.kind === 'bytes' ? ' B' : spec.kind === 'duration' ? ' ms' : '';
  const show = (n: number): string => (n === Number.MAX_SAFE_INTEGER ? '2^53-1' : String(n));
  const range = `${show(spec.min ?? 0)}..${show(spec.max ?? Number.MAX_SAFE_INTEGER)}${unit}`;
  return spec.powerOfTwo === true ? `${range}, power of two` : range;
}

/** The README's configuration table, in Markdown, generated from the schema. */
export function renderConfigTable(): string {
  const escapeCell = (text: string): string => text.replaceAll('|', '\\|');
  const lines = [
    '| Flag | Environment | File key | Type | Default | Range | Description |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const spec of configOptions) {
    const cells = [
      `\`--${spec.flag}\``,
      [spec.env, ...(spec.envAliases ?? [])].map((name) => `\`${name}\``).join(', '),
      spec.fileKey === null ? '' : `\`${spec.fileKey}\``,
      spec.kind,
      `\`${spec.defaultText}\``,
      rangeText(spec),
      spec.description,
    ];
    lines.push(`| ${cells.map(escapeCell).join(' | ')} |`);
  }
  return lines.join('\n');
}
