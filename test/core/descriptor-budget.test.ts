// The descriptor budget (issue 10, item 6): the open-files limit split between a reserve, the workers' segment
// caches and client connections, with every problem named at start-up; and the broker refusing to start (exit
// 2) under a limit it cannot fit in.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { type CliDeps, exitCodes, runStart } from '../../src/cli/main.js';
import {
  CONNECTIONS_MIN,
  parseOpenFilesLimit,
  planDescriptors,
  SEGMENT_FDS_MAX,
  SEGMENT_FDS_MIN,
} from '../../src/core/descriptor-budget.js';

const base = { workerThreads: 2, otherThreads: 4, segmentFdsPerThread: 0, maxConnections: 0 };

describe('planDescriptors', () => {
  test('every descriptor of the limit is accounted for: reserve, segment caches, connections', () => {
    for (const limit of [200, 1024, 20_000, 1_048_576]) {
      const result = planDescriptors({ ...base, openFilesLimit: limit });
      assert.equal(result.kind, 'ok', `limit ${limit}`);
      if (result.kind !== 'ok') continue;
      const b = result.budget;
      assert.equal(b.reserve + 2 * b.segmentFdsPerThread + b.maxConnections, limit, `limit ${limit}`);
      assert.ok(b.segmentFdsPerThread >= SEGMENT_FDS_MIN && b.segmentFdsPerThread <= SEGMENT_FDS_MAX);
      assert.ok(b.maxConnections >= CONNECTIONS_MIN);
      assert.ok(b.exhaustedAt < limit && b.exhaustedAt > b.reserve + 2 * b.segmentFdsPerThread);
    }
  });

  test('ulimit -n 200 with two workers leaves room for 16 segment descriptors and the connections', () => {
    const result = planDescriptors({ ...base, openFilesLimit: 200 });
    assert.deepEqual(result, {
      kind: 'ok',
      budget: {
        openFilesLimit: 200,
        reserve: 140,
        segmentFdsPerThread: 8,
        maxConnections: 44,
        exhaustedAt: 184,
      },
    });
  });

  test('a limit too low, a cache too small and a connection cap too large are each named with the fix', () => {
    const low = planDescriptors({ ...base, openFilesLimit: 150 });
    assert.equal(low.kind, 'error');
    if (low.kind === 'error')
      assert.match(low.problems[0]!, /ulimit -n\) is 150.*at least 172.*lower --threads/);
    const small = planDescriptors({ ...base, openFilesLimit: 1024, segmentFdsPerThread: 3 });
    assert.equal(small.kind, 'error');
    if (small.kind === 'error') assert.match(small.problems[0]!, /--segment-fds-per-thread 3 is below 8/);
    const many = planDescriptors({ ...base, openFilesLimit: 1024, maxConnections: 5000 });
    assert.equal(many.kind, 'error');
    if (many.kind === 'error') assert.match(many.problems[0]!, /--max-connections 5000 does not fit .* 1024/);
  });

  test('the soft limit is read from /proc/self/limits', () => {
    const text = [
      'Limit                     Soft Limit           Hard Limit           Units',
      'Max processes             63487                63487                processes',
      'Max open files            200                  20000                files',
    ].join('\n');
    assert.equal(parseOpenFilesLimit(text), 200);
    assert.equal(parseOpenFilesLimit(text.replace('200   ', 'unlimited')), Number.POSITIVE_INFINITY);
    assert.equal(parseOpenFilesLimit('nothing here'), null);
  });
});

test('broker start under an open-files limit it cannot fit in exits 2 naming ulimit -n, without starting', async () => {
  const lines: string[] = [];
  let started = false;
  const exited = new Promise<number>((resolve) => {
    const deps: CliDeps = {
      startBroker: async () => {
        started = true;
        return { port: 0, close: async () => {} };
      },
      createLogger: () => ({ log: pino({ level: 'silent' }), flushSync: () => {}, close: async () => {} }),
      env: {},
      availableParallelism: 2,
      onSignal: () => {},
      onUncaught: () => {},
      exit: resolve,
      printError: (text) => lines.push(text),
      openFilesLimit: 64,
    };
    void runStart({ threads: '2' }, [], deps);
  });
  assert.equal(await exited, exitCodes.usage);
  assert.equal(started, false);
  assert.ok(
    lines.some((line) => /ulimit -n\) is 64/.test(line)),
    lines.join('\n'),
  );
});
