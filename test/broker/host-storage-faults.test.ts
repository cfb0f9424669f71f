// A partition worker on a disk that fills up or fails (issue 10, item 5), on the simulated disk: at every write
// of opening a partition and producing to it in turn (its directory, partition.metadata, the checkpoint,
// segment data, rolls, indexes), the worker answers every request definitely (StorageFull, nothing written),
// refuses later requests at once without touching the disk, keeps serving reads, and takes writes again by
// itself once space is back, with every acknowledged record in place and no refused one anywhere.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { StatSlot } from '../../src/broker/worker-stats.js';
import { Status } from '../../src/messages/status.js';
import { SimDisk } from '../../src/storage/sim-disk.js';
import { HostHarness, type PartitionRef } from './host-harness.js';

const segmentBytes = 1024;

interface Outcome {
  readonly acked: Map<number, string>;
  readonly refused: Set<string>;
}

/** Produces `count` single-request batches of three records; every answer must be Ok or a definite refusal. */
async function produceAll(
  harness: HostHarness,
  ref: PartitionRef,
  count: number,
  tag: string,
  outcome: Outcome,
) {
  for (let i = 0; i < count; i++) {
    const values = [0, 1, 2].map((r) => `${tag}-${i}-${r}-${'y'.repeat(60)}`);
    const answer = await harness.produce(ref, values);
    if (answer.status === Status.Ok) {
      values.forEach((v, r) => {
        outcome.acked.set(answer.baseOffset + r, v);
      });
    } else {
      assert.ok(
        answer.status === Status.StorageFull,
        `${tag}: request ${i} answered ${answer.status}, not a definite refusal`,
      );
      for (const v of values) outcome.refused.add(v);
    }
  }
}

/** Polls produce until the partition takes writes again (the repair retries every 10 ms here). */
async function untilWritable(
  harness: HostHarness,
  ref: PartitionRef,
  outcome: Outcome,
  context: string,
  refusal: Status = Status.StorageFull,
) {
  const deadline = Date.now() + 5000;
  for (let i = 0; ; i++) {
    const values = [`${context}-probe-${i}`];
    const answer = await harness.produce(ref, values);
    if (answer.status === Status.Ok) {
      outcome.acked.set(answer.baseOffset, values[0]!);
      return;
    }
    assert.equal(answer.status, refusal, `${context}: refusal while repairing`);
    outcome.refused.add(values[0]!);
    assert.ok(Date.now() < deadline, `${context}: the partition did not come back`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function checkLog(harness: HostHarness, ref: PartitionRef, outcome: Outcome, context: string) {
  const served = await harness.readAll(ref);
  const offsets = [...served.keys()];
  offsets.forEach((o, i) => {
    assert.equal(o, i, `${context}: offsets are dense`);
  });
  for (const [o, v] of outcome.acked) assert.equal(served.get(o), v, `${context}: acknowledged offset ${o}`);
  for (const v of served.values()) assert.ok(!outcome.refused.has(v), `${context}: refused ${v} was written`);
}

describe('a partition worker on a disk that fills up', () => {
  test('ENOSPC at every write of open and produce: definite refusals, reads go on, writes resume by themselves', async () => {
    // The writes a clean run makes, to fill the disk at each in turn.
    const clean = new SimDisk();
    clean.mkdir('/data');
    const counting = new HostHarness(clean);
    const before = clean.mutatingOps;
    const { ref: cleanRef } = await counting.open('t', 0, segmentBytes);
    await produceAll(counting, cleanRef, 12, 'clean', { acked: new Map(), refused: new Set() });
    const ops = clean.mutatingOps - before;
    await counting.stop();

    let refusals = 0;
    for (let k = 1; k <= ops; k++) {
      const disk = new SimDisk();
      disk.mkdir('/data');
      const harness = new HostHarness(disk);
      try {
        disk.armFull(k);
        const { ref, answer } = await harness.open('t', 0, segmentBytes);
        assert.ok(
          answer.status === Status.Ok || answer.status === Status.StorageUnavailable,
          `op ${k}: the partition is taken up (answered ${answer.status})`,
        );
        const outcome: Outcome = { acked: new Map(), refused: new Set() };
        await produceAll(harness, ref, 12, `op ${k}`, outcome);
        refusals += outcome.refused.size;
        if (outcome.refused.size > 0) {
          // Offline: a request is refused at once, without touching the disk.
          const writes = disk.mutatingOps;
          assert.equal((await harness.produce(ref, ['refused at once'])).status, Status.StorageFull);
          outcome.refused.add('refused at once');
          assert.equal(disk.mutatingOps, writes, `op ${k}: nothing attempted while offline`);
          assert.equal(harness.offlinePartitions, 1);
          const health = await harness.control({ op: 'health' });
          assert.equal(health.offline.length, 1);
          assert.equal(health.offline[0].reason, 'storage_full');
          if (disk.exists('/data/t-0/partition.checkpoint'))
            await checkLog(harness, ref, outcome, `op ${k}, full`);
        }
        disk.freeSpace();
        await untilWritable(harness, ref, outcome, `op ${k}`);
        await produceAll(harness, ref, 3, `op ${k} after`, outcome);
        assert.equal(harness.offlinePartitions, 0);
        if (outcome.refused.size > 0) {
          // Both transitions are logged, once each.
          assert.equal(harness.logged.filter((l) => l.includes('storage offline')).length, 1, `op ${k}`);
          assert.equal(harness.logged.filter((l) => l.includes('storage back online')).length, 1, `op ${k}`);
        }
        await checkLog(harness, ref, outcome, `op ${k}, after`);
      } finally {
        await harness.stop();
      }
    }
    assert.ok(refusals > 0, 'faults were hit');
  });

  test('a data directory with no space at all: opening the partition leaves it offline, not the worker dead', async () => {
    const disk = new SimDisk();
    disk.mkdir('/data');
    disk.capacityBytes = 0;
    const harness = new HostHarness(disk);
    try {
      const { ref, answer } = await harness.open('t', 0, segmentBytes);
      assert.ok(
        answer.status === Status.Ok || answer.status === Status.StorageUnavailable,
        'taken up, not gone',
      );
      assert.equal((await harness.produce(ref, ['x'])).status, Status.StorageFull);
      // Nothing was ever written: a read answers, with nothing in it (and nothing invented).
      const read = await harness.fetch(ref, 0);
      assert.ok(
        read.status === Status.Ok || read.status === Status.StorageUnavailable,
        `read answered ${read.status}`,
      );
      assert.equal(read.records.size, 0);
      disk.freeSpace();
      const outcome: Outcome = { acked: new Map(), refused: new Set(['x']) };
      await untilWritable(harness, ref, outcome, 'empty disk');
      await checkLog(harness, ref, outcome, 'empty disk');
    } finally {
      await harness.stop();
    }
  });

  test('an fsync that fails: the batch is refused definitely and its records are never served', async () => {
    const disk = new SimDisk();
    disk.mkdir('/data');
    const harness = new HostHarness(disk);
    try {
      const { ref } = await harness.open('t', 0, segmentBytes);
      const outcome: Outcome = { acked: new Map(), refused: new Set() };
      await produceAll(harness, ref, 3, 'before', outcome);
      disk.failSyncs(1, 'EIO');
      const answer = await harness.produce(ref, ['lost to EIO']);
      assert.equal(answer.status, Status.StorageUnavailable, 'definite: the cut-back was durable');
      outcome.refused.add('lost to EIO');
      await checkLog(harness, ref, outcome, 'after EIO');
      const deadline = Date.now() + 5000;
      while ((await harness.produce(ref, ['probe'])).status !== Status.Ok) {
        outcome.refused.add('probe');
        assert.ok(Date.now() < deadline, 'the partition came back');
      }
    } finally {
      await harness.stop();
    }
  });

  test('a group commit over several partitions where one fsync fails: only that partition refuses its batch', async () => {
    const disk = new SimDisk();
    disk.mkdir('/data');
    const harness = new HostHarness(disk);
    const count = 4;
    try {
      const refs: PartitionRef[] = [];
      for (let p = 0; p < count; p++) refs.push((await harness.open('t', p, segmentBytes)).ref);
      const outcomes: Outcome[] = refs.map(() => ({ acked: new Map(), refused: new Set() }));
      let groupedSyncs = 0;
      for (let round = 0; round < 12; round++) {
        // Requests to every partition at once land in one drained batch (usually): one group commit whose
        // data syncs run together. The `round % count`-th sync of the group fails.
        const syncsBefore = harness.stats[StatSlot.fsyncCount]!;
        disk.failSyncs(1, 'EIO', round % count);
        const values = refs.map((_, p) => [`r${round}-p${p}-a`, `r${round}-p${p}-b`]);
        const answers = await Promise.all(refs.map((ref, p) => harness.produce(ref, values[p]!)));
        if (harness.stats[StatSlot.fsyncCount]! - syncsBefore < count) groupedSyncs++;
        let refusedNow = 0;
        answers.forEach((answer, p) => {
          if (answer.status === Status.Ok) {
            values[p]!.forEach((v, r) => {
              outcomes[p]!.acked.set(answer.baseOffset + r, v);
            });
          } else {
            assert.equal(answer.status, Status.StorageUnavailable, `round ${round}: definite refusal`);
            for (const v of values[p]!) outcomes[p]!.refused.add(v);
            refusedNow++;
          }
        });
        assert.ok(refusedNow <= 1, `round ${round}: one failed sync refuses one partition's batch at most`);
        disk.failSyncs(0);
        for (let p = 0; p < count; p++) {
          await untilWritable(
            harness,
            refs[p]!,
            outcomes[p]!,
            `round ${round} p${p}`,
            Status.StorageUnavailable,
          );
          await checkLog(harness, refs[p]!, outcomes[p]!, `round ${round} p${p}`);
        }
      }
      assert.ok(groupedSyncs > 0, 'some batches synced several partitions in one group commit');
    } finally {
      await harness.stop();
    }
  });
});
