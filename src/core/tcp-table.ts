// Reading Linux's socket tables (/proc/net/tcp and /proc/net/tcp6) as text: established connections to one
// local port, counted by remote address. uWebSockets.js reports no HTTP connection opening or closing, so the
// broker learns how many connections each client address holds from the kernel's table instead.
//
// Format (one line per socket, after a header line; fields separated by spaces):
//   sl  local_address  rem_address    st  ...
//   0:  0100007F:1F90  0100007F:C6A2  01  ...
// An address is the raw `in_addr` / `in6_addr` printed as 32-bit words in the host's byte order (%08X each: one
// word for IPv4, four for IPv6), then ':' and the port in hex. State 01 is ESTABLISHED.
//
// Addresses are keyed as `addressKey` spells them, so that the kernel's hex and uWebSockets.js's text of the
// same address meet: IPv4 (and IPv4-mapped IPv6) dotted, other IPv6 as eight lower-case hex groups without
// leading zeros or `::` compression.
//
// Pure: text in, counts out; callable from any thread.

const ESTABLISHED = '01';

/** Adds the established connections to `localPort` found in `table` (the text of one file) to `counts`. */
export function countEstablishedByRemote(
  table: string,
  localPort: number,
  littleEndian: boolean,
  counts: Map<string, number>,
): void {
  const portHex = localPort.toString(16).toUpperCase().padStart(4, '0');
  let lineStart = table.indexOf('\n') + 1; // the header line is skipped
  while (lineStart > 0 && lineStart < table.length) {
    const lineEnd = table.indexOf('\n', lineStart);
    const line = table.slice(lineStart, lineEnd === -1 ? table.length : lineEnd);
    lineStart = lineEnd === -1 ? table.length : lineEnd + 1;
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    const remote = fields[2];
    if (local === undefined || remote === undefined || fields[3] !== ESTABLISHED) continue;
    if (!local.endsWith(`:${portHex}`)) continue;
    const key = keyOfHexAddress(remote.slice(0, remote.indexOf(':')), littleEndian);
    if (key === null) continue;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
}

function keyOfHexAddress(hex: string, littleEndian: boolean): string | null {
  if (hex.length !== 8 && hex.length !== 32) return null;
  const bytes: number[] = [];
  for (let word = 0; word < hex.length; word += 8) {
    const wordBytes: number[] = [];
    for (let i = 0; i < 8; i += 2) {
      const value = Number.parseInt(hex.slice(word + i, word + i + 2), 16);
      if (Number.isNaN(value)) return null;
      wordBytes.push(value);
    }
    if (littleEndian) wordBytes.reverse();
    bytes.push(...wordBytes);
  }
  return keyOfBytes(bytes);
}

function keyOfBytes(bytes: readonly number[]): string {
  if (bytes.length === 4) return bytes.join('.');
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return bytes.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(':');
}

/**
 * The key of an address as text (dotted IPv4, or IPv6 in any spelling: full, `::`-compressed, with a dotted
 * tail); the text itself, lower-cased, when it is neither.
 */
export function addressKey(text: string): string {
  if (!text.includes(':')) return text;
  const bytes = ipv6Bytes(text.toLowerCase());
  return bytes === null ? text.toLowerCase() : keyOfBytes(bytes);
}

function ipv6Bytes(text: string): number[] | null {
  let body = text;
  const tail: number[] = [];
  const lastColon = body.lastIndexOf(':');
  if (body.slice(lastColon + 1).includes('.')) {
    const quad = body
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    if (quad.length !== 4 || quad.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) return null;
    tail.push(...quad);
    body = `${body.slice(0, lastColon + 1)}0:0`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === '') return [];
    const groups = part.split(':').map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? Number.parseInt(g, 16) : -1));
    return groups.some((g) => g < 0) ? null : groups;
  };
  const head = parse(halves[0] ?? '');
  const rest = halves.length === 2 ? parse(halves[1] ?? '') : [];
  if (head === null || rest === null) return null;
  const missing = 8 - head.length - rest.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return null;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...rest];
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}
