// Addresses are cached when a connection is made: remoteAddr() after a reset and after close(), and errors that name both ends.
import assert from 'node:assert/strict';
import { OpError, dial, listen } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertArgError, rejectionOf, thrownBy } from './helpers/assert-errors';
import { connectPair } from './helpers/servers';
import { Resources, describeError, withTimeout } from './helpers/util';
import { skipIf, underWine, wineResetIsEof } from './helpers/platform';

for (const cfg of loopConfigs()) {
  describe(`conn addresses cached [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('keeps remoteAddr() after the peer resets, and the read error names both ends', async function () {
      skipIf(this, underWine(), wineResetIsEof);
      const pair = res.add(await connectPair(cfg.options));
      const server = String(pair.server.localAddr());
      const client = String(pair.client.localAddr());
      pair.client.setLinger(0);
      pair.client.close();  // RST
      const err = await withTimeout(rejectionOf(pair.server.read(new Uint8Array(16))), 10_000, 'the reset');
      assert.ok(err instanceof OpError, describeError(err));
      assert.equal(err.code, 'ECONNRESET');
      assert.equal(err.message.startsWith(`read tcp ${server}->${client}: `), true, err.message);
      assert.equal(String(err.source), server);
      assert.equal(String(err.addr), client);
      assert.equal(String(pair.server.remoteAddr()), client);
    });

    it('gives each connection of a wildcard listener its own local and remote address', async () => {
      // Connections share address objects where they are equal: alternating local IPs must
      // still come out right, and a shared address cannot be changed through one of them.
      const ln = res.add(listen('tcp4', '0.0.0.0:0', cfg.options));
      const port = ln.addr().port;
      for (const ip of ['127.0.0.1', '127.0.0.2', '127.0.0.2', '127.0.0.1']) {
        const [server, client] = await Promise.all([ln.accept(), dial('tcp4', `${ip}:${port}`, cfg.options)]);
        res.add(server);
        res.add(client);
        assert.equal(String(server.localAddr()), `${ip}:${port}`);
        assert.equal(String(server.remoteAddr()), String(client.localAddr()));
        assert.throws(() => { (server.localAddr() as { port: number }).port = 1; }, TypeError);
        assert.equal(server.localAddr().port, port);
      }
    });

    it('returns both addresses after close(), as Go does (finally { log(conn.remoteAddr()) })', async () => {
      const pair = res.add(await connectPair(cfg.options));
      const local = String(pair.client.localAddr());
      pair.client.close();
      pair.server.close();
      assert.equal(String(pair.client.localAddr()), local);
      assert.equal(String(pair.client.remoteAddr()), String(pair.ln.addr()));
      assert.equal(String(pair.server.remoteAddr()), local);
      // Errors after close name both ends too.
      const err = await rejectionOf(pair.client.write('x'));
      assert.ok(err instanceof OpError);
      assert.equal(err.message, `write tcp ${local}->${pair.ln.addr()}: use of closed network connection`);
    });

    it('the dialing side caches both ends when the dial completes', async function () {
      skipIf(this, underWine(), wineResetIsEof);
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const [c, s] = await Promise.all([dial('tcp', String(ln.addr()), cfg.options), ln.accept()]);
      res.add(c);
      res.add(s);
      s.setLinger(0);
      s.close();
      await rejectionOf(c.read(new Uint8Array(4)));
      assert.equal(String(c.remoteAddr()), String(ln.addr()));
      assert.equal(String(c.localAddr()), String(s.remoteAddr()));
    });

    it('serve()\'s default onError names the peer, even when it has reset', async function () {
      skipIf(this, underWine(), wineResetIsEof);
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const printed: string[] = [];
      const original = console.error;
      let done!: () => void;
      const reported = new Promise<void>((resolve) => { done = resolve; });
      console.error = (...args: unknown[]) => { printed.push(args.map(String).join(' ')); done(); };
      try {
        const serving = ln.serve(async (conn) => {
          await conn.read(new Uint8Array(4));  // rejects with the reset
        });
        const c = await dial('tcp', String(ln.addr()), cfg.options);
        const client = String(c.localAddr());
        c.setLinger(0);
        c.close();
        await withTimeout(reported, 10_000, 'the handler error');
        assert.match(printed[0], new RegExp(`handler for ${client.replace(/\./g, '\\.')} failed`));
        assert.match(printed[0], new RegExp(`->${client.replace(/\./g, '\\.')}: `));
        ln.close();
        await serving;
      } finally {
        console.error = original;
      }
    });
  });
}

describe('argument errors quote what they got', () => {
  it('deadlines, buffers, options and callbacks', async () => {
    const pair = await connectPair();
    try {
      const cases: [() => unknown, RegExp][] = [
        [() => pair.client.setDeadline('tomorrow' as never), /deadline: .*got "tomorrow"/],
        [() => pair.client.setReadBuffer(null as never), /bytes: .*got null/],
        [() => pair.client.setNoDelay('yes' as never), /on: .*got "yes"/],
        [() => pair.client.setKeepAlive(true, null as never), /options: .*got null/],
        [() => pair.client.onData(undefined as never), /onData: .*got undefined/],
        [() => listen('tcp', 42 as never), /address: .*got 42/],
      ];
      for (const [fn, re] of cases) assertArgError(thrownBy(fn), re);
      assertArgError(await rejectionOf(pair.client.read(null as never)), /buf: .*got null/);
      assertArgError(await rejectionOf(pair.client.write(7 as never)), /data: .*got 7/);
      assertArgError(await rejectionOf(dial('tcp', '127.0.0.1:1', { timeout: 'soon' } as never)), /options\.timeout: .*got "soon"/);
    } finally {
      pair.close();
    }
  });
});
