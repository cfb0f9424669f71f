// Development bootstrap for worker threads. Node 20 cannot load a `.ts` entry in a worker, even with
// `--import tsx` in execArgv, so `src/runtime/threads.ts` spawns this file instead: it registers tsx in the
// worker and imports the real entry named by `workerData.entry`. Production spawns the compiled `.js` entry
// directly and never loads this file. Runs on: a freshly spawned worker thread, once, before anything else.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
