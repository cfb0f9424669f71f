// WebSocket streaming, modelled on Pulsar's WebSocket API: JSON frames, one purpose per endpoint.
//   /ws/produce/{topic}                       pipelined produce; answers carry the client's `context`
//   /ws/consume/{topic}?partition=&offset=    records pushed as they are appended, in order, no gaps
//   /ws/group/{group}?topics=a,b              a consumer-group member: assignments, records, commits
// Records are pushed as soon as the leader's high watermark passes them: each stream keeps one fetch parked at
// the partition's leader (local or on another node), which answers it the moment records become visible, so a
// node streams any partition wherever it is led. Flow control both ways: a client may grant permits
// (`{"type":"permit","count":n}`), and the socket's buffered amount is watched: above `highWaterBytes` a stream
// pauses until uWebSockets.js reports `drain`. A slow consumer is paused, never dropped, and its memory is
// bounded by one fetch beyond the high-water mark. Close codes 4000-4999 carry a reason.
// With authentication on, the upgrade is refused (401 with WWW-Authenticate, or 403 naming the permission,
// before any socket exists) unless the principal (bearer token in Authorization, or `?token=` for browsers)
// may use the endpoint: topic:write to produce, topic:read to consume, group:read plus topic:read of every
// topic to join a group. Actions in frames are checked again against the current ACLs: a produce after the
// ACL was removed, or a commit for a topic the principal may not read, answers a 40301 error frame. A socket
// opened with a JWT that has an `exp` is closed with 4401 at that time: the token is no longer honoured.
// Limits of a client: an upgrade from an address over --max-connections-per-ip is refused with 429 (no
// socket); a produce frame of a principal over its produce quota is answered with a 42901 error frame (the
// socket stays open, nothing is written); records streamed to a principal over its consume quota are held
// back (the stream pauses until the quota's refill allows more), never dropped.
// Runs on the acceptor (main) thread only.

import uWS from 'uWebSockets.js';
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { assert } from '../core/assert.js';
import { type ErrorName, errorBody, errors } from '../core/errors.js';
import { forEachRecord } from '../core/log/record-batch.js';
import { validateTopicName } from '../core/names.js';
import type { AccessRequirement } from '../core/security/acl.js';
import { decodePathParam } from '../http/params.js';
import { parseSingleProduce } from '../http/produce-body.js';
import { RecordFrameWriter } from '../http/record-json.js';
import { type AddressCap, clientAddressOf, type RequestQuotas } from '../http/server.js';
import { closeReason, parseConsumeFrame, parseGroupFrame, parseProduceFrame } from '../http/ws-frames.js';
import { FETCH_NO_OFFSET_BOUND } from '../messages/fetch.js';
import { Status } from '../messages/status.js';
import { type AccessControl, ANONYMOUS, type Authentication } from '../security/access.js';
import {
  type Acceptor,
  type FetchOutcome,
  OFFSET_EARLIEST,
  OFFSET_LATEST,
  type PartitionRoute,
  type ProduceFailure,
  type SingleProduceTarget,
  type TopicRoute,
} from './acceptor.js';
import type { GroupMembers, MemberRefusal, MemberState } from './group-members.js';
import type { GroupsService } from './groups-service.js';
import { fetchStatusAnswer } from './status-answer.js';

export const CloseCode = {
  /** RFC 6455: a text frame that is not valid UTF-8. */
  invalidPayload: 1007,
  /** RFC 6455: a frame larger than the endpoint accepts. */
  messageTooBig: 1009,
  badRequest: 4001,
  unknownTopic: 4004,
  tooSlow: 4008,
  notLeader: 4013,
  rateLimited: 4029,
} as const;

/** setTimeout's longest delay; an expiry further off is checked again when the timer fires. */
const timerDelayMsMax = 2 ** 31 - 1;

export interface StreamOptions {
  /** Above this many buffered bytes a socket's streams pause until it drains. */
  readonly highWaterBytes: number;
  /** Bytes one stream fetch reads at most. */
  readonly fetchBytes: number;
  /** Produce requests a socket may have in flight before new ones are refused. */
  readonly inFlightMax: number;
  readonly idleTimeoutS: number;
  /** A frame larger than this is refused: the socket closes with 1009 and a reason naming the limit. */
  readonly frameBytesMax: number;
  /**
   * What uWebSockets.js buffers of one message at most (>= frameBytesMax). A message above it is dropped by the
   * socket layer itself, which closes the connection without a close frame (the client sees 1006); between the
   * two bounds the broker reads the size and closes with 1009 and a reason.
   */
  readonly socketMessageBytesMax: number;
}

export const defaultStreamOptions: StreamOptions = {
  highWaterBytes: 1024 * 1024,
  fetchBytes: 256 * 1024,
  inFlightMax: 10_000,
  idleTimeoutS: 120,
  frameBytesMax: 1024 * 1024,
  socketMessageBytesMax: 8 * 1024 * 1024,
};

interface SocketData {
  readonly path: string;
  readonly params: string[];
  readonly query: URLSearchParams;
  /** The authenticated principal (`ANONYMOUS` with authentication off). */
  readonly principal: string;
  /** `Bearer <token>` as the client authenticated ('' with none): passed on to the group coordinator. */
  readonly authorization: string;
  /** When the credential expires (a JWT's exp), in ms since the epoch; null: never. */
  readonly expiresAtMs: number | null;
  /** Closes the socket at `expiresAtMs`; cleared on close. */
  expiryTimer: NodeJS.Timeout | null;
  session: Session | null;
  closed: boolean;
}

type Socket = uWS.WebSocket<SocketData>;

interface Session {
  open(): void;
  message(text: string): void;
  drain(): void;
  close(): void;
}

/** Where a partition stream delivers. */
interface StreamSink {
  canSend(): boolean;
  /** A frame's JSON text, or its UTF-8 bytes (copied before this returns). */
  send(json: string | Uint8Array): void;
  cork(work: () => void): void;
  fail(code: number, reason: string): void;
}

/** Frames of one stream's records are made here, one at a time (one thread). */
const frameWriter = new RecordFrameWriter();

/** How long a stream's fetch waits at the leader for records before it is asked again. */
const streamWaitMs = 10_000;
/** After a fetch the leader could not answer (no leader, a failed link), the stream tries again this late. */
const streamRetryMs = 200;

/** The records of one fetch answer as frames, made once for every stream that waited on that fetch. */
interface SharedFrames {
  readonly offsets: number[];
  /** Each record's frame as UTF-8 bytes, copied once and sent to every stream (no text to convert per send). */
  readonly frames: Uint8Array[];
  readonly decoded: ReturnType<typeof forEachRecord>;
}

/** Streams of one partition, at one offset, with one frame format, waiting on one fetch. */
interface Feed {
  readonly streams: PartitionStream[];
  readonly prefix: string;
  readonly base64: boolean;
  readonly offset: number;
}

/**
 * The fan-out of streams at a partition's tail: streams that pump at the same offset of the same partition with
 * the same frame format share one fetch parked at the leader, and the answer is decoded and turned into frames
 * once for all of them, where each would otherwise fetch, decode and encode the same records. A stream whose
 * offset is not resolved yet (earliest, latest) fetches alone. Only fetches in flight are kept, so the table
 * is bounded by the streams that exist. Acceptor thread only.
 */
export class StreamFeeds {
  private readonly inFlight = new Map<PartitionRoute, Map<string, Feed>>();
  /** Pumps that joined a fetch already in flight (for tests and metrics). */
  joined = 0;
  /** Answers turned into frames once for several streams. */
  shared = 0;

  constructor(
    private readonly acceptor: Acceptor,
    private readonly fetchBytes: number,
  ) {}

  fetch(stream: PartitionStream): void {
    const route = stream.partition;
    if (stream.nextOffset < 0) {
      this.acceptor.fetchBatch(
        route,
        stream.nextOffset,
        this.fetchBytes,
        streamWaitMs,
        FETCH_NO_OFFSET_BOUND,
        (outcome) => stream.deliver(outcome, null),
      );
      return;
    }
    const key = `${stream.nextOffset} ${stream.base64 ? 'b' : 's'} ${stream.prefix}`;
    let byKey = this.inFlight.get(route);
    const existing = byKey?.get(key);
    if (existing !== undefined) {
      existing.streams.push(stream);
      this.joined++;
      return;
    }
    if (byKey === undefined) {
      byKey = new Map();
      this.inFlight.set(route, byKey);
    }
    const feed: Feed = {
      streams: [stream],
      prefix: stream.prefix,
      base64: stream.base64,
      offset: stream.nextOffset,
    };
    byKey.set(key, feed);
    const table = byKey;
    this.acceptor.fetchBatch(
      route,
      feed.offset,
      this.fetchBytes,
      streamWaitMs,
      FETCH_NO_OFFSET_BOUND,
      (outcome) => {
        table.delete(key);
        if (table.size === 0 && this.inFlight.get(route) === table) this.inFlight.delete(route);
        const live = feed.streams.filter((s) => !s.isStopped);
        const frames = live.length > 1 ? this.framesOf(outcome, feed) : null;
        for (const s of feed.streams) s.deliver(outcome, frames);
      },
    );
  }

  /** The answer's records from the feed's offset up to the high watermark, as frames; null unless it is Ok. */
  private framesOf(outcome: FetchOutcome, feed: Feed): SharedFrames | null {
    if (outcome.failure !== null || outcome.status !== Status.Ok) return null;
    this.shared++;
    const offsets: number[] = [];
    const frames: Uint8Array[] = [];
    const prefix = Buffer.from(feed.prefix, 'utf8');
    const decoded = forEachRecord(
      outcome.payload,
      (record) => {
        offsets.push(record.offset);
        frames.push(Buffer.from(frameWriter.frame(prefix, record, feed.base64)));
      },
      { fromOffset: feed.offset, toOffsetExclusive: outcome.header.highWatermark },
    );
    return { offsets, frames, decoded };
  }
}

/**
 * Follows one partition from an offset, pushing each record once, in order. One fetch at a time, parked at
 * the leader until records are visible (shared with the other streams at the same offset: StreamFeeds); the
 * answer is pushed, and the next fetch sent while the socket can take more (otherwise the sink's drain or a
 * permit pumps again).
 */
class PartitionStream {
  private fetching = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  /** `prefix` as UTF-8, for frames made as bytes. */
  private readonly prefixBytes: Buffer;

  constructor(
    private readonly acceptor: Acceptor,
    private readonly feeds: StreamFeeds,
    readonly topic: TopicRoute,
    readonly partition: PartitionRoute,
    /** OFFSET_EARLIEST / OFFSET_LATEST until the first answer tells where they are. */
    public nextOffset: number,
    private readonly sink: StreamSink,
    readonly prefix: string,
    readonly base64: boolean,
    /**
     * Told when the leader refuses a fetch for a reason the stream cannot step over by itself (damaged
     * stored data, a failed disk): the stream has stopped, and the session decides what the client hears.
     */
    private readonly onRefused: (stream: PartitionStream, error: ErrorName, message: string) => void,
  ) {
    this.prefixBytes = Buffer.from(prefix, 'utf8');
  }

  pump(): void {
    if (this.stopped || this.fetching || this.retryTimer !== null || !this.sink.canSend()) return;
    this.fetching = true;
    this.feeds.fetch(this);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  private retryLater(): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, streamRetryMs);
    this.retryTimer.unref();
  }

  /** A fetch's answer; `frames` are its records already made into this stream's frames (a shared fetch). */
  deliver(outcome: FetchOutcome, frames: SharedFrames | null): void {
    this.fetching = false;
    if (this.stopped) return;
    const h = outcome.header;
    if (outcome.failure !== null) {
      // No leader right now, or the link to it failed: the partition comes back, so the stream waits for it.
      return this.retryLater();
    }
    if (outcome.status === Status.UnknownPartition) {
      if (this.acceptor.topicRoute(this.topic.meta.name) !== this.topic) {
        return this.sink.fail(CloseCode.unknownTopic, `topic ${this.topic.meta.name} was deleted`);
      }
      return this.retryLater();
    }
    if (outcome.status === Status.NotLeader || outcome.status === Status.HighWatermarkNotReady) {
      return this.retryLater();
    }
    if (outcome.status === Status.OffsetOutOfRange) {
      return this.sink.fail(
        CloseCode.badRequest,
        `offset ${this.nextOffset} is outside ${h.logStartOffset}..${h.highWatermark} of partition ${this.partition.partition}`,
      );
    }
    if (outcome.status !== Status.Ok) {
      const answer = fetchStatusAnswer(
        outcome.status,
        outcome.payload,
        this.topic.meta.name,
        this.partition.partition,
        this.nextOffset,
        h.logStartOffset,
        h.highWatermark,
      );
      this.stop();
      return this.onRefused(this, answer.name, answer.message);
    }
    // 'earliest' / 'latest' as the leader resolved them for this first fetch.
    if (this.nextOffset < 0) this.nextOffset = h.fetchOffset;
    const highWatermark = h.highWatermark;
    let decoded: ReturnType<typeof forEachRecord> | null = null;
    if (frames !== null) {
      this.sink.cork(() => {
        for (let i = 0; i < frames.offsets.length; i++) {
          // Once the socket is full the rest is left for a later fetch from nextOffset.
          if (this.stopped || !this.sink.canSend()) break;
          if (frames.offsets[i] !== this.nextOffset) continue;
          this.sink.send(frames.frames[i]!);
          this.nextOffset += 1;
        }
      });
      decoded = frames.decoded;
    } else
      this.sink.cork(() => {
        decoded = forEachRecord(
          outcome.payload,
          (record) => {
            // Once the socket is full the rest of the batch is left for a later fetch from nextOffset.
            if (this.stopped || record.offset !== this.nextOffset || !this.sink.canSend()) return;
            this.sink.send(frameWriter.frame(this.prefixBytes, record, this.base64));
            this.nextOffset = record.offset + 1;
          },
          { fromOffset: this.nextOffset, toOffsetExclusive: highWatermark },
        );
      });
    if (this.stopped) return;
    const result = decoded as ReturnType<typeof forEachRecord> | null;
    if (result !== null && result.kind === 'corrupt') {
      // The leader checked each batch's CRC; a batch whose records still fail to decode is damage too.
      this.stop();
      return this.onRefused(
        this,
        'corrupt_data',
        `a stored batch of ${this.topic.meta.name}-${this.partition.partition} at offset ${this.nextOffset} cannot be decoded (${result.reason}); it is not served`,
      );
    }
    // The next fetch parks at the leader when there is nothing more yet; immediate once the socket drained.
    if (this.sink.canSend()) setImmediate(() => this.pump());
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }
}

/**
 * Flow control shared by the streams of one socket: permits (once the client grants any), buffered bytes, and
 * the principal's consume quota (with `quotas`): while the quota says wait, nothing is sent, and the socket's
 * streams are pumped again when the wait is over.
 */
class SocketSink implements StreamSink {
  private permits = 0;
  private permitMode = false;
  private throttleTimer: NodeJS.Timeout | null = null;
  private disposed = false;

  constructor(
    private readonly ws: Socket,
    private readonly highWaterBytes: number,
    private readonly quotas: RequestQuotas | null = null,
  ) {}

  /** Called when the socket's session closes: the socket may not be touched any more. */
  dispose(): void {
    this.disposed = true;
    if (this.throttleTimer !== null) clearTimeout(this.throttleTimer);
    this.throttleTimer = null;
  }

  private throttled(): boolean {
    const quotas = this.quotas;
    if (quotas === null || quotas.consumeBytesPerS === 0) return false;
    if (this.throttleTimer !== null) return true;
    const delayMs = quotas.consumeDelayMs(this.ws.getUserData().principal, 'ws');
    if (delayMs === 0) return false;
    this.throttleTimer = setTimeout(() => {
      this.throttleTimer = null;
      if (!this.disposed) this.ws.getUserData().session?.drain();
    }, delayMs);
    this.throttleTimer.unref();
    return true;
  }

  grant(count: number): void {
    this.permitMode = true;
    this.permits += count;
  }

  canSend(): boolean {
    const data = this.ws.getUserData();
    if (data.closed) return false;
    if (this.permitMode && this.permits <= 0) return false;
    return this.ws.getBufferedAmount() < this.highWaterBytes && !this.throttled();
  }

  send(json: string | Uint8Array): void {
    if (this.permitMode) this.permits--;
    if (this.quotas !== null && this.quotas.consumeBytesPerS > 0) {
      const bytes = typeof json === 'string' ? Buffer.byteLength(json) : json.byteLength;
      this.quotas.chargeConsume(this.ws.getUserData().principal, bytes);
    }
    // maxBackpressure is far above highWaterBytes, so uWebSockets.js never drops a frame: 2 would be a bug.
    const outcome = this.ws.send(json, false);
    if (outcome === 2) this.fail(CloseCode.tooSlow, 'send buffer limit reached');
  }

  cork(work: () => void): void {
    if (this.ws.getUserData().closed) return;
    this.ws.cork(work);
  }

  fail(code: number, reason: string): void {
    const data = this.ws.getUserData();
    if (data.closed) return;
    data.closed = true;
    this.ws.end(code, closeReason(reason));
  }

  /** Sends a frame whatever the flow control says (an error the client must see before a close). */
  sendNow(json: string): void {
    if (this.ws.getUserData().closed) return;
    this.ws.cork(() => this.ws.send(json, false));
  }
}

/** Closes with a code and reason, once; a reason longer than a close frame allows is cut (`closeReason`). */
function closeSocket(ws: Socket, code: number, reason: string): void {
  const data = ws.getUserData();
  if (data.closed) return;
  data.closed = true;
  // The close handler stops the session.
  ws.end(code, closeReason(reason));
}

/** A close reason within the WebSocket limit of 123 bytes; the error frame before it says the rest. */
function shortReason(name: ErrorName): string {
  return `${name}: see the error frame`;
}

function topicNeed(topic: string, operation: 'read' | 'write'): AccessRequirement {
  return { resourceType: 'topic', resourceName: topic, operation };
}

/** Answers a refused upgrade with a status and an error body; no socket is created. */
function refuseUpgrade(res: uWS.HttpResponse, status: number, body: string, challenge: boolean): void {
  res.cork(() => {
    res.writeStatus(
      status === 401
        ? '401 Unauthorized'
        : status === 403
          ? '403 Forbidden'
          : status === 429
            ? '429 Too Many Requests'
            : `${status}`,
    );
    res.writeHeader('content-type', 'application/json');
    if (challenge) res.writeHeader('www-authenticate', 'Bearer realm="broker"');
    if (status === 503 || status === 429) res.writeHeader('retry-after', '1');
    res.end(body, true);
  });
}

/** No extra fields for an error frame (shared: not one empty object per frame). */
const noFields: Readonly<Record<string, unknown>> = Object.freeze({});

function errorFrame(name: ErrorName, message: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ result: 'error', error_code: errors[name].code, message, ...extra });
}

export class StreamServer {
  private readonly groupSessions = new Map<string, Set<GroupSession>>();
  private readonly sockets = new Set<Socket>();
  /** False while the client connection cap is reached (set by the broker's connection guard). */
  admit: () => boolean = () => true;
  /** Authentication and ACLs; null: every socket is allowed (tests of the streams alone). */
  access: AccessControl | null = null;
  /** The per-address connection cap; null: none. */
  addressCap: AddressCap | null = null;
  /** Byte-rate quotas per principal; null: none. */
  quotas: RequestQuotas | null = null;
  /** Streams at the same offset of a partition share one fetch and one encoding of its records. */
  readonly feeds: StreamFeeds;

  constructor(
    readonly acceptor: Acceptor,
    readonly groups: GroupsService,
    readonly members: GroupMembers,
    readonly options: StreamOptions,
  ) {
    this.feeds = new StreamFeeds(acceptor, options.fetchBytes);
    groups.onMembershipChange = (groupId) => {
      for (const session of this.groupSessions.get(groupId) ?? []) session.heartbeatSoon();
    };
  }

  register(app: uWS.TemplatedApp): void {
    const behavior = (
      paramCount: number,
      create: (ws: Socket) => Session,
      needs: (params: readonly string[], query: URLSearchParams) => readonly AccessRequirement[],
    ): uWS.WebSocketBehavior<SocketData> => ({
      compression: uWS.DISABLED,
      maxPayloadLength: Math.max(this.options.socketMessageBytesMax, this.options.frameBytesMax),
      idleTimeout: this.options.idleTimeoutS,
      // Streams pause at highWaterBytes; this bound only guards against a bug, so frames are never dropped.
      maxBackpressure: 64 * 1024 * 1024,
      closeOnBackpressureLimit: 0,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        if (!this.admit()) {
          // The client connection cap: shed the upgrade like any request (503, connection closed).
          res.cork(() => {
            res.writeStatus('503 Service Unavailable').writeHeader('retry-after', '1');
            res.end('{"error_code":50302,"message":"the broker is at its client connection limit"}', true);
          });
          return;
        }
        const cap = this.addressCap;
        if (cap !== null) {
          const address = clientAddressOf(res, req);
          if (!cap.admit(address)) {
            const answer = errorBody(
              'rate_limited',
              `${address} holds more than ${cap.maxConnections} connections to this broker (--max-connections-per-ip)`,
            );
            return refuseUpgrade(res, answer.status, JSON.stringify(answer.body), false);
          }
        }
        // The request object dies when this function returns: everything the upgrade needs is copied first.
        const params: string[] = [];
        for (let i = 0; i < paramCount; i++) params.push(decodePathParam(req.getParameter(i) ?? ''));
        const query = new URLSearchParams(req.getQuery() ?? '');
        const path = req.getUrl();
        const key = req.getHeader('sec-websocket-key');
        const protocol = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        const header = req.getHeader('authorization');
        const queryToken = query.get('token');
        const authorization = header !== '' ? header : queryToken !== null ? `Bearer ${queryToken}` : '';
        const upgrade = (principal: string, expiresAtS: number | null) =>
          res.upgrade<SocketData>(
            {
              path,
              params,
              query,
              principal,
              authorization,
              expiresAtMs: expiresAtS === null ? null : expiresAtS * 1000,
              expiryTimer: null,
              session: null,
              closed: false,
            },
            key,
            protocol,
            extensions,
            context,
          );
        const access = this.access;
        if (access === null || !access.enabled) return upgrade(ANONYMOUS, null);
        let aborted = false;
        const decide = (outcome: Authentication): void => {
          if (aborted) return;
          if (outcome.kind !== 'ok') {
            const answer =
              outcome.kind === 'busy'
                ? errorBody('overloaded', 'too many bearer tokens are being verified at once; retry')
                : errorBody('unauthenticated', outcome.message);
            return refuseUpgrade(res, answer.status, JSON.stringify(answer.body), outcome.kind !== 'busy');
          }
          const refusal = access.authorize(outcome.principal, needs(params, query), path);
          if (refusal !== null) {
            const answer = errorBody('forbidden', refusal.message);
            return refuseUpgrade(res, answer.status, JSON.stringify(answer.body), false);
          }
          res.cork(() => upgrade(outcome.principal, outcome.expiresAtS));
        };
        const authenticated = access.authenticate(header, queryToken);
        if (!(authenticated instanceof Promise)) return decide(authenticated);
        res.onAborted(() => {
          aborted = true;
        });
        void authenticated.then(decide);
      },
      open: (ws) => {
        this.sockets.add(ws);
        this.closeAtExpiry(ws);
        const session = create(ws);
        ws.getUserData().session = session;
        session.open();
      },
      message: (ws, message) => {
        const data = ws.getUserData();
        if (data.closed) return;
        if (message.byteLength > this.options.frameBytesMax) {
          return closeSocket(
            ws,
            CloseCode.messageTooBig,
            `frame of ${message.byteLength} bytes exceeds the limit of ${this.options.frameBytesMax} bytes`,
          );
        }
        const bytes = new Uint8Array(message);
        // A frame is JSON text: bytes that are not UTF-8 would be replaced by U+FFFD and stored as something
        // other than what was sent, so they are refused instead.
        if (!isUtf8(bytes)) {
          return closeSocket(ws, CloseCode.invalidPayload, 'frame is not valid UTF-8');
        }
        data.session?.message(Buffer.from(message).toString('utf8'));
      },
      drain: (ws) => ws.getUserData().session?.drain(),
      close: (ws) => {
        const data = ws.getUserData();
        data.closed = true;
        if (data.expiryTimer !== null) clearTimeout(data.expiryTimer);
        this.sockets.delete(ws);
        data.session?.close();
      },
    });
    app.ws<SocketData>(
      '/ws/produce/:topic',
      behavior(
        1,
        (ws) => new ProduceSession(this, ws),
        (params) => [topicNeed(params[0] ?? '', 'write')],
      ),
    );
    app.ws<SocketData>(
      '/ws/consume/:topic',
      behavior(
        1,
        (ws) => new ConsumeSession(this, ws),
        (params) => [topicNeed(params[0] ?? '', 'read')],
      ),
    );
    app.ws<SocketData>(
      '/ws/group/:group',
      behavior(
        1,
        (ws) => new GroupSession(this, ws),
        (params, query) => [
          { resourceType: 'group', resourceName: params[0] ?? '', operation: 'read' },
          ...(query.get('topics') ?? '')
            .split(',')
            .filter((t) => t.length > 0)
            .map((t) => topicNeed(t, 'read')),
        ],
      ),
    );
  }

  /**
   * Closes `ws` with 4401 when its credential expires (a JWT's exp; checked at the upgrade, so a token valid then
   * is honoured until then and no longer): a client must reconnect with a fresh token, as an HTTP client's next
   * request would be refused.
   */
  private closeAtExpiry(ws: Socket): void {
    const data = ws.getUserData();
    const expiresAtMs = data.expiresAtMs;
    if (expiresAtMs === null || data.closed) return;
    const delayMs = expiresAtMs - Date.now();
    if (delayMs <= 0) {
      // The close code of 40101 (core/errors.ts), as for any other missing credential.
      const code = errors.unauthenticated.wsCloseCode;
      assert(code !== null, 'unauthenticated has a close code');
      return closeSocket(
        ws,
        code,
        `the bearer token expired at ${new Date(expiresAtMs).toISOString()}; reconnect with a new one`,
      );
    }
    data.expiryTimer = setTimeout(
      () => {
        data.expiryTimer = null;
        this.closeAtExpiry(ws);
      },
      Math.min(delayMs, timerDelayMsMax),
    );
    // The socket, not this timer, keeps the process alive.
    data.expiryTimer.unref();
  }

  /**
   * The refusal message when the socket's principal may no longer do `needs` (the ACLs changed since the
   * upgrade, or a frame names another resource); null when allowed. Counted and logged like any denial.
   */
  refused(ws: Socket, needs: readonly AccessRequirement[]): string | null {
    if (this.access === null) return null;
    return this.access.authorize(ws.getUserData().principal, needs, ws.getUserData().path)?.message ?? null;
  }

  /** Closes every socket with 1001 (going away): the broker is shutting down. */
  closeAll(): void {
    for (const ws of [...this.sockets]) {
      const data = ws.getUserData();
      if (data.closed) continue;
      data.closed = true;
      data.session?.close();
      ws.end(1001, 'broker shutting down');
    }
    this.sockets.clear();
  }

  addGroupSession(groupId: string, session: GroupSession): void {
    let set = this.groupSessions.get(groupId);
    if (set === undefined) {
      set = new Set();
      this.groupSessions.set(groupId, set);
    }
    set.add(session);
  }

  removeGroupSession(groupId: string, session: GroupSession): void {
    const set = this.groupSessions.get(groupId);
    set?.delete(session);
    if (set?.size === 0) this.groupSessions.delete(groupId);
  }

  /** Resolves a topic for a socket, or closes it with 4001/4004 and returns null. */
  topicOrClose(ws: Socket, sink: StreamSink, name: string): TopicRoute | null {
    const problem = validateTopicName(name);
    if (problem !== null) {
      sink.fail(CloseCode.badRequest, problem);
      return null;
    }
    const topic = this.acceptor.topicRoute(name);
    if (topic === undefined) {
      sink.fail(CloseCode.unknownTopic, `topic '${name}' does not exist`);
      return null;
    }
    void ws;
    return topic;
  }
}

class ProduceSession implements Session, SingleProduceTarget {
  private inFlight = 0;
  private readonly sink: SocketSink;
  private topic: TopicRoute | null = null;

  constructor(
    private readonly server: StreamServer,
    private readonly ws: Socket,
  ) {
    this.sink = new SocketSink(ws, server.options.highWaterBytes);
  }

  open(): void {
    this.topic = this.server.topicOrClose(this.ws, this.sink, this.ws.getUserData().params[0] ?? '');
  }

  message(text: string): void {
    const topic = this.topic;
    if (topic === null) return;
    const parsedFrame = parseProduceFrame(text);
    if (typeof parsedFrame === 'string') return this.answer(errorFrame('bad_request', parsedFrame));
    const { fields: frame, context } = parsedFrame;
    const withContext = context === undefined ? noFields : { context };
    if (this.inFlight >= this.server.options.inFlightMax) {
      return this.answer(
        errorFrame(
          'overloaded',
          `more than ${this.server.options.inFlightMax} records in flight`,
          withContext,
        ),
      );
    }
    if (this.server.acceptor.topicRoute(topic.meta.name) !== topic) {
      return this.sink.fail(CloseCode.unknownTopic, `topic ${topic.meta.name} was deleted`);
    }
    const refusal = this.server.refused(this.ws, [topicNeed(topic.meta.name, 'write')]);
    if (refusal !== null) return this.answer(errorFrame('forbidden', refusal, withContext));
    const quotas = this.server.quotas;
    if (quotas !== null && quotas.produceBytesPerS > 0) {
      const principal = this.ws.getUserData().principal;
      const delayMs = quotas.admitProduce(principal, Buffer.byteLength(text), 'ws');
      if (delayMs > 0) {
        return this.answer(
          errorFrame(
            'quota_exceeded',
            `principal '${principal}' is over its produce quota of ${quotas.produceBytesPerS} bytes/s (--quota-produce-bytes-per-second); nothing was written; retry in ${delayMs} ms`,
            { ...withContext, retry_after_ms: delayMs },
          ),
        );
      }
    }
    const parsed = parseSingleProduce(frame, topic.limits, Date.now());
    if (parsed.kind === 'error') return this.answer(errorFrame(parsed.error, parsed.message, withContext));
    this.inFlight++;
    const missing = this.server.acceptor.produceSingle(topic, parsed.records, this, context);
    if (missing >= 0) {
      this.inFlight--;
      return this.answer(errorFrame('unknown_partition', `there is no partition ${missing}`, withContext));
    }
  }

  /** The record's offset (SingleProduceTarget): the answer is made as text, without an object. */
  produced(partition: number, offset: number, context: unknown): void {
    this.inFlight--;
    this.answer(
      context === undefined
        ? `{"result":"ok","partition":${partition},"offset":${offset}}`
        : `{"result":"ok","partition":${partition},"offset":${offset},"context":${JSON.stringify(context)}}`,
    );
  }

  produceFailed(failure: ProduceFailure, context: unknown): void {
    this.inFlight--;
    this.answer(
      errorFrame(failure.name, failure.message, {
        ...(context === undefined ? noFields : { context }),
        indefinite: failure.indefinite,
      }),
    );
  }

  /**
   * Queues an answer frame; the frames answered in one go (a drain of the workers' answers, a read of the
   * client's frames) are sent together at the next microtask, corked: one write to the socket instead of one per
   * record. Bounded by the records in flight plus the frames of one read.
   */
  private answer(json: string): void {
    if (this.ws.getUserData().closed) return;
    this.pendingAnswers.push(json);
    if (this.pendingAnswers.length === 1) queueMicrotask(this.flushAnswers);
  }

  private readonly pendingAnswers: string[] = [];

  private readonly flushAnswers = (): void => {
    const answers = this.pendingAnswers;
    if (!this.ws.getUserData().closed) {
      this.ws.cork(() => {
        for (const json of answers) this.ws.send(json, false);
      });
    }
    answers.length = 0;
  };

  drain(): void {}
  close(): void {}
}

class ConsumeSession implements Session {
  private readonly sink: SocketSink;
  private stream: PartitionStream | null = null;

  constructor(
    private readonly server: StreamServer,
    private readonly ws: Socket,
  ) {
    this.sink = new SocketSink(ws, server.options.highWaterBytes, server.quotas);
  }

  open(): void {
    const data = this.ws.getUserData();
    const topic = this.server.topicOrClose(this.ws, this.sink, data.params[0] ?? '');
    if (topic === null) return;
    const partitionText = data.query.get('partition') ?? '0';
    if (!/^(0|[1-9][0-9]{0,9})$/.test(partitionText)) {
      return this.sink.fail(CloseCode.badRequest, `partition must be a whole number, got '${partitionText}'`);
    }
    const partition = topic.partitions[Number(partitionText)];
    if (partition === undefined) {
      return this.sink.fail(
        CloseCode.unknownTopic,
        `topic ${topic.meta.name} has no partition ${partitionText}`,
      );
    }
    const offsetText = data.query.get('offset') ?? 'latest';
    const numeric = /^(0|[1-9][0-9]{0,15})$/.test(offsetText);
    if (!numeric && offsetText !== 'earliest' && offsetText !== 'latest') {
      return this.sink.fail(CloseCode.badRequest, `offset must be earliest, latest or a whole number`);
    }
    const valueFormat = data.query.get('value_format') ?? 'string';
    if (valueFormat !== 'string' && valueFormat !== 'base64') {
      return this.sink.fail(CloseCode.badRequest, `value_format must be 'string' or 'base64'`);
    }
    // 'earliest' and 'latest' are resolved by the partition's leader with the first fetch.
    const offset = numeric ? Number(offsetText) : offsetText === 'earliest' ? OFFSET_EARLIEST : OFFSET_LATEST;
    this.begin(topic, partition, offset, valueFormat === 'base64');
  }

  private begin(topic: TopicRoute, partition: PartitionRoute, offset: number, base64: boolean): void {
    this.stream = new PartitionStream(
      this.server.acceptor,
      this.server.feeds,
      topic,
      partition,
      offset,
      this.sink,
      `{"partition":${partition.partition},`,
      base64,
      (_stream, name, message) => {
        // A consume socket follows one partition, so it cannot go on: the error frame carries the whole
        // message (a close reason is limited to 123 bytes), then the socket closes with the error's code.
        this.sink.sendNow(errorFrame(name, message, { partition: partition.partition }));
        this.sink.fail(errors[name].wsCloseCode ?? 1011, shortReason(name));
      },
    );
    this.stream.pump();
  }

  message(text: string): void {
    const permit = parseConsumeFrame(text);
    if (typeof permit === 'string') return this.sink.fail(CloseCode.badRequest, permit);
    this.sink.grant(permit.count);
    this.stream?.pump();
  }

  drain(): void {
    this.stream?.pump();
  }

  close(): void {
    this.stream?.stop();
    this.sink.dispose();
  }
}

export class GroupSession implements Session {
  private readonly sink: SocketSink;
  private readonly streams = new Map<string, PartitionStream>();
  private groupId = '';
  private memberId = '';
  private topics: readonly string[] = [];
  private generation = 0;
  private joined = false;
  private closed = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private commitTimer: NodeJS.Timeout | null = null;
  private heartbeatScheduled = false;
  /** One heartbeat (or re-join) at a time: the coordinator may be a round trip away. */
  private heartbeatInFlight = false;
  /** Until when heartbeats follow each other every 100 ms (a rebalance under way, coordinator elsewhere). */
  private fastBeatsUntilMs = 0;
  private fastBeatTimer: NodeJS.Timeout | null = null;
  private offsetReset: 'earliest' | 'latest' = 'latest';
  private base64 = false;
  /** What this member last committed per partition (for auto-commit: only changed positions are sent). */
  private readonly committed = new Map<string, number>();
  /**
   * Assigned partitions whose stream stopped on an error it cannot step over (damaged data, a failed disk).
   * The other partitions keep streaming; a commit for one of these restarts it from the committed offset,
   * which is how a client steps over a damaged range it was told about.
   */
  private readonly refused = new Set<string>();

  constructor(
    private readonly server: StreamServer,
    private readonly ws: Socket,
  ) {
    this.sink = new SocketSink(ws, server.options.highWaterBytes, server.quotas);
  }

  /** The member's credentials, for calls to a coordinator on another node. */
  private get authorization(): string {
    return this.ws.getUserData().authorization;
  }

  open(): void {
    const data = this.ws.getUserData();
    this.groupId = data.params[0] ?? '';
    const problem = validateTopicName(this.groupId);
    if (problem !== null)
      return this.sink.fail(CloseCode.badRequest, problem.replace('topic name', 'group name'));
    const topics = (data.query.get('topics') ?? '').split(',').filter((t) => t.length > 0);
    if (topics.length === 0) return this.sink.fail(CloseCode.badRequest, 'topics=a,b is required');
    for (const topic of topics) {
      if (this.server.topicOrClose(this.ws, this.sink, topic) === null) return;
    }
    const reset = data.query.get('offset_reset') ?? 'latest';
    if (reset !== 'earliest' && reset !== 'latest') {
      return this.sink.fail(CloseCode.badRequest, "offset_reset must be 'earliest' or 'latest'");
    }
    this.offsetReset = reset;
    this.base64 = data.query.get('value_format') === 'base64';
    this.memberId = data.query.get('consumer_id') ?? `ws-${randomUUID()}`;
    this.topics = topics;
    this.server.addGroupSession(this.groupId, this);
    this.join(data.query.get('auto_commit') === 'true');
  }

  /** Joins the group; while no coordinator answers (an election), tries again every 250 ms. */
  private join(autoCommit: boolean): void {
    this.heartbeatInFlight = true;
    this.server.members.join(this.groupId, this.memberId, this.topics, this.authorization).then((result) => {
      this.heartbeatInFlight = false;
      if (this.closed) {
        if (result.kind === 'ok')
          void this.server.members.leave(this.groupId, this.memberId, this.authorization);
        return;
      }
      if (result.kind !== 'ok' && result.retriable) {
        setTimeout(() => {
          if (!this.closed) this.join(autoCommit);
        }, 250).unref();
        return;
      }
      if (result.kind !== 'ok') return this.sink.fail(CloseCode.badRequest, result.message);
      this.joined = true;
      this.apply(result);
      this.followRebalance();
      this.heartbeatTimer = setInterval(
        () => this.heartbeat(),
        Math.max(100, Math.min(1000, result.sessionTimeoutMs / 3)),
      );
      if (autoCommit) this.commitTimer = setInterval(() => this.autoCommit(), 1000);
    });
  }

  heartbeatSoon(): void {
    if (this.heartbeatScheduled) return;
    this.heartbeatScheduled = true;
    setImmediate(() => {
      this.heartbeatScheduled = false;
      this.heartbeat();
    });
  }

  private heartbeat(): void {
    if (!this.joined || this.closed || this.heartbeatInFlight) return;
    this.heartbeatInFlight = true;
    void this.beat().finally(() => {
      this.heartbeatInFlight = false;
    });
  }

  private async beat(): Promise<void> {
    let result: MemberState | MemberRefusal = await this.server.members.heartbeat(
      this.groupId,
      this.memberId,
      this.authorization,
    );
    if (this.closed) return;
    if (result.kind !== 'ok' && result.unknownMember) {
      // The coordinator moved (or the session expired there): join again under the same member id. Streams
      // keep their positions until the new assignment says otherwise.
      result = await this.server.members.join(this.groupId, this.memberId, this.topics, this.authorization);
      if (this.closed) {
        if (result.kind === 'ok')
          void this.server.members.leave(this.groupId, this.memberId, this.authorization);
        return;
      }
    }
    if (result.kind !== 'ok') {
      // No coordinator for a moment (an election): the next heartbeat tries again.
      if (result.retriable) return;
      return this.sink.fail(CloseCode.badRequest, `left the group: ${result.message}`);
    }
    if (result.rebalance || result.generation !== this.generation) {
      this.apply(result);
      this.followRebalance();
    }
  }

  /**
   * A member whose coordinator is on another node hears of rebalance steps only by heartbeating (the
   * coordinator cannot nudge it as it does its own node's sockets): for 2 s after a change it heartbeats every
   * 100 ms, so a cooperative hand-over's rounds take a tenth of a second each rather than a heartbeat interval.
   */
  private followRebalance(): void {
    if (this.server.members.isLocal) return;
    this.fastBeatsUntilMs = Date.now() + 2_000;
    this.scheduleFastBeat();
  }

  private scheduleFastBeat(): void {
    if (this.fastBeatTimer !== null || this.closed) return;
    this.fastBeatTimer = setTimeout(() => {
      this.fastBeatTimer = null;
      if (this.closed || Date.now() > this.fastBeatsUntilMs) return;
      this.heartbeat();
      this.scheduleFastBeat();
    }, 100);
    this.fastBeatTimer.unref();
  }

  /** Stops streams of revoked partitions, starts streams of new ones, and tells the client. */
  private apply(state: MemberState): void {
    const { generation, assignments } = state;
    this.generation = generation;
    const wanted = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignments)) {
      for (const p of partitions) wanted.add(`${topic}\u0000${p}`);
    }
    for (const [key, stream] of this.streams) {
      if (!wanted.has(key)) {
        stream.stop();
        this.streams.delete(key);
        this.committed.delete(key);
      }
    }
    for (const key of this.refused) if (!wanted.has(key)) this.refused.delete(key);
    this.send(
      JSON.stringify({
        type: 'assignment',
        group: this.groupId,
        member_id: this.memberId,
        generation,
        assignments,
      }),
    );
    for (const key of wanted) {
      if (this.streams.has(key) || this.refused.has(key)) continue;
      this.startStream(key, generation);
    }
  }

  /** Streams one assigned partition from its committed offset (or the reset position). */
  private startStream(key: string, generation: number): void {
    const [topicName, partitionText] = key.split('\u0000') as [string, string];
    const partitionNumber = Number(partitionText);
    this.server.members
      .committedOffset(this.groupId, topicName, partitionNumber, this.authorization)
      .then((committed) => {
        // Still wanted: the session is open, the generation unchanged, and no stream started meanwhile.
        if (this.closed || this.generation !== generation || this.streams.has(key)) return;
        if (committed === null) {
          // The coordinator is away: the committed offset is unknown, so nothing is streamed from a guess.
          setTimeout(() => {
            if (!this.closed && this.generation === generation) this.startStream(key, generation);
          }, 250).unref();
          return;
        }
        this.startStreamAt(key, topicName, partitionNumber, committed);
      });
  }

  private startStreamAt(
    key: string,
    topicName: string,
    partitionNumber: number,
    committed: number | undefined,
  ): void {
    const topic = this.server.acceptor.topicRoute(topicName);
    const partition = topic?.partitions[partitionNumber];
    // Streamed wherever the partition is led: the fetches go to its leader, on this node or another.
    if (topic === undefined || partition === undefined) return;
    if (committed !== undefined) this.committed.set(key, committed);
    // The reset position is resolved by the leader with the first fetch.
    const start = committed ?? (this.offsetReset === 'earliest' ? OFFSET_EARLIEST : OFFSET_LATEST);
    const stream = new PartitionStream(
      this.server.acceptor,
      this.server.feeds,
      topic,
      partition,
      start,
      this.sink,
      `{"type":"record","topic":${JSON.stringify(topicName)},"partition":${partition.partition},`,
      this.base64,
      (stopped, name, message) => {
        if (this.streams.get(key) !== stopped) return;
        this.streams.delete(key);
        this.refused.add(key);
        this.send(
          JSON.stringify({
            type: 'error',
            topic: topicName,
            partition: partition.partition,
            offset: stopped.nextOffset,
            error_code: errors[name].code,
            message: `${message}; this partition's stream has stopped, and a commit for it restarts it from the committed offset`,
          }),
        );
      },
    );
    this.streams.set(key, stream);
    stream.pump();
  }

  message(text: string): void {
    const frame = parseGroupFrame(text);
    if (typeof frame === 'string') return this.send(errorFrame('bad_request', frame));
    if (frame.type === 'permit') {
      this.sink.grant(frame.count);
      return this.drain();
    }
    const { topic, partition, offset } = frame;
    const refusal = this.server.refused(this.ws, [
      { resourceType: 'group', resourceName: this.groupId, operation: 'read' },
      topicNeed(topic, 'read'),
    ]);
    if (refusal !== null) return this.send(errorFrame('forbidden', refusal, { topic, partition, offset }));
    this.commit(topic, partition, offset, true);
  }

  private commit(topic: string, partition: number, offset: number, answer: boolean): void {
    const key = `${topic}\u0000${partition}`;
    this.server.members
      .commit(this.groupId, this.memberId, this.generation, topic, partition, offset, this.authorization)
      .then((result) => {
        if (result.kind === 'ok') {
          if (this.streams.has(key) || this.refused.has(key)) this.committed.set(key, offset);
          if (!answer) return;
          this.send(JSON.stringify({ type: 'committed', topic, partition, offset }));
          if (this.joined && !this.closed && this.refused.delete(key)) this.startStream(key, this.generation);
          return;
        }
        if (!answer) return;
        const extra: Record<string, unknown> = { topic, partition, offset };
        if (result.indefinite) extra.indefinite = true;
        this.send(errorFrame(result.error, result.message, extra));
      });
  }

  private autoCommit(): void {
    for (const [key, stream] of this.streams) {
      // A stream that has not heard from its leader yet does not know where 'earliest' / 'latest' are.
      if (stream.nextOffset < 0) continue;
      if (this.committed.get(key) !== stream.nextOffset) {
        this.commit(stream.topic.meta.name, stream.partition.partition, stream.nextOffset, false);
      }
    }
  }

  private send(json: string): void {
    if (this.ws.getUserData().closed) return;
    this.ws.cork(() => this.ws.send(json, false));
  }

  drain(): void {
    for (const stream of this.streams.values()) stream.pump();
  }

  close(): void {
    this.closed = true;
    this.sink.dispose();
    for (const stream of this.streams.values()) stream.stop();
    this.streams.clear();
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    if (this.commitTimer !== null) clearInterval(this.commitTimer);
    if (this.fastBeatTimer !== null) clearTimeout(this.fastBeatTimer);
    this.server.removeGroupSession(this.groupId, this);
    if (this.joined) {
      this.joined = false;
      void this.server.members.leave(this.groupId, this.memberId, this.authorization);
    }
  }
}
