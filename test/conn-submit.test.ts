// Operations made in one turn cross to the native side together, in order, and what must
// keep its order with them (close, a transferred buffer) does.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { dial, listen } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { readExactly, readToEnd } from './helpers/io';
import { Resources, describeError, withTimeout } from './helpers/util';

// The loops of this thread, to count their native submit() calls (an internal, read here
// the way bench/micro.ts reads it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const internal = require(path.resolve(__dirname, '..', '..', 'dist', 'loop.js')) as {
  allLoops(): { backend: string; native: { submit(count: number): number } }[];
};

/** Counts submit() calls on every loop of this thread while `fn` runs. */
async function countSubmits(fn: () => Promise<void>): Promise<number> {
  const loops = internal.allLoops();
  const saved = loops.map((l) => l.native.submit);
  let calls = 0;
  loops.forEach((l, i) => {
    l.native.submit = (count: number) => {
      calls++;
      return saved[i](count);
    };
  });
  try {
    await fn();
  } finally {
    loops.forEach((l, i) => { l.native.submit = saved[i]; });
  }
  return calls;
}

for (const cfg of loopConfigs()) {
  describe(`conn submit [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    async function pairs(n: number): Promise<[Conn, Conn][]> {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const out: [Conn, Conn][] = [];
      for (let i = 0; i < n; i++) {
        const accepted = ln.accept();
        const c = res.add(await dial('tcp', ln.addr().toString(), cfg.options));
        out.push([c, res.add(await withTimeout(accepted, 10_000, 'accept'))]);
      }
      return out;
    }

    it('sends writes made on 20 connections in one turn with one native call, each in order', async () => {
      const conns = await pairs(20);
      const msg = (i: number, k: number): Uint8Array => Buffer.from(`conn ${i} message ${k};`);
      const calls = await countSubmits(async () => {
        const writes: Promise<void>[] = [];
        conns.forEach(([c], i) => {
          for (let k = 0; k < 3; k++) writes.push(c.write(msg(i, k)));
        });
        await Promise.all(writes);
      });
      assert.equal(calls, 1, '60 writes made in one turn: one submit()');
      for (let i = 0; i < conns.length; i++) {
        const want = Buffer.concat([0, 1, 2].map((k) => msg(i, k)));
        const got = await withTimeout(readExactly(conns[i][1], want.length), 10_000, `read ${i}`);
        assert.equal(Buffer.from(got).toString(), want.toString());
      }
    });

    it('still sends a write made just before close(), then end of stream', async () => {
      const [[c, s]] = await pairs(1);
      const data = Buffer.alloc(100_000, 7);
      const written = c.write(data);  // not awaited: close() comes in the same turn
      c.close();
      await written.then(() => undefined, () => undefined);  // settled either way
      const got = await withTimeout(readToEnd(s), 10_000, 'read to end');
      assert.ok(got.length > 0, 'the write made before close() reached the peer');
      assert.ok(got.every((b) => b === 7), 'nothing but the written bytes');
    });

    it('fails only the read whose buffer was transferred while it waited; the next read gets the bytes', async () => {
      const [[c, s]] = await pairs(1);
      const buf = new Uint8Array(64);
      const pending = c.read(buf);
      await new Promise((resolve) => setImmediate(resolve));  // the read waits natively now
      const { port1, port2 } = new MessageChannel();
      port1.postMessage(buf.buffer, [buf.buffer]);  // detaches buf
      port1.close();
      port2.close();
      await s.write(Buffer.from('after'));
      const err = await pending.then(() => null, (e: unknown) => e);
      assert.ok(err instanceof TypeError, `a TypeError, got ${describeError(err)}`);
      assert.match((err as Error).message, /^buf: .*detached/);
      const got = await withTimeout(readExactly(c, 5), 10_000, 'next read');
      assert.equal(Buffer.from(got).toString(), 'after');
    });
  });
}
