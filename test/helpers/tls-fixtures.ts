// The TLS fixture certificates (test/fixtures/tls, made by make.sh) and a TLS echo server for tests.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { listenTLS, type ListenTLSOptions, type Listener, type TLSConn } from 'muxnet';

const dir = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'tls');

/** The path of a fixture file, e.g. 'ca-cert.pem'. */
export function fixturePath(name: string): string {
  return path.join(dir, name);
}

/** A fixture file's contents. */
export function fixture(name: string): Buffer {
  return readFileSync(fixturePath(name));
}

export const ca = fixture('ca-cert.pem');
/** CN=localhost, SAN localhost/127.0.0.1/::1, signed by `ca`. */
export const server = { key: fixture('server-key.pem'), cert: fixture('server-cert.pem') };
/** CN=other.test, signed by `ca`. */
export const other = { key: fixture('other-key.pem'), cert: fixture('other-cert.pem') };
/** CN=muxnet-client, clientAuth, signed by `ca`. */
export const client = { key: fixture('client-key.pem'), cert: fixture('client-cert.pem') };
/** CN=muxnet-rogue-client, signed by a CA nobody trusts. */
export const rogueClient = { key: fixture('rogue-client-key.pem'), cert: fixture('rogue-client-cert.pem') };
/** CN=localhost, signed by `ca`, valid in 2000 only. */
export const expired = { key: fixture('expired-key.pem'), cert: fixture('expired-cert.pem') };
/** CN=localhost, self-signed. */
export const selfSigned = { key: fixture('localhost-key.pem'), cert: fixture('localhost-cert.pem') };

/** A TLS listener on 127.0.0.1 serving an echo handler; `errors` collects what handlers threw. */
export function echoServer(options: ListenTLSOptions): { ln: Listener<TLSConn>; errors: unknown[]; close(): void } {
  const ln = listenTLS('tcp', '127.0.0.1:0', { ...server, ...options });
  const errors: unknown[] = [];
  void ln.serve(async (conn) => {
    for await (const data of conn) await conn.write(data);
  }, { onError: (err) => errors.push(err) });
  return { ln, errors, close: () => ln.close() };
}
