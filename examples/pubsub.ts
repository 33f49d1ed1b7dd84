// Publish/subscribe broker on a line protocol, the fan-out Go programs build from a map of topics
// to subscriber channels (as NATS and Redis pub/sub do over TCP):
//   SUB <topic>            -> OK SUB <topic>       (then "MSG <topic> <message>" for each publication)
//   UNSUB <topic>          -> OK UNSUB <topic>
//   PUB <topic> <message>  -> OK PUB <n>           (n: the subscribers it was queued for)
//   PING                   -> PONG
// Slow subscribers: a publication is DROPPED for a subscriber that already has more than 64 KiB
// unread (Go: a non-blocking send on a full channel), and counted; before the next line that
// subscriber gets, it is told "DROPPED <n>". Replies are never dropped, but each is awaited, so
// a client that does not read stops being read too: no client grows the broker's memory.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/pubsub.js [127.0.0.1:7010] [max unread bytes]
// Try it: nc 127.0.0.1 7010, then "SUB news"; in another: nc 127.0.0.1 7010, then "PUB news hello".
import type { Conn } from 'muxnet';
import { listenOrExit, numberArg, stopOnSignals } from './shared/cli';
import { LineTooLong, lines } from './shared/lines';

const usage = 'pubsub.js [host:port] [max unread bytes per subscriber]';
const maxUnread = numberArg('max unread bytes', process.argv[3], 64 * 1024, 1, 2 ** 30, usage);
const maxTopics = 100;  // per connection: the topic map stays bounded too
const ln = listenOrExit(process.argv[2] ?? '127.0.0.1:7010', usage);

/** A connected client: what it is subscribed to and how many publications it missed. */
interface Client { conn: Conn; topics: Set<string>; dropped: number }
const topics = new Map<string, Set<Client>>();
let droppedTotal = 0;
stopOnSignals(ln, 1000, () => `, ${droppedTotal} messages dropped for slow subscribers`);

/** Queues `line` for `to`, after a "DROPPED <n>" if it missed some; the promise settles once sent. */
function send(to: Client, line: string): Promise<void> {
  const text = to.dropped > 0 ? `DROPPED ${to.dropped}\n${line}\n` : `${line}\n`;
  to.dropped = 0;
  return to.conn.write(text);
}

/** Queues `message` for each subscriber of `topic` with room for it; returns how many. */
function publish(topic: string, message: string): number {
  let queued = 0;
  for (const sub of topics.get(topic) ?? []) {
    if (sub.conn.writableLength > maxUnread) {
      sub.dropped++;
      droppedTotal++;
      continue;
    }
    send(sub, `MSG ${topic} ${message}`).catch(() => {});  // fails only once the subscriber is gone
    queued++;
  }
  return queued;
}

/** Runs one command line; returns the reply. */
function command(me: Client, line: string): string {
  const m = /^(SUB|UNSUB|PUB) (\S{1,64})(?: (.*))?$/.exec(line);
  if (line === 'PING') return 'PONG';
  if (m === null || (m[1] === 'PUB') !== (m[3] !== undefined)) return 'ERR expected SUB <topic>, UNSUB <topic>, PUB <topic> <message> or PING';
  const [, verb, topic, message] = m;
  if (verb === 'PUB') return `OK PUB ${publish(topic, message)}`;
  if (verb === 'SUB') {
    if (!me.topics.has(topic) && me.topics.size >= maxTopics) return `ERR at most ${maxTopics} topics per connection`;
    me.topics.add(topic);
    const subs = topics.get(topic) ?? new Set();
    topics.set(topic, subs.add(me));
  } else {
    me.topics.delete(topic);
    unsubscribe(me, topic);
  }
  return `OK ${verb} ${topic}`;
}

function unsubscribe(me: Client, topic: string): void {
  const subs = topics.get(topic);
  subs?.delete(me);
  if (subs?.size === 0) topics.delete(topic);
}

void ln.serve(async (conn, signal) => {
  const me: Client = { conn, topics: new Set(), dropped: 0 };
  const bye = (): void => conn.close();  // shutdown: the read below rejects, the handler ends
  signal.addEventListener('abort', bye, { once: true });
  try {
    for await (const line of lines(conn)) await send(me, command(me, line));
  } catch (err) {
    if (err instanceof LineTooLong) await send(me, `ERR ${err.message}`).catch(() => {});
  } finally {
    signal.removeEventListener('abort', bye);
    for (const topic of me.topics) unsubscribe(me, topic);
  }
}, { onError: () => {} });
