// UTF-8 well-formedness (RFC 3629): where a byte sequence stops being UTF-8, for error messages that name the
// position. The fast yes/no check is Node's native isUtf8; this scan runs only once that said no.
// Pure: callable from any thread.

/** Position of the first byte that does not start a well-formed UTF-8 sequence, or -1 if there is none. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    let need = 0;
    let min = 0;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else return i;
    let code = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      code = (code << 6) | (c & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `text` with every lone surrogate replaced by U+FFFD (String#toWellFormed, not in this TypeScript lib). */
export function toWellFormed(text: string): string {
  return text.replace(loneSurrogate, '\uFFFD');
}

/** Whether `text` has no lone surrogate, so that it encodes to UTF-8 as it is. */
export function isWellFormed(text: string): boolean {
  loneSurrogate.lastIndex = 0;
  return !loneSurrogate.test(text);
}
