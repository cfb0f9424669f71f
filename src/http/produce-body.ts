// Validation of produce bodies: the single-record body of `POST /topics/{t}/produce` and the batch bodies of
// `POST /topics/{t}/records` (JSON `{"records": [...]}`, or NDJSON: one record object per line). Turns parsed JSON into records ready for the wire, or into one error naming the
// first problem; a body with any bad record is refused whole, so nothing of it is written. Pure (Buffer is
// used for base64 and byte lengths); runs on the acceptor thread for small bodies and in a piscina worker for
// large ones.

import type { ErrorName } from '../core/errors.js';
import { RECORD_BATCH_CONTENT_TYPE } from '../core/log/batch-body.js';
import type { OutgoingRecord } from '../messages/produce.js';

export interface ProduceLimits {
  /** Key, value and headers of one record together, in bytes. */
  readonly recordBytesMax: number;
  readonly batchRecordsMax: number;
  readonly headersMax: number;
}

export interface ParsedRecord extends OutgoingRecord {
  /** Explicit partition, or null to let the partitioner choose. */
  readonly partition: number | null;
}

export type ProduceParse =
  | { readonly kind: 'ok'; readonly records: ParsedRecord[] }
  | { readonly kind: 'error'; readonly error: ErrorName; readonly message: string };

const singleFields = new Set([
  'key',
  'value',
  'headers',
  'partition',
  'timestamp',
  'key_format',
  'value_format',
]);
const base64Shape = /^[A-Za-z0-9+/]*={0,2}$/;
/**
 * The largest record timestamp accepted: 2^51 - 1 ms (about 71,000 years). A batch stores its records'
 * timestamps as deltas from the first one, which the batch writer asserts to be below 2^51 (they are zigzag
 * varlongs computed in floating point); two timestamps in [0, 2^51) always differ by less than that, whether
 * they come from one request, from two requests staged into one batch, or from the broker's clock.
 */
export const TIMESTAMP_MS_MAX = 2 ** 51 - 1;

/** Characters of a client's field or header name shown back in an error message. */
const NAME_SHOWN_CHARS_MAX = 64;

/** A client's name as an error message shows it: cut, so that a megabyte name is not echoed back. */
function nameShown(name: string): string {
  return name.length > NAME_SHOWN_CHARS_MAX ? `${name.slice(0, NAME_SHOWN_CHARS_MAX)}...` : name;
}

function fail(error: ErrorName, message: string): ProduceParse {
  return { kind: 'error', error, message };
}

type Field = string | Uint8Array | null;

/** Where a record sits in its body, for error messages: the single record, `records[at]`, or NDJSON line `at`. */
enum Place {
  single,
  records,
  line,
}

/** The prefix of an error message about the record at `at`; built only when there is an error to report. */
function whereOf(place: Place, at: number): string {
  return place === Place.single ? '' : place === Place.records ? `records[${at}]: ` : `line ${at}: `;
}

/** A key or value field that is not valid; made only on that path (a valid field allocates nothing here). */
class BadField {
  constructor(readonly message: string) {}
}

function parseBytesField(
  raw: unknown,
  format: unknown,
  what: string,
  place: Place,
  at: number,
): Field | BadField {
  if (raw === null || raw === undefined) return null;
  if (typeof raw !== 'string') {
    return new BadField(
      `${whereOf(place, at)}${what} must be a string or null, got ${Array.isArray(raw) ? 'array' : typeof raw}`,
    );
  }
  if (format === undefined || format === 'string') return raw;
  if (format === 'base64') {
    if (raw.length % 4 !== 0 || !base64Shape.test(raw)) {
      return new BadField(`${whereOf(place, at)}${what} is not valid base64`);
    }
    return Buffer.from(raw, 'base64');
  }
  return new BadField(`${whereOf(place, at)}${what}_format must be 'string' or 'base64'`);
}

function byteLength(field: Field): number {
  if (field === null) return 0;
  return typeof field === 'string' ? Buffer.byteLength(field, 'utf8') : field.byteLength;
}

function parseRecord(
  raw: unknown,
  place: Place,
  at: number,
  limits: ProduceLimits,
  nowMs: number,
): ParsedRecord | { kind: 'error'; error: ErrorName; message: string } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return {
      kind: 'error',
      error: 'bad_request',
      message: `${whereOf(place, at)}the record must be a JSON object`,
    };
  }
  const body = raw as Record<string, unknown>;
  // for-in, not Object.keys: no array per record (a parsed JSON object has no inherited enumerable keys).
  for (const field in body) {
    if (!singleFields.has(field)) {
      return {
        kind: 'error',
        error: 'bad_request',
        message: `${whereOf(place, at)}unknown field '${nameShown(field)}'; expected key, value, headers, partition, timestamp, key_format, value_format`,
      };
    }
  }
  if (!('value' in body)) {
    return {
      kind: 'error',
      error: 'bad_request',
      message: `${whereOf(place, at)}'value' is required (a string, or null)`,
    };
  }
  const key = parseBytesField(body.key, body.key_format, 'key', place, at);
  if (key instanceof BadField) return { kind: 'error', error: 'bad_request', message: key.message };
  const value = parseBytesField(body.value, body.value_format, 'value', place, at);
  if (value instanceof BadField) return { kind: 'error', error: 'bad_request', message: value.message };

  let size = byteLength(key) + byteLength(value);
  let headers: [string, string][] | null = null;
  if (body.headers !== undefined && body.headers !== null) {
    if (typeof body.headers !== 'object' || Array.isArray(body.headers)) {
      return {
        kind: 'error',
        error: 'bad_request',
        message: `${whereOf(place, at)}headers must be an object of string values`,
      };
    }
    headers = [];
    for (const [name, headerValue] of Object.entries(body.headers as Record<string, unknown>)) {
      if (typeof headerValue !== 'string') {
        return {
          kind: 'error',
          error: 'bad_request',
          message: `${whereOf(place, at)}header '${nameShown(name)}' must have a string value`,
        };
      }
      if (Buffer.byteLength(name, 'utf8') > 0xffff) {
        return {
          kind: 'error',
          error: 'bad_request',
          message: `${whereOf(place, at)}a header name is longer than 65535 bytes`,
        };
      }
      headers.push([name, headerValue]);
      size += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(headerValue, 'utf8');
    }
    if (headers.length > limits.headersMax) {
      return {
        kind: 'error',
        error: 'bad_request',
        message: `${whereOf(place, at)}at most ${limits.headersMax} headers per record, got ${headers.length}`,
      };
    }
    if (headers.length === 0) headers = null;
  }
  if (size > limits.recordBytesMax) {
    return {
      kind: 'error',
      error: 'payload_too_large',
      message: `${whereOf(place, at)}the record is ${size} bytes; the maximum is ${limits.recordBytesMax}`,
    };
  }

  let partition: number | null = null;
  if (body.partition !== undefined && body.partition !== null) {
    if (typeof body.partition !== 'number' || !Number.isInteger(body.partition) || body.partition < 0) {
      return {
        kind: 'error',
        error: 'bad_request',
        message: `${whereOf(place, at)}partition must be a non-negative integer`,
      };
    }
    partition = body.partition;
  }
  let timestampMs = nowMs;
  if (body.timestamp !== undefined && body.timestamp !== null) {
    if (
      typeof body.timestamp !== 'number' ||
      !Number.isSafeInteger(body.timestamp) ||
      body.timestamp < 0 ||
      body.timestamp > TIMESTAMP_MS_MAX
    ) {
      return {
        kind: 'error',
        error: 'bad_request',
        message: `${whereOf(place, at)}timestamp must be an integer of milliseconds since the epoch, from 0 to ${TIMESTAMP_MS_MAX}`,
      };
    }
    timestampMs = body.timestamp;
  }
  return { key, value, headers, partition, timestampMs };
}

function isError(value: unknown): value is { kind: 'error'; error: ErrorName; message: string } {
  return (value as { kind?: unknown }).kind === 'error';
}

/** Parses a JSON text, reporting a syntax error as a value. */
export function parseJsonBody(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  if (text.length === 0) return { ok: false, message: 'the request body is empty; expected a JSON object' };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, message: `the body is not valid JSON: ${(error as Error).message}` };
  }
}

/** The body of `POST /topics/{t}/produce`: one record. */
export function parseSingleProduce(json: unknown, limits: ProduceLimits, nowMs: number): ProduceParse {
  const record = parseRecord(json, Place.single, 0, limits, nowMs);
  if (isError(record)) return record;
  return { kind: 'ok', records: [record] };
}

/** The body of `POST /topics/{t}/records`: `{"records": [...]}`, 1 to `batchRecordsMax` records. */
export function parseBatchProduce(json: unknown, limits: ProduceLimits, nowMs: number): ProduceParse {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return fail('bad_request', 'the body must be a JSON object with a "records" array');
  }
  const body = json as Record<string, unknown>;
  for (const field of Object.keys(body)) {
    if (field !== 'records')
      return fail('bad_request', `unknown field '${nameShown(field)}'; expected "records"`);
  }
  const raw = body.records;
  if (!Array.isArray(raw)) return fail('bad_request', '"records" must be an array of records');
  if (raw.length === 0) return fail('bad_request', '"records" must hold at least one record');
  if (raw.length > limits.batchRecordsMax) {
    return fail(
      'payload_too_large',
      `"records" holds ${raw.length} records; at most ${limits.batchRecordsMax} per request`,
    );
  }
  const records: ParsedRecord[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const record = parseRecord(raw[i], Place.records, i, limits, nowMs);
    if (isError(record)) return record;
    records[i] = record;
  }
  return { kind: 'ok', records };
}

/** The media type of the NDJSON batch body (parameters after ';' are ignored). */
export const NDJSON_CONTENT_TYPE = 'application/x-ndjson';

export type ProduceBodyFormat = 'json' | 'ndjson' | 'record-batch';

/**
 * The format a produce body's Content-Type announces: NDJSON, Kafka record batches, or JSON for everything
 * else the server accepts (application/json, Confluent's vnd.kafka.*+json, text/plain, none).
 */
export function bodyFormatOf(contentType: string): ProduceBodyFormat {
  if (contentType === '' || contentType === 'application/json') return 'json';
  const semicolon = contentType.indexOf(';');
  const bare = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  if (bare === NDJSON_CONTENT_TYPE) return 'ndjson';
  if (bare === RECORD_BATCH_CONTENT_TYPE) return 'record-batch';
  return 'json';
}

/**
 * The NDJSON body of `POST /topics/{t}/records`: one record object per line (the fields of a record of the
 * JSON `records` array), lines ending in LF or CRLF; empty lines (and a last newline) are skipped. 1 to
 * `batchRecordsMax` records; an error names the 1-based line it is on.
 */
export function parseNdjsonProduce(text: string, limits: ProduceLimits, nowMs: number): ProduceParse {
  const records: ParsedRecord[] = [];
  let start = 0;
  let line = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    line++;
    const stop = end > start && text.charCodeAt(end - 1) === 13 /* CR */ ? end - 1 : end;
    const lineText = text.slice(start, stop);
    start = end + 1;
    if (lineText.trim().length === 0) continue;
    if (records.length === limits.batchRecordsMax) {
      return fail(
        'payload_too_large',
        `line ${line}: the body holds more than ${limits.batchRecordsMax} records; at most ${limits.batchRecordsMax} per request`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(lineText);
    } catch (error) {
      return fail('bad_request', `line ${line}: not valid JSON: ${(error as Error).message}`);
    }
    const record = parseRecord(json, Place.line, line, limits, nowMs);
    if (isError(record)) return record;
    records.push(record);
  }
  if (records.length === 0) {
    return fail('bad_request', 'the NDJSON body holds no record; expected one JSON record object per line');
  }
  return { kind: 'ok', records };
}
