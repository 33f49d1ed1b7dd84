// A 64 MiB one-way transfer, checked byte for byte as it arrives.
import assert from 'node:assert/strict';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { PatternChecker, fillPattern } from './helpers/pattern';
import { connectPair } from './helpers/servers';
import { Resources, withTimeout } from './helpers/util';

const kTotal = 64 * 1024 * 1024;

/** Reads until EOF, checking every byte against the pattern; returns the byte count. */
async function readAndCheck(conn: Conn): Promise<number> {
  const checker = new PatternChecker('64 MiB transfer');
  const buf = new Uint8Array(256 * 1024);
  // Bounded: every iteration consumes at least one byte and more than kTotal fails.
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return checker.received;
    assert.ok(n >= 1 && n <= buf.length, `read returned ${n}`);
    checker.update(buf.subarray(0, n));
    assert.ok(checker.received <= kTotal, 'more bytes than were sent');
  }
}

for (const cfg of loopConfigs()) {
  describe(`conn transfer [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('transfers 64 MiB in one direction byte for byte', async function () {
      this.timeout(120_000);
      const pair = res.add(await connectPair(cfg.options));
      const reader = readAndCheck(pair.server);
      reader.catch(() => {}); // awaited below; observed now in case the writer fails first
      const writer = (async () => {
        // One 1 MiB buffer refilled after each write: a resolved write must not still
        // reference the caller's bytes.
        const chunk = new Uint8Array(1024 * 1024);
        for (let off = 0; off < kTotal; off += chunk.length) {
          fillPattern(chunk, off);
          await pair.client.write(chunk);
        }
        pair.client.closeWrite();
      })();
      await withTimeout(writer, 100_000, 'writing 64 MiB');
      const received = await withTimeout(reader, 100_000, 'reading 64 MiB');
      assert.equal(received, kTotal);
    });
  });
}
