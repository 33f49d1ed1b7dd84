// A Conn dropped without close() is reclaimed when collected (socket closed, warning), but never one with work in flight.
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { dial, listen } from 'muxnet';
import type { Conn, Listener } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { socketFds } from './helpers/fds';
import { readExactly } from './helpers/io';
import { Resources, sleep, withTimeout } from './helpers/util';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects garbage between turns (a WeakRef stays alive until its turn ends) until `done()`, at most 50 times. */
async function collectUntil(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 50 && !done(); i++) {
    gc();
    await sleep(10);
  }
  assert.ok(done(), `not after 50 collections: ${what}`);
}

/** Dials `ln` and drops the Conn without closing it; only the returned promise of its accepted peer remains. */
function dialAndDrop(ln: Listener, options: object): Promise<Conn> {
  const accepted = ln.accept();
  void dial('tcp', ln.addr().toString(), options).then(() => undefined);
  return accepted;
}

/** Collects MUXNET_CONN_LEAKED warnings until `stop()`. */
function leakWarnings(): { warnings: Error[]; stop: () => void } {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => {
    if ((w as { code?: string }).code === 'MUXNET_CONN_LEAKED') warnings.push(w);
  };
  process.on('warning', onWarning);
  return { warnings, stop: () => process.off('warning', onWarning) };
}

for (const cfg of loopConfigs()) {
  describe(`conn gc [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('closes the socket of a Conn collected without close() and warns, counting it', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const { warnings, stop } = leakWarnings();
      try {
        const before = socketFds();
        const peer = res.add(await withTimeout(dialAndDrop(ln, cfg.options), 10_000, 'accept'));
        // The peer sees EOF once the dropped client is collected and its socket closed.
        let eof = false;
        void peer.read(new Uint8Array(16)).then((n) => { eof = n === null; });
        await collectUntil(() => eof, 'the peer to read EOF from the collected Conn');
        await collectUntil(() => warnings.length > 0, 'the leak warning');
        assert.match(warnings[0].message, /1 connection was garbage-collected without close\(\)/);
        peer.close();
        const after = socketFds();
        if (before !== null && after !== null) {
          const leaked = [...after].filter((fd) => !before.has(fd));
          assert.deepEqual(leaked, [], 'sockets left open');
        }
      } finally {
        stop();
      }
    });

    it('reclaims an onData connection dropped without close() once onEnd has run, and warns', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const { warnings, stop } = leakWarnings();
      try {
        const client = res.add(await dial('tcp', ln.addr().toString(), cfg.options));
        let ended = false;
        // While onData owns it the connection is pinned; after onEnd nothing refers to it.
        (await withTimeout(ln.accept(), 10_000, 'accept')).onData(() => {}, () => { ended = true; });
        client.closeWrite();
        await collectUntil(() => ended, 'onEnd');
        // Its socket closes when it is collected: the client then reads EOF.
        let eof = false;
        void client.read(new Uint8Array(16)).then((n) => { eof = n === null; });
        await collectUntil(() => eof && warnings.length > 0, 'the client to read EOF, and the leak warning');
      } finally {
        stop();
      }
    });

    it('keeps a Conn with a pending read alive when nothing else references it', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      let got: string | null = null;
      const accepted = ln.accept();
      // Only the read's callback refers to the connection: an idle-looking but busy Conn.
      await dial('tcp', ln.addr().toString(), cfg.options).then((c) => {
        const buf = new Uint8Array(16);
        void c.read(buf).then((n) => {
          got = new TextDecoder().decode(buf.subarray(0, n ?? 0));
          c.close();
        });
      });
      const peer = res.add(await withTimeout(accepted, 10_000, 'accept'));
      for (let i = 0; i < 5; i++) {
        gc();
        await sleep(10);
      }
      await peer.write('still here');
      await collectUntil(() => got !== null, 'the pending read to complete');
      assert.equal(got, 'still here');
    });

    it('keeps a Conn with a queued write alive until the write completes', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const size = 8 * 1024 * 1024;
      let written = false;
      const accepted = ln.accept();
      await dial('tcp', ln.addr().toString(), cfg.options).then((c) => {
        // More than the socket buffers take: the rest waits in the write queue.
        void c.write(new Uint8Array(size).fill(7)).then(() => {
          written = true;
          c.close();
        });
      });
      const peer = res.add(await withTimeout(accepted, 10_000, 'accept'));
      for (let i = 0; i < 5; i++) {
        gc();
        await sleep(10);
      }
      const data = await withTimeout(readExactly(peer, size), 20_000, 'every queued byte');
      assert.equal(data[size - 1], 7);
      await collectUntil(() => written, 'the write to resolve');
    });
  });
}
