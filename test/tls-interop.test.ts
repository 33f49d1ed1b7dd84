// A muxnet TLS listener against real clients on every loop configuration: openssl s_client through
// an echo handler, and curl over HTTPS through serveNode(http.Server) and a handler writing HTTP.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as http from 'node:http';
import { listenTLS, type TLSConn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { ca, echoServer, fixturePath, server } from './helpers/tls-fixtures';
import { Resources, toolEnv, withTimeout } from './helpers/util';
import { skipSuiteOnWindows } from './helpers/platform';

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '20', '--cacert', fixturePath('ca-cert.pem'), ...args],
      { maxBuffer: 1 << 20, env: toolEnv() },
      (err, out, errOut) => (err ? reject(new Error(`curl ${args.join(' ')}: ${err.message} ${errOut}`)) : resolve(out)));
  });
}

/** Reads an HTTP/1.1 request head (bounded) and returns its first line. */
async function readRequestLine(conn: TLSConn): Promise<string> {
  let head = '';
  for await (const data of conn) {
    head += data.toString('latin1');
    if (head.includes('\r\n\r\n') || head.length > 65536) break;
  }
  return head.slice(0, head.indexOf('\r\n'));
}

for (const cfg of loopConfigs()) {
  describe(`TLS with real clients [${cfg.name}]`, () => {
    skipSuiteOnWindows("drives Linux's openssl and curl binaries");
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('echoes to openssl s_client, which verifies the certificate against the CA', async () => {
      const srv = res.add(echoServer(cfg.options));
      const child = spawn('openssl', ['s_client', '-connect', String(srv.ln.addr()), '-servername', 'localhost',
        '-CAfile', fixturePath('ca-cert.pem'), '-verify_return_error', '-quiet'],
      { stdio: ['pipe', 'pipe', 'pipe'], env: toolEnv() });
      res.add({ close: () => child.kill() });
      let got = '';
      const echoed = new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          got += d.toString();
          if (got.includes('hello over tls\n')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`openssl exited with ${code} after ${JSON.stringify(got)}`)));
      });
      child.stdin.write('hello over tls\n');
      await withTimeout(echoed, 15_000, 'the echo through openssl s_client');
      assert.deepEqual(srv.errors, []);
    });

    it('ends with close_notify when a handler returns: openssl s_client reads the bytes and exits cleanly', async () => {
      const ln = res.add(listenTLS('tcp', '127.0.0.1:0', { ...cfg.options, ...server }));
      void ln.serve(async (conn) => {
        await conn.write('bye\n');
      });
      const child = spawn('openssl', ['s_client', '-connect', String(ln.addr()), '-CAfile', fixturePath('ca-cert.pem'),
        '-verify_return_error', '-quiet'], { stdio: ['pipe', 'pipe', 'pipe'], env: toolEnv() });
      res.add({ close: () => child.kill() });
      let out = '';
      let errOut = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { errOut += d.toString(); });
      const code = await withTimeout(new Promise<number | null>((resolve) => child.once('exit', resolve)), 15_000, 'openssl exiting');
      assert.equal(out, 'bye\n');
      // Without close_notify OpenSSL 3 reports "unexpected eof while reading" and exits 1.
      assert.equal(code, 0, errOut);
    });

    it('serves HTTPS to curl through serveNode(http.Server), mTLS included', async () => {
      const httpServer = http.createServer((req, rsp) => {
        const socket = req.socket as unknown as { encrypted?: boolean; authorized: boolean; getPeerCertificate(): { subject?: { CN?: string } } };
        const who = socket.getPeerCertificate().subject?.CN ?? 'none';
        rsp.end(`${req.method} ${req.url} encrypted=${socket.encrypted} client=${who} authorized=${socket.authorized}\n`);
      });
      const ln = res.add(listenTLS('tcp', '127.0.0.1:0', { ...cfg.options, ...server, ca,
        requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }));
      void ln.serveNode(httpServer);
      const url = `https://localhost:${ln.addr().port}`;
      // Two URLs: the second goes over the first's connection (keep-alive over TLS).
      assert.equal(await curl([`${url}/a`, `${url}/b`]), 'GET /a encrypted=true client=none authorized=false\nGET /b encrypted=true client=none authorized=false\n');
      assert.equal(await curl(['--cert', fixturePath('client-cert.pem'), '--key', fixturePath('client-key.pem'), `${url}/c`]),
        'GET /c encrypted=true client=muxnet-client authorized=true\n');
    });

    it('serves HTTPS to curl from a serve() handler that writes the response and closes', async () => {
      const ln = res.add(listenTLS('tcp', '127.0.0.1:0', { ...cfg.options, ...server }));
      void ln.serve(async (conn) => {
        const line = await readRequestLine(conn);
        const body = `you asked for ${line}\n`;
        // No Content-Length: the body ends with the connection.
        await conn.write(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${body}`);
      });
      assert.equal(await curl([`https://localhost:${ln.addr().port}/x`]), 'you asked for GET /x HTTP/1.1\n');
    });
  });
}
