// Placeholder replaced by the broker assembly (acceptor, partition workers, metadata store).
import type { Logger } from 'pino';

export interface BrokerHandle {
  /** Stops accepting, drains the rings, fsyncs and closes every log. Resolves when all threads are gone. */
  close(): Promise<void>;
}

export async function startBroker(_config: unknown, _log: Logger): Promise<BrokerHandle> {
  throw new Error('not built yet');
}
