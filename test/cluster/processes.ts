// Test helper: clusters of real broker processes on 127.0.0.1, started as the README says (the first without
// seeds, the others with `--seeds` naming the first one's cluster port), plus status polling with deadlines,
// free cluster port numbers for nodes that must know each other's before they start, and brokers spawned
// without waiting for them to serve. Every process started here is killed by its PID when the test's
// `stopAll` (or `killRaw`) runs.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterPort } from '../../src/cluster/port.js';
import { type BrokerProcess, killBroker, spawnBroker } from '../broker/process.js';

export interface ClusterNode {
  readonly id: string;
  readonly dataDir: string;
  clusterPort: number;
  process: BrokerProcess | null;
}

export interface MemberView {
  readonly node_id: string;
  readonly state: string;
  readonly raft_role: string;
  readonly leader: boolean;
  readonly fenced: boolean;
}

export interface StatusView {
  readonly node_id: string;
  readonly raft: {
    readonly role: string;
    readonly leader_id: string | null;
    readonly term: number;
    readonly commit_index: number;
    readonly applied_index: number;
    readonly voters: string[];
    readonly learners: string[];
  };
  readonly members: MemberView[];
}

export class TestCluster {
  readonly nodes: ClusterNode[] = [];
  private root = '';

  /** Starts `count` brokers one after the other; node i is `n{i+1}`. */
  static async start(count: number, extraArgs: readonly string[] = []): Promise<TestCluster> {
    const cluster = new TestCluster();
    cluster.root = await mkdtemp(join(tmpdir(), 'broker-cluster-'));
    try {
      for (let i = 0; i < count; i++) {
        const node: ClusterNode = {
          id: `n${i + 1}`,
          dataDir: join(cluster.root, `n${i + 1}`),
          clusterPort: 0,
          process: null,
        };
        cluster.nodes.push(node);
      }
      // The founder must serve before the others can join through it; the others may start together.
      await cluster.startNode(cluster.nodes[0]!, extraArgs);
      await Promise.all(cluster.nodes.slice(1).map((n) => cluster.startNode(n, extraArgs)));
      // Tests start on a formed cluster: the metadata group has its 3 voters (a learner votes once it has been
      // live 2 s, and one voter stays alone until two learners are ready). Before that the founder is the only
      // voter, and killing it would stall any cluster.
      // (With TLS on the client port this process cannot check the certificate; with auth on, it may not ask.)
      if (count >= 3 && cluster.nodes[0]!.process?.base.startsWith('http:') === true) {
        await waitFor('3 metadata voters', 30_000, async () => {
          const status = await http(cluster.nodes[0]!, 'GET', '/cluster/status');
          if (status.status === 401 || status.status === 403) return true;
          const raft = status.json.raft as { voters?: string[] } | undefined;
          return (raft?.voters?.length ?? 0) >= 3 ? true : undefined;
        });
      }
    } catch (error) {
      await cluster.stopAll();
      throw error;
    }
    return cluster;
  }

  node(id: string): ClusterNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Starts (or restarts) a node from its data dir, on its previous cluster port if it had one. */
  async startNode(node: ClusterNode, extraArgs: readonly string[] = []): Promise<void> {
    const founder = this.nodes[0]!;
    const seeds = node === founder ? [] : ['--seeds', `127.0.0.1:${founder.clusterPort}`];
    node.process = await spawnBroker(
      [
        '--node-id',
        node.id,
        '--data-dir',
        node.dataDir,
        '--cluster-port',
        String(node.clusterPort),
        '--threads',
        '1',
        ...seeds,
        ...extraArgs,
      ],
      30_000,
    );
    node.clusterPort = node.process.clusterPort;
  }

  running(): ClusterNode[] {
    return this.nodes.filter((n) => n.process !== null);
  }

  async kill(node: ClusterNode, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (node.process === null) return;
    await killBroker(node.process, signal);
    node.process = null;
  }

  async stopAll(): Promise<void> {
    for (const node of this.nodes) {
      if (node.process !== null) {
        const pid = node.process.child.pid;
        // A stopped process must be continued before it can handle anything but SIGKILL.
        if (pid !== undefined) {
          try {
            process.kill(pid, 'SIGCONT');
          } catch {}
        }
        await killBroker(node.process, 'SIGKILL');
        node.process = null;
      }
    }
    if (this.root !== '') await rm(this.root, { recursive: true, force: true });
  }
}

export async function statusOf(node: ClusterNode, timeoutMs = 1000): Promise<StatusView | null> {
  if (node.process === null) return null;
  try {
    const response = await fetch(`${node.process.base}/cluster/status`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.status !== 200) return null;
    return (await response.json()) as StatusView;
  } catch {
    return null;
  }
}

/** Polls `check` every `intervalMs` until it returns a value other than undefined, or throws at the deadline. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export async function http(
  node: ClusterNode,
  method: string,
  path: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  if (node.process === null) throw new Error(`${node.id} is not running`);
  const init: RequestInit = { method, signal: AbortSignal.timeout(10_000) };
  const headers: Record<string, string> = { ...extraHeaders };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  init.headers = headers;
  const response = await fetch(`${node.process.base}${path}`, init);
  const text = await response.text();
  return {
    status: response.status,
    json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
    headers: response.headers,
  };
}

/**
 * Cluster port numbers free for TCP and UDP right now, for nodes that must name each other before any of them
 * starts (seeds of nodes started together). Another process could take one before the test binds it; the
 * window is a few hundred milliseconds.
 */
export async function freeClusterPorts(count: number): Promise<number[]> {
  const ports = await Promise.all(
    Array.from({ length: count }, () => ClusterPort.open({ host: '127.0.0.1', port: 0 })),
  );
  const numbers = ports.map((p) => p.port);
  await Promise.all(ports.map((p) => p.close()));
  return numbers;
}

const binPath = fileURLToPath(new URL('../../bin/broker.mjs', import.meta.url));

/** A broker process that may never serve (its seeds may not answer); its output is kept for assertions. */
export interface RawBroker {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  readonly exited: Promise<number | string>;
}

/** Spawns `broker start` with `args` (HTTP on 127.0.0.1 port 0), without waiting for anything. */
export function spawnRaw(args: readonly string[]): RawBroker {
  // Brokers side by side must not share the default Kafka port: off unless a test asks for it.
  const kafkaPortArgs = args.includes('--kafka-port') ? [] : ['--kafka-port', '-1'];
  const fullArgs = [binPath, 'start', '--port', '0', '--host', '127.0.0.1', ...kafkaPortArgs, ...args];
  const child = spawn(process.execPath, fullArgs, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BROKER_LOG_LEVEL: 'info' },
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  return { child, output: () => output, exited };
}

/** Waits until the process has written a line matching `pattern`; fails if it exits first. */
export async function waitForOutput(broker: RawBroker, pattern: RegExp, timeoutMs: number): Promise<void> {
  let gone = false;
  void broker.exited.then(() => {
    gone = true;
  });
  await waitFor(`output matching ${pattern}`, timeoutMs, async () => {
    if (pattern.test(broker.output())) return true;
    if (gone) throw new Error(`the broker exited first:\n${broker.output()}`);
    return undefined;
  });
}

/** Kills a raw broker by its PID (SIGKILL unless told otherwise) and waits until it is gone. */
export async function killRaw(broker: RawBroker, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (broker.child.exitCode !== null || broker.child.signalCode !== null) return;
  try {
    process.kill(broker.child.pid!, 'SIGCONT');
    process.kill(broker.child.pid!, signal);
  } catch {
    return;
  }
  await broker.exited;
}

/** The HTTP base URL of a raw broker once it logged that it serves; undefined before. */
export function servingBase(broker: RawBroker): string | undefined {
  const match = /"port":(\d+)[^\n]*"msg":"broker serving"/.exec(broker.output());
  return match === null ? undefined : `http://127.0.0.1:${match[1]}`;
}
