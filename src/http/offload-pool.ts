// The piscina pool for CPU-heavy request work that must not run on the acceptor thread (today: parsing and
// encoding produce bodies of `largeBodyBytes` or more). Bounded: at most `queueMax` tasks wait; past that the
// caller answers 503. Created and used on the acceptor (main) thread.
import { Piscina } from 'piscina';
import { threadEntryUrl } from '../runtime/threads.js';
import type { LargeProducePlan, LargeProduceTask } from './produce-offload.js';

const runningFromSource = import.meta.url.endsWith('.ts');

export class OffloadPool {
  private readonly pool: Piscina<LargeProduceTask, LargeProducePlan>;

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
    return this.pool.run(task, { transferList: [task.body.buffer as ArrayBuffer] });
  }

  get queued(): number {
    return this.pool.queueSize;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
