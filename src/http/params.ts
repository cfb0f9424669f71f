// Strict parsing of path and query values. A number in a path or query must be a whole decimal integer in its
// range: `partition=abc`, `1.5`, `-0`, `+1`, `1e3` or ` 1` are refused with a message naming the parameter,
// never read as 0. Pure apart from its inputs; called on the acceptor thread.
import type { ErrorName } from '../core/errors.js';

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
      message: `${name} must be a whole number, got '${text}'`,
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
