// The choice of gossip wire version per peer (src/core/gossip/wire-versions.ts): a datagram never goes in
// version 3 to a peer whose last packet was not version 3 (an older build would drop it and count the sender
// dead); stream requests probe version 3 and fall back to 2 for a while after a probe went unanswered; a member
// that simulates an older build never sends version 3; the table stays within its bound. Checked against a
// model over random sequences of events, and on the cases by name.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PeerWireVersions, type WireVersion } from '../../src/core/gossip/wire-versions.js';

describe('PeerWireVersions', () => {
  it('an unknown peer gets version 2 datagrams and a version 3 stream probe', () => {
    const v = new PeerWireVersions(3, 10, 1000);
    assert.equal(v.udpVersion('a:1'), 2);
    assert.equal(v.streamVersion('a:1', 0), 3);
  });

  it('a peer that sent version 3 gets version 3 both ways; one that then sends 2 (rolled back) gets 2', () => {
    const v = new PeerWireVersions(3, 10, 1000);
    v.observe('a:1', 3);
    assert.equal(v.udpVersion('a:1'), 3);
    assert.equal(v.streamVersion('a:1', 0), 3);
    v.observe('a:1', 2);
    assert.equal(v.udpVersion('a:1'), 2);
  });

  it('an unanswered probe makes stream requests version 2 until probeRetryMs passes or the peer sends 3', () => {
    const v = new PeerWireVersions(3, 10, 1000);
    v.probeFailed('old:1', 500);
    assert.equal(v.streamVersion('old:1', 600), 2);
    assert.equal(v.streamVersion('old:1', 1499), 2);
    assert.equal(v.streamVersion('old:1', 1500), 3, 'probed again: it may have been upgraded');
    v.probeFailed('old:1', 2000);
    v.observe('old:1', 3);
    assert.equal(v.streamVersion('old:1', 2001), 3);
    assert.equal(v.udpVersion('old:1'), 3);
  });

  it('a member that speaks only version 2 never sends 3', () => {
    const v = new PeerWireVersions(2, 10, 1000);
    v.observe('a:1', 3);
    assert.equal(v.udpVersion('a:1'), 2);
    assert.equal(v.streamVersion('a:1', 0), 2);
    assert.equal(v.streamVersion('b:1', 0), 2);
  });

  it('matches a model over any sequence of events, within its bound', () => {
    type Event =
      | { kind: 'observe'; peer: number; version: WireVersion }
      | { kind: 'probeFailed'; peer: number }
      | { kind: 'advance'; ms: number };
    const event: fc.Arbitrary<Event> = fc.oneof(
      fc.record({
        kind: fc.constant('observe' as const),
        peer: fc.nat(5),
        version: fc.constantFrom(2 as const, 3 as const),
      }),
      fc.record({ kind: fc.constant('probeFailed' as const), peer: fc.nat(5) }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(2000) }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(2 as const, 3 as const),
        fc.array(event, { maxLength: 60 }),
        (max, events) => {
          const entriesMax = 4;
          const v = new PeerWireVersions(max, entriesMax, 1000);
          // The model: per peer, the last version heard and the end of a failed probe's fallback, with the
          // least recently touched forgotten beyond the bound.
          const model = new Map<number, { heard: WireVersion | null; until: number }>();
          let nowMs = 0;
          for (const e of events) {
            if (e.kind === 'advance') nowMs += e.ms;
            else if (e.kind === 'observe') {
              const known = model.get(e.peer);
              model.delete(e.peer);
              const heard = Math.min(e.version, max) as WireVersion;
              model.set(e.peer, { heard, until: heard === 3 ? 0 : (known?.until ?? 0) });
            } else {
              const known = model.get(e.peer);
              if (known !== undefined) known.until = nowMs + 1000;
              else model.set(e.peer, { heard: null, until: nowMs + 1000 });
            }
            while (model.size > entriesMax) model.delete(model.keys().next().value as number);
            if (e.kind === 'observe') v.observe(`p:${e.peer}`, e.version);
            if (e.kind === 'probeFailed') v.probeFailed(`p:${e.peer}`, nowMs);
            assert.ok(v.size <= entriesMax);
            for (let peer = 0; peer <= 5; peer++) {
              const m = model.get(peer);
              const udp = v.udpVersion(`p:${peer}`);
              const stream = v.streamVersion(`p:${peer}`, nowMs);
              assert.ok(udp <= max && stream <= max);
              assert.equal(udp, m?.heard === 3 ? 3 : 2, `udp to ${peer}`);
              const expected = max === 2 ? 2 : m === undefined || m.heard === 3 ? 3 : m.until > nowMs ? 2 : 3;
              assert.equal(stream, expected, `stream to ${peer}`);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
