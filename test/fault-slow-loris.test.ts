// Fault: slow-loris clients drip one byte at a time. A handler that gives each request a
// read deadline cuts them off with ErrDeadlineExceeded and closes them, while ordinary
// clients are served at the same time.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { OpError, dial, listen } from 'muxnet';
import type { Conn, Listener } from 'muxnet';
import { assertDeadlineExceeded } from './helpers/assert-errors';
import { loopConfigs } from './helpers/configs';
import { socketFds, socketsLeftOpen } from './helpers/fds';
import { closableSocket, nodeConnect } from './helpers/servers';
import { Resources, describeError, sleep, withTimeout } from './helpers/util';

// Scaled down from a byte a second against a header timeout of several seconds.
const kDripMs = 200;
const kRequestMs = 1000;
const kNormalClients = 8;
const kMaxRequests = 400;  // per ordinary client: bounds the load loop

/** How the server's handler for one connection ended. */
interface Served {
  remotePort: number;
  requests: number;
  end: 'eof' | unknown;
}

/**
 * A line server: each request is a line, answered with the same line. The handler gives
 * every request kRequestMs from the moment it starts waiting for it (a header timeout).
 */
function startLineServer(ln: Listener): { served: Served[]; done: Promise<void> } {
  const served: Served[] = [];
  const handlers: Promise<void>[] = [];
  const serve = async (c: Conn): Promise<void> => {
    const s: Served = { remotePort: c.remoteAddr().port, requests: 0, end: 'eof' };
    const buf = new Uint8Array(256);
    let line = '';
    try {
      for (;;) {
        c.setReadDeadline(Date.now() + kRequestMs);
        let nl: number;
        while ((nl = line.indexOf('\n')) < 0) {
          const n = await c.read(buf);
          if (n === null) return;
          line += Buffer.from(buf.subarray(0, n)).toString('latin1');
          if (line.length > 4096) throw new Error('request line too long');
        }
        c.setReadDeadline(0);
        await c.write(line.slice(0, nl + 1));
        line = line.slice(nl + 1);
        s.requests++;
      }
    } catch (e) {
      s.end = e;
    } finally {
      served.push(s);
      c.close();
    }
  };
  const done = (async () => {
    for await (const c of ln) handlers.push(serve(c));
    await Promise.all(handlers);
  })();
  done.catch(() => {});
  return { served, done };
}

/** Drips a request that never ends, one byte per kDripMs, until the server cuts us off. */
async function slowMuxnetClient(c: Conn): Promise<{ sent: number; reply: number | null | unknown }> {
  const reading = c.read(new Uint8Array(64)).then((n) => n, (e: unknown) => e);
  const request = 'GET /drip HTTP/1.1 Host: slow.example X-Padding: aaaaaaaaaaaaaaaaaaaa';
  let sent = 0;
  let cut = false;
  void reading.then(() => { cut = true; });
  for (; sent < request.length && !cut; sent++) {
    try {
      await c.write(request[sent]);
    } catch {
      break;
    }
    await sleep(kDripMs);
  }
  return { sent, reply: await reading };
}

/** The same with a Node `net` socket: resolves how it was closed and what it received. */
async function slowNodeClient(s: net.Socket): Promise<{ sent: number; received: number; how: string }> {
  let received = 0;
  let how = '';
  const closed = new Promise<void>((resolve) => {
    s.on('data', (d: Buffer) => { received += d.length; });
    s.on('end', () => { how ||= 'end'; resolve(); });
    s.on('error', (e: NodeJS.ErrnoException) => { how ||= String(e.code); resolve(); });
    s.on('close', () => { how ||= 'close'; resolve(); });
  });
  let sent = 0;
  let done = false;
  void closed.then(() => { done = true; });
  for (; sent < 60 && !done; sent++) {
    s.write('x');
    await sleep(kDripMs);
  }
  await closed;
  return { sent, received, how };
}

for (const cfg of loopConfigs()) {
  describe(`fault: slow-loris clients [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('cuts off clients that drip a request with ErrDeadlineExceeded while others are served', async function () {
      this.timeout(25_000);
      const before = socketFds();
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const server = startLineServer(ln);

      const slowConn = res.add(await dial('tcp', ln.addr().toString(), cfg.options));
      const slowSocket = await nodeConnect(ln.addr().port);
      res.add(closableSocket(slowSocket));
      // And one that sends nothing at all: only the deadline's timer can cut it off.
      const silentConn = res.add(await dial('tcp', ln.addr().toString(), cfg.options));
      const slowPorts = [slowConn.localAddr().port, slowSocket.localPort!, silentConn.localAddr().port];
      let slowCut = 0;
      const slowM = slowMuxnetClient(slowConn).finally(() => slowCut++);
      const slowN = slowNodeClient(slowSocket).finally(() => slowCut++);
      const silent = silentConn.read(new Uint8Array(16)).then((v) => v, (e: unknown) => e).finally(() => slowCut++);

      // Ordinary clients: one request after another until both slow ones are cut off, then
      // a few more, so they are served both during the drip and after it.
      const normal = Array.from({ length: kNormalClients }, async (_, i) => {
        const c = res.add(await dial('tcp', ln.addr().toString(), cfg.options));
        const buf = new Uint8Array(256);
        let duringDrip = 0;
        let after = 0;
        for (let j = 0; j < kMaxRequests && after < 3; j++) {
          const request = `client ${i} request ${j}\n`;
          await c.write(request);
          let reply = '';
          while (!reply.endsWith('\n')) {
            const n = await c.read(buf);
            if (n === null) throw new Error(`client ${i}: EOF after ${j} requests`);
            reply += Buffer.from(buf.subarray(0, n)).toString('latin1');
          }
          assert.equal(reply, request, `client ${i} request ${j}`);
          if (slowCut < 3) duringDrip++;
          else after++;
          await sleep(5);
        }
        c.close();
        return { duringDrip, after };
      });

      const counts = await withTimeout(Promise.all(normal), 15_000, 'ordinary clients');
      const [m, n, quiet] = await withTimeout(Promise.all([slowM, slowN, silent]), 10_000, 'slow clients cut off');

      counts.forEach((c, i) => {
        assert.ok(c.duringDrip > 0, `client ${i} was not served while the slow clients dripped`);
        assert.equal(c.after, 3, `client ${i} was not served after the slow clients were cut off`);
      });
      // The slow clients got no reply: their connection was closed (end of stream, or a
      // reset when the server closed with a byte unread).
      assert.ok(m.reply === null || (m.reply instanceof OpError && m.reply.code === 'ECONNRESET'),
        `slow muxnet client: read gave ${describeError(m.reply)}`);
      assert.ok(n.received === 0 && ['end', 'ECONNRESET', 'close'].includes(n.how),
        `slow Node client: received ${n.received} bytes, closed by ${n.how}`);
      assert.ok(m.sent > 0 && n.sent > 0);
      assert.equal(quiet, null, `silent client: read gave ${describeError(quiet)}`);

      ln.close();
      await withTimeout(server.done, 5000, 'server handlers to finish');
      for (const port of slowPorts) {
        const s = server.served.find((x) => x.remotePort === port);
        assert.ok(s !== undefined, `no handler for the slow client on port ${port}`);
        assert.equal(s.requests, 0);
        assertDeadlineExceeded(s.end, 'read');
      }
      const ordinary = server.served.filter((x) => !slowPorts.includes(x.remotePort));
      assert.equal(ordinary.length, kNormalClients);
      for (const s of ordinary) assert.equal(s.end, 'eof', `an ordinary client's handler failed: ${describeError(s.end)}`);

      await res.closeAll();
      if (before !== null) assert.deepEqual(await socketsLeftOpen(before), [], 'sockets left open');
    });
  });
}
