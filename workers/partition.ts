// Entry of a partition worker thread: reads its rings and settings from workerData, serves them until the
// acceptor sends `shutdown`, then exits. The logic lives in src/broker/partition-host.ts.
// Atomics.waitAsync does not keep a thread's event loop alive, so the parent port's listener does (it will
// also carry metadata snapshots); closing the port after the host stops lets the thread end.
import { parentPort, workerData } from 'node:worker_threads';
import { PartitionHost, type PartitionHostOptions } from '../src/broker/partition-host.js';
import { RealDisk } from '../src/storage/disk.js';

const options = (workerData as { data: PartitionHostOptions }).data;
const port = parentPort;
if (port === null) throw new Error('workers/partition must run in a worker thread');
port.on('message', () => undefined);
const host = new PartitionHost(options, new RealDisk());
await host.run();
port.close();
