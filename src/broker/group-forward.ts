// Consumer-group requests on a node that does not coordinate the groups: the HTTP request is passed on as it
// came to the coordinator (the metadata Raft leader) and its answer passed back, so every node serves every
// group route. A forwarded request carries `X-Forwarded-By-Broker`; a node that receives one and does not
// coordinate either (the leadership moved on the way) answers 503 coordinator_not_available instead of
// forwarding again, so a request is forwarded at most once. A forwarded request whose answer never came is
// indefinite for writes (the coordinator may have acted on it). Answers are bounded in size. The client's
// Authorization header goes along, so the coordinator authenticates and authorizes the same principal (it
// checks again: a node never vouches for a client). With TLS on the client port (`tls`), the coordinator is
// reached over https and its certificate checked against Node's CA store (NODE_EXTRA_CA_CERTS adds a private
// CA): every node of a cluster serves its client port the same way.
// Runs on the acceptor (main) thread only.
import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { HttpRequest, Reply } from '../http/server.js';

export type CoordinatorTarget =
  | { readonly kind: 'here' }
  | { readonly kind: 'remote'; readonly brokerId: string; readonly host: string; readonly port: number }
  | { readonly kind: 'none'; readonly reason: string };

/** A coordinator's answer larger than this is not passed on (a describe of the largest group is far below). */
const answerBytesMax = 16 * 1024 * 1024;
/** A group request waits this long for the coordinator (a commit waits for the metadata log: 5 s at most). */
const forwardTimeoutMs = 15_000;

export class GroupForwarder {
  private readonly agent: Agent;
  private readonly request: typeof httpRequest;

  constructor(
    private readonly selfId: string,
    private readonly target: () => CoordinatorTarget,
    tls = false,
  ) {
    const options = { keepAlive: true, maxSockets: 64, maxFreeSockets: 16 };
    this.agent = tls ? new HttpsAgent(options) : new Agent(options);
    this.request = tls ? httpsRequest : httpRequest;
  }

  /** Serves `handler` where the groups are coordinated; passes the request on everywhere else. */
  wrap(handler: (request: HttpRequest, reply: Reply) => void): (request: HttpRequest, reply: Reply) => void {
    return (request, reply) => {
      const target = this.target();
      if (target.kind === 'here') return handler(request, reply);
      if (target.kind === 'none') {
        return reply.error(
          'coordinator_not_available',
          `no consumer-group coordinator now: ${target.reason}`,
        );
      }
      if (request.forwardedBy !== undefined && request.forwardedBy !== '') {
        return reply.error(
          'coordinator_not_available',
          `broker ${request.forwardedBy} forwarded this request here, but broker ${target.brokerId} coordinates the groups now; retry`,
        );
      }
      this.forward(target, request, reply);
    };
  }

  close(): void {
    this.agent.destroy();
  }

  private forward(
    target: Extract<CoordinatorTarget, { kind: 'remote' }>,
    request: HttpRequest,
    reply: Reply,
  ): void {
    // The body is valid only until the handler returns: copied before the connection may need it.
    const body = request.body === null ? null : Buffer.from(request.body);
    const write = request.method !== 'get';
    const path = request.query === '' ? request.url : `${request.url}?${request.query}`;
    const headers: Record<string, string> = { 'x-forwarded-by-broker': this.selfId };
    if (request.contentType !== '') headers['content-type'] = request.contentType;
    if (request.authorization !== undefined && request.authorization !== '') {
      headers.authorization = request.authorization;
    }
    if (body !== null) headers['content-length'] = String(body.byteLength);
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      reply.error(
        'coordinator_not_available',
        `the group coordinator ${target.brokerId} did not answer (${why})${write ? '; the request may or may not have been carried out' : ''}`,
        write ? { indefinite: true } : {},
      );
    };
    const outgoing = this.request(
      {
        host: target.host,
        port: target.port,
        method: request.method.toUpperCase(),
        path,
        headers,
        agent: this.agent,
        timeout: forwardTimeoutMs,
      },
      (incoming) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        incoming.on('data', (chunk: Buffer) => {
          bytes += chunk.byteLength;
          if (bytes > answerBytesMax) {
            incoming.destroy();
            fail(`its answer is larger than ${answerBytesMax} bytes`);
            return;
          }
          chunks.push(chunk);
        });
        incoming.on('error', (error) => fail(error.message));
        incoming.on('end', () => {
          if (settled) return;
          settled = true;
          const extra: [string, string][] = [];
          const retryAfter = incoming.headers['retry-after'];
          if (typeof retryAfter === 'string') extra.push(['retry-after', retryAfter]);
          extra.push(['x-group-coordinator', target.brokerId]);
          reply.json(incoming.statusCode ?? 502, Buffer.concat(chunks).toString('utf8'), extra);
        });
      },
    );
    outgoing.on('timeout', () => {
      outgoing.destroy();
      fail(`no answer within ${forwardTimeoutMs} ms`);
    });
    outgoing.on('error', (error) => fail(error.message));
    outgoing.end(body ?? undefined);
  }
}
