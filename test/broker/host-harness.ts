// Test helper: a partition worker's host running on this thread over a given Disk (the simulated one, to
// inject faults), with the acceptor's end of its rings, so that tests send produce, fetch and control frames
// exactly as the acceptor does and see the answers it would.
import { PartitionHost } from '../../src/broker/partition-host.js';
import {
  encodeProduceRequest,
  FrameKind,
  fetchRequestBytes,
  produceRequestBytes,
  type WireStatus,
  writeFetchRequest,
} from '../../src/broker/wire.js';
import { WorkerLink } from '../../src/broker/worker-link.js';
import { createWorkerStats, StatSlot } from '../../src/broker/worker-stats.js';
import { forEachRecord } from '../../src/core/log/record-batch.js';
import { createRingPair } from '../../src/ring/spsc-ring.js';
import type { Disk } from '../../src/storage/disk.js';

export interface ProduceAnswer {
  readonly status: WireStatus;
  readonly baseOffset: number;
}

export interface FetchAnswer {
  readonly status: WireStatus;
  readonly highWatermark: number;
  /** Values of the records returned, by offset. */
  readonly records: Map<number, string>;
}

export class HostHarness {
  readonly stats: Float64Array;
  /** The lines the worker logged. */
  readonly logged: string[] = [];
  private readonly link: WorkerLink;
  private readonly runs: Promise<unknown>[];
  private nextSlot = 1;

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
    const host = new PartitionHost(
      {
        workerIndex: 0,
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
      },
      disk,
      (line) => this.logged.push(line),
    );
    this.link = new WorkerLink(0, rings.requests, rings.responses, {
      queuedSendsMax: 1000,
      responsesPerDrainMax: 1000,
    });
    this.runs = [host.run(), this.link.run()];
  }

  get offlinePartitions(): number {
    return this.stats[StatSlot.partitionsStorageOffline] ?? 0;
  }

  control(request: Record<string, unknown>): Promise<any> {
    const payload = Buffer.from(JSON.stringify(request), 'utf8');
    return new Promise((resolve) => {
      this.link.send(
        FrameKind.Control,
        payload.byteLength,
        (bytes, _view, at) => {
          bytes.set(payload, at);
        },
        (_kind, _view, bytes, at, length) => resolve(JSON.parse(bytes.toString('utf8', at, at + length))),
      );
    });
  }

  /** Opens a partition of topic `topic` and returns its slot and the worker's answer. */
  async open(topic: string, partition: number, segmentBytes: number): Promise<{ slot: number; answer: any }> {
    const slot = this.nextSlot++;
    const answer = await this.control({
      op: 'open',
      slot,
      topic,
      partition,
      topicId: `id-${topic}`,
      segmentBytes,
      retentionMs: -1,
      retentionBytes: -1,
    });
    return { slot, answer };
  }

  produce(slot: number, values: readonly string[]): Promise<ProduceAnswer> {
    const records = values.map((value) => ({ key: null, value, headers: null, timestampMs: Date.now() }));
    return new Promise((resolve) => {
      this.link.send(
        FrameKind.Produce,
        produceRequestBytes(records),
        (bytes, view, at) => {
          encodeProduceRequest(bytes, view, at, slot, 2, records);
        },
        (_kind, view, _bytes, at) =>
          resolve({ status: view.getUint8(at) as WireStatus, baseOffset: view.getFloat64(at + 8, true) }),
      );
    });
  }

  fetch(slot: number, offset: number, maxBytes = 1 << 16): Promise<FetchAnswer> {
    return new Promise((resolve) => {
      this.link.send(
        FrameKind.Fetch,
        fetchRequestBytes,
        (_bytes, view, at) => writeFetchRequest(view, at, slot, offset, maxBytes, -1),
        (_kind, view, bytes, at, length) => {
          const status = view.getUint8(at) as WireStatus;
          const records = new Map<number, string>();
          if (status === 0) {
            forEachRecord(
              bytes.subarray(at + 32, at + length),
              (r) => {
                records.set(r.offset, Buffer.from(r.value!).toString('utf8'));
              },
              { fromOffset: offset },
            );
          }
          resolve({ status, highWatermark: view.getFloat64(at + 16, true), records });
        },
      );
    });
  }

  /** Every record from offset 0 up to the high watermark. */
  async readAll(slot: number): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    let offset = 0;
    for (;;) {
      const answer = await this.fetch(slot, offset);
      if (answer.status !== 0 || answer.records.size === 0) return out;
      for (const [o, v] of answer.records) out.set(o, v);
      offset = Math.max(...answer.records.keys()) + 1;
    }
  }

  /** Shuts the worker down (its logs closed) and returns its answer (`clean`: every log closed at its end). */
  async stop(): Promise<any> {
    const answered = this.control({ op: 'shutdown' });
    this.link.refuseNewRequests();
    const answer = await answered;
    this.link.stop();
    await Promise.all(this.runs);
    return answer;
  }
}
