// Behaviour of one GossipNode driven by hand: probing, ping-req relaying, suspicion and refutation, local
// health, recovery from a stall of its own process, dissemination within the UDP budget, join by push-pull,
// leave, metadata updates, reclamation and restart; plus a property test of the membership invariants under
// arbitrary update sequences.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  GOSSIP_DEFAULTS,
  suspicionTimeoutMaxMs,
  suspicionTimeoutMinMs,
} from '../../src/core/gossip/config.js';
import {
  type AliveMessage,
  estimatePacketBytes,
  type GossipMessage,
  KAFKA_PORT_UNKNOWN,
  type Outgoing,
  type Packet,
  type PushPullState,
} from '../../src/core/gossip/messages.js';
import { GossipNode, type Output } from '../../src/core/gossip/node.js';
import { memberMeta, SeededRandom } from '../sim/gossip-harness.js';

const address = (id: string): string => `${id}:7946`;

function makeNode(id: string, seed = 1): GossipNode {
  return new GossipNode({
    nodeId: id,
    address: address(id),
    meta: memberMeta(0),
    random: new SeededRandom(seed),
    nowMs: 0,
  });
}

function states(ids: string[]): PushPullState[] {
  return ids.map((id, i) => ({
    nodeId: id,
    address: address(id),
    incarnation: 0,
    state: 'alive',
    meta: memberMeta(i),
  }));
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `m${i}`);

function packet(from: string, ...messages: GossipMessage[]): Packet {
  return { senderId: from, senderAddress: address(from), messages };
}

function messagesOf(output: Output, kind: GossipMessage['kind']): { to: string; message: GossipMessage }[] {
  return output.send.flatMap((o) =>
    o.packet.messages.filter((m) => m.kind === kind).map((message) => ({ to: o.to, message })),
  );
}

/**
 * Ticks `node` at each of its wake-ups until `untilMs`, collecting everything it emits. With `ackPings`, every
 * ping it sends is answered at once, as by a healthy cluster.
 */
function runAlone(
  node: GossipNode,
  fromMs: number,
  untilMs: number,
  ackPings = false,
): { send: Outgoing[]; events: Output['events'] } {
  const all = { send: [] as Outgoing[], events: [] as Output['events'] };
  let now = fromMs;
  while (now <= untilMs) {
    const out = node.tick(now);
    all.send.push(...out.send);
    all.events.push(...out.events);
    if (ackPings) {
      for (const { to, message } of messagesOf(out, 'ping')) {
        const seqNo = (message as { seqNo: number }).seqNo;
        all.events.push(...node.receive(to, packet('peer', { kind: 'ack', seqNo }), now).events);
      }
    }
    now = Math.max(now + 1, node.nextWakeMs());
  }
  return all;
}

/**
 * Ticks `node` at each wake-up before `atMs` and then at `atMs`, as a shell does, returning the last tick's
 * output and everything sent on the way. Skipping wake-ups would look like a stall of the process.
 */
function tickAt(node: GossipNode, atMs: number): Output & { before: Outgoing[] } {
  const before: Outgoing[] = [];
  while (node.nextWakeMs() < atMs) before.push(...node.tick(node.nextWakeMs()).send);
  return { ...node.tick(atMs), before };
}

/**
 * Ticks `node` at its wake-ups until one tick sends a ping (other than to `exceptTo`, where a suspect's
 * verification pings go); returns that tick's time and output.
 */
function tickUntilPing(node: GossipNode, exceptTo?: string): { atMs: number; out: Output } {
  for (let i = 0; i < 100; i++) {
    const atMs = node.nextWakeMs();
    const out = node.tick(atMs);
    if (messagesOf(out, 'ping').some((p) => p.to !== exceptTo)) return { atMs, out };
  }
  assert.fail('no probe started');
}

describe('gossip node: probing', () => {
  it('probes every member exactly once per round, in a fresh order each round', () => {
    const node = makeNode('m0');
    node.seedMembers(states(ids(20)), 0);
    const targets: string[] = [];
    while (targets.length < 38) {
      const { atMs: now, out } = tickUntilPing(node);
      for (const { message } of messagesOf(out, 'ping')) {
        assert.equal(message.kind, 'ping');
        targets.push(message.targetId);
        // Answer at once so nobody is suspected and the next probe follows the interval.
        node.receive(
          address(message.targetId),
          packet(message.targetId, { kind: 'ack', seqNo: message.seqNo }),
          now,
        );
      }
    }
    const first = targets.slice(0, 19);
    const second = targets.slice(19, 38);
    assert.equal(new Set(first).size, 19);
    assert.equal(new Set(second).size, 19);
    assert.notDeepEqual(first, second);
  });

  it('asks relays to ping a silent target, then suspects it at the end of the probe interval', () => {
    const node = makeNode('m0');
    node.seedMembers(states(ids(8)), 0);
    const { atMs: start, out } = tickUntilPing(node);
    const ping = messagesOf(out, 'ping')[0]!;
    const target = (ping.message as { targetId: string }).targetId;
    const deadline = start + GOSSIP_DEFAULTS.probeTimeoutMs;
    const requests = messagesOf(tickAt(node, deadline), 'ping_req');
    assert.equal(requests.length, GOSSIP_DEFAULTS.indirectChecks);
    for (const r of requests) {
      assert.notEqual(r.to, address(target));
      assert.equal((r.message as { targetId: string }).targetId, target);
    }
    const end = tickAt(node, start + GOSSIP_DEFAULTS.probeIntervalMs);
    assert.deepEqual(
      end.events.map((e) => [e.kind, e.member.nodeId]),
      [['suspect', target]],
    );
    assert.equal(node.member(target)?.state, 'suspect');
  });

  it('raises its health score for each missing nack and stretches the next probe interval by it', () => {
    const node = makeNode('m0');
    node.seedMembers(states(ids(8)), 0);
    const { atMs: start, out: first } = tickUntilPing(node);
    const suspectAddress = messagesOf(first, 'ping')[0]!.to;
    const requests = messagesOf(tickAt(node, start + GOSSIP_DEFAULTS.probeTimeoutMs), 'ping_req');
    // One relay answers with a nack: the other four missed nacks count against this member.
    const seqNo = (requests[0]!.message as { seqNo: number }).seqNo;
    node.receive(requests[0]!.to, packet('relay', { kind: 'nack', seqNo }), start + 150);
    // The tick that ends the failed probe starts the next one, already under the raised score.
    const again = start + GOSSIP_DEFAULTS.probeIntervalMs;
    const ping = messagesOf(tickAt(node, again), 'ping')[0]!;
    const score = node.healthScore;
    assert.equal(score, GOSSIP_DEFAULTS.indirectChecks - 1);
    // It waits (score + 1) probe timeouts for the ack before asking relays.
    const waited = tickAt(node, again + GOSSIP_DEFAULTS.probeTimeoutMs);
    assert.equal(messagesOf({ send: [...waited.before, ...waited.send], events: [] }, 'ping_req').length, 0);
    node.receive(
      ping.to,
      packet('x', { kind: 'ack', seqNo: (ping.message as { seqNo: number }).seqNo }),
      again + 100,
    );
    assert.equal(node.healthScore, score - 1, 'a successful probe lowers the score');
    // And the probe after it comes (score + 1) probe intervals later.
    const { atMs: third } = tickUntilPing(node, suspectAddress);
    assert.equal(third, again + (score + 1) * GOSSIP_DEFAULTS.probeIntervalMs);
  });
});

describe('gossip node: relaying ping-req', () => {
  it('forwards the target ack to the requester under the requester sequence number', () => {
    const relay = makeNode('r');
    const out = relay.receive(
      address('q'),
      packet('q', {
        kind: 'ping_req',
        seqNo: 77,
        targetId: 't',
        targetAddress: address('t'),
        wantNack: true,
      }),
      10,
    );
    const ping = messagesOf(out, 'ping')[0]!;
    assert.equal(ping.to, address('t'));
    const forwarded = relay.receive(
      address('t'),
      packet('t', { kind: 'ack', seqNo: (ping.message as { seqNo: number }).seqNo }),
      12,
    );
    assert.deepEqual(messagesOf(forwarded, 'ack'), [
      { to: address('q'), message: { kind: 'ack', seqNo: 77 } },
    ]);
    assert.equal(messagesOf(relay.tick(500), 'nack').length, 0, 'no nack after an ack');
  });

  it('answers with a nack when the target stays silent past the probe timeout', () => {
    const relay = makeNode('r');
    relay.receive(
      address('q'),
      packet('q', { kind: 'ping_req', seqNo: 5, targetId: 't', targetAddress: address('t'), wantNack: true }),
      10,
    );
    assert.equal(messagesOf(relay.tick(10 + GOSSIP_DEFAULTS.probeTimeoutMs - 1), 'nack').length, 0);
    assert.deepEqual(messagesOf(relay.tick(10 + GOSSIP_DEFAULTS.probeTimeoutMs), 'nack'), [
      { to: address('q'), message: { kind: 'nack', seqNo: 5 } },
    ]);
  });
});

describe('gossip node: suspicion', () => {
  it('refutes a suspicion of itself with a higher incarnation, which others take as alive again', () => {
    const a = makeNode('a');
    const b = makeNode('b', 2);
    a.seedMembers(states(['a', 'b']), 0);
    b.seedMembers(states(['a', 'b']), 0);
    b.receive(address('c'), packet('c', { kind: 'suspect', nodeId: 'a', incarnation: 0, accuserId: 'c' }), 5);
    assert.equal(b.member('a')?.state, 'suspect');
    const refutation = a.receive(
      address('b'),
      packet('b', { kind: 'suspect', nodeId: 'a', incarnation: 0, accuserId: 'c' }),
      5,
    );
    assert.equal(a.incarnation, 1);
    assert.equal(a.healthScore, 1, 'being suspected counts against local health');
    assert.equal(refutation.send.length, 0, 'the refutation rides on the next outgoing packets');
    const gossip = a.tick(a.nextWakeMs());
    const alive = gossip.send.flatMap((o) => o.packet.messages).find((m) => m.kind === 'alive');
    assert.deepEqual(alive && { kind: alive.kind, nodeId: alive.nodeId, incarnation: alive.incarnation }, {
      kind: 'alive',
      nodeId: 'a',
      incarnation: 1,
    });
    const out = b.receive(address('a'), packet('a', alive!), 20);
    assert.deepEqual(
      out.events.map((e) => [e.kind, e.member.nodeId, e.member.incarnation]),
      [['alive_again', 'a', 1]],
    );
  });

  it('declares a suspect dead at once when the shell finds its process gone, and only a suspect at that incarnation', () => {
    const node = makeNode('m0');
    node.seedMembers(states(ids(4)), 0);
    // Alive: a refused connection alone (no suspicion) changes nothing.
    assert.deepEqual(node.confirmGone('m1', 0, 10).events, []);
    assert.equal(node.member('m1')?.state, 'alive');
    node.receive(
      address('m2'),
      packet('m2', { kind: 'suspect', nodeId: 'm1', incarnation: 0, accuserId: 'm2' }),
      20,
    );
    assert.equal(node.member('m1')?.state, 'suspect');
    // A stale incarnation (the member refuted since the check began) changes nothing either.
    assert.deepEqual(node.confirmGone('m1', 1, 30).events, []);
    const out = node.confirmGone('m1', 0, 40);
    assert.deepEqual(
      out.events.map((e) => [e.kind, e.member.nodeId, e.atMs]),
      [['failed', 'm1', 40]],
    );
    assert.equal(node.member('m1')?.state, 'dead');
    // The death is gossiped like any other, so the others need not check for themselves.
    const spread = runAlone(node, 41, 400).send.flatMap((o) => o.packet.messages);
    assert.ok(spread.some((m) => m.kind === 'dead' && m.nodeId === 'm1' && m.accuserId === 'm0'));
    // A member declared dead this way refutes it like any death (a restarted process under the same id).
    const victim = makeNode('m1');
    victim.seedMembers(states(ids(4)), 0);
    victim.receive(
      address('m0'),
      packet('m0', { kind: 'dead', nodeId: 'm1', incarnation: 0, accuserId: 'm0' }),
      50,
    );
    assert.ok(victim.member('m1')!.incarnation > 0, 'it refuted with a higher incarnation');
  });

  it('declares a suspect dead sooner when independent members confirm the suspicion', () => {
    const members = ids(10);
    const lone = makeNode('m0');
    const confirmed = makeNode('m0', 3);
    lone.seedMembers(states(members), 0);
    confirmed.seedMembers(states(members), 0);
    const suspect = (accuserId: string): Packet =>
      packet(accuserId, { kind: 'suspect', nodeId: 'm9', incarnation: 0, accuserId });
    lone.receive(address('m1'), suspect('m1'), 0);
    for (const accuser of ['m1', 'm2', 'm3', 'm4']) confirmed.receive(address(accuser), suspect(accuser), 0);
    const failedAt = (node: GossipNode): number => {
      // Its own probes are answered, so the only accusers are the ones this test sends.
      const events = runAlone(node, 0, 60_000, true).events;
      return events.find((e) => e.kind === 'failed' && e.member.nodeId === 'm9')!.atMs;
    };
    // The lone node's own probes will suspect others too; only m9's death time matters here.
    assert.equal(failedAt(confirmed), suspicionTimeoutMinMs(GOSSIP_DEFAULTS, 10));
    assert.equal(failedAt(lone), suspicionTimeoutMaxMs(GOSSIP_DEFAULTS, 10));
  });

  it('pings a suspect while the timer runs and is repaired by its answer when it had refuted already', () => {
    const a = makeNode('a');
    const b = makeNode('b', 2);
    a.seedMembers(states(['a', 'b', 'c', 'd', 'e']), 0);
    b.seedMembers(states(['a', 'b', 'c', 'd', 'e']), 0);
    // a refuted a suspicion at incarnation 0 that b never heard the end of.
    a.receive(address('c'), packet('c', { kind: 'suspect', nodeId: 'a', incarnation: 0, accuserId: 'c' }), 0);
    b.receive(address('c'), packet('c', { kind: 'suspect', nodeId: 'a', incarnation: 0, accuserId: 'c' }), 0);
    let verify: Outgoing | undefined;
    for (let now = 1; verify === undefined && now < 5000; now++) {
      verify = b
        .tick(now)
        .send.find((o) => o.to === address('a') && o.packet.messages.some((m) => m.kind === 'suspect'));
    }
    assert.ok(verify !== undefined, 'b pinged the suspect with the accusation');
    const answer = a.receive(address('b'), verify.packet, 400);
    const direct = answer.send.find(
      (o) => o.to === address('b') && o.packet.messages.some((m) => m.kind === 'alive'),
    );
    assert.ok(direct !== undefined, 'a answered the stale accusation with its current alive');
    const out = b.receive(address('a'), direct.packet, 401);
    assert.deepEqual(
      out.events.map((e) => e.kind),
      ['alive_again'],
    );
  });
});

describe('gossip node: small clusters', () => {
  it('at 4 members a lone accuser waits the maximum, and the one other confirmation shortens it', () => {
    const members = ids(4);
    const lone = makeNode('m0');
    const confirmed = makeNode('m0', 3);
    lone.seedMembers(states(members), 0);
    confirmed.seedMembers(states(members), 0);
    const suspect = (accuserId: string): Packet =>
      packet(accuserId, { kind: 'suspect', nodeId: 'm3', incarnation: 0, accuserId });
    lone.receive(address('m1'), suspect('m1'), 0);
    confirmed.receive(address('m1'), suspect('m1'), 0);
    confirmed.receive(address('m2'), suspect('m2'), 0);
    const failedAt = (node: GossipNode): number => {
      const events = runAlone(node, 0, 20_000, true).events;
      return events.find((e) => e.kind === 'failed' && e.member.nodeId === 'm3')!.atMs;
    };
    // memberlist would use K = 0 here (N - 2 < suspicionMult - 2) and let m1 alone declare m3 dead at the
    // minimum. With K = 2 (m0 and m2 could confirm), m1 alone waits the maximum, 6 s.
    assert.equal(failedAt(lone), suspicionTimeoutMaxMs(GOSSIP_DEFAULTS, 4));
    // One of two confirmations: 6000 - (6000 - 3000) * log(2) / log(3).
    assert.equal(failedAt(confirmed), Math.floor(6000 - 3000 * (Math.log(2) / Math.log(3))));
  });
});

describe('gossip node: stalls of its own process', () => {
  it('a probe in flight across a 2 s stall accuses no one: the ack read after the late tick still counts', () => {
    const node = makeNode('m0');
    node.seedMembers(states(ids(4)), 0);
    const { atMs: start, out } = tickUntilPing(node);
    const ping = messagesOf(out, 'ping')[0]!;
    const seqNo = (ping.message as { seqNo: number }).seqNo;
    // The process stops; its timers fire 2 s late, before the socket (holding the ack) is read.
    const resumedMs = start + 2000;
    const late = node.tick(resumedMs);
    assert.deepEqual(late.events, [], 'the late tick accuses no one');
    assert.equal(node.healthScore, 1, 'a stall is evidence that this member is the slow one');
    node.receive(ping.to, packet('peer', { kind: 'ack', seqNo }), resumedMs);
    const after = runAlone(node, resumedMs + 1, resumedMs + 3000, true);
    assert.deepEqual(
      after.events.filter((e) => e.kind === 'suspect' || e.kind === 'failed'),
      [],
    );
  });

  it('a suspicion timer that expired during a stall lets the refutation in the backlog save the suspect', () => {
    const node = makeNode('m0');
    node.seedMembers(states(ids(4)), 0);
    node.receive(
      address('m1'),
      packet('m1', { kind: 'suspect', nodeId: 'm3', incarnation: 0, accuserId: 'm1' }),
      0,
    );
    const deadlineMs = suspicionTimeoutMaxMs(GOSSIP_DEFAULTS, 4);
    runAlone(node, 0, 1000, true);
    // Stopped from about 1 s to 10 s, well past the 6 s deadline; m3's refutation waits in the socket.
    const late = node.tick(10_000);
    assert.ok(10_000 > deadlineMs);
    assert.deepEqual(
      late.events.filter((e) => e.kind === 'failed'),
      [],
    );
    const alive = node.receive(
      address('m3'),
      packet('m3', {
        kind: 'alive',
        nodeId: 'm3',
        address: address('m3'),
        incarnation: 1,
        meta: memberMeta(3),
      }),
      10_000,
    );
    assert.deepEqual(
      alive.events.map((e) => [e.kind, e.member.nodeId]),
      [['alive_again', 'm3']],
    );
  });
});

describe('gossip node: dissemination', () => {
  it('piggybacks as many updates as fit the UDP budget on an ack, and the rest on later packets', () => {
    const node = makeNode('m0');
    // 200 newly learned members: 200 alive updates to spread, far more than one datagram holds.
    for (const s of states(ids(201).slice(1))) {
      node.receive(address('x'), packet('x', { kind: 'alive', ...s }), 0);
    }
    assert.equal(node.pendingBroadcasts, 200);
    const seen = new Set<string>();
    for (let seqNo = 1; seqNo <= 40 && seen.size < 200; seqNo++) {
      const out = node.receive(address('m5'), packet('m5', { kind: 'ping', seqNo, targetId: 'm0' }), 1);
      assert.equal(out.send.length, 1);
      const ack = out.send[0]!;
      assert.equal(ack.packet.messages[0]?.kind, 'ack');
      assert.ok(estimatePacketBytes(ack.packet) <= GOSSIP_DEFAULTS.udpPacketBytesMax);
      assert.ok(ack.packet.messages.length > 5, 'each ack carries many updates');
      for (const m of ack.packet.messages) if (m.kind === 'alive') seen.add(m.nodeId);
    }
    assert.equal(seen.size, 200, 'least-transmitted first: every update went out before any repeat');
  });

  it('joins through a seed: the push-pull reply brings every member and the seed learns the joiner', () => {
    const seed = makeNode('s');
    seed.seedMembers(states(['s', 'm1', 'm2', 'm3']), 0);
    const joiner = makeNode('j', 5);
    const request = joiner.join([address('s')]);
    assert.deepEqual(
      request.send.map((o) => [o.to, o.transport, o.packet.messages[0]?.kind]),
      [[address('s'), 'stream', 'push_pull']],
    );
    const reply = seed.receive(address('j'), request.send[0]!.packet, 101);
    assert.deepEqual(
      reply.events.map((e) => [e.kind, e.member.nodeId]),
      [['joined', 'j']],
    );
    assert.equal(reply.send[0]?.transport, 'stream');
    const learned = joiner.receive(address('s'), reply.send[0]!.packet, 102);
    assert.deepEqual(learned.events.map((e) => e.member.nodeId).sort(), ['m1', 'm2', 'm3', 's']);
    assert.equal(joiner.liveCount, 5);
    assert.ok(seed.pendingBroadcasts > 0, 'the seed gossips the joiner on');
  });

  it('reports a graceful leave as left, not failed', () => {
    const a = makeNode('a');
    const b = makeNode('b', 2);
    a.seedMembers(states(['a', 'b']), 0);
    b.seedMembers(states(['a', 'b']), 0);
    const out = a.leave(10);
    assert.ok(out.send.length > 0);
    const events = out.send.flatMap((o) => b.receive(address('a'), o.packet, 11).events);
    assert.deepEqual(
      events.map((e) => [e.kind, e.member.nodeId, e.member.state]),
      [['left', 'a', 'left']],
    );
    // The notice is sent its full number of times before the shell may close the member.
    assert.equal(a.leaveBroadcastDone, false);
    runAlone(a, 11, 5000);
    assert.equal(a.leaveBroadcastDone, true);
  });

  it('spreads new metadata with a higher incarnation as an updated event', () => {
    const a = makeNode('a');
    const b = makeNode('b', 2);
    a.seedMembers(states(['a', 'b']), 0);
    b.seedMembers(states(['a', 'b']), 0);
    a.updateMetadata({ ...memberMeta(0), rack: 'rack-new', version: '0.2.0' }, 10);
    const events = runAlone(a, 10, 300).send.flatMap((o) => b.receive(address('a'), o.packet, 300).events);
    assert.deepEqual(
      events.map((e) => [e.kind, e.member.meta.rack, e.member.incarnation]),
      [['updated', 'rack-new', 1]],
    );
  });

  it('forgets a dead member after the reclaim time, after which the same id may join again', () => {
    const b = makeNode('b');
    b.seedMembers(states(['a', 'b', 'c']), 0);
    b.receive(address('c'), packet('c', { kind: 'dead', nodeId: 'a', incarnation: 0, accuserId: 'c' }), 10);
    assert.equal(b.member('a')?.state, 'dead');
    b.receive(address('c'), packet('c', { kind: 'alive', ...states(['a'])[0]! }), 20);
    assert.equal(b.member('a')?.state, 'dead', 'an alive no newer than the death does not revive it');
    runAlone(b, 20, 10 + GOSSIP_DEFAULTS.deadReclaimMs + GOSSIP_DEFAULTS.gossipIntervalMs);
    assert.equal(b.member('a'), undefined);
    const out = b.receive(address('a'), packet('a', { kind: 'alive', ...states(['a'])[0]! }), 40_000);
    assert.deepEqual(
      out.events.map((e) => [e.kind, e.member.nodeId]),
      [['joined', 'a']],
    );
  });
});

describe('gossip node: invariants', () => {
  it('keeps incarnations monotonic, itself alive and its live count exact under any update sequence', () => {
    const members = ['self', 'a', 'b', 'c', 'd'];
    const update = fc.record({
      kind: fc.constantFrom('alive' as const, 'suspect' as const, 'dead' as const),
      nodeId: fc.constantFrom(...members, 'e'),
      incarnation: fc.nat({ max: 4 }),
      accuserId: fc.constantFrom(...members),
      atMs: fc.nat({ max: 200 }),
    });
    fc.assert(
      fc.property(fc.array(update, { maxLength: 60 }), fc.integer(), (updates, seed) => {
        const node = makeNode('self', seed);
        node.seedMembers(states(members), 0);
        const seen = new Map<string, number>();
        let now = 0;
        for (const u of updates) {
          now += u.atMs;
          const message: GossipMessage =
            u.kind === 'alive'
              ? {
                  kind: 'alive',
                  nodeId: u.nodeId,
                  address: address(u.nodeId),
                  incarnation: u.incarnation,
                  meta: memberMeta(1),
                }
              : { kind: u.kind, nodeId: u.nodeId, incarnation: u.incarnation, accuserId: u.accuserId };
          node.receive(address(u.accuserId), packet(u.accuserId, message), now);
          node.tick(now);
          const snapshot = node.members();
          for (const m of snapshot) {
            assert.ok(m.incarnation >= (seen.get(m.nodeId) ?? 0), `incarnation of ${m.nodeId} went back`);
            seen.set(m.nodeId, m.incarnation);
          }
          assert.equal(node.member('self')?.state, 'alive');
          const live = snapshot.filter((m) => m.state === 'alive' || m.state === 'suspect').length;
          assert.equal(node.liveCount, live);
          assert.ok(node.nextWakeMs() > now, 'every due timer was handled');
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('gossip node: restart', () => {
  it('a restarted member refutes the left state others remember for its id', () => {
    const seed = makeNode('s');
    seed.seedMembers(states(['s', 'a']), 0);
    seed.receive(
      address('a'),
      packet('a', { kind: 'dead', nodeId: 'a', incarnation: 3, accuserId: 'a' }),
      10,
    );
    assert.equal(seed.member('a')?.state, 'left');
    const restarted = makeNode('a', 9);
    const reply = seed.receive(address('a'), restarted.join([address('s')]).send[0]!.packet, 21);
    restarted.receive(address('s'), reply.send[0]!.packet, 22);
    assert.equal(restarted.incarnation, 4, 'it outbids the remembered incarnation');
    const events = runAlone(restarted, 22, 300).send.flatMap(
      (o) => seed.receive(address('a'), o.packet, 300).events,
    );
    assert.deepEqual(
      events.map((e) => [e.kind, e.member.nodeId, e.member.state]),
      [['joined', 'a', 'alive']],
    );
  });
});

describe('gossip node: restart (dead)', () => {
  it('a member held dead that sends any packet is told so, refutes, and is alive again', () => {
    const seed = makeNode('s');
    seed.seedMembers(states(['s', 'a', 'b']), 0);
    seed.receive(
      address('b'),
      packet('b', { kind: 'dead', nodeId: 'a', incarnation: 3, accuserId: 'b' }),
      10,
    );
    assert.equal(seed.member('a')?.state, 'dead');
    // Long enough for the seed to have sent the obituary its full number of times: no gossip carries it now.
    runAlone(seed, 10, 5000, true);
    assert.equal(seed.pendingBroadcasts, 0);
    // A restarted 'a' at incarnation 0 that did not learn its old state (its seed had forgotten it) pings s.
    const restarted = makeNode('a', 9);
    restarted.seedMembers(states(['s', 'a', 'b']), 5000);
    const told = seed.receive(address('a'), packet('a', { kind: 'ping', seqNo: 1, targetId: 's' }), 5001);
    const obituary = told.send.find((o) => o.packet.messages.some((m) => m.kind === 'dead'));
    assert.ok(obituary !== undefined && obituary.to === address('a'), 'the seed tells the dead member');
    restarted.receive(address('s'), obituary.packet, 5002);
    assert.equal(restarted.incarnation, 4, 'it outbids the incarnation it died at');
    const events = runAlone(restarted, 5002, 5400).send.flatMap(
      (o) => seed.receive(address('a'), o.packet, 5400).events,
    );
    assert.deepEqual(
      events.map((e) => [e.kind, e.member.nodeId, e.member.incarnation]),
      [['alive_again', 'a', 4]],
    );
  });
});

describe('gossip node: buddy system', () => {
  it('answers a ping that carries an accusation of itself with an ack that carries its refutation', () => {
    const a = makeNode('a');
    a.seedMembers(states(['a', 'b']), 0);
    const out = a.receive(
      address('b'),
      packet(
        'b',
        { kind: 'ping', seqNo: 9, targetId: 'a' },
        { kind: 'suspect', nodeId: 'a', incarnation: 0, accuserId: 'b' },
      ),
      10,
    );
    const ack = out.send.find((o) => o.packet.messages[0]?.kind === 'ack');
    assert.ok(ack !== undefined);
    const alive = ack.packet.messages.find((m) => m.kind === 'alive');
    assert.deepEqual(alive && [alive.nodeId, alive.incarnation], ['a', 1]);
  });
});

describe('gossip node: reconnect', () => {
  const pushPullTargets = (sent: readonly Outgoing[]): string[] =>
    sent.filter((o) => o.packet.messages.some((m) => m.kind === 'push_pull')).map((o) => o.to);

  it('exchanges state with a reconnect peer no alive member answers for, and stops once it is alive', () => {
    const a = makeNode('a');
    a.setReconnectPeers([address('a'), address('b')]);
    const early = runAlone(a, 0, 2 * GOSSIP_DEFAULTS.reconnectIntervalMs);
    const targets = pushPullTargets(early.send);
    assert.ok(targets.length >= 1, 'a reconnect within the interval');
    assert.ok(
      targets.every((t) => t === address('b')),
      `only the peer, never itself: ${targets.join(', ')}`,
    );
    a.seedMembers(states(['a', 'b']), 2 * GOSSIP_DEFAULTS.reconnectIntervalMs);
    const later = runAlone(a, 2 * GOSSIP_DEFAULTS.reconnectIntervalMs + 1, 10_000, true);
    // The regular push-pull (every 30 s) is not due yet: any push-pull here would be a reconnect.
    assert.deepEqual(pushPullTargets(later.send), []);
  });

  it('keeps a forgotten member as a reconnect candidate until the reconnect timeout', () => {
    const config = { ...GOSSIP_DEFAULTS, reconnectTimeoutMs: 60_000 };
    const a = new GossipNode({
      nodeId: 'a',
      address: address('a'),
      meta: memberMeta(0),
      random: new SeededRandom(3),
      nowMs: 0,
      config,
    });
    a.seedMembers(states(['a', 'b']), 0);
    a.receive(address('c'), packet('c', { kind: 'dead', nodeId: 'b', incarnation: 0, accuserId: 'c' }), 10);
    const reclaimedAtMs = config.deadReclaimMs + 1_000;
    runAlone(a, 11, reclaimedAtMs);
    assert.equal(a.member('b'), undefined, 'b was forgotten');
    const window = runAlone(a, reclaimedAtMs + 1, reclaimedAtMs + 5_000);
    assert.ok(pushPullTargets(window.send).includes(address('b')), 'the forgotten member is tried');
    const expired = runAlone(a, reclaimedAtMs + 61_000, reclaimedAtMs + 70_000);
    assert.deepEqual(pushPullTargets(expired.send), [], 'given up after the reconnect timeout');
  });

  it('a push-pull reply that accuses it makes it send its refutation to that peer at once', () => {
    const a = makeNode('a');
    a.seedMembers(states(['a']), 0);
    const reply: GossipMessage = {
      kind: 'push_pull',
      join: false,
      isReply: true,
      states: [
        { nodeId: 'a', address: address('a'), incarnation: 0, state: 'dead', meta: memberMeta(0) },
        { nodeId: 'b', address: address('b'), incarnation: 2, state: 'alive', meta: memberMeta(1) },
      ],
    };
    const out = a.receive(address('b'), packet('b', reply), 100);
    const direct = out.send.find(
      (o) => o.to === address('b') && o.transport === 'udp' && o.packet.messages[0]?.kind === 'alive',
    );
    assert.ok(direct !== undefined, 'the refutation goes straight to the peer that holds the accusation');
    assert.equal(a.incarnation, 1);
  });
});

describe('gossip node: Kafka ports across wire versions', () => {
  const x = 'x';
  const alive = (incarnation: number, kafkaPort: number): GossipMessage => ({
    kind: 'alive',
    nodeId: x,
    address: address(x),
    incarnation,
    meta: { ...memberMeta(1), kafkaPort },
  });
  const kafkaPortOf = (node: GossipNode): number | undefined => node.member(x)?.meta.kafkaPort;

  it('a version-2 relay (port unknown) never replaces a port known from version 3, at any incarnation', () => {
    const a = makeNode('a');
    a.receive(address('b'), packet('b', alive(1, 9092)), 10);
    assert.equal(kafkaPortOf(a), 9092);
    assert.deepEqual(a.receive(address('o'), packet('o', alive(1, KAFKA_PORT_UNKNOWN)), 20).events, []);
    assert.equal(kafkaPortOf(a), 9092);
    a.receive(address('o'), packet('o', alive(2, KAFKA_PORT_UNKNOWN)), 30);
    assert.equal(a.member(x)?.incarnation, 2);
    assert.equal(kafkaPortOf(a), 9092, 'the newer incarnation keeps the port known before');
    // Relayed onwards as unknown: the port is not known to be incarnation 2's.
    const relayed = runAlone(a, 30, 400).send.flatMap((o) => o.packet.messages);
    const aboutX = relayed.filter((m): m is AliveMessage => m.kind === 'alive' && m.nodeId === x);
    assert.ok(aboutX.length > 0);
    for (const m of aboutX) assert.equal(m.meta.kafkaPort, KAFKA_PORT_UNKNOWN);
  });

  it('a member first heard of through version 2 shows port 0 until an alive of its incarnation brings the port', () => {
    const a = makeNode('a');
    a.receive(address('o'), packet('o', alive(3, KAFKA_PORT_UNKNOWN)), 10);
    assert.equal(kafkaPortOf(a), 0, 'unknown reads as none yet outside the core');
    const filled = a.receive(address('b'), packet('b', alive(3, 9093)), 20);
    assert.deepEqual(
      filled.events.map((e) => [e.kind, e.member.meta.kafkaPort]),
      [['updated', 9093]],
    );
    assert.equal(kafkaPortOf(a), 9093);
    assert.deepEqual(a.receive(address('b'), packet('b', alive(3, 9093)), 30).events, [], 'once');
    // Passed on with the port, so members that heard the version-2 relay first learn it too.
    const sent = runAlone(a, 30, 400).send.flatMap((o) => o.packet.messages);
    assert.ok(sent.some((m) => m.kind === 'alive' && m.nodeId === x && m.meta.kafkaPort === 9093));
  });

  it('whatever order alives of any version arrive in, the port shown is one the member really had, and its latest once told', () => {
    // The member's real Kafka port at each incarnation; an alive carries it (version 3) or not (version 2).
    const realPort = (incarnation: number): number => 9000 + (incarnation % 3);
    fc.assert(
      fc.property(
        fc.array(fc.record({ incarnation: fc.nat(6), carries: fc.boolean() }), {
          minLength: 1,
          maxLength: 30,
        }),
        (arrivals) => {
          const a = makeNode('a');
          let nowMs = 0;
          /** Incarnations whose port reached the node while they were its latest. */
          const told = new Set<number>();
          for (const { incarnation, carries } of arrivals) {
            nowMs += 10;
            a.receive(
              address('b'),
              packet('b', alive(incarnation, carries ? realPort(incarnation) : KAFKA_PORT_UNKNOWN)),
              nowMs,
            );
            const current = a.member(x)!.incarnation;
            // A port told for an incarnation older than the one already known is stale, and not taken.
            if (carries && incarnation === current) told.add(incarnation);
            const shown = kafkaPortOf(a)!;
            const toldUpTo = [...told].filter((i) => i <= current);
            if (toldUpTo.length === 0) assert.equal(shown, 0);
            else
              assert.ok(
                toldUpTo.some((i) => realPort(i) === shown),
                `port ${shown} was never told`,
              );
            if (told.has(current)) assert.equal(shown, realPort(current));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
