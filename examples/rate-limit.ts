// Per-client rate limiting: a token bucket per remote IP (Go: a map[ip]*rate.Limiter from
// golang.org/x/time/rate, checked with Allow() per request) in front of a line echo service.
// Each line is a request, answered "echo: <line>", or "ERR rate limited, retry in <ms> ms" when
// its IP has no token left: `burst` requests at once, then `rate` per second, shared by ALL the
// connections from that IP (a client gains nothing by opening more).
// Contrast with the listener's own limits: listen(..., { limits: { acceptRate } }) meters how
// fast CONNECTIONS are accepted, for the whole listener, before a byte is read (and
// maxConnectionsPerIP, used below, caps how many one IP holds open); this meters REQUESTS, per
// client, over connections that stay open. A real server often wants both.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/rate-limit.js [127.0.0.1:7011] [requests per second] [burst]
// Try it: (for i in 1 2 3 4 5 6 7; do echo hi $i; done) | nc -N 127.0.0.1 7011
import { listenOrExit, numberArg, stopOnSignals } from './shared/cli';
import { LineTooLong, lines } from './shared/lines';

const usage = 'rate-limit.js [host:port] [requests per second] [burst]';
const rate = numberArg('requests per second', process.argv[3], 2, 0.001, 1e6, usage);
const burst = numberArg('burst', process.argv[4], 5, 1, 1e6, usage);
// Connections per IP are capped by the listener, so one IP cannot hold unbounded handlers either.
const ln = listenOrExit(process.argv[2] ?? '127.0.0.1:7011', usage, { limits: { maxConnectionsPerIP: 32 } });

/** A token bucket: `tokens` as of time `at` (ms). */
interface Bucket { tokens: number; at: number }
const buckets = new Map<string, Bucket>();
let allowed = 0;
let limited = 0;
stopOnSignals(ln, 1000, () => `, ${allowed} requests answered, ${limited} rate limited`);

/** Takes a token from `ip`'s bucket: 0 if there was one, else the ms until there will be. */
function take(ip: string, now = Date.now()): number {
  const b = buckets.get(ip) ?? { tokens: burst, at: now };
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);  // refill for the time since
  b.at = now;
  buckets.set(ip, b);
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return Math.ceil(((1 - b.tokens) / rate) * 1000);
}

// A bucket that has refilled completely is the same as no bucket: forgetting those keeps the
// map to the clients of the last burst/rate seconds, however many have come and gone.
setInterval(() => {
  const now = Date.now();
  for (const [ip, b] of buckets) if (b.tokens + ((now - b.at) / 1000) * rate >= burst) buckets.delete(ip);
}, 10_000).unref();

void ln.serve(async (conn, signal) => {
  const ip = conn.remoteAddr().ip;
  const bye = (): void => conn.close();  // shutdown: the read below rejects, the handler ends
  signal.addEventListener('abort', bye, { once: true });
  try {
    // One request at a time, its answer awaited: a client that does not read its answers stops
    // being read, so it cannot queue answers here without bound.
    for await (const line of lines(conn, 1024)) {
      const wait = take(ip);
      if (wait === 0) allowed++;
      else limited++;
      await conn.write(wait === 0 ? `echo: ${line}\n` : `ERR rate limited, retry in ${wait} ms\n`);
    }
  } catch (err) {
    if (err instanceof LineTooLong) await conn.write(`ERR ${err.message}\n`).catch(() => {});
  } finally {
    signal.removeEventListener('abort', bye);
  }
}, { onError: () => {} });
