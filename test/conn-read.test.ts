// conn.read semantics: partial reads, EOF as null, zero-length and offset buffers.
import assert from 'node:assert/strict';
import { loopConfigs } from './helpers/configs';
import { readExactly, readToEnd } from './helpers/io';
import { pattern } from './helpers/pattern';
import { connectPair, type Pair } from './helpers/servers';
import { Resources, assertBytesEqual, observe, sleep, withTimeout } from './helpers/util';

for (const cfg of loopConfigs()) {
  describe(`conn read [${cfg.name}]`, () => {
    const res = new Resources();
    let pair: Pair;
    beforeEach(async () => {
      pair = res.add(await connectPair(cfg.options));
    });
    afterEach(() => res.closeAll());

    it('reads a 100-byte message into a 10-byte buffer over several reads', async () => {
      const msg = pattern(100);
      await pair.server.write(msg);
      const buf = new Uint8Array(10);
      const got: number[] = [];
      let reads = 0;
      // At most 100 reads: each one returns at least a byte.
      while (got.length < msg.length && reads < 100) {
        const n = await withTimeout(pair.client.read(buf), 5000, 'partial read');
        assert.notEqual(n, null, 'EOF before the whole message');
        assert.ok(n! >= 1 && n! <= 10, `read returned ${n} for a 10-byte buffer`);
        got.push(...buf.subarray(0, n!));
        reads++;
      }
      assert.ok(reads >= 10, `100 bytes through a 10-byte buffer took only ${reads} reads`);
      assertBytesEqual(Uint8Array.from(got), msg);
    });

    it('resolves null at EOF, and null again on the next read', async () => {
      await pair.server.write('abc');
      pair.server.close();
      const data = await withTimeout(readToEnd(pair.client), 5000, 'read to EOF');
      assert.equal(Buffer.from(data).toString(), 'abc');
      const buf = new Uint8Array(16);
      assert.equal(await withTimeout(pair.client.read(buf), 5000, 'read after EOF'), null);
      assert.equal(await withTimeout(pair.client.read(buf), 5000, 'second read after EOF'), null);
    });

    it('resolves a pending read with null when the peer closes', async () => {
      const pending = observe(pair.client.read(new Uint8Array(16)));
      await sleep(50);
      assert.equal(pending.settled, false, 'read settled with nothing sent');
      pair.server.close();
      const o = await withTimeout(pending.promise, 5000, 'pending read at EOF');
      assert.equal(o.error, undefined);
      assert.equal(o.value, null);
    });

    it('resolves a pending read when data arrives later', async () => {
      const buf = new Uint8Array(64);
      const pending = observe(pair.client.read(buf));
      await sleep(50);
      assert.equal(pending.settled, false, 'read settled before any data was sent');
      await pair.server.write('late');
      const o = await withTimeout(pending.promise, 5000, 'read of late data');
      assert.equal(o.error, undefined);
      const n = o.value as number;
      assert.ok(n >= 1 && n <= 4, `read returned ${n}`);
      assert.equal(Buffer.from(buf.subarray(0, n)).toString(), 'late'.slice(0, n));
    });

    it('resolves 0 for a zero-length buffer', async () => {
      await pair.server.write('x');
      const n = await withTimeout(pair.client.read(new Uint8Array(0)), 5000, 'zero-length read');
      assert.equal(n, 0);
      // The byte is still there for the next read.
      const b = await withTimeout(readExactly(pair.client, 1), 5000, 'read after zero-length read');
      assert.equal(b[0], 'x'.charCodeAt(0));
    });

    it('reads into a subarray at its offset without touching the bytes around it', async () => {
      const backing = new Uint8Array(64).fill(0xee);
      const view = backing.subarray(16, 48);
      await pair.server.write(pattern(32));
      let off = 0;
      for (let i = 0; i < 32 && off < 32; i++) {
        const n = await withTimeout(pair.client.read(view.subarray(off)), 5000, 'read into view');
        assert.ok(n !== null && n >= 1);
        off += n;
      }
      assertBytesEqual(backing.subarray(16, 48), pattern(32));
      assert.ok(backing.subarray(0, 16).every((b) => b === 0xee), 'bytes before the view changed');
      assert.ok(backing.subarray(48).every((b) => b === 0xee), 'bytes after the view changed');
    });

    it('reads into a Node Buffer', async () => {
      await pair.server.write('buffer!');
      const buf = Buffer.alloc(7);
      let off = 0;
      for (let i = 0; i < 7 && off < 7; i++) {
        const n = await withTimeout(pair.client.read(buf.subarray(off)), 5000, 'read into Buffer');
        assert.ok(n !== null && n >= 1);
        off += n;
      }
      assert.equal(buf.toString(), 'buffer!');
    });
  });
}
