import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  type Assignor,
  type AssignorInput,
  type MemberSubscription,
  range,
  roundRobin,
  sticky,
} from '../../src/core/groups/assignors.js';
import type { Assignment } from '../../src/core/groups/topic-partitions.js';
import { fcOptions } from './fc-options.js';

const allAssignors: ReadonlyArray<readonly [string, Assignor]> = [
  ['range', range],
  ['roundRobin', roundRobin],
  ['sticky', sticky],
];

const topicNames = ['orders', 'payments', 't0', '__proto__'];
const memberPool = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'constructor'];

/** topic → partition count; some topics may be missing or empty. */
const partitionCountsArb = fc
  .tuple(...topicNames.map(() => fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined })))
  .map((counts) => {
    const out = new Map<string, number>();
    counts.forEach((count, i) => {
      if (count !== undefined) out.set(topicNames[i]!, count);
    });
    return out;
  });

const memberIdsArb = fc.uniqueArray(fc.constantFrom(...memberPool), {
  minLength: 1,
  maxLength: memberPool.length,
});

/** Members with possibly different subscriptions. */
const heterogeneousMembersArb = memberIdsArb.chain((ids) =>
  fc
    .tuple(...ids.map(() => fc.uniqueArray(fc.constantFrom(...topicNames), { minLength: 1 })))
    .map((subs) => ids.map((memberId, i): MemberSubscription => ({ memberId, topics: subs[i]! }))),
);

/** Members all subscribed to the same topics. */
const identicalMembersArb = fc
  .tuple(memberIdsArb, fc.uniqueArray(fc.constantFrom(...topicNames), { minLength: 1 }))
  .map(([ids, topics]) => ids.map((memberId): MemberSubscription => ({ memberId, topics })));

/** A previous assignment: each partition has at most one owner, possibly a member that has left. */
function previousArb(members: readonly MemberSubscription[], counts: ReadonlyMap<string, number>) {
  const owners = [...members.map((m) => m.memberId), 'departed', undefined];
  const slots: Array<readonly [string, number]> = [];
  for (const [topic, count] of counts) for (let p = 0; p < count; p++) slots.push([topic, p]);
  return fc.tuple(...slots.map(() => fc.constantFrom(...owners))).map((chosen) => {
    const previous = new Map<string, Map<string, number[]>>();
    chosen.forEach((owner, i) => {
      if (owner === undefined) return;
      const [topic, p] = slots[i]!;
      const topics = previous.get(owner) ?? new Map<string, number[]>();
      previous.set(owner, topics);
      topics.set(topic, [...(topics.get(topic) ?? []), p]);
    });
    return previous as Assignment;
  });
}

const heterogeneousInputArb = fc
  .tuple(heterogeneousMembersArb, partitionCountsArb)
  .chain(([members, partitionCounts]) =>
    previousArb(members, partitionCounts).map(
      (previous): AssignorInput => ({ members, partitionCounts, previous }),
    ),
  );

const identicalInputArb = fc
  .tuple(identicalMembersArb, partitionCountsArb)
  .chain(([members, partitionCounts]) =>
    previousArb(members, partitionCounts).map(
      (previous): AssignorInput => ({ members, partitionCounts, previous }),
    ),
  );

/** topic-partition → owner, checking along the way that no partition appears twice. */
function ownersOf(assignment: Assignment): Map<string, string> {
  const owners = new Map<string, string>();
  for (const [memberId, tps] of assignment) {
    for (const [topic, partitions] of tps) {
      assert.ok(partitions.length > 0, `empty partition list for ${memberId}/${topic}`);
      for (let i = 0; i < partitions.length; i++) {
        if (i > 0) assert.ok(partitions[i - 1]! < partitions[i]!, 'partitions not strictly ascending');
        const key = `${topic}:${partitions[i]}`;
        assert.equal(owners.get(key), undefined, `${key} assigned twice`);
        owners.set(key, memberId);
      }
    }
  }
  return owners;
}

function totals(assignment: Assignment): Map<string, number> {
  const out = new Map<string, number>();
  for (const [memberId, tps] of assignment) {
    let n = 0;
    for (const partitions of tps.values()) n += partitions.length;
    out.set(memberId, n);
  }
  return out;
}

/** An order-preserving plain form, so equality also covers iteration order. */
function plain(assignment: Assignment): unknown {
  return [...assignment].map(([memberId, tps]) => [memberId, [...tps]]);
}

function checkValid(input: AssignorInput, assignment: Assignment): void {
  assert.deepEqual(
    [...assignment.keys()].sort(),
    input.members.map((m) => m.memberId).sort(),
    'output members differ from input members',
  );
  const owners = ownersOf(assignment);
  const subscribed = new Map(input.members.map((m) => [m.memberId, new Set(m.topics)]));
  let expected = 0;
  for (const [topic, count] of input.partitionCounts) {
    if (!input.members.some((m) => m.topics.includes(topic))) continue;
    for (let p = 0; p < count; p++) {
      const owner = owners.get(`${topic}:${p}`);
      assert.ok(owner !== undefined, `${topic}:${p} unassigned`);
      assert.ok(subscribed.get(owner)!.has(topic), `${topic}:${p} given to ${owner}, not subscribed`);
      expected++;
    }
  }
  assert.equal(owners.size, expected, 'a partition of an unsubscribed or unknown topic was assigned');
}

/** A small deterministic shuffle driven by a seed the property draws. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const j = (state >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function reordered(input: AssignorInput, seed: number): AssignorInput {
  return {
    members: shuffled(input.members, seed).map((m, i) => ({
      memberId: m.memberId,
      topics: shuffled([...m.topics, ...m.topics], seed + i),
    })),
    partitionCounts: new Map(shuffled([...input.partitionCounts], seed + 1)),
    previous: new Map(
      shuffled([...input.previous], seed + 2).map(([memberId, tps]) => [
        memberId,
        new Map(shuffled([...tps], seed + 3).map(([topic, ps]) => [topic, shuffled(ps, seed + 4)])),
      ]),
    ),
  };
}

/** The fewest partitions any balanced assignment must move away from `previous` (identical subscriptions). */
function minimumMoves(input: AssignorInput): number {
  const topics = new Set(input.members[0]!.topics);
  let total = 0;
  for (const [topic, count] of input.partitionCounts) if (topics.has(topic)) total += count;
  const memberCount = input.members.length;
  const quota = Math.floor(total / memberCount);
  const withExtra = total % memberCount;
  const held = input.members
    .map((m) => {
      let h = 0;
      for (const [topic, partitions] of input.previous.get(m.memberId) ?? new Map<string, number[]>()) {
        if (topics.has(topic))
          h += partitions.filter((p) => p < (input.partitionCounts.get(topic) ?? 0)).length;
      }
      return h;
    })
    .sort((a, b) => b - a);
  const keptMax = held.reduce((sum, h, i) => sum + Math.min(h, i < withExtra ? quota + 1 : quota), 0);
  return total - keptMax;
}

function movedCount(previous: Assignment, next: Assignment): number {
  const before = ownersOf(previous);
  let moved = 0;
  for (const [key, owner] of ownersOf(next)) if (before.get(key) !== owner) moved++;
  return moved;
}

for (const [name, assignor] of allAssignors) {
  test(`${name}: every subscribed partition is assigned exactly once, only to a subscriber`, () => {
    fc.assert(
      fc.property(heterogeneousInputArb, (input) => checkValid(input, assignor(input))),
      fcOptions(300),
    );
  });

  test(`${name}: the output does not depend on the order of its input`, () => {
    fc.assert(
      fc.property(heterogeneousInputArb, fc.integer(), (input, seed) => {
        assert.deepEqual(plain(assignor(reordered(input, seed))), plain(assignor(input)));
      }),
      fcOptions(300),
    );
  });
}

test('roundRobin and sticky: identical subscriptions give every member the same count within one', () => {
  fc.assert(
    fc.property(identicalInputArb, (input) => {
      for (const assignor of [roundRobin, sticky]) {
        const counts = [...totals(assignor(input)).values()];
        assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `unbalanced counts ${counts}`);
      }
    }),
    fcOptions(300),
  );
});

test('range: identical subscriptions give every member the same count within one per topic', () => {
  fc.assert(
    fc.property(identicalInputArb, (input) => {
      const assignment = range(input);
      for (const topic of input.members[0]!.topics) {
        const counts = [...assignment.values()].map((tps) => tps.get(topic)?.length ?? 0);
        assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `unbalanced ${topic}: ${counts}`);
      }
    }),
    fcOptions(300),
  );
});

test('range: each member receives one contiguous run of partitions per topic, in member order', () => {
  const assignment = range({
    members: [
      { memberId: 'c', topics: ['t'] },
      { memberId: 'a', topics: ['t'] },
      { memberId: 'b', topics: ['t', 'u'] },
    ],
    partitionCounts: new Map([
      ['t', 7],
      ['u', 2],
    ]),
    previous: new Map(),
  });
  assert.deepEqual(plain(assignment), [
    ['a', [['t', [0, 1, 2]]]],
    [
      'b',
      [
        ['t', [3, 4]],
        ['u', [0, 1]],
      ],
    ],
    ['c', [['t', [5, 6]]]],
  ]);
});

test('sticky: with any subscriptions, no partition could move to a subscriber holding two fewer', () => {
  fc.assert(
    fc.property(heterogeneousInputArb, (input) => {
      const assignment = sticky(input);
      const counts = totals(assignment);
      for (const [from, tps] of assignment) {
        for (const topic of tps.keys()) {
          for (const to of input.members) {
            if (!to.topics.includes(topic)) continue;
            assert.ok(
              counts.get(to.memberId)! >= counts.get(from)! - 1,
              `${topic} could move from ${from} (${counts.get(from)}) to ${to.memberId} (${counts.get(to.memberId)})`,
            );
          }
        }
      }
    }),
    fcOptions(300),
  );
});

test('sticky: from any previous assignment, identical subscriptions move exactly the minimum for balance', () => {
  fc.assert(
    fc.property(identicalInputArb, (input) => {
      assert.equal(movedCount(input.previous, sticky(input)), minimumMoves(input));
    }),
    fcOptions(400),
  );
});

test('sticky: when a member joins or leaves, exactly the minimum number of partitions moves', () => {
  fc.assert(
    fc.property(identicalInputArb, fc.boolean(), fc.nat(), (input, joins, pick) => {
      const before = sticky(input);
      const members = joins
        ? [...input.members, { memberId: 'newcomer', topics: input.members[0]!.topics }]
        : input.members.filter((_, i) => i !== pick % input.members.length);
      fc.pre(members.length > 0);
      const next: AssignorInput = { members, partitionCounts: input.partitionCounts, previous: before };
      const after = sticky(next);
      checkValid(next, after);
      assert.equal(movedCount(before, after), minimumMoves(next));
    }),
    fcOptions(400),
  );
});

test('sticky: an unchanged group keeps its assignment exactly', () => {
  fc.assert(
    fc.property(heterogeneousInputArb, (input) => {
      const first = sticky(input);
      const again = sticky({ ...input, previous: first });
      assert.deepEqual(plain(again), plain(first));
    }),
    fcOptions(300),
  );
});

test('sticky: a previous claim that no longer fits is dropped, the rest is kept', () => {
  const previous: Assignment = new Map([
    [
      'a',
      new Map([
        ['t', [0, 1, 9]],
        ['gone', [0]],
      ]),
    ],
    ['b', new Map([['t', [1, 2]]])],
  ]);
  const assignment = sticky({
    members: [
      { memberId: 'a', topics: ['t'] },
      { memberId: 'b', topics: ['t'] },
    ],
    partitionCounts: new Map([['t', 4]]),
    previous,
  });
  // a keeps 0 and 1 (9 does not exist, `gone` has no partitions), b keeps 2 and takes the orphan 3.
  assert.deepEqual(plain(assignment), [
    ['a', [['t', [0, 1]]]],
    ['b', [['t', [2, 3]]]],
  ]);
});
