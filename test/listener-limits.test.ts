// listen(..., { limits }): connections over a limit are closed at once, counted and reported; each limit at its boundary.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { listen, stats } from 'muxnet';
import type { Listener, RefusedConnection } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertArgError, thrownBy } from './helpers/assert-errors';
import { socketFds, socketsLeftOpen } from './helpers/fds';
import { Resources, withTimeout } from './helpers/util';

/** Refused connections of every loop of this thread, by reason. */
function refusedTotals(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of stats()) {
    for (const [k, v] of Object.entries(s.refused)) out[k] = (out[k] ?? 0) + v;
  }
  return out;
}

function delta(before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(refusedTotals())) if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
  return out;
}

/** A client from `localAddress` (a 127/8 address) and what it was told: 'hi' when admitted, '' when closed at once. */
interface Client {
  socket: net.Socket;
  port: number;
  greeting: Promise<string>;
}

function connect(ln: Listener, localAddress = '127.0.0.1'): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: ln.addr().port, localAddress });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      const greeting = new Promise<string>((done) => {
        let got = '';
        socket.on('data', (d: Buffer) => {
          got += d.toString();
          if (got === 'hi') done(got);
        });
        socket.on('error', () => done(got));  // a refused client may see a reset
        socket.on('close', () => done(got));
      });
      resolve({ socket, port: socket.localPort!, greeting });
    });
  });
}

/** Serves 'hi' to each admitted connection and holds it open until the client ends. */
function serveGreeting(ln: Listener): void {
  void ln.serve(async (conn) => {
    await conn.write('hi');
    while (await conn.read(new Uint8Array(64)) !== null);
  });
}

async function greetings(clients: Client[]): Promise<string[]> {
  return withTimeout(Promise.all(clients.map((c) => c.greeting)), 10_000, 'every client admitted or closed');
}

for (const cfg of loopConfigs()) {
  describe(`listener limits [${cfg.name}]`, () => {
    const res = new Resources();
    const sockets: net.Socket[] = [];
    afterEach(async () => {
      for (const s of sockets.splice(0)) s.destroy();
      await res.closeAll();
    });
    const track = (c: Client): Client => {
      sockets.push(c.socket);
      return c;
    };

    it('maxConnections: the one over the limit is closed at once; a slot freed by a close is taken again', async () => {
      const fdsBefore = socketFds();
      const before = refusedTotals();
      const refused: RefusedConnection[] = [];
      const ln = res.add(listen('tcp', '127.0.0.1:0', { ...cfg.options, limits: { maxConnections: 3, onRefused: (r) => refused.push(r) } }));
      serveGreeting(ln);
      const admitted = [track(await connect(ln)), track(await connect(ln)), track(await connect(ln))];
      assert.deepEqual(await greetings(admitted), ['hi', 'hi', 'hi']);
      const over = track(await connect(ln));
      assert.equal(await greetings([over]).then((g) => g[0]), '', 'the fourth gets no greeting: closed at once');
      assert.deepEqual(refused, [{ reason: 'maxConnections', remoteAddress: '127.0.0.1', remotePort: over.port }]);
      assert.deepEqual(delta(before), { maxConnections: 1 });

      admitted[0].socket.end();  // the handler sees EOF and returns: its slot is free
      await withTimeout(new Promise((resolve) => admitted[0].socket.once('close', resolve)), 5000, 'first client closed');
      let next: Client | undefined;
      for (let i = 0; i < 50 && next === undefined; i++) {
        // The server closes its side after the client's FIN arrives: until then the slot is held.
        const c = track(await connect(ln));
        if (await c.greeting === 'hi') next = c;
      }
      assert.ok(next !== undefined, 'a client is admitted once a slot is free');
      ln.close();
      for (const s of sockets) s.destroy();
      if (fdsBefore !== null) assert.deepEqual(await socketsLeftOpen(fdsBefore), [], 'refused sockets are not leaked');
    });

    it('maxConnectionsPerIP: a third from one address is refused while another address is admitted', async () => {
      const before = refusedTotals();
      const ln = res.add(listen('tcp', '127.0.0.1:0', { ...cfg.options, limits: { maxConnectionsPerIP: 2 } }));
      serveGreeting(ln);
      const a = [track(await connect(ln, '127.0.0.1')), track(await connect(ln, '127.0.0.1'))];
      assert.deepEqual(await greetings(a), ['hi', 'hi']);
      const third = track(await connect(ln, '127.0.0.1'));
      const other = track(await connect(ln, '127.0.0.2'));
      assert.deepEqual(await greetings([third, other]), ['', 'hi']);
      assert.deepEqual(delta(before), { maxConnectionsPerIP: 1 });
    });

    it('acceptRate: a burst of 3 is admitted, the next ones in the same instant are refused', async () => {
      const before = refusedTotals();
      // One token per 1000 s: none comes back during the test.
      const ln = res.add(listen('tcp', '127.0.0.1:0', { ...cfg.options, limits: { acceptRate: { perSecond: 0.001, burst: 3 } } }));
      serveGreeting(ln);
      const clients: Client[] = [];
      for (let i = 0; i < 5; i++) clients.push(track(await connect(ln)));
      assert.deepEqual(await greetings(clients), ['hi', 'hi', 'hi', '', '']);
      assert.deepEqual(delta(before), { acceptRate: 2 });
    });

    it('blockList refuses the addresses in it; allowList admits only its subnet', async () => {
      const before = refusedTotals();
      const blocked = new net.BlockList();
      blocked.addAddress('127.0.0.2');
      const allowed = new net.BlockList();
      allowed.addSubnet('127.0.0.0', 30);  // 127.0.0.0 to 127.0.0.3
      const ln = res.add(listen('tcp', '127.0.0.1:0', { ...cfg.options, limits: { blockList: blocked, allowList: allowed } }));
      serveGreeting(ln);
      const clients = [];
      for (const from of ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4']) clients.push(track(await connect(ln, from)));
      assert.deepEqual(await greetings(clients), ['hi', '', 'hi', '']);
      assert.deepEqual(delta(before), { blocked: 2 });
    });

    it('checks the limits before listening', () => {
      const fdsBefore = socketFds();
      const bad: [unknown, RegExp][] = [
        [null, /options\.limits:/],
        [{ maxConnections: 0 }, /options\.limits\.maxConnections/],
        [{ maxConnectionsPerIP: 1.5 }, /options\.limits\.maxConnectionsPerIP/],
        [{ acceptRate: 10 }, /options\.limits\.acceptRate/],
        [{ acceptRate: { perSecond: 0 } }, /options\.limits\.acceptRate\.perSecond/],
        [{ acceptRate: { perSecond: 5, burst: 0 } }, /options\.limits\.acceptRate\.burst/],
        [{ blockList: ['127.0.0.1'] }, /options\.limits\.blockList: expected a net\.BlockList/],
        [{ allowList: {} }, /options\.limits\.allowList/],
        [{ onRefused: 'log' }, /options\.limits\.onRefused/],
      ];
      for (const [limits, name] of bad) {
        assertArgError(thrownBy(() => listen('tcp', '127.0.0.1:0', { ...cfg.options, limits: limits as never })), name);
      }
      assertArgError(thrownBy(() => listen('unix', `@muxnet-limits-${process.pid}`, { ...cfg.options, limits: { maxConnectionsPerIP: 1 } })),
        /maxConnectionsPerIP: a Unix listener's clients have no IP address/);
      const now = socketFds();
      if (fdsBefore !== null && now !== null) assert.deepEqual([...now].filter((fd) => !fdsBefore.has(fd)), [], 'nothing was opened');
    });
  });
}
