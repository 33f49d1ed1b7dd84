// examples/rate-limit.ts run as a user would: each client IP gets exactly `burst` answers at once,
// then is limited across all its connections until its bucket refills; other IPs are unaffected.
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { exited, startExample } from './helpers/examples';
import { LineClient } from './helpers/lines';
import { sleep, toolEnv, withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

describe('examples: rate-limit', () => {
  let child: ChildProcess | null = null;
  const clients: LineClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.socket.destroy();
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    child = null;
  });

  /** Sends `n` requests at once; resolves with the `n` answers. */
  async function burstOf(c: LineClient, n: number, tag: string): Promise<string[]> {
    const from = c.lines.length;
    c.output.write(Array.from({ length: n }, (_, i) => `${tag} ${i + 1}\n`).join(''));
    await c.waitFor(/./, `${n} answers to ${tag}`, from + n - 1);
    return c.lines.slice(from, from + n);
  }

  it('answers exactly `burst` requests of a client IP at once, limits the rest on all its connections, and not another IP\'s', async function () {
    skipIf(this, onWindows, 'drives the example with nc');
    this.timeout(30_000);
    // Half a request per second: no token comes back while a burst is being answered.
    const ex = await startExample('rate-limit.js', ['127.0.0.1:0', '0.5', '5']);
    child = ex.child;
    const echoes = (tag: string, n: number): string[] => Array.from({ length: n }, (_, i) => `echo: ${tag} ${i + 1}`);

    const a = await LineClient.connect(ex.addr, '127.0.0.1');
    clients.push(a);
    const gotA = await burstOf(a, 8, 'a');
    assert.deepEqual(gotA.slice(0, 5), echoes('a', 5));
    for (const line of gotA.slice(5)) assert.match(line, /^ERR rate limited, retry in \d+ ms$/);

    // A second connection from the same IP shares the bucket: limited at once.
    const a2 = await LineClient.connect(ex.addr, '127.0.0.1');
    clients.push(a2);
    assert.match((await burstOf(a2, 1, 'a2'))[0], /^ERR rate limited/);

    // Another IP has its own bucket: its whole burst, then limited. Through nc, from 127.0.0.2.
    const out = await withTimeout(new Promise<string>((resolve, reject) => {
      const nc = execFile('nc', ['-N', '-s', '127.0.0.2', '127.0.0.1', ex.addr.slice(ex.addr.lastIndexOf(':') + 1)], { env: toolEnv() },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout)));
      nc.stdin!.end(Array.from({ length: 7 }, (_, i) => `b ${i + 1}\n`).join(''));
    }), 10_000, 'nc from 127.0.0.2');
    const gotB = out.trimEnd().split('\n');
    assert.equal(gotB.length, 7);
    assert.deepEqual(gotB.slice(0, 5), echoes('b', 5));
    for (const line of gotB.slice(5)) assert.match(line, /^ERR rate limited/);

    // After the time the server said, the first IP has a token again: exactly one more answer.
    const retryMs = Number(/retry in (\d+) ms/.exec((await burstOf(a, 1, 'again'))[0])?.[1]);
    assert.ok(retryMs > 0 && retryMs <= 2000, `retry in ${retryMs} ms`);
    await sleep(retryMs + 50);
    const after = await burstOf(a, 2, 'later');
    assert.equal(after[0], 'echo: later 1');
    assert.match(after[1], /^ERR rate limited/);

    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
    assert.match(ex.out(), /, 11 requests answered, 8 rate limited/);
  });
});
