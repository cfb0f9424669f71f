// Strict parsing of path and query values. A number in a path or query must be a whole decimal integer in its
// range: `partition=abc`, `1.5`, `-0`, `+1`, `1e3` or ` 1` are refused with a message naming the parameter,
// never read as 0. Pure apart from its inputs; called on the acceptor thread.
import type { ErrorName } from '../core/errors.js';
import { FETCH_EARLIEST, FETCH_LATEST } from '../messages/fetch.js';
import type { Acks } from '../messages/produce.js';

export interface ParamError {
  readonly kind: 'error';
  readonly error: ErrorName;
  readonly message: string;
}

const decimalInteger = /^(0|[1-9][0-9]{0,15})$/;

/** Parses `text` as an integer in [min, max]; `name` is used in the error message. */
export function parseIntegerParam(name: string, text: string, min: number, max: number): number | ParamError {
  if (!decimalInteger.test(text)) {
    return {
      kind: 'error',
      error: 'bad_parameter',
      message: `${name} must be a whole number, got '${text.slice(0, 64)}'`,
    };
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    return {
      kind: 'error',
      error: 'bad_parameter',
      message: `${name} must be between ${min} and ${max}, got ${text}`,
    };
  }
  return value;
}

/** Like parseIntegerParam, but an absent (empty) value yields `fallback`. */
export function parseOptionalIntegerParam(
  name: string,
  text: string | undefined,
  min: number,
  max: number,
  fallback: number,
): number | ParamError {
  if (text === undefined || text === '') return fallback;
  return parseIntegerParam(name, text, min, max);
}

export function isParamError(value: unknown): value is ParamError {
  return typeof value === 'object' && value !== null && (value as ParamError).kind === 'error';
}

/**
 * A percent-encoded path parameter, decoded. A malformed escape (`%`, `%zz`, `%E0%A4%A`, an encoded lone
 * surrogate) makes `decodeURIComponent` throw URIError; such a parameter is kept as sent instead, so that the
 * name check after it refuses it with a 400 rather than the throw becoming a 500 or a dropped connection.
 */
export function decodePathParam(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/**
 * The `acks` of a produce's query string: `all` or `-1` (the default, also when absent) → 2, `1` → 1, `0` → 0;
 * anything else is a sentence naming the value. A malformed query string reads as URLSearchParams reads it.
 */
export function parseAcks(query: string): Acks | string {
  if (query === '') return 2;
  const value = new URLSearchParams(query).get('acks');
  if (value === null || value === 'all' || value === '-1') return 2;
  if (value === '1') return 1;
  if (value === '0') return 0;
  return `acks must be 0, 1, all or -1, got '${value.slice(0, 64)}'`;
}

/** The records a consume answers at most: api.md caps `limit` at 1000, serving a larger one as 1000. */
export const CONSUME_LIMIT_MAX = 1000;
const consumeLimitDefault = 100;
const consumeMaxBytesDefault = 1024 * 1024;

export interface ConsumeQuery {
  /** An offset, or FETCH_EARLIEST / FETCH_LATEST. */
  readonly offset: number;
  readonly limit: number;
  readonly maxBytes: number;
  readonly waitMs: number;
  readonly isolation: 'read_uncommitted' | 'read_committed';
  readonly valueFormat: 'string' | 'base64';
}

/**
 * The query string of `GET /topics/{t}/partitions/{p}/consume`: `offset` (earliest, latest or an integer),
 * `limit`, `max_bytes` (up to `maxBytesCap`, what one answer can carry), `wait_ms` (up to `maxWaitMs`),
 * `isolation` and `value_format`; a ParamError naming the first bad one.
 */
export function parseConsumeQuery(
  query: string,
  bounds: { readonly maxBytesCap: number; readonly maxWaitMs: number },
): ConsumeQuery | ParamError {
  const params = new URLSearchParams(query);
  const offsetText = params.get('offset') ?? 'earliest';
  let offset: number;
  if (offsetText === 'earliest') offset = FETCH_EARLIEST;
  else if (offsetText === 'latest') offset = FETCH_LATEST;
  else {
    const parsed = parseIntegerParam('offset', offsetText, 0, Number.MAX_SAFE_INTEGER);
    if (isParamError(parsed)) return { ...parsed, message: `${parsed.message} (or 'earliest' / 'latest')` };
    offset = parsed;
  }
  const limit = parseOptionalIntegerParam(
    'limit',
    params.get('limit') ?? undefined,
    1,
    Number.MAX_SAFE_INTEGER,
    consumeLimitDefault,
  );
  if (isParamError(limit)) return limit;
  const maxBytes = parseOptionalIntegerParam(
    'max_bytes',
    params.get('max_bytes') ?? undefined,
    1,
    bounds.maxBytesCap,
    Math.min(consumeMaxBytesDefault, bounds.maxBytesCap),
  );
  if (isParamError(maxBytes)) return maxBytes;
  const waitMs = parseOptionalIntegerParam(
    'wait_ms',
    params.get('wait_ms') ?? undefined,
    0,
    bounds.maxWaitMs,
    0,
  );
  if (isParamError(waitMs)) return waitMs;
  const isolation = params.get('isolation') ?? 'read_uncommitted';
  if (isolation !== 'read_uncommitted' && isolation !== 'read_committed') {
    return paramError(
      `isolation must be read_uncommitted or read_committed, got '${isolation.slice(0, 64)}'`,
    );
  }
  const valueFormat = params.get('value_format') ?? 'string';
  if (valueFormat !== 'string' && valueFormat !== 'base64') {
    return paramError(`value_format must be 'string' or 'base64', got '${valueFormat.slice(0, 64)}'`);
  }
  return { offset, limit: Math.min(limit, CONSUME_LIMIT_MAX), maxBytes, waitMs, isolation, valueFormat };
}

function paramError(message: string): ParamError {
  return { kind: 'error', error: 'bad_parameter', message };
}
