// Conn.onData: callbacks instead of pending reads — bytes in order, end and errors once, throws contained, nothing held.
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { dial, listen } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertArgError, assertErrClosed, thrownBy } from './helpers/assert-errors';
import { readExactly, readToEnd } from './helpers/io';
import { pattern } from './helpers/pattern';
import { connectPair } from './helpers/servers';
import { Resources, assertBytesEqual, sleep, withTimeout } from './helpers/util';
import { skipIf, underWine, wineResetIsEof } from './helpers/platform';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects what onData delivers (copied) and how it ended. */
function collect(conn: Conn): { bytes: () => Uint8Array; ended: Promise<Error | null> } {
  const parts: Uint8Array[] = [];
  const ended = new Promise<Error | null>((resolve) => {
    conn.onData((data) => parts.push(data.slice()), resolve);
  });
  return { bytes: () => Buffer.concat(parts), ended };
}

for (const cfg of loopConfigs()) {
  describe(`conn onData [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('delivers every byte in order, then onEnd(null) at end of stream', async () => {
      const pair = res.add(await connectPair(cfg.options));
      const got = collect(pair.server);
      const data = pattern(3 * 1024 * 1024 + 17);
      await pair.client.write(data);
      pair.client.closeWrite();
      assert.equal(await withTimeout(got.ended, 20_000, 'onEnd'), null);
      assertBytesEqual(got.bytes(), data);
    });

    it('delivers data that arrived before onData was set', async () => {
      const pair = res.add(await connectPair(cfg.options));
      await pair.client.write('early');
      await sleep(20);
      const got = collect(pair.server);
      pair.client.closeWrite();
      await withTimeout(got.ended, 10_000, 'onEnd');
      assert.equal(Buffer.from(got.bytes()).toString(), 'early');
    });

    it('echoes with write(view): what the kernel does not take at once is copied, so nothing is corrupted', async () => {
      const pair = res.add(await connectPair(cfg.options));
      pair.server.onData((data) => {
        void pair.server.write(data);
      }, () => pair.server.closeWrite());
      const data = pattern(4 * 1024 * 1024);
      // The client reads only after writing everything: the echo has to queue.
      await pair.client.write(data);
      pair.client.closeWrite();
      assertBytesEqual(await withTimeout(readToEnd(pair.client), 20_000, 'the echo'), data);
    });

    it('closes the connection and passes the error to onEnd when onData throws; the loop serves on', async () => {
      const pair = res.add(await connectPair(cfg.options));
      const other = res.add(await connectPair(cfg.options));
      const ended = new Promise<Error | null>((resolve) => {
        pair.server.onData(() => {
          throw new Error('handler failed on purpose');
        }, resolve);
      });
      await pair.client.write('x');
      const err = await withTimeout(ended, 10_000, 'onEnd with the error');
      assert.match(String(err?.message), /failed on purpose/);
      assert.equal((await withTimeout(readToEnd(pair.client), 10_000, 'EOF')).length, 0);
      assertErrClosed(thrownBy(() => pair.server.info()));
      await other.client.write('still');
      assert.equal(Buffer.from(await readExactly(other.server, 5)).toString(), 'still');
    });

    it('reports a reset to onEnd', async function () {
      skipIf(this, underWine(), wineResetIsEof);
      const pair = res.add(await connectPair(cfg.options));
      const got = collect(pair.server);
      pair.client.setLinger(0);
      pair.client.close();
      const err = await withTimeout(got.ended, 10_000, 'onEnd');
      assert.equal((err as { code?: string } | null)?.code, 'ECONNRESET');
    });

    it('keeps a connection whose only reference is its handler from being collected', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      let received = '';
      const accepted = ln.accept().then((c) => {
        c.onData((data) => {
          received += Buffer.from(data).toString();
        }, () => c.close());
      });
      const client = res.add(await dial('tcp', String(ln.addr()), cfg.options));
      await accepted;
      for (let i = 0; i < 5; i++) {
        gc();
        await sleep(10);
      }
      await client.write('still served');
      for (let i = 0; i < 200 && received.length < 12; i++) await sleep(10);
      assert.equal(received, 'still served');
    });

    it('names bad arguments and refuses a second reader', async () => {
      const pair = res.add(await connectPair(cfg.options));
      assertArgError(thrownBy(() => pair.server.onData(42 as never)), /onData/);
      assertArgError(thrownBy(() => pair.server.onData(() => {}, 'x' as never)), /onEnd/);
      const pending = pair.client.read(new Uint8Array(1));
      assertArgError(thrownBy(() => pair.client.onData(() => {})), /already has a reader/);
      pair.server.onData(() => {});
      assertArgError(thrownBy(() => pair.server.onData(() => {})), /already has a reader/);
      pair.client.close();
      await pending.catch(() => {});
    });
  });
}
