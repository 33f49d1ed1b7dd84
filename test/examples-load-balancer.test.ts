// examples/load-balancer.ts run as a user would, over three Node backends that answer with their name.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { exited, startExample, type StartedExample } from './helpers/examples';
import { withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

/** A backend: says its name on connect, closes when the client does; can be killed and restarted on its port. */
class NamedBackend {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(readonly name: string) {}

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = net.createServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {});
      s.write(`${this.name}\n`);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async kill(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** A client of the balancer: connects, reads the backend's name line. */
async function connectFor(addr: string): Promise<{ name: string; socket: net.Socket }> {
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let got = '';
  const name = await withTimeout(new Promise<string>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) resolve(got.slice(0, got.indexOf('\n')));
    });
    socket.once('close', () => reject(new Error(`closed before a backend answered (got ${JSON.stringify(got)})`)));
  }), 10_000, 'a backend\'s name through the balancer');
  return { name, socket };
}

/** One short request: the backend's name, then both sides closed. */
async function ask(addr: string): Promise<string> {
  const { name, socket } = await connectFor(addr);
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.end();
  await withTimeout(closed, 10_000, 'the proxied connection closing');
  return name;
}

/** How many times each name occurs. */
function tally(names: string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const n of names) t[n] = (t[n] ?? 0) + 1;
  return t;
}

async function waitFor(ex: StartedExample, re: RegExp, what: string): Promise<void> {
  await withTimeout((async () => {
    while (!re.test(ex.out())) await new Promise((r) => setTimeout(r, 10));
  })(), 15_000, what);
}

describe('examples: load-balancer', () => {
  let child: ChildProcess | null = null;
  let backends: NamedBackend[] = [];
  let held: net.Socket[] = [];
  beforeEach(async () => {
    backends = ['alpha', 'beta', 'gamma'].map((n) => new NamedBackend(n));
    for (const b of backends) await b.start();
  });
  afterEach(async () => {
    for (const s of held.splice(0)) s.destroy();
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    child = null;
    for (const b of backends) await b.kill();
  });

  it('round-robin spreads nine clients three to each backend, and stops on SIGTERM', async function () {
    skipIf(this, onWindows, 'SIGTERM: Windows kills the process, no handler runs');
    const ex = await startExample('load-balancer.js', ['--listen', '127.0.0.1:0', ...backends.map((b) => b.addr)]);
    child = ex.child;
    const names: string[] = [];
    for (let i = 0; i < 9; i++) names.push(await ask(ex.addr));
    assert.deepEqual(tally(names), { alpha: 3, beta: 3, gamma: 3 });
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
  });

  it('least-conn sends new clients to the idle backend while the others hold long connections', async () => {
    const ex = await startExample('load-balancer.js', ['--listen', '127.0.0.1:0', '--policy', 'least-conn', ...backends.map((b) => b.addr)]);
    child = ex.child;
    const first = await connectFor(ex.addr);
    const second = await connectFor(ex.addr);
    held = [first.socket, second.socket];
    assert.notEqual(first.name, second.name, 'the second client went to a backend with no connection');
    const idle = backends.map((b) => b.name).find((n) => n !== first.name && n !== second.name);
    const names: string[] = [];
    for (let i = 0; i < 4; i++) names.push(await ask(ex.addr));
    assert.deepEqual(names, [idle, idle, idle, idle]);
  });

  it('takes a killed backend out after failed health checks (clients go to the others) and back in once it is restarted', async function () {
    this.timeout(60_000);
    const ex = await startExample('load-balancer.js', ['--listen', '127.0.0.1:0', '--interval', '200', '--fall', '2', '--rise', '1',
      ...backends.map((b) => b.addr)]);
    child = ex.child;
    const beta = backends[1];
    await beta.kill();
    await waitFor(ex, new RegExp(`backend ${beta.addr} down\\n`), 'the balancer noticing beta is down');
    const during: string[] = [];
    for (let i = 0; i < 6; i++) during.push(await ask(ex.addr));  // ask() throws if a client gets no answer
    assert.deepEqual(tally(during), { alpha: 3, gamma: 3 });
    await beta.start();  // on its old port
    await waitFor(ex, new RegExp(`backend ${beta.addr} up\\n`), 'the balancer noticing beta is back');
    const after: string[] = [];
    for (let i = 0; i < 3; i++) after.push(await ask(ex.addr));
    assert.deepEqual(tally(after), { alpha: 1, beta: 1, gamma: 1 });
  });

  it('refuses bad arguments with a usage message', async () => {
    await assert.rejects(startExample('load-balancer.js', ['--policy', 'random', '127.0.0.1:1']), /exited with 2/);
    await assert.rejects(startExample('load-balancer.js', ['--fall', '0', '127.0.0.1:1']), /exited with 2/);
    await assert.rejects(startExample('load-balancer.js', []), /exited with 2/);
  });
});
