// Read helpers over Conn: exactly N bytes, everything until EOF, and a concurrent round trip.
import type { Conn } from 'muxnet';

/**
 * Reads exactly `n` bytes with `conn.read`, straight into the result buffer; throws if
 * EOF comes first or a read reports a count outside 1..remaining (which would also
 * make the loop unbounded).
 */
export async function readExactly(conn: Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const r = await conn.read(out.subarray(off));
    if (r === null) throw new Error(`EOF after ${off} of ${n} bytes`);
    if (!Number.isInteger(r) || r < 1 || r > n - off) {
      throw new Error(`read returned ${r} for a ${n - off}-byte buffer`);
    }
    off += r;
  }
  return out;
}

/**
 * Reads until EOF (read resolves null) and returns everything read; throws if more than
 * `max` bytes arrive, so a peer that never stops cannot keep the loop going.
 */
export async function readToEnd(conn: Conn, max = 64 * 1024 * 1024, bufSize = 64 * 1024): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(bufSize);
  for (;;) {
    const r = await conn.read(buf);
    if (r === null) break;
    if (!Number.isInteger(r) || r < 1 || r > buf.length) throw new Error(`read returned ${r}`);
    total += r;
    if (total > max) throw new Error(`more than ${max} bytes before EOF`);
    parts.push(buf.slice(0, r));
  }
  return Buffer.concat(parts);
}

/**
 * Writes `data` and reads the same number of bytes back at the same time (a peer that
 * echoes blocks once our receive buffer is full, so the two must run concurrently).
 */
export async function roundTrip(conn: Conn, data: Uint8Array): Promise<Uint8Array> {
  const [, echoed] = await Promise.all([conn.write(data), readExactly(conn, data.length)]);
  return echoed;
}
