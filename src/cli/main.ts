// The `broker` command line: `broker start [flags]` and `broker --help`, built with citty from the
// configuration schema, so every option is a flag with the schema's description and nothing is listed twice.
//
// `start` resolves the configuration (flags > BROKER_* environment > --config file > defaults); when any value
// is wrong it prints every problem and exits with 2 without starting anything. Otherwise it creates the logger,
// starts the broker, tells a process manager it is ready (pm2's wait_ready), and on SIGTERM or SIGINT closes
// it and exits 0, also while it is still starting (waiting for a metadata leader, say: the start is aborted and
// what it started is closed); a second signal forces exit 1, as does a shutdown that takes longer than
// `shutdownTimeoutMs`, and a failure to start or to close logs and exits 1. SIGHUP re-reads the TLS files and
// serves them to clients that name the broker (SNI), and the cluster TLS files for node-to-node connections made
// from then on; a bad file is logged and the old certificate kept.
//
// The client verbs (topics, produce, consume, groups, cluster, acls, auth) are registered here and live in ./verbs.
// Runs on the main thread only. The process-facing parts (signals, exit, environment, broker) are injected
// through CliDeps so that the shutdown sequence is testable in-process.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { type ArgsDef, defineCommand, runMain } from 'citty';
import type { BrokerHandle } from '../broker/start.js';
import { type BrokerConfig, configOptions, formatProblem, resolveConfig } from '../config/config.js';
import { descriptorBudgetFor, readOpenFilesLimit } from '../runtime/fd-limit.js';
import { createLogger, type Logger, type LoggerHandle } from '../runtime/logger.js';

/** Exit codes: 0 after a clean shutdown, 1 for a failure at run time, 2 for a bad command line or config. */
export const exitCodes = { ok: 0, failure: 1, usage: 2 } as const;

/**
 * A shutdown that has not finished after this long exits anyway (code 1). Every step of a clean stop is
 * bounded well below it (the control thread's leadership handover and gossip leave take at most a second
 * each); this only catches a bug.
 */
export const shutdownTimeoutMs = 30_000;

export interface CliDeps {
  /** Starts the broker; an abort of `signal` stops a start that has not finished (it rejects StartAborted). */
  readonly startBroker: (config: BrokerConfig, log: Logger, signal: AbortSignal) => Promise<BrokerHandle>;
  readonly createLogger: (config: BrokerConfig) => LoggerHandle;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly availableParallelism: number;
  readonly onSignal: (signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', listener: () => void) => void;
  /** Registers the last-resort handler for an uncaught exception or unhandled rejection (a bug). */
  readonly onUncaught: (listener: (error: unknown) => void) => void;
  readonly exit: (code: number) => void;
  readonly printError: (text: string) => void;
  /** Tells a process manager the broker serves (pm2's wait_ready); absent where nothing listens. */
  readonly notifyReady?: () => void;
  /** The soft open-files limit the broker must fit (default: this process's, from /proc/self/limits). */
  readonly openFilesLimit?: number;
}

/** The real process: its environment, signals, exit and standard error, and the real broker. */
export async function processDeps(): Promise<CliDeps> {
  // Imported lazily so that `--help` and configuration errors never load the broker's modules.
  const { startBroker } = await import('../broker/start.js');
  return {
    startBroker,
    createLogger: (config) => createLogger({ level: config.logLevel, base: { node: config.nodeId } }),
    env: process.env,
    availableParallelism: availableParallelism(),
    onSignal: (signal, listener) => {
      process.on(signal, listener);
    },
    onUncaught: (listener) => {
      process.on('uncaughtException', listener);
      process.on('unhandledRejection', listener);
    },
    exit: (code) => process.exit(code),
    printError: (text) => {
      // Standard error is synchronous for files, pipes and terminals on Linux, so this is written before exit.
      process.stderr.write(`${text}\n`);
    },
    // pm2 (and other managers that fork with an IPC channel) wait for 'ready'; without a channel, nothing to do.
    notifyReady: () => {
      if (typeof process.send === 'function') process.send('ready');
    },
  };
}

const knownFlags = new Set(configOptions.map((spec) => spec.flag));
const camelAliases = new Set(
  configOptions.map((spec) => spec.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())),
);

/**
 * Turns citty's parsed arguments into flag texts by kebab-case name. citty also sets a camelCase alias of each
 * known flag; those are dropped. Unknown flags are kept so that the configuration reports them.
 */
export function flagsFromArgs(args: Readonly<Record<string, unknown>>): {
  readonly flags: Record<string, string>;
  readonly positionals: readonly string[];
} {
  const flags: Record<string, string> = {};
  for (const [key, value] of Object.entries(args)) {
    if (key === '_') continue;
    if (!knownFlags.has(key) && camelAliases.has(key)) continue;
    flags[key] = typeof value === 'string' ? value : String(value);
  }
  const positionals = Array.isArray(args._) ? args._.map(String) : [];
  return { flags, positionals };
}

/**
 * `broker start`: resolve the configuration, start the broker, stop it on a signal. Resolves once the broker is
 * running (or the process was told to exit); the shutdown happens later, from the signal handlers.
 */
export async function runStart(
  flags: Readonly<Record<string, string>>,
  positionals: readonly string[],
  deps: CliDeps,
): Promise<void> {
  const resolved = resolveConfig({ flags, env: deps.env, availableParallelism: deps.availableParallelism });
  const messages = resolved.kind === 'invalid' ? resolved.problems.map(formatProblem) : [];
  for (const positional of positionals) messages.push(`unexpected argument ${JSON.stringify(positional)}`);
  if (resolved.kind === 'ok') {
    // The descriptor budget depends on the environment (ulimit -n) as much as on the options.
    const budget = descriptorBudgetFor(resolved.config, deps.openFilesLimit ?? readOpenFilesLimit());
    if (budget.kind === 'error') messages.push(...budget.problems);
  }
  if (resolved.kind === 'invalid' || messages.length > 0) {
    deps.printError(
      `broker: invalid configuration (${messages.length} problem${messages.length === 1 ? '' : 's'}):`,
    );
    for (const message of messages) deps.printError(`  ${message}`);
    deps.exit(exitCodes.usage);
    return;
  }
  const config = resolved.config;
  const logger = deps.createLogger(config);
  const log = logger.log.child({ component: 'cli' });

  // Signals are watched from before the start, so a stop requested while starting is honoured once started.
  let handle: BrokerHandle | null = null;
  let stopRequested = false;
  const startAbort = new AbortController();
  let exited = false;
  const exit = (code: number): void => {
    if (exited) return;
    exited = true;
    deps.exit(code);
  };
  const failAndExit = (error: unknown, what: string): void => {
    log.fatal({ err: error }, what);
    logger.flushSync();
    exit(exitCodes.failure);
  };
  const shutDown = (running: BrokerHandle): void => {
    setTimeout(() => {
      log.error({ shutdownTimeoutMs }, 'shutdown did not finish in time: exiting anyway');
      logger.flushSync();
      exit(exitCodes.failure);
    }, shutdownTimeoutMs).unref();
    running.close().then(
      async () => {
        log.info('broker stopped');
        await logger.close();
        exit(exitCodes.ok);
      },
      (error: unknown) => failAndExit(error, 'broker failed to close cleanly'),
    );
  };
  const onSignal = (signal: 'SIGTERM' | 'SIGINT'): void => {
    if (stopRequested) {
      log.warn({ signal }, 'second signal: exiting without waiting for the shutdown');
      logger.flushSync();
      exit(exitCodes.failure);
      return;
    }
    stopRequested = true;
    log.info({ signal }, 'shutting down');
    if (handle !== null) shutDown(handle);
    else startAbort.abort();
  };
  // A bug (a failed assertion included) still stops the process, but only after the buffered log lines and
  // the fatal line explaining it are written out.
  deps.onUncaught((error) => failAndExit(error, 'uncaught error: stopping'));
  deps.onSignal('SIGTERM', () => onSignal('SIGTERM'));
  deps.onSignal('SIGINT', () => onSignal('SIGINT'));
  // Registered from the start: SIGHUP would otherwise end the process (Node's default), even while starting.
  deps.onSignal('SIGHUP', () => {
    const running = handle;
    if (running === null || stopRequested) return;
    if (config.clusterTlsCertFile !== null && running.reloadClusterTls !== undefined) {
      running.reloadClusterTls().then(
        (material) =>
          log.info(
            { subject: material.subject, validTo: material.validTo },
            'SIGHUP: cluster TLS certificates reloaded; node-to-node connections made from now on use them',
          ),
        (error: unknown) =>
          log.error(
            { err: error },
            'SIGHUP: cluster TLS reload failed; the cluster certificates in use are unchanged',
          ),
      );
    }
    if (running.reloadTls === undefined) return;
    if (config.tlsCertFile === null) {
      if (config.clusterTlsCertFile === null) log.info('SIGHUP: no TLS is configured; nothing to reload');
      return;
    }
    running.reloadTls().then(
      (names) =>
        log.info(
          { serverNames: names },
          'SIGHUP: TLS certificate reloaded for clients that name the broker (SNI); clients by IP address keep the start-up certificate until a restart',
        ),
      (error: unknown) =>
        log.error({ err: error }, 'SIGHUP: TLS reload failed; the certificates served are unchanged'),
    );
  });

  log.info({ config }, 'starting broker');
  try {
    handle = await deps.startBroker(config, logger.log, startAbort.signal);
  } catch (error) {
    if (startAbort.signal.aborted && (error as Error | undefined)?.name === 'StartAborted') {
      log.info('broker stopped before it was ready to serve');
      await logger.close();
      exit(exitCodes.ok);
      return;
    }
    failAndExit(error, 'broker failed to start');
    return;
  }
  if (exited) return;
  log.info({ port: handle.port, clusterPort: config.clusterPort }, 'broker started');
  if (stopRequested) shutDown(handle);
  else deps.notifyReady?.();
}

function startArgs(): ArgsDef {
  const args: ArgsDef = {};
  for (const spec of configOptions) {
    args[spec.flag] = {
      type: 'string',
      description: `${spec.description} [default: ${spec.defaultText}; env ${spec.env}]`,
      valueHint: spec.kind,
    };
  }
  return args;
}

function packageVersion(): string | undefined {
  // From src/cli (tsx) the package root is two levels up; from dist/src/cli it is three.
  for (const relative of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as {
        version?: string;
      };
      if (typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not at this level; try the next.
    }
  }
  return undefined;
}

/** The command tree; `deps` is built only when `start` runs. */
export function brokerCommand(makeDeps: () => Promise<CliDeps> = processDeps) {
  const start = defineCommand({
    meta: {
      name: 'start',
      description: 'Start a broker node (flags > BROKER_* env > --config file > defaults).',
    },
    args: startArgs(),
    run: async ({ args }) => {
      const { flags, positionals } = flagsFromArgs(args);
      await runStart(flags, positionals, await makeDeps());
    },
  });
  const version = packageVersion();
  return defineCommand({
    meta: {
      name: 'broker',
      description: 'A Kafka-like distributed log broker.',
      ...(version === undefined ? {} : { version }),
    },
    // The client verbs (topics, produce, consume, groups, cluster) live in ./verbs and speak only HTTP/WS.
    // Loaded only when named, so each invocation imports just the verb it runs.
    subCommands: {
      start,
      topics: () => import('./verbs/topics.js').then((m) => m.topicsCommand()),
      produce: () => import('./verbs/produce.js').then((m) => m.produceCommand()),
      consume: () => import('./verbs/consume.js').then((m) => m.consumeCommand()),
      groups: () => import('./verbs/groups.js').then((m) => m.groupsCommand()),
      cluster: () => import('./verbs/groups.js').then((m) => m.clusterCommand()),
      acls: () => import('./verbs/acls.js').then((m) => m.aclsCommand()),
      auth: () => import('./verbs/acls.js').then((m) => m.authCommand()),
    },
  });
}

/** Runs the command line (the process's arguments by default). */
export async function runCli(rawArgs: readonly string[] = process.argv.slice(2)): Promise<void> {
  await runMain(brokerCommand(), { rawArgs: [...rawArgs] });
}

// Run when this file is the process's entry (`node --import tsx src/cli/main.ts start`); bin/broker.mjs
// imports it and calls runCli itself.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runCli();
}
