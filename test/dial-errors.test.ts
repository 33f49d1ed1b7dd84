// dial failures: refused, timeout, AbortSignal; and what a timeout or signal must not do.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { OpError, dial, listen } from 'muxnet';
import type { Conn, Listener } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { rejectionOf } from './helpers/assert-errors';
import { roundTrip } from './helpers/io';
import { pattern } from './helpers/pattern';
import { startEcho } from './helpers/servers';
import { Resources, assertBytesEqual, describeError, observe, sleep, withTimeout } from './helpers/util';

/** A port on 127.0.0.1 with nothing listening: listened on, then closed. */
function closedPort(options: object): number {
  const ln = listen('tcp', '127.0.0.1:0', options);
  const port = ln.addr().port;
  ln.close();
  return port;
}

/** Asserts `err` is the OpError of a dial that ran out of time. */
function assertDialTimeout(err: unknown): void {
  assert.ok(err instanceof OpError, `expected OpError, got ${describeError(err)}`);
  assert.equal(err.op, 'dial');
  assert.equal(err.code, 'ETIMEDOUT');
  assert.equal(err.timeout(), true);
}

/**
 * Fills the accept queue of a listener that never accepts (backlog 1), so the next
 * connect stays in SYN_SENT: Linux drops SYNs to a full accept queue. Returns the
 * connections that got in, and the error of the first dial that did not (null if every
 * dial connected, e.g. where the kernel behaves otherwise).
 */
async function fillBacklog(ln: Listener, options: object, res: Resources): Promise<unknown> {
  for (let i = 0; i < 16; i++) {
    try {
      res.add(await dial('tcp', ln.addr().toString(), { ...options, timeout: 300 }));
    } catch (e) {
      return e;
    }
  }
  return null;
}

function abortOnOverflow(): boolean {
  try {
    return fs.readFileSync('/proc/sys/net/ipv4/tcp_abort_on_overflow', 'utf8').trim() !== '0';
  } catch {
    return false;
  }
}

for (const cfg of loopConfigs()) {
  describe(`dial errors [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('rejects with OpError ECONNREFUSED when nothing listens', async () => {
      const port = closedPort(cfg.options);
      const err = await withTimeout(rejectionOf(dial('tcp', `127.0.0.1:${port}`, cfg.options)), 5000, 'dial');
      assert.ok(err instanceof OpError, `expected OpError, got ${describeError(err)}`);
      assert.equal(err.op, 'dial');
      assert.equal(err.net, 'tcp');
      assert.equal(err.code, 'ECONNREFUSED');
      assert.equal(err.timeout(), false);
      assert.equal(err.addr?.toString(), `127.0.0.1:${port}`);
    });

    it('rejects with AbortError for a signal that is already aborted, without connecting', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const err = await withTimeout(
        rejectionOf(dial('tcp', ln.addr().toString(), { ...cfg.options, signal: AbortSignal.abort() })),
        5000,
        'dial with aborted signal',
      );
      assert.ok(err instanceof Error);
      assert.equal(err.name, 'AbortError');
      const accepted = observe(ln.accept());
      await sleep(50);
      assert.equal(accepted.settled, false, 'an aborted dial still reached the listener');
    });

    it('either connects or fails as a timeout with a 1 ms timeout', async function () {
      this.timeout(20_000);
      const srv = res.add(startEcho(cfg.options));
      for (let i = 0; i < 10; i++) {
        let c: Conn;
        try {
          c = res.add(await withTimeout(dial('tcp', srv.address, { ...cfg.options, timeout: 1 }), 5000, 'dial'));
        } catch (e) {
          assertDialTimeout(e);
          continue;
        }
        // A connection that made it in time is a normal connection.
        assertBytesEqual(await withTimeout(roundTrip(c, pattern(10, i)), 5000, 'echo'), pattern(10, i));
      }
    });

    it('does not turn the dial timeout into a deadline on the connection', async function () {
      this.timeout(10_000);
      const srv = res.add(startEcho(cfg.options));
      const c = res.add(await dial('tcp', srv.address, { ...cfg.options, timeout: 200 }));
      await sleep(400);
      assertBytesEqual(await withTimeout(roundTrip(c, pattern(100)), 5000, 'echo after timeout'), pattern(100));
    });

    it('does not close the connection when the signal aborts after the dial', async () => {
      const srv = res.add(startEcho(cfg.options));
      const ac = new AbortController();
      const c = res.add(await dial('tcp', srv.address, { ...cfg.options, signal: ac.signal }));
      ac.abort();
      await sleep(20);
      assertBytesEqual(await withTimeout(roundTrip(c, pattern(100)), 5000, 'echo after abort'), pattern(100));
    });

    it('resolves localhost through the name resolver (tcp4)', async () => {
      const srv = res.add(startEcho(cfg.options));
      const c = res.add(await withTimeout(dial('tcp4', `localhost:${srv.port}`, cfg.options), 5000, 'dial localhost'));
      assert.equal(c.remoteAddr().toString(), srv.address);
    });

    describe('against a listener whose accept queue is full', () => {
      let ln: Listener;
      let firstError: unknown;
      beforeEach(async function () {
        this.timeout(20_000);
        if (process.platform !== 'linux' || abortOnOverflow()) this.skip();
        ln = res.add(listen('tcp', '127.0.0.1:0', { ...cfg.options, backlog: 1 }));
        firstError = await fillBacklog(ln, cfg.options, res);
        // Every listener on Linux keeps connections pending once its queue is full; if
        // none did, the listener must have accepted on its own, which Go's never does.
        assert.notEqual(firstError, null, 'every dial connected: the listener accepts without accept() calls');
      });

      it('rejects a dial that outlasts its timeout with a timeout OpError', async function () {
        this.timeout(10_000);
        assertDialTimeout(firstError);
        const err = await withTimeout(
          rejectionOf(dial('tcp', ln.addr().toString(), { ...cfg.options, timeout: 200 })),
          5000,
          'second timed-out dial',
        );
        assertDialTimeout(err);
      });

      it('rejects a pending dial with AbortError when its signal aborts', async function () {
        this.timeout(10_000);
        const ac = new AbortController();
        const pending = observe(dial('tcp', ln.addr().toString(), { ...cfg.options, signal: ac.signal }));
        await sleep(100);
        assert.equal(pending.settled, false, 'dial settled while the accept queue was full');
        ac.abort();
        const o = await withTimeout(pending.promise, 5000, 'abort of a pending dial');
        if (o.fulfilled) res.add(o.value as Conn);
        assert.ok(o.error instanceof Error, `dial did not reject: ${String(o.value)}`);
        assert.equal(o.error.name, 'AbortError');
      });
    });
  });
}
