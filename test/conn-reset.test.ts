// A peer that resets (linger 0 / resetAndDestroy): ECONNRESET or EPIPE, never SIGPIPE or a crash.
import assert from 'node:assert/strict';
import { OpError, dial } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { rejectionOf } from './helpers/assert-errors';
import { roundTrip } from './helpers/io';
import { pattern } from './helpers/pattern';
import { connectPair, startEcho, startNodeServer } from './helpers/servers';
import { Resources, assertBytesEqual, describeError, observe, sleep, withTimeout } from './helpers/util';
import { skipIf, underWine, wineResetIsEof } from './helpers/platform';

/** Writes 1 KiB at a time until a write rejects (at most 100 tries); returns that error. */
async function writeUntilError(c: Conn): Promise<unknown> {
  const chunk = new Uint8Array(1024);
  for (let i = 0; i < 100; i++) {
    try {
      await withTimeout(c.write(chunk), 5000, 'write to a reset peer');
    } catch (e) {
      return e;
    }
    await sleep(10);
  }
  assert.fail('100 writes to a reset peer all succeeded');
}

function assertResetError(err: unknown, op: string, codes: string[]): void {
  assert.ok(err instanceof OpError, `expected OpError, got ${describeError(err)}`);
  assert.equal(err.op, op);
  assert.equal(err.net, 'tcp');
  assert.ok(codes.includes(err.code), `code ${err.code}, expected one of ${codes}`);
  assert.equal(err.timeout(), false);
}

for (const cfg of loopConfigs()) {
  describe(`conn reset [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    describe('muxnet peer with setLinger(0)', () => {
      it('rejects a pending read with ECONNRESET', async function () {
        skipIf(this, underWine(), wineResetIsEof);
        const pair = res.add(await connectPair(cfg.options));
        const pending = observe(pair.client.read(new Uint8Array(16)));
        await sleep(20);
        pair.server.setLinger(0);
        pair.server.close();
        const o = await withTimeout(pending.promise, 5000, 'read after peer reset');
        assertResetError(o.error, 'read', ['ECONNRESET']);
      });

      it('rejects a write with ECONNRESET or EPIPE', async () => {
        const pair = res.add(await connectPair(cfg.options));
        pair.server.setLinger(0);
        pair.server.close();
        assertResetError(await writeUntilError(pair.client), 'write', ['ECONNRESET', 'EPIPE']);
      });
    });

    describe('Node net peer with resetAndDestroy()', () => {
      it('rejects a read with ECONNRESET and later writes with ECONNRESET or EPIPE', async function () {
        skipIf(this, underWine(), wineResetIsEof);
        // The reset waits for our first byte, so it cannot race the dial itself.
        const node = res.add(await startNodeServer((s) => s.once('data', () => s.resetAndDestroy())));
        const c = res.add(await dial('tcp', node.address, cfg.options));
        const pending = observe(c.read(new Uint8Array(16)));
        await c.write('go');
        const o = await withTimeout(pending.promise, 5000, 'read after reset');
        assertResetError(o.error, 'read', ['ECONNRESET']);
        assertResetError(await writeUntilError(c), 'write', ['ECONNRESET', 'EPIPE']);
      });
    });

    it('keeps the loop serving other connections after a reset', async () => {
      const pair = res.add(await connectPair(cfg.options));
      pair.server.setLinger(0);
      pair.server.close();
      await writeUntilError(pair.client);
      const srv = res.add(startEcho(cfg.options));
      const c = res.add(await dial('tcp', srv.address, cfg.options));
      assertBytesEqual(await withTimeout(roundTrip(c, pattern(1000)), 5000, 'echo after reset'), pattern(1000));
    });

    it('lets close() after a reset be a no-op', async () => {
      const pair = res.add(await connectPair(cfg.options));
      pair.server.setLinger(0);
      pair.server.close();
      await rejectionOf(pair.client.read(new Uint8Array(4))).catch(() => undefined);
      assert.doesNotThrow(() => pair.client.close());
      assert.doesNotThrow(() => pair.client.close());
    });
  });
}
