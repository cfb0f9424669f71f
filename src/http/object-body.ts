// The JSON object body of an admin or group request, or a 400 naming what is wrong with it. Pure apart from
// answering on `reply`; called on the acceptor (main) thread.
import { parseJsonBody } from './produce-body.js';
import type { HttpRequest, Reply } from './server.js';

/** The body as a JSON object; null once an error is answered. An empty body is `{}` where `emptyOk`. */
export function objectBodyOrReply(
  request: HttpRequest,
  reply: Reply,
  emptyOk = false,
): Record<string, unknown> | null {
  const text = request.body?.toString('utf8') ?? '';
  if (emptyOk && text.trim() === '') return {};
  const parsed = parseJsonBody(text);
  if (!parsed.ok) {
    reply.error('bad_request', parsed.message);
    return null;
  }
  if (typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) {
    reply.error('bad_request', 'the body must be a JSON object');
    return null;
  }
  return parsed.value as Record<string, unknown>;
}
