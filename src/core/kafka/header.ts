// Request and response headers, and the framing around them. On a Kafka connection every message is an int32
// size followed by that many bytes; a request's bytes are its header then its body:
//
// | field          | request header v1             | v2 (flexible versions)            |
// |----------------|-------------------------------|-----------------------------------|
// | requestApiKey  | int16                         | int16                             |
// | requestVersion | int16                         | int16                             |
// | correlationId  | int32                         | int32                             |
// | clientId       | nullable string, int16 length | the same (never compact, KIP-482) |
// | tagged fields  | -                             | uvarint count, then tag/size/data |
//
// A response is int32 size, correlationId (response header v0), in v1 followed by an empty tagged-field
// section, then the body. ApiVersions answers with header v0 whatever its version (see api-keys.ts).
//
// `decodeRequestHeader` sorts a frame into: a request to serve; an ApiVersions request of a version this broker
// does not know (answered with UNSUPPORTED_VERSION and the supported list, as Kafka does, so the client can
// retry with one it shares); or something to close the connection for (an unknown API, a version outside the
// claimed range, a frame above its API's bound, a header that does not parse). Never throws.
//
// Pure: no I/O. Callable from any thread.
import { assert } from '../assert.js';
import {
  ApiKey,
  type ApiVersionRange,
  apiRange,
  requestHeaderVersion,
  responseHeaderVersion,
} from './api-keys.js';
import { type DecodeResult, decodeMessage, encodeMessage } from './codec.js';
import { KafkaReader, type KafkaWriter } from './primitives.js';
import type { MessageSpec } from './schema.js';

export const FRAME_SIZE_BYTES = 4;
/** The fixed part of a request header: api key, version, correlation id, and the clientId length. */
const REQUEST_HEADER_FIXED_BYTES = 10;

export interface RequestHeader {
  readonly api: ApiVersionRange;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
}

export type HeaderResult =
  | { kind: 'request'; header: RequestHeader; bodyStart: number }
  /** ApiVersions of an unknown version: answer v0 with UNSUPPORTED_VERSION, then carry on. */
  | { kind: 'api_versions_unsupported'; correlationId: number; apiVersion: number }
  /** Anything else the broker cannot answer: the connection is closed. */
  | { kind: 'close'; reason: string };

/**
 * Reads the header of one request frame (the bytes after its size prefix). `produceBytesMax` is the listener's
 * bound for Produce; every other API has its own in api-keys.ts.
 */
export function decodeRequestHeader(frame: Uint8Array, produceBytesMax: number): HeaderResult {
  if (frame.length < REQUEST_HEADER_FIXED_BYTES) {
    return { kind: 'close', reason: `a request of ${frame.length} bytes is shorter than a header` };
  }
  const reader = new KafkaReader(frame);
  const apiKey = reader.int16();
  const apiVersion = reader.int16();
  const correlationId = reader.int32();
  const api = apiRange(apiKey);
  if (api === undefined) return { kind: 'close', reason: `API key ${apiKey} is not supported` };
  const bytesMax = api.requestBytesMax ?? produceBytesMax;
  if (frame.length > bytesMax) {
    return { kind: 'close', reason: `${api.name} request of ${frame.length} bytes is above ${bytesMax}` };
  }
  if (apiVersion < api.minVersion || apiVersion > api.maxVersion) {
    if (apiKey === ApiKey.ApiVersions && apiVersion > api.maxVersion) {
      return { kind: 'api_versions_unsupported', correlationId, apiVersion };
    }
    return {
      kind: 'close',
      reason: `${api.name} v${apiVersion} is outside v${api.minVersion}-${api.maxVersion}`,
    };
  }
  const clientId = reader.nullableString(false);
  if (requestHeaderVersion(api, apiVersion) === 2) skipTaggedFields(reader);
  if (reader.error !== null) return { kind: 'close', reason: `request header: ${reader.error}` };
  return { kind: 'request', header: { api, apiVersion, correlationId, clientId }, bodyStart: reader.pos };
}

/** Header tagged fields carry nothing this broker reads; they are checked for shape and skipped. */
function skipTaggedFields(reader: KafkaReader): void {
  const count = reader.uvarint();
  for (let i = 0; i < count && reader.error === null; i++) {
    reader.uvarint();
    reader.skip(reader.uvarint());
  }
}

/** Decodes the body of a request whose header was read by `decodeRequestHeader`. */
export function decodeRequestBody<T>(
  spec: MessageSpec,
  header: RequestHeader,
  frame: Uint8Array,
  bodyStart: number,
): DecodeResult<T> {
  assert(
    spec.apiKey === header.api.apiKey && spec.kind === 'request',
    `${spec.name} decodes ${header.api.name}`,
  );
  return decodeMessage<T>(spec, header.apiVersion, new KafkaReader(frame, bodyStart));
}

/**
 * Writes one whole response frame (size, header, body) at the writer's position and returns its bytes.
 * The writer is reset first: a frame is built alone, then handed to the socket.
 */
export function encodeResponseFrame<T>(
  writer: KafkaWriter,
  spec: MessageSpec,
  api: ApiVersionRange,
  apiVersion: number,
  correlationId: number,
  body: T,
): Uint8Array {
  assert(spec.apiKey === api.apiKey && spec.kind === 'response', `${spec.name} answers ${api.name}`);
  writer.reset();
  writer.int32(0);
  writer.int32(correlationId);
  if (responseHeaderVersion(api, apiVersion) === 1) writer.uvarint(0);
  encodeMessage(spec, apiVersion, body, writer);
  writer.patchInt32(0, writer.pos - FRAME_SIZE_BYTES);
  return writer.finish();
}
