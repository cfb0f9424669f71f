// Kafka names brokers by int32 node ids; this broker names them by strings ("broker-1", "b2"). The mapping is
// a function of the set of registered ids alone, so every broker computes the same one from the same metadata
// snapshot and a client sees one consistent cluster whichever broker it asks: the trailing decimal digits of
// the id when they are unique in the cluster ("broker-3" -> 3, the usual naming), otherwise a positive murmur2
// hash of the id (moved on by one while it collides).
//
// Pure: callable from any thread.
import { murmur2, toPositive } from '../partitioner.js';

const encoder = new TextEncoder();
const INT32_MAX = 0x7fffffff;

function trailingNumber(id: string): number | null {
  const match = /(\d{1,9})$/.exec(id);
  return match === null ? null : Number(match[1]);
}

/** The node id of every broker id in `brokerIds` (any order; the result does not depend on it). */
export function kafkaNodeIds(brokerIds: Iterable<string>): Map<string, number> {
  const ids = [...new Set(brokerIds)].sort();
  const byNumber = new Map<number, number>();
  for (const id of ids) {
    const n = trailingNumber(id);
    if (n !== null) byNumber.set(n, (byNumber.get(n) ?? 0) + 1);
  }
  const out = new Map<string, number>();
  const taken = new Set<number>();
  const hashed: string[] = [];
  for (const id of ids) {
    const n = trailingNumber(id);
    if (n !== null && byNumber.get(n) === 1) {
      out.set(id, n);
      taken.add(n);
    } else hashed.push(id);
  }
  for (const id of hashed) {
    let n = toPositive(murmur2(encoder.encode(id)));
    while (taken.has(n)) n = n === INT32_MAX ? 0 : n + 1;
    out.set(id, n);
    taken.add(n);
  }
  return out;
}
