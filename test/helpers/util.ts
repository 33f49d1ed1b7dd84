// Small test utilities: timeouts that name what hung, promise observers, resource cleanup.
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/**
 * Resolves or rejects like `promise`, but rejects with "timed out after <ms> ms: <what>"
 * if it has not settled by then, so a hang fails with a message before mocha's timeout.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The observed state of a promise; `promise` never rejects, so nothing is left unhandled. */
export interface Observed<T> {
  settled: boolean;
  fulfilled: boolean;
  value?: T;
  error?: unknown;
  /** Settles with the outcome once the observed promise settles; never rejects. */
  promise: Promise<Observed<T>>;
}

/** Watches a promise without awaiting it: flags are set as soon as it settles. */
export function observe<T>(p: Promise<T>): Observed<T> {
  const o: Observed<T> = { settled: false, fulfilled: false } as Observed<T>;
  o.promise = p.then(
    (v) => {
      o.settled = true;
      o.fulfilled = true;
      o.value = v;
      return o;
    },
    (e: unknown) => {
      o.settled = true;
      o.error = e;
      return o;
    },
  );
  return o;
}

/** Anything the tests open: Conn, Listener, a Node server wrapper. */
export interface Closable {
  close(): unknown;
}

/**
 * Collects what a test opens so afterEach can close it all; mocha runs without --exit,
 * so a handle left open would show up as a hang at the end of the run.
 */
export class Resources {
  private items: Closable[] = [];

  add<T extends Closable>(item: T): T {
    this.items.push(item);
    return item;
  }

  async closeAll(): Promise<void> {
    const items = this.items.splice(0).reverse();
    const errors: unknown[] = [];
    for (const item of items) {
      try {
        await item.close();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/** Asserts two byte arrays are equal, reporting the first differing index, not a huge diff. */
export function assertBytesEqual(actual: Uint8Array, expected: Uint8Array, what = 'bytes'): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  }
  if (Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(
    Buffer.from(expected.buffer, expected.byteOffset, expected.length))) {
    return;
  }
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      throw new Error(`${what}: first difference at byte ${i}: ${actual[i]} !== ${expected[i]}`);
    }
  }
}

/** Returns the message of an error-like value, for assertion messages. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message} (code ${(e as { code?: unknown }).code})`;
  return String(e);
}

/**
 * The environment for an outside tool (curl, openssl) started by a test: this process's,
 * without the sanitizer runtime `npm run test:asan` preloads into Node, which would be
 * loaded into the tool too.
 */
export function toolEnv(): NodeJS.ProcessEnv {
  const { LD_PRELOAD: _preload, ASAN_OPTIONS: _asan, UBSAN_OPTIONS: _ubsan, ...env } = process.env;
  return env;
}
