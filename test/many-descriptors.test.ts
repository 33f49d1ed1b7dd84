// Sockets whose fd numbers are above 1024 (FD_SETSIZE): every backend, select included.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { dial } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { fillFdsBelow, openFileLimit, socketFds } from './helpers/fds';
import { roundTrip } from './helpers/io';
import { pattern } from './helpers/pattern';
import { startEcho } from './helpers/servers';
import { Resources, assertBytesEqual, withTimeout } from './helpers/util';
import { skipSuiteOnWindows } from './helpers/platform';

const kAbove = 1100; // past FD_SETSIZE (1024), with margin

describe('many descriptors (fd numbers above 1024)', () => {
  skipSuiteOnWindows("descriptor numbers above FD_SETSIZE are POSIX's; Windows sockets are handles");
  const held: number[] = [];
  before(function () {
    if (openFileLimit() < kAbove + 500) {
      throw new Error(`the open-file limit ${openFileLimit()} is too low for this test; raise ulimit -n`);
    }
    fillFdsBelow(kAbove, held);
  });
  after(() => {
    for (const fd of held.splice(0)) fs.closeSync(fd);
  });

  for (const cfg of loopConfigs()) {
    describe(`[${cfg.name}]`, () => {
      const res = new Resources();
      afterEach(() => res.closeAll());

      it('listens, dials and echoes on 20 connections with fds above 1024', async function () {
        this.timeout(30_000);
        // Fills any fd freed since (by earlier tests' closes) so new sockets land high.
        fillFdsBelow(kAbove, held);
        const before = socketFds();
        const srv = res.add(startEcho(cfg.options));
        const conns: Conn[] = [];
        for (let i = 0; i < 20; i++) conns.push(res.add(await withTimeout(dial('tcp', srv.address, cfg.options), 5000, 'dial')));
        const echoed = await withTimeout(
          Promise.all(conns.map((c, i) => roundTrip(c, pattern(16 * 1024, i)))),
          20_000,
          'echo on 20 connections',
        );
        echoed.forEach((e, i) => assertBytesEqual(e, pattern(16 * 1024, i), `conn ${i}`));
        if (before !== null) {
          const after = socketFds()!;
          const fresh = [...after].filter((fd) => !before.has(fd));
          // The listener, 20 dialed and 20 accepted sockets.
          assert.ok(fresh.length >= 41, `only ${fresh.length} new sockets`);
          assert.ok(fresh.some((fd) => fd > 1024), `no new socket above fd 1024: ${fresh.join(',')}`);
        }
      });
    });
  }
});
