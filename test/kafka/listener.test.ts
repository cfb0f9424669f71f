// The Kafka listener's framing on a real socket, with stand-in handlers: frames split at any byte or several in
// one chunk are cut right, responses leave in request order however long each took, a version outside the
// range gets KIP-511's answer for ApiVersions and a closed connection otherwise, and a frame above the bound
// closes the connection before it is buffered.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { ApiKey } from '../../src/core/kafka/api-keys.js';
import type { RequestHeader } from '../../src/core/kafka/header.js';
import { type HandlerOutcome, KafkaListener } from '../../src/kafka/listener.js';

let listener: KafkaListener;
let handled = 0;

function frame(apiKey: number, version: number, correlationId: number, body = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(10);
  header.writeInt16BE(apiKey, 0);
  header.writeInt16BE(version, 2);
  header.writeInt32BE(correlationId, 4);
  header.writeInt16BE(-1, 8);
  const size = Buffer.alloc(4);
  size.writeInt32BE(header.length + body.length);
  return Buffer.concat([size, header, body]);
}

/** Reads `count` response frames (size-prefixed) and returns their correlation ids, or null once closed. */
function readResponses(socket: Socket, count: number): Promise<number[] | null> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    const ids: number[] = [];
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
        ids.push(buffered.readInt32BE(4));
        buffered = buffered.subarray(4 + buffered.readInt32BE(0));
      }
      if (ids.length === count) resolve(ids);
    });
    socket.on('close', () => resolve(ids.length === count ? ids : null));
  });
}

before(async () => {
  listener = new KafkaListener(
    {
      served: [ApiKey.ApiVersions, ApiKey.Metadata],
      async handle(header: RequestHeader): Promise<HandlerOutcome> {
        handled++;
        // Earlier requests take longer: only ordering by the listener puts the answers back in order.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 50 - header.correlationId * 5)));
        const out = Buffer.alloc(8);
        out.writeInt32BE(4, 0);
        out.writeInt32BE(header.correlationId, 4);
        return { kind: 'frame', frame: out };
      },
    },
    {
      host: '127.0.0.1',
      port: 0,
      requestBytesMax: 1024,
      inFlightMax: 4,
      connectionsMax: 10,
      log: pino({ level: 'silent' }),
    },
  );
  await listener.start();
});

after(() => listener.close());

function open(): Promise<Socket> {
  return new Promise((resolve) => {
    const socket: Socket = connect(listener.port, '127.0.0.1', () => resolve(socket));
  });
}

describe('Kafka listener framing', () => {
  test('pipelined requests, split at every byte, are answered in request order', async () => {
    const socket = await open();
    const responses = readResponses(socket, 10);
    const bytes = Buffer.concat(Array.from({ length: 10 }, (_, i) => frame(ApiKey.Metadata, 1, i)));
    for (let i = 0; i < bytes.length; i++) socket.write(bytes.subarray(i, i + 1));
    assert.deepEqual(await responses, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    socket.destroy();
  });

  test('an ApiVersions version above the range gets UNSUPPORTED_VERSION and the list; other versions close', async () => {
    const socket = await open();
    const answer = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    socket.write(frame(ApiKey.ApiVersions, 99, 7));
    const bytes = await answer;
    assert.equal(bytes.readInt32BE(4), 7);
    assert.equal(bytes.readInt16BE(8), 35, 'UNSUPPORTED_VERSION');
    assert.equal(bytes.readInt32BE(10), 2, 'the two served APIs');
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(frame(ApiKey.Metadata, 99, 8));
    await closed;
  });

  test('a frame above the bound closes the connection before its body is read; the listener serves on', async () => {
    const before = handled;
    const socket = await open();
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const size = Buffer.alloc(4);
    size.writeInt32BE(1025);
    socket.write(size);
    await closed;
    assert.equal(handled, before);
    const again = await open();
    const responses = readResponses(again, 1);
    again.write(frame(ApiKey.Metadata, 1, 3));
    assert.deepEqual(await responses, [3]);
    again.destroy();
  });
});
