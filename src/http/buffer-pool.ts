// A bounded free list of equal-sized byte buffers, for request bodies the acceptor must keep past the handler's
// return: a record-batch body is copied out of uWebSockets.js's memory, checked and rewritten in place, and
// sent batch by batch as each is answered. Reusing the buffers saves a fresh allocation per request (about
// 50 us for 58 KB, most of it the allocation, against 3 us to copy into a reused buffer). Bodies larger than a
// buffer get a fresh one, which is dropped when given back.
// Invariants: at most `freeMax` buffers are kept; a buffer is either free or taken, never both.
// Acceptor (main) thread only.
import { assert } from '../core/assert.js';

export class BufferPool {
  private readonly free: ArrayBuffer[] = [];

  constructor(
    readonly bufferBytes: number,
    readonly freeMax: number,
  ) {}

  /** A buffer of `bytes` bytes: a view of a pooled buffer when it fits, else a fresh one. */
  take(bytes: number): Uint8Array {
    if (bytes > this.bufferBytes) return new Uint8Array(bytes);
    const buffer = this.free.pop() ?? new ArrayBuffer(this.bufferBytes);
    return new Uint8Array(buffer, 0, bytes);
  }

  /** Gives back a view `take` returned, once nothing reads it any more. */
  give(view: Uint8Array): void {
    const buffer = view.buffer as ArrayBuffer;
    if (buffer.byteLength !== this.bufferBytes) return;
    assert(!this.free.includes(buffer), 'a pooled buffer given back twice');
    if (this.free.length < this.freeMax) this.free.push(buffer);
  }

  /** Buffers free now (for tests). */
  get freeCount(): number {
    return this.free.length;
  }
}
