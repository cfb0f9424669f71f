// Keeps client connections within the descriptor budget (src/core/descriptor-budget.ts). uWebSockets.js tells
// nothing about HTTP connections (no accept or close events) and retries a failed accept silently, so a
// process at its open-files limit leaves new clients waiting in the listen backlog. The guard therefore
// watches the process's open descriptors (/proc/self/fd, sampled: every second when far from the limits, four
// times a second near them) and estimates client connections as what is open beyond the other descriptors:
// those open before the server listened (every thread up), the segment files the workers report, and those of
// threads started since (the offload pool starts and stops its own), at `FDS_PER_THREAD` each (measured: a
// Node thread holds about five: its epoll, eventfd and pipes).
// - At or above the connection cap, new requests and WebSocket upgrades are answered 503 with Retry-After and
//   their connection is closed (load shedding: connections fall below the cap within a sample), logged at
//   warn at most once per `warnIntervalMs` with the count, and counted. Clients that keep connections open
//   without a request are closed by uWebSockets.js's idle timeout (10 s).
// - A WebSocket upgrade is a connection that will be held, so each one admitted counts at once towards the
//   cap (`admitHeld`), not only at the next sample: clients opening streams faster than the sampling cannot
//   carry the process past its limit before the guard sees them.
// - A few spare descriptors are held open (on /dev/null, inside the reserve). When a burst of connections
//   outruns the sampling and the process reaches its limit (even the sample fails with EMFILE), they are
//   closed: the sample works again, workers can still open files, and the listen backlog drains into
//   connections that get a 503 instead of waiting. They are taken back once the count falls a margin below.
// The listening socket is never closed for this: listening again on the port fails while the connections
// the server closed are in TIME_WAIT (uWebSockets.js sets no SO_REUSEADDR), which would stop the broker
// accepting for a minute.
// Runs on the acceptor (main) thread only.
import type { Logger } from 'pino';
import { type DescriptorBudget, EXHAUSTED_MARGIN } from '../core/descriptor-budget.js';

export interface ConnectionGuardOptions {
  readonly budget: DescriptorBudget;
  /** Descriptors open in the process now (-1 when unknown). */
  readonly countDescriptors: () => number;
  /** Descriptors the partition workers hold for segment files now. */
  readonly segmentDescriptors: () => number;
  /** Threads of the process now (-1 when unknown). */
  readonly countThreads: () => number;
  /** Opens one spare descriptor (the broker passes a read of /dev/null). */
  readonly openSpare: () => number;
  readonly closeSpare: (fd: number) => void;
  readonly log: Logger;
  readonly slowIntervalMs?: number;
  readonly fastIntervalMs?: number;
  readonly warnIntervalMs?: number;
}

/** Descriptors a thread holds for itself (its event loop), measured on Node 20 / Linux. */
const FDS_PER_THREAD = 5;
/** Spare descriptors held for the moment the process reaches its limit (part of the reserve). */
export const SPARE_FDS = 8;

export class ConnectionGuard {
  /** Descriptors that are not client connections: those open before listening, besides segment files. */
  private baseline = 0;
  private baselineThreads = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastWarnMs = Number.NEGATIVE_INFINITY;
  private shedSinceWarn = 0;
  /** Open descriptors at the last sample. */
  openDescriptors = 0;
  /** Estimated client connections at the last sample. */
  connections = 0;
  overCap = false;
  /** True while the spares are given back because the process reached (nearly) its limit. */
  exhausted = false;
  private spares: number[] = [];
  /** Requests and upgrades refused for the cap (a counter). */
  shed = 0;

  constructor(private readonly options: ConnectionGuardOptions) {}

  /** Call before the server listens: what is open then is not a client connection. */
  measureBaseline(): void {
    const open = this.options.countDescriptors();
    this.baseline = Math.max(0, open - this.options.segmentDescriptors());
    this.baselineThreads = this.options.countThreads();
  }

  start(): void {
    this.takeSpares();
    this.sample();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.releaseSpares();
  }

  private takeSpares(): void {
    try {
      while (this.spares.length < SPARE_FDS) this.spares.push(this.options.openSpare());
    } catch {
      // At the limit already: the next sample tries again.
    }
  }

  private releaseSpares(): void {
    for (const fd of this.spares) this.options.closeSpare(fd);
    this.spares = [];
  }

  /** Whether a new request or upgrade may be served now; false is counted and (rate-limited) logged. */
  /** Whether `admit` would take a request now (nothing counted): for the extra acceptor threads' flag. */
  get admitting(): boolean {
    return !this.overCap;
  }

  admit(): boolean {
    if (!this.overCap) return true;
    this.shed++;
    this.shedSinceWarn++;
    const nowMs = Date.now();
    if (nowMs - this.lastWarnMs >= (this.options.warnIntervalMs ?? 10_000)) {
      this.lastWarnMs = nowMs;
      this.options.log.warn(
        {
          connections: this.connections,
          maxConnections: this.options.budget.maxConnections,
          refused: this.shedSinceWarn,
        },
        'client connections at the cap: answering 503 and closing connections (see --max-connections)',
      );
      this.shedSinceWarn = 0;
    }
    return false;
  }

  /**
   * `admit` for a connection that will be held open (a WebSocket upgrade): one admitted counts towards the
   * cap at once; the next sample replaces the estimate with what is open.
   */
  admitHeld(): boolean {
    if (!this.admit()) return false;
    this.connections++;
    if (this.connections >= this.options.budget.maxConnections) this.overCap = true;
    return true;
  }

  /** Takes one sample and schedules the next. */
  sample(): void {
    if (this.stopped) return;
    const { budget } = this.options;
    const counted = this.options.countDescriptors();
    const open = Math.min(counted, budget.openFilesLimit);
    if (counted >= 0) {
      this.openDescriptors = open;
      const threads = this.options.countThreads();
      const threadFds = threads < 0 ? 0 : Math.max(0, threads - this.baselineThreads) * FDS_PER_THREAD;
      this.connections = Math.max(0, open - this.baseline - this.options.segmentDescriptors() - threadFds);
      this.overCap = this.connections >= budget.maxConnections;
      if (!this.exhausted && open >= budget.exhaustedAt) {
        this.exhausted = true;
        this.overCap = true;
        this.releaseSpares();
        this.options.log.warn(
          { openDescriptors: open, openFilesLimit: budget.openFilesLimit },
          'open descriptors at the limit: spare descriptors released, new requests shed until connections close',
        );
      } else if (this.exhausted && open < budget.exhaustedAt - EXHAUSTED_MARGIN) {
        this.exhausted = false;
        this.takeSpares();
        this.options.log.info({ openDescriptors: open }, 'open descriptors back within the budget');
      }
    }
    const near =
      this.overCap ||
      this.exhausted ||
      this.connections >= budget.maxConnections / 2 ||
      open >= budget.exhaustedAt / 2;
    const delayMs = near ? (this.options.fastIntervalMs ?? 250) : (this.options.slowIntervalMs ?? 1000);
    this.timer = setTimeout(() => this.sample(), delayMs);
    this.timer.unref();
  }
}
