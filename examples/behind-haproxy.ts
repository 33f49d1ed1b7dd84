// An HTTP service deployed behind a load balancer: Node's http over muxnet, the real client
// from the PROXY protocol header (HAProxy's send-proxy-v2), Prometheus metrics on /metrics,
// and a graceful stop on SIGTERM, so a rolling restart loses no request:
//   1. HAProxy's health check fails once the listener is closed (the node leaves the pool),
//   2. requests in flight finish, idle keep-alive connections close, 3. the process exits.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/behind-haproxy.js 127.0.0.1:8081 [name]
// GET /slow?ms=N answers after N ms (a request in flight during a restart); /healthz for checks.
import * as http from 'node:http';
import { listen, metricsText } from 'muxnet';

const address = process.argv[2] ?? '127.0.0.1:8081';
const name = process.argv[3] ?? 'muxnet';
let served = 0;

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/metrics') {
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(metricsText());
    return;
  }
  served++;
  const reply = (): void => {
    res.setHeader('content-type', 'text/plain');
    res.end(`${name} served ${req.socket.remoteAddress}:${req.socket.remotePort} ${url.pathname}\n`);
  };
  const ms = Number(url.searchParams.get('ms') ?? 0);
  if (url.pathname === '/slow' && ms > 0) setTimeout(reply, Math.min(ms, 10_000));
  else reply();
});

const ln = listen('tcp', address, { proxyProtocol: true });
console.log(`listening on ${ln.addr()}`);
process.once('SIGTERM', () => {
  console.log(`SIGTERM: draining after ${served} requests`);
  void ln.shutdown({ timeout: 10_000 }).then(({ finished, forced }) => {
    console.log(`stopped: ${finished} connections finished, ${forced} forced`);
  });
});
void ln.serveNode(server);
