// examples/conn-pool.ts run as a user would, against a Node echo server that counts its connections.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { examplesDir } from './helpers/examples';
import { withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

/** A line echo server counting connections (in total and at the peak); `idleMs` closes quiet ones. */
class CountingEcho {
  readonly server: net.Server;
  total = 0;
  open = 0;
  peak = 0;
  closedIdle = 0;
  readonly sockets = new Set<net.Socket>();
  constructor(idleMs = 0) {
    this.server = net.createServer((s) => {
      this.total++;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      this.peak = Math.max(this.peak, ++this.open);
      s.on('close', () => this.open--);
      s.on('error', () => {});
      s.pipe(s);
      if (idleMs > 0) {
        // As an HTTP server's keep-alive timeout does: a FIN to a client that holds the connection idle.
        s.setTimeout(idleMs, () => { this.closedIdle++; s.end(); });
      }
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }
}

/** Runs the example to its end; resolves with its output (rejects if it exits non-zero). */
function runPool(args: string[]): Promise<string> {
  return withTimeout(new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [path.join(examplesDir, 'conn-pool.js'), ...args], (err, out, errOut) =>
      (err ? reject(new Error(`${err.message}${out}${errOut}`)) : resolve(out)));
  }), 30_000, 'conn-pool.js finishing');
}

describe('examples: conn-pool', () => {
  let echo: CountingEcho | null = null;
  afterEach(async () => {
    if (echo !== null) {
      for (const s of echo.sockets) s.destroy();
      await new Promise((resolve) => echo!.server.close(resolve));
    }
    echo = null;
  });

  it('20 concurrent callers share at most max-open connections: the rest wait, idle ones are reused', async () => {
    echo = new CountingEcho();
    const addr = await echo.start();
    const out = await runPool([addr, '--requests', '300', '--concurrency', '20', '--max-open', '3', '--max-idle', '3']);
    const m = /^round 1: 300 ok, 0 failed; dialed (\d+), reused (\d+), waited (\d+), handed (\d+) to waiters, discarded 0 stale, 0 expired; peak open (\d+)$/m.exec(out);
    assert.ok(m !== null, out);
    const [dialed, reused, waited, handed, peak] = m.slice(1).map(Number);
    assert.equal(echo.total, dialed, 'the server saw each dial, no other connection');
    assert.ok(echo.peak <= 3, `the server saw ${echo.peak} connections at once, max-open is 3`);
    assert.ok(peak <= 3 && dialed <= 3, out);
    assert.ok(waited > 0, 'callers beyond max-open waited');
    assert.equal(dialed + reused + handed, 300, 'each request got one connection: new, idle, or handed over by the caller before');
    assert.ok(handed > 250, `${handed} connections handed from caller to waiting caller`);
  });

  it('discards at checkout the idle connections the server closed between rounds, and no request fails', async () => {
    // The server closes a connection idle for 500 ms: long enough that a round's own gaps
    // (a slow machine, a sanitizer build) do not close one mid-round (100 ms did once, in
    // CI's ASan run: "request 4: server closed the connection mid-request").
    echo = new CountingEcho(500);
    const addr = await echo.start();
    // Round 1 leaves two idle connections in the pool; the server closes them during the pause.
    const out = await runPool([addr, '--requests', '20', '--concurrency', '4', '--max-open', '2', '--max-idle', '2',
      '--rounds', '2', '--pause', '2000']);
    assert.match(out, /^round 1: 20 ok, 0 failed; dialed 2, /m);
    assert.match(out, /^round 2: 20 ok, 0 failed; dialed 2, reused \d+, waited \d+, handed \d+ to waiters, discarded 2 stale, 0 expired; /m);
    assert.equal(echo.total, 4, 'two connections per round');
    assert.ok(echo.closedIdle >= 2, 'the server did close the idle ones');
  });

  it('closes idle connections after --idle-timeout, so the next round dials again', async function () {
    skipIf(this, onWindows, 'the pool health check reads the TCP state (TCP_INFO), which muxnet does not report on Windows');
    echo = new CountingEcho();
    const addr = await echo.start();
    const out = await runPool([addr, '--requests', '10', '--concurrency', '1', '--max-open', '2', '--max-idle', '1',
      '--idle-timeout', '100', '--rounds', '2', '--pause', '1500']);
    assert.match(out, /^round 1: 10 ok, 0 failed; dialed 1, reused 9, /m);
    assert.match(out, /^round 2: 10 ok, 0 failed; dialed 1, reused 9, waited 0, handed 0 to waiters, discarded 0 stale, 1 expired; /m);
    assert.equal(echo.total, 2);
  });

  it('bounds the callers waiting for a connection: beyond --max-waiters a caller fails at once', async () => {
    echo = new CountingEcho();
    const addr = await echo.start();
    // Five callers at once, one connection, two may wait: the fourth and fifth are refused.
    const out = await runPool([addr, '--requests', '5', '--concurrency', '5', '--max-open', '1', '--max-waiters', '2']);
    assert.equal((out.match(/^request \d+: pool: 2 callers already waiting$/gm) ?? []).length, 2, out);
    assert.match(out, /^round 1: 3 ok, 2 failed; dialed 1, reused 0, waited 2, handed 2 to waiters, /m);
    assert.equal(echo.total, 1);
  });

  it('refuses bad arguments with a clear message', async () => {
    await assert.rejects(runPool(['127.0.0.1:1', '--max-open', '0']), /--max-open: expected a whole number >= 1, got "0"/);
    await assert.rejects(runPool([]), /expected one server address/);
  });
});
