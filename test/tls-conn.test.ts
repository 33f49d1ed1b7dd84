// TLSConn on every loop configuration: echo through listenTLS/dialTLS, serve and for-await over a
// TLS listener, half close, read deadlines, the handshake timeout, STARTTLS, use after close, no leaks.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { dial, dialTLS, listen, listenTLS, tlsClient, tlsServer, type Conn, type TLSConn } from 'muxnet';
import { assertDeadlineExceeded, assertErrClosed, rejectionOf, thrownBy } from './helpers/assert-errors';
import { loopConfigs } from './helpers/configs';
import { socketFds, socketsLeftOpen } from './helpers/fds';
import { ca, echoServer, server } from './helpers/tls-fixtures';
import { Resources, assertBytesEqual, withTimeout } from './helpers/util';

/** Reads exactly `n` bytes (or fails at end of stream). */
async function readFull(conn: TLSConn | Conn, n: number): Promise<Buffer> {
  const out = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) throw new Error(`end of stream after ${got} of ${n} bytes`);
    got += r;
  }
  return out;
}

/** Reads one line of plaintext, byte by byte (so nothing after it is consumed). */
async function readLine(conn: Conn): Promise<string> {
  const one = Buffer.alloc(1);
  let line = '';
  for (let i = 0; i < 1000 && !line.endsWith('\n'); i++) {
    if ((await conn.read(one)) === null) break;
    line += one.toString();
  }
  return line;
}

for (const cfg of loopConfigs()) {
  describe(`TLSConn [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('echoes through listenTLS and dialTLS: small messages and 4 MiB, and both sides see the handshake', async () => {
      const srv = res.add(echoServer({ ...cfg.options, ALPNProtocols: ['echo/1'] }));
      const conn = res.add(await dialTLS('tcp', `localhost:${srv.ln.addr().port}`, { ...cfg.options, ca, ALPNProtocols: ['echo/1'] }));
      const st = conn.tlsState();
      assert.equal(st.handshakeComplete, true);
      assert.equal(st.protocol, 'TLSv1.3');
      assert.equal(st.alpnProtocol, 'echo/1');
      assert.equal(st.authorized, true);
      assert.equal(st.peerCertificate?.subject.CN, 'localhost');
      assert.equal(conn.remoteAddr().port, srv.ln.addr().port);
      assert.equal(conn.backend, cfg.options.backend);
      for (let i = 0; i < 20; i++) {
        await conn.write(`message ${i}`);
        assert.equal((await readFull(conn, `message ${i}`.length)).toString(), `message ${i}`);
      }
      // Bigger than every buffer on the way: backpressure both ways, reads split across records.
      const big = randomBytes(4 << 20);
      const [, echoed] = await withTimeout(Promise.all([conn.write(big), readFull(conn, big.length)]), 30_000, 'the 4 MiB echo');
      assertBytesEqual(echoed, big, '4 MiB echoed');
      assert.deepEqual(srv.errors, []);
    });

    it('accepts with for-await over a TLS listener; closeWrite sends end of stream and the other side still answers', async () => {
      const ln = res.add(listenTLS('tcp', '127.0.0.1:0', { ...cfg.options, ...server }));
      const served = (async () => {
        for await (const conn of ln) {
          // Read everything up to the client's end of stream, then answer and close.
          const parts: Buffer[] = [];
          for await (const data of conn) parts.push(data);
          assert.equal(conn.tlsState().servername, 'localhost');
          await conn.write(`got ${Buffer.concat(parts).toString()}`);
          conn.closeWrite();
          conn.close();
          return;
        }
      })();
      const conn = res.add(await dialTLS('tcp', `localhost:${ln.addr().port}`, { ...cfg.options, ca }));
      await conn.write('one ');
      await conn.write('two');
      conn.closeWrite();
      assert.equal((await rejectionOf(conn.write('late')) as { code?: string }).code, 'EPIPE');
      const reply = Buffer.alloc(100);
      const n = await withTimeout(conn.read(reply), 10_000, 'the reply after closeWrite');
      assert.equal(reply.subarray(0, n!).toString(), 'got one two');
      assert.equal(await conn.read(reply), null, 'end of stream after the reply');
      await served;
    });

    it('fails a read at its deadline with ErrDeadlineExceeded; with the deadline cleared the connection goes on', async () => {
      const srv = res.add(echoServer(cfg.options));
      // Each step bounded on its own: one run of the ASan suite in CI (epoll-thread) timed out
      // in this test without saying where (see the closing note of session 7).
      const conn = res.add(await withTimeout(dialTLS('tcp', `localhost:${srv.ln.addr().port}`, { ...cfg.options, ca }), 10_000, 'dialTLS'));
      conn.setReadDeadline(Date.now() + 100);
      const err = await withTimeout(rejectionOf(conn.read(Buffer.alloc(10))), 5000, 'the read deadline');
      assertDeadlineExceeded(err, 'read');
      // Past deadline: a new read fails at once.
      assertDeadlineExceeded(await withTimeout(rejectionOf(conn.read(Buffer.alloc(10))), 5000, 'a read past the deadline'), 'read');
      conn.setReadDeadline(0);
      await withTimeout(conn.write('still here'), 10_000, 'the write after the deadline');
      assert.equal((await withTimeout(readFull(conn, 10), 10_000, 'the echo after the deadline was cleared')).toString(), 'still here');
    });

    it('fails a write stuck behind a peer that does not read at its deadline, and later writes too (as in Go)', async () => {
      const ln = res.add(listenTLS('tcp', '127.0.0.1:0', { ...cfg.options, ...server }));
      const accepted = ln.accept().then((c) => res.add(c));
      const conn = res.add(await dialTLS('tcp', `localhost:${ln.addr().port}`, { ...cfg.options, ca }));
      const peer = await accepted;
      await peer.handshake();  // and then never reads
      conn.setNoDelay(true);
      conn.setKeepAlive(true, { idle: 10_000 });
      conn.setWriteDeadline(Date.now() + 200);
      const block = Buffer.alloc(1 << 20);
      const err = await withTimeout((async () => {
        // Bounded: the kernel buffers take a few MiB at most before a write waits.
        for (let i = 0; i < 256; i++) await conn.write(block);
        return null;
      })().catch((e: unknown) => e), 10_000, 'the write deadline');
      assertDeadlineExceeded(err, 'write');
      conn.setWriteDeadline(0);
      assertDeadlineExceeded(await rejectionOf(conn.write('x')), 'write');
    });

    it('drops a peer that connects and sends nothing at handshakeTimeout, and serves on', async () => {
      const ln = res.add(listenTLS('tcp', '127.0.0.1:0', { ...cfg.options, ...server, handshakeTimeout: 300 }));
      const handshakes: unknown[] = [];
      void ln.serve(async (conn) => {
        try {
          await conn.handshake();
          for await (const data of conn) await conn.write(data);
        } catch (err) {
          handshakes.push(err);
        }
      });
      const silent = res.add(await dial('tcp', String(ln.addr()), cfg.options));
      // The server closes it: end of stream (or a reset) without a byte, well before mocha's timeout.
      const r = await withTimeout(silent.read(Buffer.alloc(10)).catch((e: { code?: string }) => e.code), 10_000, 'the silent peer dropped');
      assert.ok(r === null || r === 'ECONNRESET', `expected end of stream, got ${String(r)}`);
      assert.equal(handshakes.length, 1);
      assert.equal((handshakes[0] as { code?: string }).code, 'ERR_TLS_HANDSHAKE_TIMEOUT');
      assert.equal((handshakes[0] as { op?: string }).op, 'handshake');
      const conn = res.add(await dialTLS('tcp', `localhost:${ln.addr().port}`, { ...cfg.options, ca }));
      await conn.write('after');
      assert.equal((await readFull(conn, 5)).toString(), 'after');
    });

    it('upgrades with STARTTLS: a plaintext line, then tlsServer and tlsClient over the same connections', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const served = (async () => {
        const plain = await ln.accept();
        assert.equal(await readLine(plain), 'STARTTLS\r\n');
        await plain.write('220 go ahead\r\n');
        const conn = tlsServer(plain, server);
        const got = await readFull(conn, 6);
        await conn.write(`secure ${got.toString()}`);
        conn.closeWrite();
        return conn;
      })();
      const plain = res.add(await dial('tcp', String(ln.addr()), cfg.options));
      await plain.write('STARTTLS\r\n');
      assert.equal(await readLine(plain), '220 go ahead\r\n');
      const conn = res.add(tlsClient(plain, { ca, servername: 'localhost' }));
      await conn.handshake();
      assert.equal(conn.tlsState().peerCertificate?.subject.CN, 'localhost');
      await conn.write('hello!');
      assert.equal((await readFull(conn, 13)).toString(), 'secure hello!');
      assert.equal(await conn.read(Buffer.alloc(1)), null);
      res.add(await served);
    });

    it('sends what both sides wrote before the handshake once it is done, in order', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const accepted = ln.accept();
      const client = res.add(tlsClient(res.add(await dial('tcp', String(ln.addr()), cfg.options)), { ca, servername: 'localhost' }));
      const srv = res.add(tlsServer(res.add(await accepted), server));
      // Neither side awaits the handshake: the writes resolve once their records are sent after it.
      await withTimeout(Promise.all([srv.write('from the server, '), srv.write('early'), client.write('from the client')]),
        10_000, 'writes made before the handshake');
      assert.equal((await readFull(client, 22)).toString(), 'from the server, early');
      assert.equal((await readFull(srv, 15)).toString(), 'from the client');
    });

    it('after close: reads, writes and the handshake reject with ErrClosed, setters throw it, and no socket is left open', async () => {
      const before = socketFds();
      const srv = echoServer(cfg.options);
      const conn = await dialTLS('tcp', `localhost:${srv.ln.addr().port}`, { ...cfg.options, ca });
      const pending = conn.read(Buffer.alloc(10));
      conn.close();
      assertErrClosed(await rejectionOf(pending), 'read');
      assertErrClosed(await rejectionOf(conn.read(Buffer.alloc(10))), 'read');
      assertErrClosed(await rejectionOf(conn.write('x')), 'write');
      assertErrClosed(await rejectionOf(conn.handshake()));
      assertErrClosed(thrownBy(() => conn.setDeadline(Date.now() + 1000)));
      assertErrClosed(thrownBy(() => conn.closeWrite()));
      conn.close();  // again: nothing
      assert.equal(conn.tlsState().handshakeComplete, true, 'the state stays readable');
      assert.equal(conn.remoteAddr().port, srv.ln.addr().port);
      srv.close();
      if (before !== null) assert.deepEqual(await socketsLeftOpen(before), [], 'sockets left open');
    });
  });
}
