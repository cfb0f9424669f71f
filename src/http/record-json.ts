// The JSON form of a consumed record, shared by HTTP consume and WebSocket streams: key and value as UTF-8
// strings (or base64 when asked), headers as a string map, timestamp in ms. Built by string concatenation
// from the record's views into the response bytes, without an intermediate object per record.
// Pure apart from Buffer; called on the acceptor thread.
import type { DecodedRecord } from '../core/log/record-batch.js';

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
