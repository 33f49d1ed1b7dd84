// Interop with Node's `net`: muxnet client <-> Node server and Node client <-> muxnet server.
import assert from 'node:assert/strict';
import type * as net from 'node:net';
import { dial, listen } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { readExactly, readToEnd } from './helpers/io';
import { PatternChecker, pattern } from './helpers/pattern';
import { closableSocket, nodeConnect, startEcho, startNodeEcho, startNodeServer } from './helpers/servers';
import { Resources, assertBytesEqual, withTimeout } from './helpers/util';

const kSize = 4 * 1024 * 1024;

/** Resolves with the number of bytes a Node socket received until 'end', checking the pattern. */
function nodeReadAll(s: net.Socket, what: string, start = 0): Promise<number> {
  const checker = new PatternChecker(what, start);
  return new Promise((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      try {
        checker.update(d);
      } catch (e) {
        reject(e);
        s.destroy();
      }
    });
    s.once('end', () => resolve(checker.received));
    s.once('error', reject);
  });
}

for (const cfg of loopConfigs()) {
  describe(`interop with node net [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('muxnet client echoes 4 MiB through a Node net server', async function () {
      this.timeout(30_000);
      const node = res.add(await startNodeEcho());
      const c = res.add(await dial('tcp', node.address, cfg.options));
      const data = pattern(kSize, 1);
      const reading = readToEnd(c);
      reading.catch(() => {});
      await withTimeout(c.write(data), 20_000, 'write 4 MiB');
      c.closeWrite();
      // Node's pipe ends its side once ours ended: the echo, then EOF.
      const echoed = await withTimeout(reading, 20_000, 'read the echo until EOF');
      assertBytesEqual(echoed, data);
    });

    it('Node net client echoes 4 MiB through a muxnet server', async function () {
      this.timeout(30_000);
      const srv = res.add(startEcho(cfg.options));
      const s = await nodeConnect(srv.port);
      res.add(closableSocket(s));
      const reading = nodeReadAll(s, 'echo to node client', 2);
      reading.catch(() => {});
      s.end(pattern(kSize, 2));
      const n = await withTimeout(reading, 20_000, 'node client reads the echo until end');
      assert.equal(n, kSize);
      assert.deepEqual(srv.errors, []);
    });

    it('muxnet server reads EOF from a Node client end() and still replies', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const s = await nodeConnect(ln.addr().port);
      res.add(closableSocket(s));
      const accepted = res.add(await withTimeout(ln.accept(), 5000, 'accept'));
      const replyDone = nodeReadAll(s, 'reply');
      replyDone.catch(() => {});
      s.end(pattern(1000));
      const req = await withTimeout(readToEnd(accepted), 5000, 'read the request until EOF');
      assertBytesEqual(req, pattern(1000));
      await accepted.write(pattern(5000));
      accepted.close();
      assert.equal(await withTimeout(replyDone, 5000, 'node reads the reply'), 5000);
    });

    it('Node server sees end from muxnet closeWrite and its reply still arrives', async () => {
      let ended = false;
      const node = res.add(
        await startNodeServer((sock) => {
          sock.resume();
          sock.once('end', () => {
            ended = true;
            sock.end('bye');
          });
        }),
      );
      const c = res.add(await dial('tcp', node.address, cfg.options));
      await c.write('hello');
      c.closeWrite();
      const reply = await withTimeout(readExactly(c, 3), 5000, 'reply after closeWrite');
      assert.equal(Buffer.from(reply).toString(), 'bye');
      assert.equal(ended, true);
      assert.equal(await withTimeout(c.read(new Uint8Array(1)), 5000, 'EOF'), null);
    });
  });
}
