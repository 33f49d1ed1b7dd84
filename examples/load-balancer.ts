// A TCP load balancer, the Go pattern of httputil.ReverseProxy's transport at layer 4 (as in
// HAProxy's `mode tcp`): round-robin or least-connections over backends, active health checks
// (a dial with a timeout every interval: `fall` failures take a backend out, `rise` passes bring
// it back), each client proxied with two pipe()s.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/load-balancer.js \
//     [--listen 127.0.0.1:7200] [--policy round-robin|least-conn] [--interval ms] [--fall K] [--rise K] <backend host:port>...
// Memory per client is bounded by pipe() (one pooled chunk ahead); clients beyond --max-conns are refused by listen's limits.
import { parseArgs } from 'node:util';
import { dial, listen, pipe, type Conn } from 'muxnet';

/** One upstream and what the balancer knows of it. */
interface Backend {
  addr: string;
  up: boolean;
  active: number;  // clients being proxied to it now
  fails: number;   // consecutive failed checks
  passes: number;  // consecutive passed checks while down
}

function usage(problem: string): never {
  console.error(`load-balancer: ${problem}\nusage: load-balancer.js [--listen host:port] [--policy round-robin|least-conn] ` +
    '[--interval ms] [--fall K] [--rise K] [--max-conns N] <backend host:port>...');
  process.exit(2);
}

const { values: opts, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        listen: { type: 'string', default: '127.0.0.1:7200' },
        policy: { type: 'string', default: 'round-robin' },
        interval: { type: 'string', default: '2000' },
        fall: { type: 'string', default: '3' },
        rise: { type: 'string', default: '2' },
        'max-conns': { type: 'string', default: '10000' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
})();
const count = (name: 'interval' | 'fall' | 'rise' | 'max-conns'): number => {
  const n = Number(opts[name]);
  return Number.isInteger(n) && n >= 1 ? n : usage(`--${name}: expected a whole number >= 1, got ${JSON.stringify(opts[name])}`);
};
const interval = count('interval'), fall = count('fall'), rise = count('rise'), maxConns = count('max-conns');
if (opts.policy !== 'round-robin' && opts.policy !== 'least-conn') usage(`--policy: expected round-robin or least-conn, got ${JSON.stringify(opts.policy)}`);
if (positionals.length === 0) usage('expected at least one backend address');
const backends: Backend[] = positionals.map((addr) => ({ addr, up: true, active: 0, fails: 0, passes: 0 }));
let next = 0;  // round-robin position, also the tie-break of least-conn

/** The backends to try for a new client, best first: healthy ones only, in policy order. */
function candidates(): Backend[] {
  const healthy = backends.filter((b) => b.up);
  const start = next++ % Math.max(healthy.length, 1);
  const order = healthy.map((_, i) => healthy[(start + i) % healthy.length]);
  // A stable sort keeps round-robin order among equally loaded backends.
  if (opts.policy === 'least-conn') order.sort((a, b) => a.active - b.active);
  return order;
}

/** Dials backends in order until one answers; the client is closed (by serve) if none does. */
async function balance(client: Conn): Promise<void> {
  const peer = String(client.remoteAddr());
  for (const b of candidates()) {
    let up: Conn;
    try {
      up = await dial('tcp', b.addr, { timeout: interval });
    } catch (err) {
      console.log(`${peer}: ${b.addr}: ${(err as Error).message}; trying the next backend`);
      continue;
    }
    b.active++;
    console.log(`${peer} -> ${b.addr}`);
    try {
      await Promise.all([pipe(client, up), pipe(up, client)]);
    } catch (err) {
      console.log(`${peer} -> ${b.addr}: ${(err as Error).message}`);
    } finally {
      b.active--;
      up.close();
    }
    return;
  }
  console.log(`${peer}: no backend available`);
}

/** One health check of every backend: a connection within the interval passes. */
async function checkAll(): Promise<void> {
  await Promise.all(backends.map(async (b) => {
    let ok = true;
    try {
      (await dial('tcp', b.addr, { timeout: interval })).close();
    } catch {
      ok = false;
    }
    if (ok) {
      b.fails = 0;
      if (!b.up && ++b.passes >= rise) {
        b.up = true;
        console.log(`backend ${b.addr} up`);
      }
    } else {
      b.passes = 0;
      if (b.up && ++b.fails >= fall) {
        b.up = false;
        console.log(`backend ${b.addr} down`);
      }
    }
  }));
}

async function main(): Promise<void> {
  const ln = listen('tcp', opts.listen!, { limits: { maxConnections: maxConns } });
  console.log(`listening on ${ln.addr()} (${opts.policy} over ${backends.map((b) => b.addr).join(' ')})`);
  // One round at a time: a slow round delays the next rather than overlapping it.
  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    timer = setTimeout(() => void checkAll().then(() => { if (timer !== undefined) schedule(); }), interval);
  };
  schedule();
  const stop = (signal: string): void => {
    console.log(`${signal}: shutting down`);
    clearTimeout(timer);
    timer = undefined;
    void ln.shutdown({ timeout: 5000 });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  await ln.serve(balance, { onError: () => {} });
}

void main();
