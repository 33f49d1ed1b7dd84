// A user callback that throws costs nothing else in its event batch, and the onData buffer cannot be transferred away.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { MessageChannel } from 'node:worker_threads';
import { listen } from 'muxnet';
import type { Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { nodeConnect } from './helpers/servers';
import { Resources, withTimeout } from './helpers/util';

/**
 * Runs `fn` with uncaught exceptions captured instead of failing the run (mocha's own
 * handlers are set aside and put back after).
 */
async function capturingUncaught(fn: (errors: unknown[]) => Promise<void>): Promise<void> {
  const saved = process.listeners('uncaughtException');
  const errors: unknown[] = [];
  const capture = (err: unknown): void => { errors.push(err); };
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', capture);
  try {
    await fn(errors);
  } finally {
    process.off('uncaughtException', capture);
    for (const l of saved) process.on('uncaughtException', l);
  }
}

for (const cfg of loopConfigs()) {
  describe(`loop callback throws [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('keeps delivering the rest of the batch when an onEnd throws, and rethrows it afterwards', async () => {
      const n = 4;
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const port = ln.addr().port;
      const clients: net.Socket[] = [];
      const servers: Conn[] = [];
      for (let i = 0; i < n; i++) {
        clients.push(await nodeConnect(port));
        servers.push(res.add(await withTimeout(ln.accept(), 10_000, 'accept')));
      }
      await capturingUncaught(async (errors) => {
        const got: string[] = servers.map(() => '');
        const ended: boolean[] = servers.map(() => false);
        let left = n;
        let allIn!: () => void;
        const done = new Promise<void>((resolve) => { allIn = resolve; });
        servers.forEach((s, i) => s.onData((view) => {
          got[i] += Buffer.from(view).toString();
          if (got[i] === `hello ${i}` && --left === 0) allIn();
        }, () => {
          ended[i] = true;
          throw new Error(`onEnd ${i} throws`);
        }));
        // Every client sends and hangs up in the same turn: on an inline loop the next wait
        // reports them in one batch, FIN and all, so the first onEnd throws mid-batch.
        clients.forEach((c, i) => c.end(`hello ${i}`));
        await withTimeout(done, 10_000, `every connection's data (got ${JSON.stringify(got)})`);
        for (let i = 0; i < 50 && (errors.length === 0 || ended.includes(false)); i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
        assert.deepEqual(ended, servers.map(() => true), 'every onEnd ran');
        assert.ok(errors.length >= 1, 'the error did not surface as an uncaught exception');
        for (const e of errors) assert.match((e as Error).message, /^onEnd \d throws$/);
      });
      for (const c of clients) c.destroy();
    });

    it('keeps the onData view usable when a handler tries to transfer its buffer', async () => {
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const client = await nodeConnect(ln.addr().port);
      const server = res.add(await withTimeout(ln.accept(), 10_000, 'accept'));
      const { port1, port2 } = new MessageChannel();
      try {
        const lengths: number[] = [];
        let text = '';
        let done!: () => void;
        const finished = new Promise<void>((resolve) => { done = resolve; });
        server.onData((view) => {
          try {
            port1.postMessage(view, [view.buffer as ArrayBuffer]);
          } catch {
            // Newer Node refuses outright: just as good.
          }
          lengths.push(view.byteLength);
          text += Buffer.from(view).toString();
          if (text.endsWith('two')) done();
        });
        client.write('one');
        await new Promise((r) => setTimeout(r, 20));
        client.write('two');
        await withTimeout(finished, 10_000, `both writes (got ${JSON.stringify(text)})`);
        assert.equal(text, 'onetwo');
        assert.ok(lengths.every((l) => l > 0), `a view was detached: lengths ${lengths}`);
      } finally {
        port1.close();
        port2.close();
        client.destroy();
      }
    });
  });
}
