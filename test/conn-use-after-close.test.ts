// Using a Conn after close(): every call is an ErrClosed error, never a crash or a hang.
import assert from 'node:assert/strict';
import { ErrClosed, dial } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertErrClosed, rejectionOf, thrownBy } from './helpers/assert-errors';
import { readExactly } from './helpers/io';
import { connectPair, type Pair } from './helpers/servers';
import { Resources, withTimeout } from './helpers/util';

for (const cfg of loopConfigs()) {
  describe(`conn use after close [${cfg.name}]`, () => {
    const res = new Resources();
    let pair: Pair;
    beforeEach(async () => {
      pair = res.add(await connectPair(cfg.options));
      pair.client.close();
    });
    afterEach(() => res.closeAll());

    it('read rejects with ErrClosed', async () => {
      assertErrClosed(await withTimeout(rejectionOf(pair.client.read(new Uint8Array(8))), 5000, 'read'), 'read');
    });

    it('write rejects with ErrClosed', async () => {
      assertErrClosed(await withTimeout(rejectionOf(pair.client.write('x')), 5000, 'write'), 'write');
      assertErrClosed(await withTimeout(rejectionOf(pair.client.write(new Uint8Array(8))), 5000, 'write'), 'write');
    });

    it('readChunk rejects with ErrClosed', async () => {
      assertErrClosed(await withTimeout(rejectionOf(pair.client.readChunk()), 5000, 'readChunk'));
    });

    it('async iteration rejects with ErrClosed', async () => {
      const err = await withTimeout(
        rejectionOf((async () => {
          for await (const chunk of pair.client) void chunk;
        })()),
        5000,
        'iteration',
      );
      assertErrClosed(err);
    });

    it('setDeadline, setReadDeadline and setWriteDeadline throw ErrClosed', () => {
      assertErrClosed(thrownBy(() => pair.client.setDeadline(Date.now() + 1000)));
      assertErrClosed(thrownBy(() => pair.client.setReadDeadline(Date.now() + 1000)));
      assertErrClosed(thrownBy(() => pair.client.setWriteDeadline(0)));
    });

    it('socket option setters throw ErrClosed', () => {
      assertErrClosed(thrownBy(() => pair.client.setNoDelay(true)));
      assertErrClosed(thrownBy(() => pair.client.setKeepAlive(true)));
      assertErrClosed(thrownBy(() => pair.client.setLinger(0)));
      assertErrClosed(thrownBy(() => pair.client.setReadBuffer(65536)));
      assertErrClosed(thrownBy(() => pair.client.setWriteBuffer(65536)));
    });

    it('closeWrite throws ErrClosed', () => {
      assertErrClosed(thrownBy(() => pair.client.closeWrite()));
    });

    it('localAddr and remoteAddr return the address or throw ErrClosed', () => {
      for (const get of [() => pair.client.localAddr(), () => pair.client.remoteAddr()]) {
        let value: unknown;
        try {
          value = get();
        } catch (e) {
          assert.ok(e instanceof ErrClosed, `threw something other than ErrClosed: ${String(e)}`);
          continue;
        }
        // Go keeps the addresses readable after Close.
        assert.match(String(value), /^127\.0\.0\.1:\d+$/);
      }
    });

    it('leaves the peer and the listener working', async () => {
      assert.equal(await withTimeout(pair.server.read(new Uint8Array(8)), 5000, 'peer EOF'), null);
      const [s2, c2] = await withTimeout(
        Promise.all([pair.ln.accept(), dial('tcp', pair.ln.addr().toString(), cfg.options)]),
        5000,
        'a new connection on the same listener',
      );
      res.add(s2);
      res.add(c2);
      await c2.write('z');
      const got = await withTimeout(readExactly(s2, 1), 5000, 'read on the new connection');
      assert.equal(got[0], 'z'.charCodeAt(0));
    });
  });
}
