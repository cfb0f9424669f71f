// The acceptor's end of one partition worker: the request ring it writes, the response ring it reads, and
// the table of requests in flight. Frames are encoded straight into the ring's shared bytes; every frame
// written during one event-loop turn is published with one store and at most one Atomics.notify (at
// setImmediate, which runs after the poll phase delivered that turn's HTTP requests). A full ring is
// backpressure: sends wait in a bounded FIFO until the worker frees space, and past the bound the caller is
// told `overloaded` (HTTP 503 with Retry-After); no request is ever dropped silently.
// Runs on an acceptor thread (the main one, or an extra one with --acceptor-threads); never blocks it (waits
// with Atomics.waitAsync).
import { assert, assertionFailed } from '../core/assert.js';
import { CorrelationTable } from '../core/correlation-table.js';
import { type PartitionState, readPartitionState } from '../messages/describe.js';
import { MessageKind } from '../messages/kinds.js';
import { ReserveFailure, RingReader, RingWriter } from '../ring/spsc-ring.js';

/** Called with the response frame in place; the bytes are valid only during the call. */
export type ResponseHandler = (
  kind: number,
  view: DataView,
  bytes: Buffer,
  at: number,
  length: number,
) => void;

/** Writes a request payload of the announced size at `at`. */
export type PayloadEncoder = (bytes: Buffer, view: DataView, at: number) => void;

export type SendOutcome = 'sent' | 'queued' | 'overloaded' | 'too_large';

interface QueuedSend {
  kind: number;
  payloadBytes: number;
  encode: PayloadEncoder;
  correlationId: number;
}

export interface WorkerLinkOptions {
  /** Sends allowed to wait for ring space before new ones are refused as overloaded. */
  readonly queuedSendsMax: number;
  /** Responses handled per drain before yielding to the event loop. */
  readonly responsesPerDrainMax: number;
}

export class WorkerLink {
  private readonly writer: RingWriter;
  private readonly reader: RingReader;
  private readonly requestBytes: Buffer;
  private readonly responseBytes: Buffer;
  /** Requests in flight by correlation id (not a Map: see CorrelationTable). */
  private readonly pending = new CorrelationTable<ResponseHandler>();
  private readonly queue: QueuedSend[] = [];
  private publishScheduled = false;
  private waitingForSpace = false;
  private running = true;
  /** False once shutdown was sent: a request behind the shutdown frame would never be answered. */
  private accepting = true;
  private readonly notice: PartitionState = {
    topicSeq: 0,
    partition: 0,
    highWatermark: -1,
    logStartOffset: 0,
    logEndOffset: 0,
  };
  /** Told of every partition-state notice the worker sends (the router keeps the figures). */
  onPartitionState: (state: PartitionState) => void = () => undefined;
  private readonly visit: (kind: number, correlationId: number, at: number, length: number) => void;

  constructor(
    readonly workerIndex: number,
    requests: SharedArrayBuffer,
    responses: SharedArrayBuffer,
    private readonly options: WorkerLinkOptions,
    /** The worker's doorbell when it reads a ring from each of several acceptor threads (RingSet). */
    doorbell: SharedArrayBuffer | null = null,
  ) {
    this.writer = new RingWriter(requests, doorbell);
    this.reader = new RingReader(responses);
    this.requestBytes = Buffer.from(
      this.writer.bytes.buffer,
      this.writer.bytes.byteOffset,
      this.writer.bytes.byteLength,
    );
    this.responseBytes = Buffer.from(
      this.reader.bytes.buffer,
      this.reader.bytes.byteOffset,
      this.reader.bytes.byteLength,
    );
    this.visit = (kind, correlationId, at, length) => {
      if (correlationId === 0) {
        // Unasked: a replica's figures moved (the only kind a worker sends without a request).
        if (kind !== MessageKind.PartitionState) {
          assertionFailed(`worker ${this.workerIndex} sent unasked frame kind ${kind}`);
        }
        this.onPartitionState(readPartitionState(this.reader.view, at, this.notice));
        return;
      }
      const handler = this.pending.take(correlationId);
      if (handler === undefined) {
        assertionFailed(`worker ${this.workerIndex} answered unknown correlation id ${correlationId}`);
      }
      handler(kind, this.reader.view, this.responseBytes, at, length);
    };
  }

  /** Largest payload one frame can carry. */
  get payloadBytesMax(): number {
    return this.writer.payloadBytesMax;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get queuedSends(): number {
    return this.queue.length;
  }

  writerStats() {
    return this.writer.stats();
  }

  readerStats() {
    return this.reader.stats();
  }

  /**
   * Sends one request. `encode` writes exactly `payloadBytes` bytes (now, or later if the ring is full);
   * `onResponse` runs once with the worker's answer.
   */
  send(kind: number, payloadBytes: number, encode: PayloadEncoder, onResponse: ResponseHandler): SendOutcome {
    if (payloadBytes > this.writer.payloadBytesMax) return 'too_large';
    if (!this.running || !this.accepting) return 'overloaded';
    if (this.queue.length > 0 && this.queue.length >= this.options.queuedSendsMax) return 'overloaded';
    // The id is taken before the frame is written (the frame carries it), and given back if the ring is full
    // and the queue too.
    const correlationId = this.pending.add(onResponse);
    if (correlationId < 0) return 'overloaded';
    if (this.queue.length === 0 && this.tryWrite(kind, payloadBytes, encode, correlationId)) return 'sent';
    if (this.queue.length >= this.options.queuedSendsMax) {
      this.pending.take(correlationId);
      return 'overloaded';
    }
    this.queue.push({ kind, payloadBytes, encode, correlationId });
    this.waitForSpace();
    return 'queued';
  }

  /** Starts the response loop; resolves when `stop` was called and every answer arrived. */
  async run(): Promise<void> {
    while (this.running || this.pending.size > 0) {
      const count = this.reader.drain(this.visit, this.options.responsesPerDrainMax);
      this.reader.release();
      if (count === this.options.responsesPerDrainMax) {
        // More may be waiting: yield so that HTTP work interleaves with a long burst of answers.
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      await this.reader.waitAsync(this.running ? 1000 : 50);
    }
  }

  /** Refuses every later send (as overloaded); call right after sending the worker its shutdown frame. */
  refuseNewRequests(): void {
    this.accepting = false;
  }

  /** No new sends; `run` ends once the answers to everything sent have arrived. */
  stop(): void {
    this.running = false;
    this.publishNow();
    // The response loop may be asleep in a 1 s wait: wake it so that it sees `running` is false.
    this.reader.interrupt();
  }

  private tryWrite(
    kind: number,
    payloadBytes: number,
    encode: PayloadEncoder,
    correlationId: number,
  ): boolean {
    const at = this.writer.reserve(payloadBytes);
    if (at === ReserveFailure.full) return false;
    if (!(at >= 0)) assertionFailed(`reserve failed with ${at} for ${payloadBytes} bytes`);
    encode(this.requestBytes, this.writer.view, at);
    this.writer.commit(kind, correlationId, payloadBytes);
    this.schedulePublish();
    return true;
  }

  private schedulePublish(): void {
    if (this.publishScheduled) return;
    this.publishScheduled = true;
    setImmediate(this.publishNow);
  }

  private readonly publishNow = (): void => {
    this.publishScheduled = false;
    this.writer.publish();
  };

  private waitForSpace(): void {
    if (this.waitingForSpace) return;
    this.waitingForSpace = true;
    const head = this.queue[0];
    assert(head !== undefined, 'waitForSpace with an empty queue');
    void this.writer.waitForSpace(head.payloadBytes).then(() => {
      this.waitingForSpace = false;
      while (this.queue.length > 0) {
        const next = this.queue[0]!;
        if (!this.tryWrite(next.kind, next.payloadBytes, next.encode, next.correlationId)) break;
        this.queue.shift();
      }
      this.publishNow();
      if (this.queue.length > 0) this.waitForSpace();
    });
  }
}
