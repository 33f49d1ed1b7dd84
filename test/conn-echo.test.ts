// Echo through a muxnet server: sizes, strings, subarrays, ping-pong on one connection.
import assert from 'node:assert/strict';
import { dial } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { readExactly, roundTrip } from './helpers/io';
import { pattern } from './helpers/pattern';
import { startEcho, type EchoServer } from './helpers/servers';
import { Resources, assertBytesEqual, withTimeout } from './helpers/util';

for (const cfg of loopConfigs()) {
  describe(`conn echo [${cfg.name}]`, () => {
    const res = new Resources();
    let srv: EchoServer;

    beforeEach(() => {
      srv = res.add(startEcho(cfg.options));
    });
    afterEach(async () => {
      await res.closeAll();
      assert.deepEqual(srv.errors, [], 'echo server errors');
    });

    for (const size of [1, 100, 4096, 65536, 1024 * 1024 + 7]) {
      it(`echoes a ${size}-byte message`, async function () {
        this.timeout(20_000);
        const c = res.add(await dial('tcp', srv.address, cfg.options));
        const data = pattern(size, size);
        const echoed = await withTimeout(roundTrip(c, data), 15_000, `echo of ${size} bytes`);
        assertBytesEqual(echoed, data, `echo of ${size} bytes`);
      });
    }

    it('echoes a string written as UTF-8', async () => {
      const c = res.add(await dial('tcp', srv.address, cfg.options));
      const text = 'héllo, wörld ✓';
      const expected = Buffer.from(text, 'utf8');
      await c.write(text);
      const echoed = await withTimeout(readExactly(c, expected.length), 5000, 'string echo');
      assertBytesEqual(echoed, expected);
    });

    it('writes only the bytes of a subarray view', async () => {
      const c = res.add(await dial('tcp', srv.address, cfg.options));
      const whole = pattern(1000);
      const view = whole.subarray(123, 456);
      const echoed = await withTimeout(roundTrip(c, view), 5000, 'subarray echo');
      assertBytesEqual(echoed, whole.slice(123, 456));
    });

    it('answers 200 request/response round trips on one connection in order', async function () {
      this.timeout(20_000);
      const c = res.add(await dial('tcp', srv.address, cfg.options));
      // Each message differs, so a stale or repeated reply would not match.
      for (let i = 0; i < 200; i++) {
        const msg = pattern(64, i * 64);
        const echoed = await withTimeout(roundTrip(c, msg), 5000, `round trip ${i}`);
        assertBytesEqual(echoed, msg, `round trip ${i}`);
      }
    });

    it('keeps several connections to one server apart', async function () {
      this.timeout(20_000);
      const conns = await Promise.all(
        Array.from({ length: 8 }, async () => res.add(await dial('tcp', srv.address, cfg.options))),
      );
      const echoed = await withTimeout(
        Promise.all(conns.map((c, i) => roundTrip(c, pattern(32 * 1024, i * 1000)))),
        15_000,
        'concurrent echoes',
      );
      echoed.forEach((e, i) => assertBytesEqual(e, pattern(32 * 1024, i * 1000), `conn ${i}`));
    });

    it('delivers back-to-back writes as one ordered stream', async () => {
      const c = res.add(await dial('tcp', srv.address, cfg.options));
      const whole = pattern(30_000);
      // Not awaited one by one: queued writes must go out in call order.
      const writes = [0, 10_000, 20_000].map((off) => c.write(whole.subarray(off, off + 10_000)));
      const [echoed] = await withTimeout(
        Promise.all([readExactly(c, whole.length), ...writes]),
        10_000,
        'three queued writes',
      );
      assertBytesEqual(echoed as Uint8Array, whole);
    });

    it('reports the backend it runs on', async () => {
      const c = res.add(await dial('tcp', srv.address, cfg.options));
      assert.equal(c.backend, cfg.options.backend);
      assert.equal(srv.ln.backend, cfg.options.backend);
    });
  });
}
