import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultGroupConfig, GroupRegistry } from '../../src/core/groups/registry.js';

/** Narrows a result to its `ok` variant, failing the test with the whole value otherwise. */
function ok<R extends { kind: string }>(result: R): Extract<R, { kind: 'ok' }> {
  assert.equal(result.kind, 'ok', `expected ok, got ${JSON.stringify(result)}`);
  return result as Extract<R, { kind: 'ok' }>;
}

function registryWith(topics: Record<string, number>): GroupRegistry {
  const registry = new GroupRegistry();
  for (const [topic, count] of Object.entries(topics)) ok(registry.setTopicPartitions(topic, count, 0));
  registry.checkInvariants();
  return registry;
}

test('the first member of a group receives every partition of its topics at generation 1', () => {
  const r = registryWith({ orders: 3, audit: 1 });
  const joined = ok(r.join('g', 'a', ['orders', 'audit'], 0));
  assert.deepEqual(joined.assignments, { audit: [0], orders: [0, 1, 2] });
  assert.equal(joined.generation, 1);
  assert.equal(joined.sessionTimeoutMs, defaultGroupConfig.sessionTimeoutMsDefault);
  assert.equal(r.describe('g')?.state, 'stable');
  const again = ok(r.heartbeat('g', 'a', 100));
  assert.deepEqual(again, { kind: 'ok', generation: 1, rebalance: false, assignments: joined.assignments });
});

test('a joining member gets its share only after the current owner acknowledges the revocation', () => {
  const r = registryWith({ t: 4 });
  ok(r.join('g', 'a', ['t'], 0));
  const b = ok(r.join('g', 'b', ['t'], 10));
  assert.equal(b.generation, 2);
  assert.deepEqual(b.assignments, {}, 'b must wait: a still owns everything');
  assert.equal(b.rebalance, true);
  assert.equal(r.describe('g')?.state, 'rebalancing');

  // b polling again changes nothing until a has heard of generation 2.
  assert.deepEqual(ok(r.heartbeat('g', 'b', 20)).assignments, {});

  const a = ok(r.heartbeat('g', 'a', 30));
  assert.equal(a.generation, 2);
  assert.equal(a.rebalance, true);
  assert.deepEqual(a.assignments, { t: [0, 1] });

  const b2 = ok(r.heartbeat('g', 'b', 40));
  assert.deepEqual(b2.assignments, { t: [2, 3] });
  assert.equal(b2.rebalance, true, 'the assignment changed in this answer');
  assert.equal(ok(r.heartbeat('g', 'b', 50)).rebalance, false);
  assert.equal(ok(r.heartbeat('g', 'a', 50)).rebalance, false);
  assert.equal(r.describe('g')?.state, 'stable');
  r.checkInvariants();
});

test('a member that leaves frees its partitions for the others at their next heartbeat', () => {
  const r = registryWith({ t: 4 });
  ok(r.join('g', 'a', ['t'], 0));
  ok(r.join('g', 'b', ['t'], 0));
  ok(r.heartbeat('g', 'a', 1));
  ok(r.heartbeat('g', 'b', 2));
  const left = ok(r.leave('g', 'b', 3));
  assert.equal(left.generation, 3);
  const a = ok(r.heartbeat('g', 'a', 4));
  assert.deepEqual(a, { kind: 'ok', generation: 3, rebalance: true, assignments: { t: [0, 1, 2, 3] } });
  assert.deepEqual(r.heartbeat('g', 'b', 5), { kind: 'unknown_member' });
  assert.deepEqual(r.leave('g', 'b', 5), { kind: 'unknown_member' });
});

test('a silent member is evicted when its own session timeout expires, and its partitions move', () => {
  const r = registryWith({ t: 2 });
  ok(r.join('g', 'a', ['t'], 0, 3_000));
  ok(r.join('g', 'b', ['t'], 0, 60_000));
  ok(r.heartbeat('g', 'a', 1_000));
  ok(r.heartbeat('g', 'b', 1_000));
  assert.deepEqual(ok(r.tick(3_999)).evicted, [], 'a heartbeated at 1000: its session lasts to 4000');
  assert.deepEqual(ok(r.tick(4_000)).evicted, [{ groupId: 'g', memberId: 'a' }]);
  const b = ok(r.heartbeat('g', 'b', 4_001));
  assert.deepEqual(b.assignments, { t: [0, 1] });
  assert.equal(b.generation, 3);
  assert.deepEqual(r.heartbeat('g', 'a', 4_002), { kind: 'unknown_member' });
});

test('an evicted owner releases a moving partition without ever acknowledging it', () => {
  const r = registryWith({ t: 2 });
  ok(r.join('g', 'a', ['t'], 0, 5_000));
  const b = ok(r.join('g', 'b', ['t'], 1_000, 60_000));
  assert.deepEqual(b.assignments, {});
  assert.deepEqual(ok(r.heartbeat('g', 'b', 2_000)).assignments, {}, 'a has not acknowledged yet');
  ok(r.tick(5_000));
  assert.deepEqual(ok(r.heartbeat('g', 'b', 5_001)).assignments, { t: [0, 1] });
  r.checkInvariants();
});

test('re-registering with the same consumer id and topics returns the same answer and keeps the generation', () => {
  const r = registryWith({ t: 3 });
  const first = ok(r.join('g', 'a', ['t'], 0));
  const second = ok(r.join('g', 'a', ['t', 't'], 5));
  assert.deepEqual({ ...second, rebalance: true }, { ...first, rebalance: true });
  assert.equal(second.rebalance, false);
  assert.equal(r.describe('g')?.generation, 1);
  assert.equal(r.describe('g')?.members.length, 1);
});

test('re-registering with other topics changes the subscription and rebalances', () => {
  const r = registryWith({ t: 2, u: 2 });
  ok(r.join('g', 'a', ['t'], 0));
  const again = ok(r.join('g', 'a', ['u'], 5));
  assert.equal(again.generation, 2);
  assert.deepEqual(again.assignments, { u: [0, 1] });
});

test('a commit quoting a stale generation is refused with the generation to use', () => {
  const r = registryWith({ t: 2 });
  ok(r.join('g', 'a', ['t'], 0));
  ok(r.commit('g', 'a', 1, 't', 0, 10, 1));
  ok(r.join('g', 'b', ['t'], 2));
  // a has not heard of generation 2 yet, still owns partition 1, and may still commit at generation 1.
  ok(r.commit('g', 'a', 1, 't', 1, 11, 3));
  ok(r.heartbeat('g', 'a', 4));
  assert.deepEqual(r.commit('g', 'a', 1, 't', 0, 12, 5), { kind: 'stale_generation', current: 2 });
  assert.deepEqual(r.commit('g', 'a', 3, 't', 0, 12, 5), { kind: 'stale_generation', current: 2 });
  ok(r.commit('g', 'a', 2, 't', 0, 12, 6));
  assert.equal(r.committedOffset('g', 't', 0), 12);
});

test('a commit for a partition the member does not own is refused', () => {
  const r = registryWith({ t: 2 });
  ok(r.join('g', 'a', ['t'], 0));
  ok(r.join('g', 'b', ['t'], 1));
  const a = ok(r.heartbeat('g', 'a', 2));
  assert.deepEqual(a.assignments, { t: [0] });
  assert.deepEqual(r.commit('g', 'a', 2, 't', 1, 5, 3), { kind: 'not_owner' });
  assert.deepEqual(r.commit('g', 'b', 2, 't', 0, 5, 3), { kind: 'not_owner' });
  assert.deepEqual(r.commit('g', 'ghost', 2, 't', 0, 5, 3), { kind: 'unknown_member' });
  assert.deepEqual(r.commit('nope', 'a', 2, 't', 0, 5, 3), { kind: 'unknown_group' });
  assert.equal(r.committedOffset('g', 't', 1), undefined);
});

test('a standalone commit is accepted only while the group has no members', () => {
  const r = registryWith({ t: 1 });
  ok(r.commit('solo', undefined, undefined, 't', 0, 7, 1, 'checkpoint'));
  assert.equal(r.committedOffset('solo', 't', 0), 7);
  ok(r.join('solo', 'a', ['t'], 2));
  assert.deepEqual(r.commit('solo', undefined, undefined, 't', 0, 8, 3), {
    kind: 'group_has_members',
    generation: 1,
  });
  ok(r.leave('solo', 'a', 4));
  ok(r.commit('solo', undefined, undefined, 't', 0, 9, 5));
  assert.equal(r.committedOffset('solo', 't', 0), 9);
  assert.deepEqual(r.commit('solo', 'a', undefined, 't', 0, 9, 5).kind, 'invalid_request');
});

test('committed offsets outlive the members, with metadata, and describe reports lag per partition', () => {
  const r = registryWith({ t: 2 });
  ok(r.join('g', 'a', ['t'], 0));
  ok(r.commit('g', 'a', 1, 't', 0, 40, 10, 'host-1'));
  ok(r.commit('g', 'a', 1, 't', 1, 5, 11));
  ok(r.leave('g', 'a', 12));
  const described = r.describe('g', (topic, partition) =>
    topic === 't' && partition === 0 ? 100 : undefined,
  );
  assert.ok(described !== undefined, 'a group with offsets is kept after its last member leaves');
  assert.equal(described.state, 'empty');
  assert.deepEqual(described.offsets, [
    { topic: 't', partition: 0, offset: 40, metadata: 'host-1', commitTimestampMs: 10, lag: 60 },
    { topic: 't', partition: 1, offset: 5, metadata: '', commitTimestampMs: 11 },
  ]);
});

test('a group without offsets disappears with its last member', () => {
  const r = registryWith({ t: 1 });
  ok(r.join('g', 'a', ['t'], 0));
  ok(r.leave('g', 'a', 1));
  assert.equal(r.describe('g'), undefined);
  assert.deepEqual(r.listGroups(), []);
});

test('describe lists members with their current and target assignments', () => {
  const r = registryWith({ t: 2 });
  ok(r.join('g', 'b', ['t'], 0));
  ok(r.join('g', 'a', ['t'], 1));
  const d = r.describe('g')!;
  assert.equal(d.assignor, 'sticky');
  assert.deepEqual(
    d.members.map((m) => [m.memberId, m.generation, m.assignments, m.target]),
    [
      ['a', 2, {}, { t: [1] }],
      ['b', 1, { t: [0, 1] }, { t: [0] }],
    ],
  );
});

test('the group limits come back as values', () => {
  const r = new GroupRegistry({ ...defaultGroupConfig, groupsMax: 2, membersPerGroupMax: 2 });
  ok(r.setTopicPartitions('t', 1, 0));
  ok(r.join('g1', 'a', ['t'], 0));
  ok(r.join('g1', 'b', ['t'], 0));
  assert.deepEqual(r.join('g1', 'c', ['t'], 0), { kind: 'group_full', membersPerGroupMax: 2 });
  ok(r.join('g1', 'b', ['t'], 1)); // an existing member is not a new one
  ok(r.join('g2', 'a', ['t'], 0));
  assert.deepEqual(r.join('g3', 'a', ['t'], 0), { kind: 'too_many_groups', groupsMax: 2 });
  assert.deepEqual(r.commit('g3', undefined, undefined, 't', 0, 1, 0), {
    kind: 'too_many_groups',
    groupsMax: 2,
  });
});

test('requests that break the rules come back as invalid_request', () => {
  const r = registryWith({ t: 1 });
  const kinds = [
    r.join('', 'a', ['t'], 0),
    r.join('g', '', ['t'], 0),
    r.join('g', 'a', [], 0),
    r.join('g', 'a', [''], 0),
    r.join('g', 'a', ['t'], 0, 10),
    r.join('g', 'a', ['t'], 0, 1.5e3 + 0.5),
    r.join('g', 'a', ['t'], 0, undefined, 'fastest'),
    r.join('g', 'x'.repeat(defaultGroupConfig.idCharsMax + 1), ['t'], 0),
    r.commit('g', undefined, undefined, 't', 0, -1, 0),
    r.commit(
      'g',
      undefined,
      undefined,
      't',
      0,
      1,
      0,
      'm'.repeat(defaultGroupConfig.commitMetadataCharsMax + 1),
    ),
    r.setTopicPartitions('t', -1, 0),
  ].map((result) => result.kind);
  assert.deepEqual(new Set(kinds), new Set(['invalid_request']));
  assert.equal(r.commit('g', undefined, undefined, 't', 1, 1, 0).kind, 'unknown_partition');
  assert.equal(r.commit('g', undefined, undefined, 'missing', 0, 1, 0).kind, 'unknown_partition');
  assert.deepEqual(r.listGroups(), [], 'refused requests create no group');
});

test('the first member chooses the assignor and later members must agree', () => {
  const r = registryWith({ t: 4, u: 4 });
  ok(r.join('g', 'a', ['t', 'u'], 0, undefined, 'range'));
  assert.deepEqual(r.join('g', 'b', ['t', 'u'], 0, undefined, 'sticky'), {
    kind: 'inconsistent_assignor',
    assignor: 'range',
  });
  ok(r.join('g', 'b', ['t', 'u'], 0));
  ok(r.heartbeat('g', 'a', 1));
  assert.deepEqual(ok(r.heartbeat('g', 'b', 2)).assignments, { t: [2, 3], u: [2, 3] });
  ok(r.leave('g', 'a', 3));
  ok(r.leave('g', 'b', 3));
  // Empty again: the next first member chooses anew.
  ok(r.join('g', 'c', ['t'], 4, undefined, 'roundrobin'));
  assert.equal(r.describe('g')?.assignor, 'roundrobin');
});

test('a subscribed topic that grows rebalances and its new partitions are assigned', () => {
  const r = registryWith({ t: 2 });
  ok(r.join('g', 'a', ['t', 'later'], 0));
  ok(r.join('g', 'b', ['t', 'later'], 0));
  ok(r.heartbeat('g', 'a', 1));
  ok(r.heartbeat('g', 'b', 1));
  ok(r.setTopicPartitions('t', 4, 2));
  ok(r.setTopicPartitions('later', 2, 2));
  assert.equal(r.describe('g')?.generation, 4);
  const a = ok(r.heartbeat('g', 'a', 3));
  const b = ok(r.heartbeat('g', 'b', 3));
  const owned = [a.assignments, b.assignments].flatMap((tps) =>
    Object.entries(tps).flatMap(([topic, ps]) => ps.map((p) => `${topic}-${p}`)),
  );
  assert.deepEqual(owned.sort(), ['later-0', 'later-1', 't-0', 't-1', 't-2', 't-3']);
});

test('a deleted topic loses its committed offsets and leaves the assignments', () => {
  const r = registryWith({ t: 2, u: 1 });
  ok(r.join('g', 'a', ['t', 'u'], 0));
  ok(r.commit('g', 'a', 1, 't', 1, 3, 1));
  ok(r.commit('g', 'a', 1, 'u', 0, 3, 1));
  ok(r.setTopicPartitions('t', 0, 2));
  assert.equal(r.committedOffset('g', 't', 1), undefined);
  assert.equal(r.committedOffset('g', 'u', 0), 3);
  assert.deepEqual(ok(r.heartbeat('g', 'a', 3)).assignments, { u: [0] });
});

test('a command stamped earlier than one already applied neither expires nor extends a session', () => {
  const r = registryWith({ t: 1 });
  ok(r.join('g', 'a', ['t'], 10_000, 5_000));
  ok(r.heartbeat('g', 'a', 2_000)); // from a leader whose clock lags: treated as 10 000
  assert.deepEqual(ok(r.tick(14_999)).evicted, []);
  assert.deepEqual(ok(r.tick(15_000)).evicted, [{ groupId: 'g', memberId: 'a' }]);
});

test('delete_group drops an empty group with its offsets and refuses a group with members', () => {
  const r = registryWith({ t: 1 });
  ok(r.commit('g', undefined, undefined, 't', 0, 1, 0));
  ok(r.join('h', 'a', ['t'], 0));
  assert.deepEqual(r.apply({ kind: 'delete_group', groupId: 'h', nowMs: 1 }), {
    kind: 'group_has_members',
    generation: 1,
  });
  ok(r.apply({ kind: 'delete_group', groupId: 'g', nowMs: 1 }));
  assert.deepEqual(r.listGroups(), ['h']);
  assert.deepEqual(r.apply({ kind: 'delete_group', groupId: 'g', nowMs: 1 }), { kind: 'unknown_group' });
});

test('members expiring in the same tick cost one generation, and the survivor takes all their partitions', () => {
  const r = registryWith({ t: 6 });
  ok(r.join('g', 'a', ['t'], 0, 2_000));
  ok(r.join('g', 'b', ['t'], 0, 2_000));
  ok(r.join('g', 'c', ['t'], 0, 60_000));
  for (const member of ['a', 'b', 'c']) ok(r.heartbeat('g', member, 500));
  assert.equal(r.describe('g')?.generation, 3);
  assert.deepEqual(ok(r.tick(2_500)).evicted, [
    { groupId: 'g', memberId: 'a' },
    { groupId: 'g', memberId: 'b' },
  ]);
  assert.equal(r.describe('g')?.generation, 4);
  assert.deepEqual(ok(r.heartbeat('g', 'c', 2_501)).assignments, { t: [0, 1, 2, 3, 4, 5] });
});
