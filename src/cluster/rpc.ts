// Request/response RPC between nodes over the cluster port (tag 'RPC1'). `RpcServer` answers on the node's
// ClusterPort through one handler `(method, payload) => Promise<bytes>`; `RpcClient` keeps one pooled
// connection per peer address, dialed on the first call and redialed on the first call after it closed, and
// matches responses to calls by a correlation id, so any number of calls share a connection out of order.
//
// Connection: the dialer writes the tag 'RPC1' (cluster/port.ts), then frames flow both ways:
//
//   offset  size  field
//   0       4     frame length: the bytes after this field, u32 big-endian, 7..frameBytesMax
//   4       1     kind: 1 request (client to server), 2 response, 3 error (server to client)
//   5       4     correlation id, u32 big-endian: chosen by the client, unique among its pending calls on the
//                 connection, echoed in the response or error
//   9       2     method length m in bytes, u16 big-endian; 0 in responses and errors
//   11      m     method name, UTF-8
//   11+m    n     request or response: the payload bytes
//                 error: error code u8 (table below), then a UTF-8 message of at most errorMessageBytesMax
//
//   error code  meaning                                           RpcError code
//   1           the handler threw or rejected; message is its     'remote'
//   2           the connection's in-flight bound was reached      'overloaded' (the handler did not run)
//   3           the response exceeded the server's frame bound    'too_large' (the handler ran)
//
// Invariants and limits: a frame above `frameBytesMax` (either side's) is never sent and, when announced by
// the peer, ends the connection before its bytes are buffered; a server connection runs at most
// `inflightPerConnectionMax` handlers at once (the excess is answered 'overloaded' without running) and stops
// reading while its responses wait on the socket; the server holds at most `connectionsMax` connections; the
// client holds at most `pendingCallsPerAddressMax` calls per address and `addressesMax` pooled connections.
// Malformed input (a bad length, kind or method length) ends the connection and is counted; an unknown error
// code is taken as 'remote'. Nothing received throws out of a socket handler.
// With a cluster secret the connection opens with the handshake of core/security/cluster-auth.ts (the server's
// port checks it; the client holds its requests, at most `pendingCallsPerAddressMax`, until the server has
// proven the secret and this side's proof is written); a call on a connection that never got that far is
// 'unreachable', since no request left the client.
// Single-threaded: call it only from the thread that owns the cluster port (the control thread, or a test);
// handlers run on that thread.
import type { Socket } from 'node:net';
import { assert } from '../core/assert.js';
import type { ClusterAuth } from '../security/cluster-auth.js';
import { type ClusterTls, dialCluster, readyEvent } from '../security/cluster-tls.js';
import { type ClusterPort, ClusterTags, openClusterConnection, type TagHandler } from './port.js';

/**
 * Every way a call can fail, with whether the remote handler may have run (`outcomeKnown: false` means it may
 * or may not have: only an idempotent request may then be retried blindly) and whether trying again later can
 * succeed.
 */
export const RpcErrorCodes = {
  /** No response within the call's `timeoutMs`. Outcome unknown: the request may have run, or may still run. */
  timeout: { retriable: true, outcomeKnown: false },
  /** The connection ended after the request was handed to it. Outcome unknown, as for a timeout. */
  connection_lost: { retriable: true, outcomeKnown: false },
  /** The address could not be dialed (refused, connect timeout, bad address, client closed): nothing ran. */
  unreachable: { retriable: true, outcomeKnown: true },
  /** Refused by a bound (the server's in-flight bound, or the client's pending or pool bound): nothing ran. */
  overloaded: { retriable: true, outcomeKnown: true },
  /** The handler ran and failed; the message is its error's. */
  remote: { retriable: false, outcomeKnown: true },
  /** The request (checked locally, not sent) or the response (the handler ran) is over the frame bound. */
  too_large: { retriable: false, outcomeKnown: true },
} as const;
export type RpcErrorCode = keyof typeof RpcErrorCodes;

/** A failed call. `code` says what is known about the outcome; see `RpcErrorCodes`. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly code: RpcErrorCode;

  constructor(code: RpcErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }

  get retriable(): boolean {
    return RpcErrorCodes[this.code].retriable;
  }
}

/** Answers one request; a throw or rejection goes back to the caller as a 'remote' error with its message. */
export type RpcHandler = (method: string, payload: Uint8Array) => Promise<Uint8Array>;

const FrameKinds = { request: 1, response: 2, error: 3 } as const;
const WireErrorCodes = { remote: 1, overloaded: 2, too_large: 3 } as const;
const wireToRpcCode: ReadonlyMap<number, RpcErrorCode> = new Map([
  [WireErrorCodes.remote, 'remote'],
  [WireErrorCodes.overloaded, 'overloaded'],
  [WireErrorCodes.too_large, 'too_large'],
]);

const lengthFieldBytes = 4;
/** kind u8 + correlation id u32 + method length u16. */
const fixedBodyBytes = 7;
const methodBytesMax = 0xffff;
const correlationIdMax = 0xffffffff;

/** Defaults: Raft snapshots and metadata fit in 16 MiB; bounds sized for a cluster of tens of nodes. */
export const RPC_DEFAULTS = {
  frameBytesMax: 16 << 20,
  /**
   * Handlers running at once per inbound connection. Equal to the client's pending bound per address, so a
   * client at the defaults is refused locally before the server has to answer 'overloaded'.
   */
  inflightPerConnectionMax: 64,
  /** Inbound connections: one per peer node that calls this one, with room for restarts overlapping. */
  connectionsMax: 256,
  /** An error's message is truncated to this many bytes on the wire. */
  errorMessageBytesMax: 1_024,
  pendingCallsPerAddressMax: 64,
  addressesMax: 256,
  connectTimeoutMs: 2_000,
} as const;

export type RpcServerLimits = {
  readonly frameBytesMax: number;
  readonly inflightPerConnectionMax: number;
  readonly connectionsMax: number;
  readonly errorMessageBytesMax: number;
};

export type RpcClientLimits = {
  readonly frameBytesMax: number;
  readonly pendingCallsPerAddressMax: number;
  /** Pooled connections; beyond it an idle one is closed, or the call refused when none is idle. */
  readonly addressesMax: number;
  /** A dial not connected within this time fails its calls as 'unreachable'. */
  readonly connectTimeoutMs: number;
};

type Frame = {
  readonly kind: number;
  readonly id: number;
  readonly method: string;
  readonly payload: Buffer;
};

function encodeFrame(kind: number, id: number, methodBytes: Uint8Array, payload: Uint8Array): Buffer {
  const bodyBytes = fixedBodyBytes + methodBytes.length + payload.length;
  const out = Buffer.allocUnsafe(lengthFieldBytes + bodyBytes);
  out.writeUInt32BE(bodyBytes, 0);
  out[4] = kind;
  out.writeUInt32BE(id, 5);
  out.writeUInt16BE(methodBytes.length, 9);
  out.set(methodBytes, 11);
  out.set(payload, 11 + methodBytes.length);
  return out;
}

function encodeError(id: number, code: number, message: string, messageBytesMax: number): Buffer {
  const text = Buffer.from(message, 'utf8').subarray(0, messageBytesMax);
  const payload = Buffer.allocUnsafe(1 + text.length);
  payload[0] = code;
  text.copy(payload, 1);
  return encodeFrame(FrameKinds.error, id, Buffer.alloc(0), payload);
}

/** The frame's body fields, or undefined when the method length runs past the body. */
function decodeBody(body: Buffer): Frame | undefined {
  const methodLength = body.readUInt16BE(5);
  if (fixedBodyBytes + methodLength > body.length) return undefined;
  return {
    kind: body[0]!,
    id: body.readUInt32BE(1),
    method: body.toString('utf8', fixedBodyBytes, fixedBodyBytes + methodLength),
    payload: body.subarray(fixedBodyBytes + methodLength),
  };
}

/**
 * Splits a byte stream into frame bodies. Bytes are concatenated only once a whole frame is buffered, so a
 * large frame arriving in many chunks costs one copy.
 */
class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(private readonly frameBytesMax: number) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next body; undefined when incomplete; 'bad' when the stream announces a length out of bounds. */
  next(): Buffer | undefined | 'bad' {
    if (this.#buffered < lengthFieldBytes) return undefined;
    if (this.#chunks[0]!.length < lengthFieldBytes) this.#chunks = [Buffer.concat(this.#chunks)];
    const length = this.#chunks[0]!.readUInt32BE(0);
    if (length < fixedBodyBytes || length > this.frameBytesMax) return 'bad';
    if (this.#buffered < lengthFieldBytes + length) return undefined;
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
    const body = all.subarray(lengthFieldBytes, lengthFieldBytes + length);
    const rest = all.subarray(lengthFieldBytes + length);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return body;
  }
}

function errorMessage(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return 'unprintable error';
  }
}

export type RpcServerStats = {
  connections: number;
  /** Connections refused because `connectionsMax` were open or the server was closed. */
  connectionsRefused: number;
  requests: number;
  responses: number;
  /** Requests whose handler threw or rejected, or returned something other than bytes. */
  remoteErrors: number;
  /** Requests answered 'overloaded' without running. */
  overloaded: number;
  /** Responses over the frame bound, answered 'too_large'. */
  tooLarge: number;
  /** Connections ended for malformed input. */
  rejectedInputs: number;
};

type ServerConnection = {
  readonly socket: Socket;
  inflight: number;
  /** Reading is paused until the socket drains what was written. */
  paused: boolean;
};

export class RpcServer {
  readonly limits: RpcServerLimits;
  readonly #port: ClusterPort;
  readonly #handler: RpcHandler;
  readonly #onConnection: TagHandler = (socket, head) => this.#accept(socket, head);
  readonly #connections = new Set<ServerConnection>();
  readonly #stats = {
    connectionsRefused: 0,
    requests: 0,
    responses: 0,
    remoteErrors: 0,
    overloaded: 0,
    tooLarge: 0,
    rejectedInputs: 0,
  };
  #closed = false;

  private constructor(port: ClusterPort, handler: RpcHandler, limits: RpcServerLimits) {
    this.#port = port;
    this.#handler = handler;
    this.limits = limits;
  }

  /** Serves RPC on `port` (registering its tag) until `close()`. */
  static attach(port: ClusterPort, handler: RpcHandler, limits: Partial<RpcServerLimits> = {}): RpcServer {
    const merged: RpcServerLimits = {
      frameBytesMax: limits.frameBytesMax ?? RPC_DEFAULTS.frameBytesMax,
      inflightPerConnectionMax: limits.inflightPerConnectionMax ?? RPC_DEFAULTS.inflightPerConnectionMax,
      connectionsMax: limits.connectionsMax ?? RPC_DEFAULTS.connectionsMax,
      errorMessageBytesMax: limits.errorMessageBytesMax ?? RPC_DEFAULTS.errorMessageBytesMax,
    };
    assert(
      merged.frameBytesMax >= fixedBodyBytes + 1 + merged.errorMessageBytesMax &&
        merged.frameBytesMax < 2 ** 32,
      'frameBytesMax must hold an error frame and fit in u32',
    );
    assert(merged.inflightPerConnectionMax >= 1, 'inflightPerConnectionMax must be >= 1');
    assert(merged.connectionsMax >= 1, 'connectionsMax must be >= 1');
    assert(merged.errorMessageBytesMax >= 0, 'errorMessageBytesMax must be >= 0');
    const server = new RpcServer(port, handler, merged);
    port.register(ClusterTags.rpc, server.#onConnection);
    return server;
  }

  stats(): RpcServerStats {
    return { ...this.#stats, connections: this.#connections.size };
  }

  /**
   * Unregisters the tag and ends every connection; handlers still running finish, but their answers are
   * dropped. The cluster port stays open.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#port.unregister(ClusterTags.rpc, this.#onConnection);
    for (const connection of this.#connections) connection.socket.destroy();
    this.#connections.clear();
  }

  #accept(socket: Socket, head: Buffer): void {
    if (this.#closed || this.#connections.size >= this.limits.connectionsMax) {
      this.#stats.connectionsRefused++;
      socket.destroy();
      return;
    }
    const connection: ServerConnection = { socket, inflight: 0, paused: false };
    this.#connections.add(connection);
    socket.setNoDelay(true);
    const reader = new FrameReader(this.limits.frameBytesMax);
    const reject = (): void => {
      this.#stats.rejectedInputs++;
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      reader.push(chunk);
      for (;;) {
        if (socket.destroyed) return;
        const body = reader.next();
        if (body === undefined) return;
        if (body === 'bad') return reject();
        const frame = decodeBody(body);
        if (frame === undefined || frame.kind !== FrameKinds.request) return reject();
        this.#stats.requests++;
        if (connection.inflight >= this.limits.inflightPerConnectionMax) {
          this.#stats.overloaded++;
          this.#write(
            connection,
            encodeError(frame.id, WireErrorCodes.overloaded, 'overloaded', this.limits.errorMessageBytesMax),
          );
          continue;
        }
        connection.inflight++;
        void this.#run(connection, frame);
      }
    };
    socket.on('error', () => {});
    socket.on('close', () => this.#connections.delete(connection));
    socket.on('drain', () => {
      if (!connection.paused) return;
      connection.paused = false;
      socket.resume();
    });
    socket.on('data', onData);
    if (head.length > 0) onData(head);
  }

  /** Runs the handler and writes its answer; never rejects. */
  async #run(connection: ServerConnection, frame: Frame): Promise<void> {
    let answer: Buffer;
    try {
      const result: unknown = await this.#handler(frame.method, frame.payload);
      if (!(result instanceof Uint8Array)) {
        this.#stats.remoteErrors++;
        answer = encodeError(
          frame.id,
          WireErrorCodes.remote,
          `handler for '${frame.method}' returned no bytes`,
          this.limits.errorMessageBytesMax,
        );
      } else if (fixedBodyBytes + result.length > this.limits.frameBytesMax) {
        this.#stats.tooLarge++;
        answer = encodeError(
          frame.id,
          WireErrorCodes.too_large,
          `response of ${result.length} bytes over the frame bound ${this.limits.frameBytesMax}`,
          this.limits.errorMessageBytesMax,
        );
      } else {
        this.#stats.responses++;
        answer = encodeFrame(FrameKinds.response, frame.id, Buffer.alloc(0), result);
      }
    } catch (error) {
      this.#stats.remoteErrors++;
      answer = encodeError(
        frame.id,
        WireErrorCodes.remote,
        errorMessage(error),
        this.limits.errorMessageBytesMax,
      );
    }
    connection.inflight--;
    this.#write(connection, answer);
  }

  /** Writes one frame; while the socket reports backpressure no more requests are read from it. */
  #write(connection: ServerConnection, bytes: Buffer): void {
    const socket = connection.socket;
    if (socket.destroyed || !socket.writable) return;
    if (!socket.write(bytes) && !connection.paused) {
      connection.paused = true;
      socket.pause();
    }
  }
}

type PendingCall = {
  readonly resolve: (payload: Uint8Array) => void;
  readonly reject: (error: RpcError) => void;
  readonly timer: NodeJS.Timeout;
};

type ClientConnection = {
  readonly address: string;
  readonly socket: Socket;
  /** Connected and, with a secret, authenticated: requests are written, and a close loses them. */
  connected: boolean;
  /** Requests waiting for `connected`; bounded by `pendingCallsPerAddressMax`. */
  readonly waiting: Buffer[];
  readonly pending: Map<number, PendingCall>;
  nextId: number;
  /** The last socket error, kept as the cause of the calls the close fails. */
  lastError: Error | undefined;
  readonly closed: Promise<void>;
};

export type RpcClientStats = {
  connections: number;
  pendingCalls: number;
  dials: number;
  calls: number;
  succeeded: number;
  failed: Record<RpcErrorCode, number>;
  /** Responses that came after their call timed out, or for no call at all. */
  unmatchedResponses: number;
  /** Connections ended for malformed input from the server. */
  rejectedInputs: number;
};

function parseAddress(address: string): { host: string; port: number } | undefined {
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const port = Number(address.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return undefined;
  return { host: address.slice(0, colon), port };
}

export class RpcClient {
  readonly limits: RpcClientLimits;
  readonly #pool = new Map<string, ClientConnection>();
  readonly #failed: Record<RpcErrorCode, number> = {
    timeout: 0,
    connection_lost: 0,
    unreachable: 0,
    overloaded: 0,
    remote: 0,
    too_large: 0,
  };
  #dials = 0;
  #calls = 0;
  #succeeded = 0;
  #unmatchedResponses = 0;
  #rejectedInputs = 0;
  #closed = false;
  readonly #auth: ClusterAuth | undefined;
  readonly #tls: ClusterTls | undefined;

  constructor(limits: Partial<RpcClientLimits> = {}, auth?: ClusterAuth, tls?: ClusterTls) {
    this.#auth = auth;
    this.#tls = tls;
    this.limits = {
      frameBytesMax: limits.frameBytesMax ?? RPC_DEFAULTS.frameBytesMax,
      pendingCallsPerAddressMax: limits.pendingCallsPerAddressMax ?? RPC_DEFAULTS.pendingCallsPerAddressMax,
      addressesMax: limits.addressesMax ?? RPC_DEFAULTS.addressesMax,
      connectTimeoutMs: limits.connectTimeoutMs ?? RPC_DEFAULTS.connectTimeoutMs,
    };
    assert(
      this.limits.frameBytesMax >= fixedBodyBytes + 1 && this.limits.frameBytesMax < 2 ** 32,
      'frameBytesMax out of range',
    );
    assert(this.limits.pendingCallsPerAddressMax >= 1, 'pendingCallsPerAddressMax must be >= 1');
    assert(this.limits.addressesMax >= 1, 'addressesMax must be >= 1');
    assert(this.limits.connectTimeoutMs >= 1, 'connectTimeoutMs must be >= 1');
  }

  /**
   * Calls `method` on the node at `address` (`host:port`, its cluster port) and resolves with the response
   * payload. Rejects only with an `RpcError`: 'timeout' and 'connection_lost' leave the outcome unknown (the
   * handler may have run, or may still run), 'unreachable', 'overloaded' and a local 'too_large' mean it did
   * not run, 'remote' means it ran and failed. Nothing is retried here: whether a retry is safe depends on
   * the method.
   */
  call(
    address: string,
    method: string,
    payload: Uint8Array,
    options: { readonly timeoutMs: number },
  ): Promise<Uint8Array> {
    assert(options.timeoutMs >= 1, 'timeoutMs must be >= 1');
    const methodBytes = Buffer.from(method, 'utf8');
    assert(methodBytes.length <= methodBytesMax, 'method name over 65535 bytes');
    this.#calls++;
    if (this.#closed) return this.#fail(new RpcError('unreachable', 'the RPC client is closed'));
    if (fixedBodyBytes + methodBytes.length + payload.length > this.limits.frameBytesMax) {
      return this.#fail(
        new RpcError(
          'too_large',
          `request of ${payload.length} bytes over the frame bound ${this.limits.frameBytesMax}`,
        ),
      );
    }
    let connection = this.#pool.get(address);
    if (connection?.socket.destroyed === true) {
      // Ended for malformed input and its 'close' not yet run: the next call dials anew.
      this.#pool.delete(address);
      connection = undefined;
    }
    if (connection === undefined) {
      const target = parseAddress(address);
      if (target === undefined) return this.#fail(new RpcError('unreachable', `bad address '${address}'`));
      if (this.#pool.size >= this.limits.addressesMax && !this.#evictIdle()) {
        return this.#fail(new RpcError('overloaded', `${this.limits.addressesMax} connections busy`));
      }
      connection = this.#dial(address, target.host, target.port);
    }
    if (connection.pending.size >= this.limits.pendingCallsPerAddressMax) {
      return this.#fail(
        new RpcError('overloaded', `${this.limits.pendingCallsPerAddressMax} calls pending to ${address}`),
      );
    }
    const id = this.#takeId(connection);
    const conn = connection;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!conn.pending.delete(id)) return;
        this.#failed.timeout++;
        reject(
          new RpcError('timeout', `no response to '${method}' from ${address} in ${options.timeoutMs} ms`),
        );
      }, options.timeoutMs);
      conn.pending.set(id, { resolve, reject, timer });
      const frame = encodeFrame(FrameKinds.request, id, methodBytes, payload);
      if (conn.connected) conn.socket.write(frame);
      else conn.waiting.push(frame);
    });
  }

  stats(): RpcClientStats {
    let pendingCalls = 0;
    for (const c of this.#pool.values()) pendingCalls += c.pending.size;
    return {
      connections: this.#pool.size,
      pendingCalls,
      dials: this.#dials,
      calls: this.#calls,
      succeeded: this.#succeeded,
      failed: { ...this.#failed },
      unmatchedResponses: this.#unmatchedResponses,
      rejectedInputs: this.#rejectedInputs,
    };
  }

  /** Fails every pending call with 'connection_lost' and closes every connection; later calls are refused. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const connections = [...this.#pool.values()];
    this.#pool.clear();
    for (const c of connections) {
      this.#failPending(c, 'connection_lost', 'the RPC client closed');
      c.socket.destroy();
    }
    await Promise.all(connections.map((c) => c.closed));
  }

  #fail(error: RpcError): Promise<never> {
    this.#failed[error.code]++;
    return Promise.reject(error);
  }

  /** Closes the least recently dialed connection without pending calls; false when every one is busy. */
  #evictIdle(): boolean {
    for (const c of this.#pool.values()) {
      if (c.pending.size === 0) {
        this.#pool.delete(c.address);
        c.socket.destroy();
        return true;
      }
    }
    return false;
  }

  #takeId(connection: ClientConnection): number {
    // Pending calls are far fewer than 2^32 ids, so a free one is found within a few steps.
    while (connection.pending.has(connection.nextId)) {
      connection.nextId = connection.nextId === correlationIdMax ? 1 : connection.nextId + 1;
    }
    const id = connection.nextId;
    connection.nextId = id === correlationIdMax ? 1 : id + 1;
    return id;
  }

  #dial(address: string, host: string, port: number): ClientConnection {
    this.#dials++;
    const socket = dialCluster(this.#tls, host, port, 'rpc');
    let markClosed: () => void = () => {};
    const connection: ClientConnection = {
      address,
      socket,
      connected: false,
      waiting: [],
      pending: new Map(),
      nextId: 1,
      lastError: undefined,
      closed: new Promise<void>((resolve) => {
        markClosed = resolve;
      }),
    };
    this.#pool.set(address, connection);
    socket.setNoDelay(true);
    const connectTimer = setTimeout(() => {
      connection.lastError = new Error(`connect timeout after ${this.limits.connectTimeoutMs} ms`);
      socket.destroy();
    }, this.limits.connectTimeoutMs);
    const reader = new FrameReader(this.limits.frameBytesMax);
    socket.on(readyEvent(socket), () => {
      // The connect timeout runs on through the handshake.
      openClusterConnection(socket, ClusterTags.rpc, this.#auth, (opened) => {
        if (!opened.ok) {
          connection.lastError = new Error(`cluster authentication failed: ${opened.reason}`);
          return;
        }
        clearTimeout(connectTimer);
        connection.connected = true;
        for (const frame of connection.waiting.splice(0)) socket.write(frame);
        socket.on('data', onData);
        if (opened.rest.length > 0) onData(opened.rest);
      });
    });
    const onData = (chunk: Buffer): void => {
      reader.push(chunk);
      for (;;) {
        if (socket.destroyed) return;
        const body = reader.next();
        if (body === undefined) return;
        const frame = body === 'bad' ? undefined : decodeBody(body);
        if (frame === undefined || (frame.kind !== FrameKinds.response && frame.kind !== FrameKinds.error)) {
          this.#rejectedInputs++;
          connection.lastError = new Error('malformed frame from the server');
          socket.destroy();
          return;
        }
        this.#settle(connection, frame);
      }
    };
    socket.on('error', (error) => {
      connection.lastError = error;
    });
    socket.on('close', () => {
      clearTimeout(connectTimer);
      if (this.#pool.get(address) === connection) this.#pool.delete(address);
      // Before 'connect' nothing reached the server; after it, a request may have.
      if (connection.connected)
        this.#failPending(connection, 'connection_lost', `connection to ${address} lost`);
      else this.#failPending(connection, 'unreachable', `cannot connect to ${address}`);
      markClosed();
    });
    return connection;
  }

  #settle(connection: ClientConnection, frame: Frame): void {
    const call = connection.pending.get(frame.id);
    if (call === undefined) {
      this.#unmatchedResponses++;
      return;
    }
    connection.pending.delete(frame.id);
    clearTimeout(call.timer);
    if (frame.kind === FrameKinds.response) {
      this.#succeeded++;
      call.resolve(frame.payload);
      return;
    }
    const code = (frame.payload.length > 0 && wireToRpcCode.get(frame.payload[0]!)) || 'remote';
    this.#failed[code]++;
    call.reject(new RpcError(code, frame.payload.toString('utf8', 1)));
  }

  #failPending(connection: ClientConnection, code: RpcErrorCode, message: string): void {
    const cause = connection.lastError;
    for (const call of connection.pending.values()) {
      clearTimeout(call.timer);
      this.#failed[code]++;
      call.reject(new RpcError(code, message, cause === undefined ? undefined : { cause }));
    }
    connection.pending.clear();
  }
}
