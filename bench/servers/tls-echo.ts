// TLS servers for the tls scenario, one process each: `node tls-echo.js <form> <json loop options>`.
// Echo forms: go (listenTLS, read/write loop), pooled (listenTLS, for await), node (Node's tls.createServer).
// HTTPS hello forms: https (Node's http over listenTLS, serveNode), node-https (Node's https.createServer).
// Prints {"port","pid"} once listening; exits when stdin closes.
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { listenTLS } from '../../lib/index';
import { echoReadWrite, obeyStdin, ready, serverArgs } from './common';

const { form, options } = serverArgs();
const fixtures = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'tls');
const cert = { key: readFileSync(path.join(fixtures, 'server-key.pem')), cert: readFileSync(path.join(fixtures, 'server-cert.pem')) };

function serveMuxnet(pooled: boolean): void {
  const ln = listenTLS('tcp', '127.0.0.1:0', { ...options, ...cert, backlog: 4096 });
  ready(ln.addr().port);
  void ln.serve(pooled ? async (c) => {
    for await (const data of c) await c.write(data);
  } : echoReadWrite, { onError: () => {} });  // a reset at the end of a run
}

function serveNode(): void {
  const server = tls.createServer({ ...cert }, (socket) => {
    socket.setNoDelay(true);
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => socket.destroy());
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
    ready((server.address() as AddressInfo).port);
  });
}

const hello = (req: http.IncomingMessage, res: http.ServerResponse): void => {
  res.setHeader('content-type', 'text/plain');
  res.end('Hello, World!');
};

function serveHttps(): void {
  const ln = listenTLS('tcp', '127.0.0.1:0', { ...options, ...cert, backlog: 4096 });
  ready(ln.addr().port);
  void ln.serveNode(http.createServer(hello));
}

function serveNodeHttps(): void {
  const server = https.createServer({ ...cert }, hello);
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
    ready((server.address() as AddressInfo).port);
  });
}

obeyStdin();
if (form === 'https') serveHttps();
else if (form === 'node-https') serveNodeHttps();
else if (form === 'node') serveNode();
else if (form === 'go' || form === 'pooled') serveMuxnet(form === 'pooled');
else throw new Error(`tls-echo: unknown form ${form}`);
