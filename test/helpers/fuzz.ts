// Seeded randomness for the fuzz tests: a small PRNG, the seed and iteration count from the
// environment, and a wrapper that names the seed when a fuzz run fails.

/**
 * The run's seed: `MUXNET_FUZZ_SEED` (an unsigned 32-bit integer) to replay a failure, else
 * a fresh random one. Throws on a malformed value, so a typo cannot run a different seed.
 */
export function fuzzSeed(): number {
  const text = process.env.MUXNET_FUZZ_SEED;
  if (text === undefined || text === '') return Math.floor(Math.random() * 2 ** 32);
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 32) {
    throw new RangeError(`MUXNET_FUZZ_SEED: expected an integer from 0 to 2^32-1, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** `MUXNET_FUZZ_ITERATIONS` (a positive integer), or `fallback`: the CI default. */
export function fuzzIterations(fallback: number): number {
  const text = process.env.MUXNET_FUZZ_ITERATIONS;
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`MUXNET_FUZZ_ITERATIONS: expected a positive integer, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** mulberry32: small, fast, and the same sequence for the same seed on every platform. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** An integer from lo to hi, both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
}

/** Runs `body`; a failure's message gets the line that replays it. */
export async function replayable(seed: number, what: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    const hint = `\n  replay: MUXNET_FUZZ_SEED=${seed} (${what})`;
    if (e instanceof Error) {
      e.message += hint;
      throw e;
    }
    throw new Error(`${String(e)}${hint}`);
  }
}
