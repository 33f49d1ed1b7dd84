// Retry with exponential backoff and full jitter, behind a circuit breaker: the pattern of Go's
// cenkalti/backoff and sony/gobreaker around net.Dial. A call is "dial, send PING, expect PONG".
// Retries wait random(0, min(cap, base * 2^attempt)) ("full jitter", so clients that failed
// together do not retry together); the breaker opens after --threshold consecutive failed calls,
// fails calls fast (no dial) for --cooldown ms, then lets one trial call through (half-open):
// success closes it, failure opens it again.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/resilient-dial.js <host:port> \
//     [--calls 1] [--every ms] [--retries 5] [--base ms] [--cap ms] [--jitter full|none] [--threshold 5] [--cooldown ms]
// Try it with a PONG server: socat TCP-LISTEN:7400,fork,reuseaddr SYSTEM:'read l; echo PONG'
// Written here rather than with cockatiel (npm): the point of the example is the ~50 lines of
// the pattern itself, and cockatiel's default backoff is decorrelated jitter, not full jitter.
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { dial } from 'muxnet';

function usage(problem: string): never {
  console.error(`resilient-dial: ${problem}\nusage: resilient-dial.js <host:port> [--calls N] [--every ms] [--retries N] ` +
    '[--base ms] [--cap ms] [--jitter full|none] [--threshold N] [--cooldown ms]');
  process.exit(2);
}
const { values: v, positionals } = (() => {
  try {
    return parseArgs({ allowPositionals: true, options: Object.fromEntries(
      ['calls', 'every', 'retries', 'base', 'cap', 'jitter', 'threshold', 'cooldown'].map((k) => [k, { type: 'string' as const }])) });
  } catch (err) {
    return usage((err as Error).message);
  }
})();
function num(k: string, dflt: number, min: number): number {
  const n = Number(v[k] ?? dflt);
  return Number.isInteger(n) && n >= min ? n : usage(`--${k}: expected a whole number >= ${min}, got ${JSON.stringify(v[k])}`);
}
const jitter = v.jitter ?? 'full';
if (jitter !== 'full' && jitter !== 'none') usage(`--jitter: expected full or none, got ${JSON.stringify(jitter)}`);
if (positionals.length !== 1) usage('expected one address (host:port)');
const addr = positionals[0];
const [calls, every, retries, base, cap] = [num('calls', 1, 1), num('every', 1000, 0), num('retries', 5, 0), num('base', 100, 1), num('cap', 5000, 1)];
const [threshold, cooldown] = [num('threshold', 5, 1), num('cooldown', 5000, 1)];

/** Runs `op` up to 1 + retries times, sleeping a jittered, capped, doubling delay between attempts. */
async function retry<T>(call: number, op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await op();
      console.log(`call ${call}: ok after ${attempt} attempts`);
      return result;
    } catch (err) {
      if (attempt > retries) throw new Error(`failed after ${attempt} attempts: ${(err as Error).message}`);
      const ceiling = Math.min(cap, base * 2 ** (attempt - 1));
      const delay = jitter === 'full' ? Math.floor(Math.random() * (ceiling + 1)) : ceiling;
      console.log(`call ${call} attempt ${attempt}: ${(err as Error).message}; retry in ${delay} ms (ceiling ${ceiling} ms)`);
      await sleep(delay);
    }
  }
}

/** closed -> open after `threshold` consecutive failures -> half-open after `cooldown` -> closed on a success. */
class CircuitBreaker {
  private state: 'closed' | 'open' | 'half-open' = 'closed';
  private failures = 0;
  private openedAt = 0;
  private trialRunning = false;

  async run<T>(op: () => Promise<T>): Promise<T> {
    if (this.state === 'open' && Date.now() - this.openedAt >= cooldown) {
      this.state = 'half-open';
      console.log('circuit half-open: one trial call');
    }
    if (this.state === 'open' || (this.state === 'half-open' && this.trialRunning)) throw new Error('circuit open');
    this.trialRunning = this.state === 'half-open';
    try {
      const result = await op();
      if (this.state === 'half-open') console.log('circuit closed');
      this.state = 'closed';
      this.failures = 0;
      return result;
    } catch (err) {
      if (this.state === 'half-open' || ++this.failures >= threshold) {
        console.log(this.state === 'half-open' ? 'circuit open again: the trial call failed' : `circuit open after ${this.failures} consecutive failures`);
        this.state = 'open';
        this.openedAt = Date.now();
      }
      throw err;
    } finally {
      this.trialRunning = false;
    }
  }
}

/** One call: dial, PING, expect PONG; every step bounded by one deadline. */
async function ping(): Promise<void> {
  const conn = await dial('tcp', addr, { timeout: 2000 });
  try {
    conn.setDeadline(Date.now() + 2000);
    await conn.write('PING\n');
    const buf = new Uint8Array(16);
    const n = await conn.read(buf);
    if (n === null) throw new Error('closed without an answer');
    const answer = Buffer.from(buf.subarray(0, n)).toString();
    if (!answer.startsWith('PONG')) throw new Error(`unexpected answer ${JSON.stringify(answer)}`);
  } finally {
    conn.close();
  }
}

async function main(): Promise<void> {
  const breaker = new CircuitBreaker();
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => { stopping = true; });
  for (let call = 1; call <= calls && !stopping; call++) {
    if (call > 1) await sleep(every);
    await breaker.run(() => retry(call, ping)).catch((err: Error) => {
      console.log(`call ${call}: ${err.message === 'circuit open' ? 'failed fast: circuit open' : err.message}`);
    });
  }
}

void main();
