// Node's own http server, with muxnet underneath: the same handler code, muxnet's loop
// doing the socket I/O. Stops gracefully on SIGTERM or SIGINT (ln.shutdown).
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/http-server.js [127.0.0.1:8080]
import * as http from 'node:http';
import { listen, metricsText } from 'muxnet';

let served = 0;
const server = http.createServer((req, res) => {
  if (req.url === '/metrics') {
    // muxnet's counters for Prometheus to scrape (or register metricCollectors() with prom-client).
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(metricsText());
    return;
  }
  served++;
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from muxnet, ${req.socket.remoteAddress}: ${req.method} ${req.url} (#${served})\n`);
});
// Node's defaults, said out loud: idle keep-alive connections close after 5 s, a client
// gets 60 s to send its headers (slow-loris protection needs serveNode's 'listening').
server.keepAliveTimeout = 5_000;
server.headersTimeout = 60_000;

async function main(): Promise<void> {
  const ln = listen('tcp', process.argv[2] ?? '127.0.0.1:8080');
  console.log(`listening on http://${ln.addr()}`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      console.log(`${signal}: closing after ${served} requests`);
      // No new connections; idle keep-alive ones close now, busy ones after their response
      // (cut after 10 s). serveNode resolves at once, and closes the http server.
      void ln.shutdown({ timeout: 10_000 }).then(({ finished, forced }) => {
        console.log(`shut down: ${finished} connections finished, ${forced} forced`);
      });
    });
  }
  await ln.serveNode(server);
}

void main();
