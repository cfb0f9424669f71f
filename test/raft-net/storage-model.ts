// Shared by the FileStorage tests: random storage operations made valid against a MemoryStorage model (as
// Raft would issue them), the observable view of a Storage, and the states a crash in the middle of an
// operation may legally leave. Test code only.
import fc from 'fast-check';
import { MemoryStorage, type Storage } from '../../src/core/raft/storage.js';
import type { Entry, HardState, Snapshot } from '../../src/core/raft/types.js';
import type { FileStorage } from '../../src/raft/file-storage.js';

/** Everything a reader of `Storage` can observe, as a plain value to compare. */
export function view(s: Storage) {
  const entries =
    s.lastIndex() >= s.firstIndex() ? s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity) : [];
  return {
    hard: s.hardState(),
    snapshot: s.snapshot(),
    firstIndex: s.firstIndex(),
    lastIndex: s.lastIndex(),
    snapshotTerm: s.term(s.firstIndex() - 1),
    entries: entries.map((e) => ({ ...e, data: [...e.data] })),
  };
}

export type Op =
  | { kind: 'append'; at: number; terms: number[]; bytes: number[] }
  | { kind: 'hard'; termUp: number; vote: string; commitAt: number }
  | { kind: 'compact'; at: number }
  | { kind: 'snapshot'; ahead: number; term: number; data: number[] }
  | { kind: 'reopen' };

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      at: fc.nat(40),
      terms: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 }),
      bytes: fc.array(fc.nat(255), { maxLength: 12 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('hard' as const),
      termUp: fc.nat(2),
      vote: fc.constantFrom('', 'a', 'node-β'),
      commitAt: fc.nat(40),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const), at: fc.nat(40) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('snapshot' as const),
      ahead: fc.nat(5),
      term: fc.integer({ min: 1, max: 8 }),
      data: fc.array(fc.nat(255), { maxLength: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
);

/**
 * Turns a generated op into a concrete, valid call against the current model, the way Raft would: committed
 * entries are never truncated, terms never go back, a compaction stays within the log.
 */
export type Call =
  | { kind: 'append'; entries: Entry[] }
  | { kind: 'hard'; hs: HardState }
  | { kind: 'compact'; snap: Snapshot }
  | { kind: 'snapshot'; snap: Snapshot }
  | { kind: 'reopen' };

export function concretize(op: Op, model: MemoryStorage): Call | undefined {
  const hard = model.hardState();
  const first = model.firstIndex();
  const last = model.lastIndex();
  switch (op.kind) {
    case 'append': {
      const lo = Math.max(first, hard.commit + 1);
      if (lo > last + 1) return undefined;
      const at = lo + (op.at % (last + 2 - lo));
      const entries = op.terms.map((term, i) => ({
        index: at + i,
        term,
        kind: (term % 3 === 0 ? 'conf' : 'normal') as Entry['kind'],
        data: new Uint8Array(op.bytes.map((b) => (b + i) & 0xff)),
      }));
      return { kind: 'append', entries };
    }
    case 'hard':
      return {
        kind: 'hard',
        hs: {
          term: hard.term + op.termUp,
          vote: op.vote,
          commit: Math.max(hard.commit, op.commitAt % (last + 1)),
        },
      };
    case 'compact': {
      if (last < first) return undefined;
      const index = first + (op.at % (last - first + 1));
      const snap = {
        index,
        term: model.term(index)!,
        conf: { voters: ['a', 'b'], learners: ['c'] },
        data: new Uint8Array([index & 0xff]),
      };
      return { kind: 'compact', snap };
    }
    case 'snapshot': {
      const index = Math.max(model.snapshot().index, hard.commit) + 1 + op.ahead;
      const snap = {
        index,
        term: op.term,
        conf: { voters: ['x'], learners: [] },
        data: new Uint8Array(op.data),
      };
      return { kind: 'snapshot', snap };
    }
    case 'reopen':
      return { kind: 'reopen' };
  }
}

export function applyTo(s: MemoryStorage | FileStorage, call: Call): void {
  switch (call.kind) {
    case 'append':
      s.append(call.entries);
      return;
    case 'hard':
      s.setHardState(call.hs);
      return;
    case 'compact':
      s.compact(call.snap);
      return;
    case 'snapshot':
      s.applySnapshot(call.snap);
      return;
    case 'reopen':
      return;
  }
}

/** A state as a comparable value, and the states a crash in the middle of `call` may legally leave. */
export function acceptableAfterCrash(
  before: MemoryStorage,
  call: Call,
  beforeOps: Call[],
): ReturnType<typeof view>[] {
  const rebuild = (calls: Call[]) => {
    const m = new MemoryStorage();
    for (const c of calls) applyTo(m, c);
    return m;
  };
  const out = [view(before)];
  switch (call.kind) {
    case 'append':
      // The truncation and then any prefix of the new records may have reached the disk.
      for (let k = 0; k <= call.entries.length; k++) {
        const m = rebuild(beforeOps);
        if (k === 0) {
          // The truncation alone: the log cut before the first new index, nothing appended yet.
          const first = call.entries[0]!.index;
          if (first <= m.lastIndex()) {
            const kept = m.entries(m.firstIndex(), first, Infinity);
            out.push({
              ...view(m),
              lastIndex: first - 1,
              entries: kept.map((e) => ({ ...e, data: [...e.data] })),
            });
          }
          continue;
        }
        m.append(call.entries.slice(0, k));
        out.push(view(m));
      }
      return out;
    case 'hard':
    case 'compact':
      out.push(view(rebuild([...beforeOps, call])));
      return out;
    case 'snapshot': {
      const after = rebuild([...beforeOps, call]);
      out.push(view(after));
      // The snapshot landed but the new (empty) log did not: recovery keeps the old log's entries past the
      // snapshot when the old log agrees with it at the snapshot's index.
      if (before.term(call.snap.index) === call.snap.term && before.lastIndex() > call.snap.index) {
        const tail = before.entries(call.snap.index + 1, before.lastIndex() + 1, Infinity);
        after.append(tail);
        out.push(view(after));
      }
      return out;
    }
    case 'reopen':
      return out;
  }
}
