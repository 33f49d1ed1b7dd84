// PacketConn: UDP and unixgram datagrams whole and in order, truncation reported, batches, deadlines, errors.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OpError, dial, listenPacket } from 'muxnet';
import type { PacketConn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertArgError, assertDeadlineExceeded, assertErrClosed, rejectionOf, thrownBy } from './helpers/assert-errors';
import { socketFds } from './helpers/fds';
import { pattern } from './helpers/pattern';
import { Resources, assertBytesEqual, describeError, withTimeout } from './helpers/util';
import { onWindows, skipIf, underWine } from './helpers/platform';

// The largest UDP payload over IPv4: 65,535 - 20 (IP header) - 8 (UDP header).
const kMaxUdp4 = 65_507;

function assertCode(err: unknown, op: string, code: string): void {
  assert.ok(err instanceof OpError, `expected OpError, got ${describeError(err)}`);
  assert.equal(err.op, op);
  assert.equal(err.code, code);
}

for (const cfg of loopConfigs()) {
  describe(`packet conn [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());
    const udp = (): PacketConn => res.add(listenPacket('udp', '127.0.0.1:0', cfg.options));

    it('carries datagrams up to the UDP maximum whole, with the sender address', async () => {
      const a = udp();
      const b = udp();
      for (const size of [1, 1500, 16 * 1024, kMaxUdp4]) {
        const data = pattern(size);
        const buf = new Uint8Array(64 * 1024);
        const [got] = await Promise.all([withTimeout(a.readFrom(buf), 10_000, `${size}-byte datagram`), b.writeTo(data, a.localAddr())]);
        assert.equal(got.n, size);
        assert.equal(got.truncated, false);
        assert.equal(String(got.addr), String(b.localAddr()));
        assertBytesEqual(buf.subarray(0, got.n), data);
      }
    });

    it('reports a datagram longer than the buffer as truncated, and the next one starts fresh', async () => {
      const a = udp();
      const b = udp();
      await b.writeTo(pattern(100), String(a.localAddr()));
      await b.writeTo('next', String(a.localAddr()));
      const small = new Uint8Array(10);
      const first = await a.readFrom(small);
      assert.deepEqual([first.n, first.truncated], [10, true]);
      assertBytesEqual(small, pattern(100).subarray(0, 10));
      const buf = new Uint8Array(100);
      const second = await a.readFrom(buf);
      assert.equal(second.truncated, false);
      assert.equal(Buffer.from(buf.subarray(0, second.n)).toString(), 'next');
    });

    it('serves concurrent reads in the order they were made, one datagram each', async () => {
      const a = udp();
      const b = udp();
      const bufs = [0, 1, 2].map(() => new Uint8Array(16));
      const reads = bufs.map((buf) => a.readFrom(buf));
      for (const m of ['one', 'two', 'three']) await b.writeTo(m, a.localAddr());
      const got = await withTimeout(Promise.all(reads), 10_000, 'three reads');
      assert.deepEqual(got.map((d, i) => Buffer.from(bufs[i].subarray(0, d.n)).toString()), ['one', 'two', 'three']);
    });

    it('dials a connected socket whose read and write are datagrams; a long one rejects with EMSGSIZE', async () => {
      const server = udp();
      const c = res.add(await dial('udp', String(server.localAddr()), cfg.options));
      assert.equal(String(c.remoteAddr()), String(server.localAddr()));
      await c.write('ping');
      const buf = new Uint8Array(64);
      const d = await server.readFrom(buf);
      await server.writeTo(buf.subarray(0, d.n), d.addr);
      const n = await c.read(buf);
      assert.equal(Buffer.from(buf.subarray(0, n)).toString(), 'ping');
      await server.writeTo(pattern(200), d.addr);
      assertCode(await rejectionOf(c.read(new Uint8Array(50))), 'read', 'EMSGSIZE');
      await server.writeTo('after', d.addr);
      assert.equal(await c.read(buf), 5);
    });

    it('reports ECONNREFUSED on a connected socket whose peer port is closed', async function () {
      // Observed with wine 8 in a small Winsock program: a connected UDP socket with
      // SIO_UDP_CONNRESET on sends to a closed port, select waits 2 s with nothing readable,
      // and recv gives WSAEWOULDBLOCK: the ICMP port-unreachable is never reported.
      skipIf(this, underWine(), 'wine 8 does not report ICMP port-unreachable to a connected UDP socket');
      const gone = listenPacket('udp', '127.0.0.1:0', cfg.options);
      const port = gone.localAddr().port;
      gone.close();
      const c = res.add(await dial('udp', `127.0.0.1:${port}`, cfg.options));
      await c.write('anyone?');
      // The ICMP port-unreachable answer surfaces on the next read.
      assertCode(await withTimeout(rejectionOf(c.read(new Uint8Array(16))), 10_000, 'ECONNREFUSED'), 'read', 'ECONNREFUSED');
    });

    it('sends and receives batches (sendmmsg/recvmmsg) in order', async () => {
      const a = udp();
      const b = udp();
      const count = 200;
      const messages = Array.from({ length: count }, (_, i) => ({ data: Buffer.from(`message ${i}`), addr: a.localAddr() }));
      a.setReadBuffer(1024 * 1024);  // room for the whole burst: UDP drops what does not fit
      await b.writeBatch(messages);
      const got: string[] = [];
      const bufs = Array.from({ length: 32 }, () => new Uint8Array(64));
      while (got.length < count) {
        const batch = await withTimeout(a.readBatch(bufs), 10_000, `datagrams after ${got.length}`);
        assert.ok(batch.length >= 1 && batch.length <= bufs.length);
        batch.forEach((d, i) => {
          assert.equal(String(d.addr), String(b.localAddr()));
          got.push(Buffer.from(bufs[i].subarray(0, d.n)).toString());
        });
      }
      assert.deepEqual(got, messages.map((m) => m.data.toString()));
    });

    it('rejects pending reads at the read deadline and on close()', async () => {
      const a = udp();
      a.setReadDeadline(Date.now() + 30);
      assertDeadlineExceeded(await rejectionOf(a.readFrom(new Uint8Array(8))), 'read');
      a.setReadDeadline(0);
      const pending = a.readFrom(new Uint8Array(8));
      a.close();
      assertErrClosed(await rejectionOf(pending), 'read');
      assertErrClosed(await rejectionOf(a.writeTo('x', '127.0.0.1:9')), 'write');
    });

    it('speaks unixgram between two named sockets', async function () {
      skipIf(this, onWindows, 'Unix sockets: POSIX only in muxnet');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'muxnet-dgram-'));
      try {
        const a = res.add(listenPacket('unixgram', path.join(dir, 'a'), cfg.options));
        const b = res.add(listenPacket('unixgram', path.join(dir, 'b'), cfg.options));
        await b.writeTo(pattern(3000), path.join(dir, 'a'));
        const buf = new Uint8Array(4096);
        const d = await a.readFrom(buf);
        assert.equal(d.n, 3000);
        assert.equal(d.addr.path, path.join(dir, 'b'));
        assertBytesEqual(buf.subarray(0, d.n), pattern(3000));
      } finally {
        await res.closeAll();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('sends to a broadcast address only after setBroadcast(true)', async () => {
      const a = res.add(listenPacket('udp4', ':0', cfg.options));
      const b = udp();
      const to = `127.255.255.255:${a.localAddr().port}`;
      assertCode(await rejectionOf(b.writeTo('x', to)), 'write', 'EACCES');
      b.setBroadcast(true);
      await b.writeTo('broadcast', to);
      const buf = new Uint8Array(16);
      const d = await withTimeout(a.readFrom(buf), 10_000, 'the broadcast datagram');
      assert.equal(Buffer.from(buf.subarray(0, d.n)).toString(), 'broadcast');
    });

    it('receives a multicast group after joinGroup, and no more after leaveGroup', async () => {
      const group = '239.255.77.77';
      const member = res.add(listenPacket('udp4', ':0', cfg.options));
      member.joinGroup(group, '127.0.0.1');
      const sender = udp();
      sender.setMulticastInterface('127.0.0.1');
      sender.setMulticastTTL(0);
      sender.setMulticastLoopback(true);
      const to = `${group}:${member.localAddr().port}`;
      await sender.writeTo('to the group', to);
      const buf = new Uint8Array(32);
      const d = await withTimeout(member.readFrom(buf), 10_000, 'the multicast datagram');
      assert.equal(Buffer.from(buf.subarray(0, d.n)).toString(), 'to the group');
      member.leaveGroup(group, '127.0.0.1');
      await sender.writeTo('gone', to);
      // A datagram sent to the member's unicast address arrives; the group one does not.
      await sender.writeTo('direct', `127.0.0.1:${member.localAddr().port}`);
      const next = await withTimeout(member.readFrom(buf), 10_000, 'the unicast datagram');
      assert.equal(Buffer.from(buf.subarray(0, next.n)).toString(), 'direct');
    });

    it('works over IPv6 loopback', async function () {
      let a: PacketConn;
      try {
        a = res.add(listenPacket('udp6', '[::1]:0', cfg.options));
      } catch (err) {
        if ((err as OpError).code === 'EADDRNOTAVAIL' || (err as OpError).code === 'EAFNOSUPPORT') this.skip();
        throw err;
      }
      const b = res.add(listenPacket('udp6', '[::1]:0', cfg.options));
      await b.writeTo('six', a.localAddr());
      const buf = new Uint8Array(8);
      const d = await a.readFrom(buf);
      assert.equal(d.addr.ip, '::1');
      assert.equal(String(d.addr), `[::1]:${b.localAddr().port}`);
    });
  });
}

describe('packet conn arguments', () => {
  it('names the bad argument and leaks no socket', async () => {
    const before = socketFds();
    assertArgError(thrownBy(() => listenPacket('udpx' as never, '127.0.0.1:0')), /network/);
    assertArgError(thrownBy(() => listenPacket('udp', 'nohost')), /address/);
    const a = listenPacket('udp', '127.0.0.1:0');
    try {
      assertArgError(await rejectionOf(a.writeTo('x', 'example.com:53')), /addr/);
      assertArgError(await rejectionOf(a.writeTo('x', '127.0.0.1:0')), /addr/);
      assertArgError(await rejectionOf(a.writeTo(42 as never, '127.0.0.1:9')), /data/);
      assertArgError(await rejectionOf(a.readBatch([])), /bufs/);
      assertArgError(await rejectionOf(a.writeBatch([{ data: Buffer.from('a'), addr: '127.0.0.1:9' }, { data: Buffer.from('b') }])), /datagrams\[1\]\.addr/);
      assertArgError(await rejectionOf(a.read(new Uint8Array(1))), /not connected/);
      assertArgError(thrownBy(() => a.joinGroup('not-an-ip')), /group/);
      assertArgError(thrownBy(() => a.setMulticastTTL(300)), /hops/);
      assertCode(thrownBy(() => a.joinGroup('239.1.2.3', 'lo0-not-an-ip')), 'set', 'EINVAL');
    } finally {
      a.close();
    }
    const after = socketFds();
    if (before !== null && after !== null) assert.deepEqual([...after].filter((fd) => !before.has(fd)), []);
  });
});
