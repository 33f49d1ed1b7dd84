// examples/pubsub.ts run as a user would: subscribers on different topics get exactly their
// topics' messages; a subscriber that stops reading misses messages, counted and told, while
// the others get every one.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { exited, startExample } from './helpers/examples';
import { LineClient } from './helpers/lines';
import { toolEnv, withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

describe('examples: pubsub', () => {
  const children: ChildProcess[] = [];
  const clients: LineClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.socket.destroy();
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('fans out to the subscribers of a topic only, and drops (and counts) messages for a subscriber that does not read', async function () {
    skipIf(this, onWindows, 'drives the example with nc');
    this.timeout(60_000);
    const ex = await startExample('pubsub.js', ['127.0.0.1:0', String(64 * 1024)]);
    children.push(ex.child);
    const connect = async (): Promise<LineClient> => {
      const c = await LineClient.connect(ex.addr);
      clients.push(c);
      return c;
    };
    const [news, sport, slow, pub] = [await connect(), await connect(), await connect(), await connect()];
    // A subscriber through nc, as from a terminal; it subscribes, then leaves the topic.
    const nc = spawn('nc', ['127.0.0.1', ex.addr.slice(ex.addr.lastIndexOf(':') + 1)], { stdio: ['pipe', 'pipe', 'inherit'], env: toolEnv() });
    children.push(nc);
    const leaver = new LineClient(nc.stdout, nc.stdin);
    for (const [c, topic] of [[news, 'news'], [sport, 'sport'], [slow, 'news'], [leaver, 'news']] as const) {
      c.send(`SUB ${topic}`);
      await c.waitFor(new RegExp(`^OK SUB ${topic}$`), `subscribed to ${topic}`);
    }
    pub.send('PUB news 0 hello');
    assert.equal(await pub.waitFor(/^OK PUB/, 'the first publication'), 'OK PUB 3');
    pub.send('PUB sport goal');
    assert.equal(await pub.waitFor(/^OK PUB/, 'the sport publication', 1), 'OK PUB 1');
    assert.equal(await sport.waitFor(/^MSG/, 'the sport message'), 'MSG sport goal');
    await leaver.waitFor(/^MSG news 0 hello$/, 'nc gets the news');
    leaver.send('UNSUB news');
    await leaver.waitFor(/^OK UNSUB news$/, 'nc unsubscribed');
    pub.send('nonsense');
    assert.match(await pub.waitFor(/^ERR/, 'an error for a bad command'), /^ERR expected SUB <topic>/);
    await slow.waitFor(/^MSG news 0 hello$/, 'the slow subscriber reads the first message');
    slow.socket.pause();  // ... and then no more

    // Publish in batches of 50 (each batch's replies awaited, so "news" reads along) until the
    // broker reports it queued a message for one subscriber of two, then one more batch.
    const text = 'x'.repeat(200);
    let published = 1;
    let droppedSeen = false;
    for (let batch = 0; batch < 4000; batch++) {
      const from = pub.lines.length;
      for (let i = 0; i < 50; i++) pub.send(`PUB news ${++published - 1} ${text}`);
      await pub.waitFor(/^OK PUB/, `batch ${batch} answered`, from + 49);
      const wasDropping = droppedSeen;
      droppedSeen ||= pub.lines.slice(from).some((l) => l === 'OK PUB 1');
      if (wasDropping) break;
    }
    assert.ok(droppedSeen, 'the broker never dropped a message for the slow subscriber');
    assert.ok(pub.lines.every((l) => /^OK PUB [12]$|^OK PUB 3$|^ERR/.test(l)), 'one reply per publication');

    // The reading subscriber got every message, in order, and was never told of drops.
    await news.waitFor(new RegExp(`^MSG news ${published - 1} `), 'news gets the last message');
    const got = news.lines.filter((l) => l.startsWith('MSG news ')).map((l) => Number(l.split(' ')[2]));
    assert.deepEqual(got, Array.from({ length: published }, (_, i) => i));
    assert.ok(!news.lines.some((l) => l.startsWith('DROPPED')));
    assert.ok(!sport.lines.some((l) => l.startsWith('MSG news')), 'sport gets no news');
    assert.ok(!leaver.lines.slice(leaver.lines.indexOf('OK UNSUB news')).some((l) => l.startsWith('MSG')), 'nothing after UNSUB');

    // The slow subscriber reads again: what it got plus what it was told it missed is everything.
    slow.socket.resume();
    slow.send('PING');
    await slow.waitFor(/^PONG$/, 'the slow subscriber\'s PONG', 0, 30_000);
    const dropped = slow.lines.filter((l) => l.startsWith('DROPPED ')).reduce((sum, l) => sum + Number(l.split(' ')[1]), 0);
    const received = slow.lines.filter((l) => l.startsWith('MSG news ')).length;
    assert.ok(dropped > 0, 'told of the drops');
    assert.equal(received + dropped, published);
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 10_000, 'the example exiting'), 0);
    assert.match(ex.out(), new RegExp(`, ${dropped} messages dropped for slow subscribers`));
  });
});
