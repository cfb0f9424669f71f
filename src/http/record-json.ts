// The JSON form of a consumed record, shared by HTTP consume and WebSocket streams: key and value as UTF-8
// strings (or base64 when asked), headers as a string map, timestamp in ms. Built by string concatenation
// from the record's views into the response bytes, without an intermediate object per record.
// `RecordFrameWriter` makes the same text as UTF-8 bytes in a reused buffer, for WebSocket streams.
// Pure apart from Buffer; called on the acceptor thread.
import { isUtf8 } from 'node:buffer';
import type { DecodedRecord } from '../core/log/record-batch.js';
import { DECIMAL_BYTES_MAX, writeDecimal } from './answer-bytes.js';

export function jsonBytes(bytes: Uint8Array | null, base64: boolean): string {
  if (bytes === null) return 'null';
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return JSON.stringify(buffer.toString(base64 ? 'base64' : 'utf8'));
}

export function jsonHeaders(record: DecodedRecord): string {
  if (record.headers.length === 0) return '{}';
  // No prototype: a header named `__proto__` would otherwise hit Object.prototype's setter and vanish.
  const out: Record<string, string | null> = Object.create(null);
  for (const header of record.headers) {
    const key = Buffer.from(header.key.buffer, header.key.byteOffset, header.key.byteLength).toString('utf8');
    out[key] =
      header.value === null
        ? null
        : Buffer.from(header.value.buffer, header.value.byteOffset, header.value.byteLength).toString('utf8');
  }
  return JSON.stringify(out);
}

/** `"offset":…,"key":…,"value":…,"headers":…,"timestamp":…}` — the record's fields and the closing brace. */
export function recordFieldsJson(record: DecodedRecord, base64: boolean): string {
  return `"offset":${record.offset},"key":${jsonBytes(record.key, false)},"value":${jsonBytes(record.value, base64)},"headers":${jsonHeaders(record)},"timestamp":${record.timestampMs}}`;
}

/** `"offset":` and the other field names of a record frame, as bytes. */
const OFFSET_FIELD = Buffer.from('"offset":');
const KEY_FIELD = Buffer.from(',"key":');
const VALUE_FIELD = Buffer.from(',"value":');
const HEADERS_FIELD = Buffer.from(',"headers":');
const TIMESTAMP_FIELD = Buffer.from(',"timestamp":');
const NULL_TEXT = Buffer.from('null');
const NO_HEADERS = Buffer.from('{}');
const HEX_DIGITS = Buffer.from('0123456789abcdef');

/**
 * A record's stream frame (`prefix` then what `recordFieldsJson` writes) made as UTF-8 bytes in one reused buffer
 * rather than as strings: the same bytes, without a string per field, per number and per concatenation. Keys and
 * values that are valid UTF-8 are escaped byte by byte as JSON.stringify escapes them; anything else (invalid
 * UTF-8, base64, headers) goes through the string form, so the output is always identical to it. The view that
 * `frame` returns is valid until its next call (uWebSockets.js copies what it sends). One per thread.
 */
export class RecordFrameWriter {
  private buffer = Buffer.allocUnsafe(4096);
  private length = 0;

  frame(prefix: Uint8Array, record: DecodedRecord, base64: boolean): Uint8Array {
    this.length = 0;
    this.raw(prefix);
    this.raw(OFFSET_FIELD);
    this.integer(record.offset);
    this.raw(KEY_FIELD);
    this.field(record.key, false);
    this.raw(VALUE_FIELD);
    this.field(record.value, base64);
    this.raw(HEADERS_FIELD);
    if (record.headers.length === 0) this.raw(NO_HEADERS);
    else this.text(jsonHeaders(record));
    this.raw(TIMESTAMP_FIELD);
    this.integer(record.timestampMs);
    this.room(1);
    this.buffer[this.length++] = 0x7d; // '}'
    return this.buffer.subarray(0, this.length);
  }

  private room(bytes: number): void {
    const needed = this.length + bytes;
    if (needed <= this.buffer.byteLength) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.buffer.byteLength * 2));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  private raw(bytes: Uint8Array): void {
    this.room(bytes.byteLength);
    this.buffer.set(bytes, this.length);
    this.length += bytes.byteLength;
  }

  private text(text: string): void {
    this.room(Buffer.byteLength(text, 'utf8'));
    this.length += this.buffer.write(text, this.length, 'utf8');
  }

  /** A safe integer in decimal, as JSON.stringify writes it. */
  private integer(value: number): void {
    this.room(DECIMAL_BYTES_MAX);
    this.length = writeDecimal(this.buffer, this.length, value);
  }

  /** A key or value: null, a JSON string of its UTF-8 text, or (base64) of its bytes in base64. */
  private field(bytes: Uint8Array | null, base64: boolean): void {
    if (bytes === null) return this.raw(NULL_TEXT);
    if (base64 || !isUtf8(bytes)) return this.text(jsonBytes(bytes, base64));
    let clean = true;
    for (let i = 0; i < bytes.byteLength; i++) {
      const b = bytes[i]!;
      if (b < 0x20 || b === 0x22 || b === 0x5c) {
        clean = false;
        break;
      }
    }
    // Worst case every byte becomes \u00XX (6 bytes), plus the quotes.
    this.room(clean ? bytes.byteLength + 2 : bytes.byteLength * 6 + 2);
    const buffer = this.buffer;
    let at = this.length;
    buffer[at++] = 0x22;
    if (clean) {
      // The common case: copied as it is (no view made, no byte loop).
      buffer.set(bytes, at);
      at += bytes.byteLength;
    } else {
      for (let i = 0; i < bytes.byteLength; i++) {
        const b = bytes[i]!;
        if (b >= 0x20 && b !== 0x22 && b !== 0x5c) {
          buffer[at++] = b;
          continue;
        }
        buffer[at++] = 0x5c; // '\'
        if (b === 0x22 || b === 0x5c) buffer[at++] = b;
        else if (b === 0x08)
          buffer[at++] = 0x62; // b
        else if (b === 0x09)
          buffer[at++] = 0x74; // t
        else if (b === 0x0a)
          buffer[at++] = 0x6e; // n
        else if (b === 0x0c)
          buffer[at++] = 0x66; // f
        else if (b === 0x0d)
          buffer[at++] = 0x72; // r
        else {
          buffer[at++] = 0x75; // u
          buffer[at++] = 0x30;
          buffer[at++] = 0x30;
          buffer[at++] = HEX_DIGITS[b >> 4]!;
          buffer[at++] = HEX_DIGITS[b & 0xf]!;
        }
      }
    }
    buffer[at++] = 0x22;
    this.length = at;
  }
}
