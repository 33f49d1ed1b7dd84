// A PacketConn dropped without close() is reclaimed when collected (socket closed, warning), as a Conn is.
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { listenPacket, stats } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { socketFds } from './helpers/fds';
import { sleep } from './helpers/util';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

for (const cfg of loopConfigs()) {
  describe(`packet conn gc [${cfg.name}]`, () => {
    it('closes the socket of a PacketConn collected without close() and counts it as leaked', async () => {
      const leaked = (): number => stats().reduce((sum, s) => sum + s.leaked, 0);
      const warnings: Error[] = [];
      const onWarning = (w: Error): void => {
        if ((w as { code?: string }).code === 'MUXNET_CONN_LEAKED') warnings.push(w);
      };
      process.on('warning', onWarning);
      try {
        // Created in a function so that no reference outlives it.
        const open = (): number => {
          const pc = listenPacket('udp', '127.0.0.1:0', cfg.options);
          return pc.localAddr().port;
        };
        const before = socketFds();
        const leakedBefore = leaked();
        open();
        // (Nothing may deref the loop's WeakRefs meanwhile: that keeps the target alive for the turn.)
        for (let i = 0; i < 50 && warnings.length === 0; i++) {
          gc();
          await sleep(10);
        }
        assert.ok(warnings.length > 0, 'the dropped PacketConn was not reclaimed (no leak warning)');
        assert.equal(leaked(), leakedBefore + 1, 'not counted as leaked');
        const after = socketFds();
        if (before !== null && after !== null) {
          assert.deepEqual([...after].filter((fd) => !before.has(fd)), [], 'sockets left open');
        }
      } finally {
        process.off('warning', onWarning);
      }
    });

    it('keeps a PacketConn with a pending read alive when nothing else references it', async () => {
      let got = '';
      const port = ((): number => {
        const pc = listenPacket('udp', '127.0.0.1:0', cfg.options);
        const buf = new Uint8Array(16);
        void pc.readFrom(buf).then((d) => {
          got = new TextDecoder().decode(buf.subarray(0, d.n));
          pc.close();
        });
        return pc.localAddr().port;
      })();
      for (let i = 0; i < 5; i++) {
        gc();
        await sleep(10);
      }
      const sender = listenPacket('udp', '127.0.0.1:0', cfg.options);
      try {
        await sender.writeTo('still here', `127.0.0.1:${port}`);
        for (let i = 0; i < 100 && got === ''; i++) await sleep(10);
        assert.equal(got, 'still here');
      } finally {
        sender.close();
      }
    });
  });
}
