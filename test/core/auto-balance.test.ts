// The automatic balance's trigger (src/broker/auto-balance.ts) with fake snapshots and a fake plan: brokers in
// the first snapshot never count as joined; a join is planned once, by the metadata leader only, after joins
// settle; it waits while moves run or the new broker is not live, and gives up after its bound; `off` does nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AutoBalancer } from '../../src/broker/auto-balance.js';
import type { MetadataSnapshot } from '../../src/metadata/types.js';

function snapshot(ids: string[], options: { fenced?: string[]; moving?: number } = {}): MetadataSnapshot {
  const brokers = new Map(
    ids.map((id) => [
      id,
      {
        id,
        httpHost: '127.0.0.1',
        httpPort: 1,
        fenced: options.fenced?.includes(id) ?? false,
        shuttingDown: false,
      },
    ]),
  );
  return {
    brokers,
    topics: new Map(),
    reassignments: Array.from({ length: options.moving ?? 0 }, () => ({})),
  } as unknown as MetadataSnapshot;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `done` (the timers here are 10 ms; a loaded machine may delay them a lot). */
async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!done()) {
    assert.ok(Date.now() < deadline, `${what} within 5 s`);
    await sleep(5);
  }
}

function balancer(mode: 'off' | 'node-add', state: { leader: boolean; current: MetadataSnapshot }) {
  const calls: number[] = [];
  const logs: string[] = [];
  const b = new AutoBalancer({
    mode,
    nodeId: 'n1',
    isLeader: () => state.leader,
    snapshot: () => state.current,
    balance: async () => {
      calls.push(Date.now());
      return { started: 2, refused: 0 };
    },
    log: (_level, message) => logs.push(message),
    settleMs: 10,
    attemptsMax: 3,
  });
  return { b, calls, logs };
}

test('a join is planned once by the leader after it settles; the first snapshot and other nodes do nothing', async () => {
  const state = { leader: true, current: snapshot(['n1', 'n2', 'n3']) };
  const { b, calls, logs } = balancer('node-add', state);
  b.onSnapshot(state.current);
  await sleep(30);
  assert.equal(calls.length, 0, 'brokers already there did not join');
  state.current = snapshot(['n1', 'n2', 'n3', 'n4']);
  b.onSnapshot(state.current);
  b.onSnapshot(state.current);
  await until('the plan', () => calls.length > 0);
  await sleep(40);
  assert.equal(calls.length, 1, 'once');
  assert.match(logs[0]!, /after n4 joined: 2 move\(s\) started/);

  const follower = { leader: false, current: snapshot(['n1', 'n2']) };
  const other = balancer('node-add', follower);
  other.b.onSnapshot(follower.current);
  follower.current = snapshot(['n1', 'n2', 'n3']);
  other.b.onSnapshot(follower.current);
  await sleep(40);
  assert.equal(other.calls.length, 0, 'only the metadata leader plans');

  const off = { leader: true, current: snapshot(['n1']) };
  const none = balancer('off', off);
  none.b.onSnapshot(off.current);
  none.b.onSnapshot(snapshot(['n1', 'n2']));
  await sleep(40);
  assert.equal(none.calls.length, 0, 'off means off');
  b.stop();
});

test('a plan waits while moves run or the new broker is fenced, and is given up after its bound', async () => {
  const state = { leader: true, current: snapshot(['n1', 'n2']) };
  const { b, calls, logs } = balancer('node-add', state);
  b.onSnapshot(state.current);
  state.current = snapshot(['n1', 'n2', 'n3'], { moving: 1 });
  b.onSnapshot(state.current);
  await sleep(15);
  assert.equal(calls.length, 0, 'moves in progress: wait');
  state.current = snapshot(['n1', 'n2', 'n3']);
  await until('the plan once the moves finished', () => calls.length === 1);

  state.current = snapshot(['n1', 'n2', 'n3', 'n4'], { fenced: ['n4'] });
  b.onSnapshot(state.current);
  await until('giving up', () => /given up: n4 not live/.test(logs.at(-1)!));
  assert.equal(calls.length, 1, 'n4 never came up: no plan');
  b.stop();
});
