// Passing live sockets over Unix connections (SCM_RIGHTS): to another process, and back into this one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Conn, Listener, PacketConn, UnixConn, dial, listen, listenPacket } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertArgError, rejectionOf } from './helpers/assert-errors';
import { socketFds } from './helpers/fds';
import { readExactly } from './helpers/io';
import { connectPair } from './helpers/servers';
import { Resources, describeError, withTimeout } from './helpers/util';
import { skipSuiteOnWindows } from './helpers/platform';

const dec = new TextDecoder();

for (const cfg of loopConfigs()) {
  describe(`unix pass handles [${cfg.name}]`, () => {
    skipSuiteOnWindows('descriptor passing over Unix sockets: POSIX only');
    const res = new Resources();
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'muxnet-pass-'));
    });
    afterEach(async () => {
      await res.closeAll();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    async function unixPair(): Promise<[UnixConn, UnixConn]> {
      const file = path.join(dir, 'ctl.sock');
      const ln = res.add(listen('unix', file, cfg.options));
      const [a, b] = await Promise.all([ln.accept(), dial('unix', file, cfg.options)]);
      res.add(a);
      res.add(b);
      // Both ends are UnixConns (accepted and dialed), and still Conns.
      assert.ok(a instanceof UnixConn && a instanceof Conn, 'accepted: a UnixConn');
      assert.ok(b instanceof UnixConn && b instanceof Conn, 'dialed: a UnixConn');
      return [a, b];
    }

    it('passes a TCP connection that keeps working on the receiving side, with data in order', async () => {
      const [a, b] = await unixPair();
      const tcp = res.add(await connectPair(cfg.options));
      await tcp.client.write('before ');
      await a.sendHandles('x', [tcp.server]);
      tcp.server.close();  // our copy: the passed one stays open
      const got = await withTimeout(b.readHandles(new Uint8Array(1)), 10_000, 'the passed handle');
      assert.ok(got !== null);
      assert.equal(got.n, 1);
      assert.equal(got.handles.length, 1);
      const taken = res.add(got.handles[0] as Conn);
      assert.ok(taken instanceof Conn);
      assert.equal(String(taken.remoteAddr()), String(tcp.client.localAddr()));
      assert.equal(dec.decode(await readExactly(taken, 7)), 'before ');
      await taken.write('answer');
      assert.equal(dec.decode(await readExactly(tcp.client, 6)), 'answer');
    });

    it('passes a listener and a UDP socket along with bytes, several at once', async () => {
      const [a, b] = await unixPair();
      const ln = listen('tcp', '127.0.0.1:0', cfg.options);
      const udp = listenPacket('udp', '127.0.0.1:0', cfg.options);
      const lnAddr = String(ln.addr());
      const udpAddr = String(udp.localAddr());
      await a.sendHandles('two sockets', [ln, udp]);
      ln.close();
      udp.close();
      const buf = new Uint8Array(64);
      const got = await withTimeout(b.readHandles(buf), 10_000, 'the passed handles');
      assert.ok(got !== null);
      assert.equal(dec.decode(buf.subarray(0, got.n)), 'two sockets');
      const [ln2, udp2] = got.handles;
      res.add(ln2);
      res.add(udp2);
      assert.ok(ln2 instanceof Listener && udp2 instanceof PacketConn, `got ${got.handles.map((h) => h.constructor.name)}`);
      assert.equal(String(ln2.addr()), lnAddr);
      const [server, client] = await Promise.all([ln2.accept(), dial('tcp', lnAddr, cfg.options)]);
      res.add(server);
      res.add(client);
      const sender = res.add(listenPacket('udp', '127.0.0.1:0', cfg.options));
      await sender.writeTo('dgram', udpAddr);
      const d = await udp2.readFrom(buf);
      assert.equal(dec.decode(buf.subarray(0, d.n)), 'dgram');
    });

    it('names bad arguments and refuses sockets of another loop', async () => {
      const [a] = await unixPair();
      assertArgError(await rejectionOf(a.sendHandles('', [a])), /data/);
      assertArgError(await rejectionOf(a.sendHandles('x', [])), /handles/);
      assertArgError(await rejectionOf(a.sendHandles('x', [{} as never])), /handles\[0\]/);
      const other = res.add(listen('tcp', '127.0.0.1:0', { backend: cfg.options.backend === 'select' ? 'poll' : 'select' }));
      assertArgError(await rejectionOf(a.sendHandles('x', [other])), /handles\[0\]: .*loop/);
      const closed = listen('tcp', '127.0.0.1:0', cfg.options);
      closed.close();
      assertArgError(await rejectionOf(a.sendHandles('x', [closed])), /handles\[0\]/);
    });
  });
}

describe('unix pass handles between processes', () => {
  skipSuiteOnWindows('descriptor passing over Unix sockets: POSIX only');
  it('hands a live TCP connection to a child process, which serves it', async function () {
    this.timeout(30_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'muxnet-pass-'));
    const before = socketFds();
    const ctlLn = listen('unix', path.join(dir, 'ctl.sock'));
    const tcpLn = listen('tcp', '127.0.0.1:0');
    const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'take-conn.js'), path.join(dir, 'ctl.sock')],
      { stdio: ['ignore', 'inherit', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const ctl = await withTimeout(ctlLn.accept(), 10_000, 'the child to connect');
      const [server, client] = await Promise.all([tcpLn.accept(), dial('tcp', String(tcpLn.addr()))]);
      await ctl.sendHandles('c', [server]);
      server.close();  // only the child holds the connection now
      await client.write('hello');
      const expected = `child ${child.pid}: hello`;
      assert.equal(dec.decode(await withTimeout(readExactly(client, expected.length), 10_000, 'the child answer')), expected);
      client.close();
      assert.equal(await withTimeout(exited, 10_000, 'the child to exit'), 0);
      ctl.close();
    } catch (err) {
      child.kill();
      throw new Error(`pass to child failed: ${describeError(err)}`);
    } finally {
      ctlLn.close();
      tcpLn.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const after = socketFds();
    if (before !== null && after !== null) assert.deepEqual([...after].filter((fd) => !before.has(fd)), []);
  });
});
