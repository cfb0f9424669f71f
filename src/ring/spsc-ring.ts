// The single-producer/single-consumer frame ring over a SharedArrayBuffer that carries requests from the
// acceptor to a partition worker and responses back (one ring per direction). Owns the shared layout below, the
// publication protocol and the sleep/wake protocol. Index arithmetic lives in `src/core/ring/ring-index.ts`.
//
// Threads: exactly one thread holds the `RingWriter` of a ring and exactly one other thread holds its
// `RingReader` (each claims its side in the control block, a second claim is a bug). Either side may be the
// main thread: the main thread only ever waits with `waitAsync` / `waitForSpace`, never with the `*Sync` forms,
// which assert that they run off the main thread.
//
// Use by the acceptor (main thread): per request, `reserve(n)` on the worker's request ring, encode the request
// into `bytes`/`view` at the returned offset, `commit(kind, correlationId, written)`; on `ReserveFailure.full`
// hold the request and `await waitForSpace(n)` (or answer 503 past a bound). Once per event-loop turn (a
// `setImmediate` flush) call `publish()`. A loop per worker awaits `responses.waitAsync()`, drains with
// `next()` or `drain()` up to a bound, answers the clients, then `release()`.
// Use by a partition worker: `await requests.waitAsync()` (its event loop stays free for metadata messages;
// a pending wait does not keep the loop alive, the metadata port listener does), drain a bounded batch, process
// it, write every response with reserve/commit into the response ring, `publish()` once, `release()` the
// requests. A worker with nothing else to do may block in `waitSync` instead.
//
// Shared layout (little-endian words, offsets in bytes from the start of the SharedArrayBuffer):
//
// | offset | size | name             | written by          | meaning                                          |
// |--------|------|------------------|---------------------|--------------------------------------------------|
// | 0      | 4    | MAGIC            | createRing          | 0x52494e47 ('RING'), checked when a side attaches |
// | 4      | 4    | VERSION          | createRing          | layout version, 1                                |
// | 8      | 4    | CAPACITY_BYTES   | createRing          | data area size, a power of two                   |
// | 12     | 4    | FRAME_BYTES_MAX  | createRing          | largest frame a writer accepts                   |
// | 16     | 4    | WRITER_CLAIMED   | RingWriter (CAS)    | 1 once a writer attached                         |
// | 20     | 4    | READER_CLAIMED   | RingReader (CAS)    | 1 once a reader attached                         |
// | 64     | 4    | HEAD             | writer              | bytes ever published, modulo 2^32                |
// | 68     | 4    | READER_SLEEPING  | reader set, writer clear | 1 while the reader waits on HEAD            |
// | 128    | 4    | TAIL             | reader              | bytes ever released, modulo 2^32                 |
// | 132    | 4    | WRITER_WAITING   | writer set, reader clear | 1 while the writer waits on TAIL            |
// | 256    | cap  | data area        | writer              | frames, back to back, 8-byte aligned             |
//
// HEAD and TAIL sit on separate 64-byte cache lines so that the writer's stores to HEAD and the reader's stores
// to TAIL do not bounce one line between cores; each sleep flag shares the line of the word it waits on, and
// it is written only around a sleep, which is rare on a busy ring.
//
// Counters: each side keeps its own exact counter (bytes ever written / consumed) as a JS number, exact up to
// 2^53, and stores it into an Int32 word, which keeps it modulo 2^32. A 32-bit word is read and written
// atomically on every platform and can be waited on with Atomics.wait/waitAsync; a pair of Int32 words could
// tear and a BigInt64 word would allocate a BigInt on every load and store. Since `head - tail` never exceeds
// the capacity (at most 2^30), the other side's exact counter is rebuilt without ambiguity from the word
// (`extendCounter`). HEAD doubles as the reader's sequence word to wait on: it changes on every publish and
// cannot come back to a value the reader saw while the reader waits, because the writer can add at most
// `capacityBytes` before the ring is full. TAIL plays the same role for the writer.
//
// Frame (at an 8-byte aligned position; never straddles the end of the data area):
//
// | offset | size | field          | meaning                                                           |
// |--------|------|----------------|-------------------------------------------------------------------|
// | 0      | 4    | payloadBytes   | payload length, or WRAP_MARKER: skip to position 0                 |
// | 4      | 2    | kind           | message kind, chosen by the protocol on top of the ring            |
// | 6      | 2    | flags          | free for the protocol on top of the ring                           |
// | 8      | 4    | correlationId  | matches a response to its request                                  |
// | 12     | 4    | reserved       | zero                                                              |
// | 16     | n    | payload        | written in place by the caller between reserve and commit         |
// | 16 + n | pad  | padding        | up to the next multiple of 8                                      |
//
// A wrap marker needs only its first 4 bytes, so it fits in the smallest possible tail end (8 bytes).
//
// Memory ordering: all Atomics operations are sequentially consistent. The writer fills frames with plain
// stores and then publishes them with one Atomics.store to HEAD; a reader that loads HEAD with Atomics.load and
// sees the new value also sees every plain store that preceded that Atomics.store ("publish after copy").
// Symmetrically the reader finishes reading payloads before it stores TAIL, and the writer reuses bytes only
// after it loaded that TAIL, so no byte is overwritten while the reader may still look at it.
import { isMainThread } from 'node:worker_threads';
import { assert, assertionFailed } from '../core/assert.js';
import {
  CORRELATION_ID_MAX,
  extendCounter,
  FRAME_FLAGS_MAX,
  FRAME_HEADER_BYTES,
  FRAME_KIND_MAX,
  frameBytesFor,
  freeBytes,
  payloadBytesMaxFor,
  positionOf,
  ringGeometryProblems,
  WRAP_MARKER,
  wrapSkipBytes,
} from '../core/ring/ring-index.js';

/** Int32 indexes of the control words (byte offset / 4). */
const MAGIC = 0;
const VERSION = 1;
const CAPACITY_BYTES = 2;
const FRAME_BYTES_MAX = 3;
const WRITER_CLAIMED = 4;
const READER_CLAIMED = 5;
const HEAD = 16;
const READER_SLEEPING = 17;
const TAIL = 32;
const WRITER_WAITING = 33;

const RING_MAGIC = 0x52494e47;
const RING_VERSION = 1;
/** Size of the control block; the data area starts here. */
export const RING_CONTROL_BYTES = 256;

/** Why a reservation failed. Numbers rather than objects so that the per-frame path never allocates. */
export const ReserveFailure = {
  /** No room until the reader releases: backpressure. Wait with `waitForSpace` and retry. */
  full: -1,
  /** Larger than the ring's largest frame: it will never fit, so waiting is pointless. */
  tooLarge: -2,
} as const;
export type ReserveFailure = (typeof ReserveFailure)[keyof typeof ReserveFailure];

/** Outcome of a wait: there may be something to do, or the timeout expired first. */
export type WaitResult = 'ready' | 'timed-out';

export interface RingOptions {
  /** Data area size, a power of two in [256, 2^30]. */
  readonly capacityBytes: number;
  /** Largest frame, header and padding included; at most capacityBytes / 4, which is the default. */
  readonly frameBytesMax?: number;
  /**
   * Starting value of both counters (default 0). Tests start near 2^32 to prove that the 32-bit counter words
   * wrap correctly; production leaves it at 0.
   */
  readonly counterStartBytes?: number;
}

/** Called once per frame by `RingReader.drain`: the payload is `bytes[payloadOffset .. +payloadBytes)`. */
export type FrameVisitor = (
  kind: number,
  correlationId: number,
  payloadOffset: number,
  payloadBytes: number,
  flags: number,
) => void;

export interface RingWriterStats {
  /** Published bytes (frames and wrap skips) not yet released by the reader, from the shared words. */
  readonly occupancyBytes: number;
  readonly framesPublished: number;
  readonly batchesPublished: number;
  /** Atomics.notify calls made to wake a sleeping reader. */
  readonly notifiesSent: number;
  /** Reservations refused because the ring was full. */
  readonly fullEvents: number;
  readonly tooLargeEvents: number;
}

export interface RingReaderStats {
  /** Published bytes (frames and wrap skips) not yet released, from the shared words. */
  readonly occupancyBytes: number;
  readonly framesRead: number;
  readonly releases: number;
  /** Atomics.notify calls made to wake a writer waiting for space. */
  readonly notifiesSent: number;
  /** Waits that actually went to sleep. */
  readonly sleeps: number;
  /**
   * Sleeps that ended by their slice timing out although frames had been published meanwhile: a wake-up the
   * runtime did not deliver (see waitAsync). Each one cost at most `wakeCheckMs` of latency.
   */
  readonly missedWakes: number;
}

/** Bytes of SharedArrayBuffer a ring with this data area needs. */
export function ringBufferBytes(capacityBytes: number): number {
  return RING_CONTROL_BYTES + capacityBytes;
}

/**
 * Allocates and initialises a ring. The buffer is handed to the two threads (e.g. in `workerData`), which
 * attach with `new RingWriter(buffer)` and `new RingReader(buffer)`. Called once, by the thread that spawns.
 */
export function createRing(options: RingOptions): SharedArrayBuffer {
  const capacityBytes = options.capacityBytes;
  const frameBytesMax = options.frameBytesMax ?? capacityBytes / 4;
  const counterStartBytes = options.counterStartBytes ?? 0;
  const problems = ringGeometryProblems({ capacityBytes, frameBytesMax });
  assert(problems.length === 0, `invalid ring geometry: ${problems.join('; ')}`);
  assert(
    Number.isInteger(counterStartBytes) && counterStartBytes >= 0 && counterStartBytes % 8 === 0,
    `counterStartBytes must be a non-negative multiple of 8, got ${counterStartBytes}`,
  );
  const buffer = new SharedArrayBuffer(ringBufferBytes(capacityBytes));
  const control = new Int32Array(buffer, 0, RING_CONTROL_BYTES / 4);
  control[MAGIC] = RING_MAGIC;
  control[VERSION] = RING_VERSION;
  control[CAPACITY_BYTES] = capacityBytes;
  control[FRAME_BYTES_MAX] = frameBytesMax;
  control[HEAD] = counterStartBytes | 0;
  control[TAIL] = counterStartBytes | 0;
  // The buffer reaches other threads through postMessage/workerData, which happens after these plain stores
  // and is itself a synchronisation point, so both sides see an initialised control block.
  return buffer;
}

/** The two rings between an acceptor and one partition worker. */
export interface RingPairBuffers {
  /** Acceptor writes, worker reads. */
  readonly requests: SharedArrayBuffer;
  /** Worker writes, acceptor reads. */
  readonly responses: SharedArrayBuffer;
}

export function createRingPair(options: RingOptions): RingPairBuffers {
  return { requests: createRing(options), responses: createRing(options) };
}

/** The doorbell's one word: bumped by any writer that found the set's reader asleep. */
const DOORBELL_WORD = 0;
const DOORBELL_BYTES = 64;

/**
 * The word a reader of several rings (`RingSet`) sleeps on. Every writer of those rings is constructed with it;
 * one doorbell per reading thread.
 */
export function createDoorbell(): SharedArrayBuffer {
  return new SharedArrayBuffer(DOORBELL_BYTES);
}

function attachDoorbell(buffer: SharedArrayBuffer): Int32Array {
  assert(
    buffer instanceof SharedArrayBuffer && buffer.byteLength === DOORBELL_BYTES,
    'a doorbell is a SharedArrayBuffer from createDoorbell',
  );
  return new Int32Array(buffer, 0, 1);
}

interface Attached {
  control: Int32Array;
  capacityBytes: number;
  frameBytesMax: number;
  counterWord: number;
}

function attach(buffer: SharedArrayBuffer, claimIndex: number, side: string): Attached {
  assert(buffer instanceof SharedArrayBuffer, `${side}: a ring lives in a SharedArrayBuffer`);
  assert(buffer.byteLength > RING_CONTROL_BYTES, `${side}: buffer too small for a ring`);
  const control = new Int32Array(buffer, 0, RING_CONTROL_BYTES / 4);
  assert(control[MAGIC] === RING_MAGIC && control[VERSION] === RING_VERSION, `${side}: not a ring buffer`);
  const capacityBytes = control[CAPACITY_BYTES]!;
  const frameBytesMax = control[FRAME_BYTES_MAX]!;
  assert(
    buffer.byteLength === ringBufferBytes(capacityBytes),
    `${side}: buffer size disagrees with capacity`,
  );
  // compareExchange so that two threads attaching the same side at once cannot both win.
  assert(Atomics.compareExchange(control, claimIndex, 0, 1) === 0, `${side}: this side of the ring is taken`);
  // Both counters start equal; the value this side reads is its own exact starting counter modulo 2^32,
  // which is all it needs: it extends it to a non-negative number below 2^32.
  const counterWord = Atomics.load(control, claimIndex === WRITER_CLAIMED ? HEAD : TAIL) >>> 0;
  return { control, capacityBytes, frameBytesMax, counterWord };
}

/** Atomics.waitAsync is in ES2024; this project compiles against ES2023, so it is typed here (and exported). */
export type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };
export const atomicsWaitAsync = (
  Atomics as unknown as {
    waitAsync(array: Int32Array, index: number, value: number, timeoutMs?: number): WaitAsyncResult;
  }
).waitAsync;
assert(typeof atomicsWaitAsync === 'function', 'Atomics.waitAsync is required (Node 16 or later)');

const READY: Promise<WaitResult> = Promise.resolve('ready');
/** The longest one sleep of a reader lasts before it looks at the head again (see RingReader.waitAsync). */
const wakeCheckMs = 25;
const TIMED_OUT: Promise<WaitResult> = Promise.resolve('timed-out');
/** Published but unreleased bytes. Two separate loads: a metric, exact only when the ring is quiet. */
function occupancyBytes(control: Int32Array): number {
  // Loading TAIL first and HEAD second can only overstate the occupancy of a ring in motion, never make it
  // negative, because HEAD never falls behind the TAIL loaded before it.
  const tailWord = Atomics.load(control, TAIL);
  const headWord = Atomics.load(control, HEAD);
  return (headWord - tailWord) >>> 0;
}

function checkTimeout(timeoutMs: number): void {
  assert(timeoutMs >= 0 && !Number.isNaN(timeoutMs), `timeoutMs must be >= 0, got ${timeoutMs}`);
}

/**
 * The producing side. Per frame: `reserve(n)` gives the offset in `bytes`/`view` where the payload goes, the
 * caller writes the payload in place, `commit(kind, correlationId)` seals the frame. Per batch: `publish()`
 * makes every committed frame visible with one store and wakes the reader with at most one notify.
 * Callable only from the thread that constructed it.
 */
export class RingWriter {
  /** The data area; payload offsets returned by `reserve` index into it. */
  readonly bytes: Uint8Array;
  /** The same data area, for multi-byte fields. Multi-byte values in the ring are little-endian. */
  readonly view: DataView;
  readonly capacityBytes: number;
  readonly frameBytesMax: number;
  /** Largest payload `reserve` accepts; larger is `ReserveFailure.tooLarge`. */
  readonly payloadBytesMax: number;

  readonly #control: Int32Array;
  /** Exact count of bytes committed (the next frame goes here). */
  #headBytes: number;
  /** Exact count of bytes published (last value stored to HEAD). */
  #publishedHeadBytes: number;
  /** Exact tail as last loaded; the real tail is never below it, so it is a safe underestimate of space. */
  #tailBytes: number;
  /** Position of the open reservation's frame header, or -1 when none is open. */
  #reservedAt = -1;
  #reservedSkipBytes = 0;
  #reservedPayloadBytes = 0;
  #framesCommitted = 0;
  #framesPublished = 0;
  #batchesPublished = 0;
  #notifiesSent = 0;
  #fullEvents = 0;
  #tooLargeEvents = 0;
  #waiting = false;
  /** The reader's doorbell when it waits on several rings at once (see `RingSet`), else null. */
  readonly #doorbell: Int32Array | null;

  /**
   * `doorbell`: the reader of this ring waits on several rings at once (`RingSet`), so a wake-up goes to the
   * doorbell they share instead of to this ring's HEAD.
   */
  constructor(buffer: SharedArrayBuffer, doorbell: SharedArrayBuffer | null = null) {
    const attached = attach(buffer, WRITER_CLAIMED, 'ring writer');
    this.#doorbell = doorbell === null ? null : attachDoorbell(doorbell);
    this.#control = attached.control;
    this.capacityBytes = attached.capacityBytes;
    this.frameBytesMax = attached.frameBytesMax;
    this.payloadBytesMax = payloadBytesMaxFor(attached.frameBytesMax);
    this.bytes = new Uint8Array(buffer, RING_CONTROL_BYTES, attached.capacityBytes);
    this.view = new DataView(buffer, RING_CONTROL_BYTES, attached.capacityBytes);
    this.#headBytes = attached.counterWord;
    this.#publishedHeadBytes = attached.counterWord;
    this.#tailBytes = attached.counterWord;
  }

  /**
   * Reserves a frame for `payloadBytes` of payload. Returns the payload's offset in `bytes`/`view` (>= 0), or a
   * `ReserveFailure`: `full` (backpressure: nothing was dropped or overwritten; wait with `waitForSpace` and
   * retry) or `tooLarge`. At most one reservation is open at a time; close it with `commit` or `cancel`.
   */
  reserve(payloadBytes: number): number {
    assert(this.#reservedAt === -1, 'reserve: the previous reservation is still open');
    if (!(Number.isInteger(payloadBytes) && payloadBytes >= 0))
      assertionFailed(`reserve: bad payloadBytes ${payloadBytes}`);
    if (payloadBytes > this.payloadBytesMax) {
      this.#tooLargeEvents++;
      return ReserveFailure.tooLarge;
    }
    const frameBytes = frameBytesFor(payloadBytes);
    const skipBytes = wrapSkipBytes(this.#headBytes, frameBytes, this.capacityBytes);
    const neededBytes = skipBytes + frameBytes;
    if (neededBytes > freeBytes(this.#headBytes, this.#tailBytes, this.capacityBytes)) {
      // Only now look at the shared TAIL: a writer with room to spare never touches the reader's cache line.
      // Atomics.load pairs with the reader's Atomics.store of TAIL, which it made after it finished reading
      // the released bytes, so reusing them from here on cannot race with the reader.
      this.#tailBytes = extendCounter(this.#tailBytes, Atomics.load(this.#control, TAIL));
      if (neededBytes > freeBytes(this.#headBytes, this.#tailBytes, this.capacityBytes)) {
        this.#fullEvents++;
        return ReserveFailure.full;
      }
    }
    const headAt = positionOf(this.#headBytes, this.capacityBytes);
    if (skipBytes > 0) {
      // A plain store: it becomes visible with the frame that follows it, at the next publish.
      this.view.setUint32(headAt, WRAP_MARKER, true);
    }
    const frameAt = skipBytes > 0 ? 0 : headAt;
    this.#reservedAt = frameAt;
    this.#reservedSkipBytes = skipBytes;
    this.#reservedPayloadBytes = payloadBytes;
    return frameAt + FRAME_HEADER_BYTES;
  }

  /**
   * Seals the open reservation as a frame. `payloadBytes` may be smaller than reserved (reserve the bound,
   * commit what was written). The frame is invisible to the reader until `publish`.
   */
  commit(kind: number, correlationId: number, payloadBytes = this.#reservedPayloadBytes, flags = 0): void {
    const frameAt = this.#reservedAt;
    assert(frameAt !== -1, 'commit: no open reservation');
    if (
      !(Number.isInteger(payloadBytes) && payloadBytes >= 0 && payloadBytes <= this.#reservedPayloadBytes)
    ) {
      assertionFailed(
        `commit: payloadBytes ${payloadBytes} outside the reservation of ${this.#reservedPayloadBytes}`,
      );
    }
    if (!(kind >= 0 && kind <= FRAME_KIND_MAX && Number.isInteger(kind)))
      assertionFailed(`commit: bad kind ${kind}`);
    if (!(flags >= 0 && flags <= FRAME_FLAGS_MAX && Number.isInteger(flags)))
      assertionFailed(`commit: bad flags ${flags}`);
    if (!(correlationId >= 0 && correlationId <= CORRELATION_ID_MAX && Number.isInteger(correlationId))) {
      assertionFailed(`commit: bad correlationId ${correlationId}`);
    }
    const view = this.view;
    view.setUint32(frameAt, payloadBytes, true);
    view.setUint16(frameAt + 4, kind, true);
    view.setUint16(frameAt + 6, flags, true);
    view.setUint32(frameAt + 8, correlationId, true);
    view.setUint32(frameAt + 12, 0, true);
    this.#headBytes += this.#reservedSkipBytes + frameBytesFor(payloadBytes);
    this.#reservedAt = -1;
    this.#framesCommitted++;
  }

  /** Drops the open reservation; a wrap marker it wrote stays beyond the head, where no reader looks. */
  cancel(): void {
    assert(this.#reservedAt !== -1, 'cancel: no open reservation');
    this.#reservedAt = -1;
  }

  /**
   * Makes every committed frame visible to the reader with one store, then wakes the reader with one
   * Atomics.notify if it said it is sleeping. Returns whether there was anything to publish.
   */
  publish(): boolean {
    assert(this.#reservedAt === -1, 'publish: a reservation is still open');
    if (this.#headBytes === this.#publishedHeadBytes) return false;
    // Publish after copy: every frame byte was written with plain stores before this sequentially consistent
    // store, so a reader whose Atomics.load of HEAD returns this value sees all of them.
    Atomics.store(this.#control, HEAD, this.#headBytes);
    this.#publishedHeadBytes = this.#headBytes;
    this.#framesPublished += this.#framesCommitted;
    this.#framesCommitted = 0;
    this.#batchesPublished++;
    // No lost wake-up: the reader stores READER_SLEEPING = 1 and then loads HEAD; we stored HEAD and then load
    // READER_SLEEPING. All four are sequentially consistent, so in their single total order either the reader's
    // load comes after our store (it sees the new head and does not sleep) or our load comes after its store
    // (we see the flag and notify). The plain load first keeps a busy, awake reader's line unwritten; the
    // exchange clears the flag so that one sleep costs exactly one notify however many batches follow.
    if (
      Atomics.load(this.#control, READER_SLEEPING) !== 0 &&
      Atomics.exchange(this.#control, READER_SLEEPING, 0)
    ) {
      const doorbell = this.#doorbell;
      if (doorbell === null) Atomics.notify(this.#control, HEAD, 1);
      else {
        // The ring set's reader waits on the doorbell's word for the value it loaded after raising every
        // ring's flag: changing the word first makes a wait that starts after this notify return at once.
        Atomics.add(doorbell, DOORBELL_WORD, 1);
        Atomics.notify(doorbell, DOORBELL_WORD, 1);
      }
      this.#notifiesSent++;
    }
    return true;
  }

  /** Whether a payload of `payloadBytes` would fit right now (loads TAIL). */
  hasSpaceFor(payloadBytes: number): boolean {
    if (!(payloadBytes <= this.payloadBytesMax))
      assertionFailed(`hasSpaceFor: ${payloadBytes} bytes can never fit`);
    const frameBytes = frameBytesFor(payloadBytes);
    const neededBytes = wrapSkipBytes(this.#headBytes, frameBytes, this.capacityBytes) + frameBytes;
    // Atomics.load of TAIL: see reserve.
    this.#tailBytes = extendCounter(this.#tailBytes, Atomics.load(this.#control, TAIL));
    return neededBytes <= freeBytes(this.#headBytes, this.#tailBytes, this.capacityBytes);
  }

  /**
   * Resolves 'ready' once a payload of `payloadBytes` fits, or 'timed-out' when no release woke the writer in
   * time (a wake-up never goes missing, so with a generous timeout this means the reader is stuck). Never blocks the thread: usable on
   * the main thread. Publishes first, because the reader can only free space it has been shown. A pending wait
   * does not by itself keep the event loop alive (Node does not count it as a handle).
   */
  waitForSpace(payloadBytes: number, timeoutMs = Number.POSITIVE_INFINITY): Promise<WaitResult> {
    checkTimeout(timeoutMs);
    this.publish();
    if (this.hasSpaceFor(payloadBytes)) return READY;
    assert(!this.#waiting, 'waitForSpace: a wait is already pending');
    return this.#waitForSpaceLoop(payloadBytes, timeoutMs);
  }

  async #waitForSpaceLoop(payloadBytes: number, timeoutMs: number): Promise<WaitResult> {
    const deadlineMs = performance.now() + timeoutMs;
    this.#waiting = true;
    try {
      for (;;) {
        // Same protocol as the reader's sleep, mirrored: flag first, then re-check TAIL, then wait on the value
        // just checked. The reader stores TAIL before it loads WRITER_WAITING, so it either made the space
        // visible to our re-check or sees our flag and notifies.
        Atomics.store(this.#control, WRITER_WAITING, 1);
        const tailWord = Atomics.load(this.#control, TAIL);
        if (this.hasSpaceFor(payloadBytes)) return 'ready';
        const remainingMs = deadlineMs - performance.now();
        if (remainingMs <= 0) return 'timed-out';
        // Bounded slices, as the reader's sleep (see RingReader.waitAsync).
        const result = atomicsWaitAsync(this.#control, TAIL, tailWord, Math.min(remainingMs, wakeCheckMs));
        const outcome = result.async ? await result.value : result.value;
        if (outcome === 'timed-out' && performance.now() >= deadlineMs) return 'timed-out';
      }
    } finally {
      this.#waiting = false;
      Atomics.store(this.#control, WRITER_WAITING, 0);
    }
  }

  /** Blocking form of `waitForSpace` for threads other than the main thread. */
  waitForSpaceSync(payloadBytes: number, timeoutMs = Number.POSITIVE_INFINITY): WaitResult {
    assert(!isMainThread, 'waitForSpaceSync would block the main thread; use waitForSpace');
    checkTimeout(timeoutMs);
    this.publish();
    const deadlineMs = performance.now() + timeoutMs;
    try {
      for (;;) {
        if (this.hasSpaceFor(payloadBytes)) return 'ready';
        // Flag, re-check, wait on the checked value: see #waitForSpaceLoop.
        Atomics.store(this.#control, WRITER_WAITING, 1);
        const tailWord = Atomics.load(this.#control, TAIL);
        if (this.hasSpaceFor(payloadBytes)) return 'ready';
        const remainingMs = deadlineMs - performance.now();
        if (remainingMs <= 0) return 'timed-out';
        if (Atomics.wait(this.#control, TAIL, tailWord, remainingMs) === 'timed-out') return 'timed-out';
      }
    } finally {
      Atomics.store(this.#control, WRITER_WAITING, 0);
    }
  }

  stats(): RingWriterStats {
    return {
      occupancyBytes: occupancyBytes(this.#control),
      framesPublished: this.#framesPublished,
      batchesPublished: this.#batchesPublished,
      notifiesSent: this.#notifiesSent,
      fullEvents: this.#fullEvents,
      tooLargeEvents: this.#tooLargeEvents,
    };
  }
}

/**
 * The consuming side. Frames are read in place: `next()` steps to the next published frame and exposes its
 * fields (`kind`, `correlationId`, `flags`, `payloadOffset`, `payloadBytes` into `bytes`/`view`); `drain`
 * does the same through a visitor with a bound on the count. The payloads stay valid until `release()`, which
 * hands all consumed bytes back to the writer with one store and at most one notify.
 * Callable only from the thread that constructed it.
 */
export class RingReader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly capacityBytes: number;
  readonly payloadBytesMax: number;

  readonly #control: Int32Array;
  /** Exact count of bytes consumed by `next` (the next frame starts here). */
  #tailBytes: number;
  /** Exact count of bytes released (last value stored to TAIL). */
  #releasedTailBytes: number;
  /** Exact head as last loaded. */
  #headBytes: number;
  #kind = 0;
  #flags = 0;
  #correlationId = 0;
  #payloadOffset = 0;
  #payloadBytes = 0;
  #framesRead = 0;
  #releases = 0;
  #notifiesSent = 0;
  #sleeps = 0;
  #missedWakes = 0;
  #waiting = false;

  constructor(buffer: SharedArrayBuffer) {
    const attached = attach(buffer, READER_CLAIMED, 'ring reader');
    this.#control = attached.control;
    this.capacityBytes = attached.capacityBytes;
    this.payloadBytesMax = payloadBytesMaxFor(attached.frameBytesMax);
    this.bytes = new Uint8Array(buffer, RING_CONTROL_BYTES, attached.capacityBytes);
    this.view = new DataView(buffer, RING_CONTROL_BYTES, attached.capacityBytes);
    this.#tailBytes = attached.counterWord;
    this.#releasedTailBytes = attached.counterWord;
    this.#headBytes = attached.counterWord;
  }

  /** Kind of the current frame (after `next()` returned true). */
  get kind(): number {
    return this.#kind;
  }
  get flags(): number {
    return this.#flags;
  }
  get correlationId(): number {
    return this.#correlationId;
  }
  /** Offset of the current frame's payload in `bytes`/`view`. */
  get payloadOffset(): number {
    return this.#payloadOffset;
  }
  get payloadBytes(): number {
    return this.#payloadBytes;
  }

  /** Whether a published frame is waiting to be read (loads HEAD when the cached head is used up). */
  hasFrames(): boolean {
    if (this.#tailBytes !== this.#headBytes) return true;
    // Atomics.load of HEAD: pairs with the writer's Atomics.store in publish, so the frames up to the loaded
    // head are fully written (publish after copy).
    this.#headBytes = extendCounter(this.#tailBytes, Atomics.load(this.#control, HEAD));
    return this.#tailBytes !== this.#headBytes;
  }

  /** Steps to the next published frame; false when none is available. Allocation-free. */
  next(): boolean {
    if (!this.hasFrames()) return false;
    let at = positionOf(this.#tailBytes, this.capacityBytes);
    let payloadBytes = this.view.getUint32(at, true);
    if (payloadBytes === WRAP_MARKER) {
      this.#tailBytes += this.capacityBytes - at;
      // The writer commits a wrap marker together with the frame after it, so that frame is published too.
      assert(this.#tailBytes < this.#headBytes, 'ring reader: wrap marker without a frame after it');
      at = 0;
      payloadBytes = this.view.getUint32(0, true);
    }
    if (!(payloadBytes <= this.payloadBytesMax)) {
      assertionFailed(`ring reader: corrupt frame length ${payloadBytes} at ${at}`);
    }
    this.#payloadBytes = payloadBytes;
    this.#kind = this.view.getUint16(at + 4, true);
    this.#flags = this.view.getUint16(at + 6, true);
    this.#correlationId = this.view.getUint32(at + 8, true);
    this.#payloadOffset = at + FRAME_HEADER_BYTES;
    this.#tailBytes += frameBytesFor(payloadBytes);
    assert(this.#tailBytes <= this.#headBytes, 'ring reader: frame runs past the published head');
    this.#framesRead++;
    return true;
  }

  /** Visits up to `framesMax` frames in order and returns how many it visited. Allocation-free. */
  drain(visit: FrameVisitor, framesMax: number): number {
    assert(framesMax >= 1, `drain: framesMax must be >= 1, got ${framesMax}`);
    let count = 0;
    while (count < framesMax && this.next()) {
      visit(this.#kind, this.#correlationId, this.#payloadOffset, this.#payloadBytes, this.#flags);
      count++;
    }
    return count;
  }

  /**
   * Hands every frame consumed so far back to the writer with one store, and wakes the writer with one notify
   * if it is waiting for space. The payloads of those frames must not be read afterwards.
   */
  release(): boolean {
    if (this.#tailBytes === this.#releasedTailBytes) return false;
    // Release after reading: every read of the released frames happened before this sequentially consistent
    // store, and the writer reuses the bytes only after its Atomics.load of TAIL returns this value.
    Atomics.store(this.#control, TAIL, this.#tailBytes);
    this.#releasedTailBytes = this.#tailBytes;
    this.#releases++;
    // Mirror of publish: we stored TAIL before loading WRITER_WAITING, the writer stores WRITER_WAITING before
    // loading TAIL, so one of us sees the other.
    if (
      Atomics.load(this.#control, WRITER_WAITING) !== 0 &&
      Atomics.exchange(this.#control, WRITER_WAITING, 0)
    ) {
      Atomics.notify(this.#control, TAIL, 1);
      this.#notifiesSent++;
    }
    return true;
  }

  /**
   * Resolves 'ready' when a frame may be available (published after the call, or already there), or
   * 'timed-out'. Never blocks the thread: usable on the main thread. Everything consumed must be released
   * first, or a writer waiting for that space and this reader would wait on each other forever.
   *
   * Sleep protocol: (1) store READER_SLEEPING = 1, (2) load HEAD again, and if it moved, clear the flag and
   * report ready, (3) otherwise wait on HEAD for the value just loaded. The writer stores HEAD and then checks
   * the flag, so a publish racing with (1)-(2) is either seen in (2) or notifies; a publish between (2) and (3)
   * makes the wait return at once because HEAD no longer holds the expected value. (4) The wait lasts at most
   * `wakeCheckMs`, then the protocol starts over until the caller's timeout: see the comment in the loop.
   */
  waitAsync(timeoutMs = Number.POSITIVE_INFINITY): Promise<WaitResult> {
    checkTimeout(timeoutMs);
    assert(this.#tailBytes === this.#releasedTailBytes, 'waitAsync: release consumed frames before waiting');
    assert(!this.#waiting, 'waitAsync: a wait is already pending');
    if (this.hasFrames()) return READY;
    if (timeoutMs === 0) return TIMED_OUT;
    return this.#sleepAsync(performance.now() + timeoutMs);
  }

  async #sleepAsync(deadlineMs: number): Promise<WaitResult> {
    this.#waiting = true;
    try {
      for (;;) {
        Atomics.store(this.#control, READER_SLEEPING, 1);
        const headWord = Atomics.load(this.#control, HEAD);
        if (this.hasFrames()) return 'ready';
        const remainingMs = deadlineMs - performance.now();
        if (remainingMs <= 0) return 'timed-out';
        // Each sleep is a bounded slice. On Node 20, a main-thread Atomics.waitAsync with a long timeout was
        // seen to stay pending after the writer had published, seen the flag, cleared it and notified (the
        // two-thread ring test stalled for its whole 10 s bound in about 1 run of 3; with 25-100 ms slices, none in
        // dozens of runs and no missed wake-up counted). So the head is checked again at least every
        // wakeCheckMs: a wake-up the runtime drops costs latency, counted in missedWakes, never a stall.
        const result = atomicsWaitAsync(this.#control, HEAD, headWord, Math.min(remainingMs, wakeCheckMs));
        if (!result.async) return result.value === 'timed-out' ? 'timed-out' : 'ready';
        this.#sleeps++;
        if ((await result.value) === 'ok') return 'ready';
        if (this.hasFrames()) {
          this.#missedWakes++;
          return 'ready';
        }
      }
    } finally {
      this.#waiting = false;
      Atomics.store(this.#control, READER_SLEEPING, 0);
    }
  }

  /** For `RingSet`: raises or lowers this ring's sleep flag (the writer then rings the set's doorbell). */
  setSleeping(sleeping: boolean): void {
    Atomics.store(this.#control, READER_SLEEPING, sleeping ? 1 : 0);
  }

  /** Whether every frame consumed was released (a reader must not sleep holding the writer's space). */
  get releasedAll(): boolean {
    return this.#tailBytes === this.#releasedTailBytes;
  }

  /**
   * Wakes this reader's pending wait early (it then reports 'ready' with possibly nothing to read), e.g. so that
   * a loop can notice it was asked to stop. Callable from any thread; a spurious wake-up is harmless because
   * every wait is followed by a drain that finds what is really there.
   */
  interrupt(): void {
    Atomics.notify(this.#control, HEAD);
  }

  /** Blocking form of `waitAsync` for threads other than the main thread (same protocol, Atomics.wait). */
  waitSync(timeoutMs = Number.POSITIVE_INFINITY): WaitResult {
    assert(!isMainThread, 'waitSync would block the main thread; use waitAsync');
    checkTimeout(timeoutMs);
    assert(this.#tailBytes === this.#releasedTailBytes, 'waitSync: release consumed frames before waiting');
    if (this.hasFrames()) return 'ready';
    if (timeoutMs === 0) return 'timed-out';
    Atomics.store(this.#control, READER_SLEEPING, 1);
    const headWord = Atomics.load(this.#control, HEAD);
    if (this.hasFrames()) {
      Atomics.store(this.#control, READER_SLEEPING, 0);
      return 'ready';
    }
    this.#sleeps++;
    const outcome = Atomics.wait(this.#control, HEAD, headWord, timeoutMs);
    Atomics.store(this.#control, READER_SLEEPING, 0);
    return outcome === 'timed-out' ? 'timed-out' : 'ready';
  }

  stats(): RingReaderStats {
    return {
      occupancyBytes: occupancyBytes(this.#control),
      framesRead: this.#framesRead,
      releases: this.#releases,
      notifiesSent: this.#notifiesSent,
      sleeps: this.#sleeps,
      missedWakes: this.#missedWakes,
    };
  }
}

/**
 * One thread reading several rings (a partition worker with a request ring from each acceptor thread): it
 * sleeps on one doorbell that every writer of those rings rings instead of its own HEAD. Callable only from the
 * thread that owns the readers.
 *
 * Sleep protocol, the single-ring one spread over the set: (1) raise every ring's READER_SLEEPING, (2) load the
 * doorbell word, (3) look at every ring's HEAD, and if any moved, lower the flags and report ready, (4) else wait
 * on the doorbell for the value loaded in (2). A writer stores HEAD, then loads its ring's flag, then bumps the
 * doorbell and notifies. If (3) missed a writer's HEAD, that store came after (3)'s load, hence after (1), so
 * the writer sees the flag; its bump comes after its HEAD store, hence after (2): the wait in (4) finds the word
 * changed or is notified. Slices of `wakeCheckMs` bound any wake-up the runtime drops, as for one ring.
 */
export class RingSet {
  readonly #doorbell: Int32Array;
  #waiting = false;
  #sleeps = 0;
  #missedWakes = 0;

  constructor(
    readonly readers: readonly RingReader[],
    doorbell: SharedArrayBuffer,
  ) {
    assert(readers.length >= 1, 'a ring set reads at least one ring');
    this.#doorbell = attachDoorbell(doorbell);
  }

  hasFrames(): boolean {
    const readers = this.readers;
    for (let i = 0; i < readers.length; i++) if (readers[i]!.hasFrames()) return true;
    return false;
  }

  /** As `RingReader.waitAsync`, for a frame on any of the rings. */
  waitAsync(timeoutMs = Number.POSITIVE_INFINITY): Promise<WaitResult> {
    checkTimeout(timeoutMs);
    for (const reader of this.readers) {
      assert(reader.releasedAll, 'waitAsync: release consumed frames before waiting');
    }
    assert(!this.#waiting, 'waitAsync: a wait is already pending');
    if (this.hasFrames()) return READY;
    if (timeoutMs === 0) return TIMED_OUT;
    return this.#sleepAsync(performance.now() + timeoutMs);
  }

  async #sleepAsync(deadlineMs: number): Promise<WaitResult> {
    this.#waiting = true;
    try {
      for (;;) {
        for (const reader of this.readers) reader.setSleeping(true);
        const word = Atomics.load(this.#doorbell, DOORBELL_WORD);
        if (this.hasFrames()) return 'ready';
        const remainingMs = deadlineMs - performance.now();
        if (remainingMs <= 0) return 'timed-out';
        const result = atomicsWaitAsync(
          this.#doorbell,
          DOORBELL_WORD,
          word,
          Math.min(remainingMs, wakeCheckMs),
        );
        if (!result.async) return result.value === 'timed-out' ? 'timed-out' : 'ready';
        this.#sleeps++;
        if ((await result.value) === 'ok') return 'ready';
        if (this.hasFrames()) {
          this.#missedWakes++;
          return 'ready';
        }
      }
    } finally {
      this.#waiting = false;
      for (const reader of this.readers) reader.setSleeping(false);
    }
  }

  /** Wakes the pending wait early (any thread; a spurious wake-up is harmless, as for one ring). */
  interrupt(): void {
    Atomics.add(this.#doorbell, DOORBELL_WORD, 1);
    Atomics.notify(this.#doorbell, DOORBELL_WORD);
  }

  get sleeps(): number {
    return this.#sleeps;
  }

  get missedWakes(): number {
    return this.#missedWakes;
  }
}
