// Closing connections while the loop is delivering a batch: 200 connections become
// readable in the same wake-up, and the first read's handler closes the others (or its own
// connection, then dials a new one that takes the same fd number). Nothing crashes, no
// closed connection's read delivers data afterwards, and the loop keeps working.
//
// Promise reactions run when the native batch call returns (one JS call per batch), so
// reads that the batch already completed have resolved before the first handler runs:
// their buffers are filled at that moment. The test checks each connection against that
// snapshot: a read whose buffer was still empty when the handler closed the connection
// must reject with ErrClosed and its buffer must never be written. A second read queued
// on every conn is certainly pending at the close, whatever the batch boundaries.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { dial, listen } from 'muxnet';
import type { Conn, Listener } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import type { LoopConfig } from './helpers/configs';
import { assertErrClosed, rejectionOf } from './helpers/assert-errors';
import { fillFdsBelow, socketFds } from './helpers/fds';
import { roundTrip } from './helpers/io';
import { pattern } from './helpers/pattern';
import { serveEcho } from './helpers/servers';
import { Resources, assertBytesEqual, describeError, observe, withTimeout } from './helpers/util';

const N = 200;

/** The byte client i writes: never 0, so an untouched (zeroed) read buffer is recognisable. */
function byteFor(i: number): number {
  return 1 + (i % 255);
}

/** N dialed clients and their accepted server sides, `servers[i]` the peer of `clients[i]`. */
async function connectMany(ln: Listener, cfg: LoopConfig, res: Resources, n: number): Promise<{ clients: Conn[]; servers: Conn[] }> {
  const accepted: Conn[] = [];
  const accepting = (async () => {
    while (accepted.length < n) accepted.push(res.add(await ln.accept()));
  })();
  const clients = await withTimeout(
    Promise.all(Array.from({ length: n }, async () => res.add(await dial('tcp', ln.addr().toString(), cfg.options)))),
    20_000,
    `dial ${n} connections`,
  );
  await withTimeout(accepting, 20_000, `accept ${n} connections`);
  const byPort = new Map(accepted.map((s) => [s.remoteAddr().port, s]));
  const servers = clients.map((c) => {
    const s = byPort.get(c.localAddr().port);
    assert.ok(s !== undefined, `no accepted connection for client port ${c.localAddr().port}`);
    return s;
  });
  return { clients, servers };
}

type ClientOutcome = { kind: 'data'; bytes: number[] } | { kind: 'eof' } | { kind: 'reset' } | { kind: 'error'; error: string };

/** What a client's next read sees: data, EOF, or a reset. */
async function clientOutcome(c: Conn): Promise<ClientOutcome> {
  const buf = new Uint8Array(16);
  try {
    const n = await c.read(buf);
    if (n === null) return { kind: 'eof' };
    return { kind: 'data', bytes: [...buf.subarray(0, n)] };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ECONNRESET') return { kind: 'reset' };
    return { kind: 'error', error: describeError(e) };
  }
}

/** Every client writes its byte in the same tick: their servers become readable in one batch. */
function writeAll(clients: Conn[]): Promise<unknown[]> {
  return Promise.all(clients.map((c, i) => c.write(Uint8Array.of(byteFor(i))).catch((e: unknown) => e)));
}

/** Dials the listener once more and echoes 1000 bytes through a freshly accepted conn. */
async function assertFreshEcho(ln: Listener, cfg: LoopConfig, res: Resources, what: string): Promise<void> {
  const [server, client] = await withTimeout(
    Promise.all([ln.accept(), dial('tcp', ln.addr().toString(), cfg.options)]),
    10_000,
    `${what}: dial and accept`,
  );
  res.add(server);
  res.add(client);
  const errors: unknown[] = [];
  const serving = serveEcho(server, errors);
  const echoed = await withTimeout(roundTrip(client, pattern(1000)), 10_000, `${what}: echo`);
  assertBytesEqual(echoed, pattern(1000), what);
  client.close();
  await withTimeout(serving, 10_000, `${what}: server loop ends`);
  assert.deepEqual(errors, []);
}

for (const cfg of loopConfigs()) {
  describe(`loop close mid-batch [${cfg.name}]`, () => {
    const res = new Resources();
    const held: number[] = [];
    afterEach(async () => {
      for (const fd of held.splice(0)) fs.closeSync(fd);
      await res.closeAll();
    });

    it('closing connections from inside a batch drops their later events', async function () {
      this.timeout(60_000);
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const { clients, servers } = await connectMany(ln, cfg, res, N);

      type Result =
        | { kind: 'first'; n: number | null }
        | { kind: 'served'; n: number | null; write: unknown; read: unknown }
        | { kind: 'rejected'; error: unknown };
      const bufs = servers.map(() => new Uint8Array(16));
      let first = -1;
      let filledAtClose: boolean[] = [];
      const handlers: Promise<Result>[] = servers.map((s, i) => s.read(bufs[i]).then(
        async (n): Promise<Result> => {
          if (first === -1) {
            // The first read to complete: close every other server conn, synchronously.
            first = i;
            filledAtClose = bufs.map((b) => b[0] !== 0);
            for (let j = 0; j < N; j++) if (j !== i) servers[j].close();
            if (n !== null) await s.write(bufs[i].subarray(0, n));
            return { kind: 'first', n };
          }
          // This read completed in the batch, before the close; its conn is closed now.
          const write = await rejectionOf(s.write(Uint8Array.of(0)));
          const read = await rejectionOf(s.read(new Uint8Array(16)));
          return { kind: 'served', n, write, read };
        },
        (error: unknown): Result => ({ kind: 'rejected', error }),
      ));
      // A second read queued behind the first on every conn: the client's single byte
      // satisfies the first, so this one is certainly pending when the close comes.
      const bufs2 = servers.map(() => new Uint8Array(16));
      const second = servers.map((s, i) => observe(s.read(bufs2[i])));
      const outcomes = clients.map((c) => clientOutcome(c));
      const writes = await withTimeout(writeAll(clients), 10_000, 'client writes');
      writes.forEach((w, i) => assert.equal(w, undefined, `client ${i} write: ${describeError(w)}`));

      const results = await withTimeout(Promise.all(handlers), 20_000, 'server read handlers');
      const seen = await withTimeout(Promise.all(outcomes), 20_000, 'client reads');
      assert.ok(first >= 0, 'no server read completed');

      // The first conn: its own byte, echoed to its client.
      const r0 = results[first];
      assert.equal(r0.kind, 'first');
      assert.equal(r0.kind === 'first' && r0.n, 1);
      assert.equal(bufs[first][0], byteFor(first));
      assert.deepEqual(seen[first], { kind: 'data', bytes: [byteFor(first)] });

      let served = 0;
      let rejected = 0;
      for (let j = 0; j < N; j++) {
        if (j === first) continue;
        const r = results[j];
        if (r.kind === 'served') {
          // Completed in the batch before the close: with its own byte, never another's.
          served++;
          assert.ok(filledAtClose[j], `conn ${j}: its read resolved with data after it was closed`);
          assert.equal(r.n, 1, `conn ${j}`);
          assert.equal(bufs[j][0], byteFor(j), `conn ${j} read another connection's byte`);
          assertErrClosed(r.write, 'write');
          assertErrClosed(r.read, 'read');
        } else if (r.kind === 'rejected') {
          // Pending at the close: rejected with ErrClosed, and the buffer was never written.
          rejected++;
          assertErrClosed(r.error, 'read');
          assert.equal(filledAtClose[j], false, `conn ${j}: read was served but its promise rejected`);
        } else {
          assert.fail(`conn ${j}: a second 'first' handler`);
        }
        // The read queued behind it was pending at the close: ErrClosed, and no data.
        const o2 = await withTimeout(second[j].promise, 10_000, `conn ${j}: queued read after close`);
        assert.equal(o2.fulfilled, false, `conn ${j}: queued read resolved with ${String(o2.value)} after close`);
        assertErrClosed(o2.error, 'read');
        // Its client never gets an echo: EOF (the byte was read) or a reset (it was not).
        const o = seen[j];
        assert.ok(o.kind === 'eof' || o.kind === 'reset', `client ${j}: ${JSON.stringify(o)}`);
      }
      assert.equal(served + rejected, N - 1);
      // Every client has seen EOF or a reset, so nothing can arrive any more: a buffer still
      // empty at the close must be empty now.
      for (let j = 0; j < N; j++) {
        if (j === first) continue;
        if (!filledAtClose[j]) assert.ok(bufs[j].every((b) => b === 0), `conn ${j}: read into its buffer after close`);
        assert.ok(bufs2[j].every((b) => b === 0), `conn ${j}: queued read wrote into its buffer after close`);
      }

      await assertFreshEcho(ln, cfg, res, 'after the mid-batch close');
    });

    it('a conn closed inside a batch gives its fd number to a new conn, which works', async function () {
      this.timeout(60_000);
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const { clients, servers } = await connectMany(ln, cfg, res, N);
      // Take every free fd number below the highest open one, so the fd that the first
      // handler closes is the lowest free number and the next socket gets it.
      const open = fs.readdirSync('/proc/self/fd').map(Number);
      fillFdsBelow(Math.max(...open), held);

      const bufs = servers.map(() => new Uint8Array(16));
      let first = -1;
      let fdReused: boolean | null = null;
      let replacement: Promise<[Conn, Conn]> | null = null;
      const handlers = servers.map((s, i) => s.read(bufs[i]).then(async (n) => {
        if (first === -1) {
          first = i;
          // Close this conn and dial a new one in the same synchronous step: the new
          // socket is created at once (an IP address needs no lookup) with the freed fd.
          const before = socketFds();
          s.close();
          const dialing = dial('tcp', ln.addr().toString(), cfg.options);
          const after = socketFds();
          // Every number open before is open again: the closed one was taken by the new
          // socket. (On io_uring the kernel may also have accepted the new connection
          // already, on a number of its own: so not "the same count".)
          if (before !== null && after !== null) fdReused = [...before].every((fd) => after.has(fd));
          replacement = Promise.all([ln.accept(), dialing]);
          replacement.catch(() => {});
          return 'replaced';
        }
        if (n === null) return 'eof';
        await s.write(bufs[i].subarray(0, n));
        return 'echoed';
      }));
      const outcomes = clients.map((c) => clientOutcome(c));
      const writes = await withTimeout(writeAll(clients), 10_000, 'client writes');
      writes.forEach((w, i) => assert.equal(w, undefined, `client ${i} write: ${describeError(w)}`));

      const results = await withTimeout(Promise.all(handlers), 20_000, 'server read handlers');
      const seen = await withTimeout(Promise.all(outcomes), 20_000, 'client reads');
      assert.ok(first >= 0 && replacement !== null, 'no server read completed');
      if (fdReused !== null) assert.equal(fdReused, true, 'the new socket did not reuse the closed fd number');

      // The replacement conn, on the reused fd number, echoes like any other.
      const [rs, rc] = await withTimeout<[Conn, Conn]>(replacement, 10_000, 'replacement dial and accept');
      res.add(rs);
      res.add(rc);
      const errors: unknown[] = [];
      const serving = serveEcho(rs, errors);
      assertBytesEqual(await withTimeout(roundTrip(rc, pattern(4096, 7)), 10_000, 'echo on the replacement'), pattern(4096, 7), 'replacement echo');
      rc.close();
      await withTimeout(serving, 10_000, 'replacement server loop ends');
      assert.deepEqual(errors, []);

      // Every other conn was served normally, each with its own byte.
      for (let j = 0; j < N; j++) {
        if (j === first) {
          assert.equal(results[j], 'replaced');
          assert.ok(seen[j].kind === 'eof' || seen[j].kind === 'reset', `client ${j}: ${JSON.stringify(seen[j])}`);
        } else {
          assert.equal(results[j], 'echoed', `conn ${j}`);
          assert.deepEqual(seen[j], { kind: 'data', bytes: [byteFor(j)] }, `client ${j}`);
        }
      }

      await assertFreshEcho(ln, cfg, res, 'after the fd reuse');
    });
  });
}
