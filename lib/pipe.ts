// pipe(src, dst): bytes from one connection to another until end of stream, as Go's io.Copy between two net.Conns.
import { Conn } from './conn';
import { describeValue } from './errors';

/**
 * Moves bytes from `src` to `dst` until `src` ends, then shuts down `dst`'s sending side
 * (`closeWrite()`), so the end of stream passes through: half-close works in each direction
 * when two pipes run opposite ways (a proxy: `await Promise.all([pipe(a, b), pipe(b, a)])`).
 * Resolves with the bytes moved. Rejects with the first error of either side (a reset, a
 * deadline, `close()`); the caller closes both connections then.
 *
 * The bytes never pass through JavaScript memory: each is read into a chunk of the loop's
 * pool and written from there by reference (the chunk returns to the pool once written).
 * Backpressure holds both ways: one chunk is read ahead while the previous one is written,
 * so a slow `dst` stops reads from `src` and a quiet `src` holds no buffer.
 */
export async function pipe(src: Conn, dst: Conn): Promise<number> {
  if (!(src instanceof Conn)) throw new TypeError(`src: expected a Conn, got ${describeValue(src)}`);
  if (!(dst instanceof Conn)) throw new TypeError(`dst: expected a Conn, got ${describeValue(dst)}`);
  if (src === dst) throw new TypeError('dst: expected a different Conn from src');
  let moved = 0;
  let writing: Promise<void> | null = null;
  try {
    for (;;) {
      const chunk = await src.readChunk();  // read ahead while the previous chunk is written
      if (writing !== null) await writing;
      if (chunk === null) break;
      moved += chunk.bytes.length;
      writing = dst.write(chunk.bytes);  // holds the chunk until written
      chunk.release();
      writing.catch(() => {});  // awaited above on the next turn; observed now so a failure waits there
    }
  } catch (err) {
    if (writing !== null) await writing.catch(() => {});
    throw err;
  }
  dst.closeWrite();
  return moved;
}
