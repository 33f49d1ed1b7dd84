// closeWrite (shutdown SHUT_WR): the peer reads EOF while the other direction stays open.
import assert from 'node:assert/strict';
import { loopConfigs } from './helpers/configs';
import { readExactly, readToEnd } from './helpers/io';
import { pattern } from './helpers/pattern';
import { connectPair, type Pair } from './helpers/servers';
import { Resources, assertBytesEqual, withTimeout } from './helpers/util';

for (const cfg of loopConfigs()) {
  describe(`conn half-close [${cfg.name}]`, () => {
    const res = new Resources();
    let pair: Pair;
    beforeEach(async () => {
      pair = res.add(await connectPair(cfg.options));
    });
    afterEach(() => res.closeAll());

    it('client closeWrite: the server reads EOF and can still write back', async () => {
      const { client, server } = pair;
      await client.write('request');
      client.closeWrite();
      const req = await withTimeout(readToEnd(server), 5000, 'server reads until EOF');
      assert.equal(Buffer.from(req).toString(), 'request');
      const reply = pattern(200_000);
      await withTimeout(server.write(reply), 5000, 'server writes after client closeWrite');
      server.close();
      const got = await withTimeout(readToEnd(client), 5000, 'client reads the reply');
      assertBytesEqual(got, reply);
    });

    it('server closeWrite: the client reads EOF and can still write back', async () => {
      const { client, server } = pair;
      await server.write('banner');
      server.closeWrite();
      const banner = await withTimeout(readToEnd(client), 5000, 'client reads until EOF');
      assert.equal(Buffer.from(banner).toString(), 'banner');
      const reply = pattern(200_000, 5);
      const [, got] = await withTimeout(
        Promise.all([client.write(reply), readExactly(server, reply.length)]),
        5000,
        'client writes after server closeWrite',
      );
      assertBytesEqual(got, reply);
    });

    it('bytes written before closeWrite all arrive before EOF', async () => {
      const { client, server } = pair;
      const data = pattern(1024 * 1024, 9);
      const reading = readToEnd(server);
      reading.catch(() => {});
      await withTimeout(client.write(data), 10_000, 'write before closeWrite');
      client.closeWrite();
      const got = await withTimeout(reading, 10_000, 'read until EOF');
      assertBytesEqual(got, data);
    });
  });
}

for (const cfg of loopConfigs()) {
  describe(`conn closeWrite with writes waiting for queue room [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('sends every write made before closeWrite(), resolves them all, then EOF', async function () {
      this.timeout(20_000);
      const pair = res.add(await connectPair({ ...cfg.options, writeQueueLimit: 64 * 1024 }));
      const { client, server } = pair;
      // A small send buffer so most writes wait; the receive side keeps its default (shrinking
      // it after the handshake can stall loopback TCP on retransmission timers).
      client.setWriteBuffer(16 * 1024);
      const block = new Uint8Array(16 * 1024).fill(9);
      // The peer is not reading yet: most of these wait for room in the write queue.
      const writes = Array.from({ length: 100 }, () => client.write(block));
      client.closeWrite();
      await assert.rejects(client.write(block), (err: { code?: string }) => err.code === 'EPIPE');
      const got = await withTimeout(readToEnd(server, 4 * 1024 * 1024), 10_000, 'read until EOF');
      assert.equal(got.length, 100 * block.length);
      await withTimeout(Promise.all(writes), 5000, 'every write resolves');
    });
  });
}
