// The primitive types of Kafka's wire protocol: a reader over one received frame and a writer over a reused,
// growable buffer. Big-endian fixed-width integers, Kafka's zigzag varint/varlong, unsigned varints (the
// lengths of the "compact" forms used by flexible versions), strings, bytes, arrays and UUIDs.
//
// A reader never throws on garbage. The first problem (a length past the end of the frame, a negative length
// where none is allowed, an int64 beyond 2^53, a varint longer than its type) is recorded in `error`, the
// position jumps to the end and every later read returns a zero value, so a decoder runs to its end without
// checks at each step and looks at `error` once. The shell closes the connection on an error: a frame that
// lies about its lengths cannot be answered safely.
//
// Lengths in the compact forms are stored plus one (0 = null, 1 = empty), as Kafka's
// ByteBufferAccessor does. int64 values are JS numbers and must be safe integers: offsets, timestamps and
// producer ids in this broker stay below 2^53.
//
// Pure: no I/O. A reader or writer belongs to the thread that made it (the acceptor).
import { assert } from '../assert.js';

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

export const UUID_BYTES = 16;
/** A varint in Kafka has at most 5 bytes (32-bit), a varlong at most 10. */
const VARINT_BYTES_MAX = 5;
const VARLONG_BYTES_MAX = 10;

export class KafkaReader {
  pos: number;
  /** The first problem met, or null; once set, reads return zero values and `pos` stays at `end`. */
  error: string | null = null;
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    start = 0,
    readonly end = bytes.length,
  ) {
    assert(start >= 0 && start <= end && end <= bytes.length, 'reader range inside its bytes');
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  fail(reason: string): void {
    if (this.error === null) this.error = `${reason} at byte ${this.pos}`;
    this.pos = this.end;
  }

  /** Reserves `size` bytes and returns their start, or -1 (with `error` set) if the frame is shorter. */
  private take(size: number): number {
    if (this.error !== null) return -1;
    if (size > this.end - this.pos) {
      this.fail(`${size} bytes needed, ${this.end - this.pos} left`);
      return -1;
    }
    const at = this.pos;
    this.pos += size;
    return at;
  }

  int8(): number {
    const at = this.take(1);
    return at < 0 ? 0 : this.view.getInt8(at);
  }

  bool(): boolean {
    return this.int8() !== 0;
  }

  int16(): number {
    const at = this.take(2);
    return at < 0 ? 0 : this.view.getInt16(at);
  }

  uint16(): number {
    const at = this.take(2);
    return at < 0 ? 0 : this.view.getUint16(at);
  }

  int32(): number {
    const at = this.take(4);
    return at < 0 ? 0 : this.view.getInt32(at);
  }

  uint32(): number {
    const at = this.take(4);
    return at < 0 ? 0 : this.view.getUint32(at);
  }

  int64(): number {
    const at = this.take(8);
    if (at < 0) return 0;
    const value = this.view.getBigInt64(at);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      this.pos = at;
      this.fail('int64 beyond 2^53');
      return 0;
    }
    return Number(value);
  }

  float64(): number {
    const at = this.take(8);
    return at < 0 ? 0 : this.view.getFloat64(at);
  }

  /** Unsigned LEB128 varint of at most 32 bits (Kafka's "unsigned varint"). */
  uvarint(): number {
    let value = 0;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      const at = this.take(1);
      if (at < 0) return 0;
      const b = this.bytes[at]!;
      // Multiplication rather than shifts: the fifth byte carries bits 28-31, past the signed 32-bit range.
      value += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        if (value > 0xffffffff) break;
        return value;
      }
    }
    this.fail('varint longer than 32 bits');
    return 0;
  }

  /** Zigzag-encoded signed varint (32 bits), as in record batches. */
  varint(): number {
    const z = this.uvarint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  /** Zigzag-encoded signed varlong; the value must be a safe integer. */
  varlong(): number {
    let z = 0;
    for (let i = 0; i < VARLONG_BYTES_MAX; i++) {
      const at = this.take(1);
      if (at < 0) return 0;
      const b = this.bytes[at]!;
      z += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(z)) break;
        return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      }
    }
    this.fail('varlong beyond 2^53');
    return 0;
  }

  uuid(): Uint8Array {
    const at = this.take(UUID_BYTES);
    return at < 0 ? new Uint8Array(UUID_BYTES) : this.bytes.subarray(at, at + UUID_BYTES);
  }

  /** A length prefix: int16/int32 in classic versions, uvarint minus one in compact ones; -1 means null. */
  private length(compact: boolean, wide: boolean): number {
    if (compact) return this.uvarint() - 1;
    return wide ? this.int32() : this.int16();
  }

  /** Returns `undefined` for null; fails on null when `nullable` is false. */
  private sized(compact: boolean, wide: boolean, nullable: boolean, what: string): Uint8Array | null {
    const size = this.length(compact, wide);
    if (this.error !== null) return null;
    if (size < 0) {
      if (size === -1 && nullable) return null;
      this.fail(`${what} length ${size}`);
      return null;
    }
    const at = this.take(size);
    return at < 0 ? null : this.bytes.subarray(at, at + size);
  }

  string(compact: boolean): string {
    return this.decodeUtf8(this.sized(compact, false, false, 'string')) ?? '';
  }

  nullableString(compact: boolean): string | null {
    return this.decodeUtf8(this.sized(compact, false, true, 'string'));
  }

  private decodeUtf8(bytes: Uint8Array | null): string | null {
    if (bytes === null) return null;
    try {
      return utf8Decoder.decode(bytes);
    } catch {
      this.fail('string is not UTF-8');
      return null;
    }
  }

  /** The bytes are a view into the frame, not a copy. */
  bytesField(compact: boolean): Uint8Array {
    return this.sized(compact, true, false, 'bytes') ?? new Uint8Array(0);
  }

  nullableBytes(compact: boolean): Uint8Array | null {
    return this.sized(compact, true, true, 'bytes');
  }

  /**
   * An array's element count (-1 = null when nullable). Every element takes at least `elementBytesMin` bytes,
   * so a count larger than the rest of the frame allows is garbage and fails here, before any allocation.
   */
  arrayLength(compact: boolean, nullable: boolean, elementBytesMin: number): number {
    const count = compact ? this.uvarint() - 1 : this.int32();
    if (this.error !== null) return 0;
    if (count < 0) {
      if (count === -1 && nullable) return -1;
      this.fail(`array length ${count}`);
      return 0;
    }
    if (count * elementBytesMin > this.end - this.pos) {
      this.fail(`array of ${count} elements longer than the frame`);
      return 0;
    }
    return count;
  }

  /** Skips a tagged-field section whose tags are all unknown, or one unknown field's payload. */
  skip(size: number): void {
    this.take(size);
  }
}

/**
 * A writer over one buffer that is kept and reused between messages: `reset()` starts a new message, `finish()`
 * returns a view of what was written (valid until the next `reset()`). The buffer doubles when full, up to
 * `capacityBytesMax`; past it is a bug in the caller, which bounds every response it builds.
 */
export class KafkaWriter {
  pos = 0;
  private buf: Uint8Array;
  private view: DataView;

  constructor(
    initialBytes = 4096,
    readonly capacityBytesMax = 256 * 1024 * 1024,
  ) {
    this.buf = new Uint8Array(initialBytes);
    this.view = new DataView(this.buf.buffer);
  }

  reset(): void {
    this.pos = 0;
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  private ensure(size: number): number {
    const need = this.pos + size;
    if (need > this.buf.length) {
      let capacity = this.buf.length * 2;
      while (capacity < need) capacity *= 2;
      assert(need <= this.capacityBytesMax, `a Kafka message of ${need} bytes exceeds the writer's bound`);
      const next = new Uint8Array(Math.min(capacity, this.capacityBytesMax));
      next.set(this.buf.subarray(0, this.pos));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.pos;
    this.pos = need;
    return at;
  }

  int8(value: number): void {
    const at = this.ensure(1);
    this.view.setInt8(at, value);
  }

  bool(value: boolean): void {
    this.int8(value ? 1 : 0);
  }

  int16(value: number): void {
    const at = this.ensure(2);
    this.view.setInt16(at, value);
  }

  uint16(value: number): void {
    const at = this.ensure(2);
    this.view.setUint16(at, value);
  }

  int32(value: number): void {
    const at = this.ensure(4);
    this.view.setInt32(at, value);
  }

  uint32(value: number): void {
    const at = this.ensure(4);
    this.view.setUint32(at, value);
  }

  int64(value: number): void {
    assert(Number.isSafeInteger(value), `int64 ${value} is a safe integer`);
    const at = this.ensure(8);
    this.view.setBigInt64(at, BigInt(value));
  }

  float64(value: number): void {
    const at = this.ensure(8);
    this.view.setFloat64(at, value);
  }

  uvarint(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xffffffff, `uvarint ${value} fits 32 bits`);
    while (value >= 0x80) {
      this.byte((value % 0x80) | 0x80);
      value = Math.floor(value / 0x80);
    }
    this.byte(value);
  }

  varint(value: number): void {
    assert(
      Number.isInteger(value) && value >= -0x80000000 && value <= 0x7fffffff,
      `varint ${value} fits 32 bits`,
    );
    this.uvarint(value >= 0 ? value * 2 : -value * 2 - 1);
  }

  varlong(value: number): void {
    assert(Number.isSafeInteger(value), `varlong ${value} is a safe integer`);
    let z = value >= 0 ? value * 2 : -value * 2 - 1;
    while (z >= 0x80) {
      this.byte((z % 0x80) | 0x80);
      z = Math.floor(z / 0x80);
    }
    this.byte(z);
  }

  uuid(value: Uint8Array): void {
    assert(value.length === UUID_BYTES, 'a UUID has 16 bytes');
    this.raw(value);
  }

  raw(value: Uint8Array): void {
    // ensure() may replace the buffer, so it runs before `this.buf` is read.
    const at = this.ensure(value.length);
    this.buf.set(value, at);
  }

  private byte(value: number): void {
    const at = this.ensure(1);
    this.buf[at] = value;
  }

  private length(compact: boolean, wide: boolean, size: number): void {
    if (compact) this.uvarint(size + 1);
    else if (wide) this.int32(size);
    else {
      assert(size <= 0x7fff, `a string of ${size} bytes fits an int16 length`);
      this.int16(size);
    }
  }

  string(compact: boolean, value: string): void {
    // Encode straight into the buffer: at most 3 bytes per UTF-16 unit, the prefix written once the size is known.
    const prefixBytes = compact ? VARINT_BYTES_MAX : 2;
    const reserve = value.length * 3;
    const start = this.ensure(prefixBytes + reserve);
    const { written } = utf8Encoder.encodeInto(value, this.buf.subarray(start + prefixBytes));
    this.pos = start;
    this.length(compact, false, written);
    const prefixEnd = this.pos;
    if (prefixEnd !== start + prefixBytes)
      this.buf.copyWithin(prefixEnd, start + prefixBytes, start + prefixBytes + written);
    this.pos = prefixEnd + written;
  }

  nullableString(compact: boolean, value: string | null): void {
    if (value === null) this.length(compact, false, -1);
    else this.string(compact, value);
  }

  bytesField(compact: boolean, value: Uint8Array): void {
    this.length(compact, true, value.length);
    this.raw(value);
  }

  nullableBytes(compact: boolean, value: Uint8Array | null): void {
    if (value === null) this.length(compact, true, -1);
    else this.bytesField(compact, value);
  }

  /** -1 writes a null array. */
  arrayLength(compact: boolean, count: number): void {
    if (compact) this.uvarint(count + 1);
    else this.int32(count);
  }

  /** Overwrites an int32 written earlier (a frame's size prefix once the frame is complete). */
  patchInt32(at: number, value: number): void {
    assert(at >= 0 && at + 4 <= this.pos, 'patch inside what was written');
    this.view.setInt32(at, value);
  }
}
