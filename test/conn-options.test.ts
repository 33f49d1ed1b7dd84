// Socket options on an open conn: they apply without error and the conn keeps working.
import assert from 'node:assert/strict';
import { dial } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { roundTrip } from './helpers/io';
import { pattern } from './helpers/pattern';
import { connectPair, startEcho } from './helpers/servers';
import { Resources, assertBytesEqual, withTimeout } from './helpers/util';
import { skipIf, underWine, wineResetIsEof } from './helpers/platform';

for (const cfg of loopConfigs()) {
  describe(`conn options [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('accepts setNoDelay, setKeepAlive, setLinger and buffer sizes, and still echoes', async () => {
      const srv = res.add(startEcho(cfg.options));
      const c = res.add(await dial('tcp', srv.address, cfg.options));
      c.setNoDelay(true);
      c.setNoDelay(false);
      c.setKeepAlive(true, { idle: 10_000, interval: 5_000, count: 3 });
      c.setKeepAlive(true);
      c.setKeepAlive(false);
      c.setLinger(5);
      c.setLinger(-1);
      c.setReadBuffer(128 * 1024);
      c.setWriteBuffer(128 * 1024);
      const data = pattern(300_000);
      assertBytesEqual(await withTimeout(roundTrip(c, data), 10_000, 'echo after options'), data);
    });

    it('setLinger(0) makes close() reset the connection instead of an orderly EOF', async function () {
      skipIf(this, underWine(), wineResetIsEof);
      const pair = res.add(await connectPair(cfg.options));
      pair.client.setLinger(0);
      pair.client.close();
      const outcome = await withTimeout(
        pair.server.read(new Uint8Array(4)).then(
          (n) => ({ n, e: undefined as unknown }),
          (e: unknown) => ({ n: undefined, e }),
        ),
        5000,
        'server read after client reset',
      );
      assert.notEqual(outcome.e, undefined, `the peer's read resolved ${outcome.n} instead of seeing a reset`);
      assert.equal((outcome.e as { code?: string }).code, 'ECONNRESET');
    });
  });
}
