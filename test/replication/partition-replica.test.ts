// The pure replica core, scenario by scenario: the high watermark over durable ends of the ISR, strict min ISR,
// acks=all released by the watermark, ISR shrink and expansion, epoch-based truncation (KIP-101/279), the
// divergence check on fetch, fencing of a deposed leader, and a new leader that hides its watermark until it
// has committed its epoch's start. The simulation (test/sim/replication-*) runs them together under faults.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EpochCache } from '../../src/core/replication/epoch-cache.js';
import {
  DEFAULT_REPLICA_CONFIG,
  PartitionReplica,
  type PartitionView,
  type ReplicaConfig,
} from '../../src/core/replication/partition-replica.js';

function view(over: Partial<PartitionView> = {}): PartitionView {
  return {
    leader: 'a',
    leaderEpoch: 1,
    partitionEpoch: 1,
    replicas: ['a', 'b', 'c'],
    isr: ['a', 'b', 'c'],
    minInsyncReplicas: 2,
    ...over,
  };
}

function replica(
  self: string,
  end = 0,
  epochs: [number, number][] = [],
  config: Partial<ReplicaConfig> = {},
) {
  const cache = EpochCache.fromEntries(epochs.map(([epoch, startOffset]) => ({ epoch, startOffset })));
  return new PartitionReplica(
    self,
    cache,
    { ...DEFAULT_REPLICA_CONFIG, ...config },
    {
      logStartOffset: 0,
      logEndOffset: end,
      durableEndOffset: end,
    },
  );
}

describe('epoch cache', () => {
  test('answers where an epoch ends, the epoch of an offset, and truncates from both ends', () => {
    const cache = EpochCache.fromEntries([
      { epoch: 1, startOffset: 0 },
      { epoch: 3, startOffset: 10 },
      { epoch: 4, startOffset: 10 },
      { epoch: 6, startOffset: 25 },
    ]);
    assert.deepEqual(cache.endOffsetFor(3, 40), { epoch: 3, endOffset: 10 });
    assert.deepEqual(cache.endOffsetFor(5, 40), { epoch: 4, endOffset: 25 });
    assert.deepEqual(cache.endOffsetFor(9, 40), { epoch: 6, endOffset: 40 });
    assert.deepEqual(cache.endOffsetFor(0, 40), { epoch: -1, endOffset: -1 });
    assert.equal(cache.epochAt(9), 1);
    assert.equal(cache.epochAt(10), 4);
    assert.equal(cache.epochAt(30), 6);
    assert.equal(cache.assign(2, 30), false, 'an older epoch is ignored');
    assert.throws(() => cache.assign(7, 20), /before epoch 6/);
    cache.truncateFromEnd(25);
    assert.equal(cache.latestEpoch, 4);
    cache.truncateFromStart(12);
    assert.deepEqual(cache.entries(), [{ epoch: 4, startOffset: 12 }]);
  });
});

describe('leader', () => {
  test('the high watermark is the minimum durable end over the ISR, and releases acks=all in order', () => {
    const a = replica('a', 0);
    a.applyMetadata(view(), 0);
    a.onLogChanged(0, 5, 5);
    a.awaitHighWatermark(1, 3, 0);
    a.awaitHighWatermark(2, 5, 0);
    assert.equal(a.highWatermark, 0, 'no follower has fetched in this epoch yet');
    const fetch = (id: string, offset: number) =>
      a.onFollowerFetch(
        { replicaId: id, leaderEpoch: 1, fetchOffset: offset, lastFetchedEpoch: offset > 0 ? 1 : -1 },
        1,
      );
    fetch('b', 0);
    fetch('c', 0);
    a.ready();
    fetch('b', 3);
    assert.equal(a.highWatermark, 0, 'c holds it back');
    fetch('c', 5);
    assert.equal(a.highWatermark, 3);
    assert.deepEqual(a.ready().acks, [{ id: 1, kind: 'ok' }]);
    fetch('b', 5);
    assert.equal(a.highWatermark, 5);
    assert.deepEqual(a.ready().acks, [{ id: 2, kind: 'ok' }]);
    a.onLogChanged(0, 9, 5);
    fetch('b', 9);
    fetch('c', 9);
    assert.equal(a.highWatermark, 5, "the leader's own unflushed records do not count");
    a.onLogChanged(0, 9, 9);
    assert.equal(a.highWatermark, 9);
  });

  test('an idempotent retry of an older batch waits with the requests after it (found by the SIGSTOP test)', () => {
    const a = replica('a', 0);
    a.applyMetadata(view(), 0);
    a.onLogChanged(0, 8, 8);
    a.awaitHighWatermark(1, 8, 0);
    // A duplicate of records at [2, 4): registered after a request ending at 8; it must not trip the order.
    a.awaitHighWatermark(2, 4, 0);
    const fetch = (id: string, offset: number) =>
      a.onFollowerFetch(
        { replicaId: id, leaderEpoch: 1, fetchOffset: offset, lastFetchedEpoch: offset > 0 ? 1 : -1 },
        1,
      );
    fetch('b', 0);
    fetch('c', 0);
    a.ready();
    fetch('b', 5);
    fetch('c', 5);
    assert.equal(a.highWatermark, 5);
    assert.deepEqual(a.ready().acks, [], 'answered with the request ahead of it, never before its records');
    fetch('b', 8);
    fetch('c', 8);
    assert.deepEqual(a.ready().acks, [
      { id: 1, kind: 'ok' },
      { id: 2, kind: 'ok' },
    ]);
    a.awaitHighWatermark(3, 6, 0);
    assert.deepEqual(a.ready().acks, [{ id: 3, kind: 'ok' }], 'below the high watermark: at once');
  });

  test('a fetch is offered only records the leader holds durably (found by the simulation)', () => {
    // A leader that crashes loses its unsynced tail and may come back leading the SAME epoch (the controller
    // never saw it die). Had a follower fetched that tail, both would hold different records at the same
    // offsets under the same epoch, which no epoch check can tell apart. Reading only to the durable end
    // keeps every follower's records of an epoch a prefix of what its leader still holds after a crash.
    const a = replica('a', 0);
    a.applyMetadata(view(), 0);
    a.onLogChanged(0, 8, 5);
    const fetch = (offset: number) =>
      a.onFollowerFetch(
        { replicaId: 'b', leaderEpoch: 1, fetchOffset: offset, lastFetchedEpoch: offset > 0 ? 1 : -1 },
        1,
      );
    assert.deepEqual(fetch(0), {
      kind: 'read',
      fromOffset: 0,
      toOffset: 5,
      highWatermark: 0,
      logStartOffset: 0,
    });
    assert.deepEqual(fetch(5), {
      kind: 'read',
      fromOffset: 5,
      toOffset: 5,
      highWatermark: 0,
      logStartOffset: 0,
    });
    a.onLogChanged(0, 8, 8);
    assert.deepEqual(fetch(5), {
      kind: 'read',
      fromOffset: 5,
      toOffset: 8,
      highWatermark: 0,
      logStartOffset: 0,
    });
  });

  test('a follower at the leader’s durable end stays in the ISR while the leader keeps appending', () => {
    const a = replica('a', 0, [], { replicaLagTimeMaxMs: 400 });
    a.applyMetadata(view(), 0);
    const fetch = (id: string, offset: number, now: number) =>
      a.onFollowerFetch(
        { replicaId: id, leaderEpoch: 1, fetchOffset: offset, lastFetchedEpoch: offset > 0 ? 1 : -1 },
        now,
      );
    // Every 100 ms the leader flushes 2 records and has 2 more unflushed; each fetch brings a follower to the
    // durable end of the previous fetch, which is all it could be offered.
    for (let t = 0; t <= 2_000; t += 100) {
      const durable = t / 50;
      a.onLogChanged(0, durable + 2, durable);
      fetch('b', Math.max(0, durable - 2), t);
      fetch('c', Math.max(0, durable - 2), t);
      a.tick(t);
      assert.equal(a.ready().isrProposal, null, `nobody lags at ${t} ms`);
    }
  });

  test('strict min ISR: below it acks=all is refused up front and the watermark does not move', () => {
    const a = replica('a', 4, [[1, 0]]);
    a.applyMetadata(view({ isr: ['a'] }), 0);
    assert.deepEqual(a.canAppend(true), { kind: 'not_enough_replicas', isr: 1, minInsyncReplicas: 2 });
    assert.equal(a.canAppend(false), null, 'acks=1 is still taken');
    a.onLogChanged(0, 6, 6);
    assert.equal(a.highWatermark, 0);
    const planted = replica('a', 4, [[1, 0]], { plantedBug: 'hw_below_min_isr' });
    planted.applyMetadata(view({ isr: ['a'] }), 0);
    // Its unchanged ISR, proposed when it first saw itself leading, is committed.
    planted.applyMetadata(view({ isr: ['a'], partitionEpoch: 2 }), 0);
    planted.onLogChanged(0, 6, 6);
    assert.equal(planted.highWatermark, 6, 'the planted bug advances it');
  });

  test('a follower that does not catch up is proposed out of the ISR, and back in once caught up', () => {
    const a = replica('a', 0);
    a.applyMetadata(view(), 0);
    const fetch = (id: string, offset: number, now: number) =>
      a.onFollowerFetch(
        { replicaId: id, leaderEpoch: 1, fetchOffset: offset, lastFetchedEpoch: offset > 0 ? 1 : -1 },
        now,
      );
    a.onLogChanged(0, 10, 10);
    fetch('b', 10, 1000);
    fetch('c', 2, 1000);
    a.tick(9_000);
    assert.equal(a.ready().isrProposal, null, 'within the lag time');
    fetch('b', 10, 10_500);
    a.tick(11_001);
    const shrink = a.ready().isrProposal;
    assert.deepEqual(shrink, { leaderEpoch: 1, partitionEpoch: 1, isr: ['a', 'b'] });
    a.applyMetadata(view({ isr: ['a', 'b'], partitionEpoch: 2 }), 11_100);
    assert.equal(a.highWatermark, 10);
    fetch('c', 9, 12_000);
    assert.equal(a.ready().isrProposal, null, 'not yet at the high watermark');
    fetch('c', 10, 12_100);
    assert.deepEqual(a.ready().isrProposal, { leaderEpoch: 1, partitionEpoch: 2, isr: ['a', 'b', 'c'] });
  });

  test('a proposed ISR member counts for the high watermark until the metadata moves past the proposal, whatever became of its answer (found by the simulation)', () => {
    // The expansion may be committed although its answer is lost or late (the metadata leader died right
    // after applying it): until this leader's metadata shows the partition epoch past the proposal's, c may be
    // in the committed ISR, and a record acknowledged without c could be lost when c is elected.
    const a = replica('a', 0, [], { isrProposalTimeoutMs: 300, replicaLagTimeMaxMs: 1_000 });
    a.applyMetadata(view({ isr: ['a', 'b'], partitionEpoch: 0 }), 0);
    // The ISR it proposed unchanged on first seeing itself lead is committed.
    assert.deepEqual(a.ready().isrProposal?.isr, ['a', 'b']);
    a.applyMetadata(view({ isr: ['a', 'b'] }), 0);
    const fetch = (id: string, offset: number, now: number) =>
      a.onFollowerFetch(
        { replicaId: id, leaderEpoch: 1, fetchOffset: offset, lastFetchedEpoch: offset > 0 ? 1 : -1 },
        now,
      );
    a.onLogChanged(0, 10, 10);
    fetch('b', 10, 10);
    fetch('c', 10, 10);
    const expansion = a.ready().isrProposal;
    assert.deepEqual(expansion, { leaderEpoch: 1, partitionEpoch: 1, isr: ['a', 'b', 'c'] });
    a.onLogChanged(0, 20, 20);
    fetch('b', 20, 100);
    assert.equal(a.highWatermark, 10, 'c counts while the expansion is pending');
    a.tick(400);
    a.proposalFailed(expansion!);
    fetch('b', 20, 500);
    assert.equal(
      a.highWatermark,
      10,
      'neither a timeout nor a failed delivery proves the expansion was not made',
    );
    // c fetches no more: after the lag time the leader settles it with a proposal at the same partition epoch.
    a.ready();
    a.tick(1_200);
    assert.deepEqual(a.ready().isrProposal, { leaderEpoch: 1, partitionEpoch: 1, isr: ['a', 'b'] });
    a.applyMetadata(view({ isr: ['a', 'b'], partitionEpoch: 2 }), 1_300);
    assert.equal(a.highWatermark, 20, 'the metadata moved on without c');
  });

  test('a leader in a new process counts every replica until its metadata moves on, since its previous incarnation may have proposed any of them (found by the simulation)', () => {
    // a restarted before anyone noticed and leads epoch 1 again, from metadata that says ISR {a, b} at partition
    // epoch 1. Before the restart it may have proposed adding c at that partition epoch; that proposal may be
    // committed already (this node's metadata lags) or still be waiting in the Raft log.
    const a = replica('a', 10, [[1, 0]]);
    a.applyMetadata(view({ isr: ['a', 'b'] }), 0);
    assert.deepEqual(
      a.ready().isrProposal,
      { leaderEpoch: 1, partitionEpoch: 1, isr: ['a', 'b'] },
      'it proposes its ISR unchanged, so that the partition epoch moves past any such proposal',
    );
    a.onFollowerFetch({ replicaId: 'b', leaderEpoch: 1, fetchOffset: 10, lastFetchedEpoch: 1 }, 1);
    assert.equal(a.highWatermark, 0, 'c may be in the committed ISR');
    a.applyMetadata(view({ isr: ['a', 'b'], partitionEpoch: 2 }), 5);
    assert.equal(a.highWatermark, 10, 'the metadata moved on without c');
    // A replica that saw itself become leader in this process has no such past.
    const b = replica('b', 10, [[1, 0]]);
    b.applyMetadata(view({ isr: ['a', 'b'] }), 0);
    b.applyMetadata(view({ leader: 'b', leaderEpoch: 2, partitionEpoch: 2, isr: ['a', 'b'] }), 1);
    assert.equal(b.ready().isrProposal, null);
    b.onFollowerFetch({ replicaId: 'a', leaderEpoch: 2, fetchOffset: 10, lastFetchedEpoch: 1 }, 2);
    assert.equal(b.highWatermark, 10);
  });

  test('a fetch that parts from the leader’s epochs is told where to truncate', () => {
    const a = replica('a', 20, [
      [1, 0],
      [3, 12],
    ]);
    a.applyMetadata(view({ leaderEpoch: 4, partitionEpoch: 4 }), 0);
    const decision = a.onFollowerFetch(
      { replicaId: 'b', leaderEpoch: 4, fetchOffset: 15, lastFetchedEpoch: 2 },
      1,
    );
    assert.deepEqual(decision, { kind: 'diverging', epoch: 1, endOffset: 12 });
    assert.equal(
      a.onFollowerFetch({ replicaId: 'b', leaderEpoch: 4, fetchOffset: 12, lastFetchedEpoch: 1 }, 1).kind,
      'read',
    );
    assert.equal(
      a.onFollowerFetch({ replicaId: 'b', leaderEpoch: 3, fetchOffset: 12, lastFetchedEpoch: 1 }, 1).kind,
      'fenced_epoch',
    );
  });

  test('a fetch naming a newer epoch deposes the leader: no writes, pending acks fail as unknown', () => {
    const a = replica('a', 0);
    a.applyMetadata(view(), 0);
    a.onLogChanged(0, 3, 3);
    a.awaitHighWatermark(7, 3, 0);
    const decision = a.onFollowerFetch(
      { replicaId: 'b', leaderEpoch: 2, fetchOffset: 0, lastFetchedEpoch: -1 },
      1,
    );
    assert.equal(decision.kind, 'not_leader');
    assert.deepEqual(a.canAppend(true), { kind: 'not_leader', leader: '' });
    assert.deepEqual(a.ready().acks, [{ id: 7, kind: 'lost_leadership' }]);
    assert.equal(a.servableHighWatermark, -1);
  });

  test('a new leader serves no high watermark until it has committed its epoch start', () => {
    const b = replica('b', 10, [[1, 0]]);
    b.applyMetadata(view(), 0);
    b.onFetchAnswer({ kind: 'records', highWatermark: 6, logStartOffset: 0 });
    assert.equal(b.highWatermark, 6);
    b.applyMetadata(view({ leader: 'b', leaderEpoch: 2, partitionEpoch: 2, isr: ['b', 'c'] }), 5);
    assert.equal(b.servableHighWatermark, -1, 'records 6..9 may have been acknowledged by the old leader');
    assert.deepEqual(b.epochs.entries().at(-1), { epoch: 2, startOffset: 10 });
    b.onFollowerFetch({ replicaId: 'c', leaderEpoch: 2, fetchOffset: 10, lastFetchedEpoch: 1 }, 6);
    assert.equal(b.servableHighWatermark, 10);
  });
});

describe('follower', () => {
  test('asks where its latest epoch ends and truncates there, using its own epochs when the leader’s is older', () => {
    const b = replica('b', 30, [
      [1, 0],
      [2, 10],
      [4, 20],
    ]);
    b.applyMetadata(view({ leaderEpoch: 5, partitionEpoch: 5 }), 0);
    const plan = b.nextPlan();
    assert.deepEqual(plan, { kind: 'epoch_query', leader: 'a', leaderEpoch: 5, epoch: 4 });
    // The leader never had epoch 4: its latest <= 4 is 2, which ends at 25 in its log.
    assert.deepEqual(b.onEpochAnswer(4, { epoch: 2, endOffset: 25 }), { kind: 'truncate', offset: 20 });
    b.onLogChanged(0, 20, 20);
    b.epochs.truncateFromEnd(20);
    assert.deepEqual(b.nextPlan(), {
      kind: 'fetch',
      leader: 'a',
      leaderEpoch: 5,
      fetchOffset: 20,
      lastFetchedEpoch: 2,
    });
  });

  test('drops an epoch it led without writing, even where the leader’s answer cuts no record (found by the simulation)', () => {
    // b led epoch 2 from offset 10 and wrote nothing; the leader of epoch 3 never had epoch 2, its epoch 1 ends
    // at 12. Nothing of b's log is cut, but (2, 10) must leave the cache: the epoch-1 batch b fetches next lands
    // at 10 and would otherwise be taken for epoch 2 (Kafka's UnifiedLog.truncateTo cuts the cache there too).
    const b = replica('b', 10, [
      [1, 0],
      [2, 10],
    ]);
    b.applyMetadata(view({ leaderEpoch: 3, partitionEpoch: 3 }), 0);
    assert.deepEqual(b.nextPlan(), { kind: 'epoch_query', leader: 'a', leaderEpoch: 3, epoch: 2 });
    assert.deepEqual(b.onEpochAnswer(2, { epoch: 1, endOffset: 12 }), { kind: 'truncate', offset: 10 });
    b.epochs.truncateFromEnd(10);
    assert.equal(b.nextPlan().kind, 'fetch');
    // The same for an empty log: it has no record to ask about, only the epoch to forget.
    const c = replica('c', 0, [[2, 0]]);
    c.applyMetadata(view({ leaderEpoch: 3, partitionEpoch: 3 }), 0);
    assert.deepEqual(c.nextPlan(), { kind: 'truncate', offset: 0 });
    c.epochs.truncateFromEnd(0);
    assert.equal(c.nextPlan().kind, 'fetch');
    // And a log that is already where the leader's epoch ends keeps its cache when no epoch trails it.
    const d = replica('d', 12, [[1, 0]]);
    d.applyMetadata(view({ leaderEpoch: 3, partitionEpoch: 3 }), 0);
    assert.deepEqual(d.onEpochAnswer(1, { epoch: 1, endOffset: 12 }), { kind: 'none' });
  });

  test('reports only its durable end, and its watermark never passes what it holds on disk', () => {
    const b = replica('b', 0);
    b.applyMetadata(view(), 0);
    assert.deepEqual(b.nextPlan(), {
      kind: 'fetch',
      leader: 'a',
      leaderEpoch: 1,
      fetchOffset: 0,
      lastFetchedEpoch: -1,
    });
    b.epochs.assign(1, 0);
    b.onLogChanged(0, 8, 5);
    assert.equal((b.nextPlan() as { fetchOffset: number }).fetchOffset, 5);
    b.onFetchAnswer({ kind: 'records', highWatermark: 8, logStartOffset: 0 });
    assert.equal(b.highWatermark, 5);
    const planted = replica('b', 0, [], { plantedBug: 'count_before_fsync' });
    planted.applyMetadata(view(), 0);
    planted.nextPlan();
    planted.epochs.assign(1, 0);
    planted.onLogChanged(0, 8, 5);
    assert.equal((planted.nextPlan() as { fetchOffset: number }).fetchOffset, 8);
  });

  test('below the leader’s log start it starts over there; past the leader’s end it asks again', () => {
    const b = replica('b', 0);
    b.applyMetadata(view(), 0);
    assert.deepEqual(b.onFetchAnswer({ kind: 'out_of_range', logStartOffset: 50, logEndOffset: 90 }), {
      kind: 'reset',
      offset: 50,
    });
    const c = replica('c', 100, [[1, 0]]);
    c.applyMetadata(view(), 0);
    c.onEpochAnswer(1, { epoch: 1, endOffset: 100 });
    c.onFetchAnswer({ kind: 'out_of_range', logStartOffset: 0, logEndOffset: 90 });
    assert.equal(c.nextPlan().kind, 'epoch_query');
  });
});

describe('a replica moved away', () => {
  test('a fetch it still sends after the move is refused and never holds the high watermark back', () => {
    // The stall a move showed: leader a, replicas a,b moved to a,c. b's last fetch arrived after the move
    // finished; the leader proposed b for the ISR, and counted it (KIP-497) until the proposal timed out, so
    // acks=all writes waited ~10 s.
    const a = replica('a', 5, [[1, 0]]);
    const fetch = (id: string, offset: number, at: number) =>
      a.onFollowerFetch({ replicaId: id, leaderEpoch: 1, fetchOffset: offset, lastFetchedEpoch: 1 }, at);
    a.applyMetadata(view({ replicas: ['a', 'b'], isr: ['a', 'b'], minInsyncReplicas: 1 }), 0);
    fetch('b', 5, 1);
    assert.equal(a.highWatermark, 5);
    a.applyMetadata(
      view({ partitionEpoch: 2, replicas: ['a', 'c', 'b'], isr: ['a', 'b'], minInsyncReplicas: 1 }),
      2,
    );
    fetch('c', 5, 3);
    a.applyMetadata(
      view({ partitionEpoch: 3, replicas: ['a', 'c', 'b'], isr: ['a', 'b', 'c'], minInsyncReplicas: 1 }),
      4,
    );
    // The move finishes: b is gone.
    a.applyMetadata(
      view({ partitionEpoch: 4, replicas: ['a', 'c'], isr: ['a', 'c'], minInsyncReplicas: 1 }),
      5,
    );
    const stale = fetch('b', 5, 6);
    assert.equal(stale.kind, 'fenced_epoch', 'a replica moved away is no follower');
    a.onLogChanged(0, 6, 6);
    a.awaitHighWatermark(1, 6, 7);
    fetch('c', 6, 8);
    assert.equal(a.highWatermark, 6, 'the new ISR alone decides the high watermark');
  });
});

describe('a leader handed to another worker of its broker', () => {
  test('continueLeadership carries the high watermark and epoch start over, never past the durable end', () => {
    // The core that led until now: epoch 2 began at 4, followers took the high watermark to 8 of 10.
    const old = replica('a', 4, [[1, 0]]);
    old.applyMetadata(view({ leaderEpoch: 2 }), 0);
    old.onLogChanged(0, 10, 10);
    for (const id of ['b', 'c'])
      old.onFollowerFetch({ replicaId: id, leaderEpoch: 2, fetchOffset: 8, lastFetchedEpoch: 2 }, 1);
    assert.equal(old.highWatermark, 8);
    assert.equal(old.epochStartOffset, 4);
    // The new core opens the same log (epoch cache as on disk) and becomes leader from the same metadata.
    const fresh = replica('a', 10, [
      [1, 0],
      [2, 4],
    ]);
    fresh.applyMetadata(view({ leaderEpoch: 2 }), 2);
    assert.equal(fresh.servableHighWatermark, -1, 'alone, a new core serves nothing until followers fetch');
    fresh.continueLeadership(2, old.highWatermark, old.epochStartOffset);
    assert.equal(fresh.highWatermark, 8);
    assert.equal(fresh.servableHighWatermark, 8, 'consumers see no step back and no pause');
    // Followers unknown to the new core hold the watermark where it is; their next fetches move it on.
    fresh.onLogChanged(0, 12, 12);
    assert.equal(fresh.highWatermark, 8);
    for (const id of ['b', 'c'])
      fresh.onFollowerFetch({ replicaId: id, leaderEpoch: 2, fetchOffset: 12, lastFetchedEpoch: 2 }, 3);
    assert.equal(fresh.highWatermark, 12);
    // A handover from another epoch, or one claiming more than the log holds durably, is not taken as such.
    const other = replica('a', 6, [[1, 0]]);
    other.applyMetadata(view({ leaderEpoch: 3 }), 0);
    other.continueLeadership(2, 5, 0);
    assert.equal(other.highWatermark, 0, 'a handover of epoch 2 means nothing in epoch 3');
    const short = replica('a', 6, [[3, 0]]);
    short.applyMetadata(view({ leaderEpoch: 3 }), 0);
    short.continueLeadership(3, 9, 0);
    assert.equal(short.highWatermark, 6, 'never past the durable end');
    assert.equal(short.servableHighWatermark, 6);
  });
});
