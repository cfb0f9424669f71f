// Test helper: the broker as a real child process started through the CLI, as an operator would run it.
// Every process started here is killed by its PID when the test ends.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const binPath = fileURLToPath(new URL('../../bin/broker.mjs', import.meta.url));

export interface BrokerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** The cluster port (TCP for Raft and RPC, UDP for gossip) the broker bound. */
  readonly clusterPort: number;
  /** The Kafka wire-protocol port the broker bound (0 when the listener is off). */
  readonly kafkaPort: number;
  readonly base: string;
  /** Output so far, for failure messages. */
  output(): string;
}

export async function spawnBroker(
  args: readonly string[],
  timeoutMs = 20_000,
  options: { readonly openFilesLimit?: number; readonly env?: Record<string, string> } = {},
): Promise<BrokerProcess> {
  // Brokers started side by side must not share the default cluster port.
  const clusterPortArgs = args.includes('--cluster-port') ? [] : ['--cluster-port', '0'];
  // Nor the default Kafka port: the listener is off unless a test asks for it (--kafka-port 0: a free port).
  const kafkaPortArgs = args.includes('--kafka-port') ? [] : ['--kafka-port', '-1'];
  const fullArgs = [
    binPath,
    'start',
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    ...clusterPortArgs,
    ...kafkaPortArgs,
    ...args,
  ];
  // With a descriptor limit, bash sets it and then becomes node (exec), so the PID is the broker's own.
  const [command, commandArgs] =
    options.openFilesLimit === undefined
      ? [process.execPath, fullArgs]
      : [
          'bash',
          ['-c', `ulimit -n ${options.openFilesLimit} && exec "$0" "$@"`, process.execPath, ...fullArgs],
        ];
  const child = spawn(command, commandArgs, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BROKER_LOG_LEVEL: 'info', ...options.env },
  });
  let output = '';
  let port = 0;
  let clusterPort = 0;
  let kafkaPort = 0;
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      // A broker that did not start in time is killed here: the caller never gets it, so nothing else would,
      // and its open pipes would keep the test process alive after the test failed.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      reject(new Error(`broker did not start in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /"port":(\d+)[^\n]*"msg":"broker serving"/.exec(output);
      if (match !== null && port === 0) {
        port = Number(match[1]);
        clusterPort = Number(/"clusterPort":(\d+)[^\n]*"msg":"broker serving"/.exec(output)?.[1] ?? 0);
        kafkaPort = Number(/"kafkaPort":(\d+)[^\n]*"msg":"broker serving"/.exec(output)?.[1] ?? 0);
        clearTimeout(timer);
        resolve(port);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code} before serving:\n${output}`));
    });
  });
  const bound = await ready;
  return {
    child,
    port: bound,
    clusterPort,
    kafkaPort,
    base: `http://127.0.0.1:${bound}`,
    output: () => output,
  };
}

/** Kills the process by PID with `signal` and waits until it is gone. */
export async function killBroker(broker: BrokerProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (broker.child.exitCode !== null || broker.child.signalCode !== null) return;
  const exited = once(broker.child, 'exit');
  process.kill(broker.child.pid!, signal);
  await exited;
}
