// A TLS echo server: listenTLS (Node's tls, OpenSSL, for the protocol; muxnet for the sockets).
//   node .test-build/examples/tls-echo.js <key.pem> <cert.pem> [127.0.0.1:8443] [handshake timeout ms]
// Try it: openssl s_client -connect 127.0.0.1:8443 -quiet
import { readFileSync } from 'node:fs';
import { listenTLS } from 'muxnet';

const [keyFile, certFile, address = '127.0.0.1:8443', handshakeMs = '10000'] = process.argv.slice(2);
if (keyFile === undefined || certFile === undefined) {
  console.error('usage: tls-echo.js <key.pem> <cert.pem> [host:port] [handshake timeout ms]');
  process.exit(2);
}

async function main(): Promise<void> {
  // handshakeTimeout: a client that connects and never finishes the handshake is dropped.
  const ln = listenTLS('tcp', address, { key: readFileSync(keyFile), cert: readFileSync(certFile), handshakeTimeout: Number(handshakeMs) });
  console.log(`listening on ${ln.addr()}`);
  process.once('SIGTERM', () => ln.close());
  await ln.serve(async (conn) => {
    try {
      await conn.handshake();
    } catch (err) {
      console.log(`tls client error: ${(err as Error).message}`);
      return;  // serve closes the connection
    }
    for await (const data of conn) await conn.write(data);
  }, { onError: () => {} });  // a client that resets mid-echo: nothing to do
}

void main();
