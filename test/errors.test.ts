// The errors module: OpError fields, ErrClosed / ErrDeadlineExceeded identity, errorIs.
import assert from 'node:assert/strict';
import { Addr, ErrClosed, ErrDeadlineExceeded, OpError, dial, errorIs, listen } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { rejectionOf } from './helpers/assert-errors';
import { connectPair } from './helpers/servers';
import { Resources, describeError, withTimeout } from './helpers/util';

for (const cfg of loopConfigs()) {
  describe(`errors [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('OpError of a refused dial carries op, net, addr, code and errno', async () => {
      const ln = listen('tcp', '127.0.0.1:0', cfg.options);
      const port = ln.addr().port;
      ln.close();
      const err = await withTimeout(rejectionOf(dial('tcp', `127.0.0.1:${port}`, cfg.options)), 5000, 'dial');
      assert.ok(err instanceof OpError, `expected OpError, got ${describeError(err)}`);
      assert.ok(err instanceof Error);
      assert.equal(err.op, 'dial');
      assert.equal(err.net, 'tcp');
      assert.ok(err.addr instanceof Addr);
      assert.equal(err.addr.ip, '127.0.0.1');
      assert.equal(err.addr.port, port);
      assert.equal(err.code, 'ECONNREFUSED');
      assert.equal(typeof err.errno, 'number');
      assert.ok(err.err instanceof Error, 'OpError.err is the underlying error');
      assert.equal(err.timeout(), false);
      assert.equal(errorIs(err, ErrClosed), false);
      assert.equal(errorIs(err, ErrDeadlineExceeded), false);
      assert.ok(err.message.includes('dial'), `message "${err.message}" does not say dial`);
      assert.ok(err.message.includes(`127.0.0.1:${port}`), `message "${err.message}" does not name the address`);
    });

    it('ErrClosed has Go\'s message and code, and is found through OpError', async () => {
      const pair = res.add(await connectPair(cfg.options));
      pair.client.close();
      const err = await withTimeout(rejectionOf(pair.client.read(new Uint8Array(1))), 5000, 'read after close');
      assert.ok(err instanceof ErrClosed);
      assert.ok(err instanceof Error);
      assert.equal(err instanceof ErrDeadlineExceeded, false);
      assert.equal(errorIs(err, ErrClosed), true);
      assert.equal(errorIs(err, ErrDeadlineExceeded), false);
      assert.equal((err as { code?: string }).code, 'ERR_CLOSED');
      const inner = err instanceof OpError ? err.err : err;
      assert.ok(inner instanceof ErrClosed);
      assert.equal(inner.message, 'use of closed network connection');
      assert.equal((inner as { code?: string }).code, 'ERR_CLOSED');
      if (err instanceof OpError) {
        assert.equal(err.op, 'read');
        assert.equal(err.net, 'tcp');
        assert.equal(err.timeout(), false);
      }
    });

    it('ErrDeadlineExceeded says i/o timeout, has code ETIMEDOUT and timeout() true', async () => {
      const pair = res.add(await connectPair(cfg.options));
      pair.client.setReadDeadline(Date.now() - 1);
      const err = await withTimeout(rejectionOf(pair.client.read(new Uint8Array(1))), 5000, 'read past deadline');
      assert.ok(err instanceof ErrDeadlineExceeded);
      assert.equal(err instanceof ErrClosed, false);
      assert.equal(errorIs(err, ErrDeadlineExceeded), true);
      assert.equal(errorIs(err, ErrClosed), false);
      assert.equal((err as { code?: string }).code, 'ETIMEDOUT');
      assert.equal((err as unknown as { timeout(): boolean }).timeout(), true);
      const inner = err instanceof OpError ? err.err : err;
      assert.ok(inner instanceof ErrDeadlineExceeded);
      assert.equal(inner.message, 'i/o timeout');
      assert.equal((inner as unknown as { timeout(): boolean }).timeout(), true);
    });

    it('accept after close rejects with an OpError op accept wrapping ErrClosed', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      ln.close();
      const err = await withTimeout(rejectionOf(ln.accept()), 5000, 'accept after close');
      assert.ok(err instanceof OpError, `expected OpError, got ${describeError(err)}`);
      assert.equal(err.op, 'accept');
      assert.equal(err.net, 'tcp');
      assert.equal(err.code, 'ERR_CLOSED');
      assert.ok(err.err instanceof ErrClosed);
      assert.ok(err instanceof ErrClosed);
    });
  });
}

describe('errorIs', () => {
  it('is false for values that are not muxnet errors, and never throws', () => {
    for (const v of [new Error('x'), new TypeError('y'), null, undefined, 'ERR_CLOSED', 42, {}, { code: 'ERR_CLOSED' }]) {
      assert.equal(errorIs(v, ErrClosed), false, `errorIs(${String(v)}, ErrClosed)`);
      assert.equal(errorIs(v, ErrDeadlineExceeded), false, `errorIs(${String(v)}, ErrDeadlineExceeded)`);
    }
  });

  it('is false for a plain Error whose message matches ErrClosed', () => {
    assert.equal(errorIs(new Error('use of closed network connection'), ErrClosed), false);
    assert.equal(new Error('use of closed network connection') instanceof ErrClosed, false);
  });
});
