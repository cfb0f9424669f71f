// Invariant checks used everywhere, production included. A failed assertion is a bug: it throws an
// AssertionError that nothing catches, so the thread (and with it the process) stops, because a cluster copes
// with a dead node but not with a corrupt one. Expected conditions are values, never assertions.
// Pure: callable from any thread.

export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

/** Stops with `message` unless `condition` holds. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/**
 * Stops with `message`: for hot paths, as `if (!condition) assertionFailed(\`…${detail}\`)`, so that the message
 * is built only when the check fails (an `assert` argument is evaluated on every call).
 */
export function assertionFailed(message: string): never {
  throw new AssertionError(message);
}

/** Marks a branch that the types say is unreachable; reaching it is a bug. */
export function unreachable(value: never, what: string): never {
  throw new AssertionError(`unreachable ${what}: ${String(value)}`);
}
