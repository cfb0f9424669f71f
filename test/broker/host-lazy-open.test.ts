// Partitions opened lazily (issue 10, item 6): after a clean shutdown a worker learns each partition's
// offsets from its checkpoint without opening its log or holding a descriptor, and opens a log on first use;
// after a crash (no clean shutdown) it recovers each log as it is opened.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StatSlot } from '../../src/broker/worker-stats.js';
import { Status } from '../../src/messages/status.js';
import { SimDisk } from '../../src/storage/sim-disk.js';
import { HostHarness, type PartitionRef } from './host-harness.js';

const partitions = 20;

async function populate(disk: SimDisk): Promise<void> {
  const harness = new HostHarness(disk);
  for (let p = 0; p < partitions; p++) {
    const { ref } = await harness.open('t', p, 4096);
    for (let r = 0; r <= p % 4; r++) {
      assert.equal((await harness.produce(ref, [`p${p}-r${r}`])).status, Status.Ok);
    }
  }
  const answer = await harness.stop();
  assert.equal(answer.clean, true, 'every log closed at its end');
}

test('after a clean shutdown partitions open without opening their logs, with exact offsets, and open on first use', async () => {
  const disk = new SimDisk();
  disk.mkdir('/data');
  await populate(disk);
  const harness = new HostHarness(disk, '/data', { cleanShutdown: true });
  try {
    const refs: PartitionRef[] = [];
    for (let p = 0; p < partitions; p++) {
      const { ref, answer } = await harness.open('t', p, 4096);
      refs.push(ref);
      assert.equal(answer.logEndOffset, (p % 4) + 1, `partition ${p} log end from its checkpoint`);
      assert.equal(answer.highWatermark, (p % 4) + 1);
      assert.equal(answer.logStartOffset, 0);
    }
    await harness.control({ op: 'health' });
    assert.equal(harness.stats[StatSlot.openLogs], 0, 'no log was opened');
    assert.equal(disk.openDescriptors, 0, 'no descriptor is held for an idle partition');
    const read = await harness.readAll(refs[7]!);
    assert.deepEqual([...read.values()], ['p7-r0', 'p7-r1', 'p7-r2', 'p7-r3']);
    assert.equal((await harness.produce(refs[3]!, ['more'])).baseOffset, 4);
    await harness.control({ op: 'health' });
    assert.equal(harness.stats[StatSlot.openLogs], 2, 'only the partitions used were opened');
  } finally {
    await harness.stop();
  }
});

test('after a crash every partition is recovered before it serves, with records no checkpoint covers', async () => {
  const disk = new SimDisk();
  disk.mkdir('/data');
  await populate(disk);
  // A crash after the checkpoints: one more record per partition that no checkpoint covers.
  const writer = new HostHarness(disk, '/data', { cleanShutdown: true });
  for (let p = 0; p < partitions; p++) {
    const { ref } = await writer.open('t', p, 4096);
    assert.equal((await writer.produce(ref, [`p${p}-late`])).baseOffset, (p % 4) + 1);
  }
  // No shutdown: the logs are dropped the way a killed process leaves them (in the simulated page cache).
  // A replica's figures must be exact before its replication core runs (a follower reports its log end, a
  // leader starts its epoch at it), so each partition is recovered when the worker takes it up.
  const harness = new HostHarness(disk, '/data', { cleanShutdown: false });
  try {
    for (let p = 0; p < partitions; p++) {
      const { ref, answer } = await harness.open('t', p, 4096);
      assert.equal(answer.logEndOffset, (p % 4) + 2, `partition ${p}: the late record is recovered`);
      assert.equal(answer.highWatermark, (p % 4) + 2, `partition ${p}: and served`);
      const read = await harness.readAll(ref);
      assert.equal(read.get((p % 4) + 1), `p${p}-late`);
    }
    await harness.control({ op: 'health' });
    assert.equal(harness.stats[StatSlot.openLogs], partitions);
  } finally {
    await harness.stop();
    await writer.stop();
  }
});

test('after a crash a worker answers requests while it recovers its other partitions in the background', async () => {
  const many = 600;
  const disk = new SimDisk();
  disk.mkdir('/data');
  const writer = new HostHarness(disk, '/data', { cleanShutdown: true });
  const refs = await writer.openMany('t', many, 4096);
  for (let from = 0; from < many; from += 100) {
    await Promise.all(
      refs.slice(from, from + 100).map(async (ref) => {
        assert.equal((await writer.produce(ref, [`p${ref.partition}`])).status, Status.Ok);
      }),
    );
  }
  // No shutdown: every log is left for recovery, as kill -9 leaves it.
  const harness = new HostHarness(disk, '/data', { cleanShutdown: false });
  try {
    const started = performance.now();
    const taken = await harness.openMany('t', many, 4096);
    const last = taken[many - 1]!;
    const described = await harness.describe(last);
    assert.equal(described.logEndOffset, 1, 'a partition a request needs is recovered for it');
    assert.equal((await harness.produce(taken[many - 2]!, ['after'])).baseOffset, 1);
    const answeredMs = performance.now() - started;
    await harness.control({ op: 'health' });
    const waitingThen = harness.stats[StatSlot.partitionsAwaitingRecovery]!;
    assert.ok(
      waitingThen > 0,
      `the requests were answered after ${answeredMs.toFixed(0)} ms, once every partition was recovered: the worker recovered them all before serving`,
    );
    const deadline = Date.now() + 30_000;
    while (harness.stats[StatSlot.partitionsAwaitingRecovery]! > 0) {
      assert.ok(Date.now() < deadline, 'the background recovery did not finish');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    console.log(
      `# answered ${answeredMs.toFixed(0)} ms after the restart with ${waitingThen} of ${many} partitions still to recover; all recovered after ${(performance.now() - started).toFixed(0)} ms`,
    );
    await harness.control({ op: 'health' });
    assert.equal(harness.stats[StatSlot.openLogs], many, 'every log was recovered (and is open)');
    for (const ref of [taken[0]!, taken[300]!, taken[many - 2]!]) {
      const read = await harness.readAll(ref);
      assert.equal(read.get(0), `p${ref.partition}`);
    }
  } finally {
    await harness.stop();
    await writer.stop();
  }
});
