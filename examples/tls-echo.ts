// A TLS echo server: Node's tls (OpenSSL) for the protocol, muxnet for the sockets.
//   node .test-build/examples/tls-echo.js <key.pem> <cert.pem> [127.0.0.1:8443] [handshake timeout ms]
// Try it: openssl s_client -connect 127.0.0.1:8443 -quiet
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import { listen } from 'muxnet';

const [keyFile, certFile, address = '127.0.0.1:8443', handshakeMs = '10000'] = process.argv.slice(2);
if (keyFile === undefined || certFile === undefined) {
  console.error('usage: tls-echo.js <key.pem> <cert.pem> [host:port]');
  process.exit(2);
}
// handshakeTimeout: a client that connects and never finishes the handshake is dropped.
const server = tls.createServer({ key: readFileSync(keyFile), cert: readFileSync(certFile), handshakeTimeout: Number(handshakeMs) },
  (socket) => {
    socket.on('error', () => {});  // a client that resets: nothing to do
    socket.pipe(socket);
  });
// Node's tls reports a failed or timed-out handshake here and leaves the socket open.
server.on('tlsClientError', (err, socket) => {
  console.log(`tls client error: ${err.message}`);
  socket.destroy();
});

async function main(): Promise<void> {
  const ln = listen('tcp', address);
  console.log(`listening on ${ln.addr()}`);
  process.once('SIGTERM', () => ln.close());
  await ln.serveNode(server);
}

void main();
