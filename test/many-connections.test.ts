// 1,000 connections open at once, all echoing concurrently.
import assert from 'node:assert/strict';
import { dial } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { openFileLimit } from './helpers/fds';
import { roundTrip } from './helpers/io';
import { pattern } from './helpers/pattern';
import { startEcho } from './helpers/servers';
import { Resources, assertBytesEqual, withTimeout } from './helpers/util';

const kConns = 1000;

for (const cfg of loopConfigs()) {
  describe(`many connections [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('echoes on 1,000 connections open at the same time', async function () {
      this.timeout(60_000);
      // Both ends are in this process: two fds per connection.
      assert.ok(openFileLimit() > 2 * kConns + 200, `open-file limit ${openFileLimit()} is too low; raise ulimit -n`);
      const srv = res.add(startEcho({ ...cfg.options, backlog: 1024 }));
      const conns: Conn[] = [];
      // Dialed in waves of 100 so a burst never overflows the accept queue.
      for (let wave = 0; wave < kConns / 100; wave++) {
        const batch = await withTimeout(
          Promise.all(Array.from({ length: 100 }, () => dial('tcp', srv.address, cfg.options))),
          20_000,
          `dial wave ${wave}`,
        );
        for (const c of batch) conns.push(res.add(c));
      }
      // Every message differs, so a reply delivered to the wrong connection shows.
      const echoed = await withTimeout(
        Promise.all(conns.map((c, i) => roundTrip(c, pattern(256, i * 256)))),
        30_000,
        'echo on 1,000 connections',
      );
      echoed.forEach((e, i) => assertBytesEqual(e, pattern(256, i * 256), `conn ${i}`));
      assert.equal(srv.accepted(), kConns);
      assert.equal(srv.conns.size, kConns, 'the server is not holding every connection open at once');
      assert.equal(new Set(conns.map((c) => c.localAddr().port)).size, kConns);
      assert.deepEqual(srv.errors, []);
    });
  });
}
