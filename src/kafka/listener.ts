// The Kafka wire-protocol listener: a `node:net` server on the acceptor thread, beside uWebSockets.js. It cuts
// each connection's bytes into size-prefixed frames, sorts each frame with the pure codec
// (src/core/kafka/header.ts), hands requests to the handlers (handlers.ts), and writes the responses back in
// the order the requests came, as Kafka guarantees per connection (clients pipeline and match by order).
//
// Limits: a frame above `requestBytesMax` (or above its API's own bound), an unknown API, a version outside
// the claimed range, or a body that does not decode closes the connection; nothing of it reaches a partition.
// At most `inFlightMax` requests per connection are being served; past that the socket is paused (TCP
// backpressure) until responses go out. Connections beyond `connectionsMax` are closed on arrival.
//
// SASL (decided by src/core/kafka/sasl.ts, served by the handlers): each connection carries its SASL state and
// principal for the handlers; a response may close the connection once written (a failed authentication is
// answered, then closed, as Kafka does); a session with an end (a JWT's exp) is closed at that time unless the
// client re-authenticated before (KIP-368), by a timer per connection that the handlers re-arm.
// Runs on the acceptor (main) thread only.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { ApiKey, apiRange } from '../core/kafka/api-keys.js';
import { apiVersionsResponse, UNSUPPORTED_VERSION_CODE } from '../core/kafka/api-versions.js';
import {
  decodeRequestHeader,
  encodeResponseFrame,
  FRAME_SIZE_BYTES,
  type RequestHeader,
} from '../core/kafka/header.js';
import { ApiVersionsResponseSpec } from '../core/kafka/messages.generated.js';
import { KafkaWriter } from '../core/kafka/primitives.js';
import { SASL_INITIAL, type SaslState } from '../core/kafka/sasl.js';

/** What a handler returns: a response frame, nothing (acks=0 produce), or a reason to close the connection. */
export type HandlerOutcome =
  /** `closeAfter`: the connection is closed, for this reason, once the frame is written. */
  | { kind: 'frame'; frame: Uint8Array; closeAfter?: string }
  | { kind: 'none' }
  | { kind: 'close'; reason: string };

export interface KafkaHandlers {
  /** The API keys served (ApiVersions answers with these). */
  readonly served: readonly number[];
  handle(
    header: RequestHeader,
    frame: Uint8Array,
    bodyStart: number,
    connection: KafkaConnection,
  ): Promise<HandlerOutcome>;
}

export interface KafkaListenerOptions {
  readonly host: string;
  readonly port: number;
  /** The bound of a Produce frame; every other API has a smaller one of its own. */
  readonly requestBytesMax: number;
  readonly inFlightMax: number;
  readonly connectionsMax: number;
  /** The broker's descriptor guard: false when the process is at its connection cap (the socket is closed). */
  readonly admit?: () => boolean;
  readonly log: Logger;
}

/** Per-connection state the handlers keep: the client id and the SASL state (with the principal). */
export interface KafkaConnection {
  readonly remoteAddress: string;
  clientId: string | null;
  sasl: SaslState;
  /**
   * Closes the connection at `endMs` (ms since the epoch) unless called again first (re-authentication moves
   * the end); null cancels.
   */
  setSessionEnd(endMs: number | null): void;
}

/** Timers are at most this long (Node's limit is 2^31-1 ms); a later end re-arms when it fires. */
const TIMER_MS_MAX = 2 ** 31 - 1;
/** A connection closed after its last answer is destroyed if the peer has not taken the bytes by then. */
const CLOSE_AFTER_LINGER_MS = 5000;

interface Slot {
  outcome: HandlerOutcome | null;
}

export class KafkaListener {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly writer = new KafkaWriter(1024);
  port = 0;
  /** Connections closed because of what they sent, for the metrics. */
  closedForGarbage = 0;

  constructor(
    private readonly handlers: KafkaHandlers,
    private readonly options: KafkaListenerOptions,
  ) {}

  start(): Promise<number> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        const address = server.address();
        this.port = typeof address === 'object' && address !== null ? address.port : this.options.port;
        resolve(this.port);
      });
    });
  }

  /** Stops accepting and closes every connection. */
  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = null;
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  get connections(): number {
    return this.sockets.size;
  }

  private accept(socket: Socket): void {
    if (this.sockets.size >= this.options.connectionsMax || this.options.admit?.() === false) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    let sessionTimer: NodeJS.Timeout | null = null;
    const clearSessionTimer = (): void => {
      if (sessionTimer !== null) clearTimeout(sessionTimer);
      sessionTimer = null;
    };
    const connection: KafkaConnection = {
      remoteAddress: socket.remoteAddress ?? '',
      clientId: null,
      sasl: SASL_INITIAL,
      setSessionEnd: (endMs) => {
        clearSessionTimer();
        if (endMs === null || closed) return;
        const arm = (): void => {
          const leftMs = endMs - Date.now();
          if (leftMs <= 0) {
            sessionTimer = null;
            this.options.log.info(
              { remote: connection.remoteAddress, clientId: connection.clientId },
              'Kafka connection closed: its SASL session ended without re-authentication',
            );
            close(null);
            return;
          }
          sessionTimer = setTimeout(arm, Math.min(leftMs, TIMER_MS_MAX));
          sessionTimer.unref();
        };
        arm();
      },
    };
    const queue: Slot[] = [];
    let chunks: Buffer[] = [];
    let buffered = 0;
    let closed = false;
    const close = (reason: string | null): void => {
      if (closed) return;
      closed = true;
      clearSessionTimer();
      if (reason !== null) {
        this.closedForGarbage++;
        this.options.log.debug({ remote: connection.remoteAddress, reason }, 'Kafka connection closed');
      }
      socket.destroy();
    };
    /** Ends the connection after what was written (a last answer the client must read), then forgets it. */
    const closeAfterWrite = (reason: string): void => {
      if (closed) return;
      closed = true;
      clearSessionTimer();
      this.options.log.debug({ remote: connection.remoteAddress, reason }, 'Kafka connection closed');
      socket.end();
      setTimeout(() => socket.destroy(), CLOSE_AFTER_LINGER_MS).unref();
    };
    const flush = (): void => {
      while (queue.length > 0 && queue[0]!.outcome !== null) {
        const outcome = queue.shift()!.outcome!;
        if (outcome.kind === 'close') return close(outcome.reason);
        if (outcome.kind === 'frame' && !closed) {
          socket.write(outcome.frame);
          if (outcome.closeAfter !== undefined) return closeAfterWrite(outcome.closeAfter);
        }
      }
      if (closed) return;
      if (socket.writableNeedDrain || queue.length >= this.options.inFlightMax) socket.pause();
      else if (socket.isPaused()) socket.resume();
    };
    const onFrame = (frame: Buffer): void => {
      const result = decodeRequestHeader(frame, this.options.requestBytesMax);
      const slot: Slot = { outcome: null };
      queue.push(slot);
      if (result.kind === 'close') {
        slot.outcome = { kind: 'close', reason: result.reason };
      } else if (result.kind === 'api_versions_unsupported') {
        // KIP-511: answer v0 with the error and the supported list, so the client retries with a known version.
        const api = apiRange(ApiKey.ApiVersions)!;
        const body = apiVersionsResponse(this.handlers.served, UNSUPPORTED_VERSION_CODE);
        const bytes = encodeResponseFrame(
          this.writer,
          ApiVersionsResponseSpec,
          api,
          0,
          result.correlationId,
          body,
        );
        slot.outcome = { kind: 'frame', frame: Buffer.from(bytes) };
      } else {
        connection.clientId = result.header.clientId;
        this.handlers.handle(result.header, frame, result.bodyStart, connection).then(
          (outcome) => {
            slot.outcome = outcome;
            flush();
          },
          (error: unknown) => {
            this.options.log.error({ err: error, api: result.header.api.name }, 'Kafka request failed');
            slot.outcome = { kind: 'close', reason: `internal error serving ${result.header.api.name}` };
            flush();
          },
        );
      }
      flush();
    };
    let expected = -1;
    socket.on('data', (chunk: Buffer) => {
      if (closed) return;
      chunks.push(chunk);
      buffered += chunk.length;
      while (!closed) {
        if (expected < 0) {
          if (buffered < FRAME_SIZE_BYTES) break;
          if (chunks[0]!.length < FRAME_SIZE_BYTES) chunks = [Buffer.concat(chunks, buffered)];
          expected = chunks[0]!.readInt32BE(0);
          if (expected < 0 || expected > this.options.requestBytesMax) {
            return close(`a frame of ${expected} bytes is outside 0-${this.options.requestBytesMax}`);
          }
        }
        if (buffered < FRAME_SIZE_BYTES + expected) break;
        // Joined once the whole frame is here (a frame within one chunk is a view, not a copy); handlers keep
        // views into it until they answer.
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, buffered);
        const frame = all.subarray(FRAME_SIZE_BYTES, FRAME_SIZE_BYTES + expected);
        const rest = all.subarray(FRAME_SIZE_BYTES + expected);
        chunks = rest.length > 0 ? [rest] : [];
        buffered = rest.length;
        expected = -1;
        onFrame(frame);
      }
    });
    // A client that does not read its responses stops being read from: its unsent responses stay bounded.
    socket.on('drain', () => flush());
    socket.on('error', () => close(null));
    socket.on('close', () => {
      closed = true;
      clearSessionTimer();
      this.sockets.delete(socket);
    });
  }
}
