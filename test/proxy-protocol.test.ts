// The PROXY protocol: the header parser on bytes (v1, v2, every malformed case), and listen's
// proxyProtocol option over sockets (real client address, exact data, pieces, garbage, silence).
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import {
  ErrClosed, listen, listenTLS, parseProxyHeader, proxyHeader, ProxyProtocolError, stats, type Conn, type ProxyParse,
} from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { Resources, observe, sleep, withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header: signature, version 2 + command, family/protocol, length, then `body`. */
function v2(command: number, famProto: number, body: Uint8Array, version = 2): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = (version << 4) | command;
  fixed[1] = famProto;
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, fixed, body]);
}

/** The address block of a v2 INET (IPv4) header. */
function inet(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

/** The address block of a v2 INET6 header, from two 16-byte addresses in hex. */
function inet6(srcHex: string, dstHex: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(36);
  Buffer.from(srcHex, 'hex').copy(b, 0);
  Buffer.from(dstHex, 'hex').copy(b, 16);
  b.writeUInt16BE(sport, 32);
  b.writeUInt16BE(dport, 34);
  return b;
}

function tlv(type: number, value: string): Buffer {
  const b = Buffer.alloc(3);
  b[0] = type;
  b.writeUInt16BE(value.length, 1);
  return Buffer.concat([b, Buffer.from(value)]);
}

function parse(bytes: Uint8Array | string): ProxyParse {
  return parseProxyHeader(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
}

/** Parses `bytes` in full; fails the test unless a header comes out. */
function header(bytes: Uint8Array | string): NonNullable<ProxyParse['header']> {
  const r = parse(bytes);
  assert.ok(r.header !== undefined, `no header, need ${r.need}`);
  return r.header;
}

/** Feeds `bytes` to the parser as a reader would (exactly `need` more each time): the header must end where it does. */
function feedByNeed(bytes: Uint8Array): { reads: number; length: number } {
  let have = 0;
  for (let reads = 0; reads < 200; reads++) {
    const r = parseProxyHeader(bytes.subarray(0, have));
    if (r.header !== undefined) return { reads, length: have };
    assert.ok(r.need >= 1, `need ${r.need}`);
    have += r.need;
    assert.ok(have <= bytes.length, `asked for ${have} bytes of a ${bytes.length}-byte header: an over-read`);
  }
  throw new Error('parser never finished');
}

function rejects(bytes: Uint8Array | string, pattern: RegExp): void {
  assert.throws(() => parse(bytes), (err: unknown) => {
    assert.ok(err instanceof ProxyProtocolError, `not a ProxyProtocolError: ${String(err)}`);
    assert.equal(err.code, 'ERR_PROXY_PROTOCOL');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('PROXY protocol parser', () => {
  it('v1 TCP4: client and destination addresses, and the header length', () => {
    const line = 'PROXY TCP4 192.0.2.10 198.51.100.1 51000 443\r\n';
    const h = header(line + 'GET / HTTP/1.1\r\n');
    assert.equal(h.version, 1);
    assert.equal(h.command, 'PROXY');
    assert.equal(String(h.source), '192.0.2.10:51000');
    assert.equal(String(h.destination), '198.51.100.1:443');
    assert.equal(h.source!.network, 'tcp4');
    assert.equal(h.length, line.length);
  });

  it('v1 TCP6 and UNKNOWN (no addresses: the transport keeps its own)', () => {
    const h = header('PROXY TCP6 2001:db8::7 ::1 65535 0\r\n');
    assert.equal(String(h.source), '[2001:db8::7]:65535');
    assert.equal(String(h.destination), '[::1]:0');
    const u = header('PROXY UNKNOWN\r\n');
    assert.equal(u.source, undefined);
    assert.equal(u.length, 15);
    // The spec lets UNKNOWN carry anything up to CRLF; it is ignored.
    const u2 = header('PROXY UNKNOWN ffff::1 ::2 1 2\r\nrest');
    assert.equal(u2.source, undefined);
    assert.equal(u2.length, 'PROXY UNKNOWN ffff::1 ::2 1 2\r\n'.length);
  });

  it('v2 PROXY INET and INET6 (IPv4-mapped printed dotted), with TLVs kept and skipped over', () => {
    const h = header(Buffer.concat([v2(1, 0x11, Buffer.concat([inet([192, 0, 2, 10], [198, 51, 100, 1], 51000, 443),
      tlv(0x01, 'h2'), tlv(0x02, 'example.com')])), Buffer.from('data')]));
    assert.equal(h.version, 2);
    assert.equal(h.command, 'PROXY');
    assert.equal(String(h.source), '192.0.2.10:51000');
    assert.equal(String(h.destination), '198.51.100.1:443');
    assert.deepEqual(h.tlvs.map((t) => [t.type, Buffer.from(t.value).toString()]), [[1, 'h2'], [2, 'example.com']]);
    assert.equal(h.length, 16 + 12 + 5 + 14);

    const h6 = header(v2(1, 0x21, inet6('20010db8000000000000000000000007', '00000000000000000000ffffc0000201', 1, 2)));
    assert.equal(String(h6.source), '[2001:db8::7]:1');
    assert.equal(String(h6.destination), '[::ffff:192.0.2.1]:2');
    assert.equal(h6.source!.network, 'tcp6');
  });

  it('v2 LOCAL (a health check) and UNSPEC carry no addresses; UNIX carries paths', () => {
    const local = header(v2(0, 0x00, Buffer.alloc(0)));
    assert.equal(local.command, 'LOCAL');
    assert.equal(local.source, undefined);
    assert.equal(local.length, 16);
    // LOCAL with an address block (some senders include one): skipped whole.
    assert.equal(header(v2(0, 0x11, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))).source, undefined);
    assert.equal(header(v2(1, 0x00, Buffer.alloc(0))).source, undefined);
    const unix = Buffer.alloc(216);
    unix.write('/run/client.sock', 0);
    unix.write('\0abstract', 108);
    const hu = header(v2(1, 0x31, unix));
    assert.equal(hu.source!.path, '/run/client.sock');
    assert.equal(hu.destination!.path, '@abstract');
  });

  it('asks for no byte past the header: reading exactly `need` each time ends on the header', () => {
    const headers = [
      'PROXY TCP4 192.0.2.10 198.51.100.1 51000 443\r\n',
      'PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n',
      'PROXY TCP6 :: :: 0 0\r\n',
      'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n',
      'PROXY UNKNOWN\r\n',
      'PROXY UNKNOWN 1 2\r\n',
    ].map((s): Buffer => Buffer.from(s, 'latin1'));
    headers.push(v2(0, 0, Buffer.alloc(0)), v2(0, 0x11, Buffer.alloc(12)), v2(1, 0x00, Buffer.alloc(0)),
      v2(1, 0x11, Buffer.concat([inet([1, 2, 3, 4], [5, 6, 7, 8], 9, 10), tlv(4, 'x'.repeat(300))])),
      v2(1, 0x21, inet6('00'.repeat(16), '00'.repeat(16), 1, 2)), v2(1, 0x31, Buffer.alloc(216)));
    for (const h of headers) {
      const { reads, length } = feedByNeed(h);
      assert.equal(length, h.length, `${JSON.stringify(h.toString('latin1'))}: ended at ${length}`);
      // A typical header takes a few reads; the longest v1 line (104 bytes) 16.
      assert.ok(reads <= 16, `${reads} reads for ${h.length} bytes`);
    }
  });

  it('refuses what is not a header at its first bytes: plain data, a bad v2 signature', () => {
    rejects('GET / HTTP/1.1\r\n', /no header/);
    rejects('G', /no header/);
    rejects('PROXX', /no header/);
    rejects(Buffer.from('0d0a0d0a000d0a52', 'hex'), /bad v2 signature/);  // 'R' where the signature has 'Q'
    rejects(Buffer.concat([SIG.subarray(0, 11), Buffer.from([0x0b])]), /bad v2 signature/);
    assert.throws(() => parseProxyHeader(Buffer.from('PROXY '), { allowV1: false }), /version 1 headers are not accepted/);
    assert.throws(() => parseProxyHeader(SIG, { allowV2: false }), /version 2 headers are not accepted/);
  });

  it('refuses a bad v2 version, command, family or protocol', () => {
    rejects(v2(1, 0x11, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), 1), /bad v2 version 1/);
    rejects(v2(1, 0x11, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), 3), /bad v2 version 3/);
    rejects(v2(2, 0x11, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /bad v2 command 2/);
    rejects(v2(1, 0x41, Buffer.alloc(0)), /family\/protocol 0x41/);
    rejects(v2(1, 0x13, Buffer.alloc(0)), /family\/protocol 0x13/);
  });

  it('refuses truncated v2 addresses and TLVs', () => {
    rejects(v2(1, 0x11, Buffer.alloc(11)), /too short for IPv4/);
    rejects(v2(1, 0x21, Buffer.alloc(35)), /too short for IPv6/);
    rejects(v2(1, 0x31, Buffer.alloc(215)), /too short for Unix/);
    rejects(v2(1, 0x11, Buffer.concat([inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), Buffer.from([1, 0])])), /truncated v2 TLV/);
    rejects(v2(1, 0x11, Buffer.concat([inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), Buffer.from([1, 0, 5, 0x41])])), /TLV longer/);
  });

  it('waits for a header cut short, never reports one early', () => {
    const full = v2(1, 0x11, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
    for (let i = 0; i < full.length; i++) assert.equal(parse(full.subarray(0, i)).header, undefined, `v2 cut at ${i}`);
    const line = 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n';
    for (let i = 0; i < line.length; i++) assert.equal(parse(line.slice(0, i)).header, undefined, `v1 cut at ${i}`);
  });

  it('refuses a v1 line too long, without CRLF, or with a lone CR or LF', () => {
    rejects(`PROXY UNKNOWN ${'x'.repeat(100)}`, /longer than 107 bytes/);
    rejects(`PROXY UNKNOWN ${'x'.repeat(92)}\r\n`, /longer than 107 bytes/);  // 108 bytes with the CRLF
    header(`PROXY UNKNOWN ${'x'.repeat(91)}\r\n`);  // 107: the longest allowed
    rejects('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', /line feed without carriage return/);
    rejects('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX', /carriage return without line feed/);
  });

  it('refuses bad v1 protocols, field counts, addresses and ports', () => {
    rejects('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n', /bad v1 protocol "UDP4"/);
    rejects('PROXY UDP4 ', /bad v1 header/);
    rejects('PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n', /bad v1 protocol ""/);
    rejects('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', /expected 6 fields/);
    rejects('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n', /bad v1 header/);
    rejects('PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n', /bad v1 header|expected 6 fields/);
    rejects('PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n', /bad v1 address "1.2.3.256"/);
    rejects('PROXY TCP4 ::1 5.6.7.8 1 2\r\n', /bad v1 address "::1" \(expected IPv4\)/);
    rejects('PROXY TCP6 1.2.3.4 ::1 1 2\r\n', /bad v1 address "1.2.3.4" \(expected IPv6\)/);
    rejects('PROXY TCP6 ::1 ::g 1 2\r\n', /bad v1 address "::g"/);
    rejects('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', /bad v1 port "65536"/);
    rejects('PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n', /bad v1 port "-2"/);
    rejects('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n', /bad v1 port "01"/);
    rejects('PROXY TCP4 1.2.3.4 5.6.7.8 x 2\r\n', /bad v1 port "x"/);
  });
});

/** The ERR_PROXY_PROTOCOL count over every loop of this thread. */
function proxyErrors(): number {
  return stats().reduce((sum, s) => sum + (s.errors.ERR_PROXY_PROTOCOL ?? 0), 0);
}

/** A Node client socket to `port` on 127.0.0.1, connected; resolves `closed` when the server closes it. */
async function client(port: number): Promise<{ s: net.Socket; closed: Promise<void>; received: () => Buffer }> {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  s.on('error', () => {});  // a reset when the server closes: the test looks at 'close'
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  return { s, closed, received: () => Buffer.concat(parts) };
}

/** Reads from `conn` until `n` bytes came or EOF. */
async function readN(conn: Conn, n: number): Promise<Buffer> {
  const buf = Buffer.alloc(n + 64);
  let have = 0;
  for (let i = 0; i < 1000 && have < n; i++) {
    const r = await conn.read(buf.subarray(have));
    if (r === null) break;
    have += r;
  }
  return buf.subarray(0, have);
}

for (const cfg of loopConfigs()) {
  describe(`listen with proxyProtocol [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());
    const sockets: net.Socket[] = [];
    afterEach(() => sockets.splice(0).forEach((s) => s.destroy()));

    async function proxied(options: object = {}) {
      const ln = res.add(listen('tcp', '127.0.0.1:0', { ...cfg.options, proxyProtocol: { timeout: 5000, ...options } }));
      const open = async () => {
        const c = await client(ln.addr().port);
        sockets.push(c.s);
        return c;
      };
      return { ln, open };
    }

    it('v1: remoteAddr() is the client the header names, localAddr() its destination, and the data is exact', async () => {
      const { ln, open } = await proxied();
      const c = await open();
      const data = Buffer.from('hello after the header');
      c.s.write(Buffer.concat([Buffer.from('PROXY TCP4 192.0.2.10 198.51.100.1 51000 443\r\n'), data]));
      const conn = res.add(await withTimeout(ln.accept(), 5000, 'accept'));
      assert.equal(String(conn.remoteAddr()), '192.0.2.10:51000');
      assert.equal(String(conn.localAddr()), '198.51.100.1:443');
      assert.equal(conn.remoteAddr().network, 'tcp');
      c.s.end();
      assert.deepEqual(await withTimeout(readN(conn, data.length), 5000, 'read'), data);
      assert.equal(proxyHeader(conn)?.version, 1);
    });

    it('v2 INET6 with TLVs: the real client, the TLVs, and exactly the bytes after the header', async () => {
      const { ln, open } = await proxied();
      const c = await open();
      const data = Buffer.alloc(5000, 0x5a);
      c.s.write(Buffer.concat([v2(1, 0x21, Buffer.concat([inet6('20010db8000000000000000000000007', '20010db8000000000000000000000001',
        40000, 8443), tlv(0x01, 'h2')])), data]));
      const conn = res.add(await withTimeout(ln.accept(), 5000, 'accept'));
      assert.equal(String(conn.remoteAddr()), '[2001:db8::7]:40000');
      assert.equal(String(conn.localAddr()), '[2001:db8::1]:8443');
      assert.equal(Buffer.from(proxyHeader(conn)!.tlvs[0].value).toString(), 'h2');
      c.s.end();
      assert.deepEqual(await withTimeout(readN(conn, data.length), 5000, 'read'), data);
    });

    it('v2 LOCAL and v1 UNKNOWN keep the transport addresses', async () => {
      const { ln, open } = await proxied();
      for (const hdr of [v2(0, 0, Buffer.alloc(0)), Buffer.from('PROXY UNKNOWN\r\n')]) {
        const c = await open();
        c.s.write(Buffer.concat([hdr, Buffer.from('x')]));
        const conn = res.add(await withTimeout(ln.accept(), 5000, 'accept'));
        assert.equal(String(conn.remoteAddr()), `127.0.0.1:${c.s.localPort}`);
        assert.equal(String(conn.localAddr()), String(ln.addr()));
        assert.deepEqual(await withTimeout(readN(conn, 1), 5000, 'read'), Buffer.from('x'));
      }
    });

    it('a header sent one byte at a time (v1 and v2) is read whole, and none of the data after it', async () => {
      const { ln, open } = await proxied();
      const headers = [Buffer.from('PROXY TCP6 2001:db8::9 2001:db8::1 1234 80\r\n'),
        v2(1, 0x11, Buffer.concat([inet([192, 0, 2, 99], [192, 0, 2, 1], 1234, 80), tlv(0x02, 'host')]))];
      for (const hdr of headers) {
        const c = await open();
        const accepted = observe(ln.accept());
        for (const byte of hdr.subarray(0, -1)) {
          c.s.write(Buffer.from([byte]));
          await sleep(1);  // pacing only: bytes that coalesce in the kernel are read together, also fine
        }
        await sleep(20);
        assert.equal(accepted.settled, false, 'accepted before the header was complete');
        c.s.write(hdr.subarray(-1));
        c.s.write('after');
        const conn = res.add((await withTimeout(accepted.promise, 5000, 'accept')).value as Conn);
        assert.match(String(conn.remoteAddr()), /^(\[2001:db8::9\]|192\.0\.2\.99):1234$/);
        c.s.end();
        assert.deepEqual(await withTimeout(readN(conn, 5), 5000, 'read'), Buffer.from('after'));
      }
    });

    it('garbage or plain data: the connection is closed and counted, never accepted, and the listener serves on', async () => {
      const seen: string[] = [];
      const { ln, open } = await proxied({ onError: (err: Error) => seen.push((err as { code?: string }).code ?? '?') });
      const accepted = observe(ln.accept());
      const before = proxyErrors();
      for (const junk of ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n']) {
        const c = await open();
        c.s.write(junk);
        await withTimeout(c.closed, 5000, `the server closing a connection that sent ${JSON.stringify(junk)}`);
        assert.equal(c.received().length, 0);
      }
      assert.equal(proxyErrors() - before, 2);
      assert.deepEqual(seen, ['ERR_PROXY_PROTOCOL', 'ERR_PROXY_PROTOCOL']);
      assert.equal(accepted.settled, false, 'a bad connection reached accept()');
      const good = await open();
      good.s.write('PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n');
      const conn = res.add((await withTimeout(accepted.promise, 5000, 'accept')).value as Conn);
      assert.equal(String(conn.remoteAddr()), '192.0.2.1:1');
    });

    it('a peer that closes before its header is complete is counted and never accepted', async () => {
      const { ln, open } = await proxied();
      const accepted = observe(ln.accept());
      const before = proxyErrors();
      const c = await open();
      c.s.end('PROXY TCP4 1.2.3');
      await withTimeout(c.closed, 5000, 'the server closing');
      for (let i = 0; i < 100 && proxyErrors() === before; i++) await sleep(10);
      assert.equal(proxyErrors() - before, 1);
      assert.equal(accepted.settled, false);
    });

    it('a silent peer is closed by the timeout, and does not hold up the connections behind it', async () => {
      const { ln, open } = await proxied({ timeout: 300 });
      const before = proxyErrors();
      const silent = await open();
      const good = await open();
      good.s.write('PROXY TCP4 192.0.2.7 192.0.2.8 7 8\r\n');
      const conn = res.add(await withTimeout(ln.accept(), 5000, 'accept of the client behind the silent one'));
      assert.equal(String(conn.remoteAddr()), '192.0.2.7:7');
      assert.equal(proxyErrors(), before, 'the silent peer failed before its timeout');
      await withTimeout(silent.closed, 5000, 'the silent peer closed by the timeout');
      assert.equal(proxyErrors() - before, 1);
    });

    it('close() closes connections still reading their header, without counting them', async () => {
      const { ln, open } = await proxied();
      const before = proxyErrors();
      const c = await open();
      c.s.write('PROXY TCP4');
      await sleep(20);
      ln.close();
      await withTimeout(c.closed, 5000, 'the half-headed connection closed with the listener');
      await assert.rejects(ln.accept(), (err: unknown) => err instanceof ErrClosed);
      assert.equal(proxyErrors(), before);
    });

    it('a Unix listener takes the header too: remoteAddr() is the TCP client the balancer relayed', async function () {
      skipIf(this, onWindows, 'Unix sockets: POSIX only in muxnet');
      const sock = path.join(tmpdir(), `muxnet-proxy-${process.pid}-${cfg.name}.sock`);
      const ln = res.add(listen('unix', sock, { ...cfg.options, proxyProtocol: true }));
      const s = net.connect(sock);
      sockets.push(s);
      s.on('error', () => {});
      s.write(Buffer.concat([v2(1, 0x11, inet([192, 0, 2, 44], [192, 0, 2, 1], 4444, 80)), Buffer.from('unix data')]));
      const conn = res.add(await withTimeout(ln.accept(), 5000, 'accept'));
      assert.equal(String(conn.remoteAddr()), '192.0.2.44:4444');
      s.end();
      assert.deepEqual(await withTimeout(readN(conn, 9), 5000, 'read'), Buffer.from('unix data'));
    });

    it("serveNode(): Node's http sees the client from the header as req.socket.remoteAddress", async () => {
      const { ln } = await proxied();
      const server = http.createServer((req, rsp) => rsp.end(`${req.socket.remoteAddress}:${req.socket.remotePort}`));
      const done = ln.serveNode(server);
      const c = await client(ln.addr().port);
      sockets.push(c.s);
      c.s.end('PROXY TCP4 203.0.113.5 192.0.2.1 4321 80\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await withTimeout(c.closed, 5000, 'the response');
      assert.match(c.received().toString(), /\r\n\r\n203\.0\.113\.5:4321$/);
      ln.close();
      await done;
    });
  });
}

describe('listen proxyProtocol argument checks', () => {
  it('names the bad option and what was expected', () => {
    assert.throws(() => listen('tcp', '127.0.0.1:0', { proxyProtocol: 'yes' as never }),
      /options\.proxyProtocol: expected true, false or an object, got "yes"/);
    assert.throws(() => listen('tcp', '127.0.0.1:0', { proxyProtocol: { timeout: 0 } }), RangeError);
    assert.throws(() => listen('tcp', '127.0.0.1:0', { proxyProtocol: { allowV1: 1 as never } }),
      /options\.proxyProtocol\.allowV1: expected a boolean, got 1/);
    assert.throws(() => listen('tcp', '127.0.0.1:0', { proxyProtocol: { allowV1: false, allowV2: false } }), /both false/);
    assert.throws(() => listen('tcp', '127.0.0.1:0', { proxyProtocol: { onError: 'x' as never } }),
      /options\.proxyProtocol\.onError: expected a function/);
  });
});

describe('listenTLS with proxyProtocol', () => {
  it('reads the PROXY header before the TLS handshake: the TLSConn names the client from the header', async () => {
    const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures', 'tls');
    const cert = readFileSync(path.join(fixtures, 'localhost-cert.pem'));
    const ln = listenTLS('tcp', '127.0.0.1:0', {
      key: readFileSync(path.join(fixtures, 'localhost-key.pem')), cert, proxyProtocol: true,
    });
    try {
      const served = ln.serve(async (conn) => {
        await conn.write(`${conn.remoteAddr()}\n`);
      });
      const raw = net.connect(ln.addr().port, '127.0.0.1');
      await new Promise((resolve) => raw.once('connect', resolve));
      raw.write('PROXY TCP4 198.51.100.9 127.0.0.1 40000 443\r\n');
      const secure = tls.connect({ socket: raw, servername: 'localhost', ca: cert });
      const line = await withTimeout(new Promise<string>((resolve, reject) => {
        let got = '';
        secure.on('data', (d: Buffer) => { got += d.toString(); if (got.endsWith('\n')) resolve(got); });
        secure.on('error', reject);
      }), 10_000, 'the reply over TLS');
      secure.destroy();
      assert.equal(line, '198.51.100.9:40000\n');
      ln.close();
      await served;
    } finally {
      ln.close();
    }
  });
});
