// Several reads pending at once — read() and readChunk() mixed — are served in order, and
// none waits for readiness that already came (edge-triggered loops report it once).
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { listen, type Chunk, type Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { connectPair } from './helpers/servers';
import { Resources, sleep, withTimeout } from './helpers/util';

function text(chunk: Chunk | null): string | null {
  if (chunk === null) return null;
  const s = Buffer.from(chunk.bytes).toString();
  chunk.release();
  return s;
}

async function readText(c: Conn, size: number): Promise<string | null> {
  const buf = new Uint8Array(size);
  const n = await c.read(buf);
  return n === null ? null : Buffer.from(buf.subarray(0, n)).toString();
}

for (const cfg of loopConfigs()) {
  describe(`conn read order [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('serves a readChunk() and then two read()s queued together, message by message', async () => {
      const { client, server } = res.add(await connectPair(cfg.options));
      const first = server.readChunk();
      const second = readText(server, 16);
      const third = readText(server, 16);
      for (const word of ['hello', 'world', 'again']) {
        await client.write(word);
        await sleep(30);  // one message per readiness event
      }
      assert.equal(text(await withTimeout(first, 5000, 'readChunk')), 'hello');
      assert.equal(await withTimeout(second, 5000, 'second read'), 'world');
      assert.equal(await withTimeout(third, 5000, 'third read'), 'again');
    });

    it('a readChunk() queued behind a short read() gets the rest of the same readiness', async () => {
      const { client, server } = res.add(await connectPair(cfg.options));
      const small = server.read(new Uint8Array(4));
      const chunk = server.readChunk();
      await client.write(Buffer.alloc(100, 7));
      assert.equal(await withTimeout(small, 5000, 'read(4)'), 4);
      const rest = await withTimeout(chunk, 5000, 'readChunk after read(4)');
      assert.equal(rest?.bytes.length, 96);
      rest?.release();
    });

    it('two pending readChunk()s both complete when more than a chunk arrives at once', async () => {
      const { client, server } = res.add(await connectPair(cfg.options));
      const a = server.readChunk();
      const b = server.readChunk();
      await client.write(Buffer.alloc(100_000, 1));
      const first = await withTimeout(a, 5000, 'first chunk');
      const second = await withTimeout(b, 5000, 'second chunk');
      assert.equal((first?.bytes.length ?? 0) + (second?.bytes.length ?? 0) <= 100_000, true);
      assert.ok((second?.bytes.length ?? 0) > 0, 'the second chunk has bytes');
      first?.release();
      second?.release();
    });

    it('data that comes with the peer\'s FIN is read before EOF, whatever the read kinds', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const accepted = ln.accept();
      const peer = net.connect(ln.addr().port, '127.0.0.1');
      await new Promise((resolve) => peer.once('connect', resolve));
      const server = res.add(await withTimeout(accepted, 5000, 'accept'));
      const chunk = server.readChunk();
      const after = readText(server, 16);
      peer.write('one');
      await sleep(30);
      peer.end('two');
      assert.equal(text(await withTimeout(chunk, 5000, 'chunk')), 'one');
      assert.equal(await withTimeout(after, 5000, 'read after the chunk'), 'two');
      assert.equal(await withTimeout(readText(server, 16), 5000, 'read at EOF'), null);
      assert.equal(await withTimeout(readText(server, 16), 5000, 'read after EOF'), null);
      peer.destroy();
    });
  });
}
