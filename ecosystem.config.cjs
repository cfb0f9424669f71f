// pm2 deployment of the broker: `npx pm2 start ecosystem.config.cjs` (pm2 is a dev dependency and a deployment
// tool; nothing in src/ imports it). One app per node, fork mode: the broker runs its own worker threads, so
// pm2's cluster mode would only start competing brokers on one data directory. Runs the compiled tree
// (`npm run build` first). Add one app per extra node with its own ports, data dir and node id once
// multi-node clusters are available.
module.exports = {
  apps: [
    {
      name: 'broker-1',
      script: 'bin/broker.mjs',
      args: 'start --node-id broker-1 --port 8080 --cluster-port 7946 --data-dir ./data/broker-1',
      exec_mode: 'fork',
      instances: 1,
      env: { BROKER_COMPILED: '1', NODE_ENV: 'production' },
      // SIGTERM drains the rings, fsyncs and closes every log; give it time before pm2 escalates to SIGKILL.
      kill_timeout: 30_000,
      max_memory_restart: '2G',
      autorestart: true,
    },
  ],
};
