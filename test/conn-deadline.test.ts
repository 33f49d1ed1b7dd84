// Go deadline semantics: absolute, apply to pending ops, extend, clear with 0, past = now.
import assert from 'node:assert/strict';
import { loopConfigs } from './helpers/configs';
import { assertDeadlineExceeded, rejectionOf } from './helpers/assert-errors';
import { readExactly } from './helpers/io';
import { connectPair, type Pair } from './helpers/servers';
import { Resources, observe, sleep, withTimeout } from './helpers/util';

const kBig = 32 * 1024 * 1024;
let bigBuffer: Uint8Array | undefined;
/** 32 MiB: far more than the kernel buffers hold, so a write to a peer that never reads stays pending. */
function big(): Uint8Array {
  bigBuffer ??= new Uint8Array(kBig).fill(0x5a);
  return bigBuffer;
}

for (const cfg of loopConfigs()) {
  describe(`conn deadline [${cfg.name}]`, () => {
    const res = new Resources();
    let pair: Pair;
    beforeEach(async () => {
      pair = res.add(await connectPair(cfg.options));
    });
    afterEach(() => res.closeAll());

    /** Makes writes from client to server back up: small buffers, and the server never reads. */
    function stallClientWrites(): void {
      pair.client.setWriteBuffer(16 * 1024);
      pair.server.setReadBuffer(16 * 1024);
    }

    describe('read deadline', () => {
      it('rejects a pending read with ErrDeadlineExceeded when it expires', async () => {
        pair.client.setReadDeadline(Date.now() + 100);
        const err = await withTimeout(
          rejectionOf(pair.client.read(new Uint8Array(16))),
          5000,
          'read deadline to fire',
        );
        assertDeadlineExceeded(err, 'read');
      });

      it('accepts a Date as the deadline', async () => {
        pair.client.setReadDeadline(new Date(Date.now() + 100));
        const err = await withTimeout(rejectionOf(pair.client.read(new Uint8Array(16))), 5000, 'Date deadline');
        assertDeadlineExceeded(err, 'read');
      });

      it('applies a deadline set while the read is pending', async () => {
        const pending = observe(pair.client.read(new Uint8Array(16)));
        await sleep(50);
        assert.equal(pending.settled, false, 'read settled with no data and no deadline');
        pair.client.setReadDeadline(Date.now() + 100);
        const o = await withTimeout(pending.promise, 5000, 'deadline set while pending');
        assertDeadlineExceeded(o.error, 'read');
      });

      it('lets the pending read succeed when the deadline is extended before it expires', async () => {
        const start = Date.now();
        pair.client.setReadDeadline(start + 500);
        const buf = new Uint8Array(16);
        const pending = observe(pair.client.read(buf));
        await sleep(20);
        pair.client.setReadDeadline(Date.now() + 60_000);
        // Past the first deadline, with still nothing to read.
        await sleep(Math.max(0, start + 800 - Date.now()));
        assert.equal(pending.settled, false, `the read settled at the old deadline: ${String(pending.error)}`);
        await pair.server.write('ok');
        const o = await withTimeout(pending.promise, 5000, 'read after extension');
        assert.equal(o.error, undefined);
        assert.ok((o.value as number) >= 1);
        assert.equal(buf[0], 'o'.charCodeAt(0));
      });

      it('does not reject the pending read once the deadline is cleared with 0', async () => {
        const start = Date.now();
        pair.client.setReadDeadline(start + 500);
        const pending = observe(pair.client.read(new Uint8Array(16)));
        await sleep(20);
        pair.client.setReadDeadline(0);
        await sleep(Math.max(0, start + 800 - Date.now()));
        assert.equal(pending.settled, false, `the read settled after the deadline was cleared: ${String(pending.error)}`);
        await pair.server.write('x');
        const o = await withTimeout(pending.promise, 5000, 'read after clearing');
        assert.equal(o.error, undefined);
        assert.equal(o.value, 1);
      });

      it('rejects a read at once when the deadline is already in the past', async () => {
        pair.client.setReadDeadline(Date.now() - 1000);
        const err = await withTimeout(rejectionOf(pair.client.read(new Uint8Array(16))), 2000, 'read with past deadline');
        assertDeadlineExceeded(err, 'read');
        // Every further read too, until the deadline changes.
        const again = await withTimeout(rejectionOf(pair.client.read(new Uint8Array(16))), 2000, 'second read');
        assertDeadlineExceeded(again, 'read');
      });

      it('leaves the conn usable after a timeout once the deadline is cleared', async () => {
        pair.client.setReadDeadline(Date.now() + 50);
        assertDeadlineExceeded(
          await withTimeout(rejectionOf(pair.client.read(new Uint8Array(16))), 5000, 'first read times out'),
        );
        pair.client.setReadDeadline(0);
        await pair.server.write('after');
        const got = await withTimeout(readExactly(pair.client, 5), 5000, 'read after clearing');
        assert.equal(Buffer.from(got).toString(), 'after');
        // And the other direction still works.
        await pair.client.write('back');
        const back = await withTimeout(readExactly(pair.server, 4), 5000, 'write after timeout');
        assert.equal(Buffer.from(back).toString(), 'back');
      });

      it('does not affect writes', async () => {
        pair.client.setReadDeadline(Date.now() - 1000);
        await withTimeout(pair.client.write('still writes'), 5000, 'write with a past read deadline');
        const got = await withTimeout(readExactly(pair.server, 12), 5000, 'peer reads');
        assert.equal(Buffer.from(got).toString(), 'still writes');
      });
    });

    describe('write deadline', () => {
      it('rejects a write that cannot finish in time with ErrDeadlineExceeded', async function () {
        this.timeout(20_000);
        stallClientWrites();
        pair.client.setWriteDeadline(Date.now() + 300);
        const err = await withTimeout(rejectionOf(pair.client.write(big())), 10_000, 'write deadline to fire');
        assertDeadlineExceeded(err, 'write');
      });

      it('applies a deadline set while the write is pending', async function () {
        this.timeout(20_000);
        stallClientWrites();
        const pending = observe(pair.client.write(big()));
        await sleep(100);
        assert.equal(pending.settled, false, 'a 32 MiB write to a peer that never reads finished');
        pair.client.setWriteDeadline(Date.now() + 100);
        const o = await withTimeout(pending.promise, 10_000, 'deadline set while write pending');
        assertDeadlineExceeded(o.error, 'write');
      });

      it('rejects a write at once when the deadline is already in the past', async () => {
        pair.client.setWriteDeadline(Date.now() - 1000);
        const err = await withTimeout(rejectionOf(pair.client.write('x')), 2000, 'write with past deadline');
        assertDeadlineExceeded(err, 'write');
      });

      it('lets writes through again once the deadline is cleared', async () => {
        pair.client.setWriteDeadline(Date.now() - 1000);
        assertDeadlineExceeded(await withTimeout(rejectionOf(pair.client.write('x')), 2000, 'past deadline'));
        pair.client.setWriteDeadline(0);
        await withTimeout(pair.client.write('ok'), 5000, 'write after clearing');
        const got = await withTimeout(readExactly(pair.server, 2), 5000, 'peer reads');
        assert.equal(Buffer.from(got).toString(), 'ok');
      });

      it('does not affect reads', async () => {
        pair.client.setWriteDeadline(Date.now() - 1000);
        await pair.server.write('hi');
        const got = await withTimeout(readExactly(pair.client, 2), 5000, 'read with a past write deadline');
        assert.equal(Buffer.from(got).toString(), 'hi');
      });
    });

    describe('setDeadline', () => {
      it('sets both the read and the write deadline', async () => {
        pair.client.setDeadline(Date.now() - 1000);
        assertDeadlineExceeded(
          await withTimeout(rejectionOf(pair.client.read(new Uint8Array(4))), 2000, 'read'),
          'read',
        );
        assertDeadlineExceeded(await withTimeout(rejectionOf(pair.client.write('x')), 2000, 'write'), 'write');
        pair.client.setDeadline(0);
        await pair.client.write('y');
        const got = await withTimeout(readExactly(pair.server, 1), 5000, 'peer reads');
        assert.equal(got[0], 'y'.charCodeAt(0));
      });
    });
  });
}
