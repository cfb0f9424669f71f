// The relay of an extra acceptor: every HTTP request and every WebSocket connection that an extra acceptor
// thread does not serve itself goes, unchanged, to the primary acceptor (the main thread) on its private loopback
// port, proving with a secret token that it comes from a relay and naming the client's address.
//
// HTTP: the request (method, path and query, headers minus hop-by-hop ones, body read with the broker's size
// limit) is sent with node:http over a bounded keep-alive pool (`socketsMax` sockets; at most
// `maxPendingRequests` requests in flight, more are answered 503 at once); the answer (status line, headers, whole
// body) is written back in one corked write. Upstream errors answer 503 with Retry-After, a timeout 504.
//
// WebSocket: the upgrade is held until the primary accepted the same upgrade (the `ws` client), then completed
// with the subprotocol the primary chose; a refusal (401, 403, 429...) reaches the client as it was sent. Then
// messages are passed both ways with their kind (text or binary), and a close with its code and reason.
// Backpressure: a slow client pauses the reading of its upstream socket (resumed on uWS `drain` below half the
// bound). The other way, this build of uWebSockets.js cannot pause reading a WebSocket: bytes waiting to go to the
// primary are bounded instead by `wsUpstreamBufferedBytesMax`, past which the client is closed with 1013 (try
// again later).
//
// Runs on an extra acceptor thread (workers/acceptor.ts); one relay per uWS app, used from that thread only.
import uWS from 'uWebSockets.js';
import http from 'node:http';
import WebSocket from 'ws';
import { errorBody } from '../core/errors.js';

import { RELAY_ADDRESS_HEADER, RELAY_TOKEN_HEADER } from './server.js';

export { RELAY_ADDRESS_HEADER, RELAY_TOKEN_HEADER };

/** Every header with this prefix is the relay's own: one a client sent is dropped (it could forge them). */
const RELAY_HEADER_PREFIX = 'x-broker-relay-';

const MIB = 1024 * 1024;

export interface RelayOptions {
  /** The primary acceptor's private loopback port and the secret token proving a relay (random per broker start). */
  readonly port: number;
  readonly token: string;
  /** Bodies larger than this are refused 413 before being buffered (as the broker does). */
  readonly maxRequestBytes: number;
  /** A relayed HTTP request not answered within this is answered 504 (JSON body, see below). */
  readonly requestTimeoutMs: number;
  /** Upstream sockets kept open at most (keep-alive pool); more requests wait in the agent's bounded queue. */
  readonly socketsMax: number;
  /** A WebSocket client whose unsent bytes exceed this pauses reading from its upstream until uWS `drain`. */
  readonly wsBufferedBytesMax: number;
  /** Relayed HTTP requests in flight at most (body being read, waiting for a socket or an answer); default 10 000. */
  readonly maxPendingRequests?: number;
  /** An upstream answer larger than this is not relayed (502); default 256 MiB. */
  readonly maxResponseBytes?: number;
  /** The largest WebSocket message either way (uWS maxPayloadLength, ws maxPayload); default 16 MiB. */
  readonly wsMaxMessageBytes?: number;
  /**
   * Bytes of client messages waiting to be written to the primary at most; past it the client is closed with 1013.
   * Default `wsBufferedBytesMax + wsMaxMessageBytes`.
   */
  readonly wsUpstreamBufferedBytesMax?: number;
  /** uWS idle timeout of a relayed WebSocket (pings are sent automatically); default 120 s. */
  readonly wsIdleTimeoutS?: number;
}

export interface RelayStats {
  /** HTTP requests answered with the primary's answer (whatever its status). */
  readonly httpRelayed: number;
  /** Relayed WebSocket connections open now. */
  readonly wsOpen: number;
  /**
   * Requests and connections the relay answered or closed itself because the primary could not be reached, did
   * not answer in time, or a bound was hit (503, 502, 504; WebSocket 1011 and 1013).
   */
  readonly failures: number;
  /** HTTP requests in flight now. */
  readonly httpPending: number;
  /** Times an upstream WebSocket was paused because its client did not read fast enough. */
  readonly pauses: number;
  /** The most bytes seen waiting in a client WebSocket's send buffer after a relayed message (a peak). */
  readonly wsBufferedBytesPeak: number;
  /** Clients closed with 1013 because their messages to the primary passed `wsUpstreamBufferedBytesMax`. */
  readonly wsUpstreamOverflows: number;
}

export interface Relay {
  /** Answers 503 to requests in flight, closes relayed WebSockets (1001) and the upstream pool; refuses new ones. */
  close(): void;
  /** Relays this HTTP request, from a handler of the app's own (which must not have touched `res` yet). */
  forward(res: uWS.HttpResponse, req: uWS.HttpRequest): void;
  readonly stats: RelayStats;
}

type MutableStats = { -readonly [K in keyof RelayStats]: RelayStats[K] };

/** Headers that describe one connection (RFC 9110 section 7.6.1), never passed on; `proxy-*` too. */
const hopByHopHeaders: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

/** Request headers the relay sets itself: the body is whole (its length is known), and `100-continue` is done. */
const requestHeadersReplaced: ReadonlySet<string> = new Set(['content-length', 'expect']);

/** Answer headers uWS writes itself (a copy would be a duplicate). */
const answerHeadersReplaced: ReadonlySet<string> = new Set(['content-length', 'date', 'uwebsockets']);

/** Upgrade request headers the `ws` client makes itself (or from its `protocols` argument). */
const upgradeHeadersReplaced: ReadonlySet<string> = new Set([
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'content-length',
]);

/** Error codes of a connection to the primary that failed or broke: the primary is down or restarting (503). */
const unreachableCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ECONNABORTED',
]);

/** Free upstream sockets are closed after this idle time, below uWS's 10 s keep-alive timeout on the primary. */
const freeSocketTimeoutMs = 4000;

function isHopByHop(name: string): boolean {
  return hopByHopHeaders.has(name) || name.startsWith('proxy-');
}

/** The header names a `Connection` header lists: hop-by-hop for this message (RFC 9110 section 7.6.1). */
function connectionTokensOf(value: string): ReadonlySet<string> | null {
  if (value === '') return null;
  const tokens = new Set<string>();
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '') tokens.add(name);
  }
  return tokens;
}

function errorCodeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = errorCodeOf(error);
    return code === '' || error.message.includes(code) ? error.message : `${code}: ${error.message}`;
  }
  return String(error);
}

function statusLineOf(status: number, message: string | undefined): string {
  const text = message !== undefined && message !== '' ? message : (http.STATUS_CODES[status] ?? '');
  return text === '' ? String(status) : `${status} ${text}`;
}

/** A close code that may be sent in a close frame: 1005 (none given) becomes 1000, 1006 and others 1011. */
export function sendableCloseCode(code: number): number {
  if (code === 1005) return 1000;
  const standard = code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006;
  return standard || (code >= 3000 && code <= 4999) ? code : 1011;
}

/** A close reason of at most 123 bytes (a close frame's limit), cut at a UTF-8 character boundary. */
function closeReasonOf(reason: Buffer): Buffer {
  if (reason.byteLength <= 123) return reason;
  let end = 123;
  while (end > 0 && (reason[end]! & 0xc0) === 0x80) end--;
  return reason.subarray(0, end);
}

/** A message as the `ws` client hands it (a Buffer with the default binaryType). */
function bufferOf(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function relayFailedBody(message: string): string {
  return JSON.stringify({ error: 'relay_failed', message });
}

/** Writes a whole JSON answer (corked); `closeConnection` ends the connection after it. */
function answerJson(
  res: uWS.HttpResponse,
  status: number,
  body: string,
  retryAfterS: number | null,
  closeConnection = false,
): void {
  res.cork(() => {
    res.writeStatus(statusLineOf(status, undefined));
    res.writeHeader('content-type', 'application/json');
    if (retryAfterS !== null) res.writeHeader('retry-after', String(retryAfterS));
    res.end(body, closeConnection);
  });
}

/** Writes an upstream answer: its status line, its end-to-end headers, its body (corked). */
function answerRelayed(
  res: uWS.HttpResponse,
  method: string,
  incoming: http.IncomingMessage,
  body: Buffer,
  closeConnection = false,
): void {
  const status = incoming.statusCode ?? 502;
  const raw = incoming.rawHeaders;
  const connectionTokens = connectionTokensOf(String(incoming.headers.connection ?? ''));
  res.cork(() => {
    res.writeStatus(statusLineOf(status, incoming.statusMessage));
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      const lower = name.toLowerCase();
      if (isHopByHop(lower) || answerHeadersReplaced.has(lower) || connectionTokens?.has(lower) === true)
        continue;
      // Node decodes header values as latin1: the same bytes go out.
      res.writeHeader(name, Buffer.from(raw[i + 1]!, 'latin1'));
    }
    // No body (nor a Content-Length uWS would make up) for HEAD, 204 and 304.
    if (method === 'HEAD' || status === 204 || status === 304) res.endWithoutBody(undefined, closeConnection);
    else res.end(body, closeConnection);
  });
}

/** Reads an upstream answer's body, at most `maxBytes` (null past it: the answer was destroyed). */
function readBody(
  incoming: http.IncomingMessage,
  maxBytes: number,
  done: (body: Buffer | null, error: Error | null) => void,
): void {
  const chunks: Buffer[] = [];
  let receivedBytes = 0;
  let finished = false;
  const finish = (body: Buffer | null, error: Error | null): void => {
    if (finished) return;
    finished = true;
    done(body, error);
  };
  incoming.on('data', (chunk: Buffer) => {
    if (finished) return;
    receivedBytes += chunk.byteLength;
    if (receivedBytes > maxBytes) {
      incoming.destroy();
      finish(null, null);
      return;
    }
    chunks.push(chunk);
  });
  incoming.on('end', () => finish(Buffer.concat(chunks, receivedBytes), null));
  incoming.on('error', (error) => finish(null, error));
  incoming.on('aborted', () => finish(null, new Error('the primary closed the connection mid-answer')));
}

/** What every relayed request and connection shares: options, the upstream pool, the counters. */
class RelayState implements Relay {
  readonly stats: MutableStats = {
    httpRelayed: 0,
    wsOpen: 0,
    failures: 0,
    httpPending: 0,
    pauses: 0,
    wsBufferedBytesPeak: 0,
    wsUpstreamOverflows: 0,
  };
  readonly agent: http.Agent;
  readonly maxPendingRequests: number;
  readonly maxResponseBytes: number;
  readonly wsMaxMessageBytes: number;
  readonly wsUpstreamBufferedBytesMax: number;
  readonly wsIdleTimeoutS: number;
  readonly wsUrlBase: string;
  readonly exchanges = new Set<HttpExchange>();
  readonly upgrades = new Set<PendingUpgrade>();
  readonly links = new Set<WsLink>();
  closed = false;

  constructor(readonly options: RelayOptions) {
    if (!Number.isInteger(options.port) || options.port <= 0 || options.port > 65535)
      throw new RangeError(`relay port ${options.port} is not a TCP port`);
    if (!(options.socketsMax >= 1)) throw new RangeError('relay socketsMax must be at least 1');
    this.maxPendingRequests = options.maxPendingRequests ?? 10_000;
    this.maxResponseBytes = options.maxResponseBytes ?? 256 * MIB;
    this.wsMaxMessageBytes = options.wsMaxMessageBytes ?? 16 * MIB;
    this.wsUpstreamBufferedBytesMax =
      options.wsUpstreamBufferedBytesMax ?? options.wsBufferedBytesMax + this.wsMaxMessageBytes;
    this.wsIdleTimeoutS = options.wsIdleTimeoutS ?? 120;
    this.wsUrlBase = `ws://127.0.0.1:${options.port}`;
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: options.socketsMax,
      maxTotalSockets: options.socketsMax,
      maxFreeSockets: options.socketsMax,
      scheduling: 'lifo',
      timeout: freeSocketTimeoutMs,
    });
  }

  /** The request headers for the primary: end-to-end ones of the client, then the relay's own. */
  upstreamHeaders(
    pairs: readonly (readonly [string, string])[],
    address: string,
    replaced: ReadonlySet<string>,
  ): Record<string, string | string[]> {
    // No prototype: a client header named `__proto__` is a header like any other.
    const headers = Object.create(null) as Record<string, string | string[]>;
    let connectionTokens: ReadonlySet<string> | null = null;
    for (const [name, value] of pairs)
      if (name === 'connection') connectionTokens = connectionTokensOf(value);
    for (const [name, value] of pairs) {
      if (isHopByHop(name) || replaced.has(name) || name.startsWith(RELAY_HEADER_PREFIX)) continue;
      if (connectionTokens?.has(name) === true) continue;
      const previous = headers[name];
      if (previous === undefined) headers[name] = value;
      else if (Array.isArray(previous)) previous.push(value);
      else headers[name] = [previous, value];
    }
    headers[RELAY_TOKEN_HEADER] = this.options.token;
    headers[RELAY_ADDRESS_HEADER] = address;
    return headers;
  }

  forward(res: uWS.HttpResponse, req: uWS.HttpRequest): void {
    relayHttp(this, res, req);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const exchange of this.exchanges) exchange.fail(503, 'the relay is shutting down', 1);
    for (const upgrade of this.upgrades) upgrade.fail(503, 'the relay is shutting down', 1);
    for (const link of this.links) link.closeBoth(1001, 'the relay is shutting down');
    this.agent.destroy();
  }
}

/** Everything of a request the handler must copy: uWS request objects die when the handler returns. */
function requestPairsOf(req: uWS.HttpRequest): [string, string][] {
  const pairs: [string, string][] = [];
  req.forEach((name, value) => {
    pairs.push([name, value]);
  });
  return pairs;
}

function remoteAddressOf(res: uWS.HttpResponse): string {
  return Buffer.from(res.getRemoteAddressAsText()).toString('latin1');
}

/** One relayed HTTP request, from its first byte to its answer (or abort). */
class HttpExchange {
  private finished = false;
  private chunks: Buffer[] = [];
  private receivedBytes = 0;
  private upstream: http.ClientRequest | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly relay: RelayState,
    private readonly res: uWS.HttpResponse,
    private readonly method: string,
    private readonly path: string,
    private readonly headers: Record<string, string | string[]>,
    /** The client sent a body (Content-Length or Transfer-Encoding): its length is passed on, even 0. */
    private readonly bodyDeclared: boolean,
  ) {
    relay.exchanges.add(this);
    relay.stats.httpPending++;
  }

  /** The client went away: nothing more is written, the upstream request (if any) is dropped. */
  aborted(): void {
    if (this.finished) return;
    this.finish();
  }

  onChunk(chunk: ArrayBuffer, isLast: boolean): void {
    if (this.finished) return;
    const maxBytes = this.relay.options.maxRequestBytes;
    this.receivedBytes += chunk.byteLength;
    if (this.receivedBytes > maxBytes) {
      this.finish();
      const answer = errorBody(
        'payload_too_large',
        `the body is larger than ${maxBytes} bytes (--max-request-bytes)`,
      );
      answerJson(this.res, answer.status, JSON.stringify(answer.body), null, true);
      return;
    }
    // uWS reuses the chunk's memory once this returns: a copy.
    if (chunk.byteLength > 0) this.chunks.push(Buffer.from(new Uint8Array(chunk)));
    if (isLast) this.forward();
  }

  private forward(): void {
    const relay = this.relay;
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.receivedBytes);
    this.chunks = [];
    if (this.bodyDeclared || body.byteLength > 0) this.headers['content-length'] = String(body.byteLength);
    let upstream: http.ClientRequest;
    try {
      upstream = http.request({
        host: '127.0.0.1',
        port: relay.options.port,
        method: this.method,
        path: this.path,
        headers: this.headers,
        agent: relay.agent,
      });
    } catch (error) {
      // Node refused the method, path or a header value (characters it does not allow).
      this.fail(400, `the request cannot be relayed: ${describe(error)}`, null, false);
      return;
    }
    this.upstream = upstream;
    this.timer = setTimeout(
      () =>
        this.fail(504, `the broker did not answer within ${relay.options.requestTimeoutMs} ms; retry`, null),
      relay.options.requestTimeoutMs,
    );
    upstream.on('error', (error) => {
      const code = errorCodeOf(error);
      if (unreachableCodes.has(code))
        this.fail(503, `the broker is not reachable (${describe(error)}); retry`, 1);
      else this.fail(502, `relaying to the broker failed: ${describe(error)}`, 1);
    });
    upstream.on('response', (incoming) => {
      readBody(incoming, relay.maxResponseBytes, (answer, error) => {
        if (this.finished) return;
        if (answer === null) {
          if (error !== null) this.fail(503, `the broker's answer broke off: ${describe(error)}; retry`, 1);
          else this.fail(502, `the broker's answer is larger than ${relay.maxResponseBytes} bytes`, null);
          return;
        }
        this.finish();
        relay.stats.httpRelayed++;
        answerRelayed(this.res, this.method, incoming, answer);
      });
    });
    upstream.end(body);
  }

  /** Answers the relay's own error (a failure unless `counted` is false) and drops the upstream request. */
  fail(status: number, message: string, retryAfterS: number | null, counted = true): void {
    if (this.finished) return;
    this.finish();
    if (counted) this.relay.stats.failures++;
    answerJson(this.res, status, relayFailedBody(message), retryAfterS);
  }

  private finish(): void {
    this.finished = true;
    this.chunks = [];
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    // A request still waiting or in flight is dropped: its socket is closed, not reused.
    this.upstream?.destroy();
    this.upstream = null;
    this.relay.exchanges.delete(this);
    this.relay.stats.httpPending--;
  }
}

function relayHttp(relay: RelayState, res: uWS.HttpResponse, req: uWS.HttpRequest): void {
  // Everything from `req` now: it is invalid once this returns.
  const method = req.getMethod().toUpperCase();
  const url = req.getUrl();
  const query = req.getQuery() ?? '';
  const pairs = requestPairsOf(req);
  const address = remoteAddressOf(res);
  if (relay.closed) {
    answerJson(res, 503, relayFailedBody('this acceptor is shutting down; retry'), 1);
    return;
  }
  if (relay.stats.httpPending >= relay.maxPendingRequests) {
    relay.stats.failures++;
    answerJson(
      res,
      503,
      relayFailedBody(`more than ${relay.maxPendingRequests} requests are waiting for the broker; retry`),
      1,
    );
    return;
  }
  let declared = '';
  let chunked = false;
  for (const [name, value] of pairs) {
    if (name === 'content-length') declared = value;
    else if (name === 'transfer-encoding') chunked = true;
  }
  if (declared !== '' && Number(declared) > relay.options.maxRequestBytes) {
    const answer = errorBody(
      'payload_too_large',
      `the body is ${declared} bytes; the maximum is ${relay.options.maxRequestBytes} (--max-request-bytes)`,
    );
    // The body is not read: the connection cannot carry another request.
    answerJson(res, answer.status, JSON.stringify(answer.body), null, true);
    return;
  }
  const path = query === '' ? url : `${url}?${query}`;
  const headers = relay.upstreamHeaders(pairs, address, requestHeadersReplaced);
  const exchange = new HttpExchange(relay, res, method, path, headers, declared !== '' || chunked);
  res.onAborted(() => exchange.aborted());
  // uWS calls this at least once, with an empty last chunk for a request without a body.
  res.onData((chunk, isLast) => exchange.onChunk(chunk, isLast));
}

/** A WebSocket upgrade waiting for the primary to accept (or refuse) the same upgrade. */
class PendingUpgrade {
  private finished = false;
  private timer: NodeJS.Timeout | null = null;
  upstream: WebSocket | null = null;

  constructor(
    private readonly relay: RelayState,
    private readonly res: uWS.HttpResponse,
    private readonly key: string,
    private readonly extensions: string,
    private readonly context: uWS.us_socket_context_t,
  ) {
    relay.upgrades.add(this);
  }

  start(url: string, protocols: readonly string[], headers: Record<string, string | string[]>): void {
    const relay = this.relay;
    let upstream: WebSocket;
    try {
      upstream = new WebSocket(`${relay.wsUrlBase}${url}`, [...protocols], {
        headers,
        perMessageDeflate: false,
        followRedirects: false,
        maxPayload: relay.wsMaxMessageBytes,
        // The primary is trusted and its text already checked; the client's text is checked by uWS.
        skipUTF8Validation: true,
      });
    } catch (error) {
      // An invalid or repeated subprotocol name, or a URL ws does not take.
      this.fail(400, `the upgrade cannot be relayed: ${describe(error)}`, null, false);
      return;
    }
    this.upstream = upstream;
    this.timer = setTimeout(
      () =>
        this.fail(
          504,
          `the broker did not accept the upgrade within ${relay.options.requestTimeoutMs} ms`,
          null,
        ),
      relay.options.requestTimeoutMs,
    );
    upstream.on('error', (error) => {
      if (this.finished) return;
      const code = errorCodeOf(error);
      if (unreachableCodes.has(code))
        this.fail(503, `the broker is not reachable (${describe(error)}); retry`, 1);
      else this.fail(502, `relaying the upgrade failed: ${describe(error)}`, 1);
    });
    upstream.on('unexpected-response', (_request, incoming) => {
      readBody(incoming, relay.maxResponseBytes, (body, error) => {
        if (this.finished) return;
        if (body === null) {
          if (error !== null) this.fail(503, `the broker's answer broke off: ${describe(error)}; retry`, 1);
          else this.fail(502, `the broker's answer is larger than ${relay.maxResponseBytes} bytes`, null);
          return;
        }
        this.finish();
        upstream.terminate();
        relay.stats.httpRelayed++;
        answerRelayed(this.res, 'GET', incoming, body);
      });
    });
    upstream.once('open', () => {
      if (this.finished) return;
      this.finish();
      // Nothing is read from the primary until the client's side is open (see WsLink.opened).
      upstream.pause();
      const link = new WsLink(relay, upstream);
      this.res.cork(() =>
        this.res.upgrade<LinkData>({ link }, this.key, upstream.protocol, this.extensions, this.context),
      );
    });
  }

  /** The client went away before the upgrade: the upstream connection is dropped. */
  aborted(): void {
    if (this.finished) return;
    this.finish();
    this.upstream?.terminate();
  }

  fail(status: number, message: string, retryAfterS: number | null, counted = true): void {
    if (this.finished) return;
    this.finish();
    this.upstream?.terminate();
    if (counted) this.relay.stats.failures++;
    answerJson(this.res, status, relayFailedBody(message), retryAfterS);
  }

  private finish(): void {
    this.finished = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.relay.upgrades.delete(this);
  }
}

interface LinkData {
  readonly link: WsLink;
}

/** One relayed WebSocket: the client's uWS socket and its upstream `ws` connection. */
class WsLink {
  ws: uWS.WebSocket<LinkData> | null = null;
  /** The client's side closed (uWS `close` ran): the socket may not be used. */
  clientClosed = false;
  /** The primary's side closed or is closing: nothing more is sent to it. */
  upstreamClosed = false;
  /** Paused from the primary's `open` until uWS `open` (which uWS runs within `res.upgrade`), then when slow. */
  upstreamPaused = true;

  constructor(
    private readonly relay: RelayState,
    readonly upstream: WebSocket,
  ) {
    upstream.on('message', (data, isBinary) => this.fromUpstream(bufferOf(data), isBinary));
    upstream.on('close', (code, reason) => this.upstreamClose(code, reason));
    // A 'close' always follows an error; the error itself needs a listener.
    upstream.on('error', () => {});
  }

  /** uWS `open`: the client's side is ready. */
  opened(ws: uWS.WebSocket<LinkData>): void {
    this.ws = ws;
    const relay = this.relay;
    relay.links.add(this);
    relay.stats.wsOpen++;
    // Cannot happen while uWS runs `open` within `res.upgrade` (the upstream is paused until then); if it did,
    // the client is told rather than left open to a closed upstream.
    if (this.upstreamClosed) return ws.end(1011, 'the broker closed the connection');
    this.resumeUpstream();
  }

  private fromUpstream(data: Buffer, isBinary: boolean): void {
    if (this.clientClosed) return;
    const ws = this.ws;
    // Paused until the client's side is open (see `upstreamPaused`): nothing to send it to yet is a bug.
    if (ws === null) return this.closeBoth(1011, 'relay received a message before the client was open');
    let outcome = 1;
    ws.cork(() => {
      outcome = ws.send(data, isBinary);
    });
    if (outcome === 2) {
      // maxBackpressure is far above wsBufferedBytesMax (the upstream pauses first): a drop would be a bug.
      this.relay.stats.failures++;
      this.closeBoth(1011, 'relay send buffer limit reached');
      return;
    }
    const buffered = ws.getBufferedAmount();
    const stats = this.relay.stats;
    if (buffered > stats.wsBufferedBytesPeak) stats.wsBufferedBytesPeak = buffered;
    if (!this.upstreamPaused && buffered > this.relay.options.wsBufferedBytesMax) {
      this.upstreamPaused = true;
      stats.pauses++;
      this.upstream.pause();
    }
  }

  private resumeUpstream(): void {
    this.upstreamPaused = false;
    this.upstream.resume();
  }

  /** uWS `drain`: the client read some of what waits for it. */
  drained(): void {
    const ws = this.ws;
    if (ws === null || this.clientClosed) return;
    if (
      this.upstreamPaused &&
      !this.upstreamClosed &&
      ws.getBufferedAmount() < this.relay.options.wsBufferedBytesMax / 2
    )
      this.resumeUpstream();
  }

  /** uWS `message`: a client message for the primary (copied: uWS reuses its memory). */
  fromClient(data: ArrayBuffer, isBinary: boolean): void {
    if (this.upstreamClosed || this.clientClosed) return;
    const upstream = this.upstream;
    if (upstream.readyState !== WebSocket.OPEN) return;
    upstream.send(Buffer.from(new Uint8Array(data)), { binary: isBinary });
    if (upstream.bufferedAmount > this.relay.wsUpstreamBufferedBytesMax) {
      // This uWS build cannot stop reading a WebSocket: past the bound the client must slow down and come back.
      this.relay.stats.wsUpstreamOverflows++;
      this.relay.stats.failures++;
      this.closeBoth(1013, 'the broker is not keeping up with this connection; retry later');
    }
  }

  /** The primary closed (or its connection broke): the client gets the same code, after what came before. */
  private upstreamClose(code: number, reason: Buffer): void {
    this.upstreamClosed = true;
    if (this.clientClosed) return;
    const ws = this.ws;
    if (ws === null) return; // `opened` closes the client.
    // uWS sends what is still in its send buffer before the close frame (test/http/relay.test.ts checks it with a
    // slow client). Runs the uWS close handler (clientClose) at once.
    ws.end(sendableCloseCode(code), closeReasonOf(reason));
  }

  /** uWS `close`: the client closed (or its connection broke): the primary gets the same code. */
  clientClose(code: number, message: ArrayBuffer): void {
    if (this.clientClosed) return;
    this.clientClosed = true;
    this.ws = null;
    this.relay.links.delete(this);
    this.relay.stats.wsOpen--;
    if (this.upstreamClosed) return;
    this.closeUpstream(sendableCloseCode(code), closeReasonOf(Buffer.from(new Uint8Array(message))));
  }

  private closeUpstream(code: number, reason: Buffer): void {
    this.upstreamClosed = true;
    const upstream = this.upstream;
    if (upstream.readyState !== WebSocket.OPEN) return upstream.terminate();
    upstream.close(code, reason);
    // Reading on lets the primary's close frame in (else ws waits 30 s for it); what comes before it is dropped.
    if (this.upstreamPaused) this.resumeUpstream();
  }

  /** Closes both sides with the relay's own code (a bound hit, shutdown). */
  closeBoth(code: number, reason: string): void {
    const reasonBytes = closeReasonOf(Buffer.from(reason));
    if (!this.upstreamClosed) this.closeUpstream(code, reasonBytes);
    const ws = this.ws;
    if (ws !== null && !this.clientClosed) ws.end(code, reasonBytes);
  }
}

function relayUpgrade(
  relay: RelayState,
  res: uWS.HttpResponse,
  req: uWS.HttpRequest,
  context: uWS.us_socket_context_t,
): void {
  // Everything from `req` now: it is invalid once this returns.
  const url = req.getUrl();
  const query = req.getQuery() ?? '';
  const key = req.getHeader('sec-websocket-key');
  const protocolHeader = req.getHeader('sec-websocket-protocol');
  const extensions = req.getHeader('sec-websocket-extensions');
  const pairs = requestPairsOf(req);
  const address = remoteAddressOf(res);
  if (relay.closed) {
    answerJson(res, 503, relayFailedBody('this acceptor is shutting down; retry'), 1);
    return;
  }
  const protocols = protocolHeader
    .split(',')
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== '');
  const headers = relay.upstreamHeaders(pairs, address, upgradeHeadersReplaced);
  const pending = new PendingUpgrade(relay, res, key, extensions, context);
  res.onAborted(() => pending.aborted());
  pending.start(query === '' ? url : `${url}?${query}`, protocols, headers);
}

/** Registers `app.any('/*')` (HTTP relay) and `app.ws('/*')` (WebSocket relay) on `app`. Register it after the app's own routes. */
export function installRelay(app: uWS.TemplatedApp, options: RelayOptions): Relay {
  const relay = new RelayState(options);
  app.ws<LinkData>('/*', {
    compression: uWS.DISABLED,
    maxPayloadLength: relay.wsMaxMessageBytes,
    idleTimeout: relay.wsIdleTimeoutS,
    sendPingsAutomatically: true,
    // The upstream pauses at wsBufferedBytesMax; past it come at most the messages of one read, so this bound
    // only guards against a bug (a message is then refused, and the connection closed, never dropped silently).
    maxBackpressure: options.wsBufferedBytesMax + 2 * relay.wsMaxMessageBytes,
    closeOnBackpressureLimit: 0,
    upgrade: (res, req, context) => relayUpgrade(relay, res, req, context),
    open: (ws) => ws.getUserData().link.opened(ws),
    message: (ws, message, isBinary) => ws.getUserData().link.fromClient(message, isBinary),
    drain: (ws) => ws.getUserData().link.drained(),
    close: (ws, code, message) => ws.getUserData().link.clientClose(code, message),
  });
  app.any('/*', (res, req) => relayHttp(relay, res, req));
  return relay;
}
