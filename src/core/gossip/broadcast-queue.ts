// The transmit-limited queue of membership updates piggybacked on pings, acks and gossip packets (memberlist's
// TransmitLimitedQueue). Each update is sent at most `limit` times (retransmitMult * ceil(log10(N + 1))),
// least-transmitted first and, among equals, newest first, so fresh news overtakes news most members already
// have. A new update about a member replaces any queued update about the same member, since only the latest
// state matters. Invariants: at most one entry per member id; size <= entriesMax; transmits < limit.
// Pure: owned by one GossipNode, called from the control thread.
import { assert } from '../assert.js';
import { estimateMessageBytes, type UpdateMessage } from './messages.js';

type Entry = {
  readonly message: UpdateMessage;
  readonly bytes: number;
  readonly order: number;
  transmits: number;
};

export class BroadcastQueue {
  readonly #byNode = new Map<string, Entry>();
  #entries: Entry[] = [];
  #order = 0;
  readonly #entriesMax: number;

  constructor(entriesMax: number) {
    assert(entriesMax >= 1, 'broadcast queue needs a positive bound');
    this.#entriesMax = entriesMax;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** Queues `message`, replacing any queued update about the same member; the oldest entry gives way at the bound. */
  enqueue(message: UpdateMessage): void {
    const previous = this.#byNode.get(message.nodeId);
    if (previous !== undefined) this.#remove(previous);
    if (this.#entries.length >= this.#entriesMax) {
      let oldest = this.#entries[0]!;
      for (const e of this.#entries) if (e.order < oldest.order) oldest = e;
      this.#remove(oldest);
    }
    const entry: Entry = {
      message,
      bytes: estimateMessageBytes(message),
      order: this.#order++,
      transmits: 0,
    };
    this.#entries.push(entry);
    this.#byNode.set(message.nodeId, entry);
    assert(this.#entries.length === this.#byNode.size, 'broadcast queue index out of step');
  }

  /**
   * Takes updates whose estimated sizes add up to at most `bytesBudget`, least transmitted and newest first,
   * counting one transmission for each and dropping those that reach `limit`.
   */
  take(bytesBudget: number, limit: number): UpdateMessage[] {
    if (this.#entries.length === 0 || bytesBudget <= 0) return [];
    if (this.#entries.length > 1) {
      this.#entries.sort((a, b) => a.transmits - b.transmits || b.order - a.order);
    }
    const taken: UpdateMessage[] = [];
    let spent = 0;
    let dropped = false;
    for (const entry of this.#entries) {
      if (spent + entry.bytes > bytesBudget) continue;
      spent += entry.bytes;
      taken.push(entry.message);
      entry.transmits++;
      if (entry.transmits >= limit) dropped = true;
    }
    if (dropped) {
      this.#entries = this.#entries.filter((e) => {
        if (e.transmits < limit) return true;
        this.#byNode.delete(e.message.nodeId);
        return false;
      });
    }
    return taken;
  }

  /** The queued update about `nodeId`, if any (tests and leave use it). */
  pending(nodeId: string): UpdateMessage | undefined {
    return this.#byNode.get(nodeId)?.message;
  }

  #remove(entry: Entry): void {
    const index = this.#entries.indexOf(entry);
    assert(index >= 0, 'broadcast entry missing from its queue');
    this.#entries.splice(index, 1);
    this.#byNode.delete(entry.message.nodeId);
  }
}
