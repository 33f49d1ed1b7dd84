// A client-side connection pool, the pattern of Go's database/sql and http.Transport: at most
// maxOpen connections, at most maxIdle kept idle (each closed after idleTimeout), a health
// check at checkout (an idle connection the server closed meanwhile is discarded, never handed
// out), and callers beyond maxOpen queued (at most maxWaiters, each for at most waitTimeout).
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/conn-pool.js <echo server host:port> \
//     [--requests 200] [--concurrency 20] [--max-open 4] [--max-idle 2] [--idle-timeout ms] [--rounds 1] [--pause ms]
// Try it against a line echo server: socat TCP-LISTEN:7300,fork,reuseaddr EXEC:cat
import { parseArgs } from 'node:util';
import { dial, type Conn } from 'muxnet';

interface PoolOptions { maxOpen: number; maxIdle: number; idleTimeout: number; waitTimeout: number; maxWaiters: number }

/** A pool of connections to one address. get() a connection, use it, then put() it back. */
class Pool {
  private open = 0;
  private readonly idle: { conn: Conn; timer: NodeJS.Timeout }[] = [];
  private readonly waiters: ((conn: Conn | null) => void)[] = [];  // null: a slot is free, dial
  readonly stats = { dialed: 0, reused: 0, handed: 0, stale: 0, expired: 0, waited: 0, peakOpen: 0 };
  constructor(private readonly addr: string, private readonly o: PoolOptions) {}

  /** An idle connection that passes the health check, a new one, or one put back while waiting. */
  async get(): Promise<Conn> {
    for (let e = this.idle.pop(); e !== undefined; e = this.idle.pop()) {
      clearTimeout(e.timer);
      // The check costs one getsockopt(TCP_INFO) and reads nothing: a peer's FIN moves the
      // socket to CLOSE_WAIT, a reset to CLOSE. Go's database/sql asks the driver the same (connCheck).
      if (e.conn.info().state === 'ESTABLISHED') {
        this.stats.reused++;
        return e.conn;
      }
      this.stats.stale++;
      this.discard(e.conn);
    }
    if (this.open >= this.o.maxOpen) {
      if (this.waiters.length >= this.o.maxWaiters) throw new Error(`pool: ${this.waiters.length} callers already waiting`);
      this.stats.waited++;
      const handed = await new Promise<Conn | null>((resolve, reject) => {
        const waiter = (c: Conn | null): void => { clearTimeout(timer); resolve(c); };
        const timer = setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new Error(`pool: no connection within ${this.o.waitTimeout} ms`));
        }, this.o.waitTimeout);
        this.waiters.push(waiter);
      });
      if (handed !== null) return handed;
    }
    this.open++;
    this.stats.peakOpen = Math.max(this.stats.peakOpen, this.open);
    try {
      const conn = await dial('tcp', this.addr, { timeout: this.o.waitTimeout });
      this.stats.dialed++;
      return conn;
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /** Returns a connection; `reusable: false` (an error mid-request) closes it. */
  put(conn: Conn, reusable: boolean): void {
    if (!reusable) return this.discard(conn);
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      this.stats.handed++;
      return waiter(conn);
    }
    if (this.idle.length >= this.o.maxIdle) return this.discard(conn);
    const entry = { conn, timer: setTimeout(() => {
      this.idle.splice(this.idle.indexOf(entry), 1);
      this.stats.expired++;
      this.discard(conn);
    }, this.o.idleTimeout).unref() };
    this.idle.push(entry);
  }

  close(): void {
    for (const e of this.idle.splice(0)) { clearTimeout(e.timer); this.discard(e.conn); }
  }

  private discard(conn: Conn): void {
    conn.close();
    this.release();
  }

  /** One connection fewer: a waiter may dial in its place. */
  private release(): void {
    this.open--;
    this.waiters.shift()?.(null);
  }
}

/** One request of the demo's line protocol: send a line, expect it echoed. */
async function request(pool: Pool, line: string): Promise<void> {
  const conn = await pool.get();
  const buf = new Uint8Array(256);  // the echo of one short line: a longer answer is an error
  try {
    conn.setDeadline(Date.now() + 5000);
    await conn.write(`${line}\n`);
    let got = '';
    while (!got.endsWith('\n') && got.length < buf.length) {
      const n = await conn.read(buf);
      if (n === null) throw new Error('server closed the connection mid-request');
      got += Buffer.from(buf.subarray(0, n)).toString();
    }
    if (got !== `${line}\n`) throw new Error(`unexpected answer ${JSON.stringify(got)}`);
    conn.setDeadline(0);
    pool.put(conn, true);
  } catch (err) {
    pool.put(conn, false);
    throw err;
  }
}

async function main(): Promise<void> {
  const { values: v, positionals } = parseArgs({ allowPositionals: true, options: Object.fromEntries(
    ['requests', 'concurrency', 'max-open', 'max-idle', 'idle-timeout', 'wait-timeout', 'max-waiters', 'rounds', 'pause']
      .map((k) => [k, { type: 'string' as const }])) });
  const num = (k: string, dflt: number, min = 1): number => {
    const n = Number(v[k] ?? dflt);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${k}: expected a whole number >= ${min}, got ${JSON.stringify(v[k])}`);
    return n;
  };
  if (positionals.length !== 1) throw new Error('expected one server address (host:port)');
  const [requests, concurrency, rounds, pause] = [num('requests', 200), num('concurrency', 20), num('rounds', 1), num('pause', 0, 0)];
  const pool = new Pool(positionals[0], { maxOpen: num('max-open', 4), maxIdle: num('max-idle', 2, 0),
    idleTimeout: num('idle-timeout', 30_000), waitTimeout: num('wait-timeout', 5000), maxWaiters: num('max-waiters', 1000, 0) });
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => { stopping = true; });
  for (let round = 1; round <= rounds && !stopping; round++) {
    const before = { ...pool.stats };  // the pause's expiries count in the round after it
    if (round > 1) await new Promise((resolve) => setTimeout(resolve, pause));
    let sent = 0, ok = 0, failed = 0;
    // `concurrency` callers share the pool, each taking the next request until none is left.
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (sent < requests && !stopping) {
        const i = sent++;
        await request(pool, `round ${round} request ${i}`).then(() => ok++, (err: Error) => {
          failed++;
          console.log(`request ${i}: ${err.message}`);
        });
      }
    }));
    const d = (k: keyof Pool['stats']): number => pool.stats[k] - before[k];
    console.log(`round ${round}: ${ok} ok, ${failed} failed; dialed ${d('dialed')}, reused ${d('reused')}, ` +
      `waited ${d('waited')}, handed ${d('handed')} to waiters, discarded ${d('stale')} stale, ${d('expired')} expired; peak open ${pool.stats.peakOpen}`);
  }
  pool.close();
}

main().catch((err: Error) => {
  console.error(`conn-pool: ${err.message}`);
  process.exit(2);
});
