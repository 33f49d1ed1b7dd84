// Listener: accept() and for-await hand over each dialed connection, with matching addresses.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { dial, listen } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { socketFds } from './helpers/fds';
import { readExactly } from './helpers/io';
import { Resources, observe, sleep, withTimeout } from './helpers/util';

for (const cfg of loopConfigs()) {
  describe(`listener accept [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('picks a free port for port 0', () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const a = ln.addr();
      assert.ok(Number.isInteger(a.port) && a.port > 0 && a.port < 65536, `port ${a.port}`);
      assert.equal(a.ip, '127.0.0.1');
      assert.equal(ln.backend, cfg.options.backend);
    });

    it('accepts a connection whose addresses mirror the dialed one', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const [s, c] = await withTimeout(
        Promise.all([ln.accept(), dial('tcp', ln.addr().toString(), cfg.options)]),
        5000,
        'accept + dial',
      );
      res.add(s);
      res.add(c);
      assert.equal(c.remoteAddr().toString(), ln.addr().toString());
      assert.equal(s.localAddr().toString(), ln.addr().toString());
      assert.equal(s.remoteAddr().toString(), c.localAddr().toString());
      assert.equal(c.localAddr().ip, '127.0.0.1');
      assert.notEqual(c.localAddr().port, ln.addr().port);
      assert.equal(s.backend, cfg.options.backend);
      assert.equal(c.backend, cfg.options.backend);
    });

    it('resolves one pending accept per connection when several are waiting', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const accepts = [0, 1, 2].map(() => observe(ln.accept()));
      await sleep(20);
      assert.ok(accepts.every((a) => !a.settled), 'accept settled with no client');
      const clients: Conn[] = [];
      for (let i = 0; i < 3; i++) clients.push(res.add(await dial('tcp', ln.addr().toString(), cfg.options)));
      const outcomes = await withTimeout(Promise.all(accepts.map((a) => a.promise)), 5000, 'three accepts');
      const servers = outcomes.map((o) => {
        assert.equal(o.error, undefined, `accept rejected: ${String(o.error)}`);
        return res.add(o.value as Conn);
      });
      const serverPeers = new Set(servers.map((s) => s.remoteAddr().toString()));
      const clientLocals = new Set(clients.map((c) => c.localAddr().toString()));
      assert.equal(serverPeers.size, 3, 'the same connection was handed out twice');
      assert.deepEqual(serverPeers, clientLocals);
    });

    it('queues connections dialed before accept() is called', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', { ...cfg.options, backlog: 16 }));
      const clients: Conn[] = [];
      for (let i = 0; i < 4; i++) clients.push(res.add(await dial('tcp', ln.addr().toString(), cfg.options)));
      for (let i = 0; i < 4; i++) {
        await clients[i].write(String(i));
      }
      const seen: string[] = [];
      for (let i = 0; i < 4; i++) {
        const s = res.add(await withTimeout(ln.accept(), 5000, `accept ${i}`));
        seen.push(Buffer.from(await withTimeout(readExactly(s, 1), 5000, 'read')).toString());
      }
      assert.deepEqual(seen.sort(), ['0', '1', '2', '3']);
    });

    it('yields each connection through for await', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const got: string[] = [];
      const loop = observe((async () => {
        for await (const s of ln) {
          res.add(s);
          got.push(Buffer.from(await readExactly(s, 2)).toString());
          if (got.length === 3) break;
        }
      })());
      const msgs = ['aa', 'bb', 'cc'];
      for (let k = 0; k < msgs.length; k++) {
        const c = res.add(await dial('tcp', ln.addr().toString(), cfg.options));
        await c.write(msgs[k]);
        // One at a time, so the order of arrival is known (bounded wait: 200 x 5 ms).
        for (let i = 0; i < 200 && got.length < k + 1; i++) await sleep(5);
      }
      const o = await withTimeout(loop.promise, 5000, 'for-await over three connections');
      assert.equal(o.error, undefined, `iteration threw: ${String(o.error)}`);
      assert.deepEqual(got, ['aa', 'bb', 'cc']);
    });

    it('accepts from two listeners on the same backend independently', async () => {
      const a = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const b = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const pending = observe(a.accept());
      const [sb, cb] = await withTimeout(
        Promise.all([b.accept(), dial('tcp', b.addr().toString(), cfg.options)]),
        5000,
        'accept on b',
      );
      res.add(sb);
      res.add(cb);
      await sleep(20);
      assert.equal(pending.settled, false, 'a connection to b was accepted on a');
      res.add(await dial('tcp', a.addr().toString(), cfg.options));
      const o = await withTimeout(pending.promise, 5000, 'accept on a');
      assert.equal(o.error, undefined);
      res.add(o.value as Conn);
    });
  });
}

for (const cfg of loopConfigs()) {
  describe(`listener accept queue bound [${cfg.name}]`, () => {
    it('accepts at most 128 connections ahead of accept(); the rest wait in the kernel backlog', async function () {
      this.timeout(20_000);
      const before = socketFds();
      if (before === null) this.skip();  // needs /proc to count descriptors
      const ln = listen('tcp', '127.0.0.1:0', { ...cfg.options, backlog: 1024 });
      const peers: net.Socket[] = [];
      try {
        for (let i = 0; i < 400; i++) {
          const s = net.connect(ln.addr().port, '127.0.0.1');
          s.on('error', () => {});
          peers.push(s);
        }
        await Promise.all(peers.map((s) => new Promise((resolve) => s.once('connect', resolve))));
        const first = await withTimeout(ln.accept(), 5000, 'first accept');
        await sleep(200);
        // Our sockets now: 400 clients, the listener, and what the listener accepted.
        const accepted = socketFds()!.size - before!.size - 400 - 1;
        assert.ok(accepted >= 1 && accepted <= 129, `accepted ${accepted} connections ahead of accept()`);
        // Every one of them is still served, in turn.
        for (let i = 0; i < 399; i++) (await withTimeout(ln.accept(), 5000, `accept ${i}`)).close();
        first.close();
      } finally {
        ln.close();
        for (const s of peers) s.destroy();
      }
    });
  });
}
