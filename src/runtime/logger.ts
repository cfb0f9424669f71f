// Structured logging with pino. One logger per thread, each writing JSON lines (or, on a terminal, pino-pretty's
// human format) through its own asynchronous SonicBoom destination, so a log call never blocks a thread on
// I/O. Components take child loggers that stamp every line with `component` (and the thread's lines with
// `thread`), so one stream from many threads stays attributable.
//
// Invariants: every line written before `flushSync()` or `close()` returns (resolves) is handed to the
// operating system; nothing is written after `close()`. Lines are complete JSON objects separated by `\n`.
// Each thread that logs creates its own handle with `createLogger`; a handle belongs to that thread.
// Lines from several threads writing to one pipe interleave at write boundaries (whole lines for writes up to
// PIPE_BUF), not within a line, as long as a batch of buffered lines stays below that size.
import { mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';
import pino, { type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { LogLevel } from '../config/config.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Name of the thread, stamped on every line; defaults to `main` or `worker-<threadId>`. */
  readonly thread?: string;
  /** Fields on every line, e.g. `{ node: config.nodeId }`. */
  readonly base?: Readonly<Record<string, unknown>>;
  /** A file descriptor or a file path; standard output by default. */
  readonly destination?: number | string;
  /** Human-readable lines; by default only when the destination is standard output and that is a terminal. */
  readonly pretty?: boolean;
}

export interface LoggerHandle {
  readonly log: Logger;
  /** Writes out everything buffered, synchronously: for paths that end in `process.exit`. */
  flushSync(): void;
  /** Writes out everything buffered, then closes the destination (never standard output or error). */
  close(): Promise<void>;
}

/** The thread name used when none is given. */
export function defaultThreadName(): string {
  return isMainThread ? 'main' : `worker-${threadId}`;
}

function openLogFile(path: string): number {
  mkdirSync(dirname(path), { recursive: true });
  return openSync(path, 'a');
}

/** Creates this thread's logger. */
export function createLogger(options: LoggerOptions): LoggerHandle {
  const dest = options.destination ?? 1;
  // A file is opened here, synchronously, so that the destination is ready at once and flushSync() can never
  // meet a half-opened file on an early exit path.
  const fd = typeof dest === 'number' ? dest : openLogFile(dest);
  const destination = pino.destination({ dest: fd, sync: false });
  const pretty = options.pretty ?? (dest === 1 && process.stdout.isTTY === true);
  // pino-pretty's formatter used synchronously in front of the same destination (rather than its transport,
  // which adds a thread and a second buffer), so flushing the destination flushes pretty lines too.
  const prettify = pretty ? pinoPretty.prettyFactory({ colorize: dest === 1 || dest === 2 }) : null;
  const stream =
    prettify === null
      ? destination
      : {
          write(line: string): void {
            destination.write(prettify(line));
          },
        };
  const log = pino(
    {
      level: options.level,
      base: { pid: process.pid, thread: options.thread ?? defaultThreadName(), ...options.base },
    },
    stream,
  );

  let closed = false;
  return {
    log,
    flushSync(): void {
      if (closed) return;
      destination.flushSync();
    },
    close(): Promise<void> {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise((resolve, reject) => {
        destination.flush((flushError) => {
          if (flushError) {
            reject(flushError);
            return;
          }
          destination.once('close', () => resolve());
          destination.end();
        });
      });
    },
  };
}

/** A logger for one component (`raft`, `acceptor`, `partition-worker`), with optional fixed fields. */
export function componentLogger(
  parent: Logger,
  component: string,
  fields: Readonly<Record<string, unknown>> = {},
): Logger {
  return parent.child({ component, ...fields });
}
