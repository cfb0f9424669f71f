// The relay of an extra acceptor (src/http/relay.ts) between a client and an "upstream" uWS app standing in for
// the primary acceptor: HTTP requests pass through with method, path, query, headers and body, answers with
// status, headers and body; the relay adds its token and the client's address and drops forged ones; bounds
// (413, pending requests) and failures (504 timeout, 503 upstream down) are answered by the relay itself.
// WebSockets: subprotocol, text and binary both ways, close codes both ways, a refused upgrade, a large
// message, and backpressure both ways (a slow client pauses the upstream; a stuck upstream closes the client
// with 1013 instead of buffering without bound).

import uWS from 'uWebSockets.js';
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import {
  installRelay,
  RELAY_ADDRESS_HEADER,
  RELAY_TOKEN_HEADER,
  type Relay,
  type RelayOptions,
} from '../../src/http/relay.js';

const TOKEN = 'secret-relay-token';
const MIB = 1024 * 1024;
const testTimeout = { timeout: 20_000 };

interface Listening {
  readonly port: number;
  close(): void;
}

function listen(app: uWS.TemplatedApp): Promise<Listening> {
  return new Promise((resolve, reject) => {
    app.listen('127.0.0.1', 0, (listenSocket) => {
      if (listenSocket === false) return reject(new Error('could not listen'));
      resolve({
        port: uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket),
        close: () => uWS.us_listen_socket_close(listenSocket),
      });
    });
  });
}

/** What the upstream saw, for the tests to check. */
interface UpstreamLog {
  /** Kinds of the messages the upstream WS echo route received, in order. */
  readonly received: { isBinary: boolean; bytes: number }[];
  /** Close codes and reasons the upstream's sockets were closed with. */
  readonly closes: { code: number; reason: string }[];
  closeSeen: (() => void) | null;
  /** The most bytes the flood route saw waiting in its socket's send buffer. */
  floodBufferedPeak: number;
  /** Upstream WebSockets open now. */
  open: number;
  /** Requests of the slow routes whose client (the relay) went away before the answer. */
  aborted: number;
}

interface Socket {
  protocol: string;
  headers: Record<string, string>;
  flooding: boolean;
}

/** Reads a whole body (copying every chunk), then calls `done`. */
function readBody(res: uWS.HttpResponse, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.onData((chunk, isLast) => {
    chunks.push(Buffer.from(new Uint8Array(chunk)));
    if (isLast) done(Buffer.concat(chunks));
  });
}

function headersOf(req: uWS.HttpRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  req.forEach((name, value) => {
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  });
  return headers;
}

/** Sends `totalBytes` in 64 KiB binary messages (each starting with its index), then 'done' and closes 4000. */
function flood(ws: uWS.WebSocket<Socket>, totalBytes: number, log: UpstreamLog): void {
  const chunkBytes = 64 * 1024;
  const count = Math.ceil(totalBytes / chunkBytes);
  let next = 0;
  const pump = (): void => {
    const data = ws.getUserData();
    if (!data.flooding) return;
    while (next < count && ws.getBufferedAmount() < 4 * MIB) {
      const message = Buffer.alloc(chunkBytes, next & 0xff);
      message.writeUInt32BE(next, 0);
      ws.send(message, true);
      next++;
      log.floodBufferedPeak = Math.max(log.floodBufferedPeak, ws.getBufferedAmount());
    }
    if (next === count) {
      data.flooding = false;
      ws.send('done', false);
      ws.end(4000, 'flood done');
    }
  };
  (ws as unknown as { pump: () => void }).pump = pump;
  pump();
}

function startUpstreamApp(log: UpstreamLog): uWS.TemplatedApp {
  const app = uWS.App();
  app.ws<Socket>('/ws/echo', {
    compression: uWS.DISABLED,
    maxPayloadLength: 16 * MIB,
    maxBackpressure: 64 * MIB,
    idleTimeout: 0,
    upgrade: (res, req, context) => {
      const headers = headersOf(req);
      const offered = req.getHeader('sec-websocket-protocol');
      // Picks the last protocol offered, to show the choice is the upstream's.
      const protocol = offered === '' ? '' : offered.split(',').at(-1)!.trim();
      res.upgrade<Socket>(
        { protocol, headers, flooding: false },
        req.getHeader('sec-websocket-key'),
        protocol,
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      log.open++;
      const data = ws.getUserData();
      // A server-initiated message, sent at once: it must not be lost while the relay completes the upgrade.
      ws.send(JSON.stringify({ hello: true, protocol: data.protocol, headers: data.headers }), false);
    },
    message: (ws, message, isBinary) => {
      log.received.push({ isBinary, bytes: message.byteLength });
      const text = isBinary ? '' : Buffer.from(message).toString('utf8');
      if (text.startsWith('close:')) {
        const [, code, reason] = text.split(':');
        ws.end(Number(code), reason);
        return;
      }
      if (text.startsWith('burst:')) {
        // Messages and a close all at once: the close must reach the client after every message.
        const count = Number(text.slice('burst:'.length));
        for (let i = 0; i < count; i++) {
          const burst = Buffer.alloc(64 * 1024, i & 0xff);
          burst.writeUInt32BE(i, 0);
          ws.send(burst, true);
        }
        ws.end(4003, 'burst done');
        return;
      }
      if (text.startsWith('flood:')) {
        ws.getUserData().flooding = true;
        flood(ws, Number(text.slice('flood:'.length)), log);
        return;
      }
      ws.send(message, isBinary);
    },
    drain: (ws) => {
      (ws as unknown as { pump?: () => void }).pump?.();
    },
    close: (ws, code, message) => {
      log.open--;
      ws.getUserData().flooding = false;
      log.closes.push({ code, reason: Buffer.from(message).toString('utf8') });
      log.closeSeen?.();
    },
  });
  // An upgrade the upstream takes its time to accept.
  app.ws<Socket>('/ws/slow', {
    upgrade: (res, req, context) => {
      const key = req.getHeader('sec-websocket-key');
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
        log.aborted++;
      });
      setTimeout(() => {
        if (!aborted)
          res.cork(() =>
            res.upgrade<Socket>({ protocol: '', headers: {}, flooding: false }, key, '', '', context),
          );
      }, 1000);
    },
  });
  app.get('/ws/refuse', (res) => {
    res.cork(() => {
      res.writeStatus('403 Forbidden');
      res.writeHeader('content-type', 'application/json');
      res.writeHeader('x-refusal', 'acl');
      res.end('{"error_code":40301,"message":"not allowed"}');
    });
  });
  app.post('/created', (res) => {
    res.onAborted(() => {});
    readBody(res, (body) => {
      res.cork(() => {
        res.writeStatus('201 Created');
        res.writeHeader('content-type', 'application/json');
        res.writeHeader('x-custom', 'yes');
        res.writeHeader('set-cookie', 'a=1');
        res.writeHeader('set-cookie', 'b=2');
        res.end(JSON.stringify({ created: body.toString('utf8') }));
      });
    });
  });
  app.get('/unauthorized', (res) => {
    res.cork(() => {
      res.writeStatus('401 Unauthorized');
      res.writeHeader('www-authenticate', 'Bearer realm="broker"');
      res.writeHeader('content-type', 'application/json');
      res.end('{"error_code":40101,"message":"no token"}');
    });
  });
  app.get('/slow', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      log.aborted++;
    });
    setTimeout(() => {
      if (!aborted) res.cork(() => res.end('late'));
    }, 1500);
  });
  app.get('/big', (res, req) => {
    const bytes = Number(req.getQuery('bytes'));
    const body = Buffer.alloc(bytes);
    for (let i = 0; i < bytes; i += 4096) body.writeUInt32BE(i, i);
    res.end(body);
  });
  app.any('/echo/*', (res, req) => {
    const method = req.getMethod();
    const url = req.getUrl();
    const query = req.getQuery();
    const headers = headersOf(req);
    res.onAborted(() => {});
    readBody(res, (body) => {
      res.cork(() => {
        res.writeHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method, url, query, headers, body: body.toString('utf8') }));
      });
    });
  });
  return app;
}

interface Fixture {
  readonly upstreamPort: number;
  readonly relayPort: number;
  readonly relay: Relay;
  readonly log: UpstreamLog;
  close(): void;
}

async function startFixture(options: Partial<RelayOptions> = {}): Promise<Fixture> {
  const log: UpstreamLog = {
    received: [],
    closes: [],
    closeSeen: null,
    floodBufferedPeak: 0,
    open: 0,
    aborted: 0,
  };
  const upstream = await listen(startUpstreamApp(log));
  const relayApp = uWS.App();
  // The acceptor's own route, registered before the relay: it is not relayed.
  relayApp.get('/own', (res) => {
    res.end('served by the acceptor');
  });
  const relay = installRelay(relayApp, {
    port: upstream.port,
    token: TOKEN,
    maxRequestBytes: 64 * 1024,
    requestTimeoutMs: 2000,
    socketsMax: 4,
    wsBufferedBytesMax: 1 * MIB,
    ...options,
  });
  const relayListening = await listen(relayApp);
  return {
    upstreamPort: upstream.port,
    relayPort: relayListening.port,
    relay,
    log,
    close: () => {
      relay.close();
      relayListening.close();
      upstream.close();
    },
  };
}

interface Answer {
  readonly status: number;
  readonly statusMessage: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
}

/** One request on its own connection (closed after the answer, so nothing keeps the process alive). */
function request(
  port: number,
  options: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    /** Sent as separate chunks with chunked transfer encoding. */
    chunks?: readonly Buffer[];
  },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers ?? {},
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            statusMessage: res.statusMessage ?? '',
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.chunks !== undefined) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else req.end(options.body);
  });
}

function jsonOf(answer: Answer): Record<string, unknown> {
  return JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>;
}

interface Received {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

/** A ws client with its messages queued, to be taken one at a time. */
class Client {
  readonly socket: WebSocket;
  private readonly queue: Received[] = [];
  private waiter: ((message: Received) => void) | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(url: string, protocols: string[] = [], headers: Record<string, string> = {}) {
    this.socket = new WebSocket(url, protocols, { headers, perMessageDeflate: false });
    this.socket.on('message', (data, isBinary) => {
      const message = { data: data as Buffer, isBinary };
      const waiter = this.waiter;
      if (waiter !== null) {
        this.waiter = null;
        waiter(message);
      } else this.queue.push(message);
    });
    this.closed = new Promise((resolve) => {
      this.socket.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
    });
    this.socket.on('error', () => {});
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
  }

  next(): Promise<Received> {
    const message = this.queue.shift();
    if (message !== undefined) return Promise.resolve(message);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  close(): void {
    this.socket.terminate();
  }
}

function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (check()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 10);
    };
    poll();
  });
}

test(
  'HTTP: method, path, query, headers and body pass through; relay headers are added, forged ones dropped',
  testTimeout,
  async () => {
    const fixture = await startFixture();
    try {
      const answer = await request(fixture.relayPort, {
        method: 'PATCH',
        path: '/echo/topics/a%20b?x=1&y=two',
        headers: {
          'content-type': 'application/json',
          'x-custom-header': 'custom value',
          authorization: 'Bearer abc',
          [RELAY_TOKEN_HEADER]: 'forged',
          [RELAY_ADDRESS_HEADER]: '10.9.8.7',
          'x-broker-relay-other': 'forged too',
          'keep-alive': 'timeout=5',
          'proxy-authorization': 'Basic eA==',
        },
        body: '{"hello":"world"}',
      });
      assert.equal(answer.status, 200);
      const echoed = jsonOf(answer) as {
        method: string;
        url: string;
        query: string;
        headers: Record<string, string>;
        body: string;
      };
      assert.equal(echoed.method, 'patch');
      assert.equal(echoed.url, '/echo/topics/a%20b');
      assert.equal(echoed.query, 'x=1&y=two');
      assert.equal(echoed.body, '{"hello":"world"}');
      assert.equal(echoed.headers['content-type'], 'application/json');
      assert.equal(echoed.headers['x-custom-header'], 'custom value');
      assert.equal(echoed.headers.authorization, 'Bearer abc');
      assert.equal(echoed.headers['content-length'], '17');
      // The relay's own headers, once each: the forged ones are gone.
      assert.equal(echoed.headers[RELAY_TOKEN_HEADER], TOKEN);
      assert.equal(echoed.headers[RELAY_ADDRESS_HEADER], '127.0.0.1');
      assert.equal(echoed.headers['x-broker-relay-other'], undefined);
      assert.equal(echoed.headers['keep-alive'], undefined);
      assert.equal(echoed.headers['proxy-authorization'], undefined);

      // A GET without a body, and a chunked body (whole upstream, with its length).
      const get = jsonOf(await request(fixture.relayPort, { path: '/echo/plain' })) as {
        method: string;
        headers: Record<string, string>;
        body: string;
      };
      assert.equal(get.method, 'get');
      assert.equal(get.body, '');
      assert.equal(get.headers['content-length'], undefined);
      const chunked = jsonOf(
        await request(fixture.relayPort, {
          method: 'POST',
          path: '/echo/chunked',
          chunks: [Buffer.from('first,'), Buffer.from('second')],
        }),
      ) as { body: string; headers: Record<string, string> };
      assert.equal(chunked.body, 'first,second');
      assert.equal(chunked.headers['content-length'], '12');
      assert.equal(chunked.headers['transfer-encoding'], undefined);

      // The acceptor's own routes are not relayed.
      const own = await request(fixture.relayPort, { path: '/own' });
      assert.equal(own.body.toString(), 'served by the acceptor');
      assert.equal(fixture.relay.stats.httpRelayed, 3);
      assert.equal(fixture.relay.stats.httpPending, 0);
      assert.equal(fixture.relay.stats.failures, 0);
    } finally {
      fixture.close();
    }
  },
);

test('HTTP: status line, headers and body of the answer pass through', testTimeout, async () => {
  const fixture = await startFixture();
  try {
    const created = await request(fixture.relayPort, { method: 'POST', path: '/created', body: 'thing' });
    assert.equal(created.status, 201);
    assert.equal(created.statusMessage, 'Created');
    assert.equal(created.headers['x-custom'], 'yes');
    assert.deepEqual(created.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(created.headers['content-type'], 'application/json');
    assert.deepEqual(jsonOf(created), { created: 'thing' });
    // uWS's own headers once, not copied from the upstream's answer as well.
    const names = created.rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
    assert.equal(names.filter((name) => name === 'date').length, 1);
    assert.equal(names.filter((name) => name === 'content-length').length, 1);
    assert.equal(names.filter((name) => name === 'uwebsockets').length, 1);

    const unauthorized = await request(fixture.relayPort, { path: '/unauthorized' });
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.headers['www-authenticate'], 'Bearer realm="broker"');
    assert.deepEqual(jsonOf(unauthorized), { error_code: 40101, message: 'no token' });

    // A large answer (buffered whole, then sent).
    const bytes = 24 * MIB;
    const big = await request(fixture.relayPort, { path: `/big?bytes=${bytes}` });
    assert.equal(big.status, 200);
    assert.equal(big.body.byteLength, bytes);
    for (let i = 0; i < bytes; i += 4096) assert.equal(big.body.readUInt32BE(i), i);
  } finally {
    fixture.close();
  }
});

test('HTTP: 413 for a body over maxRequestBytes, declared or streamed', testTimeout, async () => {
  const fixture = await startFixture({ maxRequestBytes: 1024 });
  try {
    const declared = await request(fixture.relayPort, {
      method: 'POST',
      path: '/echo/x',
      body: Buffer.alloc(2048, 0x61),
    });
    assert.equal(declared.status, 413);
    assert.equal(declared.headers['content-type'], 'application/json');
    assert.equal(jsonOf(declared).error_code, 41301);
    const streamed = await request(fixture.relayPort, {
      method: 'POST',
      path: '/echo/x',
      chunks: [Buffer.alloc(600, 0x61), Buffer.alloc(600, 0x62)],
    }).catch((error: unknown) => error);
    // The relay answers 413 and closes the connection as soon as the bytes pass the limit: the client sees the
    // answer, or (if it was still writing) a reset.
    if (!(streamed instanceof Error)) {
      assert.equal((streamed as Answer).status, 413);
      assert.equal(jsonOf(streamed as Answer).error_code, 41301);
    }
    // At the limit is fine.
    const atLimit = await request(fixture.relayPort, {
      method: 'POST',
      path: '/echo/x',
      body: Buffer.alloc(1024, 0x61),
    });
    assert.equal(atLimit.status, 200);
    assert.equal((jsonOf(atLimit) as { body: string }).body.length, 1024);
    assert.equal(fixture.relay.stats.httpPending, 0);
  } finally {
    fixture.close();
  }
});

test(
  'HTTP: 504 when the upstream does not answer in time; 503 when too many are waiting',
  testTimeout,
  async () => {
    const fixture = await startFixture({ requestTimeoutMs: 300, maxPendingRequests: 2 });
    try {
      const startedMs = Date.now();
      const slow = [
        request(fixture.relayPort, { path: '/slow' }),
        request(fixture.relayPort, { path: '/slow' }),
      ];
      await waitFor(() => fixture.relay.stats.httpPending === 2, 'two requests pending');
      const refused = await request(fixture.relayPort, { path: '/echo/x' });
      assert.equal(refused.status, 503);
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal(jsonOf(refused).error, 'relay_failed');
      for (const answer of await Promise.all(slow)) {
        assert.equal(answer.status, 504);
        assert.equal(answer.headers['content-type'], 'application/json');
        const body = jsonOf(answer);
        assert.equal(body.error, 'relay_failed');
        assert.match(String(body.message), /300 ms/);
      }
      assert.ok(Date.now() - startedMs < 1400, 'answered by the relay before the upstream answered');
      assert.equal(fixture.relay.stats.failures, 3);
      assert.equal(fixture.relay.stats.httpPending, 0);
      // The relay still works after.
      assert.equal((await request(fixture.relayPort, { path: '/echo/after' })).status, 200);
    } finally {
      fixture.close();
    }
  },
);

test(
  'a client that goes away: the upstream request or upgrade is dropped, nothing is written',
  testTimeout,
  async () => {
    const fixture = await startFixture({ requestTimeoutMs: 500 });
    try {
      const req = http.request({ host: '127.0.0.1', port: fixture.relayPort, path: '/slow', agent: false });
      req.on('error', () => {});
      req.end();
      await waitFor(() => fixture.relay.stats.httpPending === 1, 'the request pending');
      req.destroy();
      await waitFor(() => fixture.log.aborted === 1, 'the upstream request aborted');
      assert.equal(fixture.relay.stats.httpPending, 0);

      const client = new WebSocket(`ws://127.0.0.1:${fixture.relayPort}/ws/slow`);
      client.on('error', () => {});
      await new Promise((resolve) => setTimeout(resolve, 100));
      client.terminate();
      await waitFor(() => fixture.log.aborted === 2, 'the upstream upgrade aborted');
      // The relay's timers (500 ms) must not write to the aborted responses: uWS would throw.
      await new Promise((resolve) => setTimeout(resolve, 700));
      assert.equal(fixture.relay.stats.failures, 0);
      assert.equal(fixture.relay.stats.wsOpen, 0);
    } finally {
      fixture.close();
    }
  },
);

test('WebSocket: 504 when the upstream does not accept the upgrade in time', testTimeout, async () => {
  const fixture = await startFixture({ requestTimeoutMs: 200 });
  const client = new WebSocket(`ws://127.0.0.1:${fixture.relayPort}/ws/slow`);
  try {
    const refusal = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      client.on('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      });
      client.on('open', () => reject(new Error('upgraded')));
      client.on('error', () => {});
    });
    assert.equal(refusal.status, 504);
    assert.equal((JSON.parse(refusal.body) as { error: string }).error, 'relay_failed');
    assert.equal(fixture.relay.stats.failures, 1);
    // The relay dropped its upstream connection.
    await waitFor(() => fixture.log.aborted === 1, 'the upstream upgrade aborted');
  } finally {
    client.terminate();
    fixture.close();
  }
});

test('503 with retry-after when the upstream port is closed (HTTP and WebSocket)', testTimeout, async () => {
  const closed = await listen(uWS.App());
  closed.close();
  const relayApp = uWS.App();
  const relay = installRelay(relayApp, {
    port: closed.port,
    token: TOKEN,
    maxRequestBytes: 1024,
    requestTimeoutMs: 2000,
    socketsMax: 2,
    wsBufferedBytesMax: MIB,
  });
  const listening = await listen(relayApp);
  try {
    const answer = await request(listening.port, { method: 'POST', path: '/topics/t/records', body: '{}' });
    assert.equal(answer.status, 503);
    assert.equal(answer.headers['retry-after'], '1');
    assert.equal(answer.headers['content-type'], 'application/json');
    const body = jsonOf(answer);
    assert.equal(body.error, 'relay_failed');
    assert.match(String(body.message), /ECONNREFUSED/);

    const client = new WebSocket(`ws://127.0.0.1:${listening.port}/ws/echo`);
    const refused = await new Promise<number>((resolve, reject) => {
      client.on('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      client.on('open', () => reject(new Error('upgraded')));
      client.on('error', () => {});
    });
    client.terminate();
    assert.equal(refused, 503);
    assert.equal(relay.stats.failures, 2);
  } finally {
    relay.close();
    listening.close();
  }
});

test(
  'WebSocket: subprotocol, relay headers, text and binary both ways, a 1 MiB message',
  testTimeout,
  async () => {
    const fixture = await startFixture();
    const client = new Client(`ws://127.0.0.1:${fixture.relayPort}/ws/echo?from=test`, ['p1', 'p2'], {
      authorization: 'Bearer xyz',
      [RELAY_TOKEN_HEADER]: 'forged',
    });
    try {
      await client.opened();
      assert.equal(client.socket.protocol, 'p2');
      // The server-initiated message, sent by the upstream as soon as it opened.
      const hello = await client.next();
      assert.equal(hello.isBinary, false);
      const greeting = JSON.parse(hello.data.toString('utf8')) as {
        protocol: string;
        headers: Record<string, string>;
      };
      assert.equal(greeting.protocol, 'p2');
      assert.equal(greeting.headers[RELAY_TOKEN_HEADER], TOKEN);
      assert.equal(greeting.headers[RELAY_ADDRESS_HEADER], '127.0.0.1');
      assert.equal(greeting.headers.authorization, 'Bearer xyz');
      assert.equal(greeting.headers['sec-websocket-protocol'], 'p1,p2');
      assert.equal(fixture.relay.stats.wsOpen, 1);

      client.socket.send('text message');
      const text = await client.next();
      assert.equal(text.isBinary, false);
      assert.equal(text.data.toString('utf8'), 'text message');

      client.socket.send(Buffer.from([1, 2, 3, 0xff]), { binary: true });
      const binary = await client.next();
      assert.equal(binary.isBinary, true);
      assert.deepEqual([...binary.data], [1, 2, 3, 0xff]);

      const large = Buffer.alloc(MIB);
      for (let i = 0; i < large.byteLength; i += 4) large.writeUInt32BE(i, i);
      client.socket.send(large, { binary: true });
      const echoed = await client.next();
      assert.equal(echoed.isBinary, true);
      assert.ok(echoed.data.equals(large));

      // The upstream received each kind as sent.
      assert.deepEqual(fixture.log.received, [
        { isBinary: false, bytes: 12 },
        { isBinary: true, bytes: 4 },
        { isBinary: true, bytes: MIB },
      ]);
    } finally {
      client.close();
      fixture.close();
    }
  },
);

test('WebSocket: close codes and reasons pass both ways', testTimeout, async () => {
  const fixture = await startFixture();
  try {
    // Upstream to client.
    const first = new Client(`ws://127.0.0.1:${fixture.relayPort}/ws/echo`);
    await first.opened();
    await first.next();
    first.socket.send('close:4001:server says bye');
    assert.deepEqual(await first.closed, { code: 4001, reason: 'server says bye' });

    // Client to upstream.
    const second = new Client(`ws://127.0.0.1:${fixture.relayPort}/ws/echo`);
    await second.opened();
    await second.next();
    const upstreamClosed = new Promise<void>((resolve) => {
      fixture.log.closeSeen = resolve;
    });
    second.socket.close(4002, 'client says bye');
    await upstreamClosed;
    assert.deepEqual(fixture.log.closes.at(-1), { code: 4002, reason: 'client says bye' });
    assert.equal((await second.closed).code, 4002);

    // A close without a code (1005) reaches the upstream as 1000.
    const third = new Client(`ws://127.0.0.1:${fixture.relayPort}/ws/echo`);
    await third.opened();
    await third.next();
    const thirdClosed = new Promise<void>((resolve) => {
      fixture.log.closeSeen = resolve;
    });
    third.socket.close();
    await thirdClosed;
    assert.equal(fixture.log.closes.at(-1)?.code, 1000);

    // A client that vanishes (no close frame, 1006) reaches the upstream as 1011.
    const fourth = new Client(`ws://127.0.0.1:${fixture.relayPort}/ws/echo`);
    await fourth.opened();
    await fourth.next();
    const fourthClosed = new Promise<void>((resolve) => {
      fixture.log.closeSeen = resolve;
    });
    fourth.socket.terminate();
    await fourthClosed;
    assert.equal(fixture.log.closes.at(-1)?.code, 1011);

    await waitFor(() => fixture.relay.stats.wsOpen === 0, 'every relayed socket closed');
  } finally {
    fixture.close();
  }
});

test(
  'WebSocket: an upgrade the upstream refuses reaches the client with its status, headers and body',
  testTimeout,
  async () => {
    const fixture = await startFixture();
    const client = new WebSocket(`ws://127.0.0.1:${fixture.relayPort}/ws/refuse`);
    try {
      const refusal = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
        (resolve, reject) => {
          client.on('unexpected-response', (_req, res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: Buffer.concat(chunks).toString('utf8'),
              }),
            );
          });
          client.on('open', () => reject(new Error('upgraded')));
          client.on('error', () => {});
        },
      );
      assert.equal(refusal.status, 403);
      assert.equal(refusal.headers['x-refusal'], 'acl');
      assert.deepEqual(JSON.parse(refusal.body), { error_code: 40301, message: 'not allowed' });
      assert.equal(fixture.relay.stats.wsOpen, 0);
      assert.equal(fixture.relay.stats.failures, 0);
    } finally {
      client.terminate();
      fixture.close();
    }
  },
);

test(
  'WebSocket backpressure: a slow client pauses the upstream; 50 MB arrive in order, memory stays bounded',
  testTimeout,
  async () => {
    const wsBufferedBytesMax = MIB;
    const fixture = await startFixture({ wsBufferedBytesMax });
    const client = new Client(`ws://127.0.0.1:${fixture.relayPort}/ws/echo`);
    try {
      await client.opened();
      await client.next();
      const totalBytes = 50 * 1000 * 1000;
      const chunkBytes = 64 * 1024;
      const count = Math.ceil(totalBytes / chunkBytes);
      client.socket.send(`flood:${totalBytes}`);
      // The client does not read at all for a while, then reads with pauses.
      client.socket.pause();
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.ok(fixture.relay.stats.pauses >= 1, 'the relay paused its upstream');
      const pausedAtBytes = fixture.relay.stats.wsBufferedBytesPeak;
      client.socket.resume();
      let expected = 0;
      let receivedBytes = 0;
      for (;;) {
        const message = await client.next();
        if (!message.isBinary) {
          assert.equal(message.data.toString('utf8'), 'done');
          break;
        }
        assert.equal(message.data.byteLength, chunkBytes);
        assert.equal(message.data.readUInt32BE(0), expected, 'messages arrive in order');
        assert.equal(message.data[chunkBytes - 1], expected & 0xff);
        expected++;
        receivedBytes += message.data.byteLength;
        if (expected % 64 === 0) {
          // A slow reader: 4 MiB, then a pause.
          client.socket.pause();
          await new Promise((resolve) => setTimeout(resolve, 20));
          client.socket.resume();
        }
      }
      assert.equal(expected, count);
      assert.equal(receivedBytes, count * chunkBytes);
      assert.deepEqual(await client.closed, { code: 4000, reason: 'flood done' });
      const stats = fixture.relay.stats;
      // What waits in the relay for the client stays near the bound: the upstream was paused, not buffered.
      assert.ok(
        stats.wsBufferedBytesPeak <= wsBufferedBytesMax + 2 * MIB,
        `relay buffered at most ${stats.wsBufferedBytesPeak} bytes (bound ${wsBufferedBytesMax})`,
      );
      assert.ok(pausedAtBytes > wsBufferedBytesMax, 'the pause came after the bound was passed');
      // The upstream felt the backpressure (its own send buffer filled while the relay did not read).
      assert.ok(
        fixture.log.floodBufferedPeak >= 4 * MIB,
        `upstream buffered ${fixture.log.floodBufferedPeak}`,
      );
      assert.equal(stats.failures, 0);
      await waitFor(() => fixture.relay.stats.wsOpen === 0, 'the relayed socket closed');
    } finally {
      client.close();
      fixture.close();
    }
  },
);

test(
  'WebSocket: a client that closes while its upstream is paused closes the upstream at once',
  testTimeout,
  async () => {
    const fixture = await startFixture({ wsBufferedBytesMax: MIB });
    const client = new Client(`ws://127.0.0.1:${fixture.relayPort}/ws/echo`);
    try {
      await client.opened();
      await client.next();
      client.socket.send(`flood:${200 * MIB}`);
      client.socket.pause();
      await waitFor(() => fixture.relay.stats.pauses >= 1, 'the relay paused its upstream');
      const upstreamClosed = new Promise<void>((resolve) => {
        fixture.log.closeSeen = resolve;
      });
      client.socket.resume();
      client.socket.close(4005, 'enough');
      await upstreamClosed;
      assert.deepEqual(fixture.log.closes.at(-1), { code: 4005, reason: 'enough' });
      await waitFor(() => fixture.relay.stats.wsOpen === 0, 'the relayed socket closed');
      // The relay's upstream connection (a node:net socket, as is the test's client) is gone too: it read on to the
      // primary's close frame instead of waiting 30 s for it on a paused socket.
      await waitFor(
        () => !process.getActiveResourcesInfo().includes('TCPSocketWrap'),
        'the upstream connection to close',
      );
    } finally {
      client.close();
      fixture.close();
    }
  },
);

test(
  'WebSocket: a close from the upstream reaches a slow client after every message before it',
  testTimeout,
  async () => {
    const fixture = await startFixture({ wsBufferedBytesMax: MIB });
    const client = new Client(`ws://127.0.0.1:${fixture.relayPort}/ws/echo`);
    try {
      await client.opened();
      await client.next();
      const count = 256; // 16 MiB
      client.socket.send(`burst:${count}`);
      client.socket.pause();
      await waitFor(() => fixture.log.open === 0, 'the upstream closed');
      await new Promise((resolve) => setTimeout(resolve, 200));
      client.socket.resume();
      let expected = 0;
      const drained = (async () => {
        for (;;) {
          const message = await client.next();
          assert.equal(message.data.readUInt32BE(0), expected, 'messages arrive in order');
          expected++;
          if (expected % 16 === 0) {
            client.socket.pause();
            await new Promise((resolve) => setTimeout(resolve, 10));
            client.socket.resume();
          }
          if (expected === count) return;
        }
      })();
      const closed = await client.closed;
      await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 100))]);
      assert.equal(expected, count, 'every message arrived before the close');
      assert.deepEqual(closed, { code: 4003, reason: 'burst done' });
      assert.ok(fixture.relay.stats.pauses >= 1);
    } finally {
      client.close();
      fixture.close();
    }
  },
);

test(
  'WebSocket backpressure: an upstream that stops reading closes the client with 1013, not unbounded buffering',
  testTimeout,
  async () => {
    // A `ws` server that accepts and then never reads: the relay's writes to it pile up.
    const stuck = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => stuck.once('listening', () => resolve()));
    const stuckPort = (stuck.address() as { port: number }).port;
    const upstreamSockets: WebSocket[] = [];
    stuck.on('connection', (socket) => {
      upstreamSockets.push(socket);
      socket.pause();
    });
    const relayApp = uWS.App();
    const relay = installRelay(relayApp, {
      port: stuckPort,
      token: TOKEN,
      maxRequestBytes: 1024,
      requestTimeoutMs: 2000,
      socketsMax: 2,
      wsBufferedBytesMax: MIB,
      wsUpstreamBufferedBytesMax: 4 * MIB,
    });
    const listening = await listen(relayApp);
    const client = new Client(`ws://127.0.0.1:${listening.port}/stream`);
    try {
      await client.opened();
      const message = Buffer.alloc(MIB, 0x42);
      let sent = 0;
      let closed = false;
      void client.closed.then(() => {
        closed = true;
      });
      // Up to 256 MiB; the relay must give up long before.
      while (!closed && sent < 256) {
        if (client.socket.bufferedAmount < 4 * MIB) {
          client.socket.send(message, { binary: true });
          sent++;
        } else await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const { code, reason } = await client.closed;
      assert.equal(code, 1013);
      assert.match(reason, /not keeping up/);
      assert.ok(sent < 256, `closed after ${sent} MiB`);
      assert.equal(relay.stats.wsUpstreamOverflows, 1);
      assert.equal(relay.stats.failures, 1);
      await waitFor(() => relay.stats.wsOpen === 0, 'the relayed socket closed');
    } finally {
      client.close();
      relay.close();
      listening.close();
      for (const socket of upstreamSockets) socket.terminate();
      await new Promise<void>((resolve) => stuck.close(() => resolve()));
    }
  },
);

test(
  'close(): relayed sockets are closed with 1001 and new requests are answered 503',
  testTimeout,
  async () => {
    const fixture = await startFixture();
    const client = new Client(`ws://127.0.0.1:${fixture.relayPort}/ws/echo`);
    try {
      await client.opened();
      await client.next();
      const upstreamClosed = new Promise<void>((resolve) => {
        fixture.log.closeSeen = resolve;
      });
      fixture.relay.close();
      assert.equal((await client.closed).code, 1001);
      await upstreamClosed;
      assert.equal(fixture.log.closes.at(-1)?.code, 1001);
      const answer = await request(fixture.relayPort, { path: '/echo/x' });
      assert.equal(answer.status, 503);
      assert.equal(fixture.relay.stats.wsOpen, 0);
    } finally {
      client.close();
      fixture.close();
    }
  },
);
