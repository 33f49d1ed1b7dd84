// examples/resilient-dial.ts run as a user would: retries against a server that comes up late,
// and the circuit breaker against a counting server that first fails every call.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { examplesDir, exited } from './helpers/examples';
import { withTimeout } from './helpers/util';

/** A PONG server counting its connections; in 'fail' mode it closes each one without answering. */
class PongServer {
  readonly server: net.Server;
  mode: 'ok' | 'fail' = 'ok';
  connections = 0;
  constructor() {
    this.server = net.createServer((s) => {
      this.connections++;
      s.on('error', () => {});
      if (this.mode === 'fail') s.destroy();
      else s.once('data', () => s.end('PONG\n'));
    });
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }
}

/** Starts the example (a client: it prints no address) and collects its output. */
function run(args: string[]): { child: ChildProcess; out: () => string } {
  const child = spawn(process.execPath, [path.join(examplesDir, 'resilient-dial.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  return { child, out: () => out };
}

async function waitFor(out: () => string, re: RegExp, what: string): Promise<void> {
  await withTimeout((async () => {
    while (!re.test(out())) await new Promise((r) => setTimeout(r, 5));
  })(), 20_000, what);
}

/** A loopback port nobody listens on (a server listened on it and closed). */
async function freePort(): Promise<number> {
  const s = new PongServer();
  const port = await s.listen();
  await new Promise((resolve) => s.server.close(resolve));
  return port;
}

describe('examples: resilient-dial', () => {
  let child: ChildProcess | null = null;
  let server: PongServer | null = null;
  afterEach(async () => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    child = null;
    if (server?.server.listening) await new Promise((resolve) => server!.server.close(resolve));
    server = null;
  });

  for (const jitter of ['none', 'full'] as const) {
    it(`retries a server that is down until it comes up, the delay ceiling doubling up to the cap (jitter ${jitter})`, async () => {
      const port = await freePort();
      const ex = run([`127.0.0.1:${port}`, '--retries', '30', '--base', '20', '--cap', '160', '--jitter', jitter, '--threshold', '100']);
      child = ex.child;
      await waitFor(ex.out, /attempt 5: /, 'five refused attempts');
      server = new PongServer();
      await server.listen(port);
      assert.equal(await withTimeout(exited(ex.child), 20_000, 'the example finishing'), 0);
      const attempts = Number(/^call 1: ok after (\d+) attempts$/m.exec(ex.out())?.[1]);
      assert.ok(attempts >= 6, ex.out());
      const retries = [...ex.out().matchAll(/^call 1 attempt (\d+): .*(ECONNREFUSED|refused).*; retry in (\d+) ms \(ceiling (\d+) ms\)$/gmi)];
      assert.deepEqual(retries.map((m) => Number(m[1])), Array.from({ length: attempts - 1 }, (_, i) => i + 1), 'every failed attempt was retried');
      const ceilings = retries.map((m) => Number(m[4]));
      assert.deepEqual(ceilings.slice(0, 5), [20, 40, 80, 160, 160], 'base * 2^attempt, capped');
      assert.ok(ceilings.every((c) => c === 160 || ceilings.indexOf(c) < 4), 'capped from then on');
      const delays = retries.map((m) => Number(m[3]));
      if (jitter === 'none') assert.deepEqual(delays, ceilings);
      else assert.ok(delays.every((d, i) => d >= 0 && d <= ceilings[i]), `full jitter stays under the ceiling: ${delays}`);
      assert.equal(server.connections, 1, 'the one successful attempt');
    });
  }

  it('opens after 3 failed calls, then fails fast without dialing, half-opens after the cooldown and closes on success', async () => {
    server = new PongServer();
    server.mode = 'fail';
    const port = await server.listen();
    const ex = run([`127.0.0.1:${port}`, '--calls', '40', '--every', '20', '--retries', '0', '--threshold', '3', '--cooldown', '400']);
    child = ex.child;
    await waitFor(ex.out, /circuit open after 3 consecutive failures/, 'the circuit opening');
    assert.equal(server.connections, 3, 'three calls dialed before it opened');
    server.mode = 'ok';  // the server recovers; only the trial call after the cooldown should find out
    assert.equal(await withTimeout(exited(ex.child), 30_000, 'the example finishing'), 0);
    const lines = ex.out().trim().split('\n');
    const fast = lines.filter((l) => /^call \d+: failed fast: circuit open$/.test(l)).length;
    assert.ok(fast >= 1, ex.out());
    assert.equal(server.connections, 40 - fast, 'a call failed fast made no connection');
    // The order of events: 3 failures (the third opens it), fast failures, half-open, the trial call closes it, the rest ok.
    const events = lines.map((l) => (/failed after 1 attempts/.test(l) ? 'fail' : /failed fast/.test(l) ? 'fast' : /^call \d+: ok/.test(l) ? 'ok'
      : /^circuit (open after|half-open|closed)/.test(l) ? l.split(/[ :]/).slice(0, 2).join(' ') : `? ${l}`));
    // (The call's failure is logged after the breaker opens; the trial's ok is logged inside the call, before it closes.)
    const expected = ['fail', 'fail', 'circuit open', 'fail', ...Array<string>(fast).fill('fast'), 'circuit half-open', 'ok', 'circuit closed',
      ...Array<string>(40 - 3 - fast - 1).fill('ok')];
    assert.deepEqual(events, expected);
  });

  it('refuses bad arguments with a usage message', async () => {
    for (const args of [[], ['127.0.0.1:1', '--jitter', 'some'], ['127.0.0.1:1', '--base', '-1'], ['127.0.0.1:1', '--cap', '0']]) {
      const ex = run(args);
      assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 2, args.join(' '));
    }
  });
});
