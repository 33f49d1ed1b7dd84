// conn.info() (TCP_INFO), connections() and stats(): what monitoring reads about live sockets.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { backendCapabilities, connections, dial, listen, listenPacket, stats } from 'muxnet';
import type { Conn, LoopStats } from 'muxnet';
import { loopConfigs, type LoopConfig } from './helpers/configs';
import { assertErrClosed, rejectionOf, thrownBy } from './helpers/assert-errors';
import { readExactly, readToEnd } from './helpers/io';
import { pattern } from './helpers/pattern';
import { connectPair } from './helpers/servers';
import { Resources, sleep } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

/** Polls `f` (at most 200 times, 10 ms apart) until it returns true. */
async function eventually(f: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !f(); i++) await sleep(10);
  assert.ok(f(), `never: ${what}`);
}

function loopStats(cfg: LoopConfig): LoopStats {
  const trigger = cfg.options.trigger ?? 'level';
  const mode = cfg.options.mode ?? (backendCapabilities(cfg.options.backend).pollable ? 'inline' : 'thread');
  const found = stats().find((s) => s.backend === cfg.options.backend && s.trigger === trigger && s.mode === mode);
  assert.ok(found, `no stats for ${cfg.name}: ${JSON.stringify(stats())}`);
  return found;
}

for (const cfg of loopConfigs()) {
  describe(`socket info [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('reports an established TCP connection: state, rtt, buffers, and the bytes moved', async function () {
      skipIf(this, onWindows, 'TCP_INFO: muxnet reports no TCP state on Windows');
      const pair = res.add(await connectPair(cfg.options));
      const data = pattern(100_000);
      await Promise.all([pair.client.write(data), readExactly(pair.server, data.length)]);
      const c = pair.client.info();
      const s = pair.server.info();
      assert.equal(c.kind, 'conn');
      assert.equal(c.state, 'ESTABLISHED');
      assert.equal(c.network, 'tcp');
      assert.equal(c.backend, pair.client.backend);
      assert.equal(c.local, String(pair.client.localAddr()));
      assert.equal(c.remote, String(pair.ln.addr()));
      assert.equal(c.bytesWritten, data.length);
      assert.equal(c.bytesRead, 0);
      assert.equal(s.bytesRead, data.length);
      assert.ok(c.readBuffer > 0 && c.writeBuffer > 0, `buffers ${c.readBuffer}/${c.writeBuffer}`);
      assert.ok(c.age >= 0);
      assert.ok(c.tcp !== undefined, 'TCP_INFO missing');
      assert.equal(c.tcp.state, 'ESTABLISHED');
      assert.ok(Number.isFinite(c.tcp.rtt) && c.tcp.rtt >= 0, `rtt ${c.tcp.rtt}`);
      assert.ok(c.tcp.congestionWindow > 0);
      // Where the kernel reports them, its own counters agree with what muxnet moved.
      if (Number.isFinite(s.tcp!.bytesReceived)) assert.ok(s.tcp!.bytesReceived >= data.length);
      if (Number.isFinite(c.tcp.bytesAcked)) assert.ok(c.tcp.bytesAcked >= data.length);
    });

    it('follows the TCP states of a close: CLOSE_WAIT on the side left open, FIN_WAIT2 on the other', async function () {
      skipIf(this, onWindows, 'TCP_INFO: muxnet reports no TCP state on Windows');
      const pair = res.add(await connectPair(cfg.options));
      pair.server.closeWrite();
      assert.equal((await readToEnd(pair.client)).length, 0);
      assert.equal(pair.client.info().state, 'CLOSE_WAIT');
      await eventually(() => pair.server.info().state === 'FIN_WAIT2', 'FIN_WAIT2 after the peer acknowledged our FIN');
    });

    it('throws ErrClosed from info() after close()', async () => {
      const pair = res.add(await connectPair(cfg.options));
      pair.client.close();
      assertErrClosed(thrownBy(() => pair.client.info()), 'info');
    });

    it('lists live listeners and connections in connections(), and forgets closed ones', async () => {
      const pair = res.add(await connectPair(cfg.options));
      const mine = (): ReturnType<typeof connections> => connections().filter(
        (x) => x.local === String(pair.ln.addr()) || x.remote === String(pair.ln.addr()));
      const listed = mine();
      const listener = listed.find((x) => x.kind === 'listener');
      assert.ok(listener, 'listener not listed');
      assert.equal(listener.state, 'LISTEN');
      assert.equal(listener.remote, '');
      const client = listed.find((x) => x.kind === 'conn' && x.local === String(pair.client.localAddr()));
      const server = listed.find((x) => x.kind === 'conn' && x.remote === String(pair.client.localAddr()));
      assert.ok(client && server, `both ends listed: ${JSON.stringify(listed)}`);
      // Without TCP_INFO (Windows) a connection's state is 'CONNECTED', as a Unix socket's.
      assert.equal(client.state, onWindows ? 'CONNECTED' : 'ESTABLISHED');
      assert.equal(client.backend, pair.client.backend);
      pair.close();
      assert.deepEqual(mine(), []);
    });

    it('counts accepted and dialed connections, bytes and errors by code in stats()', async () => {
      const before = loopStats(cfg);
      const pair = res.add(await connectPair(cfg.options));
      await Promise.all([pair.client.write(pattern(1000)), readExactly(pair.server, 1000)]);
      pair.client.setReadDeadline(Date.now() + 1);
      await rejectionOf(pair.client.read(new Uint8Array(1)));
      const after = loopStats(cfg);
      assert.equal(after.accepted - before.accepted, 1);
      assert.equal(after.dialed - before.dialed, 1);
      assert.equal(after.bytesWritten - before.bytesWritten, 1000);
      assert.equal(after.bytesRead - before.bytesRead, 1000);
      assert.equal((after.errors.ETIMEDOUT ?? 0) - (before.errors.ETIMEDOUT ?? 0), 1);
      assert.ok(after.connections >= 2 && after.listeners >= 1);
      pair.close();
      assert.equal(loopStats(cfg).connections, after.connections - 2);
    });

    it('counts a datagram socket and an onData connection as connections in stats(), not as listeners', async () => {
      const before = loopStats(cfg);
      const pc = res.add(listenPacket('udp', '127.0.0.1:0', cfg.options));
      const pair = res.add(await connectPair(cfg.options));
      pair.server.onData(() => {});
      const during = loopStats(cfg);
      assert.equal(during.listeners - before.listeners, 1, 'only the pair\'s listener');
      assert.equal(during.connections - before.connections, 3, 'the datagram socket and both ends of the pair');
      pc.close();
      pair.close();
      const after = loopStats(cfg);
      assert.equal(after.listeners, before.listeners);
      assert.equal(after.connections, before.connections);
    });

    it('counts a read deadline once when the read starts after it passed and its timer fires later', async () => {
      const pair = res.add(await connectPair(cfg.options));
      const before = loopStats(cfg).errors.ETIMEDOUT ?? 0;
      pair.client.setReadDeadline(Date.now() + 20);
      // Block the event loop past the deadline: its timer event cannot be delivered yet.
      const until = Date.now() + 40;
      while (Date.now() < until) { /* spin */ }
      await rejectionOf(pair.client.read(new Uint8Array(1)));
      await sleep(60);  // the timer event arrives with no read waiting
      assert.equal((loopStats(cfg).errors.ETIMEDOUT ?? 0) - before, 1);
    });

    it('reports a Unix connection without TCP_INFO', async function () {
      skipIf(this, onWindows, 'Unix sockets: POSIX only in muxnet');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'muxnet-info-'));
      try {
        const file = path.join(dir, 'i.sock');
        const ln = res.add(listen('unix', file, cfg.options));
        const [server, client]: Conn[] = await Promise.all([ln.accept(), dial('unix', file, cfg.options)]);
        res.add(server);
        res.add(client);
        await Promise.all([client.write('abc'), readExactly(server, 3)]);
        const info = server.info();
        assert.equal(info.network, 'unix');
        assert.equal(info.state, 'CONNECTED');
        assert.equal(info.local, file);
        assert.equal(info.bytesRead, 3);
        assert.equal(info.tcp, undefined);
        assert.equal(connections().find((x) => x.kind === 'listener' && x.local === file)?.state, 'LISTEN');
      } finally {
        await res.closeAll();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
