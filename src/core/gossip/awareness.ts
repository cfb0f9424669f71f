// Lifeguard's local health awareness: a score in [0, maxMultiplier - 1] that rises when this member shows signs
// of being the slow one (missed nacks from its own ping-req relays, having to refute a suspicion of itself)
// and falls with each probe that succeeds. Timeouts and the probe interval are multiplied by (score + 1), so a
// member that cannot keep up probes less often and waits longer before accusing anyone.
// Invariant: 0 <= score < maxMultiplier. Pure: owned by one GossipNode, called from the control thread.
import { assert } from '../assert.js';

export class Awareness {
  #score = 0;
  readonly #maxMultiplier: number;

  constructor(maxMultiplier: number) {
    assert(Number.isInteger(maxMultiplier) && maxMultiplier >= 1, 'awareness multiplier must be >= 1');
    this.#maxMultiplier = maxMultiplier;
  }

  get score(): number {
    return this.#score;
  }

  /** Adds `delta` (negative for good news), clamped to the valid range. */
  apply(delta: number): void {
    this.#score = Math.min(this.#maxMultiplier - 1, Math.max(0, this.#score + delta));
    assert(this.#score >= 0 && this.#score < this.#maxMultiplier, 'awareness score out of range');
  }

  /** `durationMs` stretched by the current health: (score + 1) times. */
  scale(durationMs: number): number {
    return durationMs * (this.#score + 1);
  }
}
