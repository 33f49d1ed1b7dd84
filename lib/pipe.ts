// pipe(src, dst): bytes from one connection to another until end of stream, as Go's io.Copy between two net.Conns.
import { Conn, type Splicer } from './conn';
import { EAGAIN, describeValue } from './errors';

// A kernel pipe holds 16 pages by default: at most this much is asked of one splice.
const kPipeBytes = 64 * 1024;
// Splices in a row before yielding to the rest of the event loop: a fast pair of sockets
// would otherwise keep Node's loop in microtasks for as long as both stay ready.
const kTurnsPerYield = 16;

// The pipes splicing now: they hold their connections (which the loop holds only weakly
// while no operation of theirs is in flight) until they end.
const running = new Set<Splicer>();

/**
 * Moves bytes from `src` to `dst` until `src` ends, then shuts down `dst`'s sending side
 * (`closeWrite()`), so the end of stream passes through: half-close works in each direction
 * when two pipes run opposite ways (a proxy: `await Promise.all([pipe(a, b), pipe(b, a)])`).
 * Resolves with the bytes moved. Rejects with the first error of either side (a reset, a
 * deadline, `close()`); the caller closes both connections then.
 *
 * Messages are read into a chunk of the loop's pool and written from there by reference
 * (no copy in JavaScript). On Linux, once a read shows a stream (32 KiB or more at once),
 * the rest never leaves the kernel: `splice(2)` moves it from `src` into a kernel pipe and
 * from there to `dst` (not between connections on two loops). Backpressure holds both ways in both: at most one pipe (or one chunk) is in
 * flight, so a slow `dst` stops reads from `src`, and a quiet `src` holds no buffer. While a
 * pipe runs, make no reads of `src` and no writes to `dst`.
 */
export async function pipe(src: Conn, dst: Conn): Promise<number> {
  if (!(src instanceof Conn)) throw new TypeError(`src: expected a Conn, got ${describeValue(src)}`);
  if (!(dst instanceof Conn)) throw new TypeError(`dst: expected a Conn, got ${describeValue(dst)}`);
  if (src === dst) throw new TypeError('dst: expected a different Conn from src');
  return copy(src, dst, src._loop === dst._loop);
}

// A read at least this large is a stream, not a message: pipe() moves to splice(2) from there.
// Small messages cost less through the pool (a read and a write) than spliced (a splice in,
// a splice out, and the pipe's EAGAIN): 15.6 against 13.8 µs per 64-byte message through a
// proxy, while a stream costs 0.7x per MiB spliced (npm run bench -- --only proxy).
const kStreamRead = 32 * 1024;

/**
 * pipe() through the loop's pool: a chunk read ahead while the previous one is written; once
 * a read shows a stream (and `spliceable`: one loop), the rest goes through splice().
 */
async function copy(src: Conn, dst: Conn, spliceable: boolean): Promise<number> {
  let moved = 0;
  let writing: Promise<void> | null = null;
  try {
    for (;;) {
      const chunk = await src.readChunk();  // read ahead while the previous chunk is written
      if (writing !== null) await writing;
      if (chunk === null) break;
      moved += chunk.bytes.length;
      const stream = spliceable && chunk.bytes.length >= kStreamRead;
      writing = dst.write(chunk.bytes);  // holds the chunk until written
      chunk.release();
      writing.catch(() => {});  // awaited above on the next turn; observed now so a failure waits there
      if (stream) {
        await writing;
        writing = null;
        const spliced = await splice(src, dst);
        if (spliced !== null) return moved + spliced;
        spliceable = false;  // not on this platform: copy on
      }
    }
  } catch (err) {
    if (writing !== null) await writing.catch(() => {});
    throw err;
  }
  dst.closeWrite();
  return moved;
}

/**
 * pipe() with splice(2) through a kernel pipe of the loop; null (nothing done) where it
 * cannot: no splice on this platform, or a side already busy (then copy() reports why).
 */
async function splice(src: Conn, dst: Conn): Promise<number | null> {
  const native = src._loop.native;
  const pipeId = native.openPipe();
  if (pipeId < 0) return null;
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  let dstRoom = true;
  const splicer: Splicer = {
    readable: () => wake?.(),
    writable: () => {
      dstRoom = true;
      wake?.();
    },
    fail: (err) => {
      failure ??= err;
      wake?.();
    },
  };
  if (!src._spliceAttach(splicer, true)) {
    native.closePipe(pipeId);
    return null;
  }
  if (!dst._spliceAttach(splicer, false)) {
    src._spliceDetach();
    native.closePipe(pipeId);
    return null;
  }
  running.add(splicer);
  let moved = 0;
  let inPipe = 0;
  let ended = false;
  try {
    for (let turn = 1; ; turn++) {
      if (failure !== null) throw failure;
      let progress = false;
      let pipeFull = false;
      if (!ended && src._readable && inPipe < kPipeBytes) {
        const n = src._spliceIn(pipeId, kPipeBytes - inPipe, inPipe === 0);
        if (n > 0) {
          inPipe += n;
          progress = true;
        } else if (n === 0) {
          ended = true;
          progress = true;
        } else if (n === EAGAIN) {
          // With bytes in the pipe, EAGAIN may be the pipe's: its 16 slots hold pages
          // partly filled by small segments. Empty it, then splice again.
          pipeFull = inPipe > 0;
        } else {
          throw src._spliceError('read', n);
        }
      }
      if (inPipe > 0 && dstRoom) {
        const m = dst._spliceOut(pipeId, inPipe);
        if (m > 0) {
          inPipe -= m;
          moved += m;
          progress = true;
        } else if (m === EAGAIN) {
          dstRoom = false;  // room was asked for: a Writable event follows
        } else {
          throw dst._spliceError('write', m);
        }
      }
      if (ended && inPipe === 0) break;
      if (progress || (pipeFull && dstRoom)) {
        if (turn % kTurnsPerYield === 0) await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      // Blocked: on the source (drained) or on the destination (full). Readiness of a source
      // that cannot be served now is paused, so a level-triggered loop does not repeat it.
      if (!ended && !src._readable && inPipe < kPipeBytes && dstRoom) src._spliceWantRead();
      else src._splicePauseRead();
      await new Promise<void>((resolve) => { wake = resolve; });
      wake = null;
    }
  } finally {
    running.delete(splicer);
    src._spliceDetach();
    dst._spliceDetach();
    native.closePipe(pipeId);
  }
  dst.closeWrite();
  return moved;
}
