// Random command sequences for the group coordinator's property tests. Times only move forward here (the
// coordinator's clamping of earlier times has its own scenario test); generation numbers in commits are
// filled in at run time from what the client model knows, so the generator only chooses a "flavour".
import fc from 'fast-check';

export const groupIds = ['g1', 'g2'] as const;
export const memberIds = ['a', 'b', 'c', 'd', 'e'] as const;
export const topicNames = ['t', 'u', 'v'] as const;
export const sessionTimeoutsMs = [2_000, 5_000, 10_000] as const;

/**
 * A step that names a member may also carry `pick`: when set and the group has live members, the harness
 * uses the `pick`-th live member (modulo their number) instead of `memberId`, so that most steps reach a
 * member that exists; the rest exercise unknown members and groups.
 */
export type Step =
  | {
      readonly kind: 'join';
      readonly groupId: string;
      readonly memberId: string;
      readonly topics: string[];
      readonly sessionTimeoutMs: number;
    }
  | {
      readonly kind: 'heartbeat';
      readonly groupId: string;
      readonly memberId: string;
      readonly pick?: number;
    }
  | { readonly kind: 'leave'; readonly groupId: string; readonly memberId: string; readonly pick?: number }
  | { readonly kind: 'tick' }
  | { readonly kind: 'set_topic_partitions'; readonly topic: string; readonly partitionCount: number }
  | {
      readonly kind: 'commit';
      readonly groupId: string;
      readonly memberId: string;
      /** `current`: the generation the client was last told; `previous`: one less; `none`: standalone. */
      readonly generation: 'current' | 'previous' | 'none';
      readonly topic: string;
      readonly partition: number;
      readonly offset: number;
      readonly pick?: number;
      /** When set and the member owns something, commit the owned partition this picks instead. */
      readonly ownedPick?: number;
    };

export interface TimedStep {
  readonly step: Step;
  /** Time that passes before the step. */
  readonly advanceMs: number;
}

const groupArb = fc.constantFrom(...groupIds);
const memberArb = fc.constantFrom(...memberIds);

const pickArb = fc.nat(64);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('join' as const),
      groupId: groupArb,
      memberId: memberArb,
      topics: fc.uniqueArray(fc.constantFrom(...topicNames), { minLength: 1 }),
      sessionTimeoutMs: fc.constantFrom(...sessionTimeoutsMs),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant('heartbeat' as const), groupId: groupArb, memberId: memberArb }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('leave' as const), groupId: groupArb, memberId: memberArb }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'tick' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('set_topic_partitions' as const),
      topic: fc.constantFrom(...topicNames),
      partitionCount: fc.integer({ min: 0, max: 6 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        kind: fc.constant('commit' as const),
        groupId: groupArb,
        memberId: memberArb,
        generation: fc.constantFrom('current' as const, 'previous' as const, 'none' as const),
        topic: fc.constantFrom(...topicNames),
        partition: fc.integer({ min: 0, max: 3 }),
        offset: fc.integer({ min: 0, max: 1_000 }),
        pick: pickArb,
        ownedPick: pickArb,
      },
      { requiredKeys: ['kind', 'groupId', 'memberId', 'generation', 'topic', 'partition', 'offset'] },
    ),
  },
);

export const stepsArb = fc.array(
  fc.record({
    step: stepArb,
    advanceMs: fc.oneof(
      { weight: 8, arbitrary: fc.integer({ min: 0, max: 400 }) },
      { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 6_000 }) },
    ),
  }),
  { minLength: 1, maxLength: 120, size: 'max' },
);

/** Topics every sequence starts with, so that joins usually find partitions to share. */
export const initialPartitionCounts: ReadonlyArray<readonly [string, number]> = [
  ['t', 4],
  ['u', 3],
];
