// The server examples, run as a user would: examples/http-server.ts driven by curl, and
// examples/tls-echo.ts driven by openssl s_client (and a client that never handshakes).
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { exited, startExample } from './helpers/examples';
import { toolEnv, withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures', 'tls');

describe('examples: servers', () => {
  let child: ChildProcess | null = null;
  afterEach(() => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    child = null;
  });

  it('http-server.ts: Node http over muxnet serves curl on one keep-alive connection, then stops on SIGTERM', async function () {
    skipIf(this, onWindows, 'drives the example with curl');
    const ex = await startExample('http-server.js', ['127.0.0.1:0']);
    child = ex.child;
    const body = await withTimeout(new Promise<string>((resolve, reject) => {
      // Two URLs in one curl: the second request goes over the first one's connection.
      execFile('curl', ['-sS', '--max-time', '10', `http://${ex.addr}/a`, `http://${ex.addr}/b`], { env: toolEnv() },
        (err, out, errOut) => (err ? reject(new Error(`${err.message} ${errOut}`)) : resolve(out)));
    }), 15_000, 'curl');
    assert.match(body, /^hello from muxnet, 127\.0\.0\.1: GET \/a \(#1\)\nhello from muxnet, 127\.0\.0\.1: GET \/b \(#2\)\n$/);
    const metrics = await withTimeout(new Promise<string>((resolve, reject) => {
      execFile('curl', ['-sS', '--max-time', '10', `http://${ex.addr}/metrics`], { env: toolEnv() },
        (err, out, errOut) => (err ? reject(new Error(`${err.message} ${errOut}`)) : resolve(out)));
    }), 15_000, 'curl /metrics');
    // Two connections accepted so far (curl's first, and this one), 2 requests counted by the example.
    assert.match(metrics, /^# TYPE muxnet_accepted_total counter$/m);
    assert.match(metrics, /^muxnet_accepted_total\{backend="[a-z]+",trigger="(level|edge)",mode="(inline|thread)"\} 2$/m);
    assert.match(metrics, /^muxnet_connections_open\{[^}]*\} 1$/m, 'the scrape\'s own connection is the one open');
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
    assert.match(ex.out(), /SIGTERM: closing after 2 requests/);
  });

  it('tls-echo.ts: echoes to openssl s_client, and drops a client that never handshakes', async function () {
    skipIf(this, onWindows, 'drives the example with openssl');
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

  it('graceful-shutdown.ts: on SIGTERM a request in flight completes, an idle client is told goodbye, a stuck one is cut at the timeout', async function () {
    skipIf(this, onWindows, 'SIGTERM: Windows kills the process, no handler runs');
    this.timeout(30_000);
    const ex = await startExample('graceful-shutdown.js', ['127.0.0.1:0', '1500']);
    child = ex.child;
    const port = Number(ex.addr.slice(ex.addr.lastIndexOf(':') + 1));
    /** A client that collects what it is sent until the server closes. */
    const client = async (): Promise<{ socket: net.Socket; got: () => string; closed: Promise<void> }> => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise((resolve) => socket.once('connect', resolve));
      let got = '';
      socket.on('data', (d: Buffer) => { got += d.toString(); });
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      return { socket, got: () => got, closed };
    };
    const busy = await client();
    const idle = await client();
    const stuck = await client();
    busy.socket.write('work 700\n');
    stuck.socket.write('work 60000\n');
    await withTimeout((async () => {
      while ((ex.out().match(/: work \d+/g) ?? []).length < 2) await new Promise((r) => setTimeout(r, 10));
    })(), 10_000, 'both requests under way');
    ex.child.kill('SIGTERM');
    await withTimeout(idle.closed, 10_000, 'the idle client closed');
    assert.equal(idle.got(), 'bye: server shutting down\n');
    await withTimeout(busy.closed, 10_000, 'the busy client closed');
    assert.equal(busy.got(), 'done 700\nbye: server shutting down\n', 'the request in flight was answered');
    await withTimeout(stuck.closed, 10_000, 'the stuck client closed at the timeout');
    assert.equal(stuck.got(), '');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
    assert.match(ex.out(), /SIGTERM: shutting down\n[^]*shutdown: 2 finished, 1 forced\n/);
  });

  it('multi-worker.ts: two worker threads serve one port in turn (handoff), then stop on SIGTERM', async function () {
    skipIf(this, onWindows, 'handoff needs descriptor passing over a Unix socket');
    const ex = await startExample('multi-worker.js', ['127.0.0.1:0', '2', 'handoff']);
    child = ex.child;
    const threads = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const body = await withTimeout(new Promise<string>((resolve, reject) => {
        http.get(`http://${ex.addr}/r${i}`, { agent: false }, (res) => {
          let b = '';
          res.on('data', (d: Buffer) => { b += d.toString(); });
          res.on('end', () => resolve(b));
        }).on('error', reject);
      }), 10_000, `GET /r${i}`);
      const m = new RegExp(`^hello from worker thread (\\d+): GET /r${i}\n$`).exec(body);
      assert.ok(m !== null, body);
      threads.add(m[1]);
    }
    assert.equal(threads.size, 2, 'both workers served');
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
    assert.match(ex.out(), /SIGTERM: closing; connections per worker: 2, 2/);
  });
});
