// A read deadline made to pass from a callback while the read's bytes are already in the
// same event batch: the read keeps its bytes (nothing read natively is ever lost).
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { listen } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { closableSocket, nodeConnect } from './helpers/servers';
import { Resources, withTimeout } from './helpers/util';

for (const cfg of loopConfigs()) {
  describe(`conn deadline race [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('a read whose bytes came in the same batch as a callback that expires its deadline resolves with them', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const port = ln.addr().port;
      const clientA: net.Socket = await nodeConnect(port);
      res.add(closableSocket(clientA));
      const a: Conn = res.add(await withTimeout(ln.accept(), 10_000, 'accept a'));
      const clientB: net.Socket = await nodeConnect(port);
      res.add(closableSocket(clientB));
      const b: Conn = res.add(await withTimeout(ln.accept(), 10_000, 'accept b'));
      const buf = new Uint8Array(16);
      const pending = b.read(buf);
      a.onData(() => b.setReadDeadline(Date.now() - 1));  // A's data expires B's deadline
      await new Promise((resolve) => setImmediate(resolve));  // both reads wait natively now
      clientA.write('a');
      clientB.write('b');
      // Both arrive while the loop is busy, so one wake-up finds both ready.
      const until = Date.now() + 50;
      while (Date.now() < until) { /* hold the loop */ }
      const outcome = await withTimeout(pending.then((n) => ({ n }), (err: unknown) => ({ err })), 10_000, 'b.read');
      if ('n' in outcome) {
        assert.equal(outcome.n, 1);
        assert.equal(String.fromCharCode(buf[0]), 'b');
      } else {
        // B's read had not completed when A's data came: it may time out, but then its
        // byte must still be there for the next read.
        b.setReadDeadline(0);
        const n = await withTimeout(b.read(buf), 10_000, 'b.read after the deadline');
        assert.equal(n, 1);
        assert.equal(String.fromCharCode(buf[0]), 'b');
      }
    });
  });
}
