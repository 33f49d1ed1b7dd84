// Graceful shutdown, Go style: a line-protocol server whose handlers finish the request they
// are on when SIGTERM arrives, while idle connections are told goodbye; what still runs after
// the timeout is closed. SIGTERM handling is the application's: muxnet gives ln.shutdown().
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/graceful-shutdown.js [127.0.0.1:7000] [timeout ms]
// Protocol: each line "work <ms>" is answered "done <ms>" after that long; "quit" closes.
import { listen, type Conn } from 'muxnet';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Serves one connection: one request per line, until the client leaves or shutdown begins. */
async function handle(conn: Conn, signal: AbortSignal): Promise<void> {
  const buf = new Uint8Array(4096);
  let pending = '';
  // Idle in read() when shutdown begins: a deadline in the past wakes the read at once
  // (Go's trick: conn.SetReadDeadline(time.Now())), so idle connections end promptly.
  const wake = (): void => conn.setReadDeadline(1);
  signal.addEventListener('abort', wake, { once: true });
  try {
    while (!signal.aborted) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (err) {
        if (signal.aborted) break;  // woken by shutdown while idle
        throw err;
      }
      if (n === null) return;
      pending += dec.decode(buf.subarray(0, n), { stream: true });
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line === 'quit') return;
        const ms = Number(/^work (\d+)$/.exec(line)?.[1] ?? NaN);
        if (!Number.isFinite(ms)) {
          await conn.write(enc.encode(`error: expected "work <ms>" or "quit"\n`));
          continue;
        }
        console.log(`${conn.remoteAddr()}: work ${ms}`);
        await new Promise((resolve) => setTimeout(resolve, ms));  // the request's work: not cut short
        await conn.write(enc.encode(`done ${ms}\n`));
      }
    }
    await conn.write(enc.encode('bye: server shutting down\n'));
  } finally {
    signal.removeEventListener('abort', wake);
  }
}

async function main(): Promise<void> {
  const ln = listen('tcp', process.argv[2] ?? '127.0.0.1:7000');
  const timeout = Number(process.argv[3] ?? 10_000);
  console.log(`listening on ${ln.addr()}`);
  process.once('SIGTERM', () => {
    console.log('SIGTERM: shutting down');
    void ln.shutdown({ timeout }).then(({ finished, forced }) => {
      console.log(`shutdown: ${finished} finished, ${forced} forced`);
      process.exit(0);  // a forced handler may still have timers of its own running
    });
  });
  await ln.serve(handle);  // resolves once the listener is closed; shutdown() waits for the handlers
}

void main();
