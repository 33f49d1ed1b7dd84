// Backpressure: writes to a peer that never reads stay pending, memory stays bounded,
// close rejects what is pending, and pending writes finish in order once the peer reads.
import assert from 'node:assert/strict';
import type { DialOptions } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertErrClosed } from './helpers/assert-errors';
import { PatternChecker, pattern } from './helpers/pattern';
import { connectPair, type Pair } from './helpers/servers';
import { readExactly } from './helpers/io';
import { Resources, observe, sleep, withTimeout, type Observed } from './helpers/util';

const kQueueLimit = 64 * 1024;
const kMiB = 1024 * 1024;

for (const cfg of loopConfigs()) {
  describe(`conn backpressure [${cfg.name}]`, () => {
    const res = new Resources();
    let pair: Pair;
    beforeEach(async () => {
      // writeQueueLimit is a dial/listen option that DialOptions may not declare.
      const options: DialOptions & { writeQueueLimit: number } = { ...cfg.options, writeQueueLimit: kQueueLimit };
      pair = res.add(await connectPair(options));
      pair.client.setWriteBuffer(16 * 1024);
      pair.server.setReadBuffer(16 * 1024);
    });
    afterEach(() => res.closeAll());

    it('exposes the writeQueueLimit it was given', () => {
      assert.equal(pair.client.writeQueueLimit, kQueueLimit);
    });

    it('leaves a write pending against a peer that never reads, with memory bounded', async function () {
      this.timeout(30_000);
      // One 32 KiB buffer written 4,096 times (128 MiB): a queue that copied or kept
      // growing would show in RSS; one that applies backpressure holds a bounded amount.
      const chunk = pattern(32 * 1024);
      const writes: Observed<void>[] = [];
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      let rssPeak = rssBefore;
      for (let i = 0; i < 4096; i++) {
        writes.push(observe(pair.client.write(chunk)));
        if (i % 64 === 63) {
          await sleep(1);
          rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
        }
      }
      await sleep(200);
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      const stuck = writes.find((w) => !w.settled);
      assert.ok(stuck, 'every write settled although the peer never reads');
      // 128 MiB nobody awaits is more than the held queue's 64 MiB bound: the writes past it
      // reject with ENOBUFS instead of piling up; none of the others failed.
      const failed = writes.filter((w) => w.settled && !w.fulfilled);
      assert.ok(failed.length > 0, 'no write past the held bound rejected');
      for (const w of failed) assert.equal((w.error as { code?: string }).code, 'ENOBUFS', String(w.error));
      assert.ok(pair.client.writableLength > 0 && pair.client.writableLength <= kQueueLimit + chunk.length + 64 * kMiB,
        `writableLength ${pair.client.writableLength} outside its bound`);
      const growth = rssPeak - rssBefore;
      assert.ok(growth < 64 * kMiB, `RSS grew by ${(growth / kMiB).toFixed(1)} MiB for 128 MiB of queued writes`);

      // Still pending after a further wait: nothing resolves a write that has not gone out.
      await sleep(100);
      assert.equal(stuck.settled, false);
      const pending = writes.filter((w) => !w.settled);
      pair.client.close();
      const outcomes = await withTimeout(Promise.all(pending.map((w) => w.promise)), 10_000, 'pending writes after close');
      for (const o of outcomes) assertErrClosed(o.error, 'write');
    });

    it('counts queued bytes in writableLength until the writes are in the kernel', async function () {
      this.timeout(30_000);
      assert.equal(pair.client.writableLength, 0);
      const total = 8 * kMiB;
      const data = pattern(total);
      const written = pair.client.write(data);
      // The peer does not read yet: most of 8 MiB cannot be in the kernel.
      assert.ok(pair.client.writableLength > 0, 'nothing counted while a write is pending');
      assert.ok(pair.client.writableLength <= total);
      const got = readExactly(pair.server, total);
      await withTimeout(written, 20_000, 'the write');
      assert.equal(pair.client.writableLength, 0, 'counted after the write resolved');
      assert.equal((await got).length, total);
    });

    it('resolves the pending writes in order once the peer reads, with the bytes in order', async function () {
      this.timeout(30_000);
      const total = 8 * kMiB;
      const data = pattern(total);
      const chunkSize = 64 * 1024;
      const order: number[] = [];
      const writes: Promise<void>[] = [];
      for (let off = 0, i = 0; off < total; off += chunkSize, i++) {
        writes.push(pair.client.write(data.subarray(off, off + chunkSize)).then(() => void order.push(i)));
      }
      const all = observe(Promise.all(writes));
      await sleep(100);
      assert.equal(all.settled, false, '8 MiB went out although the peer never read');
      // Now drain on the server side.
      const checker = new PatternChecker('backpressured stream');
      const buf = new Uint8Array(256 * 1024);
      const reader = (async () => {
        while (checker.received < total) {
          const n = await pair.server.read(buf);
          if (n === null) throw new Error(`EOF after ${checker.received} bytes`);
          checker.update(buf.subarray(0, n));
        }
      })();
      await withTimeout(reader, 20_000, 'peer drains 8 MiB');
      const o = await withTimeout(all.promise, 10_000, 'writes resolve after the drain');
      assert.equal(o.error, undefined, `a write rejected: ${String(o.error)}`);
      assert.deepEqual(order, Array.from({ length: writes.length }, (_, i) => i));
      assert.equal(checker.received, total);
    });
  });
}
