// examples/echo.ts run as a user would: socat and nc send a file's worth of bytes and get them back exactly.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { examplesDir, exited, startExample } from './helpers/examples';
import { toolEnv, withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

/** Runs `cmd args` with `input` on its stdin (then closed); resolves with its stdout once it exits 0. */
function through(cmd: string, args: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: toolEnv() });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${cmd} exited with ${code}: ${err}`))));
    child.stdin.end(input);
  });
}

describe('examples: echo', () => {
  let child: ChildProcess | null = null;
  afterEach(() => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    child = null;
  });

  it('echoes 4 MiB from socat and 1 MiB from nc byte for byte, ends each at the client\'s end, and stops on SIGTERM', async function () {
    skipIf(this, onWindows, 'drives the example with socat and nc, and stops it with SIGTERM');
    this.timeout(60_000);
    const ex = await startExample('echo.js', ['127.0.0.1:0']);
    child = ex.child;
    const port = ex.addr.slice(ex.addr.lastIndexOf(':') + 1);
    const big = randomBytes(4 << 20);
    const small = randomBytes(1 << 20);
    // Both at once: two connections served concurrently. Each tool exits only once the server
    // closed its side after the echo (socat -t: waits up to 30 s for it; nc -N: shuts down at EOF).
    const [a, b] = await withTimeout(Promise.all([
      through('socat', ['-t', '30', '-', `TCP:127.0.0.1:${port}`], big),
      through('nc', ['-N', '127.0.0.1', port], small),
    ]), 30_000, 'socat and nc echoes');
    assert.ok(a.equals(big), `socat got ${a.length} bytes back, not the ${big.length} sent`);
    assert.ok(b.equals(small), `nc got ${b.length} bytes back, not the ${small.length} sent`);
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
    assert.match(ex.out(), new RegExp(`shutdown: 0 finished, 0 forced, ${big.length + small.length} bytes echoed`));
  });

  it('refuses a bad address with the usage line and status 2', async () => {
    const bad = spawn(process.execPath, [path.join(examplesDir, 'echo.js'), 'no-port'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    bad.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    assert.equal(await withTimeout(exited(bad), 10_000, 'the example exiting'), 2);
    assert.match(err, /address "no-port": missing port[^]*usage: echo\.js \[host:port\]/);
  });
});
