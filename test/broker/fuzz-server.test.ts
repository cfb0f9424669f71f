// The real broker under generated input (issue 16): one broker process, a bounded number of requests to every
// kind of route with generated path parameters, query strings and bodies (the arbitraries of the fuzz
// properties), and generated frames on the produce, consume and group WebSocket endpoints. No answer may be a
// 5xx and no socket may close with a server-error code; the broker stays healthy; and nothing is written for
// input it refused: each partition's log end grows by exactly the records it acknowledged.
// FUZZ_SEED=S replays a run (the seed is printed); FUZZ_SERVER_REQUESTS and FUZZ_SERVER_FRAMES (200 and 40 per
// socket by default, a few seconds) make it longer. Runs on the main thread of the test process.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { fieldy } from '../core/fuzz/http-properties.js';
import { frameText, opsBody, queryText } from '../core/fuzz/ws-ops-properties.js';
import { type BrokerProcess, killBroker, spawnBroker } from './process.js';

const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const requestsMax = Number(process.env.FUZZ_SERVER_REQUESTS ?? 200);
const framesPerSocket = Number(process.env.FUZZ_SERVER_FRAMES ?? 40);
const topic = 'fz';
const partitions = 2;

/** Route templates: {t} a topic, {p} a partition, {g} a group; DELETE /topics is left out (it would succeed). */
const routes: readonly (readonly [method: string, path: string, body: 'records' | 'ops' | 'none'])[] = [
  ['POST', '/topics/{t}/produce', 'records'],
  ['POST', '/topics/{t}/records', 'records'],
  ['GET', '/topics/{t}/partitions/{p}/consume', 'none'],
  ['GET', '/topics/{t}/partitions/{p}', 'none'],
  ['GET', '/topics/{t}/partitions/{p}/offsets', 'none'],
  ['GET', '/topics/{t}', 'none'],
  ['GET', '/topics', 'none'],
  ['POST', '/topics/{t}/config', 'ops'],
  ['POST', '/topics', 'records'],
  ['POST', '/producers', 'ops'],
  ['POST', '/consumer-groups/{g}/register', 'ops'],
  ['POST', '/consumer-groups/{g}/heartbeat', 'ops'],
  ['POST', '/consumer-groups/{g}/leave', 'ops'],
  ['POST', '/consumer-groups/{g}/topics/{t}/partitions/{p}/commit', 'ops'],
  ['POST', '/consumer-groups/{g}/offsets/{t}/{p}', 'ops'],
  ['GET', '/consumer-groups/{g}/offsets/{t}/{p}', 'none'],
  ['GET', '/consumer-groups/{g}/offsets/{t}', 'none'],
  ['GET', '/consumer-groups/{g}', 'none'],
  ['DELETE', '/consumer-groups/{g}', 'none'],
  ['POST', '/consumer-groups/{g}/reset-offsets', 'ops'],
  ['GET', '/admin/acls', 'none'],
  ['POST', '/admin/acls', 'ops'],
  ['DELETE', '/admin/acls', 'ops'],
  ['POST', '/admin/reassignments', 'ops'],
  ['DELETE', '/admin/reassignments', 'ops'],
  ['GET', '/admin/assignment-plan', 'none'],
  ['POST', '/admin/preferred-leader-election', 'ops'],
  ['GET', '/admin/brokers/{b}/decommission', 'none'],
  ['GET', '/cluster/status', 'none'],
];

const pathParam = fc.oneof(
  fc.constantFrom(
    topic,
    'nope',
    'g1',
    '0',
    '1',
    '-1',
    '1.5',
    '99999999999',
    '%',
    '%zz',
    '%E0%A4%A',
    '..',
    '__proto__',
  ),
  fc.string({ maxLength: 12 }).map((s) => encodeURIComponent(s)),
);
const body = {
  records: fc.oneof(fieldy, opsBody).map((v) => JSON.stringify(v) ?? ''),
  ops: fc.oneof(opsBody, fieldy).map((v) => JSON.stringify(v) ?? ''),
  none: fc.constant(''),
};
const request = fc
  .tuple(fc.integer({ min: 0, max: routes.length - 1 }), fc.array(pathParam, { minLength: 5, maxLength: 5 }))
  .chain(([index, params]) => {
    const [method, template, kind] = routes[index]!;
    let i = 0;
    const path = template.replace(/\{[tpgb]\}/g, () => params[i++]!);
    return fc.record({
      method: fc.constant(method),
      path: fc.constant(path),
      query: queryText,
      body: fc.oneof(body[kind], fc.string({ unit: 'binary', maxLength: 64 })),
    });
  });

async function send(base: string, r: { method: string; path: string; query: string; body: string }) {
  const url = `${base}${r.path}${r.query === '' ? '' : `?${r.query}`}`;
  const init: RequestInit = { method: r.method, signal: AbortSignal.timeout(10_000) };
  if (r.method !== 'GET' && r.body !== '') {
    init.body = r.body;
    init.headers = { 'content-type': 'application/json' };
  }
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    // A URL fetch itself refuses (a malformed path) never reached the broker.
    if (error instanceof TypeError && !(error.cause instanceof Error && 'code' in error.cause)) return null;
    throw new Error(`${r.method} ${url}: ${String(error)} ${String((error as Error).cause ?? '')}`);
  }
  const text = await response.text();
  return { status: response.status, text };
}

async function logEnds(base: string): Promise<number[]> {
  const got = await fetch(`${base}/topics/${topic}`, { signal: AbortSignal.timeout(5_000) });
  const json = (await got.json()) as { partitions: { high_watermark: number; log_end_offset?: number }[] };
  return json.partitions.map((p) => p.log_end_offset ?? p.high_watermark);
}

/** The records a 2xx produce answer acknowledged. */
function acknowledged(path: string, status: number, text: string): number {
  if (status < 200 || status >= 300 || !path.startsWith(`/topics/${topic}/`)) return 0;
  if (path.endsWith('/produce')) return text.includes('"offset"') ? 1 : 0;
  if (path.endsWith('/records')) {
    const answer = JSON.parse(text) as { offsets?: { error_code?: number | null }[] };
    return (answer.offsets ?? []).filter((o) => o.error_code === undefined || o.error_code === null).length;
  }
  return 0;
}

describe('the real broker under generated requests and frames', { timeout: 120_000 }, () => {
  let broker: BrokerProcess;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'broker-fuzz-server-'));
    broker = await spawnBroker(['--data-dir', dir, '--threads', '1']);
    const created = await fetch(`${broker.base}/topics/${topic}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ num_partitions: partitions }),
    });
    assert.equal(created.status, 201);
  });
  after(async () => {
    if (broker !== undefined) await killBroker(broker, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  test(`no 5xx, a healthy broker and nothing written for refused input (seed ${seed})`, async () => {
    const before = await logEnds(broker.base);
    let written = 0;
    const statuses = new Map<number, number>();
    const generated = fc.sample(request, { numRuns: requestsMax, seed });
    // A few at a time, as clients would send them.
    for (let at = 0; at < generated.length; at += 8) {
      const answers = await Promise.all(
        generated.slice(at, at + 8).map(async (r) => ({ r, a: await send(broker.base, r) })),
      );
      for (const { r, a } of answers) {
        if (a === null) continue;
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        assert.ok(
          a.status < 500,
          `${r.method} ${r.path}?${r.query} ${r.body.slice(0, 300)} answered ${a.status}: ${a.text.slice(0, 300)} (FUZZ_SEED=${seed})`,
        );
        written += acknowledged(r.path, a.status, a.text);
      }
    }
    console.log(`seed ${seed}: statuses ${JSON.stringify(Object.fromEntries(statuses))}`);

    const frames = fc.sample(frameText, { numRuns: framesPerSocket, seed });
    const endpoints = [
      `/ws/produce/${topic}`,
      `/ws/consume/${topic}?partition=0&offset=earliest`,
      `/ws/group/g-ws?topics=${topic}&consumer_id=c1&offset_reset=earliest`,
    ];
    for (const endpoint of endpoints) {
      const ws = new WebSocket(`${broker.base.replace('http', 'ws')}${endpoint}`);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.on('error', () => {});
      let acks = 0;
      ws.on('message', (data) => {
        const text = String(data);
        if (endpoint.startsWith('/ws/produce') && text.includes('"result":"ok"')) acks++;
        assert.doesNotMatch(text, /"error_code":5\d\d\d\d/, `${endpoint} answered ${text.slice(0, 300)}`);
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('close', (code) => reject(new Error(`${endpoint} closed at once with ${code}`)));
      });
      for (const frame of frames) if (ws.readyState === WebSocket.OPEN) ws.send(frame);
      // Answers come in order: a last valid frame's answer says every earlier one was handled.
      if (endpoint.startsWith('/ws/produce') && ws.readyState === WebSocket.OPEN) {
        const done = new Promise<void>((resolve) =>
          ws.on('message', (data) => String(data).includes('"context":"last"') && resolve()),
        );
        ws.send(JSON.stringify({ value: 'last', partition: 0, context: 'last' }));
        await done;
      } else {
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      const code = await closed;
      assert.ok(
        code === 1000 || code === 1005 || (code >= 4000 && code < 4500),
        `${endpoint} closed with ${code}`,
      );
      written += acks;
    }

    const health = await fetch(`${broker.base}/health`, { signal: AbortSignal.timeout(5_000) });
    assert.equal(health.status, 200, 'the broker is healthy');
    const afterEnds = await logEnds(broker.base);
    const grown = afterEnds.reduce((s, e, i) => s + e - before[i]!, 0);
    assert.equal(grown, written, `the logs grew by ${grown} records; ${written} were acknowledged`);
  });
});
