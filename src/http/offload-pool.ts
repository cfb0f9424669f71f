// The piscina pool for CPU-heavy request work that must not run on the acceptor thread (today: parsing and
// encoding produce bodies of `largeBodyBytes` or more, and checking record-batch bodies of that size). Bounded: at most `queueMax` tasks wait; past that the
// caller answers 503. Created and used on the acceptor (main) thread.
import { Piscina } from 'piscina';
import { threadEntryUrl } from '../runtime/threads.js';
import type {
  BatchBodyOutcome,
  BatchBodyTask,
  LargeProducePlan,
  LargeProduceTask,
} from './produce-offload.js';

const runningFromSource = import.meta.url.endsWith('.ts');

export class OffloadPool {
  private readonly pool: Piscina<LargeProduceTask | BatchBodyTask, LargeProducePlan | BatchBodyOutcome>;

  constructor(threads: number, queueMax: number) {
    const filename = runningFromSource
      ? new URL('../../workers/produce-offload.dev.mjs', import.meta.url).href
      : threadEntryUrl('src/http/produce-offload').href;
    this.pool = new Piscina({
      filename,
      minThreads: 0,
      maxThreads: threads,
      maxQueue: queueMax,
      idleTimeout: 60_000,
    });
    // A pool thread that fails to load would otherwise surface as an unhandled 'error' event.
    this.pool.on('error', (error: unknown) => {
      process.stderr.write(`offload pool error: ${String(error)}\n`);
    });
  }

  /** Rejects when the queue is full or the task failed; the caller answers 503 / 500. */
  planProduce(task: LargeProduceTask): Promise<LargeProducePlan> {
    return this.pool.run(task, {
      transferList: [task.body.buffer as ArrayBuffer],
    }) as Promise<LargeProducePlan>;
  }

  /**
   * Checks a record-batch body and rewrites its CRCs; `task.body` (which must own its whole ArrayBuffer) is
   * transferred and comes back as the outcome on success. Rejects like `planProduce`.
   */
  checkBatches(task: BatchBodyTask): Promise<BatchBodyOutcome> {
    return this.pool.run(task, {
      transferList: [task.body.buffer as ArrayBuffer],
    }) as Promise<BatchBodyOutcome>;
  }

  get queued(): number {
    return this.pool.queueSize;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
