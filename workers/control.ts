// Entry of the control worker thread: Raft for cluster metadata, SWIM gossip and the cluster RPC, kept off the
// acceptor's and the partition workers' event loops so that heartbeats never wait behind data-plane work.
// Reads its options from workerData, logs through its own pino logger (the broker's level and destination),
// answers the acceptor's requests on the parent port, and exits once a `stop` request has been answered. The
// logic lives in src/cluster/control-plane.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { ControlPlane } from '../src/cluster/control-plane.js';
import type { ControlEvent, ControlOptions, ControlRequest } from '../src/cluster/control-protocol.js';
import { createLogger } from '../src/runtime/logger.js';

/** After the stop is answered, whatever still holds the thread's event loop open gets this long. */
const exitGraceMs = 1_000;

const options = (workerData as { data: ControlOptions }).data;
const port = parentPort;
if (port === null) throw new Error('workers/control must run in a worker thread');
const logger = createLogger({
  level: options.logLevel,
  thread: 'control',
  base: { node: options.nodeId },
  pretty: options.logPretty,
});
const log = logger.log.child({ component: 'cluster' });
const emit = (event: ControlEvent): void => port.postMessage(event);
const early: ControlRequest[] = [];
let plane: ControlPlane | null = null;
port.on('message', (request: ControlRequest) => {
  if (plane === null) early.push(request);
  else serve(plane, request);
});
try {
  plane = await ControlPlane.start(options, emit, log);
} catch (error) {
  emit({ type: 'fatal', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  logger.flushSync();
  port.close();
}
if (plane !== null) for (const request of early.splice(0)) serve(plane, request);

function serve(p: ControlPlane, request: ControlRequest): void {
  if (request.op !== 'stop') return p.handle(request);
  // Closing the port once the stop is answered lets the thread end; a timer or socket something forgot to
  // close must not keep the broker's shutdown waiting, so the thread ends by itself after a grace period.
  p.stop()
    .then(
      () => emit({ type: 'reply', id: request.id, reply: { kind: 'ok' } }),
      (error: unknown) =>
        emit({
          type: 'reply',
          id: request.id,
          reply: { kind: 'failed', error: 'internal', message: String(error), indefinite: false },
        }),
    )
    .finally(() => {
      port?.close();
      setTimeout(() => process.exit(0), exitGraceMs).unref();
      logger.close().catch(() => undefined);
    });
}
