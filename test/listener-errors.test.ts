// listen failures: address in use (muxnet or Node holding the port); reusePort sharing.
import assert from 'node:assert/strict';
import { OpError, dial, listen } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { thrownBy } from './helpers/assert-errors';
import { startNodeEcho } from './helpers/servers';
import { Resources, describeError, observe, withTimeout } from './helpers/util';

function assertAddrInUse(err: unknown, address: string): void {
  assert.ok(err instanceof OpError, `expected OpError, got ${describeError(err)}`);
  assert.equal(err.op, 'listen');
  assert.equal(err.net, 'tcp');
  assert.equal(err.code, 'EADDRINUSE');
  assert.equal(typeof err.errno, 'number');
  assert.notEqual(err.errno, 0);
  assert.equal(err.timeout(), false);
  assert.ok(err.err instanceof Error, 'OpError.err is the underlying error');
  assert.ok(err.message.includes(address), `message "${err.message}" does not name ${address}`);
}

for (const cfg of loopConfigs()) {
  describe(`listener errors [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('throws OpError EADDRINUSE for a port another muxnet listener holds', () => {
      const first = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const address = first.addr().toString();
      assertAddrInUse(thrownBy(() => res.add(listen('tcp', address, cfg.options))), address);
    });

    it('throws OpError EADDRINUSE for a port a Node net server holds', async () => {
      const node = res.add(await startNodeEcho());
      assertAddrInUse(thrownBy(() => res.add(listen('tcp', node.address, cfg.options))), node.address);
    });

    it('keeps the first listener working after a failed listen on its port', async () => {
      const first = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      thrownBy(() => res.add(listen('tcp', first.addr().toString(), cfg.options)));
      const [s, c] = await withTimeout(
        Promise.all([first.accept(), dial('tcp', first.addr().toString(), cfg.options)]),
        5000,
        'connect to the first listener',
      );
      res.add(s);
      res.add(c);
    });

    it('lets two listeners share a port with reusePort', async function () {
      if (process.platform !== 'linux') this.skip();
      const opts = { ...cfg.options, reusePort: true };
      const a = res.add(listen('tcp', '127.0.0.1:0', opts));
      const address = a.addr().toString();
      const b = res.add(listen('tcp', address, opts));
      assert.equal(b.addr().toString(), address);
      const accepts = [observe(a.accept()), observe(b.accept())];
      res.add(await dial('tcp', address, cfg.options));
      const first = await withTimeout(Promise.race(accepts.map((x) => x.promise)), 5000, 'accept on either');
      assert.equal(first.error, undefined);
      res.add(first.value as Conn);
    });
  });
}
