// kcat (librdkafka, flexible protocol versions) against a real broker process on its Kafka port: metadata,
// produce with keys and headers, consume from the beginning, and the records identical to what HTTP reads and
// writes. CI installs kcat (.ci/run); elsewhere the test is skipped when kcat is missing.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BrokerProcess, killBroker, spawnBroker } from '../broker/process.js';

function hasKcat(): boolean {
  try {
    execFileSync('kcat', ['-V'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

const available = hasKcat();
const skip = !available && process.env.CI !== 'true' ? 'kcat is not installed (apt-get install kcat)' : false;
let broker: BrokerProcess;
let dataDir: string;

function kcat(args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'kcat',
      ['-b', `127.0.0.1:${broker.kafkaPort}`, ...args],
      { timeout: 20_000, encoding: 'utf8' },
      (error, stdout, stderr) =>
        error ? reject(new Error(`kcat ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    );
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${broker.base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, json: await response.json() };
}

describe('kcat against the Kafka listener', { skip }, () => {
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'kafka-kcat-'));
    broker = await spawnBroker(['--data-dir', dataDir, '--kafka-port', '0', '--threads', '2']);
  });

  after(async () => {
    if (broker !== undefined) await killBroker(broker, 'SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('kcat -L lists the topic with this broker leading its partitions', async () => {
    assert.equal((await http('POST', '/topics/kc', { num_partitions: 2 })).status, 201);
    const listing = await kcat(['-L', '-t', 'kc']);
    assert.match(listing, new RegExp(`broker \\d+ at 127\\.0\\.0\\.1:${broker.kafkaPort}`));
    assert.match(listing, /topic "kc" with 2 partitions/);
    assert.match(listing, /partition 1, leader \d+, replicas: \d+, isrs: \d+/);
  });

  test('records produced by kcat read identically over HTTP, and HTTP records identically through kcat', async () => {
    await kcat(['-P', '-t', 'kc', '-p', '0', '-K', ':', '-H', 'trace=t1'], 'k1:v1\nk2:v2\n');
    const consumed = await http('GET', '/topics/kc/partitions/0/consume?offset=0');
    assert.deepEqual(
      consumed.json.messages.map((m: Record<string, unknown>) => [m.offset, m.key, m.value, m.headers]),
      [
        [0, 'k1', 'v1', { trace: 't1' }],
        [1, 'k2', 'v2', { trace: 't1' }],
      ],
    );
    const timestamp = 1_790_000_000_789;
    const produced = await http('POST', '/topics/kc/produce', {
      key: 'from-http',
      value: 'hé',
      headers: { a: 'b' },
      timestamp,
      partition: 0,
    });
    assert.equal(produced.status, 201);
    const out = await kcat(['-C', '-t', 'kc', '-p', '0', '-o', 'beginning', '-e', '-f', '%o|%k|%s|%T|%h\\n']);
    assert.deepEqual(out.trim().split('\n').slice(2), [`2|from-http|hé|${timestamp}|a=b`]);
    const first = out.trim().split('\n')[0]!.split('|');
    assert.deepEqual(first.slice(0, 3), ['0', 'k1', 'v1']);
    assert.equal(first[3], String(consumed.json.messages[0].timestamp));
  });
});
