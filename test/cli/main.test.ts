// The command line: bad flags end in exit 2 with every problem printed (spawned end to end), and the start
// sequence (start, signal, close, exit) behaves as documented, checked in-process with a fake broker.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { BrokerHandle } from '../../src/broker/start.js';
import { type CliDeps, exitCodes, flagsFromArgs, runStart } from '../../src/cli/main.js';
import { configOptions } from '../../src/config/config.js';

const bin = fileURLToPath(new URL('../../bin/broker.mjs', import.meta.url));

function spawnBroker(args: readonly string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env },
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('broker CLI, spawned', () => {
  test('bad flags and environment exit with 2 and print every problem, naming option and source', () => {
    const { status, stderr } = spawnBroker(
      [
        'start',
        '--threads=abc',
        '--port',
        '7946',
        '--wal-sync-interval',
        '1.5s',
        '--segment-size=10 parsecs',
        '--bogus=1',
      ],
      { BROKER_RING_BYTES: '3MiB', BROKER_SEEDS: 'ok:1,nope' },
    );
    assert.equal(status, exitCodes.usage, stderr);
    const expected = [
      /--threads \(flag\): "abc" is not an integer/,
      /--port \(flag\): 7946 is also the cluster port/,
      /--wal-sync-interval \(flag\): "1.5s" is not a duration/,
      /--segment-size \(flag\): "10 parsecs" is not a size/,
      /--bogus \(flag\): unknown flag/,
      /BROKER_RING_BYTES \(env\): 3145728 is not a power of two/,
      /BROKER_SEEDS \(env\): "nope" is not host:port/,
    ];
    for (const pattern of expected) assert.match(stderr, pattern);
    assert.match(stderr, /invalid configuration \(7 problems\)/);
  });

  test('`broker start --help` lists every option as a flag and exits 0', () => {
    const { status, stdout } = spawnBroker(['start', '--help']);
    assert.equal(status, 0);
    for (const spec of configOptions) assert.ok(stdout.includes(`--${spec.flag}=`), spec.flag);
  });
});

interface Harness {
  readonly deps: CliDeps;
  readonly exited: Promise<number>;
  readonly lines: string[];
  signal(name: 'SIGTERM' | 'SIGINT'): void;
  uncaught(error: unknown): void;
  readonly calls: { started: number; closed: number };
}

function harness(options: {
  start?: (signal: AbortSignal) => Promise<void>;
  close?: () => Promise<void>;
  env?: Record<string, string>;
}): Harness {
  const lines: string[] = [];
  const listeners = new Map<string, () => void>();
  let uncaughtListener: (error: unknown) => void = () => assert.fail('no uncaught-error handler');
  const calls = { started: 0, closed: 0 };
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  const handle: BrokerHandle = {
    port: 18080,
    close: async () => {
      calls.closed += 1;
      await (options.close ?? (async () => {}))();
    },
  };
  const deps: CliDeps = {
    startBroker: async (_config, _log, signal) => {
      calls.started += 1;
      await (options.start ?? (async () => {}))(signal);
      return handle;
    },
    createLogger: (config) => ({
      log: pino({ level: config.logLevel }, { write: (line: string) => lines.push(line) }),
      flushSync: () => {},
      close: async () => {},
    }),
    env: options.env ?? {},
    availableParallelism: 2,
    onSignal: (signal, listener) => listeners.set(signal, listener),
    onUncaught: (listener) => {
      uncaughtListener = listener;
    },
    exit: (code) => resolveExit(code),
    printError: (text) => lines.push(text),
  };
  return {
    deps,
    exited,
    lines,
    calls,
    signal: (name) => {
      const listener = listeners.get(name);
      assert.ok(listener, `no ${name} handler`);
      listener();
    },
    uncaught: (error) => uncaughtListener(error),
  };
}

/** Resolves when `promise` settles or fails after a deadline, so a missing exit fails instead of hanging. */
function within<T>(promise: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`no result within ${ms} ms`)), ms).unref(),
    ),
  ]);
}

describe('broker start sequence, in-process', () => {
  test('SIGTERM closes the broker, then exits 0', async () => {
    const h = harness({});
    await runStart({ port: '0', 'cluster-port': '0' }, [], h.deps);
    assert.equal(h.calls.started, 1);
    h.signal('SIGTERM');
    assert.equal(await within(h.exited), exitCodes.ok);
    assert.equal(h.calls.closed, 1);
    assert.ok(h.lines.some((line) => line.includes('broker stopped')));
    assert.ok(h.lines.some((line) => line.includes('broker started') && line.includes('"port":18080')));
  });

  test('a second signal during a slow close forces exit 1', async () => {
    const h = harness({ close: () => new Promise<void>(() => {}) });
    await runStart({}, [], h.deps);
    h.signal('SIGINT');
    h.signal('SIGTERM');
    assert.equal(await within(h.exited), exitCodes.failure);
    assert.equal(h.calls.closed, 1);
  });

  test('a process manager is told the broker is ready once it serves, and not when it failed to start', async () => {
    const up = harness({});
    let readyCalls = 0;
    await runStart({}, [], { ...up.deps, notifyReady: () => readyCalls++ });
    assert.equal(readyCalls, 1);
    const down = harness({
      start: async () => {
        throw new Error('port in use');
      },
    });
    let downReady = 0;
    await runStart({}, [], { ...down.deps, notifyReady: () => downReady++ });
    assert.equal(await within(down.exited), exitCodes.failure);
    assert.equal(downReady, 0);
  });

  test('a failure to start is logged and exits 1', async () => {
    const h = harness({
      start: async () => {
        throw new Error('port in use');
      },
    });
    await runStart({}, [], h.deps);
    assert.equal(await within(h.exited), exitCodes.failure);
    const fatal = h.lines.find((line) => line.includes('broker failed to start'));
    assert.ok(fatal?.includes('port in use'));
  });

  test('a failure to close is logged and exits 1', async () => {
    const h = harness({
      close: async () => {
        throw new Error('fsync failed');
      },
    });
    await runStart({}, [], h.deps);
    h.signal('SIGTERM');
    assert.equal(await within(h.exited), exitCodes.failure);
    assert.ok(h.lines.some((line) => line.includes('fsync failed')));
  });

  test('an uncaught error while running is logged as fatal and exits 1', async () => {
    const h = harness({});
    await runStart({}, [], h.deps);
    h.uncaught(new Error('assertion: commitIndex went backwards'));
    assert.equal(await within(h.exited), exitCodes.failure);
    const fatal = h.lines.find((line) => line.includes('uncaught error: stopping'));
    assert.ok(fatal?.includes('commitIndex went backwards'));
    assert.equal(h.calls.closed, 0);
  });

  test('a signal that arrives while starting stops the broker once it is up', async () => {
    let finishStart: () => void = () => {};
    const h = harness({ start: () => new Promise<void>((resolve) => (finishStart = resolve)) });
    const running = runStart({}, [], h.deps);
    h.signal('SIGTERM');
    assert.equal(h.calls.closed, 0);
    finishStart();
    await running;
    assert.equal(await within(h.exited), exitCodes.ok);
    assert.equal(h.calls.closed, 1);
  });

  test('a signal while the start waits (for a metadata leader, say) aborts the start and exits 0', async () => {
    // A start that never finishes by itself, as a node whose seeds never answer; it honours the abort as
    // startBroker does, by closing what it started and rejecting with StartAborted.
    const h = harness({
      start: (signal) =>
        new Promise<void>((_, reject) => {
          signal.addEventListener('abort', () => {
            const error = new Error('stopped before the broker was ready to serve');
            error.name = 'StartAborted';
            reject(error);
          });
        }),
    });
    const running = runStart({}, [], h.deps);
    h.signal('SIGTERM');
    await running;
    assert.equal(await within(h.exited), exitCodes.ok);
    assert.ok(h.lines.some((line) => line.includes('broker stopped before it was ready to serve')));
  });

  test('an invalid configuration exits 2 without starting, listing flag, env and argument problems', async () => {
    const h = harness({ env: { BROKER_THREADS: '0' } });
    await runStart({ 'max-wait-ms': 'soon' }, ['extra'], h.deps);
    assert.equal(await within(h.exited), exitCodes.usage);
    assert.equal(h.calls.started, 0);
    assert.equal(h.lines[0], 'broker: invalid configuration (3 problems):');
    assert.ok(h.lines.some((line) => line.includes('BROKER_THREADS (env): 0 is out of range')));
    assert.ok(h.lines.some((line) => line.includes('--max-wait-ms (flag): "soon" is not an integer')));
    assert.ok(h.lines.some((line) => line.includes('unexpected argument "extra"')));
  });
});

describe('flagsFromArgs', () => {
  test("drops citty's camelCase aliases of known flags and keeps unknown flags and positionals", () => {
    const parsed = flagsFromArgs({
      _: ['x'],
      'node-id': 'n1',
      nodeId: 'n1',
      dataDir: '/d',
      'data-dir': '/d',
      bogus: true,
    });
    assert.deepEqual(parsed, {
      flags: { 'node-id': 'n1', 'data-dir': '/d', bogus: 'true' },
      positionals: ['x'],
    });
  });
});
