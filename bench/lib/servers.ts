// Child processes for benchmarks: the broker from the compiled tree (as production runs it) and the bare
// uWebSockets.js baseline, each on 127.0.0.1 port 0. Every process started here is registered and killed by
// PID when the benchmark process exits, even after an error, so no load generator leaves a server behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));

export interface Server {
  readonly child: ChildProcess;
  readonly base: string;
  readonly dataDir: string | null;
  /** What the process printed so far, for failure messages. */
  output(): string;
}

const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of started)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/**
 * SIGKILLs, by PID, every process started here that is still running, and returns their PIDs: a benchmark's
 * cleanup after a start that failed without handing back its process (e.g. one that timed out before serving).
 */
export function killStartedServers(): number[] {
  const killed: number[] = [];
  for (const child of started) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
    process.kill(child.pid, 'SIGKILL');
    killed.push(child.pid);
  }
  return killed;
}

function launch(
  args: string[],
  env: NodeJS.ProcessEnv,
  pattern: RegExp,
  dataDir: string | null,
  cwd = root,
): Promise<Server> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd });
  started.add(child);
  child.once('exit', () => started.delete(child));
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString('utf8');
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${output}`)), 30_000);
    const onData = () => {
      const match = pattern.exec(output);
      if (match === null) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({ child, base: `http://127.0.0.1:${match[1]}`, dataDir, output: () => output });
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before serving:\n${output}`));
    });
  });
}

/**
 * The Node flags a checkout's deployment runs the broker with: its pm2 ecosystem's `node_args` (npm start and
 * the Docker image use the same; test/deploy checks the image).
 */
export function deployedNodeFlags(checkout: string): string[] {
  return (deployedApp(checkout).node_args ?? '').split(' ').filter((flag) => flag !== '');
}

/**
 * The environment a checkout's deployment sets beyond the flags (UV_THREADPOOL_SIZE: libuv's pool, which runs
 * the group commits' concurrent fdatasyncs; MALLOC_ARENA_MAX: glibc's malloc arenas), so that a bench runs the
 * broker as deployed. What the caller's environment sets wins, as in the ecosystem file itself.
 */
export function deployedEnv(checkout: string): Record<string, string> {
  const env = deployedApp(checkout).env ?? {};
  const out: Record<string, string> = {};
  for (const name of ['UV_THREADPOOL_SIZE', 'MALLOC_ARENA_MAX']) {
    const value = env[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function deployedApp(checkout: string): { node_args?: string; env?: Record<string, string> } {
  const config = createRequire(import.meta.url)(join(checkout, 'ecosystem.config.cjs')) as {
    apps: { node_args?: string; env?: Record<string, string> }[];
  };
  return config.apps[0] ?? {};
}

/**
 * The compiled broker (run `npm run build` first) with a fresh data dir under .tmp/, or in `dataDir` (a
 * restart over the same data); from another built checkout with `checkout` (an A/B of two versions).
 */
export function startBroker(
  extra: readonly string[],
  prefix: string,
  existingDataDir?: string,
  checkout = root,
): Promise<Server> {
  const dataDir = existingDataDir ?? mkdtempSync(join(root, '.tmp', prefix));
  return launch(
    [
      // As `npm start`, pm2 and the Docker image run it: each checkout with its own flags, so that a baseline
      // runs as it was deployed.
      ...deployedNodeFlags(checkout),
      // Extra Node flags for the broker under test, e.g. BENCH_NODE_FLAGS="--trace-gc" or "--inspect=127.0.0.1:0".
      ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== ''),
      join(checkout, 'bin/broker.mjs'),
      'start',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--data-dir',
      dataDir,
      // The Kafka listener stays off unless asked (a baseline checkout may predate the flag).
      ...(extra.includes('--kafka-port') || checkout !== root ? [] : ['--kafka-port', '-1']),
      // A free cluster port: several brokers run at once, and tests may hold the default one.
      ...(extra.includes('--cluster-port') ? [] : ['--cluster-port', '0']),
      ...extra,
    ],
    { ...deployedEnv(checkout), ...process.env, BROKER_LOG_LEVEL: 'info', BROKER_COMPILED: '1' },
    /"port":(\d+)[^\n]*"msg":"broker serving"/,
    dataDir,
    checkout,
  );
}

export function startBareUws(): Promise<Server> {
  return launch(['--import', 'tsx', join(root, 'bench/bare-uws.ts')], process.env, /"port":(\d+)/, null);
}

/** SIGTERM, wait (SIGKILL after 15 s, reporting the output), then remove the data dir. */
export async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) {
    const exited = new Promise((r) => server.child.once('exit', r));
    process.kill(server.child.pid!, 'SIGTERM');
    const timer = setTimeout(() => {
      console.error(`server did not stop in 15 s; killing it. Its output:\n${server.output().slice(-3000)}`);
      server.child.kill('SIGKILL');
    }, 15_000);
    await exited;
    clearTimeout(timer);
  }
  if (server.dataDir !== null) rmSync(server.dataDir, { recursive: true, force: true });
}

/** CPU seconds (user + system, every thread) the process has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}
