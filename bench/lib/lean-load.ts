// A lean HTTP/1.1 load client for benches whose requests vary (a random partition each): every request's bytes
// are made once up front, each connection keeps one request in flight on a keep-alive socket and picks the
// next request at random. autocannon rebuilds a request on every call of a `setupRequest` hook, which capped
// such runs near 9k requests/s on the 2-core box, against 12-17k for a fixed request (the broker the same).
// Answers are framed by Content-Length (the broker sends no chunked answers). Callable from a bench's main
// thread.
import { connect, type Socket } from 'node:net';

export interface LeanRequest {
  readonly method: 'POST';
  readonly path: string;
  readonly body: string;
}

export interface LeanResult {
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly elapsedS: number;
}

/** Runs `connections` sockets for `durationS` seconds against 127.0.0.1:`port`; never throws for answers. */
export async function leanLoad(
  port: number,
  requests: readonly LeanRequest[],
  connections: number,
  durationS: number,
): Promise<LeanResult> {
  const bytes = requests.map((r) => {
    const body = Buffer.from(r.body, 'utf8');
    const head = `${r.method} ${r.path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.byteLength}\r\n\r\n`;
    return Buffer.concat([Buffer.from(head, 'latin1'), body]);
  });
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const socket: Socket = connect(port, '127.0.0.1');
      socket.setNoDelay(true);
      let pending: Buffer = Buffer.alloc(0);
      const send = (): void => {
        if (performance.now() >= deadline) {
          socket.end();
          return;
        }
        socket.write(bytes[Math.floor(Math.random() * bytes.length)]!);
      };
      socket.on('connect', send);
      socket.on('data', (chunk: Buffer) => {
        pending = pending.byteLength === 0 ? chunk : Buffer.concat([pending, chunk]);
        for (;;) {
          const headEnd = pending.indexOf('\r\n\r\n');
          if (headEnd < 0) return;
          const head = pending.subarray(0, headEnd).toString('latin1');
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (pending.byteLength < headEnd + 4 + length) return;
          const status = Number(head.slice(9, 12));
          if (status >= 200 && status < 300) ok++;
          else non2xx++;
          pending = pending.subarray(headEnd + 4 + length);
          send();
        }
      });
      let failed = false;
      socket.on('error', () => {
        failed = true;
      });
      // A connection that ends before the deadline (an error, or closed by the server) is an error of the run:
      // it would otherwise leave the load quietly lighter.
      socket.on('close', () => {
        if (failed || performance.now() < deadline) errors++;
        resolve();
      });
    });
  await Promise.all(Array.from({ length: connections }, one));
  return { ok, non2xx, errors, elapsedS: (performance.now() - started) / 1000 };
}
