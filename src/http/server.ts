// The uWebSockets.js shell of the HTTP API: registers the route table, reads bodies with a hard size limit
// (413 as soon as the Content-Length or the bytes received pass it, before the body is buffered), and turns a
// handler's answer into one corked write. Handlers get a `Reply` that is safe to use after the client went
// away (it then does nothing). Every route passes the access check first (`ServerOptions.access`, the table of
// route-access.ts): 401 with `WWW-Authenticate: Bearer` for missing or bad credentials, before the body is
// read; 403 naming the missing permission once the requirements are known (after the body for the few routes
// whose requirements name topics in it); the handler never runs on a refusal.
// Then the limits of a client (both optional): a remote address holding more connections than
// `admitAddress` allows is answered 429 (rate_limited) and its connection closed; a produce or consume by a
// principal over its byte-rate quota (`quotas`) is answered 429 (quota_exceeded) with Retry-After, before the
// handler runs, so nothing is written. A consume answer is charged to its principal once sent.
// With `tls`, the app is a uWebSockets.js SSLApp (https and wss only; see src/security/tls.ts for what this
// build of uWebSockets.js can and cannot do with certificates). `reloadTls` serves new certificate files to
// clients that name the server (SNI): each DNS name is registered with uWebSockets.js with the new files and
// every handler registered again under it; clients that connect by IP address keep the start-up certificate.
// Runs on the acceptor (main) thread only.
import uWS from 'uWebSockets.js';
import { isUtf8 } from 'node:buffer';
import { type ErrorName, errorBody } from '../core/errors.js';
import { retryAfterSecondsOf } from '../core/quota.js';
import { type AccessRequirement, CLUSTER_RESOURCE, type ResourceType } from '../core/security/acl.js';
import { firstInvalidUtf8 } from '../core/utf8.js';
import { type AccessControl, ANONYMOUS, type Authentication } from '../security/access.js';
import type { TlsSettings } from '../security/tls.js';
import { decodePathParam } from './params.js';
import { bodyFormatOf } from './produce-body.js';
import { type AccessInput, accessOf, type OperationId, type RouteAccess } from './route-access.js';

if (typeof uWS.App !== 'function' || typeof uWS.getParts !== 'function') {
  // The native addon did not load (or a slow JS fallback was picked up): refuse to start rather than serve
  // at a fraction of the speed with different semantics.
  throw new Error(
    'uWebSockets.js native addon is not available (uWS.App/getParts missing): reinstall dependencies with npm ci',
  );
}

const statusText: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  202: '202 Accepted',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  408: '408 Request Timeout',
  409: '409 Conflict',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  416: '416 Range Not Satisfiable',
  422: '422 Unprocessable Entity',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
  507: '507 Insufficient Storage',
};

export type HttpMethod = 'get' | 'post' | 'patch' | 'delete';

export interface HttpRequest {
  readonly method: HttpMethod;
  readonly url: string;
  /** Path parameters in the order of the route pattern. */
  readonly params: readonly string[];
  /** The raw query string, without '?'. */
  readonly query: string;
  readonly contentType: string;
  readonly acceptEncoding: string;
  /** The idempotent producer headers (`Producer-Id`, `Producer-Epoch`, `Sequence`), '' when absent. */
  /**
   * The client asked not to be forwarded (header `X-Redirect-To-Leader: true`): a request for one partition
   * led on another node is answered 503 naming the leader and its URL instead.
   */
  readonly redirectToLeader?: boolean;
  /** Set on a request another broker forwarded (header `X-Forwarded-By-Broker`): the forwarding broker's id. */
  readonly forwardedBy?: string;
  /** The Authorization header as sent ('' when absent): passed on when the request is forwarded. */
  readonly authorization?: string;
  /** The authenticated principal (`ANONYMOUS` with authentication off). */
  readonly principal?: string;
  /** Whether the principal may describe a resource: list answers show only those (always true with auth off). */
  readonly mayDescribe?: ((resourceType: ResourceType, name: string) => boolean) | undefined;
  readonly producerId?: string;
  readonly producerEpoch?: string;
  readonly sequence?: string;
  /** Null for routes without a body. Valid only until the handler returns unless the handler copies it. */
  readonly body: Buffer | null;
  /**
   * The body's memory is its own (assembled from several pieces, or copied), not uWebSockets.js's: a handler
   * may keep it, or transfer its ArrayBuffer to another thread, after returning.
   */
  readonly bodyOwned?: boolean;
  readonly startedAtMs: number;
}

/** Told once when a request is answered or aborted (499), with its status. */
export interface RequestObserver {
  requestDone(status: number): void;
}

/**
 * What `writeCorked` writes: uWS runs a cork callback synchronously, so one module-level record and one
 * function serve every answer, where a closure per answer would be garbage.
 */
const corked = {
  res: null as uWS.HttpResponse | null,
  status: 200,
  contentType: 'application/json',
  headers: undefined as readonly (readonly [string, string])[] | undefined,
  body: '' as string | Uint8Array,
  closeConnection: false,
  clear(): void {
    this.res = null;
    this.headers = undefined;
    this.body = '';
    this.closeConnection = false;
  },
};

function writeCorked(): void {
  const res = corked.res!;
  const status = corked.status;
  res.writeStatus(statusText[status] ?? `${status}`);
  res.writeHeader('content-type', corked.contentType);
  const headers = corked.headers;
  if (headers !== undefined) for (const [name, value] of headers) res.writeHeader(name, value);
  res.end(corked.body, corked.closeConnection);
}

/** The answer side of one request. Every method is a no-op once the request is answered or aborted. */
export class Reply {
  private finished = false;
  private aborted = false;
  /** Set to measure the body sent (`sentBytes`): only consume answers are, for their quota. */
  measure = false;
  sentBytes = 0;

  constructor(
    private readonly res: uWS.HttpResponse,
    private readonly observer: RequestObserver,
  ) {}

  private onDone(status: number): void {
    this.observer.requestDone(status);
  }

  get open(): boolean {
    return !this.finished && !this.aborted;
  }

  markAborted(): void {
    this.aborted = true;
    if (!this.finished) {
      this.finished = true;
      this.onDone(499);
    }
  }

  /**
   * Sends a JSON text with `status`: a string, or its UTF-8 bytes (copied by uWS before this returns, so a reused
   * buffer will do); `closeConnection` ends the connection after it (load shedding).
   */
  json(
    status: number,
    body: string | Uint8Array,
    headers?: readonly (readonly [string, string])[],
    closeConnection = false,
  ): void {
    if (!this.open) return;
    this.finished = true;
    if (this.measure) this.sentBytes = Buffer.byteLength(body);
    corked.res = this.res;
    corked.status = status;
    corked.contentType = 'application/json';
    corked.headers = headers;
    corked.body = body;
    corked.closeConnection = closeConnection;
    try {
      this.res.cork(writeCorked);
    } finally {
      corked.clear();
    }
    this.onDone(status);
  }

  /** Refuses the request for the connection cap: 503 with Retry-After, then the connection is closed. */
  shed(): void {
    const answer = errorBody(
      'overloaded',
      'the broker is at its client connection limit (--max-connections); retry after the delay, or on another node',
    );
    this.json(
      answer.status,
      JSON.stringify(answer.body),
      [['retry-after', String(answer.retryAfterS)]],
      true,
    );
  }

  /** Refuses the request for the per-address connection cap: 429, then the connection is closed. */
  refuseAddress(address: string, maxConnections: number): void {
    const answer = errorBody(
      'rate_limited',
      `${address} holds more than ${maxConnections} connections to this broker (--max-connections-per-ip); close some, or retry after the delay`,
    );
    this.json(
      answer.status,
      JSON.stringify(answer.body),
      [['retry-after', String(answer.retryAfterS)]],
      true,
    );
  }

  text(status: number, contentType: string, body: string): void {
    if (!this.open) return;
    this.finished = true;
    corked.res = this.res;
    corked.status = status;
    corked.contentType = contentType;
    corked.headers = undefined;
    corked.body = body;
    corked.closeConnection = false;
    try {
      this.res.cork(writeCorked);
    } finally {
      corked.clear();
    }
    this.onDone(status);
  }

  /** Sends the registry's answer for `name`, with Retry-After for retriable errors. */
  error(
    name: ErrorName,
    message: string,
    options: { indefinite?: boolean; retryAfterS?: number } = {},
  ): void {
    const answer = errorBody(name, message, options);
    const headers: [string, string][] = [];
    if (answer.retryAfterS !== null) headers.push(['retry-after', String(answer.retryAfterS)]);
    // RFC 6750: a 401 names the scheme the client must use.
    if (name === 'unauthenticated') headers.push(['www-authenticate', 'Bearer realm="broker"']);
    this.json(answer.status, JSON.stringify(answer.body), headers);
  }

  /**
   * The answer to a client that asked for redirects: 503 (no_leader) naming the partition's leader, with its
   * base URL in the body and in `Location`, and `Retry-After: 0` (the client may go there at once).
   */
  redirect(message: string, leader: string, leaderUrl: string): void {
    const answer = errorBody('no_leader', message);
    const body = { ...answer.body, leader, leader_url: leaderUrl };
    this.json(answer.status, JSON.stringify(body), [
      ['retry-after', '0'],
      ['location', leaderUrl],
    ]);
  }
}

export interface Route {
  readonly method: HttpMethod;
  /** uWebSockets.js pattern, e.g. `/topics/:topic/partitions/:partition`. */
  readonly pattern: string;
  /** Also the key of the route's entry in the access table (route-access.ts). */
  readonly operationId: OperationId;
  readonly summary: string;
  readonly hasBody: boolean;
  readonly handle: (request: HttpRequest, reply: Reply) => void;
}

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxRequestBytes: number;
  /** Observes every answered request (route operationId or 'unmatched', status, seconds). */
  readonly onRequestDone: (operationId: string, status: number, seconds: number) => void;
  /** Registers more handlers (WebSocket endpoints) before the catch-all 404/405 handlers. */
  readonly extend?: (app: uWS.TemplatedApp) => void;
  /** False while the client connection cap is reached: requests are then shed (503, connection closed). */
  readonly admit?: () => boolean;
  /** Authentication and ACLs; absent: every route is open (tests of the server alone). */
  readonly access?: AccessControl;
  /** TLS on the port (https and wss only); absent or null: plain HTTP. */
  readonly tls?: TlsSettings | null;
  /** The per-address connection cap; absent: none. */
  readonly addressCap?: AddressCap;
  /** Byte-rate quotas per principal; absent: none. */
  readonly quotas?: RequestQuotas;
  /**
   * Sees every routed request first and may take it (true: it answered or passed it on; nothing else runs). An
   * extra acceptor thread relays a produce for a topic it does not know yet.
   */
  readonly intercept?: (route: Route, res: uWS.HttpResponse, req: uWS.HttpRequest) => boolean;
  /** Also listen on 127.0.0.1, port 0, for what extra acceptor threads relay (`HttpServer.relayPort`). */
  readonly relayListen?: boolean;
  /**
   * Registers the handler of everything the routes do not match, instead of the 404/405 answers (an extra
   * acceptor thread relays it to the primary one).
   */
  readonly fallback?: (app: uWS.TemplatedApp) => void;
}

/** The connections-per-address cap as the server sees it (src/broker/address-limiter.ts keeps the counts). */
export interface AddressCap {
  readonly maxConnections: number;
  /** False when `address` holds more connections than allowed (counted as a refusal). */
  admit(address: string): boolean;
}

/** Byte-rate quotas per principal (src/broker/client-quotas.ts); a delay of 0 means go ahead. */
export interface RequestQuotas {
  readonly produceBytesPerS: number;
  readonly consumeBytesPerS: number;
  /** 0 when `principal` may produce `bytes` now (they are charged); else ms to wait (counted as throttled). */
  admitProduce(principal: string, bytes: number, transport: 'http' | 'ws'): number;
  /** 0 when `principal` may consume now; else ms to wait (counted as throttled). */
  consumeDelayMs(principal: string, transport: 'http' | 'ws'): number;
  chargeConsume(principal: string, bytes: number): void;
}

export interface HttpServer {
  readonly app: uWS.TemplatedApp;
  readonly port: number;
  /** The loopback port extra acceptor threads relay to (`relayListen`), else null. */
  readonly relayPort: number | null;
  /** Stops listening; open connections finish their requests. */
  stopListening(): void;
  /**
   * Serves `tls`'s files (checked by the caller) to new connections whose SNI is one of `serverNames`,
   * replacing the names a previous reload registered. Throws when the server has no TLS.
   */
  reloadTls(tls: TlsSettings, serverNames: readonly string[]): void;
}

/** The client's address as uWebSockets.js reads it from the socket (dotted IPv4 or full-form IPv6). */
export function remoteAddressOf(res: uWS.HttpResponse): string {
  return Buffer.from(res.getRemoteAddressAsText()).toString('latin1');
}

/** Headers an extra acceptor thread adds to what it relays to this one (src/http/relay.ts). */
export const RELAY_TOKEN_HEADER = 'x-broker-relay-token';
export const RELAY_ADDRESS_HEADER = 'x-broker-relay-address';
/** This process's relay token ('' with one acceptor thread: no request is taken as relayed). */
let relayToken = '';

/** Sets the token that proves a request was relayed by one of this broker's acceptor threads. */
export function setRelayToken(token: string): void {
  relayToken = token;
}

/**
 * The client's address: the socket's, or, for a request one of this broker's extra acceptor threads relayed
 * (it carries the process's relay token), the address of the client that thread served. Reads `req`: call it
 * before the handler returns.
 */
export function clientAddressOf(res: uWS.HttpResponse, req: uWS.HttpRequest): string {
  if (relayToken !== '' && req.getHeader(RELAY_TOKEN_HEADER) === relayToken) {
    const relayed = req.getHeader(RELAY_ADDRESS_HEADER);
    if (relayed !== '') return relayed;
  }
  return remoteAddressOf(res);
}

const produceOperations: ReadonlySet<string> = new Set(['produce', 'produceBatch']);
const consumeOperations: ReadonlySet<string> = new Set(['consume']);

const acceptedContentTypes = [
  'application/json',
  // Confluent's application/vnd.kafka.*+json, and the binary record-batch body (produce-body.ts).
  'application/vnd.kafka',
  'application/x-ndjson',
  'text/plain',
  'application/x-www-form-urlencoded',
];

function contentTypeAccepted(contentType: string): boolean {
  // The common case first, without the strings a split makes.
  if (contentType === '' || contentType === 'application/json') return true;
  const bare = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return acceptedContentTypes.some((accepted) => bare.startsWith(accepted));
}

export function startHttpServer(routes: readonly Route[], options: ServerOptions): Promise<HttpServer> {
  for (const route of routes) {
    // The access table declares every route: one it does not know is a bug, caught before serving anything.
    if (accessOf(route.operationId) === undefined) {
      throw new Error(
        `route ${route.operationId} has no entry in the access table (src/http/route-access.ts)`,
      );
    }
  }
  const tls = options.tls ?? null;
  const app = buildApp(routes, options, tls);
  let registeredNames: readonly string[] = [];
  const reloadTls = (next: TlsSettings, serverNames: readonly string[]): void => {
    if (tls === null) throw new Error('the client port has no TLS to reload');
    for (const name of registeredNames) app.removeServerName(name);
    registeredNames = [];
    for (const name of serverNames) {
      app.addServerName(name, appOptionsOf(next));
      // Requests on a connection that named the server are routed by that name's own (empty) router.
      app.domain(name);
      registerHandlers(app, routes, options);
      registeredNames = [...registeredNames, name];
    }
  };
  const listen = (host: string, port: number): Promise<uWS.us_listen_socket> =>
    new Promise((resolve, reject) => {
      app.listen(host, port, (listenSocket) => {
        if (listenSocket === false) reject(new Error(`could not listen on ${host}:${port}`));
        else resolve(listenSocket);
      });
    });
  return (async (): Promise<HttpServer> => {
    const client = await listen(options.host, options.port);
    let relay: uWS.us_listen_socket | null = null;
    try {
      if (options.relayListen === true) relay = await listen('127.0.0.1', 0);
    } catch (error) {
      uWS.us_listen_socket_close(client);
      throw error;
    }
    return {
      app,
      port: uWS.us_socket_local_port(client as unknown as uWS.us_socket),
      relayPort: relay === null ? null : uWS.us_socket_local_port(relay as unknown as uWS.us_socket),
      stopListening: () => {
        uWS.us_listen_socket_close(client);
        if (relay !== null) uWS.us_listen_socket_close(relay);
      },
      reloadTls,
    };
  })();
}

function appOptionsOf(tls: TlsSettings): uWS.AppOptions {
  return {
    cert_file_name: tls.certFile,
    key_file_name: tls.keyFile,
    ...(tls.caFile === null ? {} : { ca_file_name: tls.caFile }),
  };
}

/** A uWebSockets.js app (SSLApp with `tls`) with every route, the extensions and the 404/405 handlers. */
function buildApp(
  routes: readonly Route[],
  options: ServerOptions,
  tls: TlsSettings | null,
): uWS.TemplatedApp {
  const app = tls === null ? uWS.App() : uWS.SSLApp(appOptionsOf(tls));
  registerHandlers(app, routes, options);
  return app;
}

/** Every route, the extensions and the 404/405 handlers, on the app's current router (default or a domain). */
function registerHandlers(app: uWS.TemplatedApp, routes: readonly Route[], options: ServerOptions): void {
  const methodsByPattern = new Map<string, HttpMethod[]>();
  for (const route of routes) {
    const methods = methodsByPattern.get(route.pattern) ?? [];
    methods.push(route.method);
    methodsByPattern.set(route.pattern, methods);
    const intercept = options.intercept;
    const handler =
      intercept === undefined
        ? (res: uWS.HttpResponse, req: uWS.HttpRequest) => serve(route, res, req, options)
        : (res: uWS.HttpResponse, req: uWS.HttpRequest) => {
            if (!intercept(route, res, req)) serve(route, res, req, options);
          };
    if (route.method === 'get') app.get(route.pattern, handler);
    else if (route.method === 'post') app.post(route.pattern, handler);
    else if (route.method === 'patch') app.patch(route.pattern, handler);
    else app.del(route.pattern, handler);
  }
  options.extend?.(app);
  if (options.fallback !== undefined) return options.fallback(app);
  // A known path with another method answers 405 with Allow; anything else is 404. uWebSockets.js tries
  // routes with an explicit method before `any` ones, so these only catch what nothing else matched.
  const notAllowed: RequestObserver = {
    requestDone: (status) => options.onRequestDone('method_not_allowed', status, 0),
  };
  const unmatched: RequestObserver = {
    requestDone: (status) => options.onRequestDone('unmatched', status, 0),
  };
  for (const [pattern, methods] of methodsByPattern) {
    const allow = methods.map((m) => m.toUpperCase()).join(', ');
    app.any(pattern, (res) => {
      const reply = new Reply(res, notAllowed);
      res.onAborted(() => reply.markAborted());
      reply.error('method_not_allowed', `this path accepts ${allow}`);
    });
  }
  app.any('/*', (res, req) => {
    const url = req.getUrl();
    const method = req.getMethod().toUpperCase();
    const reply = new Reply(res, unmatched);
    res.onAborted(() => reply.markAborted());
    if (options.admit !== undefined && !options.admit()) return reply.shed();
    if (refusedAddress(res, req, reply, options)) return;
    reply.error('route_not_found', `no route for ${method} ${url}`);
  });
}

/** Answers 429 and closes the connection when its address is over the cap; true when it did. */
function refusedAddress(
  res: uWS.HttpResponse,
  req: uWS.HttpRequest,
  reply: Reply,
  options: ServerOptions,
): boolean {
  const cap = options.addressCap;
  if (cap === undefined) return false;
  const address = clientAddressOf(res, req);
  if (cap.admit(address)) return false;
  reply.refuseAddress(address, cap.maxConnections);
  return true;
}

function serve(route: Route, res: uWS.HttpResponse, req: uWS.HttpRequest, options: ServerOptions): void {
  new Exchange(route, res, req, options).begin(req);
}

/** The principal of every request while authentication is off, and of open routes with it on. */
const anonymousOk: Authentication = { kind: 'ok', principal: ANONYMOUS, expiresAtS: null };
const openOk: Authentication = { kind: 'ok', principal: '', expiresAtS: null };

/**
 * One request from its first byte to its answer: the request object handed to the route, its reply, and the
 * steps between (authentication, body, ACLs, quota). The steps are methods of this one object, and it is the
 * reply's observer, so a request costs a handful of objects rather than a closure per step.
 */
class Exchange implements RequestObserver {
  private readonly reply: Reply;
  private readonly request: MutableRequest & { authorization: string };
  /** A consume answer is charged to its principal's quota once sent (its size is known only then). */
  private readonly consumeQuota: boolean;
  private quotaPrincipal = '';
  /** No authentication or ACL check applies to this request. */
  private readonly open: boolean;
  private authentication: Authentication | Promise<Authentication> = openOk;
  private chunks: Buffer[] | null = null;
  private receivedBytes = 0;

  constructor(
    private readonly route: Route,
    private readonly res: uWS.HttpResponse,
    req: uWS.HttpRequest,
    private readonly options: ServerOptions,
  ) {
    const startedAtMs = performance.now();
    const quotas = options.quotas;
    this.consumeQuota =
      quotas !== undefined && quotas.consumeBytesPerS > 0 && consumeOperations.has(route.operationId);
    const reply = new Reply(res, this);
    this.reply = reply;
    reply.measure = this.consumeQuota;
    res.onAborted(() => reply.markAborted());
    // The uWS request object dies when the constructor returns: copy what the handler needs now.
    const paramCount = countParams(route.pattern);
    const params: string[] = new Array(paramCount);
    for (let i = 0; i < paramCount; i++) params[i] = decodePathParam(req.getParameter(i) ?? '');
    // One object per request, all its fields set here (one shape for every request): `run` fills in the body
    // and the principal instead of copying it.
    this.request = {
      method: route.method,
      url: req.getUrl(),
      params,
      query: req.getQuery() ?? '',
      contentType: req.getHeader('content-type'),
      acceptEncoding: req.getHeader('accept-encoding'),
      redirectToLeader: redirectAsked(req.getHeader('x-redirect-to-leader')),
      forwardedBy: req.getHeader('x-forwarded-by-broker'),
      authorization: req.getHeader('authorization'),
      producerId: req.getHeader('producer-id'),
      producerEpoch: req.getHeader('producer-epoch'),
      sequence: req.getHeader('sequence'),
      startedAtMs,
      body: null,
      bodyOwned: false,
      principal: '',
      mayDescribe: undefined,
    };
    const access = options.access;
    const rule = accessOf(route.operationId)!;
    this.open =
      access === undefined ||
      !access.enabled ||
      rule.kind === 'open' ||
      (rule.kind === 'metrics' && !access.metricsRequireAuth);
  }

  /** The steps up to the handler; `req` is valid only until this returns. */
  begin(req: uWS.HttpRequest): void {
    const { options, reply, res, route } = this;
    if (options.admit !== undefined && !options.admit()) return reply.shed();
    if (refusedAddress(res, req, reply, options)) return;
    const access = options.access;
    const authentication = this.open
      ? access === undefined || !access.enabled
        ? anonymousOk
        : openOk
      : access!.authenticate(this.request.authorization, null);
    this.authentication = authentication;
    // A refusal for credentials is answered before the body is read (when it is known at once).
    if (!(authentication instanceof Promise) && authentication.kind !== 'ok') {
      return refuseAuthentication(reply, authentication);
    }
    if (!route.hasBody) return this.withPrincipal(null);
    const contentType = this.request.contentType;
    if (!contentTypeAccepted(contentType)) {
      return reply.error(
        'unsupported_media_type',
        `Content-Type '${contentType}' is not accepted; send application/json (batch produce also takes application/x-ndjson and application/vnd.kafka.record-batch)`,
      );
    }
    const declared = req.getHeader('content-length');
    if (declared !== '' && Number(declared) > options.maxRequestBytes) {
      return reply.error(
        'payload_too_large',
        `the body is ${declared} bytes; the maximum is ${options.maxRequestBytes} (--max-request-bytes)`,
      );
    }
    res.onData((chunk, isLast) => this.onChunk(chunk, isLast));
  }

  requestDone(status: number): void {
    if (this.consumeQuota && status === 200)
      this.options.quotas?.chargeConsume(this.quotaPrincipal, this.reply.sentBytes);
    this.options.onRequestDone(
      this.route.operationId,
      status,
      (performance.now() - this.request.startedAtMs) / 1000,
    );
  }

  /**
   * A piece of the body. Pieces before the last are copied (uWebSockets.js reuses their memory once the callback
   * returns); a body that arrives in one piece is handed over without a copy and must be used synchronously.
   */
  private onChunk(chunk: ArrayBuffer, isLast: boolean): void {
    const reply = this.reply;
    if (!reply.open) return;
    const maxBytes = this.options.maxRequestBytes;
    this.receivedBytes += chunk.byteLength;
    if (this.receivedBytes > maxBytes) {
      reply.error('payload_too_large', `the body is larger than ${maxBytes} bytes (--max-request-bytes)`);
      return;
    }
    if (!isLast) {
      this.chunks ??= [];
      this.chunks.push(Buffer.from(chunk.slice(0)));
      return;
    }
    let body: Buffer;
    if (this.chunks === null) body = Buffer.from(chunk);
    else {
      this.chunks.push(Buffer.from(chunk));
      body = Buffer.concat(this.chunks, this.receivedBytes);
      this.chunks = null;
      this.request.bodyOwned = true;
    }
    // JSON text is UTF-8 (RFC 8259). Decoding other bytes would store U+FFFD in their place, a record other
    // than the one sent, so such a body is refused before any handler sees it. A record-batch body is binary.
    if (bodyFormatOf(this.request.contentType) !== 'record-batch' && !isUtf8(body)) {
      reply.error(
        'bad_request',
        `the body is not valid UTF-8 (first bad byte at position ${firstInvalidUtf8(body)}); send bytes as base64 with "value_format": "base64"`,
      );
      return;
    }
    this.withPrincipal(body);
  }

  private withPrincipal(body: Buffer | null): void {
    const authentication = this.authentication;
    if (!(authentication instanceof Promise))
      return this.run((authentication as { principal: string }).principal, body);
    // A token being hashed: the body (copied) waits for it; nothing runs unless it is good.
    const kept = body === null ? null : Buffer.from(body);
    this.request.bodyOwned = true;
    authentication.then((outcome) => {
      if (!this.reply.open) return;
      if (outcome.kind !== 'ok') return refuseAuthentication(this.reply, outcome);
      this.run(outcome.principal, kept);
    });
  }

  private run(principal: string, body: Buffer | null): void {
    const request = this.request;
    const reply = this.reply;
    const access = this.options.access;
    const route = this.route;
    request.body = body;
    request.principal = principal;
    if (!this.open && access !== undefined) {
      // Lists are filtered only where ACLs apply: no closure on the hot path otherwise.
      request.mayDescribe = (resourceType, name) =>
        access.allows(principal, { resourceType, resourceName: name, operation: 'describe' });
      const refusal = access.authorize(
        principal,
        requirementsOf(accessOf(route.operationId)!, request),
        route.operationId,
      );
      if (refusal !== null) return reply.error('forbidden', refusal.message);
    }
    const quotas = this.options.quotas;
    if (quotas !== undefined && overQuota(route.operationId, principal, body, quotas, reply)) return;
    this.quotaPrincipal = principal;
    route.handle(request, reply);
  }
}

/** An `HttpRequest` while `serve` fills it in. */
type MutableRequest = { -readonly [K in keyof HttpRequest]: HttpRequest[K] };

/**
 * Refuses a produce or consume of a principal over its byte-rate quota (429 quota_exceeded, Retry-After in
 * whole seconds); admits it otherwise, charging a produce its body. True when refused.
 */
function overQuota(
  operationId: string,
  principal: string,
  body: Buffer | null,
  quotas: RequestQuotas,
  reply: Reply,
): boolean {
  if (quotas.produceBytesPerS > 0 && produceOperations.has(operationId)) {
    const delayMs = quotas.admitProduce(principal, body?.byteLength ?? 0, 'http');
    if (delayMs === 0) return false;
    reply.error(
      'quota_exceeded',
      `principal '${principal}' is over its produce quota of ${quotas.produceBytesPerS} bytes/s (--quota-produce-bytes-per-second); nothing was written; retry in ${delayMs} ms`,
      { retryAfterS: retryAfterSecondsOf(delayMs) },
    );
    return true;
  }
  if (quotas.consumeBytesPerS > 0 && consumeOperations.has(operationId)) {
    const delayMs = quotas.consumeDelayMs(principal, 'http');
    if (delayMs === 0) return false;
    reply.error(
      'quota_exceeded',
      `principal '${principal}' is over its consume quota of ${quotas.consumeBytesPerS} bytes/s (--quota-consume-bytes-per-second); retry in ${delayMs} ms`,
      { retryAfterS: retryAfterSecondsOf(delayMs) },
    );
    return true;
  }
  return false;
}

function refuseAuthentication(reply: Reply, outcome: Exclude<Authentication, { kind: 'ok' }>): void {
  if (outcome.kind === 'busy') {
    return reply.error(
      'overloaded',
      'too many bearer tokens are being verified at once; retry after the delay',
    );
  }
  reply.error('unauthenticated', outcome.message);
}

/** The requirements of a request under its route's rule; none for open and authenticated-only routes. */
function requirementsOf(rule: RouteAccess, request: HttpRequest): readonly AccessRequirement[] {
  if (rule.kind === 'metrics')
    return [{ resourceType: 'cluster', resourceName: CLUSTER_RESOURCE, operation: 'describe' }];
  if (rule.kind !== 'needs') return [];
  const input: AccessInput = {
    params: request.params,
    query: new URLSearchParams(request.query),
    body: rule.usesBody ? jsonObjectOrNull(request.body) : null,
  };
  return rule.needs(input);
}

function jsonObjectOrNull(body: Buffer | null): Record<string, unknown> | null {
  if (body === null) return null;
  try {
    const value = JSON.parse(body.toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

function countParams(pattern: string): number {
  let count = 0;
  for (let i = 0; i < pattern.length; i++) if (pattern.charCodeAt(i) === 58 /* ':' */) count++;
  return count;
}

function redirectAsked(header: string): boolean {
  const value = header.trim().toLowerCase();
  return value === 'true' || value === '1';
}
