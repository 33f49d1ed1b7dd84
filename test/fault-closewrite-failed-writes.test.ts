// Fault: closeWrite() waits for writes held behind a full queue; when those writes fail
// instead (a write deadline), the connection must still shut down, so the peer reads EOF.
// (Found while writing the API fuzz: the peer's read hung for ever.)
import assert from 'node:assert/strict';
import { assertDeadlineExceeded } from './helpers/assert-errors';
import { loopConfigs } from './helpers/configs';
import { PatternChecker, pattern } from './helpers/pattern';
import { connectPair } from './helpers/servers';
import { Resources, describeError, observe, sleep, withTimeout } from './helpers/util';

const kQueueLimit = 64 * 1024;

for (const cfg of loopConfigs()) {
  describe(`fault: closeWrite with held writes that fail [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('still sends end of stream when a write deadline rejects the held writes', async function () {
      this.timeout(15_000);
      const pair = res.add(await connectPair({ ...cfg.options, writeQueueLimit: kQueueLimit }));
      const { client, server } = pair;
      client.setWriteBuffer(16 * 1024);
      server.setReadBuffer(16 * 1024);
      const size = 64 * 1024;
      const writes = Array.from({ length: 10 }, (_, i) => observe(client.write(pattern(size, i * size))));
      await sleep(20);
      assert.ok(writes.filter((w) => !w.settled).length >= 2, 'no write was held behind the full queue');
      client.closeWrite();
      client.setWriteDeadline(Date.now() + 50);
      const outcomes = await withTimeout(Promise.all(writes.map((w) => w.promise)), 5000, 'writes after the deadline');
      for (const o of outcomes.filter((w) => !w.fulfilled)) assertDeadlineExceeded(o.error, 'write');

      // The peer reads a prefix of the stream, then end of stream instead of waiting for ever.
      const checker = new PatternChecker('client->server');
      const buf = new Uint8Array(64 * 1024);
      const eof = (async () => {
        for (;;) {
          const n = await server.read(buf);
          if (n === null) return;
          checker.update(buf.subarray(0, n));
        }
      })();
      await withTimeout(eof, 5000, 'end of stream after closeWrite');
      assert.ok(checker.received < writes.length * size, 'every byte arrived although writes failed');
      const later = await observe(client.write('x')).promise;
      assert.equal((later.error as { code?: string })?.code, 'EPIPE', `write after closeWrite: ${describeError(later.error)}`);
    });
  });
}
