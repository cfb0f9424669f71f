// Test harness: a real broker in this process (acceptor on this thread, real partition worker threads, real
// files in a temp dir, HTTP on 127.0.0.1 port 0), and a small JSON client for it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type BrokerHandle, startBroker } from '../../src/broker/start.js';
import { type BrokerValues, configForTests } from '../../src/config/config.js';

export interface TestBroker {
  readonly handle: BrokerHandle;
  readonly base: string;
  readonly dataDir: string;
  restart(): Promise<TestBroker>;
  stop(): Promise<void>;
}

export function tempDataDir(prefix = 'broker-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startTestBroker(
  overrides: Partial<BrokerValues> = {},
  dataDir = tempDataDir(),
): Promise<TestBroker> {
  const config = configForTests({ port: 0, host: '127.0.0.1', dataDir, threads: 2, ...overrides });
  const handle = await startBroker(config, pino({ level: process.env.BROKER_TEST_LOG ?? 'silent' }));
  const broker: TestBroker = {
    handle,
    base: `http://127.0.0.1:${handle.port}`,
    dataDir,
    restart: async () => {
      await handle.close();
      return startTestBroker(overrides, dataDir);
    },
    stop: async () => {
      await handle.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return broker;
}

export interface JsonAnswer {
  readonly status: number;
  readonly body: any;
  readonly headers: Headers;
}

export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonAnswer> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${base}${path}`, init);
  const text = await response.text();
  let parsed: unknown = text;
  if ((response.headers.get('content-type') ?? '').includes('json')) parsed = JSON.parse(text);
  return { status: response.status, body: parsed, headers: response.headers };
}
