// conn.stream() and Listener.serveNode(): Node's http and tls servers over muxnet, with the
// socket behaviour they rely on (addresses, idle timeouts, slow-loris checks, backpressure,
// half-close, errors both ways).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tls from 'node:tls';
import { ConnStream, dial, listen, type Listener } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { connectPair } from './helpers/servers';
import { Resources, observe, sleep, toolEnv, withTimeout } from './helpers/util';
import { onWindows, skipIf, underWine, wineResetIsEof } from './helpers/platform';

const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures', 'tls');
const key = readFileSync(path.join(fixtures, 'localhost-key.pem'));
const cert = readFileSync(path.join(fixtures, 'localhost-cert.pem'));

/** An http.Server served over a muxnet listener; close() closes both. */
function serveHttp(server: http.Server, options: object): { ln: Listener; url: string; done: Promise<void>; close(): void } {
  const ln = listen('tcp', '127.0.0.1:0', options);
  const done = ln.serveNode(server);
  return { ln, url: `http://${ln.addr()}`, done, close: () => ln.close() };
}

/** GET or POST with Node's http client; resolves with status, body and the client socket. */
function request(url: string, opts: http.RequestOptions = {}, body?: Buffer | string):
    Promise<{ status: number; body: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, opts, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString(), socket: req.socket! }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A raw client socket that collects what it receives and says when the server closed it. */
async function rawClient(url: string): Promise<{ s: net.Socket; data: () => string; closed: Promise<void> }> {
  const { hostname, port } = new URL(url);
  const s = net.connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  let got = '';
  s.on('data', (d: Buffer) => { got += d.toString(); });
  s.on('error', () => {});
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  return { s, data: () => got, closed };
}

for (const cfg of loopConfigs()) {
  describe(`conn.stream() and serveNode() [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it("serves Node's http: keep-alive, the client's address, a chunked body, two requests on one socket", async () => {
      const seen: string[] = [];
      const server = http.createServer((req, rsp) => {
        seen.push(`${req.method} ${req.url} from ${req.socket.remoteAddress}:${req.socket.remotePort}`);
        const parts: Buffer[] = [];
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => {
          rsp.setHeader('x-local', `${req.socket.localAddress}:${req.socket.localPort}`);
          rsp.end(`got ${Buffer.concat(parts).length} bytes`);
        });
      });
      const srv = res.add(serveHttp(server, cfg.options));
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const a = await request(`${srv.url}/one`, { agent });
        // Chunked: no Content-Length, written in pieces.
        const b = await new Promise<{ status: number; body: string; socket: net.Socket }>((resolve, reject) => {
          const req = http.request(`${srv.url}/two`, { method: 'POST', agent }, (rsp) => {
            let body = '';
            rsp.on('data', (d: Buffer) => { body += d.toString(); });
            rsp.on('end', () => resolve({ status: rsp.statusCode!, body, socket: req.socket! }));
          });
          req.on('error', reject);
          req.write('x'.repeat(1000));
          req.write('y'.repeat(2345));
          req.end();
        });
        assert.equal(a.status, 200);
        assert.equal(a.body, 'got 0 bytes');
        assert.equal(b.body, 'got 3345 bytes');
        assert.equal(a.socket, b.socket, 'the second request reused the connection');
        const clientPort = a.socket.localPort;
        assert.deepEqual(seen, [`GET /one from 127.0.0.1:${clientPort}`, `POST /two from 127.0.0.1:${clientPort}`]);
      } finally {
        agent.destroy();
      }
    });

    it('serves curl, and a 100 MB upload arrives whole', async function () {
      skipIf(this, onWindows, "drives Linux's curl binary");
      this.timeout(60_000);
      const server = http.createServer((req, rsp) => {
        const hash = createHash('sha256');
        let bytes = 0;
        req.on('data', (d: Buffer) => { bytes += d.length; hash.update(d); });
        req.on('end', () => rsp.end(`${bytes} ${hash.digest('hex')}`));
      });
      const srv = res.add(serveHttp(server, cfg.options));
      const curl = (args: string[]): Promise<string> => new Promise((resolve, reject) => {
        execFile('curl', ['-sS', '--max-time', '30', ...args], { maxBuffer: 1 << 20, env: toolEnv() }, (err, out, errOut) =>
          err ? reject(new Error(`curl ${args.join(' ')}: ${err.message} ${errOut}`)) : resolve(out));
      });
      assert.equal(await curl([`${srv.url}/`]), '0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
      // 100 MB from a Node client, written as fast as the server takes it.
      const block = Buffer.alloc(1 << 20, 7);
      const expected = createHash('sha256');
      for (let i = 0; i < 100; i++) expected.update(block);
      const got = await new Promise<string>((resolve, reject) => {
        const req = http.request(`${srv.url}/upload`, { method: 'PUT' }, (rsp) => {
          let body = '';
          rsp.on('data', (d: Buffer) => { body += d.toString(); });
          rsp.on('end', () => resolve(body));
        });
        req.on('error', reject);
        let sent = 0;
        const more = (): void => {
          while (sent < 100) {
            sent++;
            if (!req.write(block)) {
              req.once('drain', more);
              return;
            }
          }
          req.end();
        };
        more();
      });
      assert.equal(got, `${100 << 20} ${expected.digest('hex')}`);
    });

    it('closes a keep-alive connection idle past keepAliveTimeout', async () => {
      const server = http.createServer((_req, rsp) => rsp.end('ok'));
      server.keepAliveTimeout = 300;
      const srv = res.add(serveHttp(server, cfg.options));
      const c = await rawClient(srv.url);
      c.s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      const t0 = Date.now();
      await withTimeout(c.closed, 5000, 'the server closing the idle keep-alive connection');
      assert.match(c.data(), /^HTTP\/1\.1 200 OK/);
      assert.ok(Date.now() - t0 >= 250, `closed after ${Date.now() - t0} ms, before keepAliveTimeout`);
    });

    it('drops a slow-loris client by headersTimeout while serving others', async () => {
      const server = http.createServer({ connectionsCheckingInterval: 50 } as http.ServerOptions, (_req, rsp) => rsp.end('ok'));
      server.headersTimeout = 300;
      server.requestTimeout = 600;
      const srv = res.add(serveHttp(server, cfg.options));
      const slow = await rawClient(srv.url);
      slow.s.write('GET / HTTP/1.1\r\nHost: x\r\n');  // the headers never end
      const other = await request(`${srv.url}/`);
      assert.equal(other.body, 'ok');
      await withTimeout(slow.closed, 5000, 'the slow client being dropped');
      assert.match(slow.data(), /^HTTP\/1\.1 408 Request Timeout/);
    });

    it('survives a client that vanishes mid-response, and the connection is closed', async () => {
      let aborted!: () => void;
      const gone = new Promise<void>((resolve) => { aborted = resolve; });
      const server = http.createServer((req, rsp) => {
        if (req.url !== '/endless') {
          rsp.end('ok');
          return;
        }
        rsp.on('close', aborted);
        const chunk = Buffer.alloc(64 * 1024, 1);
        const pump = (): void => {
          while (!rsp.destroyed && rsp.write(chunk)) { /* until backpressure */ }
          if (!rsp.destroyed) rsp.once('drain', pump);
        };
        pump();
      });
      const srv = res.add(serveHttp(server, cfg.options));
      const c = await rawClient(srv.url);
      c.s.write('GET /endless HTTP/1.1\r\nHost: x\r\n\r\n');
      await withTimeout((async () => { while (c.data().length < 200_000) await sleep(5); })(), 5000, 'the response starting');
      c.s.resetAndDestroy();
      await withTimeout(gone, 5000, "the response's close after the client vanished");
      // The server still serves.
      assert.equal((await withTimeout(request(`${srv.url}/`), 10_000, 'a request after')).body, 'ok');
    });

    it('serves TLS through tls.Server: a TLS client, the certificate, ALPN', async () => {
      const server = tls.createServer({ key, cert, ALPNProtocols: ['echo/1'] }, (s) => {
        s.pipe(s);
      });
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      void ln.serveNode(server);
      const client = tls.connect({ host: '127.0.0.1', port: ln.addr().port, ca: cert, servername: 'localhost', ALPNProtocols: ['echo/1'] });
      res.add({ close: () => client.destroy() });
      await withTimeout(new Promise<void>((resolve, reject) => client.once('secureConnect', resolve).once('error', reject)), 10_000, 'the TLS handshake');
      assert.equal(client.alpnProtocol, 'echo/1');
      assert.equal(client.authorized, true);
      client.write('hello over tls');
      const echoed = await withTimeout(new Promise<string>((resolve) => client.once('data', (d: Buffer) => resolve(d.toString()))), 10_000, 'the echo');
      assert.equal(echoed, 'hello over tls');
    });

    it('reads pause while the consumer does not read, and the peer meets backpressure', async () => {
      const pair = res.add(await connectPair(cfg.options));
      const s = pair.server.stream({ highWaterMark: 16 * 1024 });
      res.add({ close: () => s.destroy() });
      s.pause();
      s.read(0);  // start reading: the stream fills its buffer, then must stop
      // The peer writes far more than the stream and the socket buffers hold.
      const big = new Uint8Array(32 << 20);
      const written = observe(pair.client.write(big));
      await sleep(300);
      assert.equal(written.settled, false, 'the peer could write everything: reads never paused');
      assert.ok(s.readableLength <= 16 * 1024 + 64 * 1024, `the stream buffered ${s.readableLength} bytes`);
      // Consuming lets the rest through.
      let got = 0;
      s.removeAllListeners('data');
      s.on('data', (d: Buffer) => { got += d.length; });
      s.resume();
      await withTimeout(written.promise, 20_000, 'the peer write after the consumer resumed');
      await withTimeout((async () => { while (got < big.length) await sleep(5); })(), 20_000, 'all bytes read');
      assert.equal(got, big.length);
    });

    it('write() returns false past the high-water mark and drains; end() is closeWrite()', async () => {
      const pair = res.add(await connectPair(cfg.options));
      const s: ConnStream = pair.server.stream({ highWaterMark: 1024 });
      res.add({ close: () => s.destroy() });
      let ok = true;
      let n = 0;
      while (ok && n < 10_000) {
        ok = s.write(Buffer.alloc(64 * 1024, 3));
        n++;
      }
      assert.equal(ok, false, 'write() never said to wait');
      // Half-close: the peer reads everything, then end of stream, while it can still write.
      s.end();
      const buf = new Uint8Array(256 * 1024);
      let total = 0;
      for (;;) {
        const r = await withTimeout(pair.client.read(buf), 10_000, 'the peer reading');
        if (r === null) break;
        total += r;
      }
      assert.equal(total, n * 64 * 1024);
      await pair.client.write('still open the other way');
      const back = await withTimeout(new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString()))), 10_000, 'data after end()');
      assert.equal(back, 'still open the other way');
    });

    it("the peer's end is 'end' with the sending side still open; destroy() closes the connection", async () => {
      const pair = res.add(await connectPair(cfg.options));
      const s = pair.server.stream();
      const ended = new Promise<void>((resolve) => s.once('end', resolve));
      s.resume();
      pair.client.closeWrite();
      await withTimeout(ended, 10_000, "'end'");
      assert.equal(s.writable, true);
      s.write('after end');
      const buf = new Uint8Array(64);
      const n = await withTimeout(pair.client.read(buf), 10_000, 'the reply');
      assert.equal(Buffer.from(buf.subarray(0, n!)).toString(), 'after end');
      const closed = new Promise<void>((resolve) => s.once('close', resolve));
      s.destroy();
      await withTimeout(closed, 10_000, "'close'");
      assert.equal(await withTimeout(pair.client.read(buf), 10_000, 'EOF at the peer'), null);
      assert.throws(() => pair.server.closeWrite(), /use of closed network connection/);
    });

    it("a reset peer is an 'error' with the connection's OpError (ECONNRESET)", async function () {
      skipIf(this, underWine(), wineResetIsEof);
      const pair = res.add(await connectPair(cfg.options));
      const s = pair.server.stream();
      s.resume();
      const failed = new Promise<Error>((resolve) => s.once('error', resolve));
      pair.client.setLinger(0);
      pair.client.close();
      const err = await withTimeout(failed, 10_000, "'error'");
      assert.equal((err as { code?: string }).code, 'ECONNRESET');
      assert.equal(s.destroyed, true);
    });

    it('pipeline() echoes through the stream, and the idle timer emits timeout', async () => {
      const pair = res.add(await connectPair(cfg.options));
      const s = pair.server.stream();
      const timedOut = new Promise<number>((resolve) => {
        const t0 = Date.now();
        s.setTimeout(200, () => resolve(Date.now() - t0));
      });
      const echo = pipeline(s, s).catch(() => {});
      const buf = new Uint8Array(64);
      await pair.client.write('ping');
      const n = await withTimeout(pair.client.read(buf), 10_000, 'the echo');
      assert.equal(Buffer.from(buf.subarray(0, n!)).toString(), 'ping');
      const idle = await withTimeout(timedOut, 5000, "'timeout'");
      assert.ok(idle >= 150, `timeout after ${idle} ms`);
      pair.client.closeWrite();
      await withTimeout(echo, 10_000, 'the pipeline ending');
    });

    it('checks its arguments and refuses a second reader', async () => {
      const pair = res.add(await connectPair(cfg.options));
      assert.throws(() => pair.server.stream({ highWaterMark: -1 }), /options\.highWaterMark: expected a positive integer, got -1/);
      assert.throws(() => pair.server.stream({ allowHalfOpen: 'yes' as unknown as boolean }), /options\.allowHalfOpen: expected a boolean/);
      const s = pair.server.stream();
      res.add({ close: () => s.destroy() });
      assert.throws(() => pair.server.stream(), /already has a stream/);
      assert.throws(() => s.setTimeout(-5), /ms: expected a number of milliseconds >= 0, got -5/);
      await assert.rejects(() => pair.ln.serveNode({} as never), /server: expected a Node server/);
      // Bad stream options are refused before a connection is taken (none is lost to them).
      let listened = false;
      const server = { emit: (e: string) => { listened ||= e === 'listening'; return true; }, close: () => {} };
      await assert.rejects(() => pair.ln.serveNode(server, { highWaterMark: 0 }), /options\.highWaterMark/);
      assert.equal(listened, false, "no 'listening' for a call that was refused");
      const other = res.add(await dial('tcp', pair.ln.addr().toString(), cfg.options));
      void other.read(new Uint8Array(8));
      assert.throws(() => other.stream(), /already has a reader/);
    });
  });
}
