// Line chat server, the Go book's chat (gopl.io ch8): each line a client sends goes to every
// OTHER client as "<name>: <line>"; arrivals and departures are announced. A client that does
// not read is dropped once 64 KiB wait for it (what Go does with a buffered channel per
// client and a non-blocking send), so one stalled client never grows the server's memory.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/chat.js [127.0.0.1:7008] [max pending bytes]
// Try it: nc 127.0.0.1 7008 (in two terminals); "/nick <name>" picks a name, "/who" lists who is here.
import type { Conn } from 'muxnet';
import { listenOrExit, numberArg, stopOnSignals } from './shared/cli';
import { LineTooLong, lines } from './shared/lines';

const usage = 'chat.js [host:port] [max pending bytes per client]';
const maxPending = numberArg('max pending bytes', process.argv[3], 64 * 1024, 1, 2 ** 30, usage);
const ln = listenOrExit(process.argv[2] ?? '127.0.0.1:7008', usage);

/** A client: its connection and the name others see. */
interface Client { conn: Conn; name: string }
const clients = new Set<Client>();
let dropped = 0;
stopOnSignals(ln, 1000, () => `, ${dropped} slow clients dropped`);

/**
 * Queues `text` for `to` without waiting for it to be sent: a broadcast is never held up by
 * its slowest reader. The bytes still unsent are the client's backlog; past the bound the
 * client is dropped (closed: its handler's read ends, and it leaves).
 */
function send(to: Client, text: string): void {
  to.conn.write(text).catch(() => {});  // fails only once the client is gone: it leaves by its handler
  if (to.conn.writableLength > maxPending && clients.delete(to)) {
    dropped++;
    console.log(`${to.name}: dropped, ${to.conn.writableLength} bytes unread`);
    to.conn.close();
    broadcast(null, `${to.name} was dropped (too slow)\n`);
  }
}

/** Sends `text` to every client but `from`. */
function broadcast(from: Client | null, text: string): void {
  for (const c of [...clients]) if (c !== from) send(c, text);
}

void ln.serve(async (conn, signal) => {
  const me: Client = { conn, name: conn.remoteAddr().toString() };
  const bye = (): void => conn.close();  // shutdown: stop reading (the read rejects)
  signal.addEventListener('abort', bye, { once: true });
  send(me, `you are ${me.name}\n`);
  broadcast(me, `${me.name} has arrived\n`);
  clients.add(me);
  let reason = 'has left';
  try {
    for await (const line of lines(conn)) {
      if (!clients.has(me)) break;  // dropped while this line was read
      const nick = /^\/nick (\S{1,32})$/.exec(line);
      if (nick !== null) {
        broadcast(me, `${me.name} is now ${nick[1]}\n`);
        me.name = nick[1];
      } else if (line === '/who') {
        send(me, `here: ${[...clients].map((c) => c.name).join(', ')}\n`);
      } else if (line !== '') {
        broadcast(me, `${me.name}: ${line}\n`);
      }
    }
  } catch (err) {
    if (err instanceof LineTooLong) send(me, `error: ${err.message}\n`);
    reason = 'has left (connection error)';
  } finally {
    signal.removeEventListener('abort', bye);
  }
  if (clients.delete(me)) broadcast(me, `${me.name} ${reason}\n`);
}, { onError: () => {} });
