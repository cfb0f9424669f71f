// Limits of one client on a real broker (127.0.0.1 port 0, authentication off: every client is the anonymous
// principal): the produce quota holds the bytes accepted per second to the setting within 10%, and a refused
// produce answers 429 with Retry-After and writes nothing; over WebSocket a refused produce is a 42901 error
// frame and is not written; a consume stream is held to the consume quota within 10% and loses nothing; an
// HTTP consume over the quota answers 429; refusals are counted on /metrics. A second broker caps connections
// per address (429 and closed beyond it, served again once some close, upgrades refused too). Clients that
// trickle their headers or body are closed by uWebSockets.js's own timeout (measured; the sockets trickle from
// the start of the file, so the wait overlaps the other tests).
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { call, startTestBroker, type TestBroker } from './harness.js';

const produceBytesPerS = 40_000;
const consumeBytesPerS = 40_000;
const value = 'x'.repeat(2000);

interface Trickle {
  readonly closedAfterMs: Promise<number>;
  /** What the server sent before closing ('' when nothing). */
  answered(): string;
}

/** Sends `head` and then one byte of `drip` every 500 ms until the server closes the connection. */
function trickle(port: number, head: string, drip: string): Trickle {
  const startedMs = performance.now();
  const socket = connect(port, '127.0.0.1');
  let answered = '';
  let timer: NodeJS.Timeout | null = null;
  socket.on('data', (chunk) => {
    answered += chunk.toString('latin1');
  });
  socket.on('connect', () => {
    socket.write(head);
    let i = 0;
    timer = setInterval(() => socket.write(drip[i++ % drip.length]!), 500);
  });
  const closedAfterMs = new Promise<number>((resolve) => {
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (timer !== null) clearInterval(timer);
      resolve(performance.now() - startedMs);
    });
  });
  // A safety net: the test fails on its own deadline, but the socket must not outlive the file.
  setTimeout(() => socket.destroy(), 30_000).unref();
  return { closedAfterMs, answered: () => answered };
}

interface RawAnswer {
  readonly status: number;
  readonly body: string;
  readonly socket: Socket;
  /** Resolves when the server closed the connection. */
  readonly closed: Promise<void>;
}

/** One GET on a new connection, kept open (keep-alive) unless the server closes it. */
function rawGet(port: number, path: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const closed = new Promise<void>((done) => socket.on('close', () => done()));
    socket.on('error', reject);
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
    socket.on('data', (chunk) => {
      text += chunk.toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      if (split < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(text.slice(0, split))?.[1] ?? 0);
      const body = text.slice(split + 4);
      if (Buffer.byteLength(body) < length) return;
      resolve({ status: Number(text.slice(9, 12)), body, socket, closed });
    });
    setTimeout(() => reject(new Error(`no answer to GET ${path}: ${JSON.stringify(text)}`)), 5000).unref();
  });
}

async function eventually<T>(what: string, attempt: () => Promise<T | null>, timeoutMs = 5000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const outcome = await attempt();
    if (outcome !== null) return outcome;
    assert.ok(performance.now() < deadline, `${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function counter(metrics: string, name: string, labels: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('quotas per principal', () => {
  let broker: TestBroker;
  let port: number;
  let slowHeaders: Trickle;
  let slowBody: Trickle;

  before(async () => {
    broker = await startTestBroker({
      threads: 1,
      quotaProduceBytesPerS: produceBytesPerS,
      quotaConsumeBytesPerS: consumeBytesPerS,
    });
    port = broker.handle.port;
    slowHeaders = trickle(port, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: 1\r\n');
    slowBody = trickle(
      port,
      'POST /topics/slow/produce HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n',
      '{"value":"',
    );
    assert.equal((await call(broker.base, 'POST', '/topics/q', { num_partitions: 1 })).status, 201);
    assert.equal((await call(broker.base, 'POST', '/topics/wsq', { num_partitions: 1 })).status, 201);
  });

  after(async () => {
    await broker?.stop();
  });

  test('produce: bytes accepted per second within 10% of the quota; 429 + Retry-After writes nothing', async () => {
    const body = JSON.stringify({ partition: 0, value });
    const bodyBytes = Buffer.byteLength(body);
    let accepted = 0;
    let refused = 0;
    let firstRefusalMs = 0;
    let acceptedSinceRefusal = 0;
    const endMs = performance.now() + 3000;
    while (performance.now() < endMs) {
      const answer = await call(broker.base, 'POST', '/topics/q/produce', body);
      if (answer.status === 201) {
        accepted++;
        if (firstRefusalMs > 0) acceptedSinceRefusal += bodyBytes;
        continue;
      }
      assert.equal(answer.status, 429, JSON.stringify(answer.body));
      assert.equal(answer.body.error_code, 42901);
      assert.match(
        answer.body.message,
        /over its produce quota of 40000 bytes\/s \(--quota-produce-bytes-per-second\)/,
      );
      const retryAfterS = Number(answer.headers.get('retry-after'));
      assert.ok(Number.isInteger(retryAfterS) && retryAfterS >= 1, `Retry-After ${retryAfterS}`);
      refused++;
      if (firstRefusalMs === 0) firstRefusalMs = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const rate = acceptedSinceRefusal / ((performance.now() - firstRefusalMs) / 1000);
    console.log(`produce quota ${produceBytesPerS} B/s: ${Math.round(rate)} B/s accepted after the burst`);
    assert.ok(refused > 0 && firstRefusalMs > 0, 'the quota was reached');
    assert.ok(Math.abs(rate - produceBytesPerS) <= produceBytesPerS * 0.1, `${rate} bytes/s`);
    const partition = await call(broker.base, 'GET', '/topics/q/partitions/0');
    assert.equal(partition.body.high_watermark, accepted, 'only accepted produces were written');
  });

  test('WebSocket produce over the quota: a 42901 error frame with its context, nothing written', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/produce/wsq`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const answers: any[] = [];
    const frames = 40; // 80 KB at 40 KB/s, sent at once: the bucket is in debt from the test before
    const all = new Promise<void>((resolve) =>
      ws.on('message', (data) => {
        answers.push(JSON.parse(data.toString()));
        if (answers.length === frames) resolve();
      }),
    );
    for (let i = 0; i < frames; i++) ws.send(JSON.stringify({ value, context: i }));
    await all;
    ws.close();
    const refusals = answers.filter((a) => a.result === 'error');
    assert.ok(refusals.length > 0, 'some frames were over the quota');
    for (const refusal of refusals) {
      assert.equal(refusal.error_code, 42901);
      assert.ok(Number.isInteger(refusal.context) && refusal.retry_after_ms > 0, JSON.stringify(refusal));
    }
    const oks = answers.filter((a) => a.result === 'ok').length;
    const partition = await call(broker.base, 'GET', '/topics/wsq/partitions/0');
    assert.equal(partition.body.high_watermark, oks, 'refused frames were not written');
  });

  test('a WebSocket consume stream is held to the quota within 10%, in order, nothing dropped', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/consume/q?partition=0&offset=0`);
    const startedMs = performance.now();
    const arrivals: { atMs: number; bytes: number; offset: number }[] = [];
    ws.on('message', (data: Buffer) => {
      const record = JSON.parse(data.toString()) as { offset: number };
      arrivals.push({ atMs: performance.now() - startedMs, bytes: data.byteLength, offset: record.offset });
    });
    await new Promise((resolve) => setTimeout(resolve, 2200));
    ws.close();
    assert.deepEqual(
      arrivals.map((a) => a.offset),
      arrivals.map((_a, i) => i),
      'offsets in order without a gap',
    );
    // The burst goes at once; from 0.5 s on the stream runs at the quota's rate.
    const window = arrivals.filter((a) => a.atMs >= 500 && a.atMs < 2000);
    const rate = window.reduce((sum, a) => sum + a.bytes, 0) / 1.5;
    console.log(`consume quota ${consumeBytesPerS} B/s: ${Math.round(rate)} B/s streamed after the burst`);
    assert.ok(Math.abs(rate - consumeBytesPerS) <= consumeBytesPerS * 0.1, `${rate} bytes/s`);
  });

  test('an HTTP consume over the quota answers 429 with Retry-After; refusals are counted', async () => {
    // Once the stream's last debt is repaid, reads the partition (far more than a second of quota), then asks
    // again.
    await eventually('a consume admitted', async () => {
      const first = await call(broker.base, 'GET', '/topics/q/partitions/0/consume?offset=0&limit=1000');
      return first.status === 200 ? first : null;
    });
    const second = await call(broker.base, 'GET', '/topics/q/partitions/0/consume?offset=0&limit=1');
    assert.equal(second.status, 429, JSON.stringify(second.body));
    assert.equal(second.body.error_code, 42901);
    assert.match(second.body.message, /consume quota of 40000 bytes\/s/);
    assert.ok(Number(second.headers.get('retry-after')) >= 1);
    const metrics = (await call(broker.base, 'GET', '/metrics')).body as string;
    for (const labels of [
      'quota="produce",transport="http"',
      'quota="produce",transport="ws"',
      'quota="consume",transport="ws"',
      'quota="consume",transport="http"',
    ]) {
      assert.ok(counter(metrics, 'broker_quota_throttled_total', labels) > 0, labels);
    }
  });

  test('a client that trickles its headers or its body is closed by the idle timeout', async () => {
    const [headersMs, bodyMs] = await Promise.all([slowHeaders.closedAfterMs, slowBody.closedAfterMs]);
    console.log(
      `trickled headers closed after ${Math.round(headersMs)} ms, trickled body after ${Math.round(bodyMs)} ms`,
    );
    // uWebSockets.js: 10 s to send the headers (or a body at less than 16 KB/s), checked every 4 s.
    for (const [what, ms] of [
      ['headers', headersMs],
      ['body', bodyMs],
    ] as const) {
      assert.ok(ms >= 5000 && ms <= 16_000, `${what}: closed after ${ms} ms`);
    }
    assert.equal(slowHeaders.answered(), '', 'nothing was answered to the trickled headers');
  });
});

describe('connections per address', () => {
  let broker: TestBroker;
  let port: number;
  const held: Socket[] = [];

  before(async () => {
    broker = await startTestBroker({ threads: 1, maxConnectionsPerIp: 3 });
    port = broker.handle.port;
  });

  after(async () => {
    for (const socket of held) socket.destroy();
    await broker?.stop();
  });

  test('beyond the cap an address gets 429 and its connection closed; served again once some close', async () => {
    // Four connections, each served: the counts are sampled from the kernel's table, so the refusals start
    // within a sample of the address passing its cap.
    for (let i = 0; i < 4; i++) {
      const answer = await rawGet(port, '/health');
      assert.equal(answer.status, 200);
      held.push(answer.socket);
    }
    const refused = await eventually('a request beyond the cap refused', async () => {
      const answer = await rawGet(port, '/health');
      if (answer.status === 200) {
        answer.socket.destroy();
        return null;
      }
      return answer;
    });
    assert.equal(refused.status, 429);
    assert.equal(JSON.parse(refused.body).error_code, 42902);
    assert.match(JSON.parse(refused.body).message, /more than 3 connections .*--max-connections-per-ip/);
    await refused.closed;
    const upgrade = new WebSocket(`ws://127.0.0.1:${port}/ws/consume/none?partition=0`);
    const status = await new Promise<number>((resolve) => {
      upgrade.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      upgrade.on('open', () => resolve(101));
      upgrade.on('error', () => undefined);
    });
    upgrade.terminate();
    assert.equal(status, 429, 'a WebSocket upgrade is refused too');
    for (const socket of held.splice(0, 3)) socket.destroy();
    const served = await eventually('served again', async () => {
      const answer = await rawGet(port, '/metrics');
      answer.socket.destroy();
      return answer.status === 200 ? answer : null;
    });
    assert.ok(counter(served.body, 'broker_client_limit_refusals_total', 'reason="per_ip"') >= 2);
  });
});
