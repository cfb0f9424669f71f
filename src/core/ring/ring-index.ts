// Index arithmetic of the single-producer/single-consumer frame ring (the shared-memory shell is
// `src/ring/spsc-ring.ts`). Owns the frame sizing rule, the wrap rule and the counter arithmetic, so that the
// writer, the reader and the model in the tests agree on one definition.
//
// Invariants:
// - The data area holds `capacityBytes` bytes, a power of two between `RING_CAPACITY_BYTES_MIN` and
//   `RING_CAPACITY_BYTES_MAX`, so a position is `counter & (capacityBytes - 1)`.
// - Every frame starts and ends on an 8-byte boundary and never straddles the end of the data area: when it
//   does not fit before the end, the rest of the area is skipped (a wrap marker sits there) and the frame
//   starts at position 0.
// - Counters (bytes ever written, bytes ever consumed) are exact integers below 2^53 on each side; the shared
//   words carry them modulo 2^32. Because `head - tail <= capacityBytes <= 2^30`, the modular distance between
//   two counters is exact, which is what lets a side rebuild the other side's exact counter from a 32-bit word.
//
// Pure: no I/O, no clock, callable from any thread.

/** A frame header: u32 payload length, u16 kind, u16 flags, u32 correlation id, u32 reserved (zero). */
export const FRAME_HEADER_BYTES = 16;
/** Frames start on 8-byte boundaries so that a payload can be read as 64-bit words. */
export const FRAME_ALIGN_BYTES = 8;
/**
 * A length field holding this value is a wrap marker: the reader skips to position 0. A real payload never
 * reaches it because payloads are bounded by `frameBytesMax`, at most a quarter of the capacity.
 */
export const WRAP_MARKER = 0xffff_ffff;
/** Smallest data area: room for a few maximum frames of a useful size. */
export const RING_CAPACITY_BYTES_MIN = 256;
/** Largest data area: keeps `head - tail` far below 2^32, so 32-bit counter words stay unambiguous. */
export const RING_CAPACITY_BYTES_MAX = 2 ** 30;
/** Largest kind and flags values (u16 fields). */
export const FRAME_KIND_MAX = 0xffff;
export const FRAME_FLAGS_MAX = 0xffff;
/** Largest correlation id (u32 field). */
export const CORRELATION_ID_MAX = 0xffff_ffff;

/** Bytes a frame with `payloadBytes` of payload occupies in the data area, header and padding included. */
export function frameBytesFor(payloadBytes: number): number {
  return alignUp(FRAME_HEADER_BYTES + payloadBytes);
}

/** Rounds `bytes` up to the frame alignment. */
export function alignUp(bytes: number): number {
  return Math.ceil(bytes / FRAME_ALIGN_BYTES) * FRAME_ALIGN_BYTES;
}

/** The position in the data area of the exact counter `counterBytes` (any non-negative integer < 2^53). */
export function positionOf(counterBytes: number, capacityBytes: number): number {
  return counterBytes % capacityBytes;
}

/**
 * Bytes skipped before a frame of `frameBytes` written at counter `headBytes`: zero when it fits before the
 * end of the data area, otherwise all the bytes up to the end (they hold the wrap marker).
 */
export function wrapSkipBytes(headBytes: number, frameBytes: number, capacityBytes: number): number {
  const toEndBytes = capacityBytes - positionOf(headBytes, capacityBytes);
  return frameBytes <= toEndBytes ? 0 : toEndBytes;
}

/**
 * Extends a 32-bit counter word (as read from an Int32Array, so possibly negative) to the exact counter, given
 * an exact counter `baseBytes` known to be at most 2^32 - 1 below it. The writer rebuilds the tail from its own
 * head's lower bound (the last tail it saw), the reader rebuilds the head from its own tail.
 */
export function extendCounter(baseBytes: number, word: number): number {
  return baseBytes + ((word - baseBytes) >>> 0);
}

/** Free bytes in the data area given exact counters. */
export function freeBytes(headBytes: number, tailBytes: number, capacityBytes: number): number {
  return capacityBytes - (headBytes - tailBytes);
}

export interface RingGeometry {
  readonly capacityBytes: number;
  /** Largest frame (header and padding included) a writer accepts; larger payloads are refused as a value. */
  readonly frameBytesMax: number;
}

/** Largest payload a frame of at most `frameBytesMax` bytes can carry. */
export function payloadBytesMaxFor(frameBytesMax: number): number {
  return frameBytesMax - FRAME_HEADER_BYTES;
}

/**
 * Checks a ring geometry and returns every problem at once (an empty list when it is valid), so that
 * configuration errors are reported together at start-up.
 */
export function ringGeometryProblems(geometry: RingGeometry): string[] {
  const problems: string[] = [];
  const { capacityBytes, frameBytesMax } = geometry;
  if (!Number.isInteger(capacityBytes) || capacityBytes < RING_CAPACITY_BYTES_MIN) {
    problems.push(`capacityBytes must be an integer >= ${RING_CAPACITY_BYTES_MIN}, got ${capacityBytes}`);
  } else if (capacityBytes > RING_CAPACITY_BYTES_MAX) {
    problems.push(`capacityBytes must be <= ${RING_CAPACITY_BYTES_MAX}, got ${capacityBytes}`);
  } else if ((capacityBytes & (capacityBytes - 1)) !== 0) {
    problems.push(`capacityBytes must be a power of two, got ${capacityBytes}`);
  }
  if (!Number.isInteger(frameBytesMax) || frameBytesMax < FRAME_HEADER_BYTES + FRAME_ALIGN_BYTES) {
    problems.push(
      `frameBytesMax must be an integer >= ${FRAME_HEADER_BYTES + FRAME_ALIGN_BYTES}, got ${frameBytesMax}`,
    );
  } else if (frameBytesMax % FRAME_ALIGN_BYTES !== 0) {
    problems.push(`frameBytesMax must be a multiple of ${FRAME_ALIGN_BYTES}, got ${frameBytesMax}`);
  } else if (Number.isInteger(capacityBytes) && frameBytesMax > capacityBytes / 4) {
    // A quarter keeps a full-size frame from ever needing more than half the ring even after a wrap skip,
    // so a writer blocked on a large frame is released as soon as the reader frees half of the ring.
    problems.push(`frameBytesMax must be <= capacityBytes / 4 (${capacityBytes / 4}), got ${frameBytesMax}`);
  }
  return problems;
}
