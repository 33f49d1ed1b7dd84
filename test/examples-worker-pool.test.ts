// examples/worker-pool.ts run as a user would: heavy HASH requests on worker threads, a PING
// answered while they run, BUSY past the queue's bound, and correct hashes.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { exited, startExample } from './helpers/examples';
import { withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

/** sha256 of `text`, hashed `rounds` times, as the example computes it. */
function iteratedSha256(rounds: number, text: string): string {
  let h: Buffer = Buffer.from(text);
  for (let i = 0; i < rounds; i++) h = createHash('sha256').update(h).digest();
  return h.toString('hex');
}

/** Sends one request on its own connection; the reply line is pushed to `replies` as "<label>: <reply>" when it arrives. */
function request(addr: string, line: string, label: string, replies: string[]): Promise<string> {
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let got = '';
  return withTimeout(new Promise<string>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (!got.includes('\n')) return;
      const reply = got.slice(0, got.indexOf('\n'));
      replies.push(`${label}: ${reply}`);
      socket.end();
      resolve(reply);
    });
    socket.once('close', () => reject(new Error(`${label}: closed with ${JSON.stringify(got)}`)));
    socket.write(`${line}\n`);
  }), 60_000, `the reply to ${label}`);
}

describe('examples: worker-pool', () => {
  let child: ChildProcess | null = null;
  afterEach(() => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    child = null;
  });

  it('answers PING while heavy HASH requests run on the workers, answers BUSY past the queue, and hashes correctly', async function () {
    skipIf(this, onWindows, 'SIGTERM: Windows kills the process, no handler runs');
    this.timeout(120_000);
    // 2 workers and a queue of 1: of 4 heavy requests, 2 run, 1 waits, 1 is refused.
    const ex = await startExample('worker-pool.js', ['127.0.0.1:0', '2', '1']);
    child = ex.child;
    const rounds = 1_000_000;  // about a second of one core each
    const replies: string[] = [];
    const heavy = [0, 1, 2, 3].map((i) => request(ex.addr, `HASH ${rounds} muxnet`, `heavy${i}`, replies));
    // BUSY comes back once all four have reached the server: 2 running, 1 queued.
    await withTimeout((async () => {
      while (!replies.some((r) => r.endsWith(': BUSY'))) await new Promise((r) => setTimeout(r, 5));
    })(), 30_000, 'the fourth heavy request refused');
    assert.equal(await request(ex.addr, 'PING', 'ping', replies), 'PONG');
    const results = await Promise.all(heavy);
    assert.equal(replies.length, 5);
    assert.match(replies[0], /^heavy\d: BUSY$/);
    assert.equal(replies[1], 'ping: PONG', `PING answered before any heavy request finished: ${replies.join(', ')}`);
    const expected = `HASH ${iteratedSha256(rounds, 'muxnet')}`;
    assert.deepEqual(results.filter((r) => r !== 'BUSY'), [expected, expected, expected]);
    assert.equal(results.filter((r) => r === 'BUSY').length, 1);
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
  });

  it('answers small requests correctly, and ERR to malformed ones', async () => {
    const ex = await startExample('worker-pool.js', ['127.0.0.1:0', '1', '0']);
    child = ex.child;
    const replies: string[] = [];
    assert.equal(await request(ex.addr, 'HASH 3 abc', 'small', replies), `HASH ${iteratedSha256(3, 'abc')}`);
    assert.equal(await request(ex.addr, 'HASH 0 abc', 'zero', replies), `HASH ${Buffer.from('abc').toString('hex')}`);
    assert.match(await request(ex.addr, 'HASH lots abc', 'bad', replies), /^ERR expected/);
    assert.match(await request(ex.addr, 'HASH 999999999999 abc', 'too many', replies), /^ERR expected/);
  });

  it('refuses bad arguments with a usage message', async () => {
    await assert.rejects(startExample('worker-pool.js', ['127.0.0.1:0', '0']), /exited with 2/);
  });
});
