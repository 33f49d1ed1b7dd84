// examples/chat.ts run as a user would: an nc client and Node clients chat; one that never
// reads is dropped at the server's bound while the others keep chatting.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { exited, startExample } from './helpers/examples';
import { LineClient } from './helpers/lines';
import { toolEnv, withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

describe('examples: chat', () => {
  const children: ChildProcess[] = [];
  const clients: LineClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.socket.destroy();
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('broadcasts each line to the other clients, announces arrivals and departures, and drops a client that does not read', async function () {
    skipIf(this, onWindows, 'drives the example with nc');
    this.timeout(60_000);
    const ex = await startExample('chat.js', ['127.0.0.1:0', String(64 * 1024)]);
    children.push(ex.child);

    // The slow client reads its greeting, then never reads again.
    const slow = await LineClient.connect(ex.addr);
    clients.push(slow);
    const slowName = (await slow.waitFor(/^you are /, 'the slow client greeted')).slice('you are '.length);
    slow.socket.pause();

    const bob = await LineClient.connect(ex.addr);
    clients.push(bob);
    const bobName = (await bob.waitFor(/^you are /, 'bob greeted')).slice('you are '.length);
    assert.equal(bobName, `127.0.0.1:${bob.socket.localPort}`);

    // alice is nc: the chat as a terminal user would have it.
    const nc = spawn('nc', ['-N', '127.0.0.1', ex.addr.slice(ex.addr.lastIndexOf(':') + 1)], { stdio: ['pipe', 'pipe', 'inherit'], env: toolEnv() });
    children.push(nc);
    const alice = new LineClient(nc.stdout, nc.stdin);
    const aliceAddr = (await alice.waitFor(/^you are /, 'alice greeted')).slice('you are '.length);
    await bob.waitFor(new RegExp(`^${aliceAddr} has arrived$`), 'bob told alice arrived');
    alice.send('/nick alice');
    await bob.waitFor(new RegExp(`^${aliceAddr} is now alice$`), 'bob told of the new name');
    alice.send('hello bob');
    assert.equal(await bob.waitFor(/hello bob/, 'bob gets alice\'s line'), 'alice: hello bob');

    // bob talks, in batches small enough for alice to keep up (she reads each batch before the
    // next); the slow client's backlog grows until the server drops it.
    const text = 'x'.repeat(1000);
    let sent = 0;
    const droppedLine = new RegExp(`^${slowName} was dropped \\(too slow\\)$`);
    for (let batch = 0; batch < 4000 && !alice.lines.some((l) => droppedLine.test(l)); batch++) {
      for (let i = 0; i < 32; i++) bob.send(`${++sent} ${text}`);
      await alice.waitFor(new RegExp(`^${bobName}: ${sent} x`), `alice reads bob's line ${sent}`, alice.lines.length - 40);
    }
    await alice.waitFor(droppedLine, 'alice told the slow client was dropped');
    await bob.waitFor(droppedLine, 'bob told the slow client was dropped');
    assert.match(ex.out(), new RegExp(`${slowName}: dropped, \\d+ bytes unread`));

    // alice got every one of bob's lines, in order, and none of her own.
    const fromBob = alice.lines.filter((l) => l.startsWith(`${bobName}: `)).map((l) => Number(l.split(' ')[1]));
    assert.deepEqual(fromBob, Array.from({ length: sent }, (_, i) => i + 1));
    assert.ok(!alice.lines.some((l) => l.startsWith('alice: ')), 'a client is not sent its own lines');

    // The others keep chatting after the drop.
    alice.send('still here');
    assert.equal(await bob.waitFor(/still here/, 'bob hears alice after the drop'), 'alice: still here');
    bob.send('me too');
    assert.equal(await alice.waitFor(/me too/, 'alice hears bob after the drop'), `${bobName}: me too`);

    // The dropped client, reading at last, finds its connection closed by the server; what it
    // got before is bounded by its buffers, not the whole conversation.
    slow.socket.resume();
    await withTimeout(slow.ended, 10_000, 'the slow client closed by the server');
    assert.ok(slow.lines.filter((l) => l.startsWith(`${bobName}: `)).length < sent);

    // alice leaves (nc closes its side at the end of its input): bob is told.
    nc.stdin.end();
    await bob.waitFor(/^alice has left$/, 'bob told alice left');
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
    assert.match(ex.out(), /shutdown: 1 finished, 0 forced, 1 slow clients dropped/);
  });
});
