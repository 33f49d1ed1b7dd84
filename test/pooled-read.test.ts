// Pooled reads: for-await views and readChunk() chunks from the loop's slab pool.
import assert from 'node:assert/strict';
import type { Chunk, Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { readExactly, readToEnd, roundTrip } from './helpers/io';
import { pattern } from './helpers/pattern';
import { connectPair, type Pair } from './helpers/servers';
import { Resources, assertBytesEqual, observe, withTimeout } from './helpers/util';

/** Echo with `for await (const data of conn)`, awaiting each write. */
async function iterEcho(conn: Conn): Promise<void> {
  for await (const data of conn) {
    await conn.write(data);
  }
  conn.closeWrite();
}

for (const cfg of loopConfigs()) {
  describe(`pooled read [${cfg.name}]`, () => {
    const res = new Resources();
    let pair: Pair;
    beforeEach(async () => {
      pair = res.add(await connectPair(cfg.options));
    });
    afterEach(() => res.closeAll());

    it('echoes 1 MiB through for-await views', async function () {
      this.timeout(20_000);
      const server = observe(iterEcho(pair.server));
      const data = pattern(1024 * 1024, 3);
      const echoed = await withTimeout(roundTrip(pair.client, data), 15_000, 'for-await echo');
      assertBytesEqual(echoed, data);
      pair.client.closeWrite();
      // The iteration ends at EOF, without throwing.
      const o = await withTimeout(server.promise, 5000, 'server iteration to end');
      assert.equal(o.error, undefined, `iteration threw: ${String(o.error)}`);
      assert.equal(await withTimeout(pair.client.read(new Uint8Array(1)), 5000, 'client EOF'), null);
    });

    it('sends the right bytes when pooled views are written without awaiting', async function () {
      this.timeout(20_000);
      // A chunk handed to write() is kept by the write queue, so moving on to the next
      // iteration (which may reuse the slab) must not change what is sent.
      const server = observe((async () => {
        const writes: Promise<void>[] = [];
        for await (const data of pair.server) {
          const w = pair.server.write(data);
          w.catch(() => {});
          writes.push(w);
        }
        await Promise.all(writes);
        pair.server.closeWrite();
      })());
      // Small kernel buffers, so most of the echo has to wait in muxnet's write queue.
      pair.client.setReadBuffer(16 * 1024);
      pair.server.setWriteBuffer(16 * 1024);
      const data = pattern(4 * 1024 * 1024, 11);
      // The client reads nothing until all 4 MiB are sent, so the server's echo writes
      // back up and its queue holds views of chunks while the iteration moves on.
      await withTimeout(pair.client.write(data), 15_000, 'send 4 MiB');
      pair.client.closeWrite();
      const echoed = await withTimeout(readToEnd(pair.client), 15_000, 'read the echo');
      assertBytesEqual(echoed, data);
      const o = await withTimeout(server.promise, 5000, 'server to finish');
      assert.equal(o.error, undefined, `server failed: ${String(o.error)}`);
    });

    it('readChunk returns the bytes and a release(); bytes throws after release', async () => {
      await pair.server.write('chunky');
      const chunk = await withTimeout(pair.client.readChunk(), 5000, 'readChunk');
      assert.ok(chunk !== null, 'readChunk resolved null before EOF');
      assert.ok(chunk.bytes instanceof Uint8Array);
      assert.ok(chunk.bytes.length >= 1 && chunk.bytes.length <= 6);
      assert.equal(Buffer.from(chunk.bytes).toString(), 'chunky'.slice(0, chunk.bytes.length));
      chunk.release();
      assert.throws(() => chunk.bytes);
    });

    it('serves many readChunk calls in a row as the pool recycles chunks', async function () {
      this.timeout(20_000);
      for (let i = 0; i < 300; i++) {
        const msg = pattern(500, i * 500);
        await pair.server.write(msg);
        const got: Uint8Array[] = [];
        let n = 0;
        // Bounded: each chunk has at least one byte.
        while (n < msg.length) {
          const chunk = await withTimeout(pair.client.readChunk(), 5000, `readChunk ${i}`);
          assert.ok(chunk !== null, 'readChunk resolved null before EOF');
          assert.ok(chunk.bytes.length >= 1);
          got.push(Uint8Array.from(chunk.bytes));
          n += chunk.bytes.length;
          chunk.release();
        }
        assertBytesEqual(Buffer.concat(got), msg, `message ${i}`);
      }
    });

    it('keeps a chunk that is not released intact while later chunks arrive', async function () {
      this.timeout(20_000);
      await pair.server.write(new Uint8Array(100).fill(0x41));
      const held = await withTimeout(pair.client.readChunk(), 5000, 'first readChunk');
      assert.ok(held !== null);
      const heldCopy = Uint8Array.from(held.bytes);
      // 1 MiB more through released chunks: enough to cycle a pool that wrongly reused held.
      const more = pattern(1024 * 1024);
      const writing = pair.server.write(more);
      const got: Uint8Array[] = [];
      let n = 0;
      let extraA = heldCopy.length < 100 ? 100 - heldCopy.length : 0;
      while (n < more.length) {
        const c: Chunk | null = await withTimeout(pair.client.readChunk(), 5000, 'readChunk');
        assert.ok(c !== null);
        let bytes = c.bytes;
        if (extraA > 0) {
          const k = Math.min(extraA, bytes.length);
          extraA -= k;
          bytes = bytes.subarray(k);
        }
        got.push(Uint8Array.from(bytes));
        n += bytes.length;
        c.release();
      }
      await writing;
      assertBytesEqual(Buffer.concat(got), more);
      assertBytesEqual(held.bytes, heldCopy, 'held chunk');
      held.release();
    });

    it('readChunk resolves null at EOF, and again after', async () => {
      await pair.server.write('end');
      pair.server.close();
      let text = '';
      for (let i = 0; i < 4; i++) {
        const chunk = await withTimeout(pair.client.readChunk(), 5000, 'readChunk');
        if (chunk === null) break;
        text += Buffer.from(chunk.bytes).toString();
        chunk.release();
      }
      assert.equal(text, 'end');
      assert.equal(await withTimeout(pair.client.readChunk(), 5000, 'readChunk after EOF'), null);
    });

    it('mixes read() and readChunk() on one connection without losing bytes', async () => {
      const msg = pattern(3000, 77);
      await pair.server.write(msg);
      const first = await withTimeout(readExactly(pair.client, 1000), 5000, 'read 1000');
      const rest: Uint8Array[] = [];
      let n = 1000;
      while (n < msg.length) {
        const chunk = await withTimeout(pair.client.readChunk(), 5000, 'readChunk');
        assert.ok(chunk !== null);
        rest.push(Uint8Array.from(chunk.bytes));
        n += chunk.bytes.length;
        chunk.release();
      }
      assertBytesEqual(Buffer.concat([first, ...rest]), msg);
    });
  });
}
