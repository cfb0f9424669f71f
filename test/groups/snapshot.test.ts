import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type GroupCommand, GroupRegistry, type GroupsSnapshot } from '../../src/core/groups/registry.js';
import { initialPartitionCounts, stepsArb, type TimedStep } from './commands.js';
import { fcOptions } from './fc-options.js';

/** Turns a generated step into a command; commits quote generation 1 or 2, enough to hit every branch. */
function toCommand({ step }: TimedStep, nowMs: number): GroupCommand {
  switch (step.kind) {
    case 'join':
      return { ...step, nowMs };
    case 'heartbeat':
    case 'leave':
      return { kind: step.kind, groupId: step.groupId, memberId: step.memberId, nowMs };
    case 'tick':
      return { kind: 'tick', nowMs };
    case 'set_topic_partitions':
      return { ...step, nowMs };
    case 'commit': {
      const { groupId, memberId, topic, partition, offset } = step;
      const base = {
        kind: 'commit' as const,
        groupId,
        topic,
        partition,
        offset,
        metadata: `m${offset}`,
        nowMs,
      };
      if (step.generation === 'none') return base;
      return { ...base, memberId, generation: step.generation === 'current' ? 2 : 1 };
    }
  }
}

function commandsOf(steps: readonly TimedStep[]): GroupCommand[] {
  let nowMs = 0;
  const commands: GroupCommand[] = initialPartitionCounts.map(([topic, partitionCount]) => ({
    kind: 'set_topic_partitions',
    topic,
    partitionCount,
    nowMs,
  }));
  for (const step of steps) {
    nowMs += step.advanceMs;
    commands.push(toCommand(step, nowMs));
  }
  return commands;
}

/** Through JSON, as the broker stores it. */
function persisted(snapshot: GroupsSnapshot): GroupsSnapshot {
  return JSON.parse(JSON.stringify(snapshot)) as GroupsSnapshot;
}

test('a snapshot restored from JSON equals the original and behaves the same from then on', () => {
  fc.assert(
    fc.property(stepsArb, stepsArb, (before, after) => {
      const original = new GroupRegistry();
      for (const command of commandsOf(before)) original.apply(command);
      const snapshot = original.toSnapshot();
      const restored = GroupRegistry.fromSnapshot(persisted(snapshot));
      assert.deepEqual(restored.toSnapshot(), snapshot);
      for (const groupId of original.listGroups()) {
        assert.deepEqual(restored.describe(groupId), original.describe(groupId));
      }
      // Continue both with the same commands, later in time than everything before.
      const offsetMs = snapshot.clockMs;
      for (const command of commandsOf(after)) {
        const shifted = { ...command, nowMs: command.nowMs + offsetMs };
        assert.deepEqual(restored.apply(shifted), original.apply(shifted));
      }
      assert.deepEqual(restored.toSnapshot(), original.toSnapshot());
    }),
    fcOptions(200),
  );
});

test('the same commands give the same state on every replica', () => {
  fc.assert(
    fc.property(stepsArb, (steps) => {
      const [a, b] = [new GroupRegistry(), new GroupRegistry()];
      const commands = commandsOf(steps);
      for (const command of commands) a.apply(command);
      // The second replica receives copies that went through JSON, as commands from a Raft log would.
      for (const command of commands) b.apply(JSON.parse(JSON.stringify(command)) as GroupCommand);
      assert.deepEqual(JSON.stringify(b.toSnapshot()), JSON.stringify(a.toSnapshot()));
    }),
    fcOptions(100),
  );
});

test('committed offsets, members, generations and pending hand-overs survive a restart', () => {
  const r = new GroupRegistry();
  r.setTopicPartitions('__proto__', 2, 0);
  r.join('g', 'a', ['__proto__'], 0);
  r.commit('g', 'a', 1, '__proto__', 1, 42, 5, 'meta');
  r.join('g', 'b', ['__proto__'], 10); // b waits for a's acknowledgement
  r.commit('solo', undefined, undefined, '__proto__', 0, 7, 11);
  const restored = GroupRegistry.fromSnapshot(persisted(r.toSnapshot()));
  assert.equal(restored.committedOffset('g', '__proto__', 1), 42);
  assert.equal(restored.committedOffset('solo', '__proto__', 0), 7);
  assert.equal(restored.describe('g')?.state, 'rebalancing');
  assert.deepEqual(restored.heartbeat('g', 'b', 12), {
    kind: 'ok',
    generation: 2,
    rebalance: true,
    assignments: {},
  });
  const a = restored.heartbeat('g', 'a', 13);
  assert.equal(a.kind, 'ok');
  const b = restored.heartbeat('g', 'b', 14);
  assert.ok(b.kind === 'ok' && Object.hasOwn(b.assignments, '__proto__'), JSON.stringify(b));
  assert.deepEqual(restored.tick(10_013).evicted, [{ groupId: 'g', memberId: 'a' }]);
});
