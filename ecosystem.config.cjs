// pm2 deployment of a three-broker cluster on one host: `npx pm2 start ecosystem.config.cjs` (pm2 is a dev
// dependency and a deployment tool; nothing in src/ imports it). One app per node, fork mode: the broker runs its
// own worker threads, so pm2's cluster mode would only start competing brokers on one data directory.
//
// - wait_ready: pm2 counts a broker as started only once it sends 'ready', which it does when it serves (it has
//   joined the cluster and caught up with the metadata leader), so a reload never moves on before that.
// - Rolling restart: `PM2_CONCURRENT_ACTIONS=1 npx pm2 reload ecosystem.config.cjs` (or `npm run pm2:reload`)
//   restarts the brokers one at a time; pm2's default of 2 at once would stop two of the three Raft voters
//   together. A stopping broker hands Raft leadership to a caught-up voter first, drains its requests, fsyncs
//   and leaves gossip. Its partition leaderships move to in-sync replicas first (controlled shutdown); only a
//   partition with a single replica (replication factor 1) is unavailable while its broker restarts.
// - Ports, data root, bind address and build come from the environment (defaults in brackets):
//   LOGBROKER_HTTP_PORTS [8081,8082,8083], LOGBROKER_CLUSTER_PORTS [7946,7947,7948],
//   LOGBROKER_DATA_ROOT [./data], LOGBROKER_HOST [0.0.0.0], BROKER_COMPILED [1: run dist/, `npm run build`
//   first; 0 runs the TypeScript sources]. Other BROKER_* variables reach every broker unchanged (e.g.
//   BROKER_THREADS=4 BROKER_ACCEPTOR_THREADS=2 on a larger host).
const list = (name, fallback) => (process.env[name] ?? fallback).split(',').map((s) => s.trim());
const httpPorts = list('LOGBROKER_HTTP_PORTS', '8081,8082,8083');
const clusterPorts = list('LOGBROKER_CLUSTER_PORTS', '7946,7947,7948');
const kafkaPorts = list('LOGBROKER_KAFKA_PORTS', '9092,9093,9094');
const dataRoot = process.env.LOGBROKER_DATA_ROOT ?? './data';
const host = process.env.LOGBROKER_HOST ?? '0.0.0.0';

module.exports = {
  apps: httpPorts.map((httpPort, i) => {
    const id = `broker-${i + 1}`;
    // broker-1 founds the cluster; the others join through every other broker's cluster port, so a broker
    // restarting while broker-1 is down still finds the cluster.
    const seeds = i === 0 ? [] : clusterPorts.filter((_, k) => k !== i).map((port) => `127.0.0.1:${port}`);
    const args = [
      'start',
      `--node-id ${id}`,
      `--port ${httpPort}`,
      `--cluster-port ${clusterPorts[i]}`,
      `--kafka-port ${kafkaPorts[i]}`,
      `--host ${host}`,
      `--data-dir ${dataRoot}/${id}`,
      ...(seeds.length > 0 ? [`--seeds ${seeds.join(',')}`] : []),
    ];
    return {
      name: id,
      script: 'bin/broker.mjs',
      args: args.join(' '),
      // A 2 MB young generation on the acceptor thread: its garbage dies young, and the default 16 MB semi-spaces
      // are resident memory; the old generation is collected once it grew 30% past what the last collection
      // kept, instead of up to 4x; and no allocation-site pretenuring: V8 decided to allocate some of the acceptor's
      // short-lived per-request objects straight in the old generation, which then filled with garbage and was
      // collected every few seconds, each time a pause of several ms on the request path (README, Performance).
      node_args: '--max-semi-space-size=2 --heap-growing-percent=30 --no-allocation-site-pretenuring',
      exec_mode: 'fork',
      instances: 1,
      env: {
        BROKER_COMPILED: process.env.BROKER_COMPILED ?? '1',
        NODE_ENV: 'production',
        // libuv's pool runs the group commits' concurrent fdatasyncs (README, Performance).
        UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16',
        // glibc's malloc keeps an arena per thread by default (up to 8 per core): 2 shared arenas hold the
        // broker's native memory with less slack (peak RSS about 3.5 MB lower under the produce load).
        MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
      },
      wait_ready: true,
      // A joining broker is ready once it has caught up with the metadata leader.
      listen_timeout: 60_000,
      // SIGINT (pm2's default) drains the rings, fsyncs and closes every log; give it time before SIGKILL.
      kill_timeout: 30_000,
      max_memory_restart: '2G',
      autorestart: true,
    };
  }),
};
