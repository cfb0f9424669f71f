// Baseline for bench/produce: a bare uWebSockets.js server that reads a POST body, parses it as JSON and
// answers 201 with a small JSON body, with no broker behind it. The broker's produce rate is reported as a
// ratio to this one, measured in the same run, because absolute numbers on a shared machine mean little.
// For bench/stream, the same server relays WebSocket records: each JSON message sent to /ws/produce/* is
// parsed and published, re-encoded with its offset, to every socket on /ws/consume/* (the floor for a produce
// -> push latency: client, uWS and JSON, no broker).
// Usage: node --import tsx bench/bare-uws.ts  (prints {"port": N} on stdout)
import uWS from 'uWebSockets.js';

const app = uWS.App();
let offset = 0;
app.post('/*', (res) => {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  const chunks: Buffer[] = [];
  res.onData((chunk, isLast) => {
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast || aborted) return;
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { value?: string };
    const answer = `{"topic":"bench","partition":0,"offset":${offset++},"timestamp":${Date.now()},"n":${body.value?.length ?? 0}}`;
    res.cork(() => {
      res.writeStatus('201 Created').writeHeader('content-type', 'application/json').end(answer);
    });
  });
});
let relayed = 0;
app.ws('/ws/consume/*', {
  compression: uWS.DISABLED,
  open: (ws) => {
    ws.subscribe('records');
  },
});
app.ws('/ws/produce/*', {
  compression: uWS.DISABLED,
  message: (_ws, message) => {
    const record = JSON.parse(Buffer.from(message).toString('utf8')) as { value?: string };
    app.publish(
      'records',
      JSON.stringify({ offset: relayed++, timestamp: Date.now(), key: null, value: record.value ?? null }),
    );
  },
});
app.listen('127.0.0.1', 0, (socket) => {
  if (socket === false) throw new Error('listen failed');
  process.stdout.write(
    `${JSON.stringify({ port: uWS.us_socket_local_port(socket as unknown as uWS.us_socket) })}\n`,
  );
});
