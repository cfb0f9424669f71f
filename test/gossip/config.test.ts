// The gossip configuration: both profiles validate, validation reports every problem at once, and the
// Lifeguard/memberlist formulas give the values the comments in config.ts promise.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  GOSSIP_DEFAULTS,
  MEMBERLIST_LAN_PROFILE,
  pushPullIntervalScaledMs,
  retransmitLimit,
  suspicionConfirmationsMax,
  suspicionTimeoutMaxMs,
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
      suspicionTimeoutFloorMs: -1,
    });
    assert.deepEqual(problems.map((p) => p.field).sort(), [
      'gossipNodes',
      'probeTimeoutMs',
      'retransmitMult',
      'suspicionTimeoutFloorMs',
      'udpPacketBytesMax',
    ]);
  });

  it('scales the minimum suspicion timeout with log10(N), never below the floor', () => {
    // 5 * max(1, log10 N) * 200 ms is 1 s at N <= 10 and 2.7 s at N = 500, under the 3 s floor.
    assert.equal(suspicionTimeoutMinMs(GOSSIP_DEFAULTS, 1), 3000);
    assert.equal(suspicionTimeoutMinMs(GOSSIP_DEFAULTS, 4), 3000);
    assert.equal(suspicionTimeoutMinMs(GOSSIP_DEFAULTS, 500), 3000);
    // The log term takes over at N = 1000: 5 * log10(2000) * 200 ms = 3301 ms.
    assert.equal(suspicionTimeoutMinMs(GOSSIP_DEFAULTS, 2000), 3301);
    // memberlist's LAN profile has no floor: 4 * log10(500) * 1 s.
    assert.equal(suspicionTimeoutMinMs(MEMBERLIST_LAN_PROFILE, 500), 10_796);
    assert.equal(suspicionTimeoutMinMs(MEMBERLIST_LAN_PROFILE, 4), 4000);
  });

  it('puts the maximum at suspicionMaxTimeoutMult times the log-scaled minimum, not times the floor', () => {
    // 6 * 1 s at small N: a confirmation that cannot come costs at most 3 s over the floor.
    assert.equal(suspicionTimeoutMaxMs(GOSSIP_DEFAULTS, 4), 6000);
    assert.equal(suspicionTimeoutMaxMs(GOSSIP_DEFAULTS, 500), 6 * 2699);
    assert.equal(suspicionTimeoutMaxMs(MEMBERLIST_LAN_PROFILE, 500), 6 * 10_796);
    // Never below the minimum, whatever the multiplier.
    const flat = { ...GOSSIP_DEFAULTS, suspicionMaxTimeoutMult: 1 };
    assert.equal(suspicionTimeoutMaxMs(flat, 4), 3000);
  });

  it('waits for K = min(suspicionMult - 2, confirmers) confirmations', () => {
    assert.equal(suspicionConfirmationsMax(GOSSIP_DEFAULTS, 500), 3);
    assert.equal(suspicionConfirmationsMax(GOSSIP_DEFAULTS, 3), 3);
    // 4 members, one suspected, one accusing: the other two can confirm.
    assert.equal(suspicionConfirmationsMax(GOSSIP_DEFAULTS, 2), 2);
    assert.equal(suspicionConfirmationsMax(GOSSIP_DEFAULTS, 0), 0);
    assert.equal(suspicionConfirmationsMax(GOSSIP_DEFAULTS, -1), 0);
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
