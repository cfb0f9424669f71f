// Test helper: a bare Kafka connection to a broker's Kafka port, requests encoded and answers decoded with the
// broker's own codec (non-flexible versions, request header v1), answers read in order, and the close seen.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { ApiKey } from '../../src/core/kafka/api-keys.js';
import { decodeMessage, encodeMessage } from '../../src/core/kafka/codec.js';
import { messageSpecs } from '../../src/core/kafka/messages.generated.js';
import { KafkaReader, KafkaWriter } from '../../src/core/kafka/primitives.js';
import { encodePlain } from '../../src/core/kafka/sasl.js';

export interface SaslAnswer {
  errorCode: number;
  errorMessage: string | null;
  sessionLifetimeMs: number;
}

/** A bare Kafka connection: requests encoded with the broker's own codec, answers read in order. */
export class RawConnection {
  private readonly socket: Socket;
  private buffered = Buffer.alloc(0);
  private readonly waiting: ((frame: Buffer | null) => void)[] = [];
  private correlationId = 0;
  closed = false;
  readonly closedAt: Promise<void>;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 4 && this.buffered.length >= 4 + this.buffered.readInt32BE(0)) {
        const size = this.buffered.readInt32BE(0);
        const frame = this.buffered.subarray(4, 4 + size);
        this.buffered = this.buffered.subarray(4 + size);
        this.waiting.shift()?.(frame);
      }
    });
    this.closedAt = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closed = true;
        for (const w of this.waiting.splice(0)) w(null);
        resolve();
      }),
    );
    this.socket.on('error', () => undefined);
  }

  /** Sends a request of a non-flexible version (request header v1) and returns the answer, or null on close. */
  async request<T>(api: keyof typeof messageSpecs, version: number, body: unknown): Promise<T | null> {
    const specs = messageSpecs[api];
    const writer = new KafkaWriter();
    writer.int32(0);
    writer.int16(ApiKey[api]);
    writer.int16(version);
    writer.int32(++this.correlationId);
    writer.nullableString(false, 'raw');
    encodeMessage(specs.request, version, body as never, writer);
    writer.patchInt32(0, writer.pos - 4);
    const answered = new Promise<Buffer | null>((resolve) => this.waiting.push(resolve));
    this.socket.write(Buffer.from(writer.finish()));
    const frame = await answered;
    if (frame === null) return null;
    const reader = new KafkaReader(frame);
    assert.equal(reader.int32(), this.correlationId);
    const decoded = decodeMessage<T>(specs.response, version, reader);
    assert.equal(decoded.kind, 'ok');
    return (decoded as { value: T }).value;
  }

  /** SaslHandshake v1 PLAIN, then SaslAuthenticate (v1: with the session lifetime). */
  async authenticate(username: string, password: string): Promise<SaslAnswer | null> {
    const hs = await this.request<{ errorCode: number }>('SaslHandshake', 1, { mechanism: 'PLAIN' });
    assert.equal(hs?.errorCode, 0);
    return this.request<SaslAnswer>('SaslAuthenticate', 1, {
      authBytes: encodePlain('', username, password),
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
