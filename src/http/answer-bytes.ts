// Answers written as bytes into one reused buffer instead of built as strings: the produce answer
// `{"topic":…,"partition":P,"offset":O,"timestamp":T}` is a cached per-topic prefix and three integers, so the
// hot path writes digits rather than allocating a string per number and per concatenation. The view returned by
// `finish` is valid until the next `begin`; uWebSockets.js copies what it sends before `end` returns.
// Runs on the acceptor thread only (one writer per thread).
import { assert, assertionFailed } from '../core/assert.js';

export class AnswerWriter {
  private readonly buffer: Buffer;
  private length = 0;

  constructor(capacityBytes = 4096) {
    this.buffer = Buffer.allocUnsafe(capacityBytes);
  }

  /** Bytes an answer may take at most. */
  get capacityBytes(): number {
    return this.buffer.byteLength;
  }

  begin(): this {
    this.length = 0;
    return this;
  }

  /** Appends bytes written before (a cached prefix). */
  bytes(source: Uint8Array): this {
    assert(this.length + source.byteLength <= this.buffer.byteLength, 'answer larger than its buffer');
    this.buffer.set(source, this.length);
    this.length += source.byteLength;
    return this;
  }

  /** Appends an ASCII text (field names, punctuation); `text` must hold no character above U+007F. */
  ascii(text: string): this {
    assert(this.length + text.length <= this.buffer.byteLength, 'answer larger than its buffer');
    for (let i = 0; i < text.length; i++) this.buffer[this.length + i] = text.charCodeAt(i);
    this.length += text.length;
    return this;
  }

  /** Appends a safe integer in decimal, as JSON.stringify would write it. */
  integer(value: number): this {
    if (!Number.isSafeInteger(value)) assertionFailed(`not a safe integer: ${value}`);
    assert(this.length + DECIMAL_BYTES_MAX <= this.buffer.byteLength, 'answer larger than its buffer');
    this.length = writeDecimal(this.buffer, this.length, value);
    return this;
  }

  /**
   * Appends `count` entries `prefix` + decimal (`first` + k) + `suffix`, separated by commas: the per-record
   * answer of a run of consecutive offsets. Each entry is a copy of the one before with its number incremented
   * in place, digit by digit from the last, rather than written anew (no division per digit).
   */
  consecutive(prefix: Uint8Array, first: number, count: number, suffix: Uint8Array): this {
    assert(Number.isSafeInteger(first) && first >= 0 && count >= 0, 'consecutive: bad run');
    assert(Number.isSafeInteger(first + count), 'consecutive: bad run');
    if (count === 0) return this;
    const buffer = this.buffer;
    assert(
      this.length + count * (prefix.byteLength + 17 + suffix.byteLength + 1) <= buffer.byteLength,
      'answer larger than its buffer',
    );
    let entryStart = this.length;
    this.bytes(prefix).integer(first).bytes(suffix);
    let entryBytes = this.length - entryStart;
    let digitsEnd = entryBytes - suffix.byteLength;
    for (let k = 1; k < count; k++) {
      buffer[this.length++] = 44; // ','
      const start = this.length;
      buffer.copyWithin(start, entryStart, entryStart + entryBytes);
      // Increment the copied number; a carry out of its first digit means one digit more: write it anew.
      let i = start + digitsEnd - 1;
      while (i >= start + prefix.byteLength && buffer[i] === 57 /* '9' */) buffer[i--] = 48;
      if (i >= start + prefix.byteLength) {
        buffer[i] = buffer[i]! + 1;
        this.length = start + entryBytes;
      } else {
        this.length = start;
        this.bytes(prefix)
          .integer(first + k)
          .bytes(suffix);
        entryBytes = this.length - start;
        digitsEnd = entryBytes - suffix.byteLength;
      }
      entryStart = start;
    }
    return this;
  }

  /** The answer so far: a view of the shared buffer, valid until the next `begin`. */
  finish(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}

/** Bytes a safe integer takes in decimal at most: a sign and 16 digits. */
export const DECIMAL_BYTES_MAX = 17;

/**
 * Writes a safe integer in decimal at `at` (as JSON.stringify writes it), with no string made; returns the
 * position after it. The caller ensures `DECIMAL_BYTES_MAX` bytes of room.
 */
export function writeDecimal(buffer: Uint8Array, at: number, value: number): number {
  let n = value;
  let position = at;
  if (n < 0) {
    buffer[position++] = 45; // '-'
    n = -n;
  }
  let digits = 1;
  for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  for (let i = position + digits - 1; i >= position; i--) {
    buffer[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return position + digits;
}
