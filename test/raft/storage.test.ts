// MemoryStorage against a plain-array model (fast-check), and the ConfChange wire form.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MemoryStorage } from '../../src/core/raft/storage.js';
import {
  applyConfChange,
  type ConfChange,
  decodeConfChange,
  type Entry,
  encodeConfChange,
} from '../../src/core/raft/types.js';

type Op = { kind: 'append'; at: number; terms: number[] } | { kind: 'compact'; at: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('append' as const),
    at: fc.nat(40),
    terms: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant('compact' as const), at: fc.nat(40) }),
);

test('MemoryStorage matches a model log under appends with truncation and compactions', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
      const disk = new MemoryStorage();
      // Model: terms by index (index 0 is the dummy), and the compaction point.
      let model: number[] = [0];
      let snapIndex = 0;
      for (const op of ops) {
        if (op.kind === 'append') {
          const lo = snapIndex + 1 + (op.at % Math.max(1, model.length - snapIndex));
          if (lo > model.length) continue;
          const entries: Entry[] = op.terms.map((term, i) => ({
            index: lo + i,
            term,
            kind: 'normal',
            data: new Uint8Array([i]),
          }));
          disk.append(entries);
          model = model.slice(0, lo).concat(op.terms);
        } else {
          const idx = op.at % model.length;
          if (idx <= snapIndex) continue;
          disk.compact({
            index: idx,
            term: model[idx]!,
            conf: { voters: ['a'], learners: [] },
            data: new Uint8Array(0),
          });
          snapIndex = idx;
        }
        assert.equal(disk.firstIndex(), snapIndex + 1);
        assert.equal(disk.lastIndex(), model.length - 1);
        assert.equal(disk.term(snapIndex), model[snapIndex]);
        assert.equal(disk.term(snapIndex - 1), undefined);
        assert.equal(disk.term(model.length), undefined);
        if (disk.lastIndex() >= disk.firstIndex()) {
          const all = disk.entries(disk.firstIndex(), disk.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
          assert.deepEqual(
            all.map((e) => e.term),
            model.slice(snapIndex + 1),
          );
          // A byte bound still returns at least one entry.
          assert.equal(disk.entries(disk.firstIndex(), disk.lastIndex() + 1, 1).length, 1);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('a conf change survives its wire form', () => {
  const ops: ConfChange['op'][] = ['add_voter', 'add_learner', 'promote', 'remove'];
  fc.assert(
    fc.property(fc.constantFrom(...ops), fc.string({ minLength: 1, maxLength: 20 }), (op, nodeId) => {
      assert.deepEqual(decodeConfChange(encodeConfChange({ op, nodeId })), { op, nodeId });
    }),
  );
});

test('single-server changes refuse what does not apply to the membership', () => {
  const conf = { voters: ['a'], learners: ['l'] };
  assert.equal(applyConfChange(conf, { op: 'remove', nodeId: 'a' }), 'a is the last voter');
  assert.equal(applyConfChange(conf, { op: 'add_voter', nodeId: 'l' }), 'l is already a member');
  assert.equal(applyConfChange(conf, { op: 'remove', nodeId: 'x' }), 'x is not a member');
  assert.deepEqual(applyConfChange(conf, { op: 'promote', nodeId: 'l' }), {
    voters: ['a', 'l'],
    learners: [],
  });
});
