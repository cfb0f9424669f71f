// Lifeguard's dynamic suspicion timeout for one suspected member. The timer starts at the maximum and shrinks
// with each independent confirmation (a suspect message about the same member from a different accuser):
//
//   timeout(C) = max(min, max - (max - min) * log(C + 1) / log(k + 1))
//
// so after k confirmations it reaches the minimum. A lone accuser (perhaps the one with the bad link) waits
// long, giving the suspect time to refute; many accusers agree quickly. Invariant: confirmations never count
// the original accuser or the same accuser twice, and stop counting at k.
// Pure: owned by one GossipNode, called from the control thread.
import { assert } from '../assert.js';

export class Suspicion {
  readonly startMs: number;
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #k: number;
  readonly #accusers = new Set<string>();
  /** Cadence of verification pings to the suspect: a third of the minimum timeout, so two fit before it. */
  readonly verifyEveryMs: number;
  nextVerifyMs: number;

  /**
   * @param k confirmations that bring the timeout down to `minMs`; 0 means the minimum applies at once.
   */
  constructor(startMs: number, firstAccuserId: string, k: number, minMs: number, maxMs: number) {
    assert(k >= 0 && minMs > 0 && maxMs >= minMs, 'suspicion bounds must satisfy 0 < min <= max, k >= 0');
    this.startMs = startMs;
    this.#k = k;
    this.#minMs = minMs;
    this.#maxMs = k === 0 ? minMs : maxMs;
    this.#accusers.add(firstAccuserId);
    this.verifyEveryMs = Math.max(1, Math.floor(minMs / 3));
    this.nextVerifyMs = startMs + this.verifyEveryMs;
  }

  get confirmations(): number {
    return this.#accusers.size - 1;
  }

  /** Records an accusation; true when it was a new, counted confirmation (worth re-broadcasting). */
  confirm(accuserId: string): boolean {
    if (this.confirmations >= this.#k || this.#accusers.has(accuserId)) return false;
    this.#accusers.add(accuserId);
    return true;
  }

  timeoutMs(): number {
    if (this.#k === 0) return this.#minMs;
    const fraction = Math.log(this.confirmations + 1) / Math.log(this.#k + 1);
    return Math.max(this.#minMs, Math.floor(this.#maxMs - (this.#maxMs - this.#minMs) * fraction));
  }

  deadlineMs(): number {
    return this.startMs + this.timeoutMs();
  }
}
