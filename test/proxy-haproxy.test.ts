// The PROXY protocol against a real HAProxy: two muxnet servers (examples/proxy-protocol-server.ts)
// behind send-proxy-v2 and send-proxy backends with health checks, each server seeing the real clients.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { exited, startExample, type StartedExample } from './helpers/examples';
import { Haproxy, findHaproxy, type ServerStates } from './helpers/haproxy';
import { sleep, withTimeout } from './helpers/util';

/** One line through `port` from `localAddress`; resolves with the reply line and the client socket's own address. */
async function ask(port: number, localAddress: string, line: string): Promise<{ reply: string; client: string }> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress });
  try {
    return await withTimeout(new Promise((resolve, reject) => {
      let got = '';
      s.once('error', reject);
      s.once('connect', () => s.write(`${line}\n`));
      s.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.includes('\n')) resolve({ reply: got.trim(), client: `${s.localAddress}:${s.localPort}` });
      });
      s.once('close', () => reject(new Error(`closed before a reply (got ${JSON.stringify(got)})`)));
    }), 10_000, `a reply through 127.0.0.1:${port}`);
  } finally {
    s.destroy();
  }
}

/** The fields of a reply: "<name> client=<addr> via=<addr> proxy=v<n> line=<line>". */
function parseReply(reply: string): { name: string; client: string; proxy: string; line: string } {
  const m = /^(\S+) client=(\S+) via=\S+ proxy=(v\d) line=(.*)$/.exec(reply);
  assert.ok(m, `unexpected reply ${JSON.stringify(reply)}`);
  return { name: m[1], client: m[2], proxy: m[3], line: m[4] };
}

describe('PROXY protocol behind HAProxy', function () {
  this.timeout(60_000);
  let haproxy: Haproxy | null = null;
  const servers: StartedExample[] = [];
  // UP after a passed tcp-check (a server starts UP before its first check).
  const allUp = (states: ServerStates): boolean =>
    ['v2/s0', 'v2/s1', 'v1/s0', 'v1/s1'].every((k) => states[k]?.status === 'UP' && states[k].check === 'L7OK');

  before(async function () {
    const found = findHaproxy();
    if (found.path === null) {
      console.log(`      skipped: ${found.why}`);
      this.skip();
    }
    for (const name of ['server-a', 'server-b']) servers.push(await startExample('proxy-protocol-server.js', ['127.0.0.1:0', name]));
    const addrs = servers.map((s) => s.addr);
    // The health check sends a line and expects the server's answer to it, so a server is UP
    // only if it read the header HAProxy's check sends first (v2: LOCAL; v1: a PROXY line).
    const check = { send: 'PING\n', expect: 'line=PING' };
    haproxy = await Haproxy.start(found.path!, {
      backends: [
        { name: 'v2', servers: addrs, proxy: 'v2', check },
        { name: 'v1', servers: addrs, proxy: 'v1', check },
      ],
    });
  });

  after(async () => {
    await haproxy?.stop();
    for (const s of servers.splice(0)) {
      s.child.kill('SIGTERM');
      await withTimeout(exited(s.child), 10_000, 'a server exiting').catch(() => s.child.kill('SIGKILL'));
    }
  });

  it('health checks pass through the header: every server is UP, and send-proxy-v2 checks arrive as LOCAL', async () => {
    await haproxy!.waitFor(allUp, 20_000, 'every server UP');
    const local = /^health check from 127\.0\.0\.1:\d+$/m;
    for (const s of servers) {
      for (let i = 0; i < 100 && !local.test(s.out()); i++) await sleep(50);  // the log may trail the check
      assert.match(s.out(), local);
    }
  });

  for (const version of ['v2', 'v1'] as const) {
    it(`send-proxy${version === 'v2' ? '-v2' : ''}: each server sees the client's own address, and both servers serve`, async () => {
      await haproxy!.waitFor(allUp, 20_000, 'every server UP');
      const served = new Set<string>();
      // Two client addresses, neither HAProxy's own (127.0.0.1): a server that reported the
      // transport's peer would print 127.0.0.1.
      for (let i = 0; i < 6; i++) {
        const from = i % 2 === 0 ? '127.0.0.2' : '127.0.0.3';
        const { reply, client } = await ask(haproxy!.port(version), from, `hello ${i}`);
        const r = parseReply(reply);
        assert.equal(r.client, client, `${r.name} saw ${r.client}, the client was ${client}`);
        assert.equal(r.proxy, version);
        assert.equal(r.line, `hello ${i}`);
        served.add(r.name);
      }
      assert.deepEqual([...served].sort(), ['server-a', 'server-b']);
    });
  }

  it('a client that skips HAProxy (no header) is refused by the server, which serves on behind HAProxy', async () => {
    const direct = servers[0];
    const port = Number(direct.addr.slice(direct.addr.lastIndexOf(':') + 1));
    await assert.rejects(ask(port, '127.0.0.4', 'hello without a header'), /closed before a reply|ECONNRESET/);
    const refused = /^refused 127\.0\.0\.4:\d+: PROXY protocol: no header/m;
    for (let i = 0; i < 100 && !refused.test(direct.out()); i++) await sleep(50);  // its log may trail the close
    assert.match(direct.out(), refused);
    const { reply, client } = await ask(haproxy!.port('v2'), '127.0.0.2', 'still there');
    assert.equal(parseReply(reply).client, client);
  });
});
