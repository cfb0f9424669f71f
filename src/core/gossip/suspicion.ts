// Lifeguard's dynamic suspicion timeout for one suspected member. The timer starts at the maximum and shrinks
// with each independent confirmation (a suspect message about the same member from a different accuser):
//
//   timeout(C) = max(min, max - (max - min) * log(C + 1) / log(k + 1))
//
// so after k confirmations it reaches the minimum. A lone accuser (perhaps the one with the bad link) waits
// long, giving the suspect time to refute; many accusers agree quickly. k is at most the number of members
// that could confirm, and falls when one of them becomes unable to (suspected or gone itself): at small N,
// where every member's confirmation is needed, a second failure must not hold the first one's timer up.
// Invariants: confirmations never count the original accuser or the same accuser twice, and stop counting
// at k; k never rises; the timeout never rises. The timer measures time its owner was running: after a
// stall (a paused process) the owner postpones it by the time it did not observe.
// Pure: owned by one GossipNode, called from the control thread.
import { assert } from '../assert.js';

export class Suspicion {
  #startMs: number;
  readonly #minMs: number;
  readonly #maxMs: number;
  #k: number;
  /** Members that could still confirm: counted at the start, less each that confirmed or was withdrawn. */
  #confirmersLeft: number;
  readonly #accusers = new Set<string>();
  readonly #withdrawn = new Set<string>();
  /** Cadence of verification pings to the suspect: a third of the minimum timeout, so two fit before it. */
  readonly verifyEveryMs: number;
  nextVerifyMs: number;

  /**
   * @param k confirmations that bring the timeout down to `minMs`; 0 means the minimum applies at once.
   * @param confirmers members that could confirm (alive, not the accuser); at least k. Defaults to k.
   */
  constructor(
    startMs: number,
    firstAccuserId: string,
    k: number,
    minMs: number,
    maxMs: number,
    confirmers = k,
  ) {
    assert(k >= 0 && minMs > 0 && maxMs >= minMs, 'suspicion bounds must satisfy 0 < min <= max, k >= 0');
    assert(confirmers >= k, 'a suspicion cannot wait for more confirmations than there are confirmers');
    this.#startMs = startMs;
    this.#k = k;
    this.#confirmersLeft = confirmers;
    this.#minMs = minMs;
    this.#maxMs = k === 0 ? minMs : maxMs;
    this.#accusers.add(firstAccuserId);
    this.verifyEveryMs = Math.max(1, Math.floor(minMs / 3));
    this.nextVerifyMs = startMs + this.verifyEveryMs;
  }

  get startMs(): number {
    return this.#startMs;
  }

  get confirmations(): number {
    return this.#accusers.size - 1;
  }

  get k(): number {
    return this.#k;
  }

  /** Records an accusation; true when it was a new, counted confirmation (worth re-broadcasting). */
  confirm(accuserId: string): boolean {
    if (this.confirmations >= this.#k || this.#accusers.has(accuserId)) return false;
    this.#accusers.add(accuserId);
    if (!this.#withdrawn.has(accuserId)) this.#confirmersLeft = Math.max(0, this.#confirmersLeft - 1);
    return true;
  }

  /**
   * `memberId` can no longer confirm (it became suspect, dead or left): stop waiting for it, so k falls to
   * the confirmations counted plus the confirmers left when those are fewer.
   */
  withdraw(memberId: string): void {
    if (this.#accusers.has(memberId) || this.#withdrawn.has(memberId)) return;
    this.#withdrawn.add(memberId);
    this.#confirmersLeft = Math.max(0, this.#confirmersLeft - 1);
    this.#k = Math.min(this.#k, this.confirmations + this.#confirmersLeft);
    assert(this.#k >= this.confirmations, 'k fell below the confirmations counted');
  }

  timeoutMs(): number {
    if (this.#k === 0) return this.#minMs;
    const fraction = Math.log(this.confirmations + 1) / Math.log(this.#k + 1);
    return Math.max(this.#minMs, Math.floor(this.#maxMs - (this.#maxMs - this.#minMs) * fraction));
  }

  deadlineMs(): number {
    return this.#startMs + this.timeoutMs();
  }

  /** Moves the timer and the next verification later by `stallMs`, time during which its owner did not run. */
  postpone(stallMs: number): void {
    assert(stallMs >= 0, 'a suspicion is only ever postponed');
    this.#startMs += stallMs;
    this.nextVerifyMs += stallMs;
  }
}
