// TLS negotiation and verification through listenTLS/dialTLS: ALPN, SNI, mTLS, bad and expired
// certificates, session resumption, argument errors. These exercise OpenSSL's side, not the
// loop's, so they run on the default loop configuration only (tls-conn.test.ts covers every one).
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { dial, dialTLS, listenTLS, tlsClient, tlsServer, type TLSConn } from 'muxnet';
import { assertArgError, rejectionOf, thrownBy } from './helpers/assert-errors';
import { socketFds, socketsLeftOpen } from './helpers/fds';
import { ca, client, echoServer, expired, other, rogueClient, selfSigned, server } from './helpers/tls-fixtures';
import { Resources, withTimeout } from './helpers/util';

/** Writes `text` and reads the echo back. */
async function ping(conn: TLSConn, text = 'ping'): Promise<string> {
  await conn.write(text);
  const buf = Buffer.alloc(text.length);
  let got = 0;
  while (got < text.length) {
    const n = await conn.read(buf.subarray(got));
    if (n === null) throw new Error('end of stream');
    got += n;
  }
  return buf.toString();
}

describe('TLS negotiation and verification', () => {
  const res = new Resources();
  afterEach(() => res.closeAll());

  it('ALPN: the server picks from the client offer; no common protocol fails the handshake', async () => {
    const srv = res.add(echoServer({ ALPNProtocols: ['h2', 'echo/1'] }));
    const port = srv.ln.addr().port;
    const a = res.add(await dialTLS('tcp', `localhost:${port}`, { ca, ALPNProtocols: ['echo/1', 'h2'] }));
    // Node's server takes the first of its own list that the client offers.
    assert.equal(a.tlsState().alpnProtocol, 'h2');
    const b = res.add(await dialTLS('tcp', `localhost:${port}`, { ca, ALPNProtocols: ['echo/1'] }));
    assert.equal(b.tlsState().alpnProtocol, 'echo/1');
    const none = res.add(await dialTLS('tcp', `localhost:${port}`, { ca }));
    assert.equal(none.tlsState().alpnProtocol, false);
    const err = await rejectionOf(dialTLS('tcp', `localhost:${port}`, { ca, ALPNProtocols: ['nope'] }));
    assert.match(String((err as { code?: string }).code), /ALPN|NO_APPLICATION_PROTOCOL/);
  });

  it('SNI: SNICallback picks the certificate by the name the client asks for', async () => {
    const contexts = new Map([['localhost', tls.createSecureContext(server)], ['other.test', tls.createSecureContext(other)]]);
    const asked: string[] = [];
    const srv = res.add(echoServer({
      SNICallback: (name, cb) => {
        asked.push(name);
        cb(null, contexts.get(name));
      },
    }));
    const port = srv.ln.addr().port;
    const a = res.add(await dialTLS('tcp', `127.0.0.1:${port}`, { ca, servername: 'other.test' }));
    assert.equal(a.tlsState().peerCertificate?.subject.CN, 'other.test');
    assert.equal(a.tlsState().servername, 'other.test');
    const b = res.add(await dialTLS('tcp', `localhost:${port}`, { ca }));
    assert.equal(b.tlsState().peerCertificate?.subject.CN, 'localhost');
    assert.deepEqual(asked, ['other.test', 'localhost']);
    assert.equal(await ping(a), 'ping');
  });

  it('mTLS: a client with a certificate from the CA is accepted and named; one without, or from another CA, is refused', async () => {
    const ln = res.add(listenTLS('tcp', '127.0.0.1:0', { ...server, ca, requestCert: true }));
    const seen: string[] = [];
    const refused: string[] = [];
    void ln.serve(async (conn) => {
      try {
        await conn.handshake();
      } catch (err) {
        refused.push(String((err as { code?: string }).code));
        return;
      }
      seen.push(`${conn.tlsState().peerCertificate?.subject.CN} authorized=${conn.tlsState().authorized}`);
      await conn.write('welcome');
    });
    const port = ln.addr().port;
    const ok = res.add(await dialTLS('tcp', `localhost:${port}`, { ca, ...client }));
    const buf = Buffer.alloc(7);
    assert.equal(await withTimeout(ok.read(buf), 10_000, 'the welcome'), 7);
    assert.deepEqual(seen, ['muxnet-client authorized=true']);

    // Refused: the server's handshake fails and the client never gets a byte of application data.
    for (const [what, options] of [['no certificate', {}], ['a certificate from another CA', rogueClient]] as const) {
      const outcome = await withTimeout((async () => {
        try {
          const c = res.add(await dialTLS('tcp', `localhost:${port}`, { ca, ...options }));
          return await c.read(Buffer.alloc(7));  // TLS 1.3: the client's handshake ends first; the refusal comes next
        } catch (err) {
          return err as Error;
        }
      })(), 10_000, `the client with ${what}`);
      assert.ok(outcome === null || outcome instanceof Error, `the client with ${what} read ${String(outcome)} bytes`);
    }
    await withTimeout((async () => { while (refused.length < 2) await new Promise((r) => setTimeout(r, 10)); })(), 10_000, 'both refusals');
    assert.equal(refused[0], 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
    assert.match(refused[1], /UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF_SIGNATURE)/);
    assert.equal(seen.length, 1, 'no refused client reached the handler');
  });

  it('mTLS with rejectUnauthorized false: the unverified client gets in, marked unauthorized', async () => {
    const ln = res.add(listenTLS('tcp', '127.0.0.1:0', { ...server, ca, requestCert: true, rejectUnauthorized: false }));
    const states = (async () => {
      const conn = res.add(await ln.accept());
      await conn.handshake();
      return conn.tlsState();
    })();
    res.add(await dialTLS('tcp', `localhost:${ln.addr().port}`, { ca, ...rogueClient }));
    const st = await withTimeout(states, 10_000, 'the server handshake');
    assert.equal(st.authorized, false);
    assert.match(String(st.authorizationError), /UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF_SIGNATURE)/);
    assert.equal(st.peerCertificate?.subject.CN, 'muxnet-rogue-client');
  });

  it('rejects a self-signed, a wrong-host and an expired certificate with Node\'s codes, and leaks no socket', async () => {
    const before = socketFds();
    const cases = [
      { name: 'self-signed', cert: selfSigned, address: 'localhost', options: {}, code: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
      { name: 'wrong host', cert: other, address: 'localhost', options: { ca }, code: 'ERR_TLS_CERT_ALTNAME_INVALID' },
      { name: 'expired', cert: expired, address: 'localhost', options: { ca }, code: 'CERT_HAS_EXPIRED' },
      { name: 'unknown CA', cert: server, address: 'localhost', options: {}, code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' },
    ];
    for (const c of cases) {
      const srv = echoServer(c.cert);
      try {
        const err = await rejectionOf(dialTLS('tcp', `${c.address}:${srv.ln.addr().port}`, c.options));
        assert.equal((err as { code?: string }).code, c.code, `${c.name}: ${String(err)}`);
        assert.equal((err as { op?: string }).op, 'dial', c.name);
        // rejectUnauthorized false lets it through, marked.
        const conn = await dialTLS('tcp', `${c.address}:${srv.ln.addr().port}`, { ...c.options, rejectUnauthorized: false });
        assert.equal(conn.tlsState().authorized, false, c.name);
        assert.equal(await ping(conn), 'ping');
        conn.close();
      } finally {
        srv.close();
      }
    }
    if (before !== null) assert.deepEqual(await socketsLeftOpen(before), [], 'sockets left open');
  });

  it('resumes a session: the second dial with the first one\'s session is resumed', async () => {
    const srv = res.add(echoServer({}));
    const port = srv.ln.addr().port;
    const first = res.add(await dialTLS('tcp', `localhost:${port}`, { ca }));
    assert.equal(first.tlsState().resumed, false);
    assert.equal(await ping(first), 'ping');  // a TLS 1.3 ticket comes with the first read
    const session = first.session();
    assert.ok(Buffer.isBuffer(session), 'the server sent a session ticket');
    const second = res.add(await dialTLS('tcp', `localhost:${port}`, { ca, session }));
    assert.equal(second.tlsState().resumed, true);
    assert.equal(await ping(second), 'ping');
    // A session from another listener (other ticket keys) is not resumed, and the dial still works.
    const srv2 = res.add(echoServer({}));
    const third = res.add(await dialTLS('tcp', `localhost:${srv2.ln.addr().port}`, { ca, session }));
    assert.equal(third.tlsState().resumed, false);
  });

  it('a handshake under an expired deadline fails with ErrDeadlineExceeded and closes the connection', async () => {
    const { listen } = await import('muxnet');
    const ln = res.add(listen('tcp', '127.0.0.1:0'));  // accepts, never answers
    const plain = await dial('tcp', String(ln.addr()));
    const conn = res.add(tlsClient(plain, { ca, servername: 'localhost' }));
    conn.setDeadline(Date.now() + 150);
    const err = await withTimeout(rejectionOf(conn.handshake()), 5000, 'the handshake deadline');
    assert.equal((err as { code?: string }).code, 'ETIMEDOUT');
    assert.equal((err as { timeout(): boolean }).timeout(), true);
    assert.equal((await rejectionOf(conn.write('x')) as Error), err, 'writes fail with the handshake error');
  });

  it('dialTLS rejects a timeout that ends during the handshake', async () => {
    const { listen } = await import('muxnet');
    const ln = res.add(listen('tcp', '127.0.0.1:0'));
    const err = await withTimeout(rejectionOf(dialTLS('tcp', String(ln.addr()), { ca, timeout: 200 })), 5000, 'the dial timeout');
    assert.equal((err as { op?: string }).op, 'dial');
    assert.equal((err as { timeout(): boolean }).timeout(), true);
  });

  it('argument errors name the argument', async () => {
    assertArgError(thrownBy(() => listenTLS('tcp', '127.0.0.1:0', {} as never)), /options: a TLS server needs a certificate/);
    assertArgError(thrownBy(() => listenTLS('tcp', '127.0.0.1:0', undefined as never)), /^options/);
    assertArgError(thrownBy(() => listenTLS('tcp', '127.0.0.1:0', { ...server, handshakeTimeout: -1 })), /options\.handshakeTimeout/);
    assertArgError(thrownBy(() => listenTLS('tcp', '127.0.0.1:0', { ...server, requestCert: 'yes' as never })), /options\.requestCert/);
    assertArgError(thrownBy(() => listenTLS('tcp', '127.0.0.1:0', { ...server, ALPNProtocols: [1] as never })), /options\.ALPNProtocols/);
    assertArgError(thrownBy(() => listenTLS('tcp', '127.0.0.1:0', { ...server, SNICallback: 'x' as never })), /options\.SNICallback/);
    assertArgError(thrownBy(() => listenTLS('nope' as never, '127.0.0.1:0', server)), /network/);
    assertArgError(await rejectionOf(dialTLS('udp' as never, '127.0.0.1:1')), /network/);
    assertArgError(await rejectionOf(dialTLS('tcp', '127.0.0.1:1', { servername: '127.0.0.1' })), /options\.servername/);
    assertArgError(await rejectionOf(dialTLS('tcp', '127.0.0.1:1', { session: 'abc' as never })), /options\.session/);
    assertArgError(await rejectionOf(dialTLS('tcp', '127.0.0.1:1', null as never)), /^options/);
    assertArgError(thrownBy(() => tlsServer({} as never, server)), /^conn/);
    assertArgError(thrownBy(() => tlsClient('x' as never)), /^conn/);
    const srv = res.add(echoServer({}));
    const conn = res.add(await dialTLS('tcp', `localhost:${srv.ln.addr().port}`, { ca }));
    assertArgError(await rejectionOf(conn.read('x' as never)), /^buf/);
    assertArgError(await rejectionOf(conn.write(42 as never)), /^data/);
    assertArgError(thrownBy(() => conn.setDeadline('soon' as never)), /^deadline/);
    assertArgError(thrownBy(() => conn.stream({ highWaterMark: 1 })), /^options/);
    // An unusable key is OpenSSL's error, thrown before any socket is made.
    assert.throws(() => listenTLS('tcp', '127.0.0.1:0', { key: other.key, cert: server.cert }), /key values mismatch|KEY_VALUES_MISMATCH/i);
  });
});
