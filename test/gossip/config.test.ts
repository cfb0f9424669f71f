// The gossip configuration: both profiles validate, validation reports every problem at once, and the
// Lifeguard/memberlist formulas give the values the comments in config.ts promise.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  GOSSIP_DEFAULTS,
  MEMBERLIST_LAN_PROFILE,
  pushPullIntervalScaledMs,
  retransmitLimit,
  suspicionTimeoutMinMs,
  validateGossipConfig,
} from '../../src/core/gossip/config.js';

describe('gossip config', () => {
  it('accepts both shipped profiles', () => {
    assert.deepEqual(validateGossipConfig(GOSSIP_DEFAULTS), []);
    assert.deepEqual(validateGossipConfig(MEMBERLIST_LAN_PROFILE), []);
  });

  it('reports every problem of a bad config at once', () => {
    const problems = validateGossipConfig({
      ...GOSSIP_DEFAULTS,
      probeIntervalMs: 100,
      probeTimeoutMs: 150,
      gossipNodes: 0,
      udpPacketBytesMax: 100,
      retransmitMult: 1.5,
    });
    assert.deepEqual(problems.map((p) => p.field).sort(), [
      'gossipNodes',
      'probeTimeoutMs',
      'retransmitMult',
      'udpPacketBytesMax',
    ]);
  });

  it('scales the minimum suspicion timeout with log10(N) and never below one factor', () => {
    // 5 * log10(500) * 200 ms = 2698.97 ms: above a 2 s pause, below the 5 s detection budget.
    assert.equal(suspicionTimeoutMinMs(GOSSIP_DEFAULTS, 500), 2699);
    // memberlist's LAN profile at the same size: 4 * log10(500) * 1 s.
    assert.equal(suspicionTimeoutMinMs(MEMBERLIST_LAN_PROFILE, 500), 10_796);
    assert.equal(suspicionTimeoutMinMs(GOSSIP_DEFAULTS, 1), 1000);
    assert.equal(suspicionTimeoutMinMs(GOSSIP_DEFAULTS, 5), 1000);
  });

  it('limits retransmissions to retransmitMult * ceil(log10(N + 1))', () => {
    assert.equal(retransmitLimit(GOSSIP_DEFAULTS, 9), 6);
    assert.equal(retransmitLimit(GOSSIP_DEFAULTS, 10), 12);
    assert.equal(retransmitLimit(GOSSIP_DEFAULTS, 500), 18);
  });

  it('stretches the push-pull interval by one step per doubling beyond 32 members', () => {
    assert.equal(pushPullIntervalScaledMs(GOSSIP_DEFAULTS, 32), 30_000);
    assert.equal(pushPullIntervalScaledMs(GOSSIP_DEFAULTS, 64), 60_000);
    assert.equal(pushPullIntervalScaledMs(GOSSIP_DEFAULTS, 500), 150_000);
  });
});
