// conn.sendFile(): a file's bytes to the peer without passing through JavaScript, in order with writes, with deadlines, close and errors as for write().
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { DialOptions } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertArgError, assertDeadlineExceeded, assertErrClosed, rejectionOf } from './helpers/assert-errors';
import { socketFds, socketsLeftOpen } from './helpers/fds';
import { PatternChecker, pattern } from './helpers/pattern';
import { connectPair } from './helpers/servers';
import { readExactly, readToEnd } from './helpers/io';
import { Resources, sleep, withTimeout } from './helpers/util';

const kMiB = 1024 * 1024;
const dec = new TextDecoder();

/** The descriptors this process has open (any kind), or null where /proc is missing. */
function openFds(): number | null {
  try {
    return require('node:fs').readdirSync('/proc/self/fd').length as number;
  } catch {
    return null;
  }
}

describe('conn sendFile', () => {
  let dir: string;
  let big: string;  // 16 MiB of the test pattern
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'muxnet-sendfile-'));
    big = path.join(dir, 'big.bin');
    writeFileSync(big, pattern(16 * kMiB));
    writeFileSync(path.join(dir, 'small.txt'), 'hello file\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const cfg of loopConfigs()) {
    describe(`[${cfg.name}]`, () => {
      const res = new Resources();
      afterEach(() => res.closeAll());

      it('sends a 16 MiB file byte for byte, and a range of it, resolving with the bytes sent', async function () {
        this.timeout(60_000);
        const pair = res.add(await connectPair(cfg.options));
        const reading = (async () => {
          const checker = new PatternChecker('sendFile');
          const buf = new Uint8Array(256 * 1024);
          while (checker.received < 16 * kMiB) {
            const n = await pair.server.read(buf);
            assert.ok(n !== null, `EOF after ${checker.received} bytes`);
            checker.update(buf.subarray(0, n));
          }
          return checker.received;
        })();
        assert.equal(await pair.client.sendFile(big), 16 * kMiB);
        assert.equal(await withTimeout(reading, 30_000, 'the whole file'), 16 * kMiB);
        // A range: bytes [1000, 1000 + 5000) of the pattern.
        assert.equal(await pair.client.sendFile(big, { offset: 1000, length: 5000 }), 5000);
        assert.deepEqual(await readExactly(pair.server, 5000), pattern(16 * kMiB).subarray(1000, 6000));
      });

      it('keeps its place among writes, also behind a full write queue', async () => {
        // A small queue, so the writes before it are held behind a full queue.
        const options: DialOptions & { writeQueueLimit: number } = { ...cfg.options, writeQueueLimit: 16 * 1024 };
        const pair = res.add(await connectPair(options));
        pair.client.setWriteBuffer(16 * 1024);
        const filler = pattern(kMiB);
        const done = Promise.all([
          pair.client.write('head:'),
          pair.client.write(filler),
          pair.client.sendFile(path.join(dir, 'small.txt')),
          pair.client.write(':tail'),
        ]);
        const got = await withTimeout(readExactly(pair.server, 5 + kMiB + 11 + 5), 20_000, 'everything');
        await done;
        assert.equal(dec.decode(got.subarray(0, 5)), 'head:');
        assert.deepEqual(got.subarray(5, 5 + kMiB), filler);
        assert.equal(dec.decode(got.subarray(5 + kMiB)), 'hello file\n:tail');
      });

      it('rejects a range past the end of the file before sending anything; the connection goes on', async () => {
        const pair = res.add(await connectPair(cfg.options));
        const small = path.join(dir, 'small.txt');
        const err = await rejectionOf(pair.client.sendFile(small, { offset: 4, length: 100 }));
        assert.ok(err instanceof RangeError, String(err));
        assert.match((err as Error).message, /options\.length: .*small\.txt" has 11 bytes, fewer than offset 4 \+ length 100/);
        assert.equal(await pair.client.sendFile(small, { offset: 6 }), 5);
        pair.client.closeWrite();
        assert.equal(dec.decode(await readToEnd(pair.server)), 'file\n', 'only the good range arrived');
      });

      it('a peer that resets mid-transfer rejects it with the OpError (no SIGPIPE), and the file is closed', async function () {
        this.timeout(30_000);
        const pair = res.add(await connectPair(cfg.options));
        const withPair = openFds();  // the listener and both ends
        pair.server.setLinger(0);
        const sending = pair.client.sendFile(big);
        await readExactly(pair.server, 64 * 1024);
        pair.server.close();  // RST: linger 0
        const err = await withTimeout(rejectionOf(sending), 10_000, 'the transfer to fail');
        assert.match((err as { code?: string }).code ?? '', /^(ECONNRESET|EPIPE)$/, String(err));
        assert.equal((err as { op?: string }).op, 'write');
        pair.client.close();
        if (withPair !== null) {
          // Both ends are closed, and so is the file sendFile opened.
          await withTimeout((async () => { while (openFds()! > withPair - 2) await sleep(10); })(), 5000, 'the file and sockets closed');
        }
      });

      it('a write deadline rejects a stalled transfer; close() rejects one in flight', async () => {
        const pair = res.add(await connectPair(cfg.options));
        pair.client.setWriteBuffer(16 * 1024);
        pair.server.setReadBuffer(16 * 1024);
        pair.client.setWriteDeadline(Date.now() + 100);
        assertDeadlineExceeded(await withTimeout(rejectionOf(pair.client.sendFile(big)), 10_000, 'the deadline'), 'write');
        pair.client.setWriteDeadline(0);
        const second = rejectionOf(pair.client.sendFile(big));
        await sleep(20);
        pair.client.close();
        assertErrClosed(await withTimeout(second, 10_000, 'close to reject it'), 'write');
        assertErrClosed(await rejectionOf(pair.client.sendFile(big)), 'write');
      });

      it('takes an open descriptor and leaves it open; checks its arguments', async () => {
        const before = socketFds();
        const pair = res.add(await connectPair(cfg.options));
        const fd = openSync(path.join(dir, 'small.txt'), 'r');
        try {
          assert.equal(await pair.client.sendFile(fd, { length: 5 }), 5);
          assert.equal(await pair.client.sendFile(fd, { offset: 5 }), 6, 'the offset is the call\'s, not the descriptor\'s');
          assert.equal(dec.decode(await readExactly(pair.server, 11)), 'hello file\n');
        } finally {
          closeSync(fd);  // still ours: closing it must not fail
        }
        assertArgError(await rejectionOf(pair.client.sendFile(-1)), /^file: expected a path or an open file descriptor/);
        assertArgError(await rejectionOf(pair.client.sendFile(big, { offset: -1 })), /options\.offset/);
        assertArgError(await rejectionOf(pair.client.sendFile(big, { length: 1.5 })), /options\.length/);
        assertArgError(await rejectionOf(pair.client.sendFile(big, null as never)), /^options: expected an object/);
        assertArgError(await rejectionOf(pair.client.sendFile(dir)), /file: expected a regular file/);
        assert.equal((await rejectionOf(pair.client.sendFile(path.join(dir, 'missing')))  as { code?: string }).code, 'ENOENT');
        pair.close();
        if (before !== null) assert.deepEqual(await socketsLeftOpen(before), []);
      });
    });
  }
});
