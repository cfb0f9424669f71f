// Every message layout round-trips through its own encoder and decoder, and the decoders of messages that come
// from other nodes refuse malformed bytes instead of throwing or reading past the frame.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  describeAnswerBytes,
  readDescribeAnswer,
  readPartitionState,
  writeDescribeAnswer,
  writePartitionState,
} from '../../src/messages/describe.js';
import {
  FETCH_ANSWER_HEADER_BYTES,
  readFetchAnswerHeader,
  readFetchDetail,
  readFetchRequest,
  writeFetchAnswerHeader,
  writeFetchDetail,
  writeFetchRequest,
} from '../../src/messages/fetch.js';
import {
  emptyProduceAnswer,
  encodeProduceRequest,
  type ProduceRecordVisitor,
  produceRequestBytes,
  readProduceAnswer,
  readProduceHeader,
  visitProduceRecords,
  writeProduceAnswer,
} from '../../src/messages/produce.js';
import {
  REPLICA_ANSWER_FIXED_BYTES,
  REPLICA_ENTRY_ANSWER_BYTES,
  readReplicaFetchRequest,
  replicaFetchRequestBytes,
  visitReplicaAnswer,
  writeReplicaAnswerEntry,
  writeReplicaAnswerHead,
  writeReplicaFetchRequest,
} from '../../src/messages/replica-fetch.js';
import { Status } from '../../src/messages/status.js';

function buffer(bytes: number): [Buffer, DataView] {
  const b = Buffer.alloc(bytes);
  return [b, new DataView(b.buffer, b.byteOffset, b.byteLength)];
}

describe('message layouts', () => {
  test('produce requests carry records, headers and producer fields exactly', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            key: fc.option(fc.string(), { nil: null }),
            value: fc.option(fc.uint8Array({ maxLength: 50 }), { nil: null }),
            headers: fc.option(
              fc.array(fc.tuple(fc.string({ maxLength: 5 }), fc.option(fc.string(), { nil: null }))),
              { nil: null },
            ),
            timestampMs: fc.integer({ min: 0, max: 2 ** 45 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        fc.option(fc.record({ producerId: fc.nat(), producerEpoch: fc.nat(32767), baseSequence: fc.nat() }), {
          nil: null,
        }),
        (records, producer) => {
          const size = produceRequestBytes(records);
          const [b, v] = buffer(size + 8);
          const fields = producer === null ? null : { ...producer };
          const header = { topicSeq: 7, partition: 3, acks: 2 as const, producer: fields, timeoutMs: 1500 };
          assert.equal(encodeProduceRequest(b, v, 8, header, records), size);
          assert.deepEqual(readProduceHeader(v, 8), { ...header, recordCount: records.length });
          const seen: { headers: unknown[] }[] = [];
          const visitor: ProduceRecordVisitor = {
            onRecord: (ts, ka, kl, va, vl) =>
              seen.push({
                timestampMs: ts,
                key: kl < 0 ? null : b.toString('utf8', ka, ka + kl),
                value: vl < 0 ? null : new Uint8Array(b.subarray(va, va + vl)),
                headers: [],
              } as { headers: unknown[] }),
            onHeader: (ka, kl, va, vl) =>
              seen
                .at(-1)!
                .headers.push([
                  b.toString('utf8', ka, ka + kl),
                  vl < 0 ? null : b.toString('utf8', va, va + vl),
                ]),
            onRecordEnd: () => undefined,
          };
          assert.ok(visitProduceRecords(v, 8, size, visitor));
          assert.deepEqual(
            seen,
            records.map((r) => ({
              ...r,
              value: r.value === null ? null : new Uint8Array(r.value),
              headers: r.headers ?? [],
            })),
          );
          assert.equal(visitProduceRecords(v, 8, size - 1, visitor), false, 'a cut frame is refused');
        },
      ),
      { numRuns: 200 },
    );
  });

  test('produce, fetch and describe answers and partition state notices round-trip', () => {
    const [b, v] = buffer(400);
    const answer = {
      status: Status.OutOfOrderSequence,
      duplicate: true,
      baseOffset: 9,
      logEndOffset: 12,
      highWatermark: -1,
      logStartOffset: 2,
      detail: 41,
    };
    writeProduceAnswer(v, 4, answer);
    assert.deepEqual(readProduceAnswer(v, 4, 48, emptyProduceAnswer()), answer);
    const request = {
      topicSeq: 1,
      partition: 2,
      offset: 2 ** 40,
      maxBytes: 1 << 20,
      waitMs: 500,
      maxOffset: -1,
    };
    writeFetchRequest(v, 0, request);
    assert.deepEqual(readFetchRequest(v, 0), request);
    const head = {
      status: Status.CorruptData,
      logStartOffset: 1,
      highWatermark: 5,
      logEndOffset: 8,
      fetchOffset: 3,
    };
    writeFetchAnswerHeader(v, 0, head);
    writeFetchDetail(v, 0, 3, 4);
    const blank = { status: Status.Ok, logStartOffset: 0, highWatermark: 0, logEndOffset: 0, fetchOffset: 0 };
    assert.deepEqual(readFetchAnswerHeader(v, 0, 56, blank), head);
    assert.deepEqual(readFetchDetail(b.subarray(FETCH_ANSWER_HEADER_BYTES)), [3, 4]);
    const describe = {
      status: Status.Ok,
      role: 'leader' as const,
      leaderEpoch: 4,
      logStartOffset: 0,
      logEndOffset: 10,
      highWatermark: 9,
      durableEndOffset: 10,
      sizeBytes: 1234,
      segmentCount: 2,
      replicas: [
        { id: 'b1', logEndOffset: 10 },
        { id: 'broker-two', logEndOffset: -1 },
      ],
    };
    const size = describeAnswerBytes(describe.replicas);
    writeDescribeAnswer(b, v, 10, describe);
    assert.deepEqual(readDescribeAnswer(b, v, 10, size), describe);
    assert.equal(readDescribeAnswer(b, v, 10, size - 3), null, 'a cut answer is refused');
    const state = { topicSeq: 3, partition: 1, highWatermark: 7, logStartOffset: 0, logEndOffset: 9 };
    writePartitionState(v, 0, state);
    assert.deepEqual(readPartitionState(v, 0, { ...state, topicSeq: 0 }), state);
  });

  test('replica fetch requests and answers round-trip; malformed ones are refused, never thrown', () => {
    const entries = [
      {
        topicSeq: 1,
        partition: 0,
        kind: 'fetch' as const,
        leaderEpoch: 3,
        epoch: 2,
        maxBytes: 1000,
        fetchOffset: 77,
      },
      {
        topicSeq: 2,
        partition: 5,
        kind: 'epoch_query' as const,
        leaderEpoch: 3,
        epoch: 1,
        maxBytes: 0,
        fetchOffset: 0,
      },
    ];
    const request = { waitMs: 500, maxBytes: 1 << 20, followerId: 'node-b', entries };
    const size = replicaFetchRequestBytes('node-b', 2);
    const [b, v] = buffer(size);
    writeReplicaFetchRequest(b, v, 0, request);
    assert.deepEqual(readReplicaFetchRequest(b, v, 0, size), request);
    assert.equal(readReplicaFetchRequest(b, v, 0, size - 1), null);

    const records = Buffer.from('batches');
    const answerSize = REPLICA_ANSWER_FIXED_BYTES + 2 * REPLICA_ENTRY_ANSWER_BYTES + records.byteLength;
    const [ab, av] = buffer(answerSize);
    writeReplicaAnswerHead(av, 0, 2);
    writeReplicaAnswerEntry(
      av,
      4,
      { topicSeq: 1, partition: 0, outcome: 0, epoch: 0, a: 80, b: 0, c: 84 },
      records.byteLength,
    );
    records.copy(ab, 4 + REPLICA_ENTRY_ANSWER_BYTES);
    writeReplicaAnswerEntry(
      av,
      4 + REPLICA_ENTRY_ANSWER_BYTES + records.byteLength,
      { topicSeq: 2, partition: 5, outcome: 5, epoch: 1, a: 40, b: 0, c: 0 },
      0,
    );
    const seen: unknown[] = [];
    const ok = visitReplicaAnswer(ab, av, 0, answerSize, (e) =>
      seen.push({ ...e, records: Buffer.from(e.records).toString() }),
    );
    assert.ok(ok);
    assert.deepEqual(seen, [
      { topicSeq: 1, partition: 0, outcome: 0, epoch: 0, a: 80, b: 0, c: 84, records: 'batches' },
      { topicSeq: 2, partition: 5, outcome: 5, epoch: 1, a: 40, b: 0, c: 0, records: '' },
    ]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
        const g = Buffer.from(garbage);
        const gv = new DataView(g.buffer, g.byteOffset, g.byteLength);
        readReplicaFetchRequest(g, gv, 0, g.byteLength);
        visitReplicaAnswer(g, gv, 0, g.byteLength, () => undefined);
        readDescribeAnswer(g, gv, 0, g.byteLength);
      }),
      { numRuns: 2000 },
    );
  });
});
