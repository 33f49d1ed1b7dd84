// Fault: 5,000 connects at once to a listener with a backlog of 16. The accept queue
// overflows; each connection either echoes a message or fails with a clean OpError within
// its time window, nothing leaks, and the listener serves a new connection afterwards.
import assert from 'node:assert/strict';
import { OpError, dial } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { openFileLimit, socketFds, socketsLeftOpen } from './helpers/fds';
import { roundTrip } from './helpers/io';
import { pattern } from './helpers/pattern';
import { startEcho } from './helpers/servers';
import { underWine } from './helpers/platform';
import { Resources, assertBytesEqual, describeError, withTimeout } from './helpers/util';

// Under wine, wineserver carries every socket call of node.exe, one at a time: 5,000 dials at
// once did not settle there (seen with wine 8 on 2026-12-01: on afd wineserver spun at 100% CPU
// for minutes with node.exe idle; on select every dial timed out in one run and node.exe did
// not exit after the suite in another). 500 still overflow a backlog of 16 thirty times over.
const kConnects = underWine() ? 500 : 5000;
const kBacklog = 16;
// Each connection's whole attempt (dial and echo) has this long. With the accept queue full
// the kernel drops SYNs and handshake ACKs, so some dials only complete after a SYN
// retransmission (1 s, then 3 s) and some connections the client sees as established are
// still not accepted when the window ends: those fail with a deadline, which is the clean
// failure asked for here.
const kWindowMs = underWine() ? 20_000 : 6000;
// What a connection may fail with: the dial or echo timed out, or the kernel gave up on it.
const kCleanCodes = ['ETIMEDOUT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE'];

type Outcome = { ok: true } | { ok: false; err: unknown };

/** Dials, echoes 8 bytes unique to `i` with the deadline `until`, and closes. */
async function attempt(address: string, options: object, i: number, until: number): Promise<Outcome> {
  let c: Conn | undefined;
  try {
    c = await dial('tcp', address, { ...options, timeout: Math.max(1, until - Date.now()) });
    c.setDeadline(until);
    const message = pattern(8, i * 8);
    assertBytesEqual(await roundTrip(c, message), message, `connection ${i}`);
    return { ok: true };
  } catch (err) {
    return { ok: false, err };
  } finally {
    c?.close();
  }
}

for (const cfg of loopConfigs()) {
  describe(`fault: connect burst over a small backlog [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it(`${kConnects} simultaneous dials each echo or fail with an OpError in time; no leak; the listener serves on`, async function () {
      this.timeout(kWindowMs + 30_000);
      // Both ends live in this process: two descriptors per connection.
      assert.ok(openFileLimit() > 2 * kConnects + 200, `open-file limit ${openFileLimit()} is too low; raise ulimit -n`);
      const before = socketFds();
      const srv = res.add(startEcho({ ...cfg.options, backlog: kBacklog }));
      const until = Date.now() + kWindowMs;
      const outcomes = await withTimeout(
        Promise.all(Array.from({ length: kConnects }, (_, i) => attempt(srv.address, cfg.options, i, until))),
        kWindowMs + 10_000,
        'the burst to settle',
      );

      let echoed = 0;
      const codes = new Map<string, number>();
      for (const o of outcomes) {
        if (o.ok) {
          echoed++;
          continue;
        }
        // Wrong bytes, or anything that is not an OpError with a clean code, fails here.
        assert.ok(o.err instanceof OpError, `a connection failed with ${describeError(o.err)}`);
        assert.ok(['dial', 'read', 'write'].includes(o.err.op), `op ${o.err.op}`);
        assert.ok(kCleanCodes.includes(o.err.code), `a connection failed with ${describeError(o.err)}`);
        codes.set(`${o.err.op} ${o.err.code}`, (codes.get(`${o.err.op} ${o.err.code}`) ?? 0) + 1);
      }
      assert.ok(echoed > kBacklog, `only ${echoed} of ${kConnects} connections echoed (${[...codes].join(', ')})`);
      assert.deepEqual(srv.errors, [], 'the echo server failed on a connection');

      // The listener still accepts and serves once the burst is over.
      const fresh = res.add(await withTimeout(dial('tcp', srv.address, cfg.options), 10_000, 'dial after the burst'));
      assertBytesEqual(await withTimeout(roundTrip(fresh, pattern(4096, 1)), 10_000, 'echo after the burst'), pattern(4096, 1));
      fresh.close();

      await srv.close();
      if (before !== null) assert.deepEqual(await socketsLeftOpen(before, 5000), [], 'sockets left open after the burst');
    });
  });
}
