// close(): pending read/write/accept reject with ErrClosed, close is idempotent, peers see EOF.
import assert from 'node:assert/strict';
import { dial, listen } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertErrClosed } from './helpers/assert-errors';
import { readExactly } from './helpers/io';
import { connectPair, type Pair } from './helpers/servers';
import { Resources, observe, sleep, withTimeout } from './helpers/util';

for (const cfg of loopConfigs()) {
  describe(`conn close [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    describe('with a connected pair', () => {
      let pair: Pair;
      beforeEach(async () => {
        pair = res.add(await connectPair(cfg.options));
      });

      it('rejects a pending read with ErrClosed', async () => {
        const pending = observe(pair.client.read(new Uint8Array(16)));
        await sleep(20);
        assert.equal(pending.settled, false, 'read settled with nothing sent');
        pair.client.close();
        const o = await withTimeout(pending.promise, 5000, 'pending read after close');
        assertErrClosed(o.error, 'read');
      });

      it('rejects a pending write with ErrClosed', async function () {
        this.timeout(20_000);
        pair.client.setWriteBuffer(16 * 1024);
        pair.server.setReadBuffer(16 * 1024);
        const pending = observe(pair.client.write(new Uint8Array(32 * 1024 * 1024)));
        await sleep(100);
        assert.equal(pending.settled, false, 'a 32 MiB write to a peer that never reads finished');
        pair.client.close();
        const o = await withTimeout(pending.promise, 5000, 'pending write after close');
        assertErrClosed(o.error, 'write');
      });

      it('rejects a pending readChunk with ErrClosed', async () => {
        const pending = observe(pair.client.readChunk());
        await sleep(20);
        assert.equal(pending.settled, false);
        pair.client.close();
        const o = await withTimeout(pending.promise, 5000, 'pending readChunk after close');
        assertErrClosed(o.error);
      });

      it('treats a second close as a no-op', async () => {
        pair.client.close();
        assert.doesNotThrow(() => pair.client.close());
        assert.doesNotThrow(() => pair.client.close());
        // The peer saw exactly one orderly close: EOF, and the pair's own close still works.
        assert.equal(await withTimeout(pair.server.read(new Uint8Array(4)), 5000, 'peer read'), null);
      });

      it('lets the peer read EOF after bytes written before close', async () => {
        await pair.client.write('last words');
        pair.client.close();
        const got = await withTimeout(readExactly(pair.server, 10), 5000, 'peer reads');
        assert.equal(Buffer.from(got).toString(), 'last words');
        assert.equal(await withTimeout(pair.server.read(new Uint8Array(4)), 5000, 'peer EOF'), null);
      });

      it('closing the listener leaves accepted connections open', async () => {
        pair.ln.close();
        await pair.client.write('still here');
        const got = await withTimeout(readExactly(pair.server, 10), 5000, 'read on accepted conn');
        assert.equal(Buffer.from(got).toString(), 'still here');
      });
    });

    describe('listener', () => {
      it('rejects a pending accept with ErrClosed (OpError op accept)', async () => {
        const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
        const pending = observe(ln.accept());
        await sleep(20);
        assert.equal(pending.settled, false, 'accept settled with no client');
        ln.close();
        const o = await withTimeout(pending.promise, 5000, 'pending accept after close');
        assertErrClosed(o.error, 'accept');
      });

      it('rejects every pending accept, not only the first', async () => {
        const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
        const pending = [observe(ln.accept()), observe(ln.accept()), observe(ln.accept())];
        await sleep(20);
        ln.close();
        for (const p of pending) assertErrClosed((await withTimeout(p.promise, 5000, 'accept')).error, 'accept');
      });

      it('rejects accept() called after close with ErrClosed', async () => {
        const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
        ln.close();
        const o = await withTimeout(observe(ln.accept()).promise, 5000, 'accept after close');
        assertErrClosed(o.error, 'accept');
      });

      it('ends for-await iteration without throwing when closed', async () => {
        const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
        const seen: Conn[] = [];
        const loop = observe((async () => {
          for await (const c of ln) {
            seen.push(res.add(c));
            if (seen.length === 2) ln.close();
          }
        })());
        res.add(await dial('tcp', ln.addr().toString(), cfg.options));
        res.add(await dial('tcp', ln.addr().toString(), cfg.options));
        const o = await withTimeout(loop.promise, 5000, 'iteration to end after close');
        assert.equal(o.error, undefined, `iteration threw: ${String(o.error)}`);
        assert.equal(seen.length, 2);
      });

      it('ends an idle for-await iteration when closed from outside', async () => {
        const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
        let count = 0;
        const loop = observe((async () => {
          for await (const c of ln) {
            c.close();
            count++;
          }
        })());
        await sleep(20);
        ln.close();
        const o = await withTimeout(loop.promise, 5000, 'iteration to end');
        assert.equal(o.error, undefined, `iteration threw: ${String(o.error)}`);
        assert.equal(count, 0);
      });

      it('treats a second close as a no-op', () => {
        const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
        ln.close();
        assert.doesNotThrow(() => ln.close());
      });

      it('frees the address: listening again on the same port works', async () => {
        const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
        const address = ln.addr().toString();
        // A served connection first, so the port has seen traffic before it is reused.
        const [s, c] = await Promise.all([ln.accept(), dial('tcp', address, cfg.options)]);
        res.add(s);
        res.add(c);
        c.close();
        s.close();
        ln.close();
        const again = res.add(listen('tcp', address, cfg.options));
        assert.equal(again.addr().toString(), address);
        const [s2, c2] = await withTimeout(
          Promise.all([again.accept(), dial('tcp', address, cfg.options)]),
          5000,
          'connect to the re-opened port',
        );
        res.add(s2);
        res.add(c2);
      });
    });
  });
}
