// Test helper: one partition worker (src/broker/partition-worker.ts) running on this thread over a given Disk
// (the simulated one, to inject faults), with the acceptor's end of its rings and the control thread's end of
// its metadata port, so that tests hand it topics as the control thread would and send produce, fetch,
// describe and control messages exactly as the acceptor does. The worker is its node's only broker: every
// partition is led here with an ISR of one.
import { MessageChannel } from 'node:worker_threads';
import { DEFAULT_REPLICATION_OPTIONS, PartitionWorker } from '../../src/broker/partition-worker.js';
import { WorkerLink } from '../../src/broker/worker-link.js';
import { createWorkerStats, StatSlot } from '../../src/broker/worker-stats.js';
import type { ControlToWorker, WorkerToControl } from '../../src/cluster/worker-protocol.js';
import { forEachRecord } from '../../src/core/log/record-batch.js';
import {
  DESCRIBE_REQUEST_BYTES,
  type DescribeAnswer,
  readDescribeAnswer,
} from '../../src/messages/describe.js';
import {
  FETCH_ANSWER_HEADER_BYTES,
  FETCH_REQUEST_BYTES,
  readFetchAnswerHeader,
  writeFetchRequest,
} from '../../src/messages/fetch.js';
import { MessageKind } from '../../src/messages/kinds.js';
import {
  emptyProduceAnswer,
  encodeProduceRequest,
  produceRequestBytes,
  readProduceAnswer,
} from '../../src/messages/produce.js';
import { Status } from '../../src/messages/status.js';
import type { TopicMetadata } from '../../src/metadata/types.js';
import { createRingPair } from '../../src/ring/spsc-ring.js';
import type { Disk } from '../../src/storage/disk.js';

export interface ProduceAnswer {
  readonly status: Status;
  readonly baseOffset: number;
  readonly duplicate: boolean;
  readonly detail: number;
}

export interface FetchAnswer {
  readonly status: Status;
  readonly highWatermark: number;
  /** Values of the records returned, by offset. */
  readonly records: Map<number, string>;
}

/** A partition as the tests name it. */
export interface PartitionRef {
  readonly topicSeq: number;
  readonly partition: number;
}

const nodeId = 'n1';

export class HostHarness {
  readonly stats: Float64Array;
  /** The lines the worker logged. */
  readonly logged: string[] = [];
  private readonly link: WorkerLink;
  private readonly runs: Promise<unknown>[];
  private readonly port: MessageChannel['port2'];
  private metadataVersion = 0;
  private readonly topics = new Map<string, TopicMetadata>();
  private stopped: Promise<any> | null = null;

  constructor(
    disk: Disk,
    readonly dataDir = '/data',
    options: {
      syncIntervalMs?: number;
      repairIntervalMs?: number;
      segmentFdsMax?: number;
      cleanShutdown?: boolean;
    } = {},
  ) {
    const rings = createRingPair({ capacityBytes: 1 << 20 });
    const stats = createWorkerStats();
    this.stats = new Float64Array(stats);
    const channel = new MessageChannel();
    this.port = channel.port2;
    this.port.on('message', (message: WorkerToControl) => {
      // One broker, ISR of one: the worker never needs an ISR change; refuse any plainly.
      const answer: ControlToWorker = {
        type: 'alter_isr_result',
        requestId: message.requestId,
        refusals: null,
        failure: 'the harness has no metadata leader',
      };
      this.port.postMessage(answer);
    });
    const worker = new PartitionWorker(
      {
        workerIndex: 0,
        workerCount: 1,
        nodeId,
        dataHost: '127.0.0.1',
        dataPort: 0,
        requests: rings.requests,
        responses: rings.responses,
        stats,
        dataDir,
        syncIntervalMs: options.syncIntervalMs ?? 0,
        indexIntervalBytes: 128,
        framesPerBatchMax: 64,
        retentionCheckIntervalMs: 60_000,
        repairIntervalMs: options.repairIntervalMs ?? 10,
        segmentFdsMax: options.segmentFdsMax ?? 64,
        cleanShutdown: options.cleanShutdown ?? false,
        replication: DEFAULT_REPLICATION_OPTIONS,
      },
      disk,
      channel.port1,
      (line) => this.logged.push(line),
    );
    this.link = new WorkerLink(0, rings.requests, rings.responses, {
      queuedSendsMax: 1000,
      responsesPerDrainMax: 1000,
    });
    this.runs = [worker.run().then(() => worker.finish()), this.link.run()];
    this.postMetadata(true);
  }

  get offlinePartitions(): number {
    return this.stats[StatSlot.partitionsStorageOffline] ?? 0;
  }

  private postMetadata(full: boolean, changed: readonly TopicMetadata[] = []): void {
    const message: ControlToWorker = {
      type: 'metadata',
      version: ++this.metadataVersion,
      full,
      brokers: [
        {
          id: nodeId,
          httpHost: '127.0.0.1',
          httpPort: 0,
          clusterHost: '127.0.0.1',
          clusterPort: 0,
          rack: '',
          version: 'test',
          fenced: false,
          shuttingDown: false,
          dataPorts: [0],
        } as never,
      ],
      topics: full ? [...this.topics.values()] : changed,
      deletedTopicIds: [],
    };
    this.port.postMessage(message);
  }

  control(request: Record<string, unknown>): Promise<any> {
    const payload = Buffer.from(JSON.stringify(request), 'utf8');
    return new Promise((resolve) => {
      this.link.send(
        MessageKind.Control,
        payload.byteLength,
        (bytes, _view, at) => {
          bytes.set(payload, at);
        },
        (_kind, _view, bytes, at, length) => resolve(JSON.parse(bytes.toString('utf8', at, at + length))),
      );
    });
  }

  /**
   * Gives the worker topic `topic` with partitions 0..`partition` (added to as later partitions are opened),
   * waits until partition `partition` is served, and returns how to name it and its figures.
   */
  async open(
    topic: string,
    partition: number,
    segmentBytes: number,
  ): Promise<{ ref: PartitionRef; answer: DescribeAnswer }> {
    const existing = this.topics.get(topic);
    const topicSeq = existing?.topicSeq ?? this.topics.size + 1;
    const count = Math.max(existing?.numPartitions ?? 0, partition + 1);
    const meta: TopicMetadata = {
      name: topic,
      topicSeq,
      topicId: `id-${topic}`,
      numPartitions: count,
      replicationFactor: 1,
      rackAwareness: false,
      config: {
        retentionMs: -1,
        retentionBytes: -1,
        segmentBytes,
        minInsyncReplicas: 1,
        cleanupPolicy: 'delete',
        uncleanLeaderElection: false,
      },
      partitions: Array.from({ length: count }, (_, p) => ({
        partition: p,
        leader: nodeId,
        leaderEpoch: 1,
        partitionEpoch: 1,
        replicas: [nodeId],
        isr: [nodeId],
      })),
      createdAtMs: 0,
    };
    this.topics.set(topic, meta);
    this.postMetadata(false, [meta]);
    const ref = { topicSeq, partition };
    const deadline = Date.now() + 5000;
    for (;;) {
      const answer = await this.describe(ref);
      if (answer.status !== Status.UnknownPartition) return { ref, answer };
      if (Date.now() > deadline)
        throw new Error(`partition ${topic}-${partition} was not taken up by the worker`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  /** Takes up `count` partitions of a new topic in one metadata message; resolves once the last is known. */
  async openMany(topic: string, count: number, segmentBytes: number): Promise<PartitionRef[]> {
    await this.open(topic, count - 1, segmentBytes);
    return Array.from({ length: count }, (_, partition) => ({
      topicSeq: this.topics.get(topic)!.topicSeq,
      partition,
    }));
  }

  describe(ref: PartitionRef): Promise<DescribeAnswer> {
    return new Promise((resolve) => {
      this.link.send(
        MessageKind.Describe,
        DESCRIBE_REQUEST_BYTES,
        (_bytes, view, at) => {
          view.setUint32(at, ref.topicSeq, true);
          view.setUint32(at + 4, ref.partition, true);
        },
        (_kind, view, bytes, at, length) => {
          const answer = readDescribeAnswer(bytes, view, at, length);
          if (answer === null) throw new Error('a describe answer that does not parse');
          resolve(answer);
        },
      );
    });
  }

  produce(
    ref: PartitionRef,
    values: readonly string[],
    producer: { producerId: number; producerEpoch: number; baseSequence: number } | null = null,
  ): Promise<ProduceAnswer> {
    const records = values.map((value) => ({ key: null, value, headers: null, timestampMs: Date.now() }));
    const header = {
      topicSeq: ref.topicSeq,
      partition: ref.partition,
      acks: 2 as const,
      producer,
      timeoutMs: 30_000,
    };
    return new Promise((resolve) => {
      this.link.send(
        MessageKind.Produce,
        produceRequestBytes(records),
        (bytes, view, at) => {
          encodeProduceRequest(bytes, view, at, header, records);
        },
        (_kind, view, _bytes, at, length) => {
          const answer = readProduceAnswer(view, at, length, emptyProduceAnswer());
          resolve({
            status: answer.status,
            baseOffset: answer.baseOffset,
            duplicate: answer.duplicate,
            detail: answer.detail,
          });
        },
      );
    });
  }

  fetch(ref: PartitionRef, offset: number, maxBytes = 1 << 16, maxOffset = -1): Promise<FetchAnswer> {
    return new Promise((resolve) => {
      this.link.send(
        MessageKind.Fetch,
        FETCH_REQUEST_BYTES,
        (_bytes, view, at) => writeFetchRequest(view, at, { ...ref, offset, maxBytes, waitMs: 0, maxOffset }),
        (_kind, view, bytes, at, length) => {
          const header = readFetchAnswerHeader(view, at, length, {
            status: 0,
            logStartOffset: 0,
            highWatermark: 0,
            logEndOffset: 0,
            fetchOffset: 0,
          });
          const records = new Map<number, string>();
          if (header.status === Status.Ok) {
            forEachRecord(
              bytes.subarray(at + FETCH_ANSWER_HEADER_BYTES, at + length),
              (r) => {
                records.set(r.offset, Buffer.from(r.value!).toString('utf8'));
              },
              { fromOffset: offset },
            );
          }
          resolve({ status: header.status, highWatermark: header.highWatermark, records });
        },
      );
    });
  }

  /** Every record from offset 0 up to the high watermark. */
  async readAll(ref: PartitionRef): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    let offset = 0;
    for (;;) {
      const answer = await this.fetch(ref, offset);
      if (answer.status !== Status.Ok || answer.records.size === 0) return out;
      for (const [o, v] of answer.records) out.set(o, v);
      offset = Math.max(...answer.records.keys()) + 1;
    }
  }

  /** Shuts the worker down (its logs closed) and returns its answer (`clean`: every log closed at its end). */
  stop(): Promise<any> {
    this.stopped ??= (async () => {
      const answered = new Promise<any>((resolve) => {
        this.link.send(
          MessageKind.Shutdown,
          0,
          () => undefined,
          (_kind, _view, bytes, at, length) => resolve(JSON.parse(bytes.toString('utf8', at, at + length))),
        );
      });
      this.link.refuseNewRequests();
      const answer = await answered;
      this.link.stop();
      await Promise.all(this.runs);
      this.port.close();
      return answer;
    })();
    return this.stopped;
  }
}
