// The server examples, run as a user would: examples/http-server.ts driven by curl, and
// examples/tls-echo.ts driven by openssl s_client (and a client that never handshakes).
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { exited, startExample } from './helpers/examples';
import { toolEnv, withTimeout } from './helpers/util';

const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures', 'tls');

describe('examples: servers', () => {
  let child: ChildProcess | null = null;
  afterEach(() => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    child = null;
  });

  it('http-server.ts: Node http over muxnet serves curl on one keep-alive connection, then stops on SIGTERM', async () => {
    const ex = await startExample('http-server.js', ['127.0.0.1:0']);
    child = ex.child;
    const body = await withTimeout(new Promise<string>((resolve, reject) => {
      // Two URLs in one curl: the second request goes over the first one's connection.
      execFile('curl', ['-sS', '--max-time', '10', `http://${ex.addr}/a`, `http://${ex.addr}/b`], { env: toolEnv() },
        (err, out, errOut) => (err ? reject(new Error(`${err.message} ${errOut}`)) : resolve(out)));
    }), 15_000, 'curl');
    assert.match(body, /^hello from muxnet, 127\.0\.0\.1: GET \/a \(#1\)\nhello from muxnet, 127\.0\.0\.1: GET \/b \(#2\)\n$/);
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
    assert.match(ex.out(), /SIGTERM: closing after 2 requests/);
  });

  it('tls-echo.ts: echoes to openssl s_client, and drops a client that never handshakes', async () => {
    const ex = await startExample('tls-echo.js', [path.join(fixtures, 'localhost-key.pem'), path.join(fixtures, 'localhost-cert.pem'),
      '127.0.0.1:0', '500']);
    child = ex.child;
    const client = spawn('openssl', ['s_client', '-connect', ex.addr, '-servername', 'localhost',
      '-CAfile', path.join(fixtures, 'localhost-cert.pem'), '-verify_return_error', '-quiet'],
      { stdio: ['pipe', 'pipe', 'pipe'], env: toolEnv() });
    try {
      let got = '';
      const echoed = new Promise<void>((resolve) => {
        client.stdout.on('data', (d: Buffer) => {
          got += d.toString();
          if (got.includes('hello over tls')) resolve();
        });
      });
      client.stdin.write('hello over tls\n');
      await withTimeout(echoed, 10_000, 'the echo through openssl s_client');
    } finally {
      client.kill();
    }
    // A peer that connects and sends nothing is dropped by the handshake timeout.
    const [host, port] = [ex.addr.slice(0, ex.addr.lastIndexOf(':')), Number(ex.addr.slice(ex.addr.lastIndexOf(':') + 1))];
    const idle = net.connect(port, host);
    idle.on('error', () => {});
    const t0 = Date.now();
    await withTimeout(new Promise<void>((resolve) => idle.once('close', () => resolve())), 10_000, 'the silent client dropped');
    assert.ok(Date.now() - t0 >= 400, `dropped after ${Date.now() - t0} ms`);
    assert.match(ex.out(), /tls client error: .*(timed out|timeout)/i);
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
  });
});
