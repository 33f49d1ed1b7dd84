// examples/file-server.ts run as a user would: curl downloads a multi-MiB file byte-exact (sent
// with sendFile), a range of it, gets 404 for a missing file, and 403 for paths out of the root.
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { exited, startExample } from './helpers/examples';
import { toolEnv, withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

/** Runs curl with `args`; resolves with its stdout (it must exit 0). */
function curl(args: string[]): Promise<string> {
  return withTimeout(new Promise<string>((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '20', ...args], { env: toolEnv(), encoding: 'latin1', maxBuffer: 64 << 20 },
      (err, out, errOut) => (err ? reject(new Error(`${err.message} ${errOut}`)) : resolve(out)));
  }), 30_000, `curl ${args.join(' ')}`);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Sends `request` raw; resolves with all the server sent until it closed the connection. */
function raw(addr: string, request: string): Promise<string> {
  const i = addr.lastIndexOf(':');
  return withTimeout(new Promise<string>((resolve, reject) => {
    const s = net.connect(Number(addr.slice(i + 1)), addr.slice(0, i));
    let got = '';
    s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    s.on('error', reject);
    s.on('close', () => resolve(got));
    s.write(request);
  }), 10_000, `raw request ${JSON.stringify(request.slice(0, 40))}`);
}

describe('examples: file-server', () => {
  let child: ChildProcess | null = null;
  let dir = '';
  beforeEach(() => { dir = mkdtempSync(path.join(tmpdir(), 'muxnet-file-server-')); });
  afterEach(() => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    child = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a 6 MiB file byte-exact to curl, a range of it, and a second file on the same connection', async function () {
    skipIf(this, onWindows, 'drives the example with curl');
    this.timeout(60_000);
    const root = path.join(dir, 'root');
    mkdirSync(path.join(root, 'sub'), { recursive: true });
    const big = randomBytes(6 << 20);
    writeFileSync(path.join(root, 'big.bin'), big);
    writeFileSync(path.join(root, 'sub', 'hello.txt'), 'hello, file\n');
    const ex = await startExample('file-server.js', [root, '127.0.0.1:0']);
    child = ex.child;
    const out = path.join(dir, 'out.bin');
    // Two transfers in one curl: the second reuses the first's connection (keep-alive).
    const w = await curl(['-w', '%{http_code} %{num_connects} %{content_type}\\n', '-o', out, `http://${ex.addr}/big.bin`,
      '-o', path.join(dir, 'hello.txt'), `http://${ex.addr}/sub/hello.txt`]);
    assert.equal(w, '200 1 application/octet-stream\n200 0 text/plain; charset=utf-8\n');
    assert.equal(sha256(readFileSync(out)), sha256(big));
    assert.equal(readFileSync(path.join(dir, 'hello.txt'), 'utf8'), 'hello, file\n');
    // A byte range: 206 with exactly those bytes.
    const part = await curl(['-D', '-', '-r', '1000000-1999999', '-o', out, `http://${ex.addr}/big.bin`]);
    assert.match(part, /^HTTP\/1\.1 206 Partial Content\r\n/);
    assert.match(part, new RegExp(`\r\nContent-Range: bytes 1000000-1999999/${big.length}\r\n`));
    assert.ok(readFileSync(out).equals(big.subarray(1_000_000, 2_000_000)), 'the range\'s bytes');
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
  });

  it('answers 404 for a missing file, 403 for ".." and a symlink out of the root, 400 and 431 for bad requests', async function () {
    skipIf(this, onWindows, 'drives the example with curl');
    this.timeout(30_000);
    const root = path.join(dir, 'root');
    mkdirSync(root);
    writeFileSync(path.join(dir, 'secret.txt'), 'top secret\n');  // beside the root, not in it
    symlinkSync(path.join(dir, 'secret.txt'), path.join(root, 'link.txt'));
    const ex = await startExample('file-server.js', [root, '127.0.0.1:0']);
    child = ex.child;
    const status = (args: string[]): Promise<string> => curl(['-o', '-', '-w', ' %{http_code}', ...args]);
    assert.equal(await status([`http://${ex.addr}/missing.txt`]), 'not found\n 404');
    // curl would remove "/../" itself: --path-as-is sends it as typed, %2e%2e is ".." encoded.
    assert.equal(await status(['--path-as-is', `http://${ex.addr}/../secret.txt`]), 'forbidden\n 403');
    assert.equal(await status([`http://${ex.addr}/%2e%2e/secret.txt`]), 'forbidden\n 403');
    assert.equal(await status([`http://${ex.addr}/link.txt`]), 'forbidden\n 403');
    assert.equal(await status([`http://${ex.addr}/%E0%A4%A`]), 'bad request\n 400');
    assert.match(await raw(ex.addr, 'NONSENSE\r\n\r\n'), /^HTTP\/1\.1 400 Bad Request\r\n[^]*Connection: close\r\n\r\n$/);
    assert.match(await raw(ex.addr, `GET /${'a'.repeat(9000)} HTTP/1.1\r\n`), /^HTTP\/1\.1 431 /);
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
  });
});
