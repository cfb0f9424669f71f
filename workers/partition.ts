// Entry of a partition worker thread: reads its rings, settings and control-thread port from workerData,
// listens on its data-link port and tells the main thread which one, serves until the acceptor sends
// `shutdown`, closes its logs and exits. The logic lives in src/broker/partition-worker.ts.
// Atomics.waitAsync does not keep a thread's event loop alive; the control port's listener and the data-link
// server do, and closing them after the worker finishes lets the thread end.
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { PartitionWorker, type PartitionWorkerOptions } from '../src/broker/partition-worker.js';
import { RealDisk } from '../src/storage/disk.js';

export type PartitionWorkerData = PartitionWorkerOptions & { readonly controlPort: MessagePort };

const data = (workerData as { data: PartitionWorkerData }).data;
const port = parentPort;
if (port === null) throw new Error('workers/partition must run in a worker thread');
const worker = new PartitionWorker(data, new RealDisk(), data.controlPort);
const dataPort = await worker.listen();
port.postMessage({ type: 'listening', dataPort });
await worker.run();
await worker.finish();
data.controlPort.close();
port.close();
