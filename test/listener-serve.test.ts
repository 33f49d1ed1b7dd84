// Listener.serve: one handler per connection, closed when it settles; a throwing handler costs only its connection.
import assert from 'node:assert/strict';
import { dial, listen } from 'muxnet';
import type { Conn, Listener } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertArgError, assertErrClosed, rejectionOf } from './helpers/assert-errors';
import { readExactly, readToEnd } from './helpers/io';
import { Resources, withTimeout } from './helpers/util';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A handler that echoes line by line and throws (at once or later) on "boom". */
async function echoUnlessBoom(conn: Conn): Promise<void> {
  const buf = new Uint8Array(1024);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return;
    const text = dec.decode(buf.subarray(0, n));
    if (text === 'boom') throw new Error('handler failed on purpose');
    await conn.write(buf.subarray(0, n));
  }
}

async function echoOnce(ln: Listener, text: string, options: object): Promise<string> {
  const c = await dial('tcp', ln.addr().toString(), options);
  try {
    await c.write(text);
    return dec.decode(await readExactly(c, enc.encode(text).length));
  } finally {
    c.close();
  }
}

for (const cfg of loopConfigs()) {
  describe(`listener serve [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('runs the handler for each connection and closes it when the handler returns', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const serving = ln.serve(async (conn) => {
        await conn.write('hello');
      });
      for (let i = 0; i < 3; i++) {
        const c = res.add(await dial('tcp', ln.addr().toString(), cfg.options));
        // EOF after the greeting: serve closed the connection once the handler resolved.
        const got = await withTimeout(readToEnd(c), 10_000, 'greeting then EOF');
        assert.equal(dec.decode(got), 'hello');
      }
      ln.close();
      await withTimeout(serving, 10_000, 'serve() to resolve after close');
    });

    it('closes a sync handler\'s connection when it returns', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const seen: Conn[] = [];
      void ln.serve((conn) => {
        seen.push(conn);
      });
      const c = res.add(await dial('tcp', ln.addr().toString(), cfg.options));
      assert.equal((await withTimeout(readToEnd(c), 10_000, 'EOF')).length, 0);
      assert.equal(seen.length, 1);
    });

    for (const when of ['rejects', 'throws synchronously'] as const) {
      it(`keeps serving when a handler ${when}: only that connection closes, onError gets the error`, async () => {
        const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
        const failures: { err: unknown; conn: Conn }[] = [];
        let throwNext = false;
        const serving = ln.serve((conn) => {
          if (throwNext) {
            throwNext = false;
            throw new Error('handler failed on purpose');
          }
          return echoUnlessBoom(conn);
        }, { onError: (err, conn) => failures.push({ err, conn }) });

        // A long-lived connection served before, during and after the failure.
        const steady = res.add(await dial('tcp', ln.addr().toString(), cfg.options));
        await steady.write('one');
        assert.equal(dec.decode(await readExactly(steady, 3)), 'one');

        throwNext = when === 'throws synchronously';
        const victim = res.add(await dial('tcp', ln.addr().toString(), cfg.options));
        if (when === 'rejects') await victim.write('boom');
        // The failing handler's connection is closed: its peer reads EOF.
        assert.equal((await withTimeout(readToEnd(victim), 10_000, 'EOF on the failed connection')).length, 0);
        assert.equal(failures.length, 1);
        assert.match(String((failures[0].err as Error).message), /failed on purpose/);
        // The connection is closed once onError has returned.
        assertErrClosed(await rejectionOf(failures[0].conn.write('x')), 'write');

        await steady.write('two');
        assert.equal(dec.decode(await readExactly(steady, 3)), 'two');
        assert.equal(await echoOnce(ln, 'three', cfg.options), 'three');
        ln.close();
        steady.close();
        await withTimeout(serving, 10_000, 'serve() to resolve after close');
      });
    }

    it('prints a failed handler\'s error to stderr by default, naming the peer', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const printed: unknown[][] = [];
      const original = console.error;
      console.error = (...args: unknown[]) => {
        printed.push(args);
      };
      try {
        void ln.serve(echoUnlessBoom);
        const c = res.add(await dial('tcp', ln.addr().toString(), cfg.options));
        await c.write('boom');
        await withTimeout(readToEnd(c), 10_000, 'EOF on the failed connection');
        assert.equal(printed.length, 1);
        assert.equal(printed[0][0], `muxnet: handler for ${c.localAddr()} failed:`);
        assert.match((printed[0][1] as Error).message, /failed on purpose/);
      } finally {
        console.error = original;
      }
    });
  });
}

describe('listener serve arguments', () => {
  it('rejects a handler that is not a function, naming it, and keeps the listener usable', async () => {
    const ln = listen('tcp', '127.0.0.1:0');
    try {
      assertArgError(await rejectionOf(ln.serve(42 as never)), /handler/);
      assertArgError(await rejectionOf(ln.serve(() => {}, { onError: 'log' as never })), /options\.onError/);
      const [server, client] = await Promise.all([ln.accept(), dial('tcp', ln.addr().toString())]);
      server.close();
      client.close();
    } finally {
      ln.close();
    }
  });
});
