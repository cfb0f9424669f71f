// The process's file descriptors as Linux shows them: the soft open-files limit (/proc/self/limits) and the
// descriptors open now (/proc/self/fd), and the descriptor budget the broker derives from its configuration
// and that limit (src/core/descriptor-budget.ts). Synchronous reads of /proc: cheap (the count is a stat, not
// a listing, where the kernel allows), and called at start-up and by the acceptor's periodic connection guard
// only. Callable from any thread.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { BrokerValues } from '../config/config.js';
import { type BudgetResult, parseOpenFilesLimit, planDescriptors } from '../core/descriptor-budget.js';

/** The soft "Max open files" limit of this process; Infinity where /proc does not say (not Linux). */
export function readOpenFilesLimit(): number {
  try {
    return parseOpenFilesLimit(readFileSync('/proc/self/limits', 'utf8')) ?? Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * Descriptors this process has open now; Infinity when not even the listing can be opened (the process is at
 * its limit: EMFILE), -1 where /proc cannot tell.
 */
export function countOpenDescriptors(): number {
  try {
    // Linux 6.2 and later give the count as the directory's size: no descriptor, no listing (a listing of
    // 5,000 descriptors took 5 ms of the acceptor's loop, against 0.014 ms for this). Older kernels say 0.
    const size = statSync('/proc/self/fd').size;
    if (size > 0) return size;
    // The listing opens one descriptor of its own for the directory, which it then counts.
    return readdirSync('/proc/self/fd').length - 1;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'EMFILE' || code === 'ENFILE' ? Number.POSITIVE_INFINITY : -1;
  }
}

/** Threads of this process now (the offload pool starts and stops its own), or -1 where /proc cannot tell. */
export function countThreads(): number {
  try {
    return readdirSync('/proc/self/task').length;
  } catch {
    return -1;
  }
}

/** Threads besides the partition workers: the acceptor, the control thread and the offload pool. */
export function otherThreadsOf(config: Pick<BrokerValues, 'threads'>): number {
  return 2 + Math.max(1, Math.min(2, config.threads));
}

/** The budget for `config` under this process's limit; problems name what to change. */
export function descriptorBudgetFor(
  config: Pick<BrokerValues, 'threads' | 'maxConnections' | 'segmentFdsPerThread'>,
  openFilesLimit: number = readOpenFilesLimit(),
): BudgetResult {
  return planDescriptors({
    openFilesLimit,
    workerThreads: config.threads,
    otherThreads: otherThreadsOf(config),
    segmentFdsPerThread: config.segmentFdsPerThread,
    maxConnections: config.maxConnections,
  });
}
