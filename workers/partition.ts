// Entry of a partition worker thread: reads its rings and settings from workerData, serves them until the
// acceptor sends `shutdown`, then exits. The logic lives in src/broker/partition-host.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { PartitionHost, type PartitionHostOptions } from '../src/broker/partition-host.js';
import { RealDisk } from '../src/storage/disk.js';

const options = (workerData as { data: PartitionHostOptions }).data;
const host = new PartitionHost(options, new RealDisk());
await host.run();
parentPort?.postMessage({ kind: 'stopped', workerIndex: options.workerIndex });
