// A cluster's group coordinator shows a committed offset (describe, offset fetch, a member's resume point)
// only once the metadata log committed it. Before, the registry took a commit at once and the proposal
// followed: describe could show an offset the log never got, and after the coordinator died the group's
// committed offset went back (the three-node group test caught "partition 4 committed 26 after 29").
// Here the control thread is a fake whose proposals the test settles one by one.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { GroupsService } from '../../src/broker/groups-service.js';
import type { ControlReply, GroupCommand, GroupOffsets } from '../../src/cluster/control-protocol.js';
import { GroupRegistry } from '../../src/core/groups/registry.js';

const dataDir = mkdtempSync(join(tmpdir(), 'broker-coordinator-visibility-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

interface Proposal {
  readonly command: GroupCommand;
  readonly settle: (reply: ControlReply) => void;
}

async function coordinator(startingOffsets: GroupOffsets = []) {
  const proposals: Proposal[] = [];
  let term: { term: number; groups: GroupOffsets } | null = { term: 3, groups: startingOffsets };
  const service = await GroupsService.open({
    dataDir,
    sessionTimeoutMs: 10_000,
    tickIntervalMs: 60_000,
    logEndOffset: () => 1_000,
    topicExists: () => true,
    topicPartitions: () => [['t', 2] as const],
    cluster: {
      coordinatorTerm: () => term,
      groupCommand: (_term, command) =>
        new Promise<ControlReply>((settle) => proposals.push({ command, settle })),
    },
  });
  return {
    service,
    proposals,
    /** Another node takes over, then this one coordinates again in a later term from `groups`. */
    newTerm(next: number, groups: GroupOffsets) {
      term = { term: next, groups };
      service.coordinatorChanged();
    },
  };
}

const ok: ControlReply = { kind: 'committed', count: 1 };
const notCoordinator: ControlReply = {
  kind: 'failed',
  error: 'not_coordinator',
  message: 'this node lost the metadata leadership before the offsets were proposed; nothing was written',
  indefinite: false,
};

function commit(service: GroupsService, offset: number, partition = 0): Promise<void> {
  const nowMs = Date.now();
  const checked = service.tryCommit('g', undefined, undefined, 't', partition, offset, nowMs);
  assert.equal(checked.kind, 'ok');
  return service.commitAllDurably('g', [
    { topic: 't', partition, offset, metadata: '', committedAtMs: nowMs },
  ]);
}

const committed = (service: GroupsService, partition = 0) =>
  service.registry.committedOffset('g', 't', partition);

test('an offset proposed to the metadata log is invisible until the log committed it, and stays invisible if it failed', async () => {
  const { service, proposals } = await coordinator();
  try {
    const first = commit(service, 5);
    assert.equal(proposals.length, 1);
    assert.equal(committed(service), undefined, 'nothing may be shown before the log holds it');
    assert.equal(service.registry.describe('g'), undefined, 'not even the group');
    proposals[0]!.settle(ok);
    await first;
    assert.equal(committed(service), 5);

    const refused = commit(service, 9);
    assert.equal(committed(service), 5);
    proposals[1]!.settle(notCoordinator);
    await assert.rejects(refused, /nothing was written/);
    assert.equal(committed(service), 5, 'a refused proposal leaves the last committed offset');
    assert.deepEqual(
      service.registry.describe('g')?.offsets.map((o) => o.offset),
      [5],
    );
  } finally {
    await service.close();
  }
});

test('an older proposal whose answer comes late does not overwrite a newer one', async () => {
  const { service, proposals } = await coordinator();
  try {
    const older = commit(service, 10);
    const newer = commit(service, 12);
    const otherPartition = commit(service, 3, 1);
    proposals[1]!.settle(ok);
    await newer;
    assert.equal(committed(service), 12);
    proposals[0]!.settle(ok);
    await older;
    assert.equal(committed(service), 12, 'the log holds 12 after 10');
    proposals[2]!.settle(ok);
    await otherPartition;
    assert.equal(committed(service, 1), 3, 'another partition is recorded on its own');
  } finally {
    await service.close();
  }
});

test('a write answered after the coordinator term ended is not recorded in the next term', async () => {
  const { service, proposals, newTerm } = await coordinator([
    { group: 'g', offsets: [{ topic: 't', partition: 0, offset: 4, metadata: '', committedAtMs: 1 }] },
  ]);
  try {
    assert.equal(committed(service), 4, 'a term starts from the offsets the log holds');
    const pending = commit(service, 8);
    // The next term's registry comes from the log as the new term found it (here without the write).
    newTerm(5, [
      { group: 'g', offsets: [{ topic: 't', partition: 0, offset: 4, metadata: '', committedAtMs: 1 }] },
    ]);
    proposals[0]!.settle(ok);
    await pending;
    assert.equal(committed(service), 4, 'the next term shows what its log holds, not a late answer');
  } finally {
    await service.close();
  }
});

test('a member commit (the WebSocket path) is checked against its generation and shown once committed', async () => {
  const { service, proposals } = await coordinator();
  try {
    const joined = service.joinMember('g', 'm1', ['t']);
    assert.equal(joined.kind, 'ok');
    const generation = joined.kind === 'ok' ? joined.generation : -1;
    const stale = await service.commitMember('g', 'm1', generation + 1, 't', 0, 7);
    assert.equal(stale.kind, 'stale_generation');
    assert.equal(proposals.length, 0, 'a refused commit is never proposed');
    const pending = service.commitMember('g', 'm1', generation, 't', 0, 7);
    assert.equal(committed(service), undefined);
    assert.equal(proposals.length, 1);
    proposals[0]!.settle(ok);
    assert.equal((await pending).kind, 'ok');
    assert.equal(committed(service), 7);
  } finally {
    await service.close();
  }
});

test('the registry: a checked-only commit answers as a recorded one would, and records nothing', () => {
  const registry = new GroupRegistry();
  registry.setTopicPartitions('t', 2, 1);
  const joined = registry.join('g', 'm1', ['t'], 1);
  assert.equal(joined.kind, 'ok');
  const generation = joined.kind === 'ok' ? joined.generation : -1;
  const cases: Array<[string | undefined, number | undefined, number]> = [
    ['m1', generation, 0],
    ['m1', generation + 1, 0],
    ['m2', generation, 0],
    [undefined, undefined, 0],
    ['m1', generation, 5],
  ];
  for (const [i, [memberId, gen, partition]] of cases.entries()) {
    const before = registry.committedOffset('g', 't', partition);
    const checked = registry.commit('g', memberId, gen, 't', partition, 10 + i, 2, '', true);
    assert.equal(registry.committedOffset('g', 't', partition), before, 'checking records nothing');
    const made = registry.commit('g', memberId, gen, 't', partition, 10 + i, 2, '');
    assert.deepEqual(checked, made, `${memberId}/${gen}/${partition}`);
  }
  assert.equal(registry.committedOffset('g', 't', 0), 10, 'only the owner at its generation committed');
  // Offsets from the log are recorded without checks; a partition the topic lost is skipped.
  registry.apply({
    kind: 'record_offsets',
    groupId: 'h',
    offsets: [
      { topic: 't', partition: 1, offset: 9, metadata: 'x', commitTimestampMs: 5 },
      { topic: 't', partition: 7, offset: 9, metadata: '', commitTimestampMs: 5 },
    ],
    nowMs: 6,
  });
  assert.deepEqual(
    registry.describe('h')?.offsets.map((o) => [o.partition, o.offset, o.metadata]),
    [[1, 9, 'x']],
  );
  registry.checkInvariants();
});

test('a group deletion is applied once the metadata log took it, and not at all when the write failed', async () => {
  const { service, proposals } = await coordinator([
    { group: 'g', offsets: [{ topic: 't', partition: 0, offset: 4, metadata: '', committedAtMs: 1 }] },
  ]);
  try {
    const refused = service.deleteGroup('g', Date.now());
    assert.equal(committed(service), 4, 'nothing changes before the log takes the deletion');
    proposals[0]!.settle(notCoordinator);
    await assert.rejects(refused, /nothing was written/);
    assert.equal(committed(service), 4, 'a deletion the log refused leaves the group as the log has it');
    const deleted = service.deleteGroup('g', Date.now());
    assert.equal(proposals[1]!.command.kind, 'delete_group');
    proposals[1]!.settle({ kind: 'ok' });
    assert.equal((await deleted).kind, 'ok');
    assert.equal(service.registry.describe('g'), undefined);
    assert.equal((await service.deleteGroup('g', Date.now())).kind, 'unknown_group');
    assert.equal(proposals.length, 2, 'an unknown group is refused without a write');
  } finally {
    await service.close();
  }
});

test('on one node a commit is shown once the groups file holds it; a failed write leaves it pending until the retry', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'broker-groups-pending-'));
  const service = await GroupsService.open({
    dataDir: dir,
    sessionTimeoutMs: 10_000,
    tickIntervalMs: 60_000,
    logEndOffset: () => 1_000,
    topicExists: () => true,
  });
  try {
    service.setTopicPartitions('t', 2);
    await service.persistNow();
    const first = commit(service, 5);
    assert.equal(committed(service), undefined, 'nothing is shown while the write runs');
    await first;
    assert.equal(committed(service), 5);
    const onDisk = () => JSON.parse(readFileSync(join(dir, 'groups.json'), 'utf8'));
    assert.equal(onDisk().groups[0].offsets[0].offset, 5);

    // The data dir becomes a plain file: every write fails (ENOTDIR) until it is a directory again.
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, 'not a directory');
    await assert.rejects(commit(service, 9));
    assert.equal(committed(service), 5, 'a commit whose write failed is not shown');
    assert.match(service.persistFailure ?? '', /groups\.json/);
    rmSync(dir, { force: true });
    mkdirSync(dir);
    const deadline = Date.now() + 10_000;
    while (committed(service) !== 9) {
      assert.ok(Date.now() < deadline, 'the writer retried and the pending commit was recorded');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(onDisk().groups[0].offsets[0].offset, 9, 'and the file holds it');
  } finally {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
