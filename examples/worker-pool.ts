// A server that hands CPU-heavy requests to a fixed pool of worker threads, the Go pattern of a
// worker pool fed by a buffered channel (`jobs := make(chan Job, queue)` + N goroutines, with a
// `select { case jobs <- j: default: reply("BUSY") }` when the buffer is full), so the event loop
// stays free to answer cheap requests while the heavy ones compute.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/worker-pool.js [127.0.0.1:7500] [workers] [queue]
// Protocol, one request per line: "PING" -> "PONG"; "HASH <rounds> <text>" -> "HASH <hex>", the
// sha256 of <text> hashed <rounds> times; "BUSY" when all workers are busy and `queue` jobs wait.
// Try it: printf 'HASH 1000000 abc\n' | nc -q 5 127.0.0.1 7500 & printf 'PING\n' | nc -q 1 127.0.0.1 7500
import { createHash } from 'node:crypto';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { listen, type Conn } from 'muxnet';

interface Job { id: number; rounds: number; text: string }
const kMaxRounds = 50_000_000;  // ~1 min of one core: a bound on what one request may cost
const kMaxLine = 1024;          // a client sending a longer line is answered ERR and dropped

/** The worker's side: hashes, one job at a time. */
function workerMain(): void {
  parentPort!.on('message', ({ id, rounds, text }: Job) => {
    let h: Buffer = Buffer.from(text);
    for (let i = 0; i < rounds; i++) h = createHash('sha256').update(h).digest();
    parentPort!.postMessage({ id, hex: h.toString('hex') });
  });
}

/** Fixed workers, a bounded queue; run() resolves with the result, or null when full (BUSY). */
class WorkerPool {
  private readonly idle: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly waiting = new Map<number, (hex: string) => void>();
  private nextId = 0;
  constructor(size: number, private readonly queueLimit: number) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(__filename);
      w.on('message', ({ id, hex }: { id: number; hex: string }) => {
        this.waiting.get(id)!(hex);
        this.waiting.delete(id);
        const next = this.queue.shift();
        if (next !== undefined) w.postMessage(next);
        else this.idle.push(w);
      });
      this.idle.push(w);
    }
  }

  run(rounds: number, text: string): Promise<string> | null {
    const w = this.idle.pop();
    if (w === undefined && this.queue.length >= this.queueLimit) return null;
    const job = { id: this.nextId++, rounds, text };
    const result = new Promise<string>((resolve) => this.waiting.set(job.id, resolve));
    if (w !== undefined) w.postMessage(job);
    else this.queue.push(job);
    return result;
  }
}

/** Answers one request line. */
async function answer(pool: WorkerPool, line: string): Promise<string> {
  if (line === 'PING') return 'PONG';
  const m = /^HASH (\d+) (.*)$/.exec(line);
  if (m === null || Number(m[1]) > kMaxRounds) return `ERR expected "PING" or "HASH <rounds up to ${kMaxRounds}> <text>"`;
  const result = pool.run(Number(m[1]), m[2]);
  return result === null ? 'BUSY' : `HASH ${await result}`;
}

/** Serves one connection: its requests in turn, each answered before the next is read. */
async function handle(pool: WorkerPool, conn: Conn, signal: AbortSignal): Promise<void> {
  let pending = '';
  for await (const data of conn) {
    pending += Buffer.from(data).toString('latin1');
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      await conn.write(`${await answer(pool, pending.slice(0, nl).trim())}\n`);
      pending = pending.slice(nl + 1);
      if (signal.aborted) return;
    }
    if (pending.length > kMaxLine) {
      await conn.write('ERR line too long\n');
      return;
    }
  }
}

async function main(): Promise<void> {
  const [address = '127.0.0.1:7500', workers = '2', queue = '8'] = process.argv.slice(2);
  if (!/^[1-9]\d*$/.test(workers) || !/^\d+$/.test(queue)) {
    console.error('usage: worker-pool.js [host:port] [workers >= 1] [queue >= 0]');
    process.exit(2);
  }
  const pool = new WorkerPool(Number(workers), Number(queue));
  const ln = listen('tcp', address);
  console.log(`listening on ${ln.addr()} (${workers} workers, queue ${queue})`);
  const stop = (sig: string): void => {
    console.log(`${sig}: shutting down`);
    void ln.shutdown({ timeout: 5000 }).then(() => process.exit(0));  // exit() ends the workers too
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  await ln.serve((conn, signal) => handle(pool, conn, signal));
}

if (isMainThread) void main();
else workerMain();
