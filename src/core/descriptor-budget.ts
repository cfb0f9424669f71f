// The broker's file descriptor budget: how the process's open-files limit (the soft RLIMIT_NOFILE, `ulimit -n`)
// is split between segment files (a bounded cache per partition worker), client connections, and a reserve
// for everything else (the Raft log and snapshots, the cluster port's sockets and peers, gossip, every
// thread's event loop, pino, piscina, transient files such as checkpoints being replaced). A broker that keeps
// to it never meets EMFILE: segment files are bounded by the caches, connections by the cap (enforced by the
// acceptor's connection guard), and the rest by the reserve.
//
//   reserve            = RESERVE_BASE + RESERVE_PER_THREAD x (partition workers + other threads)
//                        + RESERVE_CLUSTER
//   segmentFdsPerThread = given, or clamp((limit - reserve) x SEGMENT_SHARE / workers, MIN, MAX)
//   maxConnections     = given, or limit - reserve - workers x segmentFdsPerThread
//
// Pure: no I/O (the caller reads the limit); called once at start-up on the main thread.

/**
 * Descriptors every broker holds besides its threads: stdio, Raft log and snapshot, listening sockets, pino,
 * and the connection guard's spare descriptors (8).
 */
export const RESERVE_BASE = 48;
/** Per thread: its event loop (epoll, eventfd) and the pipes and handles Node keeps for it (measured: ~8). */
export const RESERVE_PER_THREAD = 10;
/** Connections to and from other brokers (Raft, RPC, replication) and transient files. */
export const RESERVE_CLUSTER = 32;
/** Share of what is left after the reserve that goes to segment files by default. */
export const SEGMENT_SHARE = 0.25;
/** A worker needs a whole segment (log, offset index, time index) plus a checkpoint being written. */
export const SEGMENT_FDS_MIN = 8;
/**
 * The default cap, reached from an open-files limit of about 33,000. Reopening a cold file costs one open(),
 * but closing one written since its last sync costs a synchronous fdatasync on the worker first (a writeback
 * error must not be lost with its descriptor): with records spread over thousands of partitions that sync,
 * paid per record, was most of a worker's time (`bench partitions`, 10,000 partitions, 1 s sync interval: 0.16
 * of the concentrated rate with 256 per worker). Past the cap the limit goes to connections. An explicit
 * --segment-fds-per-thread may go higher.
 */
export const SEGMENT_FDS_MAX = 4096;
/** Fewer client connections than this is not a usable broker. */
export const CONNECTIONS_MIN = 16;
/**
 * When the process is this close to its limit, the acceptor's connection guard treats descriptors as
 * exhausted: it gives back its spare descriptors and sheds every new request (see connection-guard.ts).
 */
export const EXHAUSTED_MARGIN = 16;

export interface BudgetInput {
  /** The soft limit on open files ("Max open files" in /proc/self/limits); Infinity when unlimited. */
  readonly openFilesLimit: number;
  /** Partition worker threads. */
  readonly workerThreads: number;
  /** Other threads: the control thread, the offload pool, the acceptor itself. */
  readonly otherThreads: number;
  /** Configured descriptors per worker for segment files; 0 derives it. */
  readonly segmentFdsPerThread: number;
  /** Configured client connections; 0 derives it. */
  readonly maxConnections: number;
}

export interface DescriptorBudget {
  readonly openFilesLimit: number;
  readonly reserve: number;
  readonly segmentFdsPerThread: number;
  readonly maxConnections: number;
  /** Open descriptors at which the process counts as at its limit (spares released, requests shed). */
  readonly exhaustedAt: number;
}

export type BudgetResult =
  | { readonly kind: 'ok'; readonly budget: DescriptorBudget }
  | { readonly kind: 'error'; readonly problems: readonly string[] };

/** Splits the limit; every problem is reported at once, with what to change. */
export function planDescriptors(input: BudgetInput): BudgetResult {
  const limit = Math.min(input.openFilesLimit, 1 << 30);
  const threads = input.workerThreads;
  const reserve = RESERVE_BASE + RESERVE_PER_THREAD * (threads + input.otherThreads) + RESERVE_CLUSTER;
  const available = limit - reserve;
  const problems: string[] = [];
  const derivedSegments = Math.min(
    SEGMENT_FDS_MAX,
    Math.max(SEGMENT_FDS_MIN, Math.floor((available * SEGMENT_SHARE) / threads)),
  );
  const segmentFdsPerThread = input.segmentFdsPerThread === 0 ? derivedSegments : input.segmentFdsPerThread;
  if (segmentFdsPerThread < SEGMENT_FDS_MIN) {
    problems.push(
      `--segment-fds-per-thread ${segmentFdsPerThread} is below ${SEGMENT_FDS_MIN} (one segment's three files plus a checkpoint); use 0 to derive it`,
    );
  }
  const left = available - threads * segmentFdsPerThread;
  const maxConnections = input.maxConnections === 0 ? left : input.maxConnections;
  if (left < CONNECTIONS_MIN) {
    const needed = reserve + threads * SEGMENT_FDS_MIN + CONNECTIONS_MIN;
    problems.push(
      `the open-files limit (ulimit -n) is ${limit}, too low for ${threads} partition worker thread(s): the broker needs at least ${needed} (a reserve of ${reserve}, ${SEGMENT_FDS_MIN} segment descriptors per worker and ${CONNECTIONS_MIN} connections); raise it with ulimit -n, or lower --threads${input.segmentFdsPerThread > 0 ? ' or --segment-fds-per-thread' : ''}`,
    );
  } else if (maxConnections > left) {
    problems.push(
      `--max-connections ${maxConnections} does not fit the open-files limit (ulimit -n) of ${limit}: at most ${left} after a reserve of ${reserve} and ${threads} x ${segmentFdsPerThread} segment descriptors; raise the limit or use 0 to derive it`,
    );
  }
  if (problems.length > 0) return { kind: 'error', problems };
  return {
    kind: 'ok',
    budget: {
      openFilesLimit: limit,
      reserve,
      segmentFdsPerThread,
      maxConnections,
      exhaustedAt: limit - EXHAUSTED_MARGIN,
    },
  };
}

/** The soft "Max open files" limit in the text of /proc/self/limits; Infinity for "unlimited", null if absent. */
export function parseOpenFilesLimit(limitsText: string): number | null {
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limitsText);
  if (match === null) return null;
  if (match[1] === 'unlimited') return Number.POSITIVE_INFINITY;
  const value = Number(match[1]);
  return Number.isSafeInteger(value) && value > 0 ? value : null;
}
