// The acceptor's connection guard with its descriptor counts supplied by the test (no /proc, no server):
// held connections (WebSocket upgrades) count towards the cap as they are admitted, between samples.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { ConnectionGuard } from '../../src/broker/connection-guard.js';
import type { DescriptorBudget } from '../../src/core/descriptor-budget.js';

function guardWith(open: { fds: number }, budget: DescriptorBudget): ConnectionGuard {
  let nextSpare = 1000;
  return new ConnectionGuard({
    budget,
    countDescriptors: () => open.fds,
    segmentDescriptors: () => 0,
    countThreads: () => 4,
    openSpare: () => nextSpare++,
    closeSpare: () => undefined,
    log: pino({ level: 'silent' }),
    // Samples only when the test calls sample(): the timers are far away.
    slowIntervalMs: 3_600_000,
    fastIntervalMs: 3_600_000,
  });
}

test('each admitted upgrade counts towards the cap at once; the next sample replaces the estimate', () => {
  const budget: DescriptorBudget = {
    openFilesLimit: 1000,
    reserve: 200,
    segmentFdsPerThread: 8,
    maxConnections: 10,
    exhaustedAt: 984,
  };
  const open = { fds: 40 };
  const guard = guardWith(open, budget);
  guard.measureBaseline();
  guard.start();
  try {
    assert.equal(guard.connections, 0);
    // Ten upgrades between two samples: the tenth reaches the cap, the eleventh is refused, and plain
    // requests (which may ride on existing connections) are refused too while over the cap.
    for (let i = 0; i < 10; i++) assert.equal(guard.admitHeld(), true, `upgrade ${i}`);
    assert.equal(guard.overCap, true);
    assert.equal(guard.admitHeld(), false);
    assert.equal(guard.admit(), false);
    assert.equal(guard.shed, 2);
    // Requests do not count: a keep-alive connection carries many.
    const fresh = guardWith({ fds: 40 }, budget);
    fresh.measureBaseline();
    fresh.start();
    for (let i = 0; i < 50; i++) assert.equal(fresh.admit(), true);
    assert.equal(fresh.connections, 0);
    fresh.stop();
    // The sample sees what is really open: four of the ten streams closed.
    open.fds = 46;
    guard.sample();
    assert.equal(guard.connections, 6);
    assert.equal(guard.overCap, false);
    assert.equal(guard.admitHeld(), true);
    assert.equal(guard.connections, 7);
  } finally {
    guard.stop();
  }
});
