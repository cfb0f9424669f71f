// The table of requests in flight on one ring link: a correlation id per request, and the value (its answer
// handler) found again by that id when the answer comes back. Owns the ids it hands out; every id is taken
// back exactly once.
//
// Why not a Map: a Map that is written and deleted at the request rate rebuilds its hash table every few dozen
// operations, and V8 leaves each replaced table pointing at its successor with its old entries still in it. Once
// one of those tables has reached the old generation (every full collection puts the live one there), each young
// collection treats it as a root: the chain of later tables and every handler they ever held survive and are
// promoted, so every request's objects end up in the old generation. On the acceptor at 10k WebSocket produce
// requests/s this was about 400 bytes per request (230 KB per young collection), and with it a full collection
// every second or so, whose pauses of 3-37 ms were the tail of the produce -> WebSocket push latency. Here slots are reused from a free list: nothing is allocated per request
// once the arrays have grown to the peak in flight, and a freed slot holds nothing.
//
// An id is the slot's index in its low `slotBits` bits and the slot's use count (1..generationMax, wrapping) in
// the bits above, so an id is never 0 (0 is a worker's unasked notice) and an answer to an id already taken back
// is caught unless 4095 later requests reused its slot meanwhile.
// Pure; one thread (the acceptor's, for WorkerLink).
import { assertionFailed } from './assert.js';

/** In-flight requests one table holds at most: 2^20 (past that, `add` says no). */
const slotBits = 20;
export const CORRELATION_SLOTS_MAX = 1 << slotBits;
const slotMask = CORRELATION_SLOTS_MAX - 1;
/** Uses of one slot before its count wraps back to 1 (12 bits: the id stays within 32 bits). */
const generationMax = 0xfff;
const initialSlots = 64;

export class CorrelationTable<T> {
  private values: (T | undefined)[] = new Array<T | undefined>(initialSlots).fill(undefined);
  /** The current use count of each slot; 0 while the slot was never used. */
  private generations = new Uint16Array(initialSlots);
  /** Free slot indexes, taken from the end. */
  private free: number[] = [];
  /** Slots below this were handed out at least once; slots from here up are fresh. */
  private used = 0;
  private count = 0;

  /** Requests in flight. */
  get size(): number {
    return this.count;
  }

  /** Slots allocated now (the peak in flight, rounded up to a power of two). */
  get capacity(): number {
    return this.values.length;
  }

  /** Holds `value` and returns its id (never 0), or -1 when CORRELATION_SLOTS_MAX are in flight. */
  add(value: T): number {
    let slot: number;
    if (this.free.length > 0) slot = this.free.pop()!;
    else if (this.used < this.values.length) slot = this.used++;
    else if (this.values.length < CORRELATION_SLOTS_MAX) {
      this.grow();
      slot = this.used++;
    } else return -1;
    const generation = this.generations[slot]! >= generationMax ? 1 : this.generations[slot]! + 1;
    this.generations[slot] = generation;
    this.values[slot] = value;
    this.count++;
    return ((generation << slotBits) | slot) >>> 0;
  }

  /** Takes back the value of `id`; undefined when no request is in flight under it. */
  take(id: number): T | undefined {
    const slot = id & slotMask;
    if (slot >= this.used || this.generations[slot] !== id >>> slotBits) return undefined;
    const value = this.values[slot];
    if (value === undefined) return undefined;
    // A freed slot holds nothing: the handler, and what it refers to, dies young.
    this.values[slot] = undefined;
    this.free.push(slot);
    this.count--;
    return value;
  }

  /** Whether a request is in flight under `id`. */
  has(id: number): boolean {
    const slot = id & slotMask;
    return slot < this.used && this.generations[slot] === id >>> slotBits && this.values[slot] !== undefined;
  }

  private grow(): void {
    const length = this.values.length * 2;
    if (length > CORRELATION_SLOTS_MAX)
      assertionFailed(`correlation table past ${CORRELATION_SLOTS_MAX} slots`);
    const values = new Array<T | undefined>(length).fill(undefined);
    for (let i = 0; i < this.values.length; i++) values[i] = this.values[i];
    const generations = new Uint16Array(length);
    generations.set(this.generations);
    this.values = values;
    this.generations = generations;
  }
}
