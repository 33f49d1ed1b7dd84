// Addr: network/ip/port fields and "host:port" strings, IPv6 in brackets.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { Addr, dial, listen } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { readExactly } from './helpers/io';
import { Resources, withTimeout } from './helpers/util';

/** Whether this machine can listen on ::1 (containers sometimes have IPv6 off). */
async function ipv6LoopbackWorks(): Promise<boolean> {
  const srv = net.createServer();
  return new Promise((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(0, '::1', () => srv.close(() => resolve(true)));
  });
}

for (const cfg of loopConfigs()) {
  describe(`addr format [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('formats an IPv4 address as ip:port with network tcp', () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const a = ln.addr();
      assert.ok(a instanceof Addr);
      assert.equal(a.network, 'tcp');
      assert.equal(a.ip, '127.0.0.1');
      assert.equal(a.toString(), `127.0.0.1:${a.port}`);
      assert.equal(`${a}`, `127.0.0.1:${a.port}`);
    });

    it('listens and dials with tcp4', async () => {
      const ln = res.add(listen('tcp4', '127.0.0.1:0', cfg.options));
      const [s, c] = await withTimeout(
        Promise.all([ln.accept(), dial('tcp4', ln.addr().toString(), cfg.options)]),
        5000,
        'tcp4 connect',
      );
      res.add(s);
      res.add(c);
      assert.equal(c.remoteAddr().ip, '127.0.0.1');
    });

    describe('IPv6', () => {
      before(async function () {
        if (!(await ipv6LoopbackWorks())) this.skip();
      });

      it('formats an IPv6 address as [ip]:port', () => {
        const ln = res.add(listen('tcp6', '[::1]:0', cfg.options));
        const a = ln.addr();
        assert.equal(a.ip, '::1');
        assert.equal(a.toString(), `[::1]:${a.port}`);
      });

      it('connects over ::1 with tcp and tcp6 and echoes', async () => {
        for (const network of ['tcp', 'tcp6'] as const) {
          const ln = res.add(listen(network, '[::1]:0', cfg.options));
          const [s, c] = await withTimeout(
            Promise.all([ln.accept(), dial(network, ln.addr().toString(), cfg.options)]),
            5000,
            `${network} connect to ::1`,
          );
          res.add(s);
          res.add(c);
          assert.equal(c.remoteAddr().toString(), ln.addr().toString());
          assert.equal(s.remoteAddr().ip, '::1');
          assert.equal(s.remoteAddr().toString(), c.localAddr().toString());
          await c.write('v6');
          assert.equal(Buffer.from(await withTimeout(readExactly(s, 2), 5000, 'read')).toString(), 'v6');
        }
      });
    });
  });
}
