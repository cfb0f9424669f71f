// Joining through seeds with real sockets on 127.0.0.1, agents in one process: a member whose seed is not
// listening yet retries with backoff and joins once it is (members started together, in any order); a seed
// given by host name is resolved on every attempt, so a name that does not resolve yet, or that pointed at a
// dead address and now points at the live one, is followed; and every failed attempt is reported.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { ClusterPort } from '../../src/cluster/port.js';
import { GOSSIP_DEFAULTS } from '../../src/core/gossip/config.js';
import { GossipAgent, type JoinEvent } from '../../src/gossip/agent.js';

const fastBackoff = { initialMs: 20, maxMs: 200, jitter: 0.2 };
const joinBudgetMs = 5_000;
let running: GossipAgent[] = [];

afterEach(async () => {
  await Promise.all(running.map((a) => a.abort()));
  running = [];
});

function meta(port: number) {
  return {
    httpHost: '127.0.0.1',
    httpPort: 8000,
    clusterHost: '127.0.0.1',
    clusterPort: port,
    rack: '',
    version: 'test',
    dataPorts: [],
    kafkaPort: 0,
  };
}

async function freePort(): Promise<number> {
  const p = await ClusterPort.open({ host: '127.0.0.1', port: 0 });
  const n = p.port;
  await p.close();
  return n;
}

function agent(
  nodeId: string,
  port: number,
  options: { resolve?: (host: string) => Promise<readonly string[]>; events?: JoinEvent[] } = {},
): GossipAgent {
  const a = new GossipAgent({
    nodeId,
    host: '127.0.0.1',
    port,
    meta: meta(port),
    config: { ...GOSSIP_DEFAULTS, probeIntervalMs: 50, probeTimeoutMs: 20, gossipIntervalMs: 20 },
    joinBackoff: fastBackoff,
    ...(options.resolve === undefined ? {} : { resolve: options.resolve }),
    onJoinEvent: (e) => options.events?.push(e),
  });
  running.push(a);
  return a;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = joinBudgetMs): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sees = (a: GossipAgent, id: string): boolean => a.member(id)?.state === 'alive';

test('a member whose seed is not listening yet retries and joins once the seed starts', async () => {
  const seedPort = await freePort();
  const events: JoinEvent[] = [];
  const early = agent('early', 0, { events });
  await early.start({ seeds: [`127.0.0.1:${seedPort}`] });
  await waitFor('two failed attempts', () => events.filter((e) => e.kind === 'failed').length >= 2);
  assert.equal(early.joined, false);
  const seed = agent('seed', seedPort);
  await seed.start({ seeds: [] });
  await waitFor('each to see the other', () => sees(early, 'seed') && sees(seed, 'early'));
  assert.ok(events.some((e) => e.kind === 'joined'));
  const failed = events.filter((e) => e.kind === 'failed').length;
  await new Promise((r) => setTimeout(r, 5 * fastBackoff.maxMs));
  assert.equal(events.filter((e) => e.kind === 'failed').length, failed, 'no more attempts once joined');
});

test('a seed host name is resolved on every attempt: unresolvable, then an old address, then the live one', async () => {
  const seed = agent('seed', 0);
  await seed.start({ seeds: [] });
  const seedPort = Number(seed.address.split(':')[1]);
  // What DNS answers for `broker1` on each lookup: not yet registered, then the address the container had
  // before it restarted (nothing listens there: 127.0.0.2 is loopback, but the seed is bound to 127.0.0.1),
  // then the live one.
  const answers = ['ENOTFOUND', 'ENOTFOUND', '127.0.0.2', '127.0.0.2', '127.0.0.1'];
  let lookups = 0;
  const resolve = async (host: string): Promise<readonly string[]> => {
    assert.equal(host, 'broker1');
    const answer = answers[Math.min(lookups++, answers.length - 1)]!;
    if (answer !== 'ENOTFOUND') return [answer];
    const error: NodeJS.ErrnoException = new Error('getaddrinfo ENOTFOUND broker1');
    error.code = 'ENOTFOUND';
    throw error;
  };
  const events: JoinEvent[] = [];
  const joiner = agent('joiner', 0, { resolve, events });
  await joiner.start({ seeds: [`broker1:${seedPort}`] });
  await waitFor(
    'the joiner and the seed to see each other',
    () => sees(joiner, 'seed') && sees(seed, 'joiner'),
  );
  assert.equal(lookups, answers.length, 'one lookup per attempt until the live address answered');
  const failures = events.filter((e) => e.kind === 'failed');
  assert.deepEqual(
    failures.map((e) => (e.kind === 'failed' ? [e.target, e.reason] : [])),
    [
      [`broker1:${seedPort}`, 'ENOTFOUND'],
      [`broker1:${seedPort}`, 'ENOTFOUND'],
      [`127.0.0.2:${seedPort}`, 'ECONNREFUSED'],
      [`127.0.0.2:${seedPort}`, 'ECONNREFUSED'],
    ],
  );
});
