// The idempotent-producer state of one partition replica (Kafka's ProducerStateManager): per producer id, its
// current epoch and the metadata of its last `batchesPerProducer` batches (first and last sequence, first and
// last offset). A leader checks every idempotent produce against it before appending: a retry of a batch it
// holds is answered with the original offsets instead of being written again; a sequence that does not follow
// the last one is refused; an older epoch is fenced. Every replica updates it from every batch it appends
// (leader or follower) and rebuilds it by replaying its log after a restart or a truncation, so a new leader
// holds the same state as the old one for everything below its log end.
//
// Sequences are per producer and partition, 31-bit, and wrap from 2^31 - 1 to 0 as in Kafka. A producer
// unknown to the partition must start at sequence 0 (its state may also have been expired: the client then
// asks for a new producer id). At most `producersMax` producers are held; past it the one idle longest is
// dropped (its next batch is then refused as unknown unless it starts over at 0 with a new id).
// Pure: no I/O, no clock (times are inputs). Owned by one thread.
import { assert } from '../assert.js';

export const SEQUENCE_MAX = 0x7fff_ffff;

export interface ProducerBatch {
  readonly firstSequence: number;
  readonly lastSequence: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
}

export interface ProducerEntry {
  readonly producerId: number;
  readonly epoch: number;
  /** Oldest first, at most `batchesPerProducer`. */
  readonly batches: readonly ProducerBatch[];
  readonly lastSeenMs: number;
}

export type SequenceCheck =
  /** Append it. */
  | { readonly kind: 'ok' }
  /** Already in the log: answer with these offsets and append nothing. */
  | { readonly kind: 'duplicate'; readonly firstOffset: number; readonly lastOffset: number }
  /** The batch does not follow the last one held for this producer. */
  | { readonly kind: 'out_of_order'; readonly expectedSequence: number; readonly gotSequence: number }
  /** An epoch older than the producer's current one: a zombie instance. */
  | { readonly kind: 'fenced_epoch'; readonly currentEpoch: number }
  /** Nothing held for this producer, and the batch does not start at sequence 0. */
  | { readonly kind: 'unknown_producer' };

export interface ProducerStateLimits {
  /** Kafka keeps the last 5 batches per producer (max.in.flight.requests.per.connection for idempotence). */
  readonly batchesPerProducer: number;
  readonly producersMax: number;
}

export const DEFAULT_PRODUCER_STATE_LIMITS: ProducerStateLimits = {
  batchesPerProducer: 5,
  producersMax: 10_000,
};

export function nextSequence(sequence: number): number {
  return sequence === SEQUENCE_MAX ? 0 : sequence + 1;
}

/** The last sequence of a batch of `count` records starting at `firstSequence`, with wrap-around. */
export function lastSequenceOf(firstSequence: number, count: number): number {
  assert(count >= 1, 'a batch has at least one record');
  return (firstSequence + count - 1) % (SEQUENCE_MAX + 1);
}

interface MutableEntry {
  producerId: number;
  epoch: number;
  batches: ProducerBatch[];
  lastSeenMs: number;
}

export class ProducerStateTable {
  private readonly producers = new Map<number, MutableEntry>();

  constructor(private readonly limits: ProducerStateLimits = DEFAULT_PRODUCER_STATE_LIMITS) {}

  static fromEntries(entries: readonly ProducerEntry[], limits?: ProducerStateLimits): ProducerStateTable {
    const table = new ProducerStateTable(limits);
    for (const e of entries) {
      table.producers.set(e.producerId, {
        producerId: e.producerId,
        epoch: e.epoch,
        batches: [...e.batches],
        lastSeenMs: e.lastSeenMs,
      });
    }
    return table;
  }

  get size(): number {
    return this.producers.size;
  }

  entries(): ProducerEntry[] {
    return [...this.producers.values()].map((e) => ({ ...e, batches: [...e.batches] }));
  }

  entry(producerId: number): ProducerEntry | undefined {
    return this.producers.get(producerId);
  }

  /** What to do with an idempotent batch of `count` records from `producerId` at `epoch`. */
  check(producerId: number, epoch: number, firstSequence: number, count: number): SequenceCheck {
    const e = this.producers.get(producerId);
    if (e === undefined || epoch > e.epoch) {
      // A new producer, or a new epoch of one: its sequences start over at 0.
      return firstSequence === 0
        ? { kind: 'ok' }
        : e === undefined
          ? { kind: 'unknown_producer' }
          : { kind: 'out_of_order', expectedSequence: 0, gotSequence: firstSequence };
    }
    if (epoch < e.epoch) return { kind: 'fenced_epoch', currentEpoch: e.epoch };
    const lastSequence = lastSequenceOf(firstSequence, count);
    for (const b of e.batches) {
      if (b.firstSequence === firstSequence && b.lastSequence === lastSequence) {
        return { kind: 'duplicate', firstOffset: b.firstOffset, lastOffset: b.lastOffset };
      }
    }
    const last = e.batches[e.batches.length - 1];
    const expected = last === undefined ? 0 : nextSequence(last.lastSequence);
    if (firstSequence !== expected) {
      return { kind: 'out_of_order', expectedSequence: expected, gotSequence: firstSequence };
    }
    return { kind: 'ok' };
  }

  /**
   * Records a batch appended to the log (by this leader, from a leader, or replayed at recovery). Batches are
   * recorded in offset order; an older epoch's batch (a replay of history) still updates the offsets.
   */
  record(
    producerId: number,
    epoch: number,
    firstSequence: number,
    count: number,
    firstOffset: number,
    nowMs: number,
  ): void {
    assert(
      producerId >= 0 && epoch >= 0 && firstSequence >= 0,
      'an idempotent batch has its producer fields',
    );
    let e = this.producers.get(producerId);
    if (e === undefined) {
      this.evictIfFull();
      e = { producerId, epoch, batches: [], lastSeenMs: nowMs };
      this.producers.set(producerId, e);
    } else if (epoch > e.epoch) {
      e.epoch = epoch;
      e.batches = [];
    }
    const batch: ProducerBatch = {
      firstSequence,
      lastSequence: lastSequenceOf(firstSequence, count),
      firstOffset,
      lastOffset: firstOffset + count - 1,
    };
    e.batches.push(batch);
    if (e.batches.length > this.limits.batchesPerProducer) e.batches.shift();
    e.lastSeenMs = Math.max(e.lastSeenMs, nowMs);
  }

  /** Drops producers idle for `idleMs` (Kafka's producer.id.expiration.ms). */
  expire(nowMs: number, idleMs: number): number {
    let dropped = 0;
    for (const [id, e] of this.producers) {
      if (nowMs - e.lastSeenMs >= idleMs) {
        this.producers.delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  clear(): void {
    this.producers.clear();
  }

  private evictIfFull(): void {
    if (this.producers.size < this.limits.producersMax) return;
    let oldest: MutableEntry | null = null;
    for (const e of this.producers.values())
      if (oldest === null || e.lastSeenMs < oldest.lastSeenMs) oldest = e;
    if (oldest !== null) this.producers.delete(oldest.producerId);
  }
}
