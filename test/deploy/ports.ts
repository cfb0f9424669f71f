// Test helper: ports free on 127.0.0.1 for both TCP and UDP (a broker's cluster port uses both), found by
// binding port 0 and releasing it. Another process may take a port between release and use; the brokers then
// fail to start with a clear message rather than sharing it.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer } from 'node:net';

async function tcpFree(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

async function udpFree(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  try {
    socket.bind(port, '127.0.0.1');
    await once(socket, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    socket.close();
  }
}

/** `count` distinct ports, each free for TCP and UDP right now. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await tcpFree();
    if (!ports.includes(port) && (await udpFree(port))) ports.push(port);
  }
  return ports;
}
