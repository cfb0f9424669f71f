// Spawning worker threads in both run modes. Under tsx (development, tests) the entry is a `.ts` file that a
// Node 20 worker cannot load by itself, so the worker starts `workers/bootstrap.mjs`, which registers tsx and
// imports the entry; from the compiled tree (`dist/`) the `.js` entry is spawned directly.
// Callable from any thread that spawns workers (acceptor, control, tests).
import { Worker, type WorkerOptions } from 'node:worker_threads';

const runningFromSource = import.meta.url.endsWith('.ts');

/** Resolves an entry such as `workers/partition` to the file this run mode can load in a worker. */
export function threadEntryUrl(entryFromRoot: string): URL {
  const ext = runningFromSource ? '.ts' : '.js';
  // This file is src/runtime/threads.{ts,js}: the project (or dist) root is two levels up.
  return new URL(`../../${entryFromRoot}${ext}`, import.meta.url);
}

/**
 * Starts a worker thread on `entryFromRoot` (a path from the project root without extension, e.g.
 * `workers/partition`). `workerData` reaches the entry as `workerData.data`.
 */
export function spawnThread(entryFromRoot: string, data: unknown, options: WorkerOptions = {}): Worker {
  const entry = threadEntryUrl(entryFromRoot);
  if (runningFromSource) {
    const bootstrap = new URL('../../workers/bootstrap.mjs', import.meta.url);
    return new Worker(bootstrap, { ...options, workerData: { entry: entry.href, data } });
  }
  return new Worker(entry, { ...options, workerData: { entry: entry.href, data } });
}
