// Parsing untrusted Avro safely with avsc 5. avsc trusts an array's block count: it loops that many times, and
// reads past the end of the buffer yield zeros instead of failing, so a few bytes claiming 2^31 items spin and
// allocate for minutes. Every item of the arrays in the project's wire schemas takes at least one byte (a union
// branch index, a length), so a count above the bytes left is garbage and is refused before the loop. avsc
// freezes its type objects, so the bound lives in a subclass of its ArrayType whose read routine is avsc 5's
// own (the same loop) plus that check; `forUntrustedSchema` installs it for every array through `typeHook`.
// It overrides avsc's private `_read`, so an avsc upgrade must re-check it (the codec tests feed it 2^31 counts).
// Pure; callable from any thread.
import avro from 'avsc';

type Tap = { buf: Buffer; pos: number; readLong(): number; skipLong(): void };
type ReadableType = { _read(tap: Tap): unknown };
const AvscArrayType = avro.types.ArrayType as unknown as new (schema: unknown, opts: unknown) => avro.Type;

class BoundedArrayType extends AvscArrayType {
  _read(tap: Tap): unknown[] {
    const items = (this as unknown as { itemsType: ReadableType }).itemsType;
    const values: unknown[] = [];
    for (let n = tap.readLong(); n !== 0; n = tap.readLong()) {
      if (n < 0) {
        // A negative count is followed by the block's size in bytes, which this reader does not need.
        n = -n;
        tap.skipLong();
      }
      if (!(n <= tap.buf.length - tap.pos)) throw new Error('array block count exceeds the bytes left');
      for (; n > 0; n--) values.push(items._read(tap));
    }
    return values;
  }
}

/** An avsc type for `schema` (unions wrapped) whose arrays refuse block counts larger than the bytes left. */
export function forUntrustedSchema(schema: unknown): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, {
    wrapUnions: true,
    typeHook: (s, opts) =>
      typeof s === 'object' && s !== null && !Array.isArray(s) && (s as { type?: unknown }).type === 'array'
        ? new BoundedArrayType(s, opts)
        : undefined,
  });
}

/** Why a frame from the network was refused; a value, never an exception. */
export type DecodeFailure = 'empty' | 'unknown_version' | 'malformed' | 'invalid_field';

/** `version` as the first byte, then `type`'s encoding of `value`. */
export function encodeVersioned(version: number, type: avro.Type, value: unknown): Buffer {
  const body = type.toBuffer(value);
  const out = Buffer.allocUnsafe(1 + body.length);
  out[0] = version;
  body.copy(out, 1);
  return out;
}

/** Checks the version byte and decodes the rest with `type`; garbage is a value, never a throw. */
export function decodeVersioned(
  buf: Uint8Array,
  version: number,
  type: avro.Type,
):
  | { readonly ok: true; readonly raw: unknown }
  | { readonly ok: false; readonly reason: DecodeFailure; readonly detail: string } {
  if (buf.length === 0) return { ok: false, reason: 'empty', detail: 'no bytes' };
  if (buf[0] !== version) return { ok: false, reason: 'unknown_version', detail: `version ${buf[0]}` };
  try {
    return { ok: true, raw: type.fromBuffer(Buffer.from(buf.buffer, buf.byteOffset + 1, buf.length - 1)) };
  } catch (error) {
    return { ok: false, reason: 'malformed', detail: error instanceof Error ? error.message : String(error) };
  }
}

/** Schema builders shared by the wire modules, so each schema reads as a table of its fields. */
export const field = (name: string, type: unknown) => ({ name, type });
export const record = (name: string, fields: { name: string; type: unknown }[]) => ({
  type: 'record',
  name,
  fields,
});
export const arrayOf = (items: unknown) => ({ type: 'array', items });
