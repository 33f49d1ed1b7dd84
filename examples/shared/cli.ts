// The command-line frame the server examples share: listen or explain why not, stop on SIGTERM/SIGINT.
import { listen, type Listener, type ListenOptions } from 'muxnet';

/**
 * `listen('tcp', address, options)` and prints "listening on <addr>"; on a bad address (or
 * one in use) prints the error and `usage` to stderr and exits with status 2.
 */
export function listenOrExit(address: string, usage: string, options?: ListenOptions): Listener {
  let ln: Listener;
  try {
    ln = listen('tcp', address, options);
  } catch (err) {
    console.error(`${(err as Error).message}\nusage: ${usage}`);
    process.exit(2);
  }
  console.log(`listening on ${ln.addr()}`);
  return ln;
}

/**
 * On SIGTERM or SIGINT: `ln.shutdown({ timeout })` (no new connections, handlers told by their
 * signal, the ones still running at the timeout closed), then `onStop()`'s line is printed and
 * the process exits with status 0.
 */
export function stopOnSignals(ln: Listener, timeout: number, onStop: () => string = () => ''): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      console.log(`${signal}: shutting down`);
      void ln.shutdown({ timeout }).then(({ finished, forced }) => {
        console.log(`shutdown: ${finished} finished, ${forced} forced${onStop()}`);
        process.exit(0);
      });
    });
  }
}

/** `value` as a number within [min, max], or exits with status 2 naming `name` and `usage`. */
export function numberArg(name: string, value: string | undefined, fallback: number, min: number, max: number, usage: string): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    console.error(`${name}: expected a number from ${min} to ${max}, got ${JSON.stringify(value)}\nusage: ${usage}`);
    process.exit(2);
  }
  return n;
}
