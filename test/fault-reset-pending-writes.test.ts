// Fault: the peer resets while our writes are queued or half sent. Every pending write
// rejects with ECONNRESET/EPIPE, pending reads settle, no socket leaks, the loop serves on.
import assert from 'node:assert/strict';
import { OpError, dial } from 'muxnet';
import type { Chunk, Conn } from 'muxnet';
import { loopConfigs, type LoopConfig } from './helpers/configs';
import { socketFds, socketsLeftOpen } from './helpers/fds';
import { roundTrip } from './helpers/io';
import { pattern } from './helpers/pattern';
import { connectPair, startEcho, startNodeServer } from './helpers/servers';
import { Resources, assertBytesEqual, describeError, observe, sleep, withTimeout, type Observed } from './helpers/util';

const kQueueLimit = 64 * 1024;
const kWriteSize = 32 * 1024;
const kWrites = 24;  // 768 KiB: far beyond the small socket buffers plus the queue limit

/** A pending write after a reset: an OpError 'write' with ECONNRESET or EPIPE, not a timeout. */
function assertWriteReset(err: unknown, what: string): void {
  assert.ok(err instanceof OpError, `${what}: expected OpError, got ${describeError(err)}`);
  assert.equal(err.op, 'write', what);
  assert.ok(['ECONNRESET', 'EPIPE'].includes(err.code), `${what}: code ${err.code}, expected ECONNRESET or EPIPE`);
  assert.equal(err.timeout(), false, what);
}

/**
 * A read pending across a reset either rejects with ECONNRESET or, when a write on the same
 * socket already collected the reset (the kernel reports it once), resolves end of stream.
 */
function assertReadAfterReset(o: Observed<unknown>, what: string): void {
  if (o.fulfilled) {
    assert.equal(o.value, null, `${what}: resolved ${String(o.value)}, expected null (EOF) or ECONNRESET`);
    return;
  }
  assert.ok(o.error instanceof OpError, `${what}: expected OpError, got ${describeError(o.error)}`);
  assert.equal(o.error.op, 'read', what);
  assert.equal(o.error.code, 'ECONNRESET', what);
}

/** Echoes one message on a fresh server and connection of the same loop config. */
async function assertLoopStillServes(cfg: LoopConfig, res: Resources): Promise<void> {
  const srv = res.add(startEcho(cfg.options));
  const c = res.add(await withTimeout(dial('tcp', srv.address, cfg.options), 5000, 'dial after the reset'));
  assertBytesEqual(await withTimeout(roundTrip(c, pattern(4096, 3)), 5000, 'echo after the reset'), pattern(4096, 3));
  c.close();
  await srv.close();
}

/** Fails the test with the sockets a step left open. */
async function assertNoNewSockets(before: Set<number> | null, what: string): Promise<void> {
  if (before === null) return;  // no /proc: nothing to count
  assert.deepEqual(await socketsLeftOpen(before), [], `sockets left open after ${what}`);
}

for (const cfg of loopConfigs()) {
  describe(`fault: peer reset with writes pending [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('rejects every queued and held write, settles pending reads, leaks nothing (muxnet peer, linger 0)', async function () {
      this.timeout(20_000);
      const before = socketFds();
      const options = { ...cfg.options, writeQueueLimit: kQueueLimit };
      const pair = res.add(await connectPair(options));
      const { client, server } = pair;
      client.setWriteBuffer(4096);
      server.setReadBuffer(4096);

      const reads = [observe(client.read(new Uint8Array(64))), observe(client.readChunk())];
      const writes: Observed<void>[] = [];
      for (let i = 0; i < kWrites; i++) writes.push(observe(client.write(pattern(kWriteSize, i * kWriteSize))));
      await sleep(50);
      const pending = writes.filter((w) => !w.settled);
      // More pending than the queue can hold: some are queued natively, others held in JS.
      assert.ok(pending.length * kWriteSize > kQueueLimit + 64 * 1024,
        `only ${pending.length} writes pending: the queue was not filled`);
      for (const w of writes) if (w.settled) assert.equal(w.error, undefined, 'a write failed before the reset');

      server.setLinger(0);
      server.close();
      const outcomes = await withTimeout(Promise.all(pending.map((w) => w.promise)), 5000, 'pending writes after the reset');
      outcomes.forEach((o, i) => assertWriteReset(o.error, `pending write ${i}`));
      const readOutcomes = await withTimeout(Promise.all(reads.map((r) => r.promise)), 5000, 'pending reads after the reset');
      readOutcomes.forEach((o, i) => assertReadAfterReset(o, `pending read ${i}`));
      (readOutcomes[1].value as Chunk | null)?.release();

      // Later calls fail the same way, at once, instead of hanging.
      assertReadAfterReset(await withTimeout(observe(client.read(new Uint8Array(8))).promise, 5000, 'read after the reset'), 'later read');
      assertWriteReset((await withTimeout(observe(client.write('more')).promise, 5000, 'write after the reset')).error, 'later write');

      pair.close();
      await assertNoNewSockets(before, 'the reset pair was closed');
      await assertLoopStillServes(cfg, res);
    });

    it('rejects a write reset half way through, with a prefix of it delivered (Node peer, resetAndDestroy)', async function () {
      this.timeout(20_000);
      const before = socketFds();
      const total = 8 * 1024 * 1024;
      const data = pattern(total);
      const resetAfter = 256 * 1024;
      let received = 0;
      let prefixOk = true;
      const node = res.add(await startNodeServer((s) => {
        s.on('data', (d: Buffer) => {
          if (!d.equals(Buffer.from(data.subarray(received, received + d.length)))) prefixOk = false;
          received += d.length;
          if (received >= resetAfter && !s.destroyed) s.resetAndDestroy();
        });
      }));
      const c: Conn = res.add(await withTimeout(dial('tcp', node.address, cfg.options), 5000, 'dial the Node peer'));
      c.setWriteBuffer(16 * 1024);
      const read = observe(c.read(new Uint8Array(64)));
      const big = observe(c.write(data));
      const after = observe(c.write(pattern(1024, total)));  // queued behind the big one
      const [bigOutcome, afterOutcome] = await withTimeout(Promise.all([big.promise, after.promise]), 10_000, 'writes after the reset');
      assertWriteReset(bigOutcome.error, 'the 8 MiB write');
      assertWriteReset(afterOutcome.error, 'the write queued behind it');
      assertReadAfterReset(await withTimeout(read.promise, 5000, 'read after the reset'), 'pending read');
      assert.ok(prefixOk, 'the peer received bytes that are not a prefix of the write');
      assert.ok(received >= resetAfter && received < total, `the peer received ${received} of ${total} bytes`);

      c.close();
      await node.close();
      await assertNoNewSockets(before, 'the reset connection was closed');
      await assertLoopStillServes(cfg, res);
    });

    it('ends a for-await loop of the writing side with the reset, its held writes rejected', async function () {
      this.timeout(20_000);
      const before = socketFds();
      const pair = res.add(await connectPair({ ...cfg.options, writeQueueLimit: kQueueLimit }));
      const { client, server } = pair;
      client.setWriteBuffer(4096);
      server.setReadBuffer(4096);
      // A proxy-like loop: every chunk read is answered by a large write the peer never reads.
      const reply = pattern(kWriteSize);
      const writes: Observed<void>[] = [];
      const loop = observe((async () => {
        let chunks = 0;
        for await (const data of client) {
          chunks += data.length > 0 ? 1 : 0;
          for (let i = 0; i < 8; i++) writes.push(observe(client.write(reply)));
        }
        return chunks;
      })());
      for (let i = 0; i < 4; i++) {
        await server.write(`request ${i}\n`);
        await sleep(10);
      }
      await sleep(50);
      assert.ok(writes.filter((w) => !w.settled).length * kWriteSize > kQueueLimit, 'the write queue was not filled');
      server.setLinger(0);
      server.close();
      const o = await withTimeout(loop.promise, 5000, 'the for-await loop after the reset');
      if (!o.fulfilled) {
        assert.ok(o.error instanceof OpError && o.error.code === 'ECONNRESET',
          `the loop failed with ${describeError(o.error)}, expected ECONNRESET or a normal end`);
      }
      const outcomes = await withTimeout(Promise.all(writes.map((w) => w.promise)), 5000, 'writes after the reset');
      const failed = outcomes.filter((w) => !w.fulfilled);
      assert.ok(failed.length > 0, 'no write was still pending at the reset');
      failed.forEach((w, i) => assertWriteReset(w.error, `write ${i}`));

      pair.close();
      await assertNoNewSockets(before, 'the reset pair was closed');
      await assertLoopStillServes(cfg, res);
    });
  });
}
