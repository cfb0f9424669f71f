// Entry of an extra acceptor thread (`--acceptor-threads N`, N > 1): reads its rings, settings and channel to
// the main thread from workerData, serves the client port beside the primary acceptor until the main thread
// says `stop`, then exits. The logic lives in src/broker/extra-acceptor.ts.
import { workerData } from 'node:worker_threads';
import { type ExtraAcceptorData, runExtraAcceptor } from '../src/broker/extra-acceptor.js';
import { createLogger } from '../src/runtime/logger.js';

const data = (workerData as { data: ExtraAcceptorData }).data;
const logger = createLogger({
  level: data.config.logLevel,
  thread: `acceptor-${data.index}`,
  base: { node: data.config.nodeId },
});
try {
  await runExtraAcceptor(data, logger.log);
} finally {
  await logger.close();
}
// Anything left open (a data-link client reconnecting, a timer) must not keep the thread: its sockets are closed.
process.exit(0);
