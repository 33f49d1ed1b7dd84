// Closing a connection whose client may still be sending, without a reset eating the last reply.
import type { Conn } from 'muxnet';

/**
 * Ends a connection after a refusal (a bad or oversize request) while the client may still be
 * sending: closing with unread bytes makes the kernel send a reset, which can destroy the reply
 * before the client reads it. So: send FIN, then discard what comes for up to `ms` or 64 KiB,
 * as Go's net/http does (closeWriteAndWait). The caller (or serve) closes afterwards.
 */
export async function lingerClose(conn: Conn, ms = 1000): Promise<void> {
  conn.closeWrite();
  conn.setReadDeadline(Date.now() + ms);
  const sink = Buffer.alloc(4096);
  for (let total = 0; total < 64 * 1024;) {
    const n = await conn.read(sink).catch(() => null);
    if (n === null) return;
    total += n;
  }
}
