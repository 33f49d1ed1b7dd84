// examples/tcp-proxy.ts run as a user would: curl and socat through it to Node servers.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import { exited, startExample } from './helpers/examples';
import { toolEnv, withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

/** Listens on a free loopback port; resolves with the server and its "127.0.0.1:port". */
async function listenNode<S extends net.Server>(server: S): Promise<{ server: S; addr: string }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, addr: `127.0.0.1:${(server.address() as net.AddressInfo).port}` };
}

describe('examples: tcp-proxy', () => {
  let child: ChildProcess | null = null;
  const servers: net.Server[] = [];
  afterEach(async () => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    child = null;
    for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
  });

  it('carries a 2 MiB HTTP response from a Node http server to curl whole, and stops on SIGTERM', async function () {
    skipIf(this, onWindows, 'drives the example with curl');
    const body = randomBytes(2 << 20);
    const up = await listenNode(http.createServer((req, res) => {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(req.url === '/blob' ? body : 'not found');
    }));
    servers.push(up.server);
    const ex = await startExample('tcp-proxy.js', ['127.0.0.1:0', up.addr]);
    child = ex.child;
    const got = await withTimeout(new Promise<Buffer>((resolve, reject) => {
      execFile('curl', ['-sS', '--max-time', '20', `http://${ex.addr}/blob`], { env: toolEnv(), encoding: 'buffer', maxBuffer: 8 << 20 },
        (err, out, errOut) => (err ? reject(new Error(`${err.message} ${errOut}`)) : resolve(out)));
    }), 25_000, 'curl through the proxy');
    assert.equal(got.length, body.length);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(body).digest('hex'));
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
    const m = /: (\d+) bytes to upstream, (\d+) bytes back\n/.exec(ex.out());
    assert.ok(m !== null, ex.out());
    assert.ok(Number(m[2]) > body.length, `the log counts the response's ${m[2]} bytes`);
  });

  it('passes half-close through: socat ends its side after 1 MiB and still receives the echo and the upstream\'s summary', async function () {
    skipIf(this, onWindows, 'drives the example with socat');
    // The upstream echoes, and only when the client's end of stream reaches it does it send a summary and close.
    const up = await listenNode(net.createServer({ allowHalfOpen: true }, (s) => {
      let n = 0;
      s.on('data', (d: Buffer) => { n += d.length; s.write(d); });
      s.on('end', () => s.end(`\nupstream saw end of stream after ${n} bytes\n`));
      s.on('error', () => {});
    }));
    servers.push(up.server);
    const ex = await startExample('tcp-proxy.js', ['127.0.0.1:0', up.addr]);
    child = ex.child;
    const input = randomBytes(1 << 20);
    // -t 20: after stdin's end (shutdown of socat's sending side) wait up to 20 s for the other way.
    const socat = spawn('socat', ['-t', '20', '-', `TCP:${ex.addr}`], { stdio: ['pipe', 'pipe', 'pipe'], env: toolEnv() });
    const chunks: Buffer[] = [];
    socat.stdout.on('data', (d: Buffer) => chunks.push(d));
    let errOut = '';
    socat.stderr.on('data', (d: Buffer) => { errOut += d.toString(); });
    socat.stdin.end(input);
    const code = await withTimeout(exited(socat), 25_000, 'socat finishing');
    assert.equal(code, 0, errOut);
    const out = Buffer.concat(chunks);
    const summary = `\nupstream saw end of stream after ${input.length} bytes\n`;
    assert.equal(out.length, input.length + summary.length);
    assert.ok(out.subarray(0, input.length).equals(input), 'the echo came back whole and in order');
    assert.equal(out.subarray(input.length).toString(), summary, 'the upstream saw the client\'s end, then answered');
    await withTimeout((async () => {
      while (!/bytes back/.test(ex.out())) await new Promise((r) => setTimeout(r, 10));
    })(), 10_000, 'the proxy logging the connection');
    assert.match(ex.out(), new RegExp(`: ${input.length} bytes to upstream, ${input.length + summary.length} bytes back\n`));
  });

  it('closes the client at once when the upstream is down (no wait for the dial timeout)', async () => {
    const gone = await listenNode(net.createServer());
    await new Promise((resolve) => gone.server.close(resolve));  // a port nobody listens on now
    // A 10-minute dial timeout: only a refused dial can end the client's wait within the test's bound.
    const ex = await startExample('tcp-proxy.js', ['127.0.0.1:0', gone.addr, '600000']);
    child = ex.child;
    const port = Number(ex.addr.slice(ex.addr.lastIndexOf(':') + 1));
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => {});
    let received = 0;
    client.on('data', (d: Buffer) => { received += d.length; });
    await withTimeout(new Promise((resolve) => client.once('close', resolve)), 10_000, 'the client closed by the proxy');
    assert.equal(received, 0);
    assert.match(ex.out(), new RegExp(`upstream ${gone.addr}: .*ECONNREFUSED|upstream ${gone.addr}: .*refused`, 'i'));
  });
});
