// pipe(src, dst): a proxy's two directions, byte for byte, with backpressure, half-close and errors passed through.
import assert from 'node:assert/strict';
import { backends, pipe } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertArgError, rejectionOf } from './helpers/assert-errors';
import { PatternChecker, pattern } from './helpers/pattern';
import { connectPair, type Pair } from './helpers/servers';
import { readExactly, readToEnd } from './helpers/io';
import { Resources, observe, sleep, withTimeout } from './helpers/util';
import { skipIf, underWine, wineResetIsEof } from './helpers/platform';

const kMiB = 1024 * 1024;
const dec = new TextDecoder();

/** client <-> [a | proxy | b] <-> server: two pairs joined by two pipes. */
async function proxied(res: Resources, options: object): Promise<{ client: Conn; server: Conn; up: Promise<number>; down: Promise<number>; front: Pair; back: Pair }> {
  const front = res.add(await connectPair(options));  // front.client is the user's client, front.server the proxy's side
  const back = res.add(await connectPair(options));   // back.client is the proxy's side, back.server the origin
  const up = pipe(front.server, back.client);
  const down = pipe(back.client, front.server);
  up.catch(() => {});
  down.catch(() => {});
  return { client: front.client, server: back.server, up, down, front, back };
}

for (const cfg of loopConfigs()) {
  describe(`pipe [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('carries 8 MiB each way byte for byte, and passes each end of stream on (half-close)', async function () {
      this.timeout(60_000);
      const p = await proxied(res, cfg.options);
      // The origin echoes everything, then ends its side after the client ended its side.
      const echo = (async () => {
        const buf = new Uint8Array(64 * 1024);
        for (;;) {
          const n = await p.server.read(buf);
          if (n === null) break;
          await p.server.write(buf.slice(0, n));
        }
        await p.server.write('origin done');
        p.server.closeWrite();
      })();
      const reading = (async () => {
        const checker = new PatternChecker('echo through pipe');
        const buf = new Uint8Array(64 * 1024);
        while (checker.received < 8 * kMiB) {
          const n = await p.client.read(buf.subarray(0, Math.min(buf.length, 8 * kMiB - checker.received)));
          assert.ok(n !== null, `EOF after ${checker.received} bytes`);
          checker.update(buf.subarray(0, n));
        }
        return checker.received;
      })();
      for (let off = 0; off < 8 * kMiB; off += kMiB) await p.client.write(pattern(kMiB, off));
      p.client.closeWrite();
      assert.equal(await withTimeout(reading, 30_000, 'the echo'), 8 * kMiB);
      // After the client's end went through, the origin could still send, and its end came back.
      assert.equal(dec.decode(await withTimeout(readToEnd(p.client), 10_000, "the origin's last words")), 'origin done');
      await echo;
      assert.equal(await withTimeout(p.up, 5000, 'the upstream pipe'), 8 * kMiB);
      assert.equal(await withTimeout(p.down, 5000, 'the downstream pipe'), 8 * kMiB + 'origin done'.length);
    });

    it('a destination that does not read stops the reads from the source, and the bytes flow once it does', async function () {
      this.timeout(60_000);
      const p = await proxied(res, cfg.options);
      for (const c of [p.client, p.server, p.front.server, p.back.client]) {
        c.setReadBuffer(16 * 1024);
        c.setWriteBuffer(16 * 1024);
      }
      const total = 16 * kMiB;
      const writes = observe((async () => {
        for (let off = 0; off < total; off += kMiB) await p.client.write(pattern(kMiB, off));
      })());
      await sleep(300);
      assert.equal(writes.settled, false, "the client's writes wait: nobody reads at the far end");
      assert.ok(p.front.server.writableLength === 0 && p.back.client.writableLength <= 4 * kMiB,
        `the proxy holds little: ${p.back.client.writableLength} bytes queued`);
      const got = await withTimeout(readExactly(p.server, total), 30_000, 'everything once the origin reads');
      new PatternChecker('after backpressure').update(got);  // throws at the first wrong byte
      await writes.promise;
      assert.equal(writes.fulfilled, true);
    });

    it('a reset at the far end rejects the pipe writing to it with its OpError', async function () {
      skipIf(this, underWine(), wineResetIsEof);
      const p = await proxied(res, cfg.options);
      await p.client.write('hello');
      assert.equal(dec.decode(await readExactly(p.server, 5)), 'hello');
      p.server.setLinger(0);
      p.server.close();  // RST to the proxy's back side
      const err = await withTimeout(rejectionOf(p.down), 5000, 'the downstream pipe to fail');
      assert.match((err as { code?: string }).code ?? '', /^(ECONNRESET|EPIPE)$/, String(err));
      // The proxy then closes both sides: the client sees its end.
      p.front.server.close();
      p.back.client.close();
      assert.equal((await withTimeout(readToEnd(p.client), 5000, 'the client sees the end')).length, 0);
    });

    it('carries a stream, then 4000 small messages, in order (small segments spliced: a pipe slot each)', async function () {
      this.timeout(30_000);
      const p = await proxied(res, cfg.options);
      p.server.setReadBuffer(64 * 1024);
      const head = 256 * 1024;
      const total = head + 4000 * 37;
      const all = pattern(total);
      // The stream first (pipe() moves to splice on Linux), then unawaited 37-byte writes:
      // many small segments reach the proxy, each taking a pipe slot however little it fills.
      const writes = [p.client.write(all.subarray(0, head))];
      for (let i = 0; i < 4000; i++) writes.push(p.client.write(all.subarray(head + i * 37, head + (i + 1) * 37)));
      const got = await withTimeout(readExactly(p.server, total), 20_000, 'every message');
      new PatternChecker('stream then small messages').update(got);
      await Promise.all(writes);
    });

    it('between connections on two loops copies through the pool, with the same behaviour', async function () {
      this.timeout(30_000);
      const name = ['poll', 'select', ...backends()].find((b) => b !== cfg.options.backend && backends().includes(b));
      skipIf(this, name === undefined, 'a second loop needs a second backend');
      const other = { backend: name! };
      const front = res.add(await connectPair(cfg.options));
      const back = res.add(await connectPair(other));
      const up = pipe(front.server, back.client);
      await front.client.write(pattern(kMiB));
      front.client.closeWrite();
      const got = await withTimeout(readToEnd(back.server), 10_000, 'the bytes across loops');
      new PatternChecker('across loops').update(got);
      assert.equal(got.length, kMiB);
      assert.equal(await up, kMiB);
    });

    it('checks its arguments', async () => {
      const pair = res.add(await connectPair(cfg.options));
      assertArgError(await rejectionOf(pipe({} as Conn, pair.client)), /^src: expected a Conn/);
      assertArgError(await rejectionOf(pipe(pair.client, null as never)), /^dst: expected a Conn/);
      assertArgError(await rejectionOf(pipe(pair.client, pair.client)), /^dst: expected a different Conn/);
    });
  });
}
