// Idempotent produce over the Kafka port, with hand-built record batches (so that a retry is exactly the same
// bytes, as a client's retry is): a repeated batch is answered with its first offsets and not appended again, a
// sequence that skips ahead is refused with OUT_OF_ORDER_SEQUENCE_NUMBER, and nothing of a refused batch is
// written. The producer id comes from the HTTP API (POST /producers): one machinery behind both doors.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeMessage, encodeMessage } from '../../src/core/kafka/codec.js';
import { crc32c } from '../../src/core/kafka/crc32c.js';
import { kafkaErrors } from '../../src/core/kafka/error-codes.js';
import {
  type ProduceRequest,
  ProduceRequestSpec,
  type ProduceResponse,
  ProduceResponseSpec,
} from '../../src/core/kafka/messages.generated.js';
import { KafkaReader, KafkaWriter } from '../../src/core/kafka/primitives.js';
import { BatchWriter } from '../../src/core/log/record-batch.js';
import { type BrokerProcess, killBroker, spawnBroker } from '../broker/process.js';

const PRODUCE_VERSION = 7;
let broker: BrokerProcess;
let dataDir: string;
let socket: Socket;
let correlationId = 0;
let pending: ((frame: Buffer) => void)[] = [];

/** Timestamps of now: a batch far in the past would roll the segment (segment age), splitting reads. */
const nowMs = Date.now();

function batch(producerId: number, baseSequence: number, values: string[]): Uint8Array {
  const writer = new BatchWriter(1024, 1 << 20);
  writer.beginBatch({ producerId, producerEpoch: 0, baseSequence });
  for (const v of values) writer.addRecord(nowMs, null, new TextEncoder().encode(v));
  writer.endBatch(crc32c);
  return writer.bytes().slice();
}

async function produce(records: Uint8Array): Promise<{ errorCode: number; baseOffset: number }> {
  const writer = new KafkaWriter();
  writer.int32(0);
  writer.int16(0);
  writer.int16(PRODUCE_VERSION);
  writer.int32(++correlationId);
  writer.nullableString(false, 'raw');
  const request: ProduceRequest = {
    transactionalId: null,
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: 'idem', partitionData: [{ index: 0, records }] }],
  };
  encodeMessage(ProduceRequestSpec, PRODUCE_VERSION, request, writer);
  writer.patchInt32(0, writer.pos - 4);
  const answered = new Promise<Buffer>((resolve) => pending.push(resolve));
  socket.write(Buffer.from(writer.finish()));
  const frame = await answered;
  const decoded = decodeMessage<ProduceResponse>(
    ProduceResponseSpec,
    PRODUCE_VERSION,
    new KafkaReader(frame, 4),
  );
  assert.equal(decoded.kind, 'ok');
  if (decoded.kind !== 'ok') throw new Error('unreachable');
  const p = decoded.value.responses[0]!.partitionResponses[0]!;
  return { errorCode: p.errorCode, baseOffset: p.baseOffset };
}

async function http(method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${broker.base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return response.json();
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'kafka-idem-'));
  broker = await spawnBroker(['--data-dir', dataDir, '--kafka-port', '0', '--threads', '1']);
  await http('POST', '/topics/idem', { num_partitions: 1 });
  socket = await new Promise<Socket>((resolve) => {
    const s: Socket = connect(broker.kafkaPort, '127.0.0.1', () => resolve(s));
  });
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
      const size = buffered.readInt32BE(0);
      pending.shift()?.(buffered.subarray(4, 4 + size));
      buffered = buffered.subarray(4 + size);
    }
  });
});

after(async () => {
  socket?.destroy();
  pending = [];
  if (broker !== undefined) await killBroker(broker, 'SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('idempotent produce over the Kafka port', () => {
  test('a retried batch gets its first offsets back and is not appended twice; a gap is refused', async () => {
    const { producer_id: producerId } = await http('POST', '/producers');
    const first = batch(producerId, 0, ['a', 'b']);
    assert.deepEqual(await produce(first), { errorCode: 0, baseOffset: 0 });
    // The same bytes again, as a client retries after a lost answer.
    assert.deepEqual(await produce(batch(producerId, 0, ['a', 'b'])), { errorCode: 0, baseOffset: 0 });
    assert.deepEqual(await produce(batch(producerId, 2, ['c'])), { errorCode: 0, baseOffset: 2 });
    const gap = await produce(batch(producerId, 7, ['x']));
    assert.equal(gap.errorCode, kafkaErrors.OUT_OF_ORDER_SEQUENCE_NUMBER.code);
    const consumed = await http('GET', '/topics/idem/partitions/0/consume?offset=0');
    assert.deepEqual(
      consumed.messages.map((m: { value: string }) => m.value),
      ['a', 'b', 'c'],
    );
    assert.equal(consumed.high_watermark, 3);
  });

  test('a batch whose CRC-32C does not match is refused as CORRUPT_MESSAGE and nothing is written', async () => {
    const damaged = batch(-1, -1, ['bad']);
    damaged[damaged.length - 1]! ^= 0xff;
    assert.equal((await produce(damaged)).errorCode, kafkaErrors.CORRUPT_MESSAGE.code);
    const consumed = await http('GET', '/topics/idem/partitions/0/consume?offset=0');
    assert.equal(consumed.high_watermark, 3);
  });
});
