// The table of requests in flight on a ring link: against a Map as the model, ids are unique among those in
// flight and never 0, each is taken back once, a stale id is refused, the arrays grow only to the peak in flight,
// and a taken-back slot no longer holds its value (so nothing it refers to outlives its request).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CorrelationTable } from '../../src/core/correlation-table.js';
import { createPrng } from '../../src/core/prng.js';

test('against a Map: unique non-zero ids, each taken once, stale ids refused', () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    const prng = createPrng(seed);
    const table = new CorrelationTable<number>();
    const model = new Map<number, number>();
    const taken: number[] = [];
    let peak = 0;
    for (let step = 0; step < 50_000; step++) {
      // Mostly short-lived requests, with bursts that raise the count in flight and a few that stay long.
      const addBias = step % 10_000 < 2_000 ? 0.6 : 0.5;
      if (model.size === 0 || prng.nextFloat() < addBias) {
        const id = table.add(step);
        assert.ok(id > 0 && id <= 0xffff_ffff, `seed ${seed}: id ${id}`);
        assert.ok(!model.has(id), `seed ${seed}: id ${id} handed out twice while in flight`);
        model.set(id, step);
      } else {
        const ids = [...model.keys()];
        const id = ids[prng.nextInt(Math.min(ids.length, 8))]!;
        assert.equal(table.take(id), model.get(id), `seed ${seed}`);
        model.delete(id);
        taken.push(id);
        assert.equal(table.has(id), model.has(id), `seed ${seed}`);
      }
      peak = Math.max(peak, model.size);
      assert.equal(table.size, model.size);
    }
    for (const id of taken.slice(-200)) {
      if (!model.has(id)) assert.equal(table.take(id), undefined, `seed ${seed}: stale id ${id} taken again`);
    }
    assert.equal(table.take(0), undefined, 'id 0 is never handed out');
    assert.ok(table.capacity < peak * 2 + 64, `capacity ${table.capacity} for a peak of ${peak}`);
  }
});

test('a slot used 4095 times wraps its count and keeps ids unique and non-zero', () => {
  const table = new CorrelationTable<string>();
  const seen = new Set<number>();
  for (let i = 0; i < 5000; i++) {
    const id = table.add('x');
    assert.ok(id > 0);
    if (i < 4095) assert.ok(!seen.has(id), `id ${id} repeated before the count wrapped`);
    seen.add(id);
    assert.equal(table.take(id), 'x');
  }
  assert.equal(table.capacity, 64, 'one request at a time needs no growth');
});

test('a value taken back is no longer held by the table', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const table = new CorrelationTable<{ payload: number[] }>();
  let ref: WeakRef<object> | null = null;
  // In a function of its own, so that no local of this frame keeps the value alive.
  (() => {
    const value = { payload: [1, 2, 3] };
    ref = new WeakRef(value);
    const id = table.add(value);
    for (let i = 0; i < 100; i++) table.take(table.add({ payload: [i] }));
    assert.equal(table.take(id), value);
  })();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  assert.equal(ref!.deref(), undefined, 'the table still referred to a value it gave back');
  assert.equal(table.size, 0);
});
