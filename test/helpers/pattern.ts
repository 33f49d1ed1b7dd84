// Deterministic test bytes with a long period, and a streaming check against them.

/*
 * A plain `i*31+7 & 255` repeats every 256 bytes, so a lost or duplicated chunk whose
 * size is a multiple of 256 (every power-of-two buffer) would go unnoticed. Instead the
 * pattern is a pseudo-random block of a prime length, so no buffer-sized shift matches.
 */
const kPeriod = 65521; // largest prime below 64 KiB
let block: Uint8Array | undefined;

/** The block written twice in a row, so any window of up to kPeriod bytes is contiguous. */
function patternBlock(): Uint8Array {
  if (block) return block;
  const b = new Uint8Array(kPeriod * 2);
  let x = 0x2545f491;
  for (let i = 0; i < kPeriod; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = (x ^ (i * 31 + 7)) & 255;
  }
  b.copyWithin(kPeriod, 0, kPeriod);
  block = b;
  return b;
}

/** The pattern byte at stream position `i`. */
export function patternByte(i: number): number {
  return patternBlock()[i % kPeriod];
}

/** Fills `buf` with the pattern bytes of stream positions offset .. offset+buf.length-1. */
export function fillPattern(buf: Uint8Array, offset = 0): Uint8Array {
  const b = patternBlock();
  for (let pos = 0; pos < buf.length;) {
    const start = (offset + pos) % kPeriod;
    const n = Math.min(buf.length - pos, kPeriod);
    buf.set(b.subarray(start, start + n), pos);
    pos += n;
  }
  return buf;
}

/** A new buffer of `n` pattern bytes starting at stream position `offset`. */
export function pattern(n: number, offset = 0): Uint8Array {
  return fillPattern(new Uint8Array(n), offset);
}

/**
 * The index in `chunk` of the first byte that differs from the pattern at stream
 * position `offset`, or -1 when the whole chunk matches.
 */
export function patternMismatch(chunk: Uint8Array, offset: number): number {
  const b = patternBlock();
  const actual = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
  for (let pos = 0; pos < chunk.length;) {
    const start = (offset + pos) % kPeriod;
    const n = Math.min(chunk.length - pos, kPeriod);
    const want = Buffer.from(b.buffer, b.byteOffset + start, n);
    if (!actual.subarray(pos, pos + n).equals(want)) {
      for (let i = 0; i < n; i++) if (actual[pos + i] !== want[i]) return pos + i;
    }
    pos += n;
  }
  return -1;
}

/**
 * Checks a byte stream against the pattern chunk by chunk, without keeping the chunks:
 * call `update` with each piece in order; it throws at the first wrong byte.
 */
export class PatternChecker {
  /** Bytes checked so far (the stream position of the next byte). */
  received = 0;

  /** `start`: the pattern position of the stream's first byte. */
  constructor(
    private readonly what = 'stream',
    private readonly start = 0,
  ) {}

  update(chunk: Uint8Array): void {
    const bad = patternMismatch(chunk, this.start + this.received);
    if (bad >= 0) {
      const at = this.start + this.received + bad;
      throw new Error(`${this.what}: wrong byte at stream offset ${at - this.start}: ${chunk[bad]} !== ${patternByte(at)}`);
    }
    this.received += chunk.length;
  }
}
